/**
 * File contents: one sparse host file per razorfs file, `data/<xx>/<dataId>` (xx = low byte of the
 * id in hex). Writing k bytes is one pwrite of k bytes; holes stay holes in the host file; the
 * logical size lives in the inode (a content file may be shorter: the rest reads as zeros).
 *
 * A content file may hold bytes past the logical size: a shrinking truncate cuts the host file only
 * once its transaction is durable (so a power loss never leaves the old size with the tail gone),
 * and a crash can come in between. Such bytes are never read (reads stop at the size) and are cut
 * off before the file grows again (Image.prepareGrow), so a shrink-then-grow always reads zeros.
 */
import fs from 'node:fs'
import path from 'node:path'

import {BREAK_NO_FSYNC} from './debug.js'
import {DATA_DIR_NAME} from './format.js'
import {inodeFields as I, isUsed} from './codec/inode.js'
import {fsyncDir, writeFully} from './mapped-file.js'

const MAX_OPEN = 256

export class Contents {
  /** Where the content files are. */
  readonly root: string
  /**
   * An open without the lock holds `root` open, and opens content files through it
   * (/proc/self/fd/N/...): a swap by another process (gc, restore, migrate) may rename the
   * directory, and the files opened are still this image's, never the new one's.
   */
  private rootFd: number | undefined
  /**
   * Asked when a content file is missing in an open without the lock: throws if another image has
   * replaced this one since the open (the file went with the old image); otherwise it is a hole.
   */
  onMissing?: () => void
  private readonly fds = new Map<number, number>()
  /** Content files known to hold nothing past the logical size (checked once per open image). */
  private readonly clean = new Set<number>()
  /** Files written since their last fdatasync, and directories with new entries. */
  private readonly unsynced = new Set<number>()
  private readonly newDirs = new Set<string>()

  /** `root`: where the content files are (default: `data/` in `dir`). */
  constructor(
    dir: string,
    private readonly readOnly: boolean,
    root?: string,
  ) {
    this.root = root ?? path.join(dir, DATA_DIR_NAME)
  }

  /** Hold `root` open (see rootFd); a root that does not exist yet is left to its path. */
  holdRoot(): void {
    try {
      this.rootFd = fs.openSync(this.root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
  }

  pathOf(dataId: number): string {
    return path.join(this.root, (dataId & 0xff).toString(16).padStart(2, '0'), String(dataId))
  }

  private fd(dataId: number, create: boolean): number | undefined {
    const cached = this.fds.get(dataId)
    if (cached !== undefined) {
      // Move to the back of the LRU order.
      this.fds.delete(dataId)
      this.fds.set(dataId, cached)
      return cached
    }

    const file = this.pathOf(dataId)
    let fd: number
    try {
      fd = fs.openSync(this.rootFd === undefined ? file : path.join(`/proc/self/fd/${this.rootFd}`, path.relative(this.root, file)), this.readOnly ? 'r' : 'r+')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || !create) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
        this.onMissing?.()
        return undefined
      }

      fs.mkdirSync(path.dirname(file), {recursive: true, mode: 0o700})
      fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o600)
      this.newDirs.add(path.dirname(file))
      this.newDirs.add(this.root)
    }

    if (this.fds.size >= MAX_OPEN) {
      const [oldId, oldFd] = this.fds.entries().next().value as [number, number]
      if (this.unsynced.has(oldId)) {
        fdatasync(oldFd)
        this.unsynced.delete(oldId)
      }

      fs.closeSync(oldFd)
      this.fds.delete(oldId)
    }

    this.fds.set(dataId, fd)
    return fd
  }

  /** Read up to `len` bytes at `pos` into `buf`; returns bytes the host file had (the rest is a hole). */
  read(dataId: number, buf: Buffer, off: number, len: number, pos: number): number {
    const fd = this.fd(dataId, false)
    if (fd === undefined) return 0
    let got = 0
    while (got < len) {
      const n = fs.readSync(fd, buf, off + got, len - got, pos + got)
      if (n === 0) break
      got += n
    }

    return got
  }

  write(dataId: number, data: Buffer, pos: number): void {
    const fd = this.fd(dataId, true)!
    writeFully(fd, data, 0, data.length, pos)
    this.unsynced.add(dataId)
  }

  /** Is the file known to hold nothing past the logical size? */
  isClean(dataId: number): boolean {
    return this.clean.has(dataId)
  }

  markClean(dataId: number): void {
    this.clean.add(dataId)
  }

  /** The file may hold bytes past the logical size (a deferred shrink, a failed write). */
  markUnclean(dataId: number): void {
    this.clean.delete(dataId)
  }

  /** Length of the host file (0 if it does not exist). */
  length(dataId: number): number {
    const fd = this.fd(dataId, false)
    return fd === undefined ? 0 : fs.fstatSync(fd).size
  }

  truncate(dataId: number, size: number): void {
    const fd = this.fd(dataId, false)
    if (fd === undefined) return
    if (fs.fstatSync(fd).size > size) fs.ftruncateSync(fd, size)
    this.unsynced.add(dataId)
  }

  /** 512-byte blocks the host allocated (holes take none). */
  blocks(dataId: number): number {
    const fd = this.fd(dataId, false)
    return fd === undefined ? 0 : fs.fstatSync(fd).blocks
  }

  remove(dataId: number): void {
    const fd = this.fds.get(dataId)
    if (fd !== undefined) {
      fs.closeSync(fd)
      this.fds.delete(dataId)
    }

    this.unsynced.delete(dataId)
    this.clean.delete(dataId)
    fs.rmSync(this.pathOf(dataId), {force: true})
  }

  /** Make one file's contents durable (and the directories that name it). */
  sync(dataId: number): void {
    const fd = this.fds.get(dataId)
    if (fd !== undefined && this.unsynced.has(dataId)) fdatasync(fd)
    this.unsynced.delete(dataId)
    this.syncDirs()
  }

  /** Make every written content file durable. */
  syncAll(): void {
    for (const dataId of this.unsynced) {
      const fd = this.fds.get(dataId)
      if (fd !== undefined) fdatasync(fd)
    }

    this.unsynced.clear()
    this.syncDirs()
  }

  private syncDirs(): void {
    for (const dir of this.newDirs) fsyncDir(dir)

    this.newDirs.clear()
  }

  close(): void {
    this.syncAll()
    this.closeFiles()
  }

  /** Close every descriptor without syncing (what a crash leaves). */
  closeFiles(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd)
    this.fds.clear()
    this.unsynced.clear()
    if (this.rootFd !== undefined) fs.closeSync(this.rootFd)
    this.rootFd = undefined
  }
}

/** A file under data/ named like a content file: `<xx>/<decimal digits>`, xx two lowercase hex digits. */
export interface ContentFile {
  path: string
  /** `<xx>/<name>`, relative to data/. */
  rel: string
  /** The dataId whose path this is; undefined when it is the path of no id (a leading zero, the wrong xx). */
  id: number | undefined
}

/**
 * Every file under `root` (an image's data/) named like a content file, sorted by path. Other names
 * are never touched: they are not razorfs's. O(content files): one readdir per xx directory.
 */
export function listContentFiles(root: string): ContentFile[] {
  let dirs: string[]
  try {
    dirs = fs.readdirSync(root)
  } catch {
    return []
  }

  const out: ContentFile[] = []
  for (const xx of dirs.sort()) {
    if (!/^[0-9a-f]{2}$/.test(xx)) continue
    let names: string[]
    try {
      names = fs.readdirSync(path.join(root, xx))
    } catch {
      continue
    }

    for (const name of names.sort()) {
      if (!/^[0-9]+$/.test(name)) continue
      const id = Number(name)
      const exact = Number.isSafeInteger(id) && String(id) === name && (id % 256).toString(16).padStart(2, '0') === xx
      out.push({path: path.join(root, xx, name), rel: `${xx}/${name}`, id: exact ? id : undefined})
    }
  }

  return out
}

/**
 * The dataIds that live inodes among slots 1 .. highWater - 1 of nodes.dat's buffer name. Only
 * regular files get one; an inode of another type whose dataId is set (damage, which fsck pass 1
 * reports and clears) keeps its file too: what may be removed is decided by IF_USED alone.
 */
export function liveDataIds(nodes: Buffer, offsetOf: (slot: number) => number, highWater: number): Set<number> {
  const ids = new Set<number>()
  for (let s = 1; s < highWater; s++) {
    const o = offsetOf(s)
    if (!isUsed(nodes, o)) continue
    const id = I.dataId.get(nodes, o)
    if (id !== 0) ids.add(id)
  }

  return ids
}

function fdatasync(fd: number): void {
  if (!BREAK_NO_FSYNC) fs.fdatasyncSync(fd)
}
