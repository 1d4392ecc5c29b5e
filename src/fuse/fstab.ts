/**
 * razorfs under mount(8), for /etc/fstab lines and systemd .mount units: the helper conventions
 * translated into `razorfs mount` and `razorfs umount`.
 *
 * - `mount -t razorfs SOURCE DIR` (fstab type `razorfs`) runs `/sbin/mount.razorfs SOURCE DIR
 *   [-sfnv] [-N NS] [-o OPTS]` (bin/mount.razorfs).
 * - `mount -t fuse.razorfs SOURCE DIR` (or the old `razorfs#SOURCE DIR fuse`) runs mount.fuse3,
 *   which runs `razorfs SOURCE DIR -o OPTS` (the program named after the subtype, on PATH):
 *   the command_not_found hook hands a first argument that is an absolute path to runMountHelper.
 * - `umount DIR` of a razorfs mount (type fuse.razorfs) runs `/sbin/umount.fuse.razorfs DIR
 *   [-flnrv] [-N NS] [-t TYPE]` (bin/umount.fuse.razorfs), which waits for the clean close.
 *
 * SOURCE is the data dir. What fails follows mount(8)'s exit codes: 1 for a wrong invocation
 * (a bad option among them), 32 for a mount that failed.
 */
import {spawnSync} from 'node:child_process'
import {fileURLToPath} from 'node:url'

import {MountOptionError, parseMountOptions} from './mount-options.js'

/** mount(8)'s exit codes (man 8 mount, EXIT STATUS). */
export const MOUNT_EXIT = {OK: 0, USAGE: 1, FAILURE: 32} as const

/** `razorfs mount`'s usage exit code (EXIT.USAGE). */
const RAZORFS_USAGE = 16

/**
 * Options of fstab and mount(8), not of the filesystem: mount(8) keeps some of them in the list it
 * gives a helper (`user`, `nofail`, `_netdev`), mount.fuse3 others (`x-*` given on its command
 * line); razorfs drops them all. `user` and `users` have done their work by then: mount(8) has
 * added the noexec,nosuid,nodev they imply (for a user's mount it passes `user=NAME`, and may
 * pass `uhelper=` and `helper=`).
 */
const FSTAB_ONLY = new Set(['defaults', 'auto', 'noauto', 'user', 'nouser', 'users', 'owner', 'group', '_netdev', 'nofail'])
const FSTAB_ONLY_PREFIXES = ['x-', 'comment=', 'user=', 'uhelper=', 'helper=']

/** The filesystem types the helpers answer for. */
const TYPES = new Set(['razorfs', 'fuse.razorfs'])

/** A helper's command line is wrong (exit 1); the message names what. */
export class HelperUsageError extends Error {}

export interface MountRequest {
  /** The data dir. */
  source: string
  mountpoint: string
  /** The options razorfs mount gets, in order. */
  options: string[]
  /** Options dropped: fstab's own, and (-s) those razorfs does not know. */
  dropped: string[]
  /** -f: check everything, mount nothing. */
  fake: boolean
  /** -v: say what is run. */
  verbose: boolean
}

/** Is `option` one of fstab's own (not for the filesystem)? */
export function isFstabOnly(option: string): boolean {
  return FSTAB_ONLY.has(option) || FSTAB_ONLY_PREFIXES.some(p => option.startsWith(p))
}

/**
 * The short flags and their values of a helper's command line: `-o` and `-t` and `-N` take a
 * value (the next argument, or the rest of the word); the others are single letters, which may be
 * grouped (`-fnv`). The first two other arguments are the positionals.
 */
function scan(argv: string[], flags: string, valued: string): {positionals: string[]; set: Set<string>; values: Map<string, string[]>} {
  const positionals: string[] = []
  const set = new Set<string>()
  const values = new Map<string, string[]>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg)
      continue
    }

    for (let j = 1; j < arg.length; j++) {
      const letter = arg[j]
      if (valued.includes(letter)) {
        const value = j + 1 < arg.length ? arg.slice(j + 1) : argv[++i]
        if (value === undefined) throw new HelperUsageError(`option -${letter} needs a value`)
        values.set(letter, [...(values.get(letter) ?? []), value])
        break
      }

      if (!flags.includes(letter)) throw new HelperUsageError(`unknown option -${letter}`)
      set.add(letter)
    }
  }

  if (values.has('N')) throw new HelperUsageError('-N (another mount namespace) is not supported')
  for (const type of values.get('t') ?? []) {
    if (!TYPES.has(type)) throw new HelperUsageError(`filesystem type '${type}' is not razorfs's (razorfs or fuse.razorfs)`)
  }

  return {positionals, set, values}
}

/** The two positionals, both given and not empty. */
function twoPaths(positionals: string[], names: [string, string]): [string, string] {
  if (positionals.length > 2) throw new HelperUsageError(`unexpected argument '${positionals[2]}'`)
  for (const [i, name] of names.entries()) {
    if (positionals[i] === undefined || positionals[i] === '') throw new HelperUsageError(`give ${names.join(' and ')} (${name} is missing)`)
  }

  return [positionals[0], positionals[1]]
}

/**
 * `SOURCE DIR [-sfnv] [-N NS] [-o OPTS] [-t TYPE]`, as mount(8) and mount.fuse3 call a helper, into
 * what razorfs mount is to do. fstab's own options are dropped; every other one must be razorfs's
 * (mount-options.ts), else HelperUsageError names it; with -s (sloppy) an unknown one is dropped.
 * `razorfs#SOURCE` (the old fstab form) is SOURCE.
 */
export function parseMountRequest(argv: string[]): MountRequest {
  const {positionals, set, values} = scan(argv, 'sfnv', 'otN')
  const [given, mountpoint] = twoPaths(positionals, ['SOURCE (the data dir)', 'MOUNTPOINT'])
  const source = given.startsWith('razorfs#') ? given.slice('razorfs#'.length) : given
  if (source === '') throw new HelperUsageError('SOURCE is empty after razorfs#; give the data dir')
  const listed = (values.get('o') ?? []).flatMap(o => o.split(','))
  const options: string[] = []
  const dropped: string[] = []
  for (const option of listed.map(o => o.trim()).filter(o => o !== '')) {
    if (isFstabOnly(option) || (set.has('s') && !known(option))) dropped.push(option)
    else options.push(option)
  }

  try {
    parseMountOptions(options.join(','))
  } catch (error) {
    if (error instanceof MountOptionError) throw new HelperUsageError(error.message)
    throw error
  }

  return {source, mountpoint, options, dropped, fake: set.has('f'), verbose: set.has('v')}
}

/** Does razorfs take `option` (on its own)? */
function known(option: string): boolean {
  try {
    parseMountOptions(option)
    return true
  } catch {
    return false
  }
}

/** The arguments of the `razorfs mount` (detached) a request runs. */
export function mountCommand(request: MountRequest): string[] {
  const options = request.options.length > 0 ? ['-o', request.options.join(',')] : []
  return ['mount', '--data-dir', request.source, ...options, request.mountpoint]
}

export interface UnmountRequest {
  mountpoint: string
  lazy: boolean
  force: boolean
  verbose: boolean
}

/** `DIR [-flnrv] [-N NS] [-t TYPE]`, as umount(8) calls a helper. -n and -r change nothing here. */
export function parseUnmountRequest(argv: string[]): UnmountRequest {
  const {positionals, set} = scan(argv, 'flnrv', 'tN')
  if (positionals.length > 1) throw new HelperUsageError(`unexpected argument '${positionals[1]}'`)
  if (positionals[0] === undefined || positionals[0] === '') throw new HelperUsageError('give the MOUNTPOINT')
  // umount(8) does not call a helper for --fake: -f is its --force.
  return {mountpoint: positionals[0], lazy: set.has('l'), force: set.has('f'), verbose: set.has('v')}
}

/** The arguments of the `razorfs umount` a request runs. */
export function unmountCommand(request: UnmountRequest): string[] {
  return ['umount', ...(request.lazy ? ['-l'] : []), ...(request.force ? ['--force'] : []), request.mountpoint]
}

/** bin/run.js, which the helpers run (this file runs from dist/src/fuse/). */
const RUN_JS = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))

/** Run `razorfs ARGS` to completion, its stderr on ours, its stdout shown only if `verbose`. */
function runRazorfs(args: string[], verbose: boolean, prog: string): number {
  if (verbose) process.stderr.write(`${prog}: razorfs ${args.map(a => (/^[\w./=,:@+-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')}\n`)
  const result = spawnSync(process.execPath, [RUN_JS, ...args], {stdio: ['ignore', verbose ? 'inherit' : 'ignore', 'inherit']})
  if (result.error) {
    process.stderr.write(`${prog}: running ${RUN_JS}: ${result.error.message}\n`)
    return MOUNT_EXIT.FAILURE
  }

  return result.status ?? MOUNT_EXIT.FAILURE
}

/** Usage errors are one line and exit 1; anything else thrown is a bug and propagates. */
function guarded(prog: string, body: () => number): number {
  try {
    return body()
  } catch (error) {
    if (!(error instanceof HelperUsageError)) throw error
    process.stderr.write(`${prog}: ${error.message}\n`)
    return MOUNT_EXIT.USAGE
  }
}

/**
 * mount.razorfs (and `razorfs SOURCE DIR -o OPTS` from mount.fuse3): mount, detached, and return
 * once the mount is live, quietly. Returns mount(8)'s exit code: 0, 1 (wrong invocation), 32.
 */
export function runMountHelper(argv: string[], prog: string): number {
  return guarded(prog, () => {
    const request = parseMountRequest(argv)
    if (request.verbose && request.dropped.length > 0) process.stderr.write(`${prog}: ignoring ${request.dropped.join(',')}\n`)
    if (request.fake) return MOUNT_EXIT.OK
    const status = runRazorfs(mountCommand(request), request.verbose, prog)
    if (status === 0) return MOUNT_EXIT.OK
    return status === RAZORFS_USAGE ? MOUNT_EXIT.USAGE : MOUNT_EXIT.FAILURE
  })
}

/**
 * umount.fuse.razorfs: unmount and wait for the clean close (razorfs umount), whose exit codes
 * are umount(8)'s already (0, 1, 32; its usage error 16 becomes 1).
 */
export function runUnmountHelper(argv: string[], prog: string): number {
  return guarded(prog, () => {
    const request = parseUnmountRequest(argv)
    const status = runRazorfs(unmountCommand(request), request.verbose, prog)
    return status === RAZORFS_USAGE ? MOUNT_EXIT.USAGE : status
  })
}
