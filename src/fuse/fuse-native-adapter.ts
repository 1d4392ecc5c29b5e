/**
 * The fuse-native adapter: the only importer of fuse-native. It turns fuse-native's path-based
 * callbacks into calls of the inode-based filesystem core and FsError codes into -errno. No
 * POSIX logic lives here.
 *
 * fuse-native (libfuse 2.9 high-level API) cannot tell us who calls: every request runs with root
 * credentials in the core and the kernel enforces permissions (`default_permissions`). Its other
 * defects are listed in README.md, "Known limitations".
 */
import fs from 'node:fs'
import {createRequire} from 'node:module'
import {constants as osConstants} from 'node:os'
import path from 'node:path'

import type {Attr} from '../storage/types.js'
import {type FileSystem, ROOT_CRED} from '../vfs/filesystem.js'
import {FsError, ROOT_INO} from '../vfs/volume.js'
import {fitXattr, xattrList} from '../vfs/xattr-sizes.js'
import {mountPoints} from './mountinfo.js'
import {type MountSettings, escapeOptionValue, libfuse2Options, parseMountOptions} from './mount-options.js'
import type {AdapterCounters} from './status.js'

type Callback = (code: number, ...rest: unknown[]) => void

interface FuseInstance {
  mount(cb: (err: Error | null) => void): void
  unmount(cb: (err: Error | null) => void): void
}

type FuseConstructor = new (mnt: string, ops: Record<string, unknown>, opts: Record<string, unknown>) => FuseInstance

let fuseModule: FuseConstructor | undefined

/** Load fuse-native, or explain in one line which system package is missing. */
export function loadFuseNative(): FuseConstructor {
  if (fuseModule !== undefined) return fuseModule
  try {
    fuseModule = createRequire(import.meta.url)('fuse-native') as FuseConstructor
    return fuseModule
  } catch (error) {
    const message = (error as Error).message
    if (/libfuse\.so\.2/.test(message)) throw new Error('libfuse 2 is not installed: run `apt-get install -y libfuse2 fuse3`')
    throw new Error(`cannot load fuse-native: ${message.split('\n')[0]}`)
  }
}

/**
 * What fuse-native's close does once fusermount succeeded (fuse_native_unmount: unref the
 * session's uv_async handle), for a mount that someone else already unmounted.
 */
function releaseSession(fuse: FuseInstance): void {
  const thread = (fuse as unknown as {_thread?: Buffer})._thread
  if (thread === undefined) return
  const req = createRequire(createRequire(import.meta.url).resolve('fuse-native'))
  const dir = path.dirname(req.resolve('fuse-native'))
  const binding = (req('node-gyp-build') as (dir: string) => {fuse_native_unmount(mnt: string, thread: Buffer): void})(dir)
  binding.fuse_native_unmount((fuse as unknown as {mnt: string}).mnt, thread)
}

const ERRNO = osConstants.errno as Record<string, number>
/** The name libfuse gives an open file it was asked to unlink (hide_node in fuse.c). */
const HIDDEN_NAME = /^\.fuse_hidden[0-9a-f]{16}$/
const EIO = -ERRNO.EIO

type Signal = (code: number, ...rest: unknown[]) => void

/**
 * fuse-native's getxattr and listxattr wrappers ignore the caller's buffer size: a value longer
 * than the buffer was answered with its full length (libfuse then replies with more bytes than
 * the kernel asked for, which the caller sees as EIO), and a name list longer than the buffer
 * threw a RangeError inside fuse-native, killing the server. Python and getfattr start with a
 * small buffer and grow it on ERANGE, so both broke on ordinary values. Replace the two wrappers
 * (fuse-native looks `_op_<name>` up at each call) with ones that answer ERANGE.
 */
function fixXattrSizes(fuse: FuseInstance): void {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- fuse-native calls each op with its own arguments
  const f = fuse as unknown as Record<string, unknown> & {ops: Record<string, (...args: any[]) => void>}
  f._op_getxattr = (signal: Signal, p: string, name: string, buf: Buffer, position: number) => {
    f.ops.getxattr(p, name, position, (err: number, value?: Buffer) => {
      if (err) return signal(err, buf.buffer)
      if (value === undefined) return signal(-ERRNO.ENODATA, buf.buffer)
      return signal(intoBuffer(value, buf, 'getxattr'), buf.buffer)
    })
  }

  f._op_listxattr = (signal: Signal, p: string, buf: Buffer) => {
    f.ops.listxattr(p, (err: number, names?: string[]) => {
      if (err) return signal(err, buf.buffer)
      return signal(intoBuffer(xattrList(names ?? []), buf, 'listxattr'), buf.buffer)
    })
  }
}

/** A getxattr or listxattr answer into the caller's buffer: its length, or -errno (ERANGE). */
function intoBuffer(value: Buffer, buf: Buffer, syscall: 'getxattr' | 'listxattr'): number {
  try {
    const fitted = fitXattr(value, buf.length, syscall)
    if (typeof fitted !== 'number') fitted.copy(buf)
    return value.length
  } catch (error) {
    if (error instanceof FsError) return -error.errno
    throw error
  }
}

export interface AdapterOptions {
  /** What -o asked for (default: no option); libfuse 2 implements all of it. */
  settings?: MountSettings
  /** The mount's source, as /proc/self/mountinfo and df show it (default: razorfs). */
  fsname?: string
  /** Logs unexpected exceptions (they become EIO). */
  log: (line: string) => void
  /** Called before each operation is handled (serve.ts counts them for its resident budget). */
  onRequest?: () => void
}

function toDate(t: {sec: number; nsec: number}): Date {
  return new Date(t.sec * 1000 + Math.floor(t.nsec / 1e6))
}

function statOf(a: Attr): Record<string, unknown> {
  return {
    mode: a.mode,
    uid: a.uid,
    gid: a.gid,
    size: a.size,
    dev: 0,
    nlink: a.nlink,
    ino: a.ino % 2 ** 32,
    rdev: a.rdev,
    blksize: 4096,
    blocks: a.blocks,
    atime: toDate(a.atime),
    mtime: toDate(a.mtime),
    ctime: toDate(a.ctime),
  }
}

export class FuseNativeAdapter {
  private fuse: FuseInstance | undefined
  /** path -> inode number; every change of a name binding goes through this adapter. */
  private readonly paths = new Map<string, number>()
  /**
   * libfuse's high-level API does not unlink an open file: it renames it to
   * `.fuse_hidden<node><counter>` (unique per mount) and unlinks that name at the last release.
   * Such a file would show up in readdir, keep its directory non-empty and keep nlink 1. We
   * unlink it in the core at once instead (open handles keep the inode) and remember the hidden
   * name, by basename since its directory may be renamed, until libfuse unlinks it.
   */
  private readonly hidden = new Map<string, number>()

  /** Calls of each operation (libfuse 2 calls getattr for the kernel's lookups too). */
  private readonly counts = new Map<string, number>()

  constructor(
    private readonly core: FileSystem,
    readonly mountpoint: string,
    private readonly opts: AdapterOptions,
  ) {}

  counters(): AdapterCounters {
    return {ops: Object.fromEntries(this.counts)}
  }

  private count(op: string): void {
    this.counts.set(op, (this.counts.get(op) ?? 0) + 1)
    this.opts.onRequest?.()
  }

  /** Run `fn`; map its FsError to -errno, anything else to -EIO with a log line. */
  private run(cb: Callback, op: string, fn: () => unknown[] | void): void {
    this.count(op)
    let result: unknown[] | void
    try {
      result = fn()
    } catch (error) {
      if (error instanceof FsError) {
        cb(-error.errno)
        return
      }

      this.opts.log(`${op}: unexpected error: ${(error as Error)?.stack ?? String(error)}`)
      cb(EIO)
      return
    }

    if (result === undefined) cb(0)
    else cb(0, ...result)
  }

  private split(path: string): [string, string] {
    const i = path.lastIndexOf('/')
    return [i <= 0 ? '/' : path.slice(0, i), path.slice(i + 1)]
  }

  /** Inode of a path (no permission checks: the kernel made them). */
  private resolve(path: string): number {
    if (path === '/') return ROOT_INO
    const cached = this.paths.get(path)
    if (cached !== undefined) return cached
    const [parent, name] = this.split(path)
    const ino = this.core.find(this.resolve(parent), name)
    if (ino === 0) {
      const hidden = this.hidden.get(name)
      if (hidden !== undefined) return hidden
      throw new FsError('ENOENT', 'lookup', path)
    }

    this.paths.set(path, ino)
    return ino
  }

  private forget(path: string, isDir: boolean): void {
    if (isDir) this.paths.clear()
    else this.paths.delete(path)
  }

  private parentOf(path: string): [number, string] {
    const [parent, name] = this.split(path)
    return [this.resolve(parent), name]
  }

  private ops(): Record<string, unknown> {
    const core = this.core
    const cred = ROOT_CRED
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- fuse-native calls each op with its own arguments
    const ops: Record<string, (...args: any[]) => void> = {
      init: (cb: Callback) => cb(0),
      statfs: (_p: string, cb: Callback) => this.run(cb, 'statfs', () => [core.statfs()]),
      getattr: (p: string, cb: Callback) =>
        this.run(cb, 'getattr', () => {
          const attr = core.getattr(this.resolve(p))
          // libfuse takes one off a hidden file's nlink (for it the hidden name is still a link);
          // the core has dropped that link already.
          const hidden = this.hidden.has(p.slice(p.lastIndexOf('/') + 1))
          return [statOf(hidden ? {...attr, nlink: attr.nlink + 1} : attr)]
        }),
      access: (p: string, mode: number, cb: Callback) => this.run(cb, 'access', () => core.access(this.resolve(p), mode, cred)),
      readlink: (p: string, cb: Callback) => this.run(cb, 'readlink', () => [core.readlink(this.resolve(p)).toString()]),
      opendir: (p: string, _flags: number, cb: Callback) => this.run(cb, 'opendir', () => [core.opendir(this.resolve(p), cred)]),
      readdir: (p: string, cb: Callback) =>
        this.run(cb, 'readdir', () => {
          const names: string[] = []
          for (const e of core.readdir(this.resolve(p))) names.push(e.name.toString())
          return [names]
        }),
      releasedir: (_p: string, fh: number, cb: Callback) => this.run(cb, 'releasedir', () => core.releasedir(fh)),
      fsyncdir: (_p: string, _datasync: number, _fh: number, cb: Callback) => this.run(cb, 'fsyncdir', () => core.fsyncdir()),
      mkdir: (p: string, mode: number, cb: Callback) =>
        this.run(cb, 'mkdir', () => {
          const [parent, name] = this.parentOf(p)
          this.paths.set(p, core.mkdir(parent, name, mode, cred).ino)
        }),
      mknod: (p: string, mode: number, dev: number, cb: Callback) =>
        this.run(cb, 'mknod', () => {
          const [parent, name] = this.parentOf(p)
          this.paths.set(p, core.mknod(parent, name, mode, dev, cred).ino)
        }),
      symlink: (target: string, p: string, cb: Callback) =>
        this.run(cb, 'symlink', () => {
          const [parent, name] = this.parentOf(p)
          this.paths.set(p, core.symlink(parent, name, target, cred).ino)
        }),
      link: (src: string, dest: string, cb: Callback) =>
        this.run(cb, 'link', () => {
          const [parent, name] = this.parentOf(dest)
          core.link(this.resolve(src), parent, name, cred)
        }),
      unlink: (p: string, cb: Callback) =>
        this.run(cb, 'unlink', () => {
          const [parent, name] = this.split(p)
          if (this.hidden.delete(name)) return
          const parentIno = this.resolve(parent)
          core.unlink(parentIno, name, cred)
          this.forget(p, false)
        }),
      rmdir: (p: string, cb: Callback) =>
        this.run(cb, 'rmdir', () => {
          const [parent, name] = this.parentOf(p)
          core.rmdir(parent, name, cred)
          this.forget(p, true)
        }),
      rename: (src: string, dest: string, cb: Callback) =>
        this.run(cb, 'rename', () => {
          const [op, on] = this.parentOf(src)
          const [np, nn] = this.parentOf(dest)
          try {
            if (HIDDEN_NAME.test(nn) && op === np && core.find(np, nn) === 0) {
              const ino = this.resolve(src)
              core.unlink(op, on, cred)
              this.hidden.set(nn, ino)
              return
            }

            core.rename(op, on, np, nn, 0, cred)
          } finally {
            this.paths.clear()
          }
        }),
      chmod: (p: string, mode: number, cb: Callback) =>
        this.run(cb, 'chmod', () => {
          core.setattr(this.resolve(p), {mode}, cred)
        }),
      chown: (p: string, uid: number, gid: number, cb: Callback) =>
        this.run(cb, 'chown', () => {
          // (uid_t)-1 / (gid_t)-1 mean "leave as is".
          core.setattr(this.resolve(p), {uid: uid === 0xffffffff ? undefined : uid, gid: gid === 0xffffffff ? undefined : gid}, cred)
        }),
      truncate: (p: string, size: number, cb: Callback) =>
        this.run(cb, 'truncate', () => {
          core.setattr(this.resolve(p), {size}, cred)
        }),
      ftruncate: (p: string, fh: number, size: number, cb: Callback) =>
        this.run(cb, 'ftruncate', () => {
          core.setattr(this.resolve(p), {size, fh}, cred)
        }),
      // fuse-native passes atime twice and times in ms (README, Known limitations).
      utimens: (p: string, atime: number, mtime: number, cb: Callback) =>
        this.run(cb, 'utimens', () => {
          const ts = (ms: number) => ({sec: Math.floor(ms / 1000), nsec: Math.round((ms % 1000) * 1e6)})
          core.setattr(this.resolve(p), {atime: ts(atime), mtime: ts(mtime)}, cred)
        }),
      open: (p: string, flags: number, cb: Callback) => this.run(cb, 'open', () => [core.open(this.resolve(p), flags, cred)]),
      create: (p: string, mode: number, cb: Callback) =>
        this.run(cb, 'create', () => {
          const [parent, name] = this.parentOf(p)
          const {fh, attr} = core.create(parent, name, mode, fs.constants.O_RDWR, cred)
          this.paths.set(p, attr.ino)
          return [fh]
        }),
      read: (_p: string, fh: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void) => {
        this.count('read')
        try {
          cb(core.read(fh, buf.length === len ? buf : buf.subarray(0, len), pos))
        } catch (error) {
          this.fail(cb, 'read', error)
        }
      },
      write: (_p: string, fh: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void) => {
        this.count('write')
        try {
          cb(core.write(fh, buf.length === len ? buf : buf.subarray(0, len), pos))
        } catch (error) {
          this.fail(cb, 'write', error)
        }
      },
      flush: (_p: string, fh: number, cb: Callback) => this.run(cb, 'flush', () => core.flush(fh)),
      fsync: (_p: string, datasync: number, fh: number, cb: Callback) => this.run(cb, 'fsync', () => core.fsync(fh, datasync !== 0)),
      release: (_p: string, fh: number, cb: Callback) => this.run(cb, 'release', () => core.release(fh)),
      setxattr: (p: string, name: string, value: Buffer, _position: number, flags: number, cb: Callback) =>
        this.run(cb, 'setxattr', () => {
          core.setxattr(this.resolve(p), name, Buffer.from(value), flags, cred)
        }),
      getxattr: (p: string, name: string, _position: number, cb: Callback) => this.run(cb, 'getxattr', () => [core.findxattr(this.resolve(p), name, cred)]),
      listxattr: (p: string, cb: Callback) => this.run(cb, 'listxattr', () => [core.listxattr(this.resolve(p), cred)]),
      removexattr: (p: string, name: string, cb: Callback) => this.run(cb, 'removexattr', () => core.removexattr(this.resolve(p), name, cred)),
    }
    return ops
  }

  private fail(cb: (n: number) => void, op: string, error: unknown): void {
    if (error instanceof FsError) {
      cb(-error.errno)
      return
    }

    this.opts.log(`${op}: unexpected error: ${(error as Error)?.stack ?? String(error)}`)
    cb(EIO)
  }

  /** Mount; resolves once the kernel has the mount. */
  async mount(): Promise<void> {
    const Fuse = loadFuseNative()
    // fuse-native exposes few options; the rest ride along in fsname (PLATFORM.md).
    const settings = this.opts.settings ?? parseMountOptions('')
    const extra = ['use_ino', 'big_writes', 'max_write=131072', 'default_permissions', ...libfuse2Options(settings)]
    this.fuse = new Fuse(this.mountpoint, this.ops(), {
      fsname: `${escapeOptionValue(this.opts.fsname ?? 'razorfs')},${extra.join(',')}`,
      subtype: 'razorfs',
      timeout: false,
      force: false,
    })
    fixXattrSizes(this.fuse)
    await new Promise<void>((resolve, reject) => {
      this.fuse!.mount(err => (err ? reject(err) : resolve()))
    })
  }

  /**
   * Unmount (fusermount -uz); resolves when the FUSE session has ended. After an outside unmount
   * fuse-native's own unmount fails (fusermount finds nothing) and skips releasing the session's
   * libuv handle, which would keep the process alive forever: release it here instead.
   */
  async unmount(): Promise<void> {
    const fuse = this.fuse
    if (fuse === undefined) return
    this.fuse = undefined
    try {
      await new Promise<void>((resolve, reject) => {
        fuse.unmount(err => (err ? reject(err) : resolve()))
      })
    } catch (error) {
      if (mountPoints().has(this.mountpoint)) throw error
      releaseSession(fuse)
    }
  }
}
