/**
 * Storage-layer benchmark: scaling of one huge directory, a deep tree, and open time of a large
 * image. Uses the public storage API only. Run with `npm run bench:storage`.
 *
 * Writes a markdown report to stdout, progress to stderr, and all numbers to
 * bench/results/storage.json. Exits 1 if lookup(1M) / lookup(10k) < 0.5.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {Image, ROOT_INO} from '../src/storage/index.js'

const S_IFREG = 0o100000
const S_IFDIR = 0o040000
const FILE_SPEC = {mode: S_IFREG | 0o644, uid: 0, gid: 0}
const DIR_SPEC = {mode: S_IFDIR | 0o755, uid: 0, gid: 0}

const FLAT_TOTAL = Number(process.env.BENCH_FLAT ?? 1_000_000)
const FLAT_CHECKPOINTS = [10_000, 100_000, 1_000_000].filter(n => n <= FLAT_TOTAL)
const LOOKUPS = 200_000
const MISSES = 50_000
/** Timed lookup rounds per measurement point (median reported). */
const ROUNDS = 7
/** Inserts timed just before each checkpoint (comparable window at every size). */
const INSERT_WINDOW = 10_000
/** Deep tree: FANOUT^DEPTH leaf dirs, LEAF_FILES files each (10^4 * 100 = 1M). */
const FANOUT = 10
const DEPTH = 4
const LEAF_FILES = Number(process.env.BENCH_LEAF ?? 100)
const OPEN_REPEATS = 5

const t0 = process.hrtime.bigint()
const log = (msg: string): void => {
  process.stderr.write(`[${secondsSince(t0).toFixed(1)}s] ${msg}\n`)
}

function secondsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9
}

function gc(): void {
  ;(globalThis as {gc?: () => void}).gc?.()
}

/** Deterministic PRNG (xorshift32) so runs are comparable. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x
  }
}

const flatName = (i: number): string => `file-${i.toString().padStart(7, '0')}`
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')
const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`

function filesOf(image: Image): Record<string, number> {
  return Object.fromEntries(image.info().files.map(f => [f.name, f.bytes]))
}

/** File sizes of a closed image (opened read-only just to ask). */
function filesAt(dir: string): Record<string, number> {
  const image = Image.open(dir, {readOnly: true})
  try {
    return filesOf(image)
  } finally {
    image.close()
  }
}

function rssMiB(): number {
  return process.resourceUsage().maxRSS / 1024
}

// ---- 1. flat directory ---------------------------------------------------------------------------

interface FlatPoint {
  entries: number
  lookupsPerSec: number
  missesPerSec: number
  lookupRounds: number[]
  missRounds: number[]
  /** Inserts/s over the whole stretch since the previous checkpoint. */
  insertsPerSec: number
  /** Inserts/s over the last INSERT_WINDOW inserts before this checkpoint. */
  windowInsertsPerSec: number
}

function measureLookups(image: Image, n: number, seed: number): {lookupsPerSec: number; missesPerSec: number; lookupRounds: number[]; missRounds: number[]} {
  const next = rng(seed)
  const hits: Buffer[] = Array.from({length: LOOKUPS}, () => Buffer.from(flatName(next() % n)))
  const misses: Buffer[] = Array.from({length: MISSES}, (_, i) => Buffer.from(`miss-${seed}-${i}`))
  // Warm-up so the JIT has seen the path, then ROUNDS timed rounds; the median round counts
  // (the machine is shared: single rounds are noisy).
  for (let i = 0; i < 20_000; i++) image.lookup(ROOT_INO, hits[i])
  const hitRates: number[] = []
  const missRates: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    let found = 0
    let start = process.hrtime.bigint()
    for (const name of hits) if (image.lookup(ROOT_INO, name) !== 0) found++
    hitRates.push(LOOKUPS / secondsSince(start))
    if (found !== LOOKUPS) throw new Error(`lookup found ${found} of ${LOOKUPS} existing names at ${n} entries`)
    let missed = 0
    start = process.hrtime.bigint()
    for (const name of misses) if (image.lookup(ROOT_INO, name) === 0) missed++
    missRates.push(MISSES / secondsSince(start))
    if (missed !== MISSES) throw new Error(`lookup found ${MISSES - missed} names that do not exist`)
  }

  return {lookupsPerSec: median(hitRates), missesPerSec: median(missRates), lookupRounds: hitRates, missRounds: missRates}
}

function benchFlat(dir: string): {points: FlatPoint[]; totalCreateSec: number; image: Image} {
  const image = Image.create(dir)
  const points: FlatPoint[] = []
  let i = 0
  let totalCreateSec = 0
  for (const checkpoint of FLAT_CHECKPOINTS) {
    const stretchStart = i
    const windowStartAt = Math.max(i, checkpoint - INSERT_WINDOW)
    let start = process.hrtime.bigint()
    let windowStart = start
    for (; i < checkpoint; i++) {
      if (i === windowStartAt) windowStart = process.hrtime.bigint()
      image.mknod(ROOT_INO, flatName(i), FILE_SPEC)
      if ((i + 1) % 100_000 === 0) log(`flat: ${fmt(i + 1)} files (${fmt((i + 1 - stretchStart) / secondsSince(start))}/s this stretch)`)
    }

    const end = process.hrtime.bigint()
    const stretchSec = Number(end - start) / 1e9
    totalCreateSec += stretchSec
    const windowSec = Number(end - windowStart) / 1e9
    gc()
    start = process.hrtime.bigint()
    const l = measureLookups(image, checkpoint, checkpoint)
    log(`flat: at ${fmt(checkpoint)}: ${fmt(l.lookupsPerSec)} lookups/s, ${fmt(l.missesPerSec)} misses/s (${secondsSince(start).toFixed(1)}s)`)
    points.push({
      entries: checkpoint,
      ...l,
      insertsPerSec: (checkpoint - stretchStart) / stretchSec,
      windowInsertsPerSec: (checkpoint - windowStartAt) / windowSec,
    })
  }

  return {points, totalCreateSec, image}
}

// ---- 2. deep tree --------------------------------------------------------------------------------

interface DeepResult {
  depth: number
  fanout: number
  leafFiles: number
  dirs: number
  files: number
  createSec: number
  createsPerSec: number
  pathLookupsPerSec: number
  componentLookupsPerSec: number
}

function benchDeep(dir: string): {result: DeepResult; image: Image} {
  const image = Image.create(dir)
  const leaves = FANOUT ** DEPTH
  const totalFiles = leaves * LEAF_FILES
  let dirs = 0
  let files = 0
  const start = process.hrtime.bigint()
  const walk = (parent: number, level: number): void => {
    if (level === DEPTH) {
      for (let f = 0; f < LEAF_FILES; f++) {
        image.mknod(parent, `f${f}`, FILE_SPEC)
        if (++files % 100_000 === 0) log(`deep: ${fmt(files)} files (${fmt(files / secondsSince(start))}/s)`)
      }

      return
    }

    for (let d = 0; d < FANOUT; d++) {
      const child = image.mknod(parent, `d${level}-${d}`, DIR_SPEC).ino
      dirs++
      walk(child, level + 1)
    }
  }

  walk(ROOT_INO, 0)
  const createSec = secondsSince(start)
  gc()

  // Full path walks from the root: DEPTH directory components, then the file.
  const next = rng(12345)
  const paths: Buffer[][] = Array.from({length: LOOKUPS}, () => {
    const parts: Buffer[] = []
    for (let level = 0; level < DEPTH; level++) parts.push(Buffer.from(`d${level}-${next() % FANOUT}`))
    parts.push(Buffer.from(`f${next() % LEAF_FILES}`))
    return parts
  })
  for (let i = 0; i < 2000; i++) {
    let ino = ROOT_INO
    for (const part of paths[i]) ino = image.lookup(ino, part)
  }

  let found = 0
  const lookupStart = process.hrtime.bigint()
  for (const parts of paths) {
    let ino = ROOT_INO
    for (const part of parts) {
      ino = image.lookup(ino, part)
      if (ino === 0) break
    }

    if (ino !== 0) found++
  }

  const lookupSec = secondsSince(lookupStart)
  if (found !== LOOKUPS) throw new Error(`deep: resolved ${found} of ${LOOKUPS} paths`)
  log(`deep: ${fmt(totalFiles)} files in ${createSec.toFixed(1)}s, ${fmt(LOOKUPS / lookupSec)} path walks/s`)
  return {
    result: {
      depth: DEPTH + 1,
      fanout: FANOUT,
      leafFiles: LEAF_FILES,
      dirs,
      files,
      createSec,
      createsPerSec: (dirs + files) / createSec,
      pathLookupsPerSec: LOOKUPS / lookupSec,
      componentLookupsPerSec: (LOOKUPS * (DEPTH + 1)) / lookupSec,
    },
    image,
  }
}

// ---- 3. open time --------------------------------------------------------------------------------

interface OpenTimes {
  inodes: number
  closeMs: number
  openRwMs: number
  openRoMs: number
  openRwAllMs: number[]
  openRoAllMs: number[]
}

function timeOpen(dir: string, repeats: number): {rw: number[]; ro: number[]; inodes: number} {
  const rw: number[] = []
  const ro: number[] = []
  let inodes = 0
  for (let r = 0; r < repeats; r++) {
    // Collect first: mmap-io unmaps a closed image's mappings in a GC finalizer, and that munmap
    // (page-table teardown of every resident page) belongs to the close, not to the next open.
    gc()
    let start = process.hrtime.bigint()
    const a = Image.open(dir)
    rw.push(secondsSince(start) * 1000)
    inodes = a.usage().inodes
    a.close()
    gc()
    start = process.hrtime.bigint()
    const b = Image.open(dir, {readOnly: true})
    ro.push(secondsSince(start) * 1000)
    b.close()
  }

  return {rw, ro, inodes}
}

function benchOpen(dir: string, image: Image): OpenTimes {
  const start = process.hrtime.bigint()
  image.close()
  const closeMs = secondsSince(start) * 1000
  gc()
  const t = timeOpen(dir, OPEN_REPEATS)
  return {inodes: t.inodes, closeMs, openRwMs: median(t.rw), openRoMs: median(t.ro), openRwAllMs: t.rw, openRoAllMs: t.ro}
}

// ---- main ----------------------------------------------------------------------------------------

function main(): number {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-bench-'))
  const dirs = {flat: path.join(root, 'flat'), deep: path.join(root, 'deep'), empty: path.join(root, 'empty')}
  for (const d of Object.values(dirs)) fs.mkdirSync(d)
  log(`temp dir ${root}`)
  try {
    // 1
    const flat = benchFlat(dirs.flat)
    const flatUsage = flat.image.usage()
    const flatFilesOpen = filesOf(flat.image)
    const flatOpen = benchOpen(dirs.flat, flat.image)
    const flatFiles = filesAt(dirs.flat)
    log(`flat: close ${flatOpen.closeMs.toFixed(0)} ms, open rw ${flatOpen.openRwMs.toFixed(1)} ms, ro ${flatOpen.openRoMs.toFixed(1)} ms`)
    const rssAfterFlat = rssMiB()
    gc()

    // 2
    const deep = benchDeep(dirs.deep)
    const deepFilesOpen = filesOf(deep.image)
    const deepOpen = benchOpen(dirs.deep, deep.image)
    const deepFiles = filesAt(dirs.deep)
    log(`deep: close ${deepOpen.closeMs.toFixed(0)} ms, open rw ${deepOpen.openRwMs.toFixed(1)} ms, ro ${deepOpen.openRoMs.toFixed(1)} ms`)
    gc()

    // 3: empty baseline
    Image.create(dirs.empty).close()
    const empty = timeOpen(dirs.empty, OPEN_REPEATS)
    const emptyFiles = filesAt(dirs.empty)
    const emptyRw = median(empty.rw)
    const emptyRo = median(empty.ro)

    const first = flat.points[0]
    const last = flat.points.at(-1)!
    const ratio = last.lookupsPerSec / first.lookupsPerSec
    const pass = ratio >= 0.5
    const totalSec = secondsSince(t0)
    const peakRssMiB = rssMiB()

    // ---- report
    const out: string[] = []
    out.push(`# razorfs storage benchmark`, '')
    out.push(`node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), tmp ${os.tmpdir()}`, '')
    out.push(`## 1. One directory (root), ${fmt(FLAT_TOTAL)} regular files`, '')
    out.push(`lookups: median of ${ROUNDS} rounds of ${fmt(LOOKUPS)} random hits / ${fmt(MISSES)} misses`, '')
    out.push(`| entries | lookups/s (hit) | lookups/s (miss) | inserts/s (stretch) | inserts/s (last ${fmt(INSERT_WINDOW)}) |`)
    out.push('|---:|---:|---:|---:|---:|')
    for (const p of flat.points)
      out.push(`| ${fmt(p.entries)} | ${fmt(p.lookupsPerSec)} | ${fmt(p.missesPerSec)} | ${fmt(p.insertsPerSec)} | ${fmt(p.windowInsertsPerSec)} |`)
    out.push('')
    out.push(`lookup(${fmt(last.entries)}) / lookup(${fmt(first.entries)}) = **${ratio.toFixed(2)}** (needs >= 0.5): **${pass ? 'PASS' : 'FAIL'}**`)
    out.push(
      `insert(${fmt(last.entries)}) / insert(${fmt(first.entries)}) (last-${fmt(INSERT_WINDOW)} window) = ${(last.windowInsertsPerSec / first.windowInsertsPerSec).toFixed(2)}`,
    )
    out.push(`total create time ${flat.totalCreateSec.toFixed(1)} s (${fmt(FLAT_TOTAL / flat.totalCreateSec)}/s average)`, '')
    const d = deep.result
    out.push(`## 2. Deep tree: ${d.depth}-component paths, fan-out ${d.fanout}, ${d.leafFiles} files per leaf dir`, '')
    out.push('| dirs | files | create time | creates/s | path walks/s | component lookups/s |')
    out.push('|---:|---:|---:|---:|---:|---:|')
    out.push(
      `| ${fmt(d.dirs)} | ${fmt(d.files)} | ${d.createSec.toFixed(1)} s | ${fmt(d.createsPerSec)} | ${fmt(d.pathLookupsPerSec)} | ${fmt(d.componentLookupsPerSec)} |`,
      '',
    )
    out.push(`## 3. Open time (median of ${OPEN_REPEATS}; image closed cleanly first)`, '')
    out.push('| image | inodes | close (checkpoint) | open read-write | open read-only | rw / empty | ro / empty |')
    out.push('|---|---:|---:|---:|---:|---:|---:|')
    out.push(`| empty | ${fmt(empty.inodes)} | - | ${emptyRw.toFixed(2)} ms | ${emptyRo.toFixed(2)} ms | 1.0 | 1.0 |`)
    for (const [name, o] of [
      ['flat', flatOpen],
      ['deep', deepOpen],
    ] as const) {
      out.push(
        `| ${name} | ${fmt(o.inodes)} | ${o.closeMs.toFixed(0)} ms | ${o.openRwMs.toFixed(2)} ms | ${o.openRoMs.toFixed(2)} ms | ${(o.openRwMs / emptyRw).toFixed(1)} | ${(o.openRoMs / emptyRo).toFixed(1)} |`,
      )
    }

    out.push('', '## 4. Image files (after clean close) and memory', '')
    const names = [...new Set([...Object.keys(flatFiles), ...Object.keys(deepFiles), ...Object.keys(emptyFiles)])]
    out.push(`| file | empty | flat (${fmt(flatOpen.inodes)} inodes) | deep (${fmt(deepOpen.inodes)} inodes) |`)
    out.push('|---|---:|---:|---:|')
    const cell = (m: Record<string, number>, n: string): string => (m[n] === undefined ? '-' : mib(m[n]))
    for (const n of names) out.push(`| ${n} | ${cell(emptyFiles, n)} | ${cell(flatFiles, n)} | ${cell(deepFiles, n)} |`)
    const sum = (m: Record<string, number>): number => Object.values(m).reduce((a, b) => a + b, 0)
    out.push(`| **total** | ${mib(sum(emptyFiles))} | ${mib(sum(flatFiles))} | ${mib(sum(deepFiles))} |`, '')
    out.push(
      `flat usage: ${fmt(flatUsage.inodes)} inodes, ${fmt(flatUsage.entries)} entries, ${fmt(flatUsage.names)} names (${mib(flatUsage.nameBytes)}), inode capacity ${fmt(flatUsage.inodeCapacity)}`,
    )
    out.push(`peak RSS: ${peakRssMiB.toFixed(0)} MiB (after flat phase: ${rssAfterFlat.toFixed(0)} MiB)`)
    out.push(`total runtime: ${totalSec.toFixed(1)} s`)
    process.stdout.write(out.join('\n') + '\n')

    const results = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      tmpdir: os.tmpdir(),
      flat: {
        total: FLAT_TOTAL,
        lookupsPerCheckpoint: LOOKUPS,
        missesPerCheckpoint: MISSES,
        insertWindow: INSERT_WINDOW,
        points: flat.points,
        lookupRatio: ratio,
        pass,
        totalCreateSec: flat.totalCreateSec,
        usage: flatUsage,
        filesWhileOpen: flatFilesOpen,
        files: flatFiles,
        open: flatOpen,
      },
      deep: {...deep.result, filesWhileOpen: deepFilesOpen, files: deepFiles, open: deepOpen},
      empty: {openRwMs: emptyRw, openRoMs: emptyRo, openRwAllMs: empty.rw, openRoAllMs: empty.ro, files: emptyFiles},
      openRatio: {
        flatRw: flatOpen.openRwMs / emptyRw,
        flatRo: flatOpen.openRoMs / emptyRo,
        deepRw: deepOpen.openRwMs / emptyRw,
        deepRo: deepOpen.openRoMs / emptyRo,
      },
      peakRssMiB,
      rssAfterFlatMiB: rssAfterFlat,
      totalSec,
    }
    const resultsDir = fileURLToPath(new URL('../../bench/results/', import.meta.url))
    fs.mkdirSync(resultsDir, {recursive: true})
    const file = path.join(resultsDir, 'storage.json')
    fs.writeFileSync(file, JSON.stringify(results, null, 2) + '\n')
    log(`wrote ${file}`)
    return pass ? 0 : 1
  } finally {
    fs.rmSync(root, {recursive: true, force: true})
  }
}

process.exitCode = main()
