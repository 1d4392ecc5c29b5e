/**
 * How a C record is declared: once, as a field table from which both its layout (storage's
 * `layout`: offsets, size) and its decoder follow. The codecs of src/migrate/c-format/ declare
 * every C record kind this way; nothing else reads their bytes.
 */
import {readU64} from '../../storage/codec/field.js'
import {type FieldType, type Layout, layout} from '../../storage/format.js'

/**
 * How a field is laid out and read (all little-endian): `u16`, `u32`; `i32` (signed);
 * `u64` as a JS number (exact below 2^53); `u64big` as a bigint (exact: a damaged size may be
 * anything); `u16xN`, N u16s as a number[]; `bytesN`, N bytes that are not read.
 */
export type CFieldType = 'u16' | 'u32' | 'i32' | 'u64' | 'u64big' | `u16x${number}` | `bytes${number}`

type CFields = ReadonlyArray<readonly [string, CFieldType]>

type Value<T extends CFieldType> = T extends 'u64big' ? bigint : T extends `u16x${number}` ? number[] : T extends `bytes${number}` ? never : number

/** A decoded record: one property a field (in field order), but none for `bytesN` fields. */
export type Decoded<F extends CFields> = {[E in F[number] as [Value<E[1]>] extends [never] ? never : E[0]]: Value<E[1]>}

export type CRecord<F extends CFields> = Layout<F[number][0]> & {
  /** The record at `off` of `buf` (which must hold SIZE bytes from there). */
  readonly decode: (buf: Buffer, off?: number) => Decoded<F>
}

/** N, of a `u16xN` field. */
function count(type: CFieldType): number {
  return Number(type.slice(4))
}

/** The storage layout type of a field (the same width and alignment). */
function storageType(type: CFieldType): FieldType {
  if (type === 'i32') return 'u32'
  if (type === 'u64big') return 'u64'
  if (type.startsWith('u16x')) return `bytes${2 * count(type)}`
  return type as FieldType
}

function readField(buf: Buffer, at: number, type: CFieldType): number | bigint | number[] {
  switch (type) {
    case 'u16':
      return buf.readUInt16LE(at)
    case 'u32':
      return buf.readUInt32LE(at)
    case 'i32':
      return buf.readInt32LE(at)
    case 'u64':
      return readU64(buf, at)
    case 'u64big':
      return buf.readBigUInt64LE(at)
    default:
      return Array.from({length: count(type)}, (_, k) => buf.readUInt16LE(at + 2 * k))
  }
}

/** Declare a C record: its fields in on-disk order; `size` pads it (must not be exceeded). */
export function cRecord<const F extends CFields>(name: string, fields: F, size?: number): CRecord<F> {
  type K = F[number][0]
  const rec: Layout<K> = layout(
    name,
    fields.map(([field, type]): readonly [K, FieldType] => [field, storageType(type)]),
    size,
  )
  const read = fields.filter(([, type]) => !type.startsWith('bytes'))
  const decode = (buf: Buffer, off = 0): Decoded<F> => {
    const out: Record<string, number | bigint | number[]> = {}
    for (const [field, type] of read) out[field] = readField(buf, off + rec.OFF[field as K], type)
    return out as Decoded<F>
  }

  return Object.freeze({...rec, decode})
}
