/**
 * What a FUSE adapter and the mount's server need from below the filesystem core, so that
 * src/fuse/ never reaches into src/storage/ (only its types): the errors and constants requests
 * are answered with, and opening the image a mount serves.
 */
import {ensureDataDir} from '../storage/data-dir.js'
import {ImageError} from '../storage/errors.js'
import {Image} from '../storage/image.js'

export {ensureDataDir} from '../storage/data-dir.js'
export {FsError} from '../storage/errors.js'
export {ROOT_INO, direntSink} from '../storage/types.js'

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
