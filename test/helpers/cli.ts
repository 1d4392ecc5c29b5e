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
 * (so that no test ever touches the real default data dir).
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, input?: Buffer): CliResult {
  const base: NodeJS.ProcessEnv = {...process.env, NO_COLOR: '1', RAZORFS_DATA_DIR: '/nonexistent/razorfs-test'}
  delete base.DEBUG
  delete base.FORCE_COLOR
  delete base.RAZORFS_CONTENT_TYPE
  const result = spawnSync(process.execPath, [RUN_JS, ...args], {
    encoding: 'utf8',
    env: {...base, ...env},
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    input,
    timeout: 60_000,
  })
  if (result.error) throw result.error
  return {signal: result.signal, status: result.status, stderr: result.stderr, stdout: result.stdout}
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
  return text.split('\n').filter((line) => /^\s+at /.test(line))
}
