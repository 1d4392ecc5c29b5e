/**
 * The image on disk: header validation, the lock, WAL replay, torn tails, a real kill -9, the
 * bounded log, and that nothing is written to an image that failed validation.
 */
import {expect} from 'chai'
import {spawn, spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import zlib from 'node:zlib'

import {FILES, HEADER, WAL_HEADER, WAL_RECORD, WAL_RECORD_MAGIC} from '../../../src/storage/format.js'
import {Image, ImageError, ROOT_INO} from '../../../src/storage/index.js'
import {WAL_HEADROOM, WAL_MIN_SIZE, WAL_RESERVE} from '../../../src/storage/space.js'

const S_IFREG = 0o100644
const STORAGE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src/storage/index.js')

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of fs.readdirSync(dir)) {
    const p = path.join(dir, name)
    if (fs.statSync(p).isFile()) out[name] = createHash('sha256').update(fs.readFileSync(p)).digest('hex')
  }

  return out
}

function expectImageError(fn: () => unknown, code: string, file: string): ImageError {
  try {
    fn()
  } catch (error) {
    expect(error, String(error)).to.be.instanceOf(ImageError)
    const e = error as ImageError
    expect(e.code, e.message).to.equal(code)
    expect(e.message).to.contain(file)
    expect(e.message).to.not.contain('\n')
    return e
  }

  throw new Error(`expected ${code}, but it opened`)
}

function fixHeaderChecksum(file: string, headerSize: number): void {
  const fd = fs.openSync(file, 'r+')
  const head = Buffer.alloc(headerSize)
  fs.readSync(fd, head, 0, headerSize, 0)
  head.writeUInt32LE(zlib.crc32(head.subarray(4)) >>> 0, 0)
  fs.writeSync(fd, head, 0, headerSize, 0)
  fs.closeSync(fd)
}

/** [offset, length] of each record of the current cycle of a WAL. */
function walRecords(file: string): Array<[number, number]> {
  const bytes = fs.readFileSync(file)
  const out: Array<[number, number]> = []
  let lsn = Number(bytes.readBigUInt64LE(WAL_HEADER.OFF.startLsn))
  for (let at = WAL_HEADER.SIZE; at + WAL_RECORD.SIZE <= bytes.length; lsn++) {
    if (bytes.readUInt32LE(at) !== WAL_RECORD_MAGIC || Number(bytes.readBigUInt64LE(at + WAL_RECORD.OFF.lsn)) !== lsn) break
    const length = bytes.readUInt32LE(at + WAL_RECORD.OFF.length)
    out.push([at, length])
    at += length
  }

  return out
}

function patch(file: string, offset: number, bytes: Buffer): void {
  const fd = fs.openSync(file, 'r+')
  fs.writeSync(fd, bytes, 0, bytes.length, offset)
  fs.closeSync(fd)
}

describe('storage: image files', function () {
  this.timeout(120_000)
  let root: string
  let n = 0
  const fresh = (): string => {
    const dir = path.join(root, `img-${n++}`)
    fs.mkdirSync(dir)
    const image = Image.create(dir, {})
    const d = image.mknod(ROOT_INO, 'docs', {mode: 0o40755, uid: 0, gid: 0})
    const f = image.mknod(d.ino, 'a.txt', {mode: S_IFREG, uid: 0, gid: 0})
    image.write(f.ino, Buffer.from('alpha'), 0)
    image.close()
    return dir
  }

  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-image-'))
  })
  after(() => fs.rmSync(root, {recursive: true, force: true}))

  describe('create and open', () => {
    it('creates 0600 files and reopens with the same contents', () => {
      const dir = fresh()
      for (const spec of FILES) expect(fs.statSync(path.join(dir, spec.name)).mode & 0o777, spec.name).to.equal(0o600)
      expect(fs.statSync(path.join(dir, 'wal.log')).mode & 0o777).to.equal(0o600)
      const image = Image.open(dir)
      const info = image.info()
      expect(info.recovery.wasClean).to.equal(true)
      const f = image.lookup(image.lookup(ROOT_INO, 'docs'), 'a.txt')
      const buf = Buffer.alloc(10)
      expect(buf.subarray(0, image.read(f, buf, 0)).toString()).to.equal('alpha')
      image.close()
    })

    it('refuses to create over an existing image without force', () => {
      const dir = fresh()
      const before = snapshot(dir)
      const e = expectImageError(() => Image.create(dir, {}), 'RZ_EXISTS', dir)
      expect(e.message).to.contain('--force')
      expect(snapshot(dir)).to.deep.equal(before)
      Image.create(dir, {force: true}).close()
      const image = Image.open(dir)
      expect(image.lookup(ROOT_INO, 'docs')).to.equal(0)
      image.close()
    })

    it('says when a directory holds no image', () => {
      const dir = path.join(root, 'empty')
      fs.mkdirSync(dir)
      expectImageError(() => Image.open(dir), 'RZ_NO_IMAGE', dir)
      expect(fs.readdirSync(dir)).to.deep.equal([])
    })
  })

  describe('header validation: refused with the file named, nothing written', () => {
    const cases: Array<[string, (file: string) => void, string]> = [
      ['wrong magic', file => patch(file, 4, Buffer.from('XXXX')), 'RZ_BAD_MAGIC'],
      [
        'a newer format version',
        file => {
          patch(file, HEADER.OFF.formatVersion, Buffer.from([2, 0]))
          fixHeaderChecksum(file, HEADER.SIZE)
        },
        'RZ_VERSION',
      ],
      ['a file cut inside its header', file => fs.truncateSync(file, 100), 'RZ_TRUNCATED'],
      ['a file shorter than its header says', file => fs.truncateSync(file, fs.statSync(file).size - 4096), 'RZ_TRUNCATED'],
      [
        'a bad record size with a good checksum',
        file => {
          patch(file, HEADER.OFF.recordSize, Buffer.from([3, 0, 0, 0]))
          fixHeaderChecksum(file, HEADER.SIZE)
        },
        'RZ_CORRUPTED',
      ],
    ]
    for (const spec of FILES) {
      for (const [what, damage, code] of cases) {
        it(`${spec.name}: ${what} -> ${code}`, () => {
          const dir = fresh()
          const file = path.join(dir, spec.name)
          damage(file)
          const before = snapshot(dir)
          expectImageError(() => Image.open(dir), code, file)
          expectImageError(() => Image.open(dir, {readOnly: true}), code, file)
          expect(snapshot(dir)).to.deep.equal(before)
        })
      }

      it(`${spec.name}: any single flipped byte of the header is refused`, () => {
        const dir = fresh()
        const file = path.join(dir, spec.name)
        const original = fs.readFileSync(file).subarray(0, HEADER.SIZE)
        for (let at = 0; at < HEADER.SIZE; at++) {
          patch(file, at, Buffer.from([original[at] ^ (1 << at % 8)]))
          const before = snapshot(dir)
          try {
            Image.open(dir).close()
            expect.fail(`flipped byte ${at} was not detected`)
          } catch (error) {
            expect(error, `byte ${at}: ${error}`).to.be.instanceOf(ImageError)
            expect((error as Error).message).to.contain(file)
          }

          expect(snapshot(dir), `byte ${at}`).to.deep.equal(before)
          patch(file, at, original.subarray(at, at + 1))
        }

        Image.open(dir).close()
      })
    }

    it('wal.log: a flipped header byte, bad magic, or the log of another image', () => {
      const dir = fresh()
      const wal = path.join(dir, 'wal.log')
      const original = fs.readFileSync(wal)
      for (const at of [0, 5, 10, WAL_HEADER.OFF.uuid + 3, WAL_HEADER.OFF.startLsn, 63]) {
        patch(wal, at, Buffer.from([original[at] ^ 0x10]))
        const before = snapshot(dir)
        expectImageError(() => Image.open(dir), at >= 4 && at < 8 ? 'RZ_BAD_MAGIC' : 'RZ_CHECKSUM', wal)
        expect(snapshot(dir)).to.deep.equal(before)
        fs.writeFileSync(wal, original)
      }

      const other = fresh()
      fs.copyFileSync(path.join(other, 'wal.log'), wal)
      expectImageError(() => Image.open(dir), 'RZ_MISMATCH', wal)
    })

    it('a file of another image is refused', () => {
      const a = fresh()
      const b = fresh()
      fs.copyFileSync(path.join(b, 'strings.dat'), path.join(a, 'strings.dat'))
      expectImageError(() => Image.open(a), 'RZ_MISMATCH', path.join(a, 'strings.dat'))
    })

    it('a missing file is named', () => {
      const dir = fresh()
      fs.rmSync(path.join(dir, 'entries.idx'))
      expectImageError(() => Image.open(dir), 'RZ_MISSING', path.join(dir, 'entries.idx'))
    })

    it('a foreign file in place of nodes.dat is refused, not formatted', () => {
      const dir = fresh()
      const file = path.join(dir, 'nodes.dat')
      fs.writeFileSync(file, Buffer.alloc(65536, 0x41))
      const e = expectImageError(() => Image.open(dir), 'RZ_BAD_MAGIC', file)
      expect(e.message).to.contain('not a razorfs inode table')
      expect(fs.readFileSync(file).every(b => b === 0x41)).to.equal(true)
    })
  })

  describe('write-ahead log', () => {
    it('replays a transaction that reached only the log', () => {
      const dir = fresh()
      const before = snapshot(dir)
      const image = Image.open(dir)
      const opened = snapshot(dir) // the open itself marks the image in use (headers only)
      image.crashAfterNextAppend()
      image.mknod(ROOT_INO, 'only-in-the-log', {mode: S_IFREG, uid: 0, gid: 0})
      image.abandon()
      const after = snapshot(dir)
      for (const spec of FILES) expect(after[spec.name], `${spec.name} changed`).to.equal(opened[spec.name])
      expect(after['wal.log']).to.not.equal(opened['wal.log'])
      expect(before['nodes.dat']).to.not.equal(opened['nodes.dat'])

      // A read-only open replays in memory and writes nothing.
      const ro = Image.open(dir, {readOnly: true})
      expect(ro.lookup(ROOT_INO, 'only-in-the-log')).to.not.equal(0)
      expect(ro.info().recovery).to.deep.include({wasClean: false, transactions: 1})
      ro.close()
      expect(snapshot(dir)).to.deep.equal(after)

      const rw = Image.open(dir)
      expect(rw.info().recovery).to.deep.equal({wasClean: false, transactions: 1, tornBytes: 0})
      expect(rw.lookup(ROOT_INO, 'only-in-the-log')).to.not.equal(0)
      rw.close()
      const again = Image.open(dir)
      expect(again.info().recovery).to.deep.equal({wasClean: true, transactions: 0, tornBytes: 0})
      expect(again.lookup(ROOT_INO, 'only-in-the-log')).to.not.equal(0)
      again.close()
    })

    it('replays transactions of few and of hundreds of changed ranges (the two ways commit orders them)', () => {
      const dir = fresh()
      const image = Image.open(dir)
      const spec = {mode: S_IFREG, uid: 0, gid: 0}
      image.mknod(ROOT_INO, 'alone', spec)
      image.transaction(() => {
        for (let i = 0; i < 200; i++) image.mknod(ROOT_INO, `batch-${i}`, spec)
      })
      image.crashAfterNextAppend()
      image.unlink(ROOT_INO, 'batch-7')
      image.abandon()
      const rw = Image.open(dir)
      expect(rw.info().recovery.transactions).to.equal(3)
      expect(rw.lookup(ROOT_INO, 'alone')).to.not.equal(0)
      for (let i = 0; i < 200; i++) {
        const ino = rw.lookup(ROOT_INO, `batch-${i}`)
        if (i === 7) expect(ino, 'the unlinked one').to.equal(0)
        else expect(ino, `batch-${i}`).to.not.equal(0)
      }

      rw.close()
    })

    it('discards a torn last record and keeps the ones before it', () => {
      for (const cut of [1, 7, 30]) {
        const dir = fresh()
        const image = Image.open(dir)
        image.mknod(ROOT_INO, 'first', {mode: S_IFREG, uid: 0, gid: 0})
        image.mknod(ROOT_INO, 'second', {mode: S_IFREG, uid: 0, gid: 0})
        image.abandon()
        const wal = path.join(dir, 'wal.log')
        const records = walRecords(wal)
        expect(records.length).to.equal(2)
        const [at, length] = records[1]
        fs.truncateSync(wal, at + length - cut)
        const rw = Image.open(dir)
        const {recovery} = rw.info()
        expect(recovery.transactions).to.equal(1)
        expect(recovery.tornBytes).to.be.greaterThan(0)
        expect(rw.lookup(ROOT_INO, 'first')).to.not.equal(0)
        expect(rw.lookup(ROOT_INO, 'second')).to.equal(0)
        rw.close()
      }
    })

    it('a flipped byte inside the last record discards just that record', () => {
      const dir = fresh()
      const image = Image.open(dir)
      image.mknod(ROOT_INO, 'first', {mode: S_IFREG, uid: 0, gid: 0})
      image.mknod(ROOT_INO, 'second', {mode: S_IFREG, uid: 0, gid: 0})
      image.abandon()
      const wal = path.join(dir, 'wal.log')
      const records = walRecords(wal)
      expect(records.length).to.equal(2)
      const [at, length] = records[1]
      const bytes = fs.readFileSync(wal)
      patch(wal, at + length - 20, Buffer.from([bytes[at + length - 20] ^ 0xff]))
      const rw = Image.open(dir)
      expect(rw.info().recovery.tornBytes).to.be.greaterThan(0)
      expect(rw.lookup(ROOT_INO, 'first')).to.not.equal(0)
      expect(rw.lookup(ROOT_INO, 'second')).to.equal(0)
      rw.close()
    })

    it('stays bounded: checkpoints recycle it', () => {
      const dir = fresh()
      const limit = 256 * 1024
      const image = Image.open(dir, {walLimit: limit})
      for (let i = 0; i < 20_000; i++) {
        const f = image.mknod(ROOT_INO, `f${i}`, {mode: S_IFREG, uid: 0, gid: 0})
        if (i % 3 === 0) image.unlink(ROOT_INO, `f${i}`)
        else image.write(f.ino, Buffer.from(`contents ${i}`), 0)
      }

      // The log is allocated ahead (space.ts): at least WAL_MIN_SIZE, and past the limit by at
      // most one record, the headroom and the reserve, rounded up to a MiB.
      const walSize = fs.statSync(path.join(dir, 'wal.log')).size
      expect(walSize).to.be.at.most(Math.max(WAL_MIN_SIZE, Math.ceil((limit + 64 * 1024 + WAL_HEADROOM + WAL_RESERVE) / (1 << 20)) * (1 << 20)))
      image.abandon()
      const rw = Image.open(dir)
      expect(rw.usage().inodes).to.equal(1 + 1 + 1 + 13_333)
      const buf = Buffer.alloc(32)
      const ino = rw.lookup(ROOT_INO, 'f19999')
      expect(buf.subarray(0, rw.read(ino, buf, 0)).toString()).to.equal('contents 19999')
      rw.close()
    })
  })

  describe('lock', () => {
    it('refuses a second opener with its pid, allows read-only, and recovers at once after kill -9', async () => {
      const dir = fresh()
      const script = `
        import {Image} from ${JSON.stringify(STORAGE)}
        const image = Image.open(${JSON.stringify(dir)})
        image.mknod(1, 'from-child', {mode: ${S_IFREG}, uid: 0, gid: 0})
        process.stdout.write('ready\\n')
        setInterval(() => {}, 1000)
      `
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {stdio: ['ignore', 'pipe', 'inherit']})
      try {
        await new Promise<void>((resolve, reject) => {
          child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve())
          child.on('exit', code => reject(new Error(`child exited ${code}`)))
        })
        const e = expectImageError(() => Image.open(dir), 'RZ_LOCKED', dir)
        expect(e.message).to.contain(`pid ${child.pid}`)
        const ro = Image.open(dir, {readOnly: true})
        expect(ro.lookup(ROOT_INO, 'from-child')).to.not.equal(0)
        ro.close()
      } finally {
        child.kill('SIGKILL')
        await new Promise(resolve => child.on('exit', resolve))
      }

      const t0 = Date.now()
      const image = Image.open(dir)
      expect(Date.now() - t0).to.be.lessThan(2000)
      expect(image.info().recovery.wasClean).to.equal(false)
      expect(image.lookup(ROOT_INO, 'from-child')).to.not.equal(0)
      image.close()
    })
  })

  describe('kill -9 of a writer', () => {
    it('keeps every acknowledged operation', async () => {
      const dir = fresh()
      const script = `
        import {Image} from ${JSON.stringify(STORAGE)}
        const image = Image.open(${JSON.stringify(dir)}, {walLimit: 1 << 20})
        for (let i = 0; ; i++) {
          const f = image.mknod(1, 'n' + i, {mode: ${S_IFREG}, uid: 0, gid: 0})
          image.write(f.ino, Buffer.from('data-' + i), 0)
          if (i % 5 === 4) image.rename(1, 'n' + (i - 1), 1, 'n' + (i - 2))
          process.stdout.write(i + '\\n')
        }
      `
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {stdio: ['ignore', 'pipe', 'inherit']})
      let out = ''
      // Killed once it has acknowledged 200 operations (by count, not after a time: a loaded
      // machine writes fewer in a given time).
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString()
          if (out.split('\n').length > 200) resolve()
        })
        child.on('exit', code => reject(new Error(`writer exited ${code} before it was killed`)))
      })
      // 'close', not 'exit': 'exit' may come before the last lines in the pipe are read.
      const closed = new Promise(resolve => child.on('close', resolve))
      child.kill('SIGKILL')
      await closed
      const acked = out
        .split('\n')
        .filter(line => /^\d+$/.test(line))
        .map(Number)
      expect(acked.length).to.be.greaterThan(100)
      const last = acked.at(-1)!
      const image = Image.open(dir)
      const buf = Buffer.alloc(32)
      // The kill may land after iteration last + 1 has done its operations but before it printed
      // its number. An unacknowledged operation may have landed, so when that iteration renames
      // n(last) over n(last - 1), either outcome is right, as long as it is all or nothing.
      const lateRename = (last + 1) % 5 === 4 && image.lookup(ROOT_INO, `n${last}`) === 0
      for (let i = 0; i <= last; i++) {
        // At i % 5 === 4, n(i-1) was renamed over n(i-2).
        const renamedAway = (i % 5 === 3 && i + 1 <= last) || (lateRename && i === last)
        const ino = image.lookup(ROOT_INO, `n${i}`)
        if (renamedAway) {
          expect(ino, `n${i} was renamed away`).to.equal(0)
          continue
        }

        expect(ino, `n${i} acknowledged but missing`).to.not.equal(0)
        const want = (i % 5 === 2 && i + 2 <= last) || (lateRename && i === last - 1) ? `data-${i + 1}` : `data-${i}`
        expect(buf.subarray(0, image.read(ino, buf, 0)).toString(), `n${i}`).to.equal(want)
      }

      image.close()
    })
  })

  describe('contents', () => {
    it('a write past the end after shrink, grow, shrink survives the deferred shrink', () => {
      const dir = fresh()
      const image = Image.open(dir)
      const f = image.mknod(ROOT_INO, 'f', {mode: S_IFREG, uid: 0, gid: 0})
      image.write(f.ino, Buffer.alloc(10_000, 0x61), 0)
      image.setattr(f.ino, {size: 1000})
      image.setattr(f.ino, {size: 8000})
      image.setattr(f.ino, {size: 5000})
      image.write(f.ino, Buffer.alloc(1000, 0x62), 4500)
      image.sync()
      const check = (img: Image): void => {
        const buf = Buffer.alloc(6000)
        expect(img.read(f.ino, buf, 0)).to.equal(5500)
        expect(buf.subarray(0, 1000).every(b => b === 0x61)).to.equal(true)
        expect(buf.subarray(1000, 4500).every(b => b === 0)).to.equal(true)
        expect(buf.subarray(4500, 5500).every(b => b === 0x62)).to.equal(true)
      }

      check(image)
      image.close()
      const again = Image.open(dir)
      check(again)
      again.close()
    })
  })

  describe('a full disk', () => {
    it('fails writes with ENOSPC and leaves the image intact', function () {
      const dir = path.join(root, 'tmpfs')
      fs.mkdirSync(dir)
      const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', dir])
      if (mounted.status !== 0) this.skip()
      try {
        const image = Image.create(dir, {})
        const chunk = Buffer.alloc(64 * 1024, 0x5a)
        const written: string[] = []
        let failure: unknown
        try {
          for (let i = 0; i < 1000; i++) {
            const name = `f${i}`
            const f = image.mknod(ROOT_INO, name, {mode: S_IFREG, uid: 0, gid: 0})
            image.write(f.ino, chunk, 0)
            written.push(name)
          }
        } catch (error) {
          failure = error
        }

        expect((failure as {code?: string})?.code, String(failure)).to.equal('ENOSPC')
        expect(written.length).to.be.greaterThan(5)
        try {
          image.close()
        } catch {
          // The last checkpoint may not fit either; the WAL still holds everything.
        }

        expect(spawnSync('mount', ['-o', 'remount,size=64m', dir]).status).to.equal(0)
        const again = Image.open(dir)
        const buf = Buffer.alloc(chunk.length)
        for (const name of written) {
          const ino = again.lookup(ROOT_INO, name)
          expect(ino, name).to.not.equal(0)
          expect(again.read(ino, buf, 0), name).to.equal(chunk.length)
          expect(buf.equals(chunk), name).to.equal(true)
        }

        again.close()
      } finally {
        spawnSync('umount', ['-l', dir])
      }
    })
  })

  describe('data dir via the CLI', () => {
    it('init makes the dir 0700 and the files 0600', () => {
      const dir = path.join(root, 'cli', 'x')
      const run = spawnSync(process.execPath, [path.resolve('bin/run.js'), 'init', '--data-dir', dir], {encoding: 'utf8'})
      expect(run.status, run.stderr).to.equal(0)
      expect(fs.statSync(dir).mode & 0o777).to.equal(0o700)
      for (const spec of FILES) expect(fs.statSync(path.join(dir, spec.name)).mode & 0o777).to.equal(0o600)
    })
  })
})
