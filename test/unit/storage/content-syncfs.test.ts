/**
 * Content files synced with syncfs(2) (contents.ts, host-sync.ts; issue 18): an evicted content
 * file is closed unsynced, and a sync of more than one file makes them all durable with one
 * syncfs of the host filesystem before the write-ahead log's fdatasync; one file alone is
 * fdatasynced. Also: a number just handed out has no content file, so its first write creates
 * one without a failing open first. The syncfs calls are counted through the image's own hook,
 * the fdatasync and open calls on node:fs (the storage layer calls them through it).
 */
import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {CONTENT_FDS} from '../../../src/storage/debug.js'
import {hostSyncfs} from '../../../src/storage/host-sync.js'
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

  /** A new image whose syncfs calls are counted (and fail when failSyncfs says so). */
  function counted(): Image {
    const image = Image.create(dir, {})
    const real = hostSyncfs()!
    image.internals().contents.syncfs = (fd: number) => {
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
  const isContent = (call: string): boolean => call.includes('/data/')

  it('the addon npm install builds has syncfs', () => {
    expect(hostSyncfs(), 'syncfs from build/Release/razorfs_ll.node').to.be.a('function')
  })

  it('an eviction syncs nothing; the next sync is one syncfs, before the log, and no fdatasync of a content file', () => {
    const fdsBefore = fs.readdirSync('/proc/self/fd').length
    const image = counted()
    image.sync()
    calls = []
    makeFiles(image, CONTENT_FDS + 100) // 100 evictions of files written since the last sync
    expect(calls, 'syncs while writing').to.deep.equal([])
    image.sync()
    expect(calls.filter(c => c === 'syncfs' || isLog(c) || isContent(c))).to.deep.equal(['syncfs', calls.find(c => isLog(c))])
    // Nothing is left to sync after it.
    calls = []
    image.sync()
    expect(calls.filter(c => c === 'syncfs' || isContent(c))).to.deep.equal([])
    image.close()
    expect(fs.readdirSync('/proc/self/fd').length, 'descriptors left open').to.equal(fdsBefore)
  })

  it('a sync of one file written since the last is an fdatasync of that file, not a syncfs', () => {
    const image = counted()
    const [ino] = makeFiles(image, 1)
    image.sync() // the new file and its new directories: a syncfs
    calls = []
    image.write(ino, Buffer.alloc(100, 7), 4096)
    image.fsync(ino)
    const log = calls.findIndex(c => isLog(c))
    expect(calls.slice(0, log).filter(c => c === 'syncfs' || isContent(c))).to.have.length(1)
    expect(calls[0]).to.match(/\/data\/[0-9a-f]{2}\/\d+$/)
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
