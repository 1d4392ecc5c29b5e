/**
 * bin/run.js as it was before the help cache: oclif parses, renders and prints everything. The help
 * tests hold the cache's output to this one's. Run as `node dist/test/helpers/oclif-run.js ARGS`.
 */
import {execute} from '@oclif/core/execute'

import {RUN_JS} from './cli.js'

await execute({loadOptions: {root: RUN_JS, userPlugins: false}})
