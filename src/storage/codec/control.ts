/**
 * The control blocks (page 1) of the mapped files and the buckets of the two hash indexes
 * (docs/FORMAT.md "TABLE_CONTROL", "INDEX_CONTROL", "HEAP_CONTROL", "Linear-hash indexes"): their
 * field accessors. A control block is read at CONTROL_OFFSET of its file's buffer:
 * `tableControlFields.highWater.get(buf, CONTROL_OFFSET)`.
 */
import {CONTROL_OFFSET, DATA_OFFSET, HEAP_CONTROL, INDEX_CONTROL, STRING_CLASSES, TABLE_CONTROL} from '../format.js'
import {type FieldWriter, U32Field, fieldsOf} from './field.js'

export {CONTROL_OFFSET}

/** nodes.dat and entries.dat. */
export const tableControlFields = fieldsOf(TABLE_CONTROL)
/** entries.idx and strings.idx. */
export const indexControlFields = fieldsOf(INDEX_CONTROL)
/** strings.dat. */
export const heapControlFields = fieldsOf(HEAP_CONTROL)

/** The head of size class k's free list: the u32 at 4k of `freeHeads` (one accessor per class, made once). */
export const freeHeadFields: readonly U32Field[] = Array.from(
  {length: STRING_CLASSES},
  (_, k) => new U32Field(`freeHeads[${k}]`, HEAP_CONTROL.OFF.freeHeads + 4 * k, 4),
)

/** Bytes of an index's control block that are fields (the rest of page 1 is zeros). */
export const INDEX_CONTROL_USED = INDEX_CONTROL.FIELDS.reduce((end, [name]) => Math.max(end, INDEX_CONTROL.OFF[name] + INDEX_CONTROL.WIDTH[name]), 0)

// ---- index buckets: bucket b is the u32 at DATA_OFFSET + 4b, the first item of its chain ----------

const BUCKET = 4

/** Byte offset of bucket b in an index file. */
export function bucketOffset(b: number): number {
  return DATA_OFFSET + BUCKET * b
}

/** First item of bucket b's chain (0 = empty). */
export function bucketHead(buf: Buffer, b: number): number {
  return buf.readUInt32LE(DATA_OFFSET + BUCKET * b)
}

export function setBucketHead<F>(w: FieldWriter<F>, file: F, b: number, item: number): void {
  w.set32(file, DATA_OFFSET + BUCKET * b, item)
}

/** Write bucket heads into a plain buffer of `n` buckets (a whole index built at once). */
export function putBucketHead(heads: Buffer, b: number, item: number): void {
  heads.writeUInt32LE(item >>> 0, BUCKET * b)
}

export function getBucketHead(heads: Buffer, b: number): number {
  return heads.readUInt32LE(BUCKET * b)
}

/** 2 ** l for l in 0..32, looked up: `2 ** level` with a variable level is a call of pow (2.5% of a create loop). */
const POW2: readonly number[] = Array.from({length: 33}, (_, l) => 2 ** l)

/** Buckets of a linear-hash index's `level` (2 ** level, up to 2 ** 32). */
export function levelBuckets(level: number): number {
  return POW2[level] ?? 2 ** level
}

/** Bucket of a hash in a linear-hash index with `level` and `split` (FORMAT.md "Addressing"). */
export function bucketOf(hash: number, level: number, split: number): number {
  let b = level >= 32 ? hash : hash & (POW2[level] - 1)
  if (b < split) b = level + 1 >= 32 ? hash : hash & (POW2[level + 1] - 1)
  return b >>> 0
}

/** Word index of bucket b in a word view of an index file. */
export function bucketWord(b: number): number {
  return (DATA_OFFSET >>> 2) + b
}
