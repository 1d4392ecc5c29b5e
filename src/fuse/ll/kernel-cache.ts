/**
 * What the ll adapter keeps of the kernel's caches: the page cache mode of each open (kernel_cache
 * or auto_cache, with the mtime and size auto_cache compares), and, on a watched mount (a volume
 * other hosts change), the names it gave the kernel, to drop them all when changes may have been
 * missed. The invalidations themselves go to the addon through the adapter (`invalidateInode`,
 * `invalidateEntry`).
 */
import type {Attr} from '../../storage/types.js'
import {ROOT_INO} from '../../vfs/volume.js'
import {OPEN_KEEP_CACHE, OPEN_NOFLUSH} from './binding.js'

/**
 * Names a watched mount remembers having given the kernel, to drop them all when changes may have
 * been missed; past this many it stops remembering (those past it stay for their timeout).
 */
const SEEN_NAMES = 262_144
/** Files whose mtime and size at their last open auto_cache remembers; past it, it starts again. */
const AUTO_CACHE_FILES = 65536

export interface KernelCacheHooks {
  /** Queue the invalidation of an inode's attributes (and with off >= 0, its pages from off). */
  invalidateInode(ino: number, off: number): void
  /** Queue the invalidation of the kernel's entry for `name` in `parent`. */
  invalidateEntry(parent: number, name: Buffer): void
  log(line: string): void
}

export class KernelCache {
  /** Others change the volume too (the adapter's changes() was asked for). */
  watched = false
  /** Opens that kept the file's page cache, and those that dropped it. */
  kept = 0
  dropped = 0
  /** auto_cache: inode -> mtime (s, ns) and size at its last open. */
  private readonly lastOpen = new Map<number, [number, number, number]>()
  /** A watched mount: directory -> the names (latin1) the kernel got an entry for -> their inode. */
  private readonly seen = new Map<number, Map<string, number>>()
  private seenCount = 0
  /** Names past SEEN_NAMES were not remembered since the last time everything was dropped. */
  private seenFull = false

  constructor(
    /** Keep a file's page cache across opens always (kernel_cache), or while its mtime and size stay (auto_cache). */
    readonly mode: 'kernel_cache' | 'auto_cache',
    private readonly hooks: KernelCacheHooks,
  ) {}

  /**
   * The open reply's flags: no FLUSH at each close (flush has nothing to do: every write is in the
   * host file before its reply, and razorfs keeps no locks), and keep the file's page cache (the
   * kernel's pages stay valid across opens, since every change goes through this mount), unless
   * auto_cache (-o, or a volume on PostgreSQL) and the file's mtime or size changed since its last
   * open. A file this request created (`created`) has no pages yet and its attributes go in the
   * reply: it counts as opened unchanged, so nothing is dropped and no invalidation is queued.
   * `attrOf` is asked only under auto_cache.
   */
  openFlags(ino: number, attrOf: () => Attr, created = false): number {
    if (this.mode !== 'auto_cache') {
      this.kept++
      return OPEN_KEEP_CACHE | OPEN_NOFLUSH
    }

    const a = attrOf()
    const last = this.lastOpen.get(ino)
    const same = created || (last !== undefined && last[0] === a.mtime.sec && last[1] === a.mtime.nsec && last[2] === a.size)
    if (last === undefined && this.lastOpen.size >= AUTO_CACHE_FILES) this.lastOpen.clear()
    this.lastOpen.set(ino, [a.mtime.sec, a.mtime.nsec, a.size])
    if (same) this.kept++
    else this.dropped++
    // Changed by another host: its notification may still be on the way, and the kernel's cached
    // size bounds the reads that follow. Queued before the reply, so mostly written before them.
    if (!same && this.watched) this.hooks.invalidateInode(ino, -1)
    return (same ? OPEN_KEEP_CACHE : 0) | OPEN_NOFLUSH
  }

  /** A watched mount: remember that the kernel holds `name` in `parent`, naming `ino`. */
  note(parent: number, name: Buffer, ino: number): void {
    if (!this.watched) return
    let names = this.seen.get(parent)
    if (names === undefined) this.seen.set(parent, (names = new Map()))
    const key = name.toString('latin1')
    if (!names.has(key) && this.seenCount >= SEEN_NAMES) {
      this.seenFull = true
      return
    }

    if (!names.has(key)) this.seenCount++
    names.set(key, ino)
  }

  /** The inode a remembered name named, or 0 (not remembered: dropSeen then drops only the name). */
  seenIno(parent: number, name: Buffer): number {
    return this.watched ? (this.seen.get(parent)?.get(name.toString('latin1')) ?? 0) : 0
  }

  /**
   * Changes may have been missed: drop every name this mount gave the kernel, and the attributes
   * and pages of the inodes they named and of the directories holding them, so that what the
   * kernel is asked next comes from the volume. Written by the notify thread, after this returns.
   */
  dropSeen(): void {
    const inos = new Set<number>([ROOT_INO])
    for (const [parent, names] of this.seen) {
      inos.add(parent)
      for (const [name, ino] of names) {
        this.hooks.invalidateEntry(parent, Buffer.from(name, 'latin1'))
        if (ino !== 0) inos.add(ino)
      }
    }

    for (const ino of inos) this.hooks.invalidateInode(ino, 0)
    if (this.seenFull) this.hooks.log(`notifications missed, and more than ${SEEN_NAMES} names cached: some may show what they were until their timeout`)
    this.seen.clear()
    this.seenCount = 0
    this.seenFull = false
    this.lastOpen.clear()
  }
}
