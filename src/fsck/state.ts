/**
 * What the passes collect and hand on (e2fsck's bitmaps and counts): one byte per inode slot, entry
 * slot and heap unit, plus flags saying which shared structures are sound (checked, or repaired)
 * so that a later repair that allocates can rely on them.
 */
import {S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK} from '../storage/format.js'
import type {CheckedImage} from './checked-image.js'
import type {FsckContext} from './context.js'

/** Inode slot states (`State.ino`). */
export const INO_FREE = 0
export const INO_LIVE = 1
/** A used slot with a problem that was not fixed: later passes leave it (and what names it) alone. */
export const INO_BAD = 2

/** Heap unit states (`State.str`): what starts at the unit. */
export const STR_NONE = 0
export const STR_FREE = 1
export const STR_NAME = 2
export const STR_BLOB = 3
/** A blob whose encoding does not parse. */
export const STR_BAD_BLOB = 4
/** A name whose hash is wrong and was not fixed. */
export const STR_BAD_NAME = 5

/** Entry slot states (`State.ent`). */
export const ENT_FREE = 0
export const ENT_LIVE = 1
/** A used entry with a problem that was not fixed: later passes leave it alone. */
export const ENT_BAD = 2

export class State {
  /** Slots of nodes.dat / entries.dat to check: highWater as it is (or should be). */
  nodeHw = 1
  entHw = 1
  /** Units of strings.dat holding strings: bump as it is (or should be). */
  heapEnd = 1
  ino = new Uint8Array(0)
  /** File type of each live inode: S_IFMT >> 12. */
  type = new Uint8Array(0)
  str = new Uint8Array(0)
  ent = new Uint8Array(0)
  /** Sound, or repaired: a repair that allocates from them may run. */
  nodeTableOk = true
  entTableOk = true
  orphanListOk = true
  heapOk = true
  stringIndexOk = true
  entryIndexOk = true
  rootOk = true
  /** Directories whose entry list must be rebuilt whatever pass 2 finds (the root was recreated). */
  readonly relist = new Set<number>()
  /**
   * Salvage (src/fsck/salvage.ts). `nodesDamaged`: pass 0 found nodes.dat missing, cut short or
   * with an unreadable header, so inode records may be lost: pass 2 rebuilds the inodes entries
   * name. `logLost` / `logTorn`: pass 7 found committed transactions lost / a torn last record.
   */
  nodesDamaged = false
  logLost = false
  logTorn = false
  /** Inode records pass 1 found free but not blank, saved before it cleared them (slot -> record). */
  readonly lostRecords = new Map<number, Buffer>()

  /** A limit for every walk: no chain is longer than this. */
  get limit(): number {
    return this.nodeHw + this.entHw + this.heapEnd + 16
  }

  /** Can inodes, entries and names be allocated (lost+found, reconnections, re-interned names)? */
  get canAllocate(): boolean {
    return this.nodeTableOk && this.entTableOk && this.heapOk && this.stringIndexOk && this.entryIndexOk
  }

  /** Grow the per-inode arrays to `hw` slots (allocations during repair raise highWater). */
  growInodes(hw: number): void {
    if (hw > this.ino.length) {
      const ino = new Uint8Array(Math.max(hw, this.ino.length * 2))
      ino.set(this.ino)
      const type = new Uint8Array(ino.length)
      type.set(this.type)
      this.ino = ino
      this.type = type
    }

    this.nodeHw = Math.max(this.nodeHw, hw)
  }

  growEntries(hw: number): void {
    if (hw > this.ent.length) {
      const ent = new Uint8Array(Math.max(hw, this.ent.length * 2))
      ent.set(this.ent)
      this.ent = ent
    }

    this.entHw = Math.max(this.entHw, hw)
  }

  /** A live directory? */
  isDir(slot: number): boolean {
    return slot >= 1 && slot < this.nodeHw && this.ino[slot] === INO_LIVE && this.type[slot] === S_IFDIR >>> 12
  }

  isLive(slot: number): boolean {
    return slot >= 1 && slot < this.nodeHw && this.ino[slot] === INO_LIVE
  }
}

/** What every pass after the open gets. */
export interface Check {
  ctx: FsckContext
  img: CheckedImage
  st: State
}

const TYPE_NAMES: Record<number, string> = {
  [S_IFREG >>> 12]: 'regular file',
  [S_IFDIR >>> 12]: 'directory',
  [S_IFLNK >>> 12]: 'symlink',
  [S_IFIFO >>> 12]: 'FIFO',
  [S_IFCHR >>> 12]: 'character device',
  [S_IFBLK >>> 12]: 'block device',
  [S_IFSOCK >>> 12]: 'socket',
}

export function typeName(type: number): string {
  return TYPE_NAMES[type] ?? `type ${type}`
}

export function validType(mode: number): boolean {
  return TYPE_NAMES[(mode & S_IFMT) >>> 12] !== undefined
}
