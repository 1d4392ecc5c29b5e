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
 * content-stock.ts's; when the files are durable is content-sync.ts's.
 */
import fs from 'node:fs'
import path from 'node:path'

import {CONTENT_FDS} from './debug.js'
import {DATA_DIR_NAME} from './format.js'
import {ContentStock} from './content-stock.js'
import {ContentSync} from './content-sync.js'
import {hostTimes, type HostTimes} from './host-sync.js'
import {writeFully} from './mapped-file.js'

/** Block counts of content files kept (Contents.blockCounts). */
const BLOCK_COUNTS = 65536
export class Contents {
  /** Where the content files are. */
  readonly root: string
  /**
   * An open without the lock holds `root` open, and opens content files through it
   * (/proc/self/fd/N/...): a swap by another process (gc, restore, migrate) may rename the
   * directory, and the files opened are still this image's, never the new one's.
   */
  private rootFd: number | undefined
  /** The fan-out directories' paths with a trailing '/', by the low byte of a number (pathOf). */
  private readonly fanOut: string[]
  /** Which files and directories are unsynced, and their syncs (content-sync.ts). */
  readonly sync: ContentSync
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
  /** `root`: where the content files are (default: `data/` in `dir`). */
  constructor(
    dir: string,
    private readonly readOnly: boolean,
    root?: string,
  ) {
    this.root = root ?? path.join(dir, DATA_DIR_NAME)
    this.fanOut = Array.from({length: 256}, (_, i) => `${path.join(this.root, i.toString(16).padStart(2, '0'))}/`)
    this.sync = new ContentSync(this.root, {
      cachedFd: dataId => this.fds.get(dataId),
      open: (dataId, flags) => this.open(dataId, flags),
      pathOf: dataId => this.pathOf(dataId),
    })
    if (!readOnly) this.sync.openSyncFd()
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
    // Made by concatenation: path.join normalises every time (a create asks for one or two).
    return this.fanOut[dataId & 0xff] + String(dataId)
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
      this.sync.dirChanged(path.dirname(this.pathOf(dataId)))
      this.adopt(dataId, made)
    }
  }

  /** Settles once the files the pool is making ahead are made (or, after a close, removed). */
  poolSettled(): Promise<void> {
    return this.stock.settled()
  }

  /** The pool's share of the host work is on (ContentStock.pool): a served image. */
  get poolHostWork(): boolean {
    return this.stock.pool
  }

  set poolHostWork(on: boolean) {
    this.stock.pool = on
    this.sync.closeInPool = on
  }

  /** Put an open descriptor of `dataId` in the LRU (evicting the oldest past CONTENT_FDS). */
  private adopt(dataId: number, fd: number): void {
    this.fds.set(dataId, fd)
    if (this.fds.size > CONTENT_FDS) {
      const [oldId, oldFd] = this.fds.entries().next().value as [number, number]
      this.fds.delete(oldId)
      this.sync.evict(oldId, oldFd)
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

    // Evicted and its flush still running: the descriptor is taken back.
    let fd = this.sync.takeBack(dataId)
    if (fd === undefined && this.absent.has(dataId)) {
      if (!create) return undefined
      this.absent.delete(dataId)
      fd = this.createNew(dataId)
    } else if (fd === undefined) {
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
    this.sync.dirChanged(path.dirname(file))
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
      this.sync.openSyncFd()
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
    this.sync.dirChanged(this.root)
    if (made === this.root) this.sync.dirChanged(path.dirname(this.root))
  }

  /** A write or truncate: the host's block count is asked again, and the file needs a sync. */
  private touched(dataId: number): void {
    this.blockCounts.delete(dataId)
    this.sync.touched(dataId)
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

  /** The host file's size, mtime and blocks, or undefined if it does not exist. */
  statHost(dataId: number): HostTimes | undefined {
    const fd = this.fd(dataId, false)
    return fd === undefined ? undefined : hostTimes(fd)
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
    return fd === undefined ? 0 : hostTimes(fd).size
  }

  truncate(dataId: number, size: number): void {
    const fd = this.fd(dataId, false)
    if (fd === undefined) return
    if (hostTimes(fd).size > size) fs.ftruncateSync(fd, size)
    this.touched(dataId)
  }

  /** 512-byte blocks the host allocated (holes take none). */
  blocks(dataId: number): number {
    const known = this.blockCounts.get(dataId)
    if (known !== undefined) return known
    const fd = this.fd(dataId, false)
    if (fd === undefined) return 0
    const blocks = hostTimes(fd).blocks
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
      this.sync.emptied(dataId)
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
    this.sync.emptied(dataId)
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
      this.sync.closeFd(dataId, fd)
      this.fds.delete(dataId)
    }

    this.sync.removed(dataId)
    this.clean.delete(dataId)
    this.absent.delete(dataId)
    this.stock.deleteFile(dataId)
  }

  close(): void {
    this.stock.close()
    this.dropSpares()
    this.sync.syncAll()
    this.closeFiles()
  }

  /** Close every descriptor without syncing (what a crash leaves); running flushes close theirs. */
  closeFiles(): void {
    this.stock.abandon()
    for (const [dataId, fd] of this.fds) this.sync.closeFd(dataId, fd)
    this.fds.clear()
    this.sync.abandon()
    if (this.rootFd !== undefined) fs.closeSync(this.rootFd)
    this.rootFd = undefined
  }
}
