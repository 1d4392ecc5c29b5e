/**
 * Real mounts for tests: `razorfs mount -f` runs as a child process (the test process must never
 * serve the mount it uses: it would deadlock on its own requests), and the test talks to the
 * mountpoint through node:fs and child processes.
 */
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {mountPoints} from '../../src/fuse/mountinfo.js'
import {STATUS_NAME, type ServerStatus} from '../../src/fuse/status.js'
import {RUN_JS} from './cli.js'

export interface Mounted {
  dataDir: string
  mnt: string
  proc: ChildProcess
  /** Everything the server printed so far. */
  output: () => string
  /** What the server printed on stdout only. */
  stdout: () => string
  /** Send a signal and wait for the server to exit; returns its exit code. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
  /** kill -9 the server and clean up the dead mount (what a crash leaves). */
  crash: () => Promise<void>
}

export interface MountOptions {
  dataDir: string
  /** Mount the volume on PostgreSQL at this URL (--meta) instead of the image of dataDir. */
  meta?: string
  mnt: string
  /** -o options */
  options?: string
  extraArgs?: string[]
  /** A command that runs the server on another host, e.g. `nsenter --net=... --` (it must exec, keeping the pid). */
  prefix?: string[]
}

/** Is `mnt` in /proc/self/mountinfo? */
export function isMounted(mnt: string): boolean {
  return mountPoints().has(path.resolve(mnt))
}

/** Unmount whatever is (or was) mounted on `mnt`, dead or alive. */
export function cleanupMount(mnt: string): void {
  for (let i = 0; i < 20 && isMounted(mnt); i++) {
    spawnSync('fusermount3', ['-u', '-z', mnt], {stdio: 'ignore'})
    if (isMounted(mnt)) spawnSync('umount', ['-l', mnt], {stdio: 'ignore'})
  }
}

/** Start `razorfs mount -f` and wait for its "mounted" line. */
export async function mount(opts: MountOptions): Promise<Mounted> {
  fs.mkdirSync(opts.mnt, {recursive: true})
  const volume = opts.meta === undefined ? ['--data-dir', opts.dataDir] : ['--meta', opts.meta]
  const args = [RUN_JS, 'mount', '-f', ...volume, ...(opts.options ? ['-o', opts.options] : []), ...(opts.extraArgs ?? []), opts.mnt]
  const [file, argv] = opts.prefix === undefined ? [process.execPath, args] : [opts.prefix[0], [...opts.prefix.slice(1), process.execPath, ...args]]
  const proc = spawn(file, argv, {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, NO_COLOR: '1'}})
  let out = ''
  let stdout = ''
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString()
    stdout += d.toString()
  })
  proc.stderr!.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const exited = new Promise<number | null>(resolve =>
    proc.on('exit', (code, signal) => {
      // A server that dies by a signal (or fails) says why in the test output, not just "null".
      if (code !== 0 && signal !== 'SIGKILL') process.stderr.write(`razorfs mount on ${opts.mnt} exited with ${code ?? signal}; its output:\n${out}\n`)
      resolve(code)
    }),
  )
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mount did not come up in 30 s:\n${out}`)), 30_000)
    const check = setInterval(() => {
      if (out.includes('mounted ') && isMounted(opts.mnt)) {
        clearInterval(check)
        clearTimeout(timer)
        resolve()
      }
    }, 20)
    void exited.then(code => {
      clearInterval(check)
      clearTimeout(timer)
      reject(new Error(`mount exited with ${code}:\n${out}`))
    })
  })
  return {
    dataDir: opts.dataDir,
    mnt: opts.mnt,
    proc,
    output: () => out,
    stdout: () => stdout,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
      const code = await exited
      cleanupMount(opts.mnt)
      return code
    },
    crash: async () => {
      proc.kill('SIGKILL')
      await exited
      cleanupMount(opts.mnt)
    },
  }
}

/** A temp dir holding `data/` and `mnt/`, removed (after unmounting) by `remove`. */
export function mountDirs(prefix = 'razorfs-mount-'): {root: string; dataDir: string; mnt: string; remove: () => void} {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  const dataDir = path.join(root, 'data')
  const mnt = path.join(root, 'mnt')
  fs.mkdirSync(mnt)
  return {
    root,
    dataDir,
    mnt,
    remove: () => {
      cleanupMount(mnt)
      fs.rmSync(root, {recursive: true, force: true})
    },
  }
}

/** Wait until `cond()` holds, polling every 25 ms; throws after `ms` naming `what`. */
export async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

/** The status file of the server of `dataDir`, once one has been written after this call (its counters include everything before). */
export async function freshStatus(dataDir: string): Promise<ServerStatus> {
  const since = Date.now()
  let status: ServerStatus | undefined
  await until('a fresh status file', () => {
    try {
      status = JSON.parse(fs.readFileSync(path.join(dataDir, STATUS_NAME), 'utf8')) as ServerStatus
      return Date.parse(status.updatedAt) >= since
    } catch {
      return false
    }
  })
  return status!
}
