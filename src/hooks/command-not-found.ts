import type {Hook, Interfaces} from '@oclif/core'
import {loadHelpClass} from '@oclif/core/help'
import {closest, distance} from 'fastest-levenshtein'

import {EXIT} from '../exit-codes.js'
import {runMountHelper} from '../fuse/fstab.js'

/**
 * What oclif could not match to a command:
 *
 * - `razorfs help [COMMAND]` shows the help, as `razorfs [COMMAND] --help` does, without shipping
 *   @oclif/plugin-help's extra `help` command.
 * - Words after a command that takes no (more) arguments: with topicSeparator ' ', oclif reads
 *   `razorfs stats extra` as the command `stats:extra`. The longest known command is run with the
 *   rest as its arguments, so that its parser says what is wrong ("Unexpected argument: extra").
 * - A first argument that is an absolute path: mount.fuse3's call for the type fuse.razorfs,
 *   `razorfs SOURCE MOUNTPOINT -o OPTS` (README, "fstab and systemd"); no command starts with '/'.
 * - Anything else is an unknown command, a usage error: one line on stderr naming the closest
 *   command if one is close ("did you mean 'mount'?"), exit 16 (oclif's own handler would print a
 *   boxed "command x not found" and exit 1).
 */
const hook: Hook.CommandNotFound = async function (opts) {
  const parts = opts.id.split(':')
  const argv = opts.argv ?? []
  // oclif has joined the words before the first flag with ':' (and a path may hold one): take the
  // raw arguments from the first one, which is the absolute path the id starts with.
  if (opts.id.startsWith('/')) this.exit(runMountHelper(process.argv.slice(process.argv.findIndex((a, i) => i >= 2 && a.startsWith('/'))), 'razorfs'))
  if (parts[0] === 'help' && (parts.length === 1 || opts.config.findCommand(parts.slice(1).join(':')))) {
    const Help = await loadHelpClass(opts.config)
    await new Help(opts.config, opts.config.pjson.oclif.helpOptions).showHelp([...parts.slice(1), ...argv])
    return
  }

  for (let n = parts.length - 1; n > 0; n--) {
    const id = parts.slice(0, n).join(':')
    if (opts.config.findCommand(id)) return opts.config.runCommand(id, [...parts.slice(n), ...argv])
  }

  unknownCommand(parts[0] === 'help' ? parts.slice(1).join(' ') : parts[0], opts.config)
  this.exit(EXIT.USAGE)
}

/** Say on one line that `name` is no command, naming the closest one if one is close. */
export function unknownCommand(name: string, config: Interfaces.Config): void {
  const suggestion = closestCommand(
    name,
    config.commands.filter(c => !c.hidden).map(c => c.id),
  )
  const hint = suggestion === undefined ? '' : `; did you mean '${suggestion}'?`
  process.stderr.write(`razorfs: unknown command '${name}'${hint} (see 'razorfs --help')\n`)
}

/**
 * The command `name` most likely meant: the only one it is a prefix of, else the only one it is
 * with two adjacent letters swapped (`inti`: `init`, not `info`, which is as many edits away),
 * else the nearest by edit distance if at most two letters (or a third of them) differ.
 */
export function closestCommand(name: string, ids: string[]): string | undefined {
  if (name === '' || ids.length === 0) return undefined
  const prefixed = ids.filter(id => id.startsWith(name))
  if (prefixed.length === 1) return prefixed[0]
  const swapped = ids.filter(id => adjacentSwap(name, id))
  if (swapped.length === 1) return swapped[0]
  const nearest = closest(name, ids)
  return distance(name, nearest) <= Math.max(2, Math.floor(nearest.length / 3)) ? nearest : undefined
}

/** Is `b` the word `a` with two adjacent letters swapped? */
function adjacentSwap(a: string, b: string): boolean {
  if (a.length !== b.length) return false
  const diff = [...a].flatMap((ch, i) => (ch === b[i] ? [] : [i]))
  return diff.length === 2 && diff[1] === diff[0] + 1 && a[diff[0]] === b[diff[1]] && a[diff[1]] === b[diff[0]]
}

export default hook
