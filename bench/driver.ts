/**
 * The workload driver: one child process per client, the same code for every target (host
 * directory, do-nothing FUSE filesystem, razorfs). It makes plain synchronous system calls through
 * node:fs, so every call is one request to the filesystem under test and nothing else runs in
 * this process meanwhile.
 *
 *   node dist/bench/driver.js '<json job>'
 *
 * prints one JSON line: {ops, bytes, sec, startMs, endMs, ...}. Timing starts after setup (and
 * after `startAt`, an epoch-ms barrier that lets parallel clients start together) and ends after
 * the last call. Any unexpected error exits 1 with the message: a benchmark that silently did
 * less work would report nonsense.
 */
import fs from 'node:fs'
import {performance} from 'node:perf_hooks'

export type Layout = 'flat' | 'deep'

export type Job =
  | {op: 'mkdirs'; dirs: string[]; layout: Layout; to: number; startAt?: number}
  | {op: 'create' | 'stat' | 'unlink'; dirs: string[]; layout: Layout; from: number; to: number; chunk?: number; startAt?: number}
  | {op: 'readdir'; dirs: string[]; expect: number; repeats: number}
  | {op: 'seqwrite'; file: string; size: number; bs: number; startAt?: number}
  | {op: 'seqread'; file: string; size: number; bs: number; verify: boolean; startAt?: number}
  | {op: 'randread' | 'randwrite'; file: string; size: number; seconds: number}
  | {op: 'scalestat'; root: string; files: number; count: number}
  | {op: 'scalecreate'; root: string; dirs: number[]; count: number}
  | {op: 'invalidation'; a: string; b: string; kind: InvalidationKind; samples: number; timeoutMs: number}

/**
 * What the invalidation op changes on mount A and looks for on mount B: a file's mode (B's cached
 * attributes go stale), or a new name (B looked it up and found nothing just before).
 */
export type InvalidationKind = 'chmod' | 'create'

export interface DriverResult {
  ops: number
  bytes: number
  sec: number
  startMs: number
  endMs: number
  /** CLOCK_MONOTONIC in µs: the clock of V8 CPU profiles, to cut a server's profile into phases. */
  startMono: number
  endMono: number
  /** create/stat/unlink/readdir: each directory's (target's) own operations and time; readdir: each listing's seconds. */
  perDir?: Array<{ops: number; sec: number; rounds?: number[]}>
  /** Blocks whose contents were checked (seqread). */
  verified?: number
  /** invalidation: each sample's ms from A's call returning to B's first sight of the change. */
  latenciesMs?: number[]
}

/** Files per leaf directory of the deep tree. */
export const LEAF_FILES = 100

/**
 * Path of file i. flat: DIR/file-NNNNNNN. deep: four directory levels whatever the count
 * (DIR/dA/dB/dC/dD/fK, fan-out 10 at the first three levels), LEAF_FILES files per leaf, so the
 * path length does not change with the file count.
 */
export function fileName(dir: string, layout: Layout, i: number): string {
  if (layout === 'flat') return `${dir}/file-${i.toString().padStart(7, '0')}`
  return `${leafDir(dir, Math.floor(i / LEAF_FILES))}/f${i % LEAF_FILES}`
}

function leafDir(dir: string, j: number): string {
  return `${dir}/d${j % 10}/d${Math.floor(j / 10) % 10}/d${Math.floor(j / 100) % 10}/d${Math.floor(j / 1000)}`
}

/** Every directory of the deep tree holding files [0, n), parents first. */
export function treeDirs(dir: string, n: number): string[] {
  const out = new Set<string>()
  const leaves = Math.ceil(n / LEAF_FILES)
  for (let j = 0; j < leaves; j++) {
    const parts = leafDir(dir, j)
      .slice(dir.length + 1)
      .split('/')
    for (let k = 1; k <= parts.length; k++) out.add(`${dir}/${parts.slice(0, k).join('/')}`)
  }

  return [...out]
}

/**
 * The scale workload's tree (bench/scale.ts builds it through the storage API): file i of an
 * N-file image is ROOT/dD/fK with D = i / SCALE_PER_DIR, K = i % SCALE_PER_DIR.
 */
export const SCALE_PER_DIR = 1000
export const scaleDirName = (d: number): string => `d${d}`
export const scaleFileName = (k: number): string => `f${k}`
const scalePath = (root: string, i: number): string => `${root}/${scaleDirName(Math.floor(i / SCALE_PER_DIR))}/${scaleFileName(i % SCALE_PER_DIR)}`

/**
 * `count` distinct files of [0, files) in a scattered, fixed order: i * STRIDE mod files, STRIDE
 * a prime that divides no file count the bench uses (they are products of 2s, 5s and small
 * factors), so no file comes twice.
 */
const SCALE_STRIDE = 7_368_787
export function scaleSample(files: number, count: number): number[] {
  if (files % SCALE_STRIDE === 0) throw new Error(`scale: ${files} files is a multiple of the sampling stride`)
  return Array.from({length: Math.min(count, files)}, (_, j) => (j * SCALE_STRIDE) % files)
}

const now = (): number => performance.timeOrigin + performance.now()
const mono = (): number => Number(process.hrtime.bigint() / 1000n)

const sleeper = new Int32Array(new SharedArrayBuffer(4))
const sleepSync = (ms: number): void => {
  if (ms > 0) Atomics.wait(sleeper, 0, 0, ms)
}

function waitUntil(epochMs: number | undefined): void {
  if (epochMs !== undefined) sleepSync(epochMs - now())
}

/** Deterministic PRNG (xorshift32). */
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

/** Block k of a sequential file: a fixed pseudo-random pattern with k in its first 8 bytes. */
function pattern(bs: number): Buffer {
  const buf = Buffer.alloc(bs)
  const next = rng(42)
  for (let i = 0; i + 4 <= bs; i += 4) buf.writeUInt32LE(next(), i)
  return buf
}

/** Every 20 s of a long loop, a line on stderr (the full run creates 1M files per phase). */
function progress(op: string, total: number): (done: number) => void {
  const start = now()
  let last = start
  let calls = 0
  return done => {
    if ((++calls & 63) !== 0 && done < total) return
    const t = now()
    if (t - last < 20_000) return
    last = t
    process.stderr.write(
      `    driver: ${op} ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')} (${Math.round(done / ((t - start) / 1000)).toLocaleString('en-US')}/s)\n`,
    )
  }
}

function timed(fn: () => {ops: number; bytes: number}): DriverResult {
  const startMono = mono()
  const start = now()
  const {ops, bytes} = fn()
  const end = now()
  return {ops, bytes, sec: (end - start) / 1000, startMs: start, endMs: end, startMono, endMono: mono()}
}

/**
 * A buffer whose address is aligned for O_DIRECT on the host filesystem. Node gives no way to ask
 * for alignment, so find an offset into a larger buffer at which a direct read is accepted
 * (EINVAL means misaligned). FUSE accepts any address.
 */
function alignedBuffer(fd: number, size: number): Buffer {
  const big = Buffer.alloc(size + 8192)
  for (let off = 0; off <= 4096; off += 8) {
    const view = big.subarray(off, off + size)
    try {
      fs.readSync(fd, view, 0, size, 0)
      return view
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error
    }
  }

  throw new Error('no O_DIRECT-aligned buffer offset found')
}

/**
 * create / stat / unlink of files [from, to) under each of `dirs` (one per target), interleaved in
 * chunks: `chunk` files on the first target, then the same files on the next, and so on. A change
 * of load on the machine then hits every target alike; each target's time is the sum of its own
 * chunks. Names are built before each chunk's clock starts.
 */
function meta(job: Extract<Job, {op: 'create' | 'stat' | 'unlink'}>): DriverResult {
  const chunk = job.chunk ?? job.to - job.from
  const perDir = job.dirs.map(() => ({ops: 0, sec: 0}))
  const flags = fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY
  const total = (job.to - job.from) * job.dirs.length
  const tick = progress(job.op, total)
  let done = 0
  waitUntil(job.startAt)
  const startMono = mono()
  const start = now()
  for (let c = job.from; c < job.to; c += chunk) {
    const end = Math.min(job.to, c + chunk)
    for (const [d, dir] of job.dirs.entries()) {
      const names: string[] = []
      for (let i = c; i < end; i++) names.push(fileName(dir, job.layout, i))
      const t = now()
      switch (job.op) {
        case 'create':
          for (const name of names) fs.closeSync(fs.openSync(name, flags, 0o644))
          break
        case 'stat':
          for (const name of names) if (!fs.statSync(name).isFile()) throw new Error(`${name} is not a regular file`)
          break
        case 'unlink':
          for (const name of names) fs.unlinkSync(name)
          break
      }

      perDir[d].sec += (now() - t) / 1000
      perDir[d].ops += names.length
      done += names.length
      tick(done)
    }
  }

  const end = now()
  return {ops: total, bytes: 0, sec: (end - start) / 1000, startMs: start, endMs: end, startMono, endMono: mono(), perDir}
}

/**
 * The scale workload: stat of `count` distinct existing files scattered over the whole tree
 * (scaleSample), or create of `count` new files spread round-robin over the existing
 * directories `dirs`.
 */
function scale(job: Extract<Job, {op: 'scalestat' | 'scalecreate'}>): DriverResult {
  const names =
    job.op === 'scalestat'
      ? scaleSample(job.files, job.count).map(i => scalePath(job.root, i))
      : Array.from({length: job.count}, (_, i) => `${job.root}/${scaleDirName(job.dirs[i % job.dirs.length])}/new-${i}`)
  const flags = fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY
  const tick = progress(job.op, names.length)
  return timed(() => {
    for (const [i, name] of names.entries()) {
      if (job.op === 'scalestat') {
        if (!fs.statSync(name).isFile()) throw new Error(`${name} is not a regular file`)
      } else fs.closeSync(fs.openSync(name, flags, 0o644))
      tick(i + 1)
    }

    return {ops: names.length, bytes: 0}
  })
}

/**
 * How long mount B takes to see a change made on mount A of the same volume. Each sample: B looks
 * (stat of the file, or of the name about to be made: ENOENT), so its kernel holds what B saw;
 * then, after a pseudo-random pause of 0 to 1 s (the age of B's cached view when the change comes
 * is then uniform over the attribute timeout, as for a reader that keeps looking), A makes the
 * change; from A's call returning, B stats every millisecond until it sees the change. Any other
 * error, or no sight within timeoutMs, fails the run.
 */
function invalidation(job: Extract<Job, {op: 'invalidation'}>): DriverResult {
  const next = rng(job.kind === 'chmod' ? 3 : 5)
  const latenciesMs: number[] = []
  const seen = (file: string, check: (st: fs.Stats) => boolean, what: string): number => {
    const t0 = now()
    for (;;) {
      const st = fs.statSync(file, {throwIfNoEntry: false})
      const t = now()
      if (st !== undefined && check(st)) return t - t0
      if (t - t0 > job.timeoutMs) throw new Error(`${file}: ${what} not seen within ${job.timeoutMs} ms`)
      sleepSync(1)
    }
  }

  const fa = `${job.a}/inval-attr`
  const fb = `${job.b}/inval-attr`
  if (job.kind === 'chmod') {
    fs.writeFileSync(fa, '')
    fs.chmodSync(fa, 0o600)
    seen(fb, st => (st.mode & 0o777) === 0o600, 'the file') // untimed: B sees the file before the samples
  }

  const result = timed(() => {
    for (let i = 0; i < job.samples; i++) {
      if (job.kind === 'chmod') {
        const mode = i % 2 === 0 ? 0o644 : 0o600
        if ((fs.statSync(fb).mode & 0o777) === mode) throw new Error(`${fb}: mode ${mode.toString(8)} already, before the change`)
        sleepSync(next() % 1000)
        fs.chmodSync(fa, mode)
        latenciesMs.push(seen(fb, st => (st.mode & 0o777) === mode, `mode ${mode.toString(8)}`))
      } else {
        const name = `inval-new-${i}`
        if (fs.statSync(`${job.b}/${name}`, {throwIfNoEntry: false}) !== undefined) throw new Error(`${job.b}/${name} exists before it is made`)
        sleepSync(next() % 1000)
        fs.closeSync(fs.openSync(`${job.a}/${name}`, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o644))
        latenciesMs.push(seen(`${job.b}/${name}`, st => st.isFile(), 'the new file'))
      }
    }

    return {ops: job.samples, bytes: 0}
  })
  return {...result, latenciesMs}
}

function run(job: Job): DriverResult {
  switch (job.op) {
    case 'scalestat':
    case 'scalecreate':
      return scale(job)

    case 'invalidation':
      return invalidation(job)

    case 'mkdirs': {
      waitUntil(job.startAt)
      const start = now()
      const startMono = mono()
      let ops = 0
      for (const dir of job.dirs) {
        fs.mkdirSync(dir, {recursive: true})
        const dirs = job.layout === 'deep' ? treeDirs(dir, job.to) : []
        for (const d of dirs) fs.mkdirSync(d)
        ops += dirs.length
      }

      const end = now()
      return {ops, bytes: 0, sec: (end - start) / 1000, startMs: start, endMs: end, startMono, endMono: mono()}
    }

    case 'create':
    case 'stat':
    case 'unlink':
      return meta(job)

    case 'readdir': {
      const perDir = job.dirs.map(() => ({ops: 0, sec: 0, rounds: [] as number[]}))
      const startMono = mono()
      const start = now()
      for (let r = 0; r < job.repeats; r++) {
        for (const [d, dir] of job.dirs.entries()) {
          const t = now()
          const n = fs.readdirSync(dir).length
          const sec = (now() - t) / 1000
          if (n !== job.expect) throw new Error(`readdir ${dir}: ${n} entries, expected ${job.expect}`)
          perDir[d].rounds.push(sec)
          perDir[d].sec += sec
          perDir[d].ops += n
        }
      }

      const end = now()
      return {
        ops: job.expect * job.repeats * job.dirs.length,
        bytes: 0,
        sec: (end - start) / 1000,
        startMs: start,
        endMs: end,
        startMono,
        endMono: mono(),
        perDir,
      }
    }

    case 'seqwrite': {
      const buf = pattern(job.bs)
      const blocks = Math.ceil(job.size / job.bs)
      waitUntil(job.startAt)
      const result = timed(() => {
        const fd = fs.openSync(job.file, 'w')
        for (let k = 0; k < blocks; k++) {
          buf.writeDoubleLE(k, 0)
          const len = Math.min(job.bs, job.size - k * job.bs)
          if (fs.writeSync(fd, buf, 0, len) !== len) throw new Error(`short write to ${job.file}`)
        }

        fs.closeSync(fd)
        return {ops: blocks, bytes: job.size}
      })
      const size = fs.statSync(job.file).size
      if (size !== job.size) throw new Error(`${job.file}: size ${size} after writing ${job.size} bytes`)
      return result
    }

    case 'seqread': {
      const buf = Buffer.alloc(job.bs)
      const expected = pattern(job.bs)
      let verified = 0
      waitUntil(job.startAt)
      const result = timed(() => {
        const fd = fs.openSync(job.file, 'r')
        let bytes = 0
        let k = 0
        for (;;) {
          const n = fs.readSync(fd, buf, 0, job.bs, null)
          if (n === 0) break
          // Sampled check (every 64th block fully, every block's number): cheap next to a
          // FUSE round trip. The do-nothing filesystem returns no data, so it is not checked.
          if (job.verify) {
            if (buf.readDoubleLE(0) !== k) throw new Error(`${job.file}: block ${k} holds block ${buf.readDoubleLE(0)}`)
            if (k % 64 === 0) {
              expected.writeDoubleLE(k, 0)
              if (buf.compare(expected, 0, n, 0, n) !== 0) throw new Error(`${job.file}: block ${k} differs from what was written`)
              verified++
            }
          }

          bytes += n
          k++
        }

        fs.closeSync(fd)
        return {ops: k, bytes}
      })
      if (result.bytes !== job.size) throw new Error(`${job.file}: read ${result.bytes} bytes, expected ${job.size}`)
      return {...result, verified}
    }

    case 'randread':
    case 'randwrite': {
      const flags = fs.constants.O_RDWR | fs.constants.O_DIRECT
      const fd = fs.openSync(job.file, flags)
      const buf = alignedBuffer(fd, 4096)
      const blocks = Math.floor(job.size / 4096)
      const next = rng(job.op === 'randread' ? 7 : 11)
      const result = timed(() => {
        const deadline = now() + job.seconds * 1000
        let ops = 0
        while ((ops & 63) !== 0 || now() < deadline) {
          const pos = (next() % blocks) * 4096
          const n = job.op === 'randread' ? fs.readSync(fd, buf, 0, 4096, pos) : fs.writeSync(fd, buf, 0, 4096, pos)
          if (n !== 4096) throw new Error(`${job.op} at ${pos}: ${n} bytes`)
          ops++
        }

        return {ops, bytes: ops * 4096}
      })
      fs.closeSync(fd)
      return result
    }
  }
}

if (process.argv[1]?.endsWith('driver.js')) {
  try {
    const job = JSON.parse(process.argv[2]) as Job
    process.stdout.write(JSON.stringify(run(job)) + '\n')
  } catch (error) {
    process.stderr.write(`driver: ${(error as Error).message}\n`)
    process.exit(1)
  }
}
