/**
 * The storage interface: everything the filesystem core (src/vfs/) asks of storage. The mmap'd,
 * write-ahead-logged image (src/storage/image.ts) is its first implementation; PgVolume
 * (src/storage/pg/volume.ts), shared by many hosts through PostgreSQL, the second. docs/STORAGE-INTERFACE.md gives each
 * method's contract and what every implementation must guarantee; test/interface/volume.suite.ts
 * checks it on any implementation.
 *
 * The interface speaks in inode numbers, names (bytes) and plain values only: no mapped buffer,
 * record number or other internal of a backend crosses it.
 *
 * - Inode numbers are `number`s: safe integers from 1 to 2^53 - 1 (the kernel's are 64-bit; we
 *   use the part a double holds exactly). 0 means "none". ROOT_INO (1) is the root directory.
 *   A number is stable for the life of its inode, across close and reopen; once freed, it is
 *   not given to another inode for a long time (the kernel may still hold it).
 * - Every method is synchronous and atomic: it happens whole or not at all, and an error leaves
 *   nothing of it behind (but for bytes a failed write may have written: its size stays). Errors
 *   are FsError with an errno code (ENOENT, EEXIST, ...); a broken or unreachable store is EIO
 *   (or an ImageError for a damaged image).
 * - A change is visible to every later call as soon as the method returns; it is durable (it
 *   survives a crash or a power loss) once sync(), or fsync() of the inode, has returned.
 */
import type {Attr, DirCursor, DirEntry, DirentSink, NodeSpec, SetAttr, StatFs} from './types.js'

export interface Volume {
  /** Opened read-only: every change fails with EROFS (fsync and sync do nothing). */
  readonly readOnly: boolean

  // ---- names and attributes ------------------------------------------------------------------

  /**
   * The inode `name` names in directory `parent`, or 0 if none does. '.' is `parent`, '..' its
   * parent (the root's is the root). ENOENT, ENOTDIR for `parent`; ENAMETOOLONG past NAME_MAX.
   */
  lookup(parent: number, name: Buffer | string): number

  /**
   * The attributes of a live inode (one that is linked, or unlinked but retained); else ENOENT.
   * `ownerOnly`: the caller reads only the owner, group and mode (a permission check), so a volume
   * may skip what it does to make the size, times and block count current (an image's fstat of a
   * file the kernel writes through passthrough): those may then be stale.
   */
  getattr(ino: number, ownerOnly?: boolean): Attr

  /** The target of a symlink; EINVAL for any other type. */
  readlink(ino: number): Buffer

  /**
   * Create an inode of the type in `spec.mode` (regular file, directory, symlink with
   * `spec.target`, FIFO, socket, character or block device with `spec.rdev`) named `name` in
   * `parent`; returns its attributes (a, m and ctime now; the parent's m and ctime too). EEXIST,
   * EINVAL (a name that is empty, '.', '..', or holds '/' or NUL; an unknown type), ENAMETOOLONG,
   * EMLINK, ENOSPC. Permissions and ownership rules are the caller's: the volume stores `spec`.
   */
  mknod(parent: number, name: Buffer | string, spec: NodeSpec): Attr

  /** Another name for a non-directory (EPERM for a directory); nlink + 1. EEXIST, EMLINK. */
  link(ino: number, parent: number, name: Buffer | string): Attr

  /**
   * Remove a non-directory's name (EISDIR for a directory); nlink - 1. The inode goes with its
   * last link, unless retained (see retain).
   */
  unlink(parent: number, name: Buffer | string): void

  /** Remove an empty directory: ENOTDIR, ENOTEMPTY; EINVAL for '.'. */
  rmdir(parent: number, name: Buffer | string): void

  /**
   * rename(2): move `oldName` in `oldParent` to `newName` in `newParent`, replacing what is there
   * (a non-directory by a non-directory, an empty directory by a directory). `flags`:
   * RENAME_NOREPLACE (EEXIST if the new name exists) or RENAME_EXCHANGE (swap the two; ENOENT if
   * the new name does not exist). EINVAL for both flags or for moving a directory into itself;
   * ENOTDIR, EISDIR, ENOTEMPTY as rename(2). Two names of one inode: nothing happens.
   */
  rename(oldParent: number, oldName: Buffer | string, newParent: number, newName: Buffer | string, flags?: number): void

  /**
   * chmod (permission bits only: the type stays), chown, truncate (`size`: regular files only,
   * EISDIR, EINVAL otherwise; EFBIG past FILE_SIZE_MAX) and utimens, all at once; ctime is set to
   * now, and a size change sets mtime. Returns the attributes after.
   */
  setattr(ino: number, changes: SetAttr): Attr

  // ---- contents ------------------------------------------------------------------------------

  /**
   * Read up to buf.length bytes of a regular file from `pos` into buf; returns how many (0 at or
   * past the end). Bytes never written (holes) read as zeros. EISDIR, EINVAL for other types.
   */
  read(ino: number, buf: Buffer, pos: number): number

  /**
   * Write all of `data` at `pos` of a regular file; returns data.length. Writing past the end
   * grows the file, the gap reading as zeros. Sets m and ctime. EFBIG, ENOSPC, EIO.
   */
  write(ino: number, data: Buffer, pos: number): number

  // ---- extended attributes -------------------------------------------------------------------

  /** The value of xattr `name`, or ENODATA. Namespaces and their permissions are the caller's. */
  getxattr(ino: number, name: string): Buffer

  /** The names of an inode's xattrs. */
  listxattr(ino: number): string[]

  /**
   * Set xattr `name`. `flags`: XATTR_CREATE (EEXIST if it exists) or XATTR_REPLACE (ENODATA if it
   * does not). EINVAL for an empty name, ERANGE past 255 bytes, E2BIG for a value past
   * XATTR_SIZE_MAX, ENOSPC when the inode's xattrs would not fit. Sets ctime.
   */
  setxattr(ino: number, name: string, value: Buffer, flags?: number): void

  /** Remove xattr `name`, or ENODATA. Sets ctime. */
  removexattr(ino: number, name: string): void

  // ---- directory listings --------------------------------------------------------------------

  /**
   * The entries of a directory, without '.' and '..', in the volume's order. For a listing while
   * the directory does not change; one that runs while names come and go uses a cursor.
   */
  readdir(ino: number): Iterable<DirEntry>

  /**
   * A cursor at the start of a directory's listing (readdir's order). Until closeDirCursor, it
   * lists every entry that exists from its opening to the end of the listing exactly once,
   * whatever is created, removed or renamed meanwhile; entries removed before it reaches them
   * are not listed; entries created meanwhile may or may not be.
   */
  openDirCursor(ino: number): DirCursor

  /**
   * Copy up to `max` entries from the cursor's position into `sink`, from the sink's index `at`
   * on; the cursor does not move. Returns how many, fewer at the end of the listing or when the
   * sink is full.
   */
  peekDirents(cursor: DirCursor, sink: DirentSink, at: number, max: number): number

  /** Move the cursor `count` entries on; returns how many it moved (fewer at the end). */
  skipDirents(cursor: DirCursor, count: number): number

  /** Back to the start: the listing shows the directory as it is now (empty if it is gone). */
  rewindDirCursor(cursor: DirCursor): void

  closeDirCursor(cursor: DirCursor): void

  // ---- open handles --------------------------------------------------------------------------

  /**
   * An open handle holds the inode (ENOENT if it is not live): when its last name goes, it lives
   * on, with nlink 0, readable and writable, until the matching release. An inode that a crash
   * left unlinked and held is freed when the volume is next opened.
   */
  retain(ino: number): void

  /** The end of one retain; the last frees an inode that has no name left. */
  release(ino: number): void

  /**
   * Kernel passthrough (embedded images only): a descriptor of regular file `ino`'s content file,
   * valid for the moment of the call, which the kernel then reads and, with `write`, writes itself
   * until the matching closeDirect. Meanwhile the file's size and mtime are taken from the host
   * file whenever they are asked for, and a crash of the server loses none of those writes.
   * Undefined (nothing opened) where the volume serves the file itself.
   */
  openDirect?(ino: number, write: boolean): number | undefined
  closeDirect?(ino: number): void

  // ---- transactions and durability -----------------------------------------------------------

  /**
   * Run `fn`, whose calls on this volume then take effect as one: all of them, or (if `fn`
   * throws) none, for every other caller and after a crash. Nested calls join the outer one. An
   * error must leave `fn` (an operation that failed inside may have left part of itself until
   * the whole is undone). Atomic for names, attributes, sizes and xattrs; bytes that a write
   * inside a transaction that is undone wrote within the old size may stay. A file that shrinks
   * inside cannot grow again before the commit (EINVAL). No sync, fsync or close inside. EROFS on
   * a read-only volume. Deletes inside do not get the reserve a lone delete has on a full host.
   */
  transaction<T>(fn: () => T): T

  /**
   * Make an inode's contents and every change acknowledged so far durable (fsync(2)). `dataOnly`
   * (fdatasync(2)): its contents and what is needed to read them back (its size) at least.
   */
  fsync(ino: number, dataOnly?: boolean): void

  /**
   * Make every change acknowledged so far durable (sync(2), the commit interval). `metadataOnly`
   * (fsyncdir): every metadata change at least, file contents only where the metadata needs them.
   */
  sync(metadataOnly?: boolean): void

  /**
   * Optional: start, in the background, the host work the next sync would wait for, so that it
   * holds the server for less; resolves when that is done (never rejects). It changes nothing of
   * what sync promises or does, except that an error of the host it meets fails the syncs after it.
   */
  writeBackAhead?(): Promise<void>

  // ---- the volume as a whole -----------------------------------------------------------------

  /** Block and inode figures for statfs(2); namemax is NAME_MAX. ffree drops by one per inode. */
  statfs(): StatFs

  /**
   * Optional: drop what the volume holds in memory and can read again (clean pages of mappings,
   * caches), to bound a server's resident set. Returns how much it dropped, in its own units.
   */
  releaseCleanPages?(): number

  /**
   * Optional, for a volume others change too (a shared one): report their changes as they commit,
   * for the mount to drop from the kernel's caches, until the returned function is called. Changes
   * made through this volume are not reported. Resolves once the volume listens.
   */
  watch?(sink: ChangeSink, log?: (line: string) => void): Promise<() => Promise<void>>

  /** Make everything durable and end the session (a clean shutdown). The volume is unusable after. */
  close(): void
}

/** Where Volume.watch reports changes made elsewhere. */
export interface ChangeSink {
  /** The inode's attributes changed; with `data`, its contents too. */
  inode(ino: number, data: boolean): void
  /** The name in directory `parent` names another inode now, or none. */
  entry(parent: number, name: Buffer): void
  /** Changes may have gone unreported (the watch was cut off for a while): anything cached may be stale. */
  missed(): void
}
