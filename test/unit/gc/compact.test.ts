/**
 * The compaction of src/gc/compact.ts on its own: what it refuses (an inode no walk reaches)
 * leaves the data dir byte for byte as it was; the sizes it computes are what the rebuilt image
 * takes; hard links stay one inode.
 */
import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'

import {gcImage} from '../../../src/gc/compact.js'
import {inodeFields as I} from '../../../src/storage/codec/inode.js'
import {IF_USED} from '../../../src/storage/format.js'
import {Image, ImageError, ROOT_INO} from '../../../src/storage/index.js'
import {tempDir} from '../../helpers/cli.js'

const S_IFREG = 0o100000

function filesOf(dir: string): Record<string, string> {
  return Object.fromEntries(
    fs.readdirSync(dir).map(name => [name, fs.statSync(path.join(dir, name)).isFile() ? fs.readFileSync(path.join(dir, name)).toString('base64') : 'dir']),
  )
}

describe('gc: compaction', () => {
  let tmp: ReturnType<typeof tempDir>
  beforeEach(() => {
    tmp = tempDir()
  })
  afterEach(() => tmp.remove())

  it('refuses an image with an inode no name reaches, and changes nothing', () => {
    const dir = tmp.dir
    const image = Image.create(dir, {uid: 0, gid: 0})
    for (let i = 0; i < 50; i++) image.mknod(ROOT_INO, `f${i}`, {mode: S_IFREG | 0o644, uid: 0, gid: 0})
    for (let i = 0; i < 50; i += 2) image.unlink(ROOT_INO, `f${i}`)
    // Damage: a used inode record that no directory entry names.
    const {store, nodes} = image.internals()
    store.transaction(() => {
      const slot = nodes.alloc()
      I.flags.set(store, nodes.file, nodes.off(slot), IF_USED)
      I.mode.set(store, nodes.file, nodes.off(slot), S_IFREG | 0o600)
      I.nlink.set(store, nodes.file, nodes.off(slot), 1)
    })
    image.close()
    const before = filesOf(dir)
    expect(() => gcImage(dir)).to.throw(ImageError, /1 inodes are not reachable from the root; run razorfs fsck -fy first \(gc changed nothing\)/)
    expect(filesOf(dir)).to.deep.equal(before)
  })

  it('keeps hard links as one inode, and the rebuilt files take exactly the predicted bytes', () => {
    const dir = tmp.dir
    const image = Image.create(dir, {uid: 0, gid: 0})
    const sub = image.mknod(ROOT_INO, 'sub', {mode: 0o040755, uid: 0, gid: 0}).ino
    for (let i = 0; i < 2000; i++) image.mknod(sub, `some file name number ${i}`, {mode: S_IFREG | 0o644, uid: 0, gid: 0})
    for (let i = 0; i < 2000; i += 4) image.unlink(sub, `some file name number ${i}`)
    const target = image.lookup(sub, 'some file name number 1')
    image.write(target, Buffer.from('shared\n'), 0)
    image.link(target, ROOT_INO, 'one')
    image.link(target, sub, 'two')
    image.close()

    const dry = gcImage(dir, {dryRun: true})
    const report = gcImage(dir)
    expect(report.after).to.deep.equal(dry.after)
    const rebuilt = Image.open(dir, {readOnly: true})
    try {
      const a = rebuilt.lookup(ROOT_INO, 'one')
      const b = rebuilt.lookup(rebuilt.lookup(ROOT_INO, 'sub'), 'two')
      expect(a).to.equal(b)
      expect(rebuilt.getattr(a).nlink).to.equal(3)
      const buf = Buffer.alloc(16)
      expect(buf.subarray(0, rebuilt.read(a, buf, 0)).toString()).to.equal('shared\n')
      expect(rebuilt.usage().inodes).to.equal(2 + 1500)
    } finally {
      rebuilt.close()
    }
  })
})
