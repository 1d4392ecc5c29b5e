/**
 * When content files are fdatasynced (contents.ts, issue 18) without syncfs (where the addon is
 * missing; content-syncfs.test.ts has the path with it): a content file evicted from the
 * descriptor cache is not synced on the JS thread but in the libuv pool, and a sync (fsync, the
 * commit) still fdatasyncs every content file written since the last one, and not yet synced by
 * the pool, before the write-ahead log. The fdatasync calls are counted on node:fs itself (the
 * storage layer calls them through it), each with the path of its descriptor.
 */
import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {CONTENT_FDS} from '../../../src/storage/debug.js'
import {INODE} from '../../../src/storage/format.js'
import {Image, ROOT_INO} from '../../../src/storage/index.js'
import {makeFiles} from '../../helpers/content-files.js'
import {inode64} from '../fsck/helpers.js'

/** Descriptors the cache keeps open. */
const CACHED = CONTENT_FDS

interface SyncEvent {
  /** `sync`: fdatasyncSync returned (JS thread); `pool`: a pool fdatasync ended, successfully. */
  kind: 'sync' | 'pool'
  path: string
}

/** The image syncs file by file, as without the addon. */
function fileByFile(image: Image): Image {
  image.internals().contents.sync.syncfs = undefined
  return image
}

describe('storage: syncing content files one by one (no syncfs)', () => {
  let dir: string
  let events: SyncEvent[]
  /** Paths whose pool fdatasync was asked for (at the call). */
  let poolStarted: string[]
  let poolErrors: Error[]
  /** Pool fdatasyncs that ended, successfully or not. */
  let poolEnded: number
  /** The descriptor of each fdatasync, pool and JS thread, in call order. */
  let fdsUsed: Array<{kind: 'sync' | 'pool'; fd: number; path: string}>
  /** The next pool fdatasyncs fail with EIO (without syncing), as a host I/O error would. */
  let failPool: number
  /** The next fdatasyncs of content files on the JS thread fail with EIO (without syncing). */
  let failSync: number
  const fdatasyncSync = fs.fdatasyncSync
  const fdatasync = fs.fdatasync

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-content-sync-'))
    events = []
    poolStarted = []
    poolErrors = []
    poolEnded = 0
    fdsUsed = []
    failPool = 0
    failSync = 0
    const where = (fd: number): string => fs.readlinkSync(`/proc/self/fd/${fd}`)
    fs.fdatasyncSync = (fd: number): void => {
      const at = where(fd)
      fdsUsed.push({kind: 'sync', fd, path: at})
      if (failSync > 0 && isContent(at)) {
        failSync--
        throw Object.assign(new Error('EIO: i/o error, fdatasync'), {code: 'EIO'})
      }

      fdatasyncSync(fd)
      events.push({kind: 'sync', path: at})
    }

    fs.fdatasync = ((fd: number, cb: (error: NodeJS.ErrnoException | null) => void): void => {
      const at = where(fd)
      poolStarted.push(at)
      fdsUsed.push({kind: 'pool', fd, path: at})
      if (failPool > 0) {
        failPool--
        setImmediate(() => {
          const error = Object.assign(new Error('EIO: i/o error, fdatasync'), {code: 'EIO'})
          poolErrors.push(error)
          poolEnded++
          cb(error)
        })
        return
      }

      fdatasync(fd, error => {
        if (error === null) events.push({kind: 'pool', path: at})
        else poolErrors.push(error)
        poolEnded++
        cb(error)
      })
    }) as typeof fs.fdatasync
  })

  afterEach(() => {
    fs.fdatasyncSync = fdatasyncSync
    fs.fdatasync = fdatasync
    fs.rmSync(dir, {recursive: true, force: true})
  })

  /** The content file of inode `ino`, as /proc/self/fd shows it. */
  const content = (image: Image, ino: number): string =>
    path.join(fs.realpathSync(dir), path.relative(dir, image.internals().contents.pathOf(inode64(image.internals(), ino % 2 ** 32, INODE.OFF.dataId))))
  const isContent = (p: string): boolean => p.startsWith(path.join(fs.realpathSync(dir), 'data') + '/')
  /** The events before the log's fdatasync (there must be one). */
  function beforeLog(): SyncEvent[] {
    const w = events.findIndex(e => e.kind === 'sync' && e.path.endsWith('/wal.log'))
    expect(w, 'the log was synced').to.be.greaterThan(-1)
    return events.slice(0, w)
  }

  /** Until every pool fdatasync asked for has ended (I/O completion, not a timer). */
  async function flushesDone(): Promise<void> {
    while (poolEnded < poolStarted.length) await new Promise(resolve => setImmediate(resolve))
    expect(poolErrors).to.deep.equal([])
  }

  it('an eviction syncs nothing on the JS thread; the next sync covers every file before the log', async () => {
    const fdsBefore = fs.readdirSync('/proc/self/fd').length
    const image = fileByFile(Image.create(dir, {}))
    image.sync()
    events = []
    const inos = makeFiles(image, CACHED + 100)
    const paths = inos.map(ino => content(image, ino))
    // 100 evictions, each of a file written since the last sync: all flushed in the pool.
    expect(events.filter(e => e.kind === 'sync' && isContent(e.path))).to.deep.equal([])
    expect(poolStarted).to.deep.equal(paths.slice(0, 100))

    // The commit comes before any flush has ended: it syncs each file itself, then the log.
    image.sync()
    const synced = new Set(
      beforeLog()
        .filter(e => e.kind === 'sync')
        .map(e => e.path),
    )
    expect(paths.filter(p => !synced.has(p))).to.deep.equal([])

    // Then nothing is left to sync: the flushes end, and a second sync fdatasyncs no content file.
    await flushesDone()
    events = []
    image.sync()
    expect(events.filter(e => isContent(e.path))).to.deep.equal([])
    image.close()
    await flushesDone()
    expect(fs.readdirSync('/proc/self/fd').length, 'descriptors left open').to.equal(fdsBefore)
  })

  it('a file the pool has flushed is not synced again; the ones still cached are, before the log', async () => {
    const image = fileByFile(Image.create(dir, {}))
    image.sync()
    const inos = makeFiles(image, CACHED + 50)
    const paths = inos.map(ino => content(image, ino))
    await flushesDone()
    expect(
      events
        .filter(e => e.kind === 'pool')
        .map(e => e.path)
        .sort(),
    ).to.deep.equal(paths.slice(0, 50).sort())
    events = []
    image.fsync(inos[0])
    const synced = beforeLog().map(e => e.path)
    expect(synced.filter(p => isContent(p)).sort()).to.deep.equal(paths.slice(50).sort())
    image.close()
  })

  /** A new image whose first file is evicted (its flush starts) and written again while that flush may run. */
  function rewrittenDuringFlush(): {image: Image; first: number; firstPath: string} {
    const image = fileByFile(Image.create(dir, {}))
    image.sync()
    const [first] = makeFiles(image, 1)
    const firstPath = content(image, first)
    makeFiles(image, CACHED, 1) // evicts `first`: its flush starts
    expect(poolStarted).to.deep.equal([firstPath])
    image.write(first, Buffer.alloc(4096, 2), 4096) // back into the cache, written again
    return {image, first, firstPath}
  }

  it('a file written again while its flush runs is synced by the next fsync, after that flush ended', async () => {
    const {image, first, firstPath} = rewrittenDuringFlush()
    await flushesDone() // that flush ended: it may not have seen the second write
    events = []
    image.fsync(first)
    expect(beforeLog().filter(e => e.path === firstPath)).to.deep.equal([{kind: 'sync', path: firstPath}])
    image.close()
  })

  it('a file evicted again after being written during its flush is opened and synced by the next sync', async () => {
    const {image, firstPath} = rewrittenDuringFlush()
    makeFiles(image, CACHED, 1000) // evicted again; the running flush closes its descriptor
    await flushesDone()
    expect(poolStarted.filter(p => p === firstPath)).to.have.length(1)
    events = []
    image.sync()
    expect(beforeLog().filter(e => e.path === firstPath)).to.deep.equal([{kind: 'sync', path: firstPath}])
    image.close()
  })

  it('past the flushes the pool may run at once, an eviction syncs on the JS thread', () => {
    const image = fileByFile(Image.create(dir, {}))
    image.internals().contents.sync.maxInFlight = 0
    image.sync()
    events = []
    const inos = makeFiles(image, CACHED + 10)
    expect(poolStarted).to.deep.equal([])
    const synced = events.filter(e => e.kind === 'sync' && isContent(e.path)).map(e => e.path)
    expect(synced).to.deep.equal(inos.slice(0, 10).map(ino => content(image, ino)))
    image.close()
  })

  it('the pool flushes through a descriptor of its own, so a sync meanwhile is on another (each is told of an I/O error)', () => {
    const image = fileByFile(Image.create(dir, {}))
    image.sync()
    const [first] = makeFiles(image, CACHED + 1)
    const firstPath = content(image, first)
    const pool = fdsUsed.filter(u => u.kind === 'pool' && u.path === firstPath)
    expect(pool).to.have.length(1)
    image.sync() // before that flush has ended
    const sync = fdsUsed.filter(u => u.kind === 'sync' && u.path === firstPath)
    expect(sync).to.have.length(1)
    expect(sync[0].fd).to.not.equal(pool[0].fd)
    image.close()
  })

  it('a pool flush that fails makes every later sync fail, naming the content file; the log is not synced over it', async () => {
    const fdsBefore = fs.readdirSync('/proc/self/fd').length
    const image = fileByFile(Image.create(dir, {}))
    image.sync()
    failPool = 1
    const [first] = makeFiles(image, CACHED + 1)
    const firstPath = content(image, first)
    while (poolEnded < poolStarted.length) await new Promise(resolve => setImmediate(resolve))
    expect(poolErrors).to.have.length(1)
    for (let i = 0; i < 2; i++) {
      events = []
      expect(() => image.sync()).to.throw(`fdatasync of content file ${path.join(dir, path.relative(fs.realpathSync(dir), firstPath))}: EIO`)
      expect(
        events.filter(e => e.path.endsWith('/wal.log')),
        'the log synced',
      ).to.deep.equal([])
    }

    expect(() => image.close()).to.throw(/EIO/)
    expect(fs.readdirSync('/proc/self/fd').length, 'descriptors left open').to.equal(fdsBefore)
  })

  it('a pool flush that fails after the log was synced still fails an fsync of a directory that has nothing new to sync', async () => {
    const image = fileByFile(Image.create(dir, {}))
    image.sync()
    failPool = 1
    makeFiles(image, CACHED + 1)
    // Synced before the flush's end can be seen (it comes on a later turn of the event loop).
    image.sync()
    while (poolEnded < poolStarted.length) await new Promise(resolve => setImmediate(resolve))
    expect(poolErrors).to.have.length(1)
    expect(() => image.sync(true)).to.throw(/EIO/)
    expect(() => image.close()).to.throw(/EIO/)
  })

  it('an fdatasync on the JS thread that fails makes every later sync fail, though a retry would succeed', () => {
    const image = fileByFile(Image.create(dir, {}))
    image.sync()
    makeFiles(image, 2)
    failSync = 1
    expect(() => image.sync()).to.throw(/^fdatasync of content file .*: EIO/)
    events = []
    expect(() => image.sync(), 'the retry').to.throw(/EIO/)
    expect(
      events.filter(e => e.path.endsWith('/wal.log')),
      'the log synced',
    ).to.deep.equal([])
    expect(() => image.close()).to.throw(/EIO/)
  })

  it('an unlinked file whose flush runs is emptied as a spare, removed at close, and every descriptor is closed', async () => {
    const fdsBefore = fs.readdirSync('/proc/self/fd').length
    const image = fileByFile(Image.create(dir, {}))
    const inos = makeFiles(image, CACHED + 20)
    const gone = content(image, inos[0])
    image.unlink(ROOT_INO, 'f0')
    image.sync() // applies the removal while the flush may still run
    expect(fs.statSync(gone).size, 'the spare is empty').to.equal(0)
    image.close()
    expect(fs.existsSync(gone), 'the spare after close').to.equal(false)
    await flushesDone()
    expect(fs.readdirSync('/proc/self/fd').length, 'descriptors left open').to.equal(fdsBefore)
  })
})
