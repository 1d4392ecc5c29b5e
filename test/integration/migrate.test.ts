/**
 * `razorfs migrate` end to end (issue 6): the CLI as a child process on the C RAZORFS fixtures
 * (../shared/fixtures/c-razorfs), the result checked against each manifest through the storage
 * API and through a real mount; damaged sources, refusals, --dry-run, --skip-bad,
 * --remove-source, --json, source autodetection (with a real /dev/shm image).
 */
import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'

import {lines, runCli, stackLines} from '../helpers/cli.js'
import {mount, mountDirs} from '../helpers/mount.js'
import {
  ALL_FIXTURES,
  DISK_FIXTURE_FILES,
  IMAGE_FILES,
  copyFixture,
  expectMatchesManifest,
  fixture,
  hostile,
  HOSTILE_LEFT_OUT,
  listImage,
  listMount,
  patch,
  readManifest,
  readNode,
  type Row,
  setChild,
  setNode,
  snapshot,
  tmp,
} from '../unit/migrate/helpers.js'

/** Env for every run: no autodetection of real places, no default WAL. */
const ENV = {RAZORFS_MIGRATE_SOURCES: '/nonexistent/a:/nonexistent/b', RAZORFS_MIGRATE_WAL: '/nonexistent/wal.log'}

function migrate(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runCli(['migrate', ...args], {...ENV, ...env})
}

const N = (dir: string) => path.join(dir, 'nodes.dat')
const S = (dir: string) => path.join(dir, 'strings.dat')

/** The five damaged copies the issue names, made from the disk fixture. */
const DAMAGED: Array<{what: string; damage: (dir: string) => void; message: RegExp; report?: RegExp}> = [
  {what: 'bad magic', damage: d => patch(N(d), 0, Buffer.from('XXXX')), message: /the source is damaged: .*nodes\.dat: bad magic 0x58585858/},
  {
    what: 'an index out of range',
    damage: d => setChild(N(d), 1, 0, 4000),
    message: /1 bad entry \(\/docs\/\[child 0\]: child index 4000 is out of range/,
    report: /Bad entries \(1\):\n {2}\/docs\/\[child 0\]: child index 4000 is out of range \(slots 0 to 1023\)/,
  },
  {
    what: 'a cycle',
    damage: d => {
      setNode(N(d), 3, 'numChildren', 2)
      setChild(N(d), 3, 1, 0)
    },
    message: /1 bad entry \(\/docs\/notes\/deep\/"\/": cycle: child index 0 is \/, this directory or one of its ancestors\)/,
    report: /cycle: child index 0 is \/, this directory or one of its ancestors/,
  },
  {
    what: "a name with '/'",
    damage: d => patch(S(d), 4 + readNode(N(d), 4).nameOffset, Buffer.from('empty/ir')),
    message: /1 bad entry \(\/"empty\/ir": name contains '\/'\)/,
    report: /\/"empty\/ir" \(slot 4, inode 5\): name contains '\/'/,
  },
  {
    what: 'a truncated content file',
    damage: d => fs.truncateSync(path.join(d, 'file_9'), 1000),
    message: /\/big\.txt: content file file_9 is truncated: its header says 4869 payload bytes, it holds 968/,
  },
]

function expectOneErrorLine(stderr: string, re: RegExp): void {
  const err = lines(stderr)
  expect(err, stderr).to.have.length(1)
  expect(err[0]).to.match(/^razorfs: /)
  expect(err[0]).to.match(re)
  expect(err[0]).to.include('nothing was written')
  expect(stackLines(stderr)).to.deep.equal([])
}

describe('razorfs migrate: the fixtures', function () {
  this.timeout(300_000)

  for (const f of ALL_FIXTURES) {
    it(`${f.name}: migrates; the image matches the manifest through the storage API and through a real mount`, async () => {
      const dirs = mountDirs('razorfs-migrate-')
      try {
        const result = migrate(['--from', f.dir, '--data-dir', dirs.dataDir, '--wal', f.wal])
        expect(result.status, result.stderr).to.equal(0)
        expect(result.stderr).to.equal('') // no progress bar in a pipe
        const rows = readManifest(f)
        const dirsCount = rows.filter(r => r.type === 'dir').length
        const bytes = rows.reduce((n, r) => n + (r.type === 'file' ? r.size : 0), 0)
        expect(result.stdout).to.include(`Source: ${f.dir} (C RAZORFS ${f.layout} layout)`)
        expect(result.stdout).to.match(
          new RegExp(
            `Migrated into ${dirs.dataDir} \\(razorfs image [0-9a-f-]{36}\\): ${dirsCount} directories \\(with the root\\), ${rows.length - dirsCount} files, ${bytes.toLocaleString('en-US')} bytes; nothing skipped`,
          ),
        )
        expect(result.stdout).to.include(`Verified: ${rows.length} entries`)
        expect(result.stdout).to.include(`C WAL: ${f.wal} (8,388,736 bytes)`)

        expectMatchesManifest(listImage(dirs.dataDir), rows, `${f.name} (storage API)`)
        // No staging directory or leftovers beside the image (data/ is there even if empty: staging moves every name).
        expect(fs.readdirSync(dirs.dataDir).sort()).to.deep.equal(IMAGE_FILES)

        const m = await mount({dataDir: dirs.dataDir, mnt: dirs.mnt})
        try {
          expectMatchesManifest(listMount(dirs.mnt), rows, `${f.name} (mount)`)
        } finally {
          expect(await m.stop()).to.equal(0)
        }

        // The mount left it clean and still exact.
        expectMatchesManifest(listImage(dirs.dataDir), rows, `${f.name} (after the mount)`)
      } finally {
        dirs.remove()
      }
    })
  }

  it('disk-crashed: reports the stale header and migrates all 101 entries', () => {
    const t = tmp()
    try {
      const f = fixture('disk-crashed')
      const result = migrate(['--from', f.dir, '--data-dir', path.join(t.dir, 'data')])
      expect(result.status, result.stderr).to.equal(0)
      expect(result.stdout).to.match(/header used=1 next_inode=2 free_count=0; 101 live slots/)
      expect(result.stdout).to.match(/header says used=1, but slots up to 100 are live: the header is stale/)
      expect(listImage(path.join(t.dir, 'data'))).to.have.length(101)
    } finally {
      t.remove()
    }
  })

  it('--json: the whole report as one JSON document', () => {
    const t = tmp()
    try {
      const f = fixture('shm')
      const result = migrate(['--from', f.dir, '--data-dir', path.join(t.dir, 'data'), '--wal', f.wal, '--json'])
      expect(result.status, result.stderr).to.equal(0)
      const r = JSON.parse(result.stdout)
      expect(r.dryRun).to.equal(false)
      expect(r.source).to.include({dir: f.dir, layout: 'shm', chosenBy: 'from', contentFiles: 7})
      expect(r.source.nodes).to.include({capacity: 1024, used: 14, nextInode: 16, freeCount: 1, liveSlots: 13})
      expect(r.wal.report.header).to.include({entryCount: 20, crcOk: true})
      expect(r.summary).to.deep.equal({dirs: 5, files: 8, bytes: 185_380, skipped: 0, skippedBelow: 0})
      expect(r.verified).to.deep.equal({entries: 13, files: 8, bytes: 185_380})
      expect(r.target).to.include({existed: false, replaced: false})
      const rows = readManifest(f)
      expect(r.entries.map((e: {path: string}) => e.path)).to.deep.equal(rows.map((x: Row) => x.path).sort())
      const big = r.entries.find((e: {path: string}) => e.path === '/big.txt')
      expect(big).to.deep.equal({
        path: '/big.txt',
        type: 'file',
        mode: '644',
        size: 102_400,
        mtime: 1_795_526_548,
        sha256: rows.find(x => x.path === '/big.txt')!.sha256,
        cInode: 9,
        cSlot: 8,
        compressed: true,
      })
      expect(r.sourceRemoval).to.deep.equal({requested: false, removed: []})
    } finally {
      t.remove()
    }
  })
})

describe('razorfs migrate: damaged sources', function () {
  this.timeout(120_000)

  for (const c of DAMAGED) {
    it(`${c.what}: a clear error, nothing written (absent data dir stays absent)`, () => {
      const t = tmp()
      try {
        const src = copyFixture(fixture('disk'), path.join(t.dir, 'src'))
        c.damage(src)
        const before = snapshot(src)
        const dataDir = path.join(t.dir, 'nested', 'data')
        const result = migrate(['--from', src, '--data-dir', dataDir])
        expect(result.status).to.equal(1)
        expectOneErrorLine(result.stderr, c.message)
        if (c.report !== undefined) expect(result.stdout).to.match(c.report)
        expect(fs.existsSync(path.join(t.dir, 'nested'))).to.equal(false)
        expect(snapshot(src)).to.deep.equal(before)
      } finally {
        t.remove()
      }
    })
  }

  it('an existing data dir with an image stays byte-for-byte unchanged, even with --force', () => {
    const t = tmp()
    try {
      const dataDir = path.join(t.dir, 'data')
      expect(migrate(['--from', fixture('shm').dir, '--data-dir', dataDir]).status).to.equal(0)
      const before = snapshot(dataDir)
      for (const c of DAMAGED) {
        const src = copyFixture(fixture('disk'), path.join(t.dir, `src-${DAMAGED.indexOf(c)}`))
        c.damage(src)
        const result = migrate(['--from', src, '--data-dir', dataDir, '--force'])
        expect(result.status, c.what).to.equal(1)
        expect(snapshot(dataDir), c.what).to.deep.equal(before)
      }

      expectMatchesManifest(listImage(dataDir), readManifest(fixture('shm')), 'the old image')
    } finally {
      t.remove()
    }
  })

  it('--json: the error carries the report of bad entries', () => {
    const t = tmp()
    try {
      const src = copyFixture(fixture('disk'), path.join(t.dir, 'src'))
      DAMAGED[2].damage(src)
      const result = migrate(['--from', src, '--data-dir', path.join(t.dir, 'data'), '--json'])
      expect(result.status).to.equal(1)
      const out = JSON.parse(result.stdout)
      expect(out.error.code).to.equal('MIGRATE_BAD_SOURCE')
      expect(out.error.message).to.include('nothing was written')
      expect(out.error.report.skipped).to.have.length(1)
      expect(out.error.report.skipped[0]).to.include({slot: 0, inode: 1, below: 0})
      expect(out.error.report.skipped[0].reason).to.match(/^cycle/)
      expect(fs.existsSync(path.join(t.dir, 'data'))).to.equal(false)
    } finally {
      t.remove()
    }
  })

  it('a directory holding no C image, or a razorfs image, is named in the error', () => {
    const t = tmp()
    try {
      let result = migrate(['--from', t.dir, '--data-dir', path.join(t.dir, 'data')])
      expect(result.status).to.equal(1)
      expectOneErrorLine(result.stderr, /--from .*: no C RAZORFS image \(no nodes\.dat or razorfs_nodes\)/)

      const rz = path.join(t.dir, 'rz')
      expect(migrate(['--from', fixture('disk').dir, '--data-dir', rz]).status).to.equal(0)
      result = migrate(['--from', rz, '--data-dir', path.join(t.dir, 'data')])
      expect(result.status).to.equal(1)
      expectOneErrorLine(result.stderr, /holds a razorfs image .*not a C RAZORFS one: nothing to migrate/)
      expect(fs.existsSync(path.join(t.dir, 'data'))).to.equal(false)
    } finally {
      t.remove()
    }
  })
})

describe('razorfs migrate: the target', function () {
  this.timeout(120_000)

  it('migrating twice into one data dir is refused without --force; --force replaces the image', () => {
    const t = tmp()
    try {
      const dataDir = path.join(t.dir, 'data')
      expect(migrate(['--from', fixture('disk').dir, '--data-dir', dataDir]).status).to.equal(0)
      const before = snapshot(dataDir)

      const again = migrate(['--from', fixture('shm').dir, '--data-dir', dataDir])
      expect(again.status).to.equal(1)
      expectOneErrorLine(again.stderr, new RegExp(`the data dir ${dataDir} already holds a razorfs image; use --force to replace it`))
      expect(snapshot(dataDir)).to.deep.equal(before)

      const forced = migrate(['--from', fixture('shm').dir, '--data-dir', dataDir, '--force'])
      expect(forced.status, forced.stderr).to.equal(0)
      expect(forced.stdout).to.include('replacing the image that was there')
      // The shm fixture's mtimes differ from the disk fixture's: this is the new image.
      expectMatchesManifest(listImage(dataDir), readManifest(fixture('shm')), 'after --force')
      expect(fs.readdirSync(dataDir).filter(n => n.startsWith('.'))).to.deep.equal([])
    } finally {
      t.remove()
    }
  })

  it("refuses the source's own directory (root's default data dir is /var/lib/razorfs), writing nothing", () => {
    const t = tmp()
    try {
      const src = copyFixture(fixture('disk'), path.join(t.dir, 'var-lib-razorfs'))
      const before = snapshot(src)
      for (const [args, env] of [
        [['--data-dir', src], {}],
        [[], {RAZORFS_DATA_DIR: src}],
        [['--data-dir', `${src}/.`, '--force'], {}],
      ] as Array<[string[], NodeJS.ProcessEnv]>) {
        const result = migrate(['--from', src, ...args], env)
        expect(result.status).to.equal(1)
        expectOneErrorLine(
          result.stderr,
          /is the source's own directory: a razorfs image would overwrite the C files \(both use nodes\.dat and strings\.dat\)\. Choose another data dir with --data-dir, or move the C image away first/,
        )
        expect(snapshot(src)).to.deep.equal(before)
      }
    } finally {
      t.remove()
    }
  })

  it('refuses a data dir that holds a C image, even with --force', () => {
    const t = tmp()
    try {
      const other = copyFixture(fixture('disk'), path.join(t.dir, 'other'))
      const before = snapshot(other)
      const result = migrate(['--from', fixture('shm').dir, '--data-dir', other, '--force'])
      expect(result.status).to.equal(1)
      expectOneErrorLine(result.stderr, /holds a C RAZORFS image .*--force does not replace a C image/)
      expect(snapshot(other)).to.deep.equal(before)
    } finally {
      t.remove()
    }
  })

  it('--dry-run reads, reports what would be migrated and writes nothing', () => {
    const t = tmp()
    try {
      const dataDir = path.join(t.dir, 'data')
      const result = migrate(['--from', fixture('disk').dir, '--data-dir', dataDir, '--dry-run'])
      expect(result.status, result.stderr).to.equal(0)
      expect(result.stdout).to.include(`Would migrate into ${dataDir}: 5 directories (with the root), 8 files, 185,380 bytes; nothing skipped:`)
      expect(result.stdout).to.match(/^ {2}file 0644 +102400 2026-11-24T\d\d:\d\d:\d\dZ \/big\.txt$/m)
      expect(result.stdout).to.match(/^ {2}file 0600 +14 .* \/readme_moved\.txt$/m)
      expect(result.stdout).to.include('Dry run: nothing was written.')
      expect(fs.existsSync(dataDir)).to.equal(false)

      // Over an existing image: says a real run would refuse, changes nothing.
      expect(migrate(['--from', fixture('shm').dir, '--data-dir', dataDir]).status).to.equal(0)
      const before = snapshot(dataDir)
      const dry = migrate(['--from', fixture('disk').dir, '--data-dir', dataDir, '--dry-run', '--json'])
      expect(dry.status).to.equal(0)
      const r = JSON.parse(dry.stdout)
      expect(r.dryRun).to.equal(true)
      expect(r.entries).to.have.length(13)
      expect(r.target.refusal).to.match(/already holds a razorfs image/)
      expect(snapshot(dataDir)).to.deep.equal(before)
    } finally {
      t.remove()
    }
  })
})

describe('razorfs migrate: --skip-bad and --remove-source', function () {
  this.timeout(120_000)

  it('--skip-bad leaves out the bad entries and what hangs below them, lists each with its reason, migrates the rest', () => {
    const t = tmp()
    try {
      const src = hostile(path.join(t.dir, 'src'))
      const dataDir = path.join(t.dir, 'data')
      expect(migrate(['--from', src, '--data-dir', dataDir]).status).to.equal(1)
      expect(fs.existsSync(dataDir)).to.equal(false)

      const result = migrate(['--from', src, '--data-dir', dataDir, '--skip-bad'])
      expect(result.status, result.stderr).to.equal(0)
      expect(result.stdout).to.include('Skipped (3):')
      expect(result.stdout).to.include(`  /docs/"no/es" (slot 2, inode 3): name contains '/'; 2 entries below it left out with it`)
      expect(result.stdout).to.include('  /emptydir/[child 0]: child index 5000 is out of range (slots 0 to 1023)')
      expect(result.stdout).to.include('  /readme_moved.txt (slot 13, inode 15): content file file_15: its header says inode 14, its name says inode 15')
      expect(result.stdout).to.match(/3 bad entries skipped \(and 2 below them\)/)
      const rows = readManifest(fixture('disk')).filter(r => !HOSTILE_LEFT_OUT.includes(r.path))
      expectMatchesManifest(listImage(dataDir), rows, 'skip-bad')
    } finally {
      t.remove()
    }
  })

  it('--remove-source: removes the source only after a verified migration, and keeps it if anything was skipped', () => {
    const t = tmp()
    try {
      // A damaged source: nothing written, the source stays.
      const bad = hostile(path.join(t.dir, 'bad'))
      const badBefore = snapshot(bad)
      expect(migrate(['--from', bad, '--data-dir', path.join(t.dir, 'd1'), '--remove-source']).status).to.equal(1)
      expect(snapshot(bad)).to.deep.equal(badBefore)

      // Skipped entries exist only in the source: it stays.
      const kept = migrate(['--from', bad, '--data-dir', path.join(t.dir, 'd2'), '--remove-source', '--skip-bad'])
      expect(kept.status, kept.stderr).to.equal(0)
      expect(kept.stdout).to.include('The source was not removed: 3 bad entries were skipped')
      expect(snapshot(bad)).to.deep.equal(badBefore)

      // A refused target: the source stays.
      const good = copyFixture(fixture('disk'), path.join(t.dir, 'good'))
      fs.writeFileSync(path.join(good, 'unrelated.txt'), 'not part of the C image')
      const goodBefore = snapshot(good)
      const refused = migrate(['--from', good, '--data-dir', path.join(t.dir, 'd2'), '--remove-source'])
      expect(refused.status).to.equal(1)
      expect(snapshot(good)).to.deep.equal(goodBefore)

      // A good source: migrated, verified, then removed (its other files stay).
      const dataDir = path.join(t.dir, 'd3')
      const done = migrate(['--from', good, '--data-dir', dataDir, '--remove-source', '--json'])
      expect(done.status, done.stderr).to.equal(0)
      const r = JSON.parse(done.stdout)
      expect(r.verified.entries).to.equal(13)
      expect(r.sourceRemoval.removed.map((p: string) => path.basename(p)).sort()).to.deep.equal([...DISK_FIXTURE_FILES].sort())
      expect(fs.readdirSync(good)).to.deep.equal(['unrelated.txt'])
      expectMatchesManifest(listImage(dataDir), readManifest(fixture('disk')), 'after --remove-source')
    } finally {
      t.remove()
    }
  })

  it('--remove-source with --dry-run is a usage error', () => {
    const result = migrate(['--from', fixture('disk').dir, '--dry-run', '--remove-source'])
    expect(result.status).to.equal(16)
  })
})

describe('razorfs migrate: finding the source and the WAL', function () {
  this.timeout(120_000)

  it('without --from: says where it looked and what it found, migrates the first C image', () => {
    const t = tmp()
    try {
      const places = `${path.join(t.dir, 'none')}:${fixture('shm').dir}:${fixture('disk').dir}`
      const dataDir = path.join(t.dir, 'data')
      const result = migrate(['--data-dir', dataDir], {RAZORFS_MIGRATE_SOURCES: places})
      expect(result.status, result.stderr).to.equal(0)
      expect(result.stdout).to.include(
        `Looked for a C RAZORFS image in:\n  ${path.join(t.dir, 'none')}: no such directory\n` +
          `  ${fixture('shm').dir}: C RAZORFS shm layout: razorfs_nodes, razorfs_strings, 7 content files  <- migrating this one\n` +
          `  ${fixture('disk').dir}: C RAZORFS disk layout: nodes.dat, strings.dat, 7 content files\n`,
      )
      expectMatchesManifest(listImage(dataDir), readManifest(fixture('shm')), 'autodetected')
    } finally {
      t.remove()
    }
  })

  it('without --from and nothing found: the places and what each holds, exit 1', () => {
    const t = tmp()
    try {
      fs.mkdirSync(path.join(t.dir, 'empty'))
      const result = migrate(['--data-dir', path.join(t.dir, 'data')], {RAZORFS_MIGRATE_SOURCES: `${path.join(t.dir, 'empty')}:${path.join(t.dir, 'gone')}`})
      expect(result.status).to.equal(1)
      expectOneErrorLine(
        result.stderr,
        /no C RAZORFS image found \(looked in .*\/empty: no C RAZORFS image \(no nodes\.dat or razorfs_nodes\); .*\/gone: no such directory\); give its directory with --from/,
      )
      expect(fs.existsSync(path.join(t.dir, 'data'))).to.equal(false)
    } finally {
      t.remove()
    }
  })

  it('the WAL: read when found, never required; --wal naming no file is an error', () => {
    const t = tmp()
    try {
      const f = fixture('disk')
      const none = migrate(['--from', f.dir, '--data-dir', path.join(t.dir, 'a'), '--dry-run'])
      expect(none.status).to.equal(0)
      expect(none.stdout).to.include('C WAL: not found (looked at /nonexistent/wal.log')
      expect(none.stdout).to.include('it is not needed')

      const found = migrate(['--from', f.dir, '--data-dir', path.join(t.dir, 'a'), '--dry-run'], {RAZORFS_MIGRATE_WAL: f.wal})
      expect(found.stdout).to.include(`C WAL: ${f.wal} (8,388,736 bytes)`)
      expect(found.stdout).to.include(
        'header: magic 0x574C4F47, version 1, next_tx_id 1, next_lsn 21, head 1418, tail 0, checkpoint_lsn 20, entry_count 20, CRC 0xEAF60FBC ok',
      )
      expect(found.stdout).to.match(/entries: 20 \(LSN 1-20, .*\): 4 INSERT, 13 WRITE, 2 DELETE, 1 CHECKPOINT/)

      const junk = path.join(t.dir, 'junk.log')
      fs.writeFileSync(junk, 'not a wal at all, but long enough? no')
      const damaged = migrate(['--from', f.dir, '--data-dir', path.join(t.dir, 'b'), '--wal', junk])
      expect(damaged.status, damaged.stderr).to.equal(0)
      expect(damaged.stdout).to.include('shorter than its 128-byte header')

      const missing = migrate(['--from', f.dir, '--data-dir', path.join(t.dir, 'c'), '--wal', path.join(t.dir, 'nope.log')])
      expect(missing.status).to.equal(1)
      expectOneErrorLine(missing.stderr, /--wal .*nope\.log: no such file/)
      expect(fs.existsSync(path.join(t.dir, 'c'))).to.equal(false)
    } finally {
      t.remove()
    }
  })

  it('a real /dev/shm image: found without --from (and with --from shm), migrated, removed from /dev/shm', async function () {
    if (fs.readdirSync('/dev/shm').some(n => n.startsWith('razorfs_'))) this.skip() // someone else's C image: leave it alone
    const f = fixture('shm')
    const placed: string[] = []
    const dirs = mountDirs('razorfs-migrate-shm-')
    try {
      for (const name of fs.readdirSync(f.dir)) {
        fs.copyFileSync(path.join(f.dir, name), path.join('/dev/shm', name))
        placed.push(path.join('/dev/shm', name))
      }

      const dry = runCli(['migrate', '--from', 'shm', '--data-dir', dirs.dataDir, '--dry-run'], {RAZORFS_MIGRATE_WAL: '/nonexistent/wal.log'})
      expect(dry.status, dry.stderr).to.equal(0)
      expect(dry.stdout).to.include('Source: /dev/shm (C RAZORFS shm layout)')

      const env = {RAZORFS_MIGRATE_WAL: f.wal, RAZORFS_MIGRATE_SOURCES: ''}
      const result = runCli(['migrate', '--data-dir', dirs.dataDir, '--remove-source'], env)
      expect(result.status, result.stderr).to.equal(0)
      expect(result.stdout).to.include(`  /dev/shm: C RAZORFS shm layout: razorfs_nodes, razorfs_strings, 7 content files  <- migrating this one`)
      expect(result.stdout).to.include('Removed the source: /dev/shm/razorfs_nodes, /dev/shm/razorfs_strings, /dev/shm/razorfs_file_10')
      expect(fs.readdirSync('/dev/shm').filter(n => n.startsWith('razorfs_'))).to.deep.equal([])
      expect(fs.existsSync('/dev/shm')).to.equal(true)

      const m = await mount({dataDir: dirs.dataDir, mnt: dirs.mnt})
      try {
        expectMatchesManifest(listMount(dirs.mnt), readManifest(f), '/dev/shm (mount)')
      } finally {
        await m.stop()
      }
    } finally {
      for (const file of placed) fs.rmSync(file, {force: true})
      dirs.remove()
    }
  })
})
