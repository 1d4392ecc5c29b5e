#!/usr/bin/env node
import {fileURLToPath} from 'node:url'

import {cachedHelp, helpRequest, runAndRemember} from '../dist/src/cli/help-cache.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const help = helpRequest(process.argv.slice(2), root)
const text = help && cachedHelp(help)

if (text === undefined) {
  // The subpath, not the package's index: a run then loads a third fewer of oclif's modules.
  const {execute} = await import('@oclif/core/execute')
  // razorfs has no plugins of the user's: oclif is not to look for them in its data dir, which
  // razorfs's own variable RAZORFS_DATA_DIR would name too (oclif reads <BIN>_DATA_DIR).
  const run = () => execute({loadOptions: {root: fileURLToPath(import.meta.url), userPlugins: false}})
  await (help ? runAndRemember(help, run) : run())
} else {
  // A help request answered before: printed as oclif printed it, without loading oclif.
  process.stdout.write(text)
}
