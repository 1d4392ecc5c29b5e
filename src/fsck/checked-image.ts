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
  CONTROL_OFFSET, DATA_OFFSET, DIRENT, FILE_ENTRIES, FILE_ENTRY_INDEX, FILE_NODES, FILE_STRINGS, FILE_STRING_INDEX,
  HEAP_CONTROL, IF_ORPHAN, IF_USED, INDEX_CONTROL, INLINE_NAME, INODE, S_IFDIR, STRING, STRING_UNIT,
  TABLE_CONTROL, readU64,
} from '../storage/format.js'
import {addEntry} from '../storage/dirent.js'
import {LinearHash} from '../storage/linear-hash.js'
import type {MappedFile} from '../storage/mapped-file.js'
import {bucketOf, dirHash} from '../storage/records.js'
import {Store} from '../storage/store.js'
import {StringHeap, fnv1a} from '../storage/string-heap.js'
import {RecordTable} from '../storage/table.js'

export const I = INODE.OFF
export const D = DIRENT.OFF
export const S = STRING.OFF
export const TC = TABLE_CONTROL.OFF
export const XC = INDEX_CONTROL.OFF
export const HC = HEAP_CONTROL.OFF
export const ROOT = 1
export const GEN_MASK = 0xFFFFF
const TWO32 = 2 ** 32
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

export class CheckedImage {
  readonly nodes: RecordTable
  readonly entries: RecordTable
  readonly entryIndex: LinearHash
  readonly strings: StringHeap

  private constructor(readonly dir: string, readonly store: Store) {
    const f = store.files
    this.nodes = new RecordTable(store, f[FILE_NODES], I.link)
    this.entries = new RecordTable(store, f[FILE_ENTRIES], D.hashNext)
    this.strings = new StringHeap(store, f[FILE_STRINGS], f[FILE_STRING_INDEX])
    this.entryIndex = new LinearHash(store, f[FILE_ENTRY_INDEX], {
      hash: d => this.entryKey(d),
      next: d => this.eb.readUInt32LE(this.eo(d) + D.hashNext),
      setNext: (d, next) => store.set32(this.ef, this.eo(d) + D.hashNext, next),
    })
    // The header counters a checkpoint writes, as Image computes them.
    store.counters = file => {
      switch (file.spec.id) {
        case FILE_NODES: return {used: this.nodes.live, reclaimable: Math.max(0, this.nodes.highWater - 1 - this.nodes.live)}
        case FILE_ENTRIES: return {used: this.entries.live, reclaimable: Math.max(0, this.entries.highWater - 1 - this.entries.live)}
        case FILE_ENTRY_INDEX: return {used: this.entryIndex.buckets, reclaimable: 0}
        case FILE_STRINGS: return {used: this.strings.bump, reclaimable: this.strings.freeBytes}
        default: return {used: this.strings.index.buckets, reclaimable: 0}
      }
    }
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
    return DATA_OFFSET + unit * STRING_UNIT
  }

  /** Records (units, buckets) the file holds. */
  static capacity(file: MappedFile): number {
    return Math.max(0, Math.floor((file.size - DATA_OFFSET) / file.spec.recordSize))
  }

  // ---- reads -------------------------------------------------------------------------------------

  n32(slot: number, field: number): number {
    return this.nb.readUInt32LE(this.no(slot) + field)
  }

  n64(slot: number, field: number): number {
    return readU64(this.nb, this.no(slot) + field)
  }

  e32(d: number, field: number): number {
    return this.eb.readUInt32LE(this.eo(d) + field)
  }

  e8(d: number, field: number): number {
    return this.eb[this.eo(d) + field]
  }

  /** entries.idx key of an entry, from its parent and nameHash fields. */
  entryKey(d: number): number {
    const o = this.eo(d)
    return dirHash(this.eb.readUInt32LE(o + D.parent), this.eb.readUInt32LE(o + D.nameHash))
  }

  strLength(unit: number): number {
    const o = this.so(unit)
    return this.sb.readUInt16LE(o + S.length) + this.sb[o + S.lengthHigh] * 65536
  }

  strBytes(unit: number): Buffer {
    const start = this.so(unit) + STRING.SIZE
    return this.sb.subarray(start, start + this.strLength(unit))
  }

  /** The name an entry carries itself: its inline bytes (the whole name only up to 30 bytes). */
  inlineName(d: number): Buffer {
    const o = this.eo(d)
    const len = Math.min(this.eb[o + D.nameLength], INLINE_NAME)
    return this.eb.subarray(o + D.inlineName, o + D.inlineName + len)
  }

  nodeCtl(field: number): number {
    return this.nb.readUInt32LE(CONTROL_OFFSET + field)
  }

  // ---- writes (inside store.transaction) ---------------------------------------------------------

  setN32(slot: number, field: number, value: number): void {
    if (this.n32(slot, field) !== value >>> 0) this.store.set32(this.nf, this.no(slot) + field, value)
  }

  setN64(slot: number, field: number, value: number): void {
    if (this.n64(slot, field) !== value) this.store.set64(this.nf, this.no(slot) + field, value)
  }

  setE32(d: number, field: number, value: number): void {
    if (this.e32(d, field) !== value >>> 0) this.store.set32(this.ef, this.eo(d) + field, value)
  }

  setE8(d: number, field: number, value: number): void {
    if (this.e8(d, field) !== value) this.store.set8(this.ef, this.eo(d) + field, value)
  }

  /** Set a u32 of a control block (page 1) if it differs. */
  setCtl32(file: MappedFile, field: number, value: number): void {
    if (file.buf.readUInt32LE(CONTROL_OFFSET + field) !== value >>> 0) this.store.set32(file, CONTROL_OFFSET + field, value)
  }

  setCtl64(file: MappedFile, field: number, value: number): void {
    if (readU64(file.buf, CONTROL_OFFSET + field) !== value) this.store.set64(file, CONTROL_OFFSET + field, value)
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
    const gen = (this.nb.readUInt32LE(o + I.gen) + 1) & GEN_MASK
    this.zeroRange(this.nf, o, o + INODE.SIZE)
    this.store.set32(this.nf, o + I.gen, gen)
    this.store.set32(this.nf, o + I.link, this.nodes.freeHead)
    this.store.set32(this.nf, CONTROL_OFFSET + TC.freeHead, slot)
    this.store.set32(this.nf, CONTROL_OFFSET + TC.live, this.nodes.live - 1)
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
  takeFreeSlot(table: RecordTable, linkOff: number, slot: number, limit: number): boolean {
    const b = table.file.buf
    let prev = 0
    let cur = table.freeHead
    for (let steps = 0; cur !== 0 && cur !== slot && steps < limit; steps++) {
      prev = cur
      cur = b.readUInt32LE(table.off(cur) + linkOff)
    }

    if (cur !== slot) return false
    const next = b.readUInt32LE(table.off(slot) + linkOff)
    if (prev === 0) this.setCtl32(table.file, TC.freeHead, next)
    else this.store.set32(table.file, table.off(prev) + linkOff, next)
    this.store.set32(table.file, table.off(slot) + linkOff, 0)
    this.setCtl32(table.file, TC.live, table.live + 1)
    return true
  }

  /**
   * Chain every free slot of a record table below `hw` on its free list, in slot order (the list
   * is derived: rebuilt, not patched); returns the number of free slots. Inside a transaction.
   */
  relinkFree(file: MappedFile, linkOff: number, hw: number, isUsed: (slot: number) => boolean): number {
    const rs = file.spec.recordSize
    const link = (s: number): number => DATA_OFFSET + s * rs + linkOff
    let prev = 0
    let free = 0
    for (let s = 1; s < hw; s++) {
      if (isUsed(s)) continue
      free++
      if (prev === 0) this.setCtl32(file, TC.freeHead, s)
      else if (file.buf.readUInt32LE(link(prev)) !== s) this.store.set32(file, link(prev), s)
      prev = s
    }

    if (prev === 0) this.setCtl32(file, TC.freeHead, 0)
    else if (file.buf.readUInt32LE(link(prev)) !== 0) this.store.set32(file, link(prev), 0)
    return free
  }

  /** Remove an entry from the chain of `bucket` of entries.idx (bounded); false if it was not there. */
  unlinkFromIndexBucket(d: number, bucket: number, limit: number): boolean {
    const headOff = DATA_OFFSET + 4 * bucket
    if (headOff + 4 > this.xf.size) return false
    let prev = 0
    let cur = this.xf.buf.readUInt32LE(headOff)
    for (let steps = 0; cur !== 0 && cur !== d && steps < limit; steps++) {
      prev = cur
      cur = this.e32(cur, D.hashNext)
    }

    if (cur !== d) return false
    const next = this.e32(d, D.hashNext)
    if (prev === 0) this.store.set32(this.xf, headOff, next)
    else this.setE32(prev, D.hashNext, next)
    this.setE32(d, D.hashNext, 0)
    this.store.set64(this.xf, CONTROL_OFFSET + XC.count, Math.max(0, this.entryIndex.count - 1))
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
    this.store.set32(this.ef, o + D.hashNext, this.entries.freeHead)
    this.store.set32(this.ef, CONTROL_OFFSET + TC.freeHead, d)
    this.store.set32(this.ef, CONTROL_OFFSET + TC.live, this.entries.live - 1)
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
    for (let d = this.entryIndex.first(dirHash(dir, hash)); d !== 0 && steps < limit; d = eb.readUInt32LE(this.eo(d) + D.hashNext), steps++) {
      const o = this.eo(d)
      if (eb.readUInt32LE(o + D.nameHash) !== hash || eb.readUInt32LE(o + D.parent) !== dir || eb[o + D.nameLength] !== name.length || eb[o + D.type] === 0) continue
      if (name.length <= INLINE_NAME ? eb.compare(name, 0, name.length, o + D.inlineName, o + D.inlineName + name.length) === 0 : this.strings.equals(eb.readUInt32LE(o + D.name), name)) return d
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
  initInode(slot: number, mode: number, nlink: number, owner: {uid: number; gid: number} = {uid: 0, gid: 0}, times?: ReadonlyArray<readonly [number, number]>): void {
    const ms = Date.now()
    const now: [number, number] = [Math.floor(ms / 1000), (ms % 1000) * 1e6]
    this.setN32(slot, I.flags, IF_USED)
    this.setN32(slot, I.mode, mode)
    this.setN32(slot, I.nlink, nlink)
    this.setN32(slot, I.uid, owner.uid)
    this.setN32(slot, I.gid, owner.gid)
    const which = ['atime', 'mtime', 'ctime'] as const
    for (let i = 0; i < 3; i++) {
      const [sec, nsec] = times?.[i] ?? now
      this.store.setI64(this.nf, this.no(slot) + I[`${which[i]}Sec`], sec)
      this.setN32(slot, I[`${which[i]}Nsec`], nsec)
    }
  }

  /** Inode number of a slot (slot + gen * 2^32), for messages. */
  ino(slot: number): number {
    return slot + (this.n32(slot, I.gen) & GEN_MASK) * TWO32
  }

  /** Does the inode at `slot` hold IF_USED? (slot in range is the caller's) */
  used(slot: number): boolean {
    return (this.n32(slot, I.flags) & IF_USED) !== 0
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
    file.ensureSize(DATA_OFFSET + 4 * buckets)
    this.zeroRange(file, DATA_OFFSET + 4 * buckets, file.size)
    this.zeroRange(file, CONTROL_OFFSET + 16, DATA_OFFSET)
    const heads = Buffer.alloc(4 * buckets)
    for (let i = n - 1; i >= 0; i--) {
      const item = items[i]
      const b = bucketOf(hashOf(item), level, split)
      setNext(item, heads.readUInt32LE(4 * b))
      heads.writeUInt32LE(item, 4 * b)
    }

    if (file.buf.compare(heads, 0, heads.length, DATA_OFFSET, DATA_OFFSET + heads.length) !== 0) this.store.setBytes(file, DATA_OFFSET, heads)
    this.setCtl32(file, XC.level, level)
    this.setCtl32(file, XC.split, split)
    this.setCtl64(file, XC.count, n)
  }
}
