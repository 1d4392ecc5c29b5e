/**
 * The compaction of src/gc/compact.ts on its own: what it refuses (an inode no walk reaches)
 * leaves the data dir byte for byte as it was; the sizes it computes are what the rebuilt image
 * takes; hard links stay one inode.
 */
import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'

import {gcImage, setGcTestHook} from '../../../src/gc/compact.js'
import {inodeFields as I} from '../../../src/storage/codec/inode.js'
import {IF_USED} from '../../../src/storage/format.js'
import {Image, ImageError, ROOT_INO} from '../../../src/storage/index.js'
import {hashTree, tempDir} from '../../helpers/cli.js'

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

  it('a rename that fails (not a kill) at any point of the swap puts the old image back, its content files untouched', () => {
    // 50 files with contents, every other one unlinked: gc has records and strings to give back.
    const fill = (dir: string): void => {
      const image = Image.create(dir, {uid: 0, gid: 0})
      for (let i = 0; i < 50; i++) image.write(image.mknod(ROOT_INO, `f${i}`, {mode: S_IFREG | 0o644, uid: 0, gid: 0}).ino, Buffer.from(`content ${i}\n`), 0)
      for (let i = 0; i < 50; i += 2) image.unlink(ROOT_INO, `f${i}`)
      image.close()
    }

    const contents = (dir: string): Record<string, string> => hashTree(path.join(dir, 'data'))

    // How many renames one swap makes: counted on a copy.
    const probe = path.join(tmp.dir, 'probe')
    const dir = path.join(tmp.dir, 'image')
    fs.mkdirSync(probe)
    fs.mkdirSync(dir)
    fill(probe)
    fill(dir)
    let renames = 0
    try {
      setGcTestHook(point => {
        if (point === 'rename') renames++
      })
      gcImage(probe)
      expect(renames).to.be.greaterThan(1)
      const start = contents(dir)
      expect(Object.keys(start)).to.have.length(25)
      for (let fail = 1; fail <= renames; fail++) {
        let n = 0
        setGcTestHook(point => {
          if (point === 'rename' && ++n === fail) throw Object.assign(new Error('EIO (injected)'), {code: 'EIO'})
        })
        expect(() => gcImage(dir), `rename ${fail} of ${renames}`).to.throw(/EIO/)
        expect(contents(dir), `rename ${fail} of ${renames}: data/`).to.deep.equal(start)
        const opened = Image.open(dir, {readOnly: true})
        try {
          const buf = Buffer.alloc(32)
          expect(buf.subarray(0, opened.read(opened.lookup(ROOT_INO, 'f1'), buf, 0)).toString(), `rename ${fail} of ${renames}`).to.equal('content 1\n')
          expect(opened.usage().inodes).to.equal(1 + 25)
        } finally {
          opened.close()
        }
      }

      setGcTestHook(undefined)
      gcImage(dir)
      expect(contents(dir)).to.deep.equal(start)
    } finally {
      setGcTestHook(undefined)
    }
  })
})
