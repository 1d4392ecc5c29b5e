/**
 * `razorfs init --from FILE`: fill a new image (or a new shared volume) from a tar archive (razorfs's own, GNU tar's or
 * bsdtar's), exactly: modes, owners, the three times to the nanosecond, hard links, symlinks,
 * devices, FIFOs, sockets (razorfs's vendor keyword), xattrs and names as bytes.
 *
 * Members are applied as they are read. A directory's times are set at the very end (creating
 * entries changes them), from a compact table of 7 numbers per directory. `ctime` cannot be set
 * through the POSIX-shaped Volume API (every change sets it to now, as the kernel does), so the
 * target sets it (RestoreTarget.setCtime), in the same transaction as the last change of the inode.
 */
import type {Progress} from '../progress.js'
import {inodeFields as I} from '../storage/codec/inode.js'
import * as inodeNumber from '../storage/codec/inode-number.js'
import {errnoText, FsError, type Image, ROOT_INO, type Timespec} from '../storage/index.js'
import type {Volume} from '../storage/volume.js'
import {S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK} from '../storage/format.js'
import {RAZORFS_TYPE} from './archive.js'
import {TYPE, type TarMember, TarError} from './tar/format.js'
import type {TarReader} from './tar/reader.js'
import {escapeName, makeDev} from './text.js'

const CHUNK = 1 << 20
const HOLE = 4096

export interface RestoreSummary {
  members: number
  directories: number
  files: number
  symlinks: number
  hardLinks: number
  others: number
  contentBytes: number
}

/** Directory times to set at the end: 7 numbers per directory in growable columns. */
class DirTimes {
  private cols = new Float64Array(7 * 1024)
  private n = 0

  add(ino: number, atime: Timespec, mtime: Timespec, ctime: Timespec): void {
    if ((this.n + 1) * 7 > this.cols.length) {
      const bigger = new Float64Array(this.cols.length * 2)
      bigger.set(this.cols)
      this.cols = bigger
    }

    this.cols.set([ino, atime.sec, atime.nsec, mtime.sec, mtime.nsec, ctime.sec, ctime.nsec], this.n * 7)
    this.n++
  }

  *entries(): Generator<[number, Timespec, Timespec, Timespec]> {
    for (let i = 0; i < this.n; i++) {
      const c = this.cols.subarray(i * 7, i * 7 + 7)
      yield [c[0], {sec: c[1], nsec: c[2]}, {sec: c[3], nsec: c[4]}, {sec: c[5], nsec: c[6]}]
    }
  }
}

/** What a restore fills: a volume, how to make changes one, and how to set a ctime (which every change sets to now). */
export interface RestoreTarget {
  volume: Volume
  transaction<T>(fn: () => T): T
  setCtime(ino: number, t: Timespec): void
}

/** A new image as a restore target: the ctime is written into the inode record, in the running transaction or its own. */
export function imageRestoreTarget(image: Image): RestoreTarget {
  const {store, nodes} = image.internals()
  return {
    volume: image,
    transaction: fn => store.transaction(fn),
    setCtime(ino, t) {
      const o = nodes.off(inodeNumber.slotOf(ino))
      store.transaction(() => {
        I.ctimeSec.set(store, nodes.file, o, t.sec)
        I.ctimeNsec.set(store, nodes.file, o, t.nsec)
      })
    },
  }
}

/** The components of a member's path, relative to the archive's root: `./a/b/` -> [a, b]. */
export function pathComponents(path: Buffer): Buffer[] {
  const parts: Buffer[] = []
  let start = 0
  for (let i = 0; i <= path.length; i++) {
    if (i < path.length && path[i] !== 0x2f) continue
    const part = path.subarray(start, i)
    start = i + 1
    if (part.length === 0 || (part.length === 1 && part[0] === 0x2e)) continue
    if (part.length === 2 && part[0] === 0x2e && part[1] === 0x2e) throw new TarError(`member path ${escapeName(path)} climbs out of the archive ("..")`)
    parts.push(part)
  }

  return parts
}

export class Restorer {
  readonly summary: RestoreSummary = {members: 0, directories: 0, files: 0, symlinks: 0, hardLinks: 0, others: 0, contentBytes: 0}
  private readonly dirTimes = new DirTimes()
  private readonly chunk = Buffer.alloc(CHUNK)
  /** Owner of directories the archive implies but does not hold (their parent's, like tar). */
  private rootOwner = {uid: 0, gid: 0}

  /** `progress` is moved to the archive's byte offset after every member and every chunk of content. */
  private readonly image: Volume

  constructor(
    private readonly target: RestoreTarget,
    private readonly reader: TarReader,
    private readonly progress?: Progress,
  ) {
    this.image = target.volume
    const root = this.image.getattr(ROOT_INO)
    this.rootOwner = {uid: root.uid, gid: root.gid}
  }

  run(): RestoreSummary {
    for (let m = this.reader.next(); m !== null; m = this.reader.next()) {
      try {
        this.member(m)
      } catch (error) {
        // The reader's own errors (a truncated member) already say where; others are the member's.
        if (error instanceof TarError && error.offset !== undefined) throw error
        const at = this.reader.memberOffset
        throw new TarError(`member ${this.reader.count} (${escapeName(m.path)}) at byte ${at}: ${errnoText(error)}`, at)
      }

      this.summary.members++
      this.progress?.set(this.reader.offset)
    }

    for (const [ino, atime, mtime, ctime] of this.dirTimes.entries()) {
      this.target.transaction(() => {
        this.image.setattr(ino, {atime, mtime})
        this.target.setCtime(ino, ctime)
      })
    }

    return this.summary
  }

  /** The directory holding `parts` (all but the last), creating missing ones. */
  private parentOf(parts: Buffer[]): number {
    let dir = ROOT_INO
    for (const part of parts.slice(0, -1)) {
      let next = this.image.lookup(dir, part)
      if (next === 0) {
        next = this.image.mknod(dir, part, {mode: S_IFDIR | 0o755, ...this.rootOwner}).ino
      } else if ((this.image.getattr(next).mode & S_IFMT) !== S_IFDIR) {
        throw new FsError('ENOTDIR', 'restore', part.toString())
      }

      dir = next
    }

    return dir
  }

  private member(m: TarMember): void {
    const parts = pathComponents(m.path)
    const times = {atime: m.atime ?? m.mtime, mtime: m.mtime, ctime: m.ctime ?? m.mtime}
    if (parts.length === 0) {
      // The archive's root ("./") is the image's root.
      if (m.type !== TYPE.DIR) throw new TarError('the root of the archive is not a directory')
      this.image.setattr(ROOT_INO, {mode: m.mode, uid: m.uid, gid: m.gid})
      this.rootOwner = {uid: m.uid, gid: m.gid}
      this.setXattrs(ROOT_INO, m)
      this.dirTimes.add(ROOT_INO, times.atime, times.mtime, times.ctime)
      this.summary.directories++
      return
    }

    const parent = this.parentOf(parts)
    const name = parts.at(-1)!
    const existing = this.image.lookup(parent, name)
    if (existing !== 0) {
      const isDir = (this.image.getattr(existing).mode & S_IFMT) === S_IFDIR
      if (isDir && m.type === TYPE.DIR) {
        // A directory made earlier (implied by a deeper member, or listed twice): take these attributes.
        this.image.setattr(existing, {mode: m.mode, uid: m.uid, gid: m.gid})
        this.setXattrs(existing, m)
        this.dirTimes.add(existing, times.atime, times.mtime, times.ctime)
        this.summary.directories++
        return
      }

      // A later member replaces an earlier one of the same name, as tar extracts it.
      if (isDir) this.image.rmdir(parent, name)
      else this.image.unlink(parent, name)
    }

    switch (m.type) {
      case TYPE.DIR: {
        const ino = this.image.mknod(parent, name, {mode: S_IFDIR | m.mode, uid: m.uid, gid: m.gid}).ino
        this.setXattrs(ino, m)
        this.dirTimes.add(ino, times.atime, times.mtime, times.ctime)
        this.summary.directories++
        return
      }

      case TYPE.HARDLINK: {
        const linked = this.resolve(m.linkpath ?? Buffer.alloc(0))
        const before = this.image.getattr(linked).ctime
        this.target.transaction(() => {
          this.image.link(linked, parent, name)
          this.target.setCtime(linked, m.ctime ?? before)
        })
        this.summary.hardLinks++
        return
      }

      case TYPE.FILE: {
        const socket = m.vendor[RAZORFS_TYPE] === 'socket'
        const ino = this.image.mknod(parent, name, {mode: (socket ? S_IFSOCK : S_IFREG) | m.mode, uid: m.uid, gid: m.gid}).ino
        if (!socket) this.copyContent(ino, m.size)
        this.finish(ino, m, times)
        if (socket) this.summary.others++
        else this.summary.files++
        return
      }

      case TYPE.SYMLINK: {
        const ino = this.image.mknod(parent, name, {mode: S_IFLNK | m.mode, uid: m.uid, gid: m.gid, target: m.linkpath}).ino
        this.finish(ino, m, times)
        this.summary.symlinks++
        return
      }

      case TYPE.CHARDEV:
      case TYPE.BLOCKDEV:
      case TYPE.FIFO: {
        const type = m.type === TYPE.CHARDEV ? S_IFCHR : m.type === TYPE.BLOCKDEV ? S_IFBLK : S_IFIFO
        const rdev = type === S_IFIFO ? 0 : makeDev(m.devmajor, m.devminor)
        const ino = this.image.mknod(parent, name, {mode: type | m.mode, uid: m.uid, gid: m.gid, rdev}).ino
        this.finish(ino, m, times)
        this.summary.others++
        return
      }

      default:
        throw new TarError(`member type '${m.type}' is not supported`)
    }
  }

  /** The inode a hard-link member names (a path from the archive's root). */
  private resolve(linkpath: Buffer): number {
    let ino = ROOT_INO
    for (const part of pathComponents(linkpath)) {
      const next = (this.image.getattr(ino).mode & S_IFMT) === S_IFDIR ? this.image.lookup(ino, part) : 0
      if (next === 0) throw new TarError(`hard link to ${escapeName(linkpath)}, which is not in the archive before it`)
      ino = next
    }

    if ((this.image.getattr(ino).mode & S_IFMT) === S_IFDIR) throw new TarError(`hard link to the directory ${escapeName(linkpath)}`)
    return ino
  }

  /** Content: runs of non-zero 4 KiB blocks are written, zero blocks stay holes. */
  private copyContent(ino: number, size: number): void {
    let pos = 0
    while (pos < size) {
      let got = 0
      const want = Math.min(CHUNK, size - pos)
      while (got < want) {
        const n = this.reader.read(this.chunk.subarray(got, want))
        if (n === 0) throw new Error(`internal: the reader has no more data for a member of ${size} bytes at ${pos + got}`)
        got += n
      }

      // Runs of non-zero blocks are written; zero blocks are skipped and stay holes.
      for (let b = 0; b < got; ) {
        while (b < got && isZero(this.chunk, b, Math.min(b + HOLE, got))) b += HOLE
        if (b >= got) break
        const runStart = b
        while (b < got && !isZero(this.chunk, b, Math.min(b + HOLE, got))) b += HOLE
        this.image.write(ino, this.chunk.subarray(runStart, Math.min(b, got)), pos + runStart)
      }

      pos += got
      this.progress?.set(this.reader.offset)
    }

    if (this.image.getattr(ino).size !== size) this.image.setattr(ino, {size})
    this.summary.contentBytes += size
  }

  private setXattrs(ino: number, m: TarMember): void {
    for (const x of m.xattrs) this.image.setxattr(ino, x.name.toString('utf8'), x.value)
  }

  /** xattrs, then mode, atime, mtime and ctime, in one transaction: the inode ends as archived. */
  private finish(ino: number, m: TarMember, times: {atime: Timespec; mtime: Timespec; ctime: Timespec}): void {
    this.target.transaction(() => {
      this.setXattrs(ino, m)
      const type = this.image.getattr(ino).mode & S_IFMT
      this.image.setattr(ino, {...(type === S_IFLNK ? {} : {mode: m.mode}), atime: times.atime, mtime: times.mtime})
      this.target.setCtime(ino, times.ctime)
    })
  }
}

function isZero(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] !== 0) return false
  return true
}
