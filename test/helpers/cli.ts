import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

/** The CLI's entry point; this file runs from dist/test/helpers/. */
export const RUN_JS = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))

/** bin/run.js without the help cache: oclif itself, always (./oclif-run.ts). */
export const OCLIF_RUN_JS = fileURLToPath(new URL('./oclif-run.js', import.meta.url))

export interface CliResult {
  status: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/**
 * Runs `node bin/run.js ...args` to completion, with no stdin (or `input` on a pipe), no colours,
 * no DEBUG, and RAZORFS_DATA_DIR pointing at `env.RAZORFS_DATA_DIR` or a path that does not exist
 * (so that no test ever touches the real default data dir; `{RAZORFS_DATA_DIR: undefined}` unsets it).
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, input?: Buffer): CliResult {
  return spawnCli([process.execPath, RUN_JS, ...args], env, input)
}

/** The uid and gid of `nobody`, whom runCliAsNobody runs as. */
export const NOBODY = 65534

/**
 * runCli as another user, `nobody` (setpriv, util-linux): only root can do it; undefined otherwise.
 * HOME stays this process's unless `env` sets it.
 */
export function runCliAsNobody(args: string[], env: NodeJS.ProcessEnv = {}): CliResult | undefined {
  if (process.getuid?.() !== 0) return undefined
  return spawnCli(['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, RUN_JS, ...args], env)
}

function spawnCli(command: string[], env: NodeJS.ProcessEnv, input?: Buffer): CliResult {
  const result = spawnSync(command[0], command.slice(1), {
    encoding: 'utf8',
    env: cliEnv(env),
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    input,
    timeout: 60_000,
  })
  if (result.error) throw result.error
  return {signal: result.signal, status: result.status, stderr: result.stderr, stdout: result.stdout}
}

/** The environment of a CLI run: this process's, less what changes the output, plus `env`. */
function cliEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = {...process.env, NO_COLOR: '1', RAZORFS_DATA_DIR: '/nonexistent/razorfs-test'}
  delete base.DEBUG
  delete base.FORCE_COLOR
  delete base.RAZORFS_CONTENT_TYPE
  delete base.RAZORFS_CACHE_DIR
  delete base.OCLIF_COLUMNS
  return {...base, ...env}
}

/** `text` quoted for sh. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`
}

/**
 * Runs `node bin/run.js ...args` on a pseudo-terminal (util-linux's `script`): its stdin, stdout
 * and stderr are all the terminal, whose output (both streams, as a terminal shows them, with
 * "\r\n" line ends and escape sequences) is `output`. The environment is runCli's.
 */
export function runInPty(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  {columns, entry = RUN_JS}: {columns?: number; entry?: string} = {},
): {status: number | null; output: string} {
  const command = [process.execPath, entry, ...args].map(shellQuote).join(' ')
  const sized = columns === undefined ? command : `stty cols ${columns} rows 50 && ${command}`
  const result = spawnCli(['script', '-qec', sized, '/dev/null'], env)
  return {status: result.status, output: result.stdout}
}

/** runCli, but through oclif-run.js: what oclif itself prints, without razorfs's help cache. */
export function runOclif(args: string[], env: NodeJS.ProcessEnv = {}): CliResult {
  return spawnCli([process.execPath, OCLIF_RUN_JS, ...args], env)
}

let loadHook: string | undefined

/**
 * runCli, and the URLs of every ES module the run loaded (through a loader hook: all of dist, and
 * the entry module of each package imported from ESM, such as `@oclif/core/execute`).
 */
export function runLogged(args: string[], env: NodeJS.ProcessEnv = {}): CliResult & {loaded: string[]} {
  if (loadHook === undefined) {
    const dir = tempDir('razorfs-load-hook-')
    process.on('exit', dir.remove)
    writeFileSync(
      join(dir.dir, 'hooks.mjs'),
      [
        "import {appendFileSync} from 'node:fs'",
        'export async function load(url, context, next) {',
        '  appendFileSync(process.env.RAZORFS_TEST_LOAD_LOG, `${url}\\n`)',
        '  return next(url, context)',
        '}',
      ].join('\n'),
    )
    loadHook = join(dir.dir, 'register.mjs')
    writeFileSync(loadHook, `import {register} from 'node:module'\nregister(${JSON.stringify(pathToFileURL(join(dir.dir, 'hooks.mjs')).href)})\n`)
  }
  const log = join(tmpdir(), `razorfs-load-${process.pid}-${Math.random().toString(36).slice(2)}.log`)
  appendFileSync(log, '')
  try {
    const result = spawnCli([process.execPath, '--import', pathToFileURL(loadHook).href, RUN_JS, ...args], {
      ...env,
      RAZORFS_TEST_LOAD_LOG: log,
    })
    return {...result, loaded: [...new Set(readFileSync(log, 'utf8').split('\n').filter(Boolean))]}
  } finally {
    rmSync(log, {force: true})
  }
}

/** sha256 of every file under `dir`, by relative path. */
export function hashTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (sub: string): void => {
    for (const e of readdirSync(join(dir, sub), {withFileTypes: true})) {
      const rel = join(sub, e.name)
      if (e.isDirectory()) walk(rel)
      else
        out[rel] = createHash('sha256')
          .update(readFileSync(join(dir, rel)))
          .digest('hex')
    }
  }

  walk('')
  return out
}

/** A fresh temporary directory, removed by the returned function. */
export function tempDir(prefix = 'razorfs-test-'): {dir: string; remove: () => void} {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return {dir, remove: () => rmSync(dir, {force: true, recursive: true})}
}

/** The lines of a stream's text, without the empty last one. */
export function lines(text: string): string[] {
  return text.split('\n').filter((line, i, all) => line !== '' || i < all.length - 1)
}

/** Lines that look like a JavaScript stack frame ("    at f (file.js:1:2)"). */
export function stackLines(text: string): string[] {
  return text.split('\n').filter(line => /^\s+at /.test(line))
}

/** The command names a root help text lists under COMMANDS, in its order. */
export function listedCommands(help: string): string[] {
  return [...(help.split(/^COMMANDS$/m)[1] ?? '').matchAll(/^ {2}(\S+)/gm)].map(match => match[1])
}
