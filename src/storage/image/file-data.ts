/**
 * File data of the image: read, write and truncate over the content files (contents.ts), with
 * the host-file changes that must wait until the transaction calling for them is durable
 * (deferred shrinks and removals, applied after a sync), and giving host space back at once when
 * the host runs short. Stands on the inode layer.
 */

import type {Contents} from '../contents.js'
import {hostTimes, type HostTimes} from '../host-sync.js'
import {FsError} from '../errors.js'
import {S_IFDIR, S_IFREG} from '../format.js'
import type {SpaceWatch} from '../space.js'
import type {WritersList} from '../writers.js'
import type {Store} from '../store.js'
import {inodeFields as I} from '../codec/inode.js'
import {FILE_SIZE_MAX, type Attr, type SetAttr, type Timespec} from '../types.js'
import {type Inodes, nowTimespec} from './inodes.js'

/** Unlisted content files syncWriters keeps track of before it syncs the list regardless. */
const UNLISTED_KEPT = 65536

export class FileData {
  private readonly store: Store
  /**
   * Host-file changes that must wait until the transaction that calls for them is durable:
   * otherwise a power loss could bring back an inode whose contents were already cut or removed.
   */
  private readonly pendingShrinks = new Map<number, number>()
  private readonly pendingRemovals = new Set<number>()
  /**
   * Files shrunk by a transaction that has not committed yet (only inside an outer
   * Volume.transaction): growing one again before the commit is refused, since the bytes past the
   * new size may only be cut once the shrink is durable.
   */
  private readonly shrinking = new Set<number>()
  /**
   * Files open through kernel passthrough (openDirect), by inode: the kernel reads and writes
   * their content files itself, so their size and mtime are taken from the host file (adoptDirect)
   * before any attributes are given out, at fsync, at each sync and at the last close. `seen`: the
   * host file's mtime when last adopted (undefined: not known yet); `listed`: the file's place in
   * the writers list while it is open for writing (-1: not listed).
   */
  private readonly direct = new Map<number, {opens: number; dataId: number; seen: Timespec | undefined; listed: number}>()
  /** Content files of files unlisted from `writers` since its last fdatasync (see syncWriters). */
  private readonly unlisted = new Set<number>()

  constructor(
    private readonly inodes: Inodes,
    private readonly contents: Contents,
    /** Whether the host is short of space, so that a delete must give its space back at once. */
    private readonly space: SpaceWatch,
    /** Files open for the kernel to write (writers.ts). */
    private readonly writers: WritersList,
  ) {
    this.store = inodes.store
  }

  /** Apply host-file truncations and removals whose transactions are now durable. */
  applyDeferred(): void {
    for (const [dataId, size] of this.pendingShrinks) this.contents.truncate(dataId, size)
    this.pendingShrinks.clear()
    for (const dataId of this.pendingRemovals) this.contents.recycle(dataId)
    this.pendingRemovals.clear()
  }

  /** Remove a freed inode's content file once the current transaction has committed and is durable. */
  removeLater(dataId: number): void {
    this.store.onCommit(() => this.pendingRemovals.add(dataId))
  }

  /**
   * Before the logical size of a file grows from `size`: bytes the host file holds past it (a
   * deferred shrink, a write whose commit failed, a crash) must go, or they would reappear.
   */
  private prepareGrow(dataId: number, size: number): void {
    if (this.shrinking.has(dataId)) throw new FsError('EINVAL', 'write', 'a file shrunk in this transaction cannot grow again before it commits')
    if (this.contents.isClean(dataId)) return
    if (this.contents.length(dataId) > size) {
      if (this.pendingShrinks.has(dataId)) this.store.sync() // makes the shrink durable, then applies it
      if (this.contents.length(dataId) > size) this.contents.truncate(dataId, size)
    }

    // Nothing lies past `size` now, so a deferred shrink (always to the current size) has nothing
    // left to cut; applied later, it would cut what the growing write puts there.
    this.pendingShrinks.delete(dataId)
    this.contents.markClean(dataId)
  }

  /**
   * After a delete: on a host short of space, make it durable now, which removes or cuts the host
   * files it freed (they wait for a sync, up to the commit interval, otherwise).
   */
  releaseHostSpace(): void {
    if (this.pendingRemovals.size === 0 && this.pendingShrinks.size === 0) return
    const pooled = this.contents.poolHostWork
    try {
      if (!this.space.isLow()) return
      this.contents.poolHostWork = false // given back now, not when the pool gets to them
      this.store.sync()
      this.contents.sync.closeWaiting() // an evicted descriptor of a removed file holds its blocks
    } catch {
      // The delete is committed; its host files go at the next sync, which reports any error.
    } finally {
      this.contents.poolHostWork = pooled
    }
  }

  /** Read up to buf.length bytes at `pos`; returns the count (0 at or past the end). */
  read(ino: number, buf: Buffer, pos: number): number {
    const slot = this.inodes.slotOf(ino, 'read')
    const type = this.inodes.typeOf(slot)
    if (type === S_IFDIR) throw new FsError('EISDIR', 'read')
    if (type !== S_IFREG) throw new FsError('EINVAL', 'read')
    const size = this.inodes.get64(slot, I.size)
    if (pos >= size) return 0
    const len = Math.min(buf.length, size - pos)
    const dataId = this.inodes.get64(slot, I.dataId)
    const got = dataId === 0 ? 0 : this.contents.read(dataId, buf, 0, len, pos)
    if (got < len) buf.fill(0, got, len)
    return len
  }

  /** Write `data` at `pos`; returns data.length. Holes before `pos` read as zeros. */
  write(ino: number, data: Buffer, pos: number): number {
    if (this.inodes.readOnly) throw new FsError('EROFS', 'write')
    const inodes = this.inodes
    const slot = inodes.slotOf(ino, 'write')
    const type = inodes.typeOf(slot)
    if (type === S_IFDIR) throw new FsError('EISDIR', 'write')
    if (type !== S_IFREG) throw new FsError('EINVAL', 'write')
    if (!Number.isSafeInteger(pos) || pos < 0) throw new FsError('EINVAL', 'write')
    const end = pos + data.length
    if (end > FILE_SIZE_MAX) throw new FsError('EFBIG', 'write')
    if (data.length === 0) return 0
    let dataId = inodes.get64(slot, I.dataId)
    if (dataId === 0) dataId = this.allocDataId(slot)
    const size = inodes.get64(slot, I.size)
    if (end > size) this.prepareGrow(dataId, size)
    try {
      this.contents.write(dataId, data, pos)
      this.store.transaction(() => {
        const now = nowTimespec()
        if (end > size) {
          inodes.set64(slot, I.size, end)
          // Undone (here or with an outer transaction), the size goes back and the bytes stay.
          this.store.onRollback(() => this.contents.markUnclean(dataId))
        }
        inodes.setTime(slot, 'mtime', now)
        inodes.setTime(slot, 'ctime', now)
      })
    } catch (error) {
      // Bytes written past the size by a write that failed must not reappear when the file grows
      // (the content write itself may have failed part way, before the transaction).
      if (end > size) this.contents.markUnclean(dataId)
      if (error instanceof FsError) throw error
      const code = (error as NodeJS.ErrnoException).code
      throw new FsError(code === 'ENOSPC' || code === 'EDQUOT' ? 'ENOSPC' : code === 'EFBIG' ? 'EFBIG' : 'EIO', 'write')
    }

    return data.length
  }

  /** A content file for the file in `slot` at its first write: a spare one (Contents.recycle), or a new number. */
  private allocDataId(slot: number): number {
    const spare = this.contents.takeSpare()
    if (spare === undefined) {
      const dataId = this.store.transaction(() => this.inodes.allocDataId(slot))
      this.contents.fresh(dataId)
      return dataId
    }

    // Undone (here or with an outer transaction, maybe after a write into it), no inode names it.
    this.store.transaction(() => {
      this.store.onRollback(() => this.contents.remove(spare))
      this.inodes.reuseDataId(slot, spare)
    })
    this.contents.markClean(spare)
    return spare
  }

  /**
   * Open the content file of regular file `ino` for the kernel to read, and with `write` write,
   * itself (FUSE passthrough); returns a descriptor of it, valid for the moment of the call. The
   * host file is first made to hold exactly the logical size: the kernel reads it as it is, with
   * no size of ours to stop at. A file opened for writing is listed in `writers` before this
   * returns (so before the open is answered). Undefined, the file served, for a reading open of a
   * file that has no content file (it reads as zeros, and is given none for that), and for a new
   * file while no empty content file is ready for it (see below).
   */
  openDirect(ino: number, write: boolean): number | undefined {
    const slot = this.inodes.slotOf(ino, 'open')
    if (this.inodes.typeOf(slot) !== S_IFREG) throw new FsError('EINVAL', 'open')
    let open = this.direct.get(ino)
    if (open === undefined) {
      let dataId = this.inodes.get64(slot, I.dataId)
      if (dataId === 0 && !write) return undefined
      const size = this.inodes.get64(slot, I.size)
      // A new file's content file (a spare or one made ahead) is empty: nothing to fit or look at.
      // Its mtime, not known (undefined), is taken at the first adoptDirect. Without one ready the file is
      // served: a host create here would hold the open's reply (and every other request) for as
      // long as ext4 takes, and an empty file would keep a content file it never needs.
      let seen: Timespec | undefined
      if (dataId === 0 && size === 0) {
        if (!this.contents.readyFor(this.inodes.nextDataId)) return undefined
        dataId = this.allocDataId(slot)
      } else {
        if (dataId === 0) dataId = this.allocDataId(slot)
        this.fitHost(dataId, this.contents.hostFd(dataId), size)
        // Asked again: a sync in fitHost may have opened other content files, and closed this one.
        seen = hostTimes(this.contents.hostFd(dataId)).mtime
      }

      open = {opens: 0, dataId, seen, listed: -1}
      this.direct.set(ino, open)
    }

    if (write && open.listed < 0 && !this.inodes.readOnly) {
      try {
        open.listed = this.writers.add(ino)
      } catch {
        // No room for the list (a full host): the file is served, its writes come to the server.
        if (open.opens === 0) this.direct.delete(ino)
        return undefined
      }
    }

    open.opens++
    return this.contents.hostFd(open.dataId)
  }

  /** Make the host file of `dataId` exactly `size` long (a cut waits until the shrink that asks for it is durable). */
  private fitHost(dataId: number, fd: number, size: number): void {
    let length = hostTimes(fd).size
    if (length > size && this.pendingShrinks.has(dataId)) {
      this.store.sync() // makes the shrink durable, then applies it
      length = this.contents.length(dataId)
    }

    if (length !== size) this.contents.resize(dataId, size)
    // A deferred shrink has nothing left to cut now; applied later, it would cut what the kernel writes.
    this.pendingShrinks.delete(dataId)
    this.contents.markClean(dataId)
  }

  get directCount(): number {
    return this.direct.size
  }

  /**
   * Take what the kernel wrote to passthrough file `ino` into its inode: size, mtime and ctime,
   * when the host file's size or mtime moved. A file open for writing counts as written (its
   * content file is synced with the next sync): a host filesystem's mtime may not move for a write
   * within the same clock tick. Nothing to do for a file not open so: the Image calls this before
   * every use of a file's attributes or contents.
   */
  adoptDirect(ino: number): void {
    const open = this.direct.get(ino)
    if (open === undefined || this.inodes.readOnly) return
    const st = hostTimes(this.contents.hostFd(open.dataId))
    const slot = this.inodes.slotOf(ino, 'write')
    // A new file's content file (seen undefined) was made ahead or emptied earlier: its mtime is
    // that moment's, not a write's, until the kernel writes to it (the size then moves from 0).
    if (st.size !== this.inodes.get64(slot, I.size) || (open.seen !== undefined && !sameTime(st.mtime, open.seen))) {
      // Seen once taken: inside a transaction that is undone (setattr's), it is taken again next time.
      this.adopt(slot, open.dataId, st, () => {
        open.seen = st.mtime
      })
    } else if (open.listed >= 0) this.contents.markWritten(open.dataId, st.blocks)
  }

  /**
   * The size and mtime of the host file `st` of `dataId` become those of the file in `slot`
   * (joining the running transaction, if any); `taken` runs once that has committed.
   */
  private adopt(slot: number, dataId: number, st: HostTimes, taken?: () => void): void {
    const t = st.mtime
    this.contents.markWritten(dataId, st.blocks)
    this.store.transaction(() => {
      // Set only when it changed: a new size makes the next fdatasync a full sync (layoutDurable).
      if (st.size !== this.inodes.get64(slot, I.size)) this.inodes.set64(slot, I.size, st.size)
      this.inodes.setTime(slot, 'mtime', t)
      this.inodes.setTime(slot, 'ctime', t)
      if (taken !== undefined) this.store.onCommit(taken)
    })
  }

  /** adoptDirect for every passthrough file (before a sync, and before a listing gives attributes out). */
  adoptAllDirect(): void {
    for (const ino of this.direct.keys()) this.adoptDirect(ino)
  }

  /** The end of one openDirect of `ino`: the last adopts what the kernel wrote and unlists the file. */
  closeDirect(ino: number): void {
    const open = this.direct.get(ino)
    if (open === undefined) return
    if (--open.opens > 0) return
    try {
      this.adoptDirect(ino)
    } catch (error) {
      // Not taken (a full log, a failed host call): it stays listed, for the next open to take.
      this.direct.delete(ino)
      throw error
    }

    this.direct.delete(ino)
    if (open.listed >= 0) {
      this.writers.remove(open.listed)
      this.unlisted.add(open.dataId)
    }
  }

  /**
   * At open: the files a killed server had open for the kernel to write take their size and mtime
   * from their content files (while a file is listed its content file's length is its size, see
   * openDirect and setattr; the list is synced before every sync of the log, so a power loss
   * never leaves listed a file whose later truncate is durable). Read-write: in one transaction
   * each, then the list goes. Read-only: in memory only, as the WAL replay.
   */
  recoverWriters(): number {
    let adopted = 0
    for (const ino of this.writers.listed()) {
      const slot = this.inodes.liveSlot(ino)
      if (slot === 0 || this.inodes.typeOf(slot) !== S_IFREG) continue
      const dataId = this.inodes.get64(slot, I.dataId)
      if (dataId === 0) continue
      const st = this.contents.statHost(dataId)
      if (st === undefined) continue
      const {mtime} = this.inodes.attrOf(slot)
      if (st.size === this.inodes.get64(slot, I.size) && sameTime(st.mtime, mtime)) continue
      if (this.inodes.readOnly) this.inodes.putInMemory(slot, st.size, st.mtime, st.mtime)
      else this.adopt(slot, dataId, st)
      adopted++
    }

    if (!this.inodes.readOnly) this.writers.clear()
    return adopted
  }

  /**
   * Before a sync of the log. A file unlisted from `writers` whose shrink the log is about to make
   * durable must be unlisted durably first: a power loss could otherwise leave it listed, with the
   * shrink durable but its host-file cut (made after this sync) not, and recovery would take the
   * old length back. Other unlistings may wait (a stale entry of a file whose host file holds its
   * size takes nothing wrong): no fdatasync of the list at each commit of a program that opens and
   * closes files between its fsyncs (SQLite's journal).
   */
  syncWriters(): void {
    if (!this.writers.hasUnsynced) return
    // (Past UNLISTED_KEPT the list is synced anyway, so that the set stays small.)
    if (this.unlisted.size > UNLISTED_KEPT || [...this.pendingShrinks.keys()].some(dataId => this.unlisted.has(dataId))) {
      this.writers.sync()
      this.unlisted.clear()
    }
  }

  /** At a clean close, once what the kernel wrote is adopted and synced: no file is open any more. */
  dropDirect(): void {
    this.direct.clear()
    this.unlisted.clear()
    if (!this.inodes.readOnly) this.writers.clear()
  }

  /** chmod, chown, truncate, utimens in one call; ctime is always set. */
  setattr(ino: number, changes: SetAttr): Attr {
    if (this.inodes.readOnly) throw new FsError('EROFS', 'setattr')
    const slot = this.inodes.slotOf(ino, 'setattr')
    // What the kernel wrote through passthrough is taken first: a truncate starts from that size.
    // Without a truncate it is taken in the change's own transaction (one commit, not two: the
    // chown, chmod and utimens an untar makes after writing each file).
    const size = changes.size
    if (size !== undefined) this.adoptDirect(ino)
    const resize = size === undefined ? undefined : this.checkTruncate(slot, size)
    const shrinks = size !== undefined && size < this.inodes.get64(slot, I.size)
    const attr = this.store.transaction(() => {
      if (size === undefined) this.adoptDirect(ino)
      const now = nowTimespec()
      if (resize !== undefined) resize(now)
      this.inodes.applyAttrs(slot, changes, now)
      return this.inodes.attrOf(slot)
    }, shrinks)
    const open = this.direct.get(ino)
    if (open !== undefined && size !== undefined) {
      // The kernel reads the host file as it is: it takes the new size now. Its mtime as it is
      // then is this change's, not a write's (without a resize it is still the one adoptDirect saw).
      this.fitHost(open.dataId, this.contents.hostFd(open.dataId), size)
      // Asked again: a sync in fitHost may have opened other content files, and closed this one.
      open.seen = hostTimes(this.contents.hostFd(open.dataId)).mtime
    }

    if (shrinks) this.releaseHostSpace()
    return attr
  }

  /** Validate a truncate and prepare the content file; returns the change to make in the transaction. */
  private checkTruncate(slot: number, size: number): (now: Timespec) => void {
    const type = this.inodes.typeOf(slot)
    if (type === S_IFDIR) throw new FsError('EISDIR', 'truncate')
    if (type !== S_IFREG) throw new FsError('EINVAL', 'truncate')
    if (!Number.isSafeInteger(size) || size < 0) throw new FsError('EINVAL', 'truncate')
    if (size > FILE_SIZE_MAX) throw new FsError('EFBIG', 'truncate')
    const old = this.inodes.get64(slot, I.size)
    const dataId = this.inodes.get64(slot, I.dataId)
    if (size > old && dataId !== 0) this.prepareGrow(dataId, old)
    return now => {
      if (size === old) return
      this.inodes.set64(slot, I.size, size)
      this.inodes.setTime(slot, 'mtime', now)
      if (size < old && dataId !== 0) {
        this.shrinking.add(dataId)
        this.store.onRollback(() => this.shrinking.delete(dataId))
        this.store.onCommit(() => {
          this.shrinking.delete(dataId)
          this.pendingShrinks.set(dataId, Math.min(size, this.pendingShrinks.get(dataId) ?? size))
          this.contents.markUnclean(dataId)
        })
      }
    }
  }
}

function sameTime(a: Timespec, b: Timespec): boolean {
  return a.sec === b.sec && a.nsec === b.nsec
}
