/**
 * Reading V8 CPU profiles (`node --cpu-prof`): self time per function within a time window.
 * Sample timestamps are CLOCK_MONOTONIC microseconds, the clock the driver reports its phases in
 * (startMono/endMono), so one server profile is cut into the phases of the workload that ran.
 */
import fs from 'node:fs'
import path from 'node:path'

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
}

interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
}

export interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

export interface SelfTime {
  fn: string
  ms: number
  /** Share of the window's wall time. */
  pct: number
}

export interface WindowProfile {
  windowMs: number
  /** Wall time the JS thread was busy (everything but "(idle)"). */
  busyMs: number
  busyPct: number
  top: SelfTime[]
}

export function loadProfile(file: string): CpuProfile {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile
}

/** "fn file:line" with the file shortened to what identifies it in this repo or in Node. */
export function frameName(f: CallFrame): string {
  const name = f.functionName || '(anonymous)'
  if (f.url === '') return name
  let file = f.url.replace(/^file:\/\//, '')
  const dist = file.indexOf('/dist/')
  if (dist >= 0) file = file.slice(dist + 6)
  else if (file.includes('/node_modules/')) file = file.slice(file.lastIndexOf('/node_modules/') + 14)
  else if (!file.startsWith('node:')) file = path.basename(file)
  return `${name} ${file}:${f.lineNumber + 1}`
}

/** Self time per function between `from` and `to` (µs, CLOCK_MONOTONIC); top `n` by time, idle left out. */
export function selfTimes(p: CpuProfile, from: number, to: number, n = 15): WindowProfile {
  const byId = new Map(p.nodes.map(node => [node.id, node]))
  const totals = new Map<string, number>()
  let t = p.startTime
  let busy = 0
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]
    // A sample stands for the interval up to the next one.
    const dt = i + 1 < p.timeDeltas.length ? p.timeDeltas[i + 1] : 0
    if (t < from || t >= to) continue
    const name = frameName(byId.get(p.samples[i])!.callFrame)
    totals.set(name, (totals.get(name) ?? 0) + dt)
    if (name !== '(idle)') busy += dt
  }

  const windowUs = to - from
  const top = [...totals.entries()]
    .filter(([fn]) => fn !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([fn, us]) => ({fn, ms: us / 1000, pct: (100 * us) / windowUs}))
  return {windowMs: windowUs / 1000, busyMs: busy / 1000, busyPct: (100 * busy) / windowUs, top}
}

/** Where a window's wall time went: idle, razorfs's own code (inclusive), fuse-native's JS, GC, the rest. */
export interface Breakdown {
  idlePct: number
  /** Samples with a frame of razorfs (dist/src/) anywhere on the stack. */
  razorfsPct: number
  /** Samples in fuse-native's JS or the tick queue that hands replies to it, outside razorfs code. */
  bindingPct: number
  gcPct: number
  otherPct: number
}

export function breakdown(p: CpuProfile, from: number, to: number): Breakdown {
  const parent = new Map<number, number>()
  for (const node of p.nodes) for (const c of node.children ?? []) parent.set(c, node.id)
  const byId = new Map(p.nodes.map(node => [node.id, node]))
  const kind = new Map<number, keyof Breakdown>()
  const classify = (id: number): keyof Breakdown => {
    const known = kind.get(id)
    if (known !== undefined) return known
    const leaf = byId.get(id)!.callFrame
    let k: keyof Breakdown = 'otherPct'
    if (leaf.functionName === '(idle)') k = 'idlePct'
    else if (leaf.functionName === '(garbage collector)') k = 'gcPct'
    else {
      let binding = false
      for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
        const url = byId.get(n)!.callFrame.url
        if (url.includes('/dist/src/')) {
          k = 'razorfsPct'
          break
        }

        if (url.includes('/fuse-native/') || url.includes('task_queues')) binding = true
      }

      if (k === 'otherPct' && binding) k = 'bindingPct'
    }

    kind.set(id, k)
    return k
  }

  const out: Breakdown = {idlePct: 0, razorfsPct: 0, bindingPct: 0, gcPct: 0, otherPct: 0}
  let t = p.startTime
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]
    const dt = i + 1 < p.timeDeltas.length ? p.timeDeltas[i + 1] : 0
    if (t < from || t >= to) continue
    out[classify(p.samples[i])] += (100 * dt) / (to - from)
  }

  return out
}

/** Total (inclusive) time per node within a window, for the flame graph. */
export function flameRows(p: CpuProfile, from: number, to: number, minShare = 0.004): Array<{x0: number; x1: number; depth: number; name: string; ms: number}> {
  const byId = new Map(p.nodes.map(node => [node.id, node]))
  const self = new Map<number, number>()
  let t = p.startTime
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]
    const dt = i + 1 < p.timeDeltas.length ? p.timeDeltas[i + 1] : 0
    if (t < from || t >= to) continue
    const name = byId.get(p.samples[i])!.callFrame.functionName
    if (name === '(idle)') continue
    self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + dt)
  }

  const total = new Map<number, number>()
  const sum = (id: number): number => {
    const node = byId.get(id)!
    let s = self.get(id) ?? 0
    for (const c of node.children ?? []) s += sum(c)
    total.set(id, s)
    return s
  }

  const root = p.nodes[0].id
  const all = sum(root)
  const rows: Array<{x0: number; x1: number; depth: number; name: string; ms: number}> = []
  const place = (id: number, x0: number, depth: number): void => {
    const node = byId.get(id)!
    const w = total.get(id) ?? 0
    if (all === 0 || w / all < minShare) return
    if (depth > 0) rows.push({x0: x0 / all, x1: (x0 + w) / all, depth: depth - 1, name: frameName(node.callFrame), ms: w / 1000})
    let x = x0
    const kids = [...(node.children ?? [])].sort((a, b) => (total.get(b) ?? 0) - (total.get(a) ?? 0))
    for (const c of kids) {
      place(c, x, depth + 1)
      x += total.get(c) ?? 0
    }
  }

  place(root, 0, 0)
  return rows
}
