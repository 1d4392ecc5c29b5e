/**
 * A persistent hash index by linear hashing (Litwin, 1980): one u32 chain head per bucket in its
 * own mapped file, items chained through a field of their own records. The table grows by
 * splitting one bucket at a time, so an insert changes O(1) bytes however large the index is, and
 * lookups stay O(1) at any size: no rehash of the whole table, no pause, a small WAL record.
 */
import {CONTROL_OFFSET, DATA_OFFSET, INDEX_CONTROL, readU64} from './format.js'
import type {MappedFile} from './mapped-file.js'
import type {Store} from './store.js'

const C = INDEX_CONTROL.OFF
/** Split a bucket when there are more items than this many per bucket on average. */
const LOAD = 1
const INITIAL_LEVEL = 8

export interface ChainAccess {
  /** Hash of an item (stable: stored or computed from immutable fields). */
  hash(item: number): number
  next(item: number): number
  setNext(item: number, next: number): void
}

export class LinearHash {
  constructor(private readonly store: Store, readonly file: MappedFile, private readonly items: ChainAccess) {}

  get level(): number {
    return this.file.buf.readUInt32LE(CONTROL_OFFSET + C.level)
  }

  get split(): number {
    return this.file.buf.readUInt32LE(CONTROL_OFFSET + C.split)
  }

  get count(): number {
    return readU64(this.file.buf, CONTROL_OFFSET + C.count)
  }

  /** Buckets in use. */
  get buckets(): number {
    return 2 ** this.level + this.split
  }

  format(): void {
    this.file.ensureSize(DATA_OFFSET + 4 * 2 ** INITIAL_LEVEL)
    this.store.set32(this.file, CONTROL_OFFSET + C.level, INITIAL_LEVEL)
  }

  bucketOf(hash: number): number {
    const level = this.level
    let b = hash & (2 ** level - 1)
    if (b < this.split) b = hash & (2 ** (level + 1) - 1)
    return b
  }

  /** First item of the chain that may hold `hash`. */
  first(hash: number): number {
    return this.file.buf.readUInt32LE(DATA_OFFSET + 4 * this.bucketOf(hash))
  }

  private setHead(bucket: number, item: number): void {
    this.store.set32(this.file, DATA_OFFSET + 4 * bucket, item)
  }

  insert(item: number, hash: number): void {
    const b = this.bucketOf(hash)
    this.items.setNext(item, this.file.buf.readUInt32LE(DATA_OFFSET + 4 * b))
    this.setHead(b, item)
    const count = this.count + 1
    this.store.set64(this.file, CONTROL_OFFSET + C.count, count)
    if (count > LOAD * this.buckets) this.splitOne()
  }

  remove(item: number, hash: number): void {
    const b = this.bucketOf(hash)
    let prev = 0
    let cur = this.file.buf.readUInt32LE(DATA_OFFSET + 4 * b)
    while (cur !== 0 && cur !== item) {
      prev = cur
      cur = this.items.next(cur)
    }

    if (cur === 0) throw new Error(`internal: item ${item} missing from ${this.file.spec.name} bucket ${b}`)
    const next = this.items.next(item)
    if (prev === 0) this.setHead(b, next)
    else this.items.setNext(prev, next)
    this.items.setNext(item, 0)
    this.store.set64(this.file, CONTROL_OFFSET + C.count, this.count - 1)
  }

  private splitOne(): void {
    const level = this.level
    const half = 2 ** level
    const from = this.split
    const to = from + half
    if (level >= 30) return
    this.file.ensureSize(DATA_OFFSET + 4 * (to + 1))
    const mask = 2 ** (level + 1) - 1
    const keep: number[] = []
    const move: number[] = []
    for (let cur = this.file.buf.readUInt32LE(DATA_OFFSET + 4 * from); cur !== 0; cur = this.items.next(cur)) {
      ((this.items.hash(cur) & mask) === from ? keep : move).push(cur)
    }

    this.relink(from, keep)
    this.relink(to, move)
    if (from + 1 === half) {
      this.store.set32(this.file, CONTROL_OFFSET + C.level, level + 1)
      this.store.set32(this.file, CONTROL_OFFSET + C.split, 0)
    } else {
      this.store.set32(this.file, CONTROL_OFFSET + C.split, from + 1)
    }
  }

  private relink(bucket: number, chain: number[]): void {
    this.setHead(bucket, chain[0] ?? 0)
    for (let i = 0; i < chain.length; i++) {
      const next = chain[i + 1] ?? 0
      if (this.items.next(chain[i]) !== next) this.items.setNext(chain[i], next)
    }
  }
}
