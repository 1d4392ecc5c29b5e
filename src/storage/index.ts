export {Image} from './image.js'
export {FsError, ImageError} from './errors.js'
export type {FsErrorCode, ImageErrorCode} from './errors.js'
export * from './types.js'
