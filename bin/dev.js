#!/usr/bin/env node
// Development entry point: runs the compiled commands like run.js, but with oclif's
// development mode on (full error output, manifest ignored). Build first: `npm run build`.
import {fileURLToPath} from 'node:url'

import {execute} from '@oclif/core/execute'

await execute({development: true, loadOptions: {root: fileURLToPath(import.meta.url), userPlugins: false}})
