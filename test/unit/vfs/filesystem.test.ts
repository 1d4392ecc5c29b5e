/**
 * POSIX semantics of the filesystem core, without a mount: an Image in a temp dir and a
 * FileSystem over it, called with explicit credentials. Every refusal is checked by its code.
 */
import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {Image, ROOT_INO, XATTR_CREATE, XATTR_REPLACE, direntSink} from '../../../src/storage/index.js'
import {type Cred, F_OK, FileSystem, R_OK, ROOT_CRED, W_OK, X_OK} from '../../../src/vfs/filesystem.js'
import type {Listing} from '../../../src/vfs/listing.js'
import {FsError} from '../../../src/vfs/volume.js'
import {type Listed, drainSink} from '../../helpers/dirents.js'
import {codeOf} from '../../helpers/errors.js'

const {O_RDONLY, O_WRONLY, O_RDWR, O_TRUNC, O_APPEND, O_EXCL} = fs.constants
const S_IFMT = 0o170000
const S_IFREG = 0o100000
const S_IFDIR = 0o040000
const S_IFLNK = 0o120000
const S_IFCHR = 0o020000
const S_IFIFO = 0o010000

const ROOT = ROOT_CRED
const ALICE: Cred = {uid: 1000, gid: 1000}
/** Same primary group as alice. */
const CAROL: Cred = {uid: 1002, gid: 1000}
/** Other to alice; member of 2000 through a supplementary group. */
const BOB: Cred = {uid: 1001, gid: 1001, groups: [2000]}

describe('vfs: the filesystem core (no mount)', function () {
  let dir: string
  let image: Image
  let core: FileSystem

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-vfs-'))
    image = Image.create(dir, {uid: 0, gid: 0, rootMode: 0o777})
    core = new FileSystem(image)
  })

  afterEach(() => {
    image.close()
    fs.rmSync(dir, {recursive: true, force: true})
  })

  /** A regular file in `parent` owned by `cred` with `mode`, holding `data`. */
  function file(name: string, mode: number, cred: Cred = ALICE, data = 'data', parent = ROOT_INO): number {
    const {fh, attr} = core.create(parent, name, 0o600, O_WRONLY | O_EXCL, cred)
    if (data !== '') core.write(fh, Buffer.from(data), 0)
    core.release(fh)
    core.setattr(attr.ino, {mode}, cred)
    return attr.ino
  }

  function mode(ino: number): number {
    return core.getattr(ino).mode & 0o7777
  }

  function readAll(fh: number): string {
    const buf = Buffer.alloc(1000)
    return buf.subarray(0, core.read(fh, buf, 0)).toString()
  }

  function names(ino: number): string[] {
    return [...core.readdir(ino)].map(e => e.name.toString())
  }

  describe('permission classes', () => {
    it('the owner class decides for the owner, even when group and other would allow', () => {
      const ino = file('f', 0o077)
      expect(codeOf(() => core.open(ino, O_RDONLY, ALICE))).to.equal('EACCES')
      expect(codeOf(() => core.open(ino, O_WRONLY, ALICE))).to.equal('EACCES')
      expect(codeOf(() => core.access(ino, R_OK, ALICE))).to.equal('EACCES')
      core.release(core.open(ino, O_RDWR, CAROL))
      core.release(core.open(ino, O_RDWR, BOB))
    })

    it('the group class decides for members, primary or supplementary, even when other would allow', () => {
      const ino = file('f', 0o647)
      expect(codeOf(() => core.open(ino, O_WRONLY, CAROL))).to.equal('EACCES')
      core.release(core.open(ino, O_RDONLY, CAROL))
      core.release(core.open(ino, O_RDWR, BOB))

      core.setattr(ino, {gid: 2000}, ROOT)
      core.setattr(ino, {mode: 0o420}, ROOT)
      core.release(core.open(ino, O_WRONLY, BOB))
      expect(codeOf(() => core.open(ino, O_RDONLY, BOB))).to.equal('EACCES')
      expect(codeOf(() => core.open(ino, O_RDONLY, CAROL))).to.equal('EACCES')
    })

    it('the other class decides for everyone else', () => {
      const ino = file('f', 0o604)
      core.release(core.open(ino, O_RDONLY, BOB))
      expect(codeOf(() => core.open(ino, O_WRONLY, BOB))).to.equal('EACCES')
      expect(codeOf(() => core.access(ino, R_OK | W_OK, BOB))).to.equal('EACCES')
      core.access(ino, R_OK, BOB)
      core.access(ino, F_OK, BOB)
    })

    it('root reads and writes anything, and executes only what has some execute bit', () => {
      const ino = file('f', 0o000)
      core.release(core.open(ino, O_RDWR, ROOT))
      core.access(ino, R_OK | W_OK, ROOT)
      expect(codeOf(() => core.access(ino, X_OK, ROOT))).to.equal('EACCES')
      core.setattr(ino, {mode: 0o010}, ROOT)
      core.access(ino, X_OK, ROOT)
      // A directory is always searchable by root.
      const d = core.mkdir(ROOT_INO, 'd', 0o000, ALICE).ino
      core.access(d, R_OK | W_OK | X_OK, ROOT)
      core.mknod(d, 'inside', S_IFREG | 0o644, 0, ROOT)
      expect(core.lookup(d, 'inside', ROOT).mode & S_IFMT).to.equal(S_IFREG)
      expect(names(d)).to.include('inside')
    })

    it('creating and removing need write and search permission on the directory', () => {
      const d = core.mkdir(ROOT_INO, 'd', 0o755, ALICE).ino
      file('victim', 0o666, ALICE, 'x', d)
      expect(codeOf(() => core.mknod(d, 'x', S_IFREG | 0o644, 0, BOB))).to.equal('EACCES')
      expect(codeOf(() => core.create(d, 'x', 0o644, O_WRONLY, BOB))).to.equal('EACCES')
      expect(codeOf(() => core.mkdir(d, 'x', 0o755, BOB))).to.equal('EACCES')
      expect(codeOf(() => core.symlink(d, 'x', 'target', BOB))).to.equal('EACCES')
      expect(codeOf(() => core.unlink(d, 'victim', BOB))).to.equal('EACCES')
      expect(codeOf(() => core.rename(d, 'victim', ROOT_INO, 'moved', 0, BOB))).to.equal('EACCES')
      expect(codeOf(() => core.link(core.lookup(d, 'victim', BOB).ino, d, 'again', BOB))).to.equal('EACCES')
      // Write without search is not enough either.
      core.setattr(d, {mode: 0o776}, ALICE)
      expect(codeOf(() => core.unlink(d, 'victim', BOB))).to.equal('EACCES')
      core.setattr(d, {mode: 0o773}, ALICE)
      core.unlink(d, 'victim', BOB)
    })

    it('open with O_CREAT of an existing name needs no write permission on the directory; a new name does', () => {
      const d = core.mkdir(ROOT_INO, 'd', 0o755, ALICE).ino
      const ino = file('shared', 0o666, ALICE, 'x', d)
      const opened = core.create(d, 'shared', 0o644, O_WRONLY, BOB)
      expect(opened.created).to.equal(false)
      expect(opened.attr.ino).to.equal(ino)
      core.release(opened.fh)
      expect(codeOf(() => core.create(d, 'shared', 0o644, O_WRONLY | O_EXCL, BOB))).to.equal('EEXIST')
      expect(codeOf(() => core.create(d, 'new', 0o644, O_WRONLY, BOB))).to.equal('EACCES')
      // Without search permission, not even the existing name.
      core.setattr(d, {mode: 0o766}, ALICE)
      expect(codeOf(() => core.create(d, 'shared', 0o644, O_WRONLY, BOB))).to.equal('EACCES')
      const made = core.create(d, 'new', 0o640, O_WRONLY, ALICE)
      expect(made.created).to.equal(true)
      expect(made.attr.mode & 0o7777).to.equal(0o640)
      core.release(made.fh)
    })

    it('unlink and rmdir of a missing name are ENOENT, in a sticky directory too', () => {
      for (const m of [0o777, 0o1777]) {
        const d = core.mkdir(ROOT_INO, `d${m}`, m, ROOT).ino
        expect(codeOf(() => core.unlink(d, 'missing', BOB))).to.equal('ENOENT')
        expect(codeOf(() => core.rmdir(d, 'missing', BOB))).to.equal('ENOENT')
      }
    })

    it('moving a directory to another parent needs write permission on it (its ..)', () => {
      const d = core.mkdir(ROOT_INO, 'd', 0o555, ALICE).ino
      const other = core.mkdir(ROOT_INO, 'other', 0o777, ALICE).ino
      expect(codeOf(() => core.rename(ROOT_INO, 'd', other, 'd', 0, ALICE))).to.equal('EACCES')
      core.rename(ROOT_INO, 'd', ROOT_INO, 'e', 0, ALICE)
      core.rename(ROOT_INO, 'e', other, 'd', 0, ROOT)
      expect(core.lookup(other, 'd', ALICE).ino).to.equal(d)
    })
  })

  describe('search permission', () => {
    it('lookup in a directory without search permission is EACCES, for its owner too', () => {
      const d = core.mkdir(ROOT_INO, 'd', 0o766, ALICE).ino
      file('f', 0o644, ALICE, 'x', d)
      core.setattr(d, {mode: 0o666}, ALICE)
      expect(codeOf(() => core.lookup(d, 'f', ALICE))).to.equal('EACCES')
      expect(codeOf(() => core.lookup(d, 'f', BOB))).to.equal('EACCES')
      expect(codeOf(() => core.lookup(d, 'missing', BOB))).to.equal('EACCES')
      expect(core.lookup(d, 'f', ROOT).mode & S_IFMT).to.equal(S_IFREG)
    })

    it('search without read: lookup works, listing (opendir) does not', () => {
      const d = core.mkdir(ROOT_INO, 'd', 0o711, ALICE).ino
      file('f', 0o644, ALICE, 'x', d)
      expect(core.lookup(d, 'f', BOB).size).to.equal(1)
      expect(codeOf(() => core.opendir(d, BOB))).to.equal('EACCES')
      core.releasedir(core.opendir(d, ALICE))
    })

    it('lookup of a missing name is ENOENT, in a non-directory ENOTDIR, of a long name ENAMETOOLONG', () => {
      const f = file('f', 0o644)
      expect(codeOf(() => core.lookup(ROOT_INO, 'missing', BOB))).to.equal('ENOENT')
      expect(codeOf(() => core.lookup(f, 'x', ROOT))).to.equal('ENOTDIR')
      expect(codeOf(() => core.lookup(ROOT_INO, 'n'.repeat(256), ROOT))).to.equal('ENAMETOOLONG')
      expect(codeOf(() => core.mknod(ROOT_INO, 'n'.repeat(256), S_IFREG | 0o644, 0, ROOT))).to.equal('ENAMETOOLONG')
      core.mknod(ROOT_INO, 'n'.repeat(255), S_IFREG | 0o644, 0, ROOT)
    })
  })

  describe('sticky directories', () => {
    let tmp: number
    beforeEach(() => {
      tmp = core.mkdir(ROOT_INO, 'tmp', 0o1777, ROOT).ino
      file('alices', 0o666, ALICE, 'a', tmp)
      file('bobs', 0o666, BOB, 'b', tmp)
    })

    it('only the entry owner, the directory owner or root may unlink', () => {
      expect(codeOf(() => core.unlink(tmp, 'alices', BOB))).to.equal('EPERM')
      expect(codeOf(() => core.unlink(tmp, 'alices', CAROL))).to.equal('EPERM')
      core.unlink(tmp, 'alices', ALICE)
      core.unlink(tmp, 'bobs', ROOT)
      const owned = core.mkdir(ROOT_INO, 'owned', 0o1777, CAROL).ino
      file('x', 0o666, ALICE, 'x', owned)
      core.unlink(owned, 'x', CAROL)
    })

    it("rename away, or over, another user's entry is EPERM", () => {
      expect(codeOf(() => core.rename(tmp, 'alices', tmp, 'mine', 0, BOB))).to.equal('EPERM')
      expect(codeOf(() => core.rename(tmp, 'bobs', tmp, 'alices', 0, BOB))).to.equal('EPERM')
      core.rename(tmp, 'bobs', tmp, 'bobs2', 0, BOB)
      expect(codeOf(() => core.rename(tmp, 'alices', tmp, 'bobs2', 0, ALICE))).to.equal('EPERM')
      core.rename(tmp, 'alices', tmp, 'bobs2', 0, ROOT)
      expect(names(tmp)).to.have.members(['.', '..', 'bobs2'])
    })

    it("rmdir of another user's directory is EPERM", () => {
      core.mkdir(tmp, 'adir', 0o777, ALICE)
      expect(codeOf(() => core.rmdir(tmp, 'adir', BOB))).to.equal('EPERM')
      core.rmdir(tmp, 'adir', ALICE)
    })
  })

  describe('chmod and chown', () => {
    it('chmod by anyone but the owner (or root) is EPERM', () => {
      const ino = file('f', 0o666)
      expect(codeOf(() => core.setattr(ino, {mode: 0o777}, BOB))).to.equal('EPERM')
      expect(codeOf(() => core.setattr(ino, {mode: 0o777}, CAROL))).to.equal('EPERM')
      core.setattr(ino, {mode: 0o640}, ALICE)
      expect(mode(ino)).to.equal(0o640)
      core.setattr(ino, {mode: 0o4755}, ROOT)
      expect(mode(ino)).to.equal(0o4755)
    })

    it('giving a file away is for root only; the owner may change the group to one of theirs', () => {
      const ino = file('f', 0o644)
      expect(codeOf(() => core.setattr(ino, {uid: 1001}, ALICE))).to.equal('EPERM')
      expect(codeOf(() => core.setattr(ino, {uid: 1000}, BOB))).to.equal('EPERM')
      expect(codeOf(() => core.setattr(ino, {gid: 2000}, ALICE))).to.equal('EPERM')
      expect(codeOf(() => core.setattr(ino, {gid: 1001}, BOB))).to.equal('EPERM')
      core.setattr(ino, {uid: 1000, gid: 1000}, ALICE) // no change: allowed
      core.setattr(ino, {uid: 1001}, ROOT)
      core.setattr(ino, {gid: 2000}, BOB)
      const attr = core.getattr(ino)
      expect([attr.uid, attr.gid]).to.deep.equal([1001, 2000])
    })

    it("chmod by an owner outside the file's group drops set-group-ID", () => {
      const ino = file('f', 0o644)
      core.setattr(ino, {gid: 2000}, ROOT)
      core.setattr(ino, {mode: 0o2755}, ALICE)
      expect(mode(ino)).to.equal(0o755)
      core.setattr(ino, {gid: 1000}, ROOT)
      core.setattr(ino, {mode: 0o2755}, ALICE)
      expect(mode(ino)).to.equal(0o2755)
    })

    it('chown clears set-user-ID, and set-group-ID when group-executable', () => {
      const a = file('a', 0o644)
      core.setattr(a, {mode: 0o6755}, ROOT)
      core.setattr(a, {gid: 1000}, ALICE)
      expect(mode(a)).to.equal(0o755)
      const b = file('b', 0o644)
      core.setattr(b, {mode: 0o6745}, ROOT)
      core.setattr(b, {gid: 1000}, ALICE)
      expect(mode(b)).to.equal(0o2745) // no group execute: set-group-ID marks mandatory locking, stays
      const c = file('c', 0o644)
      core.setattr(c, {mode: 0o4755}, ROOT)
      core.setattr(c, {uid: 1001}, ROOT)
      expect(mode(c)).to.equal(0o755)
      const d = core.mkdir(ROOT_INO, 'd', 0o2775, ALICE).ino
      core.setattr(d, {uid: 1001}, ROOT)
      expect(mode(d)).to.equal(0o2775) // directories keep it
    })

    // Where the kernel leaves it to the filesystem (FUSE_HANDLE_KILLPRIV_V2, native/kernel.c).
    it('clearSetId (a write, an O_TRUNC open) and setattr with clearSetId (a truncate, a chown) clear set-user-ID, and set-group-ID when group-executable', () => {
      const a = file('a', 0o644)
      core.setattr(a, {mode: 0o6755}, ROOT)
      expect(core.clearSetId(a)).to.equal(true)
      expect(mode(a)).to.equal(0o755)
      expect(core.clearSetId(a), 'nothing left to clear').to.equal(false)
      const b = file('b', 0o644)
      core.setattr(b, {mode: 0o6745}, ROOT)
      core.clearSetId(b)
      expect(mode(b)).to.equal(0o2745)
      const c = file('c', 0o644)
      core.setattr(c, {mode: 0o4755}, ROOT)
      core.setattr(c, {size: 1, clearSetId: true}, ALICE)
      expect([mode(c), core.getattr(c).size]).to.deep.equal([0o755, 1])
      // root's chown to the same owner: only the kernel's flag clears it (as chown(2) does).
      core.setattr(c, {mode: 0o4755}, ROOT)
      core.setattr(c, {uid: 1000, gid: 1000, clearSetId: true}, ROOT)
      expect(mode(c)).to.equal(0o755)
      const d = core.mkdir(ROOT_INO, 'd', 0o2775, ALICE).ino
      expect(core.clearSetId(d)).to.equal(false)
      core.setattr(d, {mode: 0o2775, clearSetId: true}, ALICE)
      expect(mode(d)).to.equal(0o2775) // directories keep it
    })
  })

  describe('utimens', () => {
    const T = {sec: 1_000_000_000, nsec: 123_456_789}

    it('a non-owner with write permission may set the current time, not explicit times', () => {
      const ino = file('f', 0o666)
      core.setattr(ino, {atime: 'now', mtime: 'now'}, BOB)
      expect(codeOf(() => core.setattr(ino, {atime: T, mtime: T}, BOB))).to.equal('EPERM')
      expect(codeOf(() => core.setattr(ino, {mtime: T}, BOB))).to.equal('EPERM')
    })

    it('a non-owner without write permission may set neither', () => {
      const ino = file('f', 0o644)
      expect(codeOf(() => core.setattr(ino, {atime: 'now', mtime: 'now'}, BOB))).to.equal('EACCES')
      expect(codeOf(() => core.setattr(ino, {atime: T, mtime: T}, BOB))).to.equal('EPERM')
    })

    it('the owner and root set explicit times, to the nanosecond; omit leaves one alone', () => {
      const ino = file('f', 0o444)
      core.setattr(ino, {atime: T, mtime: T}, ALICE)
      expect(core.getattr(ino).atime).to.deep.equal(T)
      expect(core.getattr(ino).mtime).to.deep.equal(T)
      const U = {sec: 1_500_000_000, nsec: 1}
      core.setattr(ino, {atime: 'omit', mtime: U}, ROOT)
      expect(core.getattr(ino).atime).to.deep.equal(T)
      expect(core.getattr(ino).mtime).to.deep.equal(U)
      // Omitting both needs no permission at all.
      core.setattr(ino, {atime: 'omit', mtime: 'omit'}, BOB)
    })
  })

  describe('open flags and handles', () => {
    it('O_TRUNC empties the file, and needs write permission', () => {
      const ino = file('f', 0o644, ALICE, 'hello')
      expect(codeOf(() => core.open(ino, O_RDONLY | O_TRUNC, BOB))).to.equal('EACCES')
      expect(core.getattr(ino).size).to.equal(5)
      core.release(core.open(ino, O_WRONLY | O_TRUNC, ALICE))
      expect(core.getattr(ino).size).to.equal(0)
    })

    it('an O_TRUNC open whose truncation fails (a full log) fails and leaves no handle', () => {
      const ino = file('f', 0o644, ALICE, 'hello')
      const setattr = image.setattr.bind(image)
      image.setattr = () => {
        throw new FsError('ENOSPC', 'setattr')
      }

      try {
        expect(codeOf(() => core.open(ino, O_WRONLY | O_TRUNC, ALICE))).to.equal('ENOSPC')
      } finally {
        image.setattr = setattr
      }

      expect(core.openHandles).to.equal(0)
      expect(core.getattr(ino).size).to.equal(5)
    })

    it('O_APPEND writes at the end whatever the offset', () => {
      const ino = file('f', 0o644, ALICE, 'hello')
      const fh = core.open(ino, O_RDWR | O_APPEND, ALICE)
      core.write(fh, Buffer.from(' world'), 0)
      core.write(fh, Buffer.from('!'), 2)
      expect(readAll(fh)).to.equal('hello world!')
      core.release(fh)
    })

    it('create with O_EXCL of an existing name is EEXIST; without it opens the file as it is', () => {
      const ino = file('f', 0o640, ALICE, 'keep')
      expect(codeOf(() => core.create(ROOT_INO, 'f', 0o777, O_WRONLY | O_EXCL, ALICE))).to.equal('EEXIST')
      const {fh, attr} = core.create(ROOT_INO, 'f', 0o777, O_RDONLY, ALICE)
      expect(attr.ino).to.equal(ino)
      expect(attr.mode & 0o7777).to.equal(0o640)
      expect(readAll(fh)).to.equal('keep')
      core.release(fh)
      // ... with the permission checks of an open.
      expect(codeOf(() => core.create(ROOT_INO, 'f', 0o777, O_RDONLY, BOB))).to.equal('EACCES')
    })

    it('a directory cannot be opened for writing (EISDIR), a symlink not at all (ELOOP)', () => {
      const d = core.mkdir(ROOT_INO, 'd', 0o777, ALICE).ino
      expect(codeOf(() => core.open(d, O_WRONLY, ALICE))).to.equal('EISDIR')
      expect(codeOf(() => core.open(d, O_RDWR, ROOT))).to.equal('EISDIR')
      const l = core.symlink(ROOT_INO, 'l', 'd', ALICE).ino
      expect(codeOf(() => core.open(l, O_RDONLY, ALICE))).to.equal('ELOOP')
    })

    it('reading a write-only handle, or writing a read-only one, is EBADF; so is an unknown handle', () => {
      const ino = file('f', 0o666)
      const w = core.open(ino, O_WRONLY, ALICE)
      const r = core.open(ino, O_RDONLY, ALICE)
      expect(codeOf(() => core.read(w, Buffer.alloc(4), 0))).to.equal('EBADF')
      expect(codeOf(() => core.write(r, Buffer.from('x'), 0))).to.equal('EBADF')
      core.release(w)
      core.release(r)
      expect(codeOf(() => core.read(w, Buffer.alloc(4), 0))).to.equal('EBADF')
      expect(codeOf(() => core.release(r))).to.equal('EBADF')
      expect(core.openHandles).to.equal(0)
    })

    it('ftruncate through a write handle needs no write permission, truncate does', () => {
      const ino = file('f', 0o644, ALICE, 'hello')
      const fh = core.open(ino, O_WRONLY, ALICE)
      core.setattr(ino, {mode: 0o444}, ALICE)
      expect(codeOf(() => core.setattr(ino, {size: 1}, ALICE))).to.equal('EACCES')
      core.setattr(ino, {size: 2, fh}, ALICE)
      expect(core.getattr(ino).size).to.equal(2)
      const ro = core.open(ino, O_RDONLY, ALICE)
      expect(codeOf(() => core.setattr(ino, {size: 1, fh: ro}, ALICE))).to.equal('EACCES')
      core.release(fh)
      core.release(ro)
    })
  })

  describe('an open file that is unlinked', () => {
    it('stays readable and writable until the last release, then is freed', () => {
      const before = image.usage().inodes
      const ino = file('f', 0o644, ALICE, 'still here')
      expect(image.usage().inodes).to.equal(before + 1)
      const a = core.open(ino, O_RDWR, ALICE)
      const b = core.open(ino, O_RDONLY, ALICE)
      core.unlink(ROOT_INO, 'f', ALICE)
      expect(codeOf(() => core.lookup(ROOT_INO, 'f', ALICE))).to.equal('ENOENT')
      expect(names(ROOT_INO)).to.deep.equal(['.', '..'])
      expect(core.getattr(ino).nlink).to.equal(0)
      expect(readAll(b)).to.equal('still here')
      core.write(a, Buffer.from('STILL'), 0)
      expect(readAll(b)).to.equal('STILL here')
      core.setattr(ino, {size: 5, fh: a}, ALICE)
      expect(image.usage().inodes).to.equal(before + 1)
      core.release(a)
      expect(readAll(b)).to.equal('STILL')
      expect(image.usage().inodes).to.equal(before + 1)
      core.release(b)
      expect(image.usage().inodes).to.equal(before)
      expect(codeOf(() => core.getattr(ino))).to.equal('ENOENT')
    })

    it('a file renamed over while open lives on the same way', () => {
      const before = image.usage().inodes
      const victim = file('victim', 0o644, ALICE, 'old')
      file('new', 0o644, ALICE, 'new')
      const fh = core.open(victim, O_RDONLY, ALICE)
      core.rename(ROOT_INO, 'new', ROOT_INO, 'victim', 0, ALICE)
      expect(readAll(fh)).to.equal('old')
      expect(image.usage().inodes).to.equal(before + 2)
      core.release(fh)
      expect(image.usage().inodes).to.equal(before + 1)
    })

    it('an unlinked file still open when the image closes is freed by the next open', () => {
      const before = image.usage().inodes
      const ino = file('f', 0o644)
      core.open(ino, O_RDONLY, ALICE)
      core.unlink(ROOT_INO, 'f', ALICE)
      image.close()
      image = Image.open(dir)
      core = new FileSystem(image)
      expect(image.usage().inodes).to.equal(before)
    })
  })

  describe('readdir', () => {
    it('lists . and .. first, with the right inodes and types', () => {
      const d = core.mkdir(ROOT_INO, 'd', 0o755, ALICE).ino
      file('f', 0o644, ALICE, 'x', d)
      core.symlink(d, 'l', 'f', ALICE)
      core.mkdir(d, 'sub', 0o755, ALICE)
      const root = [...core.readdir(ROOT_INO)]
      expect(root.slice(0, 2).map(e => [e.name.toString(), e.ino])).to.deep.equal([
        ['.', ROOT_INO],
        ['..', ROOT_INO],
      ])
      const entries = [...core.readdir(d)]
      expect(entries.slice(0, 2).map(e => [e.name.toString(), e.ino, e.type])).to.deep.equal([
        ['.', d, S_IFDIR],
        ['..', ROOT_INO, S_IFDIR],
      ])
      const rest = Object.fromEntries(entries.slice(2).map(e => [e.name.toString(), e.type]))
      expect(rest).to.deep.equal({f: S_IFREG, l: S_IFLNK, sub: S_IFDIR})
      expect(core.getattr(d).nlink).to.equal(3)
    })

    /** Every entry of a bulk listing from its position on, `chunk` at a time, as [name, ino, type]; `between` runs after each chunk. */
    function drain(listing: Listing, chunk: number, between?: (listed: string[]) => void): Listed[] {
      return drainSink(
        (sink, max) => listing.fill(sink, 0, max),
        n => listing.skip(n),
        chunk,
        between,
      )
    }

    it('a bulk listing lists what readdir lists, in the same order, whatever the chunk size', () => {
      const d = core.mkdir(ROOT_INO, 'd', 0o755, ALICE).ino
      for (let i = 0; i < 60; i++) file(`f${i}${'-long-name'.repeat(i % 4 === 0 ? 10 : 0)}`, 0o644, ALICE, '', d)
      core.mkdir(d, 'sub', 0o755, ALICE)
      core.symlink(d, 'l', 'f1', ALICE)
      const expected = [...core.readdir(d)].map(e => [e.name.toString(), e.ino, e.type])
      for (const chunk of [1, 2, 7, 1000]) {
        const fh = core.opendir(d, ALICE)
        expect(drain(core.listing(fh), chunk), `chunk ${chunk}`).to.deep.equal(expected)
        core.releasedir(fh)
      }

      // Rewind lists the directory as it is now; skip counts '.' and '..' like any entry.
      const fh = core.opendir(d, ALICE)
      const listing = core.listing(fh)
      listing.skip(5)
      expect(listing.position).to.equal(5)
      core.rmdir(d, 'sub', ALICE)
      listing.rewind()
      expect(listing.position).to.equal(0)
      expect(drain(listing, 9).map(e => e[0])).to.deep.equal(expected.map(e => e[0]).filter(n => n !== 'sub'))
      core.releasedir(fh)
    })

    it('an entry removed under an open listing is skipped, and every entry that stays is listed once', () => {
      const d = core.mkdir(ROOT_INO, 'd', 0o755, ALICE).ino
      for (let i = 0; i < 40; i++) file(`f${i}`, 0o644, ALICE, '', d)
      const order = [...core.readdir(d)].map(e => e.name.toString())
      const fh = core.opendir(d, ALICE)
      const removed = new Set<string>()
      const removedAhead = new Set<string>()
      let round = 0
      const listed = drain(core.listing(fh), 3, sofar => {
        // The entry the listing stands on, one further ahead, one already listed; and a new one.
        const ahead = order.filter(n => n !== '.' && n !== '..' && !sofar.includes(n) && !removed.has(n))
        for (const victim of [ahead[0], ahead[2], sofar.find(n => n.startsWith('f') && !removed.has(n))]) {
          if (victim === undefined) continue
          core.unlink(d, victim, ALICE)
          removed.add(victim)
          if (!sofar.includes(victim)) removedAhead.add(victim)
        }

        file(`new${round++}`, 0o644, ALICE, '', d)
      }).map(e => e[0])
      core.releasedir(fh)
      expect(new Set(listed).size, 'no name twice').to.equal(listed.length)
      expect(listed, 'every entry that stayed').to.include.members(order.filter(n => !removed.has(n)))
      expect(
        listed.filter(n => removedAhead.has(n)),
        'entries removed before the listing reached them',
      ).to.deep.equal([])
      expect(removedAhead.size).to.be.greaterThan(10)
      expect(round).to.be.greaterThan(5)
    })

    it('a removal that rolls back leaves the listing on its entry', () => {
      const d = core.mkdir(ROOT_INO, 'd', 0o755, ALICE).ino
      for (const n of ['a', 'b', 'c']) file(n, 0o644, ALICE, '', d)
      const fh = core.opendir(d, ALICE)
      const listing = core.listing(fh)
      const sink = direntSink(8)
      listing.skip(2) // past '.' and '..'
      expect(listing.fill(sink, 0, 1)).to.equal(1)
      const next = sink.names.subarray(0, sink.ends[0]).toString()
      expect(() =>
        image.internals().store.transaction(() => {
          image.unlink(d, next)
          throw new Error('abandoned')
        }),
      ).to.throw('abandoned')
      expect(drain(listing, 2).map(e => e[0])).to.deep.equal([...core.readdir(d)].slice(2).map(e => e.name.toString()))
      expect(drain(listing, 2)).to.deep.equal([])
      core.releasedir(fh)
    })

    it('opendir of a non-directory is ENOTDIR', () => {
      const f = file('f', 0o644)
      expect(codeOf(() => core.opendir(f, ROOT))).to.equal('ENOTDIR')
    })
  })

  describe('extended attributes', () => {
    it('user. is for regular files and directories: EPERM to set on a symlink, ENODATA to get', () => {
      const l = core.symlink(ROOT_INO, 'l', 'target', ALICE).ino
      expect(codeOf(() => core.setxattr(l, 'user.a', Buffer.from('v'), 0, ALICE))).to.equal('EPERM')
      expect(codeOf(() => core.setxattr(l, 'user.a', Buffer.from('v'), 0, ROOT))).to.equal('EPERM')
      expect(codeOf(() => core.getxattr(l, 'user.a', ALICE))).to.equal('ENODATA')
      expect(codeOf(() => core.removexattr(l, 'user.a', ALICE))).to.equal('EPERM')
      const d = core.mkdir(ROOT_INO, 'd', 0o755, ALICE).ino
      core.setxattr(d, 'user.a', Buffer.from('dir'), 0, ALICE)
      expect(core.getxattr(d, 'user.a', BOB).toString()).to.equal('dir')
    })

    it('user. follows the file permissions: read to get, write to set and remove', () => {
      const ino = file('f', 0o640)
      core.setxattr(ino, 'user.a', Buffer.from('v'), 0, ALICE)
      expect(core.getxattr(ino, 'user.a', CAROL).toString()).to.equal('v')
      expect(codeOf(() => core.getxattr(ino, 'user.a', BOB))).to.equal('EACCES')
      expect(codeOf(() => core.setxattr(ino, 'user.a', Buffer.from('w'), 0, CAROL))).to.equal('EACCES')
      expect(codeOf(() => core.removexattr(ino, 'user.a', CAROL))).to.equal('EACCES')
      expect(core.listxattr(ino, BOB)).to.deep.equal(['user.a'])
    })

    it('user. of a sticky directory: only its owner (or root) may change them', () => {
      const tmp = core.mkdir(ROOT_INO, 'tmp', 0o1777, CAROL).ino
      expect(codeOf(() => core.setxattr(tmp, 'user.a', Buffer.from('v'), 0, ALICE))).to.equal('EPERM')
      core.setxattr(tmp, 'user.a', Buffer.from('v'), 0, CAROL)
      core.setxattr(tmp, 'user.b', Buffer.from('v'), 0, ROOT)
      expect(codeOf(() => core.removexattr(tmp, 'user.a', ALICE))).to.equal('EPERM')
      expect(core.getxattr(tmp, 'user.a', ALICE).toString()).to.equal('v')
      core.removexattr(tmp, 'user.a', CAROL)
    })

    it('create and replace flags; removing a missing name is ENODATA', () => {
      const ino = file('f', 0o644)
      expect(codeOf(() => core.setxattr(ino, 'user.a', Buffer.from('v'), XATTR_REPLACE, ALICE))).to.equal('ENODATA')
      core.setxattr(ino, 'user.a', Buffer.from('v'), XATTR_CREATE, ALICE)
      expect(codeOf(() => core.setxattr(ino, 'user.a', Buffer.from('w'), XATTR_CREATE, ALICE))).to.equal('EEXIST')
      core.setxattr(ino, 'user.a', Buffer.from('w'), XATTR_REPLACE, ALICE)
      expect(core.getxattr(ino, 'user.a', ALICE).toString()).to.equal('w')
      core.removexattr(ino, 'user.a', ALICE)
      expect(codeOf(() => core.removexattr(ino, 'user.a', ALICE))).to.equal('ENODATA')
      expect(codeOf(() => core.getxattr(ino, 'user.a', ALICE))).to.equal('ENODATA')
    })

    it("trusted. is root's: others get EPERM setting, ENODATA reading, and do not see it listed", () => {
      const ino = file('f', 0o666)
      expect(codeOf(() => core.setxattr(ino, 'trusted.t', Buffer.from('v'), 0, ALICE))).to.equal('EPERM')
      core.setxattr(ino, 'trusted.t', Buffer.from('v'), 0, ROOT)
      core.setxattr(ino, 'user.u', Buffer.from('u'), 0, ALICE)
      expect(codeOf(() => core.getxattr(ino, 'trusted.t', ALICE))).to.equal('ENODATA')
      expect(codeOf(() => core.removexattr(ino, 'trusted.t', ALICE))).to.equal('EPERM')
      expect(core.getxattr(ino, 'trusted.t', ROOT).toString()).to.equal('v')
      expect(core.listxattr(ino, ALICE)).to.deep.equal(['user.u'])
      expect(core.listxattr(ino, ROOT)).to.have.members(['trusted.t', 'user.u'])
      // trusted. is not limited to regular files and directories.
      const l = core.symlink(ROOT_INO, 'l', 'f', ROOT).ino
      core.setxattr(l, 'trusted.t', Buffer.from('v'), 0, ROOT)
    })

    it('system. (ACLs) and unknown namespaces are EOPNOTSUPP', () => {
      const ino = file('f', 0o666)
      for (const cred of [ROOT, ALICE]) {
        expect(codeOf(() => core.setxattr(ino, 'system.posix_acl_access', Buffer.from('v'), 0, cred))).to.equal('EOPNOTSUPP')
        expect(codeOf(() => core.getxattr(ino, 'system.posix_acl_access', cred))).to.equal('EOPNOTSUPP')
        expect(codeOf(() => core.setxattr(ino, 'bogus.x', Buffer.from('v'), 0, cred))).to.equal('EOPNOTSUPP')
        expect(codeOf(() => core.getxattr(ino, 'noprefix', cred))).to.equal('EOPNOTSUPP')
      }
    })

    it('security. may be set by the owner or root only', () => {
      const ino = file('f', 0o666)
      expect(codeOf(() => core.setxattr(ino, 'security.x', Buffer.from('v'), 0, BOB))).to.equal('EPERM')
      core.setxattr(ino, 'security.x', Buffer.from('v'), 0, ALICE)
      core.setxattr(ino, 'security.y', Buffer.from('v'), 0, ROOT)
      expect(core.getxattr(ino, 'security.x', BOB).toString()).to.equal('v')
    })
  })

  describe('a read-only filesystem', () => {
    it('refuses every change with EROFS and still reads', () => {
      const d = core.mkdir(ROOT_INO, 'd', 0o777, ALICE).ino
      const f = file('f', 0o666, ALICE, 'content', d)
      core.symlink(d, 'l', 'f', ALICE)
      core.setxattr(f, 'user.a', Buffer.from('v'), 0, ALICE)
      const ro = new FileSystem(image, {readOnly: true})
      expect(ro.readOnly).to.equal(true)
      const refusals: Array<[string, () => unknown]> = [
        ['mknod', () => ro.mknod(d, 'x', S_IFREG | 0o644, 0, ROOT)],
        ['mkdir', () => ro.mkdir(d, 'x', 0o755, ROOT)],
        ['symlink', () => ro.symlink(d, 'x', 'y', ROOT)],
        ['link', () => ro.link(f, d, 'x', ROOT)],
        ['unlink', () => ro.unlink(d, 'f', ROOT)],
        ['rmdir', () => ro.rmdir(ROOT_INO, 'd', ROOT)],
        ['rename', () => ro.rename(d, 'f', d, 'g', 0, ROOT)],
        ['create', () => ro.create(d, 'new', 0o644, O_WRONLY, ROOT)],
        ['chmod', () => ro.setattr(f, {mode: 0o600}, ROOT)],
        ['truncate', () => ro.setattr(f, {size: 0}, ROOT)],
        ['utimens', () => ro.setattr(f, {atime: 'now', mtime: 'now'}, ROOT)],
        ['open for writing', () => ro.open(f, O_WRONLY, ROOT)],
        ['open with O_TRUNC', () => ro.open(f, O_RDONLY | O_TRUNC, ROOT)],
        ['access W_OK', () => ro.access(f, W_OK, ROOT)],
        ['setxattr', () => ro.setxattr(f, 'user.b', Buffer.from('v'), 0, ROOT)],
        ['removexattr', () => ro.removexattr(f, 'user.a', ROOT)],
      ]
      for (const [what, fn] of refusals) expect(codeOf(fn), what).to.equal('EROFS')
      const fh = ro.open(f, O_RDONLY, ALICE)
      expect(codeOf(() => ro.write(fh, Buffer.from('x'), 0))).to.equal('EBADF')
      const buf = Buffer.alloc(100)
      expect(buf.subarray(0, ro.read(fh, buf, 0)).toString()).to.equal('content')
      ro.release(fh)
      const existing = ro.create(d, 'f', 0o644, O_RDONLY, ALICE)
      ro.release(existing.fh)
      expect(ro.lookup(d, 'l', ALICE).mode & S_IFMT).to.equal(S_IFLNK)
      expect(ro.readlink(ro.lookup(d, 'l', ALICE).ino).toString()).to.equal('f')
      expect([...ro.readdir(d)].map(e => e.name.toString())).to.have.members(['.', '..', 'f', 'l'])
      expect(ro.getxattr(f, 'user.a', ALICE).toString()).to.equal('v')
      ro.access(f, R_OK, ALICE)
      expect(core.getattr(f).size).to.equal(7)
    })

    it('an image opened read-only makes a read-only filesystem', () => {
      file('f', 0o644)
      image.close()
      image = Image.open(dir, {readOnly: true})
      core = new FileSystem(image)
      expect(core.readOnly).to.equal(true)
      expect(codeOf(() => core.mkdir(ROOT_INO, 'x', 0o755, ROOT))).to.equal('EROFS')
      expect(core.lookup(ROOT_INO, 'f', ROOT).size).to.equal(4)
    })
  })

  describe('new inodes', () => {
    it('belong to the caller', () => {
      const checks = [
        core.mknod(ROOT_INO, 'file', S_IFREG | 0o644, 0, ALICE),
        core.mknod(ROOT_INO, 'fifo', S_IFIFO | 0o644, 0, ALICE),
        core.mkdir(ROOT_INO, 'dir', 0o755, ALICE),
        core.symlink(ROOT_INO, 'link', 'file', ALICE),
        core.create(ROOT_INO, 'created', 0o640, O_WRONLY, ALICE).attr,
      ]
      for (const attr of checks) expect([attr.uid, attr.gid]).to.deep.equal([1000, 1000])
      expect(core.lookup(ROOT_INO, 'created', ALICE).mode & 0o7777).to.equal(0o640)
      expect(core.lookup(ROOT_INO, 'link', ALICE).mode & 0o7777).to.equal(0o777)
      core.releasedir(core.opendir(ROOT_INO, ALICE))
      expect(core.openHandles).to.equal(1) // the create's handle
    })

    it('take the group of a set-group-ID directory; new directories inherit the bit, files do not', () => {
      const d = core.mkdir(ROOT_INO, 'shared', 0o777, ROOT).ino
      core.setattr(d, {gid: 2000}, ROOT)
      core.setattr(d, {mode: 0o2777}, ROOT)
      const f = core.mknod(d, 'f', S_IFREG | 0o644, 0, ALICE)
      const sub = core.mkdir(d, 'sub', 0o755, ALICE)
      const l = core.symlink(d, 'l', 'f', ALICE)
      expect([f.uid, f.gid, f.mode & 0o7777]).to.deep.equal([1000, 2000, 0o644])
      expect([sub.uid, sub.gid, sub.mode & 0o7777]).to.deep.equal([1000, 2000, 0o2755])
      expect([l.uid, l.gid]).to.deep.equal([1000, 2000])
      // Outside a set-group-ID directory: the caller's group.
      expect(core.mknod(ROOT_INO, 'g', S_IFREG | 0o644, 0, ALICE).gid).to.equal(1000)
    })

    it('a set-group-ID executable created in a set-group-ID directory by a non-member loses the bit', () => {
      const d = core.mkdir(ROOT_INO, 'shared', 0o777, ROOT).ino
      core.setattr(d, {gid: 2000}, ROOT)
      core.setattr(d, {mode: 0o2777}, ROOT)
      expect(core.mknod(d, 'f', S_IFREG | 0o2755, 0, ALICE).mode & 0o7777).to.equal(0o755)
      expect(core.mknod(d, 'g', S_IFREG | 0o2755, 0, BOB).mode & 0o7777).to.equal(0o2755)
      expect(core.mknod(d, 'h', S_IFREG | 0o2755, 0, ROOT).mode & 0o7777).to.equal(0o2755)
    })

    it("device nodes are root's to make; unknown types are EINVAL", () => {
      expect(codeOf(() => core.mknod(ROOT_INO, 'c', S_IFCHR | 0o644, 0x0103, ALICE))).to.equal('EPERM')
      expect(core.mknod(ROOT_INO, 'c', S_IFCHR | 0o644, 0x0103, ROOT).rdev).to.equal(0x0103)
      expect(codeOf(() => core.mknod(ROOT_INO, 'x', 0o070000 | 0o644, 0, ROOT))).to.equal('EINVAL')
      expect(core.mknod(ROOT_INO, 'plain', 0o644, 0, ALICE).mode & S_IFMT).to.equal(S_IFREG)
    })
  })

  describe('with checkPermissions off (the kernel has checked)', () => {
    it('refuses nothing for permissions, and new inodes still belong to the caller', () => {
      const trusting = new FileSystem(image, {checkPermissions: false})
      const d = core.mkdir(ROOT_INO, 'd', 0o700, ALICE).ino
      core.setattr(d, {gid: 2000}, ROOT)
      core.setattr(d, {mode: 0o2700}, ROOT)
      const f = trusting.mknod(d, 'f', S_IFREG | 0o2750, 0, BOB)
      // Group from the set-group-ID directory; the bit kept (the kernel knows bob's groups, we do not).
      expect([f.uid, f.gid, f.mode & 0o7777]).to.deep.equal([1001, 2000, 0o2750])
      const sub = trusting.mkdir(d, 'sub', 0o700, CAROL)
      expect([sub.uid, sub.gid, sub.mode & 0o7777]).to.deep.equal([1002, 2000, 0o2700])
      expect(trusting.create(ROOT_INO, 'c', 0o600, O_WRONLY, BOB).attr.uid).to.equal(1001)
      trusting.lookup(d, 'f', CAROL)
      trusting.setattr(f.ino, {mode: 0o600}, CAROL)
      trusting.unlink(d, 'f', CAROL)
    })
  })

  describe('statfs', () => {
    it("reports the host disk's blocks, 255-byte names, and inodes that new files use up", () => {
      const st = core.statfs()
      const host = fs.statfsSync(dir)
      expect(st.bsize).to.equal(host.bsize)
      expect(st.frsize).to.equal(host.bsize)
      expect(st.blocks).to.equal(host.blocks)
      expect(st.bfree).to.be.at.most(st.blocks)
      expect(st.bavail).to.be.at.most(st.bfree)
      expect(st.namemax).to.equal(255)
      expect(st.files).to.be.above(1_000_000)
      expect(st.ffree).to.equal(st.files - image.usage().inodes)
      expect(st.favail).to.equal(st.ffree)
      file('f', 0o644)
      core.mkdir(ROOT_INO, 'd', 0o755, ALICE)
      expect(core.statfs().ffree).to.equal(st.ffree - 2)
      core.unlink(ROOT_INO, 'f', ALICE)
      expect(core.statfs().ffree).to.equal(st.ffree - 1)
    })
  })
})
