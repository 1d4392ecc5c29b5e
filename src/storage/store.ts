/**
 * The transactional store under an image: the mapped files, the WAL, transactions, checkpoints
 * and recovery. It knows bytes and files, not inodes (that is image.ts).
 *
 * Protocol (docs/FORMAT.md, "Transactions"):
 * 1. A transaction changes the MAP_PRIVATE mappings directly and remembers each changed range with
 *    its before-image (for rollback; undo-log.ts).
 * 2. Commit appends one WAL record holding the after-image of every changed range (write(2):
 *    survives a process crash). If the append fails, the ranges are rolled back.
 * 3. A checkpoint fsyncs the WAL, writes the changed pages to the files and fsyncs them, then writes
 *    each file's header with the checkpoint LSN, then recycles the WAL.
 * The files on disk therefore only ever hold the state of a checkpoint plus pages of later
 * transactions whose records are already durable; replaying those (idempotent, physical) records
 * on open always yields a state in which every transaction is whole or absent.
 */
import {randomUUID} from 'node:crypto'
import path from 'node:path'

import {FsError, ImageError} from './errors.js'
import {DATA_OFFSET, FILES, FORMAT_VERSION, HEADER, HF_CLEAN, type FileSpec, WAL_NAME} from './format.js'
import {MappedFile, fsyncDir} from './mapped-file.js'
import {FILE_RESERVE, WAL_HEADROOM, WAL_RESERVE} from './space.js'
import {UndoLog} from './undo-log.js'
import {Wal} from './wal.js'
import {writeI64, writeU64} from './codec/field.js'
import * as header from './codec/header.js'
import {type HeaderInfo, uuidString} from './codec/header.js'
import * as walRecord from './codec/wal-record.js'

/** Counters a checkpoint writes into each header; supplied by the image (it knows the records). */
export type HeaderCounters = (file: MappedFile) => {used: number; reclaimable: number}

export interface StoreOpenOptions {
  readOnly?: boolean
  walLimit?: number
  /** Where each file is (default: in `dir`); a read-only open passes staging.ts `imagePaths`. */
  paths?: (name: string) => string
}

export interface StoreCreateOptions {
  walLimit?: number
  /** The image's UUID and creation time (gc keeps the old image's); default: new ones. */
  uuid?: Buffer
  createdMs?: number
}

const DEFAULT_WAL_LIMIT = 64 << 20
/**
 * A checkpoint also comes once this many pages have changed since the last one: until then each
 * is a private copy in the process's memory (small changes spread over an index dirty a page each,
 * so a full WAL could mean far more memory than its own size).
 */
const DIRTY_PAGE_LIMIT = (32 << 20) / 4096

/**
 * Validate and decode a header (codec/header.ts): the first problem that stops an open is thrown,
 * naming the file (FORMAT.md "Opening an image: validation").
 */
export function parseHeader(spec: FileSpec, filePath: string, head: Buffer, fileSize: number): HeaderInfo {
  const problem = header.validate(spec, head, fileSize).find(p => !p.ignoredByOpen)
  if (problem !== undefined) throw new ImageError(problem.code, problem.message, filePath)
  return header.decode(head)
}

export class Store {
  readonly files: MappedFile[]
  readonly headers: HeaderInfo[]
  readonly wal: Wal
  readonly uuid: Buffer
  /** Header state of nodes.dat when opened. */
  readonly wasClean: boolean
  recoveredTransactions = 0
  tornBytes = 0
  mountedMs: number
  generation: number
  counters: HeaderCounters = () => ({used: 0, reclaimable: 0})
  /**
   * Runs before the WAL is made durable (the image syncs content files: data no later than metadata), told
   * whether the WAL has records to sync; returns true when what it did made them durable too (a
   * syncfs of the host filesystem both are on), so the WAL's own fdatasync is not needed.
   */
  beforeSync: (logPending: boolean) => boolean = () => false
  /** Runs once the WAL is durable (the image applies deferred truncations and removals). */
  afterSync: () => void = () => {}
  /** Why the last automatic checkpoint failed, if it did (the WAL keeps growing meanwhile). */
  checkpointError: Error | undefined
  /** Test hook: stop after the WAL append, before the in-memory state moves on (simulated crash). */
  crashAfterAppend = false

  /** The running transaction's changes: before-images for a rollback, after-images for its record. */
  private readonly undo = new UndoLog()
  private depth = 0
  private afterCommit: Array<() => void> = []
  private afterRollback: Array<() => void> = []
  private readonly walLimit: number
  private closed = false

  private constructor(
    readonly dir: string,
    files: MappedFile[],
    headers: HeaderInfo[],
    wal: Wal,
    readonly readOnly: boolean,
    walLimit: number,
  ) {
    this.files = files
    this.headers = headers
    this.wal = wal
    this.uuid = headers[0].uuid
    this.wasClean = (headers[0].flags & HF_CLEAN) !== 0
    this.mountedMs = headers[0].mountedMs
    this.generation = Math.max(...headers.map(h => h.generation))
    this.walLimit = walLimit
  }

  /** Create the files of a new image (they must not exist), empty but for headers. */
  static create(dir: string, sizes: number[], opts: StoreCreateOptions = {}): Store {
    const uuid = opts.uuid ?? Buffer.from(randomUUID().replaceAll('-', ''), 'hex')
    const now = Date.now()
    const files: MappedFile[] = []
    const headers: HeaderInfo[] = []
    try {
      for (const spec of FILES) {
        const size = Math.ceil((DATA_OFFSET + sizes[spec.id] * spec.recordSize + FILE_RESERVE) / 4096) * 4096
        const file = MappedFile.create(spec, path.join(dir, spec.name), size)
        files.push(file)
        const h: HeaderInfo = {
          formatVersion: FORMAT_VERSION,
          recordSize: spec.recordSize,
          flags: 0,
          capacity: (size - DATA_OFFSET) / spec.recordSize,
          used: 0,
          generation: 0,
          checkpointLsn: 0,
          uuid,
          createdMs: opts.createdMs ?? now,
          mountedMs: now,
          reclaimable: 0,
        }
        headers.push(h)
        file.pwriteSync(header.encode(spec, h), 0)
      }

      const wal = Wal.create(path.join(dir, WAL_NAME), uuid, 1)
      fsyncDir(dir)
      return new Store(dir, files, headers, wal, false, opts.walLimit ?? DEFAULT_WAL_LIMIT)
    } catch (error) {
      for (const f of files) f.close()
      throw error
    }
  }

  /** Open an image's files, validate them and replay the WAL (in memory only when read-only). */
  static open(dir: string, opts: StoreOpenOptions = {}): Store {
    const readOnly = opts.readOnly ?? false
    const at = opts.paths ?? ((name: string) => path.join(dir, name))
    const files: MappedFile[] = []
    let wal: Wal | undefined
    try {
      const headers: HeaderInfo[] = []
      for (const spec of FILES) {
        const file = MappedFile.open(spec, at(spec.name), readOnly)
        files.push(file)
        headers.push(parseHeader(spec, file.path, file.pread(0, HEADER.SIZE), file.size))
      }

      for (let i = 1; i < files.length; i++) {
        if (!headers[i].uuid.equals(headers[0].uuid)) {
          throw new ImageError(
            'RZ_MISMATCH',
            `belongs to another image (UUID ${uuidString(headers[i].uuid)}, nodes.dat has ${uuidString(headers[0].uuid)})`,
            files[i].path,
          )
        }
      }

      wal = Wal.open(at(WAL_NAME), headers[0].uuid, readOnly)
      const store = new Store(dir, files, headers, wal, readOnly, opts.walLimit ?? DEFAULT_WAL_LIMIT)
      store.recover()
      return store
    } catch (error) {
      wal?.close()
      for (const f of files) f.close()
      throw error
    }
  }

  private recover(): void {
    const minLsn = Math.min(...this.headers.map(h => h.checkpointLsn))
    const maxLsn = Math.max(...this.headers.map(h => h.checkpointLsn))
    if (this.wal.startLsn > minLsn + 1) {
      const worst = this.files[this.headers.findIndex(h => h.checkpointLsn === minLsn)]
      throw new ImageError(
        'RZ_MISMATCH',
        `the write-ahead log starts at transaction ${this.wal.startLsn} but ${path.basename(worst.path)} was checkpointed at ${minLsn}: transactions are missing`,
        this.wal.path,
      )
    }

    const scan = this.wal.scan()
    if (!this.readOnly) this.wal.allocateAtOpen()
    const records = scan.records.filter(r => r.lsn > minLsn)
    for (const record of records) {
      for (const e of record.entries) {
        if (walRecord.entryProblem(e) !== undefined) {
          throw new ImageError(
            'RZ_CORRUPTED',
            `transaction ${record.lsn} writes outside the image (file ${e.fileId}, offset ${e.offset}): the log is corrupt`,
            this.wal.path,
          )
        }
      }
    }

    // Replay may use the files' reserves: it only brings back what was already committed.
    this.useReserves(true)
    try {
      for (const record of records) {
        for (const e of record.entries) {
          if (record.lsn <= this.headers[e.fileId].checkpointLsn) continue
          const file = this.files[e.fileId]
          file.ensureSize(e.offset + e.bytes.length)
          e.bytes.copy(file.buf, e.offset)
          file.markDirty(e.offset, e.bytes.length)
        }
      }
    } finally {
      this.useReserves(false)
    }

    this.recoveredTransactions = records.length
    this.tornBytes = scan.tornBytes
    if (this.wal.nextLsn <= maxLsn) this.wal.nextLsn = maxLsn + 1
  }

  /** Mark the image in use (not clean) and make any replayed state durable. */
  markOpen(): void {
    this.mountedMs = Date.now()
    this.checkpoint(false)
  }

  /**
   * The `len` bytes at `off` of `file` are about to be written in place (a field's `put`) inside
   * the running transaction: one before-image and one dirty mark for a run of fields, where a
   * setter per field keeps one each.
   */
  changing(file: MappedFile, off: number, len: number): void {
    this.touch(file, off, len)
  }

  private touch(file: MappedFile, off: number, len: number): void {
    if (this.depth === 0) throw new Error('internal: change outside a transaction')
    this.undo.add(file, off, len)
    // Marked now, not at commit: a file that grows during the transaction copies its dirty pages.
    file.markDirty(off, len)
  }

  set8(file: MappedFile, off: number, value: number): void {
    this.touch(file, off, 1)
    file.buf.writeUInt8(value, off)
  }

  set16(file: MappedFile, off: number, value: number): void {
    this.touch(file, off, 2)
    file.buf.writeUInt16LE(value, off)
  }

  set32(file: MappedFile, off: number, value: number): void {
    this.touch(file, off, 4)
    file.buf.writeUInt32LE(value >>> 0, off)
  }

  set64(file: MappedFile, off: number, value: number): void {
    this.touch(file, off, 8)
    writeU64(file.buf, off, value)
  }

  setI64(file: MappedFile, off: number, value: number): void {
    this.touch(file, off, 8)
    writeI64(file.buf, off, value)
  }

  setBytes(file: MappedFile, off: number, bytes: Buffer): void {
    if (bytes.length === 0) return
    this.touch(file, off, bytes.length)
    bytes.copy(file.buf, off)
  }

  fill(file: MappedFile, off: number, len: number, value = 0): void {
    if (len === 0) return
    this.touch(file, off, len)
    file.buf.fill(value, off, off + len)
  }

  /**
   * Run `fn` as one transaction (joins the running one if nested). A `freeing` transaction (one
   * that gives space back: unlink, rmdir, a shrinking truncate, removexattr) may use the reserves
   * of the log and of the files (space.ts), so that it works on a full host; any other gets ENOSPC
   * before it touches them.
   */
  transaction<T>(fn: () => T, freeing = false): T {
    if (this.readOnly) throw new FsError('EROFS', 'write')
    if (this.closed) throw new ImageError('RZ_IO', 'the image is closed', this.dir)
    if (this.depth === 0) {
      this.makeLogRoom(freeing)
      this.useReserves(freeing)
    }

    this.depth++
    let result: T
    try {
      result = fn()
    } catch (error) {
      this.depth--
      if (this.depth === 0) {
        this.useReserves(false)
        this.rollback()
      }

      throw error
    }

    this.depth--
    if (this.depth > 0) return result
    this.useReserves(false)
    this.commit()
    return result
  }

  /**
   * Before a transaction: room in the log for its record, outside the reserve unless it frees
   * space. When the host cannot allocate more log, a checkpoint empties the log (it needs no new
   * space: every byte of the files is allocated); if that is not enough either, ENOSPC.
   */
  private makeLogRoom(freeing: boolean): void {
    const room = WAL_HEADROOM + (freeing ? 0 : WAL_RESERVE)
    if (this.wal.ensureRoom(room)) return
    if (this.wal.nextLsn > this.wal.startLsn) {
      try {
        this.checkpoint(false)
      } catch (error) {
        this.checkpointError = error as Error
        throw new FsError('EIO', 'commit')
      }

      if (this.wal.ensureRoom(room)) return
    }

    // A freeing transaction goes on: its record is small, and the log's reserve is allocated.
    if (!freeing) throw new FsError('ENOSPC', 'commit')
  }

  private useReserves(on: boolean): void {
    for (const file of this.files) file.mayUseReserve = on
  }

  /** Run `action` once the current transaction has committed (or now, outside one). */
  onCommit(action: () => void): void {
    if (this.depth === 0) action()
    else this.afterCommit.push(action)
  }

  /** Run `action` if the current transaction is undone (nothing outside one). */
  onRollback(action: () => void): void {
    if (this.depth > 0) this.afterRollback.push(action)
  }

  private rollback(): void {
    const undone = this.afterRollback
    this.afterRollback = []
    for (const action of undone) action()
    this.undo.undo()
    this.afterCommit = []
  }

  private commit(): void {
    if (this.undo.empty) {
      this.runAfterCommit()
      return
    }

    // A view of the undo log's buffer: append copies or writes it before the next commit.
    const record = this.undo.record(this.wal.nextLsn, this.wal.salt)
    try {
      this.wal.append(record)
    } catch (error) {
      this.rollback()
      const code = (error as NodeJS.ErrnoException).code
      throw new FsError(code === 'ENOSPC' || code === 'EDQUOT' ? 'ENOSPC' : 'EIO', 'commit')
    }

    this.undo.clear()
    if (this.crashAfterAppend) {
      // Simulated crash for tests: the record is in the log, nothing else happens.
      this.closed = true
      this.afterCommit = []
      return
    }

    this.runAfterCommit()
    if (this.wal.pos > this.walLimit || this.dirtyPages() > DIRTY_PAGE_LIMIT) {
      // The transaction is committed whatever happens now: a checkpoint that fails (ENOSPC while
      // writing pages back) leaves the files repairable by replay and is tried again later.
      try {
        this.checkpoint(false)
        this.checkpointError = undefined
      } catch (error) {
        this.checkpointError = error as Error
      }
    }
  }

  /** Pages changed in the mappings since the last checkpoint (each one a private copy in memory). */
  private dirtyPages(): number {
    let pages = 0
    for (const file of this.files) pages += file.dirty.size
    return pages
  }

  private runAfterCommit(): void {
    this.afterRollback = []
    const actions = this.afterCommit
    this.afterCommit = []
    for (const action of actions) action()
  }

  /** Make every committed transaction durable (fdatasync of the WAL). */
  sync(): void {
    if (this.readOnly || this.closed) return
    this.syncWithContents()
    this.afterSync()
  }

  /** The content files (beforeSync), then the WAL unless the contents' sync covered it. */
  private syncWithContents(): void {
    if (this.beforeSync(this.wal.pending())) this.wal.covered()
    else this.wal.sync()
  }

  /**
   * Write every change since the last checkpoint into the files and recycle the WAL.
   * `clean` sets the clean-shutdown flag (only at close).
   */
  checkpoint(clean: boolean): void {
    if (this.readOnly) throw new FsError('EROFS', 'checkpoint')
    if (this.depth > 0) throw new Error('internal: checkpoint inside a transaction')
    this.syncWithContents()
    this.afterSync()
    for (const file of this.files) file.writeBack()
    const lsn = this.wal.nextLsn - 1
    this.generation++
    for (const [i, file] of this.files.entries()) {
      const h = this.headers[i]
      const counters = this.counters(file)
      h.flags = clean ? HF_CLEAN : 0
      h.capacity = Math.floor((file.size - DATA_OFFSET) / file.spec.recordSize)
      h.used = Math.min(counters.used, h.capacity)
      h.reclaimable = counters.reclaimable
      h.generation = this.generation
      h.checkpointLsn = lsn
      h.mountedMs = this.mountedMs
      file.pwriteSync(header.encode(file.spec, h), 0)
    }

    this.wal.recycle(lsn + 1)
  }

  /**
   * Checkpoint (clean) and release everything. After the clean checkpoint every record of the log
   * is in the files, so the log is cut back to WAL_MIN_SIZE (it grew for a busy mount; the next
   * one grows it again as it needs): see ARCHITECTURE.md, "The log after a clean close".
   */
  close(): void {
    if (this.closed) return
    try {
      if (!this.readOnly) {
        this.checkpoint(true)
        this.wal.shrink()
      }
    } finally {
      // Even if the last checkpoint failed (ENOSPC), the WAL holds everything: the next open replays it.
      this.release()
    }
  }

  /** Release files without a checkpoint (what a crash leaves; tests use it). */
  release(): void {
    this.closed = true
    this.wal.close()
    for (const f of this.files) f.close()
  }

  get isClosed(): boolean {
    return this.closed
  }
}
