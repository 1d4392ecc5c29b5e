/**
 * The server under test, `razorfs mount -f` of an image (a data dir) or of a volume on
 * PostgreSQL (`--meta URL`), as a child process of the checker; what it is doing (from /proc) so a
 * kill can be aimed; and the other external tools the harnesses run.
 */
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import fs from 'node:fs'
import {fileURLToPath} from 'node:url'

import {isPgUrl} from '../../src/volume-url.js'
import {RUN_JS} from '../helpers/cli.js'
import {cleanupMount, isMounted} from '../helpers/mount.js'

export {cleanupMount, isMounted}

export const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

// x86_64 system call numbers: what a server thread is blocked in when it syncs.
const SYS_FSYNC = 74
const SYS_FDATASYNC = 75
const SYS_MSYNC = 26
const SYS_SYNCFS = 306

export interface ServerEnv {
  /** mount --wal-limit: checkpoint threshold in bytes (undefined: the default; images only). */
  walLimit?: number
  /**
   * Durability-breaking switches (self-tests only, comma-separated: see src/storage/debug.ts): the
   * server then runs through broken-server.js, which turns them on before `mount -f`.
   */
  breakSwitch?: string
  /**
   * Content-file descriptors the server keeps open (undefined: 256). Fewer make the workload's
   * files be evicted, and synced in the background, all the time; the server then runs through
   * broken-server.js too, with the tuning switch `content-fds=N` alone (nothing broken).
   */
  contentFds?: number
}

/** The test-only entry that breaks durability on purpose; this file runs from dist/test/crash/. */
const BROKEN_SERVER_JS = fileURLToPath(new URL('broken-server.js', import.meta.url))

export class Server {
  readonly proc: ChildProcess
  output = ''
  readonly exited: Promise<number | string>
  /** When it was started (Date.now()): its connections to PostgreSQL are the ones made since. */
  readonly startedMs: number
  private exitStatus: number | string | undefined

  constructor(
    /** The data dir of an image, or the URL of a volume on PostgreSQL. */
    readonly volume: string,
    readonly mnt: string,
    env: ServerEnv,
  ) {
    const e: NodeJS.ProcessEnv = {...process.env, NO_COLOR: '1'}
    delete e.DEBUG
    fs.mkdirSync(mnt, {recursive: true})
    const tuning = env.walLimit === undefined ? [] : ['--wal-limit', String(env.walLimit)]
    const switches = [env.breakSwitch, env.contentFds === undefined ? undefined : `content-fds=${env.contentFds}`].filter(s => s !== undefined)
    const entry = switches.length === 0 ? [RUN_JS] : [BROKEN_SERVER_JS, switches.join(',')]
    const source = isPgUrl(volume) ? ['--meta', volume] : ['--data-dir', volume]
    this.startedMs = Date.now()
    this.proc = spawn(process.execPath, [...entry, 'mount', '-f', ...source, ...tuning, mnt], {stdio: ['ignore', 'pipe', 'pipe'], env: e})
    this.proc.stdout!.on('data', (d: Buffer) => {
      this.output += d.toString()
    })
    this.proc.stderr!.on('data', (d: Buffer) => {
      this.output += d.toString()
    })
    this.exited = new Promise(resolve => {
      this.proc.on('exit', (code, signal) => {
        this.exitStatus = code ?? `signal ${signal}`
        resolve(this.exitStatus)
      })
    })
  }

  get pid(): number {
    return this.proc.pid!
  }

  get alive(): boolean {
    return this.exitStatus === undefined
  }

  /** Wait for the "mounted" line and the mount; throws with the server's output if it fails. */
  async waitMounted(ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms
    while (!(this.output.includes('mounted ') && isMounted(this.mnt))) {
      if (!this.alive) throw new Error(`the server exited (${this.exitStatus}) before mounting:\n${this.output.trim()}`)
      if (Date.now() > deadline) throw new Error(`the mount did not come up within ${ms} ms:\n${this.output.trim()}`)
      await sleep(10)
    }
  }

  /** Transactions the server said it recovered at startup. */
  recovered(): number {
    return Number(/recovered (\d+) transactions/.exec(this.output)?.[1] ?? 0)
  }

  signal(sig: NodeJS.Signals): void {
    if (this.alive) this.proc.kill(sig)
  }

  /** kill -9 and clean up the dead mount. */
  async crash(): Promise<void> {
    this.signal('SIGKILL')
    await this.exited
    cleanupMount(this.mnt)
  }

  /** SIGTERM: a clean unmount; returns the exit status. */
  async stop(ms = 30_000): Promise<number | string> {
    this.signal('SIGTERM')
    const timer = setTimeout(() => this.signal('SIGKILL'), ms)
    const status = await this.exited
    clearTimeout(timer)
    cleanupMount(this.mnt)
    return status
  }

  /** Is one of the server's threads inside fsync, fdatasync or msync right now? */
  inSync(): boolean {
    try {
      for (const t of fs.readdirSync(`/proc/${this.pid}/task`)) {
        const nr = Number(fs.readFileSync(`/proc/${this.pid}/task/${t}/syscall`, 'utf8').split(' ')[0])
        if (nr === SYS_FSYNC || nr === SYS_FDATASYNC || nr === SYS_MSYNC || nr === SYS_SYNCFS) return true
      }
    } catch {
      // the process is gone, or a thread ended while we looked
    }

    return false
  }

  /** Has the server opened a file of its data dir (the image open / recovery has begun)? */
  opensImage(): boolean {
    try {
      for (const fd of fs.readdirSync(`/proc/${this.pid}/fd`)) {
        try {
          if (fs.readlinkSync(`/proc/${this.pid}/fd/${fd}`).startsWith(this.volume + '/')) return true
        } catch {
          // closed meanwhile
        }
      }
    } catch {
      // gone
    }

    return false
  }
}

export type FsckResult = {state: 'clean'} | {state: 'problems'; detail: string} | {state: 'unavailable'; detail: string}

/**
 * `razorfs fsck -n -f --json DIR` (or `--meta URL`): exit 0 and no finding at all is clean; any finding is a problem,
 * even one that leaves the exit status 0 (an orphan: after recovery there must be none). The
 * harnesses run it after recovery (on the image of the running, idle server: -n opens read-only,
 * no lock) and after a clean unmount, never on a crashed image before recovery: see
 * docs/DURABILITY.md. While fsck is not implemented it exits 1 saying so: 'unavailable', never
 * 'clean'.
 */
export function fsck(volume: string): FsckResult {
  const env: NodeJS.ProcessEnv = {...process.env, NO_COLOR: '1'}
  const target = isPgUrl(volume) ? ['--meta', volume] : [volume]
  const res = spawnSync(process.execPath, [RUN_JS, 'fsck', '-n', '-f', '--json', ...target], {encoding: 'utf8', env, timeout: 120_000, maxBuffer: 64 * 2 ** 20})
  const out = `${res.stdout ?? ''}${res.stderr ?? ''}`.trim()
  if (/not implemented yet/.test(out))
    return {
      state: 'unavailable',
      detail:
        out
          .split('\n')
          .find(l => /not implemented/.test(l))
          ?.trim() ?? out,
    }
  let problems: Array<{id: string; message: string}> | undefined
  try {
    problems = (JSON.parse(res.stdout) as {problems: Array<{id: string; message: string}>}).problems
  } catch {
    // not the report: an operational error
  }

  if (res.status === 0 && problems !== undefined && problems.length === 0) return {state: 'clean'}
  const summary =
    problems === undefined
      ? out.slice(0, 2000)
      : problems
          .slice(0, 4)
          .map(p => `${p.id}: ${p.message}`)
          .join('; ')
  return {state: 'problems', detail: `exit ${res.status ?? res.signal}: ${summary}`}
}

/** Run a command to completion; throws with its output if it fails (unless `ok` accepts the status). */
export function run(cmd: string, args: string[], ok: (status: number) => boolean = s => s === 0): {status: number; out: string} {
  const res = spawnSync(cmd, args, {encoding: 'utf8', timeout: 120_000})
  const out = `${res.stdout ?? ''}${res.stderr ?? ''}`.trim()
  if (res.error) throw new Error(`${cmd} ${args.join(' ')}: ${res.error.message}`)
  const status = res.status ?? -1
  if (!ok(status)) throw new Error(`${cmd} ${args.join(' ')} exited ${status}: ${out}`)
  return {status, out}
}
