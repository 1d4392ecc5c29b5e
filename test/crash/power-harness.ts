/**
 * Harness 2 of issue 4: power loss, approximated as PLATFORM.md describes. The data dir lives on
 * an ext4 image, loop-mounted (journal commit every 60 s, so that what ext4 writes by itself
 * between syncs is little). At a random moment the server is SIGSTOPped (the checker's calls
 * stop with it) and, once every server thread is stopped, the image file is copied: a loop
 * device's writes land in its backing file, so the copy holds what the "disk" had, and nothing
 * that only sat in the loop-mounted ext4's page cache. Then the server is killed and unmounted;
 * the copy is `e2fsck -fy`'d, loop-mounted in its place and checked:
 *
 * - the read-only open through the storage API and a walk of the whole tree;
 * - everything that was made durable before the stop (an acknowledged fsync of a file after its
 *   last change, an acknowledged fsyncdir of a directory after a name's last change, or a change
 *   acknowledged more than twice the commit interval before the stop) is exactly there;
 * - nothing else is checked for presence, but nothing is garbage (check.ts).
 *
 * Then razorfs is mounted on the copy (recovery), fsck of the recovered image must find nothing at
 * all, and the next cycle goes on from there.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {performance} from 'node:perf_hooks'

import {adopt, checkDurable, checkExact, checkGarbage, Violations} from './check.js'
import {checkFsck, formatFsck, type FsckTally, keepEvidence} from './kill-harness.js'
import {Cycle, describe, FILE_DIRS, Model} from './model.js'
import {observeImage, observeMount} from './observe.js'
import {cleanupMount, isMounted, run, Server, sleep} from './server.js'
import {int, pick, rng, runWorkload} from './workload.js'
import {Xattrs} from '../helpers/xattr.js'

/** The server's commit interval (src/fuse/serve.ts COMMIT_INTERVAL_S). */
export const COMMIT_INTERVAL_MS = 5000
/** Changes older than this at the stop must have survived (twice the commit interval: margin for a late timer). */
export const AGE_MS = 2 * COMMIT_INTERVAL_MS
const IMAGE_SIZE = '256M'

export interface PowerOptions {
  label: string
  cycles: number
  /** Workload length before the stop: uniform in [min, max] ms; every `longEvery`-th cycle runs past AGE_MS. */
  minWorkMs: number
  maxWorkMs: number
  longEvery: number
  seed: number
  /** Durability-breaking switches for the server (self-test; server.ts, src/storage/debug.ts). */
  breakSwitch?: string
  log: (line: string) => void
}

export interface PowerSummary {
  label: string
  seed: number
  cycles: number
  /** Cycles that ran longer than AGE_MS, so the commit-interval rule was checked too. */
  longCycles: number
  ops: number
  acked: number
  /** fsyncs and fsyncdirs acknowledged before the stops. */
  syncs: number
  namesChecked: number
  filesChecked: number
  bytesChecked: number
  e2fsckRepairs: number
  recoveredTransactions: number
  fsck: FsckTally
  resets: number
  violations: number
  samples: string[]
  evidence?: string
  seconds: number
}

export function formatPower(s: PowerSummary): string {
  return [
    `${s.label}: ${s.cycles} power-loss cycles (seed ${s.seed}) in ${s.seconds.toFixed(0)} s; ${s.longCycles} ran past ${AGE_MS / 1000} s (commit-interval rule checked)`,
    `  ${s.ops} operations, ${s.acked} acknowledged system calls, ${s.syncs} fsync/fsyncdir acknowledged before the stops`,
    `  checked after the power losses: ${s.namesChecked} durable names, ${s.filesChecked} durable file states (content and/or xattrs), ${(s.bytesChecked / 2 ** 20).toFixed(1)} MiB for garbage`,
    `  e2fsck repaired the ext4 copy ${s.e2fsckRepairs} times; ${s.recoveredTransactions} transactions recovered by razorfs`,
    `  fsck: ${formatFsck(s.fsck)}; image resets after unreadable images: ${s.resets}`,
    `  VIOLATIONS: ${s.violations}${s.evidence ? ` (the first failing image was kept in ${s.evidence})` : ''}`,
    ...s.samples.slice(0, 15).map(x => `    - ${x}`),
  ].join('\n')
}

function makeImage(img: string): void {
  fs.rmSync(img, {force: true})
  fs.closeSync(fs.openSync(img, 'w'))
  run('truncate', ['-s', IMAGE_SIZE, img])
  run('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', img])
}

function mountLoop(img: string, dir: string): void {
  fs.mkdirSync(dir, {recursive: true})
  run('mount', ['-t', 'ext4', '-o', 'loop,commit=60', img, dir])
}

function umountLoop(dir: string): void {
  for (let i = 0; i < 20 && isMounted(dir); i++) {
    try {
      run('umount', [dir])
    } catch {
      if (i >= 10) run('umount', ['-l', dir], () => true)
    }
  }
}

/** Why loop-mounted ext4 images cannot be used here, or undefined if they can. */
export function loopUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root'
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-loop-probe-'))
  try {
    const img = path.join(dir, 'probe.img')
    fs.closeSync(fs.openSync(img, 'w'))
    run('truncate', ['-s', '16M', img])
    run('mkfs.ext4', ['-q', '-F', img])
    mountLoop(img, path.join(dir, 'mnt'))
    umountLoop(path.join(dir, 'mnt'))
    return undefined
  } catch (error) {
    return `loop-mounting an ext4 image failed: ${(error as Error).message.split('\n')[0]}`
  } finally {
    umountLoop(path.join(dir, 'mnt'))
    fs.rmSync(dir, {recursive: true, force: true})
  }
}

/**
 * `cp --sparse=always`, in this process. No child process may be started while the server is
 * stopped: exec closes the child's inherited descriptors, and closing one that is open on the
 * mount (the checker's call in flight) waits for a FUSE FLUSH the stopped server never answers.
 */
function copySparse(src: string, dst: string): void {
  const fin = fs.openSync(src, 'r')
  const fout = fs.openSync(dst, 'w')
  try {
    const size = fs.fstatSync(fin).size
    const block = 4096
    const zero = Buffer.alloc(block)
    const buf = Buffer.alloc(1 << 20)
    for (let pos = 0; pos < size; ) {
      const n = fs.readSync(fin, buf, 0, Math.min(buf.length, size - pos), pos)
      if (n <= 0) throw new Error(`copying ${src}: short read at ${pos}`)
      // Write each run of blocks that are not all zeros; zero blocks stay holes.
      let start = -1
      for (let b = 0; b < n; b += block) {
        const end = Math.min(b + block, n)
        const data = !buf.subarray(b, end).equals(zero.subarray(0, end - b))
        if (data && start < 0) start = b
        if (!data && start >= 0) {
          fs.writeSync(fout, buf, start, b - start, pos + start)
          start = -1
        }
      }

      if (start >= 0) fs.writeSync(fout, buf, start, n - start, pos + start)
      pos += n
    }

    fs.ftruncateSync(fout, size)
  } finally {
    fs.closeSync(fin)
    fs.closeSync(fout)
  }
}

/** Wait until every thread of `pid` is stopped (a thread inside a system call stops when it returns). */
async function waitStopped(pid: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    let all = true
    try {
      for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
        const stat = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8')
        const state = stat.slice(stat.lastIndexOf(')') + 2)[0]
        if (state !== 'T' && state !== 't') all = false
      }
    } catch {
      return
    }

    if (all) return
    if (Date.now() > deadline) throw new Error(`server ${pid} did not stop within ${ms} ms`)
    await sleep(1)
  }
}

export async function runPowerHarness(o: PowerOptions): Promise<PowerSummary> {
  const started = performance.now()
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-crash-power-'))
  const ext = path.join(root, 'ext')
  const dataDir = path.join(ext, 'data')
  const mnt = path.join(root, 'mnt')
  const r = rng(o.seed)
  const ids = {next: 1}
  const wids = {next: 1}
  const v = new Violations()
  const s: PowerSummary = {
    label: o.label,
    seed: o.seed,
    cycles: 0,
    longCycles: 0,
    ops: 0,
    acked: 0,
    syncs: 0,
    namesChecked: 0,
    filesChecked: 0,
    bytesChecked: 0,
    e2fsckRepairs: 0,
    recoveredTransactions: 0,
    fsck: {clean: 0, problems: 0},
    resets: 0,
    violations: 0,
    samples: [],
    seconds: 0,
  }
  const xattrs = new Xattrs()
  let server: Server | undefined
  let model = new Model(ids)
  let img = path.join(root, 'disk-0.img')
  const trace = (line: string): void => {
    if (process.env.RAZORFS_CRASH_VERBOSE) o.log(`      ${line}`)
  }

  const walLimit = (): number | undefined => pick(r, [16 * 1024, 256 * 1024, undefined])
  /** Half the servers keep 4 content-file descriptors open: the workload's files are evicted all the time. */
  const contentFds = (): number | undefined => pick(r, [4, undefined])

  /** A new ext4 image holding a new razorfs image with the fixed directories, made durable; the server left running. */
  const setup = async (): Promise<void> => {
    if (server?.alive) await server.crash()
    cleanupMount(mnt)
    umountLoop(ext)
    makeImage(img)
    mountLoop(img, ext)
    server = new Server(dataDir, mnt, {walLimit: walLimit(), breakSwitch: o.breakSwitch, contentFds: contentFds()})
    await server.waitMounted()
    for (const d of FILE_DIRS) await fs.promises.mkdir(path.join(mnt, d))
    const fh = await fs.promises.open(mnt, 'r')
    await fh.sync()
    await fh.close()
    // The starting point is made durable by the harness itself (syncfs of the ext4), whatever
    // razorfs does, so that every run starts from a known state on the "disk".
    run('sync', ['-f', ext])
    model = new Model(ids)
  }

  try {
    await setup()
    for (let c = 1; c <= o.cycles; c++) {
      const where = `${o.label} cycle ${c}`
      s.cycles++
      const long = o.longEvery > 0 && c % o.longEvery === 0
      const workMs = long ? int(r, AGE_MS + 1000, AGE_MS + 4000) : int(r, o.minWorkMs, o.maxWorkMs)
      if (long) s.longCycles++
      const cycle = new Cycle(model)
      let stopped = false
      const srv = server!
      const work = runWorkload({mnt, cycle, xattrs, r, wids, stopped: () => stopped})
      trace(`${where}: workload for ${workMs} ms`)
      await sleep(workMs)
      // The power fails: the server stops where it is; the "disk" is what the loop device wrote.
      stopped = true
      srv.signal('SIGSTOP')
      const stopAt = performance.now()
      await waitStopped(srv.pid)
      trace(`${where}: stopped (${cycle.acked} calls acknowledged, in flight: ${cycle.pending ? describe(cycle.pending.effect) : '-'}); copying`)
      const copy = path.join(root, `disk-${c}.img`)
      copySparse(img, copy)
      srv.signal('SIGKILL')
      const res = await work
      trace(`${where}: killed, ${res.ops} ops`)
      s.ops += res.ops
      s.acked += cycle.acked
      s.syncs += cycle.entries.filter(e => e.effect.kind === 'fsync' || e.effect.kind === 'fdatasync' || e.effect.kind === 'fsyncdir').length
      for (const f of cycle.failures) v.add(where, `a system call failed while the server was alive: ${f}`)
      await srv.exited
      cleanupMount(mnt)
      umountLoop(ext)
      fs.rmSync(img, {force: true})
      img = copy

      // Reboot: e2fsck the disk, mount it, check razorfs's image, remount razorfs (recovery).
      try {
        const e2 = run('e2fsck', ['-f', '-y', img], st => st < 4)
        if (e2.status !== 0) s.e2fsckRepairs++
        mountLoop(img, ext)
      } catch (error) {
        v.add(where, `the ext4 copy is damaged beyond repair: ${(error as Error).message}`)
        s.resets++
        await setup()
        continue
      }

      trace(`${where}: e2fsck and mount done; read-only open`)
      let obs
      try {
        obs = observeImage(dataDir)
      } catch (error) {
        v.add(where, `the image does not open read-only or cannot be walked: ${(error as Error).message}`)
        s.resets++
        await setup()
        continue
      }

      const before = v.count
      const d = checkDurable(obs, cycle, stopAt, AGE_MS, v, `${where}, read-only open after power loss at ${(workMs / 1000).toFixed(1)} s`)
      s.namesChecked += d.namesChecked
      s.filesChecked += d.filesChecked
      s.bytesChecked += checkGarbage(obs, cycle, v, where)
      if (v.count > before) keepEvidence(v, dataDir, o.breakSwitch)
      model = adopt(obs, cycle.model)

      trace(`${where}: checked (${d.namesChecked} names, ${d.filesChecked} files); remounting`)
      server = new Server(dataDir, mnt, {walLimit: walLimit(), breakSwitch: o.breakSwitch, contentFds: contentFds()})
      try {
        await server.waitMounted()
        s.recoveredTransactions += server.recovered()
        checkFsck(s.fsck, dataDir, v, `${where}, fsck after recovery`)
        const seen = await observeMount(mnt, xattrs)
        checkExact(seen, [model], v, `${where}, through the mount after recovery`)
        model = adopt(seen, model)
      } catch (error) {
        v.add(where, `mounting the recovered image failed: ${(error as Error).message}`)
        s.resets++
        await setup()
      }

      if (c % 5 === 0 || c === o.cycles) o.log(`    ${o.label}: ${c}/${o.cycles} cycles, ${s.ops} ops, ${v.count} violations`)
    }

    const where = `${o.label} final clean unmount`
    try {
      const status = await server!.stop()
      if (status !== 0) v.add(where, `the server exited ${status}`)
      const obs = observeImage(dataDir)
      if (!obs.recovery?.wasClean) v.add(where, 'the image is not marked clean after a clean unmount')
      checkExact(obs, [model], v, `${where}, read-only open`)
      checkFsck(s.fsck, dataDir, v, where)
    } catch (error) {
      v.add(where, (error as Error).message)
    }
  } finally {
    if (server?.alive) await server.crash()
    cleanupMount(mnt)
    umountLoop(ext)
    xattrs.close()
    fs.rmSync(root, {recursive: true, force: true})
  }

  s.violations = v.count
  s.samples = v.samples
  s.evidence = v.evidence
  s.seconds = (performance.now() - started) / 1000
  return s
}
