/**
 * A table of fixed-size records in one mapped file (nodes.dat, entries.dat), with a free list.
 * Slot 0 is never handed out, so 0 means "none" in every link.
 */
import {CONTROL_OFFSET, DATA_OFFSET, TABLE_CONTROL} from './format.js'
import type {MappedFile} from './mapped-file.js'
import type {Store} from './store.js'

const C = TABLE_CONTROL.OFF

export class RecordTable {
  readonly recordSize: number

  /** `linkOff`: offset inside a record of the u32 that chains free records. */
  constructor(private readonly store: Store, readonly file: MappedFile, private readonly linkOff: number) {
    this.recordSize = file.spec.recordSize
  }

  /** Byte offset of a slot in the file (and the mapping). */
  off(slot: number): number {
    return DATA_OFFSET + slot * this.recordSize
  }

  get highWater(): number {
    return this.file.buf.readUInt32LE(CONTROL_OFFSET + C.highWater)
  }

  get live(): number {
    return this.file.buf.readUInt32LE(CONTROL_OFFSET + C.live)
  }

  get freeHead(): number {
    return this.file.buf.readUInt32LE(CONTROL_OFFSET + C.freeHead)
  }

  /** Initialise the control block of a new table. */
  format(): void {
    this.store.set32(this.file, CONTROL_OFFSET + C.highWater, 1)
  }

  /** A slot whose record is all zeros but for fields the caller keeps across reuse (the inode generation). */
  alloc(): number {
    const f = this.file
    let slot = this.freeHead
    if (slot === 0) {
      slot = this.highWater
      if (slot >= 0xFFFF_FFF0) throw new Error('table full')
      f.ensureSize(this.off(slot + 1))
      this.store.set32(f, CONTROL_OFFSET + C.highWater, slot + 1)
    } else {
      this.store.set32(f, CONTROL_OFFSET + C.freeHead, f.buf.readUInt32LE(this.off(slot) + this.linkOff))
      this.store.set32(f, this.off(slot) + this.linkOff, 0)
    }

    this.store.set32(f, CONTROL_OFFSET + C.live, this.live + 1)
    return slot
  }

  /** Put a slot on the free list (the caller has already cleared what must not survive). */
  free(slot: number): void {
    const f = this.file
    this.store.set32(f, this.off(slot) + this.linkOff, this.freeHead)
    this.store.set32(f, CONTROL_OFFSET + C.freeHead, slot)
    this.store.set32(f, CONTROL_OFFSET + C.live, this.live - 1)
  }
}
