/**
 * Files the kernel reads and writes itself (FUSE passthrough): Image.openDirect hands out the
 * content file with exactly the logical size, what the kernel writes there shows in the file's
 * attributes, a truncate reaches the host file at once, and a crash (abandon, as a kill -9 leaves
 * the image) loses none of it: the next open, read-write or read-only, takes the sizes of the files
 * listed in `writers`. Here the test writes the host file as the kernel would.
 */
import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {decodeList} from '../../../src/storage/codec/writers.js'
import {DATA_DIR_NAME, WRITERS_NAME} from '../../../src/storage/format.js'
import {hostTimesCalls} from '../../../src/storage/host-sync.js'
import {Image, ROOT_INO} from '../../../src/storage/index.js'
import {FileSystem, ROOT_CRED} from '../../../src/vfs/filesystem.js'
import {fsckIds} from '../fsck/helpers.js'

const S_IFREG = 0o100644
const u = {uid: 0, gid: 0}

describe('storage: files the kernel writes itself (passthrough)', function () {
  this.timeout(60_000)
  let dir: string

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-direct-'))
  })

  afterEach(() => {
    fs.rmSync(dir, {recursive: true, force: true})
  })

  /** Write `data` at `pos` of the file through `fd`, as the kernel does through passthrough. */
  function kernelWrite(fd: number, data: Buffer, pos: number): void {
    expect(fs.writeSync(fd, data, 0, data.length, pos)).to.equal(data.length)
  }

  it('hands out the content file at the logical size, and takes size and mtime from it', () => {
    const img = Image.create(dir)
    const ino = img.mknod(ROOT_INO, 'f', {mode: S_IFREG, ...u}).ino
    expect(img.openDirect(ino, false), 'a reading open of a file never written: served, no content file made').to.equal(undefined)
    img.write(ino, Buffer.from('0123456789'), 0)
    img.setattr(ino, {size: 4}) // a deferred shrink: the host file still holds 10 bytes
    img.setattr(ino, {size: 6}) // grows with a hole
    const fd = img.openDirect(ino, true)!
    expect(fs.fstatSync(fd).size, 'the host file holds exactly the size').to.equal(6)
    const seen = Buffer.alloc(6)
    fs.readSync(fd, seen, 0, 6, 0)
    expect(seen.equals(Buffer.from('0123\0\0'))).to.equal(true)
    const uuid = img.internals().store.uuid
    expect(decodeList(fs.readFileSync(path.join(dir, WRITERS_NAME)), uuid), 'listed').to.deep.equal([ino])

    kernelWrite(fd, Buffer.from('abcdef'), 20)
    const attr = img.getattr(ino)
    expect(attr.size).to.equal(26)
    const host = fs.fstatSync(img.openDirect(ino, false)!, {bigint: true})
    expect(BigInt(attr.mtime.sec) * 1_000_000_000n + BigInt(attr.mtime.nsec)).to.equal(host.mtimeNs)

    // A truncate while it is open cuts the host file at once (the kernel reads it as it is).
    img.setattr(ino, {size: 3})
    expect(fs.fstatSync(img.openDirect(ino, false)!).size).to.equal(3)
    img.closeDirect(ino)
    img.closeDirect(ino)
    img.closeDirect(ino)
    img.close()
    expect(fs.existsSync(path.join(dir, WRITERS_NAME)), 'a clean close removes the list').to.equal(false)
    const again = Image.open(dir)
    expect(again.getattr(ino).size).to.equal(3)
    again.close()
  })

  it('a new file gets a content file only when an empty one is ready (a spare); without, it is served and none is made', () => {
    const img = Image.create(dir)
    const contentFiles = () => fs.readdirSync(path.join(dir, DATA_DIR_NAME), {recursive: true}).filter(f => /\/\d+$/.test(String(f))).length
    for (const name of ['old', 'older']) img.write(img.mknod(ROOT_INO, name, {mode: S_IFREG, ...u}).ino, Buffer.from('gone'), 0)
    const early = img.mknod(ROOT_INO, 'early', {mode: S_IFREG, ...u}).ino
    expect(img.openDirect(early, true), 'nothing ready: served').to.equal(undefined)
    expect(contentFiles(), 'only the written files have a content file').to.equal(2)

    img.unlink(ROOT_INO, 'old')
    img.unlink(ROOT_INO, 'older')
    img.sync() // the removals are durable: their content files, emptied, are spares
    const late = img.mknod(ROOT_INO, 'late', {mode: S_IFREG, ...u}).ino
    const fd = img.openDirect(late, true)!
    expect(fd, 'a spare ready: the kernel writes it').to.be.a('number')
    expect(fs.fstatSync(fd).size).to.equal(0)
    expect(contentFiles(), 'the spares, no new one').to.equal(2)
    kernelWrite(fd, Buffer.from('new'), 0)
    img.closeDirect(late)
    expect(img.getattr(late).size).to.equal(3)

    // A spare (or a file made ahead) may have been made long before: a new file the kernel never
    // writes keeps its own times, not the host file's.
    const made = img.mknod(ROOT_INO, 'touched', {mode: S_IFREG, ...u})
    const spare = img.openDirect(made.ino, true)!
    fs.futimesSync(spare, 1_000_000_000, 1_000_000_000)
    img.closeDirect(made.ino)
    expect(img.getattr(made.ino).mtime).to.deep.equal(made.mtime)
    img.close()
    expect(fsckIds(dir)).to.deep.equal({exit: 0, ids: []})
  })

  it('on a served image a new file gets the content file the pool made ahead for its number', async () => {
    const img = Image.create(dir)
    img.poolHostWork() // as a mount does: the pool makes the next numbers' files ahead
    // A first write gives a number, which starts the making ahead; its fan-out directory is made by
    // then, and the numbers that share it (every 256th) are the ones made.
    const first = img.mknod(ROOT_INO, 'first', {mode: S_IFREG, ...u}).ino
    img.write(first, Buffer.from('x'), 0)
    for (let i = 0; i < 256; i++) img.write(img.mknod(ROOT_INO, `w${i}`, {mode: S_IFREG, ...u}).ino, Buffer.from('x'), 0)
    const ino = img.mknod(ROOT_INO, 'new', {mode: S_IFREG, ...u}).ino
    let fd: number | undefined
    for (let tries = 0; fd === undefined && tries < 200; tries++) {
      fd = img.openDirect(ino, true)
      if (fd === undefined) await new Promise(resolve => setTimeout(resolve, 10))
    }

    expect(fd, 'a file made ahead, within 2 s').to.be.a('number')
    kernelWrite(fd!, Buffer.from('ahead'), 0)
    img.closeDirect(ino)
    expect(img.getattr(ino).size).to.equal(5)
    img.close()
    // Files the pool was still making ahead at the close are removed when it is done with them.
    await img.internals().contents.poolSettled()
    expect(fsckIds(dir)).to.deep.equal({exit: 0, ids: []})
  })

  it('a crash loses nothing the kernel wrote: the next open takes the listed files from their content files', () => {
    const img = Image.create(dir)
    const written = img.mknod(ROOT_INO, 'written', {mode: S_IFREG, ...u}).ino
    const read = img.mknod(ROOT_INO, 'read', {mode: S_IFREG, ...u}).ino
    img.write(written, Buffer.from('x'), 0)
    img.write(read, Buffer.from('unchanged'), 0)
    const fd = img.openDirect(written, true)!
    img.openDirect(read, false)
    kernelWrite(fd, Buffer.alloc(5000, 7), 0)
    img.abandon() // kill -9: nothing adopted, the list left behind

    const ro = Image.open(dir, {readOnly: true})
    expect(ro.getattr(written).size, 'a read-only open takes it in memory').to.equal(5000)
    ro.close()
    const rw = Image.open(dir)
    expect(rw.getattr(written).size).to.equal(5000)
    expect(rw.getattr(read).size).to.equal(9)
    const back = Buffer.alloc(5000)
    rw.read(written, back, 0)
    expect(back.equals(Buffer.alloc(5000, 7))).to.equal(true)
    expect(fs.existsSync(path.join(dir, WRITERS_NAME)), 'recovery removes the list').to.equal(false)
    rw.close()
    expect(fsckIds(dir)).to.deep.equal({exit: 0, ids: []})
  })

  it('an fsync of a directory with nothing new in the log syncs nothing; one after the kernel grew a file syncs it and the log', () => {
    const img = Image.create(dir)
    const ino = img.mknod(ROOT_INO, 'f', {mode: S_IFREG, ...u}).ino
    img.write(ino, Buffer.from('data'), 0)
    const fd = img.openDirect(ino, true)!
    img.sync()
    const synced: string[] = []
    const fdatasyncSync = fs.fdatasyncSync
    fs.fdatasyncSync = (at: number): void => {
      synced.push(fs.readlinkSync(`/proc/self/fd/${at}`))
      fdatasyncSync(at)
    }

    try {
      img.sync(true)
      expect(synced, 'open for writing through passthrough, unchanged since the last sync').to.deep.equal([])
      kernelWrite(fd, Buffer.from('more'), 4)
      img.sync(true)
      expect(
        synced.some(p => p.includes(`${path.sep}${DATA_DIR_NAME}${path.sep}`)),
        'the content file',
      ).to.equal(true)
      expect(
        synced.some(p => p.endsWith('wal.log')),
        'the log',
      ).to.equal(true)
    } finally {
      fs.fdatasyncSync = fdatasyncSync
    }

    expect(img.getattr(ino).size).to.equal(8)
    img.closeDirect(ino)
    img.close()
  })

  it("a chown (the core's permission read, then the change) looks at the host file once, and answers with the size the kernel wrote", () => {
    const img = Image.create(dir)
    const core = new FileSystem(img)
    const ino = img.mknod(ROOT_INO, 'f', {mode: S_IFREG, ...u}).ino
    img.write(ino, Buffer.from('data'), 0)
    const fd = img.openDirect(ino, true)!
    kernelWrite(fd, Buffer.from('more'), 4)
    const before = hostTimesCalls.count
    let fstats = 0
    const fstatSync = fs.fstatSync
    fs.fstatSync = ((...args: Parameters<typeof fs.fstatSync>) => {
      fstats++
      return fstatSync(...args)
    }) as typeof fs.fstatSync
    let attr
    try {
      attr = core.setattr(ino, {uid: 1000, gid: 1000}, ROOT_CRED)
    } finally {
      fs.fstatSync = fstatSync
    }

    expect([hostTimesCalls.count - before, fstats], "host file looks (the addon's fstat, Node's)").to.deep.equal([1, 0])
    expect([attr.uid, attr.gid, attr.size]).to.deep.equal([1000, 1000, 8])
    img.closeDirect(ino)
    img.close()
  })

  it('a chmod after the kernel wrote takes the write and the change in one transaction; one undone leaves the write to take', () => {
    const img = Image.create(dir)
    const ino = img.mknod(ROOT_INO, 'f', {mode: S_IFREG, ...u}).ino
    img.write(ino, Buffer.from('data'), 0)
    const fd = img.openDirect(ino, true)!
    const {store} = img.internals()
    kernelWrite(fd, Buffer.from('more'), 4)
    const lsn = store.wal.nextLsn
    const attr = img.setattr(ino, {mode: 0o600})
    expect([store.wal.nextLsn - lsn, attr.size, attr.mode & 0o7777], 'records, size, mode').to.deep.equal([1, 8, 0o600])

    // An overwrite in place (the size stays) is seen by its mtime; a setattr that fails after
    // taking it undoes it, and the next look takes it again.
    kernelWrite(fd, Buffer.from('MORE'), 4)
    const later = new Date(Date.now() + 5000)
    fs.futimesSync(fd, later, later)
    expect(() =>
      store.transaction(() => {
        img.setattr(ino, {mode: 0o640})
        throw new Error('undone')
      }),
    ).to.throw('undone')
    expect(img.getattr(ino).mtime.sec, 'taken again after the undo').to.equal(Math.floor(later.getTime() / 1000))
    img.closeDirect(ino)
    img.close()
  })
})
