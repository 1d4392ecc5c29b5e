/**
 * A full host filesystem under the data dir (issue 16): the data dir lives on a small loop-mounted
 * ext4 and on a small tmpfs, and the mount is filled until ENOSPC. Deletes must still work and free
 * space, df must say 100%, the server must stay up, unmount must end clean, and remount, fsck,
 * dump and stats must work with no free space at all, every file written before the disk filled
 * reading back byte-exact. Also: an image with holes (as razorfs wrote before it allocated its
 * files) on a full tmpfs, where reading a hole of a mapping used to kill the reader with SIGBUS.
 */
import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {RUN_JS, lines, runCli, stackLines} from '../helpers/cli.js'
import {cleanupMount, mount, type Mounted, mountDirs, until} from '../helpers/mount.js'

type Host = 'ext4' | 'tmpfs'

function run(cmd: string, args: string[]): {status: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string} {
  const r = spawnSync(cmd, args, {encoding: 'utf8', timeout: 60_000})
  if (r.error) throw r.error
  return {status: r.status, signal: r.signal, stderr: r.stderr, stdout: r.stdout}
}

function must(cmd: string, args: string[]): string {
  const r = run(cmd, args)
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr.trim()}`)
  return r.stdout
}

/** Mount a small host filesystem of the given kind on `dir`. */
function mountHost(kind: Host, root: string, dir: string): void {
  fs.mkdirSync(dir, {recursive: true})
  if (kind === 'tmpfs') {
    must('mount', ['-t', 'tmpfs', '-o', 'size=40m', 'tmpfs', dir])
  } else {
    const img = path.join(root, 'host.ext4')
    fs.writeFileSync(img, '')
    fs.truncateSync(img, 48 << 20)
    must('mkfs.ext4', ['-q', '-F', '-m', '0', img]) // no root-reserved blocks: full means full
    must('mount', ['-o', 'loop', img, dir])
  }
}

function freeBytes(dir: string): number {
  const s = fs.statfsSync(dir)
  return s.bavail * s.bsize
}

function sha(data: Buffer): string {
  return crypto.createHash('sha256').update(data).digest('hex')
}

/** Write files of `size` random bytes into `dir` until the host says ENOSPC; returns name -> sha256 of the whole ones. */
function fillWithFiles(dir: string, prefix: string, size: number, limit = 1000): Record<string, string> {
  const written: Record<string, string> = {}
  for (let i = 0; i < limit; i++) {
    const name = `${prefix}${i}`
    const data = crypto.randomBytes(size)
    try {
      fs.writeFileSync(path.join(dir, name), data)
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code, `writing ${name}`).to.equal('ENOSPC')
      return written
    }

    written[name] = sha(data)
  }

  throw new Error(`${dir} never filled up after ${limit} files of ${size} bytes`)
}

/** Fill the host directly (not through razorfs) until it has no space at all. */
function fillHost(dir: string): void {
  const fd = fs.openSync(path.join(dir, `filler-${Date.now()}`), 'w')
  const chunk = Buffer.alloc(64 << 10, 0xab)
  try {
    for (let size = chunk.length; size >= 512; size >>= 1) {
      for (;;) {
        try {
          fs.writeSync(fd, chunk, 0, size)
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error
          break
        }
      }
    }
  } finally {
    fs.closeSync(fd)
  }
}

function python(code: string): {status: number | null; stderr: string} {
  return run('python3', ['-c', code])
}

/** A read-only command on the data dir: exit 0, no signal, no stack trace. */
function readOnlyCommand(args: string[], dataDir: string): string {
  const r = spawnSync(process.execPath, [RUN_JS, ...args, '--data-dir', dataDir], {encoding: 'utf8', maxBuffer: 256 << 20, timeout: 60_000})
  if (r.error) throw r.error
  expect(r.signal, `razorfs ${args.join(' ')} died of a signal: ${r.stderr}`).to.equal(null)
  expect(stackLines(r.stderr)).to.deep.equal([])
  expect(r.status, `razorfs ${args.join(' ')}: ${r.stderr}`).to.equal(0)
  return r.stdout
}

for (const kind of ['ext4', 'tmpfs'] as const) {
  describe(`full disk: the data dir on a full ${kind}`, function () {
    this.timeout(180_000)
    let dirs: ReturnType<typeof mountDirs>
    let host: string
    let dataDir: string
    let m: Mounted | undefined

    beforeEach(() => {
      dirs = mountDirs(`razorfs-full-${kind}-`)
      host = path.join(dirs.root, 'host')
      mountHost(kind, dirs.root, host)
      dataDir = path.join(host, 'rz')
    })

    afterEach(async () => {
      await m?.stop()
      m = undefined
      cleanupMount(dirs.mnt)
      spawnSync('umount', [host], {stdio: 'ignore'})
      dirs.remove()
    })

    it('deletes work and free space, df says 100%, the server stays up, unmount is clean, remount and fsck need no space', async () => {
      m = await mount({dataDir, mnt: dirs.mnt})
      const mnt = dirs.mnt
      // Things to delete once the disk is full: a directory, a file to truncate, an xattr.
      fs.mkdirSync(path.join(mnt, 'dir'))
      fs.writeFileSync(path.join(mnt, 'to-truncate'), crypto.randomBytes(1 << 20))
      fs.writeFileSync(path.join(mnt, 'with-xattr'), 'x')
      expect(
        python(
          `import os; os.setxattr(${JSON.stringify(path.join(mnt, 'with-xattr'))}, 'user.a', b'1' * 3000); os.setxattr(${JSON.stringify(path.join(mnt, 'with-xattr'))}, 'user.b', b'2')`,
        ).status,
      ).to.equal(0)

      const kept = fillWithFiles(mnt, 'big', 1 << 20)
      Object.assign(kept, fillWithFiles(mnt, 'small', 4096))
      // Metadata alone fills it too: creates get ENOSPC cleanly once the image cannot grow.
      let creates = 0
      let createError: string | undefined
      for (; creates < 20_000 && createError === undefined; creates++) {
        try {
          fs.mkdirSync(path.join(mnt, `empty-dir-${creates}`))
        } catch (error) {
          createError = (error as NodeJS.ErrnoException).code
        }
      }

      expect(createError, 'a create on a full host').to.equal('ENOSPC')
      expect(Object.keys(kept).length).to.be.greaterThan(10)
      expect(freeBytes(host)).to.be.lessThan(1 << 20)
      expect(
        lines(must('df', ['--output=pcent', mnt]))
          .at(-1)!
          .trim(),
      ).to.equal('100%')

      // rm of a whole file: succeeds, and its space comes back to the host.
      const before = freeBytes(host)
      const victim = Object.keys(kept).find(n => n.startsWith('big'))!
      expect(run('rm', [path.join(mnt, victim)]).status).to.equal(0)
      delete kept[victim]
      await until("the removed file's space to come back", () => freeBytes(host) >= before + (900 << 10), 5000)

      // Full again; then every other kind of delete.
      fillHost(host)
      expect(freeBytes(host)).to.be.lessThan(64 << 10)
      expect(run('rmdir', [path.join(mnt, 'dir')]).status).to.equal(0)
      expect(run('truncate', ['-s', '1000', path.join(mnt, 'to-truncate')]).status).to.equal(0)
      expect(fs.statSync(path.join(mnt, 'to-truncate')).size).to.equal(1000)
      expect(python(`import os; os.removexattr(${JSON.stringify(path.join(mnt, 'with-xattr'))}, 'user.a')`).status).to.equal(0)
      for (let i = 0; i < 50; i++) fs.rmdirSync(path.join(mnt, `empty-dir-${i}`))
      expect(fs.existsSync(path.join(mnt, 'dir'))).to.equal(false)
      expect(m.proc.exitCode, 'the server is still up').to.equal(null)

      // Unmount on a full host: clean.
      fillHost(host)
      const code = await m.stop('SIGTERM')
      expect(code).to.equal(0)
      expect(m.output()).to.include('closed cleanly')
      m = undefined

      // Nothing free at all; fsck, dump, stats and a remount still work.
      fillHost(host)
      expect(freeBytes(host)).to.be.lessThan(64 << 10)
      expect(readOnlyCommand(['fsck', '-fn'], dataDir)).to.match(/clean/)
      readOnlyCommand(['dump', '--headers'], dataDir)
      readOnlyCommand(['dump', '--json'], dataDir)
      readOnlyCommand(['stats'], dataDir)
      m = await mount({dataDir, mnt: dirs.mnt})
      expect(m.output()).to.not.include('not cleanly unmounted')
      for (const [name, hash] of Object.entries(kept)) {
        expect(sha(fs.readFileSync(path.join(mnt, name))), name).to.equal(hash)
      }

      expect(python(`import os; print(os.listxattr(${JSON.stringify(path.join(mnt, 'with-xattr'))}))`).status).to.equal(0)
      expect(await m.stop('SIGTERM')).to.equal(0)
      m = undefined
      expect(readOnlyCommand(['fsck', '-fn'], dataDir)).to.match(/clean/)
    })

    if (kind === 'tmpfs') {
      it('an image with holes on a full tmpfs: read-only commands read it, a mount says what is missing; no SIGBUS', async () => {
        m = await mount({dataDir, mnt: dirs.mnt})
        for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(dirs.mnt, `f${i}`), `file ${i}`)
        expect(await m.stop('SIGTERM')).to.equal(0)
        m = undefined
        // What razorfs wrote before it allocated its files: the unused tail of nodes.dat is a hole.
        const nodes = path.join(dataDir, 'nodes.dat')
        const size = fs.statSync(nodes).size
        must('fallocate', ['--punch-hole', '--offset', String(size - (64 << 10)), '--length', String(64 << 10), nodes])
        fillHost(host)
        expect(readOnlyCommand(['fsck', '-fn'], dataDir)).to.match(/clean/)
        expect(readOnlyCommand(['dump', '--headers'], dataDir)).to.include('nodes.dat')
        expect(readOnlyCommand(['dump'], dataDir)).to.include('f19')
        readOnlyCommand(['stats'], dataDir)
        const r = runCli(['mount', '-f', '--data-dir', dataDir, dirs.mnt])
        expect(r.signal).to.equal(null)
        expect(r.status).to.not.equal(0)
        expect(stackLines(r.stderr)).to.deep.equal([])
        expect(lines(r.stderr)).to.have.length(1)
        expect(r.stderr)
          .to.include(nodes)
          .and.to.match(/no space left/)
      })
    }
  })
}
