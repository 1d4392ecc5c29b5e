/**
 * Dropping clean pages of a read-write image's mappings (Image.releaseCleanPages, what a mounted
 * server does when it is over its resident budget): pages changed since the last checkpoint stay,
 * everything reads the same afterwards, and the image reopens with the same contents.
 */
import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {Image, ROOT_INO} from '../../../src/storage/index.js'

const S_IFREG = 0o100644
const S_IFDIR = 0o040755

describe('storage: releasing clean pages of a read-write image', () => {
  let dir: string

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-release-'))
  })

  afterEach(() => {
    fs.rmSync(dir, {recursive: true, force: true})
  })

  /** Every name under the root, with its inode's size and mode, depth first. */
  function state(image: Image): string[] {
    const out: string[] = []
    const walk = (ino: number, at: string): void => {
      for (const e of image.readdir(ino)) {
        const a = image.getattr(e.ino)
        const name = `${at}/${e.name.toString()}`
        out.push(`${name} ${a.mode.toString(8)} ${a.size} ${a.nlink}`)
        if ((a.mode & 0o170000) === 0o040000) walk(e.ino, name)
      }
    }

    walk(ROOT_INO, '')
    return out.sort()
  }

  it('keeps the changes since the last checkpoint and drops the rest', () => {
    const image = Image.create(dir, {})
    const dirs = [0, 1, 2, 3].map(i => image.mknod(ROOT_INO, `d${i}`, {mode: S_IFDIR, uid: 0, gid: 0}).ino)
    for (let i = 0; i < 3000; i++) image.mknod(dirs[i % 4], `file-with-a-longer-name-${i}-${'x'.repeat(i % 40)}`, {mode: S_IFREG, uid: 0, gid: 0})
    image.checkpoint()
    // Changes after the checkpoint: in the mappings only (and the WAL), dirty until the next one.
    for (let i = 0; i < 3000; i += 5) image.unlink(dirs[i % 4], `file-with-a-longer-name-${i}-${'x'.repeat(i % 40)}`)
    for (let i = 1; i < 3000; i += 7)
      if (i % 5 !== 0) image.rename(dirs[i % 4], `file-with-a-longer-name-${i}-${'x'.repeat(i % 40)}`, dirs[(i + 1) % 4], `moved-${i}`)
    for (let i = 0; i < 500; i++) image.mknod(dirs[3], `late-${i}`, {mode: S_IFREG, uid: 0, gid: 0})
    const before = state(image)
    expect(image.releaseCleanPages()).to.be.greaterThan(100)
    expect(state(image)).to.deep.equal(before)
    // Dropped pages come back from the page cache; changing them again works as before.
    for (let i = 0; i < 500; i += 2) image.unlink(dirs[3], `late-${i}`)
    const after = state(image)
    expect(image.releaseCleanPages()).to.be.greaterThan(0)
    expect(state(image)).to.deep.equal(after)
    image.close()
    const again = Image.open(dir)
    expect(state(again)).to.deep.equal(after)
    again.close()
  })
})
