import {type Hook, loadHelpClass} from '@oclif/core'

import {EXIT} from '../exit-codes.js'

/**
 * An unknown command is a usage error: one line on stderr, exit 16 (oclif's own handler would
 * print a boxed "command x not found" and exit 1). `razorfs help [COMMAND]` shows the help, as
 * `razorfs [COMMAND] --help` does, without shipping @oclif/plugin-help's extra `help` command.
 */
const hook: Hook.CommandNotFound = async function (opts) {
  // With topicSeparator ' ', `razorfs help init` arrives as id 'help:init'.
  const [first, ...rest] = opts.id.split(':')
  if (first === 'help' && (rest.length === 0 || opts.config.findCommand(rest.join(':')))) {
    const Help = await loadHelpClass(opts.config)
    await new Help(opts.config, opts.config.pjson.oclif.helpOptions).showHelp([...rest, ...(opts.argv ?? [])])
    return
  }

  const name = first === 'help' ? rest.join(' ') : first
  process.stderr.write(`razorfs: unknown command '${name}' (see 'razorfs --help')\n`)
  this.exit(EXIT.USAGE)
}

export default hook
