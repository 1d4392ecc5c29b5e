/** Byte-level helpers of the checker: zero tests, name rules, names in messages. */
import {NAME_MAX} from '../storage/types.js'

const ZERO = Buffer.alloc(64 * 1024)

/** Are bytes [from, to) of `buf` all zero? */
export function isZero(buf: Buffer, from: number, to: number): boolean {
  for (let at = from; at < to; at += ZERO.length) {
    const end = Math.min(to, at + ZERO.length)
    if (buf.compare(ZERO, 0, end - at, at, end) !== 0) return false
  }

  return true
}

/** Offset of the last non-zero byte in [from, to), or -1. Scans backwards by 64 KiB blocks. */
export function lastNonZero(buf: Buffer, from: number, to: number): number {
  for (let end = to; end > from; ) {
    const start = Math.max(from, end - ZERO.length)
    if (buf.compare(ZERO, 0, end - start, start, end) !== 0) {
      for (let i = end - 1; i >= start; i--) if (buf[i] !== 0) return i
    }

    end = start
  }

  return -1
}

/** Why `name` cannot be the name of a directory entry, or undefined if it can. */
export function nameProblem(name: Buffer): string | undefined {
  if (name.length === 0) return 'it is empty'
  if (name.length > NAME_MAX) return `it is ${name.length} bytes, longer than ${NAME_MAX}`
  if (name.length <= 2 && name.every(c => c === 0x2e)) return `it is "${name.toString('latin1')}"`
  if (name.includes(0x2f)) return 'it holds a "/"'
  if (name.includes(0)) return 'it holds a NUL byte'
  return undefined
}

/** A name for a message: quoted, printable ASCII as is, other bytes as \xNN. */
export function shown(name: Buffer): string {
  let out = "'"
  for (const c of name.subarray(0, 255)) {
    if (c >= 0x20 && c < 0x7f && c !== 0x5c && c !== 0x27) out += String.fromCharCode(c)
    else out += `\\x${c.toString(16).padStart(2, '0')}`
  }

  return `${out}'`
}
