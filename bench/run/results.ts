/** What the workloads measured: the records the report and bench.json are made of. */
import type {InvalidationKind, Layout} from '../driver.js'
import type {Breakdown, WindowProfile} from '../profile.js'
import type {RecoveryResult} from '../recovery.js'
import type {ScaleBuild} from '../scale.js'
import type {Memory, TargetName} from './targets.js'

/** The steps, in the order a round runs them. */
export const REAL_STEPS = [
  'tar -xf',
  'grep -r',
  'find',
  'du -s',
  'rm -rf',
  'git clone',
  'git status',
  'sqlite',
  'tar -xf x4',
  'dd write',
  'dd cold read',
] as const
export type RealStep = (typeof REAL_STEPS)[number]

export interface Rate {
  ops: number
  sec: number
  opsPerSec: number
}

export const rate = (r: {ops: number; sec: number}): Rate => ({ops: r.ops, sec: r.sec, opsPerSec: r.ops / r.sec})

export interface MetaRecord {
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

export interface ReaddirRecord {
  target: TargetName
  entries: number
  /** Seconds of each listing. */
  rounds: number[]
  entriesPerSec: number
}

export interface RazorfsLife {
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

export interface IoRecord {
  target: TargetName
  bytes: number
  bs: number
  writeMBps: number
  readMBps: number
  /** Each round's figures (the median is reported). */
  rounds: IoRound[]
}

export interface IoRound {
  writeMBps: number
  readMBps: number
  /** Server CPU (all threads) per MiB moved, µs. */
  writeCpuUsPerMiB?: number
  readCpuUsPerMiB?: number
}

interface RandomRecord {
  target: TargetName
  tool: string
  fileBytes: number
  seconds: number
  readIops: number
  writeIops: number
}

/** A target's seconds at each step of the real workloads, one per round. */
export interface RealRecord {
  target: TargetName
  secs: Record<RealStep, number[]>
}

export interface RealInfo {
  entries: number
  tarBytes: number
  treeSource: string
  repoFiles: number
  txns: number
  ddBytes: number
  dropCaches: boolean
  rounds: number
}

export interface ParallelRecord {
  target: TargetName
  clients: number
  files: number
  create: Rate
  stat: Rate
  unlink: Rate
  writeBytes: number
  writeMBps: number
}

export interface ProfileRecord {
  target: TargetName
  files: number
  writeBytes: number
  file: string
  /** Per phase: window (µs, CLOCK_MONOTONIC), self times, where the time went. */
  phases: Record<string, WindowProfile & {ops: number; opsPerSec: number; fromUs: number; toUs: number; breakdown: Breakdown}>
}

/**
 * One size of the scale workload: an image of `files` files built through the storage API, then
 * mounted by razorfs (fresh server) for stats and creates. `skipped` says why a size did not run.
 */
export interface ScaleRecord {
  files: number
  skipped?: string
  build?: ScaleBuild
  /** Spawn of `razorfs mount -f` to the mount in /proc/self/mountinfo. */
  mountMs?: number
  /** Server memory right after the mount, and after the stats and creates (hwmMiB: the peak). */
  memoryAfterMount?: Memory
  memoryAfter?: Memory
  /**
   * The most of each kind of resident memory sampled every 50 ms during the stats and creates:
   * anonymous (heap, private copies of changed pages) and file-backed (pages of the image's
   * mapped files, shared with the page cache).
   */
  sampled?: {rssAnonMiB: number; rssFileMiB: number; samples: number}
  stat?: Rate
  create?: Rate
  /** Directories the creates went to. */
  createDirs?: number
  /** SIGTERM to exit (checkpoint of the creates, unmount). */
  stopMs?: number
  stopCode?: number | null
}

/** One round of the shared workload on one target at one client count. */
export interface SharedRound {
  create: Rate
  stat: Rate
  unlink: Rate
  /** Every client's tar -xf of the tree, from the first start to the last end. */
  untarSec: number
  writeMBps: number
  readMBps: number
}

/** The shared workload's figures of one target (razorfs: a local image; razorfs-pg: two mounts of one volume on PostgreSQL) at one client count. */
export interface SharedRecord {
  target: TargetName
  clients: number
  rounds: SharedRound[]
}

/** The shared workload's setup, and its invalidation latency between the two mounts. */
export interface SharedInfo {
  /** Why it did not run (no PostgreSQL). */
  skipped?: string
  server?: string
  serverVersion?: string
  files: number
  treeEntries: number
  bytes: number
  rounds: number
  invalidation: Array<{kind: InvalidationKind; latenciesMs: number[]; medianMs: number; p99Ms: number}>
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
  real: RealRecord[]
  realInfo?: RealInfo
  parallel: ParallelRecord[]
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the JSON bench/storage.ts writes, read as it is
  storage?: {exitCode: number | null; json: Record<string, any>; markdown: string}
  recovery?: RecoveryResult
  scale: ScaleRecord[]
  shared: SharedRecord[]
  sharedInfo?: SharedInfo
  profile: ProfileRecord[]
  /** The bindings workload (BINDING_TARGETS). */
  bindings: {meta: MetaRecord[]; readdir: ReaddirRecord[]; seq: IoRecord[]}
}

export const results: Results = {
  meta: [],
  readdir: [],
  razorfsLife: [],
  mountEmptyMs: [],
  noopMountMs: [],
  seq: [],
  sweep: [],
  random: [],
  real: [],
  parallel: [],
  scale: [],
  shared: [],
  profile: [],
  bindings: {meta: [], readdir: [], seq: []},
}

/** Flame graphs written by this run (phases of the razorfs server's profile). */
export const flames = new Set<string>()
