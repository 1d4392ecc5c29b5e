/**
 * What a FUSE adapter and the mount's server need from below the filesystem core, so that
 * src/fuse/ never reaches into src/storage/ (only its types): the errors and constants requests
 * are answered with, and the storage interface the served volume is known by. The volume itself
 * is opened by the mount command (src/storage/open.ts) and handed down.
 */
export {FsError} from '../storage/errors.js'
export {RENAME_EXCHANGE, ROOT_INO, direntSink} from '../storage/types.js'
export type {ChangeSink, Volume} from '../storage/volume.js'
