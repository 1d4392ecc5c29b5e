/**
 * An entry of the string heap, strings.dat (docs/FORMAT.md "STRING" and "String heap"): the
 * 16-byte header, then the bytes, the entry rounded up to its size class. The only place the
 * length is split into its u16 and u8 halves, and the size classes are computed.
 */
import {DATA_OFFSET, SK_BLOB, SK_FREE, SK_NAME, STRING, STRING_CLASSES, STRING_EXACT_CLASSES, STRING_UNIT} from '../format.js'
import {PATH_MAX} from '../types.js'
import {fieldsOf} from './field.js'
import {XATTR_BLOB_MAX} from './xattr-blob.js'

export const stringFields = fieldsOf(STRING)
const S = stringFields
const LENGTH_LOW = 0x10000

/** Largest entry: the biggest size class, less its header. */
export const STRING_MAX_BYTES = 2 ** (STRING_CLASSES - 1 - 258 + 9) * STRING_UNIT - STRING.SIZE

/** Byte offset of unit `unit` in strings.dat. */
export function unitOffset(unit: number): number {
  return DATA_OFFSET + unit * STRING_UNIT
}

/** Bytes of the string whose header is at `o`. */
export function length(b: Buffer, o: number): number {
  return S.length.get(b, o) + S.lengthHigh.get(b, o) * LENGTH_LOW
}

/** Is the string at `o` exactly `len` bytes (a name: its high length byte is 0)? */
export function hasLength(b: Buffer, o: number, len: number): boolean {
  return S.length.get(b, o) === len && S.lengthHigh.get(b, o) === 0
}

/** The bytes of the string whose header is at `o`: a view of `b`. */
export function bytes(b: Buffer, o: number): Buffer {
  const start = o + STRING.SIZE
  return b.subarray(start, start + length(b, o))
}

export interface StringHeader {
  refs: number
  hashNext: number
  hash: number
  length: number
  kind: number
}

export function decode(b: Buffer, o: number): StringHeader {
  return {refs: S.refs.get(b, o), hashNext: S.hashNext.get(b, o), hash: S.hash.get(b, o), length: length(b, o), kind: S.kind.get(b, o)}
}

/** The 16 bytes of a header. */
export function encode(h: StringHeader): Buffer {
  const out = Buffer.alloc(STRING.SIZE)
  S.refs.put(out, 0, h.refs)
  S.hashNext.put(out, 0, h.hashNext)
  S.hash.put(out, 0, h.hash)
  S.length.put(out, 0, h.length % LENGTH_LOW)
  S.kind.put(out, 0, h.kind)
  S.lengthHigh.put(out, 0, Math.floor(h.length / LENGTH_LOW))
  return out
}

/**
 * What is wrong with the header at `o` as the start of an entry, whatever follows it: a kind that
 * is not one, or a length its kind does not allow (names 1 to 4,095 bytes, blobs 1 to 131,008,
 * free entries up to the largest class). An empty list: a header the heap can walk past.
 */
export function validate(b: Buffer, o: number): string[] {
  const kind = S.kind.get(b, o)
  const len = length(b, o)
  if (kind > SK_BLOB) return [`kind ${kind} is not a string kind`]
  if (kind === SK_NAME && (len < 1 || len > PATH_MAX)) return [`a name of ${len} bytes`]
  if (kind === SK_BLOB && (len < 1 || len > XATTR_BLOB_MAX)) return [`an xattr blob of ${len} bytes`]
  if (kind === SK_FREE && len > STRING_MAX_BYTES) return [`a free string of ${len} bytes`]
  return []
}

/** Units a string of `length` bytes needs, its 16-byte header included. */
export function units(len: number): number {
  return Math.ceil((STRING.SIZE + len) / STRING_UNIT)
}

/** Size class of an entry that needs `n` units: [class, units the class allocates]. */
export function sizeClass(n: number): [number, number] {
  if (n <= STRING_EXACT_CLASSES) return [n, n]
  const pow = Math.ceil(Math.log2(n))
  return [258 + pow - 9, 2 ** pow]
}

/** Units the entry whose header is at `o` occupies (its size class). */
export function span(b: Buffer, o: number): number {
  return sizeClass(units(length(b, o)))[1]
}
