/**
 * The razorfs_ll binding on its own: a do-nothing filesystem and a small in-memory one, each
 * served by a child process and mounted for real; and razorfs on it: 64-bit inode numbers and
 * exact nanosecond times through the kernel.
 */
import {expect} from 'chai'
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {cleanupMount, freshStatus, isMounted, mount, mountDirs} from '../helpers/mount.js'

const SERVERS = path.join(path.dirname(fileURLToPath(import.meta.url)), '../helpers/ll-servers.js')
const IMAGE_JS = new URL('../../src/storage/image.js', import.meta.url).pathname

interface Server {
  proc: ChildProcess
  out: () => string
  exited: Promise<number | null>
  /** Send a command (memfs's, see ll-servers.ts) and return its answer line. */
  ask: (command: string) => Promise<string>
}

async function startServer(kind: string, mnt: string, ...args: string[]): Promise<Server> {
  const proc = spawn(process.execPath, [SERVERS, kind, mnt, ...args], {stdio: ['pipe', 'pipe', 'pipe']})
  let out = ''
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()))
  const exited = new Promise<number | null>(resolve => proc.on('exit', code => resolve(code)))
  const deadline = Date.now() + 10_000
  while (!(out.includes('ready') && isMounted(mnt))) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`${kind} server did not come up:\n${out}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }

  const ask = async (command: string): Promise<string> => {
    const from = out.length
    const word = command.split(' ')[0]
    proc.stdin!.write(`${command}\n`)
    for (;;) {
      const line = out
        .slice(from)
        .split('\n')
        .find(l => l.startsWith(`${word} `))
      if (line !== undefined) return line
      if (proc.exitCode !== null) throw new Error(`${kind} server exited before answering ${command}:\n${out}`)
      await new Promise(resolve => setTimeout(resolve, 5))
    }
  }

  return {proc, out: () => out, exited, ask}
}

describe('the ll binding (libfuse 3 low-level, our addon)', function () {
  this.timeout(60_000)
  let root: string
  let mnt: string

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-ll-'))
    mnt = path.join(root, 'mnt')
    fs.mkdirSync(mnt)
  })

  afterEach(() => {
    cleanupMount(mnt)
    fs.rmSync(root, {recursive: true, force: true})
  })

  it('serves a do-nothing filesystem; an escaped exception is EIO, not a dead mount; SIGTERM ends it', async () => {
    const s = await startServer('noop', mnt)
    fs.closeSync(fs.openSync(path.join(mnt, 'f'), 'w'))
    const fd = fs.openSync(path.join(mnt, 'g'), 'w')
    expect(fs.writeSync(fd, Buffer.alloc(300_000, 1))).to.equal(300_000)
    fs.closeSync(fd)
    expect(fs.statfsSync(mnt).bsize).to.equal(4096)
    expect(() => fs.statSync(path.join(mnt, 'boom')))
      .to.throw()
      .with.property('code', 'EIO')
    expect(fs.readdirSync(mnt)).to.deep.equal([])
    s.proc.kill('SIGTERM')
    expect(await s.exited).to.equal(0)
    expect(s.out()).to.contain('ended')
    expect(isMounted(mnt)).to.equal(false)
  })

  it('serves a small in-memory filesystem with 64-bit inode numbers; an outside unmount ends the session', async () => {
    const s = await startServer('memfs', mnt)
    fs.mkdirSync(path.join(mnt, 'd'))
    fs.writeFileSync(path.join(mnt, 'd', 'hello.txt'), 'hello, world')
    expect(fs.readFileSync(path.join(mnt, 'd', 'hello.txt'), 'utf8')).to.equal('hello, world')
    expect(fs.readdirSync(path.join(mnt, 'd'))).to.deep.equal(['hello.txt'])
    const st = fs.statSync(path.join(mnt, 'd', 'hello.txt'), {bigint: true})
    expect(st.ino > 2n ** 32n, `st_ino ${st.ino}`).to.equal(true)
    expect(() => fs.statSync(path.join(mnt, 'boom')))
      .to.throw()
      .with.property('code', 'EIO')
    expect(fs.existsSync(path.join(mnt, 'd'))).to.equal(true) // still alive after the exception
    fs.unlinkSync(path.join(mnt, 'd', 'hello.txt'))
    fs.rmdirSync(path.join(mnt, 'd'))
    expect(spawnSync('fusermount3', ['-u', mnt]).status).to.equal(0)
    expect(await s.exited).to.equal(0)
    expect(s.out()).to.contain('ended')
  })

  for (const threads of ['0', '2']) {
    it(`invalidates the kernel's cached attributes, pages and names on request (session on ${threads === '0' ? 'the JS thread' : '2 loop threads'}), even from inside a related request`, async () => {
      const s = await startServer('memfs', mnt, threads, '3600')
      const counts = async (): Promise<number[]> => (await s.ask('counts')).split(' ').slice(1).map(Number)
      const f = path.join(mnt, 'f')
      fs.writeFileSync(f, 'aaaa')
      expect(fs.statSync(f).mode & 0o7777).to.equal(0o644)
      // Cached: stats reach no server, and a change behind the kernel's back stays unseen...
      const served = await counts()
      for (let i = 0; i < 10; i++) fs.statSync(f)
      await s.ask('chmod f 600')
      expect(fs.statSync(f).mode & 0o7777).to.equal(0o644)
      expect(await counts()).to.deep.equal(served)
      // ...until the inode is invalidated: the next stat asks the server.
      expect(await s.ask('inval-attr f')).to.equal('inval-attr 1 0 0')
      expect(fs.statSync(f).mode & 0o7777).to.equal(0o600)
      expect((await counts())[1]).to.equal(served[1] + 1)

      // An open file's cached pages, dropped by an invalidation with a range.
      const fd = fs.openSync(f, 'r')
      const read = (): string => {
        const b = Buffer.alloc(4)
        return b.subarray(0, fs.readSync(fd, b, 0, 4, 0)).toString()
      }

      expect(read()).to.equal('aaaa')
      await s.ask('write f bbbb')
      expect(read()).to.equal('aaaa')
      await s.ask('inval-attr f') // the attributes only: the pages stay
      expect(read()).to.equal('aaaa')
      expect(await s.ask('inval-data f')).to.equal('inval-data 3 0 0')
      expect(read()).to.equal('bbbb')
      fs.closeSync(fd)

      // A cached name: still found after a rename behind the kernel's back, gone once invalidated.
      await s.ask('rename f g')
      expect(fs.existsSync(f)).to.equal(true)
      expect(await s.ask('inval-entry f')).to.equal('inval-entry 4 0 0')
      expect(fs.existsSync(f)).to.equal(false)
      expect(fs.readFileSync(path.join(mnt, 'g'), 'utf8')).to.equal('bbbb')

      // Queued while the lookup of that very name waits for its answer: written from the JS
      // thread, the invalidation would wait for the directory's lock the lookup holds, and the
      // lookup for the JS thread.
      expect(() => fs.statSync(path.join(mnt, 'notify-me')))
        .to.throw()
        .with.property('code', 'ENOENT')
      expect(await s.ask('inval-entry g')).to.match(/^inval-entry 7 0 0$/)
      expect(fs.existsSync(path.join(mnt, 'g'))).to.equal(true)
      s.proc.kill('SIGTERM')
      expect(await s.exited).to.equal(0)
    })
  }

  describe('razorfs on ll', () => {
    it('an inode number above 2^32 (a reused slot) round-trips through the kernel', async () => {
      const dirs = mountDirs('razorfs-ll-ino-')
      try {
        const m = await mount({dataDir: dirs.dataDir, mnt: dirs.mnt, extraArgs: ['--binding', 'll']})
        // The first file takes slot 2 (generation 0); after it is freed, the next file reuses
        // the slot with generation 1: inode number 2 + 2^32.
        fs.writeFileSync(path.join(dirs.mnt, 'first'), 'x')
        fs.unlinkSync(path.join(dirs.mnt, 'first'))
        fs.writeFileSync(path.join(dirs.mnt, 'second'), 'y')
        const st = fs.statSync(path.join(dirs.mnt, 'second'), {bigint: true})
        expect(await m.stop()).to.equal(0)
        const code = `import {Image} from ${JSON.stringify(IMAGE_JS)}
          const img = Image.open(process.argv[1], {readOnly: true}); console.log(img.lookup(1, 'second')); img.close()`
        const ino = BigInt(spawnSync(process.execPath, ['--input-type=module', '-e', code, dirs.dataDir], {encoding: 'utf8'}).stdout.trim())
        expect(ino > 2n ** 32n, `razorfs inode ${ino}`).to.equal(true)
        expect(st.ino).to.equal(ino)
      } finally {
        dirs.remove()
      }
    })

    it('fallocate, lseek SEEK_DATA / SEEK_HOLE and copy_file_range go through to the core', async () => {
      const dirs = mountDirs('razorfs-ll-ranges-')
      try {
        const m = await mount({dataDir: dirs.dataDir, mnt: dirs.mnt, extraArgs: ['--binding', 'll']})
        // fallocate(2) itself (not posix_fallocate, which writes zeros where fallocate fails).
        const code = `import ctypes, errno, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def fallocate(fd, mode, off, length):
    if libc.fallocate(fd, mode, ctypes.c_int64(off), ctypes.c_int64(length)) == 0: return 'OK'
    return errno.errorcode[ctypes.get_errno()]
def seek(fd, off, whence):
    try: return os.lseek(fd, off, whence)
    except OSError as e: return errno.errorcode[e.errno]
r = {}
f = os.open(sys.argv[1] + '/f', os.O_RDWR | os.O_CREAT, 0o644)
os.write(f, b'abcdef')
r['grow'] = [fallocate(f, 0, 4, 6), os.fstat(f).st_size]
r['inside'] = [fallocate(f, 0, 0, 3), os.fstat(f).st_size]
r['punch'] = fallocate(f, 3, 0, 2)
r['seek'] = [seek(f, 2, os.SEEK_DATA), seek(f, 2, os.SEEK_HOLE), seek(f, 10, os.SEEK_DATA), seek(f, 11, os.SEEK_HOLE)]
g = os.open(sys.argv[1] + '/g', os.O_RDWR | os.O_CREAT, 0o644)
os.write(g, b'0123')
r['copied'] = os.copy_file_range(f, g, 100, 1, 2)
r['g'] = open(sys.argv[1] + '/g', 'rb').read().hex()
print(json.dumps(r))`
        const out = spawnSync('python3', ['-c', code, dirs.mnt], {encoding: 'utf8'})
        expect(out.status, out.stderr).to.equal(0)
        expect(JSON.parse(out.stdout)).to.deep.equal({
          grow: ['OK', 10],
          inside: ['OK', 10],
          punch: 'ENOTSUP' /* EOPNOTSUPP, the same number */,
          seek: [2, 10, 'ENXIO', 'ENXIO'],
          copied: 9,
          g: Buffer.concat([Buffer.from('01bcdef'), Buffer.alloc(4)]).toString('hex'),
        })
        expect(await m.stop()).to.equal(0)
      } finally {
        dirs.remove()
      }
    })

    // Without FUSE_HANDLE_KILLPRIV_V2 the kernel asks before every write whether the file has a
    // security.capability to remove (a GETXATTR); with it, once per inode until its attributes are
    // next refreshed, and the server clears set-user-ID itself (native/kernel.c; posix-ops.test.ts
    // has the writes by another user).
    it('the kernel asks for security.capability once, not before every write (FUSE_HANDLE_KILLPRIV_V2)', async () => {
      const dirs = mountDirs('razorfs-ll-killpriv-')
      const counters = async (): Promise<Record<string, number>> => (await freshStatus(dirs.dataDir)).ops.byOp

      try {
        const f = path.join(dirs.mnt, 'f')
        // A file an earlier mount made: the addon does not answer the question for it (caps.c),
        // so each one reaches the server's counters.
        const first = await mount({dataDir: dirs.dataDir, mnt: dirs.mnt, extraArgs: ['--binding', 'll']})
        fs.writeFileSync(f, 'x')
        expect(await first.stop()).to.equal(0)
        // Writes that reach the server (with passthrough the kernel writes the content file itself).
        const m = await mount({dataDir: dirs.dataDir, mnt: dirs.mnt, options: 'nopassthrough', extraArgs: ['--binding', 'll']})
        const before = await counters()
        const fd = fs.openSync(f, 'r+')
        for (let i = 0; i < 100; i++) fs.writeSync(fd, 'y', i)
        fs.closeSync(fd)
        const after = await counters()
        const delta = (op: string) => (after[op] ?? 0) - (before[op] ?? 0)
        expect(delta('write')).to.equal(100)
        expect(delta('getxattr'), 'security.capability questions for 100 writes').to.be.at.most(2)
        expect(fs.readFileSync(f, 'utf8')).to.equal('y'.repeat(100))
        expect(await m.stop()).to.equal(0)
      } finally {
        dirs.remove()
      }
    })

    it('touch -m -d and touch -a -d store exactly those times, with nanoseconds', async () => {
      const dirs = mountDirs('razorfs-ll-times-')
      try {
        const m = await mount({dataDir: dirs.dataDir, mnt: dirs.mnt, extraArgs: ['--binding', 'll']})
        const f = path.join(dirs.mnt, 'f')
        fs.writeFileSync(f, 'x')
        expect(spawnSync('touch', ['-m', '-d', '@1000000000.123456789', f]).status).to.equal(0)
        expect(spawnSync('touch', ['-a', '-d', '@1100000000.987654321', f]).status).to.equal(0)
        const st = fs.statSync(f, {bigint: true})
        expect(st.mtimeNs).to.equal(1_000_000_000_123_456_789n)
        expect(st.atimeNs).to.equal(1_100_000_000_987_654_321n)
        expect(await m.stop()).to.equal(0)
        // And the image kept them.
        const m2 = await mount({dataDir: dirs.dataDir, mnt: dirs.mnt, extraArgs: ['--binding', 'll']})
        const again = fs.statSync(f, {bigint: true})
        expect(again.mtimeNs).to.equal(1_000_000_000_123_456_789n)
        expect(again.atimeNs).to.equal(1_100_000_000_987_654_321n)
        expect(await m2.stop()).to.equal(0)
      } finally {
        dirs.remove()
      }
    })
  })
})
