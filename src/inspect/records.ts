/**
 * Raw, read-only access to the records of an open image (nodes.dat, entries.dat, strings.dat),
 * for dump and stats. Fields keep the names of docs/FORMAT.md. Nothing here allocates per record
 * beyond what the caller asks for, and every chain walk is bounded, so a damaged or changing
 * image (a live one: a read-only open sees the writer's later checkpoints) never hangs a reader.
 */
import fs from 'node:fs'

import {INLINE_NAME, STRING, S_IFDIR, S_IFLNK, S_IFMT} from '../storage/format.js'
import * as dirent from '../storage/codec/dirent.js'
import {type DirentFields, direntFields as D} from '../storage/codec/dirent.js'
import type {U32Field, U64Field} from '../storage/codec/field.js'
import * as inode from '../storage/codec/inode.js'
import {inodeFields as I} from '../storage/codec/inode.js'
import * as inodeNumber from '../storage/codec/inode-number.js'
import * as stringUnit from '../storage/codec/string-unit.js'
import * as xattrBlob from '../storage/codec/xattr-blob.js'
import type {Image, ImageInternals, Timespec} from '../storage/index.js'
import {releaseCleanPages} from '../storage/page-release.js'

/** An INODE record (codec/inode.ts `decode`: FORMAT.md's field names, `reserved` left out), its slot and number. */
export type InodeRecord = inode.InodeRecord

/** A DIRENT record (codec/dirent.ts `decode`), with its slot. */
export type DirentRecord = {slot: number} & DirentFields

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
    // A scan reads pages in turn: whole folios per fault, not the mount's pieces (mapped-file.ts).
    for (const file of this.internals.store.files) file.joinPieces()
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
    const slot = inodeNumber.slotOf(ino)
    if (!this.isLive(slot)) return 0
    return this.u32(slot, I.gen) === inodeNumber.genOf(ino) ? slot : 0
  }

  isLive(slot: number): boolean {
    return this.inodeInRange(slot) && inode.isUsed(this.node, this.internals.nodes.off(slot))
  }

  u32(slot: number, field: U32Field): number {
    return field.get(this.node, this.internals.nodes.off(slot))
  }

  u64(slot: number, field: U64Field): number {
    return field.get(this.node, this.internals.nodes.off(slot))
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
    return inodeNumber.encode(slot, this.u32(slot, I.gen))
  }

  inode(slot: number): InodeRecord {
    return inode.decode(this.node, this.internals.nodes.off(slot), slot)
  }

  /** What is wrong with an inode record on its own (codec/inode.ts `validate`), one line each. */
  inodeProblems(slot: number): string[] {
    return inode.validate(this.node, this.internals.nodes.off(slot)).map(p => `${p.field} is ${p.value}, expected ${p.expected}`)
  }

  dirent(d: number): DirentRecord {
    return {slot: d, ...dirent.decode(this.ent, this.internals.entries.off(d))}
  }

  /** Is `d` a slot of entries.dat whose record is mapped? */
  entryInRange(d: number): boolean {
    return d >= 1 && d < this.entryHighWater && this.internals.entries.off(d + 1) <= this.internals.entries.file.size
  }

  /** Next entry of the same directory (0 = last). */
  entryNext(d: number): number {
    return D.next.get(this.ent, this.internals.entries.off(d))
  }

  /** Previous (newer) entry of the same directory (0 = first). */
  entryPrev(d: number): number {
    return D.prev.get(this.ent, this.internals.entries.off(d))
  }

  /** The directory (inode slot) holding the entry. */
  entryParent(d: number): number {
    return D.parent.get(this.ent, this.internals.entries.off(d))
  }

  entryChild(d: number): number {
    return D.child.get(this.ent, this.internals.entries.off(d))
  }

  entryType(d: number): number {
    return D.type.get(this.ent, this.internals.entries.off(d)) << 12
  }

  /** Does the entry name a live inode of the generation it recorded? */
  entryTargetLive(d: number): boolean {
    const o = this.internals.entries.off(d)
    const child = D.child.get(this.ent, o)
    return this.isLive(child) && this.u32(child, I.gen) === D.childGen.get(this.ent, o)
  }

  /** The entry's name (a copy). */
  entryName(d: number): Buffer {
    const o = this.internals.entries.off(d)
    const b = this.ent
    const len = D.nameLength.get(b, o)
    if (len <= INLINE_NAME) return Buffer.from(dirent.inlineName(b, o))
    return Buffer.from(this.stringBytes(D.name.get(b, o), len))
  }

  /** Bytes of a strings.dat entry (a view), bounded by the mapping and by `max` if given. */
  stringBytes(unit: number, max?: number): Buffer {
    const heap = this.internals.strings
    if (unit === 0 || heap.off(unit + 1) > heap.file.size) return Buffer.alloc(0)
    const start = heap.off(unit) + STRING.SIZE
    let len = stringUnit.length(heap.file.buf, heap.off(unit))
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
    for (const {name, value} of xattrBlob.decode(this.stringBytes(unit))) out.push({name: Buffer.from(name), value: Buffer.from(value)})
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
