import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

/** The CLI's entry point; this file runs from dist/test/helpers/. */
export const RUN_JS = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))

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
export function runInPty(args: string[], env: NodeJS.ProcessEnv = {}): {status: number | null; output: string} {
  const command = [process.execPath, RUN_JS, ...args].map(shellQuote).join(' ')
  const result = spawnCli(['script', '-qec', command, '/dev/null'], env)
  return {status: result.status, output: result.stdout}
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
