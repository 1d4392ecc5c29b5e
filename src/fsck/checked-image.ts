/**
 * The image as fsck sees it: the transactional store and the storage classes over it (the same
 * ones `Image` builds, see `Image.internals()`), plus the low-level repair steps the passes share.
 *
 * Why not `Image.open`: a read-write `Image.open` frees the orphan list and checks the root before
 * anything else, and both walk records fsck has not checked yet (a cycle in the orphan list makes
 * that walk endless). fsck opens the `Store` under the same lock instead (read-only for -n, exactly
 * what `Image.open(dir, {readOnly: true})` does minus the root check) and builds the same tables.
 *
 * Every repair goes through `store.transaction` and the store's setters, so it is logged in the
 * WAL like any change; nothing here writes the mapped files directly. Every walk is bounded.
 */
import {
  DATA_OFFSET,
  DIRENT,
  FILE_ENTRIES,
  FILE_ENTRY_INDEX,
  FILE_NODES,
  FILE_STRINGS,
  FILE_STRING_INDEX,
  IF_ORPHAN,
  IF_USED,
  INODE,
  S_IFDIR,
} from '../storage/format.js'
import {fnv1a} from '../storage/codec/checksum.js'
import {
  CONTROL_OFFSET,
  INDEX_CONTROL_USED,
  bucketHead,
  bucketOf,
  bucketOffset,
  getBucketHead,
  heapControlFields,
  indexControlFields,
  putBucketHead,
  setBucketHead,
  tableControlFields,
} from '../storage/codec/control.js'
import * as dirent from '../storage/codec/dirent.js'
import {direntFields} from '../storage/codec/dirent.js'
import type {U8Field, U32Field, U64Field} from '../storage/codec/field.js'
import {inodeFields, isUsed, timeFields} from '../storage/codec/inode.js'
import * as inodeNumber from '../storage/codec/inode-number.js'
import * as stringUnit from '../storage/codec/string-unit.js'
import {stringFields, unitOffset} from '../storage/codec/string-unit.js'
import {addEntry} from '../storage/dirent.js'
import type {LinearHash} from '../storage/linear-hash.js'
import type {MappedFile} from '../storage/mapped-file.js'
import {Store} from '../storage/store.js'
import type {StringHeap} from '../storage/string-heap.js'
import type {RecordTable} from '../storage/table.js'
import {openTables} from '../storage/tables.js'

/** The field accessors of the records (src/storage/codec), by the names the passes use. */
export const I = inodeFields
export const D = direntFields
export const S = stringFields
export const TC = tableControlFields
export const XC = indexControlFields
export const HC = heapControlFields
export const ROOT = inodeNumber.ROOT_SLOT
export const GEN_MASK = inodeNumber.GEN_MASK
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

export class CheckedImage {
  readonly nodes: RecordTable
  readonly entries: RecordTable
  readonly entryIndex: LinearHash
  readonly strings: StringHeap

  private constructor(
    readonly dir: string,
    readonly store: Store,
  ) {
    // The tables Image builds, with the header counters a checkpoint writes.
    const t = openTables(store)
    this.nodes = t.nodes
    this.entries = t.entries
    this.entryIndex = t.entryIndex
    this.strings = t.strings
  }

  /** Open the store (validation and WAL replay; in memory only when read-only). Throws ImageError. */
  static open(dir: string, readOnly: boolean): CheckedImage {
    return new CheckedImage(dir, Store.open(dir, {readOnly}))
  }

  // ---- files and buffers (re-read after anything that may grow a file) ---------------------------

  get nf(): MappedFile {
    return this.store.files[FILE_NODES]
  }

  get ef(): MappedFile {
    return this.store.files[FILE_ENTRIES]
  }

  get xf(): MappedFile {
    return this.store.files[FILE_ENTRY_INDEX]
  }

  get sf(): MappedFile {
    return this.store.files[FILE_STRINGS]
  }

  get sxf(): MappedFile {
    return this.store.files[FILE_STRING_INDEX]
  }

  get nb(): Buffer {
    return this.nf.buf
  }

  get eb(): Buffer {
    return this.ef.buf
  }

  get sb(): Buffer {
    return this.sf.buf
  }

  private wordCache = new WeakMap<Buffer, Uint32Array>()

  /**
   * The file's bytes as little-endian u32 words (the mapping itself, not a copy), for the scans
   * that read every record: word i is bytes 4i..4i+3. Re-read after anything that may grow the file.
   */
  words(file: MappedFile): Uint32Array {
    const buf = file.buf
    let w = this.wordCache.get(buf)
    if (w === undefined) {
      if (buf.byteOffset % 4 !== 0 || !LITTLE_ENDIAN) throw new Error('internal: a mapping that is not word-aligned little-endian memory')
      w = new Uint32Array(buf.buffer, buf.byteOffset, Math.floor(buf.length / 4))
      this.wordCache.set(buf, w)
    }

    return w
  }

  no(slot: number): number {
    return DATA_OFFSET + slot * INODE.SIZE
  }

  eo(d: number): number {
    return DATA_OFFSET + d * DIRENT.SIZE
  }

  so(unit: number): number {
    return unitOffset(unit)
  }

  /** Records (units, buckets) the file holds. */
  static capacity(file: MappedFile): number {
    return Math.max(0, Math.floor((file.size - DATA_OFFSET) / file.spec.recordSize))
  }

  // ---- reads -------------------------------------------------------------------------------------

  n32(slot: number, field: U32Field): number {
    return field.get(this.nb, this.no(slot))
  }

  n64(slot: number, field: U64Field): number {
    return field.get(this.nb, this.no(slot))
  }

  e32(d: number, field: U32Field): number {
    return field.get(this.eb, this.eo(d))
  }

  e8(d: number, field: U8Field): number {
    return field.get(this.eb, this.eo(d))
  }

  /** entries.idx key of an entry, from its parent and nameHash fields. */
  entryKey(d: number): number {
    return dirent.keyOf(this.eb, this.eo(d))
  }

  strLength(unit: number): number {
    return stringUnit.length(this.sb, this.so(unit))
  }

  strBytes(unit: number): Buffer {
    return stringUnit.bytes(this.sb, this.so(unit))
  }

  /** The name an entry carries itself: its inline bytes (the whole name only up to 30 bytes). */
  inlineName(d: number): Buffer {
    return dirent.inlineName(this.eb, this.eo(d))
  }

  /** A field of a control block (page 1). */
  ctl(file: MappedFile, field: U32Field | U64Field): number {
    return field.get(file.buf, CONTROL_OFFSET)
  }

  nodeCtl(field: U32Field | U64Field): number {
    return this.ctl(this.nf, field)
  }

  // ---- writes (inside store.transaction) ---------------------------------------------------------

  /** Set a u32 or u64 field of the record at `o` of `file` if it differs. */
  setField(file: MappedFile, o: number, field: U32Field | U64Field, value: number): void {
    if (field.get(file.buf, o) !== (field.type === 'u32' ? value >>> 0 : value)) field.set(this.store, file, o, value)
  }

  setN32(slot: number, field: U32Field, value: number): void {
    this.setField(this.nf, this.no(slot), field, value)
  }

  setN64(slot: number, field: U64Field, value: number): void {
    this.setField(this.nf, this.no(slot), field, value)
  }

  setE32(d: number, field: U32Field, value: number): void {
    this.setField(this.ef, this.eo(d), field, value)
  }

  setE8(d: number, field: U8Field, value: number): void {
    if (this.e8(d, field) !== value) field.set(this.store, this.ef, this.eo(d), value)
  }

  /** Set a field of a control block (page 1) if it differs. */
  setCtl32(file: MappedFile, field: U32Field, value: number): void {
    this.setField(file, CONTROL_OFFSET, field, value)
  }

  setCtl64(file: MappedFile, field: U64Field, value: number): void {
    this.setField(file, CONTROL_OFFSET, field, value)
  }

  /** Zero bytes [from, to) of a file where they are not zero already. */
  zeroRange(file: MappedFile, from: number, to: number): void {
    const b = file.buf
    let i = from
    while (i < to) {
      while (i < to && b[i] === 0) i++
      if (i >= to) break
      let j = i
      while (j < to && (b[j] !== 0 || (j + 1 < to && b[j + 1] !== 0))) j++
      this.store.fill(file, i, j - i)
      i = j
    }
  }

  /**
   * Free an inode slot: zero the record, bump the generation (a new inode number for the slot),
   * push it on the free list and count it out of `live`. Its names, strings and content file are
   * the caller's (fsck recounts and reclaims them in later passes). The slot must not be on the
   * orphan list any more.
   */
  freeInode(slot: number): void {
    const o = this.no(slot)
    const gen = inodeNumber.nextGen(I.gen.get(this.nb, o))
    this.zeroRange(this.nf, o, o + INODE.SIZE)
    I.gen.set(this.store, this.nf, o, gen)
    I.link.set(this.store, this.nf, o, this.nodes.freeHead)
    TC.freeHead.set(this.store, this.nf, CONTROL_OFFSET, slot)
    TC.live.set(this.store, this.nf, CONTROL_OFFSET, this.nodes.live - 1)
  }

  /** Take an inode off the orphan list (a bounded walk); false if it was not on it. */
  unlinkOrphan(slot: number, limit: number): boolean {
    let prev = 0
    let cur = this.nodeCtl(TC.orphanHead)
    for (let steps = 0; cur !== 0 && cur !== slot && steps < limit; steps++) {
      prev = cur
      cur = this.n32(cur, I.link)
    }

    if (cur !== slot) return false
    const next = this.n32(slot, I.link)
    if (prev === 0) this.setCtl32(this.nf, TC.orphanHead, next)
    else this.setN32(prev, I.link, next)
    this.setN32(slot, I.link, 0)
    this.setN32(slot, I.flags, this.n32(slot, I.flags) & ~IF_ORPHAN)
    return true
  }

  /** Take a free slot off a table's free list (a bounded walk); false if it was not on it. */
  takeFreeSlot(table: RecordTable, slot: number, limit: number): boolean {
    const b = table.file.buf
    const link = table.link
    let prev = 0
    let cur = table.freeHead
    for (let steps = 0; cur !== 0 && cur !== slot && steps < limit; steps++) {
      prev = cur
      cur = link.get(b, table.off(cur))
    }

    if (cur !== slot) return false
    const next = link.get(b, table.off(slot))
    if (prev === 0) this.setCtl32(table.file, TC.freeHead, next)
    else link.set(this.store, table.file, table.off(prev), next)
    link.set(this.store, table.file, table.off(slot), 0)
    this.setCtl32(table.file, TC.live, table.live + 1)
    return true
  }

  /**
   * Chain every free slot of a record table below `hw` on its free list, in slot order (the list
   * is derived: rebuilt, not patched); returns the number of free slots. Inside a transaction.
   */
  relinkFree(table: RecordTable, hw: number, isUsed: (slot: number) => boolean): number {
    const {file, link} = table
    let prev = 0
    let free = 0
    for (let s = 1; s < hw; s++) {
      if (isUsed(s)) continue
      free++
      if (prev === 0) this.setCtl32(file, TC.freeHead, s)
      else this.setField(file, table.off(prev), link, s)
      prev = s
    }

    if (prev === 0) this.setCtl32(file, TC.freeHead, 0)
    else this.setField(file, table.off(prev), link, 0)
    return free
  }

  /** Remove an entry from the chain of `bucket` of entries.idx (bounded); false if it was not there. */
  unlinkFromIndexBucket(d: number, bucket: number, limit: number): boolean {
    if (bucketOffset(bucket + 1) > this.xf.size) return false
    let prev = 0
    let cur = bucketHead(this.xf.buf, bucket)
    for (let steps = 0; cur !== 0 && cur !== d && steps < limit; steps++) {
      prev = cur
      cur = this.e32(cur, D.hashNext)
    }

    if (cur !== d) return false
    const next = this.e32(d, D.hashNext)
    if (prev === 0) setBucketHead(this.store, this.xf, bucket, next)
    else this.setE32(prev, D.hashNext, next)
    this.setE32(d, D.hashNext, 0)
    XC.count.set(this.store, this.xf, CONTROL_OFFSET, Math.max(0, this.entryIndex.count - 1))
    return true
  }

  /** The entries.idx bucket an entry belongs in, by its key. */
  entryBucket(d: number): number {
    return bucketOf(this.entryKey(d), this.entryIndex.level, this.entryIndex.split)
  }

  /** Unlink an entry from its directory's list (the list must be sound); the directory's size drops. */
  unlinkFromDirList(d: number): void {
    const dir = this.e32(d, D.parent)
    const next = this.e32(d, D.next)
    const prev = this.e32(d, D.prev)
    if (prev === 0) this.setN32(dir, I.dirHead, next)
    else this.setE32(prev, D.next, next)
    if (next !== 0) this.setE32(next, D.prev, prev)
    this.setE32(d, D.next, 0)
    this.setE32(d, D.prev, 0)
    this.setN64(dir, I.size, Math.max(0, this.n64(dir, I.size) - 1))
  }

  /** Zero an entry record and put it on the free list. */
  freeEntry(d: number): void {
    const o = this.eo(d)
    this.zeroRange(this.ef, o, o + DIRENT.SIZE)
    D.hashNext.set(this.store, this.ef, o, this.entries.freeHead)
    TC.freeHead.set(this.store, this.ef, CONTROL_OFFSET, d)
    TC.live.set(this.store, this.ef, CONTROL_OFFSET, this.entries.live - 1)
  }

  /**
   * Remove a sound entry: out of entries.idx (its bucket by key), out of its directory's list, then
   * freed. Its name's reference is left to pass 5, the child's link count to pass 4.
   */
  removeEntry(d: number, limit: number): void {
    this.unlinkFromIndexBucket(d, this.entryBucket(d), limit)
    this.unlinkFromDirList(d)
    this.freeEntry(d)
  }

  /** Entry slot for (directory, name) through entries.idx, or 0 (bounded). */
  findEntry(dir: number, name: Buffer, limit: number): number {
    const hash = fnv1a(name)
    const eb = this.eb
    let steps = 0
    for (let d = this.entryIndex.first(dirent.dirHash(dir, hash)); d !== 0 && steps < limit; d = D.hashNext.get(eb, this.eo(d)), steps++) {
      const o = this.eo(d)
      if (D.type.get(eb, o) !== 0 && dirent.isEntryOf(eb, o, dir, hash, name, this.strings)) return d
    }

    return 0
  }

  /**
   * Add an entry (dir, name) -> child at the front of the directory's list with the function Image
   * uses (src/storage/dirent.ts): the name is interned, the directory's size grows, the entry goes
   * into entries.idx. Link counts are the caller's.
   */
  addEntry(dir: number, name: Buffer, child: number): number {
    return addEntry(this, dir, name, child)
  }

  /** Initialise a fresh inode slot as a directory (owner 0, nlink 2). */
  initDir(slot: number, parent: number, mode: number): void {
    this.initInode(slot, S_IFDIR | mode, 2)
    this.setN32(slot, I.parent, parent)
  }

  /**
   * Initialise a fresh inode slot: in use, `mode`, `nlink`, owner `uid`/`gid` (default 0), times
   * `times` (atime, mtime, ctime as [sec, nsec] pairs) or now.
   */
  initInode(
    slot: number,
    mode: number,
    nlink: number,
    owner: {uid: number; gid: number} = {uid: 0, gid: 0},
    times?: ReadonlyArray<readonly [number, number]>,
  ): void {
    const ms = Date.now()
    const now: [number, number] = [Math.floor(ms / 1000), (ms % 1000) * 1e6]
    this.setN32(slot, I.flags, IF_USED)
    this.setN32(slot, I.mode, mode)
    this.setN32(slot, I.nlink, nlink)
    this.setN32(slot, I.uid, owner.uid)
    this.setN32(slot, I.gid, owner.gid)
    for (const [i, f] of Object.values(timeFields).entries()) {
      const [sec, nsec] = times?.[i] ?? now
      f.sec.set(this.store, this.nf, this.no(slot), sec)
      this.setN32(slot, f.nsec, nsec)
    }
  }

  /** Inode number of a slot (slot + gen * 2^32), for messages. */
  ino(slot: number): number {
    return inodeNumber.encode(slot, this.n32(slot, I.gen) & GEN_MASK)
  }

  /** Does the inode at `slot` hold IF_USED? (slot in range is the caller's) */
  used(slot: number): boolean {
    return isUsed(this.nb, this.no(slot))
  }

  /**
   * Rebuild a linear-hash index from its items (a derived structure): the state n inserts would
   * reach (2^level + split = max(256, n) buckets, load factor 1, FORMAT.md "Linear-hash indexes"),
   * built at once: each item goes to the front of its bucket's chain, then the bucket heads are
   * written as one range.
   */
  rebuildIndex(index: LinearHash, items: ArrayLike<number>, hashOf: (item: number) => number, setNext: (item: number, next: number) => void): void {
    const file = index.file
    const n = items.length
    const buckets = Math.max(256, n)
    const level = Math.floor(Math.log2(buckets))
    const split = buckets - 2 ** level
    file.ensureSize(bucketOffset(buckets))
    this.zeroRange(file, bucketOffset(buckets), file.size)
    this.zeroRange(file, CONTROL_OFFSET + INDEX_CONTROL_USED, DATA_OFFSET)
    const heads = Buffer.alloc(bucketOffset(buckets) - bucketOffset(0))
    for (let i = n - 1; i >= 0; i--) {
      const item = items[i]
      const b = bucketOf(hashOf(item), level, split)
      setNext(item, getBucketHead(heads, b))
      putBucketHead(heads, b, item)
    }

    if (file.buf.compare(heads, 0, heads.length, DATA_OFFSET, DATA_OFFSET + heads.length) !== 0) this.store.setBytes(file, DATA_OFFSET, heads)
    this.setCtl32(file, XC.level, level)
    this.setCtl32(file, XC.split, split)
    this.setCtl64(file, XC.count, n)
  }
}
