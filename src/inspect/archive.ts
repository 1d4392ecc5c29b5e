/**
 * `razorfs dump --archive FILE`: the tree of an image or a shared volume as a pax archive (tar/format.ts), in
 * pre-order, so a directory always comes before what it holds. The second and later names of an
 * inode are hard-link members naming the first; the only memory that grows is the table of inodes
 * with more than one link whose names have not all been seen yet (as in GNU tar).
 */
import type {Progress} from '../progress.js'
import type {Attr, Image} from '../storage/index.js'
import {S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK} from '../storage/format.js'
import type {DumpStart} from './dump.js'
import type {FdWriter} from './output.js'
import {Records, timesOf} from './records.js'
import {TYPE, type TarMember} from './tar/format.js'
import {TarWriter} from './tar/writer.js'
import {devMajor, devMinor, escapeName} from './text.js'
import {preorder} from './walk.js'

export interface ArchiveSummary {
  members: number
  directories: number
  files: number
  symlinks: number
  hardLinks: number
  others: number
  contentBytes: number
  archiveBytes: number
  /** Dangling entries left out (a damaged image: run fsck). */
  skipped: number
}

const CHUNK = 1 << 20
/** Vendor keyword for the one file type tar has no type flag for. */
export const RAZORFS_TYPE = 'RAZORFS.type'

const TYPE_OF: Record<number, string> = {
  [S_IFREG]: TYPE.FILE,
  [S_IFDIR]: TYPE.DIR,
  [S_IFLNK]: TYPE.SYMLINK,
  [S_IFCHR]: TYPE.CHARDEV,
  [S_IFBLK]: TYPE.BLOCKDEV,
  [S_IFIFO]: TYPE.FIFO,
  [S_IFSOCK]: TYPE.FILE,
}

/** An inode as the archive needs it: an image's record or a volume's attributes. */
export type ArchiveNode = Omit<Attr, 'blocks'>

/** One name of the tree, in pre-order; `node` undefined for a dangling entry (`problem` says why). */
export interface ArchiveItem {
  path: Buffer
  name: Buffer
  depth: number
  node?: ArchiveNode
  problem?: string
  xattrs(): Array<{name: Buffer; value: Buffer}>
  target(): Buffer
}

/** What an archive is written from: the names in pre-order, and the contents of regular files. */
export interface ArchiveSource {
  items: Iterable<ArchiveItem>
  /** The walk starts at a directory (its members are named relative to it). */
  dirStart: boolean
  read(ino: number, buf: Buffer, pos: number): number
}

/** The tree under `start` of an image, oldest entry first (a restore recreates its readdir order). */
export function imageArchiveSource(image: Image, start: DumpStart): ArchiveSource {
  const records = new Records(image)
  function* items(): Generator<ArchiveItem> {
    for (const item of preorder(records, start.slot, start.path, {oldestFirst: true})) {
      if (item.slot === 0) {
        yield {path: item.path, name: item.name, depth: item.depth, problem: item.problem, xattrs: () => [], target: () => Buffer.alloc(0)}
        continue
      }

      records.tick()
      const r = records.inode(item.slot)
      yield {
        path: item.path,
        name: item.name,
        depth: item.depth,
        node: {ino: r.ino, mode: r.mode, nlink: r.nlink, uid: r.uid, gid: r.gid, rdev: r.rdev, size: r.size, ...timesOf(r)},
        xattrs: () => records.xattrs(item.slot),
        target: () => records.symlinkTarget(item.slot),
      }
    }
  }

  return {items: items(), dirStart: records.isDir(start.slot), read: (ino, buf, pos) => image.read(ino, buf, pos)}
}

/** Write the tree of `source` (the whole volume from `/`) as a pax archive; `progress` counts the inodes written. */
export function writeArchive(source: ArchiveSource, startPath: Buffer, out: FdWriter, warn: (message: string) => void, progress?: Progress): ArchiveSummary {
  const tar = new TarWriter(out)
  const summary: ArchiveSummary = {members: 0, directories: 0, files: 0, symlinks: 0, hardLinks: 0, others: 0, contentBytes: 0, archiveBytes: 0, skipped: 0}
  /** Inodes with more than one link: the archive path of their first name and the links still to come. */
  const linked = new Map<number, {path: Buffer; left: number}>()
  const chunk = Buffer.allocUnsafe(CHUNK)
  const rootLen = startPath.length === 1 ? 1 : startPath.length + 1

  for (const item of source.items) {
    const r = item.node
    if (r === undefined) {
      warn(`${escapeName(item.path)}: left out of the archive (${item.problem})`)
      summary.skipped++
      continue
    }

    const type = r.mode & S_IFMT
    const rel = item.depth === 0 ? (source.dirStart ? Buffer.alloc(0) : item.name) : item.path.subarray(rootLen)
    const path = Buffer.concat([Buffer.from('./'), rel, type === S_IFDIR && rel.length > 0 ? Buffer.from('/') : Buffer.alloc(0)])
    const member: TarMember = {
      path,
      type: TYPE_OF[type] ?? TYPE.FILE,
      mode: r.mode & 0o7777,
      uid: r.uid,
      gid: r.gid,
      size: 0,
      atime: r.atime,
      mtime: r.mtime,
      ctime: r.ctime,
      devmajor: 0,
      devminor: 0,
      xattrs: [],
      vendor: {},
    }

    if (type !== S_IFDIR && r.nlink > 1) {
      const first = linked.get(r.ino)
      if (first !== undefined) {
        tar.add({...member, type: TYPE.HARDLINK, linkpath: first.path})
        if (--first.left <= 0) linked.delete(r.ino)
        summary.members++
        summary.hardLinks++
        continue
      }

      linked.set(r.ino, {path, left: r.nlink - 1})
    }

    member.xattrs = item.xattrs()
    if (type === S_IFSOCK) member.vendor[RAZORFS_TYPE] = 'socket'
    if (type === S_IFLNK) member.linkpath = item.target()
    if (type === S_IFCHR || type === S_IFBLK) {
      member.devmajor = devMajor(r.rdev)
      member.devminor = devMinor(r.rdev)
    }

    if (type === S_IFREG) member.size = r.size
    tar.add(member)
    summary.members++
    if (type === S_IFREG) {
      for (let pos = 0; pos < r.size; ) {
        const n = source.read(r.ino, chunk, pos)
        if (n === 0) throw new Error(`internal: ${escapeName(item.path)} ends at ${pos} bytes, before its size ${r.size}`)
        tar.data(chunk.subarray(0, n))
        pos += n
        progress?.set(summary.members - summary.hardLinks)
      }

      summary.contentBytes += r.size
      summary.files++
    } else if (type === S_IFDIR) {
      summary.directories++
    } else if (type === S_IFLNK) {
      summary.symlinks++
    } else {
      summary.others++
    }

    progress?.set(summary.members - summary.hardLinks)
  }

  tar.finish()
  summary.archiveBytes = out.written
  return summary
}
