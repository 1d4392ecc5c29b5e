/**
 * The system calls Node's fs lacks, from fs-ext (a dependency, built by `npm install`): flock(2)
 * for the data-dir lock and lseek(2) with SEEK_DATA / SEEK_HOLE for finding the unallocated ranges
 * of an image file.
 */
import {createRequire} from 'node:module'

import {ImageError} from './errors.js'

interface FsExt {
  flockSync(fd: number, flags: 'ex' | 'exnb' | 'sh' | 'shnb' | 'un'): void
  seekSync(fd: number, offset: number, whence: number): number
}

let fsExt: FsExt | undefined

export function fsExtAddon(): FsExt {
  if (fsExt === undefined) {
    try {
      fsExt = createRequire(import.meta.url)('fs-ext') as FsExt
    } catch (error) {
      throw new ImageError('RZ_IO', `cannot load the addon fs-ext (${(error as Error).message.split('\n')[0]}); run \`npm install\` again`)
    }
  }

  return fsExt
}
