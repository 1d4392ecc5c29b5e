/**
 * Open handles and orphans: an open handle holds its inode, so an inode whose last name goes
 * while it is open lives on (an orphan, on the nodes.dat orphan list) until its last release.
 * Freeing an inode here also schedules the removal of its content file (file data's), and the
 * recovery pass that removes content files no inode names lives here too. Stands on the inode
 * and file data layers.
 */
import fs from 'node:fs'

import {listContentFiles, liveDataIds} from '../content-files.js'
import type {Contents} from '../contents.js'
import {IF_ORPHAN, IF_USED, S_IFDIR} from '../format.js'
import type {Store} from '../store.js'
import {inodeFields as I} from '../codec/inode.js'
import * as inodeNumber from '../codec/inode-number.js'
import type {Timespec} from '../types.js'
import type {FileData} from './file-data.js'
import type {Inodes} from './inodes.js'

export class Orphans {
  private readonly store: Store
  /** Open handles per inode slot: an unlinked inode lives on while it is open. */
  private readonly openRefs = new Map<number, number>()

  constructor(
    private readonly inodes: Inodes,
    private readonly data: FileData,
    private readonly contents: Contents,
  ) {
    this.store = inodes.store
  }

  /** An open handle holds the inode: unlinked, it lives on until the last release. */
  retain(ino: number): void {
    const slot = this.inodes.slotOf(ino, 'open')
    this.openRefs.set(slot, (this.openRefs.get(slot) ?? 0) + 1)
  }

  release(ino: number): void {
    const slot = inodeNumber.slotOf(ino)
    const refs = (this.openRefs.get(slot) ?? 0) - 1
    if (refs > 0) {
      this.openRefs.set(slot, refs)
      return
    }

    this.openRefs.delete(slot)
    const inodes = this.inodes
    if (
      !inodes.readOnly &&
      slot < inodes.nodes.highWater &&
      (inodes.get32(slot, I.flags) & IF_ORPHAN) !== 0 &&
      inodes.get32(slot, I.gen) === inodeNumber.genOf(ino)
    ) {
      this.store.transaction(() => this.freeOrphan(slot), true)
      this.data.releaseHostSpace()
    }
  }

  /** Drop one link of an inode whose entry was just removed; frees it when nothing holds it. */
  dropLink(slot: number, now: Timespec): void {
    const isDir = this.inodes.typeOf(slot) === S_IFDIR
    const nlink = isDir ? 0 : this.inodes.get32(slot, I.nlink) - 1
    this.inodes.set32(slot, I.nlink, nlink)
    this.inodes.setTime(slot, 'ctime', now)
    if (nlink > 0) return
    if ((this.openRefs.get(slot) ?? 0) > 0) this.inodes.addOrphan(slot)
    else this.free(slot)
  }

  /** Free an inode's record; its content file goes once that is durable. */
  private free(slot: number): void {
    const dataId = this.inodes.free(slot)
    if (dataId !== 0) this.data.removeLater(dataId)
  }

  private freeOrphan(slot: number): void {
    this.inodes.unlinkOrphan(slot)
    this.free(slot)
  }

  /** Free every orphan no handle holds (all of them after a restart). */
  freeOrphans(): void {
    const inodes = this.inodes
    const doomed: number[] = []
    const seen = new Set<number>()
    for (let cur = inodes.orphanHead; cur !== 0; cur = inodes.get32(cur, I.link)) {
      // A damaged list must never free a linked inode or loop: stop, and leave it to fsck.
      if (seen.has(cur) || cur >= inodes.nodes.highWater) break
      const flags = inodes.get32(cur, I.flags)
      if ((flags & IF_ORPHAN) === 0 || (flags & IF_USED) === 0 || inodes.get32(cur, I.nlink) !== 0) break
      seen.add(cur)
      if ((this.openRefs.get(cur) ?? 0) === 0) doomed.push(cur)
    }

    if (doomed.length === 0) return
    this.store.transaction(() => {
      for (const slot of doomed) this.freeOrphan(slot)
    }, true)
  }

  /**
   * Recovery, after an unclean shutdown: remove every content file that no live inode names. A
   * crash between a transaction that freed an inode and the deferred removal of its content file
   * (after the next sync) leaves such a file, and so does a power loss that took back the
   * allocation of a dataId whose file had been created. Runs once every free is durable (the
   * replayed state was checkpointed by markOpen; the sync covers the orphans just freed), so a
   * later crash can never bring back an inode whose file is gone. Cost: one pass over the inode
   * table and one readdir per data/xx directory, only on this open.
   */
  reclaimContents(): void {
    this.store.sync() // also applies the removals deferred by freeOrphans
    // Which made the freed orphans' content files spares: they go too, so that fsck -n finds
    // nothing after a recovery (and the scan below must never take a file the mount holds).
    this.contents.dropSpares()
    const nodes = this.inodes.nodes
    const live = liveDataIds(this.inodes.node, s => nodes.off(s), nodes.highWater)
    for (const f of listContentFiles(this.contents.root)) {
      if (f.id === undefined || !live.has(f.id)) fs.rmSync(f.path, {force: true})
    }
  }
}
