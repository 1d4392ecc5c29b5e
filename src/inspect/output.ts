/**
 * Synchronous, buffered output to a file descriptor, for listings and archives that are written
 * while walking an image (a synchronous walk: nothing may pile up in a stream's queue, which is
 * what keeps memory constant). A full non-blocking pipe (EAGAIN) is waited for; a reader that went
 * away (EPIPE, `razorfs dump | head`) ends the output with `OutputClosed`.
 */
import fs from 'node:fs'

/** The reader of the output went away (EPIPE): stop quietly. */
export class OutputClosed extends Error {
  constructor() {
    super('output closed')
    this.name = 'OutputClosed'
  }
}

const SLEEPER = new Int32Array(new SharedArrayBuffer(4))

function pause(ms: number): void {
  Atomics.wait(SLEEPER, 0, 0, ms)
}

/** Write all of `buf` at the fd's current position (pipes, terminals, files opened for append/write). */
export function writeAllSync(fd: number, buf: Buffer, position?: number): void {
  let off = 0
  let idle = 0
  while (off < buf.length) {
    let n: number
    try {
      n = fs.writeSync(fd, buf, off, buf.length - off, position === undefined ? null : position + off)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'EAGAIN') {
        pause(Math.min(50, ++idle))
        continue
      }

      if (code === 'EPIPE') throw new OutputClosed()
      throw error
    }

    idle = 0
    off += n
  }
}

export class FdWriter {
  private buf: Buffer
  private used = 0
  /** Bytes handed to `write` so far. */
  written = 0

  constructor(
    readonly fd: number,
    size = 1 << 16,
  ) {
    this.buf = Buffer.allocUnsafe(size)
  }

  write(data: Buffer | string): void {
    if (typeof data === 'string') {
      // Encode straight into the buffer (no Buffer per line: a listing writes millions of lines).
      if (this.used + data.length * 3 > this.buf.length) this.flush()
      if (data.length * 3 <= this.buf.length) {
        const n = this.buf.write(data, this.used, 'utf8')
        this.used += n
        this.written += n
        return
      }
    }

    const bytes = typeof data === 'string' ? Buffer.from(data) : data
    this.written += bytes.length
    if (this.used + bytes.length > this.buf.length) {
      this.flush()
      if (bytes.length >= this.buf.length) {
        writeAllSync(this.fd, bytes)
        return
      }
    }

    bytes.copy(this.buf, this.used)
    this.used += bytes.length
  }

  /** `count` zero bytes. */
  zeros(count: number): void {
    while (count > 0) {
      if (this.used === this.buf.length) this.flush()
      const n = Math.min(count, this.buf.length - this.used)
      this.buf.fill(0, this.used, this.used + n)
      this.used += n
      this.written += n
      count -= n
    }
  }

  flush(): void {
    if (this.used === 0) return
    const chunk = this.buf.subarray(0, this.used)
    this.used = 0
    writeAllSync(this.fd, chunk)
  }
}
