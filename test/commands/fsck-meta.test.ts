/**
 * `razorfs fsck --meta URL` from the command line, on a real server (test/helpers/pg.ts): the
 * clean line, exit codes of a check and a repair, the JSON report with the image's keys, a repair
 * refused while a session is live, and the one-line errors. The problems themselves are
 * test/unit/fsck/shared.test.ts's.
 */
import {expect} from 'chai'
import path from 'node:path'

import {PgVolume} from '../../src/storage/pg/volume.js'
import {ROOT_INO} from '../../src/storage/types.js'
import {lines, runCli, stackLines, tempDir} from '../helpers/cli.js'
import {sql, useSchemas} from '../helpers/pg.js'

describe('razorfs fsck --meta', function () {
  this.timeout(120_000)
  const fresh = useSchemas()
  const tmp = tempDir('razorfs-fsck-meta-')
  after(() => tmp.remove())

  const refused = (args: string[], text: RegExp, status: number): void => {
    const r = runCli(args)
    expect(r.status, r.stderr).to.equal(status)
    expect(lines(r.stderr), r.stderr).to.have.length(1)
    expect(r.stderr.trim()).to.match(text)
    expect(stackLines(r.stderr)).to.deep.equal([])
  }

  it('says clean, finds (exit 4) and repairs (exit 1) a problem, refuses a repair while a session is live (exit 8)', async () => {
    const url = fresh()
    const v = PgVolume.create(url)
    let file: number
    try {
      file = v.mknod(ROOT_INO, 'f', {mode: 0o100644, uid: 0, gid: 0}).ino
      v.write(file, Buffer.from('kept'), 0)
    } finally {
      v.close()
    }

    const clean = runCli(['fsck', '-n', '--meta', url])
    expect(clean.status, clean.stderr).to.equal(0)
    expect(clean.stdout).to.equal('razorfs: clean, 2 inodes, 1 entries\n')

    await sql(url, `UPDATE inodes SET nlink = 3 WHERE ino = ${file}`)
    const dry = runCli(['fsck', '-fn', '--meta', url])
    expect(dry.status, dry.stderr).to.equal(4)
    expect(dry.stdout).to.include(`Inode ${file} (regular file) has link count 3, counted 1. Fix? no\n`)
    expect(dry.stdout).to.include("razorfs: ***** VOLUME HAS ERRORS: run 'razorfs fsck -y' to repair them *****")

    const live = PgVolume.open(url)
    try {
      refused(['fsck', '-fy', '--meta', url], /^razorfs: .*: in use by 1 live session \(\S+ pid \d+\); repairs need every client gone/, 8)
      expect(runCli(['fsck', '-fn', '--meta', url]).status).to.equal(4)
    } finally {
      live.close()
    }

    const json = runCli(['fsck', '-fp', '--json', '--meta', url])
    expect(json.status, json.stderr).to.equal(1)
    const report = JSON.parse(json.stdout) as Record<string, unknown>
    const image = path.join(tmp.dir, 'image')
    expect(runCli(['init', '--data-dir', image]).status).to.equal(0)
    const local = JSON.parse(runCli(['fsck', '-fn', '--json', '--data-dir', image]).stdout) as Record<string, unknown>
    expect(Object.keys(report)).to.include.members(Object.keys(local))
    expect(Object.keys(report.counts as object)).to.deep.equal(Object.keys(local.counts as object))
    expect(report).to.include({dir: null, clean: false, checked: 'full', exitCode: 1})
    expect(report.problems).to.deep.equal([
      {code: '0x040003', id: 'PR_4_BAD_NLINK', message: `Inode ${file} (regular file) has link count 3, counted 1.`, fixed: true},
    ])
    const again = runCli(['fsck', '-fn', '--meta', url])
    expect(again.status, again.stdout).to.equal(0)
    expect(again.stdout).to.equal('razorfs: clean, 2 inodes, 1 entries\n')
    expect(runCli(['dump', '--meta', url]).stdout).to.include(' f\n')
  })

  it('fails with one line: unreachable server, not a razorfs database, a newer format, no volume, PATH with --meta', async () => {
    refused(['fsck', '-n', '--meta', 'postgresql:///postgres?host=/nonexistent-razorfs-dir'], /^razorfs: .*: PostgreSQL server unreachable \(/, 8)
    const other = fresh()
    await sql(other, `CREATE SCHEMA ${new URL(other).searchParams.get('schema')}; CREATE TABLE mine (x int)`)
    refused(['fsck', '-fy', '--meta', other], /not a razorfs database \(schema '.*' holds other tables\)$/, 8)
    const newer = fresh()
    PgVolume.create(newer).close()
    await sql(newer, 'UPDATE meta SET format_version = 99')
    refused(['fsck', '-n', '--meta', newer], /schema of format version 99, newer than this razorfs reads \(2\): upgrade razorfs$/, 8)
    refused(['fsck', '-n', '--meta', fresh()], /no razorfs volume in schema/, 8)
    refused(['fsck', '-n', '--meta', newer, '/srv/rz'], /give PATH or --meta, not both/, 16)
  })
})
