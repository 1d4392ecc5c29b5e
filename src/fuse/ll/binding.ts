/**
 * TypeScript face of the razorfs_ll addon (native/razorfs_ll.c): a libfuse 3 low-level binding.
 * Requests arrive at one dispatch function as (op, req, ctx, ...args); every request must be
 * answered exactly once with one of the reply functions.
 */
import fs from 'node:fs'
import {createRequire} from 'node:module'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

/** Operation codes; the same numbers as `enum op` in native/razorfs_ll.c. */
export const OP = {
  INIT: 0, DESTROY: 1, LOOKUP: 2, GETATTR: 3, SETATTR: 4, READLINK: 5, MKNOD: 6, MKDIR: 7,
  UNLINK: 8, RMDIR: 9, SYMLINK: 10, RENAME: 11, LINK: 12, OPEN: 13, READ: 14, WRITE: 15, FLUSH: 16,
  RELEASE: 17, FSYNC: 18, OPENDIR: 19, READDIR: 20, READDIRPLUS: 21, RELEASEDIR: 22, FSYNCDIR: 23,
  STATFS: 24, SETXATTR: 25, GETXATTR: 26, LISTXATTR: 27, REMOVEXATTR: 28, ACCESS: 29, CREATE: 30,
  FALLOCATE: 31, LSEEK: 32, COPY_FILE_RANGE: 33, ENDED: 34,
} as const

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
}

/** 14 numbers: ino, mode, nlink, uid, gid, rdev, size, blocks, atime s/ns, mtime s/ns, ctime s/ns. */
export type AttrArray = Float64Array

/** Open reply flag: the kernel keeps the file's page cache across opens (the addon's bit 0). */
export const OPEN_KEEP_CACHE = 1

export type Dispatch = (op: number, req: number, ctx: RequestContext, ...args: any[]) => void

export interface LowLevelAddon {
  mount(mountpoint: string, options: string, dispatch: Dispatch, maxWrite: number, writeback: number, threads: number): object
  unmount(session: object): void
  replyErr(req: number, errno: number, token?: number): void
  replyEntry(req: number, attr: AttrArray, entryTimeout: number, attrTimeout: number): void
  replyCreate(req: number, attr: AttrArray, entryTimeout: number, attrTimeout: number, fh: number, openFlags: number): void
  replyAttr(req: number, attr: AttrArray, attrTimeout: number): void
  replyOpen(req: number, fh: number, openFlags: number): void
  replyBuf(req: number, data: Buffer, length?: number): void
  replyWrite(req: number, count: number, token: number, data: Buffer): void
  replyXattr(req: number, size: number): void
  /** [bsize, frsize, blocks, bfree, bavail, files, ffree, favail, fsid, flag, namemax] */
  replyStatfs(req: number, figures: Float64Array): void
  replyLseek(req: number, offset: number): void
  replyReadlink(req: number, target: Buffer): void
  /**
   * Packs entries until `size` bytes; returns how many fitted. Entry i's name is
   * names[nameEnds[i - 1], nameEnds[i]) (see replyDirents below). With `fh` and `off` (the
   * request's offset; plain readdir only) every entry is taken: those past `size` stay in the
   * addon as the handle's run, from which the kernel's next requests on the handle are answered
   * without JS.
   */
  replyDirents(req: number, size: number, plus: boolean, names: Buffer, nameEnds: Uint32Array, attrs: Float64Array, offsets: Float64Array, entryTimeout: number, attrTimeout: number, fh?: number, off?: number): number
}

/**
 * Answer a readdir or readdirplus with `names` (and 14 attribute numbers an entry in `attrs`):
 * the names go to the addon in one buffer. Returns how many entries the addon took. (razorfs's
 * adapter and bench/noop-ll.ts hand the addon their packed names directly.)
 */
export function replyDirents(ll: LowLevelAddon, req: number, size: number, plus: boolean, names: Buffer[], attrs: Float64Array, offsets: Float64Array,
  entryTimeout: number, attrTimeout: number, run?: {fh: number; off: number}): number {
  const ends = new Uint32Array(names.length)
  let total = 0
  for (const [i, name] of names.entries()) ends[i] = total += name.length
  const all = Buffer.concat(names, total)
  return run === undefined
    ? ll.replyDirents(req, size, plus, all, ends, attrs, offsets, entryTimeout, attrTimeout)
    : ll.replyDirents(req, size, plus, all, ends, attrs, offsets, entryTimeout, attrTimeout, run.fh, run.off)
}

/**
 * Adaptive polling. A libfuse worker hands each request to the JS thread through the
 * thread-safe function, which wakes the JS thread if it sleeps in epoll; on this 2-core VM that
 * wake-up was most of the cost of a stat. Calling the returned function after each request keeps the event loop
 * turning (setImmediate: libuv then polls without sleeping) for `windowUs` after the latest one,
 * so a client that sends its next request at once finds the JS thread awake. An idle mount costs
 * nothing: the polling ends one window after the last request. Measured with bench/noop-ll.ts
 * (10k files, 100 µs): stat 0.52-0.55x of the fuse-native do-nothing ceiling without it,
 * 1.1-1.5x with it; create 1.1x -> 1.9-2.1x.
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
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..')
  const file = path.join(root, 'build', 'Release', 'razorfs_ll.node')
  if (!fs.existsSync(file)) {
    throw new Error('the ll binding is not built: apt-get install -y libfuse3-dev, then npm rebuild (or use --binding fuse-native)')
  }

  try {
    addon = createRequire(import.meta.url)(file) as LowLevelAddon
  } catch (error) {
    const message = (error as Error).message
    if (/libfuse3\.so/.test(message)) throw new Error('libfuse 3 is not installed: run `apt-get install -y fuse3`')
    throw new Error(`cannot load the ll binding: ${message.split('\n')[0]}`)
  }

  return addon
}
