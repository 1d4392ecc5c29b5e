/**
 * A table of fixed-size records in one mapped file (nodes.dat, entries.dat), with a free list.
 * Slot 0 is never handed out, so 0 means "none" in every link.
 */
import {CONTROL_OFFSET, tableControlFields as C} from './codec/control.js'
import type {U32Field} from './codec/field.js'
import {DATA_OFFSET} from './format.js'
import type {MappedFile} from './mapped-file.js'
import type {Store} from './store.js'

export class RecordTable {
  readonly recordSize: number

  /** `link`: the field of a record that chains free records. */
  constructor(
    private readonly store: Store,
    readonly file: MappedFile,
    readonly link: U32Field,
  ) {
    this.recordSize = file.spec.recordSize
  }

  /** Byte offset of a slot in the file (and the mapping). */
  off(slot: number): number {
    return DATA_OFFSET + slot * this.recordSize
  }

  get highWater(): number {
    return C.highWater.get(this.file.buf, CONTROL_OFFSET)
  }

  get live(): number {
    return C.live.get(this.file.buf, CONTROL_OFFSET)
  }

  get freeHead(): number {
    return C.freeHead.get(this.file.buf, CONTROL_OFFSET)
  }

  /** Initialise the control block of a new table. */
  format(): void {
    C.highWater.set(this.store, this.file, CONTROL_OFFSET, 1)
  }

  /** A slot whose record is all zeros but for fields the caller keeps across reuse (the inode generation). */
  alloc(): number {
    const f = this.file
    let slot = this.freeHead
    if (slot === 0) {
      slot = this.highWater
      if (slot >= 0xffff_fff0) throw new Error('table full')
      f.ensureSize(this.off(slot + 1))
      C.highWater.set(this.store, f, CONTROL_OFFSET, slot + 1)
    } else {
      C.freeHead.set(this.store, f, CONTROL_OFFSET, this.link.get(f.buf, this.off(slot)))
      this.link.set(this.store, f, this.off(slot), 0)
    }

    C.live.set(this.store, f, CONTROL_OFFSET, this.live + 1)
    return slot
  }

  /** Put a slot on the free list (the caller has already cleared what must not survive). */
  free(slot: number): void {
    const f = this.file
    this.link.set(this.store, f, this.off(slot), this.freeHead)
    C.freeHead.set(this.store, f, CONTROL_OFFSET, slot)
    C.live.set(this.store, f, CONTROL_OFFSET, this.live - 1)
  }
}
