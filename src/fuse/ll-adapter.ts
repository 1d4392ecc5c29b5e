/**
 * The low-level adapter: libfuse 3's inode-based requests (through our razorfs_ll addon) mapped
 * onto the filesystem core, one call each. Every request gets exactly one reply: the result, or
 * -errno for an FsError, or EIO (and a log line) for anything unexpected. No POSIX logic here.
 */
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'

import type {Attr} from '../storage/types.js'
import {type Cred, type FileSystem, type TimeSet} from '../vfs/filesystem.js'
import {FsError, direntSink} from '../vfs/volume.js'
import {findMount} from './mountinfo.js'
import {
  type LowLevelAddon, OP, OPEN_KEEP_CACHE, type RequestContext, loadLowLevel, requestPoller,
} from './ll/binding.js'
import {type EndedRequest, type InitRequest, type LlRequest, mountLowLevel} from './ll/requests.js'

export interface LowLevelOptions {
  /** -o options for libfuse / the kernel. */
  options: string[]
  log: (line: string) => void
  /** Called once when the session ends (unmount from inside or outside). */
  onEnded: () => void
  /** Polling window in microseconds (default POLL_WINDOW_US; 0 turns polling off). */
  pollUs?: number
}

/** Largest write request the kernel may send (FUSE max_write). */
const MAX_WRITE = 1 << 20

/** Seconds the kernel may cache names and attributes: every change goes through this mount. */
export const TIMEOUT = 1.0
const ATTR_FIELDS = 14
const SEEK_DATA = 3
const SEEK_HOLE = 4

function attrArray(a: Attr, out = new Float64Array(ATTR_FIELDS), at = 0): Float64Array {
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
 * A readdirplus answer, kept by the adapter per directory handle: the kernel may take fewer of its
 * entries than it got and ask again from the first one it did not take. The handle's listing
 * (the core's) stands after every entry handed to the kernel so far, at `upTo`; offsets are
 * positions. (Plain answers are kept by the addon, which serves such requests itself.)
 */
interface HeldAnswer {
  offs: Float64Array
  names: Buffer
  ends: Uint32Array
  inos: Float64Array
  types: Uint32Array
  upTo: number
}

/**
 * Worker threads of libfuse's session loop. Every request is served by the one JS thread, so more
 * workers only let the kernel hand over requests while JS is busy; with 4 (idle workers are woken
 * in turn, each one cold) a stat cost 35-57 µs of server CPU against 27-28 µs with 1 or 2
 * (bench/noop-ll.ts, 10k stats; docs/ARCHITECTURE.md). Two keep a write in flight while JS works.
 */
export const LOOP_THREADS = 2
/** Entries of a plain readdir answer (the addon keeps what the kernel did not ask for yet). */
const DIR_RUN = 16384

/**
 * Entries to answer a readdir request of `size` bytes with. readdirplus: enough to fill `size` (an
 * entry takes at least 152 bytes with its attributes). Plain readdir: a run of DIR_RUN entries,
 * kept in the addon, which answers the kernel's next requests on the handle from it.
 */
export const direntBatch = (size: number, plus: boolean): number => (plus ? Math.max(1, Math.ceil(size / 152)) : DIR_RUN)

export class LowLevelAdapter {
  private readonly ll: LowLevelAddon
  private session: object | undefined
  private readonly held = new Map<number, HeldAnswer>()
  private ended = false

  constructor(private readonly core: FileSystem, readonly mountpoint: string, private readonly opts: LowLevelOptions) {
    this.ll = loadLowLevel()
    this.polled = requestPoller(opts.pollUs)
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
    const options = ['default_permissions', 'fsname=razorfs', 'subtype=razorfs', ...this.opts.options].join(',')
    this.session = mountLowLevel(this.ll, this.mountpoint, options, (r, caller) => this.dispatch(r, caller),
      MAX_WRITE, 0 /* no writeback cache */, LOOP_THREADS)
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
    const waited = (ms: number) => new Promise<boolean>(resolve => {
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
    try {
      this.handle(r, {uid: caller.uid, gid: caller.gid})
    } catch (error) {
      this.fail(r.req, error, r.op, r.op === OP.WRITE ? r.token : 0)
    }

    this.polled()
  }

  private entry(req: number, attr: Attr): void {
    this.ll.replyEntry(req, attrArray(attr), TIMEOUT, TIMEOUT)
  }

  private handle(r: Exclude<LlRequest, EndedRequest | InitRequest>, cred: Cred): void {
    const core = this.core
    const ll = this.ll
    const req = r.req
    switch (r.op) {
      case OP.LOOKUP: {
        // A miss is answered with ino 0 and a timeout: the kernel caches the negative entry.
        const ino = core.find(r.parent, r.name)
        if (ino === 0) {
          core.lookup(r.parent, r.name, cred) // ENOENT, or ENOTDIR/EACCES if that is the reason
        }

        this.entry(req, core.getattr(ino))
        return
      }

      case OP.GETATTR:
        ll.replyAttr(req, attrArray(core.getattr(r.ino)), TIMEOUT)
        return
      case OP.SETATTR: {
        const f = r.fields
        const time = (now?: 1, sec?: number, nsec?: number): TimeSet | undefined =>
          now ? 'now' : sec === undefined ? undefined : {sec, nsec: nsec ?? 0}
        const attr = core.setattr(r.ino, {
          mode: f.mode, uid: f.uid, gid: f.gid, size: f.size,
          atime: time(f.atimeNow, f.atimeSec, f.atimeNsec), mtime: time(f.mtimeNow, f.mtimeSec, f.mtimeNsec),
          fh: r.fh >= 0 ? r.fh : undefined,
        }, cred)
        ll.replyAttr(req, attrArray(attr), TIMEOUT)
        return
      }

      case OP.READLINK:
        ll.replyReadlink(req, core.readlink(r.ino))
        return
      case OP.MKNOD:
        this.entry(req, core.mknod(r.parent, r.name, r.mode, r.rdev, cred))
        return
      case OP.MKDIR:
        this.entry(req, core.mkdir(r.parent, r.name, r.mode, cred))
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
        this.entry(req, core.symlink(r.parent, r.name, r.target, cred))
        return
      case OP.RENAME:
        core.rename(r.parent, r.name, r.newParent, r.newName, r.flags, cred)
        ll.replyErr(req, 0)
        return
      case OP.LINK:
        this.entry(req, core.link(r.ino, r.newParent, r.newName, cred))
        return
      case OP.OPEN:
        // The kernel's page cache stays valid across opens: only this mount changes the image.
        ll.replyOpen(req, core.open(r.ino, r.flags, cred), OPEN_KEEP_CACHE)
        return
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
        core.release(r.fh)
        ll.replyErr(req, 0)
        return
      case OP.FSYNC:
        core.fsync(r.fh)
        ll.replyErr(req, 0)
        return
      case OP.OPENDIR:
        ll.replyOpen(req, core.opendir(r.ino, cred), 0)
        return
      case OP.READDIR:
      case OP.READDIRPLUS:
        this.readdir(req, r.fh, r.size, r.off, r.op === OP.READDIRPLUS)
        return
      case OP.RELEASEDIR:
        this.held.delete(r.fh)
        core.releasedir(r.fh)
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
      case OP.GETXATTR:
        this.sized(req, core.getxattr(r.ino, r.name.toString(), cred), r.size)
        return
      case OP.LISTXATTR: {
        const names = core.listxattr(r.ino, cred)
        this.sized(req, Buffer.concat(names.map(n => Buffer.from(`${n}\0`))), r.size)
        return
      }

      case OP.REMOVEXATTR:
        core.removexattr(r.ino, r.name.toString(), cred)
        ll.replyErr(req, 0)
        return
      case OP.ACCESS:
        core.access(r.ino, r.mask, cred)
        ll.replyErr(req, 0)
        return
      case OP.CREATE: {
        const {fh, attr} = core.create(r.parent, r.name, r.mode, r.flags, cred)
        ll.replyCreate(req, attrArray(attr), TIMEOUT, TIMEOUT, fh, OPEN_KEEP_CACHE)
        return
      }

      case OP.FALLOCATE: {
        // mode 0 only: make [offset, offset + length) part of the file (holes read as zeros).
        if (r.mode !== 0) throw new FsError('EOPNOTSUPP', 'fallocate')
        const attr = core.getattr(r.ino)
        const end = r.off + r.length
        if (end > attr.size) core.setattr(r.ino, {size: end, fh: r.fh}, cred)
        ll.replyErr(req, 0)
        return
      }

      case OP.LSEEK: {
        // Contents may be sparse, but razorfs does not track holes: all of a file is data.
        const size = core.getattr(r.ino).size
        if (r.off >= size) throw new FsError('ENXIO', 'lseek')
        ll.replyLseek(req, r.whence === SEEK_DATA ? r.off : r.whence === SEEK_HOLE ? size : r.off)
        return
      }

      case OP.COPY_FILE_RANGE: {
        const chunk = Buffer.allocUnsafe(Math.min(r.length, 1 << 20))
        let done = 0
        while (done < r.length) {
          const n = core.read(r.fh, chunk.subarray(0, Math.min(chunk.length, r.length - done)), r.off + done)
          if (n === 0) break
          core.write(r.fhOut, chunk.subarray(0, n), r.offOut + done)
          done += n
        }

        ll.replyWrite(req, done, 0, Buffer.alloc(0))
        return
      }
      default:
        throw new FsError('ENOSYS', `op ${(r as LlRequest).op}`)
    }
  }

  /** getxattr/listxattr: size 0 asks for the size; too small a buffer is ERANGE. */
  private sized(req: number, value: Buffer, size: number): void {
    if (size === 0) this.ll.replyXattr(req, value.length)
    else if (value.length > size) throw new FsError('ERANGE', 'getxattr')
    else this.ll.replyBuf(req, value)
  }

  /** Where a readdir answer is gathered: names, inode numbers, attributes and offsets (reused). */
  private readonly sink = direntSink(DIR_RUN)
  private readonly direntAttrs = new Float64Array(ATTR_FIELDS * DIR_RUN)
  private readonly direntOffs = new Float64Array(DIR_RUN)

  /**
   * Answer a readdir(plus) at offset `off`: from where the listing stands, after the kept
   * readdirplus entries past `off`, if the kernel asks for those again (those whose names have
   * gone since are left out). Offset 0 starts over; any other offset (a seekdir) starts over and
   * counts to it.
   */
  private readdir(req: number, fh: number, size: number, off: number, plus: boolean): void {
    const listing = this.core.listing(fh)
    const held = this.held.get(fh)
    const {sink, direntAttrs: attrs, direntOffs: offs} = this
    const max = Math.min(direntBatch(size, plus), DIR_RUN)
    let again = 0 // entries sent again from `held`
    if (held !== undefined && off !== 0 && off >= held.offs[0] - 1 && off < listing.position && held.upTo === listing.position) {
      let pos = 0
      for (let j = 0; j < held.offs.length && again < max; j++) {
        if (held.offs[j] <= off) continue
        const from = j === 0 ? 0 : held.ends[j - 1]
        // Left out if its name has gone meanwhile (readdirplus would have no attributes to send).
        if (held.offs[j] > 2 && !listing.has(held.names.subarray(from, held.ends[j]), held.inos[j])) continue
        pos += held.names.copy(sink.names, pos, from, held.ends[j])
        sink.ends[again] = pos
        sink.inos[again] = held.inos[j]
        sink.types[again] = held.types[j]
        offs[again++] = held.offs[j]
      }
    } else if (off !== listing.position || off === 0) {
      listing.rewind()
      listing.skip(off)
    }

    const fresh = listing.fill(sink, again, max - again)
    const n = again + fresh
    for (let k = 0; k < fresh; k++) offs[again + k] = listing.position + k + 1
    for (let i = 0; i < n; i++) {
      const at = ATTR_FIELDS * i
      // readdirplus: attributes for all but '.' and '..' (offsets 1 and 2; the kernel makes no entry for those).
      if (plus && offs[i] > 2) attrArray(this.core.getattr(sink.inos[i]), attrs, at)
      else {
        attrs[at] = sink.inos[i]
        attrs[at + 1] = sink.types[i]
      }
    }

    const names = sink.names.subarray(0, n === 0 ? 0 : sink.ends[n - 1])
    const ends = sink.ends.subarray(0, n)
    const taken = plus
      ? this.ll.replyDirents(req, size, true, names, ends, attrs.subarray(0, ATTR_FIELDS * n), offs.subarray(0, n), TIMEOUT, TIMEOUT)
      // Plain: the addon keeps what did not fit as the handle's run and answers the next requests.
      : this.ll.replyDirents(req, size, false, names, ends, attrs.subarray(0, ATTR_FIELDS * n), offs.subarray(0, n), TIMEOUT, TIMEOUT, fh, off)
    // `taken`: entries that went to the kernel. Past those sent again (so all of those went), the
    // listing moves on over them, and a readdirplus answer is kept whole: the kernel may use
    // fewer of its entries and ask again. Otherwise what was kept covers this answer already.
    if (taken > again) {
      listing.skip(taken - again)
      if (plus) {
        this.held.set(fh, {
          offs: offs.slice(0, taken), names: Buffer.from(names.subarray(0, sink.ends[taken - 1])), ends: sink.ends.slice(0, taken),
          inos: sink.inos.slice(0, taken), types: sink.types.slice(0, taken), upTo: listing.position,
        })
      } else this.held.delete(fh)
    } else if (!plus) this.held.delete(fh)
  }

}
