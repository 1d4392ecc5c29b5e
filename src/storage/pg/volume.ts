/**
 * PgVolume: the storage interface (volume.ts) over PostgreSQL, for a volume that many hosts share
 * (issue 20). The schema is schema.ts's; each method is one call through the synchronous bridge
 * (bridge.ts) to the worker that owns the connection, and there one transaction: mostly one
 * statement calling one plpgsql function, so one round trip. Arguments are checked here, before
 * any round trip; what needs the database (existence, types, emptiness) is checked there, under
 * the row locks of the change.
 *
 * Each open volume is a session (a row of `sessions`): retain and release keep per-session holds,
 * so an inode unlinked while any session holds it lives on. A session is a lease the worker renews
 * with heartbeats; one whose heartbeats stopped for longer than its lease (a killed or stopped
 * client, a lost host) is ended by the next live client's reaper, which frees what only it held.
 * An outage of the server fails calls with EIO; the volume reconnects by itself and takes up its
 * session again (worker.ts; docs/ARCHITECTURE.md, "Sessions and open files").
 */
import {FsError} from '../errors.js'
import {checkName, toBytes} from '../image/directories.js'
import {nowTimespec} from '../image/inodes.js'
import {checkXattrName} from '../image/xattrs.js'
import {isValidType} from '../codec/inode.js'
import {
  type Attr,
  type DirCursor,
  type DirEntry,
  type DirentSink,
  FILE_SIZE_MAX,
  NAME_MAX,
  type NodeSpec,
  PATH_MAX,
  RENAME_EXCHANGE,
  RENAME_NOREPLACE,
  type SetAttr,
  type StatFs,
  type Timespec,
  XATTR_SIZE_MAX,
} from '../types.js'
import type {ChangeSink, Volume} from '../volume.js'
import {DEFAULT_TIMEOUT_MS, SyncBridge, asBuffer} from './bridge.js'
import {PgListener} from './notify.js'
import {DEFAULT_LEASE_MS} from './schema.js'
import {type PgTarget, parsePgUrl} from './url.js'
import type {VolumeMeta} from './connect.js'

const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_IFLNK = 0o120000

/** What statfs reports as the volume's capacity: the database grows as it must. */
const STATFS_FILES = 2 ** 32
const STATFS_BSIZE = 4096
const STATFS_BLOCKS = 2 ** 32

const NO_NAME: Buffer = Buffer.alloc(0)

export interface PgOpenOptions {
  readOnly?: boolean
  /** How long a call waits for the database before it fails with EIO (default 30 s). */
  timeoutMs?: number
  /**
   * The session's lease: how long it outlives its last heartbeat (the URL's session_timeout=,
   * else 30 s). A client stopped or cut off for longer loses its holds to the next client's reaper.
   */
  sessionTimeoutMs?: number
}

export interface PgCreateOptions {
  /** Replace a volume that is there. */
  force?: boolean
  uid?: number
  gid?: number
  rootMode?: number
  timeoutMs?: number
}

type Row = Record<string, unknown>

class PgDirCursor implements DirCursor {
  /** The last name listed (skipped); empty at the start. */
  after: Buffer = NO_NAME
  /** The names of the last peek, which a skip that follows it moves past. */
  peeked: Buffer[] = []

  constructor(readonly ino: number) {}
}

/** A connect that hangs (a host that drops packets) gives up within the calls' timeout. */
function withConnectTimeout(target: PgTarget, timeoutMs: number): PgTarget {
  return {...target, config: {...target.config, connectionTimeoutMillis: timeoutMs}}
}

function validIno(ino: number): boolean {
  return Number.isSafeInteger(ino) && ino > 0
}

function attrOf(r: Row): Attr {
  const size = r.size as number
  return {
    ino: r.ino as number,
    mode: r.mode as number,
    nlink: r.nlink as number,
    uid: r.uid as number,
    gid: r.gid as number,
    rdev: r.rdev as number,
    size,
    blocks: ((r.mode as number) & S_IFMT) === S_IFREG ? Math.ceil(size / 512) : 0,
    atime: {sec: r.atime_s as number, nsec: r.atime_ns as number},
    mtime: {sec: r.mtime_s as number, nsec: r.mtime_ns as number},
    ctime: {sec: r.ctime_s as number, nsec: r.ctime_ns as number},
  }
}

export class PgVolume implements Volume {
  private depth = 0
  private readonly cursors = new WeakSet<DirCursor>()

  private constructor(
    private readonly bridge: SyncBridge,
    readonly readOnly: boolean,
    /** The volume's meta row, and where it is (the URL without its password). */
    readonly meta: VolumeMeta & {url: string; schema: string},
    /** Where it is, with how long a connect may take: for the listener's connection. */
    private readonly target: PgTarget,
  ) {}

  /** Listen for the other sessions' changes (notify.ts), on a connection of this thread's own. */
  async watch(sink: ChangeSink, log?: (line: string) => void): Promise<() => Promise<void>> {
    const listener = new PgListener(this.target, () => this.sessionId(), sink, log)
    await listener.start()
    return () => listener.close()
  }

  /** Make a new volume in the URL's database (and schema); ImageError RZ_EXISTS if there is one, unless force. */
  static create(url: string, opts: PgCreateOptions = {}): PgVolume {
    PgVolume.make(url, opts, false)
    return PgVolume.open(url, {timeoutMs: opts.timeoutMs})
  }

  /**
   * What create would do, without doing it (nothing is written): whether a volume is there, which
   * create replaces with force; its refusals as create's (ImageError RZ_EXISTS, RZ_BAD_MAGIC, RZ_IO).
   */
  static check(url: string, opts: PgCreateOptions = {}): {volume: boolean} {
    return PgVolume.make(url, opts, true)
  }

  private static make(url: string, opts: PgCreateOptions, check: boolean): {volume: boolean} {
    const target = parsePgUrl(url)
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
    const bridge = new SyncBridge({target: withConnectTimeout(target, timeoutMs)}, timeoutMs)
    const now = nowTimespec()
    try {
      return bridge.call('create', {
        force: opts.force ?? false,
        check,
        uid: opts.uid ?? process.getuid?.() ?? 0,
        gid: opts.gid ?? process.getgid?.() ?? 0,
        rootMode: opts.rootMode ?? 0o755,
        sec: now.sec,
        nsec: now.nsec,
      }) as {volume: boolean}
    } finally {
      bridge.close()
    }
  }

  /**
   * Open the volume at the URL. ImageError: server unreachable, authentication failed, no such
   * database (RZ_IO); not a razorfs database (RZ_BAD_MAGIC); a newer format (RZ_VERSION).
   */
  static open(url: string, opts: PgOpenOptions = {}): PgVolume {
    const target = parsePgUrl(url)
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
    const bridge = new SyncBridge({target: withConnectTimeout(target, timeoutMs)}, timeoutMs)
    try {
      const leaseMs = opts.sessionTimeoutMs ?? target.leaseMs ?? DEFAULT_LEASE_MS
      const {meta} = bridge.call('open', {readOnly: opts.readOnly ?? false, leaseMs}) as {meta: VolumeMeta}
      const shown = {...meta, url: target.display, schema: target.schema}
      return new PgVolume(bridge, opts.readOnly ?? false, shown, withConnectTimeout(target, timeoutMs))
    } catch (error) {
      bridge.close()
      throw error
    }
  }

  private q(name: string, ...values: unknown[]): Row[] {
    return this.bridge.call('q', name, values) as Row[]
  }

  private writable(syscall: string): Timespec {
    if (this.readOnly) throw new FsError('EROFS', syscall)
    return nowTimespec()
  }

  private inode(ino: number, syscall: string): Row {
    const row = validIno(ino) ? this.q('getattr', ino)[0] : undefined
    if (row === undefined) throw new FsError('ENOENT', syscall)
    return row
  }

  lookup(parent: number, name: Buffer | string): number {
    const bytes = toBytes(name)
    if (bytes.length > NAME_MAX) throw new FsError('ENAMETOOLONG', 'lookup', bytes.toString())
    const dots = bytes.length <= 2 && bytes.every(b => b === 0x2e) ? bytes.length : 0
    if (!validIno(parent)) throw new FsError('ENOENT', 'lookup')
    const [row] = this.q('lookup', parent, dots === 0 ? bytes : NO_NAME)
    if (row === undefined) throw new FsError('ENOENT', 'lookup')
    if (((row.mode as number) & S_IFMT) !== S_IFDIR) throw new FsError('ENOTDIR', 'lookup')
    if (dots === 1) return parent
    if (dots === 2) return row.parent as number
    return (row.ino as number | null) ?? 0
  }

  getattr(ino: number): Attr {
    return attrOf(this.inode(ino, 'getattr'))
  }

  readlink(ino: number): Buffer {
    const row = this.inode(ino, 'readlink')
    if (((row.mode as number) & S_IFMT) !== S_IFLNK) throw new FsError('EINVAL', 'readlink', `inode ${ino}`)
    return asBuffer(row.target as Uint8Array)
  }

  mknod(parent: number, name: Buffer | string, spec: NodeSpec): Attr {
    const bytes = toBytes(name)
    checkName(bytes, 'mknod')
    const type = spec.mode & S_IFMT
    if (!isValidType(spec.mode)) throw new FsError('EINVAL', 'mknod', bytes.toString())
    let target: Buffer | null = null
    if (type === S_IFLNK) {
      target = toBytes(spec.target ?? '')
      if (target.length === 0) throw new FsError('ENOENT', 'symlink', bytes.toString())
      if (target.length > PATH_MAX) throw new FsError('ENAMETOOLONG', 'symlink', bytes.toString())
    }

    const now = this.writable('mknod')
    const rdev = type === 0o020000 || type === 0o060000 ? (spec.rdev ?? 0) : 0
    const [row] = this.q('mknod', parent, bytes, spec.mode, spec.uid, spec.gid, rdev, target, now.sec, now.nsec)
    return attrOf(row)
  }

  link(ino: number, parent: number, name: Buffer | string): Attr {
    const bytes = toBytes(name)
    checkName(bytes, 'link')
    const now = this.writable('link')
    if (!validIno(ino)) throw new FsError('ENOENT', 'link')
    return attrOf(this.q('link', ino, parent, bytes, now.sec, now.nsec)[0])
  }

  unlink(parent: number, name: Buffer | string): void {
    this.remove(parent, name, false)
  }

  rmdir(parent: number, name: Buffer | string): void {
    this.remove(parent, name, true)
  }

  private remove(parent: number, name: Buffer | string, dir: boolean): void {
    const syscall = dir ? 'rmdir' : 'unlink'
    const bytes = toBytes(name)
    if (bytes.length > NAME_MAX) throw new FsError('ENAMETOOLONG', syscall, bytes.toString())
    if (bytes.length <= 2 && bytes.length > 0 && bytes.every(b => b === 0x2e)) {
      throw new FsError(!dir ? 'EISDIR' : bytes.length === 1 ? 'EINVAL' : 'ENOTEMPTY', syscall, bytes.toString())
    }

    const now = this.writable(syscall)
    if (!validIno(parent)) throw new FsError('ENOENT', syscall)
    this.q('remove', parent, bytes, dir, now.sec, now.nsec)
  }

  rename(oldParent: number, oldName: Buffer | string, newParent: number, newName: Buffer | string, flags = 0): void {
    if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) !== 0 || flags === (RENAME_NOREPLACE | RENAME_EXCHANGE)) throw new FsError('EINVAL', 'rename')
    const from = toBytes(oldName)
    const to = toBytes(newName)
    checkName(from, 'rename')
    checkName(to, 'rename')
    const now = this.writable('rename')
    if (!validIno(oldParent) || !validIno(newParent)) throw new FsError('ENOENT', 'rename')
    this.q('rename', oldParent, from, newParent, to, flags, now.sec, now.nsec)
  }

  setattr(ino: number, changes: SetAttr): Attr {
    const {size} = changes
    if (size !== undefined) {
      if (!Number.isSafeInteger(size) || size < 0) throw new FsError('EINVAL', 'truncate')
      if (size > FILE_SIZE_MAX) throw new FsError('EFBIG', 'truncate')
    }

    const now = this.writable('setattr')
    if (!validIno(ino)) throw new FsError('ENOENT', 'setattr')
    const time = (t: Timespec | 'now' | undefined): [number | null, number | null] =>
      t === undefined ? [null, null] : t === 'now' ? [now.sec, now.nsec] : [t.sec, t.nsec]
    const rows = this.bridge.call('setattr', [
      ino,
      changes.mode ?? null,
      changes.uid ?? null,
      changes.gid ?? null,
      size ?? null,
      ...time(changes.atime),
      ...time(changes.mtime),
      now.sec,
      now.nsec,
    ]) as Row[]
    return attrOf(rows[0])
  }

  read(ino: number, buf: Buffer, pos: number): number {
    if (!Number.isSafeInteger(pos) || pos < 0) throw new FsError('EINVAL', 'read')
    if (!validIno(ino)) throw new FsError('ENOENT', 'read')
    const bytes = this.bridge.call('read', ino, pos, buf.length) as Uint8Array
    buf.set(bytes)
    return bytes.length
  }

  write(ino: number, data: Buffer, pos: number): number {
    if (!Number.isSafeInteger(pos) || pos < 0) throw new FsError('EINVAL', 'write')
    const now = this.writable('write')
    if (!validIno(ino)) throw new FsError('ENOENT', 'write')
    const end = pos + data.length
    if (end > FILE_SIZE_MAX || data.length === 0) {
      const type = (this.inode(ino, 'write').mode as number) & S_IFMT
      if (type === S_IFDIR) throw new FsError('EISDIR', 'write')
      if (type !== S_IFREG) throw new FsError('EINVAL', 'write')
      if (end > FILE_SIZE_MAX) throw new FsError('EFBIG', 'write')
      return 0
    }

    this.bridge.call('write', ino, pos, data, now.sec, now.nsec)
    return data.length
  }

  getxattr(ino: number, name: string): Buffer {
    if (!validIno(ino)) throw new FsError('ENOENT', 'getxattr')
    const rows = this.q('getxattr', ino, name)
    if (rows.length === 0) throw new FsError('ENOENT', 'getxattr')
    if (rows[0].value === null) throw new FsError('ENODATA', 'getxattr', name)
    return asBuffer(rows[0].value as Uint8Array)
  }

  listxattr(ino: number): string[] {
    if (!validIno(ino)) throw new FsError('ENOENT', 'listxattr')
    const rows = this.q('listxattr', ino)
    if (rows.length === 0) throw new FsError('ENOENT', 'listxattr')
    return rows.filter(r => r.name !== null).map(r => r.name as string)
  }

  setxattr(ino: number, name: string, value: Buffer, flags = 0): void {
    checkXattrName(name, 'setxattr')
    if (value.length > XATTR_SIZE_MAX) throw new FsError('E2BIG', 'setxattr', name)
    const now = this.writable('setxattr')
    if (!validIno(ino)) throw new FsError('ENOENT', 'setxattr')
    this.q('setxattr', ino, name, value, flags, now.sec, now.nsec)
  }

  removexattr(ino: number, name: string): void {
    checkXattrName(name, 'removexattr')
    const now = this.writable('removexattr')
    if (!validIno(ino)) throw new FsError('ENOENT', 'removexattr')
    this.q('removexattr', ino, name, now.sec, now.nsec)
  }

  private directory(ino: number, syscall: string): void {
    const row = this.inode(ino, syscall)
    if (((row.mode as number) & S_IFMT) !== S_IFDIR) throw new FsError('ENOTDIR', syscall)
  }

  readdir(ino: number): Iterable<DirEntry> {
    const rows = validIno(ino) ? this.q('readdir', ino) : []
    if (rows.length === 0) throw new FsError('ENOENT', 'readdir')
    if (((rows[0].pmode as number) & S_IFMT) !== S_IFDIR) throw new FsError('ENOTDIR', 'readdir')
    return rows.filter(r => r.name !== null).map(r => ({name: asBuffer(r.name as Uint8Array), ino: r.ino as number, type: (r.mode as number) & S_IFMT}))
  }

  openDirCursor(ino: number): DirCursor {
    this.directory(ino, 'opendir')
    const cursor = new PgDirCursor(ino)
    this.cursors.add(cursor)
    return cursor
  }

  private cursor(c: DirCursor): PgDirCursor {
    if (!this.cursors.has(c)) throw new FsError('EBADF', 'readdir')
    return c as PgDirCursor
  }

  peekDirents(c: DirCursor, sink: DirentSink, at: number, max: number): number {
    const cursor = this.cursor(c)
    const limit = Math.min(max, sink.ends.length - at)
    if (limit <= 0) return 0
    const rows = this.q('peek', cursor.ino, cursor.after, limit)
    let end = at === 0 ? 0 : sink.ends[at - 1]
    cursor.peeked = []
    for (const [i, r] of rows.entries()) {
      const name = asBuffer(r.name as Uint8Array)
      end += name.copy(sink.names, end)
      sink.ends[at + i] = end
      sink.inos[at + i] = r.ino as number
      sink.types[at + i] = (r.mode as number) & S_IFMT
      cursor.peeked.push(name)
    }

    return rows.length
  }

  skipDirents(c: DirCursor, count: number): number {
    const cursor = this.cursor(c)
    if (count <= 0) return 0
    let names = cursor.peeked
    if (names.length < count) names = this.q('peek', cursor.ino, cursor.after, count).map(r => asBuffer(r.name as Uint8Array))
    const moved = Math.min(count, names.length)
    if (moved > 0) cursor.after = names[moved - 1]
    cursor.peeked = []
    return moved
  }

  rewindDirCursor(c: DirCursor): void {
    const cursor = this.cursor(c)
    cursor.after = NO_NAME
    cursor.peeked = []
  }

  closeDirCursor(c: DirCursor): void {
    this.cursors.delete(c)
  }

  retain(ino: number): void {
    if (this.readOnly) {
      this.inode(ino, 'open')
      return
    }

    if (!validIno(ino)) throw new FsError('ENOENT', 'open')
    this.bridge.call('retain', ino)
  }

  /** Of an inode freed while this session was gone (reaped after an outage): drops the handle, no error. */
  release(ino: number): void {
    if (this.readOnly || !validIno(ino)) return
    this.bridge.call('release', ino)
  }

  transaction<T>(fn: () => T): T {
    if (this.readOnly) throw new FsError('EROFS', 'transaction')
    if (this.depth > 0) {
      this.depth++
      try {
        return fn()
      } finally {
        this.depth--
      }
    }

    this.bridge.call('begin')
    this.depth = 1
    let result: T
    try {
      result = fn()
    } catch (error) {
      this.depth = 0
      try {
        this.bridge.call('rollback')
      } catch {
        // the connection is gone, and the server rolled the transaction back with it
      }

      throw error
    }

    this.depth = 0
    this.bridge.call('commit')
    return result
  }

  /** Every commit is durable when it returns (synchronous_commit on): nothing is left to flush. */
  fsync(_ino: number): void {}

  sync(): void {}

  statfs(): StatFs {
    const [row] = this.q('statfs')
    const used = Math.ceil((row.bytes as number) / STATFS_BSIZE)
    const ffree = STATFS_FILES - (row.inodes as number)
    const bfree = Math.max(0, STATFS_BLOCKS - used)
    return {
      bsize: STATFS_BSIZE,
      frsize: STATFS_BSIZE,
      blocks: STATFS_BLOCKS,
      bfree,
      bavail: bfree,
      files: STATFS_FILES,
      ffree,
      favail: ffree,
      namemax: NAME_MAX,
    }
  }

  close(): void {
    try {
      this.bridge.call('close')
    } finally {
      this.bridge.close()
    }
  }

  /**
   * For tests: end as a killed client would once its lease has run out. The server drops the
   * connection (rolling back an open transaction); the session row stays, expired, until the next
   * client's reaper (the next volume opened, at the latest) ends it.
   */
  abandon(): void {
    try {
      this.bridge.call('abandon')
    } finally {
      this.bridge.close()
    }
  }

  /** End the sessions whose lease ran out now (the worker also does, at open and every half lease); how many. */
  reap(): number {
    return this.bridge.call('reap') as number
  }

  /** This volume's session (its row in `sessions`); a session reaped while away comes back under a new id. */
  sessionId(): number {
    return this.bridge.call('session') as number
  }

  /** Time one round trip through the bridge and the server (`SELECT 1`), for measurements. */
  ping(): void {
    this.q('ping')
  }

  /**
   * The figures of razorfs stats: inodes by type (one pass over inodes), entries, the directories
   * with the most entries, what the tables take on the server, and the other live sessions.
   */
  figures(top: number): PgFigures {
    const types = this.q('statsTypes').map(r => ({type: r.type as number, count: r.n as number, bytes: r.bytes as number, orphans: r.orphans as number}))
    const [v] = this.q('statsVolume')
    const largest = this.q('statsTop', top).map(r => ({ino: r.ino as number, entries: r.n as number}))
    return {
      types,
      entries: v.entries as number,
      filesWithBlocks: v.files_with_blocks as number,
      blockBytes: v.stored as number,
      tableBytes: v.total as number,
      otherSessions: v.others as number,
      largest,
    }
  }

  /** Set an inode's ctime (restoring an archive: every change through the interface sets it to now). */
  setCtime(ino: number, t: Timespec): void {
    this.writable('utimensat')
    this.q('setctime', ino, t.sec, t.nsec)
  }
}

/** PgVolume.figures. */
export interface PgFigures {
  /** Per file type (mode & S_IFMT): inodes, the sum of their sizes, and those unlinked but held open. */
  types: Array<{type: number; count: number; bytes: number; orphans: number}>
  entries: number
  /** Regular files that have at least one block. */
  filesWithBlocks: number
  /** What the blocks table takes on the server (with its TOAST and indexes). */
  blockBytes: number
  /** What all the volume's tables take on the server. */
  tableBytes: number
  /** Sessions of other clients whose lease runs (mounts, and other commands). */
  otherSessions: number
  largest: Array<{ino: number; entries: number}>
}
