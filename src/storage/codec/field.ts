/**
 * Field accessors, made from the layout tables of format.ts: the one place that turns a field's
 * type (u8, u16, u32, u64, i64, bytesN) into a read or a write of that width at that offset.
 *
 * `fieldsOf(LAYOUT)` gives one accessor per field, typed by the field's type, so that a record
 * module (inode.ts, dirent.ts, ...) names a field and never its width or offset:
 *
 *   I.flags.get(buf, o)             read the field of the record at byte `o` of `buf`
 *   I.flags.put(buf, o, v)          write it into a plain buffer (encoding a record)
 *   I.flags.set(store, file, o, v)  write it into a mapped file through the store (logged)
 *
 * Every accessor of one type is an instance of one class, so a call site is monomorphic and the
 * read inlines to what `buf.readUInt32LE(o + off)` was: nothing is allocated per read.
 *
 * u64 and i64 fields hold values below 2^53 and are read as numbers (low word + high word * 2^32).
 */
import type {FieldType, Layout} from '../format.js'

const TWO32 = 2 ** 32

export function readU64(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * TWO32
}

export function writeU64(buf: Buffer, off: number, value: number): void {
  buf.writeUInt32LE(value >>> 0, off)
  buf.writeUInt32LE(Math.floor(value / TWO32) >>> 0, off + 4)
}

export function readI64(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readInt32LE(off + 4) * TWO32
}

export function writeI64(buf: Buffer, off: number, value: number): void {
  const hi = Math.floor(value / TWO32)
  buf.writeUInt32LE((value - hi * TWO32) >>> 0, off)
  buf.writeInt32LE(hi, off + 4)
}

/** The u64 whose low and high 32-bit words are `lo` and `hi` (a word view of a record). */
export function fromWords(lo: number, hi: number): number {
  return lo + hi * TWO32
}

/**
 * Where a field writes into a mapped file: the store's setters (src/storage/store.ts), which save
 * the before-image and log the change. `F` is the store's file type.
 */
export interface FieldWriter<F> {
  set8(file: F, off: number, value: number): void
  set16(file: F, off: number, value: number): void
  set32(file: F, off: number, value: number): void
  set64(file: F, off: number, value: number): void
  setI64(file: F, off: number, value: number): void
  setBytes(file: F, off: number, bytes: Buffer): void
}

abstract class Field {
  /** Index of the field's first 32-bit word in a word view of a record (aligned fields only). */
  readonly word: number

  constructor(
    readonly name: string,
    readonly off: number,
    readonly size: number,
  ) {
    this.word = off >>> 2
  }
}

export class U8Field extends Field {
  readonly type = 'u8'
  get(b: Buffer, o: number): number {
    return b[o + this.off]
  }
  put(b: Buffer, o: number, v: number): void {
    b[o + this.off] = v
  }
  set<F>(w: FieldWriter<F>, f: F, o: number, v: number): void {
    w.set8(f, o + this.off, v)
  }
}

export class U16Field extends Field {
  readonly type = 'u16'
  get(b: Buffer, o: number): number {
    return b.readUInt16LE(o + this.off)
  }
  put(b: Buffer, o: number, v: number): void {
    b.writeUInt16LE(v, o + this.off)
  }
  set<F>(w: FieldWriter<F>, f: F, o: number, v: number): void {
    w.set16(f, o + this.off, v)
  }
}

export class U32Field extends Field {
  readonly type = 'u32'
  get(b: Buffer, o: number): number {
    return b.readUInt32LE(o + this.off)
  }
  put(b: Buffer, o: number, v: number): void {
    b.writeUInt32LE(v >>> 0, o + this.off)
  }
  set<F>(w: FieldWriter<F>, f: F, o: number, v: number): void {
    w.set32(f, o + this.off, v)
  }
}

export class U64Field extends Field {
  readonly type = 'u64'
  get(b: Buffer, o: number): number {
    return readU64(b, o + this.off)
  }
  put(b: Buffer, o: number, v: number): void {
    writeU64(b, o + this.off, v)
  }
  set<F>(w: FieldWriter<F>, f: F, o: number, v: number): void {
    w.set64(f, o + this.off, v)
  }
}

export class I64Field extends Field {
  readonly type = 'i64'
  get(b: Buffer, o: number): number {
    return readI64(b, o + this.off)
  }
  put(b: Buffer, o: number, v: number): void {
    writeI64(b, o + this.off, v)
  }
  set<F>(w: FieldWriter<F>, f: F, o: number, v: number): void {
    w.setI64(f, o + this.off, v)
  }
}

/** A run of raw bytes: `get` is a view of the buffer (valid until it changes), not a copy. */
export class BytesField extends Field {
  readonly type = 'bytes'
  get(b: Buffer, o: number): Buffer {
    return b.subarray(o + this.off, o + this.off + this.size)
  }
  /** Copies at most `size` bytes of `v`; the rest of the field is left as it is. */
  put(b: Buffer, o: number, v: Buffer): void {
    v.copy(b, o + this.off, 0, Math.min(v.length, this.size))
  }
  set<F>(w: FieldWriter<F>, f: F, o: number, v: Buffer): void {
    w.setBytes(f, o + this.off, v.subarray(0, this.size))
  }
  /** Are all the field's bytes zero? */
  isZero(b: Buffer, o: number): boolean {
    for (let i = o + this.off, end = i + this.size; i < end; i++) if (b[i] !== 0) return false
    return true
  }
}

export type AnyField = U8Field | U16Field | U32Field | U64Field | I64Field | BytesField

type FieldOf<T extends FieldType> = T extends 'u8'
  ? U8Field
  : T extends 'u16'
    ? U16Field
    : T extends 'u32'
      ? U32Field
      : T extends 'u64'
        ? U64Field
        : T extends 'i64'
          ? I64Field
          : BytesField

/** The accessors of a layout, by field name. */
export type Fields<E extends readonly [string, FieldType]> = {readonly [P in E as P[0]]: FieldOf<P[1]>}

/** The decoded values of a layout's fields, by name: numbers, and Buffers for bytes fields. */
export type Values<E extends readonly [string, FieldType]> = {[P in E as P[0]]: P[1] extends `bytes${number}` ? Buffer : number}

/** The values of a record of layout `L` (e.g. `RecordOf<typeof INODE>`). */
export type RecordOf<L> = L extends Layout<string, infer E> ? Values<E> : never

function fieldOf(name: string, type: FieldType, off: number, size: number): AnyField {
  switch (type) {
    case 'u8':
      return new U8Field(name, off, size)
    case 'u16':
      return new U16Field(name, off, size)
    case 'u32':
      return new U32Field(name, off, size)
    case 'u64':
      return new U64Field(name, off, size)
    case 'i64':
      return new I64Field(name, off, size)
    default:
      return new BytesField(name, off, size)
  }
}

/** One accessor per field of `layout`, at the layout's offsets. */
export function fieldsOf<K extends string, E extends readonly [K, FieldType]>(layout: Layout<K, E>): Fields<E> {
  const out: Record<string, AnyField> = {}
  for (const [name, type] of layout.FIELDS) out[name] = fieldOf(name, type, layout.OFF[name], layout.WIDTH[name])
  return Object.freeze(out) as unknown as Fields<E>
}

/**
 * The fields of the record at `o` of `b` named in `names` (default: all), in that order: numbers,
 * and copies for bytes fields. Builds the object field by field: not for a per-record hot path.
 */
export function decodeFields<E extends readonly [string, FieldType], K extends E[0]>(
  fields: Fields<E>,
  b: Buffer,
  o: number,
  names?: readonly K[],
): Pick<Values<E>, K> {
  const out: Record<string, number | Buffer> = {}
  const all = fields as unknown as Record<string, AnyField>
  for (const name of names ?? Object.keys(all)) {
    const value = all[name].get(b, o)
    out[name] = typeof value === 'number' ? value : Buffer.from(value)
  }

  return out as Pick<Values<E>, K>
}

/** Write into a plain buffer the fields of `values` that are fields of the layout (others are ignored). */
export function putFields<E extends readonly [string, FieldType]>(fields: Fields<E>, b: Buffer, o: number, values: Partial<Values<E>>): void {
  const all = fields as unknown as Record<string, AnyField>
  for (const [name, value] of Object.entries(values) as Array<[string, number | Buffer]>) {
    const f = all[name]
    if (f === undefined) continue
    if (f instanceof BytesField) f.put(b, o, value as Buffer)
    else f.put(b, o, value as number)
  }
}
