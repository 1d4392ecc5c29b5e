/**
 * syncfs(2), which Node's fs lacks, from the razorfs addon (native/host.c): one call makes every
 * file of a host filesystem durable, where fdatasync takes one call (and one journal commit) a
 * file. Undefined where the addon cannot be loaded (not built, or libfuse 3 missing): the storage
 * layer then syncs file by file.
 */
import {addonFunction} from '../addon.js'

export type Syncfs = (fd: number) => void

export function hostSyncfs(): Syncfs | undefined {
  return addonFunction<Syncfs>('syncfs')
}
