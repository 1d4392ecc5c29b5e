/**
 * Raw, read-only access to the records of an open image (nodes.dat, entries.dat, strings.dat),
 * for dump and stats. Fields keep the names of docs/FORMAT.md. Nothing here allocates per record
 * beyond what the caller asks for, and every chain walk is bounded, so a damaged or changing
 * image (a live one: a read-only open sees the writer's later checkpoints) never hangs a reader.
 */
import fs from 'node:fs'

import {
  DIRENT, IF_USED, INLINE_NAME, INODE, S_IFDIR, S_IFLNK, S_IFMT, readI64, readU64,
} from '../storage/format.js'
import type {Image, ImageInternals, Timespec} from '../storage/index.js'
import {releaseCleanPages} from '../storage/page-release.js'

const I = INODE.OFF
const D = DIRENT.OFF
const TWO32 = 2 ** 32

/** An INODE record, with FORMAT.md's field names (`reserved` left out) and its slot and number. */
export interface InodeRecord {
  ino: number
  slot: number
  gen: number
  flags: number
  mode: number
  nlink: number
  uid: number
  gid: number
  size: number
  atimeSec: number
  atimeNsec: number
  mtimeSec: number
  mtimeNsec: number
  ctimeSec: number
  ctimeNsec: number
  parent: number
  rdev: number
  dataId: number
  xattr: number
  target: number
  dirHead: number
  link: number
}

/** A DIRENT record, with its slot. */
export interface DirentRecord {
  slot: number
  parent: number
  name: number
  child: number
  childGen: number
  next: number
  prev: number
  type: number
  nameLength: number
}

/** Items of a scan between two looks at how much of the image files is mapped in. */
const CHECK_EVERY = 16
/** Release the pages a scan has touched once this many bytes of files are resident beyond the start... */
const RESIDENT_LIMIT = 8 << 20
/** ...and at least every this many items (where /proc/self/statm cannot tell). */
const RELEASE_EVERY = 16384

/** Resident file-backed bytes of this process (Linux: /proc/self/statm "shared"), or undefined. */
function residentFileBytes(): number | undefined {
  try {
    return Number(fs.readFileSync('/proc/self/statm', 'latin1').split(' ')[2]) * 4096
  } catch {
    return undefined
  }
}

export class Records {
  readonly internals: ImageInternals
  private ticks = 0
  private readonly residentAtStart: number | undefined

  constructor(readonly image: Image) {
    this.internals = image.internals()
    this.residentAtStart = residentFileBytes()
  }

  /**
   * Count one item of a scan. When the scan has made more than RESIDENT_LIMIT bytes of the
   * mapped files resident (or every RELEASE_EVERY items), drop the pages it touched from this
   * process: they are read again from the page cache when needed (storage/page-release.ts). A
   * page fault may map much more than the page it needs (fault-around, large folios), so the
   * check measures instead of counting pages; the resident set of a walk stays bounded however
   * large the image is.
   */
  tick(): void {
    if (++this.ticks % CHECK_EVERY !== 0) return
    const now = this.residentAtStart === undefined ? undefined : residentFileBytes()
    if (this.ticks % RELEASE_EVERY === 0 || (now !== undefined && now - this.residentAtStart! > RESIDENT_LIMIT)) this.releasePages()
  }

  releasePages(from?: {file: number; to: number}): void {
    const files = this.internals.store.files
    if (from === undefined) {
      for (const file of files) releaseCleanPages(file)
    } else {
      releaseCleanPages(files[from.file], 0, from.to)
    }
  }

  private get node(): Buffer {
    return this.internals.nodes.file.buf
  }

  private get ent(): Buffer {
    return this.internals.entries.file.buf
  }

  get inodeHighWater(): number {
    return this.internals.nodes.highWater
  }

  get entryHighWater(): number {
    return this.internals.entries.highWater
  }

  /** Is `slot` a slot of the table whose record is mapped? */
  private inodeInRange(slot: number): boolean {
    return slot >= 1 && slot < this.inodeHighWater && this.internals.nodes.off(slot + 1) <= this.internals.nodes.file.size
  }

  /** Slot of a live inode number (generation checked), or 0. */
  slotOf(ino: number): number {
    if (!Number.isSafeInteger(ino) || ino < 1) return 0
    const slot = ino % TWO32
    if (!this.isLive(slot)) return 0
    return this.u32(slot, I.gen) === Math.floor(ino / TWO32) ? slot : 0
  }

  isLive(slot: number): boolean {
    return this.inodeInRange(slot) && (this.u32(slot, I.flags) & IF_USED) !== 0
  }

  u32(slot: number, field: number): number {
    return this.node.readUInt32LE(this.internals.nodes.off(slot) + field)
  }

  u64(slot: number, field: number): number {
    return readU64(this.node, this.internals.nodes.off(slot) + field)
  }

  mode(slot: number): number {
    return this.u32(slot, I.mode)
  }

  /** A directory's parent slot (the root: itself). */
  parentOf(slot: number): number {
    return this.u32(slot, I.parent)
  }

  /** A directory's first entry (0 = empty). */
  dirHead(slot: number): number {
    return this.u32(slot, I.dirHead)
  }

  isDir(slot: number): boolean {
    return (this.mode(slot) & S_IFMT) === S_IFDIR
  }

  inoOf(slot: number): number {
    return slot + this.u32(slot, I.gen) * TWO32
  }

  inode(slot: number): InodeRecord {
    const b = this.node
    const o = this.internals.nodes.off(slot)
    const gen = b.readUInt32LE(o + I.gen)
    return {
      ino: slot + gen * TWO32,
      slot,
      gen,
      flags: b.readUInt32LE(o + I.flags),
      mode: b.readUInt32LE(o + I.mode),
      nlink: b.readUInt32LE(o + I.nlink),
      uid: b.readUInt32LE(o + I.uid),
      gid: b.readUInt32LE(o + I.gid),
      size: readU64(b, o + I.size),
      atimeSec: readI64(b, o + I.atimeSec),
      atimeNsec: b.readUInt32LE(o + I.atimeNsec),
      mtimeSec: readI64(b, o + I.mtimeSec),
      mtimeNsec: b.readUInt32LE(o + I.mtimeNsec),
      ctimeSec: readI64(b, o + I.ctimeSec),
      ctimeNsec: b.readUInt32LE(o + I.ctimeNsec),
      parent: b.readUInt32LE(o + I.parent),
      rdev: readU64(b, o + I.rdev),
      dataId: readU64(b, o + I.dataId),
      xattr: b.readUInt32LE(o + I.xattr),
      target: b.readUInt32LE(o + I.target),
      dirHead: b.readUInt32LE(o + I.dirHead),
      link: b.readUInt32LE(o + I.link),
    }
  }

  dirent(d: number): DirentRecord {
    const b = this.ent
    const o = this.internals.entries.off(d)
    return {
      slot: d,
      parent: b.readUInt32LE(o + D.parent),
      name: b.readUInt32LE(o + D.name),
      child: b.readUInt32LE(o + D.child),
      childGen: b.readUInt32LE(o + D.childGen),
      next: b.readUInt32LE(o + D.next),
      prev: b.readUInt32LE(o + D.prev),
      type: b[o + D.type],
      nameLength: b[o + D.nameLength],
    }
  }

  /** Is `d` a slot of entries.dat whose record is mapped? */
  entryInRange(d: number): boolean {
    return d >= 1 && d < this.entryHighWater && this.internals.entries.off(d + 1) <= this.internals.entries.file.size
  }

  /** Next entry of the same directory (0 = last). */
  entryNext(d: number): number {
    return this.ent.readUInt32LE(this.internals.entries.off(d) + D.next)
  }

  /** Previous (newer) entry of the same directory (0 = first). */
  entryPrev(d: number): number {
    return this.ent.readUInt32LE(this.internals.entries.off(d) + D.prev)
  }

  entryChild(d: number): number {
    return this.ent.readUInt32LE(this.internals.entries.off(d) + D.child)
  }

  entryType(d: number): number {
    return this.ent[this.internals.entries.off(d) + D.type] << 12
  }

  /** Does the entry name a live inode of the generation it recorded? */
  entryTargetLive(d: number): boolean {
    const o = this.internals.entries.off(d)
    const child = this.ent.readUInt32LE(o + D.child)
    return this.isLive(child) && this.u32(child, I.gen) === this.ent.readUInt32LE(o + D.childGen)
  }

  /** The entry's name (a copy). */
  entryName(d: number): Buffer {
    const o = this.internals.entries.off(d)
    const b = this.ent
    const len = b[o + D.nameLength]
    if (len <= INLINE_NAME) return Buffer.from(b.subarray(o + D.inlineName, o + D.inlineName + len))
    return Buffer.from(this.stringBytes(b.readUInt32LE(o + D.name), len))
  }

  /** Bytes of a strings.dat entry (a view), bounded by the mapping and by `max` if given. */
  stringBytes(unit: number, max?: number): Buffer {
    const heap = this.internals.strings
    if (unit === 0 || heap.off(unit + 1) > heap.file.size) return Buffer.alloc(0)
    const start = heap.off(unit) + 16
    let len = heap.length(unit)
    if (max !== undefined) len = Math.min(len, max)
    return heap.file.buf.subarray(start, Math.min(start + len, heap.file.size))
  }

  /** A symlink's target (a copy); empty for anything else. */
  symlinkTarget(slot: number): Buffer {
    if ((this.mode(slot) & S_IFMT) !== S_IFLNK) return Buffer.alloc(0)
    return Buffer.from(this.stringBytes(this.u32(slot, I.target)))
  }

  /** An inode's xattrs, in the order they were set (names as stored, values copied). */
  xattrs(slot: number): Array<{name: Buffer; value: Buffer}> {
    const unit = this.u32(slot, I.xattr)
    const out: Array<{name: Buffer; value: Buffer}> = []
    if (unit === 0) return out
    const blob = this.stringBytes(unit)
    for (let p = 0; p + 6 <= blob.length;) {
      const nameLen = blob.readUInt16LE(p)
      const valueLen = blob.readUInt32LE(p + 2)
      if (p + 6 + nameLen + valueLen > blob.length) break
      out.push({
        name: Buffer.from(blob.subarray(p + 6, p + 6 + nameLen)),
        value: Buffer.from(blob.subarray(p + 6 + nameLen, p + 6 + nameLen + valueLen)),
      })
      p += 6 + nameLen + valueLen
    }

    return out
  }
}

export function timesOf(r: InodeRecord): {atime: Timespec; mtime: Timespec; ctime: Timespec} {
  return {
    atime: {sec: r.atimeSec, nsec: r.atimeNsec},
    mtime: {sec: r.mtimeSec, nsec: r.mtimeNsec},
    ctime: {sec: r.ctimeSec, nsec: r.ctimeNsec},
  }
}
