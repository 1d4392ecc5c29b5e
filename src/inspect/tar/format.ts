/**
 * The pax interchange format (POSIX.1-2001 `pax`, i.e. ustar headers plus `x` extended headers),
 * as far as razorfs archives need it, byte-exact: path names and xattr values are bytes, never
 * decoded as text.
 *
 * Written: every member gets an `x` header with `path`, `linkpath` (links), `mtime`, `atime` and
 * `ctime` (nanoseconds), `SCHILY.xattr.<name>` per xattr (GNU tar's and star's keyword), and,
 * where the ustar fields are too small, `uid`, `gid`, `size`, `SCHILY.devmajor`, `SCHILY.devminor`;
 * `hdrcharset=BINARY` when a path is not UTF-8 (POSIX: the values are then raw bytes). Sockets,
 * which tar has no type for, are an empty regular member with `RAZORFS.type=socket` (readers
 * ignore unknown vendor keywords; razorfs restores the socket).
 *
 * Read: ustar, pax (`x` and `g`), GNU long names (`L`, `K`), GNU base-256 numbers, and the
 * `LIBARCHIVE.xattr.*` keyword of bsdtar, so archives made by GNU tar and bsdtar restore too.
 *
 * Why not tar-stream or node-tar: both keep pax records as JavaScript strings (tar-stream's
 * `encodePax`/`decodePax`, node-tar's `Pax`), decoded and encoded as UTF-8, so a name that is not
 * UTF-8 or a binary xattr value cannot survive a round trip (docs/ARCHITECTURE.md).
 */
import type {Timespec} from '../../storage/index.js'

export const BLOCK = 512
/** GNU tar's default record: 20 blocks. Archives are padded to a multiple of it. */
export const RECORD = 20 * BLOCK

export const TYPE = {
  FILE: '0',
  HARDLINK: '1',
  SYMLINK: '2',
  CHARDEV: '3',
  BLOCKDEV: '4',
  DIR: '5',
  FIFO: '6',
  CONTIGUOUS: '7',
  PAX: 'x',
  PAX_GLOBAL: 'g',
  GNU_LONGNAME: 'L',
  GNU_LONGLINK: 'K',
} as const

/** ustar header fields: [offset, length]. */
const F = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  version: [263, 2],
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155],
} as const

/** One member of an archive, with everything razorfs keeps. */
export interface TarMember {
  path: Buffer
  type: string
  /** Permission bits (07777). */
  mode: number
  uid: number
  gid: number
  size: number
  mtime: Timespec
  atime?: Timespec
  ctime?: Timespec
  linkpath?: Buffer
  devmajor: number
  devminor: number
  xattrs: Array<{name: Buffer; value: Buffer}>
  /** Vendor keywords (RAZORFS.type). */
  vendor: Record<string, string>
}

// ---- numbers and times ---------------------------------------------------------------------------

function writeOctal(block: Buffer, [off, len]: readonly [number, number], value: number): boolean {
  const digits = len - 1
  if (!Number.isSafeInteger(value) || value < 0 || value >= 8 ** digits) {
    block.fill(0x30, off, off + digits) // the pax record holds the real value
    return false
  }

  // Digits from the right, zero-padded, then the NUL terminator (already 0 in a fresh block).
  let v = value
  for (let i = off + digits - 1; i >= off; i--) {
    block[i] = 0x30 + (v % 8)
    v = Math.floor(v / 8)
  }

  return true
}

/** An octal field (NUL or space terminated), or GNU base-256 when its first byte has the high bit. */
export function readNumber(block: Buffer, [off, len]: readonly [number, number]): number {
  if ((block[off] & 0x80) !== 0) {
    const negative = (block[off] & 0x40) !== 0
    let v = BigInt(block[off] & 0x3f)
    for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(block[off + i])
    if (negative) v -= 1n << BigInt(len * 8 - 2)
    return Number(v)
  }

  const text = block
    .toString('latin1', off, off + len)
    .replace(/[\0 ].*$/s, '')
    .trim()
  if (text === '') return 0
  if (!/^[0-7]+$/.test(text)) throw new TarError(`bad octal number ${JSON.stringify(text)}`)
  return Number.parseInt(text, 8)
}

/** A pax time value: `sec.nanoseconds`, exact (negative times as `-1.5` = sec -2, nsec 5e8). */
export function formatPaxTime(t: Timespec): string {
  if (t.sec < 0 && t.nsec > 0) return `-${-t.sec - 1}.${String(1e9 - t.nsec).padStart(9, '0')}`
  return `${t.sec}.${String(t.nsec).padStart(9, '0')}`
}

export function parsePaxTime(text: string): Timespec {
  const m = /^(-)?(\d+)(?:\.(\d*))?$/.exec(text.trim())
  if (m === null) throw new TarError(`bad time ${JSON.stringify(text)} in a pax header`)
  const whole = Number(m[2])
  const frac = Number((m[3] ?? '').slice(0, 9).padEnd(9, '0'))
  if (m[1] === undefined) return {sec: whole, nsec: frac}
  return frac === 0 ? {sec: -whole, nsec: 0} : {sec: -whole - 1, nsec: 1e9 - frac}
}

export class TarError extends Error {
  readonly code = 'RZ_ARCHIVE'

  /** `offset`: where in the archive the damage is, once the message says so (the reader's errors). */
  constructor(
    message: string,
    readonly offset?: number,
  ) {
    super(message)
    this.name = 'TarError'
  }
}

// ---- pax records ---------------------------------------------------------------------------------

/** One record: `<length> <key>=<value>\n`, where length counts itself. */
export function paxRecord(key: string, value: Buffer | string): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), typeof value === 'string' ? Buffer.from(value, 'utf8') : value, Buffer.from('\n')])
  let len = body.length + 1
  while (String(len).length + body.length !== len) len++
  return Buffer.concat([Buffer.from(String(len), 'latin1'), body])
}

/** Parse the records of an `x` or `g` header; values stay bytes. */
export function parsePaxRecords(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>()
  let p = 0
  while (p < data.length) {
    if (data[p] === 0) break // padding
    const space = data.indexOf(0x20, p)
    if (space === -1) throw new TarError('bad pax header: a record has no length')
    const len = Number(data.toString('latin1', p, space))
    if (!Number.isSafeInteger(len) || len <= space - p + 1 || p + len > data.length || data[p + len - 1] !== 0x0a) {
      throw new TarError('bad pax header: a record length is wrong')
    }

    const eq = data.indexOf(0x3d, space + 1)
    if (eq === -1 || eq >= p + len) throw new TarError('bad pax header: a record has no "="')
    out.set(data.toString('utf8', space + 1, eq), Buffer.from(data.subarray(eq + 1, p + len - 1)))
    p += len
  }

  return out
}

// ---- headers -------------------------------------------------------------------------------------

function checksum(block: Buffer): number {
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += i >= F.chksum[0] && i < F.chksum[0] + F.chksum[1] ? 0x20 : block[i]
  return sum
}

const MAGIC = Buffer.from('ustar\x0000', 'latin1')

/**
 * A ustar header block, written into `block` (512 bytes, reused by the writer) or a new one.
 * Fields that do not fit are left for the pax header to carry.
 */
export function ustarBlock(
  h: {
    name: Buffer
    prefix?: Buffer
    type: string
    mode: number
    uid: number
    gid: number
    size: number
    mtimeSec: number
    linkname?: Buffer
    devmajor?: number
    devminor?: number
  },
  block = Buffer.alloc(BLOCK),
): Buffer {
  block.fill(0)
  h.name.copy(block, F.name[0], 0, Math.min(h.name.length, F.name[1]))
  if (h.prefix !== undefined) h.prefix.copy(block, F.prefix[0], 0, Math.min(h.prefix.length, F.prefix[1]))
  writeOctal(block, F.mode, h.mode & 0o7777)
  writeOctal(block, F.uid, h.uid)
  writeOctal(block, F.gid, h.gid)
  writeOctal(block, F.size, h.size)
  writeOctal(block, F.mtime, Math.max(0, h.mtimeSec))
  block[F.typeflag[0]] = h.type.charCodeAt(0)
  if (h.linkname !== undefined) h.linkname.copy(block, F.linkname[0], 0, Math.min(h.linkname.length, F.linkname[1]))
  MAGIC.copy(block, F.magic[0])
  writeOctal(block, F.devmajor, h.devmajor ?? 0)
  writeOctal(block, F.devminor, h.devminor ?? 0)
  // The checksum counts its own field as 8 spaces; the field is still zero here.
  let sum = 8 * 0x20
  for (let i = 0; i < BLOCK; i++) sum += block[i]
  writeOctal(block, [F.chksum[0], 7], sum)
  block[F.chksum[0] + 6] = 0
  block[F.chksum[0] + 7] = 0x20
  return block
}

/** Split a path into ustar's prefix and name if it fits (else a truncated name: pax has the path). */
export function splitUstarPath(path: Buffer): {name: Buffer; prefix?: Buffer} {
  if (path.length <= F.name[1]) return {name: path}
  for (let i = path.length - 1; i > 0; i--) {
    if (path[i] !== 0x2f) continue
    if (path.length - i - 1 > F.name[1]) break
    if (i <= F.prefix[1]) return {prefix: path.subarray(0, i), name: path.subarray(i + 1)}
  }

  return {name: path.subarray(0, F.name[1])}
}

export interface RawHeader {
  name: Buffer
  type: string
  mode: number
  uid: number
  gid: number
  size: number
  mtime: number
  linkname: Buffer
  devmajor: number
  devminor: number
}

function cstring(block: Buffer, [off, len]: readonly [number, number]): Buffer {
  const field = block.subarray(off, off + len)
  const end = field.indexOf(0)
  return Buffer.from(end === -1 ? field : field.subarray(0, end))
}

/** Decode a header block; null for an all-zero block (end of archive). */
export function parseHeaderBlock(block: Buffer): RawHeader | null {
  if (block.every(b => b === 0)) return null
  let stored: number
  try {
    stored = readNumber(block, F.chksum)
  } catch {
    stored = -1
  }

  let signed = 0
  for (let i = 0; i < BLOCK; i++) signed += i >= F.chksum[0] && i < F.chksum[0] + F.chksum[1] ? 0x20 : (block[i] << 24) >> 24
  if (stored !== checksum(block) && stored !== signed) throw new TarError('header checksum mismatch')
  const ustar = block.toString('latin1', F.magic[0], F.magic[0] + 5) === 'ustar'
  let name = cstring(block, F.name)
  if (ustar) {
    const prefix = cstring(block, F.prefix)
    // GNU tar's old format keeps atime/ctime where the prefix is: only ustar ("ustar\0") has a prefix.
    if (prefix.length > 0 && block.toString('latin1', F.magic[0], F.magic[0] + 6) === 'ustar\0') name = Buffer.concat([prefix, Buffer.from('/'), name])
  }

  const typeByte = block[F.typeflag[0]]
  return {
    name,
    type: typeByte === 0 ? TYPE.FILE : String.fromCharCode(typeByte),
    mode: readNumber(block, F.mode) & 0o7777,
    uid: readNumber(block, F.uid),
    gid: readNumber(block, F.gid),
    size: readNumber(block, F.size),
    mtime: readNumber(block, F.mtime),
    linkname: cstring(block, F.linkname),
    devmajor: ustar ? readNumber(block, F.devmajor) : 0,
    devminor: ustar ? readNumber(block, F.devminor) : 0,
  }
}
