/**
 * razorfs under mount(8), umount(8) and systemd, for real (as root): README's fstab lines and
 * units, parsed out of README.md so that it cannot drift, with its paths replaced by temporary
 * ones. The helpers are put where mount(8) finds them for the duration of the file: links
 * /sbin/mount.razorfs -> bin/mount-helper.js, /sbin/umount.fuse.razorfs -> bin/umount-helper.js
 * and /usr/local/bin/razorfs -> bin/run.js (mount.fuse3 finds the latter on mount(8)'s PATH);
 * whatever was there before is put back. The real /etc/fstab is never read: `mount -T FILE`.
 */
import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import type {MountReport} from '../../src/commands/status.js'
import {type ServerStatus, processStart} from '../../src/fuse/status.js'
import {Image} from '../../src/storage/index.js'
import {RUN_JS, lines, runCli, stackLines} from '../helpers/cli.js'
import {cleanupMount, isMounted, mountDirs, until} from '../helpers/mount.js'

const BIN = path.dirname(RUN_JS)
const LINKS: [string, string][] = [
  ['/sbin/mount.razorfs', path.join(BIN, 'mount-helper.js')],
  ['/sbin/umount.fuse.razorfs', path.join(BIN, 'umount-helper.js')],
  ['/usr/local/bin/razorfs', RUN_JS],
]
const README = fs.readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8')
const SECTION = README.slice(README.indexOf('\n### fstab and systemd\n'), README.indexOf('\n### Bindings'))

/** The code blocks of README's "fstab and systemd" section with this info string. */
function blocks(lang: string): string[] {
  return [...SECTION.matchAll(new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```$', 'gm'))].map(m => m[1])
}

interface Run {
  status: number | null
  stdout: string
  stderr: string
}

function run(command: string, args: string[]): Run {
  const r = spawnSync(command, args, {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 180_000, env: {...process.env, NO_COLOR: '1'}})
  if (r.error) throw r.error
  return {status: r.status, stdout: r.stdout, stderr: r.stderr}
}

function expectOk(r: Run, what: string): void {
  expect(r.status, `${what}: ${r.stderr}`).to.equal(0)
  expect(r.stdout + r.stderr, what).to.equal('')
}

/** One line on stderr matching `pattern`, no stack, exit `status`. */
function expectOneLine(r: Run, status: number, pattern: RegExp): void {
  expect(r.status, r.stderr).to.equal(status)
  expect(stackLines(r.stderr)).to.deep.equal([])
  expect(lines(r.stderr), r.stderr).to.have.length(1)
  expect(r.stderr).to.match(pattern)
}

function statusOf(target: string): MountReport {
  const r = runCli(['status', '--json', target])
  expect(r.status, r.stderr).to.equal(0)
  const {mounts} = JSON.parse(r.stdout) as {mounts: MountReport[]}
  expect(mounts).to.have.length(1)
  return mounts[0]
}

/** The mount flags /proc/self/mountinfo shows for `mnt`. */
function mountFlags(mnt: string): string[] {
  const r = run('findmnt', ['-n', '-o', 'VFS-OPTIONS', mnt])
  expect(r.status, r.stderr).to.equal(0)
  return r.stdout.trim().split(',')
}

function wasClean(dataDir: string): boolean {
  const image = Image.open(dataDir, {readOnly: true})
  try {
    return image.info().recovery.wasClean
  } finally {
    image.close()
  }
}

/** The server's pid, from razorfs status. */
function serverPid(mnt: string): number {
  const report = statusOf(mnt)
  expect(report.state).to.equal('live')
  expect(report.pid, JSON.stringify(report)).to.be.a('number')
  return report.pid!
}

/** The server's status: its options and whether it is read-only. */
function serverOf(mnt: string): ServerStatus {
  const {server} = statusOf(mnt)
  expect(server).to.not.equal(null)
  return server!
}

/** Write and read back a file through the mount. */
function roundTrip(mnt: string): void {
  fs.writeFileSync(path.join(mnt, 'hello.txt'), 'hello through fstab\n')
  expect(fs.readFileSync(path.join(mnt, 'hello.txt'), 'utf8')).to.equal('hello through fstab\n')
}

/**
 * Unmount with umount(8) (`args` before the mountpoint). `waits`: umount(8) called
 * umount.fuse.razorfs, so when it returns the server has closed the image cleanly and exited;
 * otherwise umount(8) unmounted by itself and the server closes just after.
 */
async function unmountAndCheck(mnt: string, dataDir: string, args: string[], waits: boolean): Promise<void> {
  const pid = serverPid(mnt)
  expectOk(run('umount', [...args, mnt]), `umount ${args.join(' ')} ${mnt}`)
  expect(isMounted(mnt)).to.equal(false)
  if (!waits) await until(`server ${pid} to exit`, () => processStart(pid) === undefined, 120_000)
  expect(processStart(pid), 'the server has exited').to.equal(undefined)
  expect(wasClean(dataDir)).to.equal(true)
  expect(fs.readFileSync(path.join(dataDir, 'razorfs.log'), 'utf8')).to.match(/closed cleanly\n$/)
}

const haveMount = run('sh', ['-c', 'command -v mount && command -v mount.fuse3']).status === 0

describe('razorfs under mount(8), umount(8) and systemd (README "fstab and systemd")', function () {
  this.timeout(180_000)
  const saved: [string, string][] = []
  let dirs: ReturnType<typeof mountDirs>

  before(function () {
    if (process.getuid?.() !== 0 || !haveMount) this.skip()
    for (const [link, target] of LINKS) {
      if (fs.existsSync(link) || fs.lstatSync(link, {throwIfNoEntry: false})) {
        const backup = `${link}.razorfs-test-${process.pid}`
        fs.renameSync(link, backup)
        saved.push([link, backup])
      }

      fs.symlinkSync(target, link)
    }
  })

  after(() => {
    for (const [link, target] of LINKS) {
      if (fs.readlinkSync(link, {encoding: 'utf8'}) === target) fs.rmSync(link)
    }

    for (const [link, backup] of saved) fs.renameSync(backup, link)
  })

  beforeEach(() => {
    dirs = mountDirs('razorfs-fstab-')
    fs.rmdirSync(dirs.mnt) // the first fstab line creates it (x-mount.mkdir)
  })

  afterEach(() => {
    // umount(8) first: it also drops what libmount recorded in /run/mount/utab for the mount.
    if (isMounted(dirs.mnt)) run('umount', ['-l', dirs.mnt])
    cleanupMount(dirs.mnt)
    dirs.remove()
  })

  /** README's text with its paths made this test's. */
  function localize(text: string): string {
    return text.replaceAll('/srv/rz', dirs.dataDir).replaceAll('/mnt/rz', dirs.mnt).replaceAll('/usr/local/bin/razorfs', RUN_JS)
  }

  /** README's fstab line of `type`, as this test's fstab file. */
  function fstabWith(type: string): string {
    const [block] = blocks('fstab')
    const line = block.split('\n').find(l => l.split(/\s+/)[2] === type)
    expect(line, `README has an fstab line of type ${type}`).to.be.a('string')
    const file = path.join(dirs.root, 'fstab')
    fs.writeFileSync(file, `${localize(line!)}\n`)
    return file
  }

  it("README's fstab line of type razorfs: mount DIR mounts it (mount.razorfs), umount DIR waits for the clean close (libmount kept its x- option)", async () => {
    const fstab = fstabWith('razorfs')
    expectOk(run('mount', ['-T', fstab, dirs.mnt]), 'mount')
    expect(isMounted(dirs.mnt)).to.equal(true)
    roundTrip(dirs.mnt)
    expect(statusOf(dirs.mnt)).to.include({dataDir: dirs.dataDir, mountpoint: dirs.mnt})
    expect(serverOf(dirs.mnt)).to.deep.include({options: ['rw', 'noatime'], readOnly: false})
    expect(mountFlags(dirs.mnt)).to.include('noatime')
    await unmountAndCheck(dirs.mnt, dirs.dataDir, [], true)
  })

  it("README's fstab line of type fuse.razorfs: mount.fuse3 runs `razorfs SOURCE DIR -o OPTS`; umount -c waits", async () => {
    fs.mkdirSync(dirs.mnt)
    const fstab = fstabWith('fuse.razorfs')
    expectOk(run('mount', ['-T', fstab, dirs.mnt]), 'mount')
    roundTrip(dirs.mnt)
    expect(statusOf(dirs.mnt)).to.include({dataDir: dirs.dataDir})
    // mount.fuse3 adds dev,suid unless the line says nodev,nosuid, as README's does.
    expect(mountFlags(dirs.mnt)).to.include.members(['noatime', 'nodev', 'nosuid'])
    await unmountAndCheck(dirs.mnt, dirs.dataDir, ['-c'], true)
  })

  it('the old form `razorfs#SOURCE DIR fuse` works, and ro gives EROFS; plain umount does not wait', async () => {
    fs.mkdirSync(dirs.mnt)
    expect(runCli(['init', '--data-dir', dirs.dataDir]).status).to.equal(0)
    const fstab = path.join(dirs.root, 'fstab')
    fs.writeFileSync(fstab, `razorfs#${dirs.dataDir} ${dirs.mnt} fuse ro,noauto,_netdev 0 0\n`)
    expectOk(run('mount', ['-T', fstab, dirs.mnt]), 'mount')
    expect(() => fs.writeFileSync(path.join(dirs.mnt, 'x'), 'x')).to.throw(/EROFS/)
    expect(serverOf(dirs.mnt).readOnly).to.equal(true)
    await unmountAndCheck(dirs.mnt, dirs.dataDir, [], false)
  })

  it('mount -t razorfs SOURCE DIR -o ...: ro, a bad option (exit 1, one line naming it), -s, -f, a failed mount (32)', async () => {
    fs.mkdirSync(dirs.mnt)
    expectOk(run('mount', ['-t', 'razorfs', dirs.dataDir, dirs.mnt]), 'mount (creates the image)')
    roundTrip(dirs.mnt)
    // Already mounted: razorfs's own line, mount(8)'s "mount failure".
    expectOneLine(run('mount', ['-t', 'razorfs', dirs.dataDir, dirs.mnt]), 32, /^razorfs: .*already a mount point/)
    await unmountAndCheck(dirs.mnt, dirs.dataDir, ['-c'], true)

    expectOneLine(run('mount', ['-t', 'razorfs', dirs.dataDir, dirs.mnt, '-o', 'ro,bogus']), 1, /^mount\.razorfs: unknown mount option 'bogus'/)
    expectOneLine(
      run('mount', ['-t', 'fuse.razorfs', dirs.dataDir, dirs.mnt, '-o', 'attr_timeout=soon']),
      1,
      /^razorfs: mount option 'attr_timeout=soon': not a number of seconds/,
    )
    expect(isMounted(dirs.mnt)).to.equal(false)
    expectOk(run('mount', ['-f', '-t', 'razorfs', dirs.dataDir, dirs.mnt, '-o', 'ro']), 'mount -f')
    expect(isMounted(dirs.mnt)).to.equal(false)

    expectOk(run('mount', ['-s', '-t', 'razorfs', dirs.dataDir, dirs.mnt, '-o', 'ro,bogus']), 'mount -s')
    expect(fs.readFileSync(path.join(dirs.mnt, 'hello.txt'), 'utf8')).to.equal('hello through fstab\n')
    expect(() => fs.writeFileSync(path.join(dirs.mnt, 'hello.txt'), 'x')).to.throw(/EROFS/)
    expect(serverOf(dirs.mnt).readOnly).to.equal(true)
    await unmountAndCheck(dirs.mnt, dirs.dataDir, ['-l'], true)
  })

  it('razorfs SOURCE DIR -o OPTS through bin/run.js: a bad option is one line naming it, exit 1; a relative first word is still an unknown command', () => {
    fs.mkdirSync(dirs.mnt)
    expectOneLine(runCli([dirs.dataDir, dirs.mnt, '-o', 'rw,nosuchopt']), 1, /^razorfs: unknown mount option 'nosuchopt'/)
    expectOneLine(runCli([dirs.dataDir]), 1, /^razorfs: give SOURCE \(the data dir\) and MOUNTPOINT \(MOUNTPOINT is missing\)/)
    expectOneLine(runCli(['srv/rz', dirs.mnt]), 16, /^razorfs: unknown command 'srv\/rz'/)
    expect(isMounted(dirs.mnt)).to.equal(false)
  })

  it("README's .mount unit: systemd-analyze verify passes; its What/Where/Type/Options, run as systemd runs them, mount, and umount -c (as systemd stops it) waits", async () => {
    const [unit] = blocks('ini').filter(b => /^\[Mount\]$/m.test(b))
    expect(unit, 'README has a .mount unit').to.be.a('string')
    const name = /^# \/etc\/systemd\/system\/(\S+\.mount)/.exec(unit)?.[1]
    const key = (text: string, k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(text)?.[1]
    // The unit's name is the escaped Where=, as systemd requires.
    expect(name).to.equal(`${run('systemd-escape', ['--path', key(unit, 'Where')!]).stdout.trim()}.mount`)
    const local = localize(unit)
    verify(local, `${run('systemd-escape', ['--path', dirs.mnt]).stdout.trim()}.mount`)

    fs.mkdirSync(dirs.mnt)
    expect(key(local, 'What')).to.equal(dirs.dataDir)
    expectOk(run('mount', [key(local, 'What')!, key(local, 'Where')!, '-t', key(local, 'Type')!, '-o', key(local, 'Options')!]), 'mount')
    roundTrip(dirs.mnt)
    expect(mountFlags(dirs.mnt)).to.include('noatime')
    await unmountAndCheck(dirs.mnt, dirs.dataDir, ['-c'], true)
  })

  it("README's service: systemd-analyze verify passes; ExecStart returns once mounted (Type=forking) leaving the server, ExecStop closes cleanly", () => {
    const [unit] = blocks('ini').filter(b => /^\[Service\]$/m.test(b))
    expect(unit, 'README has a service unit').to.be.a('string')
    expect(unit).to.match(/^Type=forking$/m)
    const local = localize(unit)
    verify(local, 'razorfs-fstab-test.service')
    const exec = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(local)![1].split(/\s+/)
    const start = exec('ExecStart')
    expect(start, 'detached: no -f').to.not.include('-f')

    fs.mkdirSync(dirs.mnt)
    const started = run(start[0], start.slice(1))
    expect(started.status, started.stderr).to.equal(0)
    // Forking's contract: when ExecStart has exited the mount is live, served by the process it left.
    expect(isMounted(dirs.mnt)).to.equal(true)
    const pid = serverPid(dirs.mnt)
    expect(processStart(pid)).to.not.equal(undefined)
    roundTrip(dirs.mnt)

    const stop = exec('ExecStop')
    expectOk(run(stop[0], stop.slice(1)), 'ExecStop')
    expect(isMounted(dirs.mnt)).to.equal(false)
    expect(processStart(pid), 'the server has exited').to.equal(undefined)
    expect(wasClean(dirs.dataDir)).to.equal(true)
  })

  /** systemd-analyze verify of `text` as the unit `name`: exit 0 and not a word on stderr. */
  function verify(text: string, name: string): void {
    if (run('sh', ['-c', 'command -v systemd-analyze']).status !== 0) {
      process.stderr.write('      (systemd-analyze is not installed: the unit is not verified)\n')
      return
    }

    const file = path.join(dirs.root, name)
    fs.writeFileSync(file, text)
    const r = run('systemd-analyze', ['verify', file])
    expect(r.status, r.stderr).to.equal(0)
    expect(r.stderr).to.equal('')
  }
})
