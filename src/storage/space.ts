/**
 * Host space held ahead of need, so that a full host filesystem never stops a delete, a checkpoint,
 * an unmount or a recovery (docs/DURABILITY.md, "Full disk").
 *
 * Every byte of an image file and of the write-ahead log is allocated on the host when the file is
 * created or grown (zeros are written: a hole would need a block at write-back time, and reading a
 * hole of a mapped file on a full tmpfs kills the process with SIGBUS). Writing back a checkpoint
 * then only overwrites blocks the files already own. On top of that each file keeps a reserve at
 * its end that only freeing transactions (unlink, rmdir, shrinking truncate, removexattr, freeing
 * orphans) may use: creates and writes get ENOSPC before the reserve is touched.
 */
import fs from 'node:fs'

import {ImageError} from './errors.js'
import {fsExtAddon} from './fs-ext.js'
import {NAME_MAX, type StatFs} from './types.js'

/** Bytes at the end of each mapped file that only freeing transactions may grow into. */
export const FILE_RESERVE = 256 << 10
/** Bytes at the end of the allocated write-ahead log that only freeing transactions may use. */
export const WAL_RESERVE = 512 << 10
/** Room a transaction is assumed to need in the log when it starts (its record is not known yet). */
export const WAL_HEADROOM = 256 << 10
/** The log is allocated to at least this size when it is created. */
export const WAL_MIN_SIZE = 1 << 20

/** Below this much free space on the host, a delete is made durable at once so that its space comes back. */
export const LOW_SPACE = 64 << 20

const SEEK_DATA = 3
const SEEK_HOLE = 4
const TMPFS_MAGIC = 0x01_02_19_94
const ZEROS = Buffer.alloc(1 << 20)

/** Is this errno the host saying it is out of space (or quota)? */
export function isNoSpace(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  return code === 'ENOSPC' || code === 'EDQUOT'
}

/**
 * Write zeros over [from, to) of the file, so that every block of the range is allocated, in
 * writes of `piece` bytes. The page cache keeps each write's pages as one folio (a large folio
 * for a large write, on Linux 6.16+), and a store through a shared mapping marks its whole folio
 * dirty: a file appended to through a mapping (the log) is allocated a page at a time, so that an
 * fdatasync writes back the pages changed, not the MiB around them (ARCHITECTURE.md).
 */
export function allocateRange(fd: number, from: number, to: number, piece = ZEROS.length): void {
  for (let pos = from; pos < to; ) {
    const n = fs.writeSync(fd, ZEROS, 0, Math.min(piece, to - pos), pos)
    pos += n
  }
}

/**
 * Create a file of `size` bytes, mode 0600 whatever the umask, every byte allocated (zeros), and
 * return its descriptor (read-write). `exclusive`: fail if it exists, else replace it. When the
 * host has no space, nothing is left behind and the error says so, naming the file.
 */
export function createAllocated(path: string, size: number, exclusive: boolean, piece?: number): number {
  const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT | (exclusive ? fs.constants.O_EXCL : fs.constants.O_TRUNC), 0o600)
  try {
    fs.fchmodSync(fd, 0o600)
    fs.ftruncateSync(fd, size)
    allocateRange(fd, 0, size, piece)
  } catch (error) {
    fs.closeSync(fd)
    fs.rmSync(path, {force: true})
    if (isNoSpace(error)) throw new ImageError('RZ_NO_SPACE', `cannot create: the host has no space left for ${size} bytes`, path)
    throw error
  }

  return fd
}

/** The unallocated ranges [start, end) of the first `size` bytes of a file (SEEK_HOLE / SEEK_DATA). */
export function holes(fd: number, size: number): Array<[number, number]> {
  const ext = fsExtAddon()
  const out: Array<[number, number]> = []
  let pos = 0
  while (pos < size) {
    const hole = ext.seekSync(fd, pos, SEEK_HOLE)
    if (hole >= size) break
    let data: number
    try {
      data = ext.seekSync(fd, hole, SEEK_DATA)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENXIO') throw error
      data = size // no data after the hole
    }

    out.push([hole, Math.min(data, size)])
    pos = data
  }

  return out
}

/** Allocate every hole of the first `size` bytes of a file (allocateRange); returns the bytes allocated. */
export function fillHoles(fd: number, size: number, piece?: number): number {
  let filled = 0
  for (const [start, end] of holes(fd, size)) {
    allocateRange(fd, start, end, piece)
    filled += end - start
  }

  return filled
}

/** Is `path` on a tmpfs (where reading a hole of a mapping allocates, and can fail with SIGBUS)? */
export function onTmpfs(path: string): boolean {
  try {
    return fs.statfsSync(path).type === TMPFS_MAGIC
  } catch {
    return false
  }
}

/** Bytes the host filesystem of `path` reports available (f_bavail: without root's reserved blocks). */
export function hostFreeBytes(path: string): number {
  const s = fs.statfsSync(path)
  return s.bavail * s.bsize
}

/** Inode records nodes.dat can hold: its mapping is limited to 2 GiB (128-byte records after 8 KiB of header). */
export const INODES_MAX = Math.floor((2 ** 31 - 8192) / 128) - 1

/** An image's statfs(2): blocks of the host disk holding `dir`, inodes out of INODES_MAX. */
export function imageStatfs(dir: string, inodes: number): StatFs {
  const host = fs.statfsSync(dir)
  const ffree = Math.max(0, INODES_MAX - inodes)
  return {
    bsize: host.bsize,
    frsize: host.bsize,
    blocks: host.blocks,
    bfree: host.bfree,
    bavail: host.bavail,
    files: INODES_MAX,
    ffree,
    favail: ffree,
    namemax: NAME_MAX,
  }
}

/**
 * Is the host of `path` short of space (below LOW_SPACE)? Deletes ask after every commit, at full
 * request rate: the answer is a statfs(2) at most every 100 ms.
 */
export class SpaceWatch {
  private checkedAt = Number.NEGATIVE_INFINITY
  private low = false

  constructor(private readonly path: string) {}

  isLow(): boolean {
    const now = performance.now()
    if (now - this.checkedAt >= 100) {
      this.low = hostFreeBytes(this.path) < LOW_SPACE
      this.checkedAt = now
    }

    return this.low
  }
}
