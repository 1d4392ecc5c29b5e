/**
 * The benchmark suite (issue 7): `npm run bench` (full) or `npm run bench -- --quick`.
 *
 * Every workload runs against three targets in the same run, one after the other (native, noop,
 * razorfs) so that a change of load on the machine hits all three alike:
 *   native   a directory on the host filesystem;
 *   noop     bench/noop-fs: a fuse-native filesystem that stores nothing, mounted with razorfs's
 *            fuse-native options: the ceiling of any filesystem served through fuse-native;
 *   razorfs  `razorfs mount -f` on a fresh data dir.
 * Workloads are driven from child processes (bench/driver.ts; tar, find, rm; fio if installed).
 *
 * Writes docs/BENCHMARKS.md, bench/results/bench.json, bench/charts/*.png; progress on stderr.
 * Options: --quick, --only LIST (meta,parallel,seq,sweep,random,tree,storage,recovery,profile),
 * --targets LIST, --no-profile, --keep (keep the work dir), --dir DIR (parent of the work dir).
 */
import {spawn} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {mountPoints} from '../src/fuse/mountinfo.js'
import {type FlameRow, type MetaPoint, type ThroughputPoint, renderFlame, renderMainChart} from './chart.js'
import type {DriverResult, Job, Layout} from './driver.js'
import {type Breakdown, type WindowProfile, breakdown, flameRows, loadProfile, selfTimes} from './profile.js'
import type {RecoveryResult} from './recovery.js'

// ---- setup ---------------------------------------------------------------------------------------

const REPO = fileURLToPath(new URL('../../', import.meta.url))
/** dist/bench and bin/run.js of the copy of the build this run measures (see copyBuild). */
let HERE = fileURLToPath(new URL('.', import.meta.url))
let RUN_JS = path.join(REPO, 'bin/run.js')
/** The copy's root. */
let APP = REPO

/**
 * Copy the build (bin, dist, package.json, the oclif manifest, the native addon) into the work
 * dir and run every child from there: a run takes minutes to hours, and an `npm run build`
 * meanwhile (rm -rf dist) must not pull the server or the driver out from under it.
 */
function copyBuild(): void {
  APP = path.join(workDir, 'app')
  fs.mkdirSync(APP)
  for (const name of ['bin', 'dist', 'package.json', 'oclif.manifest.json', 'build/Release']) {
    const from = path.join(REPO, name)
    if (fs.existsSync(from)) fs.cpSync(from, path.join(APP, name), {recursive: true})
  }

  fs.symlinkSync(fs.realpathSync(path.join(REPO, 'node_modules')), path.join(APP, 'node_modules'))
  HERE = path.join(APP, 'dist/bench')
  RUN_JS = path.join(APP, 'bin/run.js')
}
const RESULTS = path.join(REPO, 'bench/results')
/**
 * Where a run writes. A complete run (every target; all workloads, the profile aside) rewrites
 * docs/BENCHMARKS.md, bench/results/bench.json and bench/charts/; a partial one (--only,
 * --targets) writes the same files under bench/results/partial/ and leaves those alone.
 */
let CHARTS = path.join(REPO, 'bench/charts')
let DOC = path.join(REPO, 'docs/BENCHMARKS.md')
let JSON_FILE = path.join(RESULTS, 'bench.json')
/** A chart's link from the markdown file. */
const chartLink = (name: string): string => path.relative(path.dirname(DOC), path.join(CHARTS, name))
const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB
/** libfuse's default entry_timeout and attr_timeout are 1 s; waiting longer makes the kernel ask. */
const ATTR_EXPIRE_MS = 1200

/**
 * The main targets (razorfs on the mount command's default binding, or --binding), and the
 * targets of the bindings workload, which puts both FUSE bindings side by side: each with its
 * own do-nothing filesystem (noop: fuse-native, noop-ll: razorfs's libfuse 3 addon) and razorfs
 * served through it.
 */
type TargetName = 'native' | 'noop' | 'razorfs' | 'noop-ll' | 'razorfs-fn' | 'razorfs-ll'
const ALL_TARGETS: TargetName[] = ['native', 'noop', 'razorfs']
const BINDING_TARGETS: TargetName[] = ['native', 'noop', 'noop-ll', 'razorfs-fn', 'razorfs-ll']
const isRazorfs = (t: TargetName): boolean => t.startsWith('razorfs')
const WORKLOADS = ['meta', 'bindings', 'parallel', 'seq', 'sweep', 'random', 'tree', 'storage', 'recovery', 'profile'] as const
type Workload = (typeof WORKLOADS)[number]

interface Config {
  mode: 'quick' | 'full'
  metaSizes: number[]
  metaLayouts: Layout[]
  readdirN: number
  seqBytes: number
  sweepBytes: number
  sweepBs: number[]
  randBytes: number
  randSeconds: number
  clients: number
  parallelFiles: number
  parallelBytes: number
  storageEnv: Record<string, string>
  recovery: {checkpointOps: number[]; walMiB: number[]}
  profileFiles: number
  profileBytes: number
  /** Entries of the source tree (undefined: all of node_modules). */
  treeEntries?: number
  /** Entries of the tree untarred under the profiler. */
  profileTreeEntries: number
  /** Rounds of the sequential workloads, and of metadata sizes up to metaRoundsUpTo. */
  rounds: number
  metaRoundsUpTo: number
  /** The bindings workload: files of its create/stat/unlink (flat) and readdir, bytes of its sequential I/O. */
  bindingsFiles: number
  bindingsBytes: number
}

const FULL: Config = {
  mode: 'full',
  metaSizes: [10_000, 100_000, 1_000_000],
  metaLayouts: ['flat', 'deep'],
  readdirN: 100_000,
  seqBytes: GiB,
  sweepBytes: 256 * MiB,
  sweepBs: [4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, MiB],
  randBytes: 256 * MiB,
  randSeconds: 15,
  clients: 4,
  parallelFiles: 100_000,
  parallelBytes: GiB,
  storageEnv: {},
  recovery: {checkpointOps: [1000, 10_000, 100_000], walMiB: [1, 16, 64]},
  profileFiles: 20_000,
  profileBytes: 512 * MiB,
  profileTreeEntries: 3000,
  rounds: 3,
  metaRoundsUpTo: 10_000,
  bindingsFiles: 100_000,
  bindingsBytes: GiB,
}

const QUICK: Config = {
  mode: 'quick',
  metaSizes: [1000, 10_000],
  metaLayouts: ['flat', 'deep'],
  readdirN: 10_000,
  seqBytes: 128 * MiB,
  sweepBytes: 8 * MiB,
  sweepBs: [4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, MiB],
  randBytes: 32 * MiB,
  randSeconds: 2,
  clients: 4,
  parallelFiles: 4000,
  parallelBytes: 128 * MiB,
  storageEnv: {BENCH_FLAT: '10000', BENCH_LEAF: '1'},
  recovery: {checkpointOps: [1000, 10_000], walMiB: [1, 8]},
  profileFiles: 5000,
  profileBytes: 128 * MiB,
  treeEntries: 2000,
  profileTreeEntries: 1000,
  rounds: 3,
  metaRoundsUpTo: 1000,
  bindingsFiles: 10_000,
  bindingsBytes: 256 * MiB,
}

interface Args {
  quick: boolean
  only: Set<Workload>
  targets: TargetName[]
  keep: boolean
  dir: string
  binding?: string
  /** --sizes / --layouts: the metadata workload's file counts and layouts instead of the mode's. */
  sizes?: number[]
  layouts?: Layout[]
  /** --only, --targets, --sizes or --layouts was given: write under bench/results/partial/. */
  partial: boolean
}

function parseArgs(argv: string[]): Args {
  const args: Args = {quick: false, only: new Set(WORKLOADS), targets: ALL_TARGETS, keep: false, dir: os.tmpdir(), partial: false}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const list = (): string[] => (argv[++i] ?? '').split(',').filter(Boolean)
    if (a === '--quick') args.quick = true
    else if (a === '--keep') args.keep = true
    else if (a === '--no-profile') args.only.delete('profile')
    else if (a === '--dir') args.dir = path.resolve(argv[++i] ?? '.')
    else if (a === '--binding') args.binding = argv[++i]
    else if (a === '--only') {
      const names = list()
      for (const n of names) if (!(WORKLOADS as readonly string[]).includes(n)) throw new Error(`unknown workload ${n} (one of ${WORKLOADS.join(', ')})`)
      args.only = new Set(names as Workload[])
      args.partial = true
    } else if (a === '--targets') {
      const names = list()
      const known = [...ALL_TARGETS, ...BINDING_TARGETS.filter(t => !ALL_TARGETS.includes(t))]
      for (const n of names) if (!(known as string[]).includes(n)) throw new Error(`unknown target ${n} (one of ${known.join(', ')})`)
      args.targets = known.filter(t => names.includes(t))
      args.partial = true
    } else if (a === '--sizes') {
      args.sizes = list().map(x => {
        const m = /^(\d+)(k|m)?$/i.exec(x)
        if (!m) throw new Error(`bad size ${x} (a file count: 1000, 10k, 1m)`)
        return Number(m[1]) * (m[2] === undefined ? 1 : m[2].toLowerCase() === 'k' ? 1000 : 1_000_000)
      })
      args.partial = true
    } else if (a === '--layouts') {
      const names = list()
      for (const n of names) if (n !== 'flat' && n !== 'deep') throw new Error(`unknown layout ${n} (flat or deep)`)
      args.layouts = names as Layout[]
      args.partial = true
    } else if (a === '--help' || a === '-h') {
      process.stdout.write('npm run bench -- [--quick] [--only meta,bindings,parallel,seq,sweep,random,tree,storage,recovery,profile] [--targets native,noop,razorfs,noop-ll,razorfs-fn,razorfs-ll] [--sizes 10k,100k,1m] [--layouts flat,deep] [--binding ll|fuse-native] [--no-profile] [--keep] [--dir DIR]\n')
      process.exit(0)
    } else throw new Error(`unknown argument ${a}`)
  }

  return args
}

const T0 = Date.now()
function log(msg: string): void {
  process.stderr.write(`[bench ${((Date.now() - T0) / 1000).toFixed(0).padStart(5)}s] ${msg}\n`)
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', {maximumFractionDigits: digits, minimumFractionDigits: digits})
const sizeName = (bytes: number): string => (bytes >= GiB ? `${bytes / GiB} GiB` : bytes >= MiB ? `${bytes / MiB} MiB` : `${bytes / KiB} KiB`)
const bsName = (bs: number): string => (bs >= MiB ? `${bs / MiB}M` : `${bs / KiB}K`)
const countName = (n: number): string => (n >= 1e6 ? `${n / 1e6}M` : n >= 1e3 ? `${n / 1e3}k` : String(n))

// ---- child processes -----------------------------------------------------------------------------

interface ExecResult {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

/** Run a command to completion (asynchronously: servers must keep draining their pipes). */
function exec(cmd: string, args: string[], opts: {env?: NodeJS.ProcessEnv; inheritStderr?: boolean; cwd?: string} = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const start = performance.now()
    const child = spawn(cmd, args, {cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', opts.inheritStderr ? 'inherit' : 'pipe']})
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout!.on('data', (d: Buffer) => out.push(d))
    child.stderr?.on('data', (d: Buffer) => err.push(d))
    child.on('error', reject)
    child.on('close', code => resolve({code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), ms: performance.now() - start}))
  })
}

/** The driver's environment: no NODE_OPTIONS (a profiled server must not pass --cpu-prof on). */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {...process.env, NO_COLOR: "1"}
  delete env.NODE_OPTIONS
  delete env.DEBUG
  return env
}

async function driver(job: Job): Promise<DriverResult> {
  const r = await exec(process.execPath, [path.join(HERE, 'driver.js'), JSON.stringify(job)], {env: cleanEnv(), inheritStderr: true})
  if (r.code !== 0) throw new Error(`driver ${job.op} failed (exit ${r.code})`)
  return JSON.parse(r.stdout) as DriverResult
}

/** Several drivers at once, started together (epoch barrier); aggregate rate over the union. */
async function drivers(jobs: Job[]): Promise<{results: DriverResult[]; ops: number; bytes: number; sec: number}> {
  const startAt = Date.now() + 1500
  const results = await Promise.all(jobs.map(job => driver({...job, startAt} as Job)))
  const start = Math.min(...results.map(r => r.startMs))
  const end = Math.max(...results.map(r => r.endMs))
  return {results, ops: results.reduce((a, r) => a + r.ops, 0), bytes: results.reduce((a, r) => a + r.bytes, 0), sec: (end - start) / 1000}
}

// ---- mounts --------------------------------------------------------------------------------------

async function cleanupMount(mnt: string): Promise<void> {
  for (let i = 0; i < 20 && mountPoints().has(mnt); i++) {
    await exec('fusermount3', ['-u', '-z', mnt])
    if (mountPoints().has(mnt)) await exec('umount', ['-l', mnt])
  }
}

interface Memory {
  rssMiB: number
  hwmMiB: number
}

interface Session {
  target: TargetName
  /** Where workloads run: the mountpoint, or the native directory. */
  root: string
  dataDir?: string
  pid?: number
  /** Spawn to mount visible in /proc/self/mountinfo. */
  mountMs?: number
  memory(): Memory | undefined
  /** CPU time (user + system, all threads, ms) the server has used so far. */
  cpuMs(): number | undefined
  /** Stop the server (SIGTERM: razorfs checkpoints, marks clean, unmounts); returns its exit. */
  stop(): Promise<{ms: number; code: number | null}>
}

const live = new Set<Session>()
/** Flame graphs and main chart written by this run. */
const flames = new Set<string>()
let mainChart = false
/** `--binding` for `razorfs mount` (default: the mount command's own default). */
let razorfsBinding: string | undefined
let workDir = ''
let sessionCount = 0

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
 * Start a target. razorfs gets a fresh data dir unless `dataDir` is given (remount of an
 * existing image). `profile` is a directory for the server's CPU profile (--cpu-prof).
 */
async function open(target: TargetName, label: string, opts: {dataDir?: string; profile?: string} = {}): Promise<Session> {
  const base = path.join(workDir, `${String(++sessionCount).padStart(3, '0')}-${label}-${target}`)
  if (target === 'native') {
    const root = path.join(base, 'fs')
    fs.mkdirSync(root, {recursive: true})
    const session: Session = {
      target, root, memory: () => undefined, cpuMs: () => undefined,
      stop: async () => {
        live.delete(session)
        const start = performance.now()
        fs.rmSync(base, {recursive: true, force: true})
        return {ms: performance.now() - start, code: 0}
      },
    }
    live.add(session)
    return session
  }

  const mnt = path.join(base, 'mnt')
  fs.mkdirSync(mnt, {recursive: true})
  const dataDir = opts.dataDir ?? path.join(base, 'data')
  const env = cleanEnv()
  // Node 20 refuses --cpu-prof in NODE_OPTIONS: the flags go on the server's command line.
  const nodeArgs = opts.profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${opts.profile}`, `--cpu-prof-name=${target}.cpuprofile`, '--cpu-prof-interval=500']
  const binding = target === 'razorfs-fn' ? 'fuse-native' : target === 'razorfs-ll' ? 'll' : razorfsBinding
  const server = target === 'noop' ? [path.join(HERE, 'noop-fs.js'), mnt]
    : target === 'noop-ll' ? [path.join(HERE, 'noop-ll.js'), mnt]
      : [RUN_JS, 'mount', '-f', ...(binding === undefined ? [] : ['--binding', binding]), '--data-dir', dataDir, mnt]
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

  const session: Session = {
    target, root: mnt, dataDir: isRazorfs(target) ? dataDir : undefined, pid: proc.pid, mountMs,
    memory: () => memoryOf(proc.pid!),
    cpuMs: () => cpuMsOf(proc.pid!),
    stop: async () => {
      live.delete(session)
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
  live.add(session)
  return session
}

/** Stop a session and remove everything it left. */
async function close(s: Session): Promise<{ms: number; code: number | null}> {
  const r = await s.stop()
  fs.rmSync(path.dirname(s.root), {recursive: true, force: true})
  if (s.dataDir !== undefined) fs.rmSync(s.dataDir, {recursive: true, force: true})
  return r
}

// ---- results -------------------------------------------------------------------------------------

interface Rate {
  ops: number
  sec: number
  opsPerSec: number
}

const rate = (r: {ops: number; sec: number}): Rate => ({ops: r.ops, sec: r.sec, opsPerSec: r.ops / r.sec})

interface MetaRecord {
  target: TargetName
  layout: Layout
  files: number
  create: Rate
  stat: Rate
  unlink: Rate
  /** Server memory after the stat phase (all files present). */
  memory?: Memory
  /** ops/s of each round (the median round is reported). */
  rounds?: Record<'create' | 'stat' | 'unlink', number[]>
  /** Server CPU time (all threads, user + system) per operation, µs; median of the rounds. */
  cpuUsPerOp?: Record<'create' | 'stat' | 'unlink', number>
  /**
   * The largest size only: the same target at the smallest size, in rounds run inside this size's
   * phases (PAIRED_AT); each operation's rate is the median of the rounds run inside its phase.
   */
  paired?: {files: number; create: Rate; stat: Rate; unlink: Rate}
}

interface ReaddirRecord {
  target: TargetName
  entries: number
  /** Seconds of each listing. */
  rounds: number[]
  entriesPerSec: number
}

interface RazorfsLife {
  layout: Layout
  files: number
  inodes: number
  /** Server memory with all files present, before the stop. */
  memory?: Memory
  stopMs: number
  stopCode: number | null
  imageMiB: number
  fsck: {ms: number; code: number | null; implemented: boolean; output: string}
  remountMs: number
  memoryAfterRemount?: Memory
}

interface IoRecord {
  target: TargetName
  bytes: number
  bs: number
  writeMBps: number
  readMBps: number
  /** Each round's figures (the median is reported). */
  rounds: IoRound[]
}

interface RandomRecord {
  target: TargetName
  tool: string
  fileBytes: number
  seconds: number
  readIops: number
  writeIops: number
}

interface TreeRecord {
  target: TargetName
  entries: number
  bytes: number
  untarSec: number
  findSec: number
  rmSec: number
}

interface ParallelRecord {
  target: TargetName
  clients: number
  files: number
  create: Rate
  stat: Rate
  unlink: Rate
  writeBytes: number
  writeMBps: number
}

interface ProfileRecord {
  target: TargetName
  files: number
  writeBytes: number
  file: string
  /** Per phase: window (µs, CLOCK_MONOTONIC), self times, where the time went. */
  phases: Record<string, WindowProfile & {ops: number; opsPerSec: number; fromUs: number; toUs: number; breakdown: Breakdown}>
}

interface Results {
  meta: MetaRecord[]
  readdir: ReaddirRecord[]
  razorfsLife: RazorfsLife[]
  mountEmptyMs: number[]
  noopMountMs: number[]
  seq: IoRecord[]
  sweep: IoRecord[]
  random: RandomRecord[]
  tree: TreeRecord[]
  treeInfo?: {entries: number; bytes: number; source: string}
  parallel: ParallelRecord[]
  storage?: {exitCode: number | null; json: Record<string, any>; markdown: string}
  recovery?: RecoveryResult
  profile: ProfileRecord[]
  /** The bindings workload (BINDING_TARGETS). */
  bindings: {meta: MetaRecord[]; readdir: ReaddirRecord[]; seq: IoRecord[]}
}

const results: Results = {
  meta: [], readdir: [], razorfsLife: [], mountEmptyMs: [], noopMountMs: [], seq: [], sweep: [], random: [], tree: [], parallel: [], profile: [],
  bindings: {meta: [], readdir: [], seq: []},
}

function noteMount(s: Session, fresh: boolean): void {
  if (s.mountMs === undefined) return
  if (s.target === 'razorfs' && fresh) results.mountEmptyMs.push(s.mountMs)
  if (s.target === 'noop') results.noopMountMs.push(s.mountMs)
}

async function openFresh(target: TargetName, label: string): Promise<Session> {
  const s = await open(target, label)
  noteMount(s, true)
  return s
}

// ---- workloads -----------------------------------------------------------------------------------

function dirBytes(dir: string): number {
  let total = 0
  for (const e of fs.readdirSync(dir, {withFileTypes: true, recursive: true})) {
    if (e.isFile()) total += fs.statSync(path.join(e.parentPath, e.name)).size
  }

  return total
}

/** razorfs with all files present: memory, stop (checkpoint), fsck, remount. */
async function razorfsLifecycle(s: Session, layout: Layout, files: number): Promise<{session: Session; life: RazorfsLife}> {
  const memory = s.memory()
  const dataDir = s.dataDir!
  const stop = await s.stop()
  const imageMiB = dirBytes(dataDir) / MiB
  log(`  razorfs: stopped in ${fmt(stop.ms)} ms (exit ${stop.code}); image ${fmt(imageMiB, 1)} MiB; fsck -n -f ...`)
  const f = await exec(process.execPath, [RUN_JS, 'fsck', '-n', '-f', dataDir], {env: cleanEnv()})
  const fsckOut = (f.stdout + f.stderr).trim()
  const implemented = !(f.code === 1 && /not implemented yet/.test(fsckOut))
  log(`  razorfs: fsck exit ${f.code} in ${fmt(f.ms)} ms${implemented ? '' : ' (fsck not implemented yet)'}`)
  const again = await open('razorfs', `remount-${layout}`, {dataDir})
  const remountMs = again.mountMs!
  const inodes = files + 1 + (layout === 'deep' ? treeDirCount(files) : 1)
  log(`  razorfs: remount of ${fmt(inodes)} inodes in ${fmt(remountMs)} ms`)
  await sleep(200)
  return {
    session: again,
    life: {
      layout, files, inodes, memory, stopMs: stop.ms, stopCode: stop.code, imageMiB,
      fsck: {ms: f.ms, code: f.code, implemented, output: fsckOut.slice(0, 400)},
      remountMs, memoryAfterRemount: again.memory(),
    },
  }
}

function treeDirCount(files: number): number {
  const leaves = Math.ceil(files / 100)
  const seen = new Set<string>()
  for (let j = 0; j < leaves; j++) {
    seen.add(`${j % 10}`)
    seen.add(`${j % 10}/${Math.floor(j / 10) % 10}`)
    seen.add(`${j % 10}/${Math.floor(j / 10) % 10}/${Math.floor(j / 100) % 10}`)
    seen.add(`${j % 10}/${Math.floor(j / 10) % 10}/${Math.floor(j / 100) % 10}/${Math.floor(j / 1000)}`)
  }

  return seen.size + 1 // and the tree's own top directory
}

/** The round whose rate is the median (rounds are few: 1 or 3). */
function medianRate(rates: Rate[]): Rate {
  return [...rates].sort((a, b) => a.opsPerSec - b.opsPerSec)[Math.floor(rates.length / 2)]
}

/** What benchMeta runs and where its records go. */
interface MetaPlan {
  layouts: Layout[]
  sizes: number[]
  /** Rounds of a size (the median round is reported). */
  rounds: (n: number) => number
  /** The size whose flat directory is also listed (readdir). */
  readdirN: number
  /** Stop, fsck and remount razorfs at the largest size (results.razorfsLife). */
  lifecycle: boolean
  /** Run rounds of the smallest size inside the phases of the largest (MetaRecord.paired). */
  paired: boolean
  into: {meta: MetaRecord[]; readdir: ReaddirRecord[]}
}

const mainMetaPlan = (cfg: Config): MetaPlan => ({
  layouts: cfg.metaLayouts, sizes: cfg.metaSizes, rounds: n => (n <= cfg.metaRoundsUpTo ? cfg.rounds : 1),
  readdirN: cfg.readdirN, lifecycle: true, paired: true, into: results,
})

type MetaOp = 'create' | 'stat' | 'unlink'

/**
 * Where rounds of the smallest size run inside each phase of the largest, as fractions of the
 * phase's files: three in the long create phase, one halfway through stat and through unlink.
 * Their rates are measured minutes, not a quarter of an hour, from the large phase's, on the same
 * machine state: the scaling target divides by them.
 */
const PAIRED_AT: Record<MetaOp, number[]> = {create: [1 / 6, 1 / 2, 5 / 6], stat: [1 / 2], unlink: [1 / 2]}

/** Files each target takes in turn (driver.ts). */
const metaChunk = (n: number): number => Math.max(100, Math.min(1000, Math.floor(n / 8)))

/** Two driver results of one job cut in two, as one. */
function joined(a: DriverResult, b: DriverResult): DriverResult {
  return {
    ...a, ops: a.ops + b.ops, bytes: a.bytes + b.bytes, sec: a.sec + b.sec, endMs: b.endMs, endMono: b.endMono,
    perDir: a.perDir?.map((x, i) => ({ops: x.ops + b.perDir![i].ops, sec: x.sec + b.perDir![i].sec})),
  }
}

/** One round of `n` files in a new directory `name` of each session: create, stat, unlink, interleaved as in benchMeta. */
async function smallRound(sessions: Session[], layout: Layout, n: number, name: string): Promise<Array<Record<MetaOp, Rate>>> {
  const dirs = sessions.map(s => path.join(s.root, name))
  const job = {dirs, layout, from: 0, to: n, chunk: metaChunk(n)}
  await driver({op: 'mkdirs', dirs, layout, to: n})
  const create = await driver({op: 'create', ...job})
  await sleep(ATTR_EXPIRE_MS)
  const stat = await driver({op: 'stat', ...job})
  await sleep(ATTR_EXPIRE_MS)
  const unlink = await driver({op: 'unlink', ...job})
  return sessions.map((_, i) => ({create: rate(create.perDir![i]), stat: rate(stat.perDir![i]), unlink: rate(unlink.perDir![i])}))
}

/**
 * Metadata workloads: for each layout and size, all targets are mounted at once and the driver
 * interleaves them in chunks of files (bench/driver.ts), so that the load of a shared machine
 * falls on all of them alike. Small sizes run several rounds (fresh directories each time) and
 * report the median round.
 */
async function benchMeta(cfg: Config, targets: TargetName[], plan: MetaPlan = mainMetaPlan(cfg)): Promise<void> {
  const largest = Math.max(...plan.sizes)
  const smallest = Math.min(...plan.sizes)
  for (const layout of plan.layouts) {
    for (const n of plan.sizes) {
      const rounds = plan.rounds(n)
      const paired = plan.paired && n === largest && n > smallest
      log(`meta ${layout} ${countName(n)}: ${targets.join(', ')} (interleaved${rounds > 1 ? `, ${rounds} rounds` : ''}` +
        `${paired ? `; rounds of ${countName(smallest)} inside each phase` : ''})`)
      const sessions = await openAll(targets, `meta-${layout}-${countName(n)}`)
      // The paired rounds' own mounts, open throughout like the small size's own rounds; a first
      // round (not counted) warms their servers up as the median of those rounds is warm.
      const small: Session[] = []
      if (paired) {
        for (const target of targets) small.push(await open(target, `paired-${layout}`))
        await smallRound(small, layout, smallest, 'warm-up')
      }

      const rates = targets.map(() => ({create: [] as Rate[], stat: [] as Rate[], unlink: [] as Rate[]}))
      const cpus = targets.map(() => ({create: [] as Array<number | undefined>, stat: [] as Array<number | undefined>, unlink: [] as Array<number | undefined>}))
      const pairedRates = targets.map(() => ({create: [] as Rate[], stat: [] as Rate[], unlink: [] as Rate[]}))
      let memory: Array<Memory | undefined> = []
      for (let r = 0; r < rounds; r++) {
        // The razorfs remount below moves its tree to another mountpoint: paths follow the sessions.
        const dirs = (): string[] => sessions.map(s => path.join(s.root, `${layout}${rounds > 1 ? `-${r}` : ''}`))
        const chunk = metaChunk(n)
        await driver({op: 'mkdirs', dirs: dirs(), layout, to: n})
        // Server CPU per phase: each target's server is its own process, so this is separable
        // although the targets take turns; it does not depend on the machine's load as wall time does.
        const cpu = async (fn: () => Promise<DriverResult>): Promise<[DriverResult, Array<number | undefined>]> => {
          const before = sessions.map(s => s.cpuMs())
          const r = await fn()
          return [r, sessions.map((s, i) => {
            const after = s.cpuMs()
            return after === undefined || before[i] === undefined ? undefined : after - before[i]!
          })]
        }

        // One phase over files [0, n); when paired, cut at PAIRED_AT with a round of the smallest
        // size on the paired mounts in each cut (not counted in this phase's time or CPU).
        const phase = async (op: MetaOp): Promise<[DriverResult, Array<number | undefined>]> => {
          const bounds = [0, ...(paired ? PAIRED_AT[op].map(f => Math.round((f * n) / chunk) * chunk) : []), n]
          let all: [DriverResult, Array<number | undefined>] | undefined
          for (let k = 0; k + 1 < bounds.length; k++) {
            if (k > 0) {
              const got = await smallRound(small, layout, smallest, `${op}-${k}`)
              for (const i of targets.keys()) pairedRates[i][op].push(got[i][op])
              log(`  ${countName(smallest)} round at ${countName(bounds[k])} of the ${op} phase: ${targets.map((t, i) => `${t} ${fmt(got[i][op].opsPerSec)}/s`).join(', ')}`)
            }

            const part = await cpu(() => driver({op, dirs: dirs(), layout, from: bounds[k], to: bounds[k + 1], chunk}))
            all = all === undefined ? part : [joined(all[0], part[0]), all[1].map((x, i) => (x === undefined || part[1][i] === undefined ? undefined : x + part[1][i]!))]
          }

          return all!
        }

        const [create, createCpu] = await phase('create')
        await sleep(ATTR_EXPIRE_MS)
        const [stat, statCpu] = await phase('stat')
        memory = sessions.map(s => s.memory())
        if (layout === 'flat' && n === plan.readdirN && r === 0) {
          await sleep(ATTR_EXPIRE_MS)
          const rd = await driver({op: 'readdir', dirs: dirs(), expect: n, repeats: 3})
          for (const [i, target] of targets.entries()) {
            const listings = rd.perDir![i].rounds!
            plan.into.readdir.push({target, entries: n, rounds: listings, entriesPerSec: n / Math.min(...listings)})
            log(`  readdir of ${fmt(n)} entries, ${target}: ${listings.map(x => (x * 1000).toFixed(0)).join(', ')} ms`)
          }
        }

        const rz = targets.indexOf('razorfs')
        if (plan.lifecycle && rz >= 0 && n === largest && r === rounds - 1) {
          const {session, life} = await razorfsLifecycle(sessions[rz], layout, n)
          sessions[rz] = session
          results.razorfsLife.push(life)
        }

        await sleep(ATTR_EXPIRE_MS)
        const [unlink, unlinkCpu] = await phase('unlink')
        for (const i of targets.keys()) {
          rates[i].create.push(rate(create.perDir![i]))
          rates[i].stat.push(rate(stat.perDir![i]))
          rates[i].unlink.push(rate(unlink.perDir![i]))
          const perOp = (ms: number | undefined) => (ms === undefined ? undefined : (ms * 1000) / n)
          cpus[i].create.push(perOp(createCpu[i]))
          cpus[i].stat.push(perOp(statCpu[i]))
          cpus[i].unlink.push(perOp(unlinkCpu[i]))
        }
      }

      for (const s of [...sessions, ...small]) await close(s)
      for (const [i, target] of targets.entries()) {
        const rec: MetaRecord = {
          target, layout, files: n, create: medianRate(rates[i].create), stat: medianRate(rates[i].stat), unlink: medianRate(rates[i].unlink), memory: memory[i],
          rounds: {create: rates[i].create.map(x => x.opsPerSec), stat: rates[i].stat.map(x => x.opsPerSec), unlink: rates[i].unlink.map(x => x.opsPerSec)},
        }
        const cpuMedian = (xs: Array<number | undefined>) => (xs.some(x => x === undefined) ? undefined : median(xs as number[]))
        if (target !== 'native') rec.cpuUsPerOp = {create: cpuMedian(cpus[i].create)!, stat: cpuMedian(cpus[i].stat)!, unlink: cpuMedian(cpus[i].unlink)!}
        const p = pairedRates[i]
        if (paired) rec.paired = {files: smallest, create: medianRate(p.create), stat: medianRate(p.stat), unlink: medianRate(p.unlink)}
        plan.into.meta.push(rec)
        const show = (op: MetaOp) => `${op} ${fmt(rec[op].opsPerSec)}/s${rounds > 1 ? ` (${rec.rounds![op].map(x => fmt(x)).join(', ')})` : ''}`
        log(`  ${target}: ${show('create')}, ${show('stat')}, ${show('unlink')}` +
          (rec.memory ? `; server RSS ${fmt(rec.memory.rssMiB)} MiB (peak ${fmt(rec.memory.hwmMiB)})` : ''))
      }
    }
  }
}

async function benchParallel(cfg: Config, targets: TargetName[]): Promise<void> {
  const k = cfg.clients
  const per = Math.floor(cfg.parallelFiles / k)
  for (const target of targets) {
    log(`parallel: ${target}, ${k} clients x ${fmt(per)} files, then ${k} x ${sizeName(cfg.parallelBytes / k)} written`)
    const s = await openFresh(target, 'parallel')
    const jobs = (op: 'create' | 'stat' | 'unlink'): Job[] =>
      Array.from({length: k}, (_, c) => ({op, dirs: [path.join(s.root, `c${c}`)], layout: 'flat' as const, from: 0, to: per}))
    await driver({op: 'mkdirs', dirs: Array.from({length: k}, (_, c) => path.join(s.root, `c${c}`)), layout: 'flat', to: per})
    const create = await drivers(jobs('create'))
    await sleep(ATTR_EXPIRE_MS)
    const stat = await drivers(jobs('stat'))
    await sleep(ATTR_EXPIRE_MS)
    const unlink = await drivers(jobs('unlink'))
    const size = Math.floor(cfg.parallelBytes / k / MiB) * MiB
    const write = await drivers(Array.from({length: k}, (_, c) => ({op: 'seqwrite' as const, file: path.join(s.root, `w${c}`), size, bs: MiB})))
    await close(s)
    const rec: ParallelRecord = {
      target, clients: k, files: per * k, create: rate(create), stat: rate(stat), unlink: rate(unlink),
      writeBytes: write.bytes, writeMBps: write.bytes / write.sec / 1e6,
    }
    results.parallel.push(rec)
    log(`  create ${fmt(rec.create.opsPerSec)}/s, stat ${fmt(rec.stat.opsPerSec)}/s, unlink ${fmt(rec.unlink.opsPerSec)}/s, write ${fmt(rec.writeMBps)} MB/s`)
  }
}

interface IoRound {
  writeMBps: number
  readMBps: number
  /** Server CPU (all threads) per MiB moved, µs. */
  writeCpuUsPerMiB?: number
  readCpuUsPerMiB?: number
}

async function writeRead(s: Session, name: string, size: number, bs: number): Promise<IoRound> {
  const file = path.join(s.root, name)
  const c0 = s.cpuMs()
  const w = await driver({op: 'seqwrite', file, size, bs})
  const c1 = s.cpuMs()
  const r = await driver({op: 'seqread', file, size, bs, verify: !s.target.startsWith('noop')})
  const c2 = s.cpuMs()
  fs.rmSync(file)
  const perMiB = (a?: number, b?: number) => (a === undefined || b === undefined ? undefined : ((b - a) * 1000) / (size / MiB))
  return {writeMBps: size / w.sec / 1e6, readMBps: size / r.sec / 1e6, writeCpuUsPerMiB: perMiB(c0, c1), readCpuUsPerMiB: perMiB(c1, c2)}
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/**
 * Sequential write + read of `size` bytes in blocks of `bs` on every target, in rounds: each
 * round visits the targets in turn (all mounted at once), starting one target later than the
 * round before, with a `sync` before each turn; the median round counts.
 */
async function ioRounds(cfg: Config, sessions: Session[], label: string, size: number, bs: number): Promise<IoRecord[]> {
  const per = sessions.map(() => [] as IoRound[])
  for (let r = 0; r < cfg.rounds; r++) {
    // Round r starts at target r: no target always comes right after the others' writes.
    for (let k = 0; k < sessions.length; k++) {
      const i = (r + k) % sessions.length
      // What the previous turn wrote is flushed first, untimed: else the kernel's writeback of it
      // (gigabytes, once past the dirty background threshold) competes with this turn for the CPUs.
      await exec('sync', [])
      per[i].push(await writeRead(sessions[i], `${label}-${r}`, size, bs))
    }
  }

  return sessions.map((s, i) => ({
    target: s.target, bytes: size, bs,
    writeMBps: median(per[i].map(x => x.writeMBps)), readMBps: median(per[i].map(x => x.readMBps)), rounds: per[i],
  }))
}

async function openAll(targets: TargetName[], label: string): Promise<Session[]> {
  const sessions: Session[] = []
  for (const target of targets) sessions.push(await openFresh(target, label))
  return sessions
}

const showRounds = (rec: IoRecord, key: 'writeMBps' | 'readMBps'): string =>
  `${fmt(rec[key])} MB/s${rec.rounds.length > 1 ? ` (${rec.rounds.map(x => fmt(x[key])).join(', ')})` : ''}`

/** Sequential write + read of `bytes` in 1 MiB blocks on `targets` (mounted at once), in rounds. */
async function benchSeq(cfg: Config, targets: TargetName[], label = 'seq', bytes = cfg.seqBytes, into = results.seq): Promise<void> {
  log(`${label}: ${targets.join(', ')}: ${sizeName(bytes)} with 1 MiB blocks, ${cfg.rounds} rounds`)
  const sessions = await openAll(targets, label)
  const recs = await ioRounds(cfg, sessions, label, bytes, MiB)
  for (const s of sessions) await close(s)
  for (const rec of recs) {
    into.push(rec)
    log(`  ${rec.target}: write ${showRounds(rec, 'writeMBps')}, read ${showRounds(rec, 'readMBps')}`)
  }
}

/**
 * Both FUSE bindings side by side (issue 8): native, the do-nothing filesystem on each binding,
 * and razorfs on each; create/stat/unlink of cfg.bindingsFiles files in one directory and a
 * listing of it (interleaved, in rounds, as benchMeta), then sequential write and read of
 * cfg.bindingsBytes in 1 MiB blocks (in rounds, as benchSeq).
 */
async function benchBindings(cfg: Config): Promise<void> {
  const targets = BINDING_TARGETS
  const n = cfg.bindingsFiles
  await benchMeta(cfg, targets, {layouts: ['flat'], sizes: [n], rounds: () => cfg.rounds, readdirN: n, lifecycle: false, paired: false, into: results.bindings})
  await benchSeq(cfg, targets, 'bindings-seq', cfg.bindingsBytes, results.bindings.seq)
}

async function benchSweep(cfg: Config, targets: TargetName[]): Promise<void> {
  log(`sweep: ${targets.join(', ')}: ${sizeName(cfg.sweepBytes)} per block size, ${cfg.rounds} rounds`)
  const sessions = await openAll(targets, 'sweep')
  for (const bs of cfg.sweepBs) {
    const recs = await ioRounds(cfg, sessions, `sweep-${bs}`, cfg.sweepBytes, bs)
    results.sweep.push(...recs)
    log(`  bs ${bsName(bs)}: ${recs.map(r => `${r.target} write ${fmt(r.writeMBps)}, read ${fmt(r.readMBps)}`).join('; ')} MB/s`)
  }

  for (const s of sessions) await close(s)
}

let fioPath: string | undefined | null = null
async function findFio(): Promise<string | undefined> {
  if (fioPath !== null) return fioPath
  const r = await exec('sh', ['-c', 'command -v fio'])
  fioPath = r.code === 0 ? r.stdout.trim() : undefined
  return fioPath
}

async function fio(file: string, rw: 'randread' | 'randwrite', size: number, seconds: number): Promise<number> {
  const r = await exec((await findFio())!, [
    `--name=${rw}`, `--filename=${file}`, `--rw=${rw}`, '--bs=4k', '--direct=1', '--ioengine=psync', '--iodepth=1',
    `--size=${size}`, '--time_based', `--runtime=${seconds}`, '--output-format=json',
  ], {env: cleanEnv()})
  if (r.code !== 0) throw new Error(`fio ${rw} failed: ${r.stderr.slice(0, 500)}`)
  const job = (JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as {jobs: Array<Record<'read' | 'write', {iops: number}>>}).jobs[0]
  return rw === 'randread' ? job.read.iops : job.write.iops
}

async function benchRandom(cfg: Config, targets: TargetName[]): Promise<void> {
  const tool = (await findFio()) === undefined ? 'driver' : 'fio'
  log(`random 4 KiB (${tool}, O_DIRECT, one client): ${targets.join(', ')}, ${sizeName(cfg.randBytes)} file, ${cfg.randSeconds} s each`)
  const sessions = await openAll(targets, 'random')
  const files = sessions.map(s => path.join(s.root, 'rand'))
  for (const file of files) await driver({op: 'seqwrite', file, size: cfg.randBytes, bs: MiB})
  const iops = async (file: string, rw: 'randread' | 'randwrite'): Promise<number> => {
    if (tool === 'fio') return fio(file, rw, cfg.randBytes, cfg.randSeconds)
    const r = await driver({op: rw, file, size: cfg.randBytes, seconds: cfg.randSeconds})
    return r.ops / r.sec
  }

  const reads: number[] = []
  const writes: number[] = []
  for (const file of files) reads.push(await iops(file, 'randread'))
  for (const file of files) writes.push(await iops(file, 'randwrite'))
  for (const s of sessions) await close(s)
  for (const [i, target] of targets.entries()) {
    results.random.push({target, tool, fileBytes: cfg.randBytes, seconds: cfg.randSeconds, readIops: reads[i], writeIops: writes[i]})
    log(`  ${target}: randread ${fmt(reads[i])} IOPS, randwrite ${fmt(writes[i])} IOPS`)
  }
}

/** Top-level packages of node_modules (scoped ones by package), in name order, up to `limit` entries. */
function treeSubset(source: string, limit: number): string[] {
  const out: string[] = []
  let count = 0
  const countOf = (p: string): number => fs.readdirSync(p, {recursive: true}).length + 1
  const isDir = (p: string): boolean => fs.lstatSync(p).isDirectory()
  for (const name of fs.readdirSync(source).sort()) {
    if (name.startsWith('.') || !isDir(path.join(source, name))) continue
    const packages = name.startsWith('@') ? fs.readdirSync(path.join(source, name)).sort().map(sub => `${name}/${sub}`).filter(p => isDir(path.join(source, p))) : [name]
    for (const pkg of packages) {
      if (count >= limit) return out
      out.push(`node_modules/${pkg}`)
      count += countOf(path.join(source, pkg))
    }
  }

  return out
}

async function benchTree(cfg: Config, targets: TargetName[]): Promise<void> {
  const tarball = path.join(workDir, 'tree.tar')
  // The real directory: a node_modules symlink would be packed as one entry.
  const source = fs.realpathSync(path.join(REPO, 'node_modules'))
  const members = cfg.treeEntries === undefined ? ['node_modules'] : treeSubset(source, cfg.treeEntries)
  log(`tree: packing ${source}${cfg.treeEntries === undefined ? '' : ` (${members.length} packages, about ${fmt(cfg.treeEntries)} entries)`} into ${tarball}`)
  const pack = await exec('tar', ['-cf', tarball, '-C', path.dirname(source), ...members])
  if (pack.code !== 0) throw new Error(`tar -c failed: ${pack.stderr}`)
  const list = await exec('tar', ['-tf', tarball])
  const entries = list.stdout.split('\n').filter(Boolean).length
  const bytes = fs.statSync(tarball).size
  results.treeInfo = {entries, bytes, source: cfg.treeEntries === undefined ? 'node_modules of this repo' : `the first ${members.length} packages of this repo's node_modules`}
  log(`  ${fmt(entries)} entries, ${sizeName(Math.round(bytes / MiB) * MiB)} tarball`)
  for (const target of targets) {
    log(`tree: ${target}: tar -x, find, rm -rf`)
    const s = await openFresh(target, 'tree')
    const dest = path.join(s.root, 'tree')
    fs.mkdirSync(dest)
    const untar = await exec('tar', ['-xf', tarball, '-C', dest])
    if (untar.code !== 0) throw new Error(`${target}: tar -x failed: ${untar.stderr.slice(0, 500)}`)
    await sleep(ATTR_EXPIRE_MS)
    const find = await exec('find', [dest])
    const found = find.stdout.split('\n').filter(Boolean).length - 1
    if (find.code !== 0 || found < entries) throw new Error(`${target}: find exit ${find.code}, ${found} entries of ${entries}: ${find.stderr.slice(0, 500)}`)
    await sleep(ATTR_EXPIRE_MS)
    const rm = await exec('rm', ['-rf', dest])
    if (rm.code !== 0 || fs.existsSync(dest)) throw new Error(`${target}: rm -rf failed: ${rm.stderr.slice(0, 500)}`)
    await close(s)
    const rec: TreeRecord = {target, entries, bytes, untarSec: untar.ms / 1000, findSec: find.ms / 1000, rmSec: rm.ms / 1000}
    results.tree.push(rec)
    log(`  untar ${rec.untarSec.toFixed(2)} s, find ${rec.findSec.toFixed(2)} s, rm -rf ${rec.rmSec.toFixed(2)} s`)
  }
}

async function benchStorage(cfg: Config): Promise<void> {
  // bench/storage.ts writes bench/results/storage.json beside its own build: in the copy.
  const file = path.join(APP, 'bench/results/storage.json')
  fs.rmSync(file, {force: true})
  log(`storage: bench/storage.ts${Object.keys(cfg.storageEnv).length > 0 ? ` (${Object.entries(cfg.storageEnv).map(([k, v]) => `${k}=${v}`).join(' ')})` : ''}`)
  const r = await exec(process.execPath, ['--expose-gc', path.join(HERE, 'storage.js')], {env: {...cleanEnv(), ...cfg.storageEnv}, inheritStderr: true})
  if (!fs.existsSync(file)) throw new Error(`bench/storage.ts wrote no results (exit ${r.code})`)
  results.storage = {exitCode: r.code, json: JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, any>, markdown: r.stdout}
  // A full run updates bench/results/storage.json as `npm run bench:storage` does; a quick one
  // (smaller sizes) leaves the last full numbers there.
  if (cfg.mode === 'full' && APP !== REPO) fs.copyFileSync(file, path.join(RESULTS, 'storage.json'))
}

async function benchRecovery(cfg: Config): Promise<void> {
  log('recovery: checkpoint after N creates; open after a crash with N MiB of WAL')
  const r = await exec(process.execPath, ['--expose-gc', path.join(HERE, 'recovery.js'), JSON.stringify(cfg.recovery)], {env: cleanEnv(), inheritStderr: true})
  if (r.code !== 0) throw new Error(`recovery benchmark failed (exit ${r.code})`)
  results.recovery = JSON.parse(r.stdout) as RecoveryResult
}

async function benchProfile(cfg: Config, targets: TargetName[]): Promise<void> {
  const dir = path.join(RESULTS, 'profiles')
  fs.mkdirSync(dir, {recursive: true})
  const source = fs.realpathSync(path.join(REPO, 'node_modules'))
  const tarball = path.join(workDir, 'profile-tree.tar')
  const pack = await exec('tar', ['-cf', tarball, '-C', path.dirname(source), ...treeSubset(source, cfg.profileTreeEntries)])
  if (pack.code !== 0) throw new Error(`tar -c failed: ${pack.stderr}`)
  const tarEntries = (await exec('tar', ['-tf', tarball])).stdout.split('\n').filter(Boolean).length
  for (const target of targets.filter(t => t !== 'native')) {
    log(`profile: ${target} server under --cpu-prof: ${fmt(cfg.profileFiles)} create/stat/unlink, ${sizeName(cfg.profileBytes)} written (1 MiB blocks), untar of ${fmt(tarEntries)} entries`)
    const file = path.join(dir, `${target}.cpuprofile`)
    fs.rmSync(file, {force: true})
    const s = await open(target, 'profile', {profile: dir})
    const job = {dirs: [path.join(s.root, 'p')], layout: 'flat' as const, from: 0, to: cfg.profileFiles}
    await driver({op: 'mkdirs', ...job})
    const phases: Record<string, DriverResult> = {}
    phases.create = await driver({op: 'create', ...job})
    await sleep(ATTR_EXPIRE_MS)
    phases.stat = await driver({op: 'stat', ...job})
    phases.readdir = await driver({op: 'readdir', dirs: job.dirs, expect: cfg.profileFiles, repeats: 30})
    await sleep(ATTR_EXPIRE_MS)
    phases.unlink = await driver({op: 'unlink', ...job})
    phases.write = await driver({op: 'seqwrite', file: path.join(s.root, 'w'), size: cfg.profileBytes, bs: MiB})
    // untar of a small source tree (more files than razorfs keeps content fds open: 256)
    const dest = path.join(s.root, 'tree')
    fs.mkdirSync(dest)
    const startMono = Number(process.hrtime.bigint() / 1000n)
    const untar = await exec('tar', ['-xf', tarball, '-C', dest])
    if (untar.code !== 0) throw new Error(`${target}: tar -x failed: ${untar.stderr.slice(0, 500)}`)
    phases.untar = {ops: tarEntries, bytes: 0, sec: untar.ms / 1000, startMs: 0, endMs: 0, startMono, endMono: Number(process.hrtime.bigint() / 1000n)}
    await close(s)
    const profile = loadProfile(file)
    const rec: ProfileRecord = {target, files: cfg.profileFiles, writeBytes: cfg.profileBytes, file: path.relative(REPO, file), phases: {}}
    for (const [name, r] of Object.entries(phases)) {
      rec.phases[name] = {
        ...selfTimes(profile, r.startMono, r.endMono, 12), ops: r.ops, opsPerSec: r.ops / r.sec,
        fromUs: r.startMono, toUs: r.endMono, breakdown: breakdown(profile, r.startMono, r.endMono),
      }
      if (target === 'razorfs') {
        const rows: FlameRow[] = flameRows(profile, r.startMono, r.endMono)
        await renderFlame(rows, `razorfs server, ${name} phase: CPU time by call stack (width = inclusive time; idle left out)`, path.join(CHARTS, `flame-${name}.png`))
        flames.add(name)
      }

      const b = rec.phases[name].breakdown
      log(`  ${name}: ${fmt(rec.phases[name].opsPerSec)}/s; idle ${b.idlePct.toFixed(0)}%, razorfs code ${b.razorfsPct.toFixed(0)}%, binding ${b.bindingPct.toFixed(0)}%, GC ${b.gcPct.toFixed(0)}%, other ${b.otherPct.toFixed(0)}%; ` +
        `top: ${rec.phases[name].top.slice(0, 3).map(t => `${t.fn} ${t.pct.toFixed(0)}%`).join('; ')}`)
    }

    results.profile.push(rec)
  }
}

// ---- targets and report --------------------------------------------------------------------------

interface TargetCheck {
  name: string
  measured: string
  threshold: string
  pass: boolean | undefined
  note?: string
}

function machine(): Record<string, string> {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8')
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? '?'
  const fuseNative = (JSON.parse(fs.readFileSync(path.join(REPO, 'node_modules/fuse-native/package.json'), 'utf8')) as {version: string}).version
  let fsType = '?'
  let best = ''
  for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [, mnt, type] = line.split(' ')
    if (mnt !== undefined && (workDir === mnt || workDir.startsWith(mnt.endsWith('/') ? mnt : mnt + '/')) && mnt.length > best.length) {
      best = mnt
      fsType = type
    }
  }

  return {
    cpu: model,
    cores: String(os.cpus().length),
    ram: `${(os.totalmem() / GiB).toFixed(1)} GiB`,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    'fuse-native': fuseNative,
    'work dir': `${path.dirname(workDir)} (${fsType} on ${best})`,
    'razorfs server': `\`razorfs mount -f${razorfsBinding === undefined ? '' : ` --binding ${razorfsBinding}`}\` (binding: ${razorfsBinding ?? 'the mount command\'s default, ll'})`,
  }
}

function byTarget<T extends {target: TargetName}>(rows: T[], target: TargetName): T | undefined {
  return rows.find(r => r.target === target)
}

const ratio = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined || b === 0 ? undefined : a / b)
/**
 * Ratio of two targets' figures. With the rounds of both (taken in turns, so round i of each ran
 * under the same load), the median of the per-round ratios; else the ratio of the reported values.
 */
function pairedRatio(a: number | undefined, b: number | undefined, ra?: number[], rb?: number[]): number | undefined {
  if (ra !== undefined && rb !== undefined && ra.length > 1 && ra.length === rb.length) return median(ra.map((x, i) => x / rb[i]))
  return ratio(a, b)
}

function metaRatio(layout: Layout, files: number, op: 'create' | 'stat' | 'unlink', of: TargetName, to: TargetName, rows = results.meta): number | undefined {
  const a = rows.find(m => m.target === of && m.layout === layout && m.files === files)
  const b = rows.find(m => m.target === to && m.layout === layout && m.files === files)
  return pairedRatio(a?.[op].opsPerSec, b?.[op].opsPerSec, a?.rounds?.[op], b?.rounds?.[op])
}

function ioRatio(rows: IoRecord[], bs: number, key: 'writeMBps' | 'readMBps', of: TargetName, to: TargetName): number | undefined {
  const a = rows.find(r => r.target === of && r.bs === bs)
  const b = rows.find(r => r.target === to && r.bs === bs)
  return pairedRatio(a?.[key], b?.[key], a?.rounds.map(x => x[key]), b?.rounds.map(x => x[key]))
}

/** A target's server CPU per MiB moved, median of its rounds (undefined if a round lacks it). */
function ioCpuMedian(rows: IoRecord[], t: TargetName, key: 'writeCpuUsPerMiB' | 'readCpuUsPerMiB'): number | undefined {
  const xs = byTarget(rows, t)?.rounds.map(x => x[key])
  return xs === undefined || xs.some(x => x === undefined) ? undefined : median(xs as number[])
}

const BINDING_OPS = ['create', 'stat', 'unlink', 'readdir', 'seq write', 'seq read'] as const
type BindingOp = (typeof BINDING_OPS)[number]

/** One figure of the bindings workload: ops/s, entries/s or MB/s (higher is better). */
function bindingFigure(op: BindingOp, target: TargetName): number | undefined {
  const b = results.bindings
  if (op === 'readdir') return byTarget(b.readdir, target)?.entriesPerSec
  if (op === 'seq write' || op === 'seq read') return byTarget(b.seq, target)?.[op === 'seq write' ? 'writeMBps' : 'readMBps']
  return byTarget(b.meta, target)?.[op].opsPerSec
}

/** The same figure of two targets of the bindings workload, as a ratio (paired by round where there are rounds). */
function bindingRatio(op: BindingOp, of: TargetName, to: TargetName): number | undefined {
  const b = results.bindings
  if (op === 'readdir') return ratio(bindingFigure(op, of), bindingFigure(op, to))
  if (op === 'seq write' || op === 'seq read') return ioRatio(b.seq, MiB, op === 'seq write' ? 'writeMBps' : 'readMBps', of, to)
  const files = b.meta[0]?.files ?? 0
  return metaRatio('flat', files, op, of, to, b.meta)
}

const rx = (x: number | undefined): string => (x === undefined ? '-' : `${x.toFixed(2)}x`)
const cell = (x: number | undefined, digits = 0): string => (x === undefined ? '-' : fmt(x, digits))

function checks(cfg: Config): TargetCheck[] {
  const out: TargetCheck[] = []
  const largest = Math.max(...cfg.metaSizes)
  const smallest = Math.min(...cfg.metaSizes)
  const quick = cfg.mode === 'quick'

  // 1. metadata >= 0.8x the ceiling: the worst ratio over sizes and layouts, per operation.
  for (const op of ['create', 'stat', 'unlink'] as const) {
    let worst: {r: number; where: string} | undefined
    for (const rec of results.meta.filter(m => m.target === 'razorfs')) {
      const r = metaRatio(rec.layout, rec.files, op, 'razorfs', 'noop')
      if (r !== undefined && (worst === undefined || r < worst.r)) worst = {r, where: `${rec.layout} ${countName(rec.files)}`}
    }

    if (worst !== undefined) out.push({name: `${op}: razorfs / noop ceiling (worst of all sizes and layouts)`, measured: `${rx(worst.r)} (${worst.where})`, threshold: '>= 0.8x', pass: worst.r >= 0.8})
  }

  const rd = ratio(byTarget(results.readdir, 'razorfs')?.entriesPerSec, byTarget(results.readdir, 'noop')?.entriesPerSec)
  if (rd !== undefined) out.push({name: `readdir of ${countName(cfg.readdirN)} entries: razorfs / noop`, measured: rx(rd), threshold: '>= 0.8x', pass: rd >= 0.8})

  // 2. sequential >= 0.7x the ceiling.
  for (const dir of ['write', 'read'] as const) {
    const key = dir === 'write' ? 'writeMBps' : 'readMBps'
    const r = ioRatio(results.seq, MiB, key, 'razorfs', 'noop')
    if (r !== undefined) out.push({name: `sequential ${dir} ${sizeName(cfg.seqBytes)}, 1 MiB blocks: razorfs / noop`, measured: rx(r), threshold: '>= 0.7x', pass: r >= 0.7})
  }

  // 3. no degradation with size: the large phase against the rounds of the small size run inside
  // it (MetaRecord.paired); the small size's own phase, a quarter of an hour earlier, is shown too.
  if (largest > smallest) {
    type Worst = {r: number; where: string} | undefined
    const lower = (w: Worst, r: number, where: string): Worst => (w === undefined || r < w.r ? {r, where} : w)
    let paired: Worst
    let apart: Worst
    for (const layout of ['flat', 'deep'] as const) {
      const big = results.meta.find(m => m.target === 'razorfs' && m.layout === layout && m.files === largest)
      const small = results.meta.find(m => m.target === 'razorfs' && m.layout === layout && m.files === smallest)
      for (const op of ['create', 'stat', 'unlink'] as const) {
        if (big?.paired !== undefined) paired = lower(paired, big[op].opsPerSec / big.paired[op].opsPerSec, `${op}, ${layout}`)
        if (big !== undefined && small !== undefined) apart = lower(apart, big[op].opsPerSec / small[op].opsPerSec, `${op}, ${layout}`)
      }
    }

    const judged = paired ?? apart
    if (judged !== undefined) {
      const notes = [
        paired !== undefined && apart !== undefined ? `against the ${countName(smallest)} phase run before: worst ${rx(apart.r)} (${apart.where})` : undefined,
        quick ? 'quick run: the target compares 1M with 10k' : undefined,
      ].filter(x => x !== undefined)
      out.push({
        name: `razorfs ops/s at ${countName(largest)} files / at ${countName(smallest)}${paired === undefined ? '' : ` (${countName(smallest)} in rounds inside the ${countName(largest)} phases)`} (worst op and layout)`,
        measured: `${rx(judged.r)} (${judged.where})`, threshold: '>= 0.8x', pass: judged.r >= 0.8,
        note: notes.length > 0 ? notes.join('; ') : undefined,
      })
    }
  }

  // Issue 8: the ll binding's ceiling and razorfs on it beat fuse-native's, operation by operation.
  for (const [of, to, what] of [['noop-ll', 'noop', 'do-nothing ceiling'], ['razorfs-ll', 'razorfs-fn', 'razorfs']] as const) {
    const rs = BINDING_OPS.map(op => ({op, r: bindingRatio(op, of, to)})).filter((x): x is {op: BindingOp; r: number} => x.r !== undefined)
    if (rs.length === 0) continue
    const worst = rs.reduce((a, b) => (b.r < a.r ? b : a))
    out.push({
      name: `${what}: ll / fuse-native binding (worst of ${rs.map(x => x.op).join(', ')})`,
      measured: `${rx(worst.r)} (${worst.op})`, threshold: '> 1x', pass: worst.r > 1,
    })
  }

  // 4-6. mount time, memory, fsck with the largest image.
  const lives = results.razorfsLife
  if (lives.length > 0) {
    const sizeNote = quick ? `quick run: ${countName(largest)} files; the target is for 1M inodes` : undefined
    const mount = Math.max(...lives.map(l => l.remountMs))
    out.push({name: `mount of a ${countName(largest)}-file image (spawn of \`razorfs mount -f\` to mounted)`, measured: `${fmt(mount)} ms`, threshold: '< 1000 ms', pass: mount < 1000, note: sizeNote})
    const peak = Math.max(...lives.map(l => l.memory?.hwmMiB ?? 0))
    const peakMB = (peak * MiB) / 1e6
    out.push({name: `razorfs server peak RSS with ${countName(largest)} files (VmHWM)`, measured: `${fmt(peakMB)} MB`, threshold: '< 200 MB', pass: peakMB < 200, note: sizeNote})
    const implemented = lives.every(l => l.fsck.implemented)
    const fsckMs = Math.max(...lives.map(l => l.fsck.ms))
    out.push({
      name: `fsck -n -f of a ${countName(largest)}-file image`,
      measured: implemented ? `${fmt(fsckMs / 1000, 1)} s (exit ${lives.map(l => l.fsck.code).join(', ')})` : 'fsck not implemented yet',
      threshold: '< 15 s', pass: implemented ? fsckMs < 15_000 : undefined, note: sizeNote,
    })
  }

  return out
}

/**
 * Touch most of the machine's free memory once before anything is timed: write a file in
 * /dev/shm as large as 3/4 of the available memory, then delete it. On this VM (a Firecracker
 * guest) a page of RAM is slow the first time it is touched after boot, and every write to the
 * host filesystem lands in page cache, often on such pages: after writing and deleting 11 GB in
 * /dev/shm (26 s, ~420 MB/s), razorfs's 1 GiB sequential write went from 0.47x of noop to 1.13x
 * and 1.32x, the next runs on the same code (noop copies into no page cache; native does, too).
 */
function warmMemory(): {gib: number; sec: number} | undefined {
  const kib = /MemAvailable:\s+(\d+)/.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1]
  let shm: fs.StatsFs
  try {
    shm = fs.statfsSync('/dev/shm')
  } catch {
    return undefined // no /dev/shm: nothing to warm with
  }

  const block = 64 * MiB
  const bytes = Math.floor(Math.min(Number(kib ?? 0) * 1024 * 0.75, shm.bavail * shm.bsize * 0.9) / block) * block
  if (bytes <= 0) return undefined
  const file = path.join('/dev/shm', `razorfs-bench-warm-${process.pid}`)
  const buf = Buffer.alloc(block, 0x5A)
  const start = Date.now()
  const fd = fs.openSync(file, 'w', 0o600)
  try {
    for (let done = 0; done < bytes; done += block) fs.writeSync(fd, buf)
  } finally {
    fs.closeSync(fd)
    fs.rmSync(file, {force: true})
  }

  return {gib: bytes / GiB, sec: (Date.now() - start) / 1000}
}

/** Jiffies of the machine's CPUs from /proc/stat: [stolen by the hypervisor, all]. */
function cpuJiffies(): [number, number] {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number)
  return [f[7] ?? 0, f.reduce((a, b) => a + b, 0)]
}

/** Share of CPU time the hypervisor took (steal) between two cpuJiffies() readings, %. */
const stealPct = (a: [number, number], b: [number, number]): number => (b[1] > a[1] ? (100 * (b[0] - a[0])) / (b[1] - a[1]) : 0)

function report(cfg: Config, args: Args, mach: Record<string, string>, load: {start: number[]; end: number[]; stealPct: number}, totalSec: number, targetChecks: TargetCheck[]): string {
  const L: string[] = []
  const cmd = cfg.mode === 'quick' ? 'npm run bench -- --quick' : 'npm run bench'
  const partial = args.partial
  L.push('# razorfs benchmarks', '')
  L.push(`Generated by \`${cmd}\`${partial ? ` (partial: workloads ${[...args.only].join(', ')}; targets ${args.targets.join(', ')})` : ''} on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC in ${fmt(totalSec / 60, 1)} min. ` +
    'Do not edit: the whole file is rewritten by each run; the numbers are also in `bench/results/bench.json`.', '')
  if (cfg.mode === 'quick') L.push('**This is a quick run** (10k-file scale, small sizes): a sanity check of the suite, not the numbers the targets are judged on. `npm run bench` runs the full sizes (1M files, 1 GiB).', '')
  L.push('## Machine', '')
  L.push('| | |', '|---|---|')
  for (const [k, v] of Object.entries(mach)) L.push(`| ${k} | ${v} |`)
  L.push(`| load average | ${load.start.map(x => x.toFixed(2)).join(' ')} at the start, ${load.end.map(x => x.toFixed(2)).join(' ')} at the end |`, `| CPU steal | ${load.stealPct.toFixed(1)}% of CPU time taken by the hypervisor during the run (/proc/stat) |`, '')
  L.push('Commands: `npm run bench` (full: 10k/100k/1M files, 1 GiB; its duration is at the top), `npm run bench -- --quick` (10k scale, a few minutes), ' +
    '`npm run bench -- --only meta,seq --targets noop,razorfs` (a subset, written to bench/results/partial/), `npm run bench -- --only meta --sizes 1m --layouts flat` (one metadata phase, also partial), `npm run bench -- --only bindings` (the two FUSE bindings side by side), `npm run bench -- --no-profile`, `npm run bench:storage` (storage layer alone).', '')

  L.push('## Targets', '')
  L.push('Ratios are measured in this run against the do-nothing fuse-native filesystem (`noop`: the ceiling of any JS filesystem on fuse-native) or against razorfs itself. ' +
    'Where a figure was measured in rounds (the targets taking turns), a ratio is the median of the per-round ratios: round i of each target ran under the same load.', '')
  L.push('| target | measured | needs | result |', '|---|---|---|---|')
  for (const t of targetChecks) {
    const result = t.pass === undefined ? 'n/a' : t.pass ? 'PASS' : '**FAIL**'
    L.push(`| ${t.name}${t.note ? ` (${t.note})` : ''} | ${t.measured} | ${t.threshold} | ${result} |`)
  }

  L.push('')
  if (mainChart) L.push(`![ops/s against file count; throughput against block size](${chartLink('bench.png')})`, '')

  if (results.meta.length > 0) {
    L.push('## Metadata: create, stat, unlink (one client)', '')
    L.push('ops/s; the targets take turns in chunks of files within each phase' + (cfg.rounds > 1 ? `; sizes up to ${countName(cfg.metaRoundsUpTo)}: median of ${cfg.rounds} rounds` : '') +
      '. `flat`: all files in one directory. `deep`: four directory levels above every file (fan-out 10, 100 files per leaf directory), the same depth at every size; the directories are made first (not counted).', '')
    L.push('| layout | files | op | native | noop | razorfs | razorfs / noop | razorfs / native |', '|---|---:|---|---:|---:|---:|---:|---:|')
    for (const layout of ['flat', 'deep'] as const) {
      for (const n of cfg.metaSizes) {
        const row = (t: TargetName) => results.meta.find(m => m.target === t && m.layout === layout && m.files === n)
        if (row('razorfs') === undefined && row('noop') === undefined && row('native') === undefined) continue
        for (const op of ['create', 'stat', 'unlink'] as const) {
          const v = (t: TargetName) => row(t)?.[op].opsPerSec
          L.push(`| ${layout} | ${countName(n)} | ${op} | ${cell(v('native'))} | ${cell(v('noop'))} | ${cell(v('razorfs'))} | ${rx(metaRatio(layout, n, op, 'razorfs', 'noop'))} | ${rx(metaRatio(layout, n, op, 'razorfs', 'native'))} |`)
        }
      }
    }

    L.push('')
    const sizes = [...cfg.metaSizes].sort((a, b) => a - b)
    if (sizes.length > 1) {
      const [small, big] = [countName(sizes[0]), countName(sizes.at(-1)!)]
      const pairedAt = (['create', 'stat', 'unlink'] as const).map(op => `${PAIRED_AT[op].length} in ${op}`).join(', ')
      L.push(`Scaling: ops/s at ${big} files / ops/s at ${small}. "phases": the ${big} phase over the ${small} phase run a quarter of an hour before it; ` +
        `a change of the machine's speed in between moves these (the noop column shows how much). "paired": the ${big} phase over rounds of ${small} files, ` +
        `on a second mount of every target, run inside the ${big} phases (${pairedAt}; median of the rounds inside each operation's phase): ` +
        'taken on the same machine state, they show what size alone costs; the target uses the razorfs one.', '')
      L.push('| layout | op | native, phases | noop, phases | razorfs, phases | native, paired | noop, paired | razorfs, paired |', '|---|---|---:|---:|---:|---:|---:|---:|')
      for (const layout of ['flat', 'deep'] as const) {
        if (!results.meta.some(m => m.layout === layout)) continue
        for (const op of ['create', 'stat', 'unlink'] as const) {
          const at = (t: TargetName, n: number) => results.meta.find(m => m.target === t && m.layout === layout && m.files === n)
          const apart = (t: TargetName) => rx(ratio(at(t, sizes.at(-1)!)?.[op].opsPerSec, at(t, sizes[0])?.[op].opsPerSec))
          const paired = (t: TargetName) => rx(ratio(at(t, sizes.at(-1)!)?.[op].opsPerSec, at(t, sizes.at(-1)!)?.paired?.[op].opsPerSec))
          L.push(`| ${layout} | ${op} | ${apart('native')} | ${apart('noop')} | ${apart('razorfs')} | ${paired('native')} | ${paired('noop')} | ${paired('razorfs')} |`)
        }
      }

      L.push('')
    }
  }

  const withCpu = results.meta.filter(m => m.cpuUsPerOp !== undefined)
  if (withCpu.length > 0) {
    L.push('Server CPU time per operation (user + system, all threads of the server process, from /proc/PID/stat): unlike wall time it hardly depends on the load of the machine, so it shows the cost of a JS filesystem over the do-nothing one directly.', '')
    L.push('| layout | files | op | noop µs/op | razorfs µs/op | razorfs - noop | razorfs / noop |', '|---|---:|---|---:|---:|---:|---:|')
    for (const layout of ['flat', 'deep'] as const) {
      for (const n of cfg.metaSizes) {
        const c = (t: TargetName) => withCpu.find(m => m.target === t && m.layout === layout && m.files === n)?.cpuUsPerOp
        if (c('noop') === undefined && c('razorfs') === undefined) continue
        for (const op of ['create', 'stat', 'unlink'] as const) {
          const a = c('noop')?.[op]
          const b = c('razorfs')?.[op]
          L.push(`| ${layout} | ${countName(n)} | ${op} | ${cell(a)} | ${cell(b)} | ${a === undefined || b === undefined ? '-' : fmt(b - a)} | ${rx(ratio(b, a))} |`)
        }
      }
    }

    L.push('')
  }

  if (results.bindings.meta.length > 0 || results.bindings.seq.length > 0) {
    const b = results.bindings
    L.push('## The two FUSE bindings side by side', '')
    L.push(`Each binding with its own do-nothing filesystem (\`noop\`: bench/noop-fs.ts on fuse-native; \`noop-ll\`: bench/noop-ll.ts on razorfs's libfuse 3 addon, same options as \`--binding ll\`) and razorfs served through it (\`razorfs mount --binding fuse-native|ll\`). ` +
      `create, stat, unlink: ${countName(b.meta[0]?.files ?? cfg.bindingsFiles)} files in one directory, ops/s, the five targets interleaved in chunks, median of ${cfg.rounds} rounds; readdir: entries/s of the best of 3 listings of that directory; ` +
      `sequential: ${sizeName(cfg.bindingsBytes)} in 1 MiB blocks, MB/s, median of ${cfg.rounds} rounds. Ratios ll / fuse-native above 1 mean the ll binding is faster.`, '')
    L.push('| | native | noop (fuse-native) | noop-ll | noop-ll / noop | razorfs fuse-native | razorfs ll | ll / fuse-native |', '|---|---:|---:|---:|---:|---:|---:|---:|')
    for (const op of BINDING_OPS) {
      const v = (t: TargetName) => cell(bindingFigure(op, t))
      L.push(`| ${op} | ${v('native')} | ${v('noop')} | ${v('noop-ll')} | ${rx(bindingRatio(op, 'noop-ll', 'noop'))} | ${v('razorfs-fn')} | ${v('razorfs-ll')} | ${rx(bindingRatio(op, 'razorfs-ll', 'razorfs-fn'))} |`)
    }

    const cpu = (t: TargetName, op: 'create' | 'stat' | 'unlink') => byTarget(b.meta, t)?.cpuUsPerOp?.[op]
    const ioCpu = (t: TargetName, key: 'writeCpuUsPerMiB' | 'readCpuUsPerMiB') => ioCpuMedian(b.seq, t, key)

    L.push('', 'Server CPU (user + system, all threads) per operation (µs) and per MiB moved (µs):', '')
    L.push('| | noop | noop-ll | razorfs fuse-native | razorfs ll |', '|---|---:|---:|---:|---:|')
    for (const op of ['create', 'stat', 'unlink'] as const) L.push(`| ${op} | ${cell(cpu('noop', op))} | ${cell(cpu('noop-ll', op))} | ${cell(cpu('razorfs-fn', op))} | ${cell(cpu('razorfs-ll', op))} |`)
    for (const [name, key] of [['seq write', 'writeCpuUsPerMiB'], ['seq read', 'readCpuUsPerMiB']] as const) {
      L.push(`| ${name} | ${cell(ioCpu('noop', key))} | ${cell(ioCpu('noop-ll', key))} | ${cell(ioCpu('razorfs-fn', key))} | ${cell(ioCpu('razorfs-ll', key))} |`)
    }

    L.push('')
  }

  if (results.readdir.length > 0) {
    L.push(`## readdir of a ${countName(cfg.readdirN)}-entry directory`, '')
    L.push('| target | listings (ms) | entries/s (best) | razorfs / target |', '|---|---|---:|---:|')
    const rz = byTarget(results.readdir, 'razorfs')?.entriesPerSec
    for (const r of results.readdir) L.push(`| ${r.target} | ${r.rounds.map(x => (x * 1000).toFixed(0)).join(', ')} | ${fmt(r.entriesPerSec)} | ${rx(ratio(rz, r.entriesPerSec))} |`)
    L.push('')
  }

  if (results.seq.length > 0 || results.sweep.length > 0) {
    L.push('## Sequential I/O (one client)', '')
    L.push(`MB/s (10^6 bytes/s), median of ${cfg.rounds} rounds (the targets take turns in each, each round starting at the next target, a \`sync\` before each turn). Write: open, write every block, close (no fsync). Read: a new open (the FUSE page cache is dropped at open), read to EOF.`, '')
    if (results.seq.length > 0) {
      L.push(`${sizeName(cfg.seqBytes)}, 1 MiB blocks:`, '')
      L.push('| | native | noop | razorfs | razorfs / noop | razorfs / native |', '|---|---:|---:|---:|---:|---:|')
      for (const dir of ['write', 'read'] as const) {
        const key = dir === 'write' ? 'writeMBps' : 'readMBps'
        const v = (t: TargetName) => byTarget(results.seq, t)?.[key]
        L.push(`| ${dir} | ${cell(v('native'))} | ${cell(v('noop'))} | ${cell(v('razorfs'))} | ${rx(ioRatio(results.seq, MiB, key, 'razorfs', 'noop'))} | ${rx(ioRatio(results.seq, MiB, key, 'razorfs', 'native'))} |`)
      }

      for (const dir of ['write', 'read'] as const) {
        const key = dir === 'write' ? 'writeCpuUsPerMiB' : 'readCpuUsPerMiB'
        const c = (t: TargetName) => ioCpuMedian(results.seq, t, key)

        if (c('noop') !== undefined || c('razorfs') !== undefined) L.push(`| ${dir}: server CPU µs per MiB | - | ${cell(c('noop'))} | ${cell(c('razorfs'))} | ${rx(ratio(c('razorfs'), c('noop')))} | - |`)
      }

      L.push('')
    }

    if (results.sweep.length > 0) {
      L.push(`Block-size sweep, ${sizeName(cfg.sweepBytes)} per block size:`, '')
      L.push('| block | write native | write noop | write razorfs | razorfs / noop | read native | read noop | read razorfs | razorfs / noop |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|')
      for (const bs of cfg.sweepBs) {
        const v = (t: TargetName, key: 'writeMBps' | 'readMBps') => results.sweep.find(r => r.target === t && r.bs === bs)?.[key]
        L.push(`| ${bsName(bs)} | ${cell(v('native', 'writeMBps'))} | ${cell(v('noop', 'writeMBps'))} | ${cell(v('razorfs', 'writeMBps'))} | ${rx(ioRatio(results.sweep, bs, 'writeMBps', 'razorfs', 'noop'))} | ` +
          `${cell(v('native', 'readMBps'))} | ${cell(v('noop', 'readMBps'))} | ${cell(v('razorfs', 'readMBps'))} | ${rx(ioRatio(results.sweep, bs, 'readMBps', 'razorfs', 'noop'))} |`)
      }

      L.push('')
    }
  }

  if (results.random.length > 0) {
    const r0 = results.random[0]
    L.push(`## Random 4 KiB I/O (one client, O_DIRECT, ${r0.tool === 'fio' ? 'fio psync iodepth 1' : 'the driver (fio is not installed): pread/pwrite at uniformly random 4 KiB-aligned offsets'}, ${sizeName(r0.fileBytes)} file, ${r0.seconds} s each)`, '')
    L.push('| | native | noop | razorfs | razorfs / noop | razorfs / native |', '|---|---:|---:|---:|---:|---:|')
    for (const key of ['readIops', 'writeIops'] as const) {
      const v = (t: TargetName) => byTarget(results.random, t)?.[key]
      L.push(`| ${key === 'readIops' ? 'randread IOPS' : 'randwrite IOPS'} | ${cell(v('native'))} | ${cell(v('noop'))} | ${cell(v('razorfs'))} | ${rx(ratio(v('razorfs'), v('noop')))} | ${rx(ratio(v('razorfs'), v('native')))} |`)
    }

    L.push('', 'On the host filesystem O_DIRECT goes to the disk; through FUSE it reaches the server, whose own I/O goes through the host page cache.', '')
  }

  if (results.tree.length > 0 && results.treeInfo) {
    L.push(`## Source tree: untar, find, rm -rf (${fmt(results.treeInfo.entries)} entries, ${sizeName(Math.round(results.treeInfo.bytes / MiB) * MiB)} tarball of ${results.treeInfo.source})`, '')
    L.push('Seconds (lower is better); ratios are razorfs time / target time, so higher is worse.', '')
    L.push('| step | native | noop | razorfs | razorfs / noop | razorfs / native |', '|---|---:|---:|---:|---:|---:|')
    for (const [key, name] of [['untarSec', 'tar -xf'], ['findSec', 'find'], ['rmSec', 'rm -rf']] as const) {
      const v = (t: TargetName) => byTarget(results.tree, t)?.[key]
      L.push(`| ${name} | ${cell(v('native'), 2)} | ${cell(v('noop'), 2)} | ${cell(v('razorfs'), 2)} | ${rx(ratio(v('razorfs'), v('noop')))} | ${rx(ratio(v('razorfs'), v('native')))} |`)
    }

    L.push('')
  }

  if (results.parallel.length > 0) {
    const p0 = results.parallel[0]
    L.push(`## Parallel clients (${p0.clients} processes)`, '')
    L.push(`Metadata: each client creates, stats and unlinks ${fmt(p0.files / p0.clients)} files in its own directory; write: each writes ${sizeName(p0.writeBytes / p0.clients)} to its own file in 1 MiB blocks. Aggregate rate over the span from the first client's start to the last one's end.`, '')
    L.push('| | native | noop | razorfs | razorfs / noop | razorfs / native |', '|---|---:|---:|---:|---:|---:|')
    for (const op of ['create', 'stat', 'unlink'] as const) {
      const v = (t: TargetName) => byTarget(results.parallel, t)?.[op].opsPerSec
      L.push(`| ${op} ops/s | ${cell(v('native'))} | ${cell(v('noop'))} | ${cell(v('razorfs'))} | ${rx(ratio(v('razorfs'), v('noop')))} | ${rx(ratio(v('razorfs'), v('native')))} |`)
    }

    const w = (t: TargetName) => byTarget(results.parallel, t)?.writeMBps
    L.push(`| write MB/s | ${cell(w('native'))} | ${cell(w('noop'))} | ${cell(w('razorfs'))} | ${rx(ratio(w('razorfs'), w('noop')))} | ${rx(ratio(w('razorfs'), w('native')))} |`, '')
  }

  if (results.razorfsLife.length > 0 || results.mountEmptyMs.length > 0) {
    L.push('## razorfs server: mount, memory, stop, fsck', '')
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
    if (results.mountEmptyMs.length > 0) L.push(`Mount of a new (empty) image, spawn to mounted: median ${fmt(med(results.mountEmptyMs))} ms over ${results.mountEmptyMs.length} mounts. ` +
      (results.noopMountMs.length > 0 ? `The do-nothing server (node + fuse-native, no oclif, no image) mounts in ${fmt(med(results.noopMountMs))} ms (median).` : ''), '')
    if (results.razorfsLife.length > 0) {
      L.push('| layout | inodes | RSS with all files (peak) | stop: checkpoint + unmount | image on disk | fsck -n -f | remount | RSS after remount |', '|---|---:|---:|---:|---:|---|---:|---:|')
      for (const l of results.razorfsLife) {
        const mem = (m?: Memory) => (m === undefined ? '-' : `${fmt(m.rssMiB)} MiB (${fmt(m.hwmMiB)} MiB)`)
        const fsck = l.fsck.implemented ? `${fmt(l.fsck.ms / 1000, 2)} s, exit ${l.fsck.code}` : 'not implemented yet'
        L.push(`| ${l.layout} | ${fmt(l.inodes)} | ${mem(l.memory)} | ${fmt(l.stopMs)} ms | ${fmt(l.imageMiB, 1)} MiB | ${fsck} | ${fmt(l.remountMs)} ms | ${mem(l.memoryAfterRemount)} |`)
      }

      L.push('')
    }

    const mems = results.meta.filter(m => m.memory !== undefined)
    if (mems.length > 0) {
      L.push('Server RSS after the stat phase (all files present), MiB, current (peak):', '')
      L.push('| layout | files | noop | razorfs |', '|---|---:|---:|---:|')
      for (const layout of ['flat', 'deep'] as const) {
        for (const n of cfg.metaSizes) {
          const m = (t: TargetName) => results.meta.find(r => r.target === t && r.layout === layout && r.files === n)?.memory
          const s = (x?: Memory) => (x === undefined ? '-' : `${fmt(x.rssMiB)} (${fmt(x.hwmMiB)})`)
          if (m('noop') || m('razorfs')) L.push(`| ${layout} | ${countName(n)} | ${s(m('noop'))} | ${s(m('razorfs'))} |`)
        }
      }

      L.push('')
    }
  }

  if (results.storage || results.recovery) {
    L.push('## Storage layer alone (no FUSE)', '')
    if (results.storage) {
      const j = results.storage.json
      L.push(`From \`bench/storage.ts\`${Object.keys(cfg.storageEnv).length > 0 ? ` with ${Object.entries(cfg.storageEnv).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''} (exit ${results.storage.exitCode}; its full report is in bench.json):`, '')
      L.push('| entries in one directory | lookups/s (hit) | lookups/s (miss) | inserts/s (last 10k) |', '|---:|---:|---:|---:|')
      for (const p of (j.flat?.points ?? []) as Array<Record<string, number>>) L.push(`| ${fmt(p.entries)} | ${fmt(p.lookupsPerSec)} | ${fmt(p.missesPerSec)} | ${fmt(p.windowInsertsPerSec)} |`)
      L.push('')
      L.push('| image | inodes | open read-write | open read-only | close (checkpoint) |', '|---|---:|---:|---:|---:|')
      L.push(`| empty | 1 | ${fmt(j.empty?.openRwMs ?? 0, 2)} ms | ${fmt(j.empty?.openRoMs ?? 0, 2)} ms | - |`)
      for (const name of ['flat', 'deep']) {
        const o = name === 'flat' ? j.flat?.open : j.deep?.open
        if (o) L.push(`| ${name} | ${fmt(o.inodes)} | ${fmt(o.openRwMs, 2)} ms | ${fmt(o.openRoMs, 2)} ms | ${fmt(o.closeMs)} ms |`)
      }

      if (j.deep) L.push('', `Deep tree (${fmt(j.deep.fanout ** (j.deep.depth - 1) * j.deep.leafFiles)} files under ${fmt(j.deep.dirs)} directories): ${fmt(j.deep.createsPerSec)} creates/s, ${fmt(j.deep.pathLookupsPerSec)} path walks/s. Peak RSS of the storage benchmark: ${fmt(j.peakRssMiB)} MiB.`)
      L.push('')
    }

    if (results.recovery) {
      L.push('Checkpoint after N creates (WAL not checkpointed meanwhile):', '')
      L.push('| creates | WAL | Image.checkpoint() |', '|---:|---:|---:|')
      for (const c of results.recovery.checkpoint) L.push(`| ${fmt(c.ops)} | ${fmt(c.walBytes / MiB, 1)} MiB | ${fmt(c.ms, 1)} ms |`)
      L.push('', 'Recovery: Image.open after a crash (Image.abandon, as kill -9 leaves it) with N MiB of WAL; the default checkpoint threshold is 64 MiB, so that is the most a crash leaves:', '')
      L.push('| WAL | transactions | open after the crash (replay + checkpoint) | open of the same image, clean |', '|---:|---:|---:|---:|')
      for (const r of results.recovery.recovery) L.push(`| ${fmt(r.walBytes / MiB, 1)} MiB | ${fmt(r.recovered)} | ${fmt(r.openMs, 1)} ms | ${fmt(r.cleanOpenMs, 1)} ms |`)
      L.push('')
    }
  }

  if (results.profile.length > 0) {
    L.push('## Profiles (server under `node --cpu-prof`)', '')
    L.push('Each server ran one sequence under the profiler (sampling every 0.5 ms): create, stat, unlink of ' +
      `${fmt(results.profile[0].files)} files in one directory (and 30 listings of it before the unlinks), then ${sizeName(results.profile[0].writeBytes)} written in 1 MiB blocks, then \`tar -xf\` of ${fmt(cfg.profileTreeEntries)}-odd entries of node_modules. The profile is cut into phases by the driver's timestamps (same monotonic clock). ` +
      'Shares are of the phase\'s wall time on the server\'s JS thread: idle (waiting for requests), inside razorfs\'s own code (any frame of dist/src on the stack), in fuse-native\'s JS and the tick queue that hands each reply back to libfuse, GC, other. ' +
      'Self time is time in the function itself. ' +
      '`processTicksAndRejections` self time is mostly the native reply call (`fuse_native_signal_*`, which wakes the libfuse thread: on a loaded 2-core machine the JS thread can lose the CPU right there). ' +
      '`(program)` is native code outside JS functions (libuv, the fuse-native binding\'s thread hand-off), `(garbage collector)` is GC. ' +
      `The raw profiles (\`bench/results/profiles/*.cpuprofile\`) open in Chrome DevTools or speedscope; the razorfs flame graphs are below.`, '')
    for (const phase of ['create', 'stat', 'readdir', 'unlink', 'write', 'untar']) {
      const per = results.profile.map(p => ({target: p.target, w: p.phases[phase]})).filter(x => x.w !== undefined)
      if (per.length === 0) continue
      L.push(`### ${phase}`, '')
      const unit = phase === 'write' ? 'blocks' : phase === 'untar' || phase === 'readdir' ? 'entries' : 'ops'
      L.push('| server | rate under the profiler | idle | in razorfs code (src/, inclusive) | fuse-native JS + reply hand-off | GC | other |', '|---|---:|---:|---:|---:|---:|---:|')
      for (const x of per) {
        const b = x.w.breakdown
        L.push(`| ${x.target} | ${fmt(x.w.opsPerSec)} ${unit}/s | ${b.idlePct.toFixed(0)}% | ${x.target === 'razorfs' ? `${b.razorfsPct.toFixed(0)}%` : '-'} | ${b.bindingPct.toFixed(0)}% | ${b.gcPct.toFixed(0)}% | ${b.otherPct.toFixed(0)}% |`)
      }

      L.push('')
      const rows = Math.max(...per.map(x => x.w.top.length))
      L.push(`| ${per.map(x => `${x.target}: function (self time)`).join(' | ')} |`, `|${per.map(() => '---').join('|')}|`)
      for (let i = 0; i < Math.min(rows, 10); i++) L.push(`| ${per.map(x => (x.w.top[i] ? `\`${x.w.top[i].fn}\` ${x.w.top[i].pct.toFixed(1)}%` : '')).join(' | ')} |`)
      L.push('')
      if (flames.has(phase)) L.push(`![razorfs ${phase} flame graph](${chartLink(`flame-${phase}.png`)})`, '')
    }
  }

  L.push('## How each number is measured', '')
  L.push(...METHOD)
  return L.join('\n') + '\n'
}

const METHOD = [
  '- **Targets.** Every workload runs, in this order and in the same run, against: `native`, a directory on the host filesystem; ' +
    '`noop`, `bench/noop-fs.ts`, a fuse-native filesystem served by its own node process and mounted with the options razorfs uses ' +
    '(`use_ino,big_writes,max_write=131072,default_permissions` through fsname, fuse-native timeouts off); it stores no data and no attributes, ' +
    'only the name tree (so that lookups of names never created fail, readdir lists what `find` and `rm -rf` then visit, inode numbers are distinct, and reads end at the written size); ' +
    'reads return the requested length without filling the buffer, writes are accepted without copying; and `razorfs`, `razorfs mount -f` on a fresh data dir in the same host filesystem. ' +
    'Each workload gets fresh mounts (and a fresh data dir). Where a workload can be split, the targets take turns within it (below), so that the load of a shared machine falls on all three alike; ' +
    'the untar and parallel workloads run on one target after the other.',
  '- **Bindings.** The `bindings` workload adds `noop-ll` (`bench/noop-ll.ts`: the same do-nothing filesystem on razorfs\'s libfuse 3 addon, with the ll adapter\'s settings) ' +
    'and razorfs on each binding (`--binding fuse-native`, `--binding ll`), and runs create/stat/unlink and a listing of one flat directory and sequential write and read ' +
    'on all five targets at once, interleaved as the metadata and sequential workloads are.',
  '- **Driver.** `bench/driver.ts`, a separate node process per client making synchronous `node:fs` calls (one system call per operation, nothing else running in it); ' +
    'it times only the loop and checks every result (a failed call stops the run). The same driver runs against all targets.',
  '- **Metadata.** create = `open(O_CREAT|O_EXCL|O_WRONLY)` + `close`; stat = `stat`; unlink = `unlink`, over files 0..N-1 in the same order. ' +
    'All three targets are mounted at once and one driver takes them in turn, a chunk of files (N/8, 100 to 1,000) on each; each target\'s rate is its own operations over its own time. ' +
    'Sizes up to the rounds limit run three rounds (new directories each time) and the median round is reported. ' +
    'Before stat and unlink the driver waits 1.2 s, past libfuse\'s 1 s entry/attribute timeouts, so each call reaches the filesystem rather than the kernel\'s dentry cache. ' +
    'The flat layout puts all N files in one directory; the deep one has four directory levels above every file at every N (made first, not counted). ' +
    'At the largest size each phase is cut, and in each cut a round of the smallest size runs, as that size\'s own rounds do, on a second mount of every target ' +
    'open throughout (a first round, not counted, warms its server up; then three cuts in create, at 1/6, 1/2 and 5/6 of the files, one halfway through stat and through unlink; the cut rounds are not counted in the large phase). ' +
    'The scaling target divides the large phase\'s rate by the median of the rounds inside that operation\'s phase: both are taken in the same stretch of the run, ' +
    'where the small size\'s own phase ran a quarter of an hour earlier, and the speed of this shared machine moves by 20-30% over such spans.',
  '- **readdir.** `readdirSync` of the flat directory at the readdir size, three times; the best counts.',
  '- **Sequential.** The driver writes the file in blocks of the given size (open, write, close, no fsync), then reads it back through a new open (libfuse 2 opens without keep_cache, so the kernel drops the FUSE page cache and every read reaches the server). ' +
    'Three rounds, each visiting the targets in turn, round r starting at target r; before each turn `sync` (untimed) flushes what the previous turn wrote, so that the host\'s writeback of it does not fall into the next target\'s time; the median round is reported. ' +
    'The host filesystem keeps what was written in its page cache (so do razorfs\'s content files). Blocks are checked on read (block numbers of all, contents of every 64th) on native and razorfs.',
  '- **Random 4 KiB.** fio (`--direct=1 --ioengine=psync --bs=4k`, time-based) when it is installed, else the driver doing the same with pread/pwrite on an O_DIRECT descriptor, on a file written sequentially first; reads on the three targets in turn, then writes.',
  '- **Source tree.** A tarball of this repo\'s `node_modules` (made at the start of the run), `tar -xf` into the target, `find` of the tree (its entry count is checked), `rm -rf`, each timed as a whole process, 1.2 s apart.',
  '- **Parallel.** Several driver processes started together (epoch barrier); aggregate rate = all operations / (last end - first start).',
  '- **razorfs server.** Memory is VmRSS / VmHWM of the server process from /proc. At the largest size, after the stat phase, the server is stopped with SIGTERM (checkpoint + unmount, timed), ' +
    '`razorfs fsck -n -f DATA-DIR` runs, and the image is mounted again: the mount time is from spawning `node bin/run.js mount -f` to the mount appearing in /proc/self/mountinfo (node and oclif start-up included). The unlink phase then runs on the remounted image.',
  '- **Storage layer.** `bench/storage.ts` unchanged (lookups/inserts at 10k..1M entries in one directory, a deep tree, open time), and `bench/recovery.ts`: `Image.checkpoint()` after N creates, and `Image.open` after `Image.abandon()` (a crash) left N MiB of WAL.',
  '- **Profiles.** `node --cpu-prof` on the server child\'s command line (Node 20 refuses `--cpu-prof` in NODE_OPTIONS); the profile is cut into phases with the driver\'s CLOCK_MONOTONIC timestamps (`bench/profile.ts`), flame graphs drawn from the same samples.',
  '- **Noise.** The machine may be shared: absolute numbers move between runs; ratios within one run are what the targets use. The load average and the CPU time the hypervisor stole are printed above.',
]

// ---- main ----------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const mode = args.quick ? QUICK : FULL
  const cfg: Config = {...mode, metaSizes: args.sizes ?? mode.metaSizes, metaLayouts: args.layouts ?? mode.metaLayouts}
  workDir = fs.mkdtempSync(path.join(args.dir, 'razorfs-bench-'))
  razorfsBinding = args.binding
  copyBuild()
  fs.mkdirSync(RESULTS, {recursive: true})
  const partial = args.partial
  if (partial) {
    const dir = path.join(RESULTS, 'partial')
    CHARTS = dir
    DOC = path.join(dir, 'BENCHMARKS.md')
    JSON_FILE = path.join(dir, 'bench.json')
  }

  fs.mkdirSync(CHARTS, {recursive: true})
  if (args.only.has('profile')) for (const f of fs.readdirSync(CHARTS)) if (/^flame-.*\.png$/.test(f)) fs.rmSync(path.join(CHARTS, f))
  const warm = warmMemory()
  const loadStart = os.loadavg()
  const jiffiesStart = cpuJiffies()
  const mach = machine()
  mach['memory warm-up'] = warm === undefined ? 'none (no /dev/shm, or no room in it)' :
    `${fmt(warm.gib, 1)} GiB written to /dev/shm and deleted before the run, in ${fmt(warm.sec, 1)} s (a VM's first touch of a page is slow: see bench/run.ts, warmMemory)`
  log(`${cfg.mode} run in ${workDir}; targets ${args.targets.join(', ')}; workloads ${[...args.only].join(', ')}`)
  log(`memory warm-up: ${mach['memory warm-up']}`)
  const onSignal = (): void => {
    log('interrupted: stopping servers')
    void cleanup(args).then(() => process.exit(130))
  }

  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    const t = args.targets
    if (args.only.has('meta')) await benchMeta(cfg, t)
    if (args.only.has('bindings')) await benchBindings(cfg)
    if (args.only.has('seq')) await benchSeq(cfg, t)
    if (args.only.has('sweep')) await benchSweep(cfg, t)
    if (args.only.has('random')) await benchRandom(cfg, t)
    if (args.only.has('tree')) await benchTree(cfg, t)
    if (args.only.has('parallel')) await benchParallel(cfg, t)
    if (args.only.has('storage')) await benchStorage(cfg)
    if (args.only.has('recovery')) await benchRecovery(cfg)
    if (args.only.has('profile')) await benchProfile(cfg, t)
  } finally {
    await cleanup(args)
  }

  const totalSec = (Date.now() - T0) / 1000
  const targetChecks = checks(cfg)
  const load = {start: loadStart, end: os.loadavg(), stealPct: stealPct(jiffiesStart, cpuJiffies())}
  const json = {date: new Date().toISOString(), mode: cfg.mode, args: {...args, only: [...args.only]}, config: cfg, machine: mach, load, totalSec, targets: targetChecks, results}
  fs.writeFileSync(JSON_FILE, JSON.stringify(json, null, 2) + '\n')

  const meta: MetaPoint[] = results.meta.flatMap(m => (['create', 'stat', 'unlink'] as const).map(op => ({target: m.target, layout: m.layout, op, files: m.files, opsPerSec: m[op].opsPerSec})))
  const tput: ThroughputPoint[] = results.sweep.flatMap(r => [
    {target: r.target, dir: 'write' as const, bs: r.bs, mbPerSec: r.writeMBps},
    {target: r.target, dir: 'read' as const, bs: r.bs, mbPerSec: r.readMBps},
  ])
  if (meta.length > 0 || tput.length > 0) {
    await renderMainChart(meta, tput, `razorfs benchmarks (${cfg.mode} run, ${new Date().toISOString().slice(0, 10)})`, path.join(CHARTS, 'bench.png'))
    mainChart = true
  }

  const md = report(cfg, args, mach, load, totalSec, targetChecks)
  fs.writeFileSync(DOC, md)
  log(`wrote ${path.relative(REPO, DOC)}, ${path.relative(REPO, JSON_FILE)}, ${path.relative(REPO, CHARTS)}/*.png in ${fmt(totalSec / 60, 1)} min`)
  for (const c of targetChecks) log(`  ${c.pass === undefined ? 'n/a ' : c.pass ? 'PASS' : 'FAIL'}  ${c.name}: ${c.measured} (needs ${c.threshold})`)
}

async function cleanup(args: Args): Promise<void> {
  for (const s of [...live]) {
    try {
      await s.stop()
    } catch (error) {
      log(`cleanup: ${(error as Error).message}`)
    }
  }

  if (!args.keep && workDir !== '') fs.rmSync(workDir, {recursive: true, force: true})
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${(error as Error)?.stack ?? String(error)}\n`)
  process.exitCode = 1
})
