/**
 * Host calls Node's fs lacks, from the razorfs addon (native/host.c). Undefined where the addon
 * cannot be loaded (not built, or libfuse 3 missing): the storage layer then does without.
 *
 * - syncfs(2): one call makes every file of a host filesystem durable, where fdatasync takes one
 *   call (and one journal commit) a file; without it the storage layer syncs file by file. Also
 *   in the libuv pool (syncfsAhead), to write back ahead of a sync on the JS thread.
 * - posix_fadvise(POSIX_FADV_DONTNEED): the host lets go of a file's clean cached pages; the log
 *   drops what reading it at open cached in large folios (Wal.allocateAtOpen).
 */
import {addonFunction} from '../addon.js'

export type Syncfs = (fd: number) => void
/** syncfs(fd) in the libuv pool; rejects with an Error whose code is the errno's name. */
export type SyncfsAhead = (fd: number) => Promise<void>
export type DropCache = (fd: number) => void

export function hostSyncfs(): Syncfs | undefined {
  return addonFunction<Syncfs>('syncfs')
}

export function hostSyncfsAhead(): SyncfsAhead | undefined {
  return addonFunction<SyncfsAhead>('syncfsAhead')
}

export function hostDropCache(): DropCache | undefined {
  return addonFunction<DropCache>('dropCache')
}
