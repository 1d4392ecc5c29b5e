/**
 * The help cache: what oclif printed for a help request, kept so that the next identical request
 * is answered by bin/run.js without loading oclif (whose modules and config cost ~0.18 s of the
 * ~0.29 s `razorfs --help` took; node itself is ~0.1 s).
 *
 * A help request is `razorfs`, `razorfs --help`/`-h`/`help`, `razorfs CMD --help`/`-h` or
 * `razorfs help CMD`. Its text depends on the subject (root or CMD), the width oclif wraps to and
 * whether oclif colours it (bold headings, underlined flag values on a terminal), and on the build:
 * package.json, oclif.manifest.json and the node version (the root help prints it). A cached text
 * is keyed by subject, width and colour, and carries an id of the build; any other difference
 * means a miss, and a miss runs oclif as before and stores what it printed.
 *
 * Two places: `dist/help/` (the build's seed: every subject, plain, 80 columns, as in a pipe) and
 * `<cache dir>/help/<hash of the package root>/` (filled on misses: a terminal's width). The cache
 * dir is oclif's: `$RAZORFS_CACHE_DIR`, else `$XDG_CACHE_HOME/razorfs-cli`, else
 * `~/.cache/razorfs-cli` (never the data dir).
 *
 * This module is loaded on every run: it imports no razorfs module and, unless the output is a
 * terminal or FORCE_COLOR is set, nothing outside node.
 */
import {lstatSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {homedir} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {crc32} from 'node:zlib'

/** A help request and where its text is (or is to be) cached. */
export interface HelpRequest {
  /** '' for the root help, else the command. */
  subject: string
  width: number
  colour: boolean
  /** The build the text belongs to (first line of a cache file). */
  id: string
  /** The package root (where package.json is). */
  root: string
}

const HELP_FLAGS = new Set(['--help', '-h'])
const COMMAND_WORD = /^[a-z][a-z0-9-]*$/

/** The subject of `argv` if it is a help request this cache answers ('' for the root), else undefined. */
export function helpSubject(argv: string[]): string | undefined {
  if (argv.length === 0) return ''
  if (argv.length === 1 && (HELP_FLAGS.has(argv[0]) || argv[0] === 'help')) return ''
  if (argv.length !== 2) return undefined
  if (argv[0] === 'help' && COMMAND_WORD.test(argv[1])) return argv[1]
  if (HELP_FLAGS.has(argv[1]) && COMMAND_WORD.test(argv[0]) && argv[0] !== 'help') return argv[0]
  return undefined
}

/**
 * The width oclif wraps help to (its `stdtermwidth`): `OCLIF_COLUMNS` if it is a non-zero number,
 * else 80 off a terminal, else the terminal's width, at least 40 (80 if the terminal says < 1).
 */
export function helpWidth(): number {
  const columns = Number.parseInt(process.env.OCLIF_COLUMNS ?? '', 10)
  if (columns) return columns
  if (!process.stdout.isTTY) return 80
  const [width] = process.stdout.getWindowSize()
  if (width < 1) return 80
  return Math.max(width, 40)
}

/**
 * Whether oclif's help would be coloured, or undefined if this cache cannot tell (a user theme may
 * colour it). oclif colours only when supports-color says yes for both stdout and stderr, which it
 * never does for a stream that is not a terminal unless FORCE_COLOR (or Azure's TF_BUILD and
 * AGENT_NAME) is set; otherwise the answer is asked of the very modules oclif asks.
 */
export function helpColour(env: NodeJS.ProcessEnv = process.env): boolean | undefined {
  const forced = 'FORCE_COLOR' in env || ('TF_BUILD' in env && 'AGENT_NAME' in env)
  if (!forced && !(process.stdout.isTTY && process.stderr.isTTY)) return false
  const oclifRequire = createRequire(createRequire(import.meta.url).resolve('@oclif/core'))
  const supports = oclifRequire('supports-color') as {stdout: unknown; stderr: unknown}
  const ansisModule = oclifRequire('ansis') as {default?: {bold: (text: string) => string}; bold: (text: string) => string}
  const ansis = ansisModule.default ?? ansisModule
  const colour = Boolean(supports.stdout) && Boolean(supports.stderr) && ansis.bold('x') !== 'x'
  if (colour && themeFiles(env).some(exists)) return undefined
  return colour
}

/** Where oclif may find a user's theme.json (its config dir, by each rule it may use). */
function themeFiles(env: NodeJS.ProcessEnv): string[] {
  const dirs = [join(env.HOME || homedir(), '.config', 'razorfs-cli')]
  if (env.XDG_CONFIG_HOME) dirs.push(join(env.XDG_CONFIG_HOME, 'razorfs-cli'))
  if (env.RAZORFS_CONFIG_DIR) dirs.push(env.RAZORFS_CONFIG_DIR)
  return dirs.map(dir => join(dir, 'theme.json'))
}

function exists(file: string): boolean {
  try {
    statSync(file)
    return true
  } catch {
    return false
  }
}

/**
 * The id of the build at `root`: node version and platform, and checksums of package.json and
 * oclif.manifest.json; undefined without a manifest (oclif then reads the commands themselves).
 */
export function buildId(root: string): string | undefined {
  try {
    const pkg = crc32(readFileSync(join(root, 'package.json')))
    const manifest = crc32(readFileSync(join(root, 'oclif.manifest.json')))
    return `razorfs-help 1 ${process.version} ${process.platform}-${process.arch} ${pkg} ${manifest}`
  } catch {
    return undefined
  }
}

/** The help request `argv` makes of the package at `root`, or undefined if the cache cannot answer it. */
export function helpRequest(argv: string[], root: string, env: NodeJS.ProcessEnv = process.env): HelpRequest | undefined {
  const subject = helpSubject(argv)
  if (subject === undefined || env.DEBUG) return undefined
  const id = buildId(root)
  if (id === undefined) return undefined
  const colour = helpColour(env)
  if (colour === undefined) return undefined
  return {subject, width: helpWidth(), colour, id, root}
}

/** The build's seed directory and the user's cache directory for the package at `root`. */
export function helpDirs(root: string, env: NodeJS.ProcessEnv = process.env): {seed: string; user: string} {
  const cacheDir = env.RAZORFS_CACHE_DIR || join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'razorfs-cli')
  return {seed: join(root, 'dist', 'help'), user: join(cacheDir, 'help', crc32(resolve(root)).toString(16))}
}

/** The file name of a request's text in either directory. */
export function helpFileName(request: Pick<HelpRequest, 'colour' | 'subject' | 'width'>): string {
  return `${request.width}${request.colour ? 'c' : ''}-${request.subject || 'razorfs'}.txt`
}

/**
 * Is `dir` (the user's cache) this user's own, as are the directories above it up to the cache
 * dir? Another user's (root's `sudo razorfs --help` with the user's HOME) is neither read nor
 * written: its texts could be anything, and its names could lead anywhere.
 */
function ownDir(dir: string): boolean {
  try {
    const uid = process.geteuid?.()
    for (const d of [dir, dirname(dir), dirname(dirname(dir))]) {
      const st = lstatSync(d)
      if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) return false
    }

    return true
  } catch {
    return false
  }
}

/** The cached text of `request`, or undefined. */
export function cachedHelp(request: HelpRequest, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dirs = helpDirs(request.root, env)
  for (const dir of [dirs.seed, dirs.user]) {
    if (dir === dirs.user && !ownDir(dir)) continue
    let content: string
    try {
      content = readFileSync(join(dir, helpFileName(request)), 'utf8')
    } catch {
      continue
    }
    const newline = content.indexOf('\n')
    if (content.slice(0, newline) === request.id) return content.slice(newline + 1)
  }
  return undefined
}

/** Stores `text` as the help of `request` in `dir`, atomically; false if it could not (it is a cache). */
export function storeHelp(dir: string, request: HelpRequest, text: string): boolean {
  try {
    mkdirSync(dir, {recursive: true, mode: 0o700})
    if (!ownDir(dir)) return false
    const file = join(dir, helpFileName(request))
    const temporary = `${file}.${process.pid}.tmp`
    // 'wx': never through a name someone else put there (a symlink included).
    writeFileSync(temporary, `${request.id}\n${text}`, {flag: 'wx', mode: 0o600})
    renameSync(temporary, file)
    return true
  } catch {
    return false
  }
}

/**
 * Runs `run` (oclif answering `request`) and stores what it printed on stdout in the user's cache,
 * if it succeeded and printed nothing on stderr.
 */
export async function runAndRemember(request: HelpRequest, run: () => Promise<unknown>): Promise<void> {
  const out: string[] = []
  let failed = false
  const stdoutWrite = process.stdout.write
  const stderrWrite = process.stderr.write
  process.stdout.write = function (this: NodeJS.WriteStream, chunk: string | Uint8Array, ...rest: unknown[]) {
    out.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'))
    return (stdoutWrite as (...args: unknown[]) => boolean).call(this, chunk, ...rest)
  } as typeof process.stdout.write
  process.stderr.write = function (this: NodeJS.WriteStream, ...args: unknown[]) {
    failed = true
    return (stderrWrite as (...args: unknown[]) => boolean).apply(this, args)
  } as typeof process.stderr.write
  try {
    await run()
  } finally {
    process.stdout.write = stdoutWrite
    process.stderr.write = stderrWrite
  }
  if (!failed && !process.exitCode && out.length > 0) storeHelp(helpDirs(request.root).user, request, out.join(''))
}
