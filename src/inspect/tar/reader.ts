/**
 * Reads a tar archive (ustar, pax, GNU) member by member from a file descriptor, synchronously.
 *
 * It counts the bytes it consumes, so that every error says where the archive is bad: the byte
 * offset in the file or stream where it ends too early (truncated), or of the header that is
 * damaged, and the member (counted from 1) it was reading. An archive must end with its
 * end-of-archive marker (a zero block): one cut at a member's boundary is truncated too.
 */
import fs from 'node:fs'

import {errnoText} from '../../storage/errors.js'
import {escapeName} from '../text.js'
import {BLOCK, type RawHeader, TYPE, type TarMember, TarError, parseHeaderBlock, parsePaxRecords, parsePaxTime} from './format.js'

/** Largest extended header accepted (xattrs of one inode are at most 128 KiB; GNU tar's limit is similar). */
const MAX_META = 16 << 20
const SLEEPER = new Int32Array(new SharedArrayBuffer(4))

export class TarReader {
  private buf = Buffer.alloc(1 << 20)
  /** Offset in the input of buf[0]. */
  private base = 0
  private start = 0
  private end = 0
  private eof = false
  /** Unread content of the current member, and its padding. */
  private remaining = 0
  private padding = 0
  private globals = new Map<string, Buffer>()
  /** Members returned so far. */
  count = 0
  /** Offset of the first header block (extended headers included) of the member being read. */
  memberOffset = 0
  /** Path of the last member returned. */
  private path: Buffer = Buffer.alloc(0)

  constructor(private readonly fd: number) {}

  /** Fill the buffer so that at least `n` bytes are available (fewer only at the end of the input). */
  private fill(n: number): number {
    if (this.end - this.start >= n) return n
    if (this.start > 0) {
      this.buf.copy(this.buf, 0, this.start, this.end)
      this.base += this.start
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

        throw new TarError(`cannot read it at byte ${this.base + this.end}: ${errnoText(error)}`, this.base + this.end)
      }

      if (got === 0) this.eof = true
      this.end += got
    }

    return Math.min(n, this.end - this.start)
  }

  /** Bytes consumed so far: the offset in the input of the next byte. */
  get offset(): number {
    return this.base + this.start
  }

  /** The error for an input that ended (at its last byte read) while `where` needed more. */
  private truncated(where: string): TarError {
    const end = this.base + this.end
    return new TarError(`truncated: the archive ends at byte ${end}, ${where}`, end)
  }

  /** Where in the current member's data we are, for `truncated`. */
  private inData(): string {
    return `in the data of member ${this.count} (${escapeName(this.path)})`
  }

  private take(n: number, where: () => string): Buffer {
    if (this.fill(n) < n) throw this.truncated(where())
    const out = this.buf.subarray(this.start, this.start + n)
    this.start += n
    return out
  }

  /** Skip the rest of the current member's data and its padding. */
  private skipMember(): void {
    while (this.remaining > 0) {
      const k = Math.min(this.remaining, this.buf.length)
      this.take(k, () => this.inData())
      this.remaining -= k
    }

    this.take(this.padding, () => `in the padding after the data of member ${this.count} (${escapeName(this.path)})`)
    this.padding = 0
  }

  /**
   * Check that the input starts with a tar header (reads, but consumes nothing); throws a TarError
   * that says what the input is instead: empty, too short, or no tar header at byte 0.
   */
  checkStart(): void {
    const got = this.fill(BLOCK)
    if (got === 0) throw new TarError('not a tar archive: it is empty', 0)
    if (got < BLOCK) throw new TarError(`not a tar archive: it holds only ${got} bytes, less than one tar header (${BLOCK})`, 0)
    try {
      // A zero block is an archive of no members (as `tar cf x.tar -T /dev/null` writes).
      parseHeaderBlock(this.buf.subarray(this.start, this.start + BLOCK))
    } catch (error) {
      if (!(error instanceof TarError)) throw error
      throw new TarError(`not a tar archive: no tar header at byte 0 (${error.message})`, 0)
    }
  }

  /** The next member (its unread content, if any, is skipped first), or null at the end. */
  next(): TarMember | null {
    this.skipMember()
    this.memberOffset = this.offset
    const index = this.count + 1
    let local = new Map<string, Buffer>()
    let longName: Buffer | undefined
    let longLink: Buffer | undefined
    for (;;) {
      const at = this.offset
      const got = this.fill(BLOCK)
      if (got === 0 && at === this.memberOffset) {
        throw this.truncated(
          this.count === 0 ? 'before its first member' : `after member ${this.count} (${escapeName(this.path)}), without the end-of-archive marker`,
        )
      }

      const block = this.take(BLOCK, () => `in the header of member ${index}, which starts at byte ${at}`)
      let raw
      try {
        raw = parseHeaderBlock(Buffer.from(block))
      } catch (error) {
        if (!(error instanceof TarError)) throw error
        throw new TarError(`damaged: the header at byte ${at} (member ${index}): ${error.message}`, at)
      }

      if (raw === null) return null // end-of-archive marker
      if (raw.type === TYPE.PAX || raw.type === TYPE.PAX_GLOBAL || raw.type === TYPE.GNU_LONGNAME || raw.type === TYPE.GNU_LONGLINK) {
        if (raw.size > MAX_META)
          throw new TarError(`the extended header at byte ${at} (member ${index}) has ${raw.size} bytes, more than razorfs accepts (${MAX_META})`, at)
        const where = (): string => `in the extended header of member ${index}, which starts at byte ${at}`
        const data = Buffer.from(this.take(raw.size, where))
        this.take(pad(raw.size), where)
        try {
          if (raw.type === TYPE.PAX) local = new Map([...local, ...parsePaxRecords(data)])
          else if (raw.type === TYPE.PAX_GLOBAL) this.globals = new Map([...this.globals, ...parsePaxRecords(data)])
          else if (raw.type === TYPE.GNU_LONGNAME) longName = cut(data)
          else longLink = cut(data)
        } catch (error) {
          if (!(error instanceof TarError)) throw error
          throw new TarError(`damaged: the extended header at byte ${at} (member ${index}): ${error.message}`, at)
        }

        continue
      }

      try {
        return this.member(raw, local, longName, longLink)
      } catch (error) {
        if (!(error instanceof TarError) || error.offset !== undefined) throw error
        throw new TarError(
          `member ${index} (${escapeName(merged(this.globals, local).get('path') ?? longName ?? raw.name)}) at byte ${this.memberOffset}: ${error.message}`,
          this.memberOffset,
        )
      }
    }
  }

  /** The member a header block describes, with its extended headers; its data is next in the input. */
  private member(raw: RawHeader, local: Map<string, Buffer>, longName?: Buffer, longLink?: Buffer): TarMember {
    const pax = merged(this.globals, local)
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
      linkpath: type === TYPE.HARDLINK || type === TYPE.SYMLINK ? (pax.get('linkpath') ?? longLink ?? raw.linkname) : undefined,
      devmajor: num('SCHILY.devmajor', raw.devmajor),
      devminor: num('SCHILY.devminor', raw.devminor),
      xattrs,
      vendor,
    }
    // A member with content that is not a regular file (a hard link with data, in some tars): skip it.
    this.remaining = type === TYPE.FILE ? size : raw.size
    this.padding = pad(this.remaining)
    this.count++
    this.path = member.path
    if (type !== TYPE.FILE) this.skipMember()
    return member
  }

  /** Read content of the current member into `buf`; returns the bytes read (0 at its end). */
  read(buf: Buffer): number {
    if (this.remaining === 0) return 0
    const want = Math.min(buf.length, this.remaining)
    const got = this.fill(Math.min(want, this.buf.length))
    if (got === 0) throw this.truncated(this.inData())
    this.buf.copy(buf, 0, this.start, this.start + got)
    this.start += got
    this.remaining -= got
    return got
  }
}

function merged(globals: Map<string, Buffer>, local: Map<string, Buffer>): Map<string, Buffer> {
  return new Map([...globals, ...local])
}

function pad(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK
}

function cut(data: Buffer): Buffer {
  const end = data.indexOf(0)
  return end === -1 ? data : data.subarray(0, end)
}
