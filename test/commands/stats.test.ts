/** razorfs stats: the table (colours only on a terminal), --json, errors, a live image. */
import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import path from 'node:path'

import {Image, ROOT_INO} from '../../src/storage/index.js'
import {RUN_JS, hashTree, lines, runCli, stackLines, tempDir} from '../helpers/cli.js'
import {buildFixture} from '../unit/inspect/fixture.js'
import {holdOpen} from './dump.test.js'

const ANSI = /\u001B\[[0-9;]*m/

interface Stats {
  dataDir: string
  uuid: string
  inodes: Record<string, number>
  bytes: {apparent: number; stored: number; contentFiles: number}
  names: {entries: number; interned: number; dedupRatio: number; heapBytes: number}
  reclaimable: {inodeRecords: number; entryRecords: number; stringBytes: number; bytes: number}
  log: {fileBytes: number; cycleBytes: number; transactions: number; tornBytes: number}
  checkpoint: {generation: number; lsn: number; time: string}
  clean: boolean
  live: {locked: boolean; pid: number | null}
  largestDirectories: Array<{ino: number; entries: number; path: string}>
}

describe('razorfs stats', () => {
  let tmp: ReturnType<typeof tempDir>
  let image: string

  before(() => {
    tmp = tempDir()
    image = path.join(tmp.dir, 'image')
    buildFixture(image)
  })
  after(() => tmp.remove())

  it('--json: counts by type, bytes, names, reclaimable space, log, checkpoint, clean, largest directories', () => {
    // Free some records so that there is something to reclaim.
    const rw = Image.open(image)
    const doomed = rw.mknod(ROOT_INO, 'doomed', {mode: 0o040755, uid: 0, gid: 0}).ino
    rw.mknod(doomed, 'a rather long name that goes to strings.dat, not inline', {mode: 0o100644, uid: 0, gid: 0})
    rw.unlink(doomed, 'a rather long name that goes to strings.dat, not inline')
    rw.rmdir(ROOT_INO, 'doomed')
    rw.close()

    const r = runCli(['stats', '--json', '--data-dir', image])
    expect(r.status, r.stderr).to.equal(0)
    const s = JSON.parse(r.stdout) as Stats
    expect(s.dataDir).to.equal(image)
    expect(s.inodes).to.deep.include({files: 14, directories: 9, symlinks: 2, fifos: 1, sockets: 1, charDevices: 1, blockDevices: 1, orphans: 0})
    expect(s.inodes.used).to.equal(14 + 9 + 2 + 4)
    expect(s.inodes.capacity).to.be.at.least(s.inodes.used)
    expect(s.bytes.apparent).to.equal(15 + 10 + (5 * 1024 * 1024 + 3 + 20) + (3 * 1024 * 1024 + 17) + 100_000 + 4)
    expect(s.bytes.stored)
      .to.be.greaterThan(3 * 1024 * 1024)
      .and.lessThan(s.bytes.apparent)
    expect(s.bytes.contentFiles).to.equal(5)
    expect(s.names.entries).to.equal(31)
    expect(s.names.interned).to.be.greaterThan(20)
    expect(s.names.dedupRatio).to.be.closeTo(s.names.entries / s.names.interned, 0.001)
    expect(s.reclaimable.inodeRecords).to.equal(2)
    expect(s.reclaimable.entryRecords).to.equal(2)
    expect(s.reclaimable.stringBytes).to.be.greaterThan(0)
    expect(s.reclaimable.bytes).to.equal(2 * 128 + 2 * 64 + s.reclaimable.stringBytes)
    expect(s.log.fileBytes).to.be.greaterThan(0)
    expect(s.log.transactions).to.equal(0)
    expect(s.checkpoint.generation).to.be.greaterThan(0)
    expect(Date.parse(s.checkpoint.time)).to.be.greaterThan(Date.now() - 3_600_000)
    expect(s.clean).to.equal(true)
    expect(s.live).to.deep.equal({locked: false, pid: null})
    expect(s.largestDirectories.map(d => d.entries)).to.deep.equal([7, 7, 7, 6, 1])
    expect(s.largestDirectories.slice(0, 4).map(d => d.path)).to.deep.equal(['/', '/odd names', '/special', '/big'])
    expect(s.largestDirectories[4].path).to.equal(`/${'0'.repeat(120)}`)
  })

  it('prints a table without colours in a pipe and with NO_COLOR', () => {
    const r = runCli(['stats', '--data-dir', image])
    expect(r.status, r.stderr).to.equal(0)
    expect(r.stdout).to.not.match(ANSI)
    expect(r.stdout).to.match(/^razorfs image [0-9a-f-]{36} \(format 1\)\ndata dir /)
    for (const label of [
      'inodes',
      'regular files',
      'directories',
      'symlinks',
      'apparent',
      'stored',
      'dedup ratio',
      'reclaimable',
      'wal.log',
      'last checkpoint',
      'clean',
      'largest directories',
    ]) {
      expect(r.stdout).to.include(label)
    }

    expect(r.stdout).to.match(/[┌│└]/)
    expect(r.stdout).to.include('not in use')
  })

  it('colours the table on a terminal', () => {
    // script(1) gives the command a pseudo-terminal.
    const command = `${process.execPath} ${RUN_JS} stats --data-dir ${image}`
    const env: NodeJS.ProcessEnv = {...process.env, TERM: 'xterm'}
    delete env.NO_COLOR
    delete env.FORCE_COLOR
    const tty = spawnSync('script', ['-qec', command, '/dev/null'], {encoding: 'utf8', env})
    expect(tty.status, tty.stderr).to.equal(0)
    expect(tty.stdout).to.match(ANSI)
    const noColor = spawnSync('script', ['-qec', command, '/dev/null'], {encoding: 'utf8', env: {...env, NO_COLOR: '1'}})
    expect(noColor.stdout).to.not.match(ANSI)
  })

  it('fails with one line when there is no image', () => {
    const r = runCli(['stats', '--data-dir', path.join(tmp.dir, 'nothing')])
    expect(r.status).to.equal(1)
    expect(r.stdout).to.equal('')
    expect(lines(r.stderr)).to.have.length(1)
    expect(r.stderr).to.match(/^razorfs: .*no such data directory/)
    expect(stackLines(r.stderr)).to.deep.equal([])
    const json = runCli(['stats', '--json', '--data-dir', path.join(tmp.dir, 'nothing')])
    expect(JSON.parse(json.stdout).error.code).to.equal('RZ_NO_IMAGE')
  })

  it('on a live image: reports the holder and uncheckpointed transactions, changes nothing', async () => {
    const live = path.join(tmp.dir, 'live')
    buildFixture(live)
    const writer = await holdOpen(live)
    try {
      const before = hashTree(live)
      const s = JSON.parse(runCli(['stats', '--json', '--data-dir', live]).stdout) as Stats
      expect(s.live).to.deep.equal({locked: true, pid: writer.child.pid})
      expect(s.clean).to.equal(false)
      expect(s.log.transactions).to.be.greaterThan(0)
      expect(s.inodes.files).to.equal(15)
      expect(hashTree(live)).to.deep.equal(before)
    } finally {
      await writer.stop()
    }
  })
})
