/** A directory handle's listing (FileSystem.listing): '.' and '..', then the volume's entries. */
import {type DirCursor, type DirentSink, ROOT_INO} from '../storage/types.js'
import type {Volume} from '../storage/volume.js'

const S_IFDIR = 0o040000

/**
 * A directory handle's listing in bulk: '.' and '..', then the volume's entries (Volume.readdir
 * order). Positions count entries from the start ('.' is 0). fill copies entries from the
 * position on into a sink without moving; skip moves on. Entries other processes remove while
 * the listing is open never make it lose one that stays (see DirCursor).
 */
export class Listing {
  private at = 0

  constructor(
    private readonly volume: Volume,
    private readonly cursor: DirCursor,
  ) {}

  get position(): number {
    return this.at
  }

  /** Whether the directory still has `name`, naming inode `ino`. */
  has(name: Buffer, ino: number): boolean {
    return this.volume.lookup(this.cursor.ino, name) === ino
  }

  /** Copy up to `max` entries into `sink` from index `at`; returns how many. */
  fill(sink: DirentSink, at: number, max: number): number {
    let n = at
    let pos = at === 0 ? 0 : sink.ends[at - 1]
    for (let p = this.at; p < 2 && n < at + max && n < sink.ends.length; p++, n++) {
      const ino = this.cursor.ino
      sink.names[pos++] = 0x2e // '.', and '..' at position 1
      if (p === 1) sink.names[pos++] = 0x2e
      sink.ends[n] = pos
      sink.inos[n] = p === 0 || ino === ROOT_INO ? ino : this.volume.lookup(ino, '..')
      sink.types[n] = S_IFDIR
    }

    return n - at + this.volume.peekDirents(this.cursor, sink, n, max - (n - at))
  }

  /** Move `count` entries on (fewer at the end). */
  skip(count: number): void {
    const dots = Math.min(count, Math.max(0, 2 - this.at))
    this.at += dots + this.volume.skipDirents(this.cursor, count - dots)
  }

  /** Back to the start; the listing shows the directory as it is now. */
  rewind(): void {
    this.at = 0
    this.volume.rewindDirCursor(this.cursor)
  }

  close(): void {
    this.volume.closeDirCursor(this.cursor)
  }
}
