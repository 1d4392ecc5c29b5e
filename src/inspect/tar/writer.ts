/** Writes a pax archive member by member to an FdWriter (synchronous, constant memory). */
import {isUtf8} from 'node:buffer'

import type {FdWriter} from '../output.js'
import {BLOCK, RECORD, TYPE, type TarMember, TarError, formatPaxTime, splitUstarPath, ustarBlock} from './format.js'

const USTAR_ID_MAX = 0o7777777
const USTAR_SIZE_MAX = 0o77777777777
const PAX_DIR = Buffer.from('PaxHeaders/')

/** Pax records of one member, built in a reused buffer (a record: `<length> <key>=<value>\n`). */
class PaxRecords {
  private buf = Buffer.alloc(4096)
  length = 0

  reset(): void {
    this.length = 0
  }

  add(key: string, value: Buffer | string): void {
    const valueLen = typeof value === 'string' ? Buffer.byteLength(value) : value.length
    const body = 1 + key.length + 1 + valueLen + 1 // " key=value\n" (keys are ASCII)
    let len = body + 1
    while (String(len).length + body !== len) len++
    if (this.length + len > this.buf.length) {
      const bigger = Buffer.alloc(Math.max(2 * this.buf.length, this.length + len))
      this.buf.copy(bigger, 0, 0, this.length)
      this.buf = bigger
    }

    let p = this.length
    p += this.buf.write(`${len} ${key}=`, p, 'latin1')
    p += typeof value === 'string' ? this.buf.write(value, p, 'utf8') : value.copy(this.buf, p)
    this.buf[p++] = 0x0a
    this.length = p
  }

  bytes(): Buffer {
    return this.buf.subarray(0, this.length)
  }
}

export class TarWriter {
  /** Content bytes still owed by the current member. */
  private remaining = 0
  private padding = 0
  private readonly block = Buffer.alloc(BLOCK)
  private readonly pax = new PaxRecords()

  constructor(private readonly out: FdWriter) {}

  /** Start a member; a regular one must then get exactly `size` bytes through `data`. */
  add(m: TarMember): void {
    if (this.remaining !== 0) throw new Error(`internal: ${this.remaining} bytes of the previous member were not written`)
    const pax = this.pax
    pax.reset()
    const binary = !isUtf8(m.path) || (m.linkpath !== undefined && !isUtf8(m.linkpath))
    if (binary) pax.add('hdrcharset', 'BINARY')
    pax.add('path', m.path)
    if (m.linkpath !== undefined) pax.add('linkpath', m.linkpath)
    pax.add('mtime', formatPaxTime(m.mtime))
    if (m.atime !== undefined) pax.add('atime', formatPaxTime(m.atime))
    if (m.ctime !== undefined) pax.add('ctime', formatPaxTime(m.ctime))
    if (m.uid > USTAR_ID_MAX) pax.add('uid', String(m.uid))
    if (m.gid > USTAR_ID_MAX) pax.add('gid', String(m.gid))
    if (m.size > USTAR_SIZE_MAX) pax.add('size', String(m.size))
    if (m.devmajor > USTAR_ID_MAX) pax.add('SCHILY.devmajor', String(m.devmajor))
    if (m.devminor > USTAR_ID_MAX) pax.add('SCHILY.devminor', String(m.devminor))
    for (const [key, value] of Object.entries(m.vendor)) pax.add(key, value)
    for (const x of m.xattrs) {
      if (x.name.includes(0x3d) || x.name.includes(0))
        throw new TarError(`xattr name ${JSON.stringify(x.name.toString())} cannot be archived (it holds "=" or NUL)`)
      pax.add(`SCHILY.xattr.${x.name.toString('utf8')}`, x.value)
    }

    const records = pax.bytes()
    const base = m.path.subarray(m.path.lastIndexOf(0x2f, m.path.length - 2) + 1).subarray(0, 80)
    this.out.write(
      ustarBlock(
        {
          name: Buffer.concat([PAX_DIR, base]),
          type: TYPE.PAX,
          mode: 0o644,
          uid: 0,
          gid: 0,
          size: records.length,
          mtimeSec: Math.max(0, m.mtime.sec),
        },
        this.block,
      ),
    )
    this.out.write(records)
    this.out.zeros(pad(records.length))

    const {name, prefix} = splitUstarPath(m.path)
    this.out.write(
      ustarBlock(
        {
          name,
          prefix,
          type: m.type,
          mode: m.mode,
          uid: m.uid,
          gid: m.gid,
          size: m.type === TYPE.FILE ? m.size : 0,
          mtimeSec: m.mtime.sec,
          linkname: m.linkpath,
          devmajor: m.devmajor,
          devminor: m.devminor,
        },
        this.block,
      ),
    )
    if (m.type === TYPE.FILE) {
      this.remaining = m.size
      this.padding = pad(m.size)
    }
  }

  /** Content of the current member. */
  data(chunk: Buffer): void {
    if (chunk.length > this.remaining) throw new Error('internal: more content than the member size')
    this.out.write(chunk)
    this.remaining -= chunk.length
    if (this.remaining === 0) {
      this.out.zeros(this.padding)
      this.padding = 0
    }
  }

  /** Two zero blocks, then zeros up to a whole record (as GNU tar writes it). */
  finish(): void {
    if (this.remaining !== 0) throw new Error('internal: the last member is incomplete')
    this.out.zeros(2 * BLOCK)
    const rest = this.out.written % RECORD
    if (rest !== 0) this.out.zeros(RECORD - rest)
    this.out.flush()
  }
}

function pad(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK
}
