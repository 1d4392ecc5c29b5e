/**
 * WAL_RECORD and WAL_ENTRY, the committed transactions of wal.log (docs/FORMAT.md "WAL_RECORD",
 * "WAL_ENTRY" and "Scanning the WAL"): their only encoder, decoder, validator and scanner.
 *
 * `Wal.scan` (over the file descriptor) and fsck pass 7 (over the whole file read into memory) run
 * the same `scan`; recovery and pass 7 judge entries with the same `entryProblem`.
 */
import {CONTROL_OFFSET, FILES, WAL_ENTRY, WAL_HEADER, WAL_RECORD, WAL_RECORD_MAGIC, pad8} from '../format.js'
import {MAX_MAPPING} from '../mapped-file.js'
import {crc32} from './checksum.js'
import {fieldsOf} from './field.js'

export const walRecordFields = fieldsOf(WAL_RECORD)
export const walEntryFields = fieldsOf(WAL_ENTRY)
const R = walRecordFields
const E = walEntryFields

/** One changed range: `bytes` (the after-image) go to `offset` of mapped file `fileId`. */
export interface WalEntry {
  fileId: number
  offset: number
  bytes: Buffer
}

export interface WalRecord {
  lsn: number
  /** Offset of the record in wal.log. */
  at: number
  entries: WalEntry[]
}

/**
 * A transaction's changed ranges as parallel arrays, as Store.commit gathers them without making
 * a Buffer view per range: change k is `lengths[k]` bytes of `sources[k]` from `starts[k]`, which go
 * to `offsets[k]` of mapped file `fileIds[k]`. Only the first `count` entries of each array count.
 */
export interface ChangeList {
  count: number
  fileIds: number[]
  offsets: number[]
  sources: Buffer[]
  starts: number[]
  lengths: number[]
}

/** Encode one transaction: `changes` are (fileId, offset, bytes) after-images in apply order. */
export function encode(lsn: number, changes: ReadonlyArray<WalEntry>, salt: number): Buffer {
  const list: ChangeList = {
    count: changes.length,
    fileIds: changes.map(c => c.fileId),
    offsets: changes.map(c => c.offset),
    sources: changes.map(c => c.bytes),
    starts: changes.map(() => 0),
    lengths: changes.map(c => c.bytes.length),
  }
  return encodeChanges(lsn, list, salt)
}

/**
 * Encode one transaction from a ChangeList (its changes in apply order). With `into` large enough,
 * the record is written at its start and the view returned (Store's reused buffer: a new one per
 * commit was 5% of a create loop's storage time); else a new buffer.
 */
export function encodeChanges(lsn: number, changes: ChangeList, salt: number, into?: Buffer): Buffer {
  const n = changes.count
  const {fileIds, offsets, sources, starts, lengths} = changes
  let length = WAL_RECORD.SIZE
  for (let k = 0; k < n; k++) length += WAL_ENTRY.SIZE + pad8(lengths[k])
  const out = into !== undefined && into.length >= length ? into.subarray(0, length).fill(0) : Buffer.alloc(length)
  R.magic.put(out, 0, WAL_RECORD_MAGIC)
  R.lsn.put(out, 0, lsn)
  R.length.put(out, 0, length)
  R.entries.put(out, 0, n)
  let p = WAL_RECORD.SIZE
  for (let k = 0; k < n; k++) {
    const len = lengths[k]
    E.fileId.put(out, p, fileIds[k])
    E.length.put(out, p, len)
    E.offset.put(out, p, offsets[k])
    const at = p + WAL_ENTRY.SIZE
    const src = sources[k]
    const from = starts[k]
    // Most ranges are a field or two: a loop beats Buffer#copy's argument checks.
    if (len <= 32) for (let i = 0; i < len; i++) out[at + i] = src[from + i]
    else src.copy(out, at, from, from + len)
    p = at + pad8(len)
  }

  R.checksum.put(out, 0, crc32(out.subarray(R.lsn.off), salt))
  return out
}

/** The header fields of the record starting at byte 0 of `head` (at least 24 bytes). */
export function decodeHead(head: Buffer): {magic: number; checksum: number; lsn: number; length: number; entries: number} {
  return {
    magic: R.magic.get(head, 0),
    checksum: R.checksum.get(head, 0),
    lsn: R.lsn.get(head, 0),
    length: R.length.get(head, 0),
    entries: R.entries.get(head, 0),
  }
}

/** Does `bytes` start like a record (its magic), however short it is past that? */
export function startsLikeRecord(bytes: Buffer): boolean {
  return bytes.length >= 4 && R.magic.get(bytes, 0) === WAL_RECORD_MAGIC
}

/**
 * The entries of a whole record (`record` is exactly its `length` bytes), or undefined when an
 * entry header or its data runs past the end of the record. Entry bytes are views of `record`.
 */
export function decodeEntries(record: Buffer): WalEntry[] | undefined {
  const entries: WalEntry[] = []
  const count = R.entries.get(record, 0)
  let p = WAL_RECORD.SIZE
  for (let i = 0; i < count; i++) {
    const len = p + WAL_ENTRY.SIZE <= record.length ? E.length.get(record, p) : Number.POSITIVE_INFINITY
    const start = p + WAL_ENTRY.SIZE
    if (start + len > record.length) return undefined
    entries.push({fileId: E.fileId.get(record, p), offset: E.offset.get(record, p), bytes: record.subarray(start, start + len)})
    p = start + pad8(len)
  }

  return entries
}

export interface RecordProblem {
  /**
   * `torn`: incomplete or failing its checksum (what a crash during an append leaves);
   * `corrupt`: checksummed, but its entries overrun it (written corrupt, not torn).
   */
  kind: 'torn' | 'corrupt'
  message: string
}

/** Every problem of a whole record (`record` is the bytes its `length` field claims), salted with `salt`. */
export function validate(record: Buffer, salt: number): RecordProblem[] {
  const problems: RecordProblem[] = []
  if (record.length < WAL_RECORD.SIZE) return [{kind: 'torn', message: `${record.length} bytes, shorter than a record header`}]
  if (R.magic.get(record, 0) !== WAL_RECORD_MAGIC) problems.push({kind: 'torn', message: 'bad magic number'})
  const length = R.length.get(record, 0)
  if (length < WAL_RECORD.SIZE || length % 8 !== 0 || length !== record.length) problems.push({kind: 'torn', message: `bad length ${length}`})
  if (R.checksum.get(record, 0) !== crc32(record.subarray(R.lsn.off), salt)) problems.push({kind: 'torn', message: 'the checksum does not match'})
  if (decodeEntries(record) === undefined) problems.push({kind: 'corrupt', message: 'its entries overrun the record'})
  return problems
}

/** Why recovery must not apply `e` (it writes outside the image), or undefined. */
export function entryProblem(e: {fileId: number; offset: number; bytes: {length: number}}): string | undefined {
  if (e.fileId >= FILES.length || e.offset < CONTROL_OFFSET || e.offset + e.bytes.length > MAX_MAPPING) {
    return `it writes outside the image (file ${e.fileId}, offset ${e.offset})`
  }

  return undefined
}

/** Where a scan reads the log: `read(at, len)` gives up to `len` bytes from offset `at` (fewer at the end). */
export interface LogSource {
  readonly size: number
  read(at: number, len: number): Buffer
}

export interface LogScan {
  /** The records of the current cycle, in LSN order. */
  records: WalRecord[]
  /** Offset just past the last good record. */
  end: number
  /** LSN the next record gets. */
  nextLsn: number
  /** A record that claims to be the next one and is incomplete or fails its checksum. */
  torn: {at: number; bytes: number; lsn: number} | undefined
  /** A checksummed record whose entries overrun it: the scan stops there. */
  bad: {at: number; lsn: number; reason: string} | undefined
}

/**
 * Read the records of the current cycle (FORMAT.md "Scanning the WAL"): consecutive LSNs from
 * `startLsn`, from offset 64 on, each with a good magic, length and checksum (seeded with `salt`).
 * Anything but the next record of the cycle ends the log: zeros, or bytes of an earlier cycle
 * (their LSNs are smaller, their checksums use another salt). Only a record that claims to be the
 * next one and is incomplete or fails its checksum is torn.
 */
export function scan(src: LogSource, startLsn: number, salt: number): LogScan {
  const records: WalRecord[] = []
  let at = WAL_HEADER.SIZE
  let lsn = startLsn
  const done = (torn: LogScan['torn'], bad: LogScan['bad'] = undefined): LogScan => ({records, end: at, nextLsn: lsn, torn, bad})
  // Record by record: a clean log costs one small read, whatever the size of the file.
  for (;;) {
    const head = src.read(at, WAL_RECORD.SIZE)
    if (head.length < WAL_RECORD.SIZE) return done(startsLikeRecord(head) ? {at, bytes: head.length, lsn} : undefined)
    const h = decodeHead(head)
    if (h.magic !== WAL_RECORD_MAGIC || h.lsn !== lsn) return done(undefined)
    if (h.length < WAL_RECORD.SIZE || h.length % 8 !== 0 || at + h.length > src.size) return done({at, bytes: src.size - at, lsn})
    const record = src.read(at, h.length)
    const problems = validate(record, salt)
    if (problems.some(p => p.kind === 'torn')) return done({at, bytes: h.length, lsn})
    if (problems.length > 0) return done(undefined, {at, lsn, reason: problems[0].message})
    records.push({lsn, at, entries: decodeEntries(record)!})
    lsn++
    at += h.length
  }
}

/** A LogSource over bytes in memory (fsck reads the whole log). */
export function bufferSource(bytes: Buffer): LogSource {
  return {size: bytes.length, read: (at, len) => bytes.subarray(Math.min(at, bytes.length), Math.min(at + len, bytes.length))}
}
