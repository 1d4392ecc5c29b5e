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
 * - fstat(2) of a content file's size, mtime and blocks (hostTimes): a served image asks it at
 *   every setattr and close of a file the kernel writes through passthrough, and fs.fstatSync
 *   builds a Stats object each time (2.7 us a call against fstat's 1.25 on the bench machine).
 */
import fs from 'node:fs'
import util from 'node:util'
import {addonFunction} from '../addon.js'
import {type Timespec, timespecOfNs} from './types.js'

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
/** fstat(fd) into `out` (size, mtime seconds, mtime nanoseconds, 512-byte blocks): 0, or the errno. */
type FstatTimes = (fd: number, out: Float64Array) => number

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

/** What hostTimes reads of a host file. */
export interface HostTimes {
  size: number
  mtime: Timespec
  /** 512-byte blocks the host allocated. */
  blocks: number
}

const fstatTimes = addonFunction<FstatTimes>('fstatTimes')
const timesOut = new Float64Array(4)
/** hostTimes calls so far (a test counts the host files a request looks at). */
export const hostTimesCalls = {count: 0}

/** The size, mtime and blocks of the host file open as `fd`; throws fstat's error as fs.fstatSync does. */
export function hostTimes(fd: number): HostTimes {
  hostTimesCalls.count++
  if (fstatTimes === undefined) {
    const st = fs.fstatSync(fd, {bigint: true})
    return {size: Number(st.size), mtime: timespecOfNs(st.mtimeNs), blocks: Number(st.blocks)}
  }

  const err = fstatTimes(fd, timesOut)
  if (err !== 0) {
    const code = util.getSystemErrorName(-err)
    throw Object.assign(new Error(`${code}: ${util.getSystemErrorMap().get(-err)?.[1] ?? 'error'}, fstat`), {code, errno: -err, syscall: 'fstat'})
  }

  return {size: timesOut[0], mtime: {sec: timesOut[1], nsec: timesOut[2]}, blocks: timesOut[3]}
}
