import type {Hook} from '@oclif/core'

import {EXIT} from '../exit-codes.js'

/**
 * A help request oclif's help would answer with a boxed "command not found" and exit 1, before the
 * command_not_found hook is asked:
 *
 * - `razorfs WORD --help` where WORD is no command: the same usage error as `razorfs WORD`, one
 *   line, exit 16;
 * - `razorfs COMMAND WORDS --help` (oclif reads `COMMAND:WORDS`): COMMAND's help, as `git status
 *   x --help` shows git status's.
 */
const hook: Hook.Init = async function (opts) {
  if (opts.id === undefined || !opts.argv.some(a => a === '--help' || a === '-h')) return
  const parts = opts.id.split(':')
  if (parts[0] === 'help' || parts[0].startsWith('-') || parts[0].startsWith('/')) return
  if (opts.config.findCommand(opts.id) !== undefined || opts.config.findTopic(opts.id) !== undefined) return
  for (let n = parts.length - 1; n > 0; n--) {
    const id = parts.slice(0, n).join(':')
    if (opts.config.findCommand(id) === undefined) continue
    const {loadHelpClass} = await import('@oclif/core/help')
    const Help = await loadHelpClass(opts.config)
    await new Help(opts.config, opts.config.pjson.oclif.helpOptions).showHelp([id])
    // this.exit(0) would not end the run (oclif goes on to its own help, which fails); stdout
    // is a file, a pipe or a terminal, all written synchronously on Linux: nothing is cut.
    process.exit(0)
  }

  // Loaded only here: this hook runs before every command.
  const {unknownCommand} = await import('./command-not-found.js')
  unknownCommand(parts[0], opts.config)
  this.exit(EXIT.USAGE)
}

export default hook
