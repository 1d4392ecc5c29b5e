/**
 * The ranges the running transaction changed (Store): each range's before-image, which a rollback
 * copies back, and the one WAL record of their after-images that its commit appends.
 */
import type {MappedFile} from './mapped-file.js'
import * as walRecord from './codec/wal-record.js'
import type {ChangeList} from './codec/wal-record.js'

/** Changed ranges of one file closer than this are logged as one entry (an entry header is 16 bytes). */
const MERGE_GAP = 32
/** Changes of a transaction sorted by insertion (sortedChanges); more use Array#sort. */
const INSERTION_SORT_MAX = 128
/** Bytes of the kept record buffer: most records are well under 1 KiB. */
const RECORD_SCRATCH = 16 * 1024
const NO_BYTES = Buffer.alloc(0)

export class UndoLog {
  /**
   * For each of the `count` changes, its file, offset and length; its before-image is appended to
   * `bytes`. The arrays keep their length between transactions (emptying them made every
   * transaction grow them again).
   */
  private readonly files: MappedFile[] = []
  private readonly offs: number[] = []
  private readonly lens: number[] = []
  private count = 0
  private bytes = Buffer.allocUnsafe(64 * 1024)
  private used = 0
  /** Where `record` encodes (a longer record gets a buffer of its own). */
  private readonly recordScratch = Buffer.allocUnsafe(RECORD_SCRATCH)
  /** The merged changes `record` encodes (merged); their arrays are reused. */
  private readonly changes: ChangeList = {count: 0, fileIds: [], offsets: [], sources: [], starts: [], lengths: []}
  /** Scratch for sortedChanges. */
  private readonly order = new Int32Array(INSERTION_SORT_MAX)

  get empty(): boolean {
    return this.count === 0
  }

  /** Remember the before-image of `len` bytes of `file` at `off`, which are about to change. */
  add(file: MappedFile, off: number, len: number): void {
    if (this.used + len > this.bytes.length) {
      const bigger = Buffer.allocUnsafe(Math.max(2 * this.bytes.length, this.used + len))
      this.bytes.copy(bigger, 0, 0, this.used)
      this.bytes = bigger
    }

    // Most changes are a field of 1 to 8 bytes, for which a loop beats Buffer.copy's argument
    // checks (5% of the server's JS thread in a create loop).
    const src = file.buf
    if (len <= 16) {
      const undo = this.bytes
      const at = this.used
      for (let i = 0; i < len; i++) undo[at + i] = src[off + i]
    } else {
      src.copy(this.bytes, this.used, off, off + len)
    }

    this.used += len
    const c = this.count++
    this.files[c] = file
    this.offs[c] = off
    this.lens[c] = len
  }

  /** Copy every before-image back, newest first, and forget the changes. */
  undo(): void {
    let pos = this.used
    for (let i = this.count - 1; i >= 0; i--) {
      pos -= this.lens[i]
      this.bytes.copy(this.files[i].buf, this.offs[i], pos, pos + this.lens[i])
    }

    this.clear()
  }

  clear(): void {
    this.count = 0
    this.used = 0
  }

  /**
   * The WAL record of the changes' after-images (transaction `lsn`): a view of a kept buffer, valid
   * until the next call, so the caller copies or writes it before then.
   */
  record(lsn: number, salt: number): Buffer {
    const changes = this.merged()
    const record = walRecord.encodeChanges(lsn, changes, salt, this.recordScratch)
    // No mapping outlives its file's remap through this list (mmap-io unmaps a mapping once collected).
    changes.sources.fill(NO_BYTES, 0, changes.count)
    return record
  }

  /**
   * The changed ranges, merged, into `this.changes`: ranges of one file closer than MERGE_GAP
   * bytes become one entry. Bytes in a gap hold committed state, so logging them again is harmless.
   */
  private merged(): ChangeList {
    const n = this.count
    const files = this.files
    const offs = this.offs
    const order = this.sortedChanges(n)
    const out = this.changes
    out.count = 0
    let file = files[order[0]]
    let start = offs[order[0]]
    let end = start + this.lens[order[0]]
    for (let k = 1; k <= n; k++) {
      const i = order[k]
      if (k < n && files[i] === file && offs[i] <= end + MERGE_GAP) {
        end = Math.max(end, offs[i] + this.lens[i])
        continue
      }

      const c = out.count++
      out.fileIds[c] = file.spec.id
      out.offsets[c] = start
      out.sources[c] = file.buf
      out.starts[c] = start
      out.lengths[c] = end - start
      if (k === n) break
      file = files[i]
      start = offs[i]
      end = start + this.lens[i]
    }

    return out
  }

  /**
   * The `n` changes in (file, offset) order, as indexes. A transaction is a few dozen changes,
   * mostly in order already, so an insertion sort over a kept array beats Array#sort with a
   * comparator, which was 7 µs of a create's or an unlink's commit; a long one uses Array#sort.
   */
  private sortedChanges(n: number): ArrayLike<number> {
    const files = this.files
    const offs = this.offs
    if (n > INSERTION_SORT_MAX) {
      return Array.from({length: n}, (_, i) => i).sort((a, b) => files[a].spec.id - files[b].spec.id || offs[a] - offs[b])
    }

    const order = this.order
    for (let k = 0; k < n; k++) {
      const id = files[k].spec.id
      const off = offs[k]
      let j = k
      for (; j > 0; j--) {
        const prev = order[j - 1]
        const prevId = files[prev].spec.id
        if (prevId < id || (prevId === id && offs[prev] <= off)) break
        order[j] = prev
      }

      order[j] = k
    }

    return order
  }
}
