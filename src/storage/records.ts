/**
 * Pure functions of the on-disk format that readers outside the storage classes need (fsck):
 * the entries.idx key of a directory entry and the size classes of the string heap. They are the
 * functions docs/FORMAT.md specifies ("Directories", "String heap"); image.ts and string-heap.ts
 * keep private copies, and test/unit/fsck/records.test.ts checks these against images they write.
 * Read helpers only: nothing here changes an image.
 */
import {STRING, STRING_EXACT_CLASSES, STRING_UNIT} from './format.js'

/**
 * Index key of a directory entry: its directory slot mixed with the FNV-1a hash of its name
 * (`h = imul(parent, 0x9E3779B1) xor nameHash`, then the murmur3 finaliser), as a u32.
 */
export function dirHash(parent: number, nameHash: number): number {
  let h = Math.imul(parent, 0x9E3779B1) ^ nameHash
  h ^= h >>> 16
  h = Math.imul(h, 0x85EBCA6B)
  h ^= h >>> 13
  h = Math.imul(h, 0xC2B2AE35)
  h ^= h >>> 16
  return h >>> 0
}

/** Units a string of `length` bytes needs, its 16-byte header included. */
export function stringUnits(length: number): number {
  return Math.ceil((STRING.SIZE + length) / STRING_UNIT)
}

/** Size class of an entry that needs `units` units: [class, units the class allocates]. */
export function stringClass(units: number): [number, number] {
  if (units <= STRING_EXACT_CLASSES) return [units, units]
  const pow = Math.ceil(Math.log2(units))
  return [258 + pow - 9, 2 ** pow]
}

/** Bucket of a hash in a linear-hash index with `level` and `split` (FORMAT.md "Addressing"). */
export function bucketOf(hash: number, level: number, split: number): number {
  let b = level >= 32 ? hash : hash & (2 ** level - 1)
  if (b < split) b = level + 1 >= 32 ? hash : hash & (2 ** (level + 1) - 1)
  return b >>> 0
}
