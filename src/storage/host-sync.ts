/**
 * Host calls Node's fs lacks, from the razorfs addon (native/host.c). Undefined where the addon
 * cannot be loaded (not built, or libfuse 3 missing): the storage layer then does without.
 *
 * - syncfs(2): one call makes every file of a host filesystem durable, where fdatasync takes one
 *   call (and one journal commit) a file; without it the storage layer syncs file by file. Also
 *   in the libuv pool (syncfsAhead), to write back ahead of a sync on the JS thread.
 * - opens and closes of many files in one job of the libuv pool (openBatch, closeBatch): Node's
 *   fs.open and fs.close are a job each, and each job handed to the pool may wake a sleeping
 *   thread there, which the JS thread pays (about 12 us a call in an untar's profile).
 * - posix_fadvise(POSIX_FADV_DONTNEED): the host lets go of a file's clean cached pages; the log
 *   drops what reading it at open cached in large folios (Wal.allocateAtOpen).
 */
import {addonFunction} from '../addon.js'

export type Syncfs = (fd: number) => void
/**
 * syncfs(fd) in the libuv pool; rejects only with syncfs's own error (its code the errno's name).
 * This and the two below throw where the job cannot start (nothing is done then).
 */
export type SyncfsAhead = (fd: number) => Promise<void>
/** Open each NUL-terminated path of `paths` in turn in the pool: its descriptor, or -errno. */
export type OpenBatch = (paths: Buffer, flags: number, mode: number) => Promise<Int32Array>
/** Close the descriptors in the pool (what close says is not reported). */
export type CloseBatch = (fds: Int32Array) => Promise<void>
export type DropCache = (fd: number) => void

export function hostSyncfs(): Syncfs | undefined {
  return addonFunction<Syncfs>('syncfs')
}

export function hostSyncfsAhead(): SyncfsAhead | undefined {
  return addonFunction<SyncfsAhead>('syncfsAhead')
}

export function hostOpenBatch(): OpenBatch | undefined {
  return addonFunction<OpenBatch>('openBatch')
}

export function hostCloseBatch(): CloseBatch | undefined {
  return addonFunction<CloseBatch>('closeBatch')
}

export function hostDropCache(): DropCache | undefined {
  return addonFunction<DropCache>('dropCache')
}
