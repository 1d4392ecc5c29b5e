/**
 * `writers` in the data dir: the files the kernel may be writing itself (FUSE passthrough) while
 * the image is open. Their content files change without a request reaching the server, so their
 * sizes are not in the log until the server takes them from the host files (FileData.adoptDirect).
 * Each file open for writing that way is listed here before its open is answered, with pwrite(2):
 * a killed server leaves the list in the page cache, and the next read-write open takes the size
 * and mtime of each listed file from its content file (FileData.recoverWriters). FORMAT.md,
 * "writers", has the bytes.
 */
import fs from 'node:fs'
import path from 'node:path'

import {decodeList, encodeEntry, encodeHeader, entryOffset} from './codec/writers.js'
import {WRITERS_ENTRY, WRITERS_NAME} from './format.js'

export class WritersList {
  private fd: number | undefined
  private readonly free: number[] = []
  private next = 0
  private readonly file: string
  private readonly entry = Buffer.alloc(WRITERS_ENTRY.SIZE)
  /** A file was unlisted since the last sync (see sync). */
  private unsynced = false

  constructor(
    dir: string,
    private readonly uuid: Buffer,
  ) {
    this.file = path.join(dir, WRITERS_NAME)
  }

  /**
   * The inode numbers a list left by an earlier open of this image names (none if there is no
   * list, or it is another image's).
   */
  listed(): number[] {
    let bytes: Buffer
    try {
      bytes = fs.readFileSync(this.file)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw error
    }

    return decodeList(bytes, this.uuid)
  }

  /** List `ino`; returns its place, for `remove`. */
  add(ino: number): number {
    if (this.fd === undefined) {
      this.fd = fs.openSync(this.file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o600)
      const header = encodeHeader(this.uuid)
      fs.writeSync(this.fd, header, 0, header.length, 0)
    }

    const place = this.free.pop() ?? this.next++
    this.put(place, ino)
    return place
  }

  /** Unlist the inode at `place` (its size is in the log by now). */
  remove(place: number): void {
    this.put(place, 0)
    this.free.push(place)
    this.unsynced = true
  }

  /**
   * Before every sync of the log: make the unlistings since the last one durable. Otherwise a
   * power loss could leave a closed file listed, with a later truncate durable in the log but not
   * yet on the host file, and recovery would take the old length back.
   */
  sync(): void {
    if (!this.unsynced || this.fd === undefined) return
    fs.fdatasyncSync(this.fd)
    this.unsynced = false
  }

  private put(place: number, ino: number): void {
    fs.writeSync(this.fd!, encodeEntry(this.entry, ino), 0, this.entry.length, entryOffset(place))
  }

  /** Remove the list: nothing is listed (after recovery, and at a clean close). */
  clear(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd)
    this.fd = undefined
    this.unsynced = false
    this.free.length = 0
    this.next = 0
    fs.rmSync(this.file, {force: true})
  }
}
