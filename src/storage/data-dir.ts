import {accessSync, chmodSync, constants as fsConstants, mkdirSync, type Stats, statSync} from 'node:fs'
import {homedir} from 'node:os'
import {isAbsolute, join, resolve} from 'node:path'

import {ImageError} from './errors.js'

/** Where the data dir of an image lives when nothing says otherwise and the caller is root. */
export const ROOT_DATA_DIR = '/var/lib/razorfs'

/** The environment variable that names the data dir when no `--data-dir` flag is given. */
export const DATA_DIR_ENV = 'RAZORFS_DATA_DIR'

/** What `resolveDataDir` reads from the process; tests pass their own. */
export interface DataDirContext {
  env?: NodeJS.ProcessEnv
  /** The effective uid; `undefined` where the platform has none. */
  uid?: number
  /** The home directory (default: `env.HOME`, else `os.homedir()`). */
  home?: string
}

/**
 * The data dir of the image, as an absolute path. The first of these that is set wins:
 * 1. `flag` (the `--data-dir` flag), relative to the working directory;
 * 2. the environment variable `RAZORFS_DATA_DIR` (ignored when empty);
 * 3. `/var/lib/razorfs` when running as root (uid 0);
 * 4. `$XDG_DATA_HOME/razorfs` when `XDG_DATA_HOME` is an absolute path (the XDG spec says to
 *    ignore a relative one);
 * 5. `~/.local/share/razorfs`.
 *
 * Nothing is created or checked here: see `ensureDataDir`.
 * Throws `ImageError('RZ_DATA_DIR')` when `flag` is the empty string.
 */
export function resolveDataDir(flag?: string, ctx: DataDirContext = {}): string {
  const env = ctx.env ?? process.env
  if (flag !== undefined) {
    if (flag === '') throw new ImageError('RZ_DATA_DIR', '--data-dir is empty; give the path of a directory')
    return resolve(flag)
  }

  const fromEnv = env[DATA_DIR_ENV]
  if (fromEnv) return resolve(fromEnv)

  const uid = 'uid' in ctx ? ctx.uid : process.getuid?.()
  if (uid === 0) return ROOT_DATA_DIR

  const xdg = env.XDG_DATA_HOME
  if (xdg && isAbsolute(xdg)) return join(xdg, 'razorfs')

  const home = ctx.home ?? (env.HOME || homedir())
  return join(resolve(home), '.local', 'share', 'razorfs')
}

/**
 * Makes sure `dir` is a directory this process can create files in. When it is absent it is
 * created, with its missing parents, and its mode set to 0700 (explicitly, whatever the umask).
 * An existing directory is left as it is.
 *
 * Throws `ImageError('RZ_DATA_DIR')`, with a one-line message naming `dir`, when the path exists
 * but is not a directory, when a parent is not a directory, when it cannot be created, or when it
 * is not writable and searchable by this process.
 */
export function ensureDataDir(dir: string): void {
  let existed = true
  try {
    if (!statSync(dir).isDirectory()) {
      throw new ImageError('RZ_DATA_DIR', 'exists but is not a directory; the data dir must be a directory', dir)
    }
  } catch (error) {
    if (error instanceof ImageError) throw error
    if (errnoCode(error) !== 'ENOENT') throw dataDirError(error, 'cannot use the data dir', dir)
    existed = false
  }

  if (!existed) {
    try {
      mkdirSync(dir, {mode: 0o700, recursive: true})
      chmodSync(dir, 0o700)
    } catch (error) {
      throw dataDirError(error, 'cannot create the data dir', dir)
    }
  }

  try {
    accessSync(dir, fsConstants.W_OK | fsConstants.X_OK)
  } catch (error) {
    throw dataDirError(error, 'the data dir is not writable by this user', dir)
  }
}

/**
 * Checks that `dir`, the data dir of an image to open, is a directory this process can list and
 * search, so that a missing image is told apart from one it may not see: throws
 * `ImageError('RZ_NO_IMAGE')` ("no such data directory") when `dir` is absent, and
 * `ImageError('RZ_DATA_DIR')` naming the cause (permission denied, with the directory's mode and
 * owner; not a directory; ...) when it cannot be used.
 */
export function checkDataDir(dir: string): void {
  let st: Stats
  try {
    st = statSync(dir)
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') throw new ImageError('RZ_NO_IMAGE', 'no such data directory', dir)
    throw dataDirError(error, 'cannot read the data dir', dir)
  }

  if (!st.isDirectory()) throw new ImageError('RZ_DATA_DIR', 'exists but is not a directory; the data dir must be a directory', dir)
  try {
    accessSync(dir, fsConstants.R_OK | fsConstants.X_OK)
  } catch (error) {
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0')
    throw dataDirError(error, 'cannot read the data dir', dir, `it is mode ${mode}, owned by uid ${st.uid}; this process runs as uid ${process.geteuid?.()}`)
  }
}

function errnoCode(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  return typeof code === 'string' ? code : undefined
}

const REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a parent of it is not a directory',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'name too long',
  EEXIST: 'a file is in the way',
}

function dataDirError(error: unknown, what: string, dir: string, detail?: string): ImageError {
  const code = errnoCode(error)
  const reason = code === undefined ? String((error as Error)?.message ?? error) : `${REASONS[code] ?? 'error'} (${code})`
  return new ImageError('RZ_DATA_DIR', `${what}: ${reason}${detail === undefined ? '' : `; ${detail}`}`, dir)
}
