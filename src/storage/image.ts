/**
 * An image: inodes, directory entries, names, contents and xattrs over the transactional store.
 * This is the one storage API every command uses. Operations are inode-based and structural
 * (they keep the tree valid: no cycles, no entry without an inode, link counts right); POSIX
 * permissions and path walking belong to the filesystem core above.
 *
 * Every change runs in a store transaction: all of it reaches the WAL or none of it does.
 *
 * `Image` is the facade over the layers in src/storage/image/: inode records at the bottom
 * (inodes.ts); file data (file-data.ts) and xattrs (xattrs.ts) on them; open handles and orphans
 * (orphans.ts) on file data; directories (directories.ts) on top. It opens, closes and wires
 * them, and hands each Volume method to its layer.
 */
import fs from 'node:fs'
import path from 'node:path'

import {Contents} from './contents.js'
import {checkDataDir} from './data-dir.js'
import {ImageError} from './errors.js'
import {DATA_DIR_NAME, FILES, FILE_ENTRY_INDEX, FILE_NODES, FILE_STRING_INDEX, FORMAT_VERSION, IMAGE_FILE_NAMES, LOCK_NAME} from './format.js'
import {DirLock} from './lock.js'
import {Store} from './store.js'
import {CONTROL_OFFSET, tableControlFields as TC} from './codec/control.js'
import {inodeFields as I} from './codec/inode.js'
import {uuidString} from './codec/header.js'
import {type Tables, openTables} from './tables.js'
import {releaseCleanPages} from './page-release.js'
import {SpaceWatch, imageStatfs} from './space.js'
import {holdsFinishedStaging, imageIdentity, imagePaths, tidy} from './staging.js'
import type {Attr, CreateOptions, DirEntry, DirentSink, ImageInfo, NodeSpec, OpenOptions, SetAttr, StatFs} from './types.js'
import type {Volume} from './volume.js'
import {Directories, type ImageDirCursor} from './image/directories.js'
import {FileData} from './image/file-data.js'
import {Inodes, nowTimespec} from './image/inodes.js'
import {Orphans} from './image/orphans.js'
import {Xattrs} from './image/xattrs.js'
import {WritersList} from './writers.js'

export {LINK_MAX} from './image/directories.js'

/** The store, the tables over it and the content files: see internals(). */
export interface ImageInternals extends Tables {
  readonly contents: Contents
}

export class Image implements Volume {
  readonly dir: string
  readonly readOnly: boolean
  private readonly store: Store
  private readonly tables: Tables
  private readonly contents: Contents
  private readonly lock: DirLock | undefined
  private readonly inodes: Inodes
  private readonly data: FileData
  private readonly orphans: Orphans
  /** Opened without the lock: the image's files at the open (imageIdentity). */
  private identity = ''
  private readonly dirs: Directories
  private readonly xattrs: Xattrs

  private constructor(dir: string, store: Store, lock: DirLock | undefined, contentsRoot?: string) {
    this.dir = dir
    this.store = store
    this.readOnly = store.readOnly
    this.lock = lock
    // The two hash indexes stay resident: see releaseCleanPages.
    for (const id of [FILE_ENTRY_INDEX, FILE_STRING_INDEX]) store.files[id].keepWrittenPages = true
    this.tables = openTables(store)
    this.contents = new Contents(dir, store.readOnly, contentsRoot)
    this.inodes = new Inodes(this.tables, this.contents)
    this.data = new FileData(this.inodes, this.contents, new SpaceWatch(dir), new WritersList(dir, store.uuid))
    this.orphans = new Orphans(this.inodes, this.data, this.contents)
    this.dirs = new Directories(this.tables, this.inodes, this.orphans, this.data)
    this.xattrs = new Xattrs(this.inodes)
    this.contents.sync.logDevice = fs.fstatSync(store.wal.fd).dev
    store.beforeSync = logPending => {
      this.data.syncWriters()
      return this.contents.sync.syncAll(logPending)
    }
    store.afterSync = () => this.data.applyDeferred()
  }

  // ---- opening and closing -------------------------------------------------------------------

  /** Does `dir` hold an image (its nodes.dat)? */
  static exists(dir: string): boolean {
    return fs.existsSync(path.join(dir, FILES[FILE_NODES].name)) || holdsFinishedStaging(dir)
  }

  /** The image's files in `dir` as they are now (name, path, size, mode): what `info()` lists. */
  static files(dir: string): ImageInfo['files'] {
    return [...IMAGE_FILE_NAMES, LOCK_NAME].flatMap(name => {
      try {
        const st = fs.statSync(path.join(dir, name))
        return [{name, path: path.join(dir, name), bytes: st.size, mode: st.mode & 0o7777}]
      } catch {
        return []
      }
    })
  }

  /** Create a new image in an existing directory and return it open (read-write, locked). */
  static create(dir: string, opts: CreateOptions = {}): Image {
    const lock = DirLock.acquire(dir)
    try {
      tidy(dir, [])
      if (Image.exists(dir) || IMAGE_FILE_NAMES.some(name => fs.existsSync(path.join(dir, name)))) {
        if (!opts.force) throw new ImageError('RZ_EXISTS', 'already holds a razorfs image; use --force to replace it (its contents are lost)', dir)
        for (const name of IMAGE_FILE_NAMES) fs.rmSync(path.join(dir, name), {force: true})
        fs.rmSync(path.join(dir, 'data'), {force: true, recursive: true})
      }

      const capacity = Math.max(16, Math.min(opts.capacity ?? 1024, 16_000_000))
      const sizes = opts.sizes ?? [capacity, capacity, 2048, Math.max(1024, capacity * 2), 512]
      const store = Store.create(dir, sizes, {walLimit: opts.walLimit, uuid: opts.uuid, createdMs: opts.createdMs})
      const image = new Image(dir, store, lock)
      const now = nowTimespec()
      store.transaction(() => {
        const t = image.tables
        t.nodes.format()
        t.entries.format()
        t.entryIndex.format()
        t.strings.format()
        TC.nextDataId.set(store, t.nodes.file, CONTROL_OFFSET, 1)
        image.inodes.initRoot(opts.rootMode ?? 0o755, opts.uid ?? process.getuid?.() ?? 0, opts.gid ?? process.getgid?.() ?? 0, now)
      })
      store.markOpen()
      return image
    } catch (error) {
      lock.release()
      throw error
    }
  }

  /**
   * Open an image. Read-write: takes the lock, replays the WAL, marks the image in use, frees
   * orphans and, after an unclean shutdown, removes the content files no inode names (recovery).
   * Read-only: no lock, nothing written; the WAL is replayed in memory.
   */
  static open(dir: string, opts: OpenOptions = {}): Image {
    checkDataDir(dir)
    if (!Image.exists(dir)) throw new ImageError('RZ_NO_IMAGE', 'holds no razorfs image (no nodes.dat); create one with `razorfs init`', dir)
    const readOnly = opts.readOnly ?? false
    const lock = (opts.lock ?? !readOnly) ? DirLock.acquire(dir) : undefined
    try {
      if (lock !== undefined) tidy(dir, [])
      const unlocked = lock === undefined ? Image.openUnlocked(dir, readOnly, opts) : undefined
      const store = unlocked?.store ?? Store.open(dir, {readOnly, walLimit: opts.walLimit})
      const image = new Image(dir, store, lock, unlocked === undefined ? undefined : imagePaths(dir)(DATA_DIR_NAME))
      if (unlocked !== undefined) {
        image.identity = unlocked.identity
        image.contents.holdRoot()
        image.contents.onMissing = () => image.checkNotReplaced()
      }

      try {
        image.inodes.checkRoot()
        if (readOnly) image.data.recoverWriters()
        else {
          store.markOpen()
          image.data.recoverWriters()
          image.orphans.freeOrphans()
          if (!store.wasClean) image.orphans.reclaimContents()
        }
      } catch (error) {
        store.release()
        throw error
      }

      return image
    } catch (error) {
      lock?.release()
      throw error
    }
  }

  /**
   * Open the files without the lock, so without moving any: a killed gc's or restore's half-moved
   * image is read where each file is. A swap may run meanwhile (gc, restore or migrate of another
   * process): the files opened must all be of one image, the same before and after.
   */
  private static openUnlocked(dir: string, readOnly: boolean, opts: OpenOptions): {store: Store; identity: string} {
    for (let attempt = 1; ; attempt++) {
      const identity = imageIdentity(dir)
      const store = Store.open(dir, {readOnly, walLimit: opts.walLimit, paths: imagePaths(dir)})
      if (imageIdentity(dir) === identity) return {store, identity}
      store.release()
      if (attempt === 3)
        throw new ImageError(
          'RZ_MISMATCH',
          'was replaced while it was being opened (a gc, restore or migrate was putting a new image in place); run the command again',
          dir,
        )
    }
  }

  /** A content file is missing in an image opened without the lock: an error if another image has replaced this one since. */
  private checkNotReplaced(): void {
    if (imageIdentity(this.dir) !== this.identity) {
      throw new ImageError('RZ_MISMATCH', 'was replaced while it was being read (by a gc, restore or migrate); run the command again', this.dir)
    }
  }

  /** Checkpoint, mark clean, release the lock. */
  close(): void {
    if (this.store.isClosed) return
    try {
      if (!this.readOnly) {
        this.data.adoptAllDirect() // files the kernel still has open through passthrough
        this.orphans.freeOrphans()
      }

      this.store.close() // checkpoint: syncs contents, then applies deferred truncations and removals
      this.data.dropDirect()
      this.contents.close()
    } finally {
      if (!this.store.isClosed) this.store.release()
      this.contents.closeFiles()
      this.lock?.release()
    }
  }

  /** Drop everything without a checkpoint: what a crash leaves behind (tests). */
  abandon(): void {
    if (!this.store.isClosed) this.store.release()
    this.contents.closeFiles()
    this.lock?.release()
  }

  /**
   * The layers under the image, for the checker (fsck), dump and stats: they read records
   * directly, and fsck repairs through `store.transaction`. Nothing else should use this.
   */
  internals(): ImageInternals {
    return {...this.tables, contents: this.contents}
  }

  /**
   * Drop the pages of the mapped files that hold nothing but the files' bytes from this process's
   * resident set (see page-release.ts); they are read from the page cache again when needed.
   * The two hash indexes stay (here and after a checkpoint's write-back, MappedFile.keepWrittenPages):
   * nearly every lookup and insert reads a page of them at random, and they are small (4 bytes a
   * slot). Returns the pages dropped.
   */
  releaseCleanPages(): number {
    let pages = 0
    for (const file of this.store.files) {
      if (!file.keepWrittenPages) pages += releaseCleanPages(file)
    }

    return pages
  }

  /** Test hook: the next commit stops right after its WAL append, as if the process died there. */
  crashAfterNextAppend(): void {
    this.store.crashAfterAppend = true
  }

  info(): ImageInfo {
    const h = this.store.headers[FILE_NODES]
    const files = Image.files(this.dir)
    return {
      dir: this.dir,
      uuid: uuidString(this.store.uuid),
      formatVersion: FORMAT_VERSION,
      createdMs: h.createdMs,
      mountedMs: this.store.mountedMs,
      readOnly: this.readOnly,
      recovery: {wasClean: this.store.wasClean, transactions: this.store.recoveredTransactions, tornBytes: this.store.tornBytes},
      inodes: {used: this.tables.nodes.live, capacity: this.inodes.capacity},
      files,
    }
  }

  // ---- durability ------------------------------------------------------------------------------

  /** Make everything acknowledged so far durable; `metadataOnly` (fsyncdir): the log at least. */
  sync(metadataOnly = false): void {
    if (this.readOnly) return
    this.data.adoptAllDirect()
    // fsyncdir: with nothing in the log since its last sync, every metadata change is durable
    // already, and the content files were synced before it as it needs. Otherwise, as sync(2):
    // SQLite fsyncs the directory after each new journal, when only files open through
    // passthrough are unsynced (adoptDirect cannot tell whether the kernel wrote them). A sync
    // that failed before still fails it.
    if (metadataOnly && !this.store.wal.pending()) {
      this.contents.sync.throwIfFailed()
      return
    }

    this.store.sync()
  }

  /**
   * Have the host write back in the background what the next sync would wait for
   * (ContentSync.writeBackAhead): the commit interval's sync then holds the JS thread only for what
   * was written since. Changes nothing of what sync does; an error of the host it meets fails
   * every later sync, as the sync's own would.
   */
  writeBackAhead(): Promise<void> {
    return this.readOnly ? Promise.resolve() : this.contents.sync.writeBackAhead(this.store.wal.pending())
  }

  /** Make one file's contents and all metadata durable. */
  fsync(ino: number, dataOnly = false): void {
    if (this.readOnly) return
    const slot = this.inodes.slotOf(ino, 'fsync')
    this.data.adoptDirect(ino) // what the kernel wrote (passthrough) is in the log before it is synced
    // fdatasync: the file's bytes and what finds them. With its existence, size and content file
    // number durable already, that is its content file alone; else everything, as fsync.
    if (dataOnly && this.inodes.layoutDurable(slot) && this.contents.sync.syncOne(this.inodes.get64(slot, I.dataId))) return
    this.store.sync()
  }

  checkpoint(): void {
    this.store.checkpoint(false)
  }

  /**
   * A served image: the libuv pool, not the JS thread, empties or removes the content files of
   * inodes whose free a sync made durable, and makes the next new files' content files ahead
   * (ContentStock.pool, ContentStock.premake).
   */
  poolHostWork(): void {
    this.contents.poolHostWork = true
  }

  /** Volume.transaction: the calls `fn` makes commit as one store transaction. */
  transaction<T>(fn: () => T): T {
    return this.store.transaction(fn)
  }

  // ---- the Volume, layer by layer --------------------------------------------------------------

  getattr(ino: number, ownerOnly = false): Attr {
    if (!ownerOnly) this.data.adoptDirect(ino)
    return this.inodes.attrOf(this.inodes.slotOf(ino, 'getattr'), ownerOnly)
  }

  openDirect(ino: number, write: boolean): number | undefined {
    return this.data.openDirect(ino, write)
  }

  closeDirect(ino: number): void {
    this.data.closeDirect(ino)
  }

  readlink(ino: number): Buffer {
    return this.inodes.readlink(ino)
  }

  lookup(parent: number, name: Buffer | string): number {
    return this.dirs.lookup(parent, name)
  }

  readdir(ino: number): Generator<DirEntry> {
    return this.dirs.readdir(ino)
  }

  openDirCursor(ino: number): ImageDirCursor {
    return this.dirs.openDirCursor(ino)
  }

  rewindDirCursor(c: ImageDirCursor): void {
    this.dirs.rewindDirCursor(c)
  }

  closeDirCursor(c: ImageDirCursor): void {
    this.dirs.closeDirCursor(c)
  }

  peekDirents(c: ImageDirCursor, sink: DirentSink, at: number, max: number): number {
    if (this.data.directCount > 0) this.data.adoptAllDirect() // the attributes given out with the names
    return this.dirs.peekDirents(c, sink, at, max)
  }

  skipDirents(c: ImageDirCursor, count: number): number {
    return this.dirs.skipDirents(c, count)
  }

  mknod(parent: number, name: Buffer | string, spec: NodeSpec): Attr {
    return this.dirs.mknod(parent, name, spec)
  }

  link(ino: number, parent: number, name: Buffer | string): Attr {
    this.data.adoptDirect(ino)
    return this.dirs.link(ino, parent, name)
  }

  unlink(parent: number, name: Buffer | string): void {
    this.dirs.removeName(parent, name, false)
  }

  rmdir(parent: number, name: Buffer | string): void {
    this.dirs.removeName(parent, name, true)
  }

  rename(oldParent: number, oldName: Buffer | string, newParent: number, newName: Buffer | string, flags = 0): void {
    this.dirs.rename(oldParent, oldName, newParent, newName, flags)
  }

  setattr(ino: number, changes: SetAttr): Attr {
    return this.data.setattr(ino, changes)
  }

  read(ino: number, buf: Buffer, pos: number): number {
    this.data.adoptDirect(ino) // (copy_file_range, lseek: the kernel asks here)
    return this.data.read(ino, buf, pos)
  }

  write(ino: number, data: Buffer, pos: number): number {
    this.data.adoptDirect(ino)
    return this.data.write(ino, data, pos)
  }

  getxattr(ino: number, name: string): Buffer {
    return this.xattrs.getxattr(ino, name)
  }

  listxattr(ino: number): string[] {
    return this.xattrs.listxattr(ino)
  }

  setxattr(ino: number, name: string, value: Buffer, flags = 0): void {
    this.xattrs.setxattr(ino, name, value, flags)
  }

  removexattr(ino: number, name: string): void {
    this.xattrs.removexattr(ino, name)
  }

  retain(ino: number): void {
    this.orphans.retain(ino)
  }

  release(ino: number): void {
    this.orphans.release(ino)
  }

  // ---- figures ---------------------------------------------------------------------------------

  /** Volume.statfs: blocks of the host disk, inodes out of what nodes.dat can map. */
  statfs(): StatFs {
    return imageStatfs(this.dir, this.tables.nodes.live)
  }

  /** Usage figures for statfs and stats. */
  usage(): {inodes: number; entries: number; names: number; nameBytes: number; reclaimableNameBytes: number; inodeCapacity: number} {
    const t = this.tables
    return {
      inodes: t.nodes.live,
      entries: t.entries.live,
      names: t.strings.index.count,
      nameBytes: t.strings.liveBytes,
      reclaimableNameBytes: t.strings.freeBytes,
      inodeCapacity: this.inodes.capacity,
    }
  }
}
