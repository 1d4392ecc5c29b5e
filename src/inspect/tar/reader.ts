/** Reads a tar archive (ustar, pax, GNU) member by member from a file descriptor, synchronously. */
import fs from 'node:fs'

import {BLOCK, TYPE, type TarMember, TarError, parseHeaderBlock, parsePaxRecords, parsePaxTime} from './format.js'

/** Largest extended header accepted (xattrs of one inode are at most 128 KiB; GNU tar's limit is similar). */
const MAX_META = 16 << 20
const SLEEPER = new Int32Array(new SharedArrayBuffer(4))

export class TarReader {
  private buf = Buffer.alloc(1 << 20)
  private start = 0
  private end = 0
  private eof = false
  /** Unread content of the current member, and its padding. */
  private remaining = 0
  private padding = 0
  private globals = new Map<string, Buffer>()
  /** Members returned so far. */
  count = 0

  constructor(private readonly fd: number) {}

  /** Fill the buffer so that at least `n` bytes are available (fewer only at the end of the input). */
  private fill(n: number): number {
    if (this.end - this.start >= n) return n
    if (this.start > 0) {
      this.buf.copy(this.buf, 0, this.start, this.end)
      this.end -= this.start
      this.start = 0
    }

    if (n > this.buf.length) {
      const bigger = Buffer.alloc(n)
      this.buf.copy(bigger, 0, 0, this.end)
      this.buf = bigger
    }

    while (this.end < n && !this.eof) {
      let got: number
      try {
        got = fs.readSync(this.fd, this.buf, this.end, this.buf.length - this.end, null)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') {
          Atomics.wait(SLEEPER, 0, 0, 5)
          continue
        }

        throw error
      }

      if (got === 0) this.eof = true
      this.end += got
    }

    return Math.min(n, this.end - this.start)
  }

  private take(n: number): Buffer {
    if (this.fill(n) < n) throw new TarError('the archive ends in the middle of a member (truncated?)')
    const out = this.buf.subarray(this.start, this.start + n)
    this.start += n
    return out
  }

  private skip(n: number): void {
    while (n > 0) {
      const k = Math.min(n, this.buf.length)
      this.take(k)
      n -= k
    }
  }

  /** Does the input start with a valid tar header? (Reads, but consumes nothing.) */
  looksLikeTar(): boolean {
    if (this.fill(BLOCK) < BLOCK) return false
    try {
      parseHeaderBlock(this.buf.subarray(this.start, this.start + BLOCK))
      return true
    } catch {
      return false
    }
  }

  /** The next member (its unread content, if any, is skipped first), or null at the end. */
  next(): TarMember | null {
    this.skip(this.remaining + this.padding)
    this.remaining = 0
    this.padding = 0
    let local = new Map<string, Buffer>()
    let longName: Buffer | undefined
    let longLink: Buffer | undefined
    for (;;) {
      if (this.fill(BLOCK) < BLOCK) {
        if (this.end - this.start === 0 && local.size === 0 && longName === undefined) return null
        throw new TarError('the archive ends in the middle of a header (truncated?)')
      }

      const raw = parseHeaderBlock(Buffer.from(this.take(BLOCK)))
      if (raw === null) return null // end-of-archive marker
      if (raw.type === TYPE.PAX || raw.type === TYPE.PAX_GLOBAL || raw.type === TYPE.GNU_LONGNAME || raw.type === TYPE.GNU_LONGLINK) {
        if (raw.size > MAX_META) throw new TarError(`an extended header of ${raw.size} bytes is larger than razorfs accepts (${MAX_META})`)
        const data = Buffer.from(this.take(raw.size))
        this.skip(pad(raw.size))
        if (raw.type === TYPE.PAX) local = new Map([...local, ...parsePaxRecords(data)])
        else if (raw.type === TYPE.PAX_GLOBAL) this.globals = new Map([...this.globals, ...parsePaxRecords(data)])
        else if (raw.type === TYPE.GNU_LONGNAME) longName = cut(data)
        else longLink = cut(data)
        continue
      }

      const pax = new Map([...this.globals, ...local])
      const text = (key: string): string | undefined => pax.get(key)?.toString('utf8')
      const num = (key: string, fallback: number): number => {
        const v = text(key)
        if (v === undefined) return fallback
        const n = Number(v)
        if (!Number.isSafeInteger(n) || n < 0) throw new TarError(`bad ${key} ${JSON.stringify(v)} in a pax header`)
        return n
      }

      for (const key of pax.keys()) {
        if (key.startsWith('GNU.sparse.')) throw new TarError('sparse members (GNU tar --sparse) are not supported; create the archive without --sparse')
      }

      const size = num('size', raw.size)
      const xattrs: Array<{name: Buffer; value: Buffer}> = []
      for (const [key, value] of pax) {
        if (key.startsWith('SCHILY.xattr.')) xattrs.push({name: Buffer.from(key.slice('SCHILY.xattr.'.length)), value})
        else if (key.startsWith('LIBARCHIVE.xattr.')) {
          const name = Buffer.from(decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length)))
          if (!xattrs.some(x => x.name.equals(name))) xattrs.push({name, value: Buffer.from(value.toString('latin1'), 'base64')})
        }
      }

      const vendor: Record<string, string> = {}
      for (const [key, value] of pax) if (key.startsWith('RAZORFS.')) vendor[key] = value.toString('utf8')
      const type = raw.type === TYPE.CONTIGUOUS ? TYPE.FILE : raw.type
      const member: TarMember = {
        path: pax.get('path') ?? longName ?? raw.name,
        type,
        mode: raw.mode,
        uid: num('uid', raw.uid),
        gid: num('gid', raw.gid),
        size: type === TYPE.FILE ? size : 0,
        mtime: text('mtime') === undefined ? {sec: raw.mtime, nsec: 0} : parsePaxTime(text('mtime')!),
        atime: text('atime') === undefined ? undefined : parsePaxTime(text('atime')!),
        ctime: text('ctime') === undefined ? undefined : parsePaxTime(text('ctime')!),
        linkpath: type === TYPE.HARDLINK || type === TYPE.SYMLINK ? pax.get('linkpath') ?? longLink ?? raw.linkname : undefined,
        devmajor: num('SCHILY.devmajor', raw.devmajor),
        devminor: num('SCHILY.devminor', raw.devminor),
        xattrs,
        vendor,
      }
      // A member with content that is not a regular file (a hard link with data, in some tars): skip it.
      this.remaining = type === TYPE.FILE ? size : raw.size
      this.padding = pad(this.remaining)
      if (type !== TYPE.FILE) {
        this.skip(this.remaining + this.padding)
        this.remaining = 0
        this.padding = 0
      }

      this.count++
      return member
    }
  }

  /** Read content of the current member into `buf`; returns the bytes read (0 at its end). */
  read(buf: Buffer): number {
    if (this.remaining === 0) return 0
    const want = Math.min(buf.length, this.remaining)
    const got = this.fill(Math.min(want, this.buf.length))
    if (got === 0) throw new TarError('the archive ends in the middle of a member (truncated?)')
    this.buf.copy(buf, 0, this.start, this.start + got)
    this.start += got
    this.remaining -= got
    return got
  }
}

function pad(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK
}

function cut(data: Buffer): Buffer {
  const end = data.indexOf(0)
  return end === -1 ? data : data.subarray(0, end)
}
