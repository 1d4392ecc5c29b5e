/**
 * strings.dat: a heap of byte strings in 16-byte units with reference counts.
 * Names and symlink targets are interned (one copy per distinct byte string, found through the
 * strings.idx hash index); xattr blobs are private to their inode. Freed entries go on per-size
 * free lists and are reused; their bytes are counted as reclaimable.
 */
import {
  CONTROL_OFFSET, DATA_OFFSET, HEAP_CONTROL, SK_BLOB, SK_FREE, SK_NAME, STRING, STRING_CLASSES,
  STRING_EXACT_CLASSES, STRING_UNIT, readU64,
} from './format.js'
import {LinearHash} from './linear-hash.js'
import type {MappedFile} from './mapped-file.js'
import type {Store} from './store.js'

const C = HEAP_CONTROL.OFF
const S = STRING.OFF
/** Largest entry: the biggest size class. */
export const STRING_MAX_BYTES = 2 ** (STRING_CLASSES - 1 - 258 + 9) * STRING_UNIT - STRING.SIZE

/** FNV-1a, 32 bits. */
export function fnv1a(bytes: Buffer): number {
  let h = 0x811C9DC5
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]
    h = Math.imul(h, 0x01000193)
  }

  return h >>> 0
}

/** Size class of an entry of `units` units, and the units that class allocates. */
function classOf(units: number): [number, number] {
  if (units <= STRING_EXACT_CLASSES) return [units, units]
  const pow = Math.ceil(Math.log2(units))
  return [258 + pow - 9, 2 ** pow]
}

export class StringHeap {
  readonly index: LinearHash

  constructor(private readonly store: Store, readonly file: MappedFile, indexFile: MappedFile) {
    this.index = new LinearHash(store, indexFile, {
      hash: unit => this.file.buf.readUInt32LE(this.off(unit) + S.hash),
      next: unit => this.file.buf.readUInt32LE(this.off(unit) + S.hashNext),
      setNext: (unit, next) => this.store.set32(this.file, this.off(unit) + S.hashNext, next),
    })
  }

  off(unit: number): number {
    return DATA_OFFSET + unit * STRING_UNIT
  }

  get bump(): number {
    return this.file.buf.readUInt32LE(CONTROL_OFFSET + C.bump)
  }

  get liveBytes(): number {
    return this.file.buf.readUInt32LE(CONTROL_OFFSET + C.liveBytes)
  }

  get freeBytes(): number {
    return readU64(this.file.buf, CONTROL_OFFSET + C.freeBytes)
  }

  format(): void {
    this.store.set32(this.file, CONTROL_OFFSET + C.bump, 1)
    this.index.format()
  }

  length(unit: number): number {
    const o = this.off(unit)
    return this.file.buf.readUInt16LE(o + S.length) + this.file.buf.readUInt8(o + S.lengthHigh) * 65536
  }

  /** The bytes of an entry: a view of the mapping, valid until the next change. Copy to keep. */
  bytes(unit: number): Buffer {
    const start = this.off(unit) + STRING.SIZE
    return this.file.buf.subarray(start, start + this.length(unit))
  }

  refs(unit: number): number {
    return this.file.buf.readUInt32LE(this.off(unit) + S.refs)
  }

  kind(unit: number): number {
    return this.file.buf.readUInt8(this.off(unit) + S.kind)
  }

  /** The interned entry holding exactly `bytes`, or 0. Changes nothing. */
  find(bytes: Buffer, hash = fnv1a(bytes)): number {
    const buf = this.file.buf
    for (let unit = this.index.first(hash); unit !== 0; unit = buf.readUInt32LE(this.off(unit) + S.hashNext)) {
      const o = this.off(unit)
      if (buf.readUInt32LE(o + S.hash) === hash && buf.readUInt16LE(o + S.length) === bytes.length && buf.readUInt8(o + S.lengthHigh) === 0
        && buf.compare(bytes, 0, bytes.length, o + STRING.SIZE, o + STRING.SIZE + bytes.length) === 0) return unit
    }

    return 0
  }

  /** Does entry `unit` hold exactly `bytes`? */
  equals(unit: number, bytes: Buffer): boolean {
    const o = this.off(unit)
    const buf = this.file.buf
    return buf.readUInt16LE(o + S.length) === bytes.length && buf.readUInt8(o + S.lengthHigh) === 0
      && buf.compare(bytes, 0, bytes.length, o + STRING.SIZE, o + STRING.SIZE + bytes.length) === 0
  }

  /** Take a reference to the interned copy of `bytes`, adding it if new. */
  intern(bytes: Buffer, hash = fnv1a(bytes)): number {
    const found = this.find(bytes, hash)
    if (found !== 0) {
      this.store.set32(this.file, this.off(found) + S.refs, this.refs(found) + 1)
      return found
    }

    const unit = this.allocate(bytes, SK_NAME, hash)
    this.index.insert(unit, hash)
    return unit
  }

  /** A private entry (not interned) holding `bytes`. */
  allocBlob(bytes: Buffer): number {
    return this.allocate(bytes, SK_BLOB, 0)
  }

  /** Drop one reference; the entry is freed at zero. */
  release(unit: number): void {
    const refs = this.refs(unit)
    if (refs > 1) {
      this.store.set32(this.file, this.off(unit) + S.refs, refs - 1)
      return
    }

    if (this.kind(unit) === SK_NAME) this.index.remove(unit, this.file.buf.readUInt32LE(this.off(unit) + S.hash))
    const [cls, units] = classOf(this.unitsFor(this.length(unit)))
    const headOff = CONTROL_OFFSET + C.freeHeads + 4 * cls
    const o = this.off(unit)
    this.store.set32(this.file, o + S.refs, 0)
    this.store.set8(this.file, o + S.kind, SK_FREE)
    this.store.set32(this.file, o + S.hashNext, this.file.buf.readUInt32LE(headOff))
    this.store.set32(this.file, headOff, unit)
    this.store.set32(this.file, CONTROL_OFFSET + C.liveBytes, this.liveBytes - units * STRING_UNIT)
    this.store.set64(this.file, CONTROL_OFFSET + C.freeBytes, this.freeBytes + units * STRING_UNIT)
  }

  private unitsFor(length: number): number {
    return Math.ceil((STRING.SIZE + length) / STRING_UNIT)
  }

  private allocate(bytes: Buffer, kind: number, hash: number): number {
    if (bytes.length > STRING_MAX_BYTES) throw new RangeError(`string of ${bytes.length} bytes is larger than ${STRING_MAX_BYTES}`)
    const [cls, units] = classOf(this.unitsFor(bytes.length))
    const headOff = CONTROL_OFFSET + C.freeHeads + 4 * cls
    let unit = this.file.buf.readUInt32LE(headOff)
    if (unit === 0) {
      unit = this.bump
      this.file.ensureSize(this.off(unit + units))
      this.store.set32(this.file, CONTROL_OFFSET + C.bump, unit + units)
    } else {
      this.store.set32(this.file, headOff, this.file.buf.readUInt32LE(this.off(unit) + S.hashNext))
      this.store.set64(this.file, CONTROL_OFFSET + C.freeBytes, this.freeBytes - units * STRING_UNIT)
    }

    const o = this.off(unit)
    const header = Buffer.alloc(STRING.SIZE)
    header.writeUInt32LE(1, S.refs)
    header.writeUInt32LE(hash, S.hash)
    header.writeUInt16LE(bytes.length & 0xFFFF, S.length)
    header.writeUInt8(kind, S.kind)
    header.writeUInt8(bytes.length >>> 16, S.lengthHigh)
    this.store.setBytes(this.file, o, header)
    this.store.setBytes(this.file, o + STRING.SIZE, bytes)
    this.store.set32(this.file, CONTROL_OFFSET + C.liveBytes, this.liveBytes + units * STRING_UNIT)
    return unit
  }
}
