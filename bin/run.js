#!/usr/bin/env node
import {fileURLToPath} from 'node:url'

// The subpath, not the package's index: --help then loads a third fewer of oclif's modules.
import {execute} from '@oclif/core/execute'

// razorfs has no plugins: oclif is not to look for a user's in its data dir, which razorfs's own
// variable RAZORFS_DATA_DIR would name too (oclif reads <BIN>_DATA_DIR).
await execute({loadOptions: {root: fileURLToPath(import.meta.url), userPlugins: false}})
