/**
 * The filesystems a benchmark runs against, and how each is brought up and stopped: a directory
 * of the host filesystem, or a server (the do-nothing filesystems, razorfs) mounted on a
 * mountpoint and watched through /proc.
 */
import {spawn} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

import {mountPoints} from '../../src/fuse/mountinfo.js'
import {paths} from './paths.js'
import {cleanEnv, exec, log, sleep} from './util.js'

/**
 * The main targets (razorfs on the mount command's default binding, or --binding), and the
 * targets of the bindings workload, which puts both FUSE bindings side by side: each with its
 * own do-nothing filesystem (noop: fuse-native, noop-ll: razorfs's libfuse 3 addon) and razorfs
 * served through it.
 */
export type TargetName = 'native' | 'noop' | 'razorfs' | 'noop-ll' | 'razorfs-fn' | 'razorfs-ll'
export const ALL_TARGETS: TargetName[] = ['native', 'noop', 'razorfs']
export const BINDING_TARGETS: TargetName[] = ['native', 'noop', 'noop-ll', 'razorfs-fn', 'razorfs-ll']
const isRazorfs = (t: TargetName): boolean => t.startsWith('razorfs')

/** `--binding` for `razorfs mount` (default: the mount command's own default). */
let razorfsBinding: string | undefined
export const setRazorfsBinding = (binding: string | undefined): void => {
  razorfsBinding = binding
}

export const getRazorfsBinding = (): string | undefined => razorfsBinding

export interface Memory {
  rssMiB: number
  hwmMiB: number
}

export interface Session {
  target: TargetName
  /** Where workloads run: the mountpoint, or the native directory. */
  root: string
  dataDir?: string
  /** Spawn to mount visible in /proc/self/mountinfo. */
  mountMs?: number
  memory(): Memory | undefined
  /** CPU time (user + system, all threads, ms) the server has used so far. */
  cpuMs(): number | undefined
  /** Stop the server (SIGTERM: razorfs checkpoints, marks clean, unmounts); returns its exit. */
  stop(): Promise<{ms: number; code: number | null}>
}

async function cleanupMount(mnt: string): Promise<void> {
  for (let i = 0; i < 20 && mountPoints().has(mnt); i++) {
    await exec('fusermount3', ['-u', '-z', mnt])
    if (mountPoints().has(mnt)) await exec('umount', ['-l', mnt])
  }
}

function memoryOf(pid: number): Memory | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0)
    return {rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024}
  } catch {
    return undefined
  }
}

/** utime + stime of a process (dead threads included), from /proc/PID/stat, in ms. */
function cpuMsOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // fields[0] is field 3 (state): utime and stime are fields 14 and 15, in clock ticks (USER_HZ = 100).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
  } catch {
    return undefined
  }
}

/**
 * Bring a target up in the directory `base`. razorfs gets a fresh data dir unless `dataDir` is
 * given (remount of an existing image). `profile` is a directory for the server's CPU profile
 * (--cpu-prof).
 */
export async function startTarget(target: TargetName, base: string, opts: {dataDir?: string; profile?: string}): Promise<Session> {
  if (target === 'native') {
    const root = path.join(base, 'fs')
    fs.mkdirSync(root, {recursive: true})
    return {
      target,
      root,
      memory: () => undefined,
      cpuMs: () => undefined,
      stop: async () => {
        const start = performance.now()
        fs.rmSync(base, {recursive: true, force: true})
        return {ms: performance.now() - start, code: 0}
      },
    }
  }

  const mnt = path.join(base, 'mnt')
  fs.mkdirSync(mnt, {recursive: true})
  const dataDir = opts.dataDir ?? path.join(base, 'data')
  const env = cleanEnv()
  // Node 20 refuses --cpu-prof in NODE_OPTIONS: the flags go on the server's command line.
  const nodeArgs =
    opts.profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${opts.profile}`, `--cpu-prof-name=${target}.cpuprofile`, '--cpu-prof-interval=500']
  const binding = target === 'razorfs-fn' ? 'fuse-native' : target === 'razorfs-ll' ? 'll' : razorfsBinding
  const server =
    target === 'noop'
      ? [path.join(paths.here, 'noop-fs.js'), mnt]
      : target === 'noop-ll'
        ? [path.join(paths.here, 'noop-ll.js'), mnt]
        : [paths.runJs, 'mount', '-f', ...(binding === undefined ? [] : ['--binding', binding]), '--data-dir', dataDir, mnt]
  const args = [...nodeArgs, ...server]
  const start = performance.now()
  const proc = spawn(process.execPath, args, {env, stdio: ['ignore', 'pipe', 'pipe']})
  let output = ''
  proc.stdout!.on('data', (d: Buffer) => {
    output += d.toString()
  })
  proc.stderr!.on('data', (d: Buffer) => {
    output += d.toString()
  })
  const exited = new Promise<number | null>(resolve => proc.on('exit', code => resolve(code)))
  let gone: number | null | undefined
  void exited.then(code => {
    gone = code
  })
  let mountMs: number | undefined
  const deadline = Date.now() + 180_000
  for (;;) {
    if (mountMs === undefined && mountPoints().has(mnt)) mountMs = performance.now() - start
    if (mountMs !== undefined && output.includes('mounted ')) break
    if (gone !== undefined) throw new Error(`${target} server exited with ${gone} before mounting:\n${output}`)
    if (Date.now() > deadline) {
      proc.kill('SIGKILL')
      await cleanupMount(mnt)
      throw new Error(`${target} did not mount within 180 s:\n${output}`)
    }

    await sleep(5)
  }

  return {
    target,
    root: mnt,
    dataDir: isRazorfs(target) ? dataDir : undefined,
    mountMs,
    memory: () => memoryOf(proc.pid!),
    cpuMs: () => cpuMsOf(proc.pid!),
    stop: async () => {
      const t = performance.now()
      if (gone === undefined) proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), 600_000)
      const code = await exited
      clearTimeout(timer)
      const ms = performance.now() - t
      await cleanupMount(mnt)
      if (code !== 0) log(`  ${target} server exited with ${code}: ${output.trim().split('\n').slice(-3).join(' | ')}`)
      // Serious server complaints (unexpected errors become EIO) must not go unnoticed.
      if (/unexpected error/.test(output)) log(`  WARNING: ${target} server logged unexpected errors:\n${output.slice(0, 2000)}`)
      return {ms, code}
    },
  }
}
