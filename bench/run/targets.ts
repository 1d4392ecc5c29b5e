/**
 * The filesystems a benchmark runs against, and how each is brought up and stopped: a directory
 * of the host filesystem, or a server (the do-nothing filesystems, razorfs) mounted on a
 * mountpoint and watched through /proc.
 */
import {type ChildProcess, spawn} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

import {mountPoints} from '../../src/fuse/mountinfo.js'
import {REPO, paths} from './paths.js'
import {OneLineError, cleanEnv, exec, log, sleep} from './util.js'

/**
 * The main targets (razorfs on the mount command's default binding, or --binding), and the
 * targets of the bindings workload, which puts both FUSE bindings side by side: each with its
 * own do-nothing filesystem (noop: fuse-native, noop-ll: razorfs's libfuse 3 addon) and razorfs
 * served through it. The peers (issue 18): noop-c, the do-nothing libfuse 3 low-level
 * filesystem in C (bench/noop-c/, the FUSE limit), and two C/C++ FUSE filesystems people use
 * that serve a host directory on the work dir's disk: mergerfs and bindfs (Debian packages).
 * razorfs-pg (the shared workload only): razorfs serving a volume on PostgreSQL (--meta).
 */
export type TargetName = 'native' | 'noop' | 'noop-c' | 'mergerfs' | 'bindfs' | 'razorfs' | 'noop-ll' | 'razorfs-fn' | 'razorfs-ll' | 'razorfs-pg'
/** Every target `--targets` accepts, in the order they take turns. */
export const ALL_TARGETS: TargetName[] = ['native', 'noop', 'noop-c', 'mergerfs', 'bindfs', 'razorfs']
export const BINDING_TARGETS: TargetName[] = ['native', 'noop', 'noop-ll', 'razorfs-fn', 'razorfs-ll']
/** The peers that serve a host directory: their source lives beside the native target's. */
const HOST_PEERS: Partial<Record<TargetName, string>> = {mergerfs: 'mergerfs', bindfs: 'bindfs'}
/** Servers still running (stopped by the run's cleanup on any exit path). */
const servers = new Set<ChildProcess>()

/** Where the run built bench/noop-c/ (buildNoopC). */
let noopCBinary = ''

/**
 * Make sure every target of the run can start, before anything is timed: mergerfs and bindfs
 * installed, bench/noop-c/ compiled (system cc against libfuse 3, pkg-config fuse3) into the
 * work dir. Throws one line naming what is missing.
 */
export async function prepareTargets(targets: TargetName[]): Promise<void> {
  for (const t of targets) {
    const cmd = HOST_PEERS[t]
    if (cmd !== undefined && (await exec('sh', ['-c', `command -v ${cmd}`])).code !== 0)
      throw new OneLineError(
        `${cmd} is not installed: apt-get install -y mergerfs bindfs (or leave it out: --targets ${ALL_TARGETS.filter(x => x !== t).join(',')})`,
      )
  }

  if (!targets.includes('noop-c')) return
  const sources = ['fs.c', 'table.c'].map(f => path.join(REPO, 'bench/noop-c', f))
  const flags = await exec('pkg-config', ['--cflags', '--libs', 'fuse3']).catch(() => undefined)
  if (flags === undefined || flags.code !== 0)
    throw new OneLineError('noop-c needs libfuse 3 and pkg-config: apt-get install -y libfuse3-dev pkg-config (pkg-config --cflags --libs fuse3 failed)')
  noopCBinary = path.join(paths.workDir, 'noop-c')
  const cc = await exec('cc', ['-O2', '-Wall', '-o', noopCBinary, ...sources, ...flags.stdout.trim().split(/\s+/)]).catch(() => undefined)
  if (cc === undefined) throw new OneLineError('noop-c needs a C compiler: cc was not found (apt-get install -y gcc)')
  if (cc.code !== 0) throw new OneLineError(`cc could not build bench/noop-c: ${cc.stderr.trim().split('\n')[0]}`)
}

/** Stop every server still running (SIGTERM, then SIGKILL after `graceMs`); unmount what they left. */
export async function stopServers(graceMs = 10_000): Promise<void> {
  const left = [...servers]
  for (const p of left) p.kill('SIGTERM')
  const deadline = Date.now() + graceMs
  while (left.some(p => p.exitCode === null && p.signalCode === null) && Date.now() < deadline) await sleep(50)
  for (const p of left) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
  for (const mnt of mountPoints()) if (paths.workDir !== '' && mnt.startsWith(paths.workDir + '/')) await cleanupMount(mnt)
}

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
  /** The server's process (none for the native target). */
  pid?: number
  memory(): Memory | undefined
  /** CPU time (user + system, all threads, ms) the server has used so far. */
  cpuMs(): number | undefined
  /** Stop the server (SIGTERM: razorfs checkpoints, marks clean, unmounts); returns its exit. */
  stop(): Promise<{ms: number; code: number | null}>
}

export async function cleanupMount(mnt: string): Promise<void> {
  for (let i = 0; i < 20 && mountPoints().has(mnt); i++) {
    await exec('fusermount3', ['-u', '-z', mnt])
    if (mountPoints().has(mnt)) await exec('umount', ['-l', mnt])
  }
}

/** The kB fields of /proc/PID/status (VmRSS, VmHWM, RssAnon, RssFile, ...) in MiB; undefined once the process is gone. */
export function statusMiB(pid: number): Record<string, number> | undefined {
  let status: string
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  } catch {
    return undefined
  }

  const out: Record<string, number> = {}
  for (const m of status.matchAll(/^(\w+):\s+(\d+) kB$/gm)) out[m[1]] = Number(m[2]) / 1024
  return out
}

function memoryOf(pid: number): Memory | undefined {
  const s = statusMiB(pid)
  return s === undefined ? undefined : {rssMiB: s.VmRSS ?? 0, hwmMiB: s.VmHWM ?? 0}
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
 * (--cpu-prof). razorfs-pg serves the volume at `meta` (a PostgreSQL URL, made by init --meta).
 */
export async function startTarget(target: TargetName, base: string, opts: {dataDir?: string; profile?: string; meta?: string}): Promise<Session> {
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
  const binding = target === 'razorfs-fn' ? 'fuse-native' : target === 'razorfs-ll' || target === 'razorfs-pg' ? 'll' : razorfsBinding
  const volume = target === 'razorfs-pg' ? ['--meta', opts.meta ?? ''] : ['--data-dir', dataDir]
  // The host peers serve base/src, beside where the native target keeps its files (base/fs).
  const source = path.join(base, 'src')
  const [cmd, args] = ((): [string, string[]] => {
    switch (target) {
      case 'noop':
        return [process.execPath, [...nodeArgs, path.join(paths.here, 'noop-fs.js'), mnt]]
      case 'noop-ll':
        return [process.execPath, [...nodeArgs, path.join(paths.here, 'noop-ll.js'), mnt]]
      case 'noop-c':
        return [noopCBinary, [mnt]]
      // As a new user runs them: the packages' defaults, in the foreground.
      case 'mergerfs':
        return ['mergerfs', ['-f', source, mnt]]
      case 'bindfs':
        return ['bindfs', ['-f', source, mnt]]
      default:
        return [process.execPath, [...nodeArgs, paths.runJs, 'mount', '-f', ...(binding === undefined ? [] : ['--binding', binding]), ...volume, mnt]]
    }
  })()
  if (HOST_PEERS[target] !== undefined) fs.mkdirSync(source, {recursive: true})
  // node servers print "mounted MOUNTPOINT" once they serve; the C ones are ready when mounted.
  const says = !(HOST_PEERS[target] !== undefined)
  const start = performance.now()
  const proc = spawn(cmd, args, {env, stdio: ['ignore', 'pipe', 'pipe']})
  servers.add(proc)
  let output = ''
  proc.stdout!.on('data', (d: Buffer) => {
    output += d.toString()
  })
  proc.stderr!.on('data', (d: Buffer) => {
    output += d.toString()
  })
  const exited = new Promise<number | null>(resolve => {
    proc.on('exit', code => {
      servers.delete(proc)
      resolve(code)
    })
    // A server that cannot be spawned at all (ENOENT) may never emit 'exit'.
    proc.on('error', error => {
      output += `${cmd}: ${error.message}\n`
      servers.delete(proc)
      resolve(null)
    })
  })
  let gone: number | null | undefined
  void exited.then(code => {
    gone = code
  })
  let mountMs: number | undefined
  const deadline = Date.now() + 180_000
  for (;;) {
    if (mountMs === undefined && mountPoints().has(mnt)) mountMs = performance.now() - start
    if (mountMs !== undefined && (!says || output.includes('mounted '))) break
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
    dataDir: isRazorfs(target) && target !== 'razorfs-pg' ? dataDir : undefined,
    mountMs,
    pid: proc.pid,
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
