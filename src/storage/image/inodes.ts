/**
 * The inode record layer of the image: slot <-> inode number, live checks, attributes, times,
 * link counts, freeing a record, and the nodes.dat control counters (nextDataId, the orphan list).
 * The bottom of the image's layers (directories, file data, orphans and xattrs stand on it); it
 * imports the codecs and the storage classes only, never a layer above.
 */
import type {Contents} from '../contents.js'
import {FsError, ImageError} from '../errors.js'
import {INODE, IF_ORPHAN, IF_USED, S_IFDIR, S_IFLNK, S_IFMT} from '../format.js'
import type {Store} from '../store.js'
import {CONTROL_OFFSET, tableControlFields as TC} from '../codec/control.js'
import type {U32Field, U64Field} from '../codec/field.js'
import {inodeFields as I, timeFields} from '../codec/inode.js'
import * as inodeNumber from '../codec/inode-number.js'
import {ROOT_SLOT} from '../codec/inode-number.js'
import type {StringHeap} from '../string-heap.js'
import type {RecordTable} from '../table.js'
import type {Tables} from '../tables.js'
import type {Attr, SetAttr, Timespec} from '../types.js'

/** The clock of every a, m and ctime the image sets. */
export function nowTimespec(): Timespec {
  const ms = performance.timeOrigin + performance.now()
  const sec = Math.floor(ms / 1000)
  return {sec, nsec: Math.min(999_999_999, Math.floor((ms - sec * 1000) * 1e6))}
}

/** Slots Inodes.layoutLsn keeps before it drops those already durable. */
const LAYOUT_TRACKED = 65536

/** The fields `Inodes.init` writes, and the bytes of a record from the first to the end of the last. */
const INIT_FIELDS = [I.flags, I.mode, I.nlink, I.uid, I.gid, I.rdev, I.atimeSec, I.atimeNsec, I.mtimeSec, I.mtimeNsec, I.ctimeSec, I.ctimeNsec]
const INIT_FROM = Math.min(...INIT_FIELDS.map(f => f.off))
const INIT_TO = Math.max(...INIT_FIELDS.map(f => f.off + f.size))
const ALL_TIMES = [timeFields.atime, timeFields.mtime, timeFields.ctime]

export class Inodes {
  readonly store: Store
  readonly nodes: RecordTable
  readonly strings: StringHeap
  readonly readOnly: boolean
  /** For the block counts of attrOf. */
  private readonly contents: Contents
  /**
   * Slots whose size, content file or existence changed, with the LSN of the transaction that
   * changed them (the log's next one: set32 and set64 run inside it). A slot not in it last
   * changed before `layoutFloor`. Image.fsync asks layoutDurable for an fdatasync.
   */
  private readonly layoutLsn = new Map<number, number>()
  private layoutFloor = 0

  constructor(tables: Tables, contents: Contents) {
    this.store = tables.store
    this.nodes = tables.nodes
    this.strings = tables.strings
    this.readOnly = tables.store.readOnly
    this.contents = contents
  }

  // ---- record access ---------------------------------------------------------------------------

  get node(): Buffer {
    return this.nodes.file.buf
  }

  set32(slot: number, field: U32Field, value: number): void {
    field.set(this.store, this.nodes.file, this.nodes.off(slot), value)
    if (field === I.flags) this.layoutChanged(slot)
  }

  set64(slot: number, field: U64Field, value: number): void {
    field.set(this.store, this.nodes.file, this.nodes.off(slot), value)
    if (field === I.size || field === I.dataId) this.layoutChanged(slot)
  }

  private layoutChanged(slot: number): void {
    if (this.layoutLsn.size >= LAYOUT_TRACKED) {
      const durable = this.store.wal.durableLsn
      for (const [s, lsn] of this.layoutLsn) if (lsn < durable) this.layoutLsn.delete(s)
      if (this.layoutLsn.size >= LAYOUT_TRACKED / 2) {
        this.layoutLsn.clear()
        this.layoutFloor = this.store.wal.nextLsn
      }
    }

    this.layoutLsn.set(slot, this.store.wal.nextLsn)
  }

  /**
   * Are the inode's existence, size and content file number durable (every change to them in a
   * log record that is)? Then an fdatasync needs only its content file (Image.fsync).
   */
  layoutDurable(slot: number): boolean {
    return (this.layoutLsn.get(slot) ?? this.layoutFloor - 1) < this.store.wal.durableLsn
  }

  get32(slot: number, field: U32Field): number {
    return field.get(this.node, this.nodes.off(slot))
  }

  get64(slot: number, field: U64Field): number {
    return field.get(this.node, this.nodes.off(slot))
  }

  /** Inodes nodes.dat can hold as it is mapped now (slot 0 is none). */
  get capacity(): number {
    return Math.floor((this.nodes.file.size - this.nodes.off(0)) / this.nodes.recordSize) - 1
  }

  // ---- inode numbers ---------------------------------------------------------------------------

  inoOf(slot: number): number {
    return inodeNumber.encode(slot, this.get32(slot, I.gen))
  }

  /** Slot of a live inode, or ENOENT (also for a stale number whose slot was reused). */
  slotOf(ino: number, syscall: string): number {
    const slot = this.liveSlot(ino)
    if (slot === 0) throw new FsError('ENOENT', syscall, `inode ${ino}`)
    return slot
  }

  /** The slot of inode `ino`, or 0 if no live inode has that number. */
  liveSlot(ino: number): number {
    const slot = inodeNumber.slotOf(ino)
    if (!Number.isSafeInteger(ino) || ino < 1 || slot === 0 || slot >= this.nodes.highWater) return 0
    const o = this.nodes.off(slot)
    if ((I.flags.get(this.node, o) & IF_USED) === 0 || I.gen.get(this.node, o) !== inodeNumber.genOf(ino)) return 0
    return slot
  }

  typeOf(slot: number): number {
    return this.get32(slot, I.mode) & S_IFMT
  }

  dirSlot(ino: number, syscall: string): number {
    const slot = this.slotOf(ino, syscall)
    if (this.typeOf(slot) !== S_IFDIR) throw new FsError('ENOTDIR', syscall, `inode ${ino}`)
    return slot
  }

  /** An open image must have its root: a used directory in slot 1. */
  checkRoot(): void {
    const nodesFile = this.nodes.file
    if (this.nodes.highWater <= ROOT_SLOT || nodesFile.size < this.nodes.off(ROOT_SLOT + 1)) {
      throw new ImageError('RZ_CORRUPTED', 'has no root directory', nodesFile.path)
    }

    const o = this.nodes.off(ROOT_SLOT)
    if ((I.flags.get(this.node, o) & IF_USED) === 0 || (I.mode.get(this.node, o) & S_IFMT) !== S_IFDIR) {
      throw new ImageError('RZ_CORRUPTED', 'the root inode is not a directory', nodesFile.path)
    }
  }

  // ---- attributes ------------------------------------------------------------------------------

  /**
   * A read-only open's recovery of a size and times (FileData.recoverWriters): written into the
   * private mapping only, as the WAL replay of a read-only open is.
   */
  putInMemory(slot: number, size: number, mtime: Timespec, ctime: Timespec): void {
    const o = this.nodes.off(slot)
    I.size.put(this.node, o, size)
    timeFields.mtime.sec.put(this.node, o, mtime.sec)
    timeFields.mtime.nsec.put(this.node, o, mtime.nsec)
    timeFields.ctime.sec.put(this.node, o, ctime.sec)
    timeFields.ctime.nsec.put(this.node, o, ctime.nsec)
  }

  setTime(slot: number, which: 'atime' | 'mtime' | 'ctime', t: Timespec): void {
    const o = this.nodes.off(slot)
    const f = timeFields[which]
    f.sec.set(this.store, this.nodes.file, o, t.sec)
    f.nsec.set(this.store, this.nodes.file, o, t.nsec)
  }

  /** Set m and ctime of a directory whose entries changed. */
  touchDir(dir: number, now: Timespec): void {
    this.setTime(dir, 'mtime', now)
    this.setTime(dir, 'ctime', now)
  }

  /** A fresh record in an allocated slot: one link, a, m and ctime `now`. */
  init(slot: number, mode: number, uid: number, gid: number, rdev: number, now: Timespec): void {
    const o = this.nodes.off(slot)
    // One before-image for the run of fields written here (a setter each was 9% of a create's storage time).
    this.store.changing(this.nodes.file, o + INIT_FROM, INIT_TO - INIT_FROM)
    const b = this.node
    I.flags.put(b, o, IF_USED)
    I.mode.put(b, o, mode)
    I.nlink.put(b, o, 1)
    I.uid.put(b, o, uid)
    I.gid.put(b, o, gid)
    I.rdev.put(b, o, rdev)
    for (const f of ALL_TIMES) {
      f.sec.put(b, o, now.sec)
      f.nsec.put(b, o, now.nsec)
    }

    this.layoutChanged(slot)
  }

  /** The root directory of a new image, in slot 1 (inside the creating transaction). */
  initRoot(mode: number, uid: number, gid: number, now: Timespec): void {
    const slot = this.nodes.alloc()
    if (slot !== ROOT_SLOT) throw new Error('internal: root is not slot 1')
    this.init(slot, mode | S_IFDIR, uid, gid, 0, now)
    this.set32(slot, I.nlink, 2)
    this.set32(slot, I.parent, ROOT_SLOT)
  }

  /** Add `delta` to an inode's link count. */
  addLinks(slot: number, delta: number): void {
    this.set32(slot, I.nlink, this.get32(slot, I.nlink) + delta)
  }

  /** The chmod, chown and utimens parts of setattr (the size is file data's). */
  applyAttrs(slot: number, changes: SetAttr, now: Timespec): void {
    if (changes.mode !== undefined) this.set32(slot, I.mode, (this.get32(slot, I.mode) & S_IFMT) | (changes.mode & 0o7777))
    if (changes.uid !== undefined) this.set32(slot, I.uid, changes.uid)
    if (changes.gid !== undefined) this.set32(slot, I.gid, changes.gid)
    if (changes.atime !== undefined) this.setTime(slot, 'atime', changes.atime === 'now' ? now : changes.atime)
    if (changes.mtime !== undefined) this.setTime(slot, 'mtime', changes.mtime === 'now' ? now : changes.mtime)
    this.setTime(slot, 'ctime', now)
  }

  private readTime(o: number, which: 'atime' | 'mtime' | 'ctime'): Timespec {
    const f = timeFields[which]
    return {sec: f.sec.get(this.node, o), nsec: f.nsec.get(this.node, o)}
  }

  /** The attributes of the inode in `slot`; `ownerOnly`: its block count is not looked up (0). */
  attrOf(slot: number, ownerOnly = false): Attr {
    const b = this.node
    const o = this.nodes.off(slot)
    const mode = I.mode.get(b, o)
    const dataId = I.dataId.get(b, o)
    return {
      ino: this.inoOf(slot),
      mode,
      nlink: I.nlink.get(b, o),
      uid: I.uid.get(b, o),
      gid: I.gid.get(b, o),
      rdev: I.rdev.get(b, o),
      size: I.size.get(b, o),
      blocks: dataId === 0 || ownerOnly ? 0 : this.contents.blocks(dataId),
      atime: this.readTime(o, 'atime'),
      mtime: this.readTime(o, 'mtime'),
      ctime: this.readTime(o, 'ctime'),
    }
  }

  readlink(ino: number): Buffer {
    const slot = this.slotOf(ino, 'readlink')
    if (this.typeOf(slot) !== S_IFLNK) throw new FsError('EINVAL', 'readlink', `inode ${ino}`)
    return Buffer.from(this.strings.bytes(this.get32(slot, I.target)))
  }

  // ---- control counters ------------------------------------------------------------------------

  /** The content file id allocDataId gives next. */
  get nextDataId(): number {
    return TC.nextDataId.get(this.node, CONTROL_OFFSET)
  }

  /** Give a file inode its content file id (a new one from the nodes.dat counter). */
  allocDataId(slot: number): number {
    const id = this.nextDataId
    TC.nextDataId.set(this.store, this.nodes.file, CONTROL_OFFSET, id + 1)
    this.set64(slot, I.dataId, id)
    return id
  }

  /** Give the file in `slot` the content file `dataId`, one a freed inode had (Contents.recycle). */
  reuseDataId(slot: number, dataId: number): void {
    this.set64(slot, I.dataId, dataId)
  }

  get orphanHead(): number {
    return TC.orphanHead.get(this.node, CONTROL_OFFSET)
  }

  /** Mark an inode with no link left an orphan: on the list, freed at its last release. */
  addOrphan(slot: number): void {
    this.set32(slot, I.flags, IF_USED | IF_ORPHAN)
    this.set32(slot, I.link, this.orphanHead)
    TC.orphanHead.set(this.store, this.nodes.file, CONTROL_OFFSET, slot)
  }

  /** Take an inode off the orphan list (nothing if it is not on it). */
  unlinkOrphan(slot: number): void {
    let prev = 0
    let cur = this.orphanHead
    while (cur !== 0 && cur !== slot) {
      prev = cur
      cur = this.get32(cur, I.link)
    }

    if (cur === 0) return
    const next = this.get32(slot, I.link)
    if (prev === 0) TC.orphanHead.set(this.store, this.nodes.file, CONTROL_OFFSET, next)
    else this.set32(prev, I.link, next)
    this.set32(slot, I.link, 0)
  }

  /**
   * Free an inode's record: its target and xattrs are released, its generation moves on. Returns
   * its content file id (0 for none), whose file the caller removes once this is durable.
   */
  free(slot: number): number {
    const o = this.nodes.off(slot)
    const b = this.node
    const target = I.target.get(b, o)
    const xattr = I.xattr.get(b, o)
    const dataId = I.dataId.get(b, o)
    if (target !== 0) this.strings.release(target)
    if (xattr !== 0) this.strings.release(xattr)
    const gen = inodeNumber.nextGen(I.gen.get(b, o))
    this.store.fill(this.nodes.file, o, INODE.SIZE)
    this.set32(slot, I.gen, gen)
    this.nodes.free(slot)
    return dataId
  }
}
