/**
 * How getxattr(2) and listxattr(2) answer a caller's buffer, for adapters that get the caller's
 * buffer size with the request: a size of 0 asks for the length, a value longer than the buffer
 * is ERANGE.
 */
import {FsError} from '../storage/errors.js'

/** listxattr(2)'s list: every name followed by a NUL byte. */
export function xattrList(names: readonly string[]): Buffer {
  return Buffer.concat(names.map(name => Buffer.from(`${name}\0`)))
}

/**
 * The answer to a caller with a buffer of `size` bytes: the value's length when `size` is 0, else
 * the value itself; ERANGE when it does not fit.
 */
export function fitXattr(value: Buffer, size: number, syscall: 'getxattr' | 'listxattr'): Buffer | number {
  if (size === 0) return value.length
  if (value.length > size) throw new FsError('ERANGE', syscall)
  return value
}
