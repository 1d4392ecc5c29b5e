/**
 * The storage interface's own test suite: what every Volume must do (docs/STORAGE-INTERFACE.md),
 * written against the interface alone. A backend runs it by calling volumeSuite with a factory of
 * fresh volumes (test/unit/storage/volume-image.test.ts for the mmap image):
 *
 *   volumeSuite('my backend', () => ({volume, reopen, crash, dispose}))
 *
 * Every case starts from a new, empty volume. Refusals are checked by their errno code, and a
 * refused operation must leave the whole volume as it was (every inode's attributes, times
 * included, names, contents, targets and xattrs).
 */
import {expect} from 'chai'
import {createHash} from 'node:crypto'
import fs from 'node:fs'

import {
  FILE_SIZE_MAX,
  NAME_MAX,
  PATH_MAX,
  RENAME_EXCHANGE,
  RENAME_NOREPLACE,
  ROOT_INO,
  type Timespec,
  XATTR_CREATE,
  XATTR_REPLACE,
  XATTR_SIZE_MAX,
  direntSink,
} from '../../src/storage/types.js'
import type {Volume} from '../../src/storage/volume.js'
import {drainSink, type Listed} from '../helpers/dirents.js'
import {codeOf} from '../helpers/errors.js'

const {S_IFMT, S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK} = fs.constants

/** One volume under test, and what the suite may do to it. */
export interface VolumeHarness {
  /** The volume as it is now (a new object after reopen and crash). */
  readonly volume: Volume
  /** Close the volume cleanly and open the same storage again (read-only if asked). */
  reopen(opts?: {readOnly?: boolean}): Volume
  /**
   * Drop the volume without closing it, as a crash of its process would, and open the same
   * storage again (recovery). Everything made durable by sync or fsync must be back.
   */
  crash(): Volume
  /** Close the volume (if open) and remove everything it stored. */
  dispose(): void
}

/** Makes a new, empty volume: its root a directory, nothing else in it. */
export type VolumeFactory = () => VolumeHarness

/**
 * The harness of a volume that closes and can be dropped as a crash would: `first` is the new
 * volume, `open` opens its storage again (read-only if asked), `remove` takes away what it stored
 * once it is closed.
 */
export function reopeningHarness<V extends Volume & {close(): void; abandon(): void}>(
  first: V,
  open: (opts: {readOnly?: boolean}) => V,
  remove: () => void = () => {},
): VolumeHarness {
  let volume = first
  let closed = false
  return {
    get volume() {
      return volume
    },
    reopen(opts = {}) {
      volume.close()
      volume = open(opts)
      return volume
    },
    crash() {
      volume.abandon()
      volume = open({})
      return volume
    },
    dispose() {
      if (!closed) volume.close()
      closed = true
      remove()
    },
  }
}

const OWNER = {uid: 1000, gid: 1000}
const FILE = {mode: S_IFREG | 0o644, ...OWNER}
const DIR = {mode: S_IFDIR | 0o755, ...OWNER}

/** Wait a few milliseconds, so that a time set now differs from one set before. */
function tick(): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3)
}

function ns(t: Timespec): bigint {
  return BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec)
}

/** Is `t` within a few seconds of the wall clock? */
function isNow(t: Timespec): boolean {
  return Math.abs(t.sec + t.nsec / 1e9 - Date.now() / 1000) < 5
}

/** Everything a volume holds, from the root: per path the inode's attributes, contents, target, xattrs and names. */
export function snapshot(v: Volume): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const visit = (ino: number, where: string): void => {
    const attr = v.getattr(ino)
    const xattrs = Object.fromEntries(
      v
        .listxattr(ino)
        .sort()
        .map(name => [name, v.getxattr(ino, name).toString('hex')]),
    )
    const view: Record<string, unknown> = {attr, xattrs}
    const type = attr.mode & S_IFMT
    if (type === S_IFREG) view.data = contentsHash(v, ino)
    if (type === S_IFLNK) view.target = v.readlink(ino).toString('hex')
    out[where] = view
    if (type !== S_IFDIR) return
    const entries = [...v.readdir(ino)].sort((a, b) => Buffer.compare(a.name, b.name))
    view.entries = entries.map(e => [e.name.toString('hex'), e.ino, e.type])
    view.dotdot = v.lookup(ino, '..')
    for (const e of entries) visit(e.ino, `${where}/${e.name.toString('hex')}`)
  }

  visit(ROOT_INO, '')
  return out
}

function contentsHash(v: Volume, ino: number): string {
  const hash = createHash('sha256')
  const buf = Buffer.alloc(1 << 20)
  for (let pos = 0; ; ) {
    const n = v.read(ino, buf, pos)
    if (n === 0) return `${pos}:${hash.digest('hex')}`
    hash.update(buf.subarray(0, n))
    pos += n
  }
}

function readAll(v: Volume, ino: number): Buffer {
  const buf = Buffer.alloc(v.getattr(ino).size + 16)
  return buf.subarray(0, v.read(ino, buf, 0))
}

function names(v: Volume, dir: number): string[] {
  return [...v.readdir(dir)].map(e => e.name.toString()).sort()
}

/** Every entry a cursor lists from where it stands, `chunk` at a time; `between` runs after each chunk. */
function drainCursor(v: Volume, cursor: ReturnType<Volume['openDirCursor']>, chunk: number, between?: (listed: string[]) => void): Listed[] {
  return drainSink(
    (sink, max) => v.peekDirents(cursor, sink, 0, max),
    n => v.skipDirents(cursor, n),
    chunk,
    between,
  )
}

export function volumeSuite(name: string, factory: VolumeFactory): void {
  describe(`storage interface: ${name}`, function () {
    this.timeout(120_000)
    let h: VolumeHarness
    let v: Volume

    beforeEach(() => {
      h = factory()
      v = h.volume
    })

    afterEach(() => {
      h.dispose()
    })

    const file = (parent: number, n: Buffer | string, data = ''): number => {
      const ino = v.mknod(parent, n, FILE).ino
      if (data !== '') v.write(ino, Buffer.from(data), 0)
      return ino
    }

    const dir = (parent: number, n: string): number => v.mknod(parent, n, DIR).ino

    /** `op` fails with `code` and leaves the volume exactly as it was. */
    const refuses = (code: string, op: () => unknown, what = code): void => {
      const before = snapshot(v)
      expect(codeOf(op), what).to.equal(code)
      expect(snapshot(v), `${what}: the volume is unchanged`).to.deep.equal(before)
    }

    describe('the root, lookup and getattr', () => {
      it('the root is an empty directory that is its own parent', () => {
        const root = v.getattr(ROOT_INO)
        expect(root.ino).to.equal(ROOT_INO)
        expect(root.mode & S_IFMT).to.equal(S_IFDIR)
        expect(root.nlink).to.equal(2)
        expect([...v.readdir(ROOT_INO)]).to.deep.equal([])
        expect(v.lookup(ROOT_INO, '.')).to.equal(ROOT_INO)
        expect(v.lookup(ROOT_INO, '..')).to.equal(ROOT_INO)
        expect(v.readOnly).to.equal(false)
      })

      it('a missing name is 0; a missing or non-directory parent, an unknown inode are refused', () => {
        const f = file(ROOT_INO, 'f')
        expect(v.lookup(ROOT_INO, 'nothing')).to.equal(0)
        expect(codeOf(() => v.lookup(f, 'x'))).to.equal('ENOTDIR')
        expect(codeOf(() => v.lookup(987_654_321, 'x'))).to.equal('ENOENT')
        expect(codeOf(() => v.lookup(ROOT_INO, 'n'.repeat(NAME_MAX + 1)))).to.equal('ENAMETOOLONG')
        for (const ino of [0, -1, 1.5, 987_654_321, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER]) {
          expect(
            codeOf(() => v.getattr(ino)),
            `getattr(${ino})`,
          ).to.equal('ENOENT')
        }
      })

      it('names are bytes: any but / and NUL, up to NAME_MAX of them', () => {
        const odd = Buffer.from([0xff, 0xfe, 0x20, 0x0a, 0xc3])
        const long = Buffer.alloc(NAME_MAX, 0x61)
        const a = file(ROOT_INO, odd)
        const b = file(ROOT_INO, long)
        const c = file(ROOT_INO, '...')
        expect(v.lookup(ROOT_INO, odd)).to.equal(a)
        expect(v.lookup(ROOT_INO, long)).to.equal(b)
        expect(v.lookup(ROOT_INO, '...')).to.equal(c)
        const listed = [...v.readdir(ROOT_INO)].map(e => [e.name.toString('hex'), e.ino])
        expect(listed).to.have.deep.members([
          [odd.toString('hex'), a],
          [long.toString('hex'), b],
          [Buffer.from('...').toString('hex'), c],
        ])
        refuses('ENAMETOOLONG', () => v.mknod(ROOT_INO, Buffer.alloc(NAME_MAX + 1, 0x61), FILE))
        for (const bad of ['', '.', '..', 'a/b', 'a\0b']) refuses('EINVAL', () => v.mknod(ROOT_INO, bad, FILE), `mknod ${JSON.stringify(bad)}`)
      })
    })

    describe('mknod', () => {
      const KINDS = [
        ['regular file', S_IFREG | 0o640, {}],
        ['directory', S_IFDIR | 0o750, {}],
        ['symlink', S_IFLNK | 0o777, {target: 'some/where'}],
        ['FIFO', S_IFIFO | 0o600, {}],
        ['socket', S_IFSOCK | 0o755, {}],
        ['character device', S_IFCHR | 0o620, {rdev: 0x0501}],
        ['block device', S_IFBLK | 0o660, {rdev: 0x0801}],
      ] as const

      for (const [kind, mode, extra] of KINDS) {
        it(`makes a ${kind} with the attributes asked for`, () => {
          const parentBefore = v.getattr(ROOT_INO)
          tick()
          const attr = v.mknod(ROOT_INO, 'node', {mode: mode | 0o4000, uid: 1234, gid: 5678, ...extra})
          const type = mode & S_IFMT
          expect(attr.ino).to.be.a('number').above(0)
          expect(Number.isSafeInteger(attr.ino)).to.equal(true)
          expect(attr.mode).to.equal(mode | 0o4000)
          expect([attr.uid, attr.gid]).to.deep.equal([1234, 5678])
          expect(attr.nlink).to.equal(type === S_IFDIR ? 2 : 1)
          expect(attr.rdev).to.equal('rdev' in extra ? extra.rdev : 0)
          expect(attr.size).to.equal(type === S_IFLNK ? 'some/where'.length : 0)
          expect(isNow(attr.ctime), 'ctime is now').to.equal(true)
          expect(attr.mtime).to.deep.equal(attr.ctime)
          expect(attr.atime).to.deep.equal(attr.ctime)
          expect(v.getattr(attr.ino)).to.deep.equal(attr)
          expect(v.lookup(ROOT_INO, 'node')).to.equal(attr.ino)
          expect([...v.readdir(ROOT_INO)].map(e => [e.name.toString(), e.ino, e.type])).to.deep.equal([['node', attr.ino, type]])
          if (type === S_IFLNK) expect(v.readlink(attr.ino).toString()).to.equal('some/where')
          else expect(codeOf(() => v.readlink(attr.ino))).to.equal('EINVAL')
          if (type === S_IFDIR) {
            expect(v.lookup(attr.ino, '..')).to.equal(ROOT_INO)
            expect(v.lookup(attr.ino, '.')).to.equal(attr.ino)
            expect([...v.readdir(attr.ino)]).to.deep.equal([])
          }

          const parent = v.getattr(ROOT_INO)
          expect(parent.nlink).to.equal(type === S_IFDIR ? 3 : 2)
          expect(ns(parent.mtime) > ns(parentBefore.mtime), "the parent's mtime moves").to.equal(true)
          expect(ns(parent.ctime) > ns(parentBefore.ctime), "the parent's ctime moves").to.equal(true)
        })
      }

      it('refuses an existing name (of any type), a bad parent, an unknown type, and bad symlink targets', () => {
        const f = file(ROOT_INO, 'f', 'data')
        const d = dir(ROOT_INO, 'd')
        v.mknod(ROOT_INO, 'l', {mode: S_IFLNK | 0o777, ...OWNER, target: 'f'})
        for (const taken of ['f', 'd', 'l']) {
          refuses('EEXIST', () => v.mknod(ROOT_INO, taken, FILE), `a file over ${taken}`)
          refuses('EEXIST', () => v.mknod(ROOT_INO, taken, DIR), `a directory over ${taken}`)
        }

        refuses('ENOTDIR', () => v.mknod(f, 'x', FILE))
        refuses('ENOENT', () => v.mknod(987_654_321, 'x', FILE))
        refuses('EINVAL', () => v.mknod(d, 'x', {mode: 0o070644, ...OWNER}), 'unknown type')
        refuses('ENOENT', () => v.mknod(d, 'x', {mode: S_IFLNK | 0o777, ...OWNER, target: ''}), 'empty target')
        refuses('ENAMETOOLONG', () => v.mknod(d, 'x', {mode: S_IFLNK | 0o777, ...OWNER, target: 't'.repeat(PATH_MAX + 1)}), 'long target')
        const longest = v.mknod(d, 'y', {mode: S_IFLNK | 0o777, ...OWNER, target: Buffer.alloc(PATH_MAX, 0x74)})
        expect(v.readlink(longest.ino).length).to.equal(PATH_MAX)
      })
    })

    describe('link, unlink and rmdir', () => {
      it('link adds a name and a link; unlink takes them away, the last one the inode', () => {
        const f = file(ROOT_INO, 'f', 'shared')
        const d = dir(ROOT_INO, 'd')
        const before = v.getattr(f)
        tick()
        const attr = v.link(f, d, 'g')
        expect(attr.ino).to.equal(f)
        expect(attr.nlink).to.equal(2)
        expect(ns(attr.ctime) > ns(before.ctime), 'link sets ctime').to.equal(true)
        expect(v.lookup(d, 'g')).to.equal(f)
        expect(v.getattr(d).nlink, 'a file link is no subdirectory').to.equal(2)
        v.unlink(ROOT_INO, 'f')
        expect(v.lookup(ROOT_INO, 'f')).to.equal(0)
        expect(v.getattr(f).nlink).to.equal(1)
        expect(readAll(v, f).toString()).to.equal('shared')
        v.unlink(d, 'g')
        expect(codeOf(() => v.getattr(f))).to.equal('ENOENT')
        expect(names(v, d)).to.deep.equal([])
      })

      it('refuses links to directories, over existing names, and the wrong kind of removal', () => {
        const f = file(ROOT_INO, 'f')
        const d = dir(ROOT_INO, 'd')
        file(d, 'inside')
        refuses('EPERM', () => v.link(d, ROOT_INO, 'd2'))
        refuses('EEXIST', () => v.link(f, ROOT_INO, 'd'))
        refuses('ENOENT', () => v.link(987_654_321, ROOT_INO, 'x'))
        refuses('ENOTDIR', () => v.link(f, f, 'x'))
        refuses('EISDIR', () => v.unlink(ROOT_INO, 'd'))
        refuses('ENOENT', () => v.unlink(ROOT_INO, 'missing'))
        refuses('ENOTDIR', () => v.rmdir(ROOT_INO, 'f'))
        refuses('ENOTEMPTY', () => v.rmdir(ROOT_INO, 'd'))
        refuses('ENOENT', () => v.rmdir(ROOT_INO, 'missing'))
        refuses('EINVAL', () => v.rmdir(d, '.'))
        refuses('ENOTDIR', () => v.unlink(f, 'x'))
      })

      it('rmdir removes an empty directory and its link in the parent', () => {
        const d = dir(ROOT_INO, 'd')
        const sub = dir(d, 'sub')
        expect(v.getattr(d).nlink).to.equal(3)
        v.rmdir(d, 'sub')
        expect(codeOf(() => v.getattr(sub))).to.equal('ENOENT')
        expect(v.getattr(d).nlink).to.equal(2)
        v.rmdir(ROOT_INO, 'd')
        expect(v.getattr(ROOT_INO).nlink).to.equal(2)
        expect([...v.readdir(ROOT_INO)]).to.deep.equal([])
      })
    })

    describe('rename', () => {
      it('moves a name within and across directories; a moved directory gets its new parent', () => {
        const a = dir(ROOT_INO, 'a')
        const b = dir(ROOT_INO, 'b')
        const f = file(a, 'f', 'x')
        const sub = dir(a, 'sub')
        file(sub, 'deep', 'y')
        v.rename(a, 'f', a, 'g')
        expect([v.lookup(a, 'f'), v.lookup(a, 'g')]).to.deep.equal([0, f])
        v.rename(a, 'g', b, 'h')
        expect(v.lookup(b, 'h')).to.equal(f)
        tick()
        const before = v.getattr(sub)
        v.rename(a, 'sub', b, 'sub2')
        expect(v.lookup(b, 'sub2')).to.equal(sub)
        expect(v.lookup(sub, '..')).to.equal(b)
        expect(v.getattr(a).nlink).to.equal(2)
        expect(v.getattr(b).nlink).to.equal(3)
        expect(ns(v.getattr(sub).ctime) > ns(before.ctime), 'rename sets the ctime of what moves').to.equal(true)
        expect(names(v, sub)).to.deep.equal(['deep'])
        expect(names(v, a)).to.deep.equal([])
        expect(names(v, b)).to.deep.equal(['h', 'sub2'])
      })

      it('replaces a file by a file and an empty directory by a directory', () => {
        const f = file(ROOT_INO, 'f', 'new')
        const old = file(ROOT_INO, 'old', 'old')
        const kept = file(ROOT_INO, 'kept', 'kept')
        v.link(kept, ROOT_INO, 'kept2')
        v.rename(ROOT_INO, 'f', ROOT_INO, 'old')
        expect(v.lookup(ROOT_INO, 'old')).to.equal(f)
        expect(v.lookup(ROOT_INO, 'f')).to.equal(0)
        expect(
          codeOf(() => v.getattr(old)),
          'the replaced inode is gone',
        ).to.equal('ENOENT')
        v.rename(ROOT_INO, 'old', ROOT_INO, 'kept2')
        expect(v.getattr(kept).nlink, 'a replaced name of a linked inode drops one link').to.equal(1)
        expect(readAll(v, kept).toString()).to.equal('kept')
        const d = dir(ROOT_INO, 'd')
        const e = dir(ROOT_INO, 'e')
        dir(d, 'inside')
        v.rename(ROOT_INO, 'd', ROOT_INO, 'e')
        expect(v.lookup(ROOT_INO, 'e')).to.equal(d)
        expect(codeOf(() => v.getattr(e))).to.equal('ENOENT')
        expect(v.getattr(ROOT_INO).nlink).to.equal(3)
        expect(names(v, ROOT_INO)).to.deep.equal(['e', 'kept', 'kept2'])
      })

      it('RENAME_NOREPLACE refuses an existing name and moves to a free one', () => {
        const f = file(ROOT_INO, 'f')
        file(ROOT_INO, 'g')
        refuses('EEXIST', () => v.rename(ROOT_INO, 'f', ROOT_INO, 'g', RENAME_NOREPLACE))
        v.rename(ROOT_INO, 'f', ROOT_INO, 'h', RENAME_NOREPLACE)
        expect(v.lookup(ROOT_INO, 'h')).to.equal(f)
      })

      it('RENAME_EXCHANGE swaps a file and a directory across parents', () => {
        const a = dir(ROOT_INO, 'a')
        const b = dir(ROOT_INO, 'b')
        const f = file(a, 'x', 'file')
        const d = dir(b, 'y')
        v.rename(a, 'x', b, 'y', RENAME_EXCHANGE)
        expect([v.lookup(a, 'x'), v.lookup(b, 'y')]).to.deep.equal([d, f])
        expect([...v.readdir(a)].map(e => [e.name.toString(), e.type])).to.deep.equal([['x', S_IFDIR]])
        expect([...v.readdir(b)].map(e => [e.name.toString(), e.type])).to.deep.equal([['y', S_IFREG]])
        expect(v.lookup(d, '..')).to.equal(a)
        expect([v.getattr(a).nlink, v.getattr(b).nlink]).to.deep.equal([3, 2])
        expect(readAll(v, f).toString()).to.equal('file')
        refuses('ENOENT', () => v.rename(a, 'x', b, 'missing', RENAME_EXCHANGE))
      })

      it('refuses what rename(2) refuses, and leaves everything as it was', () => {
        const d = dir(ROOT_INO, 'd')
        const sub = dir(d, 'sub')
        const full = dir(ROOT_INO, 'full')
        file(full, 'x')
        file(ROOT_INO, 'f')
        refuses('ENOENT', () => v.rename(ROOT_INO, 'missing', ROOT_INO, 'x'))
        refuses('ENOTEMPTY', () => v.rename(ROOT_INO, 'd', ROOT_INO, 'full'))
        refuses('ENOTDIR', () => v.rename(ROOT_INO, 'd', ROOT_INO, 'f'))
        refuses('EISDIR', () => v.rename(ROOT_INO, 'f', ROOT_INO, 'd'))
        refuses('EINVAL', () => v.rename(ROOT_INO, 'd', sub, 'inside'), 'into its own subdirectory')
        refuses('EINVAL', () => v.rename(ROOT_INO, 'd', d, 'self'), 'into itself')
        refuses('EINVAL', () => v.rename(ROOT_INO, 'f', ROOT_INO, 'g', RENAME_NOREPLACE | RENAME_EXCHANGE), 'both flags')
        refuses('EINVAL', () => v.rename(ROOT_INO, 'f', ROOT_INO, 'g', 4), 'an unknown flag')
        refuses('EINVAL', () => v.rename(ROOT_INO, 'd', d, 'sub', RENAME_EXCHANGE), 'an exchange that would put a directory inside itself')
        refuses('EINVAL', () => v.rename(d, 'sub', ROOT_INO, 'd', RENAME_EXCHANGE), 'the same exchange the other way')
        refuses('ENOENT', () => v.rename(ROOT_INO, 'f', 987_654_321, 'x'))
        refuses('ENOTDIR', () => v.rename(ROOT_INO, 'd', v.lookup(ROOT_INO, 'f'), 'x'))
      })

      it('onto itself, or onto another name of the same inode, changes nothing', () => {
        const f = file(ROOT_INO, 'f', 'x')
        v.link(f, ROOT_INO, 'g')
        const before = snapshot(v)
        v.rename(ROOT_INO, 'f', ROOT_INO, 'f')
        v.rename(ROOT_INO, 'f', ROOT_INO, 'g')
        expect(snapshot(v)).to.deep.equal(before)
      })
    })

    describe('setattr', () => {
      it('a size change grows with zeros and shrinks for good, and sets mtime and ctime', () => {
        const f = file(ROOT_INO, 'f', 'abcdefgh')
        const before = v.getattr(f)
        tick()
        let attr = v.setattr(f, {size: 3})
        expect(attr.size).to.equal(3)
        expect(ns(attr.mtime) > ns(before.mtime)).to.equal(true)
        expect(ns(attr.ctime) > ns(before.ctime)).to.equal(true)
        expect(readAll(v, f).toString()).to.equal('abc')
        attr = v.setattr(f, {size: 6})
        expect(readAll(v, f)).to.deep.equal(Buffer.from('abc\0\0\0'))
        v.setattr(f, {size: 0})
        v.setattr(f, {size: 100_000})
        expect(readAll(v, f)).to.deep.equal(Buffer.alloc(100_000))
        expect(v.getattr(f).size).to.equal(100_000)
      })

      it('size is for regular files, from 0 to FILE_SIZE_MAX', () => {
        const f = file(ROOT_INO, 'f', 'x')
        const d = dir(ROOT_INO, 'd')
        const l = v.mknod(ROOT_INO, 'l', {mode: S_IFLNK | 0o777, ...OWNER, target: 'f'}).ino
        const p = v.mknod(ROOT_INO, 'p', {mode: S_IFIFO | 0o644, ...OWNER}).ino
        refuses('EISDIR', () => v.setattr(d, {size: 0}))
        refuses('EINVAL', () => v.setattr(l, {size: 0}))
        refuses('EINVAL', () => v.setattr(p, {size: 0}))
        refuses('EINVAL', () => v.setattr(f, {size: -1}))
        refuses('EINVAL', () => v.setattr(f, {size: 1.5}))
        refuses('EFBIG', () => v.setattr(f, {size: FILE_SIZE_MAX + 1}))
        refuses('ENOENT', () => v.setattr(987_654_321, {mode: 0o600}))
      })

      it('mode changes the permission bits only; uid, gid and times are set as given', () => {
        const f = file(ROOT_INO, 'f')
        const before = v.getattr(f)
        tick()
        let attr = v.setattr(f, {mode: S_IFDIR | 0o6711})
        expect(attr.mode).to.equal(S_IFREG | 0o6711)
        expect(ns(attr.ctime) > ns(before.ctime)).to.equal(true)
        expect(attr.mtime, 'chmod leaves mtime').to.deep.equal(before.mtime)
        attr = v.setattr(f, {uid: 0, gid: 4_000_000_000})
        expect([attr.uid, attr.gid]).to.deep.equal([0, 4_000_000_000])
        const atime = {sec: 2 ** 32 + 5, nsec: 999_999_999}
        const mtime = {sec: -86_400, nsec: 1}
        attr = v.setattr(f, {atime, mtime})
        expect([attr.atime, attr.mtime]).to.deep.equal([atime, mtime])
        expect(isNow(attr.ctime)).to.equal(true)
        attr = v.setattr(f, {atime: 'now'})
        expect(isNow(attr.atime)).to.equal(true)
        expect(attr.mtime).to.deep.equal(mtime)
        tick()
        const ctime = attr.ctime
        attr = v.setattr(f, {})
        expect(ns(attr.ctime) > ns(ctime), 'an empty setattr still sets ctime').to.equal(true)
        expect(v.getattr(f)).to.deep.equal(attr)
      })
    })

    describe('contents', () => {
      it('writes and reads back, overwrites in place, and reads short at the end', () => {
        const f = file(ROOT_INO, 'f')
        const before = v.getattr(f)
        tick()
        expect(v.write(f, Buffer.from('hello world'), 0)).to.equal(11)
        const attr = v.getattr(f)
        expect(attr.size).to.equal(11)
        expect(ns(attr.mtime) > ns(before.mtime)).to.equal(true)
        expect(ns(attr.ctime) > ns(before.ctime)).to.equal(true)
        v.write(f, Buffer.from('W'), 6)
        expect(readAll(v, f).toString()).to.equal('hello World')
        const buf = Buffer.alloc(8, 0x2a)
        expect(v.read(f, buf, 7)).to.equal(4)
        expect(buf.subarray(0, 4).toString()).to.equal('orld')
        expect(v.read(f, buf, 11)).to.equal(0)
        expect(v.read(f, buf, 5000)).to.equal(0)
        expect(v.write(f, Buffer.alloc(0), 100)).to.equal(0)
        expect(v.getattr(f).size, 'an empty write does not grow the file').to.equal(11)
      })

      it('a write past the end leaves a hole that reads as zeros', () => {
        const f = file(ROOT_INO, 'f', 'head')
        const at = 3 * 1024 * 1024 + 17
        v.write(f, Buffer.from('tail'), at)
        expect(v.getattr(f).size).to.equal(at + 4)
        const buf = Buffer.alloc(64, 0x2a)
        expect(v.read(f, buf, 1024 * 1024)).to.equal(64)
        expect(buf).to.deep.equal(Buffer.alloc(64))
        expect(v.read(f, buf, at - 2)).to.equal(6)
        expect(buf.subarray(0, 6)).to.deep.equal(Buffer.from('\0\0tail'))
        expect(v.read(f, buf, 0)).to.equal(64)
        expect(buf.subarray(0, 6)).to.deep.equal(Buffer.from('head\0\0'))
      })

      it('keeps a large write whole', () => {
        const f = file(ROOT_INO, 'f')
        const data = Buffer.alloc(5 * 1024 * 1024 + 3)
        for (let i = 0; i + 4 <= data.length; i += 4096) data.writeUInt32LE((i * 2_654_435_761) >>> 0, i)
        v.write(f, data, 1)
        const back = Buffer.alloc(data.length + 10)
        expect(v.read(f, back, 1)).to.equal(data.length)
        expect(back.subarray(0, data.length).equals(data)).to.equal(true)
      })

      it('is for regular files; positions and sizes are checked', () => {
        const f = file(ROOT_INO, 'f', 'x')
        const d = dir(ROOT_INO, 'd')
        const l = v.mknod(ROOT_INO, 'l', {mode: S_IFLNK | 0o777, ...OWNER, target: 'f'}).ino
        const buf = Buffer.alloc(4)
        expect(codeOf(() => v.read(d, buf, 0))).to.equal('EISDIR')
        expect(codeOf(() => v.read(l, buf, 0))).to.equal('EINVAL')
        refuses('EISDIR', () => v.write(d, buf, 0))
        refuses('EINVAL', () => v.write(l, buf, 0))
        refuses('EINVAL', () => v.write(f, buf, -1))
        refuses('EFBIG', () => v.write(f, buf, FILE_SIZE_MAX - 1))
        refuses('ENOENT', () => v.write(987_654_321, buf, 0))
      })
    })

    describe('extended attributes', () => {
      it('set, get, list, replace and remove, on any type of inode', () => {
        const f = file(ROOT_INO, 'f')
        const d = dir(ROOT_INO, 'd')
        const l = v.mknod(ROOT_INO, 'l', {mode: S_IFLNK | 0o777, ...OWNER, target: 'f'}).ino
        const binary = Buffer.from([0, 1, 2, 0xff, 0])
        for (const ino of [f, d, l]) {
          v.setxattr(ino, 'user.a', binary)
          v.setxattr(ino, 'trusted.b', Buffer.alloc(0))
          v.setxattr(ino, 'security.c', Buffer.alloc(XATTR_SIZE_MAX, 7))
          expect(v.listxattr(ino).sort()).to.deep.equal(['security.c', 'trusted.b', 'user.a'])
          expect(v.getxattr(ino, 'user.a')).to.deep.equal(binary)
          expect(v.getxattr(ino, 'trusted.b')).to.deep.equal(Buffer.alloc(0))
          expect(v.getxattr(ino, 'security.c')).to.deep.equal(Buffer.alloc(XATTR_SIZE_MAX, 7))
          v.setxattr(ino, 'user.a', Buffer.from('v2'))
          expect(v.getxattr(ino, 'user.a').toString()).to.equal('v2')
          v.removexattr(ino, 'trusted.b')
          expect(v.listxattr(ino).sort()).to.deep.equal(['security.c', 'user.a'])
          expect(codeOf(() => v.getxattr(ino, 'trusted.b'))).to.equal('ENODATA')
        }

        expect(v.listxattr(ROOT_INO)).to.deep.equal([])
      })

      it('XATTR_CREATE and XATTR_REPLACE; ENODATA for a missing name; ctime moves', () => {
        const f = file(ROOT_INO, 'f')
        const before = v.getattr(f)
        tick()
        refuses('ENODATA', () => v.setxattr(f, 'user.x', Buffer.from('1'), XATTR_REPLACE))
        v.setxattr(f, 'user.x', Buffer.from('1'), XATTR_CREATE)
        expect(ns(v.getattr(f).ctime) > ns(before.ctime)).to.equal(true)
        refuses('EEXIST', () => v.setxattr(f, 'user.x', Buffer.from('2'), XATTR_CREATE))
        v.setxattr(f, 'user.x', Buffer.from('3'), XATTR_REPLACE)
        expect(v.getxattr(f, 'user.x').toString()).to.equal('3')
        expect(codeOf(() => v.getxattr(f, 'user.y'))).to.equal('ENODATA')
        refuses('ENODATA', () => v.removexattr(f, 'user.y'))
        const ctime = v.getattr(f).ctime
        tick()
        v.removexattr(f, 'user.x')
        expect(ns(v.getattr(f).ctime) > ns(ctime)).to.equal(true)
      })

      it('refuses bad names and values whole, keeping what was there', () => {
        const f = file(ROOT_INO, 'f')
        v.setxattr(f, 'user.keep', Buffer.from('kept'))
        refuses('EINVAL', () => v.setxattr(f, '', Buffer.from('x')))
        refuses('ERANGE', () => v.setxattr(f, `user.${'n'.repeat(251)}`, Buffer.from('x')))
        refuses('E2BIG', () => v.setxattr(f, 'user.keep', Buffer.alloc(XATTR_SIZE_MAX + 1)))
        refuses('ENOENT', () => v.setxattr(987_654_321, 'user.a', Buffer.from('x')))
        v.setxattr(f, `user.${'n'.repeat(250)}`, Buffer.from('255 bytes of name'))
        expect(v.getxattr(f, 'user.keep').toString()).to.equal('kept')
      })

      it('go with their inode', () => {
        file(ROOT_INO, 'f')
        v.setxattr(v.lookup(ROOT_INO, 'f'), 'user.a', Buffer.from('x'))
        v.unlink(ROOT_INO, 'f')
        const again = file(ROOT_INO, 'f')
        expect(v.listxattr(again)).to.deep.equal([])
      })
    })

    describe('directory listings', () => {
      /** A directory of `count` files f0..f<count-1> (some with long names); returns it and their inodes by name. */
      const populate = (count: number): {d: number; inos: Map<string, number>} => {
        const d = dir(ROOT_INO, 'd')
        const inos = new Map<string, number>()
        for (let i = 0; i < count; i++) {
          const n = `f${i}${i % 5 === 0 ? '-long'.repeat(20) : ''}`
          inos.set(n, file(d, n))
        }

        return {d, inos}
      }

      it('readdir lists every entry once with its inode and type', () => {
        const {d, inos} = populate(50)
        const sub = dir(d, 'sub')
        const l = v.mknod(d, 'l', {mode: S_IFLNK | 0o777, ...OWNER, target: 'x'}).ino
        const listed = [...v.readdir(d)].map(e => [e.name.toString(), e.ino, e.type])
        expect(listed).to.have.deep.members([...[...inos].map(([n, ino]) => [n, ino, S_IFREG]), ['sub', sub, S_IFDIR], ['l', l, S_IFLNK]])
        expect(listed.length).to.equal(52)
        expect(codeOf(() => [...v.readdir(l)])).to.equal('ENOTDIR')
        expect(codeOf(() => v.openDirCursor(l))).to.equal('ENOTDIR')
        expect(codeOf(() => v.openDirCursor(987_654_321))).to.equal('ENOENT')
      })

      it('a cursor lists what readdir lists, in its order, whatever the chunk; peek does not move, skip does', () => {
        const {d} = populate(40)
        const expected = [...v.readdir(d)].map(e => [e.name.toString(), e.ino, e.type])
        for (const chunk of [1, 3, 16, 1000]) {
          const c = v.openDirCursor(d)
          expect(c.ino).to.equal(d)
          expect(drainCursor(v, c, chunk), `chunk ${chunk}`).to.deep.equal(expected)
          v.closeDirCursor(c)
        }

        const c = v.openDirCursor(d)
        const sink = direntSink(8)
        expect(v.peekDirents(c, sink, 0, 2)).to.equal(2)
        expect(v.peekDirents(c, sink, 0, 2), 'peeking again gives the same').to.equal(2)
        expect(sink.names.subarray(0, sink.ends[0]).toString()).to.equal(expected[0][0])
        // Filling from index 2 keeps what the sink holds before it.
        expect(v.peekDirents(c, sink, 2, 3)).to.equal(3)
        expect(sink.names.subarray(sink.ends[1], sink.ends[2]).toString()).to.equal(expected[0][0])
        expect(sink.names.subarray(0, sink.ends[0]).toString()).to.equal(expected[0][0])
        expect(v.peekDirents(c, sink, 6, 5), 'no more than the sink holds').to.equal(2)
        expect(v.skipDirents(c, 35)).to.equal(35)
        expect(v.skipDirents(c, 10), 'fewer at the end').to.equal(5)
        expect(v.peekDirents(c, sink, 0, 8)).to.equal(0)
        v.rewindDirCursor(c)
        expect(drainCursor(v, c, 7)).to.deep.equal(expected)
        v.closeDirCursor(c)
      })

      it('rewind shows the directory as it is now; a removed directory lists nothing', () => {
        const {d} = populate(5)
        const c = v.openDirCursor(d)
        v.skipDirents(c, 2)
        file(d, 'late')
        v.unlink(d, 'f1')
        v.rewindDirCursor(c)
        expect(
          drainCursor(v, c, 3)
            .map(e => e[0])
            .sort(),
        ).to.deep.equal(names(v, d))
        for (const n of names(v, d)) v.unlink(d, n)
        v.rmdir(ROOT_INO, 'd')
        v.rewindDirCursor(c)
        expect(drainCursor(v, c, 3)).to.deep.equal([])
        v.closeDirCursor(c)
      })

      it('a cursor lists every entry present throughout exactly once, while names come and go', () => {
        const {d, inos} = populate(200)
        const other = dir(ROOT_INO, 'other')
        const c = v.openDirCursor(d)
        const second = v.openDirCursor(d)
        const gone = new Set<string>()
        const goneAhead = new Set<string>()
        let round = 0
        const remove = (n: string | undefined, listed: string[]): void => {
          if (n === undefined || gone.has(n)) return
          if (round % 3 === 0)
            v.rename(d, n, other, n) // away to another directory
          else v.unlink(d, n)
          gone.add(n)
          if (!listed.includes(n)) goneAhead.add(n)
        }

        const listed = drainCursor(v, c, 4, sofar => {
          // Ahead: the entry the cursor stands on and one further; behind: one already listed.
          // New names, and a name made and removed again, come and go meanwhile.
          const ahead: string[] = []
          const peek = direntSink(3)
          const n = v.peekDirents(c, peek, 0, 3)
          for (let i = 0; i < n; i++) ahead.push(peek.names.subarray(i === 0 ? 0 : peek.ends[i - 1], peek.ends[i]).toString())
          remove(ahead[0], sofar)
          remove(ahead[2], sofar)
          remove(
            sofar.find(s => inos.has(s) && !gone.has(s)),
            sofar,
          )
          file(d, `new${round}`)
          file(d, `brief${round}`)
          v.unlink(d, `brief${round}`)
          if (round % 2 === 0) v.skipDirents(second, 3) // another cursor on the same directory moves too
          round++
        })
        const listedNames = listed.map(e => e[0])
        expect(new Set(listedNames).size, 'no entry twice').to.equal(listedNames.length)
        const stayed = [...inos.keys()].filter(n => !gone.has(n))
        expect(listedNames, 'every entry present throughout').to.include.members(stayed)
        expect(
          listedNames.filter(n => goneAhead.has(n)),
          'entries removed before the cursor reached them',
        ).to.deep.equal([])
        for (const [n, ino] of listed) if (inos.has(n)) expect(ino, n).to.equal(inos.get(n))
        expect(goneAhead.size).to.be.greaterThan(40)
        expect(round).to.be.greaterThan(30)
        // The second cursor, moved meanwhile, lists once what stayed beyond it.
        const rest = drainCursor(v, second, 5).map(e => e[0])
        expect(new Set(rest).size).to.equal(rest.length)
        expect(rest.filter(n => gone.has(n))).to.deep.equal([])
        v.closeDirCursor(c)
        v.closeDirCursor(second)
      })
    })

    describe('open handles', () => {
      it('a retained inode outlives its last name until the last release', () => {
        const f = file(ROOT_INO, 'f', 'still here')
        v.retain(f)
        v.retain(f)
        v.unlink(ROOT_INO, 'f')
        expect(v.lookup(ROOT_INO, 'f')).to.equal(0)
        expect(v.getattr(f).nlink).to.equal(0)
        expect(readAll(v, f).toString()).to.equal('still here')
        v.write(f, Buffer.from('!'), 10)
        v.setxattr(f, 'user.a', Buffer.from('x'))
        expect(readAll(v, f).toString()).to.equal('still here!')
        expect(
          codeOf(() => v.link(f, ROOT_INO, 'back')),
          'no new name for an unlinked inode',
        ).to.equal('ENOENT')
        v.release(f)
        expect(v.getattr(f).size).to.equal(11)
        v.release(f)
        expect(codeOf(() => v.getattr(f))).to.equal('ENOENT')
        expect(codeOf(() => v.retain(f))).to.equal('ENOENT')
      })

      it('an inode renamed over while retained lives on the same way', () => {
        const victim = file(ROOT_INO, 'victim', 'old')
        file(ROOT_INO, 'f', 'new')
        v.retain(victim)
        v.rename(ROOT_INO, 'f', ROOT_INO, 'victim')
        expect(readAll(v, victim).toString()).to.equal('old')
        v.release(victim)
        expect(codeOf(() => v.getattr(victim))).to.equal('ENOENT')
      })

      it('one left retained and unlinked by a crash is freed when the volume opens again', () => {
        const ffree = v.statfs().ffree
        const f = file(ROOT_INO, 'f', 'orphan')
        v.retain(f)
        v.unlink(ROOT_INO, 'f')
        v.sync()
        v = h.crash()
        expect(codeOf(() => v.getattr(f))).to.equal('ENOENT')
        expect(v.statfs().ffree).to.equal(ffree)
      })
    })

    describe('transactions', () => {
      it('commit the calls inside as one, and pass the result out', () => {
        const f = file(ROOT_INO, 'f', 'data')
        const got = v.transaction(() => {
          const d = dir(ROOT_INO, 'd')
          v.rename(ROOT_INO, 'f', d, 'g')
          v.setxattr(f, 'user.a', Buffer.from('1'))
          v.transaction(() => v.setattr(f, {mode: 0o600}))
          return d
        })
        expect(v.lookup(ROOT_INO, 'd')).to.equal(got)
        expect(v.lookup(got, 'g')).to.equal(f)
        expect(v.getattr(f).mode).to.equal(S_IFREG | 0o600)
        v = h.crash()
        expect(v.lookup(got, 'g')).to.equal(f)
      })

      it('undo every call inside when one throws, nested ones too', () => {
        const f = file(ROOT_INO, 'f', 'abcdef')
        const d = dir(ROOT_INO, 'd')
        file(d, 'x')
        const before = snapshot(v)
        for (const failing of [
          () => v.rmdir(ROOT_INO, 'd'),
          () => {
            throw new Error('abandoned')
          },
        ]) {
          expect(() =>
            v.transaction(() => {
              file(ROOT_INO, 'new', 'new')
              v.rename(ROOT_INO, 'f', d, 'moved')
              v.transaction(() => {
                v.setattr(f, {mode: 0o600, uid: 7})
                v.setxattr(f, 'user.a', Buffer.from('1'))
                v.unlink(d, 'x')
              })
              v.link(f, ROOT_INO, 'again')
              failing()
            }),
          ).to.throw()
          expect(snapshot(v)).to.deep.equal(before)
        }

        v = h.crash()
        expect(snapshot(v), 'nothing of them after a crash either').to.deep.equal(before)
      })

      it('undo sizes: a write or truncation undone leaves no bytes to reappear', () => {
        const f = file(ROOT_INO, 'f', 'abcdef')
        expect(() =>
          v.transaction(() => {
            v.write(f, Buffer.from('XYZ'), 6)
            v.setattr(f, {size: 2})
            throw new Error('abandoned')
          }),
        ).to.throw('abandoned')
        expect(v.getattr(f).size).to.equal(6)
        expect(readAll(v, f).toString()).to.equal('abcdef')
        v.setattr(f, {size: 12})
        expect(readAll(v, f)).to.deep.equal(Buffer.from('abcdef\0\0\0\0\0\0'))
        const g = file(ROOT_INO, 'g')
        expect(() =>
          v.transaction(() => {
            v.write(g, Buffer.from('first bytes'), 0)
            throw new Error('abandoned')
          }),
        ).to.throw('abandoned')
        expect(v.getattr(g).size).to.equal(0)
        const h2 = file(ROOT_INO, 'h')
        v.setattr(h2, {size: 20})
        v.setattr(g, {size: 20})
        expect(readAll(v, g)).to.deep.equal(Buffer.alloc(20))
        expect(readAll(v, h2)).to.deep.equal(Buffer.alloc(20))
      })

      it('a file shrunk in a transaction cannot grow again before it commits (EINVAL), and nothing of it stays', () => {
        const f = file(ROOT_INO, 'f', 'abcdef')
        expect(
          codeOf(() =>
            v.transaction(() => {
              v.setattr(f, {size: 0})
              v.write(f, Buffer.from('XY'), 0)
            }),
          ),
        ).to.equal('EINVAL')
        expect(v.getattr(f).size).to.equal(6)
        expect(readAll(v, f).toString()).to.equal('abcdef')
        v.setattr(f, {size: 0})
        v.write(f, Buffer.from('XY'), 3)
        v.sync()
        expect(readAll(v, f)).to.deep.equal(Buffer.from('\0\0\0XY'))
        v = h.reopen()
        expect(readAll(v, f)).to.deep.equal(Buffer.from('\0\0\0XY'))
      })

      it('an entry removed under a cursor by a transaction that is undone is still listed', () => {
        const d = dir(ROOT_INO, 'd')
        for (const n of ['a', 'b', 'c']) file(d, n)
        const order = [...v.readdir(d)].map(e => e.name.toString())
        const c = v.openDirCursor(d)
        v.skipDirents(c, 1)
        expect(() =>
          v.transaction(() => {
            v.unlink(d, order[1])
            throw new Error('abandoned')
          }),
        ).to.throw('abandoned')
        expect(drainCursor(v, c, 2).map(e => e[0])).to.deep.equal(order.slice(1))
        v.closeDirCursor(c)
      })
    })

    describe('statfs', () => {
      it('reports consistent figures, NAME_MAX names, and one inode less per inode made', () => {
        const st = v.statfs()
        expect(st.namemax).to.equal(NAME_MAX)
        expect(st.bsize).to.be.above(0)
        expect(st.frsize).to.be.above(0)
        expect(st.bfree).to.be.at.most(st.blocks)
        expect(st.bavail).to.be.at.most(st.bfree)
        expect(st.ffree).to.be.at.most(st.files)
        expect(st.favail).to.be.at.most(st.ffree)
        expect(st.ffree).to.be.above(1000)
        const f = file(ROOT_INO, 'f')
        dir(ROOT_INO, 'd')
        v.link(f, ROOT_INO, 'g')
        expect(v.statfs().ffree).to.equal(st.ffree - 2)
        v.unlink(ROOT_INO, 'f')
        expect(v.statfs().ffree, 'a name less is no inode less').to.equal(st.ffree - 2)
        v.unlink(ROOT_INO, 'g')
        v.rmdir(ROOT_INO, 'd')
        expect(v.statfs().ffree).to.equal(st.ffree)
      })
    })

    describe('inode numbers', () => {
      it('are distinct safe integers, and a freed one is not handed out again', () => {
        const seen = new Set<number>([ROOT_INO])
        const freed: number[] = []
        for (let i = 0; i < 60; i++) {
          const ino = i % 3 === 0 ? dir(ROOT_INO, `n${i}`) : file(ROOT_INO, `n${i}`)
          expect(Number.isSafeInteger(ino) && ino > 0, String(ino)).to.equal(true)
          expect(seen.has(ino), `${ino} handed out twice`).to.equal(false)
          seen.add(ino)
          if (i % 2 === 0) {
            if (i % 3 === 0) v.rmdir(ROOT_INO, `n${i}`)
            else v.unlink(ROOT_INO, `n${i}`)
            freed.push(ino)
          }
        }

        for (const ino of freed)
          expect(
            codeOf(() => v.getattr(ino)),
            `freed ${ino}`,
          ).to.equal('ENOENT')
      })

      it('are stable across close and reopen, with everything else', () => {
        const d = dir(ROOT_INO, 'd')
        const f = file(d, 'f', 'contents')
        v.link(f, ROOT_INO, 'link')
        v.mknod(d, 'l', {mode: S_IFLNK | 0o777, ...OWNER, target: '../link'})
        v.mknod(d, 'dev', {mode: S_IFCHR | 0o600, ...OWNER, rdev: 0x0103})
        v.setxattr(d, 'user.x', Buffer.from('y'))
        v.setattr(f, {atime: {sec: 1, nsec: 2}, mtime: {sec: 3, nsec: 4}})
        const before = snapshot(v)
        v = h.reopen()
        expect(snapshot(v)).to.deep.equal(before)
        expect(v.lookup(d, 'f')).to.equal(f)
        expect(v.getattr(f).ino).to.equal(f)
      })

      it('past 2^32 (where the volume makes them) survive lookup, listings and reopen', function () {
        let wide: {ino: number; n: string} | undefined
        for (let i = 0; i < 64 && wide === undefined; i++) {
          const ino = file(ROOT_INO, `w${i}`)
          if (ino >= 2 ** 32) wide = {ino, n: `w${i}`}
          else v.unlink(ROOT_INO, `w${i}`)
        }

        if (wide === undefined) this.skip()
        const {ino, n} = wide!
        v.setxattr(ino, 'user.a', Buffer.from('wide'))
        const check = (): void => {
          expect(v.lookup(ROOT_INO, n)).to.equal(ino)
          expect(v.getattr(ino).ino).to.equal(ino)
          expect([...v.readdir(ROOT_INO)].find(e => e.name.toString() === n)?.ino).to.equal(ino)
          const c = v.openDirCursor(ROOT_INO)
          expect(drainCursor(v, c, 4).find(e => e[0] === n)?.[1]).to.equal(ino)
          v.closeDirCursor(c)
          expect(v.getxattr(ino, 'user.a').toString()).to.equal('wide')
        }

        check()
        v = h.reopen()
        check()
      })
    })

    describe('durability', () => {
      it("fsync makes a file's contents and name survive a crash", () => {
        const d = dir(ROOT_INO, 'd')
        const f = file(d, 'f')
        const data = Buffer.alloc(300_000, 'razorfs ')
        v.write(f, data, 0)
        v.setattr(f, {size: 250_000})
        v.fsync(f)
        v = h.crash()
        expect(v.lookup(d, 'f')).to.equal(f)
        expect(v.getattr(f).size).to.equal(250_000)
        expect(readAll(v, f).equals(data.subarray(0, 250_000))).to.equal(true)
      })

      it('sync makes every change survive a crash', () => {
        const d = dir(ROOT_INO, 'd')
        const f = file(d, 'f', 'abc')
        file(ROOT_INO, 'gone', 'x')
        v.mknod(d, 'l', {mode: S_IFLNK | 0o777, ...OWNER, target: 'f'})
        v.rename(d, 'f', ROOT_INO, 'moved')
        v.unlink(ROOT_INO, 'gone')
        v.setattr(f, {mode: 0o600, size: 2})
        v.setxattr(f, 'user.a', Buffer.from('1'))
        v.setxattr(d, 'user.b', Buffer.from('2'))
        v.removexattr(d, 'user.b')
        const before = snapshot(v)
        v.sync()
        v = h.crash()
        expect(snapshot(v)).to.deep.equal(before)
      })

      it('a clean close keeps everything, without a sync', () => {
        const f = file(ROOT_INO, 'f', 'x'.repeat(10_000))
        v.write(f, Buffer.from('y'), 20_000)
        v.setxattr(f, 'user.a', Buffer.from('1'))
        const before = snapshot(v)
        v = h.reopen()
        expect(snapshot(v)).to.deep.equal(before)
      })
    })

    describe('a read-only volume', () => {
      it('refuses every change with EROFS and still reads', () => {
        const d = dir(ROOT_INO, 'd')
        const f = file(d, 'f', 'data')
        dir(ROOT_INO, 'empty')
        v.setxattr(f, 'user.a', Buffer.from('1'))
        const before = snapshot(v)
        v = h.reopen({readOnly: true})
        expect(v.readOnly).to.equal(true)
        expect(snapshot(v)).to.deep.equal(before)
        const changes: Array<[string, () => unknown]> = [
          ['mknod', () => v.mknod(d, 'new', FILE)],
          ['link', () => v.link(f, d, 'new')],
          ['unlink', () => v.unlink(d, 'f')],
          ['rmdir', () => v.rmdir(ROOT_INO, 'empty')],
          ['rename', () => v.rename(d, 'f', d, 'g')],
          ['setattr', () => v.setattr(f, {mode: 0o600})],
          ['truncate', () => v.setattr(f, {size: 0})],
          ['write', () => v.write(f, Buffer.from('x'), 0)],
          ['setxattr', () => v.setxattr(f, 'user.b', Buffer.from('2'))],
          ['removexattr', () => v.removexattr(f, 'user.a')],
          ['transaction', () => v.transaction(() => 1)],
        ]
        for (const [what, op] of changes) refuses('EROFS', op, what)
        v.fsync(f)
        v.sync()
        v.retain(f)
        v.release(f)
        expect(snapshot(v)).to.deep.equal(before)
      })
    })
  })
}
