/**
 * When content files are durable (DURABILITY.md): which files and fan-out directories changed
 * since their last sync, the fdatasyncs of evicted descriptors running in the libuv pool, and the
 * sync a commit makes before the log that records their sizes (one syncfs of the host
 * filesystem, or an fdatasync of each). contents.ts opens, reads and writes the files and tells
 * this module what changed.
 */
import fs from 'node:fs'

import {BREAK_NO_FSYNC} from './debug.js'
import {type CloseBatch, type Syncfs, type SyncfsAhead, hostCloseBatch, hostSyncfs, hostSyncfsAhead} from './host-sync.js'
import {fsyncDir} from './mapped-file.js'

/**
 * Evicted descriptors whose fdatasync is still running in the libuv pool. Past this many the disk
 * is that far behind, and an eviction syncs on the JS thread instead (back-pressure, and a bound
 * on the descriptors held open).
 */
const MAX_IN_FLIGHT = 256
/**
 * A sync of more than this many content files, new directories and the log is one syncfs of the
 * host filesystem; up to it, an fdatasync of each. syncfs walks and waits for every dirty inode
 * of the host filesystem, other programs' too, and in a commit of SQLite (a content file and the
 * log) it cost more than the two fdatasyncs: ARCHITECTURE.md.
 */
const SYNCFS_OVER = 4
/**
 * Evicted descriptors closed together in one job of the libuv pool (closeBatch): each hand-over
 * costs the JS thread about 60 us on this VM (four untars at once, in jobs of 16).
 */
export const CLOSE_BATCH = 64

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

/** What ContentSync asks of the content files (Contents). */
export interface ContentFiles {
  /** The descriptor of `dataId` open in the LRU, if any. */
  cachedFd(dataId: number): number | undefined
  /** Open the existing content file of `dataId`. */
  open(dataId: number, flags: string): number
  pathOf(dataId: number): string
}

export class ContentSync {
  /** Test hook: the evictions that may flush in the pool at once (0: every eviction syncs on the JS thread). */
  maxInFlight = MAX_IN_FLIGHT
  /**
   * syncfs(2) (host-sync.ts), or undefined where the addon is missing (tests set it so to take
   * that path). With it an evicted file is closed unsynced, and a sync of more than one file or
   * directory is one syncfs of the host filesystem; without it each is fdatasynced (evicted ones
   * in the libuv pool).
   */
  syncfs: Syncfs | undefined = hostSyncfs()
  /** syncfs(2) in the libuv pool (host-sync.ts), for writeBackAhead; undefined where the addon is missing. */
  syncfsAhead: SyncfsAhead | undefined = hostSyncfsAhead()
  /**
   * A served image's (Image.poolHostWork): evicted descriptors with nothing to sync are closed
   * CLOSE_BATCH at a time in the libuv pool (closeBatch), not each on the JS thread.
   */
  closeInPool = false
  /** closeBatch (host-sync.ts); undefined where the addon is missing (tests set it so). */
  closeBatch: CloseBatch | undefined = hostCloseBatch()
  /** The host device of the write-ahead log (set by the image), to know whether syncfs of `root` covers it. */
  logDevice: number | undefined
  /**
   * A descriptor of `root` for syncfs, opened once `root` exists and kept: syncfs reports a
   * writeback error of any file of the host filesystem that happened since it was opened.
   */
  private syncFd: number | undefined
  /** The host device syncFd is on. */
  private syncDevice: number | undefined
  /**
   * A second descriptor of `root`, for writeBackAhead's syncfs alone: a writeback error it sees
   * is still reported to syncFd (Linux reports one once per open file description), so the sync
   * that follows fails as it would have.
   */
  private aheadFd: number | undefined
  /** Is a writeBackAhead running in the pool? */
  private ahead = false
  /** Evicted descriptors waiting to be closed in the pool (closeEvicted). */
  private readonly toClose: number[] = []
  /**
   * Files written since their last fdatasync (open in the LRU, flushing in `inFlight`, or closed
   * unsynced after a failed or stale flush), and directories with new entries.
   */
  private readonly unsynced = new Set<number>()
  private readonly newDirs = new Set<string>()
  /** Evicted files being fdatasynced in the pool, by dataId. */
  private readonly inFlight = new Map<number, Flush>()
  /**
   * The first error a pool fdatasync reported. The host may have lost those bytes, and no later
   * sync can tell: every syncAll from then on throws it, so no log is synced over them again and
   * every fsync of the mount fails (DURABILITY.md, the fsync rule under "A power loss").
   */
  private flushError: Error | undefined

  /** `root`: where the content files are. */
  constructor(
    private readonly root: string,
    private readonly files: ContentFiles,
  ) {}

  /** Open syncFd if syncfs is there and `root` exists (a new image makes it with its first content file). */
  openSyncFd(): void {
    if (this.syncfs === undefined || this.syncFd !== undefined) return
    try {
      this.syncFd = fs.openSync(this.root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
      this.syncDevice = fs.fstatSync(this.syncFd).dev
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
  }

  /** syncfs and the descriptor to call it on, when content files are made durable by syncfs of `root`. */
  private bySyncfs(): {syncfs: Syncfs; fd: number} | undefined {
    return this.syncfs === undefined || this.syncFd === undefined ? undefined : {syncfs: this.syncfs, fd: this.syncFd}
  }

  /** Throw the error a pool flush or a syncfs met (flushError), if one did. */
  throwIfFailed(): void {
    if (this.flushError !== undefined) throw this.flushError
  }

  /** `dir` has a new entry (a content file, a fan-out directory): synced with the next syncAll. */
  dirChanged(dir: string): void {
    this.newDirs.add(dir)
  }

  /** A write or truncate of `dataId`: unsynced, and a flush of it that still runs may miss it. */
  touched(dataId: number): void {
    const flushing = this.inFlight.get(dataId)
    if (flushing !== undefined) flushing.stale = true
    this.unsynced.add(dataId)
  }

  /** The file of `dataId` holds nothing that needs syncing any more (emptied for a new file). */
  emptied(dataId: number): void {
    this.unsynced.delete(dataId)
  }

  /** The file of `dataId` is removed: its flush, if one runs, closes its descriptor when it ends. */
  removed(dataId: number): void {
    this.inFlight.delete(dataId)
    this.unsynced.delete(dataId)
  }

  /** The descriptor of an evicted `dataId` whose flush still runs, taken back for the LRU (write and truncate mark it stale), or undefined. */
  takeBack(dataId: number): number | undefined {
    const flushing = this.inFlight.get(dataId)
    if (flushing === undefined || flushing.cached) return undefined
    flushing.cached = true
    return flushing.fd
  }

  /**
   * Close an evicted descriptor. Unsynced contents are not synced here, on the JS thread: the
   * file is fdatasynced in the libuv pool and its descriptor closed when that ends (the commit that
   * comes first syncs it on the same descriptor). Only with `maxInFlight` flushes already running
   * does the eviction sync at once.
   */
  evict(dataId: number, fd: number): void {
    const flushing = this.inFlight.get(dataId)
    if (flushing?.fd === fd) {
      // Taken back from its first flush, which still runs: that one closes it; a write since left it unsynced (stale).
      flushing.cached = false
      return
    }

    if (!this.unsynced.has(dataId) || BREAK_NO_FSYNC || this.bySyncfs() !== undefined) {
      // Unsynced under syncfs: the next sync's syncfs covers it, closed or not.
      if (BREAK_NO_FSYNC) this.unsynced.delete(dataId)
      this.closeEvicted(fd)
      return
    }

    let flushFd: number | undefined
    if (this.inFlight.size < this.maxInFlight && flushing === undefined) {
      try {
        flushFd = this.files.open(dataId, 'r')
      } catch {
        flushFd = undefined // synced here instead
      }
    }

    if (flushFd === undefined) {
      try {
        this.syncKept(dataId, () => fdatasync(fd))
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

  /** Close an evicted descriptor: with CLOSE_BATCH - 1 others in the pool (closeInPool), else now. */
  private closeEvicted(fd: number): void {
    if (!this.closeInPool || this.closeBatch === undefined) {
      fs.closeSync(fd)
      return
    }

    this.toClose.push(fd)
    if (this.toClose.length < CLOSE_BATCH) return
    const fds = Int32Array.from(this.toClose)
    this.toClose.length = 0
    const closeHere = (): void => {
      for (const at of fds) closeQuietly(at)
    }

    // Not handed over (the job could not be made): closed here.
    let closing: Promise<void>
    try {
      closing = this.closeBatch(fds)
    } catch {
      closeHere()
      return
    }

    closing.catch(closeHere)
  }

  private flushed(dataId: number, flush: Flush, error: Error | null): void {
    // The flush's own result is what counts, not what close says.
    for (const fd of flush.cached ? [flush.flushFd] : [flush.flushFd, flush.fd]) closeQuietly(fd)

    if (error !== null) this.flushError ??= new Error(`fdatasync of content file ${this.files.pathOf(dataId)}: ${error.message}`)
    if (this.inFlight.get(dataId) !== flush) return // removed, or the image closed meanwhile
    this.inFlight.delete(dataId)
    if (error === null && !flush.stale) this.unsynced.delete(dataId)
  }

  /** Close `fd` of `dataId` now, unless a running flush holds it (then the flush closes it). */
  closeFd(dataId: number, fd: number): void {
    const flushing = this.inFlight.get(dataId)
    if (flushing?.fd === fd) flushing.cached = false
    else fs.closeSync(fd)
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
    this.throwIfFailed()
    const coversLog = this.coversLog()
    const bySyncfs = this.bySyncfs()
    if (bySyncfs !== undefined && this.syncsBySyncfs(logPending)) {
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

    for (const dataId of this.unsynced) this.syncKept(dataId, () => this.syncFile(dataId))

    this.unsynced.clear()
    for (const dir of this.newDirs) this.syncKept(dir, () => fsyncDir(dir))

    this.newDirs.clear()
    return false
  }

  /** Does syncFd's host filesystem hold the write-ahead log (so that its syncfs makes the log durable)? */
  private coversLog(): boolean {
    return this.syncDevice !== undefined && this.syncDevice === this.logDevice
  }

  /** Would syncAll(logPending) now be one syncfs (more than SYNCFS_OVER files, directories and log)? */
  private syncsBySyncfs(logPending: boolean): boolean {
    return this.bySyncfs() !== undefined && this.unsynced.size + this.newDirs.size + (logPending && this.coversLog() ? 1 : 0) > SYNCFS_OVER
  }

  /**
   * Where the next syncAll would be one syncfs: the same syncfs now, in the libuv pool, on a
   * descriptor of its own, so that the host writes back what is dirty while the JS thread serves
   * requests, and that syncAll, which still runs in full, waits only for what was written since.
   * It changes nothing of what is synced or kept unsynced, and never rejects. An error it meets is
   * kept as syncAll's own would be (flushError): Linux reports some syncfs errors to the first
   * caller alone (a failed sync_fs, or before 5.8 every one), so the sync after it could return 0.
   * Resolves at once where there is nothing to do, and while one started earlier still runs (the
   * sync waits for what that one writes back anyway).
   */
  writeBackAhead(logPending = false): Promise<void> {
    const syncfsAhead = this.syncfsAhead
    if (this.ahead || syncfsAhead === undefined || BREAK_NO_FSYNC || this.flushError !== undefined || !this.syncsBySyncfs(logPending)) return Promise.resolve()
    try {
      this.aheadFd ??= fs.openSync(this.root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
    } catch {
      return Promise.resolve() // syncAll meets whatever this was
    }

    const fd = this.aheadFd
    let running: Promise<void>
    try {
      running = syncfsAhead(fd)
    } catch {
      return Promise.resolve() // not handed over (no memory): the sync does it all
    }

    this.ahead = true
    return running.then(
      () => this.aheadDone(fd),
      (error: unknown) => {
        this.flushError ??= new Error(`syncfs of the filesystem of ${this.root}: ${(error as Error).message}`)
        this.aheadDone(fd)
      },
    )
  }

  /** A writeBackAhead ended: its descriptor is closed if the files were closed meanwhile (abandon). */
  private aheadDone(fd: number): void {
    this.ahead = false
    if (this.aheadFd !== fd) closeQuietly(fd)
  }

  /**
   * fdatasync of one content file (an fdatasync of a file whose size is durable, Image.fsync).
   * False, syncing nothing, when a content file was created since the last sync: its directory
   * entry becomes durable with everything else (syncAll). An error is kept as a syncfs error is.
   */
  syncOne(dataId: number): boolean {
    this.throwIfFailed()
    if (this.newDirs.size > 0) return false
    if (dataId === 0 || !this.unsynced.has(dataId)) return true
    this.syncKept(dataId, () => this.syncFile(dataId))
    this.unsynced.delete(dataId)
    return true
  }

  /**
   * Run `sync` of content file `what` (a dataId) or directory `what`; an error it meets is kept
   * (flushError) and thrown. Linux reports a writeback error once per open file description, so a
   * retry could succeed over lost bytes: every later sync fails instead (DURABILITY.md).
   */
  private syncKept(what: number | string, sync: () => void): void {
    try {
      sync()
    } catch (error) {
      const name = typeof what === 'number' ? `fdatasync of content file ${this.files.pathOf(what)}` : `fsync of directory ${what}`
      this.flushError ??= new Error(`${name}: ${(error as Error).message}`)
      throw this.flushError
    }
  }

  /**
   * fdatasync of a content file on its open descriptor, also one whose pool flush still runs; a
   * file closed unsynced (a flush failed, or it was evicted stale) is opened again.
   */
  private syncFile(dataId: number): void {
    const fd = this.files.cachedFd(dataId) ?? this.inFlight.get(dataId)?.fd
    if (fd !== undefined) {
      fdatasync(fd)
      return
    }

    if (BREAK_NO_FSYNC) return
    const opened = this.files.open(dataId, 'r')
    try {
      fs.fdatasyncSync(opened)
    } finally {
      fs.closeSync(opened)
    }
  }

  /**
   * Close now the evicted descriptors waiting for a job of the pool: one of a removed content
   * file holds its blocks on the host until then (Image's releaseHostSpace, when the host is short).
   */
  closeWaiting(): void {
    for (const fd of this.toClose.splice(0)) closeQuietly(fd)
  }

  /** Forget every flush and change without syncing (what a crash leaves; running flushes close their descriptors), and close syncFd and aheadFd. */
  abandon(): void {
    this.inFlight.clear()
    this.unsynced.clear()
    this.closeWaiting()
    if (this.syncFd !== undefined) fs.closeSync(this.syncFd)
    this.syncFd = undefined
    // One a running writeBackAhead uses is closed when it ends (aheadDone).
    if (this.aheadFd !== undefined && !this.ahead) closeQuietly(this.aheadFd)
    this.aheadFd = undefined
  }
}

/** Close `fd`; the descriptor is released whatever close says (a sync reports what counts). */
function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd)
  } catch {
    // released anyway
  }
}

function fdatasync(fd: number): void {
  if (!BREAK_NO_FSYNC) fs.fdatasyncSync(fd)
}
