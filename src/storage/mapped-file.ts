/**
 * One mapped file of an image: the only code that maps, grows and writes back mapped bytes.
 *
 * The mapping is MAP_PRIVATE: a change made through it never reaches the file by itself, however
 * the kernel decides to write back pages. Changed pages are tracked here and written to the file
 * only by `writeBack()`, which the store calls at a checkpoint, after the WAL holding those changes
 * is durable. That is what makes the image crash-safe (docs/FORMAT.md, "Transactions").
 */
import fs from 'node:fs'
import {createRequire} from 'node:module'

import {FsError, ImageError} from './errors.js'
import {DATA_OFFSET, type FileSpec, PAGE_SIZE} from './format.js'
import {FILE_RESERVE, allocateRange, createAllocated, fillHoles, holes, isNoSpace, onTmpfs} from './space.js'

interface MmapIo {
  map(size: number, protection: number, flags: number, fd: number, offset?: number): Buffer
  advise(buffer: Buffer, offset: number, length: number, advise: number): void
  PROT_READ: number
  PROT_WRITE: number
  MAP_PRIVATE: number
  MAP_SHARED: number
  MADV_DONTNEED: number
}

let mmapModule: MmapIo | undefined

function mmap(): MmapIo {
  if (mmapModule === undefined) {
    try {
      mmapModule = createRequire(import.meta.url)('@riaskov/mmap-io') as MmapIo
    } catch (error) {
      throw new ImageError('RZ_IO', `cannot load the mmap addon @riaskov/mmap-io (${(error as Error).message.split('\n')[0]}); run \`npm install\` again`)
    }
  }

  return mmapModule
}

/** mmap-io passes sizes through a C int: one mapping must stay below 2 GiB. */
export const MAX_MAPPING = 2 ** 31 - PAGE_SIZE

/**
 * A shared read-write mapping of the first `size` bytes of `fd` (the write-ahead log's appends,
 * wal.ts): what is copied into it is in the host's page cache at once, as after a write(2). Every
 * byte must be allocated on the host: a write fault in a hole of a full filesystem is a SIGBUS.
 */
export function mapShared(fd: number, size: number): Buffer {
  const m = mmap()
  return m.map(size, m.PROT_READ | m.PROT_WRITE, m.MAP_SHARED, fd, 0)
}

/** Let go of the pages of [off, off + len) of a shared mapping: their changes stay in the page cache. */
export function releasePages(buf: Buffer, off: number, len: number): void {
  const m = mmap()
  if (len > 0) m.advise(buf, off, len, m.MADV_DONTNEED)
}

export class MappedFile {
  /** Current mapping of the whole file. Re-read after anything that may grow the file. */
  buf: Buffer
  /** File length in bytes (= mapping length). */
  size: number
  /** Pages changed since the last write-back. */
  readonly dirty = new Set<number>()
  /**
   * Keep the private copies of pages after writing them back, instead of dropping them. The image
   * sets this for its hash indexes: nearly every lookup and insert touches one of their pages at
   * random, so a dropped page would soon be faulted in again and copied again on its next change.
   */
  keepWrittenPages = false
  /**
   * May the file grow into its last FILE_RESERVE bytes without growing further? Only while a
   * freeing transaction runs (space.ts): everything else must leave the reserve for deletes.
   */
  mayUseReserve = false
  /**
   * A heap copy instead of a mapping: read-only opens that had to grow past the file's end, and
   * read-only opens of a file with holes on a tmpfs (reading a hole there allocates a page, and a
   * full tmpfs answers with SIGBUS, which kills the process).
   */
  private detached = false

  private constructor(
    readonly spec: FileSpec,
    readonly path: string,
    readonly fd: number,
    readonly readOnly: boolean,
    heapCopy = false,
  ) {
    this.size = fs.fstatSync(fd).size
    if (heapCopy) {
      this.buf = Buffer.alloc(this.size)
      readFully(fd, this.buf, 0)
      this.detached = true
    } else {
      this.buf = this.map(this.size)
    }
  }

  /** Open an existing file; its length must hold at least the header and control pages. */
  static open(spec: FileSpec, path: string, readOnly: boolean): MappedFile {
    let fd: number
    try {
      fd = fs.openSync(path, readOnly ? 'r' : 'r+')
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'ENOENT') throw new ImageError('RZ_MISSING', `missing (the ${spec.what} of the image)`, path)
      throw new ImageError('RZ_IO', `cannot open: ${(error as Error).message}`, path)
    }

    const size = fs.fstatSync(fd).size
    if (size < DATA_OFFSET) {
      fs.closeSync(fd)
      throw new ImageError('RZ_TRUNCATED', `truncated: ${size} bytes, shorter than the ${DATA_OFFSET}-byte header and control pages`, path)
    }

    if (size > MAX_MAPPING) {
      fs.closeSync(fd)
      throw new ImageError('RZ_CORRUPTED', `${size} bytes, larger than the largest mappable file (${MAX_MAPPING} bytes)`, path)
    }

    let heapCopy = false
    try {
      // Images written before space.ts have holes: a read-write open allocates them once, so that
      // no later write-back needs new blocks. A read-only open never writes: on a tmpfs it reads
      // the file into memory instead of mapping its holes.
      if (!readOnly) fillHoles(fd, size)
      else heapCopy = onTmpfs(path) && holes(fd, size).length > 0
    } catch (error) {
      fs.closeSync(fd)
      if (isNoSpace(error))
        throw new ImageError(
          'RZ_NO_SPACE',
          'has unallocated ranges and the host has no space left to allocate them; free space on the host (read-only commands such as `fsck -n` still work)',
          path,
        )
      throw new ImageError('RZ_IO', `cannot open: ${(error as Error).message}`, path)
    }

    return new MappedFile(spec, path, fd, readOnly, heapCopy)
  }

  /** Create a new file of `size` bytes (zeros, every block allocated), mode 0600. Fails if it exists. */
  static create(spec: FileSpec, path: string, size: number): MappedFile {
    return new MappedFile(spec, path, createAllocated(path, size, true), false)
  }

  private map(size: number): Buffer {
    const m = mmap()
    const buf = m.map(size, m.PROT_READ | m.PROT_WRITE, m.MAP_PRIVATE, this.fd, 0)
    splitMapping(buf, size)
    return buf
  }

  /**
   * Make the mapping one VMA again (undo splitMapping): for a sequential scan, which reads every
   * page in turn and bounds what it keeps resident itself (src/inspect/records.ts), whole folios
   * mapped at a fault mean 16 times fewer faults.
   */
  joinPieces(): void {
    if (this.detached || this.buf.length === 0) return
    const m = mmap()
    m.advise(this.buf, 0, this.size, MADV_DODUMP)
  }

  /** Record that bytes [off, off + len) changed in the mapping. */
  markDirty(off: number, len: number): void {
    const last = Math.floor((off + len - 1) / PAGE_SIZE)
    for (let page = Math.floor(off / PAGE_SIZE); page <= last; page++) this.dirty.add(page)
  }

  /**
   * Make the file at least `bytes` long, leaving FILE_RESERVE bytes past them (unless a freeing
   * transaction runs: `mayUseReserve`). It grows geometrically (doubling, at most 256 MiB at a
   * time) so that remaps stay rare: mmap-io unmaps an old mapping only when it is collected; when
   * the host cannot give that much, by just what is needed. Every new byte is allocated on the host
   * (space.ts); if the host has no space, the file stays as it was and the caller gets ENOSPC.
   * Pages changed since the last write-back live only in the old private mapping: they are copied.
   */
  ensureSize(bytes: number): void {
    const limit = this.mayUseReserve || this.readOnly || this.detached ? this.size : this.size - FILE_RESERVE
    if (bytes <= limit) return
    if (bytes > MAX_MAPPING) {
      throw new ImageError('RZ_IO', `cannot grow to ${bytes} bytes: one file of an image is limited to ${MAX_MAPPING} bytes`, this.path)
    }

    const step = Math.min(this.size, 256 << 20)
    const sizes = [Math.max(bytes + FILE_RESERVE, this.size + step), bytes + FILE_RESERVE]
      .map(n => Math.min(MAX_MAPPING, Math.ceil(n / PAGE_SIZE) * PAGE_SIZE))
      .filter((n, i, all) => n > this.size && all.indexOf(n) === i)
    if (this.readOnly || this.detached) {
      // Nothing may be written to a read-only image: keep the replayed state in memory.
      const copy = Buffer.alloc(sizes[0])
      this.buf.copy(copy, 0, 0, this.size)
      this.buf = copy
      this.detached = true
      this.size = sizes[0]
      return
    }

    for (const newSize of sizes) {
      try {
        this.grow(newSize)
        return
      } catch (error) {
        if (!isNoSpace(error)) throw error
      }
    }

    throw new FsError('ENOSPC', 'grow', this.spec.name)
  }

  /** Grow the file to `newSize` bytes, all allocated, and map it anew (or leave it as it was). */
  private grow(newSize: number): void {
    fs.ftruncateSync(this.fd, newSize)
    try {
      allocateRange(this.fd, this.size, newSize)
    } catch (error) {
      fs.ftruncateSync(this.fd, this.size)
      throw error
    }

    const old = this.buf
    this.buf = this.map(newSize)
    for (const page of this.dirty) {
      const off = page * PAGE_SIZE
      old.copy(this.buf, off, off, Math.min(off + PAGE_SIZE, this.size))
    }

    // The old mapping stays until its Buffer is collected, which may be long after: drop its
    // pages now (the changed ones were just copied) so that they leave the resident set.
    const m = mmap()
    m.advise(old, 0, this.size, m.MADV_DONTNEED)
    this.size = newSize
  }

  /**
   * Write every changed page to the file and fsync it (step 2 of a checkpoint). Afterwards the
   * private copies of those pages are dropped (MADV_DONTNEED), so they are read back from the page
   * cache, holding the same bytes, and the process does not keep a private copy of every page it
   * ever changed (unless `keepWrittenPages`).
   */
  writeBack(): number {
    if (this.readOnly) throw new ImageError('RZ_READ_ONLY', 'write-back on a read-only image', this.path)
    const pages = [...this.dirty].sort((a, b) => a - b)
    let written = 0
    for (let i = 0; i < pages.length; ) {
      let j = i + 1
      while (j < pages.length && pages[j] === pages[j - 1] + 1 && j - i < 256) j++
      const off = pages[i] * PAGE_SIZE
      const len = Math.min((pages[j - 1] + 1) * PAGE_SIZE, this.size) - off
      writeFully(this.fd, this.buf, off, len, off)
      written += len
      i = j
    }

    fs.fsyncSync(this.fd)
    if (!this.detached && !this.keepWrittenPages) {
      const m = mmap()
      for (let i = 0; i < pages.length; ) {
        let j = i + 1
        while (j < pages.length && pages[j] === pages[j - 1] + 1) j++
        const off = pages[i] * PAGE_SIZE
        m.advise(this.buf, off, Math.min((pages[j - 1] + 1) * PAGE_SIZE, this.size) - off, m.MADV_DONTNEED)
        i = j
      }
    }

    this.dirty.clear()
    return written
  }

  /** Read `len` bytes at `off` straight from the file (not the mapping). */
  pread(off: number, len: number): Buffer {
    const out = Buffer.alloc(len)
    return out.subarray(0, readFully(this.fd, out, off))
  }

  /** Write bytes straight to the file and fsync (headers only). */
  pwriteSync(data: Buffer, off: number): void {
    writeFully(this.fd, data, 0, data.length, off)
    fs.fsyncSync(this.fd)
  }

  close(): void {
    fs.closeSync(this.fd)
    // The mapping is released when the Buffer is collected (mmap-io has no explicit unmap).
    this.buf = Buffer.alloc(0)
  }
}

/** madvise(2) advice values of Linux that mmap-io does not export (asm-generic/mman-common.h). */
const MADV_DONTDUMP = 16
const MADV_DODUMP = 17
/** A mapping is split into pieces (VMAs) of at least this many bytes. */
export const MAPPING_PIECE = 128 << 10
/** ...and into at most this many pieces (a process may have only vm.max_map_count, 65,530, mappings). */
const MAX_PIECES = 2048

/** The piece size for a mapping of `size` bytes: MAPPING_PIECE, or larger for very large files. */
export function pieceSize(size: number): number {
  let piece = MAPPING_PIECE
  while (size / piece > MAX_PIECES) piece *= 2
  return piece
}

/**
 * Split a mapping into separate VMAs of pieceSize() bytes, by marking every other piece
 * MADV_DONTDUMP (the only effect of that flag: those pieces are left out of a core dump).
 * A read fault of a file mapping maps the whole page-cache folio around it when the folio lies
 * inside the VMA (kernel 6.18; ext4 caches a file written in large writes in folios of up to
 * 1 MiB and more), otherwise at most the fault-around window (64 KiB). So on a single VMA each
 * random lookup of a large image makes ~600 KiB resident; on pieces of 128 KiB, at most 128 KiB.
 */
export function splitMapping(buf: Buffer, size: number): void {
  const m = mmap()
  const piece = pieceSize(size)
  for (let off = piece; off < size; off += 2 * piece) m.advise(buf, off, Math.min(piece, size - off), MADV_DONTDUMP)
}

/** pwrite all of it (a short write of a regular file means ENOSPC or EIO: retry to get the error). */
export function writeFully(fd: number, buf: Buffer, off: number, len: number, pos: number): void {
  while (len > 0) {
    const n = fs.writeSync(fd, buf, off, len, pos)
    off += n
    len -= n
    pos += n
  }
}

/** Read up to buf.length bytes at `pos`; returns how many the file had. */
export function readFully(fd: number, buf: Buffer, pos: number): number {
  let got = 0
  while (got < buf.length) {
    const n = fs.readSync(fd, buf, got, buf.length - got, pos + got)
    if (n === 0) break
    got += n
  }

  return got
}

/** fsync a directory, or a file (both are opened read-only for it). */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r')
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}
