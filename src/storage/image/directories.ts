/**
 * Directories of the image: entries (find, add through dirent.ts, remove, names), lookups and
 * listings, the cursors that stay valid while entries come and go, and the changes to the tree
 * (mknod, link, unlink, rmdir, rename and exchange). Every change keeps the tree valid: no cycles,
 * no entry without an inode, link counts right. Stands on the inode, file data and orphan layers.
 */
import {type EntryTables, addEntry} from '../dirent.js'
import {FsError} from '../errors.js'
import {DIRENT, INLINE_NAME, S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT} from '../format.js'
import type {LinearHash} from '../linear-hash.js'
import type {Store} from '../store.js'
import type {StringHeap} from '../string-heap.js'
import type {RecordTable} from '../table.js'
import {fnv1a} from '../codec/checksum.js'
import * as dirent from '../codec/dirent.js'
import {direntFields as D} from '../codec/dirent.js'
import {inodeFields as I, isValidType} from '../codec/inode.js'
import * as inodeNumber from '../codec/inode-number.js'
import {ROOT_SLOT} from '../codec/inode-number.js'
import {type Attr, type DirCursor, type DirEntry, type DirentSink, NAME_MAX, type NodeSpec, PATH_MAX, RENAME_EXCHANGE, RENAME_NOREPLACE} from '../types.js'
import type {FileData} from './file-data.js'
import {type Inodes, nowTimespec} from './inodes.js'
import type {Orphans} from './orphans.js'

/** Hard links per inode (ext4's limit). */
export const LINK_MAX = 65000

/** The image's DirCursor: moved past an entry removed under it (removeEntry). */
export interface ImageDirCursor extends DirCursor {
  /** The directory's inode slot (the key of open cursors). */
  readonly slot: number
  /** Entry record of the next entry to list, 0 at the end. */
  next: number
}

export function toBytes(name: Buffer | string): Buffer {
  return typeof name === 'string' ? Buffer.from(name) : name
}

export function checkName(name: Buffer, syscall: string): void {
  if (name.length > NAME_MAX) throw new FsError('ENAMETOOLONG', syscall, name.toString())
  if (name.length === 0 || name.includes(0x2f) || name.includes(0) || (name[0] === 0x2e && (name.length === 1 || (name.length === 2 && name[1] === 0x2e)))) {
    throw new FsError('EINVAL', syscall, name.toString())
  }
}

export class Directories {
  private readonly store: Store
  private readonly entries: RecordTable
  private readonly entryIndex: LinearHash
  private readonly strings: StringHeap
  /** Open listing cursors per directory slot (see DirCursor). */
  private readonly cursors = new Map<number, Set<ImageDirCursor>>()

  constructor(
    /** What addEntry (src/storage/dirent.ts) writes through: built once, not per entry. */
    private readonly tables: EntryTables,
    private readonly inodes: Inodes,
    private readonly orphans: Orphans,
    private readonly data: FileData,
  ) {
    this.store = tables.store
    this.entries = tables.entries
    this.entryIndex = tables.entryIndex
    this.strings = tables.strings
  }

  private get ent(): Buffer {
    return this.entries.file.buf
  }

  // ---- entries ---------------------------------------------------------------------------------

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
    if (prev === 0) this.inodes.set32(dir, I.dirHead, next)
    else D.next.set(this.store, f, this.entries.off(prev), next)
    if (next !== 0) D.prev.set(this.store, f, this.entries.off(next), prev)
    this.inodes.set64(dir, I.size, this.inodes.get64(dir, I.size) - 1)
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

  // ---- lookups and listings --------------------------------------------------------------------

  /** Inode number of `name` in directory `parent`, or 0 if there is none. '.' and '..' work. */
  lookup(parent: number, name: Buffer | string): number {
    const dir = this.inodes.dirSlot(parent, 'lookup')
    const bytes = toBytes(name)
    if (bytes.length === 1 && bytes[0] === 0x2e) return this.inodes.inoOf(dir)
    if (bytes.length === 2 && bytes[0] === 0x2e && bytes[1] === 0x2e) return this.inodes.inoOf(this.inodes.get32(dir, I.parent))
    if (bytes.length > NAME_MAX) throw new FsError('ENAMETOOLONG', 'lookup', bytes.toString())
    const d = this.findEntry(dir, bytes)
    return d === 0 ? 0 : this.entryIno(d)
  }

  /** Entries of a directory (not '.' and '..'), newest first; names are copies. */
  *readdir(ino: number): Generator<DirEntry> {
    const dir = this.inodes.dirSlot(ino, 'readdir')
    for (let d = this.inodes.get32(dir, I.dirHead); d !== 0; ) {
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
    const dir = this.inodes.dirSlot(ino, 'readdir')
    const c: ImageDirCursor = {ino, slot: dir, next: this.inodes.get32(dir, I.dirHead)}
    let open = this.cursors.get(dir)
    if (open === undefined) this.cursors.set(dir, (open = new Set()))
    open.add(c)
    return c
  }

  /** Back to the start of the listing (a directory removed meanwhile lists nothing). */
  rewindDirCursor(c: ImageDirCursor): void {
    const slot = this.inodes.liveSlot(c.ino)
    c.next = slot === 0 ? 0 : this.inodes.get32(slot, I.dirHead)
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

  // ---- changes ---------------------------------------------------------------------------------

  /** Create a file, directory, symlink, FIFO, socket or device node named `name` in `parent`. */
  mknod(parent: number, name: Buffer | string, spec: NodeSpec): Attr {
    const inodes = this.inodes
    const bytes = toBytes(name)
    const dir = inodes.dirSlot(parent, 'mknod')
    checkName(bytes, 'mknod')
    const type = spec.mode & S_IFMT
    if (!isValidType(type)) throw new FsError('EINVAL', 'mknod', bytes.toString())
    let target: Buffer | undefined
    if (type === S_IFLNK) {
      target = toBytes(spec.target ?? '')
      if (target.length === 0) throw new FsError('ENOENT', 'symlink', bytes.toString())
      if (target.length > PATH_MAX) throw new FsError('ENAMETOOLONG', 'symlink', bytes.toString())
    }

    if (this.findEntry(dir, bytes) !== 0) throw new FsError('EEXIST', 'mknod', bytes.toString())
    if (type === S_IFDIR && inodes.get32(dir, I.nlink) >= LINK_MAX) throw new FsError('EMLINK', 'mkdir', bytes.toString())
    return this.store.transaction(() => {
      const now = nowTimespec()
      const slot = inodes.nodes.alloc()
      inodes.init(slot, spec.mode, spec.uid, spec.gid, type === S_IFCHR || type === S_IFBLK ? (spec.rdev ?? 0) : 0, now)
      if (type === S_IFDIR) {
        inodes.set32(slot, I.nlink, 2)
        inodes.set32(slot, I.parent, dir)
        inodes.addLinks(dir, 1)
      } else if (target !== undefined) {
        inodes.set32(slot, I.target, this.strings.intern(target))
        inodes.set64(slot, I.size, target.length)
      }

      addEntry(this.tables, dir, bytes, slot)
      inodes.touchDir(dir, now)
      return inodes.attrOf(slot)
    })
  }

  /** A new name for an existing non-directory inode. */
  link(ino: number, parent: number, name: Buffer | string): Attr {
    const inodes = this.inodes
    const bytes = toBytes(name)
    const slot = inodes.slotOf(ino, 'link')
    const dir = inodes.dirSlot(parent, 'link')
    checkName(bytes, 'link')
    if (inodes.typeOf(slot) === S_IFDIR) throw new FsError('EPERM', 'link', bytes.toString())
    const nlink = inodes.get32(slot, I.nlink)
    if (nlink === 0) throw new FsError('ENOENT', 'link', bytes.toString())
    if (nlink >= LINK_MAX) throw new FsError('EMLINK', 'link', bytes.toString())
    if (this.findEntry(dir, bytes) !== 0) throw new FsError('EEXIST', 'link', bytes.toString())
    return this.store.transaction(() => {
      const now = nowTimespec()
      addEntry(this.tables, dir, bytes, slot)
      inodes.set32(slot, I.nlink, nlink + 1)
      inodes.setTime(slot, 'ctime', now)
      inodes.touchDir(dir, now)
      return inodes.attrOf(slot)
    })
  }

  /** unlink (wantDir false) or rmdir (true) of `name` in `parent`. */
  removeName(parent: number, name: Buffer | string, wantDir: boolean): void {
    const inodes = this.inodes
    const bytes = toBytes(name)
    const syscall = wantDir ? 'rmdir' : 'unlink'
    const dir = inodes.dirSlot(parent, syscall)
    if (bytes.length > NAME_MAX) throw new FsError('ENAMETOOLONG', syscall, bytes.toString())
    if (wantDir && bytes.length >= 1 && bytes.length <= 2 && bytes.every(c => c === 0x2e))
      throw new FsError(bytes.length === 1 ? 'EINVAL' : 'ENOTEMPTY', syscall, bytes.toString())
    const d = this.findEntry(dir, bytes)
    if (d === 0) throw new FsError('ENOENT', syscall, bytes.toString())
    const child = this.entryChild(d)
    const isDir = inodes.typeOf(child) === S_IFDIR
    if (wantDir && !isDir) throw new FsError('ENOTDIR', syscall, bytes.toString())
    if (!wantDir && isDir) throw new FsError('EISDIR', syscall, bytes.toString())
    if (isDir && inodes.get32(child, I.dirHead) !== 0) throw new FsError('ENOTEMPTY', syscall, bytes.toString())
    this.store.transaction(() => {
      const now = nowTimespec()
      this.removeEntry(d)
      if (isDir) inodes.addLinks(dir, -1)
      this.orphans.dropLink(child, now)
      inodes.touchDir(dir, now)
    }, true)
    this.data.releaseHostSpace()
  }

  /** Is `slot` the directory `ancestor` or inside it? */
  private isWithin(slot: number, ancestor: number): boolean {
    for (let cur = slot, depth = 0; ; depth++) {
      if (cur === ancestor) return true
      if (cur === ROOT_SLOT || depth > 100_000_000) return false
      cur = this.inodes.get32(cur, I.parent)
    }
  }

  /** rename(2), with RENAME_NOREPLACE and RENAME_EXCHANGE. */
  rename(oldParent: number, oldName: Buffer | string, newParent: number, newName: Buffer | string, flags = 0): void {
    const inodes = this.inodes
    const from = toBytes(oldName)
    const to = toBytes(newName)
    if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) !== 0 || flags === (RENAME_NOREPLACE | RENAME_EXCHANGE)) throw new FsError('EINVAL', 'rename')
    const srcDir = inodes.dirSlot(oldParent, 'rename')
    const dstDir = inodes.dirSlot(newParent, 'rename')
    if (from.length > NAME_MAX) throw new FsError('ENAMETOOLONG', 'rename', from.toString())
    checkName(to, 'rename')
    checkName(from, 'rename')
    const src = this.findEntry(srcDir, from)
    if (src === 0) throw new FsError('ENOENT', 'rename', from.toString())
    const child = this.entryChild(src)
    const childIsDir = inodes.typeOf(child) === S_IFDIR
    const dst = this.findEntry(dstDir, to)
    if (dst === src) return
    if (dst !== 0 && (flags & RENAME_NOREPLACE) !== 0) throw new FsError('EEXIST', 'rename', to.toString())
    if (dst === 0 && (flags & RENAME_EXCHANGE) !== 0) throw new FsError('ENOENT', 'rename', to.toString())
    if (childIsDir && srcDir !== dstDir && this.isWithin(dstDir, child)) throw new FsError('EINVAL', 'rename', to.toString())
    const victim = dst === 0 ? 0 : this.entryChild(dst)
    const victimIsDir = victim !== 0 && inodes.typeOf(victim) === S_IFDIR
    if ((flags & RENAME_EXCHANGE) !== 0) {
      if (victimIsDir && srcDir !== dstDir && this.isWithin(srcDir, victim)) throw new FsError('EINVAL', 'rename', from.toString())
      this.store.transaction(() => this.exchange(src, dst, srcDir, dstDir, child, victim))
      return
    }

    if (victim === child) return // two links to one inode: rename does nothing
    if (victim !== 0) {
      if (childIsDir && !victimIsDir) throw new FsError('ENOTDIR', 'rename', to.toString())
      if (!childIsDir && victimIsDir) throw new FsError('EISDIR', 'rename', to.toString())
      if (victimIsDir && inodes.get32(victim, I.dirHead) !== 0) throw new FsError('ENOTEMPTY', 'rename', to.toString())
    }

    this.store.transaction(() => {
      const now = nowTimespec()
      if (victim !== 0) {
        this.removeEntry(dst)
        if (victimIsDir) inodes.addLinks(dstDir, -1)
        this.orphans.dropLink(victim, now)
      }

      this.removeEntry(src)
      addEntry(this.tables, dstDir, to, child)
      if (childIsDir && srcDir !== dstDir) {
        inodes.set32(child, I.parent, dstDir)
        inodes.addLinks(srcDir, -1)
        inodes.addLinks(dstDir, 1)
      }

      inodes.setTime(child, 'ctime', now)
      inodes.touchDir(srcDir, now)
      if (dstDir !== srcDir) inodes.touchDir(dstDir, now)
    })
  }

  private exchange(a: number, b: number, dirA: number, dirB: number, childA: number, childB: number): void {
    const inodes = this.inodes
    const now = nowTimespec()
    const f = this.entries.file
    for (const [d, child] of [
      [a, childB],
      [b, childA],
    ]) {
      const o = this.entries.off(d)
      D.child.set(this.store, f, o, child)
      D.childGen.set(this.store, f, o, inodes.get32(child, I.gen))
      D.type.set(this.store, f, o, dirent.typeOf(inodes.typeOf(child)))
    }
    if (dirA !== dirB) {
      const aIsDir = inodes.typeOf(childA) === S_IFDIR
      const bIsDir = inodes.typeOf(childB) === S_IFDIR
      if (aIsDir) inodes.set32(childA, I.parent, dirB)
      if (bIsDir) inodes.set32(childB, I.parent, dirA)
      const delta = Number(aIsDir) - Number(bIsDir)
      if (delta !== 0) {
        inodes.addLinks(dirA, -delta)
        inodes.addLinks(dirB, delta)
      }
    }

    inodes.setTime(childA, 'ctime', now)
    if (childB !== childA) inodes.setTime(childB, 'ctime', now)
    inodes.touchDir(dirA, now)
    if (dirB !== dirA) inodes.touchDir(dirB, now)
  }
}
