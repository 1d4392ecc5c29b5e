/**
 * strings.dat: a heap of byte strings in 16-byte units with reference counts.
 * Names and symlink targets are interned (one copy per distinct byte string, found through the
 * strings.idx hash index); xattr blobs are private to their inode. Freed entries go on per-size
 * free lists and are reused; their bytes are counted as reclaimable.
 */
import {SK_BLOB, SK_FREE, SK_NAME, STRING, STRING_UNIT} from './format.js'
import {fnv1a} from './codec/checksum.js'
import {CONTROL_OFFSET, freeHeadFields, heapControlFields as C} from './codec/control.js'
import * as stringUnit from './codec/string-unit.js'
import {STRING_MAX_BYTES, stringFields as S, unitOffset} from './codec/string-unit.js'
import {LinearHash} from './linear-hash.js'
import type {MappedFile} from './mapped-file.js'
import type {Store} from './store.js'

export class StringHeap {
  readonly index: LinearHash

  constructor(
    private readonly store: Store,
    readonly file: MappedFile,
    indexFile: MappedFile,
  ) {
    this.index = new LinearHash(store, indexFile, {
      hash: unit => S.hash.get(this.file.buf, this.off(unit)),
      next: unit => S.hashNext.get(this.file.buf, this.off(unit)),
      setNext: (unit, next) => S.hashNext.set(this.store, this.file, this.off(unit), next),
    })
  }

  off(unit: number): number {
    return unitOffset(unit)
  }

  get bump(): number {
    return C.bump.get(this.file.buf, CONTROL_OFFSET)
  }

  get liveBytes(): number {
    return C.liveBytes.get(this.file.buf, CONTROL_OFFSET)
  }

  get freeBytes(): number {
    return C.freeBytes.get(this.file.buf, CONTROL_OFFSET)
  }

  format(): void {
    C.bump.set(this.store, this.file, CONTROL_OFFSET, 1)
    this.index.format()
  }

  length(unit: number): number {
    return stringUnit.length(this.file.buf, this.off(unit))
  }

  /** The bytes of an entry: a view of the mapping, valid until the next change. Copy to keep. */
  bytes(unit: number): Buffer {
    return stringUnit.bytes(this.file.buf, this.off(unit))
  }

  refs(unit: number): number {
    return S.refs.get(this.file.buf, this.off(unit))
  }

  kind(unit: number): number {
    return S.kind.get(this.file.buf, this.off(unit))
  }

  /** The interned entry holding exactly `bytes`, or 0. Changes nothing. */
  find(bytes: Buffer, hash = fnv1a(bytes)): number {
    const buf = this.file.buf
    for (let unit = this.index.first(hash); unit !== 0; unit = S.hashNext.get(buf, this.off(unit))) {
      if (S.hash.get(buf, this.off(unit)) === hash && this.equals(unit, bytes)) return unit
    }

    return 0
  }

  /** Does entry `unit` hold exactly `bytes`? */
  equals(unit: number, bytes: Buffer): boolean {
    const o = this.off(unit)
    const buf = this.file.buf
    return stringUnit.hasLength(buf, o, bytes.length) && buf.compare(bytes, 0, bytes.length, o + STRING.SIZE, o + STRING.SIZE + bytes.length) === 0
  }

  /** Take a reference to the interned copy of `bytes`, adding it if new. */
  intern(bytes: Buffer, hash = fnv1a(bytes)): number {
    const found = this.find(bytes, hash)
    if (found !== 0) {
      S.refs.set(this.store, this.file, this.off(found), this.refs(found) + 1)
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
      S.refs.set(this.store, this.file, this.off(unit), refs - 1)
      return
    }

    const f = this.file
    const o = this.off(unit)
    if (this.kind(unit) === SK_NAME) this.index.remove(unit, S.hash.get(f.buf, o))
    const [cls, units] = stringUnit.sizeClass(stringUnit.units(this.length(unit)))
    const head = freeHeadFields[cls]
    S.refs.set(this.store, f, o, 0)
    S.kind.set(this.store, f, o, SK_FREE)
    S.hashNext.set(this.store, f, o, head.get(f.buf, CONTROL_OFFSET))
    head.set(this.store, f, CONTROL_OFFSET, unit)
    C.liveBytes.set(this.store, f, CONTROL_OFFSET, this.liveBytes - units * STRING_UNIT)
    C.freeBytes.set(this.store, f, CONTROL_OFFSET, this.freeBytes + units * STRING_UNIT)
  }

  private allocate(bytes: Buffer, kind: number, hash: number): number {
    if (bytes.length > STRING_MAX_BYTES) throw new RangeError(`string of ${bytes.length} bytes is larger than ${STRING_MAX_BYTES}`)
    const f = this.file
    const [cls, units] = stringUnit.sizeClass(stringUnit.units(bytes.length))
    const head = freeHeadFields[cls]
    let unit = head.get(f.buf, CONTROL_OFFSET)
    if (unit === 0) {
      unit = this.bump
      f.ensureSize(this.off(unit + units))
      C.bump.set(this.store, f, CONTROL_OFFSET, unit + units)
    } else {
      head.set(this.store, f, CONTROL_OFFSET, S.hashNext.get(f.buf, this.off(unit)))
      C.freeBytes.set(this.store, f, CONTROL_OFFSET, this.freeBytes - units * STRING_UNIT)
    }

    const o = this.off(unit)
    this.store.setBytes(f, o, stringUnit.encode({refs: 1, hashNext: 0, hash, length: bytes.length, kind}))
    this.store.setBytes(f, o + STRING.SIZE, bytes)
    C.liveBytes.set(this.store, f, CONTROL_OFFSET, this.liveBytes + units * STRING_UNIT)
    return unit
  }
}
