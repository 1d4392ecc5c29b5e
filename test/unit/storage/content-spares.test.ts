/**
 * Spare content files (contents.ts `recycle`, file-data.ts `allocDataId`; issue 18): once the free
 * of an inode is durable, its content file is emptied and kept for the next file written, instead
 * of removed; that file then costs the host no create and the next sync no directory fsync (a
 * SQLite commit makes and removes its journal each time). A spare is named by no inode: a clean
 * close removes it, a crash leaves it to the reclaim of the next open. A served image empties and
 * removes these files in the libuv pool (Image.poolHostWork).
 */
import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {Image, ROOT_INO} from '../../../src/storage/index.js'
import {INODE} from '../../../src/storage/format.js'
import {fsckIds, inode64, slotOf} from '../fsck/helpers.js'

const u = {uid: 0, gid: 0}
const S_IFREG = 0o100644

describe('storage: spare content files', () => {
  let dir: string
  /** Content files created (opened with O_CREAT) while the test counts. */
  let created: string[]
  const openSync = fs.openSync

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-spares-'))
    created = []
    fs.openSync = ((file: fs.PathLike, flags?: fs.OpenMode, ...rest: unknown[]): number => {
      if (typeof flags === 'number' && (flags & fs.constants.O_CREAT) !== 0 && String(file).includes('/data/')) created.push(String(file))
      return (openSync as (...a: unknown[]) => number)(file, flags, ...rest)
    }) as typeof fs.openSync
  })

  afterEach(() => {
    fs.openSync = openSync
    fs.rmSync(dir, {recursive: true, force: true})
  })

  /** Path of the content file of /`name`. */
  const contentOf = (img: Image, name: string): string => img.internals().contents.pathOf(inode64(img.internals(), slotOf(img, `/${name}`), INODE.OFF.dataId))

  function readAll(img: Image, ino: number): Buffer {
    const buf = Buffer.alloc(img.getattr(ino).size)
    img.read(ino, buf, 0)
    return buf
  }

  /** An image with /old of 8 KiB, unlinked, and the unlink made durable (which empties its content file). */
  function withSpare(): {img: Image; spare: string} {
    const img = Image.create(dir, {})
    const old = img.mknod(ROOT_INO, 'old', {mode: S_IFREG, ...u}).ino
    img.write(old, Buffer.alloc(8192, 0x6f), 0)
    img.sync()
    const spare = contentOf(img, 'old')
    img.unlink(ROOT_INO, 'old')
    expect(fs.statSync(spare).size, 'kept until the unlink is durable').to.equal(8192)
    img.sync()
    expect(fs.statSync(spare).size, 'emptied once it is').to.equal(0)
    return {img, spare}
  }

  it('the next file written gets the emptied file: no host create, and it reads only its own bytes', () => {
    const {img, spare} = withSpare()
    created = []
    const ino = img.mknod(ROOT_INO, 'new', {mode: S_IFREG, ...u}).ino
    img.write(ino, Buffer.from('x'), 100) // a hole before: zeros, not the old file's bytes
    expect(contentOf(img, 'new')).to.equal(spare)
    expect(created, 'content files created').to.deep.equal([])
    expect(readAll(img, ino)).to.deep.equal(Buffer.concat([Buffer.alloc(100), Buffer.from('x')]))
    img.setattr(ino, {size: 8192})
    expect(readAll(img, ino)).to.deep.equal(Buffer.concat([Buffer.alloc(100), Buffer.from('x'), Buffer.alloc(8091)]))
    // The file after it has no spare left: a new number and a new content file.
    const next = img.mknod(ROOT_INO, 'next', {mode: S_IFREG, ...u}).ino
    img.write(next, Buffer.from('y'), 0)
    expect(created).to.deep.equal([contentOf(img, 'next')])
    img.close()
    expect(fsckIds(dir)).to.deep.equal({exit: 0, ids: []})
  })

  it('a clean close removes the spares: fsck finds nothing to repair', () => {
    const {img, spare} = withSpare()
    img.close()
    expect(fs.existsSync(spare)).to.equal(false)
    expect(fsckIds(dir)).to.deep.equal({exit: 0, ids: []})
  })

  it('a crash leaves a spare to the next open, which removes it; a file that got one keeps its bytes', () => {
    const {img, spare} = withSpare()
    const kept = img.mknod(ROOT_INO, 'kept', {mode: S_IFREG, ...u}).ino
    img.write(kept, Buffer.from('kept bytes'), 0)
    img.fsync(kept)
    const keptFile = contentOf(img, 'kept')
    expect(keptFile).to.equal(spare)
    img.unlink(ROOT_INO, 'kept')
    img.sync() // kept's file is a spare again...
    img.abandon() // ...when the server dies
    expect(fs.existsSync(spare)).to.equal(true)
    const rw = Image.open(dir)
    expect(fs.existsSync(spare), 'reclaimed by the open after the crash').to.equal(false)
    rw.close()
    expect(fsckIds(dir)).to.deep.equal({exit: 0, ids: []})
  })

  it('the open after a crash deletes the spares its recovery made: fsck finds nothing, and a new file keeps its bytes across the next crash', () => {
    const img = Image.create(dir, {})
    const held = img.mknod(ROOT_INO, 'held', {mode: S_IFREG, ...u}).ino
    img.write(held, Buffer.alloc(8192, 0x68), 0)
    const spare = contentOf(img, 'held')
    img.retain(held)
    img.unlink(ROOT_INO, 'held') // an orphan, freed by the next open
    img.sync()
    img.abandon()
    // Recovery frees the orphan and syncs, which makes its content file a spare; then it removes
    // the content files no inode names: the spare goes with them, and the mount forgets it.
    const rw = Image.open(dir)
    expect(fs.existsSync(spare)).to.equal(false)
    expect(fsckIds(dir)).to.deep.equal({exit: 0, ids: []})
    const ino = rw.mknod(ROOT_INO, 'new', {mode: S_IFREG, ...u}).ino
    rw.write(ino, Buffer.from('new bytes'), 0)
    expect(fs.readFileSync(contentOf(rw, 'new')).toString()).to.equal('new bytes')
    rw.abandon()
    const again = Image.open(dir)
    expect(readAll(again, again.lookup(ROOT_INO, 'new')).toString()).to.equal('new bytes')
    again.close()
    expect(fsckIds(dir)).to.deep.equal({exit: 0, ids: []})
  })

  /** Let the libuv pool's truncates and removals end and their callbacks run. */
  const poolDone = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) await new Promise(resolve => setTimeout(resolve, 20))
  }

  it('a served image empties and removes freed content files in the pool: a spare once the pool is done, and no file left behind', async () => {
    const img = Image.create(dir, {})
    img.poolHostWork()
    const names = Array.from({length: 40}, (_, i) => `f${i}`) // more than the 32 spares kept: the rest are removed
    for (const name of names) img.write(img.mknod(ROOT_INO, name, {mode: S_IFREG, ...u}).ino, Buffer.alloc(8192, 0x66), 0)
    img.sync()
    const files = names.map(name => contentOf(img, name))
    for (const name of names) img.unlink(ROOT_INO, name)
    img.sync() // the frees are durable: their files go to the pool
    created = []
    const early = img.mknod(ROOT_INO, 'early', {mode: S_IFREG, ...u}).ino
    img.write(early, Buffer.from('e'), 0)
    expect(created, 'no spare before the pool has emptied one').to.deep.equal([contentOf(img, 'early')])
    await poolDone()
    const left = files.filter(file => fs.existsSync(file))
    expect(left.length, 'kept as spares').to.equal(32)
    for (const file of left) expect(fs.statSync(file).size).to.equal(0)
    created = []
    const late = img.mknod(ROOT_INO, 'late', {mode: S_IFREG, ...u}).ino
    img.write(late, Buffer.from('x'), 100)
    expect(created, 'content files created').to.deep.equal([])
    expect(left).to.include(contentOf(img, 'late'))
    expect(readAll(img, late)).to.deep.equal(Buffer.concat([Buffer.alloc(100), Buffer.from('x')]))
    // A free the pool has not got to when the image closes: the close removes its file itself.
    const lateFile = contentOf(img, 'late')
    const earlyFile = contentOf(img, 'early')
    img.unlink(ROOT_INO, 'early')
    img.sync()
    img.close()
    expect(fs.existsSync(earlyFile)).to.equal(false)
    await poolDone()
    const root = path.dirname(path.dirname(lateFile))
    const contentFiles = fs
      .readdirSync(root, {recursive: true})
      .map(f => path.join(root, String(f)))
      .filter(f => fs.statSync(f).isFile() && /^\d+$/.test(path.basename(f)))
    expect(contentFiles, 'content files after close').to.deep.equal([lateFile])
    expect(fsckIds(dir)).to.deep.equal({exit: 0, ids: []})
  })

  it("a served image has the pool make the next new files' content files ahead: the first write creates none, and neither a close nor a crash leaves one behind", async () => {
    const img = Image.create(dir, {})
    img.poolHostWork()
    // 300 files: every fan-out directory exists (a number's directory is its low byte), so the
    // files of the next numbers can be made ahead.
    for (let i = 0; i < 300; i++) img.write(img.mknod(ROOT_INO, `f${i}`, {mode: S_IFREG, ...u}).ino, Buffer.from('f'), 0)
    img.sync()
    await poolDone()
    created = []
    const inos: number[] = []
    for (let i = 0; i < 20; i++) {
      const ino = img.mknod(ROOT_INO, `new${i}`, {mode: S_IFREG, ...u}).ino
      img.write(ino, Buffer.from(`new ${i}`), 0)
      inos.push(ino)
    }

    expect(created, 'content files created on the JS thread').to.deep.equal([])
    img.fsync(inos[0])
    for (const [i, ino] of inos.entries()) expect(readAll(img, ino).toString()).to.equal(`new ${i}`)
    const root = path.dirname(path.dirname(contentOf(img, 'new0')))
    const contentFiles = (): number =>
      fs.readdirSync(root, {recursive: true}).filter(f => /^\d+$/.test(path.basename(String(f))) && fs.statSync(path.join(root, String(f))).isFile()).length
    expect(contentFiles(), 'the 320 files and the ones made ahead').to.be.above(320)
    img.abandon() // a crash: the files made ahead are named by no inode...
    await poolDone()
    const rw = Image.open(dir)
    expect(readAll(rw, rw.lookup(ROOT_INO, 'new19')).toString()).to.equal('new 19')
    rw.close() // ...and the next open removes them
    expect(contentFiles()).to.equal(320)
    expect(fsckIds(dir)).to.deep.equal({exit: 0, ids: []})
    const again = Image.open(dir)
    again.poolHostWork()
    again.write(again.mknod(ROOT_INO, 'last', {mode: S_IFREG, ...u}).ino, Buffer.from('l'), 0)
    await poolDone()
    again.close() // a clean close removes what it made ahead
    await poolDone()
    expect(contentFiles()).to.equal(321)
    expect(fsckIds(dir)).to.deep.equal({exit: 0, ids: []})
  })

  it('a write undone with its transaction gives the spare to no inode: it is removed, and the file stays empty', () => {
    const {img, spare} = withSpare()
    const ino = img.mknod(ROOT_INO, 'new', {mode: S_IFREG, ...u}).ino
    expect(() =>
      img.transaction(() => {
        img.write(ino, Buffer.from('undone'), 0)
        throw new Error('abandoned')
      }),
    ).to.throw('abandoned')
    expect(img.getattr(ino).size).to.equal(0)
    expect(fs.existsSync(spare)).to.equal(false)
    img.write(ino, Buffer.from('z'), 3)
    expect(readAll(img, ino)).to.deep.equal(Buffer.from('\0\0\0z'))
    img.close()
    expect(fsckIds(dir)).to.deep.equal({exit: 0, ids: []})
  })
})
