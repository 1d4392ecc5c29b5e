/**
 * The low-level adapter: libfuse 3's inode-based requests (through our razorfs_ll addon) mapped
 * onto the filesystem core, one call each. Every request gets exactly one reply: the result, or
 * -errno for an FsError, or EIO (and a log line) for anything unexpected. No POSIX logic here.
 */
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import {constants as osConstants} from 'node:os'

import type {Attr} from '../storage/types.js'
import {type DirBatch, DirReader} from '../vfs/dir-reader.js'
import {copyFileRange, fallocate, seekData} from '../vfs/file-ranges.js'
import {type Cred, type FileSystem, type TimeSet} from '../vfs/filesystem.js'
import {type ChangeSink, FsError, RENAME_EXCHANGE} from '../vfs/volume.js'
import {fitXattr, xattrList} from '../vfs/xattr-sizes.js'
import {findMount} from './mountinfo.js'
import type {AdapterCounters} from './status.js'
import {LL_TIMEOUTS, type MountSettings, escapeOptionValue, parseMountOptions} from './mount-options.js'
import {Passthrough} from './ll/passthrough.js'
import {type LowLevelAddon, MOUNT_MODE, OP, OPEN_NEW_FILE, type RequestContext, loadLowLevel, requestPoller} from './ll/binding.js'
import {KernelCache} from './ll/kernel-cache.js'
import {type EndedRequest, type InitRequest, type LlRequest, mountLowLevel} from './ll/requests.js'

export interface LowLevelOptions {
  /** What -o asked for (default: no option). */
  settings?: MountSettings
  /** The mount's source, as /proc/self/mountinfo and df show it (default: razorfs). */
  fsname?: string
  log: (line: string) => void
  /** Called once when the session ends (unmount from inside or outside). */
  onEnded: () => void
  /** Polling window in microseconds (default POLL_WINDOW_US; 0 turns polling off). */
  pollUs?: number
  /** Session loop threads (default LOOP_THREADS: 0, the JS thread). */
  loopThreads?: number
  /**
   * Name, attribute and missing-name timeouts and page cache mode where -o sets none (default
   * LL_TIMEOUTS and kernel_cache; SHARED_DEFAULTS for a volume on PostgreSQL).
   */
  defaults?: {entryTimeout: number; attrTimeout: number; negativeTimeout: number; cache: 'kernel_cache' | 'auto_cache'}
  /** Called before each request is handled (serve.ts counts them for its resident budget). */
  onRequest?: () => void
}

/** Largest write request the kernel may send (FUSE max_write). */
const MAX_WRITE = 1 << 20

/**
 * Seconds the kernel may cache names and attributes unless -o says otherwise: every change goes
 * through this mount (LL_TIMEOUTS).
 */
export const TIMEOUT = LL_TIMEOUTS.attrTimeout
const ATTR_FIELDS = 14
const ERRNO = osConstants.errno
const ENODATA = ERRNO.ENODATA
/** The attributes of a negative entry (inode 0). */
const NO_ATTR = new Float64Array(ATTR_FIELDS)

function attrArray(a: Attr, out: Float64Array, at = 0): Float64Array {
  out[at] = a.ino
  out[at + 1] = a.mode
  out[at + 2] = a.nlink
  out[at + 3] = a.uid
  out[at + 4] = a.gid
  out[at + 5] = a.rdev
  out[at + 6] = a.size
  out[at + 7] = a.blocks
  out[at + 8] = a.atime.sec
  out[at + 9] = a.atime.nsec
  out[at + 10] = a.mtime.sec
  out[at + 11] = a.mtime.nsec
  out[at + 12] = a.ctime.sec
  out[at + 13] = a.ctime.nsec
  return out
}

/**
 * The session loop: 0 serves /dev/fuse from the JS thread (the addon reads requests when the event
 * loop sees the device readable and hands each to dispatch at once), N >= 1 from N libfuse worker
 * threads that queue requests to the JS thread. Every request is served by the one JS thread
 * either way; the workers only add a second thread's wake-up to each request (create, stat and
 * unlink went 2-2.5x faster without them, docs/ARCHITECTURE.md, "FUSE bindings").
 */
export const LOOP_THREADS = 0
/** Entries of a plain readdir answer (the addon keeps what the kernel did not ask for yet). */
const DIR_RUN = 16384

/**
 * Entries to answer a readdir request of `size` bytes with. readdirplus: enough to fill `size` (an
 * entry takes at least 152 bytes with its attributes). Plain readdir: a run of DIR_RUN entries,
 * kept in the addon, which answers the kernel's next requests on the handle from it.
 */
export const direntBatch = (size: number, plus: boolean): number => (plus ? Math.max(1, Math.ceil(size / 152)) : DIR_RUN)

/** The names of OP by number, for the counters. */
const OP_NAMES = Object.entries(OP)
  .sort((a, b) => a[1] - b[1])
  .map(([name]) => name.toLowerCase())

export class LowLevelAdapter {
  private readonly ll: LowLevelAddon
  private session: object | undefined
  private ended = false
  /** Answers readdir(plus) requests (and keeps the last answer of each handle, which the kernel may ask for again). */
  private readonly dirs: DirReader
  private readonly settings: MountSettings
  private readonly entryTimeout: number
  private readonly attrTimeout: number
  /** Seconds the kernel keeps a missing name (0: it asks again each time). */
  private readonly negativeTimeout: number
  /** The page cache mode of each open, and a watched mount's record of the names it gave the kernel. */
  private readonly kcache: KernelCache
  /** Requests by operation number. */
  private readonly counts = new Float64Array(OP_NAMES.length)
  /** The attribute array of the reply being made (attrs). */
  private readonly attrScratch = new Float64Array(ATTR_FIELDS)
  /** -o uid=, gid=, umask=: what every file shows instead of its own (see present). */
  private readonly presented: boolean
  /** Which backing file each open names (kernel passthrough: the kernel reads and writes the content file itself). */
  private passthrough: Passthrough | undefined

  constructor(
    private readonly core: FileSystem,
    readonly mountpoint: string,
    private readonly opts: LowLevelOptions,
  ) {
    this.ll = loadLowLevel()
    this.polled = requestPoller(opts.pollUs)
    this.dirs = new DirReader(core, DIR_RUN)
    this.settings = opts.settings ?? parseMountOptions('')
    const defaults = opts.defaults ?? {...LL_TIMEOUTS, cache: 'kernel_cache'}
    this.entryTimeout = this.settings.entryTimeout ?? defaults.entryTimeout
    this.attrTimeout = this.settings.attrTimeout ?? defaults.attrTimeout
    this.negativeTimeout = this.settings.negativeTimeout ?? defaults.negativeTimeout
    this.kcache = new KernelCache(this.settings.cache ?? defaults.cache, {
      invalidateInode: (ino, off) => this.invalidate(ino, off),
      invalidateEntry: (parent, name) => this.invalidateEntry(parent, name),
      log: line => this.opts.log(line),
    })
    this.presented = this.settings.uid !== undefined || this.settings.gid !== undefined || this.settings.umask !== undefined
  }

  /**
   * Where the volume reports changes made elsewhere (Volume.watch, a shared volume's other
   * mounts): each becomes an invalidation the addon writes to the kernel from its notify thread,
   * so a name or attributes cached for the long timeouts are dropped when they change.
   */
  changes(): ChangeSink {
    this.kcache.watched = true
    return {
      inode: (ino, data) => this.invalidate(ino, data ? 0 : -1),
      entry: (parent, name) => this.invalidateEntry(parent, name),
      missed: () => {
        if (this.session !== undefined) this.kcache.dropSeen()
      },
    }
  }

  /**
   * The kernel left clearing set-user-ID and set-group-ID to us (FUSE_HANDLE_KILLPRIV_V2) for a
   * request whose reply carries no attributes (write, open): where the mode changed, the kernel's
   * cached attributes are dropped. True if it changed.
   */
  private clearSetId(ino: number): boolean {
    if (!this.core.clearSetId(ino)) return false
    this.invalidate(ino, -1)
    return true
  }

  /** Queue the invalidation of an inode's attributes (and with off >= 0, its pages from off). */
  private invalidate(ino: number, off: number): void {
    if (this.session !== undefined) this.ll.notifyInvalInode(this.session, ino, off, 0)
  }

  /** Queue the invalidation of the kernel's entry for `name` in `parent`. */
  private invalidateEntry(parent: number, name: Buffer): void {
    if (this.session !== undefined) this.ll.notifyInvalEntry(this.session, parent, name)
  }

  counters(): AdapterCounters {
    const ops: Record<string, number> = {}
    for (const [i, n] of this.counts.entries()) if (n > 0) ops[OP_NAMES[i]] = n
    return {ops, pageCache: {kept: this.kcache.kept, dropped: this.kcache.dropped}}
  }

  private resolveEnded: () => void = () => {}
  private readonly endedSignal = new Promise<void>(resolve => {
    this.resolveEnded = resolve
  })

  /** Keeps the JS thread awake for the next request (see requestPoller). */
  private readonly polled: () => void

  /** Where reads land before they go to the kernel (grows to the largest read asked for). */
  private readBuf = Buffer.allocUnsafe(0)

  /** The FUSE connection number (/sys/fs/fuse/connections/N), to abort a session that hangs. */
  private connection: number | undefined

  async mount(): Promise<void> {
    const fsname = escapeOptionValue(this.opts.fsname ?? 'razorfs')
    const options = ['default_permissions', `fsname=${fsname}`, 'subtype=razorfs', ...this.settings.kernel].join(',')
    // On a volume no other host changes (a shared one keeps contents in its database anyway).
    const passthrough = this.settings.passthrough && !this.settings.readOnly && !this.kcache.watched
    this.passthrough = new Passthrough(this.ll, this.core, line => this.opts.log(line), passthrough)
    this.session = mountLowLevel(
      this.ll,
      this.mountpoint,
      options,
      (r, caller) => this.dispatch(r, caller),
      MAX_WRITE,
      // kernel_cache: every change goes through this mount, so a file's pages stay valid when its
      // mtime moves (libfuse would drop them at each attribute refresh after a write). No writeback.
      // killpriv: the kernel stops asking for security.capability before each write (native/kernel.c)
      // where no other host can set one behind its back; the server clears set-user-ID instead.
      (this.kcache.mode === 'kernel_cache' ? MOUNT_MODE.keepPages : 0) |
        (this.kcache.watched ? 0 : MOUNT_MODE.killpriv) |
        (passthrough ? MOUNT_MODE.passthrough : 0),
      this.opts.loopThreads ?? LOOP_THREADS,
      this.settings.maxRead,
    )
    // Never stat our own mountpoint from this thread (the request would wait for this thread).
    this.connection = findMount(this.mountpoint)?.minor
  }

  /**
   * Detach the mount and wait for the session to end. Files still open elsewhere keep a detached
   * FUSE connection alive; after a grace period the connection is aborted.
   */
  async unmount(): Promise<void> {
    if (this.session === undefined || this.ended) return
    this.ll.unmount(this.session)
    const waited = (ms: number) =>
      new Promise<boolean>(resolve => {
        const timer = setTimeout(() => resolve(false), ms)
        void this.endedSignal.then(() => {
          clearTimeout(timer) // a pending timer would keep the process alive
          resolve(true)
        })
      })
    if (await waited(3000)) return
    if (this.connection !== undefined) {
      this.opts.log(`files still open on the detached mount: aborting FUSE connection ${this.connection}`)
      try {
        const control = '/sys/fs/fuse/connections'
        if (!fs.existsSync(`${control}/${this.connection}`)) spawnSync('mount', ['-t', 'fusectl', 'fusectl', control], {stdio: 'ignore'})
        fs.writeFileSync(`${control}/${this.connection}/abort`, '1')
      } catch (error) {
        this.opts.log(`abort: ${(error as Error).message}`)
      }
    }

    await waited(3000)
  }

  private fail(req: number, error: unknown, op: number, token = 0): void {
    if (error instanceof FsError) {
      this.ll.replyErr(req, error.errno, token)
      return
    }

    this.opts.log(`request ${op}: unexpected error: ${(error as Error)?.stack ?? String(error)}`)
    this.ll.replyErr(req, 5 /* EIO */, token)
  }

  private dispatch(r: LlRequest, caller: Readonly<RequestContext>): void {
    if (r.op === OP.ENDED) {
      this.ended = true
      this.resolveEnded()
      this.opts.onEnded()
      return
    }

    if (r.op === OP.INIT) return
    this.counts[r.op]++
    this.opts.onRequest?.()
    try {
      this.handle(r, {uid: caller.uid, gid: caller.gid})
    } catch (error) {
      this.fail(r.req, error, r.op, r.op === OP.WRITE ? r.token : 0)
    }

    this.polled()
  }

  /** Reply with the entry `name` in `parent` (remembered on a watched mount). */
  private entry(req: number, parent: number, name: Buffer, attr: Attr): void {
    this.kcache.note(parent, name, attr.ino)
    this.ll.replyEntry(req, this.attrs(attr), this.entryTimeout, this.attrTimeout)
  }

  /**
   * An attribute array of `attr` as the mount shows it (see present), for the reply being made: it
   * is one array, filled again by the next call (a reply copies it before it returns).
   */
  private attrs(attr: Attr): Float64Array {
    const out = attrArray(attr, this.attrScratch)
    if (this.presented) this.present(out, 0)
    return out
  }

  /**
   * -o uid=N, gid=N, umask=M, as libfuse 2's high-level API shows them: every file has that owner,
   * that group, and the permission bits 0777 & ~M (its own, setuid, setgid and sticky bits are not
   * shown). Only what the kernel sees changes: the image keeps each file's own.
   */
  private present(a: Float64Array, at: number): void {
    const s = this.settings
    if (s.uid !== undefined) a[at + 3] = s.uid
    if (s.gid !== undefined) a[at + 4] = s.gid
    if (s.umask !== undefined) a[at + 1] = (a[at + 1] & 0o170000) | (0o777 & ~s.umask)
  }

  private handle(r: Exclude<LlRequest, EndedRequest | InitRequest>, cred: Cred): void {
    const core = this.core
    const ll = this.ll
    const req = r.req
    switch (r.op) {
      case OP.LOOKUP: {
        const ino = core.find(r.parent, r.name)
        if (ino === 0) this.miss(r.parent, req, cred)
        else this.entry(req, r.parent, r.name, core.getattr(ino))
        return
      }

      case OP.GETATTR:
        ll.replyAttr(req, this.attrs(core.getattr(r.ino)), this.attrTimeout)
        return
      case OP.SETATTR: {
        const f = r.fields
        const time = (now?: 1, sec?: number, nsec?: number): TimeSet | undefined => (now ? 'now' : sec === undefined ? undefined : {sec, nsec: nsec ?? 0})
        const attr = core.setattr(
          r.ino,
          {
            mode: f.mode,
            uid: f.uid,
            gid: f.gid,
            size: f.size,
            atime: time(f.atimeNow, f.atimeSec, f.atimeNsec),
            mtime: time(f.mtimeNow, f.mtimeSec, f.mtimeNsec),
            fh: r.fh >= 0 ? r.fh : undefined,
            clearSetId: f.killSuidgid === 1,
          },
          cred,
        )
        ll.replyAttr(req, this.attrs(attr), this.attrTimeout)
        return
      }

      case OP.READLINK:
        ll.replyReadlink(req, core.readlink(r.ino))
        return
      case OP.MKNOD:
        this.entry(req, r.parent, r.name, core.mknod(r.parent, r.name, r.mode, r.rdev, cred))
        return
      case OP.MKDIR:
        this.entry(req, r.parent, r.name, core.mkdir(r.parent, r.name, r.mode, cred))
        return
      case OP.UNLINK:
        core.unlink(r.parent, r.name, cred)
        ll.replyErr(req, 0)
        return
      case OP.RMDIR:
        core.rmdir(r.parent, r.name, cred)
        ll.replyErr(req, 0)
        return
      case OP.SYMLINK:
        this.entry(req, r.parent, r.name, core.symlink(r.parent, r.name, r.target, cred))
        return
      case OP.RENAME: {
        // The kernel moves its entry to the new name (and, for an exchange, the other to the old
        // one): remembered with the inodes the names had here, with no lookup of the volume.
        const moved = this.kcache.seenIno(r.parent, r.name)
        const swapped = this.kcache.seenIno(r.newParent, r.newName)
        core.rename(r.parent, r.name, r.newParent, r.newName, r.flags, cred)
        this.kcache.note(r.newParent, r.newName, moved)
        if (r.flags & RENAME_EXCHANGE) this.kcache.note(r.parent, r.name, swapped)
        ll.replyErr(req, 0)
        return
      }
      case OP.LINK:
        this.entry(req, r.newParent, r.newName, core.link(r.ino, r.newParent, r.newName, cred))
        return
      case OP.OPEN: {
        const {made: fh, backing} = this.passthrough!.opened(
          this.session!,
          prepare => core.open(r.ino, r.flags, cred, prepare),
          () => {
            if (r.kill) this.clearSetId(r.ino)
          },
        )
        // The kernel's page cache stays valid across opens (only this mount changes the image),
        // but for a served open while passthrough is on (cacheFlags).
        const flags = this.kcache.openFlags(r.ino, () => core.getattr(r.ino))
        ll.replyOpen(req, fh, this.passthrough!.cacheFlags(flags, backing), backing)
        return
      }
      case OP.READ: {
        // One buffer serves every read: replyBuf hands the bytes to the kernel before it returns.
        if (this.readBuf.length < r.size) this.readBuf = Buffer.allocUnsafe(r.size)
        const buf = this.readBuf.subarray(0, r.size)
        ll.replyBuf(req, buf, core.read(r.fh, buf, r.off))
        return
      }

      case OP.WRITE: {
        let n: number
        try {
          if (r.kill) this.clearSetId(r.ino)
          n = core.write(r.fh, r.data, r.off)
        } catch (error) {
          this.fail(req, error, r.op, r.token)
          return
        }

        ll.replyWrite(req, n, r.token, r.data)
        return
      }

      case OP.FLUSH:
        core.flush(r.fh)
        ll.replyErr(req, 0)
        return
      case OP.RELEASE:
        try {
          core.release(r.fh)
        } finally {
          // Even when the core's release fails (a full log at the last close): the kernel has let go.
          this.passthrough!.release(this.ended ? undefined : this.session, r.fh)
        }

        ll.replyErr(req, 0)
        return
      case OP.FSYNC:
        core.fsync(r.fh, r.datasync !== 0)
        ll.replyErr(req, 0)
        return
      case OP.OPENDIR:
        ll.replyOpen(req, core.opendir(r.ino, cred), 0)
        return
      case OP.READDIR:
      case OP.READDIRPLUS: {
        const plus = r.op === OP.READDIRPLUS
        this.dirs.read(r.fh, r.off, direntBatch(r.size, plus), batch => this.replyDirents(req, r.size, plus, batch, r.fh, r.off))
        return
      }

      case OP.RELEASEDIR:
        this.dirs.releasedir(r.fh)
        ll.replyErr(req, 0)
        return
      case OP.FSYNCDIR:
        core.fsyncdir()
        ll.replyErr(req, 0)
        return
      case OP.STATFS: {
        const s = core.statfs()
        ll.replyStatfs(req, Float64Array.of(s.bsize, s.frsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.favail, 0, 0, s.namemax))
        return
      }

      case OP.SETXATTR:
        core.setxattr(r.ino, r.name.toString(), r.value, r.flags, cred)
        ll.replyErr(req, 0)
        return
      case OP.GETXATTR: {
        const value = core.findxattr(r.ino, r.name.toString(), cred)
        if (value === undefined) ll.replyErr(req, ENODATA)
        else this.xattrReply(req, fitXattr(value, r.size, 'getxattr'))
        return
      }
      case OP.LISTXATTR:
        this.xattrReply(req, fitXattr(xattrList(core.listxattr(r.ino, cred)), r.size, 'listxattr'))
        return

      case OP.REMOVEXATTR:
        core.removexattr(r.ino, r.name.toString(), cred)
        ll.replyErr(req, 0)
        return
      case OP.ACCESS:
        core.access(r.ino, r.mask, cred)
        ll.replyErr(req, 0)
        return
      case OP.CREATE: {
        const {
          made: {fh, created},
          backing,
          then: attr,
        } = this.passthrough!.opened(
          this.session!,
          prepare => core.create(r.parent, r.name, r.mode, r.flags, cred, prepare),
          m => (!m.created && r.kill && this.clearSetId(m.attr.ino) ? core.getattr(m.attr.ino) : m.attr),
        )
        this.kcache.note(r.parent, r.name, attr.ino)
        // A file made here on an image no other host changes has no capability (native/caps.c).
        const fresh = created && !this.kcache.watched ? OPEN_NEW_FILE : 0
        ll.replyCreate(
          req,
          this.attrs(attr),
          this.entryTimeout,
          this.attrTimeout,
          fh,
          this.passthrough!.cacheFlags(
            this.kcache.openFlags(attr.ino, () => attr, created),
            backing,
          ) | fresh,
          backing,
        )
        return
      }

      case OP.FALLOCATE:
        fallocate(core, r.ino, r.fh, r.mode, r.off, r.length, cred)
        ll.replyErr(req, 0)
        return
      case OP.LSEEK:
        ll.replyLseek(req, seekData(core, r.ino, r.off, r.whence))
        return
      case OP.COPY_FILE_RANGE:
        ll.replyWrite(req, copyFileRange(core, r.fh, r.off, r.fhOut, r.offOut, r.length), 0, Buffer.alloc(0))
        return
      default:
        throw new FsError('ENOSYS', `op ${(r as LlRequest).op}`)
    }
  }

  /**
   * A lookup of a name that does not exist: ENOTDIR or EACCES if that is the reason, else ENOENT,
   * or where missing names are cached (negativeTimeout) a negative entry (inode 0) the kernel keeps
   * that long. No Error is made: every create starts with such a lookup.
   */
  private miss(parent: number, req: number, cred: Cred): void {
    const why = this.core.missing(parent, cred)
    if (why === 'ENOENT' && this.negativeTimeout > 0) this.ll.replyEntry(req, NO_ATTR, this.negativeTimeout, 0)
    else this.ll.replyErr(req, ERRNO[why])
  }

  /** getxattr/listxattr: the length the caller asked for, or the value. */
  private xattrReply(req: number, answer: Buffer | number): void {
    if (typeof answer === 'number') this.ll.replyXattr(req, answer)
    else this.ll.replyBuf(req, answer)
  }

  /** Attributes of a readdir answer, 14 numbers an entry (reused). */
  private readonly direntAttrs = new Float64Array(ATTR_FIELDS * DIR_RUN)

  /**
   * Answer a readdir(plus) with `batch`; returns how many entries went to the kernel. readdirplus:
   * attributes for all but '.' and '..'; plain: the inode and type only, and the addon keeps what
   * did not fit as the handle's run and answers the next requests from it.
   */
  private replyDirents(req: number, size: number, plus: boolean, batch: DirBatch, fh: number, off: number): number {
    const attrs = this.direntAttrs
    const n = batch.count
    for (let i = 0; i < n; i++) {
      const at = ATTR_FIELDS * i
      const attr = plus ? batch.attr(i) : undefined
      if (attr !== undefined) {
        attrArray(attr, attrs, at)
        if (this.presented) this.present(attrs, at)
      } else {
        attrs[at] = batch.inos[i]
        attrs[at + 1] = batch.types[i]
      }
    }

    const entryAttrs = attrs.subarray(0, ATTR_FIELDS * n)
    if (!plus) return this.ll.replyDirents(req, size, false, batch.names, batch.ends, entryAttrs, batch.offs, this.entryTimeout, this.attrTimeout, fh, off)
    const taken = this.ll.replyDirents(req, size, true, batch.names, batch.ends, entryAttrs, batch.offs, this.entryTimeout, this.attrTimeout)
    if (this.kcache.watched) {
      // readdirplus gave the kernel an entry for each name but '.' and '..'
      const dir = this.core.dirOf(fh)
      for (let i = 0; i < taken; i++)
        if (batch.offs[i] > 2) this.kcache.note(dir, batch.names.subarray(i === 0 ? 0 : batch.ends[i - 1], batch.ends[i]), batch.inos[i])
    }

    return taken
  }
}
