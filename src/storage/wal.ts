/**
 * The write-ahead log (wal.log): a header, then committed transactions as checksummed records with
 * consecutive LSNs. Records are copied into a shared mapping of the log (or written with write(2)
 * where it is not mapped), so a process crash keeps every committed transaction (the page cache
 * survives the process); `sync()` (fdatasync) makes them survive a power loss. A checkpoint
 * recycles the log: the header gets a new start LSN and records are written from the start again,
 * over the old cycle's records, whose LSNs are all smaller.
 */
import {randomInt} from 'node:crypto'
import fs from 'node:fs'

import {BREAK_NO_FSYNC, BREAK_NO_WAL} from './debug.js'
import {ImageError} from './errors.js'
import {PAGE_SIZE, WAL_HEADER} from './format.js'
import {hostDropCache} from './host-sync.js'
import {MAX_MAPPING, mapShared, readFully, releasePages, writeFully} from './mapped-file.js'
import {WAL_MIN_SIZE, allocateRange, createAllocated, fillHoles, isNoSpace} from './space.js'
import * as walHeader from './codec/wal-header.js'
import {type WalRecord, scan as scanLog} from './codec/wal-record.js'

export interface WalScan {
  records: WalRecord[]
  /** Offset just past the last good record. */
  end: number
  /** Bytes of a torn or corrupt record at the end (0 if the log ends cleanly). */
  tornBytes: number
}

/** Bytes of records behind the last release after which the pages under them are let go (Wal.append). */
const RELEASE_EVERY = 1 << 20

export class Wal {
  /** Where the next record goes. */
  pos: number
  /** LSN of the next record. */
  nextLsn: number
  /** Bytes of the file allocated on the host: records up to here never need a new block. */
  allocated: number
  /** nextLsn when the log was last made durable; -1 until then (records found at open may not be). */
  private syncedLsn = -1
  /**
   * The log's first bytes, mapped shared: an append is a copy into it, not a system call (6.8 us
   * against 0.2 us a record on the 2-CPU machine). Mapped up to `allocated`, and only where every
   * byte there is allocated (`mappable`); records past it are written.
   */
  private mapped: Buffer | undefined
  /**
   * No hole up to `allocated` (a new log, or one whose holes allocateAtOpen filled), and the host
   * filesystem maps it shared: appends may go through the mapping.
   */
  private mappable = false
  /** Pages of `mapped` below this were let go: records are never read back through the mapping. */
  private releasedTo = 0

  private constructor(
    readonly path: string,
    readonly fd: number,
    readonly uuid: Buffer,
    public startLsn: number,
    public salt: number,
  ) {
    this.pos = WAL_HEADER.SIZE
    this.nextLsn = startLsn
    this.allocated = fs.fstatSync(fd).size
  }

  static create(path: string, uuid: Buffer, startLsn: number): Wal {
    const wal = new Wal(path, createAllocated(path, WAL_MIN_SIZE, false, PAGE_SIZE), uuid, startLsn, randomInt(2 ** 32))
    wal.mappable = true
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
      const problem = walHeader.validate(head.subarray(0, n), uuid).find(p => !p.ignoredByOpen)
      if (problem !== undefined) throw new ImageError(problem.code, problem.message, path)
      const h = walHeader.decode(head)
      return new Wal(path, fd, uuid, h.startLsn, h.salt)
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
   *
   * Then the host's cached pages of the log are let go. The scan read it in large reads, which
   * the host caches in large folios (up to 1 MiB on Linux 6.16+; so may an earlier process's
   * writes): an append through the mapping marks its whole folio dirty, and every sync of the log
   * then wrote the MiB around the record (236 against 80 us an fdatasync on this machine). Pages
   * faulted in again through the mapping are single pages.
   */
  allocateAtOpen(): void {
    try {
      fillHoles(this.fd, this.allocated, PAGE_SIZE)
      this.mappable = true
      this.ensureRoom(Math.max(0, WAL_MIN_SIZE - this.pos))
    } catch (error) {
      if (!isNoSpace(error)) throw new ImageError('RZ_IO', `cannot allocate: ${(error as Error).message}`, this.path)
    }

    const dropCache = hostDropCache()
    if (dropCache === undefined) return
    try {
      // Dirty pages are not let go: a crashed process's records are written first.
      fs.fdatasyncSync(this.fd)
    } catch (error) {
      throw new ImageError('RZ_IO', `cannot sync: ${(error as Error).message}`, this.path)
    }

    try {
      dropCache(this.fd)
    } catch {
      // Only the speed of the log's syncs is at stake.
    }
  }

  /**
   * Make sure `room` bytes past the end of the current cycle are allocated (a page a write:
   * allocateRange), growing the file to the next whole MiB (so the log ends at most 1 MiB past
   * what its limit, reserve and headroom need). False when the host has no space for them.
   */
  ensureRoom(room: number): boolean {
    const need = this.pos + room
    if (need <= this.allocated) return true
    const target = Math.ceil(need / (1 << 20)) * (1 << 20)
    try {
      allocateRange(this.fd, this.allocated, target, PAGE_SIZE)
      this.allocated = target
      return true
    } catch (error) {
      if (!isNoSpace(error)) throw error
      this.allocated = Math.max(this.allocated, fs.fstatSync(this.fd).size)
      return false
    }
  }

  private writeHeader(): void {
    const head = walHeader.encode({salt: this.salt, uuid: this.uuid, startLsn: this.startLsn})
    writeFully(this.fd, head, 0, head.length, 0)
    fs.fdatasyncSync(this.fd)
    this.syncedLsn = this.nextLsn
  }

  /**
   * Read the records of the current cycle (codec/wal-record.ts `scan`): consecutive LSNs from
   * `startLsn`, each with a good magic and checksum. The first record that is short, corrupt or
   * out of sequence ends the log; if it is not simply a record of the previous cycle, its bytes
   * are reported as torn. A checksummed record whose entries overrun it was written corrupt:
   * RZ_CORRUPTED.
   */
  scan(): WalScan {
    const fd = this.fd
    const source = {
      size: fs.fstatSync(fd).size,
      read(at: number, len: number): Buffer {
        const buf = Buffer.alloc(len)
        return buf.subarray(0, readFully(fd, buf, at))
      },
    }
    const s = scanLog(source, this.startLsn, this.salt)
    if (s.bad !== undefined)
      throw new ImageError('RZ_CORRUPTED', `transaction ${s.bad.lsn} at offset ${s.bad.at} has entries that overrun the record`, this.path)
    this.pos = s.end
    this.nextLsn = s.nextLsn
    return {records: s.records, end: s.end, tornBytes: s.torn?.bytes ?? 0}
  }

  /** Append one encoded record (codec/wal-record.ts `encode`) at the end of the current cycle. */
  append(record: Buffer): void {
    const end = this.pos + record.length
    if (!BREAK_NO_WAL) {
      const map = this.mapping(end)
      if (map === undefined) writeFully(this.fd, record, 0, record.length, this.pos)
      else {
        record.copy(map, this.pos)
        // The pages behind the record are not touched again this cycle: out of the resident set.
        if (end - this.releasedTo >= RELEASE_EVERY) {
          const upTo = Math.floor(end / PAGE_SIZE) * PAGE_SIZE
          releasePages(map, this.releasedTo, upTo - this.releasedTo)
          this.releasedTo = upTo
        }
      }
    }

    this.pos = end
    this.allocated = Math.max(this.allocated, this.pos)
    this.nextLsn++
  }

  /** The mapping if it covers [0, end), mapped again to `allocated` if that does; else undefined (write). */
  private mapping(end: number): Buffer | undefined {
    if (this.mapped !== undefined && end <= this.mapped.length) return this.mapped
    const size = Math.min(this.allocated, MAX_MAPPING)
    if (!this.mappable || end > size) return undefined
    // The old mapping (if any) is unmapped when collected (mmap-io); it is not used again.
    try {
      this.mapped = mapShared(this.fd, size)
    } catch {
      // A host filesystem without shared writable mappings (a FUSE one with direct_io): write.
      this.mappable = false
      this.mapped = undefined
      return undefined
    }

    this.releasedTo = 0
    return this.mapped
  }

  /** Every record with a smaller LSN is durable (-1 until the first sync of this open). */
  get durableLsn(): number {
    return this.syncedLsn
  }

  /** Records appended since the last sync: nothing to sync when there are none. */
  pending(): boolean {
    return this.nextLsn !== this.syncedLsn
  }

  /** Make every appended record durable (nothing to do when none was appended since the last time). */
  sync(): void {
    if (!this.pending()) return
    if (!BREAK_NO_FSYNC) fs.fdatasyncSync(this.fd)
    this.syncedLsn = this.nextLsn
  }

  /** Every appended record was made durable by a sync of the whole host filesystem (syncfs). */
  covered(): void {
    this.syncedLsn = this.nextLsn
  }

  /** Start a new cycle after a checkpoint that made every record up to `startLsn - 1` redundant. */
  recycle(startLsn: number): void {
    this.startLsn = startLsn
    this.nextLsn = startLsn
    this.pos = WAL_HEADER.SIZE
    this.salt = randomInt(2 ** 32)
    this.writeHeader()
    if (this.mapped !== undefined) releasePages(this.mapped, 0, this.mapped.length)
    this.releasedTo = 0
  }

  /**
   * Cut the file back to WAL_MIN_SIZE, right after a checkpoint recycled it (no record of the
   * cycle yet: every record behind the header is of an older cycle, never read again). A crash
   * during the cut leaves a longer file, which is as good. Keeps WAL_MIN_SIZE allocated: the
   * headroom and the reserve of the next open (space.ts) fit in it.
   */
  shrink(): void {
    if (this.pos !== WAL_HEADER.SIZE) return
    try {
      if (fs.fstatSync(this.fd).size <= WAL_MIN_SIZE) return
      // A mapping past the new end would fault (SIGBUS): the next append maps the log again.
      this.mapped = undefined
      fs.ftruncateSync(this.fd, WAL_MIN_SIZE)
      this.allocated = Math.min(this.allocated, WAL_MIN_SIZE)
      if (!BREAK_NO_FSYNC) fs.fsyncSync(this.fd)
    } catch {
      // Only space is at stake: the log is valid at any length, and the close that cuts it has
      // already made the image clean.
    }
  }

  /** Bytes of the file (its high-water mark: recycling does not shrink it, a clean close does). */
  fileSize(): number {
    return fs.fstatSync(this.fd).size
  }

  close(): void {
    this.mapped = undefined
    fs.closeSync(this.fd)
  }
}
