/**
 * The write-ahead log (wal.log): a header, then committed transactions as checksummed records with
 * consecutive LSNs. Records are appended with write(2), so a process crash keeps every committed
 * transaction (the page cache survives the process); `sync()` (fdatasync) makes them survive a
 * power loss. A checkpoint recycles the log: the header gets a new start LSN and records are
 * written from the start again, over the old cycle's records, whose LSNs are all smaller.
 */
import {randomInt} from 'node:crypto'
import fs from 'node:fs'
import zlib from 'node:zlib'

import {BREAK_NO_FSYNC, BREAK_NO_WAL} from './debug.js'
import {ImageError} from './errors.js'
import {FORMAT_VERSION, WAL_ENTRY, WAL_HEADER, WAL_MAGIC, WAL_RECORD, WAL_RECORD_MAGIC, readU64, writeU64} from './format.js'
import {readFully, writeFully} from './mapped-file.js'
import {WAL_MIN_SIZE, allocateRange, createAllocated, fillHoles, isNoSpace} from './space.js'

export interface WalEntry {
  fileId: number
  offset: number
  bytes: Buffer
}

export interface WalRecord {
  lsn: number
  entries: WalEntry[]
}

export interface WalScan {
  records: WalRecord[]
  /** Offset just past the last good record. */
  end: number
  /** Bytes of a torn or corrupt record at the end (0 if the log ends cleanly). */
  tornBytes: number
}

export function crc32(buf: Buffer, seed = 0): number {
  return zlib.crc32(buf, seed) >>> 0
}

export class Wal {
  /** Where the next record goes. */
  pos: number
  /** LSN of the next record. */
  nextLsn: number
  /** Bytes of the file allocated on the host: records up to here never need a new block. */
  allocated: number

  private constructor(readonly path: string, readonly fd: number, readonly uuid: Buffer, public startLsn: number, public salt: number) {
    this.pos = WAL_HEADER.SIZE
    this.nextLsn = startLsn
    this.allocated = fs.fstatSync(fd).size
  }

  static create(path: string, uuid: Buffer, startLsn: number): Wal {
    const wal = new Wal(path, createAllocated(path, WAL_MIN_SIZE, false), uuid, startLsn, randomInt(2 ** 32))
    wal.writeHeader()
    return wal
  }

  /** Open and validate the header; `scan()` then finds the records. */
  static open(path: string, uuid: Buffer, readOnly: boolean): Wal {
    let fd: number
    try {
      fd = fs.openSync(path, readOnly ? 'r' : 'r+')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new ImageError('RZ_MISSING', 'missing (the write-ahead log of the image)', path)
      throw new ImageError('RZ_IO', `cannot open: ${(error as Error).message}`, path)
    }

    try {
      const head = Buffer.alloc(WAL_HEADER.SIZE)
      const n = fs.readSync(fd, head, 0, head.length, 0)
      if (n < WAL_HEADER.SIZE) throw new ImageError('RZ_TRUNCATED', `truncated: ${n} bytes, shorter than the ${WAL_HEADER.SIZE}-byte header`, path)
      const O = WAL_HEADER.OFF
      if (head.readUInt32LE(O.magic) !== WAL_MAGIC) throw new ImageError('RZ_BAD_MAGIC', 'not a razorfs write-ahead log (bad magic number)', path)
      const version = head.readUInt16LE(O.formatVersion)
      if (version > FORMAT_VERSION) throw new ImageError('RZ_VERSION', `format version ${version} is newer than this razorfs reads (${FORMAT_VERSION}); upgrade razorfs`, path)
      if (head.readUInt32LE(O.checksum) !== crc32(head.subarray(4))) throw new ImageError('RZ_CHECKSUM', 'header checksum mismatch: the header is corrupt', path)
      if (version < 1) throw new ImageError('RZ_VERSION', `format version ${version} is not a valid version`, path)
      if (head.readUInt16LE(O.headerSize) !== WAL_HEADER.SIZE) throw new ImageError('RZ_CORRUPTED', `bad header: version ${version}, header size ${head.readUInt16LE(O.headerSize)}`, path)
      if (!head.subarray(O.uuid, O.uuid + 16).equals(uuid)) throw new ImageError('RZ_MISMATCH', 'belongs to another image (UUID differs from nodes.dat)', path)
      return new Wal(path, fd, uuid, readU64(head, O.startLsn), head.readUInt32LE(O.salt))
    } catch (error) {
      fs.closeSync(fd)
      throw error
    }
  }

  /**
   * At a read-write open, after the scan (which must see where a torn log really ends): a log
   * written before space.ts may be shorter than WAL_MIN_SIZE or have holes; allocate it now if the
   * host can. If it cannot, the log works as it is (records past `allocated` may then get ENOSPC,
   * and the store checkpoints to make room).
   */
  allocateAtOpen(): void {
    try {
      fillHoles(this.fd, this.allocated)
      this.ensureRoom(Math.max(0, WAL_MIN_SIZE - this.pos))
    } catch (error) {
      if (!isNoSpace(error)) throw new ImageError('RZ_IO', `cannot allocate: ${(error as Error).message}`, this.path)
    }
  }

  /**
   * Make sure `room` bytes past the end of the current cycle are allocated, growing the file to
   * the next whole MiB (so the log ends at most 1 MiB past what its limit, reserve and headroom
   * need). False when the host has no space for them.
   */
  ensureRoom(room: number): boolean {
    const need = this.pos + room
    if (need <= this.allocated) return true
    const target = Math.ceil(need / (1 << 20)) * (1 << 20)
    try {
      allocateRange(this.fd, this.allocated, target)
      this.allocated = target
      return true
    } catch (error) {
      if (!isNoSpace(error)) throw error
      this.allocated = Math.max(this.allocated, fs.fstatSync(this.fd).size)
      return false
    }
  }

  private writeHeader(): void {
    const O = WAL_HEADER.OFF
    const head = Buffer.alloc(WAL_HEADER.SIZE)
    head.writeUInt32LE(WAL_MAGIC, O.magic)
    head.writeUInt16LE(FORMAT_VERSION, O.formatVersion)
    head.writeUInt16LE(WAL_HEADER.SIZE, O.headerSize)
    head.writeUInt32LE(this.salt, O.salt)
    this.uuid.copy(head, O.uuid)
    writeU64(head, O.startLsn, this.startLsn)
    head.writeUInt32LE(crc32(head.subarray(4)), O.checksum)
    writeFully(this.fd, head, 0, head.length, 0)
    fs.fdatasyncSync(this.fd)
  }

  /**
   * Read the records of the current cycle: consecutive LSNs from `startLsn`, each with a good
   * magic and checksum. The first record that is short, corrupt or out of sequence ends the log;
   * if it is not simply a record of the previous cycle, its bytes are reported as torn.
   */
  scan(): WalScan {
    const size = fs.fstatSync(this.fd).size
    const R = WAL_RECORD.OFF
    const E = WAL_ENTRY.OFF
    const records: WalRecord[] = []
    const head = Buffer.alloc(WAL_RECORD.SIZE)
    let at = WAL_HEADER.SIZE
    let lsn = this.startLsn
    let tornBytes = 0
    // Record by record: a clean log costs one small read, whatever the size of the file.
    for (;;) {
      const got = readFully(this.fd, head, at)
      if (got < WAL_RECORD.SIZE) {
        // A partial header: torn if it starts like a record, else the end of the file.
        if (got >= 4 && head.readUInt32LE(R.magic) === WAL_RECORD_MAGIC) tornBytes = got
        break
      }

      // Anything but the next record of this cycle ends the log: zeros, or bytes of an earlier
      // cycle (their LSNs are smaller, their checksums use another salt). Only a record that
      // claims to be the next one and is incomplete or fails its checksum is a torn tail.
      if (head.readUInt32LE(R.magic) !== WAL_RECORD_MAGIC || readU64(head, R.lsn) !== lsn) break
      const length = head.readUInt32LE(R.length)
      if (length < WAL_RECORD.SIZE || length % 8 !== 0 || at + length > size) {
        tornBytes = size - at
        break
      }

      const data = Buffer.alloc(length)
      readFully(this.fd, data, at)
      if (data.readUInt32LE(R.checksum) !== crc32(data.subarray(8), this.salt)) {
        tornBytes = length
        break
      }

      const entries: WalEntry[] = []
      const count = data.readUInt32LE(R.entries)
      let p = WAL_RECORD.SIZE
      for (let i = 0; i < count; i++) {
        const len = p + WAL_ENTRY.SIZE <= length ? data.readUInt32LE(p + E.length) : Number.POSITIVE_INFINITY
        const start = p + WAL_ENTRY.SIZE
        if (start + len > length) {
          // A checksummed record whose entries do not fit: written corrupt, not torn.
          throw new ImageError('RZ_CORRUPTED', `transaction ${lsn} at offset ${at} has entries that overrun the record`, this.path)
        }

        entries.push({fileId: data.readUInt8(p + E.fileId), offset: readU64(data, p + E.offset), bytes: data.subarray(start, start + len)})
        p = start + ((len + 7) & ~7)
      }

      records.push({lsn, entries})
      lsn++
      at += length
    }

    this.pos = at
    this.nextLsn = lsn
    return {records, end: at, tornBytes}
  }

  /** Append one encoded record (see `encodeRecord`) at the end of the current cycle. */
  append(record: Buffer): void {
    if (!BREAK_NO_WAL) writeFully(this.fd, record, 0, record.length, this.pos)
    this.pos += record.length
    this.allocated = Math.max(this.allocated, this.pos)
    this.nextLsn++
  }

  /** Make every appended record durable. */
  sync(): void {
    if (!BREAK_NO_FSYNC) fs.fdatasyncSync(this.fd)
  }

  /** Start a new cycle after a checkpoint that made every record up to `startLsn - 1` redundant. */
  recycle(startLsn: number): void {
    this.startLsn = startLsn
    this.nextLsn = startLsn
    this.pos = WAL_HEADER.SIZE
    this.salt = randomInt(2 ** 32)
    this.writeHeader()
  }

  /** Bytes of the file (its high-water mark: recycling does not shrink it). */
  fileSize(): number {
    return fs.fstatSync(this.fd).size
  }

  close(): void {
    fs.closeSync(this.fd)
  }
}

/** Encode one transaction: `changes` are (fileId, offset, bytes) after-images in apply order. */
export function encodeRecord(lsn: number, changes: ReadonlyArray<WalEntry>, salt: number): Buffer {
  let length = WAL_RECORD.SIZE
  for (const c of changes) length += WAL_ENTRY.SIZE + ((c.bytes.length + 7) & ~7)
  const out = Buffer.alloc(length)
  const R = WAL_RECORD.OFF
  const E = WAL_ENTRY.OFF
  out.writeUInt32LE(WAL_RECORD_MAGIC, R.magic)
  writeU64(out, R.lsn, lsn)
  out.writeUInt32LE(length, R.length)
  out.writeUInt32LE(changes.length, R.entries)
  let p = WAL_RECORD.SIZE
  for (const c of changes) {
    out.writeUInt8(c.fileId, p + E.fileId)
    out.writeUInt32LE(c.bytes.length, p + E.length)
    writeU64(out, p + E.offset, c.offset)
    c.bytes.copy(out, p + WAL_ENTRY.SIZE)
    p += WAL_ENTRY.SIZE + ((c.bytes.length + 7) & ~7)
  }

  out.writeUInt32LE(crc32(out.subarray(8), salt), R.checksum)
  return out
}
