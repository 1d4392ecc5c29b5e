/**
 * `razorfs mount` without -f: the command starts `razorfs mount -f --detached` as a server in a
 * session of its own and returns once the mount is live (detach), with what the server said
 * until then on its own stderr: warnings such as "recovered N transactions", or the error that
 * stopped it. The server's log, DATA-DIR/razorfs.log, is written by the server alone, and only
 * once it serves: a second `mount` of the same image that fails (the image is in use) writes
 * nothing into the log of the server that holds it. (A mount of a volume on PostgreSQL has no data
 * dir: its log is in the mount's own directory, serve.ts mountHome.)
 *
 * Between the two, a pipe (the server's fd 3) carries JSON lines: `{"stream", "text"}` for each
 * line the server writes on stdout or stderr before it is ready, then `{"ready": true}`.
 * From then on (daemonOutput) its lines go to the log, each with a timestamp and its pid.
 */
import {spawn} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {MountError} from './serve.js'

export const LOG_NAME = 'razorfs.log'
/**
 * The environment variable that hands a detached server the URL of its volume on PostgreSQL with
 * its password: a command line is world-readable in /proc, an environment is not.
 */
export const META_ENV = 'RAZORFS_MOUNT_META'
/** The server's end of the pipe to the command that started it. */
const READY_FD = 3
/** How long the command waits for the mount to come up. */
const DETACH_TIMEOUT_MS = 30_000

type Line = {stream: 'stdout' | 'stderr'; text: string}
type Message = Line | {ready: true}

/** A failed detached mount: the server's last line, with its exit code (the command exits with it). */
export class DetachError extends MountError {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message)
  }
}

/**
 * Start the server (`razorfs mount -f --detached ARGS`) and return once it says the mount is
 * live, printing its warnings with `warn`; or throw what it said before it exited. The mountpoint
 * and the data dir have been checked (prepared) by the caller; `home` (the data dir, or serve.ts
 * mountHome) gets the log, `env` goes to the server's environment.
 */
export async function detach(
  args: string[],
  home: string,
  warn: (line: string) => void,
  env: Record<string, string> = {},
): Promise<{pid: number; log: string}> {
  const log = path.join(home, LOG_NAME)
  // The server's fds 1 and 2: what it writes past node (libfuse, a fatal error) lands in the log.
  const fd = fs.openSync(log, 'a', 0o600)
  const bin = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))
  const child = spawn(process.execPath, [bin, 'mount', '-f', '--detached', ...args], {
    detached: true,
    stdio: ['ignore', fd, fd, 'pipe'],
    env: {...process.env, ...env},
  })
  fs.closeSync(fd)
  const pipe = child.stdio[READY_FD] as NodeJS.ReadableStream & {destroy(): void}
  const said: Line[] = []
  let pending = ''
  let ready = false
  pipe.setEncoding('utf8')
  pipe.on('data', (chunk: string) => {
    pending += chunk
    let nl: number
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl)
      pending = pending.slice(nl + 1)
      try {
        const message = JSON.parse(line) as Message
        if ('ready' in message) ready = true
        else said.push(message)
      } catch {
        // not ours: ignored
      }
    }
  })
  let closed = false
  pipe.on('error', () => {})
  pipe.on('close', () => {
    closed = true
  })
  let exited: number | null | undefined
  child.on('exit', code => {
    exited = code
  })

  const deadline = Date.now() + DETACH_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (ready) {
      pipe.destroy()
      child.unref()
      for (const m of said) if (m.stream === 'stderr') warn(m.text)
      return {pid: child.pid!, log}
    }

    if (exited !== undefined) {
      for (let i = 0; i < 50 && !closed; i++) await new Promise(resolve => setTimeout(resolve, 20)) // the pipe's last data
      const last = said
        .filter(m => m.stream === 'stderr')
        .at(-1)
        ?.text.replace(/^razorfs: /, '')
      throw new DetachError(last || `the server exited with status ${exited}; see ${log}`, exited || 1)
    }

    await new Promise(resolve => setTimeout(resolve, 20))
  }

  child.kill('SIGTERM')
  throw new DetachError(`the mount did not come up within ${DETACH_TIMEOUT_MS / 1000} s; see ${log}`, 1)
}

/**
 * The server's side (`mount -f --detached`): from now on its stdout and stderr lines go to the
 * command that started it, and are kept; `ready()` writes the kept lines to the log (with the
 * time each was written), tells the command and closes the pipe. After that every line goes to
 * the log, as `ISO-TIME [PID] LINE`.
 */
export function daemonOutput(home: string): {ready(): void} {
  const kept: string[] = []
  let logFd: number | undefined
  const stamp = (text: string) => `${new Date().toISOString()} [${process.pid}] ${text}\n`
  const send = (message: Message) => {
    try {
      fs.writeSync(READY_FD, `${JSON.stringify(message)}\n`)
    } catch {
      // the command is gone: nothing to tell
    }
  }

  const line = (stream: 'stdout' | 'stderr', text: string) => {
    if (logFd === undefined) {
      send({stream, text})
      kept.push(stamp(text))
    } else {
      try {
        fs.writeSync(logFd, stamp(text))
      } catch {
        // a full disk: the line is lost, the server goes on
      }
    }
  }

  for (const stream of ['stdout', 'stderr'] as const) {
    let partial = ''
    const target = process[stream]
    target.write = ((chunk: string | Uint8Array, encoding?: BufferEncoding | ((err?: Error | null) => void), cb?: (err?: Error | null) => void) => {
      partial += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString()
      let nl: number
      while ((nl = partial.indexOf('\n')) >= 0) {
        line(stream, partial.slice(0, nl))
        partial = partial.slice(nl + 1)
      }

      const done = typeof encoding === 'function' ? encoding : cb
      done?.()
      return true
    }) as typeof target.write
  }

  return {
    ready() {
      if (logFd !== undefined) return
      logFd = fs.openSync(path.join(home, LOG_NAME), 'a', 0o600)
      try {
        fs.writeSync(logFd, kept.join(''))
      } catch {
        // a full disk: the lines are lost, the server goes on
      }

      send({ready: true})
      try {
        fs.closeSync(READY_FD)
      } catch {
        // already closed
      }
    },
  }
}
