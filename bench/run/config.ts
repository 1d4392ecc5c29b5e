/**
 * What a benchmark run does: the workloads, the sizes of the full and the quick run, and the
 * command line (`npm run bench -- --help`).
 */
import os from 'node:os'
import path from 'node:path'

import type {Layout} from '../driver.js'
import {ALL_TARGETS, BINDING_TARGETS, type TargetName} from './targets.js'
import {GiB, KiB, MiB} from './util.js'

/**
 * libfuse's default entry_timeout and attr_timeout are 1 s (the peers', fuse-native's); waiting
 * longer makes their kernel ask. razorfs on ll and its do-nothing twins keep names and attributes
 * for an hour (LL_TIMEOUTS), so the kernel answers their stats from its cache, as a local
 * filesystem's.
 */
export const ATTR_EXPIRE_MS = 1200

const WORKLOADS = ['meta', 'bindings', 'real', 'parallel', 'seq', 'sweep', 'random', 'storage', 'recovery', 'scale', 'shared', 'profile'] as const
export type Workload = (typeof WORKLOADS)[number]

export interface Config {
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
  /** The real workloads (bench/run/real.ts). */
  real: RealConfig
  /** The scale workload (bench/run/scale.ts). */
  scale: ScaleConfig
  /** The shared workload (bench/run/shared.ts). */
  shared: SharedConfig
  /** Entries of the tree untarred under the profiler. */
  profileTreeEntries: number
  /** Rounds of the sequential workloads, and of metadata sizes up to metaRoundsUpTo. */
  rounds: number
  metaRoundsUpTo: number
  /** The bindings workload: files of its create/stat/unlink (flat) and readdir, bytes of its sequential I/O. */
  bindingsFiles: number
  bindingsBytes: number
}

export interface RealConfig {
  /** Entries of the tree untarred, searched and removed (undefined: all of node_modules). */
  treeEntries?: number
  /** Entries of the git repository cloned (undefined: all of node_modules). */
  gitEntries?: number
  /** Committed transactions of the SQLite workload. */
  sqliteTxns: number
  /** Bytes of the dd write (conv=fsync) and cold read. */
  ddBytes: number
  /** Rounds, the targets taking turns at each step; the median round counts. */
  rounds: number
}

export interface ScaleConfig {
  /** File counts of the images built through the storage API and mounted. */
  sizes: number[]
  /** Distinct existing files stat'ed on the fresh mount (at most all of them), and new files created. */
  stats: number
  creates: number
}

export interface SharedConfig {
  /** Client counts, spread over the two mounts of the volume (client c on mount c % 2). */
  clients: number[]
  /** Files created, stat'ed and unlinked at each client count, split among the clients. */
  files: number
  /** Entries of the tree each client untars (the first packages of node_modules). */
  treeEntries: number
  /** Bytes written and read at each client count, split among the clients (1 MiB blocks). */
  bytes: number
  /** Samples of the invalidation latency, of each kind (attribute change, new name). */
  samples: number
  /** Rounds, the targets taking turns at each step; the median round counts. */
  rounds: number
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
  real: {sqliteTxns: 1000, ddBytes: GiB, rounds: 3},
  scale: {sizes: [10_000, 1_000_000, 10_000_000], stats: 100_000, creates: 20_000},
  shared: {clients: [1, 2, 4], files: 5000, treeEntries: 1500, bytes: 256 * MiB, samples: 100, rounds: 3},
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
  real: {treeEntries: 1500, gitEntries: 5000, sqliteTxns: 200, ddBytes: 256 * MiB, rounds: 1},
  scale: {sizes: [10_000, 100_000], stats: 20_000, creates: 5000},
  shared: {clients: [1, 2, 4], files: 2000, treeEntries: 300, bytes: 64 * MiB, samples: 20, rounds: 1},
  profileTreeEntries: 1000,
  rounds: 3,
  metaRoundsUpTo: 1000,
  bindingsFiles: 10_000,
  bindingsBytes: 256 * MiB,
}

export interface Args {
  quick: boolean
  only: Set<Workload>
  targets: TargetName[]
  keep: boolean
  dir: string
  binding?: string
  /** --sizes / --layouts: the metadata workload's file counts and layouts instead of the mode's (--sizes: the scale workload's too). */
  sizes?: number[]
  layouts?: Layout[]
  /** --targets was given: each workload runs on the targets listed that it can run on. */
  targetsGiven: boolean
  /** --only, --targets, --sizes or --layouts was given: write under bench/results/partial/. */
  partial: boolean
}

export function parseArgs(argv: string[]): Args {
  const args: Args = {quick: false, only: new Set(WORKLOADS), targets: ALL_TARGETS, keep: false, dir: os.tmpdir(), partial: false, targetsGiven: false}
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
      args.targetsGiven = true
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
      process.stdout.write(
        'npm run bench -- [--quick] [--only meta,bindings,real,parallel,seq,sweep,random,storage,recovery,scale,shared,profile] [--targets native,noop,noop-c,mergerfs,bindfs,razorfs,noop-ll,razorfs-fn,razorfs-ll] [--sizes 10k,100k,1m] [--layouts flat,deep] [--binding ll|fuse-native] [--no-profile] [--keep] [--dir DIR]\n' +
          '  scale: images of N files built through the storage API, then mounted: mount time, stat and create rates, server RSS\n' +
          '         (full: 10k, 1M, 10M; quick: 10k, 100k; --sizes sets these as well as the metadata sizes; --keep keeps the images)\n' +
          '  shared: one volume on PostgreSQL (RAZORFS_PG_URL, else a throwaway cluster) mounted twice, against a local-image razorfs mount:\n' +
          '         create/stat/unlink, untar, sequential write/read with 1, 2, 4 clients; invalidation latency between the two mounts\n',
      )
      process.exit(0)
    } else throw new Error(`unknown argument ${a}`)
  }

  return args
}

/**
 * The targets a workload runs on: by default, and at most (with --targets, those listed that it
 * can run on). The real workloads need a filesystem that keeps data (no do-nothing ones); the
 * older workloads' tables show native, noop and razorfs.
 */
const TARGETS_OF: Record<'meta' | 'real' | 'classic', {defaults: TargetName[]; allowed: TargetName[]}> = {
  meta: {defaults: ['native', 'noop', 'noop-c', 'razorfs'], allowed: ALL_TARGETS},
  real: {defaults: ['native', 'mergerfs', 'bindfs', 'razorfs'], allowed: ['native', 'mergerfs', 'bindfs', 'razorfs']},
  classic: {defaults: ['native', 'noop', 'razorfs'], allowed: ['native', 'noop', 'razorfs']},
}

export function targetsOf(args: Args, workload: Workload): TargetName[] {
  if (workload === 'bindings') return BINDING_TARGETS
  if (workload === 'storage' || workload === 'recovery') return []
  if (workload === 'scale' || workload === 'shared') return ['razorfs']
  const {defaults, allowed} = TARGETS_OF[workload === 'meta' || workload === 'real' ? workload : 'classic']
  const list = args.targetsGiven ? args.targets.filter(t => allowed.includes(t)) : defaults
  return workload === 'profile' ? list.filter(t => t !== 'native') : list
}

/** The run's sizes: the mode's, with --sizes and --layouts in place of its metadata ones (--sizes: and of its scale ones). */
export function configOf(args: Args): Config {
  const mode = args.quick ? QUICK : FULL
  return {
    ...mode,
    metaSizes: args.sizes ?? mode.metaSizes,
    metaLayouts: args.layouts ?? mode.metaLayouts,
    scale: {...mode.scale, sizes: args.sizes ?? mode.scale.sizes},
  }
}
