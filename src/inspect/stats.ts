/**
 * `razorfs stats`: the figures of an image from one pass over nodes.dat with plain counters, and
 * the largest directories through a top-k heap of 5, so memory stays constant however many
 * inodes there are. Everything else comes from the control blocks, the headers and the WAL.
 */
import fs from 'node:fs'
import path from 'node:path'

import {Chalk} from 'chalk'
import Table from 'cli-table3'

import {
  FILES,
  FILE_NODES,
  HF_CLEAN,
  IF_ORPHAN,
  IF_USED,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  WAL_NAME,
} from '../storage/format.js'
import {inodeFields as I} from '../storage/codec/inode.js'
import type {Image} from '../storage/index.js'
import {dirPath} from './dump.js'
import {type LiveState, liveState} from './live.js'
import {Records} from './records.js'
import {humanBytes} from '../units.js'
import {bytesField, escapeName, isoMs, thousands} from './text.js'

const TOP = 5

/** Inodes by type, and those unlinked while open (stats of an image, or of a shared volume). */
export interface InodeCounts {
  files: number
  directories: number
  symlinks: number
  fifos: number
  sockets: number
  charDevices: number
  blockDevices: number
  /** Unlinked while open, waiting for the last close. */
  orphans: number
}

export interface ImageStats {
  dataDir: string
  uuid: string
  formatVersion: number
  inodes: {used: number; capacity: number} & InodeCounts
  bytes: {
    /** Sum of the sizes of regular files. */
    apparent: number
    /** Host disk space of their content files (st_blocks x 512): holes take none. */
    stored: number
    contentFiles: number
  }
  names: {
    /** Directory entries. */
    entries: number
    /** Distinct interned strings in strings.dat (names, and symlink targets that share the pool). */
    interned: number
    /** entries / interned: how many entries each stored name serves. */
    dedupRatio: number
    /** Bytes of live strings.dat entries (names, targets, xattr blobs; headers included). */
    heapBytes: number
  }
  reclaimable: {
    inodeRecords: number
    entryRecords: number
    /** Free records x record size, plus free string heap bytes. */
    bytes: number
    stringBytes: number
  }
  log: {
    fileBytes: number
    /** Bytes of the current cycle (records not yet checkpointed). */
    cycleBytes: number
    /** Transactions in the log since the last checkpoint (replayed by this read-only open). */
    transactions: number
    tornBytes: number
  }
  checkpoint: {
    generation: number
    lsn: number
    /** When nodes.dat was last written (only checkpoints write it). */
    time: string | null
  }
  clean: boolean
  live: LiveState
  largestDirectories: Array<{ino: number; entries: number; path?: string; pathBase64?: string}>
  files: Array<{name: string; bytes: number}>
}

/** A min-heap of the k largest (value, slot) pairs seen. */
class TopK {
  private readonly values: Float64Array
  private readonly slots: Uint32Array
  size = 0

  constructor(readonly k: number) {
    this.values = new Float64Array(k)
    this.slots = new Uint32Array(k)
  }

  private less(i: number, j: number): boolean {
    return this.values[i] < this.values[j] || (this.values[i] === this.values[j] && this.slots[i] > this.slots[j])
  }

  private swap(i: number, j: number): void {
    const v = this.values[i]
    this.values[i] = this.values[j]
    this.values[j] = v
    const s = this.slots[i]
    this.slots[i] = this.slots[j]
    this.slots[j] = s
  }

  offer(value: number, slot: number): void {
    if (this.size < this.k) {
      let i = this.size++
      this.values[i] = value
      this.slots[i] = slot
      while (i > 0 && this.less(i, (i - 1) >> 1)) {
        this.swap(i, (i - 1) >> 1)
        i = (i - 1) >> 1
      }

      return
    }

    if (value < this.values[0] || (value === this.values[0] && slot > this.slots[0])) return
    this.values[0] = value
    this.slots[0] = slot
    for (let i = 0; ; ) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < this.size && this.less(l, m)) m = l
      if (r < this.size && this.less(r, m)) m = r
      if (m === i) break
      this.swap(i, m)
      i = m
    }
  }

  /** Largest first. */
  sorted(): Array<[number, number]> {
    const out: Array<[number, number]> = []
    for (let i = 0; i < this.size; i++) out.push([this.values[i], this.slots[i]])
    return out.sort((a, b) => b[0] - a[0] || a[1] - b[1])
  }
}

export function collectStats(image: Image): ImageStats {
  const records = new Records(image)
  const {nodes, entries, strings, contents, store} = image.internals()
  const counts = {files: 0, directories: 0, symlinks: 0, fifos: 0, sockets: 0, charDevices: 0, blockDevices: 0, orphans: 0}
  let apparent = 0
  let stored = 0
  let contentFiles = 0
  const top = new TopK(TOP)
  const high = Math.min(nodes.highWater, Math.floor((nodes.file.size - nodes.off(0)) / nodes.recordSize))
  for (let slot = 1; slot < high; slot++) {
    // Pages already counted are dropped from the mapping as the scan moves on (constant RSS).
    if ((slot & 0x3fff) === 0) records.releasePages({file: FILE_NODES, to: nodes.off(slot)})
    const buf = nodes.file.buf
    const o = nodes.off(slot)
    const flags = I.flags.get(buf, o)
    if ((flags & IF_USED) === 0) continue
    if ((flags & IF_ORPHAN) !== 0) counts.orphans++
    const type = I.mode.get(buf, o) & S_IFMT
    switch (type) {
      case S_IFREG: {
        counts.files++
        apparent += I.size.get(buf, o)
        const dataId = I.dataId.get(buf, o)
        if (dataId !== 0) {
          const st = fs.statSync(contents.pathOf(dataId), {throwIfNoEntry: false})
          if (st !== undefined) {
            stored += st.blocks * 512
            contentFiles++
          }
        }

        break
      }

      case S_IFDIR:
        counts.directories++
        top.offer(I.size.get(buf, o), slot)
        break
      case S_IFLNK:
        counts.symlinks++
        break
      case S_IFIFO:
        counts.fifos++
        break
      case S_IFSOCK:
        counts.sockets++
        break
      case S_IFCHR:
        counts.charDevices++
        break
      case S_IFBLK:
        counts.blockDevices++
        break
      default:
        break
    }
  }

  const info = image.info()
  const header = store.headers[FILE_NODES]
  const walBytes = info.files.find(f => f.name === WAL_NAME)?.bytes ?? 0
  const nodesMtime = fs.statSync(path.join(image.dir, FILES[FILE_NODES].name)).mtimeMs
  const interned = strings.index.count
  const freeInodes = Math.max(0, nodes.highWater - 1 - nodes.live)
  const freeEntries = Math.max(0, entries.highWater - 1 - entries.live)
  return {
    dataDir: image.dir,
    uuid: info.uuid,
    formatVersion: info.formatVersion,
    inodes: {used: nodes.live, capacity: info.inodes.capacity, ...counts},
    bytes: {apparent, stored, contentFiles},
    names: {
      entries: entries.live,
      interned,
      dedupRatio: interned === 0 ? 0 : Math.round((entries.live / interned) * 1000) / 1000,
      heapBytes: strings.liveBytes,
    },
    reclaimable: {
      inodeRecords: freeInodes,
      entryRecords: freeEntries,
      stringBytes: strings.freeBytes,
      bytes: freeInodes * nodes.recordSize + freeEntries * entries.recordSize + strings.freeBytes,
    },
    log: {fileBytes: walBytes, cycleBytes: store.wal.pos, transactions: info.recovery.transactions, tornBytes: info.recovery.tornBytes},
    checkpoint: {generation: header.generation, lsn: header.checkpointLsn, time: isoMs(Math.round(nodesMtime))},
    clean: (header.flags & HF_CLEAN) !== 0,
    live: liveState(image.dir),
    largestDirectories: top
      .sorted()
      .filter(([n]) => n > 0)
      .map(([n, slot]) => {
        const p = dirPath(records, slot)
        records.releasePages()
        return {ino: records.inoOf(slot), entries: n, ...bytesField('path', p)}
      }),
    files: info.files.map(f => ({name: f.name, bytes: f.bytes})),
  }
}

/** Should output to this stream be coloured? FORCE_COLOR decides if set; else a terminal, without NO_COLOR or TERM=dumb. */
export function colourWanted(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false'
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  return stream.isTTY === true && env.TERM !== 'dumb'
}

/** The human report: a cli-table3 table, coloured only when `colour`. */
export function renderStats(s: ImageStats, colour: boolean): string {
  const c = new Chalk({level: colour ? 1 : 0})
  const pct = (a: number, b: number): string => (b === 0 ? '' : ` (${((100 * a) / b).toFixed(1)}%)`)
  const table = new Table({style: {head: [], border: [], compact: true, 'padding-left': 1, 'padding-right': 1}, colAligns: ['left', 'right', 'left']})
  const section = (title: string): void => {
    table.push([{colSpan: 3, content: c.bold.cyan(title)}])
  }

  const row = (label: string, value: string, note = ''): void => {
    table.push([label, value, note])
  }

  const liveNote = s.live.locked ? c.yellow(`live: in use by ${s.live.pid === null ? 'another process' : `pid ${s.live.pid}`}`) : 'not in use'
  section('inodes')
  row('used', thousands(s.inodes.used), `of ${thousands(s.inodes.capacity)} allocated${pct(s.inodes.used, s.inodes.capacity)}`)
  row('regular files', thousands(s.inodes.files))
  row('directories', thousands(s.inodes.directories))
  row('symlinks', thousands(s.inodes.symlinks))
  const others = s.inodes.fifos + s.inodes.sockets + s.inodes.charDevices + s.inodes.blockDevices
  row(
    'others',
    thousands(others),
    `fifos ${s.inodes.fifos}, sockets ${s.inodes.sockets}, char devices ${s.inodes.charDevices}, block devices ${s.inodes.blockDevices}`,
  )
  if (s.inodes.orphans > 0) row('orphans', c.yellow(thousands(s.inodes.orphans)), 'unlinked while open')
  section('contents')
  row('apparent', humanBytes(s.bytes.apparent), `${thousands(s.bytes.apparent)} bytes: sum of file sizes`)
  row('stored', humanBytes(s.bytes.stored), `${thousands(s.bytes.stored)} bytes in ${thousands(s.bytes.contentFiles)} content files (host blocks)`)
  section('names')
  row('entries', thousands(s.names.entries))
  row('interned strings', thousands(s.names.interned), 'distinct names and symlink targets')
  row('dedup ratio', s.names.dedupRatio.toFixed(2), 'entries per interned string')
  row('string heap', humanBytes(s.names.heapBytes), 'live bytes')
  section('reclaimable')
  row('inode records', thousands(s.reclaimable.inodeRecords))
  row('entry records', thousands(s.reclaimable.entryRecords))
  row('string bytes', humanBytes(s.reclaimable.stringBytes))
  row('total', humanBytes(s.reclaimable.bytes))
  section('log and checkpoint')
  row('wal.log', humanBytes(s.log.fileBytes), `${thousands(s.log.cycleBytes)} bytes in the current cycle`)
  row('since checkpoint', thousands(s.log.transactions), `transactions${s.log.tornBytes > 0 ? c.red(`, ${s.log.tornBytes} torn bytes at the end`) : ''}`)
  row('last checkpoint', `#${s.checkpoint.generation}`, `LSN ${s.checkpoint.lsn}, ${s.checkpoint.time ?? '-'}`)
  row('clean', s.clean ? c.green('yes') : c.yellow('no'), liveNote)
  if (s.largestDirectories.length > 0) {
    section(`largest directories (top ${TOP})`)
    for (const [i, d] of s.largestDirectories.entries()) {
      const p = escapeName(d.path === undefined ? Buffer.from(d.pathBase64!, 'base64') : Buffer.from(d.path))
      row(`#${i + 1}`, thousands(d.entries), `${p.length > 64 ? `${p.slice(0, 30)}...${p.slice(-31)}` : p} (inode ${d.ino})`)
    }
  }

  return `razorfs image ${c.bold(s.uuid)} (format ${s.formatVersion})\ndata dir ${s.dataDir}\n${table.toString()}\n`
}
