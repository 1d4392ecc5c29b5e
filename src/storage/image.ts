/**
 * An image: inodes, directory entries, names, contents and xattrs over the transactional store.
 * This is the one storage API every command uses. Operations are inode-based and structural
 * (they keep the tree valid: no cycles, no entry without an inode, link counts right); POSIX
 * permissions and path walking belong to the filesystem core above.
 *
 * Every change runs in a store transaction: all of it reaches the WAL or none of it does.
 */
import fs from 'node:fs'
import path from 'node:path'

import {Contents, listContentFiles, liveDataIds} from './contents.js'
import {checkDataDir} from './data-dir.js'
import {type EntryTables, addEntry} from './dirent.js'
import {FsError, ImageError} from './errors.js'
import {
  DIRENT, FILES, INLINE_NAME, FILE_ENTRY_INDEX, FILE_NODES, FILE_STRING_INDEX,
  FORMAT_VERSION, IF_ORPHAN, IF_USED, INODE, LOCK_NAME, S_IFCHR, S_IFBLK, S_IFDIR, S_IFLNK, S_IFMT,
  S_IFREG, WAL_NAME,
} from './format.js'
import type {LinearHash} from './linear-hash.js'
import {DirLock} from './lock.js'
import {Store} from './store.js'
import {fnv1a} from './codec/checksum.js'
import {CONTROL_OFFSET, tableControlFields as TC} from './codec/control.js'
import * as dirent from './codec/dirent.js'
import {direntFields as D} from './codec/dirent.js'
import type {U32Field, U64Field} from './codec/field.js'
import {uuidString} from './codec/header.js'
import {inodeFields as I, isValidType, timeFields} from './codec/inode.js'
import * as inodeNumber from './codec/inode-number.js'
import {ROOT_SLOT} from './codec/inode-number.js'
import * as xattrBlob from './codec/xattr-blob.js'
import {XATTR_BLOB_MAX} from './codec/xattr-blob.js'
import type {StringHeap} from './string-heap.js'
import type {RecordTable} from './table.js'
import {openTables} from './tables.js'
import {releaseCleanPages} from './page-release.js'
import {SpaceWatch, imageStatfs} from './space.js'
import {holdsFinishedStaging, tidy} from './staging.js'
import {
  type Attr, type CreateOptions, type DirCursor, type DirEntry, type DirentSink, FILE_SIZE_MAX, type ImageInfo, NAME_MAX, type NodeSpec, type OpenOptions,
  PATH_MAX, RENAME_EXCHANGE, RENAME_NOREPLACE, type SetAttr, type StatFs, type Timespec, XATTR_CREATE, XATTR_REPLACE,
  XATTR_SIZE_MAX,
} from './types.js'
import type {Volume} from './volume.js'

/** Hard links per inode (ext4's limit). */
export const LINK_MAX = 65000

function nowTimespec(): Timespec {
  const ms = performance.timeOrigin + performance.now()
  const sec = Math.floor(ms / 1000)
  return {sec, nsec: Math.min(999_999_999, Math.floor((ms - sec * 1000) * 1e6))}
}

function toBytes(name: Buffer | string): Buffer {
  return typeof name === 'string' ? Buffer.from(name) : name
}

export interface ImageInternals {
  store: Store
  nodes: RecordTable
  entries: RecordTable
  entryIndex: LinearHash
  strings: StringHeap
  contents: Contents
}

/** The image's DirCursor: moved past an entry removed under it (removeEntry). */
interface ImageDirCursor extends DirCursor {
  /** The directory's inode slot (the key of open cursors). */
  readonly slot: number
  /** Entry record of the next entry to list, 0 at the end. */
  next: number
}

/** Files of an image, as `init --force` removes them. */
const IMAGE_FILES = [...FILES.map(f => f.name), WAL_NAME]

export class Image implements Volume {
  readonly dir: string
  readonly readOnly: boolean
  private readonly store: Store
  private readonly nodes: RecordTable
  private readonly entries: RecordTable
  private readonly entryIndex: LinearHash
  private readonly strings: StringHeap
  private readonly contents: Contents
  /** What addEntry (src/storage/dirent.ts) writes through: built once, not per entry. */
  private readonly tables: EntryTables
  private readonly lock: DirLock | undefined
  /** Open handles per inode slot: an unlinked inode lives on while it is open. */
  private readonly openRefs = new Map<number, number>()
  /**
   * Host-file changes that must wait until the transaction that calls for them is durable:
   * otherwise a power loss could bring back an inode whose contents were already cut or removed.
   */
  private readonly pendingShrinks = new Map<number, number>()
  private readonly pendingRemovals = new Set<number>()
  /** Open listing cursors per directory slot (see DirCursor). */
  private readonly cursors = new Map<number, Set<ImageDirCursor>>()
  /** Whether the host is short of space, so that a delete must give its space back at once. */
  private readonly space: SpaceWatch

  private constructor(dir: string, store: Store, lock: DirLock | undefined) {
    this.dir = dir
    this.store = store
    this.readOnly = store.readOnly
    this.lock = lock
    // The two hash indexes stay resident: see releaseCleanPages.
    for (const id of [FILE_ENTRY_INDEX, FILE_STRING_INDEX]) store.files[id].keepWrittenPages = true
    this.tables = openTables(store)
    this.nodes = this.tables.nodes
    this.entries = this.tables.entries
    this.strings = this.tables.strings
    this.entryIndex = this.tables.entryIndex
    this.contents = new Contents(dir, store.readOnly)
    this.space = new SpaceWatch(dir)
    store.beforeSync = () => this.contents.syncAll()
    store.afterSync = () => this.applyDeferred()
  }

  // ---- opening and closing -------------------------------------------------------------------

  /** Does `dir` hold an image (its nodes.dat)? */
  static exists(dir: string): boolean {
    return fs.existsSync(path.join(dir, FILES[FILE_NODES].name)) || holdsFinishedStaging(dir)
  }

  /** The image's files in `dir` as they are now (name, path, size, mode): what `info()` lists. */
  static files(dir: string): ImageInfo['files'] {
    return [...FILES.map(f => f.name), WAL_NAME, LOCK_NAME].flatMap(name => {
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
      if (Image.exists(dir) || IMAGE_FILES.some(name => fs.existsSync(path.join(dir, name)))) {
        if (!opts.force) throw new ImageError('RZ_EXISTS', 'already holds a razorfs image; use --force to replace it (its contents are lost)', dir)
        for (const name of IMAGE_FILES) fs.rmSync(path.join(dir, name), {force: true})
        fs.rmSync(path.join(dir, 'data'), {force: true, recursive: true})
      }

      const capacity = Math.max(16, Math.min(opts.capacity ?? 1024, 16_000_000))
      const store = Store.create(dir, [capacity, capacity, 2048, Math.max(1024, capacity * 2), 512])
      const image = new Image(dir, store, lock)
      const now = nowTimespec()
      store.transaction(() => {
        image.nodes.format()
        image.entries.format()
        image.entryIndex.format()
        image.strings.format()
        TC.nextDataId.set(store, image.nodes.file, CONTROL_OFFSET, 1)
        const slot = image.nodes.alloc()
        if (slot !== ROOT_SLOT) throw new Error('internal: root is not slot 1')
        image.initInode(slot, (opts.rootMode ?? 0o755) | S_IFDIR, opts.uid ?? process.getuid?.() ?? 0, opts.gid ?? process.getgid?.() ?? 0, 0, now)
        image.set32(slot, I.nlink, 2)
        image.set32(slot, I.parent, ROOT_SLOT)
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
    const lock = opts.lock ?? !readOnly ? DirLock.acquire(dir) : undefined
    try {
      if (lock !== undefined) tidy(dir, [])
      const store = Store.open(dir, {readOnly, walLimit: opts.walLimit})
      const image = new Image(dir, store, lock)
      try {
        image.checkRoot()
        if (!readOnly) {
          store.markOpen()
          image.freeOrphans()
          if (!store.wasClean) image.reclaimContents()
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

  private checkRoot(): void {
    const nodesFile = this.nodes.file
    if (this.nodes.highWater <= ROOT_SLOT || nodesFile.size < this.nodes.off(ROOT_SLOT + 1)) {
      throw new ImageError('RZ_CORRUPTED', 'has no root directory', nodesFile.path)
    }

    const o = this.nodes.off(ROOT_SLOT)
    if ((I.flags.get(this.node, o) & IF_USED) === 0 || (I.mode.get(this.node, o) & S_IFMT) !== S_IFDIR) {
      throw new ImageError('RZ_CORRUPTED', 'the root inode is not a directory', nodesFile.path)
    }
  }

  /** Checkpoint, mark clean, release the lock. */
  close(): void {
    if (this.store.isClosed) return
    try {
      if (!this.readOnly) this.freeOrphans()
      this.store.close() // checkpoint: syncs contents, then applies deferred truncations and removals
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
    return {store: this.store, nodes: this.nodes, entries: this.entries, entryIndex: this.entryIndex, strings: this.strings, contents: this.contents}
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
      inodes: {used: this.nodes.live, capacity: Math.floor((this.nodes.file.size - this.nodes.off(0)) / this.nodes.recordSize) - 1},
      files,
    }
  }

  /** Make everything acknowledged so far durable (fsync / fsyncdir semantics). */
  sync(): void {
    if (this.readOnly) return
    this.store.sync()
  }

  /** Apply host-file truncations and removals whose transactions are now durable. */
  private applyDeferred(): void {
    for (const [dataId, size] of this.pendingShrinks) this.contents.truncate(dataId, size)
    this.pendingShrinks.clear()
    for (const dataId of this.pendingRemovals) this.contents.remove(dataId)
    this.pendingRemovals.clear()
  }

  /**
   * Before the logical size of a file grows from `size`: bytes the host file holds past it (a
   * deferred shrink, a write whose commit failed, a crash) must go, or they would reappear.
   */
  private prepareGrow(dataId: number, size: number): void {
    if (this.contents.isClean(dataId)) return
    if (this.contents.length(dataId) > size) {
      if (this.pendingShrinks.has(dataId)) this.store.sync() // makes the shrink durable, then applies it
      if (this.contents.length(dataId) > size) this.contents.truncate(dataId, size)
    }

    // Nothing lies past `size` now, so a deferred shrink (always to the current size) has nothing
    // left to cut; applied later, it would cut what the growing write puts there.
    this.pendingShrinks.delete(dataId)
    this.contents.markClean(dataId)
  }

  /**
   * After a delete: on a host short of space, make it durable now, which removes or cuts the host
   * files it freed (they wait for a sync, up to the commit interval, otherwise).
   */
  private releaseHostSpace(): void {
    if (this.pendingRemovals.size === 0 && this.pendingShrinks.size === 0) return
    try {
      if (this.space.isLow()) this.store.sync()
    } catch {
      // The delete is committed; its host files go at the next sync, which reports any error.
    }
  }

  /** Make one file's contents and all metadata durable. */
  fsync(ino: number): void {
    if (this.readOnly) return
    this.slotOf(ino, 'fsync')
    this.store.sync()
  }

  checkpoint(): void {
    this.store.checkpoint(false)
  }

  /** Volume.transaction: the calls `fn` makes commit as one store transaction. */
  transaction<T>(fn: () => T): T {
    try {
      return this.store.transaction(fn)
    } catch (error) {
      // A rollback may have undone sizes that writes and truncations inside had set: no content
      // file is known to hold nothing past its size any more (prepareGrow checks each again).
      this.contents.forgetClean()
      throw error
    }
  }

  // ---- record access ---------------------------------------------------------------------------

  private get node(): Buffer {
    return this.nodes.file.buf
  }

  private get ent(): Buffer {
    return this.entries.file.buf
  }

  private set32(slot: number, field: U32Field, value: number): void {
    field.set(this.store, this.nodes.file, this.nodes.off(slot), value)
  }

  private set64(slot: number, field: U64Field, value: number): void {
    field.set(this.store, this.nodes.file, this.nodes.off(slot), value)
  }

  private get32(slot: number, field: U32Field): number {
    return field.get(this.node, this.nodes.off(slot))
  }

  private get64(slot: number, field: U64Field): number {
    return field.get(this.node, this.nodes.off(slot))
  }

  private inoOf(slot: number): number {
    return inodeNumber.encode(slot, this.get32(slot, I.gen))
  }

  /** Slot of a live inode, or ENOENT (also for a stale number whose slot was reused). */
  private slotOf(ino: number, syscall: string): number {
    const slot = this.liveSlot(ino)
    if (slot === 0) throw new FsError('ENOENT', syscall, `inode ${ino}`)
    return slot
  }

  /** The slot of inode `ino`, or 0 if no live inode has that number. */
  private liveSlot(ino: number): number {
    const slot = inodeNumber.slotOf(ino)
    if (!Number.isSafeInteger(ino) || ino < 1 || slot === 0 || slot >= this.nodes.highWater) return 0
    const o = this.nodes.off(slot)
    if ((I.flags.get(this.node, o) & IF_USED) === 0 || I.gen.get(this.node, o) !== inodeNumber.genOf(ino)) return 0
    return slot
  }

  private typeOf(slot: number): number {
    return this.get32(slot, I.mode) & S_IFMT
  }

  private dirSlot(ino: number, syscall: string): number {
    const slot = this.slotOf(ino, syscall)
    if (this.typeOf(slot) !== S_IFDIR) throw new FsError('ENOTDIR', syscall, `inode ${ino}`)
    return slot
  }

  private setTime(slot: number, which: 'atime' | 'mtime' | 'ctime', t: Timespec): void {
    const o = this.nodes.off(slot)
    const f = timeFields[which]
    f.sec.set(this.store, this.nodes.file, o, t.sec)
    f.nsec.set(this.store, this.nodes.file, o, t.nsec)
  }

  private initInode(slot: number, mode: number, uid: number, gid: number, rdev: number, now: Timespec): void {
    this.set32(slot, I.flags, IF_USED)
    this.set32(slot, I.mode, mode)
    this.set32(slot, I.nlink, 1)
    this.set32(slot, I.uid, uid)
    this.set32(slot, I.gid, gid)
    this.set64(slot, I.rdev, rdev)
    this.setTime(slot, 'atime', now)
    this.setTime(slot, 'mtime', now)
    this.setTime(slot, 'ctime', now)
  }

  private readTime(o: number, which: 'atime' | 'mtime' | 'ctime'): Timespec {
    const f = timeFields[which]
    return {sec: f.sec.get(this.node, o), nsec: f.nsec.get(this.node, o)}
  }

  private attrOf(slot: number): Attr {
    const b = this.node
    const o = this.nodes.off(slot)
    const mode = I.mode.get(b, o)
    const dataId = I.dataId.get(b, o)
    return {
      ino: this.inoOf(slot),
      mode,
      nlink: I.nlink.get(b, o),
      uid: I.uid.get(b, o),
      gid: I.gid.get(b, o),
      rdev: I.rdev.get(b, o),
      size: I.size.get(b, o),
      blocks: dataId === 0 ? 0 : this.contents.blocks(dataId),
      atime: this.readTime(o, 'atime'),
      mtime: this.readTime(o, 'mtime'),
      ctime: this.readTime(o, 'ctime'),
    }
  }

  // ---- names and entries -----------------------------------------------------------------------

  private checkName(name: Buffer, syscall: string): void {
    if (name.length > NAME_MAX) throw new FsError('ENAMETOOLONG', syscall, name.toString())
    if (name.length === 0 || name.includes(0x2F) || name.includes(0) || (name[0] === 0x2E && (name.length === 1 || (name.length === 2 && name[1] === 0x2E)))) {
      throw new FsError('EINVAL', syscall, name.toString())
    }
  }

  /** Entry slot for (directory slot, name), or 0. */
  private findEntry(dir: number, name: Buffer): number {
    const hash = fnv1a(name)
    const b = this.ent
    for (let d = this.entryIndex.first(dirent.dirHash(dir, hash)); d !== 0; d = D.hashNext.get(b, this.entries.off(d))) {
      if (dirent.isEntryOf(b, this.entries.off(d), dir, hash, name, this.strings)) return d
    }

    return 0
  }

  /** The name of an entry (a copy). */
  private entryName(d: number): Buffer {
    const o = this.entries.off(d)
    const b = this.ent
    const len = D.nameLength.get(b, o)
    if (len <= INLINE_NAME) {
      // One small copy, byte by byte: no view of the mapping is made (readdir calls this per entry).
      const name = Buffer.allocUnsafe(len)
      for (let i = 0, from = o + D.inlineName.off; i < len; i++) name[i] = b[from + i]
      return name
    }

    return Buffer.from(this.strings.bytes(D.name.get(b, o)))
  }

  /** Inode number of an entry's child, from the entry alone. */
  private entryIno(d: number): number {
    return dirent.childIno(this.ent, this.entries.off(d))
  }

  private entryChild(d: number): number {
    return D.child.get(this.ent, this.entries.off(d))
  }

  private removeEntry(d: number): void {
    const f = this.entries.file
    const o = this.entries.off(d)
    const b = this.ent
    const dir = D.parent.get(b, o)
    const nameUnit = D.name.get(b, o)
    const next = D.next.get(b, o)
    const prev = D.prev.get(b, o)
    this.entryIndex.remove(d, dirent.keyOf(b, o))
    if (prev === 0) this.set32(dir, I.dirHead, next)
    else D.next.set(this.store, f, this.entries.off(prev), next)
    if (next !== 0) D.prev.set(this.store, f, this.entries.off(next), prev)
    this.set64(dir, I.size, this.get64(dir, I.size) - 1)
    this.strings.release(nameUnit)
    this.store.fill(f, o, DIRENT.SIZE)
    this.entries.free(d)
    // Cursors standing on the entry move to the next one once the removal has committed (a
    // rollback brings the entry back, and the cursors stay on it).
    if (this.cursors.has(dir)) {
      this.store.onCommit(() => {
        for (const c of this.cursors.get(dir) ?? []) if (c.next === d) c.next = next
      })
    }
  }

  /** Drop one link of an inode whose entry was just removed; frees it when nothing holds it. */
  private dropLink(slot: number, now: Timespec): void {
    const isDir = this.typeOf(slot) === S_IFDIR
    const nlink = isDir ? 0 : this.get32(slot, I.nlink) - 1
    this.set32(slot, I.nlink, nlink)
    this.setTime(slot, 'ctime', now)
    if (nlink > 0) return
    if ((this.openRefs.get(slot) ?? 0) > 0) {
      this.set32(slot, I.flags, IF_USED | IF_ORPHAN)
      this.set32(slot, I.link, TC.orphanHead.get(this.node, CONTROL_OFFSET))
      TC.orphanHead.set(this.store, this.nodes.file, CONTROL_OFFSET, slot)
    } else {
      this.freeInode(slot)
    }
  }

  private freeInode(slot: number): void {
    const o = this.nodes.off(slot)
    const b = this.node
    const target = I.target.get(b, o)
    const xattr = I.xattr.get(b, o)
    const dataId = I.dataId.get(b, o)
    if (target !== 0) this.strings.release(target)
    if (xattr !== 0) this.strings.release(xattr)
    const gen = inodeNumber.nextGen(I.gen.get(b, o))
    this.store.fill(this.nodes.file, o, INODE.SIZE)
    this.set32(slot, I.gen, gen)
    this.nodes.free(slot)
    if (dataId !== 0) this.store.onCommit(() => this.pendingRemovals.add(dataId))
  }

  private unlinkOrphan(slot: number): void {
    let prev = 0
    let cur = TC.orphanHead.get(this.node, CONTROL_OFFSET)
    while (cur !== 0 && cur !== slot) {
      prev = cur
      cur = this.get32(cur, I.link)
    }

    if (cur === 0) return
    const next = this.get32(slot, I.link)
    if (prev === 0) TC.orphanHead.set(this.store, this.nodes.file, CONTROL_OFFSET, next)
    else this.set32(prev, I.link, next)
    this.set32(slot, I.link, 0)
  }

  /** Free every orphan no handle holds (all of them after a restart). */
  private freeOrphans(): void {
    const doomed: number[] = []
    const seen = new Set<number>()
    for (let cur = TC.orphanHead.get(this.node, CONTROL_OFFSET); cur !== 0; cur = this.get32(cur, I.link)) {
      // A damaged list must never free a linked inode or loop: stop, and leave it to fsck.
      if (seen.has(cur) || cur >= this.nodes.highWater) break
      const flags = this.get32(cur, I.flags)
      if ((flags & IF_ORPHAN) === 0 || (flags & IF_USED) === 0 || this.get32(cur, I.nlink) !== 0) break
      seen.add(cur)
      if ((this.openRefs.get(cur) ?? 0) === 0) doomed.push(cur)
    }

    if (doomed.length === 0) return
    this.store.transaction(() => {
      for (const slot of doomed) {
        this.unlinkOrphan(slot)
        this.freeInode(slot)
      }
    }, true)
  }

  /**
   * Recovery, after an unclean shutdown: remove every content file that no live inode names. A
   * crash between a transaction that freed an inode and the deferred removal of its content file
   * (after the next sync) leaves such a file, and so does a power loss that took back the
   * allocation of a dataId whose file had been created. Runs once every free is durable (the
   * replayed state was checkpointed by markOpen; the sync covers the orphans just freed), so a
   * later crash can never bring back an inode whose file is gone. Cost: one pass over the inode
   * table and one readdir per data/xx directory, only on this open.
   */
  private reclaimContents(): void {
    this.store.sync() // also applies the removals deferred by freeOrphans
    const live = liveDataIds(this.node, s => this.nodes.off(s), this.nodes.highWater)
    for (const f of listContentFiles(this.contents.root)) {
      if (f.id === undefined || !live.has(f.id)) fs.rmSync(f.path, {force: true})
    }
  }

  // ---- queries ---------------------------------------------------------------------------------

  getattr(ino: number): Attr {
    return this.attrOf(this.slotOf(ino, 'getattr'))
  }

  /** Inode number of `name` in directory `parent`, or 0 if there is none. '.' and '..' work. */
  lookup(parent: number, name: Buffer | string): number {
    const dir = this.dirSlot(parent, 'lookup')
    const bytes = toBytes(name)
    if (bytes.length === 1 && bytes[0] === 0x2E) return this.inoOf(dir)
    if (bytes.length === 2 && bytes[0] === 0x2E && bytes[1] === 0x2E) return this.inoOf(this.get32(dir, I.parent))
    if (bytes.length > NAME_MAX) throw new FsError('ENAMETOOLONG', 'lookup', bytes.toString())
    const d = this.findEntry(dir, bytes)
    return d === 0 ? 0 : this.entryIno(d)
  }

  /** Entries of a directory (not '.' and '..'), newest first; names are copies. */
  * readdir(ino: number): Generator<DirEntry> {
    const dir = this.dirSlot(ino, 'readdir')
    for (let d = this.get32(dir, I.dirHead); d !== 0;) {
      const o = this.entries.off(d)
      const b = this.ent
      const next = D.next.get(b, o)
      const entry = {name: this.entryName(d), ino: this.entryIno(d), type: D.type.get(b, o) << 12}
      yield entry
      d = next
    }
  }

  /**
   * A cursor at the start of a directory's listing (same order as readdir). It stays valid while
   * entries come and go (see DirCursor) until closeDirCursor.
   */
  openDirCursor(ino: number): ImageDirCursor {
    const dir = this.dirSlot(ino, 'readdir')
    const c: ImageDirCursor = {ino, slot: dir, next: this.get32(dir, I.dirHead)}
    let open = this.cursors.get(dir)
    if (open === undefined) this.cursors.set(dir, open = new Set())
    open.add(c)
    return c
  }

  /** Back to the start of the listing (a directory removed meanwhile lists nothing). */
  rewindDirCursor(c: ImageDirCursor): void {
    const slot = this.liveSlot(c.ino)
    c.next = slot === 0 ? 0 : this.get32(slot, I.dirHead)
  }

  closeDirCursor(c: ImageDirCursor): void {
    const open = this.cursors.get(c.slot)
    open?.delete(c)
    if (open?.size === 0) this.cursors.delete(c.slot)
  }

  /**
   * Copy up to `max` entries from the cursor into `sink`, from index `at` (names are copied: no
   * view of the mapping, no allocation per entry); the cursor does not move. Returns the count,
   * fewer at the end of the directory or when the sink is full.
   */
  peekDirents(c: ImageDirCursor, sink: DirentSink, at: number, max: number): number {
    const b = this.ent
    // The u32 fields through a word view: a mapping (or its in-memory copy) starts on a page and
    // every field is aligned.
    const w = new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2)
    const {names, ends, inos, types} = sink
    const limit = Math.min(at + max, ends.length)
    let pos = at === 0 ? 0 : ends[at - 1]
    let n = at
    for (let d = c.next; d !== 0 && n < limit; n++) {
      const o = this.entries.off(d)
      const ow = o >>> 2
      const len = D.nameLength.get(b, o)
      if (len <= INLINE_NAME) {
        if (pos + len > names.length) break
        for (let i = 0, from = o + D.inlineName.off; i < len; i++) names[pos++] = b[from + i]
      } else {
        const name = this.strings.bytes(w[ow + D.name.word])
        if (pos + name.length > names.length) break
        pos += name.copy(names, pos)
      }

      ends[n] = pos
      inos[n] = inodeNumber.encode(w[ow + D.child.word], w[ow + D.childGen.word])
      types[n] = D.type.get(b, o) << 12
      d = w[ow + D.next.word]
    }

    return n - at
  }

  /** Move the cursor `count` entries on; returns how many it moved (fewer at the end). */
  skipDirents(c: ImageDirCursor, count: number): number {
    const b = this.ent
    let moved = 0
    for (; moved < count && c.next !== 0; moved++) c.next = D.next.get(b, this.entries.off(c.next))
    return moved
  }

  readlink(ino: number): Buffer {
    const slot = this.slotOf(ino, 'readlink')
    if (this.typeOf(slot) !== S_IFLNK) throw new FsError('EINVAL', 'readlink', `inode ${ino}`)
    return Buffer.from(this.strings.bytes(this.get32(slot, I.target)))
  }

  /** Read up to buf.length bytes at `pos`; returns the count (0 at or past the end). */
  read(ino: number, buf: Buffer, pos: number): number {
    const slot = this.slotOf(ino, 'read')
    const type = this.typeOf(slot)
    if (type === S_IFDIR) throw new FsError('EISDIR', 'read')
    if (type !== S_IFREG) throw new FsError('EINVAL', 'read')
    const size = this.get64(slot, I.size)
    if (pos >= size) return 0
    const len = Math.min(buf.length, size - pos)
    const dataId = this.get64(slot, I.dataId)
    const got = dataId === 0 ? 0 : this.contents.read(dataId, buf, 0, len, pos)
    if (got < len) buf.fill(0, got, len)
    return len
  }

  getxattr(ino: number, name: string): Buffer {
    const found = this.xattrs(this.slotOf(ino, 'getxattr')).get(name)
    if (found === undefined) throw new FsError('ENODATA', 'getxattr', name)
    return found
  }

  listxattr(ino: number): string[] {
    return [...this.xattrs(this.slotOf(ino, 'listxattr')).keys()]
  }

  // ---- changes ---------------------------------------------------------------------------------

  /** Create a file, directory, symlink, FIFO, socket or device node named `name` in `parent`. */
  mknod(parent: number, name: Buffer | string, spec: NodeSpec): Attr {
    const bytes = toBytes(name)
    const dir = this.dirSlot(parent, 'mknod')
    this.checkName(bytes, 'mknod')
    const type = spec.mode & S_IFMT
    if (!isValidType(type)) throw new FsError('EINVAL', 'mknod', bytes.toString())
    let target: Buffer | undefined
    if (type === S_IFLNK) {
      target = toBytes(spec.target ?? '')
      if (target.length === 0) throw new FsError('ENOENT', 'symlink', bytes.toString())
      if (target.length > PATH_MAX) throw new FsError('ENAMETOOLONG', 'symlink', bytes.toString())
    }

    if (this.findEntry(dir, bytes) !== 0) throw new FsError('EEXIST', 'mknod', bytes.toString())
    if (type === S_IFDIR && this.get32(dir, I.nlink) >= LINK_MAX) throw new FsError('EMLINK', 'mkdir', bytes.toString())
    return this.store.transaction(() => {
      const now = nowTimespec()
      const slot = this.nodes.alloc()
      this.initInode(slot, spec.mode, spec.uid, spec.gid, type === S_IFCHR || type === S_IFBLK ? spec.rdev ?? 0 : 0, now)
      if (type === S_IFDIR) {
        this.set32(slot, I.nlink, 2)
        this.set32(slot, I.parent, dir)
        this.set32(dir, I.nlink, this.get32(dir, I.nlink) + 1)
      } else if (target !== undefined) {
        this.set32(slot, I.target, this.strings.intern(target))
        this.set64(slot, I.size, target.length)
      }

      addEntry(this.tables, dir, bytes, slot)
      this.setTime(dir, 'mtime', now)
      this.setTime(dir, 'ctime', now)
      return this.attrOf(slot)
    })
  }

  /** A new name for an existing non-directory inode. */
  link(ino: number, parent: number, name: Buffer | string): Attr {
    const bytes = toBytes(name)
    const slot = this.slotOf(ino, 'link')
    const dir = this.dirSlot(parent, 'link')
    this.checkName(bytes, 'link')
    if (this.typeOf(slot) === S_IFDIR) throw new FsError('EPERM', 'link', bytes.toString())
    const nlink = this.get32(slot, I.nlink)
    if (nlink === 0) throw new FsError('ENOENT', 'link', bytes.toString())
    if (nlink >= LINK_MAX) throw new FsError('EMLINK', 'link', bytes.toString())
    if (this.findEntry(dir, bytes) !== 0) throw new FsError('EEXIST', 'link', bytes.toString())
    return this.store.transaction(() => {
      const now = nowTimespec()
      addEntry(this.tables, dir, bytes, slot)
      this.set32(slot, I.nlink, nlink + 1)
      this.setTime(slot, 'ctime', now)
      this.setTime(dir, 'mtime', now)
      this.setTime(dir, 'ctime', now)
      return this.attrOf(slot)
    })
  }

  /** Remove a non-directory entry. */
  unlink(parent: number, name: Buffer | string): void {
    this.removeName(parent, toBytes(name), false)
  }

  /** Remove an empty directory. */
  rmdir(parent: number, name: Buffer | string): void {
    this.removeName(parent, toBytes(name), true)
  }

  private removeName(parent: number, bytes: Buffer, wantDir: boolean): void {
    const syscall = wantDir ? 'rmdir' : 'unlink'
    const dir = this.dirSlot(parent, syscall)
    if (bytes.length > NAME_MAX) throw new FsError('ENAMETOOLONG', syscall, bytes.toString())
    if (wantDir && bytes.length >= 1 && bytes.length <= 2 && bytes.every(c => c === 0x2E)) throw new FsError(bytes.length === 1 ? 'EINVAL' : 'ENOTEMPTY', syscall, bytes.toString())
    const d = this.findEntry(dir, bytes)
    if (d === 0) throw new FsError('ENOENT', syscall, bytes.toString())
    const child = this.entryChild(d)
    const isDir = this.typeOf(child) === S_IFDIR
    if (wantDir && !isDir) throw new FsError('ENOTDIR', syscall, bytes.toString())
    if (!wantDir && isDir) throw new FsError('EISDIR', syscall, bytes.toString())
    if (isDir && this.get32(child, I.dirHead) !== 0) throw new FsError('ENOTEMPTY', syscall, bytes.toString())
    this.store.transaction(() => {
      const now = nowTimespec()
      this.removeEntry(d)
      if (isDir) this.set32(dir, I.nlink, this.get32(dir, I.nlink) - 1)
      this.dropLink(child, now)
      this.setTime(dir, 'mtime', now)
      this.setTime(dir, 'ctime', now)
    }, true)
    this.releaseHostSpace()
  }

  /** Is `slot` the directory `ancestor` or inside it? */
  private isWithin(slot: number, ancestor: number): boolean {
    for (let cur = slot, depth = 0; ; depth++) {
      if (cur === ancestor) return true
      if (cur === ROOT_SLOT || depth > 100_000_000) return false
      cur = this.get32(cur, I.parent)
    }
  }

  /** rename(2), with RENAME_NOREPLACE and RENAME_EXCHANGE. */
  rename(oldParent: number, oldName: Buffer | string, newParent: number, newName: Buffer | string, flags = 0): void {
    const from = toBytes(oldName)
    const to = toBytes(newName)
    if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) !== 0 || flags === (RENAME_NOREPLACE | RENAME_EXCHANGE)) throw new FsError('EINVAL', 'rename')
    const srcDir = this.dirSlot(oldParent, 'rename')
    const dstDir = this.dirSlot(newParent, 'rename')
    if (from.length > NAME_MAX) throw new FsError('ENAMETOOLONG', 'rename', from.toString())
    this.checkName(to, 'rename')
    this.checkName(from, 'rename')
    const src = this.findEntry(srcDir, from)
    if (src === 0) throw new FsError('ENOENT', 'rename', from.toString())
    const child = this.entryChild(src)
    const childIsDir = this.typeOf(child) === S_IFDIR
    const dst = this.findEntry(dstDir, to)
    if (dst === src) return
    if (dst !== 0 && (flags & RENAME_NOREPLACE) !== 0) throw new FsError('EEXIST', 'rename', to.toString())
    if (dst === 0 && (flags & RENAME_EXCHANGE) !== 0) throw new FsError('ENOENT', 'rename', to.toString())
    if (childIsDir && srcDir !== dstDir && this.isWithin(dstDir, child)) throw new FsError('EINVAL', 'rename', to.toString())
    const victim = dst === 0 ? 0 : this.entryChild(dst)
    const victimIsDir = victim !== 0 && this.typeOf(victim) === S_IFDIR
    if ((flags & RENAME_EXCHANGE) !== 0) {
      if (victimIsDir && srcDir !== dstDir && this.isWithin(srcDir, victim)) throw new FsError('EINVAL', 'rename', from.toString())
      this.store.transaction(() => this.exchange(src, dst, srcDir, dstDir, child, victim))
      return
    }

    if (victim === child) return // two links to one inode: rename does nothing
    if (victim !== 0) {
      if (childIsDir && !victimIsDir) throw new FsError('ENOTDIR', 'rename', to.toString())
      if (!childIsDir && victimIsDir) throw new FsError('EISDIR', 'rename', to.toString())
      if (victimIsDir && this.get32(victim, I.dirHead) !== 0) throw new FsError('ENOTEMPTY', 'rename', to.toString())
    }

    this.store.transaction(() => {
      const now = nowTimespec()
      if (victim !== 0) {
        this.removeEntry(dst)
        if (victimIsDir) this.set32(dstDir, I.nlink, this.get32(dstDir, I.nlink) - 1)
        this.dropLink(victim, now)
      }

      this.removeEntry(src)
      addEntry(this.tables, dstDir, to, child)
      if (childIsDir && srcDir !== dstDir) {
        this.set32(child, I.parent, dstDir)
        this.set32(srcDir, I.nlink, this.get32(srcDir, I.nlink) - 1)
        this.set32(dstDir, I.nlink, this.get32(dstDir, I.nlink) + 1)
      }

      this.setTime(child, 'ctime', now)
      for (const dir of new Set([srcDir, dstDir])) {
        this.setTime(dir, 'mtime', now)
        this.setTime(dir, 'ctime', now)
      }
    })
  }

  private exchange(a: number, b: number, dirA: number, dirB: number, childA: number, childB: number): void {
    const now = nowTimespec()
    const f = this.entries.file
    for (const [d, child] of [[a, childB], [b, childA]]) {
      const o = this.entries.off(d)
      D.child.set(this.store, f, o, child)
      D.childGen.set(this.store, f, o, this.get32(child, I.gen))
      D.type.set(this.store, f, o, dirent.typeOf(this.typeOf(child)))
    }
    if (dirA !== dirB) {
      const aIsDir = this.typeOf(childA) === S_IFDIR
      const bIsDir = this.typeOf(childB) === S_IFDIR
      if (aIsDir) this.set32(childA, I.parent, dirB)
      if (bIsDir) this.set32(childB, I.parent, dirA)
      const delta = Number(aIsDir) - Number(bIsDir)
      if (delta !== 0) {
        this.set32(dirA, I.nlink, this.get32(dirA, I.nlink) - delta)
        this.set32(dirB, I.nlink, this.get32(dirB, I.nlink) + delta)
      }
    }

    for (const slot of new Set([childA, childB])) this.setTime(slot, 'ctime', now)
    for (const dir of new Set([dirA, dirB])) {
      this.setTime(dir, 'mtime', now)
      this.setTime(dir, 'ctime', now)
    }
  }

  /** chmod, chown, truncate, utimens in one call; ctime is always set. */
  setattr(ino: number, changes: SetAttr): Attr {
    if (this.readOnly) throw new FsError('EROFS', 'setattr')
    const slot = this.slotOf(ino, 'setattr')
    const resize = changes.size === undefined ? undefined : this.checkTruncate(slot, changes.size)
    const shrinks = changes.size !== undefined && changes.size < this.get64(slot, I.size)
    const attr = this.store.transaction(() => {
      const now = nowTimespec()
      if (resize !== undefined) resize(now)
      if (changes.mode !== undefined) this.set32(slot, I.mode, (this.get32(slot, I.mode) & S_IFMT) | (changes.mode & 0o7777))
      if (changes.uid !== undefined) this.set32(slot, I.uid, changes.uid)
      if (changes.gid !== undefined) this.set32(slot, I.gid, changes.gid)
      if (changes.atime !== undefined) this.setTime(slot, 'atime', changes.atime === 'now' ? now : changes.atime)
      if (changes.mtime !== undefined) this.setTime(slot, 'mtime', changes.mtime === 'now' ? now : changes.mtime)
      this.setTime(slot, 'ctime', now)
      return this.attrOf(slot)
    }, shrinks)
    if (shrinks) this.releaseHostSpace()
    return attr
  }

  /** Validate a truncate and prepare the content file; returns the change to make in the transaction. */
  private checkTruncate(slot: number, size: number): (now: Timespec) => void {
    const type = this.typeOf(slot)
    if (type === S_IFDIR) throw new FsError('EISDIR', 'truncate')
    if (type !== S_IFREG) throw new FsError('EINVAL', 'truncate')
    if (!Number.isSafeInteger(size) || size < 0) throw new FsError('EINVAL', 'truncate')
    if (size > FILE_SIZE_MAX) throw new FsError('EFBIG', 'truncate')
    const old = this.get64(slot, I.size)
    const dataId = this.get64(slot, I.dataId)
    if (size > old && dataId !== 0) this.prepareGrow(dataId, old)
    return now => {
      if (size === old) return
      this.set64(slot, I.size, size)
      this.setTime(slot, 'mtime', now)
      if (size < old && dataId !== 0) {
        this.store.onCommit(() => {
          this.pendingShrinks.set(dataId, Math.min(size, this.pendingShrinks.get(dataId) ?? size))
          this.contents.markUnclean(dataId)
        })
      }
    }
  }

  /** Write `data` at `pos`; returns data.length. Holes before `pos` read as zeros. */
  write(ino: number, data: Buffer, pos: number): number {
    if (this.readOnly) throw new FsError('EROFS', 'write')
    const slot = this.slotOf(ino, 'write')
    const type = this.typeOf(slot)
    if (type === S_IFDIR) throw new FsError('EISDIR', 'write')
    if (type !== S_IFREG) throw new FsError('EINVAL', 'write')
    if (!Number.isSafeInteger(pos) || pos < 0) throw new FsError('EINVAL', 'write')
    const end = pos + data.length
    if (end > FILE_SIZE_MAX) throw new FsError('EFBIG', 'write')
    if (data.length === 0) return 0
    let dataId = this.get64(slot, I.dataId)
    if (dataId === 0) {
      dataId = this.store.transaction(() => {
        const id = TC.nextDataId.get(this.node, CONTROL_OFFSET)
        TC.nextDataId.set(this.store, this.nodes.file, CONTROL_OFFSET, id + 1)
        this.set64(slot, I.dataId, id)
        return id
      })
    }

    const size = this.get64(slot, I.size)
    if (end > size) this.prepareGrow(dataId, size)
    try {
      this.contents.write(dataId, data, pos)
      this.store.transaction(() => {
        const now = nowTimespec()
        if (end > size) this.set64(slot, I.size, end)
        this.setTime(slot, 'mtime', now)
        this.setTime(slot, 'ctime', now)
      })
    } catch (error) {
      // Bytes written past the size by a write that failed must not reappear when the file grows.
      if (end > size) this.contents.markUnclean(dataId)
      if (error instanceof FsError) throw error
      const code = (error as NodeJS.ErrnoException).code
      throw new FsError(code === 'ENOSPC' || code === 'EDQUOT' ? 'ENOSPC' : code === 'EFBIG' ? 'EFBIG' : 'EIO', 'write')
    }

    return data.length
  }

  setxattr(ino: number, name: string, value: Buffer, flags = 0): void {
    const slot = this.slotOf(ino, 'setxattr')
    this.checkXattrName(name, 'setxattr')
    if (value.length > XATTR_SIZE_MAX) throw new FsError('E2BIG', 'setxattr', name)
    const all = this.xattrs(slot)
    const exists = all.has(name)
    if ((flags & XATTR_CREATE) !== 0 && exists) throw new FsError('EEXIST', 'setxattr', name)
    if ((flags & XATTR_REPLACE) !== 0 && !exists) throw new FsError('ENODATA', 'setxattr', name)
    all.set(name, value)
    this.storeXattrs(slot, all, 'setxattr')
  }

  removexattr(ino: number, name: string): void {
    const slot = this.slotOf(ino, 'removexattr')
    this.checkXattrName(name, 'removexattr')
    const all = this.xattrs(slot)
    if (!all.delete(name)) throw new FsError('ENODATA', 'removexattr', name)
    this.storeXattrs(slot, all, 'removexattr', true)
  }

  private checkXattrName(name: string, syscall: string): void {
    const len = Buffer.byteLength(name)
    if (len === 0) throw new FsError('EINVAL', syscall, name)
    if (len > 255) throw new FsError('ERANGE', syscall, name)
  }

  /** The inode's xattrs (codec/xattr-blob.ts), names decoded, values copied. */
  private xattrs(slot: number): Map<string, Buffer> {
    const unit = this.get32(slot, I.xattr)
    const out = new Map<string, Buffer>()
    if (unit === 0) return out
    for (const {name, value} of xattrBlob.decode(this.strings.bytes(unit))) out.set(name.toString('utf8'), Buffer.from(value))
    return out
  }

  private storeXattrs(slot: number, all: Map<string, Buffer>, syscall: string, freeing = false): void {
    const blob = xattrBlob.encode(all)
    if (blob.length > XATTR_BLOB_MAX) throw new FsError('ENOSPC', syscall)
    this.store.transaction(() => {
      const old = this.get32(slot, I.xattr)
      if (old !== 0) this.strings.release(old)
      this.set32(slot, I.xattr, blob.length === 0 ? 0 : this.strings.allocBlob(blob))
      this.setTime(slot, 'ctime', nowTimespec())
    }, freeing)
  }

  // ---- open handles ----------------------------------------------------------------------------

  /** An open handle holds the inode: unlinked, it lives on until the last release. */
  retain(ino: number): void {
    const slot = this.slotOf(ino, 'open')
    this.openRefs.set(slot, (this.openRefs.get(slot) ?? 0) + 1)
  }

  release(ino: number): void {
    const slot = inodeNumber.slotOf(ino)
    const refs = (this.openRefs.get(slot) ?? 0) - 1
    if (refs > 0) {
      this.openRefs.set(slot, refs)
      return
    }

    this.openRefs.delete(slot)
    if (!this.readOnly && slot < this.nodes.highWater && (this.get32(slot, I.flags) & IF_ORPHAN) !== 0 && this.get32(slot, I.gen) === inodeNumber.genOf(ino)) {
      this.store.transaction(() => {
        this.unlinkOrphan(slot)
        this.freeInode(slot)
      }, true)
      this.releaseHostSpace()
    }
  }

  // ---- figures ---------------------------------------------------------------------------------

  /** Volume.statfs: blocks of the host disk, inodes out of what nodes.dat can map. */
  statfs(): StatFs {
    return imageStatfs(this.dir, this.nodes.live)
  }

  /** Usage figures for statfs and stats. */
  usage(): {inodes: number; entries: number; names: number; nameBytes: number; reclaimableNameBytes: number; inodeCapacity: number} {
    return {
      inodes: this.nodes.live,
      entries: this.entries.live,
      names: this.strings.index.count,
      nameBytes: this.strings.liveBytes,
      reclaimableNameBytes: this.strings.freeBytes,
      inodeCapacity: Math.floor((this.nodes.file.size - this.nodes.off(0)) / this.nodes.recordSize) - 1,
    }
  }
}

