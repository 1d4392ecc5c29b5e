/**
 * File contents: one sparse host file per razorfs file, `data/<xx>/<dataId>` (xx = low byte of the
 * id in hex). Writing k bytes is one pwrite of k bytes; holes stay holes in the host file; the
 * logical size lives in the inode (a content file may be shorter: the rest reads as zeros).
 *
 * A content file may hold bytes past the logical size: a shrinking truncate cuts the host file only
 * once its transaction is durable (so a power loss never leaves the old size with the tail gone),
 * and a crash can come in between. Such bytes are never read (reads stop at the size) and are cut
 * off before the file grows again (Image.prepareGrow), so a shrink-then-grow always reads zeros.
 *
 * Files between one inode and the next (spares, files made ahead, the pool's removals) are
 * content-stock.ts's.
 */
import fs from 'node:fs'
import path from 'node:path'

import {BREAK_NO_FSYNC, CONTENT_FDS} from './debug.js'
import {DATA_DIR_NAME} from './format.js'
import {type Syncfs, hostSyncfs} from './host-sync.js'
import {ContentStock} from './content-stock.js'
import {fsyncDir, writeFully} from './mapped-file.js'

/**
 * Evicted descriptors whose fdatasync is still running in the libuv pool. Past this many the disk
 * is that far behind, and an eviction syncs on the JS thread instead (back-pressure, and a bound
 * on the descriptors held open).
 */
const MAX_IN_FLIGHT = 256
/** Block counts of content files kept (Contents.blockCounts). */
const BLOCK_COUNTS = 65536
/**
 * A sync of more than this many content files, new directories and the log is one syncfs of the
 * host filesystem; up to it, an fdatasync of each. syncfs walks and waits for every dirty inode
 * of the host filesystem, other programs' too, and in a commit of SQLite (a content file and the
 * log) it cost more than the two fdatasyncs: ARCHITECTURE.md.
 */
const SYNCFS_OVER = 4

/** An evicted content file whose fdatasync runs in the libuv pool (see `evict`). */
interface Flush {
  /** The evicted descriptor, kept open until the flush ends: syncAll syncs through it meanwhile. */
  fd: number
  /**
   * A descriptor of its own that the pool fdatasyncs: a second open file description, so that a
   * writeback error is reported to both (Linux reports one once per description), never only to
   * the pool while a sync through `fd` returns 0.
   */
  flushFd: number
  /** `fd` went back into the LRU (a use after the eviction): the LRU closes it, not the flush. */
  cached: boolean
  /** The file was written or truncated after this fdatasync began: it stays unsynced when it ends. */
  stale: boolean
}

export class Contents {
  /** Where the content files are. */
  readonly root: string
  /** Test hook: the evictions that may flush in the pool at once (0: every eviction syncs on the JS thread). */
  maxInFlight = MAX_IN_FLIGHT
  /**
   * syncfs(2) (host-sync.ts), or undefined where the addon is missing (tests set it so to take
   * that path). With it an evicted file is closed unsynced, and a sync of more than one file or
   * directory is one syncfs of the host filesystem; without it each is fdatasynced (evicted ones
   * in the libuv pool).
   */
  syncfs: Syncfs | undefined = hostSyncfs()
  /**
   * A descriptor of `root` for syncfs, opened once `root` exists and kept: syncfs reports a
   * writeback error of any file of the host filesystem that happened since it was opened.
   */
  private syncFd: number | undefined
  /** The host device syncFd is on. */
  private syncDevice: number | undefined
  /** The host device of the write-ahead log (set by the image), to know whether syncfs of `root` covers it. */
  logDevice: number | undefined
  /**
   * An open without the lock holds `root` open, and opens content files through it
   * (/proc/self/fd/N/...): a swap by another process (gc, restore, migrate) may rename the
   * directory, and the files opened are still this image's, never the new one's.
   */
  private rootFd: number | undefined
  /**
   * Asked when a content file is missing in an open without the lock: throws if another image has
   * replaced this one since the open (the file went with the old image); otherwise it is a hole.
   */
  onMissing?: () => void
  private readonly fds = new Map<number, number>()
  /** Content files known to hold nothing past the logical size (checked once per open image). */
  private readonly clean = new Set<number>()
  /** Numbers handed out by this open whose content file is not made yet (see `fresh`). */
  private readonly absent = new Set<number>()
  /**
   * Files written since their last fdatasync (open in `fds`, flushing in `inFlight`, or closed
   * unsynced after a failed or stale flush), and directories with new entries.
   */
  private readonly unsynced = new Set<number>()
  private readonly newDirs = new Set<string>()
  /**
   * 512-byte blocks of content files as last asked of the host (fstat), until their next write,
   * truncate or removal: every reply with a file's attributes asks, and the host changes them only
   * through those (at most BLOCK_COUNTS, then it starts again).
   */
  private readonly blockCounts = new Map<number, number>()
  /** Fan-out directories this image has made or found (see create). */
  private readonly knownDirs = new Set<string>()
  /** Spares, files made ahead, and the pool's share of the host work (content-stock.ts). */
  private readonly stock = new ContentStock(
    dataId => this.pathOf(dataId),
    dir => this.knownDirs.has(dir),
  )
  /** Evicted files being fdatasynced in the pool, by dataId. */
  private readonly inFlight = new Map<number, Flush>()
  /**
   * The first error a pool fdatasync reported. The host may have lost those bytes, and no later
   * sync can tell: every syncAll from then on throws it, so no log is synced over them again and
   * every fsync of the mount fails (DURABILITY.md, the fsync rule under "A power loss").
   */
  private flushError: Error | undefined

  /** `root`: where the content files are (default: `data/` in `dir`). */
  constructor(
    dir: string,
    private readonly readOnly: boolean,
    root?: string,
  ) {
    this.root = root ?? path.join(dir, DATA_DIR_NAME)
    if (!readOnly) this.openSyncFd()
  }

  /** syncfs and the descriptor to call it on, when content files are made durable by syncfs of `root`. */
  private bySyncfs(): {syncfs: Syncfs; fd: number} | undefined {
    return this.syncfs === undefined || this.syncFd === undefined ? undefined : {syncfs: this.syncfs, fd: this.syncFd}
  }

  /** Open syncFd if syncfs is there and `root` exists (a new image makes it with its first content file). */
  private openSyncFd(): void {
    if (this.syncfs === undefined || this.syncFd !== undefined) return
    try {
      this.syncFd = fs.openSync(this.root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
      this.syncDevice = fs.fstatSync(this.syncFd).dev
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
  }

  /** Hold `root` open (see rootFd); a root that does not exist yet is left to its path. */
  holdRoot(): void {
    try {
      this.rootFd = fs.openSync(this.root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
  }

  pathOf(dataId: number): string {
    return path.join(this.root, (dataId & 0xff).toString(16).padStart(2, '0'), String(dataId))
  }

  /** Open an existing content file (through rootFd when it is held). */
  private open(dataId: number, flags: string): number {
    const file = this.pathOf(dataId)
    return fs.openSync(this.rootFd === undefined ? file : path.join(`/proc/self/fd/${this.rootFd}`, path.relative(this.root, file)), flags)
  }

  /**
   * `dataId` was just handed out: it has no content file yet (one left at that number by a crash
   * is garbage, which the create's O_TRUNC clears), so nothing lies past its size, a read is a
   * hole without an open, and the first write creates the file without trying to open it first.
   */
  fresh(dataId: number): void {
    this.blockCounts.delete(dataId)
    this.clean.add(dataId)
    const made = this.stock.handedOut(dataId)
    if (made === undefined) this.absent.add(dataId)
    else {
      // Made ahead by the pool (ContentStock.premake): its directory entry is synced with it.
      this.absent.delete(dataId)
      this.newDirs.add(path.dirname(this.pathOf(dataId)))
      this.adopt(dataId, made)
    }
  }

  /** The pool's share of the host work is on (ContentStock.pool): a served image. */
  get poolHostWork(): boolean {
    return this.stock.pool
  }

  set poolHostWork(on: boolean) {
    this.stock.pool = on
  }

  /** Put an open descriptor of `dataId` in the LRU (evicting the oldest past CONTENT_FDS). */
  private adopt(dataId: number, fd: number): void {
    this.fds.set(dataId, fd)
    if (this.fds.size > CONTENT_FDS) {
      const [oldId, oldFd] = this.fds.entries().next().value as [number, number]
      this.fds.delete(oldId)
      this.evict(oldId, oldFd)
    }
  }

  private fd(dataId: number, create: boolean): number | undefined {
    const cached = this.fds.get(dataId)
    if (cached !== undefined) {
      // Move to the back of the LRU order.
      this.fds.delete(dataId)
      this.fds.set(dataId, cached)
      return cached
    }

    const flushing = this.inFlight.get(dataId)
    let fd: number
    if (flushing !== undefined && !flushing.cached) {
      // Evicted, its flush still running: take the descriptor back (write and truncate mark it stale).
      flushing.cached = true
      fd = flushing.fd
    } else if (this.absent.has(dataId)) {
      if (!create) return undefined
      this.absent.delete(dataId)
      fd = this.createNew(dataId)
    } else {
      try {
        fd = this.open(dataId, this.readOnly ? 'r' : 'r+')
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || !create) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
          this.onMissing?.()
          return undefined
        }

        fd = this.createNew(dataId)
      }
    }

    // In the LRU first: an eviction that throws (a failed inline sync) leaves nothing unowned.
    this.adopt(dataId, fd)
    return fd
  }

  /** Create the content file of `dataId`; its directory entries are unsynced until the next sync. */
  private createNew(dataId: number): number {
    const file = this.pathOf(dataId)
    const fd = this.create(file)
    this.newDirs.add(path.dirname(file))
    return fd
  }

  /**
   * Create the content file `file`, and its fan-out directory the first time this image needs it
   * (a mkdir -p for every new file cost two syscalls); one gone since (removed by hand) is made
   * again.
   */
  private create(file: string): number {
    const dir = path.dirname(file)
    const open = () => fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o600)
    if (!this.knownDirs.has(dir)) {
      this.makeDir(dir)
      this.knownDirs.add(dir)
      this.openSyncFd()
      return open()
    }

    try {
      return open()
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
      this.makeDir(dir)
      return open()
    }
  }

  /** mkdir -p of a fan-out directory; the directories that got a new entry are unsynced until the next sync. */
  private makeDir(dir: string): void {
    const made = fs.mkdirSync(dir, {recursive: true, mode: 0o700})
    if (made === undefined) return
    this.newDirs.add(this.root)
    if (made === this.root) this.newDirs.add(path.dirname(this.root))
  }

  /**
   * Close an evicted descriptor. Unsynced contents are not synced here, on the JS thread: the
   * file is fdatasynced in the libuv pool and its descriptor closed when that ends (the commit that
   * comes first syncs it on the same descriptor). Only with `maxInFlight` flushes already running
   * does the eviction sync at once.
   */
  private evict(dataId: number, fd: number): void {
    const flushing = this.inFlight.get(dataId)
    if (flushing?.fd === fd) {
      // Taken back from its first flush, which still runs: that one closes it; a write since left it unsynced (stale).
      flushing.cached = false
      return
    }

    if (!this.unsynced.has(dataId) || BREAK_NO_FSYNC || this.bySyncfs() !== undefined) {
      // Unsynced under syncfs: the next sync's syncfs covers it, closed or not.
      if (BREAK_NO_FSYNC) this.unsynced.delete(dataId)
      fs.closeSync(fd)
      return
    }

    let flushFd: number | undefined
    if (this.inFlight.size < this.maxInFlight && flushing === undefined) {
      try {
        flushFd = this.open(dataId, 'r')
      } catch {
        flushFd = undefined // synced here instead
      }
    }

    if (flushFd === undefined) {
      try {
        fdatasync(fd)
        this.unsynced.delete(dataId)
      } finally {
        fs.closeSync(fd)
      }

      return
    }

    const flush: Flush = {fd, flushFd, cached: false, stale: false}
    this.inFlight.set(dataId, flush)
    fs.fdatasync(flushFd, error => this.flushed(dataId, flush, error))
  }

  private flushed(dataId: number, flush: Flush, error: Error | null): void {
    for (const fd of flush.cached ? [flush.flushFd] : [flush.flushFd, flush.fd]) {
      try {
        fs.closeSync(fd)
      } catch {
        // The descriptor is released whatever close says; the flush's own result is what counts.
      }
    }

    if (error !== null) this.flushError ??= new Error(`fdatasync of content file ${this.pathOf(dataId)}: ${error.message}`)
    if (this.inFlight.get(dataId) !== flush) return // removed, or the image closed meanwhile
    this.inFlight.delete(dataId)
    if (error === null && !flush.stale) this.unsynced.delete(dataId)
  }

  /** A write or truncate of a file whose flush still runs: that flush may miss it. */
  private touched(dataId: number): void {
    this.blockCounts.delete(dataId)
    const flushing = this.inFlight.get(dataId)
    if (flushing !== undefined) flushing.stale = true
    this.unsynced.add(dataId)
  }

  /** Close `fd` of `dataId` now, unless a running flush holds it (then the flush closes it). */
  private closeFd(dataId: number, fd: number): void {
    const flushing = this.inFlight.get(dataId)
    if (flushing?.fd === fd) flushing.cached = false
    else fs.closeSync(fd)
  }

  /** Read up to `len` bytes at `pos` into `buf`; returns bytes the host file had (the rest is a hole). */
  read(dataId: number, buf: Buffer, off: number, len: number, pos: number): number {
    const fd = this.fd(dataId, false)
    if (fd === undefined) return 0
    let got = 0
    while (got < len) {
      const n = fs.readSync(fd, buf, off + got, len - got, pos + got)
      if (n === 0) break
      got += n
    }

    return got
  }

  write(dataId: number, data: Buffer, pos: number): void {
    const fd = this.fd(dataId, true)!
    // Before the bytes: a write that fails part way has changed the file too.
    this.touched(dataId)
    writeFully(fd, data, 0, data.length, pos)
  }

  /** A descriptor of the content file of `dataId`, made if missing (owned by the LRU: use it at once). */
  hostFd(dataId: number): number {
    return this.fd(dataId, true)!
  }

  /**
   * The host file was changed by someone else (the kernel, through passthrough): it needs a sync.
   * `blocks`: its block count as the caller just saw it (fstat), kept for the next attributes.
   */
  markWritten(dataId: number, blocks?: number): void {
    this.touched(dataId)
    if (blocks !== undefined && this.blockCounts.size < BLOCK_COUNTS) this.blockCounts.set(dataId, blocks)
  }

  /** Make the host file `size` long, cutting or extending it (with a hole). */
  resize(dataId: number, size: number): void {
    fs.ftruncateSync(this.fd(dataId, true)!, size)
    this.touched(dataId)
  }

  /** The host file's stat (nanosecond times), or undefined if it does not exist. */
  statHost(dataId: number): fs.BigIntStats | undefined {
    const fd = this.fd(dataId, false)
    return fd === undefined ? undefined : fs.fstatSync(fd, {bigint: true})
  }

  /** Is the file known to hold nothing past the logical size? */
  isClean(dataId: number): boolean {
    return this.clean.has(dataId)
  }

  markClean(dataId: number): void {
    this.clean.add(dataId)
  }

  /** The file may hold bytes past the logical size (a deferred shrink, a failed write). */
  markUnclean(dataId: number): void {
    this.clean.delete(dataId)
  }

  /** Length of the host file (0 if it does not exist). */
  length(dataId: number): number {
    const fd = this.fd(dataId, false)
    return fd === undefined ? 0 : fs.fstatSync(fd).size
  }

  truncate(dataId: number, size: number): void {
    const fd = this.fd(dataId, false)
    if (fd === undefined) return
    if (fs.fstatSync(fd).size > size) fs.ftruncateSync(fd, size)
    this.touched(dataId)
  }

  /** 512-byte blocks the host allocated (holes take none). */
  blocks(dataId: number): number {
    const known = this.blockCounts.get(dataId)
    if (known !== undefined) return known
    const fd = this.fd(dataId, false)
    if (fd === undefined) return 0
    const blocks = fs.fstatSync(fd).blocks
    if (this.blockCounts.size >= BLOCK_COUNTS) this.blockCounts.clear()
    this.blockCounts.set(dataId, blocks)
    return blocks
  }

  /**
   * The inode of `dataId` was freed, durably: empty its content file and keep it for a new file
   * (takeSpare) rather than remove it, while there is room for a spare. A content file never
   * made, or one that cannot be opened or cut, is removed.
   */
  recycle(dataId: number): void {
    if (this.readOnly || !this.stock.roomForSpare() || this.absent.has(dataId)) {
      this.remove(dataId)
      return
    }

    if (this.stock.pool) {
      this.blockCounts.delete(dataId)
      this.unsynced.delete(dataId)
      this.stock.emptyInPool(dataId, id => this.remove(id))
      return
    }

    try {
      const fd = this.fd(dataId, false)
      if (fd === undefined) return
      fs.ftruncateSync(fd, 0)
    } catch {
      this.remove(dataId)
      return
    }

    // Nothing in it needs syncing any more.
    this.blockCounts.delete(dataId)
    this.unsynced.delete(dataId)
    this.stock.keep(dataId)
  }

  /** Delete the spares (see recycle). */
  dropSpares(): void {
    for (const dataId of this.stock.takeAllSpares()) this.remove(dataId)
  }

  /**
   * Can a new file get an empty content file without a host create: a spare (see recycle), or the
   * one the pool made ahead for `next`, the number `nextDataId` gives next?
   */
  readyFor(next: number): boolean {
    return this.stock.ready(next)
  }

  /** An empty content file for a new file (see recycle), or undefined; it is the caller's now. */
  takeSpare(): number | undefined {
    return this.stock.takeSpare()
  }

  remove(dataId: number): void {
    this.blockCounts.delete(dataId)
    const fd = this.fds.get(dataId)
    if (fd !== undefined) {
      this.closeFd(dataId, fd)
      this.fds.delete(dataId)
    }

    this.inFlight.delete(dataId) // its flush closes the descriptor when it ends
    this.unsynced.delete(dataId)
    this.clean.delete(dataId)
    this.absent.delete(dataId)
    this.stock.deleteFile(dataId)
  }

  /**
   * Make every written content file durable, and the directories with new entries. More than
   * SYNCFS_OVER of them, counting the write-ahead log when it has records to sync (`logPending`)
   * and lives on the same host filesystem: one syncfs, which makes the log durable too (returns
   * true: the log needs no fdatasync of its own). Else, or without syncfs: fdatasync of each on the JS thread (on
   * its open descriptor, also one whose pool flush still runs; a file closed unsynced is opened
   * again), then of the directories (returns false). Throws if a pool flush or a syncfs ever
   * failed (flushError): the log that records those sizes must not be synced as if they were.
   */
  syncAll(logPending = false): boolean {
    if (this.flushError !== undefined) throw this.flushError
    const coversLog = this.syncDevice !== undefined && this.syncDevice === this.logDevice
    const bySyncfs = this.bySyncfs()
    if (bySyncfs !== undefined && this.unsynced.size + this.newDirs.size + (logPending && coversLog ? 1 : 0) > SYNCFS_OVER) {
      if (!BREAK_NO_FSYNC) {
        try {
          bySyncfs.syncfs(bySyncfs.fd)
        } catch (error) {
          // As a failed pool flush: the host may have lost bytes that no later sync brings back.
          this.flushError = new Error(`syncfs of the filesystem of ${this.root}: ${(error as Error).message}`)
          throw this.flushError
        }
      }

      this.unsynced.clear()
      this.newDirs.clear()
      return coversLog
    }

    for (const dataId of this.unsynced) this.syncFile(dataId)

    this.unsynced.clear()
    this.syncDirs()
    return false
  }

  /**
   * fdatasync of one content file (an fdatasync of a file whose size is durable, Image.fsync).
   * False, syncing nothing, when a content file was created since the last sync: its directory
   * entry becomes durable with everything else (syncAll). An error is kept as a syncfs error is.
   */
  syncOne(dataId: number): boolean {
    if (this.flushError !== undefined) throw this.flushError
    if (this.newDirs.size > 0) return false
    if (dataId === 0 || !this.unsynced.has(dataId)) return true
    try {
      this.syncFile(dataId)
    } catch (error) {
      this.flushError = new Error(`fdatasync of content file ${this.pathOf(dataId)}: ${(error as Error).message}`)
      throw this.flushError
    }

    this.unsynced.delete(dataId)
    return true
  }

  /**
   * fdatasync of a content file on its open descriptor, also one whose pool flush still runs; a
   * file closed unsynced is opened again.
   */
  private syncFile(dataId: number): void {
    const fd = this.fds.get(dataId) ?? this.inFlight.get(dataId)?.fd
    if (fd !== undefined) fdatasync(fd)
    else this.syncClosed(dataId)
  }

  /** fdatasync of a content file that has no descriptor open (a flush failed, or it was evicted stale). */
  private syncClosed(dataId: number): void {
    if (BREAK_NO_FSYNC) return
    const fd = this.open(dataId, 'r')
    try {
      fs.fdatasyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
  }

  private syncDirs(): void {
    for (const dir of this.newDirs) fsyncDir(dir)

    this.newDirs.clear()
  }

  close(): void {
    this.stock.close()
    this.dropSpares()
    this.syncAll()
    this.closeFiles()
  }

  /** Close every descriptor without syncing (what a crash leaves); running flushes close theirs. */
  closeFiles(): void {
    this.stock.abandon()
    for (const [dataId, fd] of this.fds) this.closeFd(dataId, fd)
    this.fds.clear()
    this.inFlight.clear()
    this.unsynced.clear()
    if (this.rootFd !== undefined) fs.closeSync(this.rootFd)
    this.rootFd = undefined
    if (this.syncFd !== undefined) fs.closeSync(this.syncFd)
    this.syncFd = undefined
  }
}

function fdatasync(fd: number): void {
  if (!BREAK_NO_FSYNC) fs.fdatasyncSync(fd)
}
