/**
 * razorfs gc (alias compact), through bin/run.js: it gives back what stats calls reclaimable and
 * cuts wal.log to its minimum; every name, inode, attribute, xattr and content stays (fsck -fn
 * clean after); --dry-run changes no byte; a mounted image is refused, naming its mountpoint; an
 * image not closed cleanly is recovered first; killed (SIGKILL) at any point, the image reads the
 * same and the next read-write open finishes the swap; the progress bar shows on a terminal only.
 */
import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import type {GcReport} from '../../src/gc/compact.js'
import {Image, ROOT_INO} from '../../src/storage/index.js'
import {WAL_MIN_SIZE} from '../../src/storage/space.js'
import {hashTree, lines, runCli, runInPty, stackLines, tempDir} from '../helpers/cli.js'
import {mount, mountDirs} from '../helpers/mount.js'
import {S_IFDIR, S_IFREG, buildFixture, snapshot} from '../unit/inspect/fixture.js'

const KILLER = fileURLToPath(new URL('../helpers/gc-kill.js', import.meta.url))
const IMAGE_FILES = ['nodes.dat', 'entries.dat', 'entries.idx', 'strings.dat', 'strings.idx', 'wal.log']

/** The fixture (every file type, hard links, xattrs, odd names, ns times), then churn that leaves free records and heap bytes. */
function buildChurned(dir: string): void {
  buildFixture(dir)
  const image = Image.open(dir)
  try {
    const churn = image.mknod(ROOT_INO, 'churn', {mode: S_IFDIR | 0o755, uid: 0, gid: 0}).ino
    for (let i = 0; i < 1500; i++) {
      const f = image.mknod(churn, `a name long enough to live in strings.dat ${i}`, {mode: S_IFREG | 0o600, uid: 7, gid: 8}).ino
      image.setxattr(f, 'user.n', Buffer.from(`value ${i}`))
      if (i % 2 === 0) image.write(f, Buffer.from(`kept ${i}\n`), 0)
    }

    for (let i = 1; i < 1500; i += 2) image.unlink(churn, `a name long enough to live in strings.dat ${i}`)
    // A replaced xattr blob and a removed one free heap entries too.
    image.setxattr(ROOT_INO, 'user.root', Buffer.from('a new value for the root, longer than before'))
  } finally {
    image.close()
  }
}

function sizesOf(dir: string): Record<string, number> {
  return Object.fromEntries(IMAGE_FILES.map(name => [name, fs.statSync(path.join(dir, name)).size]))
}

function gcJson(dir: string, ...extra: string[]): GcReport {
  const r = runCli(['gc', '--json', '--data-dir', dir, ...extra])
  expect(r.status, r.stderr + r.stdout).to.equal(0)
  return JSON.parse(r.stdout) as GcReport
}

function statsReclaimable(dir: string): number {
  const r = runCli(['stats', '--json', '--data-dir', dir])
  expect(r.status, r.stderr).to.equal(0)
  return (JSON.parse(r.stdout) as {reclaimable: {bytes: number}}).reclaimable.bytes
}

function fsckClean(dir: string): void {
  const r = runCli(['fsck', '-fn', dir])
  expect(r.status, r.stdout + r.stderr).to.equal(0)
  expect(r.stdout).to.match(/^razorfs: clean, \d+ inodes, \d+ entries\n$/)
}

/** `dump --json` without what gc renumbers (inode numbers, slots and the record links). */
function dumpWithoutNumbers(dir: string): unknown[] {
  const r = runCli(['dump', '--json', '--data-dir', dir])
  expect(r.status, r.stderr).to.equal(0)
  return lines(r.stdout).map(line => {
    const o = JSON.parse(line) as Record<string, unknown>
    for (const k of ['ino', 'slot', 'gen', 'parent', 'dirent', 'dirHead', 'xattr', 'target', 'link']) delete o[k]
    return o
  })
}

describe('razorfs gc', function () {
  this.timeout(300_000)
  let tmp: ReturnType<typeof tempDir>
  let pristine: string
  let image: string

  before(() => {
    tmp = tempDir()
    pristine = path.join(tmp.dir, 'pristine')
    buildChurned(pristine)
  })
  after(() => tmp.remove())
  beforeEach(() => {
    image = path.join(tmp.dir, `image-${Math.random().toString(36).slice(2)}`)
    fs.cpSync(pristine, image, {recursive: true})
  })

  it('gives back the reclaimable space stats reports: files shrink, reclaimable is 0, contents identical, fsck -fn clean', () => {
    const before = snapshot(image)
    const dump = dumpWithoutNumbers(image)
    const reclaimable = statsReclaimable(image)
    expect(reclaimable).to.be.greaterThan(0)
    const sizes = sizesOf(image)

    const r = runCli(['gc', '--data-dir', image])
    expect(r.status, r.stderr).to.equal(0)
    expect(r.stderr).to.equal('')
    expect(lines(r.stdout)).to.have.length(1)
    expect(r.stdout).to.match(/^razorfs: gc gave back \d+\.\d (KiB|MiB) \(\d+\.\d MiB → \d+\.\d (KiB|MiB)\)\n$/)

    expect(statsReclaimable(image)).to.equal(0)
    const after = sizesOf(image)
    for (const name of ['nodes.dat', 'entries.dat', 'strings.dat']) expect(after[name], name).to.be.lessThan(sizes[name])
    for (const name of IMAGE_FILES) expect(after[name], name).to.be.at.most(sizes[name])
    expect(after['wal.log']).to.equal(WAL_MIN_SIZE)
    expect(snapshot(image)).to.deep.equal(before)
    expect(dumpWithoutNumbers(image)).to.deep.equal(dump)
    fsckClean(image)
    expect(fs.readdirSync(image).filter(n => n.startsWith('.'))).to.deep.equal([])

    // A second gc has nothing left to give back, and says so.
    const again = runCli(['compact', '--data-dir', image])
    expect(again.status, again.stderr).to.equal(0)
    expect(again.stdout).to.match(/^razorfs: gc: nothing to give back \(\d+\.\d MiB\)\n$/)
  })

  it('--json: the figures before and after, per file and in total; the alias compact is the same command', () => {
    const sizes = sizesOf(image)
    const report = gcJson(image)
    expect(report.dryRun).to.equal(false)
    expect(report.unchanged).to.equal(false)
    expect(report.before.files.map(f => f.name)).to.deep.equal(IMAGE_FILES)
    expect(Object.fromEntries(report.before.files.map(f => [f.name, f.bytes]))).to.deep.equal(sizes)
    expect(Object.fromEntries(report.after.files.map(f => [f.name, f.bytes]))).to.deep.equal(sizesOf(image))
    expect(report.before.totalBytes).to.equal(Object.values(sizes).reduce((a, b) => a + b, 0))
    expect(report.gaveBack).to.equal(report.before.totalBytes - report.after.totalBytes)
    expect(report.before.reclaimable.inodeRecords).to.be.at.least(750)
    expect(report.before.reclaimable.entryRecords).to.be.at.least(750)
    expect(report.before.reclaimable.stringBytes).to.be.greaterThan(0)
    expect(report.after.reclaimable).to.deep.equal({inodeRecords: 0, entryRecords: 0, stringBytes: 0, bytes: 0})
    const again = runCli(['compact', '--json', '--data-dir', image])
    expect(again.status).to.equal(0)
    expect((JSON.parse(again.stdout) as GcReport).unchanged).to.equal(true)
  })

  it('--dry-run changes no byte of the data dir and predicts exactly what gc then leaves', () => {
    const bytes = hashTree(image)
    const r = runCli(['gc', '--dry-run', '--data-dir', image])
    expect(r.status, r.stderr).to.equal(0)
    expect(r.stdout).to.match(/^razorfs: gc would give back \d+\.\d (KiB|MiB) \(/m)
    expect(r.stdout).to.match(/^ {2}nodes\.dat +\d/m)
    expect(r.stdout).to.match(/^ {2}total +\d/m)
    const dry = gcJson(image, '--dry-run')
    expect(hashTree(image)).to.deep.equal(bytes)
    expect(dry.dryRun).to.equal(true)
    const real = gcJson(image)
    expect(dry.before).to.deep.equal(real.before)
    expect(dry.after).to.deep.equal(real.after)
    expect(dry.gaveBack).to.equal(real.gaveBack)
  })

  it('an image not closed cleanly is recovered first, then compacted: what the log held is kept', () => {
    const rw = Image.open(image)
    const ino = rw.mknod(ROOT_INO, 'only in the log', {mode: S_IFREG | 0o640, uid: 1, gid: 2}).ino
    rw.write(ino, Buffer.from('logged\n'), 0)
    rw.unlink(ROOT_INO, 'plain.txt')
    rw.abandon() // what a crash leaves: the WAL holds these, the files do not
    const before = snapshot(image) // a read-only open replays the log in memory
    expect(before.has(Buffer.from('/only in the log').toString('hex'))).to.equal(true)

    const dry = gcJson(image, '--dry-run')
    expect(dry.notes.join()).to.match(/not closed cleanly: gc would recover it first/)
    const report = gcJson(image)
    expect(report.recovered).to.equal(true)
    expect(report.notes.join()).to.match(/not closed cleanly: recovered it first/)
    expect(snapshot(image)).to.deep.equal(before)
    fsckClean(image)
  })

  it('the log is cut back to its minimum at a clean close, and a big log from an earlier build is given back', () => {
    const rw = Image.open(image)
    for (let i = 0; i < 3000; i++) rw.setxattr(ROOT_INO, 'user.big', Buffer.alloc(2000, i & 0xff))
    expect(fs.statSync(path.join(image, 'wal.log')).size).to.be.greaterThan(4 * WAL_MIN_SIZE)
    rw.close()
    expect(fs.statSync(path.join(image, 'wal.log')).size).to.equal(WAL_MIN_SIZE)
    // What a build before this one left: a 12 MiB log after a clean unmount.
    fs.truncateSync(path.join(image, 'wal.log'), 12 * WAL_MIN_SIZE)
    const before = snapshot(image)
    const report = gcJson(image)
    expect(report.before.files.find(f => f.name === 'wal.log')!.bytes).to.equal(12 * WAL_MIN_SIZE)
    expect(report.after.files.find(f => f.name === 'wal.log')!.bytes).to.equal(WAL_MIN_SIZE)
    expect(snapshot(image)).to.deep.equal(before)
  })

  it('errors are one line: no image (exit 1), a bad flag (exit 16)', () => {
    const missing = runCli(['gc', '--data-dir', path.join(tmp.dir, 'nothing here')])
    expect(missing.status).to.equal(1)
    expect(lines(missing.stderr)).to.have.length(1)
    expect(missing.stderr).to.match(/^razorfs: .*nothing here: no such data directory/)
    expect(stackLines(missing.stderr)).to.deep.equal([])
    const bad = runCli(['gc', '--dry-runn', '--data-dir', image])
    expect(bad.status).to.equal(16)
  })

  it('a progress bar on a terminal, nothing on stderr in a pipe', () => {
    const r = runInPty(['gc', '--data-dir', image], {RAZORFS_PROGRESS_DELAY_MS: '0'})
    expect(r.status, r.output).to.equal(0)
    expect(r.output).to.match(/gc: copying the tree \[[#.]+\]/)
    expect(r.output).to.match(/razorfs: gc gave back/)
    fs.rmSync(image, {recursive: true})
    fs.cpSync(pristine, image, {recursive: true})
    const piped = runCli(['gc', '--data-dir', image], {RAZORFS_PROGRESS_DELAY_MS: '0'})
    expect(piped.status).to.equal(0)
    expect(piped.stderr).to.equal('')
  })

  describe('killed (SIGKILL) at any point: the old image or the new one, the same contents', () => {
    /**
     * The points of a gc, and which time the image here reaches each: building the tree (2
     * batches), the attributes (4 batches), the new image complete, the 12 renames of the swap (6
     * old files out, then 6 new ones in: before the first, the last out, the first in, the last
     * in), and the swap done.
     */
    const POINTS: Array<[string, number]> = [
      ['copy', 2],
      ['attributes', 2],
      ['built', 1],
      ['rename', 1],
      ['rename', 6],
      ['rename', 7],
      ['rename', 12],
      ['committed', 1],
    ]
    let expected: ReturnType<typeof snapshot>
    let expectedDump: unknown[]

    before(() => {
      expected = snapshot(pristine)
      expectedDump = dumpWithoutNumbers(pristine)
    })

    for (const [point, nth] of POINTS) {
      it(`at ${point} #${nth}`, () => {
        const killed = spawnSync(process.execPath, [KILLER, point, String(nth), 'gc', '--data-dir', image], {
          encoding: 'utf8',
          env: {...process.env, NO_COLOR: '1'},
        })
        expect(killed.signal, killed.stderr + killed.stdout).to.equal('SIGKILL')

        // Read-only commands read the same tree, whichever image is there (or half-moved in).
        expect(snapshot(image)).to.deep.equal(expected)
        expect(dumpWithoutNumbers(image)).to.deep.equal(expectedDump)

        // While the swap is half done, fsck -n says that a read-write open must finish it; fsck -p does.
        const check = runCli(['fsck', '-fn', image])
        if (point === 'rename') {
          expect(check.status, check.stdout + check.stderr).to.equal(8)
          expect(check.stdout + check.stderr).to.include('an interrupted gc, restore or migrate was putting in place')
          const preen = runCli(['fsck', '-p', image])
          expect(preen.status, preen.stdout + preen.stderr).to.equal(0)
          expect(preen.stdout).to.include('finished putting in place the image that an interrupted gc had completed')
          expect(snapshot(image)).to.deep.equal(expected)
        } else {
          expect(check.status, check.stdout + check.stderr).to.equal(0)
        }

        // The next read-write open (here: gc again) finishes or clears what the killed run left.
        const again = runCli(['gc', '--data-dir', image])
        expect(again.status, again.stderr).to.equal(0)
        expect(fs.readdirSync(image).filter(n => n.startsWith('.'))).to.deep.equal([])
        expect(snapshot(image)).to.deep.equal(expected)
        expect(statsReclaimable(image)).to.equal(0)
        fsckClean(image)
      })
    }
  })

  describe('a mounted image', () => {
    let dirs: ReturnType<typeof mountDirs>
    beforeEach(() => {
      dirs = mountDirs('razorfs-gc-')
    })
    afterEach(() => dirs.remove())

    it('is refused with one line naming the mountpoint and the server pid; after the unmount gc keeps what the mount wrote', async () => {
      const m = await mount({dataDir: dirs.dataDir, mnt: dirs.mnt})
      try {
        for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(dirs.mnt, `f${i}`), `contents ${i}\n`)
        for (let i = 0; i < 300; i += 2) fs.unlinkSync(path.join(dirs.mnt, `f${i}`))
        fs.linkSync(path.join(dirs.mnt, 'f1'), path.join(dirs.mnt, 'hard'))
        fs.symlinkSync('f3', path.join(dirs.mnt, 'sym'))
        fs.mkdirSync(path.join(dirs.mnt, 'sub'), {mode: 0o710})
        fs.utimesSync(path.join(dirs.mnt, 'f5'), new Date(1_000_000_000_123), new Date(1_100_000_000_456))

        const sizes = sizesOf(dirs.dataDir)
        const r = runCli(['gc', '--data-dir', dirs.dataDir])
        expect(r.status).to.equal(1)
        expect(lines(r.stderr)).to.have.length(1)
        expect(r.stderr).to.include(`is mounted on ${dirs.mnt} (server pid ${m.proc.pid})`)
        expect(r.stderr).to.include('gc works offline only')
        expect(sizesOf(dirs.dataDir)).to.deep.equal(sizes)
        // A dry run only reads: it works on a live image.
        expect(runCli(['gc', '--dry-run', '--data-dir', dirs.dataDir]).status).to.equal(0)
      } finally {
        expect(await m.stop()).to.equal(0)
      }

      const before = snapshot(dirs.dataDir)
      const report = gcJson(dirs.dataDir)
      expect(report.gaveBack).to.be.greaterThan(0)
      expect(snapshot(dirs.dataDir)).to.deep.equal(before)
      fsckClean(dirs.dataDir)

      const again = await mount({dataDir: dirs.dataDir, mnt: dirs.mnt})
      try {
        expect(fs.readFileSync(path.join(dirs.mnt, 'hard'), 'utf8')).to.equal('contents 1\n')
        expect(fs.readlinkSync(path.join(dirs.mnt, 'sym'))).to.equal('f3')
        expect(fs.statSync(path.join(dirs.mnt, 'f5')).mtimeMs).to.equal(1_100_000_000_456)
        fs.writeFileSync(path.join(dirs.mnt, 'after gc'), 'new\n')
        expect(fs.readdirSync(dirs.mnt)).to.have.length(150 + 4)
      } finally {
        expect(await again.stop()).to.equal(0)
      }
    })
  })
})
