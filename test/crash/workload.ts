/**
 * The mixed workload of the crash harnesses, run by the checker (the test process) against a
 * mount served by another process: creates, writes at random offsets, renames (also over existing
 * files and between hard links of one file), unlinks (also of open files), hard links, truncates,
 * xattrs, fsyncs, fdatasyncs and fsyncdirs. Each system call is recorded in the cycle's journal
 * when issued and applied to the model when it returns; the loop stops issuing once `stopped()`.
 */
import fs from 'node:fs'
import path from 'node:path'
import {performance} from 'node:perf_hooks'

import {type Cycle, describe, DIRS, type Effect, FILE_DIRS, type JournalEntry, NAMES_PER_DIR, patternBuffer, RZID} from './model.js'
import type {Xattrs} from '../helpers/xattr.js'

/** Files stay below this size: writes end before it, truncates stay at or below it. */
export const MAX_FILE = 256 * 1024
/** Longest write: 64 KiB, half of max_write (an unaligned write is still split at its first page). */
export const MAX_WRITE = 64 * 1024

export type Rng = () => number

/** mulberry32: a small seeded PRNG, so a run can be repeated with RAZORFS_CRASH_SEED. */
export function rng(seed: number): Rng {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const int = (r: Rng, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1))
export const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]

class Stop extends Error {}

export interface WorkloadOptions {
  mnt: string
  cycle: Cycle
  xattrs: Xattrs
  r: Rng
  /** True once the server was killed or stopped: issue nothing more. */
  stopped: () => boolean
  /** Write ids, shared by all cycles of a run (they make bytes self-describing). */
  wids: {next: number}
  /** Relative weight of fsync / fdatasync / fsyncdir (1 = default). */
  syncWeight?: number
}

export interface WorkloadResult {
  /** Operations (groups of system calls) started. */
  ops: number
  /** What ended the loop: 'stopped' or the unexpected error. */
  end: string
}

/** Run operations until `stopped()`; system calls failing while the server is alive are recorded in cycle.failures. */
export async function runWorkload(o: WorkloadOptions): Promise<WorkloadResult> {
  const {mnt, cycle, r} = o
  const m = cycle.model
  const abs = (p: string): string => path.join(mnt, p)

  const step = async <T>(effect: Effect, call: () => Promise<T>): Promise<T> => {
    if (o.stopped()) throw new Stop()
    const entry: JournalEntry = cycle.issue(effect, performance.now())
    let result: T
    try {
      result = await call()
    } catch (error) {
      if (o.stopped()) throw new Stop()
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message
      cycle.failures.push(`${describe(effect)}: ${code}`)
      throw new Stop()
    }

    cycle.ack(entry, performance.now())
    return result
  }

  /** close(2): no change to the state; always made, even once stopped (a handle left to the GC would crash the checker). */
  const quiet = async (what: string, call: () => Promise<unknown>): Promise<void> => {
    try {
      await call()
    } catch (error) {
      if (!o.stopped()) cycle.failures.push(`${what}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
    }
  }

  const freeName = (): string | undefined => {
    for (let tries = 0; tries < 10; tries++) {
      const p = `${pick(r, FILE_DIRS)}/f${int(r, 0, NAMES_PER_DIR - 1)}`
      if (!m.names.has(p)) return p
    }

    return undefined
  }

  const someFile = (): string | undefined => (m.names.size === 0 ? undefined : pick(r, [...m.names.keys()]))

  /**
   * pwrite through `fh`. A write that does not start on a page boundary reaches the server as
   * more than one FUSE request, so a kill can cut it short: the part the call reports written is
   * acknowledged, the rest stays in flight (either way after the kill).
   */
  const pwrite = async (id: number, fh: fs.promises.FileHandle, off: number, len: number): Promise<void> => {
    if (o.stopped()) throw new Stop()
    const wid = o.wids.next++
    const effect = {kind: 'write', id, wid, off, len} as const
    const entry = cycle.issue(effect, performance.now())
    let written: number
    try {
      ;({bytesWritten: written} = await fh.write(patternBuffer(wid, off, len), 0, len, off))
    } catch (error) {
      if (o.stopped()) throw new Stop()
      cycle.failures.push(`${describe(effect)}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
      throw new Stop()
    }

    if (written === len) {
      cycle.ack(entry, performance.now())
      return
    }

    entry.effect = {...effect, len: written}
    cycle.ack(entry, performance.now())
    cycle.issue({...effect, off: off + written, len: len - written}, performance.now())
    if (!o.stopped()) cycle.failures.push(`${describe(effect)}: wrote only ${written} bytes`)
    throw new Stop()
  }

  const write = async (p: string, fh: fs.promises.FileHandle): Promise<void> => {
    const len = pick(r, [int(r, 1, 512), int(r, 1, 512), int(r, 512, 8192), int(r, 8192, MAX_WRITE)])
    await pwrite(m.names.get(p)!, fh, int(r, 0, MAX_FILE - len), len)
  }

  const ops: Array<[number | (() => number), () => Promise<void>]> = [
    [
      () => (m.names.size < 20 ? 14 : 4),
      async () => {
        // create, set the identity, maybe write
        const p = freeName()
        if (!p) return
        const id = m.ids.next++
        const fh = await step({kind: 'create', path: p, id}, () => fs.promises.open(abs(p), 'wx', 0o644))
        await quiet(`close ${p}`, () => fh.close())
        await step({kind: 'setxattr', id, name: RZID, value: Buffer.from(String(id))}, () => o.xattrs.set(abs(p), RZID, Buffer.from(String(id))))
      },
    ],
    [
      30,
      async () => {
        // write at a random offset, sometimes fsync / fdatasync on the same descriptor
        const p = someFile()
        if (!p) return
        const fh = await step({kind: 'none', what: `open ${p}`}, () => fs.promises.open(abs(p), 'r+'))
        try {
          await write(p, fh)
          const id = m.names.get(p)
          if (id !== undefined && r() < 0.15 * (o.syncWeight ?? 1)) {
            const dataOnly = r() < 0.5
            await step({kind: dataOnly ? 'fdatasync' : 'fsync', id}, () => (dataOnly ? fh.datasync() : fh.sync()))
          }
        } finally {
          await quiet(`close ${p}`, () => fh.close())
        }
      },
    ],
    [
      8,
      async () => {
        // truncate (shrink or grow)
        const p = someFile()
        if (!p) return
        const size = pick(r, [0, int(r, 0, 4096), int(r, 0, MAX_FILE), int(r, 0, MAX_FILE)])
        await step({kind: 'truncate', id: m.names.get(p)!, size}, () => fs.promises.truncate(abs(p), size))
      },
    ],
    [
      10,
      async () => {
        // rename: over an existing file, onto a free name, or between two links of one file
        const from = someFile()
        if (!from) return
        const to = r() < 0.5 ? someFile() : freeName()
        if (!to || to === from) return
        await step({kind: 'rename', from, to}, () => fs.promises.rename(abs(from), abs(to)))
      },
    ],
    [
      6,
      async () => {
        // unlink
        const p = someFile()
        if (!p) return
        await step({kind: 'unlink', path: p}, () => fs.promises.unlink(abs(p)))
      },
    ],
    [
      2,
      async () => {
        // unlink an open file, then write through its descriptor
        const p = someFile()
        if (!p) return
        const fh = await step({kind: 'none', what: `open ${p}`}, () => fs.promises.open(abs(p), 'r+'))
        try {
          const id = m.names.get(p)!
          await step({kind: 'unlink', path: p}, () => fs.promises.unlink(abs(p)))
          const len = int(r, 1, 4096)
          await pwrite(id, fh, int(r, 0, MAX_FILE - len), len)
        } finally {
          await quiet(`close ${p}`, () => fh.close())
        }
      },
    ],
    [
      6,
      async () => {
        // hard link
        const from = someFile()
        const to = freeName()
        if (!from || !to) return
        await step({kind: 'link', from, to}, () => fs.promises.link(abs(from), abs(to)))
      },
    ],
    [
      8,
      async () => {
        // setxattr
        const p = someFile()
        if (!p) return
        const name = `user.x${int(r, 0, 2)}`
        const value = Buffer.from(Array.from({length: int(r, 1, 200)}, () => int(r, 0, 255)))
        await step({kind: 'setxattr', id: m.names.get(p)!, name, value}, () => o.xattrs.set(abs(p), name, value))
      },
    ],
    [
      2,
      async () => {
        // removexattr
        const p = someFile()
        if (!p) return
        const names = [...m.files.get(m.names.get(p)!)!.xattrs.keys()].filter(n => n !== RZID)
        if (names.length === 0) return
        const name = pick(r, names)
        await step({kind: 'removexattr', id: m.names.get(p)!, name}, () => o.xattrs.remove(abs(p), name))
      },
    ],
    [
      6 * (o.syncWeight ?? 1),
      async () => {
        // fsync / fdatasync through a read-only descriptor
        const p = someFile()
        if (!p) return
        const fh = await step({kind: 'none', what: `open ${p}`}, () => fs.promises.open(abs(p), 'r'))
        try {
          const dataOnly = r() < 0.5
          await step({kind: dataOnly ? 'fdatasync' : 'fsync', id: m.names.get(p)!}, () => (dataOnly ? fh.datasync() : fh.sync()))
        } finally {
          await quiet(`close ${p}`, () => fh.close())
        }
      },
    ],
    [
      5 * (o.syncWeight ?? 1),
      async () => {
        // fsyncdir
        const d = pick(r, DIRS)
        const fh = await step({kind: 'none', what: `opendir /${d}`}, () => fs.promises.open(abs(d), 'r'))
        try {
          await step({kind: 'fsyncdir', dir: d}, () => fh.sync())
        } finally {
          await quiet(`closedir /${d}`, () => fh.close())
        }
      },
    ],
  ]

  let count = 0
  let end = 'stopped'
  try {
    while (!o.stopped()) {
      const weights = ops.map(([w]) => (typeof w === 'number' ? w : w()))
      let x = r() * weights.reduce((s, w) => s + w, 0)
      const op = ops.find((_, i) => (x -= weights[i]) < 0) ?? ops[0]
      count++
      await op[1]()
    }
  } catch (error) {
    if (!(error instanceof Stop)) throw error
    if (cycle.failures.length > 0) end = cycle.failures.at(-1)!
  }

  return {ops: count, end}
}
