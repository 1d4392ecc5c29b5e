/**
 * syncfs(2), which Node's fs lacks, from the razorfs addon (native/host.c): one call makes every
 * file of a host filesystem durable, where fdatasync takes one call (and one journal commit) a
 * file. Undefined where the addon cannot be loaded (not built, or libfuse 3 missing): the storage
 * layer then syncs file by file.
 */
import {createRequire} from 'node:module'

import {ADDON_FILE} from '../addon.js'

export type Syncfs = (fd: number) => void

let loaded: Syncfs | null | undefined

export function hostSyncfs(): Syncfs | undefined {
  if (loaded === undefined) {
    try {
      const addon = createRequire(import.meta.url)(ADDON_FILE) as {syncfs?: Syncfs}
      loaded = typeof addon.syncfs === 'function' ? addon.syncfs : null
    } catch {
      loaded = null
    }
  }

  return loaded ?? undefined
}
