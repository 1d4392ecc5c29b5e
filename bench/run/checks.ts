/**
 * The suite's targets (issue 7, issue 8), judged on this run's figures: ratios of razorfs to the
 * do-nothing ceiling, of the ll binding to fuse-native, of a large size to a small one; mount
 * time, memory and fsck time of the largest image.
 */
import type {Layout} from '../driver.js'
import type {Config} from './config.js'
import {type IoRecord, type MetaRecord, REAL_STEPS, type RealStep, results} from './results.js'
import type {TargetName} from './targets.js'
import {MiB, countName, fmt, median, sizeName} from './util.js'

export interface TargetCheck {
  name: string
  measured: string
  threshold: string
  pass: boolean | undefined
  note?: string
}

export function byTarget<T extends {target: TargetName}>(rows: T[], target: TargetName): T | undefined {
  return rows.find(r => r.target === target)
}

export const ratio = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined || b === 0 ? undefined : a / b)
/**
 * Ratio of two targets' figures. With the rounds of both (taken in turns, so round i of each ran
 * under the same load), the median of the per-round ratios; else the ratio of the reported values.
 */
function pairedRatio(a: number | undefined, b: number | undefined, ra?: number[], rb?: number[]): number | undefined {
  if (ra !== undefined && rb !== undefined && ra.length > 1 && ra.length === rb.length) return median(ra.map((x, i) => x / rb[i]))
  return ratio(a, b)
}

/** A target's metadata record at a layout and size. */
export function metaAt(target: TargetName, layout: Layout, files: number, rows = results.meta): MetaRecord | undefined {
  return rows.find(m => m.target === target && m.layout === layout && m.files === files)
}

export function metaRatio(
  layout: Layout,
  files: number,
  op: 'create' | 'stat' | 'unlink',
  of: TargetName,
  to: TargetName,
  rows = results.meta,
): number | undefined {
  const a = metaAt(of, layout, files, rows)
  const b = metaAt(to, layout, files, rows)
  return pairedRatio(a?.[op].opsPerSec, b?.[op].opsPerSec, a?.rounds?.[op], b?.rounds?.[op])
}

export function ioRatio(rows: IoRecord[], bs: number, key: 'writeMBps' | 'readMBps', of: TargetName, to: TargetName): number | undefined {
  const a = rows.find(r => r.target === of && r.bs === bs)
  const b = rows.find(r => r.target === to && r.bs === bs)
  return pairedRatio(
    a?.[key],
    b?.[key],
    a?.rounds.map(x => x[key]),
    b?.rounds.map(x => x[key]),
  )
}

/** A target's server CPU per MiB moved, median of its rounds (undefined if a round lacks it). */
export function ioCpuMedian(rows: IoRecord[], t: TargetName, key: 'writeCpuUsPerMiB' | 'readCpuUsPerMiB'): number | undefined {
  const xs = byTarget(rows, t)?.rounds.map(x => x[key])
  return xs === undefined || xs.some(x => x === undefined) ? undefined : median(xs as number[])
}

export const BINDING_OPS = ['create', 'stat', 'unlink', 'readdir', 'seq write', 'seq read'] as const
type BindingOp = (typeof BINDING_OPS)[number]

/** One figure of the bindings workload: ops/s, entries/s or MB/s (higher is better). */
export function bindingFigure(op: BindingOp, target: TargetName): number | undefined {
  const b = results.bindings
  if (op === 'readdir') return byTarget(b.readdir, target)?.entriesPerSec
  if (op === 'seq write' || op === 'seq read') return byTarget(b.seq, target)?.[op === 'seq write' ? 'writeMBps' : 'readMBps']
  return byTarget(b.meta, target)?.[op].opsPerSec
}

/** The same figure of two targets of the bindings workload, as a ratio (paired by round where there are rounds). */
export function bindingRatio(op: BindingOp, of: TargetName, to: TargetName): number | undefined {
  const b = results.bindings
  if (op === 'readdir') return ratio(bindingFigure(op, of), bindingFigure(op, to))
  if (op === 'seq write' || op === 'seq read') return ioRatio(b.seq, MiB, op === 'seq write' ? 'writeMBps' : 'readMBps', of, to)
  const files = b.meta[0]?.files ?? 0
  return metaRatio('flat', files, op, of, to, b.meta)
}

/** A target's seconds at a real step: the median round. */
export function realSec(target: TargetName, step: RealStep): number | undefined {
  const xs = byTarget(results.real, target)?.secs[step]
  return xs === undefined || xs.length === 0 ? undefined : median(xs)
}

/** `of`'s time / `peer`'s time at a real step, paired by round (higher: `of` is slower). */
export function realRatio(step: RealStep, peer: TargetName, of: TargetName = 'razorfs'): number | undefined {
  const a = byTarget(results.real, of)?.secs[step]
  const b = byTarget(results.real, peer)?.secs[step]
  return a === undefined || b === undefined || a.length === 0 || b.length === 0 ? undefined : pairedRatio(median(a), median(b), a, b)
}

export const rx = (x: number | undefined): string => (x === undefined ? '-' : `${x.toFixed(2)}x`)

export function checks(cfg: Config): TargetCheck[] {
  const out: TargetCheck[] = []
  const largest = Math.max(...cfg.metaSizes)
  const smallest = Math.min(...cfg.metaSizes)
  const quick = cfg.mode === 'quick'

  // 1. metadata >= 0.8x the fuse-native ceiling, >= 0.7x the C FUSE limit (issue 18): the worst
  // ratio over sizes and layouts, per operation.
  for (const [ceiling, least, what] of [
    ['noop', 0.8, 'noop ceiling'],
    ['noop-c', 0.7, 'noop-c (C FUSE limit)'],
  ] as const) {
    for (const op of ['create', 'stat', 'unlink'] as const) {
      let worst: {r: number; where: string} | undefined
      for (const rec of results.meta.filter(m => m.target === 'razorfs')) {
        const r = metaRatio(rec.layout, rec.files, op, 'razorfs', ceiling)
        if (r !== undefined && (worst === undefined || r < worst.r)) worst = {r, where: `${rec.layout} ${countName(rec.files)}`}
      }

      if (worst !== undefined)
        out.push({
          name: `${op}: razorfs / ${what} ops/s (worst of all sizes and layouts)`,
          measured: `${rx(worst.r)} (${worst.where})`,
          threshold: `>= ${least}x`,
          pass: worst.r >= least,
        })
    }
  }

  // Issue 18: every real workload at least as fast as mergerfs and bindfs; dd at least 0.9x native.
  for (const peer of ['mergerfs', 'bindfs'] as const) {
    const rs = REAL_STEPS.map(step => ({step, r: realRatio(step, peer)})).filter((x): x is {step: RealStep; r: number} => x.r !== undefined)
    if (rs.length === 0) continue
    const worst = rs.reduce((a, b) => (b.r > a.r ? b : a))
    out.push({
      name: `real workloads: razorfs time / ${peer} time (worst of ${rs.length} steps)`,
      measured: `${rx(worst.r)} (${worst.step})`,
      threshold: '<= 1.00x',
      pass: worst.r <= 1,
    })
  }

  for (const step of ['dd write', 'dd cold read'] as const) {
    const r = realRatio(step, 'native')
    if (r !== undefined)
      out.push({
        name: `${step} of ${sizeName(cfg.real.ddBytes)}: razorfs time / native time`,
        measured: rx(r),
        threshold: '<= 1.11x (0.9x the speed)',
        pass: r <= 1 / 0.9,
      })
  }

  const rd = ratio(byTarget(results.readdir, 'razorfs')?.entriesPerSec, byTarget(results.readdir, 'noop')?.entriesPerSec)
  if (rd !== undefined)
    out.push({name: `readdir of ${countName(cfg.readdirN)} entries: razorfs / noop`, measured: rx(rd), threshold: '>= 0.8x', pass: rd >= 0.8})

  // 2. sequential >= 0.7x the ceiling.
  for (const dir of ['write', 'read'] as const) {
    const key = dir === 'write' ? 'writeMBps' : 'readMBps'
    const r = ioRatio(results.seq, MiB, key, 'razorfs', 'noop')
    if (r !== undefined)
      out.push({name: `sequential ${dir} ${sizeName(cfg.seqBytes)}, 1 MiB blocks: razorfs / noop`, measured: rx(r), threshold: '>= 0.7x', pass: r >= 0.7})
  }

  // 3. no degradation with size: the large phase against the rounds of the small size run inside
  // it (MetaRecord.paired); the small size's own phase, a quarter of an hour earlier, is shown too.
  if (largest > smallest) {
    type Worst = {r: number; where: string} | undefined
    const lower = (w: Worst, r: number, where: string): Worst => (w === undefined || r < w.r ? {r, where} : w)
    let paired: Worst
    let apart: Worst
    for (const layout of ['flat', 'deep'] as const) {
      const big = metaAt('razorfs', layout, largest)
      const small = metaAt('razorfs', layout, smallest)
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
        measured: `${rx(judged.r)} (${judged.where})`,
        threshold: '>= 0.8x',
        pass: judged.r >= 0.8,
        note: notes.length > 0 ? notes.join('; ') : undefined,
      })
    }
  }

  // Issue 8: the ll binding's ceiling and razorfs on it beat fuse-native's, operation by operation.
  for (const [of, to, what] of [
    ['noop-ll', 'noop', 'do-nothing ceiling'],
    ['razorfs-ll', 'razorfs-fn', 'razorfs'],
  ] as const) {
    const rs = BINDING_OPS.map(op => ({op, r: bindingRatio(op, of, to)})).filter((x): x is {op: BindingOp; r: number} => x.r !== undefined)
    if (rs.length === 0) continue
    const worst = rs.reduce((a, b) => (b.r < a.r ? b : a))
    out.push({
      name: `${what}: ll / fuse-native binding (worst of ${rs.map(x => x.op).join(', ')})`,
      measured: `${rx(worst.r)} (${worst.op})`,
      threshold: '> 1x',
      pass: worst.r > 1,
    })
  }

  // 4-6. mount time, memory, fsck with the largest image.
  const lives = results.razorfsLife
  if (lives.length > 0) {
    const sizeNote = quick ? `quick run: ${countName(largest)} files; the target is for 1M inodes` : undefined
    const mount = Math.max(...lives.map(l => l.remountMs))
    out.push({
      name: `mount of a ${countName(largest)}-file image (spawn of \`razorfs mount -f\` to mounted)`,
      measured: `${fmt(mount)} ms`,
      threshold: '< 1000 ms',
      pass: mount < 1000,
      note: sizeNote,
    })
    const peak = Math.max(...lives.map(l => l.memory?.hwmMiB ?? 0))
    const peakMB = (peak * MiB) / 1e6
    out.push({
      name: `razorfs server peak RSS with ${countName(largest)} files (VmHWM)`,
      measured: `${fmt(peakMB)} MB`,
      threshold: '< 200 MB',
      pass: peakMB < 200,
      note: sizeNote,
    })
    const implemented = lives.every(l => l.fsck.implemented)
    const fsckMs = Math.max(...lives.map(l => l.fsck.ms))
    out.push({
      name: `fsck -n -f of a ${countName(largest)}-file image`,
      measured: implemented ? `${fmt(fsckMs / 1000, 1)} s (exit ${lives.map(l => l.fsck.code).join(', ')})` : 'fsck not implemented yet',
      threshold: '< 15 s',
      pass: implemented ? fsckMs < 15_000 : undefined,
      note: sizeNote,
    })
  }

  // Issue 18: the server's peak RSS with a 1M-file image built through the storage API.
  const scaled = results.scale.filter(r => r.memoryAfter !== undefined)
  if (scaled.length > 0) {
    const at = scaled.find(r => r.files === 1_000_000) ?? scaled.reduce((a, b) => (b.files > a.files ? b : a))
    const peakMB = (at.memoryAfter!.hwmMiB * MiB) / 1e6
    out.push({
      name: `razorfs server peak RSS, ${countName(at.files)}-file image built through the storage API (VmHWM after mount, stats, creates)`,
      measured: `${fmt(peakMB)} MB`,
      threshold: '< 200 MB',
      pass: peakMB < 200,
      note:
        [
          at.files === 1_000_000 ? undefined : `no 1M image in this run: ${countName(at.files)} files; the target is for 1M`,
          at.sampled === undefined
            ? undefined
            : `sampled every 50 ms: up to ${fmt(at.sampled.rssAnonMiB)} MiB anonymous, up to ${fmt(at.sampled.rssFileMiB)} MiB file-backed (mapped image pages, shared with the page cache)`,
        ]
          .filter(x => x !== undefined)
          .join('; ') || undefined,
    })
  }

  return out
}
