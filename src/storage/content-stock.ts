/**
 * Content files between one inode and the next (contents.ts keeps the descriptors and the sync
 * state of the files in use): the spares, freed inodes' files emptied and kept for new files; and
 * on a served image (`pool`), the libuv pool's share of the host work: emptying and deleting freed
 * files, and making the files of the next numbers ahead.
 */
import fs from 'node:fs'
import path from 'node:path'

import {type OpenBatch, hostOpenBatch} from './host-sync.js'

/** Emptied content files of freed inodes kept for new files (spares). */
const SPARE_FILES = 32
/**
 * Content files a served image keeps made ahead for the next new numbers (premake), refilled half
 * at a time in one job of the pool: each hand-over costs the JS thread about 60 us on this VM.
 */
const PREMADE_FILES = 128

export class ContentStock {
  /**
   * A served image's (Image.poolHostWork): the emptying of a freed inode's content file for the
   * spares and the removal of one run in the libuv pool, by path, not on the JS thread. Both give
   * blocks back to the host: an ftruncate or unlink of 90 to 140 us a file where the host is
   * mounted with `discard` (ext4 then discards freed blocks at once), on the path of the fsync that
   * made the free durable. Nothing reads these files any more, and a crash before the pool gets to
   * them leaves content files no inode names, as a crash right after the sync does. It also turns
   * on the making of new content files ahead (premake).
   */
  pool = false
  /**
   * The files made ahead are opened in one job of the pool (host-sync.ts); undefined where the
   * addon is missing (tests set it so): one fs.open each.
   */
  openBatch: OpenBatch | undefined = hostOpenBatch()
  /**
   * Content files of freed inodes, emptied and kept for the next files that need one (recycle,
   * takeSpare): their directory entries are durable already, so a new file that gets one costs
   * no host create, and the next sync no directory fsync. Named by no inode, they are removed at
   * close; a crash leaves them to the reclaim after an unclean shutdown.
   */
  private readonly spares: number[] = []
  /** Content files being emptied in the pool; spares once that ends (emptyInPool). */
  private readonly recycling = new Set<number>()
  /** Content files being removed in the pool (deleteFile); close removes them itself. */
  private readonly removing = new Set<number>()
  /**
   * A served image's content files made ahead in the pool for the next numbers `nextDataId` will
   * give (premake), by number: the descriptor of an empty file whose directory entry is not yet
   * durable. A new file's first write used to create its content file on the JS thread, an
   * O_CREAT of 30 to 80 us (ext4 allocates an inode and adds the entry); `handedOut` now gives
   * the file made ahead, and Contents creates it as before when there is none.
   */
  private readonly premade = new Map<number, number>()
  /** Every number below this was made ahead, is being made, or was passed over (premake). */
  private premadeTo = 0
  /** Settles once every making ahead handed to the pool so far has ended (made, or removed after a close). */
  private making: Promise<void> = Promise.resolve()
  /** Every number below this has been handed out: a file made ahead for one is not taken. */
  private freshTo = 0
  private closed = false

  constructor(
    private readonly pathOf: (dataId: number) => string,
    /** Is this fan-out directory known to exist? */
    private readonly dirKnown: (dir: string) => boolean,
  ) {}

  /** Is there room for one more spare, counting those being emptied? */
  roomForSpare(): boolean {
    return this.spares.length + this.recycling.size < SPARE_FILES
  }

  /** Keep an emptied content file as a spare. */
  keep(dataId: number): void {
    this.spares.push(dataId)
  }

  /** Empty the content file in the pool, then keep it; `failed` (a removal) if it cannot be cut. */
  emptyInPool(dataId: number, failed: (dataId: number) => void): void {
    this.recycling.add(dataId)
    fs.truncate(this.pathOf(dataId), 0, error => {
      if (!this.recycling.delete(dataId)) return // closed meanwhile: close removed it
      if (error === null) this.spares.push(dataId)
      else failed(dataId)
    })
  }

  /** Is there an empty content file ready for a new file: a spare, or the one made ahead for `next`? */
  ready(next: number): boolean {
    return this.spares.length > 0 || this.premade.has(next)
  }

  /** An empty content file for a new file, or undefined; it is the caller's now. */
  takeSpare(): number | undefined {
    return this.spares.pop()
  }

  /** Give up every spare (the caller removes them). */
  takeAllSpares(): number[] {
    return this.spares.splice(0)
  }

  /** Delete a content file no inode names: at once, or in the pool. */
  deleteFile(dataId: number): void {
    if (!this.pool) {
      fs.rmSync(this.pathOf(dataId), {force: true})
      return
    }

    // A failure leaves a content file no inode names, as a crash does: fsck removes it.
    this.removing.add(dataId)
    fs.rm(this.pathOf(dataId), {force: true}, () => this.removing.delete(dataId))
  }

  /**
   * `dataId` was just handed out: the open descriptor of the empty file made ahead for it, if
   * there is one (its directory entry is not durable yet), and more made ahead.
   */
  handedOut(dataId: number): number | undefined {
    this.freshTo = Math.max(this.freshTo, dataId + 1)
    const made = this.premade.get(dataId)
    this.premade.delete(dataId)
    if (this.pool) this.premake(dataId + 1)
    return made
  }

  /**
   * Have the pool make the content files of the numbers from `next` on, up to PREMADE_FILES ahead,
   * where their fan-out directory is known to exist. O_EXCL: a file already there (a crash's
   * leftover, or one the JS thread created because the number was handed out first) is left to
   * the JS thread's O_CREAT | O_TRUNC; the pool never truncates a file another open may be writing.
   */
  private premake(next: number): void {
    // Refilled half a stock at a time, in one job of the pool (openBatch): each job handed to the
    // pool wakes a sleeping thread there (a futex the JS thread pays: 67 us a job in the profile
    // of four untars at once, with 16 files a job).
    if (this.premadeTo - next > PREMADE_FILES / 2) return
    const ids: number[] = []
    for (let id = Math.max(next, this.premadeTo); id < next + PREMADE_FILES; id++) {
      this.premadeTo = id + 1
      if (this.dirKnown(path.dirname(this.pathOf(id)))) ids.push(id)
    }

    if (ids.length === 0) return
    const flags = fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL
    let batch: Promise<Int32Array | number[]>
    try {
      batch =
        this.openBatch === undefined
          ? Promise.all(ids.map(id => new Promise<number>(resolve => fs.open(this.pathOf(id), flags, 0o600, (error, fd) => resolve(error === null ? fd : -1)))))
          : this.openBatch(Buffer.from(ids.map(id => `${this.pathOf(id)}\0`).join('')), flags, 0o600)
    } catch {
      return // not handed over: each new file's content file is created as before
    }

    const done = batch.then(
      fds => {
        for (const [i, id] of ids.entries()) this.made(id, fds[i])
      },
      () => {}, // none made: each new file's content file is created as before
    )
    this.making = Promise.all([this.making, done]).then(() => {})
  }

  /** Settles once the making ahead handed to the pool so far has ended (after a close: its files removed). */
  settled(): Promise<void> {
    return this.making
  }

  /** The pool made the file of `id` (`fd` below 0: it did not): kept for it, unless handed out or closed meanwhile. */
  private made(id: number, fd: number): void {
    if (fd < 0) return
    if (!this.closed && id >= this.freshTo) {
      this.premade.set(id, fd)
      return
    }

    // Made for a closed image: no inode names it. Handed out meanwhile: it is that file's now.
    try {
      fs.closeSync(fd)
      if (this.closed) fs.rmSync(this.pathOf(id), {force: true})
    } catch {
      // a content file no inode names, as a crash leaves
    }
  }

  /**
   * A close: what the pool has not done yet is done here, so no content file of a freed inode is
   * left, nor one made ahead (those the pool is still making it removes when it is done). From
   * now on everything is done at once.
   */
  close(): void {
    this.pool = false
    for (const dataId of [...this.recycling, ...this.removing]) fs.rmSync(this.pathOf(dataId), {force: true})
    this.recycling.clear()
    this.removing.clear()
    this.dropPremade(true)
  }

  /** What a crash leaves: the descriptors of the files made ahead are closed, the files stay. */
  abandon(): void {
    this.dropPremade(false)
  }

  private dropPremade(remove: boolean): void {
    this.closed = true
    for (const [dataId, fd] of this.premade) {
      fs.closeSync(fd)
      if (remove) fs.rmSync(this.pathOf(dataId), {force: true})
    }

    this.premade.clear()
  }
}
