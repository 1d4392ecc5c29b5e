/**
 * Kernel FUSE passthrough on the ll binding: which backing file each open reply names, so that the
 * kernel reads and writes the file's content file itself (native/kernel.c; ARCHITECTURE.md, "FUSE
 * bindings"). Only translation and bookkeeping: what the content file must hold meanwhile is the
 * filesystem core's (FileSystem.direct) and the storage's (FileData.openDirect).
 */
import {constants as osConstants} from 'node:os'

import type {FileSystem} from '../../vfs/filesystem.js'
import {FsError} from '../../vfs/volume.js'
import {type LowLevelAddon, OPEN_KEEP_CACHE} from './binding.js'

/** Backing ids given back at once (see `unused`). */
const CLOSE_BATCH = 64

export class Passthrough {
  /**
   * Files open now, by inode: the backing id their opens name (0: served by the server, a
   * set-user-ID file or one the kernel took no backing file for). The kernel takes one way per
   * inode while it is open (fs/fuse/iomode.c), so the first open decides for the others.
   */
  private readonly openInodes = new Map<number, {id: number; opens: number}>()
  /** The inode of each file handle counted in openInodes. */
  private readonly handleInodes = new Map<number, number>()
  /**
   * Backing ids no open uses any more, given back CLOSE_BATCH at a time (backingClose). Until then
   * the kernel holds their host files open: at most CLOSE_BATCH - 1 of them.
   */
  private readonly unused = new Uint32Array(CLOSE_BATCH)
  private unusedCount = 0

  /**
   * `on`: asked for at mount (a volume no other host changes, no -o nopassthrough); off once the
   * kernel refuses a backing file with EPERM (it did not take passthrough at INIT).
   */
  constructor(
    private readonly ll: LowLevelAddon,
    private readonly core: FileSystem,
    private readonly log: (line: string) => void,
    public on: boolean,
  ) {}

  /** The backing id the open reply of `fh` (on `ino`) names (0: none, its reads and writes come to the server). */
  open(session: object, fh: number, ino: number): number {
    const known = this.openInodes.get(ino)
    if (known === undefined && !this.on) return 0
    if (known !== undefined) {
      // An open joining the kernel's way must be listed in `writers` first when it may write (a
      // kill -9 would lose the size of what it writes): a host too full to list it fails the open.
      if (known.id !== 0 && this.core.direct(fh, true) === undefined)
        throw new FsError('ENOSPC', 'open', `inode ${ino}: no room to list it as open for writing`)
      known.opens++
      this.handleInodes.set(fh, ino)
      return known.id
    }

    const fd = this.core.direct(fh)
    let id = fd === undefined ? 0 : this.ll.backingOpen(session, fd)
    if (id < 0) {
      this.core.undirect(fh)
      if (id === -osConstants.errno.EPERM) {
        this.on = false
        this.log('the kernel took no FUSE passthrough: file contents go through the server')
        return 0
      }

      id = 0
    }

    this.openInodes.set(ino, {id, opens: 1})
    this.handleInodes.set(fh, ino)
    return id
  }

  /**
   * An open or create (`open`, given the core's prepare step) whose backing id is settled before an
   * O_TRUNC empties the file, so that an open refused there leaves the file as it was; then `after`
   * (clearing set-user-ID and set-group-ID: a set-ID file so truncated is served, as
   * FileSystem.direct refuses those). When the open fails after the backing id was taken, or
   * `after` fails, the handle and its backing id are given back: the kernel never gets them.
   */
  opened<T, A>(session: object, open: (prepare: (fh: number, ino: number) => void) => T, after: (made: T) => A): {made: T; backing: number; then: A} {
    let backing = 0
    // The handle the core made (its prepare step always runs), once its backing id is taken.
    let taken = -1
    try {
      const made = open((fh, ino) => {
        backing = this.open(session, fh, ino)
        taken = fh
      })
      let then: A
      try {
        then = after(made)
      } catch (error) {
        this.core.release(taken)
        throw error
      }

      return {made, backing, then}
    } catch (error) {
      if (taken >= 0) this.release(session, taken)
      throw error
    }
  }

  /**
   * The page cache flags of an open reply naming `backing`. A served open keeps no page cache
   * while passthrough is on: the kernel writes a passthrough open's content file past the FUSE
   * page cache, so what an earlier served open of the file left cached there may be stale.
   */
  cacheFlags(flags: number, backing: number): number {
    return backing === 0 && this.on ? flags & ~OPEN_KEEP_CACHE : flags
  }

  /** After the release of `fh`: the last open of its inode gives its backing id back (`session`: while it lasts). */
  release(session: object | undefined, fh: number): void {
    const ino = this.handleInodes.get(fh)
    if (ino === undefined) return
    this.handleInodes.delete(fh)
    const open = this.openInodes.get(ino)!
    if (--open.opens > 0) return
    this.openInodes.delete(ino)
    if (open.id === 0 || session === undefined) return
    this.unused[this.unusedCount++] = open.id
    if (this.unusedCount === CLOSE_BATCH) {
      this.ll.backingClose(session, this.unused)
      this.unusedCount = 0
    }
  }
}
