/**
 * A persistent hash index by linear hashing (Litwin, 1980): one u32 chain head per bucket in its
 * own mapped file, items chained through a field of their own records. The table grows by
 * splitting one bucket at a time, so an insert changes O(1) bytes however large the index is, and
 * lookups stay O(1) at any size: no rehash of the whole table, no pause, a small WAL record.
 */
import {CONTROL_OFFSET, bucketHead, bucketOf, bucketOffset, indexControlFields as C, levelBuckets, setBucketHead} from './codec/control.js'
import type {MappedFile} from './mapped-file.js'
import type {Store} from './store.js'
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
  constructor(
    private readonly store: Store,
    readonly file: MappedFile,
    private readonly items: ChainAccess,
  ) {}

  get level(): number {
    return C.level.get(this.file.buf, CONTROL_OFFSET)
  }

  get split(): number {
    return C.split.get(this.file.buf, CONTROL_OFFSET)
  }

  get count(): number {
    return C.count.get(this.file.buf, CONTROL_OFFSET)
  }

  /** Buckets in use. */
  get buckets(): number {
    return levelBuckets(this.level) + this.split
  }

  format(): void {
    this.file.ensureSize(bucketOffset(2 ** INITIAL_LEVEL))
    C.level.set(this.store, this.file, CONTROL_OFFSET, INITIAL_LEVEL)
  }

  bucketOf(hash: number): number {
    return bucketOf(hash, this.level, this.split)
  }

  /** First item of the chain that may hold `hash`. */
  first(hash: number): number {
    return bucketHead(this.file.buf, this.bucketOf(hash))
  }

  private setHead(bucket: number, item: number): void {
    setBucketHead(this.store, this.file, bucket, item)
  }

  insert(item: number, hash: number): void {
    const b = this.bucketOf(hash)
    this.items.setNext(item, bucketHead(this.file.buf, b))
    this.setHead(b, item)
    const count = this.count + 1
    C.count.set(this.store, this.file, CONTROL_OFFSET, count)
    if (count > LOAD * this.buckets) this.splitOne()
  }

  remove(item: number, hash: number): void {
    const b = this.bucketOf(hash)
    let prev = 0
    let cur = bucketHead(this.file.buf, b)
    while (cur !== 0 && cur !== item) {
      prev = cur
      cur = this.items.next(cur)
    }

    if (cur === 0) throw new Error(`internal: item ${item} missing from ${this.file.spec.name} bucket ${b}`)
    const next = this.items.next(item)
    if (prev === 0) this.setHead(b, next)
    else this.items.setNext(prev, next)
    this.items.setNext(item, 0)
    C.count.set(this.store, this.file, CONTROL_OFFSET, this.count - 1)
  }

  private splitOne(): void {
    const level = this.level
    const half = levelBuckets(level)
    const from = this.split
    const to = from + half
    if (level >= 30) return
    this.file.ensureSize(bucketOffset(to + 1))
    const mask = levelBuckets(level + 1) - 1
    const keep: number[] = []
    const move: number[] = []
    for (let cur = bucketHead(this.file.buf, from); cur !== 0; cur = this.items.next(cur)) {
      ;((this.items.hash(cur) & mask) === from ? keep : move).push(cur)
    }

    this.relink(from, keep)
    this.relink(to, move)
    if (from + 1 === half) {
      C.level.set(this.store, this.file, CONTROL_OFFSET, level + 1)
      C.split.set(this.store, this.file, CONTROL_OFFSET, 0)
    } else {
      C.split.set(this.store, this.file, CONTROL_OFFSET, from + 1)
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
