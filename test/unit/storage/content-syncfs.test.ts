/**
 * Content files synced with syncfs(2) (contents.ts, host-sync.ts; issue 18): an evicted content
 * file is closed unsynced, and a sync of more than SYNCFS_OVER (4) files, new directories and the
 * log makes them all durable with one syncfs of the host filesystem; fewer are fdatasynced one by
 * one, the log last. Also: a number just handed out has no content file, so its first write creates
 * one without a failing open first. The commit's write-back ahead (writeBackAhead) runs the same
 * syncfs in the libuv pool, on a descriptor of its own, and changes nothing of what the sync after
 * it does. The syncfs calls are counted through the image's own hooks, the fdatasync and open calls
 * on node:fs (the storage layer calls them through it).
 */
import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {CONTENT_FDS} from '../../../src/storage/debug.js'
import {CLOSE_BATCH} from '../../../src/storage/content-sync.js'
import {hostCloseBatch, hostSyncfs, hostSyncfsAhead} from '../../../src/storage/host-sync.js'
import {Image, ROOT_INO} from '../../../src/storage/index.js'
import {makeFiles} from '../../helpers/content-files.js'

const S_IFREG = 0o100644

describe('storage: syncing content files with syncfs', () => {
  let dir: string
  /** Every sync in call order: `syncfs`, or the path fdatasynced. */
  let calls: string[]
  /** Opens that failed, by path and code. */
  let failedOpens: string[]
  /** The next syncfs calls fail with EIO, as after a host writeback error. */
  let failSyncfs: number
  const fdatasyncSync = fs.fdatasyncSync
  const fdatasync = fs.fdatasync
  const openSync = fs.openSync

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-content-syncfs-'))
    calls = []
    failedOpens = []
    failSyncfs = 0
    fs.fdatasyncSync = (fd: number): void => {
      calls.push(fs.readlinkSync(`/proc/self/fd/${fd}`))
      fdatasyncSync(fd)
    }

    fs.fdatasync = ((fd: number, cb: (error: NodeJS.ErrnoException | null) => void): void => {
      calls.push(`pool ${fs.readlinkSync(`/proc/self/fd/${fd}`)}`)
      fdatasync(fd, cb)
    }) as typeof fs.fdatasync
    fs.openSync = ((file: fs.PathLike, ...rest: unknown[]): number => {
      try {
        return (openSync as (...a: unknown[]) => number)(file, ...rest)
      } catch (error) {
        failedOpens.push(`${String(file)} ${(error as NodeJS.ErrnoException).code}`)
        throw error
      }
    }) as typeof fs.openSync
  })

  afterEach(() => {
    fs.fdatasyncSync = fdatasyncSync
    fs.fdatasync = fdatasync
    fs.openSync = openSync
    fs.rmSync(dir, {recursive: true, force: true})
  })

  /** A new image whose syncfs calls, on the JS thread and in the pool, are counted (and fail when failSyncfs says so). */
  function counted(): Image {
    const image = Image.create(dir, {})
    const real = hostSyncfs()!
    const realAhead = hostSyncfsAhead()!
    image.internals().contents.sync.syncfsAhead = async (fd: number) => {
      calls.push(`ahead ${fs.readlinkSync(`/proc/self/fd/${fd}`)}`)
      await realAhead(fd)
      calls.push('ahead done')
    }
    image.internals().contents.sync.syncfs = (fd: number) => {
      calls.push('syncfs')
      if (failSyncfs > 0) {
        failSyncfs--
        throw Object.assign(new Error('Input/output error'), {code: 'EIO'})
      }

      real(fd)
    }

    return image
  }

  const isLog = (call: string): boolean => call.endsWith('/wal.log')
  const content = (call: string): boolean => /\/data\/[0-9a-f]{2}\/\d+$/.test(call)
  /** A content file's fdatasync, then the log's. */
  const fileThenLog = (synced: string[]): boolean => synced.length === 2 && content(synced[0]) && isLog(synced[1])

  it('the addon npm install builds has syncfs', () => {
    expect(hostSyncfs(), 'syncfs from build/Release/razorfs_ll.node').to.be.a('function')
  })

  it('an eviction syncs nothing; the next sync is one syncfs, which covers the log on the same filesystem: no fdatasync at all', () => {
    const fdsBefore = fs.readdirSync('/proc/self/fd').length
    const image = counted()
    image.sync()
    calls = []
    makeFiles(image, CONTENT_FDS + 100) // 100 evictions of files written since the last sync
    expect(calls, 'syncs while writing').to.deep.equal([])
    image.sync()
    expect(calls).to.deep.equal(['syncfs'])
    // Nothing is left to sync after it: no call at all.
    calls = []
    image.sync()
    expect(calls).to.deep.equal([])
    image.close()
    expect(fs.readdirSync('/proc/self/fd').length, 'descriptors left open').to.equal(fdsBefore)
  })

  it("an fsync after a write into a file is its fdatasync, then the log's; a change of metadata alone is the log's fdatasync", () => {
    const image = counted()
    const [ino] = makeFiles(image, 1)
    image.sync()
    calls = []
    image.write(ino, Buffer.alloc(100, 7), 4096)
    image.fsync(ino)
    expect(fileThenLog(calls), calls.join(', ')).to.equal(true)
    // Five written files and the log: one syncfs.
    const five = makeFiles(image, 5, 1)
    image.sync()
    calls = []
    for (const file of five) image.write(file, Buffer.alloc(10, 7), 0)
    image.fsync(five[0])
    expect(calls).to.deep.equal(['syncfs'])
    calls = []
    image.mknod(ROOT_INO, 'd', {mode: 0o040755, uid: 0, gid: 0})
    image.sync()
    expect(calls).to.have.length(1)
    expect(isLog(calls[0]), `${calls[0]} is the log`).to.equal(true)
    image.close()
  })

  it("an fdatasync (dataOnly) of a file whose size is durable is its content file's fdatasync alone; after a growth, a new file or a truncate, everything", () => {
    const image = counted()
    const [ino] = makeFiles(image, 1)
    image.write(ino, Buffer.alloc(8192, 1), 0)
    image.sync()
    // Bytes inside the size: the log's records (mtime) need not be durable for fdatasync.
    calls = []
    image.write(ino, Buffer.alloc(100, 7), 4096)
    image.fsync(ino, true)
    expect(calls).to.have.length(1)
    expect(content(calls[0]), `${calls[0]} is the content file`).to.equal(true)
    // Nothing written since: nothing to sync.
    calls = []
    image.fsync(ino, true)
    expect(calls).to.deep.equal([])
    // A write that grows the file: its size goes through the log, so everything is synced.
    image.write(ino, Buffer.alloc(100, 7), 8192)
    image.fsync(ino, true)
    expect(fileThenLog(calls), calls.join(', ')).to.equal(true)
    // A truncate, likewise; and fsync (not dataOnly) always.
    calls = []
    image.setattr(ino, {size: 100})
    image.fsync(ino, true)
    expect(calls.length === 1 && isLog(calls[0]), calls.join(', ')).to.equal(true)
    calls = []
    image.write(ino, Buffer.alloc(10, 7), 0)
    image.fsync(ino)
    expect(fileThenLog(calls), calls.join(', ')).to.equal(true)
    // A file made since the last sync: its content file's name must become durable too.
    calls = []
    const [fresh] = makeFiles(image, 1, 1)
    image.sync()
    image.write(fresh, Buffer.alloc(10, 7), 0)
    const [other] = makeFiles(image, 1, 2)
    calls = []
    image.fsync(fresh, true)
    expect(calls).to.deep.equal(['syncfs'])
    expect(other).to.be.a('number')
    image.close()
  })

  it("where the log is on another filesystem, a sync of one content file is its fdatasync, then the log's", () => {
    const image = counted()
    const [ino] = makeFiles(image, 1)
    image.sync()
    image.internals().contents.sync.logDevice = -1
    calls = []
    image.write(ino, Buffer.alloc(100, 7), 4096)
    image.fsync(ino)
    expect(calls).to.have.length(2)
    expect(calls[0]).to.match(/\/data\/[0-9a-f]{2}\/\d+$/)
    expect(isLog(calls[1]), `${calls[1]} is the log`).to.equal(true)
    image.close()
  })

  it('a syncfs that fails makes every later sync fail, naming the data dir; the log is not synced over it', () => {
    const image = counted()
    makeFiles(image, 3)
    failSyncfs = 1
    calls = []
    for (let i = 0; i < 2; i++) expect(() => image.sync()).to.throw(`syncfs of the filesystem of ${path.join(dir, 'data')}: Input/output error`)
    // Asked once: the second sync throws the error it kept, before syncing anything.
    expect(calls).to.deep.equal(['syncfs'])
    expect(() => image.close()).to.throw(/Input\/output error/)
  })

  it('writeBackAhead runs the syncfs the next sync would make in the pool, on its own descriptor, and the sync still makes it', async () => {
    const fdsBefore = fs.readdirSync('/proc/self/fd').length
    const image = counted()
    const data = path.join(dir, 'data')
    makeFiles(image, 3)
    image.sync()
    // Fewer than SYNCFS_OVER written: the sync would fdatasync them, so nothing is written back ahead.
    const [one] = makeFiles(image, 1, 3)
    image.sync()
    calls = []
    image.write(one, Buffer.alloc(10, 7), 0)
    await image.writeBackAhead()
    expect(calls).to.deep.equal([])
    image.sync()
    // Ten written: the syncfs in the pool, on a descriptor of the data dir; asked again while it
    // runs, nothing more (and no waiting: the sync waits for what that one writes back anyway).
    makeFiles(image, 10, 4)
    calls = []
    const first = image.writeBackAhead()
    let againDone = false
    const again = image.writeBackAhead().then(() => {
      againDone = true
    })
    await again
    expect(calls, 'the second asked nothing of the pool').to.deep.equal([`ahead ${data}`])
    await first
    expect(againDone).to.equal(true)
    expect(calls).to.deep.equal([`ahead ${data}`, 'ahead done'])
    // It synced nothing as far as the image knows: the commit's sync is as it was without it.
    calls = []
    image.sync()
    expect(calls).to.deep.equal(['syncfs'])
    calls = []
    image.sync()
    await image.writeBackAhead()
    expect(calls, 'nothing left to sync or write back').to.deep.equal([])
    image.close()
    expect(fs.readdirSync('/proc/self/fd').length, 'descriptors left open').to.equal(fdsBefore)
  })

  it('writeBackAhead never rejects; an error it meets fails every later sync, as a syncfs error of the sync itself does', async () => {
    const image = counted()
    image.internals().contents.sync.syncfsAhead = async () => {
      calls.push('ahead')
      throw Object.assign(new Error('Input/output error'), {code: 'EIO'})
    }

    makeFiles(image, 10)
    calls = []
    await image.writeBackAhead()
    // Linux may have told the error to this first caller alone: the sync does not try again over it.
    for (let i = 0; i < 2; i++) expect(() => image.sync()).to.throw(`syncfs of the filesystem of ${path.join(dir, 'data')}: Input/output error`)
    expect(calls).to.deep.equal(['ahead'])
    // Nothing is written back ahead after it.
    await image.writeBackAhead()
    expect(calls).to.deep.equal(['ahead'])
    expect(() => image.close()).to.throw(/Input\/output error/)
  })

  it('a close while a writeBackAhead runs leaves no descriptor open once it ends', async () => {
    const fdsBefore = fs.readdirSync('/proc/self/fd').length
    const image = counted()
    makeFiles(image, 10)
    const running = image.writeBackAhead()
    image.close()
    await running
    expect(calls).to.include('ahead done')
    expect(fs.readdirSync('/proc/self/fd').length, 'descriptors left open').to.equal(fdsBefore)
  })

  it('on a served image an eviction closes its descriptor in the pool, CLOSE_BATCH in one job; a close closes those still waiting', async () => {
    const openFds = (): number => fs.readdirSync('/proc/self/fd').length
    const fdsBefore = openFds()
    const image = counted()
    image.poolHostWork() // as a mount does
    const batches: Array<Promise<void>> = []
    const sizes: number[] = []
    const real = hostCloseBatch()!
    image.internals().contents.sync.closeBatch = (fds: Int32Array) => {
      sizes.push(fds.length)
      const closing = real(fds)
      batches.push(closing)
      return closing
    }

    makeFiles(image, CONTENT_FDS + 2 * CLOSE_BATCH + 8) // two jobs of CLOSE_BATCH evictions, 8 waiting
    expect(sizes).to.deep.equal([CLOSE_BATCH, CLOSE_BATCH])
    await Promise.all(batches)
    image.close()
    expect(sizes, 'the 8 waiting are closed by the close itself').to.deep.equal([CLOSE_BATCH, CLOSE_BATCH])
    // Files the pool was still making ahead are closed when it is done.
    for (let tries = 0; openFds() !== fdsBefore && tries < 500; tries++) await new Promise(resolve => setTimeout(resolve, 10))
    expect(openFds(), 'descriptors left open').to.equal(fdsBefore)
  })

  it('the first write of a new file creates its content file without a failing open; a read of a file never written opens nothing', () => {
    const image = counted()
    image.sync()
    failedOpens = []
    const {ino} = image.mknod(ROOT_INO, 'never', {mode: S_IFREG, uid: 0, gid: 0})
    image.setattr(ino, {size: 8192})
    const buf = Buffer.alloc(8192, 1)
    expect(image.read(ino, buf, 0)).to.equal(8192)
    expect(buf.equals(Buffer.alloc(8192))).to.equal(true)
    makeFiles(image, 50)
    expect(failedOpens).to.deep.equal([])
    image.close()
    // The bytes are where they belong after a reopen.
    const again = Image.open(dir, {})
    const got = Buffer.alloc(4096)
    again.read(again.lookup(ROOT_INO, 'f7'), got, 0)
    expect(got.equals(Buffer.alloc(4096, 8))).to.equal(true)
    again.close()
  })
})
