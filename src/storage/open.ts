/**
 * Opening the volume a mount serves: the image of a data dir (the one implementation of Volume
 * today). The mount command calls this and hands the result to the FUSE server, which knows it
 * only as a Volume.
 */
import {ensureDataDir} from './data-dir.js'
import {ImageError} from './errors.js'
import {Image} from './image.js'

export interface ServeImageOptions {
  readOnly: boolean
  /** Checkpoint threshold of the log (bytes); the store's default when undefined. */
  walLimit?: number
}

/**
 * Open the image of `dataDir` for serving (read-write: locked, recovered, marked in use), creating
 * the data dir and an empty image first if there is none (not for a read-only mount).
 */
export function openServedImage(dataDir: string, opts: ServeImageOptions): Image {
  ensureDataDir(dataDir)
  if (!Image.exists(dataDir)) {
    if (opts.readOnly) throw new ImageError('RZ_NO_IMAGE', 'holds no image and a read-only mount cannot create one; run `razorfs init`', dataDir)
    Image.create(dataDir, {}).close()
  }

  return Image.open(dataDir, {readOnly: opts.readOnly, lock: true, walLimit: opts.walLimit})
}
