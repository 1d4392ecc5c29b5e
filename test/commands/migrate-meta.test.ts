/**
 * `razorfs migrate --meta URL` (issue 20): the C RAZORFS fixtures copied into a new volume on a
 * real PostgreSQL server (test/helpers/pg.ts), read back through the storage API and `dump --meta
 * --json` against each fixture's manifest; --dry-run, a damaged source and the refusals write
 * nothing; --skip-bad, --remove-source, --json; a copy that fails to verify is rolled back and
 * leaves the volume empty. The CLI where its output and exit codes are the point, the engine
 * in-process elsewhere (a run of the CLI costs a second or two).
 */
import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'

import {migrate as migrateIn, MigrateError} from '../../src/migrate/migrate.js'
import {PgVolume} from '../../src/storage/pg/volume.js'
import {parsePgUrl} from '../../src/storage/pg/url.js'
import {ROOT_INO} from '../../src/storage/types.js'
import type {Volume} from '../../src/storage/volume.js'
import {lines, runCli, stackLines} from '../helpers/cli.js'
import {sql, useSchemas} from '../helpers/pg.js'
import {
  ALL_FIXTURES,
  DISK_FIXTURE_FILES,
  copyFixture,
  expectMatchesManifest,
  fixture,
  hostile,
  HOSTILE_LEFT_OUT,
  listVolume,
  type Listed,
  patch,
  readManifest,
  snapshot,
  tmp,
} from '../unit/migrate/helpers.js'

/** Env for every run: no autodetection of real places, no default WAL. */
const ENV = {RAZORFS_MIGRATE_SOURCES: '/nonexistent/a:/nonexistent/b', RAZORFS_MIGRATE_WAL: '/nonexistent/wal.log'}

function migrate(args: string[]) {
  return runCli(['migrate', ...args], ENV)
}

function listShared(url: string): Listed[] {
  const volume = PgVolume.open(url, {readOnly: true})
  try {
    return listVolume(volume)
  } finally {
    volume.close()
  }
}

function uuidOf(url: string): string {
  const volume = PgVolume.open(url, {readOnly: true})
  try {
    return volume.meta.uuid
  } finally {
    volume.close()
  }
}

/** The tables of the URL's schema: none where nothing was written. */
async function tables(url: string): Promise<string[]> {
  const r = await sql(url, 'SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1', [parsePgUrl(url).schema])
  return r.rows.map(row => row.tablename as string)
}

function expectOneErrorLine(result: ReturnType<typeof runCli>, status: number, re: RegExp): void {
  expect(result.status, result.stderr).to.equal(status)
  expect(lines(result.stderr), result.stderr).to.have.length(1)
  expect(result.stderr).to.match(/^razorfs: /)
  expect(result.stderr.trim()).to.match(re)
  expect(stackLines(result.stderr)).to.deep.equal([])
}

describe('razorfs migrate --meta: into a volume on PostgreSQL', function () {
  this.timeout(300_000)
  const fresh = useSchemas()

  it('disk: migrates and verifies; the volume matches the manifest through the storage API and dump --meta --json', () => {
    const f = fixture('disk')
    const url = fresh()
    const display = parsePgUrl(url).display
    const result = migrate(['--from', f.dir, '--meta', url, '--wal', f.wal])
    expect(result.status, result.stderr).to.equal(0)
    expect(result.stderr).to.equal('') // no progress bar in a pipe
    const rows = readManifest(f)
    expect(result.stdout).to.include(`Source: ${f.dir} (C RAZORFS disk layout)`)
    expect(result.stdout).to.include(
      `Migrated into ${display} (razorfs volume ${uuidOf(url)}): 5 directories (with the root), 8 files, 185,380 bytes; nothing skipped`,
    )
    expect(result.stdout).to.include(`Verified: ${rows.length} entries`)
    expect(result.stdout).to.include('The source was not changed')
    expectMatchesManifest(listShared(url), rows, 'disk (storage API)')

    // dump --meta --json: every path, with the manifest's type, size, mode and mtime.
    const dumped = runCli(['dump', '--meta', url, '--json'])
    expect(dumped.status, dumped.stderr).to.equal(0)
    const items = dumped.stdout
      .trim()
      .split('\n')
      .map(l => JSON.parse(l) as Record<string, unknown>)
      .filter(o => o.kind === 'inode')
    const byPath = new Map(items.map(o => [o.path as string, o]))
    expect([...byPath.keys()].sort()).to.deep.equal(rows.map(r => r.path).sort())
    for (const r of rows) {
      const o = byPath.get(r.path)!
      expect(o.type, r.path).to.equal(r.type)
      expect((o.mode as number) & 0o7777, r.path).to.equal(r.mode)
      if (r.type === 'file') expect(o.size, r.path).to.equal(r.size)
      if (r.mtime !== undefined) expect(o.mtimeSec, r.path).to.equal(r.mtime)
    }
  })

  for (const f of ALL_FIXTURES.filter(x => x.name !== 'disk')) {
    it(`${f.name}: the volume matches the manifest (in-process)`, () => {
      const url = fresh()
      const report = migrateIn({from: f.dir, meta: url, env: ENV})
      expect(report.verified?.entries).to.equal(readManifest(f).length)
      expectMatchesManifest(listShared(url), readManifest(f), f.name)
    })
  }

  it('--dry-run writes nothing; a second run is refused without --force (the volume unchanged), --force replaces', async () => {
    const url = fresh()
    const display = parsePgUrl(url).display
    const f = fixture('disk')
    const dry = migrate(['--from', f.dir, '--meta', url, '--dry-run'])
    expect(dry.status, dry.stderr).to.equal(0)
    expect(dry.stdout).to.include(`Would migrate into ${display}: 5 directories (with the root), 8 files`)
    expect(dry.stdout).to.include('Dry run: nothing was written.')
    expect(await tables(url)).to.deep.equal([])

    migrateIn({from: f.dir, meta: url, env: ENV})
    const uuid = uuidOf(url)
    const before = listShared(url)
    const shm = fixture('shm').dir
    const dryAgain = migrate(['--from', shm, '--meta', url, '--dry-run'])
    expect(dryAgain.status, dryAgain.stderr).to.equal(0)
    expect(dryAgain.stdout).to.include(`A real run would refuse: ${display} already holds a razorfs volume; use --force to replace it`)
    const dryForce = migrateIn({from: shm, meta: url, env: ENV, dryRun: true, force: true})
    expect(dryForce.target).to.include({heldImage: true, replaced: false})
    expect(dryForce.target.refusal).to.equal(undefined)
    expectOneErrorLine(
      migrate(['--from', shm, '--meta', url]),
      1,
      /already holds a razorfs volume; use --force to replace it \(its contents are lost\); nothing was written$/,
    )
    expect(listShared(url)).to.deep.equal(before)
    expect(uuidOf(url)).to.equal(uuid)

    const forced = migrate(['--from', shm, '--meta', url, '--force', '--json'])
    expect(forced.status, forced.stderr).to.equal(0)
    const report = JSON.parse(forced.stdout)
    expect(report.target).to.include({dataDir: null, meta: display, existed: true, heldImage: true, replaced: true})
    expect(report.target.uuid).to.not.equal(uuid)
    expect(report.verified).to.deep.equal({entries: 13, files: 8, bytes: 185_380})
    expectMatchesManifest(listShared(url), readManifest(fixture('shm')), 'after --force')
  })

  it('a damaged source, a schema of other tables, --data-dir, a server out of reach: one line, nothing written', async () => {
    const t = tmp()
    try {
      const url = fresh()
      const bad = copyFixture(fixture('disk'), path.join(t.dir, 'bad'))
      patch(path.join(bad, 'nodes.dat'), 0, Buffer.from('XXXX'))
      expectOneErrorLine(migrate(['--from', bad, '--meta', url]), 1, /the source is damaged: .*nodes\.dat: bad magic 0x58585858.*nothing was written$/)
      expect(() => migrateIn({from: hostile(path.join(t.dir, 'hostile')), meta: url, env: ENV}))
        .to.throw(MigrateError, /the source has 3 bad entries .*nothing was written\. Use --skip-bad/)
        .with.property('code', 'MIGRATE_BAD_SOURCE')
      expect(await tables(url)).to.deep.equal([])

      const other = fresh()
      const schema = parsePgUrl(other).schema
      await sql(other, `CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.theirs (x int)`)
      expectOneErrorLine(
        migrate(['--from', fixture('disk').dir, '--meta', other, '--force']),
        1,
        /holds tables that are not a razorfs volume.*nothing was written$/,
      )
      expect(await tables(other)).to.deep.equal(['theirs'])

      expectOneErrorLine(migrate(['--from', fixture('disk').dir, '--meta', url, '--data-dir', t.dir]), 16, /cannot also be provided/)
      expectOneErrorLine(
        migrate(['--from', fixture('disk').dir, '--meta', 'postgresql:///postgres?host=/nonexistent-razorfs-dir']),
        1,
        /PostgreSQL server unreachable.*nothing was written$/,
      )
      expect(await tables(url)).to.deep.equal([])
    } finally {
      t.remove()
    }
  })

  it('--skip-bad migrates the rest; --remove-source removes the source only after a verified copy', () => {
    const t = tmp()
    try {
      const bad = hostile(path.join(t.dir, 'bad'))
      const badBefore = snapshot(bad)
      const url = fresh()
      const skipped = migrate(['--from', bad, '--meta', url, '--skip-bad', '--remove-source'])
      expect(skipped.status, skipped.stderr).to.equal(0)
      expect(skipped.stdout).to.include('Skipped (3):')
      expect(skipped.stdout).to.match(/3 bad entries skipped \(and 2 below them\)/)
      expect(skipped.stdout).to.include('The source was not removed: 3 bad entries were skipped')
      expect(snapshot(bad)).to.deep.equal(badBefore)
      const rows = readManifest(fixture('disk')).filter(r => !HOSTILE_LEFT_OUT.includes(r.path))
      expectMatchesManifest(listShared(url), rows, 'skip-bad')

      const good = copyFixture(fixture('disk'), path.join(t.dir, 'good'))
      const done = migrateIn({from: good, meta: fresh(), removeSource: true, env: ENV})
      expect(done.sourceRemoval.removed.map(p => path.basename(p)).sort()).to.deep.equal([...DISK_FIXTURE_FILES, 'good'].sort())
      expect(fs.existsSync(good)).to.equal(false)
    } finally {
      t.remove()
    }
  })

  it('a copy that does not verify is rolled back: the new volume is left empty and the source kept', () => {
    const t = tmp()
    try {
      const src = copyFixture(fixture('disk'), path.join(t.dir, 'src'))
      const before = snapshot(src)
      const url = fresh()
      const tamper = (volume: Volume): void => {
        const ino = volume.lookup(ROOT_INO, 'big.txt')
        const {mtime} = volume.getattr(ino)
        volume.write(ino, Buffer.from('!'), 500)
        volume.setattr(ino, {atime: mtime, mtime})
      }

      expect(() => migrateIn({from: src, meta: url, removeSource: true, env: ENV, afterWriteVolume: tamper})).to.throw(
        MigrateError,
        /^verification failed: \/big\.txt: sha256 [0-9a-f]{64}, expected 8a5d30db.*; the copy was rolled back: the volume at .* is left empty \(razorfs migrate --force --meta makes it again\); the source was not touched$/,
      )
      expect(snapshot(src)).to.deep.equal(before)
      const left = listShared(url)
      expect(left.map(l => l.path)).to.deep.equal(['/'])
    } finally {
      t.remove()
    }
  })
})
