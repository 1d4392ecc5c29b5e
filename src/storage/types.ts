/**
 * Public types of the storage layer. Inode numbers are plain numbers, safe integers (at most
 * 2^53 - 1; the image's are slot + generation * 2^32), never 0: see docs/STORAGE-INTERFACE.md.
 */

export interface Timespec {
  sec: number
  nsec: number
}

const NS_PER_SEC = 1_000_000_000n

/**
 * A time in nanoseconds since the epoch (a BigInt Stats' mtimeNs) as a Timespec, floored as the
 * kernel's: a time before 1970 has a negative second and nanoseconds from 0.
 */
export function timespecOfNs(ns: bigint): Timespec {
  let sec = ns / NS_PER_SEC
  let nsec = ns % NS_PER_SEC
  if (nsec < 0n) {
    sec--
    nsec += NS_PER_SEC
  }

  return {sec: Number(sec), nsec: Number(nsec)}
}

/** What getattr returns; field names follow struct stat. */
export interface Attr {
  ino: number
  mode: number
  nlink: number
  uid: number
  gid: number
  rdev: number
  size: number
  /** 512-byte blocks allocated to the contents. */
  blocks: number
  atime: Timespec
  mtime: Timespec
  ctime: Timespec
}

export interface DirEntry {
  name: Buffer
  ino: number
  /** File type bits (mode & S_IFMT) of the child. */
  type: number
}

/**
 * Where a directory listing is copied in bulk (Volume.peekDirents): entry i's name is
 * names[ends[i - 1], ends[i]) (from 0 for the first), its child's inode number inos[i] and file
 * type bits types[i]. Made once and reused: a listing allocates nothing per entry.
 */
export interface DirentSink {
  names: Buffer
  ends: Uint32Array
  inos: Float64Array
  types: Uint32Array
}

/** A sink for up to `capacity` entries (room for that many names of NAME_MAX bytes). */
export function direntSink(capacity: number): DirentSink {
  return {
    names: Buffer.allocUnsafe(capacity * NAME_MAX),
    ends: new Uint32Array(capacity),
    inos: new Float64Array(capacity),
    types: new Uint32Array(capacity),
  }
}

/**
 * A position in one directory's listing (Volume.openDirCursor): the entry to list next. Opaque
 * but for the directory; only the volume that opened it may be given it back. An open cursor
 * stays valid while names come and go: a listing that runs while other processes add and remove
 * names still lists every entry that stays, once (docs/STORAGE-INTERFACE.md).
 */
export interface DirCursor {
  /** The directory. */
  readonly ino: number
}

/** What statfs(2) reports (Volume.statfs); counts of blocks are in units of `frsize`. */
export interface StatFs {
  bsize: number
  frsize: number
  blocks: number
  bfree: number
  bavail: number
  files: number
  ffree: number
  favail: number
  namemax: number
}

export interface CreateOptions {
  /** Replace an existing image in the data dir. */
  force?: boolean
  /** Inode records to pre-allocate (the image still grows on demand). */
  capacity?: number
  /** Owner and mode of the root directory (default: the caller, 0755). */
  uid?: number
  gid?: number
  rootMode?: number
  /**
   * Records to allocate in each mapped file, by file id (nodes, entries, entries.idx buckets,
   * strings units, strings.idx buckets), instead of what `capacity` gives: gc sizes the new
   * image to what it will hold.
   */
  sizes?: number[]
  /** Bytes of log after which a checkpoint runs (default 64 MiB). */
  walLimit?: number
  /** The UUID and creation time of the new image (default: new ones): gc keeps the old image's. */
  uuid?: Buffer
  createdMs?: number
}

export interface OpenOptions {
  /** Open without the lock and without writing anything; the WAL is replayed in memory only. */
  readOnly?: boolean
  /** Take the data-dir lock (default: only when read-write). A read-only mount takes it too. */
  lock?: boolean
  /** Bytes of WAL after which a checkpoint runs (default 64 MiB). */
  walLimit?: number
}

export interface NodeSpec {
  /** Type and permission bits (S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK). */
  mode: number
  uid: number
  gid: number
  rdev?: number
  /** Symlink target (S_IFLNK only). */
  target?: Buffer | string
}

export interface SetAttr {
  mode?: number
  uid?: number
  gid?: number
  size?: number
  atime?: Timespec | 'now'
  mtime?: Timespec | 'now'
}

export interface FileInfo {
  name: string
  path: string
  bytes: number
  mode: number
}

export interface RecoveryReport {
  /** The image was marked clean when it was opened. */
  wasClean: boolean
  /** Transactions replayed from the WAL. */
  transactions: number
  /** Bytes of a torn or uncommitted record at the end of the WAL that were discarded. */
  tornBytes: number
}

export interface ImageInfo {
  dir: string
  uuid: string
  formatVersion: number
  createdMs: number
  mountedMs: number
  readOnly: boolean
  recovery: RecoveryReport
  inodes: {used: number; capacity: number}
  files: FileInfo[]
}

export const ROOT_INO = 1
export const RENAME_NOREPLACE = 1
export const RENAME_EXCHANGE = 2
export const XATTR_CREATE = 1
export const XATTR_REPLACE = 2
/** Longest name of a directory entry, in bytes. */
export const NAME_MAX = 255
/** Longest symlink target, in bytes. */
export const PATH_MAX = 4095
/** Largest file: 2^40 bytes (1 TiB) is the promise; the limit is 2^44. */
export const FILE_SIZE_MAX = 2 ** 44
/** Largest xattr value, and largest set of xattrs of one inode (names and values). */
export const XATTR_SIZE_MAX = 65536
export const XATTR_LIST_MAX = 65536 + 4096
