/**
 * TypeScript face of the razorfs_ll addon (native/*.c): a libfuse 3 low-level binding. Requests
 * arrive at one dispatch function, their numbers in a field array shared with the addon and their
 * names or bytes as the call's arguments; ./requests.ts decodes them into typed requests. Every
 * request must be answered exactly once with one of the reply functions.
 */
import fs from 'node:fs'
import {createRequire} from 'node:module'

import {ADDON_FILE} from '../../addon.js'

/**
 * Operation codes: the addon's `ops` table (made from RAZORFS_OPS in native/razorfs_ll.h).
 * loadLowLevel refuses an addon whose table differs.
 */
export const OP = {
  INIT: 0,
  LOOKUP: 1,
  GETATTR: 2,
  SETATTR: 3,
  READLINK: 4,
  MKNOD: 5,
  MKDIR: 6,
  UNLINK: 7,
  RMDIR: 8,
  SYMLINK: 9,
  RENAME: 10,
  LINK: 11,
  OPEN: 12,
  READ: 13,
  WRITE: 14,
  FLUSH: 15,
  RELEASE: 16,
  FSYNC: 17,
  OPENDIR: 18,
  READDIR: 19,
  READDIRPLUS: 20,
  RELEASEDIR: 21,
  FSYNCDIR: 22,
  STATFS: 23,
  SETXATTR: 24,
  GETXATTR: 25,
  LISTXATTR: 26,
  REMOVEXATTR: 27,
  ACCESS: 28,
  CREATE: 29,
  FALLOCATE: 30,
  LSEEK: 31,
  COPY_FILE_RANGE: 32,
  ENDED: 33,
} as const

/**
 * Where each number of a request stands in the field array: the addon's `fields` table (made from
 * RAZORFS_FIELDS in native/razorfs_ll.h). loadLowLevel refuses an addon whose table differs.
 */
export const FIELD = {
  OP: 0,
  REQ: 1,
  UID: 2,
  GID: 3,
  PID: 4,
  UMASK: 5,
  INO: 6,
  INO2: 7,
  FH: 8,
  FH2: 9,
  SIZE: 10,
  OFF: 11,
  OFF2: 12,
  MODE: 13,
  FLAGS: 14,
  ARG: 15,
  TOKEN: 16,
} as const

/** Length of the field array. */
export const FIELD_COUNT = Object.keys(FIELD).length

/** The caller of a request. */
export interface RequestContext {
  uid: number
  gid: number
  pid: number
  umask: number
}

/** Fields of a setattr request; only those the kernel asked to change are present. */
export interface SetattrFields {
  mode?: number
  uid?: number
  gid?: number
  size?: number
  atimeNow?: 1
  atimeSec?: number
  atimeNsec?: number
  mtimeNow?: 1
  mtimeSec?: number
  mtimeNsec?: number
  ctime?: 1
  /** The kernel asks to clear set-user-ID and set-group-ID with the change (FATTR_KILL_SUIDGID). */
  killSuidgid?: 1
}

/** 14 numbers: ino, mode, nlink, uid, gid, rdev, size, blocks, atime s/ns, mtime s/ns, ctime s/ns. */
export type AttrArray = Float64Array

/** mount's `modes` (MODE_* in native/razorfs_ll.h): bits of how the kernel caches. */
export const MOUNT_MODE = {
  /** The kernel's writeback cache (razorfs never asks for it: DURABILITY.md). */
  writeback: 1,
  /**
   * The kernel keeps a file's pages when a reply shows another mtime or size (libfuse's
   * auto_inval_data off): right where every change goes through this mount.
   */
  keepPages: 2,
  /**
   * The server clears set-user-ID and set-group-ID where the kernel says (FUSE_HANDLE_KILLPRIV_V2,
   * native/kernel.c), so the kernel stops asking for security.capability before each write: on a
   * volume no other host changes.
   */
  killpriv: 4,
  /** The session offers kernel FUSE passthrough (native/kernel.c): open replies may name a backing file. */
  passthrough: 8,
} as const

/** Open reply flag: the kernel keeps the file's page cache across opens (the addon's bit 0). */
export const OPEN_KEEP_CACHE = 1
/** Open reply flag: the kernel sends no FLUSH at each close of the file (the addon's bit 3). */
export const OPEN_NOFLUSH = 8
/**
 * Create reply flag: the request made the file, and no other host can give it a
 * security.capability: the addon answers the kernel's getxattr of it with ENODATA itself until a
 * setxattr of it comes through (native/caps.c).
 */
export const OPEN_NEW_FILE = 16

/**
 * What the addon calls for each request, after writing its numbers into the field array: with its
 * name (or a write's data, or a setattr's fields) first and a second name (or a setxattr's value)
 * second.
 */
export type RawDispatch = (first: Buffer | SetattrFields | undefined, second: Buffer | undefined) => void

export interface LowLevelAddon {
  /** Operation name -> number (the same as OP). */
  readonly ops: Readonly<Record<string, number>>
  /** Field name -> index in the field array (the same as FIELD). */
  readonly fields: Readonly<Record<string, number>>
  /**
   * `fields`: a Float64Array of FIELD_COUNT, held by the addon until the session ends. `maxRead`:
   * the value of a max_read= in `options` (libfuse ends a session whose init reply says otherwise).
   */
  mount(
    mountpoint: string,
    options: string,
    dispatch: RawDispatch,
    fields: Float64Array,
    maxWrite: number,
    modes: number,
    threads: number,
    maxRead?: number,
  ): object
  unmount(session: object): void
  replyErr(req: number, errno: number, token?: number): void
  replyEntry(req: number, attr: AttrArray, entryTimeout: number, attrTimeout: number): void
  replyCreate(req: number, attr: AttrArray, entryTimeout: number, attrTimeout: number, fh: number, openFlags: number, backingId?: number): void
  replyAttr(req: number, attr: AttrArray, attrTimeout: number): void
  replyOpen(req: number, fh: number, openFlags: number, backingId?: number): void
  /**
   * Register the file open on `fd` with the kernel as a backing file (it takes its own reference):
   * its backing id for replyOpen and replyCreate, or -errno (EPERM: the kernel took no passthrough).
   */
  backingOpen(session: object, fd: number): number
  /**
   * Forget backing ids (opens made with them keep their files), from the addon's notice thread:
   * the ioctl took 40-50 µs, and the thread's wake up 30 µs, so JS hands them over in batches.
   * False once the session has ended.
   */
  backingClose(session: object, ids: Uint32Array): boolean
  replyBuf(req: number, data: Buffer, length?: number): void
  replyWrite(req: number, count: number, token: number, data: Buffer): void
  replyXattr(req: number, size: number): void
  /** [bsize, frsize, blocks, bfree, bavail, files, ffree, favail, fsid, flag, namemax] */
  replyStatfs(req: number, figures: Float64Array): void
  replyLseek(req: number, offset: number): void
  replyReadlink(req: number, target: Buffer): void
  /**
   * Queue a cache invalidation for the kernel: the addon writes it from a thread of the session's
   * own (native/notify.c), so it may be asked for anywhere, even while a related request waits for
   * its reply; nothing waits for it. False once the session has ended. notifyInvalInode drops the
   * inode's attributes, and with `off` >= 0 its cached pages from there (`len` bytes; 0: to the
   * end); notifyInvalEntry drops the cached lookup of `name` in directory `parent`.
   */
  notifyInvalInode(session: object, ino: number, off: number, len: number): boolean
  notifyInvalEntry(session: object, parent: number, name: Buffer): boolean
  /** Notices since the mount: queued, pending, sent, absent (the kernel held nothing to drop), failed. */
  notifyCounts(session: object): [queued: number, pending: number, sent: number, absent: number, failed: number]
  /**
   * Packs entries until `size` bytes; returns how many fitted. Entry i's name is
   * names[nameEnds[i - 1], nameEnds[i]) (see replyDirents below). With `fh` and `off` (the
   * request's offset; plain readdir only) every entry is taken: those past `size` stay in the
   * addon as the handle's run, from which the kernel's next requests on the handle are answered
   * without JS.
   */
  replyDirents(
    req: number,
    size: number,
    plus: boolean,
    names: Buffer,
    nameEnds: Uint32Array,
    attrs: Float64Array,
    offsets: Float64Array,
    entryTimeout: number,
    attrTimeout: number,
    fh?: number,
    off?: number,
  ): number
}

/**
 * Answer a readdir or readdirplus with `names` (and 14 attribute numbers an entry in `attrs`):
 * the names go to the addon in one buffer. Returns how many entries the addon took. (razorfs's
 * adapter and bench/noop-ll.ts hand the addon their packed names directly.)
 */
export function replyDirents(
  ll: LowLevelAddon,
  req: number,
  size: number,
  plus: boolean,
  names: Buffer[],
  attrs: Float64Array,
  offsets: Float64Array,
  entryTimeout: number,
  attrTimeout: number,
  run?: {fh: number; off: number},
): number {
  const ends = new Uint32Array(names.length)
  let total = 0
  for (const [i, name] of names.entries()) ends[i] = total += name.length
  const all = Buffer.concat(names, total)
  return run === undefined
    ? ll.replyDirents(req, size, plus, all, ends, attrs, offsets, entryTimeout, attrTimeout)
    : ll.replyDirents(req, size, plus, all, ends, attrs, offsets, entryTimeout, attrTimeout, run.fh, run.off)
}

/**
 * Adaptive polling. A request wakes the JS thread if it sleeps in epoll (on /dev/fuse itself, or
 * on the thread-safe function libfuse's workers hand requests through with `--loop-threads N`);
 * on a small machine that wake-up is most of the cost of a stat. Calling the returned function after each request keeps the event loop
 * turning (setImmediate: libuv then polls without sleeping) for `windowUs` after the latest one,
 * so a client that sends its next request at once finds the JS thread awake. An idle mount costs
 * nothing: the polling ends one window after the last request
 * (docs/ARCHITECTURE.md, "Adaptive polling").
 */
export function requestPoller(windowUs: number = POLL_WINDOW_US): () => void {
  const window = windowUs / 1000
  let last = 0
  let polling = false
  const poll = (): void => {
    if (performance.now() - last < window) setImmediate(poll)
    else polling = false
  }

  return () => {
    last = performance.now()
    if (!polling && window > 0) {
      polling = true
      setImmediate(poll)
    }
  }
}

/** The adaptive polling window in microseconds (mount's hidden --poll-us sets another; 0 turns polling off). */
export const POLL_WINDOW_US = 100

let addon: LowLevelAddon | undefined

/** Load the addon, or explain in one line how to build it. */
export function loadLowLevel(): LowLevelAddon {
  if (addon !== undefined) return addon
  const file = ADDON_FILE
  if (!fs.existsSync(file)) {
    throw new Error('the ll binding is not built: apt-get install -y libfuse3-dev, then npm rebuild (or use --binding fuse-native)')
  }

  let loaded: LowLevelAddon
  try {
    loaded = createRequire(import.meta.url)(file) as LowLevelAddon
  } catch (error) {
    const message = (error as Error).message
    if (/libfuse3\.so/.test(message)) throw new Error('libfuse 3 is not installed: run `apt-get install -y fuse3`')
    throw new Error(`cannot load the ll binding: ${message.split('\n')[0]}`)
  }

  const differences = [...tableDifferences('ops', loaded.ops, OP), ...tableDifferences('fields', loaded.fields, FIELD)]
  if (differences.length > 0) throw new Error(`the ll binding does not match this razorfs (${differences.join('; ')}): npm rebuild`)
  addon = loaded
  return addon
}

/** How the addon's table `name` differs from ours, one line a name; none when they are the same. */
export function tableDifferences(name: string, theirs: Readonly<Record<string, number>> | undefined, ours: Readonly<Record<string, number>>): string[] {
  if (theirs === undefined) return [`the addon has no ${name} table`]
  const out: string[] = []
  for (const [key, n] of Object.entries(ours)) if (theirs[key] !== n) out.push(`${name}.${key}: ${theirs[key] ?? 'missing'} in the addon, ${n} here`)
  for (const key of Object.keys(theirs)) if (!(key in ours)) out.push(`${name}.${key}: ${theirs[key]} in the addon, missing here`)
  return out
}
