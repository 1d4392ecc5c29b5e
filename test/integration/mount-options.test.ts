/**
 * Every documented `-o` option (README.md, "Mounting"; `razorfs mount --help`), on both bindings:
 * each mounts, and does what it says. What the kernel sees is checked through the mount (stat,
 * exec, open, another user) and /proc/self/mountinfo; what reaches the server (cache modes,
 * timeouts, max_read) through the request counters of the server's status file.
 */
import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {findMount} from '../../src/fuse/mountinfo.js'
import {MOUNT_OPTIONS} from '../../src/fuse/mount-options.js'
import {NOBODY, lines, runCli, stackLines} from '../helpers/cli.js'
import {cleanupMount, freshStatus, isMounted, mount, type Mounted, mountDirs, until} from '../helpers/mount.js'

const MiB = 1024 * 1024
/** Stats of one name in a row: the default timeouts (1 s at least) answer all but the first from the kernel's cache. */
const STATS = 20
/** Tries at a reopen that should read nothing (see fewestReads). */
const ATTEMPTS = 3
/** The options the tests below mount with: every documented one (checked last). */
const COVERED = [
  'uid',
  'gid',
  'umask',
  'noatime',
  'nodev',
  'nosuid',
  'noexec',
  'allow_other',
  'default_permissions',
  'allow_root',
  'max_read',
  'entry_timeout',
  'negative_timeout',
  'attr_timeout',
  'kernel_cache',
  'auto_cache',
  'auto_unmount',
  'ro',
  'nonempty',
  'nopassthrough',
]

/** Run `cmd` as nobody (root only). */
function asNobody(cmd: string[]): ReturnType<typeof spawnSync> {
  return spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', ...cmd], {encoding: 'utf8'})
}

for (const binding of ['ll', 'fuse-native'] as const) {
  describe(`razorfs mount -o: every documented option (${binding})`, function () {
    this.timeout(120_000)
    let dirs: ReturnType<typeof mountDirs>
    let servers: Mounted[]
    const content = crypto.randomBytes(MiB)

    before(async () => {
      dirs = mountDirs('razorfs-mopts-')
      fs.chmodSync(dirs.root, 0o755) // nobody must reach the mountpoint
      // The image the tests read: a 1 MiB file, a script, a device node; a fresh mount then has none of it in the page cache.
      const m = await mount({dataDir: dirs.dataDir, mnt: dirs.mnt, extraArgs: ['--binding', binding]})
      fs.writeFileSync(path.join(dirs.mnt, 'f'), content, {mode: 0o644})
      fs.writeFileSync(path.join(dirs.mnt, 'g'), 'small', {mode: 0o600})
      fs.writeFileSync(path.join(dirs.mnt, 'run.sh'), '#!/bin/sh\necho ran\n', {mode: 0o755})
      const mknod = spawnSync('mknod', [path.join(dirs.mnt, 'null'), 'c', '1', '3'], {encoding: 'utf8'})
      expect(mknod.status, mknod.stderr).to.equal(0)
      expect(await m.stop()).to.equal(0)
    })

    beforeEach(() => {
      servers = []
    })

    afterEach(async () => {
      for (const s of servers) await s.stop('SIGTERM').catch(() => {})
      cleanupMount(dirs.mnt)
    })

    after(() => {
      dirs.remove()
    })

    async function start(options: string): Promise<Mounted> {
      const m = await mount({dataDir: dirs.dataDir, mnt: dirs.mnt, options, extraArgs: ['--binding', binding]})
      servers.push(m)
      return m
    }

    async function plain(): Promise<Mounted> {
      const m = await mount({dataDir: dirs.dataDir, mnt: dirs.mnt, extraArgs: ['--binding', binding]})
      servers.push(m)
      return m
    }

    /** The server's request counters, once its status file has been written after this call. */
    async function counters(): Promise<Record<string, number>> {
      const status = await freshStatus(dirs.dataDir)
      return {...status.ops.byOp, keptCache: status.cache.pageCache?.kept ?? 0, droppedCache: status.cache.pageCache?.dropped ?? 0}
    }

    /** How many requests of each kind `action` sent to the server. */
    async function requests(action: () => void): Promise<(op: string) => number> {
      const before = await counters()
      action()
      const after = await counters()
      return op => (after[op] ?? 0) - (before[op] ?? 0)
    }

    /**
     * The requests of the reopen (a read of the whole file 'f') that sent the fewest reads in a few
     * tries. A kept page cache shows as 0 reads; a host short of memory may reclaim a page between
     * two opens, so one stray read is tried again, while a dropped cache reads at every try.
     */
    async function fewestReads(): Promise<(op: string) => number> {
      const reopen = () => requests(() => fs.readFileSync(P('f')))
      let fewest = await reopen()
      for (let i = 1; i < ATTEMPTS && fewest('read') > 0; i++) {
        const next = await reopen()
        if (next('read') < fewest('read')) fewest = next
      }

      return fewest
    }

    /** Name lookups reaching the server: ll's lookup; libfuse 2 looks a name up with getattr. */
    const lookups = (delta: (op: string) => number) => (binding === 'll' ? delta('lookup') : delta('getattr'))
    const P = (name: string) => path.join(dirs.mnt, name)
    const statMany = (name: string) => () => {
      for (let i = 0; i < STATS; i++) {
        try {
          fs.statSync(P(name))
        } catch {}
      }
    }

    it('uid=, gid=, umask=: every file shows that owner, group and mode; the image keeps its own', async () => {
      await start('uid=1234,gid=2345,umask=027')
      for (const [name, type] of [
        ['f', 0o100000],
        ['run.sh', 0o100000],
        ['.', 0o040000],
      ] as const) {
        const st = fs.statSync(P(name))
        expect([st.uid, st.gid, st.mode], name).to.deep.equal([1234, 2345, type | 0o750])
      }

      fs.writeFileSync(P('new'), 'x', {mode: 0o600})
      expect(fs.statSync(P('new')).mode & 0o7777).to.equal(0o750)
      expect(await servers.pop()!.stop()).to.equal(0)
      await plain()
      const st = fs.statSync(P('f'))
      expect([st.uid, st.gid, st.mode & 0o7777]).to.deep.equal([0, 0, 0o644])
      expect(fs.statSync(P('new')).mode & 0o7777).to.equal(0o600)
      fs.unlinkSync(P('new'))
    })

    it('noatime, nodev, nosuid, noexec: mount flags; a device cannot be opened, a script not run', async () => {
      await start('noatime,nodev,nosuid,noexec')
      expect(findMount(dirs.mnt)!.mountOptions).to.include.members(['noatime', 'nodev', 'nosuid', 'noexec'])
      expect(() => fs.openSync(P('null'), 'r'))
        .to.throw()
        .with.property('code', 'EACCES')
      const run = spawnSync(P('run.sh'), {encoding: 'utf8'})
      expect((run.error as NodeJS.ErrnoException | undefined)?.code).to.equal('EACCES')
      expect(await servers.pop()!.stop()).to.equal(0)
      // nodev and nosuid are libfuse's defaults; dev and suid (root only) turn them off.
      await plain()
      expect(findMount(dirs.mnt)!.mountOptions).to.include.members(['nodev', 'nosuid']).and.not.include.members(['noatime', 'noexec'])
      expect(spawnSync(P('run.sh'), {encoding: 'utf8'}).stdout).to.equal('ran\n')
      expect(await servers.pop()!.stop()).to.equal(0)
      await start('dev,suid')
      expect(findMount(dirs.mnt)!.mountOptions).to.not.include.members(['nodev']).and.not.include.members(['nosuid'])
      fs.closeSync(fs.openSync(P('null'), 'r'))
    })

    it('allow_other and default_permissions: another user reads through the mount, the kernel checks permissions', async () => {
      await plain()
      expect(String(asNobody(['stat', P('f')]).stderr), 'without allow_other').to.match(/Permission denied/)
      expect(await servers.pop()!.stop()).to.equal(0)
      await start('allow_other,default_permissions')
      expect(findMount(dirs.mnt)!.superOptions).to.include.members(['allow_other', 'default_permissions'])
      const read = asNobody(['sha256sum', P('f')])
      expect(read.status, String(read.stderr)).to.equal(0)
      expect(String(read.stdout).split(' ')[0]).to.equal(crypto.createHash('sha256').update(content).digest('hex'))
      const denied = asNobody(['cat', P('g')]) // 0600 root
      expect(String(denied.stderr)).to.match(/Permission denied/)
    })

    it('allow_root: root and the user who mounted may use the mount, nobody else', async () => {
      await start('allow_root')
      expect(findMount(dirs.mnt)!.superOptions).to.include('allow_other') // the kernel's half; libfuse refuses the others
      expect(fs.readFileSync(P('g'), 'utf8')).to.equal('small')
      const denied = asNobody(['stat', P('f')])
      expect(denied.status).to.not.equal(0)
      expect(String(denied.stderr)).to.match(/Permission denied/)
    })

    it('max_read=: the kernel has it, and reads come in requests no larger', async () => {
      await start('max_read=65536,nopassthrough') // reads that reach the server
      expect(findMount(dirs.mnt)!.superOptions).to.include('max_read=65536')
      let data = Buffer.alloc(0)
      const delta = await requests(() => {
        data = fs.readFileSync(P('f'))
      })
      expect(data.equals(content)).to.equal(true)
      expect(delta('read'), 'read requests for 1 MiB').to.be.at.least(MiB / 65536)
    })

    it('entry_timeout= and negative_timeout=: names (and missing names) are cached that long', async () => {
      // The defaults first: fuse-native keeps libfuse's (1 s for names, none for missing names),
      // ll caches both for an hour (LL_TIMEOUTS).
      await plain()
      const named = lookups(await requests(statMany('g')))
      const missing = lookups(await requests(statMany('absent')))
      expect(named, 'default: lookups of a name').to.be.below(STATS / 2)
      if (binding === 'll') expect(missing, 'll default: lookups of a missing name').to.be.at.most(2)
      else expect(missing, 'fuse-native default: lookups of a missing name').to.be.at.least(STATS)
      if (binding === 'll') {
        // ll's default (an hour, LL_TIMEOUTS) outlives libfuse's 1 s: what the kernel saw is not asked for again.
        await new Promise(resolve => setTimeout(resolve, 1500))
        const later = await requests(statMany('g'))
        expect(lookups(later) + later('getattr'), 'll default: a name and its attributes seen 1.5 s before').to.equal(0)
      }

      expect(await servers.pop()!.stop()).to.equal(0)

      await start('entry_timeout=0,negative_timeout=30')
      expect(lookups(await requests(statMany('g'))), 'entry_timeout=0: lookups of a name').to.be.at.least(STATS)
      expect(lookups(await requests(statMany('absent'))), 'negative_timeout=30: lookups of a missing name').to.be.at.most(2)
      // A name created through the mount replaces the cached miss at once.
      fs.writeFileSync(P('absent'), 'here')
      expect(fs.readFileSync(P('absent'), 'utf8')).to.equal('here')
      fs.unlinkSync(P('absent'))
      expect(fs.existsSync(P('absent'))).to.equal(false)
    })

    it('attr_timeout=: attributes are cached that long', async () => {
      await plain()
      expect((await requests(statMany('g')))('getattr'), 'default: getattr').to.be.below(STATS / 2)
      expect(await servers.pop()!.stop()).to.equal(0)
      await start('attr_timeout=0')
      expect((await requests(statMany('g')))('getattr'), 'attr_timeout=0: getattr').to.be.at.least(STATS)
    })

    it(`kernel_cache keeps a file's page cache across opens; without it ${binding === 'll' ? 'the ll binding keeps it too' : 'libfuse 2 drops it'}`, async () => {
      const readTwice = async () => {
        expect(fs.readFileSync(P('f')).equals(content)).to.equal(true)
        return (await fewestReads())('read')
      }

      await plain()
      if (binding === 'll') expect(await readTwice(), 'default: reads of a second open').to.equal(0)
      else expect(await readTwice(), 'default: reads of a second open').to.be.greaterThan(0)
      expect(await servers.pop()!.stop()).to.equal(0)
      await start('kernel_cache')
      expect(await readTwice(), 'kernel_cache: reads of a second open').to.equal(0)
    })

    if (binding === 'll') {
      it('a close sends no FLUSH: the open and create replies say noflush (flush has nothing to do)', async () => {
        await plain()
        const delta = await requests(() => {
          for (let i = 0; i < 10; i++) fs.writeFileSync(P(`nf${i}`), 'x')
          for (let i = 0; i < 10; i++) fs.readFileSync(P(`nf${i}`))
        })
        expect(delta('create'), 'creates').to.equal(10)
        expect(delta('open'), 'opens').to.equal(10)
        expect(delta('flush'), 'flushes').to.equal(0)
        for (let i = 0; i < 10; i++) fs.unlinkSync(P(`nf${i}`))
      })

      it("a file's pages stay cached when an attribute refresh after a write shows its new mtime (SQLite's pattern)", async () => {
        await plain()
        const bytes = crypto.randomBytes(64 * 1024)
        const delta = await requests(() => {
          const fd = fs.openSync(P('pages'), 'w+')
          fs.writeSync(fd, bytes, 0, bytes.length, 0)
          fs.fstatSync(fd) // a write leaves the kernel's attributes stale: a getattr, with another mtime
          const back = Buffer.alloc(bytes.length)
          fs.readSync(fd, back, 0, back.length, 0)
          fs.closeSync(fd)
          expect(back.equals(bytes)).to.equal(true)
          expect(fs.readFileSync(P('pages')).equals(bytes)).to.equal(true)
        })
        expect(delta('getattr'), 'attribute refreshes').to.be.at.least(1)
        expect(delta('read'), 'reads of the bytes just written').to.equal(0)
        fs.unlinkSync(P('pages'))
      })
    }

    it('auto_cache keeps the page cache while mtime and size stay, and drops it when they change', async () => {
      await start('auto_cache,nopassthrough') // the page cache of files served through the server
      expect(fs.readFileSync(P('f')).equals(content)).to.equal(true)
      const same = await fewestReads()
      expect(same('read'), 'unchanged: reads of a second open').to.equal(0)
      fs.utimesSync(P('f'), new Date(), new Date(Date.now() - 3_600_000)) // mtime changes (through the mount)
      const changed = await requests(() => fs.readFileSync(P('f')))
      expect(changed('read'), 'mtime changed: reads of the next open').to.be.greaterThan(0)
      if (binding === 'll') {
        expect(same('keptCache'), 'kept at the unchanged open').to.equal(1)
        expect(changed('droppedCache'), 'dropped at the changed open').to.equal(1)
      }
    })

    it('nopassthrough: file contents go through the server; by default (ll) the kernel reads and writes them itself', async () => {
      const written = crypto.randomBytes(MiB)
      const roundTrip = () => {
        const fd = fs.openSync(P('pt'), 'w+')
        try {
          fs.writeSync(fd, written)
          // The size the kernel wrote shows at once, through another name lookup and stat.
          expect(fs.statSync(P('pt')).size).to.equal(MiB)
          expect(fs.readFileSync(P('pt')).equals(written)).to.equal(true)
        } finally {
          fs.closeSync(fd)
        }
      }

      await plain()
      // A file with a content file: a new one is served until the pool has an empty one ready (FileData.openDirect).
      fs.writeFileSync(P('pt'), 'old')
      const direct = await requests(roundTrip)
      expect(fs.statSync(P('pt')).size).to.equal(MiB)
      await servers.pop()!.stop()
      await start('nopassthrough')
      expect(fs.readFileSync(P('pt')).equals(written)).to.equal(true)
      const served = await requests(roundTrip)
      if (binding === 'll') {
        expect(direct('write') + direct('read'), 'reads and writes that reached the server (passthrough)').to.equal(0)
      } else expect(direct('write'), 'fuse-native: writes reach the server').to.be.greaterThan(0)
      expect(served('write'), 'writes that reached the server (nopassthrough)').to.be.greaterThan(0)
      fs.unlinkSync(P('pt'))
    })

    it('auto_unmount: the mount goes when the server is killed', async () => {
      const m = await start('auto_unmount')
      m.proc.kill('SIGKILL')
      await until('the mount to go', () => !isMounted(dirs.mnt), 15_000)
    })

    it('ro: every change fails with EROFS', async () => {
      await start('ro')
      expect(findMount(dirs.mnt)!.mountOptions).to.include('ro')
      expect(() => fs.writeFileSync(P('g'), 'x'))
        .to.throw()
        .with.property('code', 'EROFS')
      expect(() => fs.mkdirSync(P('d')))
        .to.throw()
        .with.property('code', 'EROFS')
      expect(fs.readFileSync(P('g'), 'utf8')).to.equal('small')
    })

    it('nonempty: a mountpoint that is not empty is refused without it, mounted over with it', async () => {
      const mnt = path.join(dirs.root, 'occupied')
      fs.mkdirSync(mnt)
      fs.writeFileSync(path.join(mnt, 'hidden'), 'under the mount')
      try {
        for (const fg of [['-f'], []]) {
          const refused = runCli(['mount', ...fg, '--binding', binding, '--data-dir', dirs.dataDir, mnt])
          expect(refused.status, refused.stderr).to.equal(1)
          expect(lines(refused.stderr)).to.deep.equal([
            `razorfs: mountpoint ${mnt} is not empty (1 entry, which the mount would hide); use -o nonempty to mount over it`,
          ])
          expect(isMounted(mnt)).to.equal(false)
        }

        const m = await mount({dataDir: dirs.dataDir, mnt, options: 'nonempty', extraArgs: ['--binding', binding]})
        servers.push(m)
        expect(fs.readdirSync(mnt)).to.include('f').and.not.include('hidden')
        expect(await servers.pop()!.stop()).to.equal(0)
        expect(fs.readFileSync(path.join(mnt, 'hidden'), 'utf8')).to.equal('under the mount')
      } finally {
        cleanupMount(mnt)
      }
    })

    it('the tests above mount with every documented option', () => {
      expect([...COVERED].sort()).to.deep.equal(MOUNT_OPTIONS.map(o => o.name).sort())
    })
  })
}

describe('razorfs mount -o: a bad option or value exits 16 naming it, before anything is mounted or detached', () => {
  const cases: Array<[string, RegExp]> = [
    ['bogus', /unknown mount option 'bogus'/],
    ['ro,fsname=x', /unknown mount option 'fsname=x'/],
    ['uid=abc', /'uid=abc': not a numeric uid/],
    ['gid=-1', /'gid=-1': not a numeric gid/],
    ['umask=999', /'umask=999': not an octal mask/],
    ['umask=1777', /'umask=1777': not an octal mask/],
    ['attr_timeout=soon', /'attr_timeout=soon': not a number of seconds/],
    ['entry_timeout=-1', /'entry_timeout=-1': not a number of seconds/],
    ['negative_timeout=', /'negative_timeout=' needs a value/],
    ['max_read=0', /'max_read=0': not a number of bytes/],
    ['uid', /'uid' needs a value/],
    ['ro=1', /'ro=1': ro takes no value/],
    ['allow_other,allow_root', /'allow_other' and 'allow_root' exclude each other/],
  ]
  let dirs: ReturnType<typeof mountDirs>
  before(() => {
    dirs = mountDirs('razorfs-mopts-bad-')
  })
  after(() => dirs.remove())

  for (const [options, pattern] of cases) {
    it(`-o ${options}`, () => {
      for (const fg of [['-f'], []]) {
        const result = runCli(['mount', ...fg, '--data-dir', dirs.dataDir, '-o', options, dirs.mnt])
        expect(result.status, result.stderr).to.equal(16)
        expect(stackLines(result.stderr)).to.deep.equal([])
        expect(lines(result.stderr)).to.have.length(1)
        expect(result.stderr)
          .to.match(/^razorfs: /)
          .and.match(pattern)
        expect(isMounted(dirs.mnt)).to.equal(false)
        expect(fs.existsSync(dirs.dataDir), 'the data dir is not even created').to.equal(false)
      }
    })
  }

  it("mount '' is a usage error: it does not mount over the working directory", () => {
    for (const fg of [['-f'], []]) {
      const result = runCli(['mount', ...fg, '--data-dir', dirs.dataDir, ''])
      expect(result.status, result.stderr).to.equal(16)
      expect(lines(result.stderr)).to.deep.equal(["razorfs: MOUNTPOINT is an empty string; give the path of a directory (see 'razorfs mount --help')"])
      expect(findMount(process.cwd())?.fsType).to.not.equal('fuse.razorfs')
    }
  })
})
