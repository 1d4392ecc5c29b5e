/**
 * `writers` in the data dir: the files the kernel may be writing itself (FUSE passthrough) while
 * the image is open. Their content files change without a request reaching the server, so their
 * sizes are not in the log until the server takes them from the host files (FileData.adoptDirect).
 * Each file open for writing that way is listed here before its open is answered, in a shared
 * mapping of the file (as the log's appends, wal.ts): a killed server leaves the list in the page
 * cache, and the next open takes the size and mtime of each listed file from its content file
 * (FileData.recoverWriters). A store into the mapping costs no system call, where a pwrite of the
 * list cost more than the rest of a create. FORMAT.md, "Writers", has the bytes.
 */
import fs from 'node:fs'
import path from 'node:path'

import {decodeList, encodeEntry, encodeHeader, entryOffset} from './codec/writers.js'
import {WRITERS_NAME} from './format.js'
import {mapShared} from './mapped-file.js'
import {allocateRange, createAllocated} from './space.js'

/** Places of a new list; it doubles when they are all taken. */
const FIRST_PLACES = 4096

export class WritersList {
  private fd: number | undefined
  private map: Buffer | undefined
  private places = 0
  private readonly free: number[] = []
  private next = 0
  private readonly file: string
  /** A file was unlisted since the last sync. */
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

  /** List `ino`; returns its place, for `remove`. Throws (nothing listed) if the host has no room for the list. */
  add(ino: number): number {
    const place = this.free.pop() ?? this.next
    if (place >= this.places) this.grow(Math.max(FIRST_PLACES, this.places * 2))
    if (place === this.next) this.next++
    encodeEntry(this.map!.subarray(entryOffset(place)), ino)
    return place
  }

  /**
   * Make room for `places` places: a new list is created with every byte allocated (a store into
   * a hole of a full host would be a SIGBUS), a full one grown and mapped again.
   */
  private grow(places: number): void {
    const size = entryOffset(places)
    if (this.fd === undefined) {
      this.fd = createAllocated(this.file, size, false)
      const header = encodeHeader(this.uuid)
      fs.writeSync(this.fd, header, 0, header.length, 0)
    } else allocateRange(this.fd, entryOffset(this.places), size)

    this.map = mapShared(this.fd, size)
    this.places = places
  }

  /** Unlist the inode at `place` (its size is in the log by now). */
  remove(place: number): void {
    encodeEntry(this.map!.subarray(entryOffset(place)), 0)
    this.free.push(place)
    this.unsynced = true
  }

  /** Whether a file was unlisted since the last sync. */
  get hasUnsynced(): boolean {
    return this.unsynced
  }

  /** Make the unlistings since the last sync durable. */
  sync(): void {
    if (!this.unsynced || this.fd === undefined) return
    fs.fdatasyncSync(this.fd)
    this.unsynced = false
  }

  /** Remove the list: nothing is listed (after recovery, and at a clean close). */
  clear(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd)
    this.fd = undefined
    this.map = undefined // unmapped when collected (mmap-io has no munmap)
    this.places = 0
    this.free.length = 0
    this.next = 0
    this.unsynced = false
    fs.rmSync(this.file, {force: true})
  }
}
