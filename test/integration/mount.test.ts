/**
 * `razorfs mount` with real mounts (issue 3): the foreground server and its signals, outside
 * unmounts, the detached server, the errors a mount can meet, read-only mounts, and the crash
 * scenario that motivated the project (kill -9, cleared /dev/shm, remount).
 */
import {expect} from 'chai'
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {Image} from '../../src/storage/index.js'
import {lines, runCli, stackLines} from '../helpers/cli.js'
import {cleanupMount, isMounted, mount, type Mounted, mountDirs, until} from '../helpers/mount.js'

type Dirs = ReturnType<typeof mountDirs>

/** Wait for `proc` to exit (at most `ms`); its exit code, or 'signal:NAME'. */
async function waitExit(proc: ChildProcess, ms = 10_000): Promise<number | string> {
  const result = () => (proc.exitCode === null ? `signal:${proc.signalCode}` : proc.exitCode)
  if (proc.exitCode !== null || proc.signalCode !== null) return result()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`process ${proc.pid} did not exit within ${ms} ms`)), ms)
    proc.once('exit', () => {
      clearTimeout(timer)
      resolve(result())
    })
  })
}

/** Is `pid` a live process (not gone, not a zombie nobody reaped)? */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

/** The recovery state a read-only open sees: what the last server left in the headers. */
function recovery(dataDir: string): {wasClean: boolean; transactions: number} {
  const image = Image.open(dataDir, {readOnly: true})
  try {
    return image.info().recovery
  } finally {
    image.close()
  }
}

/** sha256 of every file under `dir` (relative path -> hash), except the log and the lock. */
function hashes(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (sub: string): void => {
    for (const entry of fs.readdirSync(path.join(dir, sub), {withFileTypes: true})) {
      const rel = path.join(sub, entry.name)
      if (entry.isDirectory()) walk(rel)
      else if (rel !== 'razorfs.log' && rel !== 'lock')
        out[rel] = crypto
          .createHash('sha256')
          .update(fs.readFileSync(path.join(dir, rel)))
          .digest('hex')
    }
  }

  walk('')
  return out
}

/** A failure: non-zero status, exactly one line on stderr, `razorfs: ...`, no stack trace. */
function expectOneLineError(result: ReturnType<typeof runCli>, pattern: RegExp): void {
  expect(result.status, result.stderr).to.not.equal(0)
  expect(stackLines(result.stderr), result.stderr).to.deep.equal([])
  expect(lines(result.stderr), result.stderr).to.have.length(1)
  expect(result.stderr).to.match(/^razorfs: /)
  expect(result.stderr).to.match(pattern)
}

for (const binding of ['ll', 'fuse-native'] as const) {
  describe(`razorfs mount (real FUSE mounts, ${binding})`, function () {
    this.timeout(60_000)

    let dirs: Dirs
    /** Extra mountpoints and servers a test made; all cleaned up after it, whatever happened. */
    let extraMnts: string[]
    let servers: Mounted[]
    let pids: number[]

    beforeEach(() => {
      dirs = mountDirs()
      extraMnts = []
      servers = []
      pids = []
    })

    afterEach(async () => {
      for (const m of servers) m.proc.kill('SIGKILL')
      for (const pid of pids) {
        // Only a detached razorfs server this test started (never a recycled pid).
        try {
          if (alive(pid) && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dirs.dataDir)) process.kill(pid, 'SIGKILL')
        } catch {}
      }

      for (const m of servers) await waitExit(m.proc).catch(() => {})
      for (const mnt of [dirs.mnt, ...extraMnts]) cleanupMount(mnt)
      dirs.remove()
    })

    async function start(opts: {dataDir?: string; mnt?: string; options?: string; extraArgs?: string[]} = {}): Promise<Mounted> {
      const m = await mount({
        dataDir: opts.dataDir ?? dirs.dataDir,
        mnt: opts.mnt ?? dirs.mnt,
        options: opts.options,
        extraArgs: ['--binding', binding, ...(opts.extraArgs ?? [])],
      })
      servers.push(m)
      return m
    }

    it('a server over its resident budget drops clean pages of the image and loses nothing', async () => {
      const m = await start({extraArgs: ['--resident-mib', '1']}) // always over: the server drops clean pages

      const model = new Map<string, string>()
      const pause = () => new Promise(resolve => setTimeout(resolve, 600))
      for (let d = 0; d < 3; d++) fs.mkdirSync(path.join(dirs.mnt, `d${d}`))
      for (let i = 0; i < 1500; i++) {
        const rel = `d${i % 3}/f${i}`
        fs.writeFileSync(path.join(dirs.mnt, rel), `${i}`.repeat(1 + (i % 50)))
        model.set(rel, `${i}`.repeat(1 + (i % 50)))
        if (i % 500 === 499) await pause()
      }

      for (let i = 0; i < 1500; i += 3) {
        const from = `d${i % 3}/f${i}`
        const to = `d${(i + 1) % 3}/r${i}`
        fs.renameSync(path.join(dirs.mnt, from), path.join(dirs.mnt, to))
        model.set(to, model.get(from)!)
        model.delete(from)
      }

      for (let i = 1; i < 1500; i += 7) {
        if (i % 3 === 0) continue // renamed above
        fs.unlinkSync(path.join(dirs.mnt, `d${i % 3}/f${i}`))
        model.delete(`d${i % 3}/f${i}`)
      }

      const read = () => {
        const got = new Map<string, string>()
        for (let d = 0; d < 3; d++)
          for (const name of fs.readdirSync(path.join(dirs.mnt, `d${d}`))) got.set(`d${d}/${name}`, fs.readFileSync(path.join(dirs.mnt, `d${d}`, name), 'utf8'))
        return got
      }

      await pause()
      expect(read()).to.deep.equal(model)
      await pause()
      expect(await m.stop('SIGTERM')).to.equal(0)
      await start()
      expect(read()).to.deep.equal(model)
    })

    describe('in the foreground', () => {
      for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
        it(`prints one "mounted" line, and on ${signal} exits 0, unmounted, with the image clean`, async () => {
          const m = await start()
          fs.writeFileSync(path.join(dirs.mnt, 'f'), signal)
          m.proc.kill(signal)
          expect(await waitExit(m.proc), m.output()).to.equal(0)
          expect(isMounted(dirs.mnt), 'still mounted').to.equal(false)
          expect(lines(m.stdout())).to.deep.equal([`mounted ${dirs.dataDir} on ${dirs.mnt}`])
          expect(stackLines(m.output())).to.deep.equal([])
          expect(recovery(dirs.dataDir).wasClean, m.output()).to.equal(true)
        })
      }

      it('creates an image in a data dir that holds none', async () => {
        expect(fs.existsSync(dirs.dataDir)).to.equal(false)
        const m = await start()
        expect(Image.exists(dirs.dataDir)).to.equal(true)
        expect(fs.readdirSync(dirs.mnt)).to.deep.equal([])
        expect(await m.stop('SIGTERM')).to.equal(0)
      })

      it('gives real statfs figures', async () => {
        const m = await start()
        fs.writeFileSync(path.join(dirs.mnt, 'a'), 'x')
        const st = fs.statfsSync(dirs.mnt)
        expect(st.bsize).to.be.greaterThan(0)
        expect(st.blocks).to.be.greaterThan(0)
        expect(st.bfree).to.be.greaterThan(0)
        expect(st.files).to.be.greaterThan(0)
        expect(st.ffree).to.be.greaterThan(0).and.lessThan(st.files)
        const df = spawnSync('df', ['-P', dirs.mnt], {encoding: 'utf8'})
        expect(df.status, df.stderr).to.equal(0)
        expect(Number(df.stdout.trim().split('\n').at(-1)!.split(/\s+/)[1])).to.be.greaterThan(0)
        expect(await m.stop()).to.equal(0)
      })
    })

    if (binding === 'll') {
      it('a mountpoint with a space: SIGTERM with a file held open aborts the FUSE connection and ends clean', async () => {
        const mnt = path.join(dirs.root, 'mount point with spaces')
        extraMnts.push(mnt)
        const m = await start({mnt})
        fs.writeFileSync(path.join(mnt, 'held'), 'open elsewhere')
        // Another process keeps the file open, so the detached mount outlives the unmount.
        const fd = fs.openSync(path.join(mnt, 'held'), 'r')
        const holder = spawn('sleep', ['60'], {stdio: [fd, 'ignore', 'ignore']})
        fs.closeSync(fd)
        try {
          m.proc.kill('SIGTERM')
          expect(await waitExit(m.proc, 20_000), m.output()).to.equal(0)
          expect(m.output()).to.match(/aborting FUSE connection \d+/)
          expect(m.output()).to.include('closed cleanly')
          expect(isMounted(mnt)).to.equal(false)
        } finally {
          holder.kill('SIGKILL')
        }
      })
    }

    describe('an outside unmount', () => {
      for (const [name, cmd] of [
        ['fusermount3 -u', ['fusermount3', '-u']],
        ['umount', ['umount']],
      ] as const) {
        it(`(${name}) ends the server: exit 0, image clean`, async () => {
          const m = await start()
          fs.writeFileSync(path.join(dirs.mnt, 'f'), 'data')
          const result = spawnSync(cmd[0], [...cmd.slice(1), dirs.mnt], {encoding: 'utf8'})
          expect(result.status, result.stderr).to.equal(0)
          expect(await waitExit(m.proc), m.output()).to.equal(0)
          expect(isMounted(dirs.mnt)).to.equal(false)
          expect(recovery(dirs.dataDir).wasClean, m.output()).to.equal(true)
          expect(m.output()).to.include('unmounted from outside')
        })
      }
    })

    describe('detached (without -f)', () => {
      it('returns once the mount is live, keeps serving, logs to DATA-DIR/razorfs.log, ends on fusermount3 -u', async () => {
        const result = runCli(['mount', '--binding', binding, '--data-dir', dirs.dataDir, dirs.mnt])
        const live = isMounted(dirs.mnt)
        const pid = Number(/server pid (\d+)/.exec(result.stdout)?.[1])
        if (pid > 0) pids.push(pid)
        expect(result.status, result.stderr).to.equal(0)
        expect(live, 'mounted when the command returned').to.equal(true)
        expect(lines(result.stdout)).to.have.length(1)
        expect(result.stdout).to.include(`mounted ${dirs.dataDir} on ${dirs.mnt}`)
        expect(pid).to.be.greaterThan(0)
        expect(alive(pid)).to.equal(true)

        fs.writeFileSync(path.join(dirs.mnt, 'detached.txt'), 'hello')
        expect(fs.readFileSync(path.join(dirs.mnt, 'detached.txt'), 'utf8')).to.equal('hello')
        const log = path.join(dirs.dataDir, 'razorfs.log')
        expect(fs.readFileSync(log, 'utf8')).to.include(`mounted ${dirs.dataDir} on ${dirs.mnt}`)

        const um = spawnSync('fusermount3', ['-u', dirs.mnt], {encoding: 'utf8'})
        expect(um.status, um.stderr).to.equal(0)
        await until(`server pid ${pid} to exit`, () => !alive(pid))
        expect(recovery(dirs.dataDir).wasClean).to.equal(true)
        expect(fs.readFileSync(log, 'utf8')).to.include('closed cleanly')
      })

      it('fails with the reason on one line when the image is busy; the busy image gets "in use by pid N" with -f too', async () => {
        const holder = await start()
        const other = path.join(dirs.root, 'other')
        fs.mkdirSync(other)
        extraMnts.push(other)

        const detached = runCli(['mount', '--binding', binding, '--data-dir', dirs.dataDir, other])
        expectOneLineError(detached, new RegExp(`in use by pid ${holder.proc.pid}`))
        expect(isMounted(other)).to.equal(false)

        const foreground = runCli(['mount', '--binding', binding, '-f', '--data-dir', dirs.dataDir, other])
        expectOneLineError(foreground, new RegExp(`in use by pid ${holder.proc.pid}`))
        expect(foreground.stdout).to.equal('')
        expect(isMounted(other)).to.equal(false)

        // The holder is unharmed.
        fs.writeFileSync(path.join(dirs.mnt, 'still'), 'ok')
        expect(await holder.stop()).to.equal(0)
      })
    })

    describe('errors', () => {
      it('a missing mountpoint is a one-line error (with or without -f) unless --mkdir', async () => {
        const missing = path.join(dirs.root, 'no', 'such')
        extraMnts.push(missing)
        for (const args of [['-f'], []]) {
          const result = runCli(['mount', '--binding', binding, ...args, '--data-dir', dirs.dataDir, missing])
          expectOneLineError(result, /does not exist.*--mkdir/)
          expect(fs.existsSync(missing)).to.equal(false)
        }

        const m = await start({mnt: missing, extraArgs: ['--mkdir']})
        expect(fs.statSync(missing).isDirectory()).to.equal(true)
        expect(isMounted(missing)).to.equal(true)
        expect(await m.stop()).to.equal(0)
      })

      it('a mountpoint that is already a mount is a one-line error', async () => {
        const m = await start()
        const result = runCli(['mount', '--binding', binding, '-f', '--data-dir', path.join(dirs.root, 'data2'), dirs.mnt])
        expectOneLineError(result, /already a mount point/)
        expect(fs.existsSync(path.join(dirs.root, 'data2', 'nodes.dat'))).to.equal(false)
        fs.writeFileSync(path.join(dirs.mnt, 'still'), 'ok')
        expect(await m.stop()).to.equal(0)
      })

      it('a dead mount left by kill -9 is a one-line error saying how to clean it up', async () => {
        const m = await start()
        m.proc.kill('SIGKILL')
        await waitExit(m.proc)
        expect(isMounted(dirs.mnt), 'the dead mount stays').to.equal(true)
        const result = runCli(['mount', '--binding', binding, '-f', '--data-dir', dirs.dataDir, dirs.mnt])
        expectOneLineError(result, /fusermount3 -u/)
        cleanupMount(dirs.mnt)
        const again = await start()
        expect(again.output()).to.include('not cleanly unmounted')
        expect(await again.stop()).to.equal(0)
      })

      it('an unknown -o option is a one-line error', () => {
        for (const args of [['-f'], []]) {
          const result = runCli(['mount', '--binding', binding, ...args, '--data-dir', dirs.dataDir, '-o', 'ro,bogus_opt', dirs.mnt])
          expectOneLineError(result, /bogus_opt/)
          expect(isMounted(dirs.mnt)).to.equal(false)
        }
      })
    })

    it('-o ro: writes fail with EROFS and the image files are byte-identical afterwards', async () => {
      const rw = await start()
      fs.mkdirSync(path.join(dirs.mnt, 'dir'))
      fs.writeFileSync(path.join(dirs.mnt, 'dir', 'file.txt'), 'read me')
      expect(await rw.stop()).to.equal(0)
      const before = hashes(dirs.dataDir)
      expect(Object.keys(before)).to.include('nodes.dat')

      const ro = await start({options: 'ro'})
      expect(fs.readFileSync(path.join(dirs.mnt, 'dir', 'file.txt'), 'utf8')).to.equal('read me')
      const attempts: Array<[string, () => void]> = [
        ['create', () => fs.writeFileSync(path.join(dirs.mnt, 'new'), 'x')],
        ['write', () => fs.appendFileSync(path.join(dirs.mnt, 'dir', 'file.txt'), 'x')],
        ['mkdir', () => fs.mkdirSync(path.join(dirs.mnt, 'd2'))],
        ['unlink', () => fs.unlinkSync(path.join(dirs.mnt, 'dir', 'file.txt'))],
        ['rename', () => fs.renameSync(path.join(dirs.mnt, 'dir'), path.join(dirs.mnt, 'dir3'))],
        ['chmod', () => fs.chmodSync(path.join(dirs.mnt, 'dir'), 0o700)],
        ['utimes', () => fs.utimesSync(path.join(dirs.mnt, 'dir'), 1, 1)],
      ]
      for (const [what, attempt] of attempts) {
        expect(attempt, what).to.throw().with.property('code', 'EROFS')
      }

      fs.readdirSync(path.join(dirs.mnt, 'dir'))
      expect(await ro.stop('SIGINT')).to.equal(0)
      expect(hashes(dirs.dataDir)).to.deep.equal(before)
      expect(recovery(dirs.dataDir).wasClean).to.equal(true)
    })

    it('the motivating scenario: survives unmount, remount, kill -9 and a cleared /dev/shm', async () => {
      const init = runCli(['init', '--data-dir', dirs.dataDir])
      expect(init.status, init.stderr).to.equal(0)
      const file = path.join(dirs.mnt, 'test.txt')

      const first = await start()
      fs.writeFileSync(file, 'hello razorfs\n')
      expect(await first.stop()).to.equal(0)

      const second = await start()
      expect(second.output()).to.not.include('not cleanly unmounted')
      expect(fs.readFileSync(file, 'utf8')).to.equal('hello razorfs\n')
      fs.writeFileSync(path.join(dirs.mnt, 'after-crash.txt'), 'written before kill -9\n')
      fs.mkdirSync(path.join(dirs.mnt, 'sub'))
      await second.crash() // kill -9, then fusermount3 -u of the dead mount
      expect(isMounted(dirs.mnt)).to.equal(false)
      for (const name of fs.readdirSync('/dev/shm')) {
        if (name.startsWith('razorfs')) fs.rmSync(path.join('/dev/shm', name), {recursive: true, force: true})
      }

      const third = await start()
      expect(third.output()).to.match(/not cleanly unmounted: recovered \d+ transactions/)
      expect(fs.readFileSync(file, 'utf8')).to.equal('hello razorfs\n')
      expect(fs.readFileSync(path.join(dirs.mnt, 'after-crash.txt'), 'utf8')).to.equal('written before kill -9\n')
      expect(fs.statSync(path.join(dirs.mnt, 'sub')).isDirectory()).to.equal(true)
      expect(await third.stop()).to.equal(0)
      expect(recovery(dirs.dataDir).wasClean).to.equal(true)
    })

    if (binding === 'll') {
      it('the hidden --loop-threads 2 (libfuse worker threads instead of the JS thread) serves the same and ends clean', async () => {
        const m = await start({extraArgs: ['--loop-threads', '2']})
        const P = (name: string) => path.join(dirs.mnt, name)
        // Four writers at once (the libuv pool), each a file larger than one write request.
        const contents = [0, 1, 2, 3].map(() => crypto.randomBytes(3 * 1024 * 1024 + 17))
        await Promise.all(contents.map((c, i) => fs.promises.writeFile(P(`w${i}`), c)))
        fs.renameSync(P('w0'), P('renamed'))
        fs.unlinkSync(P('w1'))
        expect(fs.readdirSync(dirs.mnt).sort()).to.deep.equal(['renamed', 'w2', 'w3'])
        expect(fs.readFileSync(P('renamed')).equals(contents[0])).to.equal(true)
        expect((await fs.promises.readFile(P('w3'))).equals(contents[3])).to.equal(true)
        expect(await m.stop()).to.equal(0)
        expect(recovery(dirs.dataDir).wasClean).to.equal(true)
      })
    }

    it('mount --help describes the command', () => {
      const result = runCli(['mount', '--binding', binding, '--help'])
      expect(result.status, result.stderr).to.equal(0)
      for (const text of ['USAGE', 'MOUNTPOINT', '--foreground', '--mkdir', '--options', '--data-dir', 'fusermount3 -u']) {
        expect(result.stdout).to.include(text)
      }
    })
  })
}
