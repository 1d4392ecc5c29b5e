/**
 * Recovery reclaims content files (issue 4): after an unclean shutdown, the read-write open removes
 * every content file that no live inode names, once the frees are durable, and frees the orphans;
 * fsck then finds nothing at all. A clean open does not scan.
 */
import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {runFsck} from '../../../src/fsck/run.js'
import {Contents} from '../../../src/storage/contents.js'
import {readU64} from '../../../src/storage/codec/field.js'
import {CONTROL_OFFSET, INODE, TABLE_CONTROL} from '../../../src/storage/format.js'
import {Image, ROOT_INO} from '../../../src/storage/index.js'
import {fsckIds, inode64, slotOf} from '../fsck/helpers.js'

const S_IFREG = 0o100644
const u = {uid: 0, gid: 0}

/** Path of the content file of the file at `p` (its dataId must be set). */
function contentPath(dir: string, img: Image, p: string): string {
  const id = inode64(img.internals(), slotOf(img, p), INODE.OFF.dataId)
  expect(id, `${p} has a content file`).to.be.above(0)
  return new Contents(dir, true).pathOf(id)
}

function readAll(img: Image, p: string): Buffer {
  const ino = img.lookup(ROOT_INO, p.replace(/^\//, ''))
  const size = img.getattr(ino).size
  const buf = Buffer.alloc(size)
  expect(img.read(ino, buf, 0)).to.equal(size)
  return buf
}

describe('storage: recovery reclaims content files', function () {
  this.timeout(60_000)
  let root: string
  let n = 0
  /** An image with /keep (contents "kept bytes") and /doomed (4 KiB of 0x44), both with content files. */
  const fresh = (): string => {
    const dir = path.join(root, `img-${n++}`)
    fs.mkdirSync(dir)
    const img = Image.create(dir, {})
    const keep = img.mknod(ROOT_INO, 'keep', {mode: S_IFREG, ...u})
    img.write(keep.ino, Buffer.from('kept bytes'), 0)
    const doomed = img.mknod(ROOT_INO, 'doomed', {mode: S_IFREG, ...u})
    img.write(doomed.ino, Buffer.alloc(4096, 0x44), 0)
    img.close()
    return dir
  }

  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-reclaim-'))
  })
  after(() => fs.rmSync(root, {recursive: true, force: true}))

  it('a crash after the transaction that freed an inode, before its content file was removed: the next open removes it, fsck is clean', () => {
    const dir = fresh()
    const img = Image.open(dir)
    const doomedFile = contentPath(dir, img, '/doomed')
    const keepFile = contentPath(dir, img, '/keep')
    img.unlink(ROOT_INO, 'doomed') // the content file goes only after the next sync...
    img.abandon() // ...which never comes
    expect(fs.existsSync(doomedFile), 'the crash left the content file').to.equal(true)
    expect(fsckIds(dir)).to.deep.equal({exit: 4, ids: ['PR_6_UNUSED_CONTENT']})

    const rw = Image.open(dir)
    expect(rw.info().recovery.wasClean).to.equal(false)
    expect(fs.existsSync(doomedFile), 'recovery removed it').to.equal(false)
    expect(fs.existsSync(keepFile)).to.equal(true)
    expect(readAll(rw, '/keep').toString()).to.equal('kept bytes')
    expect(rw.lookup(ROOT_INO, 'doomed')).to.equal(0)
    rw.abandon() // a crash right after recovery: what it did must already be done
    expect(fsckIds(dir)).to.deep.equal({exit: 0, ids: []})
  })

  it('an orphan with contents (unlinked while open, then a crash): the next open frees it and removes its content file, fsck is clean', () => {
    const dir = fresh()
    const img = Image.open(dir)
    const doomedFile = contentPath(dir, img, '/doomed')
    const ino = img.lookup(ROOT_INO, 'doomed')
    img.retain(ino)
    img.unlink(ROOT_INO, 'doomed')
    img.write(ino, Buffer.alloc(100, 0x45), 4096) // written through the open handle
    img.sync()
    img.abandon()
    expect(fs.existsSync(doomedFile)).to.equal(true)
    // Before recovery the orphan is expected state: fsck reports it, and exits 0.
    expect(fsckIds(dir)).to.deep.equal({exit: 0, ids: ['PR_4_ORPHAN']})

    const rw = Image.open(dir)
    const usedAfter = rw.usage().inodes
    expect(fs.existsSync(doomedFile), "the orphan's content file is removed during recovery").to.equal(false)
    rw.abandon()
    expect(usedAfter).to.equal(2) // the root and /keep
    expect(fsckIds(dir)).to.deep.equal({exit: 0, ids: []})
  })

  it('removes content files of ids no inode holds (an allocation a power loss took back), so a reused id never shows old bytes', () => {
    const dir = fresh()
    const img = Image.open(dir)
    const keepFile = contentPath(dir, img, '/keep')
    img.mknod(ROOT_INO, 'unrelated', {mode: S_IFREG, ...u})
    img.abandon()
    // The next id's file exists, as if its allocation had been lost with the log's tail; and a file
    // with a content file's name that is the path of no id (a leading zero).
    const probe = Image.open(dir, {readOnly: true})
    const next = readU64(probe.internals().nodes.file.buf, CONTROL_OFFSET + TABLE_CONTROL.OFF.nextDataId)
    probe.close()
    const stale = new Contents(dir, true).pathOf(next)
    fs.mkdirSync(path.dirname(stale), {recursive: true})
    fs.writeFileSync(stale, Buffer.alloc(200, 0x55))
    const odd = path.join(path.dirname(keepFile), `0${path.basename(keepFile)}`)
    fs.writeFileSync(odd, 'odd')
    const foreign = path.join(path.dirname(keepFile), 'notes.txt')
    fs.writeFileSync(foreign, 'not a content file name')

    const rw = Image.open(dir)
    expect(fs.existsSync(stale)).to.equal(false)
    expect(fs.existsSync(odd)).to.equal(false)
    expect(fs.existsSync(foreign), 'names that are not content file names are left alone').to.equal(true)
    expect(fs.readFileSync(keepFile).toString()).to.equal('kept bytes')
    // The id is allocated again: the new file has only its own bytes.
    const g = rw.mknod(ROOT_INO, 'grown', {mode: S_IFREG, ...u})
    rw.setattr(g.ino, {size: 100})
    rw.write(g.ino, Buffer.from('x'), 99)
    expect(new Contents(dir, true).pathOf(inode64(rw.internals(), g.ino % 2 ** 32, INODE.OFF.dataId))).to.equal(stale)
    expect(readAll(rw, '/grown')).to.deep.equal(Buffer.concat([Buffer.alloc(99), Buffer.from('x')]))
    rw.close()
    fs.rmSync(foreign)
    expect(fsckIds(dir)).to.deep.equal({exit: 0, ids: []})
  })

  it('keeps the content file of any inode in use, even one whose mode was damaged to another type', () => {
    const dir = fresh()
    const img = Image.open(dir)
    const keepFile = contentPath(dir, img, '/keep')
    const x = img.internals()
    const slot = slotOf(img, '/keep')
    // A flipped type: a FIFO with a dataId (fsck reports it; recovery must not delete the bytes).
    x.store.transaction(() => x.store.set32(x.nodes.file, x.nodes.off(slot) + INODE.OFF.mode, 0o010644))
    img.abandon()
    Image.open(dir).abandon()
    expect(fs.readFileSync(keepFile).toString()).to.equal('kept bytes')
  })

  it('a clean open does not scan: a stray content file stays until fsck -y', () => {
    const dir = fresh()
    const img = Image.open(dir)
    const stray = new Contents(dir, true).pathOf(977)
    img.close()
    fs.mkdirSync(path.dirname(stray), {recursive: true})
    fs.writeFileSync(stray, 'stray')
    const again = Image.open(dir)
    expect(again.info().recovery.wasClean).to.equal(true)
    again.close()
    expect(fs.existsSync(stray)).to.equal(true)
    expect(fsckIds(dir).ids).to.deep.equal(['PR_6_UNUSED_CONTENT'])
    expect(runFsck({dir, mode: 'yes', force: true}).exitCode).to.equal(1)
    expect(fs.existsSync(stray)).to.equal(false)
  })
})
