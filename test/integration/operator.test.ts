/**
 * The operator's commands around a mount, through bin/run.js: `razorfs status` (live, dead and
 * stale mounts), `razorfs umount` (clean close, busy, -l, --force, dead mounts, exit codes), and
 * the detached server's terminal and log (recovery reaches the terminal; the log has timestamps
 * and is written by the server alone).
 *
 * Other razorfs mounts may exist on the machine (tests running beside these): every check names
 * its own mountpoint or data dir.
 */
import {expect} from 'chai'
import {type ChildProcess, spawn} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

import type {MountReport} from '../../src/commands/status.js'
import {RESIDENT_MIB} from '../../src/fuse/serve.js'
import {STATUS_NAME, type ServerStatus, processStart} from '../../src/fuse/status.js'
import {Image} from '../../src/storage/index.js'
import {lines, runCli, stackLines} from '../helpers/cli.js'
import {cleanupMount, isMounted, mount, type Mounted, mountDirs, until} from '../helpers/mount.js'

const TIMESTAMPED = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[\d+\] /

function clean(dataDir: string): boolean {
  const image = Image.open(dataDir, {readOnly: true})
  try {
    return image.info().recovery.wasClean
  } finally {
    image.close()
  }
}

function alive(pid: number): boolean {
  return processStart(pid) !== undefined
}

function expectOneLine(result: ReturnType<typeof runCli>, status: number, pattern: RegExp): void {
  expect(result.status, result.stderr).to.equal(status)
  expect(stackLines(result.stderr)).to.deep.equal([])
  expect(lines(result.stderr), result.stderr).to.have.length(1)
  expect(result.stderr)
    .to.match(/^razorfs: /)
    .and.match(pattern)
}

/** The exit code of a server (waiting for node to see it exit). */
async function exitOf(m: Mounted): Promise<number | null> {
  await until(`server ${m.proc.pid} to exit`, () => m.proc.exitCode !== null || m.proc.signalCode !== null, 15_000)
  return m.proc.exitCode
}

function statusOf(target: string): MountReport[] {
  const result = runCli(['status', '--json', target])
  expect(result.status, result.stderr).to.equal(0)
  return (JSON.parse(result.stdout) as {mounts: MountReport[]}).mounts
}

for (const binding of ['ll', 'fuse-native'] as const) {
  describe(`razorfs status and umount (${binding})`, function () {
    this.timeout(120_000)
    let dirs: ReturnType<typeof mountDirs>
    let servers: Mounted[]
    let pids: number[]
    let holders: ChildProcess[]

    beforeEach(() => {
      dirs = mountDirs('razorfs-operator-')
      servers = []
      pids = []
      holders = []
    })

    afterEach(async () => {
      for (const h of holders) h.kill('SIGKILL')
      for (const s of servers) await s.stop('SIGKILL').catch(() => {})
      for (const pid of pids) {
        try {
          if (alive(pid) && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dirs.dataDir)) process.kill(pid, 'SIGKILL')
        } catch {}
      }

      cleanupMount(dirs.mnt)
      dirs.remove()
    })

    /** A mount whose writes reach the server (-o nopassthrough), so that they show in its counters. */
    async function foreground(): Promise<Mounted> {
      const m = await mount({dataDir: dirs.dataDir, mnt: dirs.mnt, options: 'nopassthrough', extraArgs: ['--binding', binding]})
      servers.push(m)
      return m
    }

    function detached(): {pid: number; stderr: string} {
      const result = runCli(['mount', '--binding', binding, '--data-dir', dirs.dataDir, dirs.mnt])
      const pid = Number(/server pid (\d+)/.exec(result.stdout)?.[1])
      if (pid > 0) pids.push(pid)
      expect(result.status, result.stderr).to.equal(0)
      return {pid, stderr: result.stderr}
    }

    /** A process holding `file` open (its stdin) until killed. */
    function hold(file: string): void {
      const fd = fs.openSync(file, 'r')
      holders.push(spawn('sleep', ['60'], {stdio: [fd, 'ignore', 'ignore']}))
      fs.closeSync(fd)
    }

    it('status shows a live mount: mountpoint, pid, data dir, binding, uptime, checkpoint, recovery, requests, cache', async () => {
      const m = await foreground()
      for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(dirs.mnt, `f${i}`), 'x')
      // Requests in the second before the status file is written show as a rate (writes: the kernel
      // answers no write itself). A writer keeps going while `status` runs, however slowly it starts.
      const writer = spawn('sh', ['-c', 'i=0; while :; do i=$((i+1)); echo $i > busy; done'], {cwd: dirs.mnt, stdio: 'ignore'})
      holders.push(writer)
      await new Promise(resolve => setTimeout(resolve, 1500))

      for (const [i, target] of [dirs.mnt, dirs.dataDir].entries()) {
        const [r] = statusOf(target)
        if (i === 0) {
          expect(r.server?.ops.perSecond, 'requests a second while the writes ran').to.be.greaterThan(0)
          writer.kill('SIGKILL')
        }

        expect(r).to.include({mountpoint: dirs.mnt, dataDir: dirs.dataDir, state: 'live', pid: m.proc.pid})
        expect(r.uptimeS).to.be.a('number').and.at.least(0)
        expect(r.checkpoint).to.have.keys('generation', 'lsn', 'time')
        const s = r.server!
        expect(s).to.include({binding, pid: m.proc.pid, readOnly: false, log: null, state: 'serving'})
        expect(s.recovery).to.deep.equal({wasClean: true, transactions: 0, tornBytes: 0})
        expect(s.ops.total).to.be.greaterThan(50)
        expect(s.ops.byOp.write).to.be.greaterThan(50)
        expect(s.cache.residentBytes).to.be.greaterThan(0)
        expect(s.cache.residentBudgetBytes).to.equal(RESIDENT_MIB * 2 ** 20)
      }

      // Without a target, every razorfs mount: ours among them.
      const all = runCli(['status', '--json'])
      expect(all.status, all.stderr).to.equal(0)
      expect((JSON.parse(all.stdout) as {mounts: MountReport[]}).mounts.map(r => r.mountpoint)).to.include(dirs.mnt)

      const text = runCli(['status', dirs.mnt])
      expect(text.status, text.stderr).to.equal(0)
      expect(text.stderr).to.equal('')
      const out = text.stdout
      expect(lines(out)[0]).to.equal(`${dirs.mnt}: live`)
      for (const pattern of [
        new RegExp(`data dir +${dirs.dataDir}$`, 'm'),
        new RegExp(`server +pid ${m.proc.pid}, binding ${binding}, up \\d+s`, 'm'),
        /checkpoint +#\d+ at \S+Z/m,
        /recovery +none needed/m,
        /requests +[\d.]+\/s now, [\d,]+ since mount \(.*write [\d,]+/m,
        new RegExp(String.raw`cache +resident [\d.]+ MiB of a ${RESIDENT_MIB} MiB budget`, 'm'),
      ])
        expect(out).to.match(pattern)
    })

    it('a mount whose server was killed shows as dead, never live; umount refuses it without --force and removes it with', async () => {
      const m = await foreground()
      m.proc.kill('SIGKILL')
      await exitOf(m)
      expect(isMounted(dirs.mnt)).to.equal(true)

      const [r] = statusOf(dirs.mnt)
      expect(r).to.include({state: 'dead', pid: m.proc.pid, server: null, uptimeS: null})
      const text = runCli(['status', dirs.mnt])
      expect(lines(text.stdout)[0]).to.match(new RegExp(`^${dirs.mnt}: dead \\(its server, pid ${m.proc.pid}, is gone`))
      expect(text.stdout).to.include(`razorfs umount --force ${dirs.mnt}`)

      expectOneLine(runCli(['umount', dirs.mnt]), 32, /is a dead mount .*use --force/)
      expect(isMounted(dirs.mnt)).to.equal(true)
      const forced = runCli(['umount', '--force', dirs.mnt])
      expect(forced.status, forced.stderr).to.equal(0)
      expect(forced.stdout + forced.stderr).to.equal('')
      expect(isMounted(dirs.mnt)).to.equal(false)
      expectOneLine(runCli(['status', dirs.mnt]), 32, /not mounted/)
      expectOneLine(runCli(['status', dirs.dataDir]), 32, new RegExp(`not mounted \\(its last server, pid ${m.proc.pid}, is gone\\)`))
    })

    it('a status file naming a live process that is not its server (a reused pid) is not shown as live', async () => {
      const m = await foreground()
      const file = path.join(dirs.dataDir, STATUS_NAME)
      const status = JSON.parse(fs.readFileSync(file, 'utf8')) as ServerStatus
      m.proc.kill('SIGKILL')
      await exitOf(m)
      // This test process is alive, but started at another time than the server.
      fs.writeFileSync(file, JSON.stringify({...status, pid: process.pid}))
      expect(statusOf(dirs.mnt)[0]).to.include({state: 'dead', server: null})
      expectOneLine(runCli(['umount', dirs.mnt]), 32, /dead mount/)
    })

    it('umount: exit 0 and nothing printed once the server has closed the image cleanly (foreground and detached)', async () => {
      const m = await foreground()
      fs.writeFileSync(path.join(dirs.mnt, 'f'), 'data')
      const result = runCli(['umount', dirs.mnt])
      expect(result.status, result.stderr).to.equal(0)
      expect(result.stdout + result.stderr).to.equal('')
      expect(alive(m.proc.pid!), 'the server is gone when umount returns').to.equal(false)
      expect(await exitOf(m), m.output()).to.equal(0)
      expect(m.output()).to.include('closed cleanly')
      expect(isMounted(dirs.mnt)).to.equal(false)
      expect(fs.existsSync(path.join(dirs.dataDir, STATUS_NAME)), 'the status file').to.equal(false)
      expect(clean(dirs.dataDir)).to.equal(true)

      const {pid} = detached()
      const json = runCli(['umount', '--json', '--data-dir', dirs.dataDir])
      expect(json.status, json.stderr).to.equal(0)
      expect(JSON.parse(json.stdout)).to.deep.equal({mountpoint: dirs.mnt, dataDir: dirs.dataDir, meta: null, pid, outcome: 'closed'})
      expect(alive(pid)).to.equal(false)
      expect(fs.readFileSync(path.join(dirs.dataDir, 'razorfs.log'), 'utf8')).to.match(/\[\d+\] razorfs mount: image \S+ closed cleanly\n$/)
      expect(clean(dirs.dataDir)).to.equal(true)
    })

    it('a mountpoint given through a symlink: status and umount know it by either name, and umount waits for the clean close', () => {
      const link = path.join(path.dirname(dirs.mnt), 'link-to-mnt')
      fs.symlinkSync(dirs.mnt, link)
      try {
        const result = runCli(['mount', '--binding', binding, '--data-dir', dirs.dataDir, link])
        expect(result.status, result.stderr).to.equal(0)
        const pid = Number(/server pid (\d+)/.exec(result.stdout)?.[1])
        pids.push(pid)
        for (const name of [link, dirs.mnt]) {
          const status = runCli(['status', '--json', name])
          expect(status.status, status.stderr).to.equal(0)
          expect(JSON.parse(status.stdout).mounts.map((m: {mountpoint: string; state: string}) => [m.mountpoint, m.state])).to.deep.equal([[dirs.mnt, 'live']])
        }

        const umount = runCli(['umount', link])
        expect(umount.status, umount.stderr).to.equal(0)
        expect(alive(pid), 'the server is gone when umount returns').to.equal(false)
        expect(clean(dirs.dataDir)).to.equal(true)
      } finally {
        fs.rmSync(link, {force: true})
      }
    })

    it('umount of a busy mount exits 32 and leaves it mounted; -l detaches it, and the server closes once the file is closed', async () => {
      const m = await foreground()
      fs.writeFileSync(path.join(dirs.mnt, 'held'), 'open')
      hold(path.join(dirs.mnt, 'held'))
      expectOneLine(runCli(['umount', dirs.mnt]), 32, /is busy .*-l.*--force/)
      expect(isMounted(dirs.mnt)).to.equal(true)

      const lazy = runCli(['umount', '-l', dirs.mnt])
      expect(lazy.status, lazy.stderr).to.equal(0)
      expect(isMounted(dirs.mnt)).to.equal(false)
      if (binding === 'll') {
        // The ll server serves the file still open on the detached mount until it is closed.
        expect(lines(lazy.stderr)).to.deep.equal([
          `razorfs: ${dirs.mnt} is detached; its server (pid ${m.proc.pid}) closes the image once the files open on it are closed`,
        ])
        expect(m.proc.exitCode).to.equal(null)
        holders.pop()!.kill('SIGKILL')
      }

      expect(await exitOf(m), m.output()).to.equal(0)
      expect(m.output()).to.include('closed cleanly')
      expect(clean(dirs.dataDir)).to.equal(true)
    })

    it('umount --force stops a server whose mount has a file open: exit 0, image clean', async () => {
      const m = await foreground()
      fs.writeFileSync(path.join(dirs.mnt, 'held'), 'open')
      hold(path.join(dirs.mnt, 'held'))
      const forced = runCli(['umount', '--force', dirs.mnt])
      expect(forced.status, forced.stderr).to.equal(0)
      expect(forced.stdout + forced.stderr).to.equal('')
      expect(alive(m.proc.pid!), 'the server is gone when umount returns').to.equal(false)
      expect(await exitOf(m), m.output()).to.equal(0)
      expect(isMounted(dirs.mnt)).to.equal(false)
      expect(clean(dirs.dataDir)).to.equal(true)
    })

    it('umount exits 32 for what is not a razorfs mount, 16 without a target', () => {
      expectOneLine(runCli(['umount', dirs.mnt]), 32, new RegExp(`${dirs.mnt}: not mounted$`, 'm'))
      expectOneLine(runCli(['umount', '/proc']), 32, /\/proc is not a razorfs mount \(it is proc\)/)
      expectOneLine(runCli(['umount']), 16, /give MOUNTPOINT/)
      expectOneLine(runCli(['umount', '']), 16, /empty string/)
      expectOneLine(runCli(['status', '']), 16, /empty string/)
    })

    it('detached: recovery reaches the terminal; the log has timestamps and only the server writes it', async () => {
      const m = await foreground()
      fs.writeFileSync(path.join(dirs.mnt, 'before-crash'), 'x')
      await m.crash()

      const {pid, stderr} = detached()
      expect(lines(stderr)).to.have.length(1)
      expect(stderr).to.match(/^razorfs mount: the image was not cleanly unmounted: recovered \d+ transactions$/m)
      const log = path.join(dirs.dataDir, 'razorfs.log')
      const logged = lines(fs.readFileSync(log, 'utf8'))
      expect(logged.length).to.be.greaterThan(0)
      for (const line of logged) expect(line).to.match(TIMESTAMPED)
      expect(logged.join('\n')).to.include(`[${pid}] razorfs mount: the image was not cleanly unmounted`)

      // A second mount of the same image fails on the terminal, and writes nothing in the server's log.
      const before = fs.readFileSync(log)
      const other = path.join(dirs.root, 'other')
      fs.mkdirSync(other)
      expectOneLine(runCli(['mount', '--binding', binding, '--data-dir', dirs.dataDir, other]), 1, new RegExp(`in use by pid ${pid}`))
      expect(fs.readFileSync(log).equals(before), 'the log is unchanged').to.equal(true)
      expect(isMounted(other)).to.equal(false)

      const um = runCli(['umount', dirs.mnt])
      expect(um.status, um.stderr).to.equal(0)
      const after = lines(fs.readFileSync(log, 'utf8'))
      for (const line of after) expect(line).to.match(TIMESTAMPED)
      expect(after.at(-1)).to.match(new RegExp(`\\[${pid}\\] razorfs mount: image \\S+ closed cleanly$`))
    })
  })
}
