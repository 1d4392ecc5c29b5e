/**
 * How dump and stats show bytes, modes and times: names that are not UTF-8 are escaped (human
 * output) or carried as base64 (JSON), so every name is shown unambiguously and round-trips.
 */
import {isUtf8} from 'node:buffer'

import {S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK} from '../storage/format.js'
import type {Timespec} from '../storage/index.js'

const C_ESCAPES: Record<number, string> = {
  0x07: '\\a',
  0x08: '\\b',
  0x09: '\\t',
  0x0a: '\\n',
  0x0b: '\\v',
  0x0c: '\\f',
  0x0d: '\\r',
  0x20: '\\ ',
  0x5c: '\\\\',
}

function octal(byte: number): string {
  return `\\${byte.toString(8).padStart(3, '0')}`
}

/**
 * A name as `ls -b` (GNU quoting style "escape") shows it: one token, whatever bytes it holds.
 * Backslash, space and C control characters get C escapes (`\\`, `\ `, `\n`, ...); other
 * non-printable bytes, and every byte of a sequence that is not valid UTF-8, become `\ooo` octal.
 * Printable UTF-8 characters are kept as they are.
 */
export function escapeName(bytes: Buffer, opts: {space?: boolean} = {}): string {
  const escapeSpace = opts.space ?? true
  // Fast path: printable ASCII without backslash (or space, when it is escaped) is shown as it is.
  let plain = true
  for (let i = 0; i < bytes.length && plain; i++) {
    const b = bytes[i]
    plain = b > 0x20 ? b < 0x7f && b !== 0x5c : b === 0x20 && !escapeSpace
  }

  if (plain) return bytes.toString('latin1')
  let out = ''
  let i = 0
  while (i < bytes.length) {
    const b = bytes[i]
    if (b < 0x80) {
      if (b === 0x20 && !escapeSpace) out += ' '
      else if (C_ESCAPES[b] !== undefined) out += C_ESCAPES[b]
      else if (b < 0x20 || b === 0x7f) out += octal(b)
      else out += String.fromCharCode(b)
      i++
      continue
    }

    const len = b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 && b <= 0xdf ? 2 : 0
    const seq = len > 1 && len <= 4 && b < 0xf5 ? bytes.subarray(i, i + len) : undefined
    if (seq !== undefined && seq.length === len && isUtf8(seq)) {
      const ch = seq.toString('utf8')
      const cp = ch.codePointAt(0)!
      // C1 controls, line/paragraph separators and other invisible format characters are escaped.
      if (cp < 0xa0 || cp === 0x2028 || cp === 0x2029 || (cp >= 0x200b && cp <= 0x200f) || cp === 0xfeff) {
        for (const x of seq) out += octal(x)
      } else {
        out += ch
      }

      i += len
      continue
    }

    out += octal(b)
    i++
  }

  return out
}

/** `{[key]: text}` when the bytes are UTF-8, else `{[key + 'Base64']: base64}`: exact either way. */
export function bytesField(key: string, bytes: Buffer): Record<string, string> {
  return isUtf8(bytes) ? {[key]: bytes.toString('utf8')} : {[`${key}Base64`]: bytes.toString('base64')}
}

/** Set `obj[key]` (UTF-8) or `obj[key + 'Base64']`, as bytesField does, in place. */
export function putBytes(obj: Record<string, unknown>, key: string, bytes: Buffer): void {
  if (isUtf8(bytes)) obj[key] = bytes.toString('utf8')
  else obj[`${key}Base64`] = bytes.toString('base64')
}

/** The bytes a JSON object carries under `key` or `key + 'Base64'` (the inverse of bytesField). */
export function fieldBytes(obj: Record<string, unknown>, key: string): Buffer | undefined {
  if (typeof obj[key] === 'string') return Buffer.from(obj[key] as string, 'utf8')
  if (typeof obj[`${key}Base64`] === 'string') return Buffer.from(obj[`${key}Base64`] as string, 'base64')
  return undefined
}

const TYPE_NAMES: Record<number, string> = {
  [S_IFREG]: 'file',
  [S_IFDIR]: 'dir',
  [S_IFLNK]: 'symlink',
  [S_IFIFO]: 'fifo',
  [S_IFCHR]: 'chardev',
  [S_IFBLK]: 'blockdev',
  [S_IFSOCK]: 'socket',
}

/** 'file', 'dir', 'symlink', 'fifo', 'chardev', 'blockdev', 'socket' or 'unknown'. */
export function typeName(mode: number): string {
  return TYPE_NAMES[mode & S_IFMT] ?? 'unknown'
}

const TYPE_CHARS: Record<number, string> = {
  [S_IFREG]: '-',
  [S_IFDIR]: 'd',
  [S_IFLNK]: 'l',
  [S_IFIFO]: 'p',
  [S_IFCHR]: 'c',
  [S_IFBLK]: 'b',
  [S_IFSOCK]: 's',
}

/** `ls -l`'s mode column: `drwxr-xr-x`, `-rwsr-x--T`, ... */
export function modeString(mode: number): string {
  const bit = (mask: number, ch: string): string => ((mode & mask) === 0 ? '-' : ch)
  const special = (exec: number, flag: number, set: string, unset: string): string => {
    if ((mode & flag) === 0) return bit(exec, 'x')
    return (mode & exec) === 0 ? unset : set
  }

  return (
    (TYPE_CHARS[mode & S_IFMT] ?? '?') +
    bit(0o400, 'r') +
    bit(0o200, 'w') +
    special(0o100, 0o4000, 's', 'S') +
    bit(0o040, 'r') +
    bit(0o020, 'w') +
    special(0o010, 0o2000, 's', 'S') +
    bit(0o004, 'r') +
    bit(0o002, 'w') +
    special(0o001, 0o1000, 't', 'T')
  )
}

/** `ls --full-time` in UTC: `2025-01-02 03:04:05.123456789 +0000`; `@sec.nsec` out of Date's range. */
export function formatTime(t: Timespec): string {
  const nsec = String(t.nsec).padStart(9, '0')
  if (t.sec !== lastSec) {
    const date = new Date(t.sec * 1000)
    lastSec = t.sec
    lastText = t.sec < -62_135_596_800 || t.sec > 253_402_300_799 ? `@${t.sec}` : date.toISOString().slice(0, 19).replace('T', ' ')
  }

  return lastText.startsWith('@') ? `${lastText}.${nsec}` : `${lastText}.${nsec} +0000`
}

/** formatTime's cache: files of one directory are mostly written in the same second. */
let lastSec = Number.NaN
let lastText = ''

/** Milliseconds since the epoch as an ISO date, or null for 0. */
export function isoMs(ms: number): string | null {
  if (ms === 0) return null
  const date = new Date(ms)
  return Number.isFinite(date.getTime()) ? date.toISOString() : null
}

/** Linux's dev_t encoding (glibc gnu_dev_major/minor): exact for every 64-bit value. */
export function devMajor(rdev: number): number {
  const d = BigInt(rdev)
  return Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn))
}

export function devMinor(rdev: number): number {
  const d = BigInt(rdev)
  return Number((d & 0xffn) | ((d >> 12n) & ~0xffn & 0xffff_ffffn))
}

export function makeDev(major: number, minor: number): number {
  const ma = BigInt(major)
  const mi = BigInt(minor)
  return Number((mi & 0xffn) | ((ma & 0xfffn) << 8n) | ((mi & ~0xffn) << 12n) | ((ma & ~0xfffn) << 32n))
}

/** 1234567 -> "1,234,567". */
export function thousands(n: number): string {
  return Math.round(n).toLocaleString('en-US')
}
