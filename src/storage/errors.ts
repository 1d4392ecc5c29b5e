import {constants as osConstants} from 'node:os'
import {getSystemErrorMap} from 'node:util'

/**
 * An error of the filesystem API: a POSIX errno name (`ENOENT`, `ENOTEMPTY`, ...) that a FUSE
 * adapter answers with `-errno`. Worded like Node's own fs errors:
 * "ENOENT: no such file or directory, lookup 'name'".
 */
export class FsError extends Error {
  readonly code: string
  readonly errno: number
  readonly syscall: string

  constructor(code: keyof typeof MESSAGES, syscall: string, detail?: string) {
    super(`${code}: ${MESSAGES[code]}, ${syscall}${detail === undefined ? '' : ` '${detail}'`}`)
    this.name = 'FsError'
    this.code = code
    this.syscall = syscall
    this.errno = (osConstants.errno as Record<string, number>)[code] ?? 5
  }
}

const MESSAGES = {
  E2BIG: 'argument list too long',
  EACCES: 'permission denied',
  EBADF: 'bad file descriptor',
  ELOOP: 'too many symbolic links encountered',
  EOPNOTSUPP: 'operation not supported on socket',
  EEXIST: 'file already exists',
  EINVAL: 'invalid argument',
  EIO: 'input/output error',
  EISDIR: 'illegal operation on a directory',
  EMLINK: 'too many links',
  ENAMETOOLONG: 'name too long',
  ENODATA: 'no data available',
  ENOENT: 'no such file or directory',
  ENOSYS: 'function not implemented',
  ENXIO: 'no such device or address',
  ENOSPC: 'no space left on device',
  ENOTDIR: 'not a directory',
  ENOTEMPTY: 'directory not empty',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ERANGE: 'result too large',
  EFBIG: 'file too large',
  ESTALE: 'stale file handle',
} as const

export type FsErrorCode = keyof typeof MESSAGES

/**
 * Private codes of the image layer. They never overlap errno names (the `RZ_` prefix), so a
 * caller can tell "the image is bad" from "the operation failed".
 */
export type ImageErrorCode =
  | 'RZ_BAD_MAGIC' // not a razorfs file of the expected kind
  | 'RZ_VERSION' // format version newer (or older) than this build reads
  | 'RZ_CHECKSUM' // header checksum does not match
  | 'RZ_TRUNCATED' // file shorter than its header says
  | 'RZ_CORRUPTED' // a field holds an impossible value
  | 'RZ_MISMATCH' // files of different images, or of an inconsistent set
  | 'RZ_MISSING' // a file of the image is absent
  | 'RZ_NO_IMAGE' // the data dir holds no image
  | 'RZ_EXISTS' // init without --force on an existing image
  | 'RZ_LOCKED' // the image is in use by another process
  | 'RZ_DATA_DIR' // the data dir is unusable (a file, not writable, ...)
  | 'RZ_IO' // an I/O error while reading or writing the image
  | 'RZ_READ_ONLY' // a write on an image opened read-only
  | 'RZ_NO_SPACE' // the host has no space for what the image must allocate

/** An error about an image or its files; the message names the file and the problem. */
export class ImageError extends Error {
  readonly code: ImageErrorCode
  readonly file: string | undefined

  constructor(code: ImageErrorCode, message: string, file?: string) {
    super(file === undefined ? message : `${file}: ${message}`)
    this.name = 'ImageError'
    this.code = code
    this.file = file
  }
}

/**
 * What an error says, in words and without its errno name: "no such file or directory" for
 * Node's "ENOENT: no such file or directory, open 'x'" or an FsError, the message for others.
 */
export function errnoText(error: unknown): string {
  const e = error as {errno?: unknown; message?: unknown} | undefined
  if (typeof e?.errno === 'number') {
    const known = getSystemErrorMap().get(-Math.abs(e.errno))
    if (known !== undefined) return known[1]
  }

  return typeof e?.message === 'string' ? e.message : String(error)
}
