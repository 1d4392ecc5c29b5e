/**
 * The filesystem core: POSIX semantics over a Volume, with inode-based operations and open
 * handles, knowing nothing of FUSE. Adapters (fuse-native today, our own binding in issue 8)
 * translate requests into these calls and FsError codes into -errno.
 *
 * Every operation takes the caller's credentials; the permission rules are access.ts's.
 */
import fs from 'node:fs'

import {FsError} from '../storage/errors.js'
import {type Attr, type DirEntry, NAME_MAX, RENAME_EXCHANGE, RENAME_NOREPLACE, ROOT_INO, type SetAttr, type StatFs, type Timespec} from '../storage/types.js'
import type {Volume} from '../storage/volume.js'
import {type Cred, F_OK, ROOT_CRED, R_OK, W_OK, X_OK, inGroup, permits, stickyCheck, withoutSetId} from './access.js'
import {Listing} from './listing.js'

export type {StatFs} from '../storage/types.js'
export {type Cred, F_OK, ROOT_CRED, R_OK, W_OK, X_OK} from './access.js'

const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_IFLNK = 0o120000
const S_IFCHR = 0o020000
const S_IFBLK = 0o060000
const S_IFIFO = 0o010000
const S_IFSOCK = 0o140000
const S_ISUID = 0o4000
const S_ISGID = 0o2000
const S_ISVTX = 0o1000

const O_ACCMODE = 3
const O_RDONLY = 0
const O_WRONLY = 1
const O_TRUNC = fs.constants.O_TRUNC
const O_APPEND = fs.constants.O_APPEND
const O_EXCL = fs.constants.O_EXCL

export type TimeSet = Timespec | 'now' | 'omit'

export interface SetAttrRequest {
  mode?: number
  uid?: number
  gid?: number
  size?: number
  atime?: TimeSet
  mtime?: TimeSet
  /** Handle the request came through (ftruncate on a write handle needs no write permission). */
  fh?: number
  /** Clear set-user-ID, and set-group-ID where group execute is set, with the change (clearSetId). */
  clearSetId?: boolean
}

interface Handle {
  ino: number
  flags: number
  dir: boolean
  /** A directory handle's bulk listing, made at its first use. */
  listing?: Listing
  /** The kernel reads and writes the file itself (passthrough: `direct`). */
  direct?: boolean
}

export interface FileSystemOptions {
  readOnly?: boolean
  /**
   * Check permissions here (default). An adapter that mounts with `default_permissions` turns
   * this off: the kernel has already checked, with the caller's supplementary groups, which a
   * FUSE request does not carry. Credentials still decide the owner of new files.
   */
  checkPermissions?: boolean
}

export class FileSystem {
  private readonly handles = new Map<number, Handle>()
  private nextFh = 1
  readonly readOnly: boolean

  private readonly checkPermissions: boolean

  constructor(
    readonly volume: Volume,
    opts: FileSystemOptions = {},
  ) {
    this.readOnly = (opts.readOnly ?? false) || volume.readOnly
    this.checkPermissions = opts.checkPermissions ?? true
  }

  // ---- permissions -----------------------------------------------------------------------------

  /** The credentials permission checks use: the caller's, or root's when the kernel checks. */
  private who(cred: Cred): Cred {
    return this.checkPermissions ? cred : ROOT_CRED
  }

  private require(attr: Attr, mask: number, cred: Cred, syscall: string): void {
    if (!permits(attr, mask, cred)) throw new FsError('EACCES', syscall)
  }

  private writable(syscall: string): void {
    if (this.readOnly) throw new FsError('EROFS', syscall)
  }

  /** Search permission on the directory and, for changes, write permission. */
  private dirAccess(parent: number, cred: Cred, syscall: string, write: boolean): Attr {
    const attr = this.volume.getattr(parent)
    if ((attr.mode & S_IFMT) !== S_IFDIR) throw new FsError('ENOTDIR', syscall)
    this.require(attr, write ? W_OK | X_OK : X_OK, cred, syscall)
    return attr
  }

  // ---- lookups and attributes ------------------------------------------------------------------

  /** The attributes of `name` in `parent`, or ENOENT. */
  lookup(parent: number, name: Buffer | string, cred: Cred): Attr {
    cred = this.who(cred)
    this.dirAccess(parent, cred, 'lookup', false)
    const ino = this.volume.lookup(parent, name)
    if (ino === 0) throw new FsError('ENOENT', 'lookup', name.toString())
    return this.volume.getattr(ino)
  }

  /**
   * The inode of `name` in `parent`, or 0 if there is none; no permission checks (for adapters
   * whose kernel made them, and that answer a miss with a cacheable negative entry).
   */
  find(parent: number, name: Buffer | string): number {
    return this.volume.lookup(parent, name)
  }

  /**
   * Why a name find gave 0 for is not in `parent`, without making an Error (a lookup that misses
   * comes before every create): ENOTDIR or EACCES if that is the reason, else ENOENT.
   */
  missing(parent: number, cred: Cred): 'ENOENT' | 'ENOTDIR' | 'EACCES' {
    const attr = this.volume.getattr(parent)
    if ((attr.mode & S_IFMT) !== S_IFDIR) return 'ENOTDIR'
    return permits(attr, X_OK, this.who(cred)) ? 'ENOENT' : 'EACCES'
  }

  getattr(ino: number): Attr {
    return this.volume.getattr(ino)
  }

  access(ino: number, mask: number, cred: Cred): void {
    cred = this.who(cred)
    const attr = this.volume.getattr(ino)
    if ((mask & W_OK) !== 0 && this.readOnly) throw new FsError('EROFS', 'access')
    if (mask !== F_OK) this.require(attr, mask & 7, cred, 'access')
  }

  setattr(ino: number, req: SetAttrRequest, cred: Cred): Attr {
    cred = this.who(cred)
    this.writable('setattr')
    // Read only when a check needs it (root changing times or mode needs none), and only the owner,
    // group and mode: the volume's setattr takes in what the kernel wrote through passthrough.
    let read: Attr | undefined
    const current = (): Attr => (read ??= this.volume.getattr(ino, true))
    const isOwner = cred.uid === 0 || cred.uid === current().uid
    const changes: SetAttr = {}
    if (req.mode !== undefined) {
      if (!isOwner) throw new FsError('EPERM', 'chmod')
      let mode = req.mode & 0o7777
      if (cred.uid !== 0 && !inGroup(cred, req.gid ?? current().gid)) mode &= ~S_ISGID
      changes.mode = mode
    }

    if (req.uid !== undefined || req.gid !== undefined) {
      const attr = current()
      const uid = req.uid ?? attr.uid
      const gid = req.gid ?? attr.gid
      if (cred.uid !== 0) {
        if (uid !== attr.uid || cred.uid !== attr.uid) throw new FsError('EPERM', 'chown')
        if (gid !== attr.gid && !inGroup(cred, gid)) throw new FsError('EPERM', 'chown')
      }

      if (uid !== attr.uid) changes.uid = uid
      if (gid !== attr.gid) changes.gid = gid
      // A change of owner clears set-user-ID and set-group-ID of non-directories (as Linux does).
      if ((attr.mode & S_IFMT) !== S_IFDIR && (attr.mode & (S_ISUID | S_ISGID)) !== 0 && (uid !== attr.uid || gid !== attr.gid || cred.uid !== 0)) {
        changes.mode = withoutSetId(changes.mode ?? attr.mode & 0o7777, attr.mode)
      }
    }

    if (req.size !== undefined) {
      const handle = req.fh === undefined ? undefined : this.handles.get(req.fh)
      const viaWriteHandle = handle !== undefined && handle.ino === ino && (handle.flags & O_ACCMODE) !== O_RDONLY
      if (!viaWriteHandle) this.require(current(), W_OK, cred, 'truncate')
      changes.size = req.size
    }

    for (const which of ['atime', 'mtime'] as const) {
      const t = req[which]
      if (t === undefined || t === 'omit') continue
      // Setting the current time needs ownership or write permission; any other time, ownership.
      if (!isOwner && (t !== 'now' || !permits(current(), W_OK, cred))) throw new FsError(t === 'now' ? 'EACCES' : 'EPERM', 'utimensat')
      changes[which] = t
    }

    if (req.clearSetId === true) {
      const attr = current()
      const mode = withoutSetId(changes.mode ?? attr.mode & 0o7777, attr.mode)
      if (mode !== (changes.mode ?? attr.mode & 0o7777)) changes.mode = mode
    }

    return this.volume.setattr(ino, changes)
  }

  /**
   * What a write, a truncate or a chown does to a file's set-user-ID and set-group-ID bits where
   * the kernel leaves it to the filesystem (FUSE_HANDLE_KILLPRIV_V2): set-user-ID is cleared, and
   * set-group-ID where group execute is set (as Linux's should_remove_suid). Directories keep
   * theirs. True if the mode changed.
   */
  clearSetId(ino: number): boolean {
    if (this.readOnly) return false
    const attr = this.volume.getattr(ino)
    const mode = withoutSetId(attr.mode & 0o7777, attr.mode)
    if (mode === (attr.mode & 0o7777)) return false
    this.volume.setattr(ino, {mode})
    return true
  }

  readlink(ino: number): Buffer {
    return this.volume.readlink(ino)
  }

  // ---- creating and removing names -------------------------------------------------------------

  private checkName(name: Buffer | string, syscall: string): Buffer {
    const bytes = typeof name === 'string' ? Buffer.from(name) : name
    if (bytes.length > NAME_MAX) throw new FsError('ENAMETOOLONG', syscall, bytes.toString())
    return bytes
  }

  /**
   * New inodes belong to the caller; in a set-group-ID directory they take its group, new
   * directories inherit the bit, and a set-group-ID executable made there by a non-member of
   * the group loses it (Linux, inode_init_owner).
   */
  private newOwner(dir: Attr, cred: Cred, mode: number): {uid: number; gid: number; mode: number} {
    if ((dir.mode & S_ISGID) === 0) return {uid: cred.uid, gid: cred.gid, mode}
    if ((mode & S_IFMT) === S_IFDIR) return {uid: cred.uid, gid: dir.gid, mode: mode | S_ISGID}
    // When the kernel checks permissions it has stripped the bit already, knowing all groups.
    const who = this.who(cred)
    const strip = (mode & (S_ISGID | 0o010)) === (S_ISGID | 0o010) && who.uid !== 0 && !inGroup(who, dir.gid)
    return {uid: cred.uid, gid: dir.gid, mode: strip ? mode & ~S_ISGID : mode}
  }

  mknod(parent: number, name: Buffer | string, mode: number, rdev: number, cred: Cred): Attr {
    this.writable('mknod')
    const bytes = this.checkName(name, 'mknod')
    return this.makeNode(parent, this.dirAccess(parent, this.who(cred), 'mknod', true), bytes, mode, rdev, cred)
  }

  /** mknod in `parent`, whose attributes `dir` are checked already (search and write permission). */
  private makeNode(parent: number, dir: Attr, bytes: Buffer, mode: number, rdev: number, cred: Cred): Attr {
    const type = mode & S_IFMT
    if (type === S_IFCHR || type === S_IFBLK) {
      if (this.who(cred).uid !== 0) throw new FsError('EPERM', 'mknod', bytes.toString())
    } else if (type !== S_IFREG && type !== S_IFIFO && type !== S_IFSOCK && type !== 0) {
      throw new FsError('EINVAL', 'mknod', bytes.toString())
    }

    const owner = this.newOwner(dir, cred, (type === 0 ? S_IFREG : type) | (mode & 0o7777))
    return this.volume.mknod(parent, bytes, {mode: owner.mode, uid: owner.uid, gid: owner.gid, rdev})
  }

  mkdir(parent: number, name: Buffer | string, mode: number, cred: Cred): Attr {
    this.writable('mkdir')
    const bytes = this.checkName(name, 'mkdir')
    const dir = this.dirAccess(parent, this.who(cred), 'mkdir', true)
    const owner = this.newOwner(dir, cred, S_IFDIR | (mode & 0o7777))
    return this.volume.mknod(parent, bytes, {mode: owner.mode, uid: owner.uid, gid: owner.gid})
  }

  symlink(parent: number, name: Buffer | string, target: Buffer | string, cred: Cred): Attr {
    this.writable('symlink')
    const bytes = this.checkName(name, 'symlink')
    const dir = this.dirAccess(parent, this.who(cred), 'symlink', true)
    const owner = this.newOwner(dir, cred, S_IFLNK | 0o777)
    return this.volume.mknod(parent, bytes, {mode: owner.mode, uid: owner.uid, gid: owner.gid, target})
  }

  link(ino: number, parent: number, name: Buffer | string, cred: Cred): Attr {
    cred = this.who(cred)
    this.writable('link')
    const bytes = this.checkName(name, 'link')
    this.dirAccess(parent, cred, 'link', true)
    return this.volume.link(ino, parent, bytes)
  }

  unlink(parent: number, name: Buffer | string, cred: Cred): void {
    cred = this.who(cred)
    this.writable('unlink')
    const bytes = this.checkName(name, 'unlink')
    this.stickyName(parent, this.dirAccess(parent, cred, 'unlink', true), bytes, cred, 'unlink')
    this.volume.unlink(parent, bytes)
  }

  /**
   * The sticky-directory rule for removing or replacing `name` in `parent` (attributes `dir`). Only
   * a sticky directory needs the entry's owner: elsewhere the name is not looked up here, and the
   * volume's own lookup finds it (or ENOENT).
   */
  private stickyName(parent: number, dir: Attr, name: Buffer, cred: Cred, syscall: string): void {
    if ((dir.mode & S_ISVTX) === 0) return
    const child = this.volume.lookup(parent, name)
    if (child !== 0) stickyCheck(dir, this.volume.getattr(child), cred, syscall)
  }

  rmdir(parent: number, name: Buffer | string, cred: Cred): void {
    cred = this.who(cred)
    this.writable('rmdir')
    const bytes = this.checkName(name, 'rmdir')
    const dir = this.dirAccess(parent, cred, 'rmdir', true)
    const isDot = bytes.length === 1 && bytes[0] === 0x2e
    if (!isDot) this.stickyName(parent, dir, bytes, cred, 'rmdir')
    this.volume.rmdir(parent, bytes)
  }

  rename(oldParent: number, oldName: Buffer | string, newParent: number, newName: Buffer | string, flags: number, cred: Cred): void {
    cred = this.who(cred)
    this.writable('rename')
    const from = this.checkName(oldName, 'rename')
    const to = this.checkName(newName, 'rename')
    if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) !== 0) throw new FsError('EINVAL', 'rename')
    const src = this.dirAccess(oldParent, cred, 'rename', true)
    const dst = this.dirAccess(newParent, cred, 'rename', true)
    const child = this.volume.lookup(oldParent, from)
    if (child === 0) throw new FsError('ENOENT', 'rename', from.toString())
    const childAttr = this.volume.getattr(child)
    stickyCheck(src, childAttr, cred, 'rename')
    this.stickyName(newParent, dst, to, cred, 'rename')
    // Moving a directory to another parent rewrites its '..': that needs write permission on it.
    if ((childAttr.mode & S_IFMT) === S_IFDIR && oldParent !== newParent) this.require(childAttr, W_OK, cred, 'rename')
    this.volume.rename(oldParent, from, newParent, to, flags)
  }

  // ---- open files ------------------------------------------------------------------------------

  private addHandle(ino: number, flags: number, dir: boolean): number {
    const fh = this.nextFh++
    this.handles.set(fh, {ino, flags, dir})
    this.volume.retain(ino)
    return fh
  }

  private handle(fh: number, syscall: string): Handle {
    const h = this.handles.get(fh)
    if (h === undefined) throw new FsError('EBADF', syscall)
    return h
  }

  private openAccess(flags: number): number {
    const acc = flags & O_ACCMODE
    return acc === O_RDONLY ? R_OK : acc === O_WRONLY ? W_OK : R_OK | W_OK
  }

  /**
   * open(2) of inode `ino`. `prepare`, given the new handle before an O_TRUNC empties the file, may
   * refuse the open by throwing: the handle is then released and the file left as it was.
   */
  open(ino: number, flags: number, cred: Cred, prepare?: (fh: number, ino: number) => void): number {
    cred = this.who(cred)
    const attr = this.volume.getattr(ino)
    const type = attr.mode & S_IFMT
    const wantsWrite = (flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0
    if (type === S_IFDIR && wantsWrite) throw new FsError('EISDIR', 'open')
    if (type === S_IFLNK) throw new FsError('ELOOP', 'open')
    if (wantsWrite) this.writable('open')
    this.require(attr, this.openAccess(flags) | ((flags & O_TRUNC) !== 0 ? W_OK : 0), cred, 'open')
    // The truncation may fail too (a full log, a failed sync): the open fails, its handle goes.
    return this.openedOrReleased(this.addHandle(ino, flags, false), fh => {
      prepare?.(fh, ino)
      if ((flags & O_TRUNC) !== 0 && type === S_IFREG && attr.size > 0) this.volume.setattr(ino, {size: 0})
    })
  }

  /**
   * open(O_CREAT) of `name`: an existing file is opened (unless O_EXCL), a missing one created;
   * `created` says which. `prepare` as for open; a file it refuses after making it stays made.
   */
  create(
    parent: number,
    name: Buffer | string,
    mode: number,
    flags: number,
    cred: Cred,
    prepare?: (fh: number, ino: number) => void,
  ): {fh: number; attr: Attr; created: boolean} {
    const bytes = this.checkName(name, 'open')
    const dir = this.dirAccess(parent, this.who(cred), 'open', false)
    const existing = this.volume.lookup(parent, bytes)
    if (existing !== 0) {
      if ((flags & O_EXCL) !== 0) throw new FsError('EEXIST', 'open', bytes.toString())
      const fh = this.open(existing, flags, cred, prepare)
      return {fh, attr: this.volume.getattr(existing), created: false}
    }

    // Making the file needs write permission on the directory too (mknod), not a second look at it.
    this.writable('mknod')
    this.require(dir, W_OK | X_OK, this.who(cred), 'mknod')
    const attr = this.makeNode(parent, dir, bytes, S_IFREG | (mode & 0o7777), 0, cred)
    return {fh: this.openedOrReleased(this.addHandle(attr.ino, flags, false), fh => prepare?.(fh, attr.ino)), attr, created: true}
  }

  /** New handle `fh` once `then` has run on it; when `then` fails (throws), the handle is released. */
  private openedOrReleased(fh: number, then: (fh: number) => void): number {
    try {
      then(fh)
    } catch (error) {
      this.release(fh)
      throw error
    }

    return fh
  }

  /**
   * Hand the file of open handle `fh` to the kernel to read and write itself (FUSE passthrough):
   * a descriptor of its content file for the moment of the call, or undefined where the volume
   * cannot (a shared volume) or should not. Only regular files; not one with set-user-ID or
   * set-group-ID, whose writes must come here to clear those bits (clearSetId), unless `joining`:
   * the file is open through passthrough already (the kernel takes one way per inode).
   */
  direct(fh: number, joining = false): number | undefined {
    const h = this.handle(fh, 'open')
    if (this.volume.openDirect === undefined || h.dir || h.direct) return undefined
    const {mode} = this.volume.getattr(h.ino)
    if ((mode & S_IFMT) !== S_IFREG || (!joining && (mode & (S_ISUID | S_ISGID)) !== 0)) return undefined
    const fd = this.volume.openDirect(h.ino, !this.readOnly && (h.flags & O_ACCMODE) !== O_RDONLY)
    h.direct = fd !== undefined
    return fd
  }

  /** The kernel took no backing file for `fh` after all (direct): its reads and writes come here. */
  undirect(fh: number): void {
    const h = this.handle(fh, 'open')
    if (!h.direct) return
    h.direct = false
    this.volume.closeDirect?.(h.ino)
  }

  read(fh: number, buf: Buffer, pos: number): number {
    const h = this.handle(fh, 'read')
    if ((h.flags & O_ACCMODE) === O_WRONLY) throw new FsError('EBADF', 'read')
    return this.volume.read(h.ino, buf, pos)
  }

  write(fh: number, data: Buffer, pos: number): number {
    const h = this.handle(fh, 'write')
    if ((h.flags & O_ACCMODE) === O_RDONLY) throw new FsError('EBADF', 'write')
    this.writable('write')
    const at = (h.flags & O_APPEND) !== 0 ? this.volume.getattr(h.ino).size : pos
    return this.volume.write(h.ino, data, at)
  }

  /** fsync (`dataOnly`: fdatasync): durable on return (Volume.fsync). */
  fsync(fh: number, dataOnly = false): void {
    const h = this.handle(fh, 'fsync')
    if (!this.readOnly) this.volume.fsync(h.ino, dataOnly)
  }

  /** close(2) of one descriptor: nothing to flush (writes are already in the volume). */
  flush(fh: number): void {
    this.handle(fh, 'flush')
  }

  release(fh: number): void {
    const h = this.handle(fh, 'release')
    this.handles.delete(fh)
    h.listing?.close()
    try {
      if (h.direct) this.volume.closeDirect?.(h.ino)
    } finally {
      this.volume.release(h.ino)
    }
  }

  opendir(ino: number, cred: Cred): number {
    cred = this.who(cred)
    const attr = this.volume.getattr(ino)
    if ((attr.mode & S_IFMT) !== S_IFDIR) throw new FsError('ENOTDIR', 'opendir')
    this.require(attr, R_OK, cred, 'opendir')
    return this.addHandle(ino, O_RDONLY, true)
  }

  /** Entries of a directory, '.' and '..' first. */
  *readdir(ino: number): Generator<DirEntry> {
    yield {name: Buffer.from('.'), ino, type: S_IFDIR}
    yield {name: Buffer.from('..'), ino: ino === ROOT_INO ? ino : this.volume.lookup(ino, '..'), type: S_IFDIR}
    yield* this.volume.readdir(ino)
  }

  /** The bulk listing of a directory handle (one per handle, made at its first use). */
  /** The directory a directory handle is open on. */
  dirOf(fh: number): number {
    return this.handle(fh, 'readdir').ino
  }

  listing(fh: number): Listing {
    const h = this.handle(fh, 'readdir')
    if (!h.dir) throw new FsError('ENOTDIR', 'readdir')
    h.listing ??= new Listing(this.volume, this.volume.openDirCursor(h.ino))
    return h.listing
  }

  releasedir(fh: number): void {
    this.release(fh)
  }

  /** fsync of a directory: every metadata change durable (DURABILITY.md). */
  fsyncdir(): void {
    if (!this.readOnly) this.volume.sync(true)
  }

  /** Flush everything to stable storage (sync(2), unmount). */
  syncAll(): void {
    if (!this.readOnly) this.volume.sync()
  }

  /** The host work syncAll would wait for, started in the background (Volume.writeBackAhead). */
  async writeBackAhead(): Promise<void> {
    if (!this.readOnly) await this.volume.writeBackAhead?.()
  }

  // ---- extended attributes ---------------------------------------------------------------------

  private xattrAccess(ino: number, name: string, mask: number, cred: Cred, syscall: string): void {
    if (name.startsWith('trusted.') && cred.uid !== 0) throw new FsError(mask === R_OK ? 'ENODATA' : 'EPERM', syscall, name)
    if (name.startsWith('system.')) throw new FsError('EOPNOTSUPP', syscall, name)
    if (name.startsWith('user.')) {
      const attr = this.volume.getattr(ino)
      const type = attr.mode & S_IFMT
      if (type !== S_IFREG && type !== S_IFDIR) throw new FsError(mask === R_OK ? 'ENODATA' : 'EPERM', syscall, name)
      // A sticky directory's user. attributes are its owner's to change (Linux, xattr_permission).
      if (type === S_IFDIR && (attr.mode & S_ISVTX) !== 0 && mask !== R_OK && cred.uid !== 0 && cred.uid !== attr.uid) {
        throw new FsError('EPERM', syscall, name)
      }

      this.require(attr, mask, cred, syscall)
    } else if (!name.startsWith('security.') && !name.startsWith('trusted.')) {
      throw new FsError('EOPNOTSUPP', syscall, name)
    }
  }

  getxattr(ino: number, name: string, cred: Cred): Buffer {
    return this.findxattr(ino, name, cred) ?? this.volume.getxattr(ino, name)
  }

  /**
   * The value of xattr `name`, or undefined where getxattr would fail with ENODATA, without making
   * an Error: the kernel asks for security.capability before every write (to know whether the
   * write must clear it), and almost every file has none.
   */
  findxattr(ino: number, name: string, cred: Cred): Buffer | undefined {
    cred = this.who(cred)
    this.xattrAccess(ino, name, R_OK, cred, 'getxattr')
    return this.volume.listxattr(ino).includes(name) ? this.volume.getxattr(ino, name) : undefined
  }

  listxattr(ino: number, cred: Cred): string[] {
    cred = this.who(cred)
    const all = this.volume.listxattr(ino)
    return cred.uid === 0 ? all : all.filter(name => !name.startsWith('trusted.'))
  }

  setxattr(ino: number, name: string, value: Buffer, flags: number, cred: Cred): void {
    cred = this.who(cred)
    this.writable('setxattr')
    this.xattrAccess(ino, name, W_OK, cred, 'setxattr')
    if (name.startsWith('security.') || name.startsWith('trusted.')) {
      if (cred.uid !== 0 && cred.uid !== this.volume.getattr(ino).uid) throw new FsError('EPERM', 'setxattr', name)
    }

    this.volume.setxattr(ino, name, value, flags)
  }

  removexattr(ino: number, name: string, cred: Cred): void {
    cred = this.who(cred)
    this.writable('removexattr')
    this.xattrAccess(ino, name, W_OK, cred, 'removexattr')
    this.volume.removexattr(ino, name)
  }

  // ---- the filesystem as a whole ---------------------------------------------------------------

  /** Block and inode figures of the volume. */
  statfs(): StatFs {
    return this.volume.statfs()
  }

  /** Open handles (for unmount and tests). */
  get openHandles(): number {
    return this.handles.size
  }
}
