/** Files written through the storage API, for the tests of content-file syncing. */
import {Image, ROOT_INO} from '../../src/storage/index.js'

/** `n` regular files f<from>..f<from+n-1> in the root, each of 4 KiB of one byte value; their inode numbers. */
export function makeFiles(image: Image, n: number, from = 0): number[] {
  const inos: number[] = []
  for (let i = from; i < from + n; i++) {
    const {ino} = image.mknod(ROOT_INO, `f${i}`, {mode: 0o100644, uid: 0, gid: 0})
    image.write(ino, Buffer.alloc(4096, 1 + (i % 255)), 0)
    inos.push(ino)
  }

  return inos
}
