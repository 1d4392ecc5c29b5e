/**
 * Byte ranges of open files, over the filesystem core: fallocate(2), lseek(2) SEEK_DATA and
 * SEEK_HOLE, copy_file_range(2). Adapters hand requests over as they come and answer with the
 * result, or -errno for an FsError.
 */
import {FsError} from '../storage/errors.js'
import type {Cred, FileSystem} from './filesystem.js'

export const SEEK_DATA = 3
export const SEEK_HOLE = 4

/** The most copy_file_range moves through memory at a time. */
const COPY_CHUNK = 1 << 20

/**
 * fallocate(2) through handle `fh` of inode `ino`. Mode 0 only (anything else is EOPNOTSUPP):
 * make [offset, offset + length) part of the file, growing it (holes read as zeros); a range
 * inside the file changes nothing.
 */
export function fallocate(core: FileSystem, ino: number, fh: number, mode: number, offset: number, length: number, cred: Cred): void {
  if (mode !== 0) throw new FsError('EOPNOTSUPP', 'fallocate')
  const end = offset + length
  if (end > core.getattr(ino).size) core.setattr(ino, {size: end, fh}, cred)
}

/**
 * The offset lseek(2) with `whence` SEEK_DATA or SEEK_HOLE lands at from `off` (any other whence:
 * `off` itself; the kernel answers those without asking). Contents may be sparse, but razorfs
 * does not track holes: all of a file is data, and its end is the only hole. At or past the end
 * there is neither: ENXIO.
 */
export function seekData(core: FileSystem, ino: number, off: number, whence: number): number {
  const size = core.getattr(ino).size
  if (off >= size) throw new FsError('ENXIO', 'lseek')
  return whence === SEEK_HOLE ? size : off
}

/**
 * copy_file_range(2): up to `length` bytes from handle `fhIn` at `offIn` to handle `fhOut` at
 * `offOut`, through memory in chunks of at most 1 MiB; stops at the end of the source. Returns
 * the bytes copied. The handles' own checks apply (EBADF for a handle not open for reading, or
 * for writing).
 */
export function copyFileRange(core: FileSystem, fhIn: number, offIn: number, fhOut: number, offOut: number, length: number): number {
  const chunk = Buffer.allocUnsafe(Math.min(length, COPY_CHUNK))
  let done = 0
  while (done < length) {
    const n = core.read(fhIn, chunk.subarray(0, Math.min(chunk.length, length - done)), offIn + done)
    if (n === 0) break
    core.write(fhOut, chunk.subarray(0, n), offOut + done)
    done += n
  }

  return done
}
