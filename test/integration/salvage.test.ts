/**
 * Salvage, not deletion (issue 16). Each file of an image in turn (nodes.dat, entries.dat,
 * strings.dat, entries.idx, strings.idx, wal.log) is zeroed, cut to half or deleted, on
 * a copy of one image of 1,060 files whose sha256 are known; then `razorfs fsck -y` (the CLI), a
 * second fsck -fn that must find nothing (through the library, which the CLI runs: its own handling
 * is test/commands/fsck.test.ts's), and a mount (`razorfs mount -f`, a child process) through
 * which every one of the 1,060 files must be found with its exact bytes: under
 * its own path, or anywhere in /lost+found. Each case prints how many were found by name and how
 * many in /lost+found. A first case, with no damage, shows that the check finds every file by
 * name.
 *
 * The image (built through the storage API): 10 directories of 100 files of 100 to 3,099 bytes
 * (every tenth name is longer than the 30 bytes an entry keeps itself, so that strings.dat holds
 * the only whole copy). 990 are written before a checkpoint; 10 are made before it and written
 * after it (only the log holds their content file numbers and sizes); 60 more files are made and
 * written after it. Then the image is abandoned, as by a crash, so that damage to wal.log loses
 * transactions.
 *
 * "Cut to half" cuts a file to half of the bytes it holds: up to its last byte that is not zero.
 * Every image file ends with zeros allocated ahead of need (a reserve, and the log at least 768 KiB
 * past its current cycle: docs/DURABILITY.md, "Full disk"), and in an image this small half of a
 * file's length falls in those zeros: such a cut loses nothing but allocated space. Half of what a
 * file holds cuts half of its records, half of an index's buckets, and the log inside the cycle
 * after the checkpoint (checked before the case, so that no case passes for want of damage).
 *
 * What each file's loss may cost is written down in docs/DURABILITY.md ("Damaged image files");
 * the lower bounds below are those promises: the indexes are rebuilt from the tables (every file
 * keeps its name), every name of up to 30 bytes survives strings.dat, every file the checkpoint
 * holds whole survives wal.log, and the inodes whose record, or content file number and size, the
 * log holds survive nodes.dat.
 */
import {expect} from 'chai'
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {S_IFDIR, S_IFREG} from '../../src/storage/format.js'
import {Image, ROOT_INO} from '../../src/storage/index.js'
import {lastNonZero} from '../../src/fsck/bytes.js'
import {runFsck} from '../../src/fsck/run.js'
import {runCli} from '../helpers/cli.js'
import {cleanupMount, mount} from '../helpers/mount.js'
import {walEnd} from '../unit/fsck/helpers.js'

const DIRS = 10
/** Files written before the checkpoint, made before it and written after it, made after it. */
const CHECKPOINTED = 990
const WRITTEN_LATE = 10
const LOGGED = 60
const TOTAL = CHECKPOINTED + WRITTEN_LATE + LOGGED
const SHORT_NAMES = TOTAL - TOTAL / 10

interface Known {
  path: string
  sha: string
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')

/** The image, in `dir`; returns every file's path and sha256. */
function build(dir: string): Known[] {
  fs.mkdirSync(dir, {recursive: true})
  Image.create(dir, {capacity: 1200, uid: 0, gid: 0}).close()
  // A small log limit keeps wal.log short, so that the cycle after the last checkpoint fills
  // more than half of it.
  const img = Image.open(dir, {walLimit: 64 << 10})
  const known: Known[] = []
  const dirs: number[] = []
  for (let d = 0; d < DIRS; d++) dirs.push(img.mknod(ROOT_INO, `d${d}`, {mode: S_IFDIR | 0o755, uid: 0, gid: 0}).ino)
  const make = (i: number): number => {
    const name = i % 10 === 3 ? `a-long-file-name-past-the-inline-bytes-${i}` : `f${i}`
    known[i] = {path: `/d${i % DIRS}/${name}`, sha: ''}
    return img.mknod(dirs[i % DIRS], name, {mode: S_IFREG | 0o644, uid: 0, gid: 0}).ino
  }

  const write = (i: number, ino: number): void => {
    const bytes = Buffer.alloc(100 + ((i * 37) % 3000))
    for (let k = 0; k < bytes.length; k++) bytes[k] = (i * 31 + k * 7 + (k >> 8)) & 0xff
    bytes.writeUInt32LE(i, 0) // every file's bytes are its own
    img.write(ino, bytes, 0)
    known[i].sha = sha256(bytes)
  }

  for (let i = 0; i < CHECKPOINTED; i++) write(i, make(i))
  const late = Array.from({length: WRITTEN_LATE}, (_, k) => make(CHECKPOINTED + k))
  img.checkpoint()
  late.forEach((ino, k) => write(CHECKPOINTED + k, ino))
  for (let i = CHECKPOINTED + WRITTEN_LATE; i < TOTAL; i++) write(i, make(i))
  img.abandon()
  return known
}

type Damage = 'zeroed' | 'cut to half' | 'deleted'

/** Damage `file`; returns what was done. */
function damage(file: string, how: Damage): string {
  const size = fs.statSync(file).size
  if (how === 'zeroed') fs.writeFileSync(file, Buffer.alloc(size))
  else if (how === 'deleted') fs.rmSync(file)
  else {
    const bytes = fs.readFileSync(file)
    const held = lastNonZero(bytes, 0, bytes.length) + 1
    const cut = Math.floor(held / 2)
    // The log: the cut must fall inside the transactions since the checkpoint.
    if (path.basename(file) === 'wal.log') expect(walEnd(file), "the end of the log's current cycle").to.be.above(cut)
    fs.truncateSync(file, cut)
    return `${how} (${cut} of the ${held} bytes it holds; ${size} allocated)`
  }

  return how
}

/** Every regular file under `dir` (through the mount), by sha256. */
function shasUnder(dir: string, into: Set<string>): void {
  for (const entry of fs.readdirSync(dir, {withFileTypes: true})) {
    const p = path.join(dir, entry.name)
    if (entry.isDirectory()) shasUnder(p, into)
    else if (entry.isFile()) into.add(sha256(fs.readFileSync(p)))
  }
}

/** Where each known file is found through the mount at `mnt`. */
function find(mnt: string, known: Known[]): {byName: number; lostFound: number; missing: string[]} {
  const lost = new Set<string>()
  const lpf = path.join(mnt, 'lost+found')
  if (fs.existsSync(lpf)) shasUnder(lpf, lost)
  let byName = 0
  let lostFound = 0
  const missing: string[] = []
  for (const k of known) {
    let bytes: Buffer | undefined
    try {
      bytes = fs.readFileSync(path.join(mnt, k.path))
    } catch {
      bytes = undefined
    }

    if (bytes !== undefined && sha256(bytes) === k.sha) byName++
    else if (lost.has(k.sha)) lostFound++
    else missing.push(k.path)
  }

  return {byName, lostFound, missing}
}

const FILES = ['nodes.dat', 'entries.dat', 'strings.dat', 'entries.idx', 'strings.idx', 'wal.log']
const DAMAGES: Damage[] = ['zeroed', 'cut to half', 'deleted']
/** Files found by name at least, whatever the damage to the file (docs/DURABILITY.md). */
const AT_LEAST: Record<string, number> = {
  // The inodes the log holds whole, and those whose content file number and size it holds.
  'nodes.dat': LOGGED + WRITTEN_LATE,
  'entries.dat': 0,
  'strings.dat': SHORT_NAMES,
  'entries.idx': TOTAL,
  'strings.idx': TOTAL,
  'wal.log': CHECKPOINTED,
}

describe(`salvage: one image file zeroed, cut to half or deleted, then fsck -y and a mount (${TOTAL} files)`, function () {
  this.timeout(120_000)
  let root: string
  let pristine: string
  let known: Known[]
  let n = 0
  const mountpoints: string[] = []

  before(() => {
    root = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'salvage-'))
    pristine = path.join(root, 'pristine')
    known = build(pristine)
    expect(new Set(known.map(k => k.sha)).size).to.equal(TOTAL)
  })
  after(() => {
    for (const mnt of mountpoints) cleanupMount(mnt)
    fs.rmSync(root, {recursive: true, force: true})
  })

  const cases: Array<[string, Damage | undefined]> = [['no file', undefined]]
  for (const file of FILES) for (const how of DAMAGES) cases.push([file, how])

  for (const [file, how] of cases) {
    it(how === undefined ? 'no damage: every file by name' : `${file} ${how}`, async () => {
      const dir = path.join(root, `case-${++n}`)
      fs.cpSync(pristine, dir, {recursive: true})
      const done = how === undefined ? 'no damage' : `${file} ${damage(path.join(dir, file), how)}`

      const started = Date.now()
      const repair = runCli(['fsck', '-y', '--data-dir', dir])
      const seconds = (Date.now() - started) / 1000
      expect(repair.stderr).to.equal('')
      // 1: errors corrected; 0 only for the undamaged image (its log is replayed, nothing is wrong).
      expect(repair.status, repair.stdout.split('\n').slice(-4).join('\n')).to.equal(how === undefined ? 0 : 1)
      const again = runFsck({dir, mode: 'no', force: true})
      expect(
        again.problems.map(p => p.message),
        'second fsck -fn',
      ).to.deep.equal([])
      expect(again.exitCode).to.equal(0)

      const mnt = path.join(root, `mnt-${n}`)
      mountpoints.push(mnt)
      const m = await mount({dataDir: dir, mnt})
      let found: ReturnType<typeof find>
      try {
        found = find(mnt, known)
      } finally {
        expect(await m.stop(), m.output()).to.equal(0)
      }

      console.log(
        `      ${done}: ${found.byName} by name, ${found.lostFound} in /lost+found, ${found.missing.length} missing (fsck -y ${seconds.toFixed(1)} s)`,
      )
      expect(found.missing, `files whose bytes are nowhere: ${found.missing.slice(0, 10).join(', ')}`).to.deep.equal([])
      expect(found.byName + found.lostFound).to.equal(TOTAL)
      expect(found.byName, 'files found by name').to.be.at.least(how === undefined ? TOTAL : AT_LEAST[file])
    })
  }
})
