/**
 * fallocate, lseek SEEK_DATA / SEEK_HOLE and copy_file_range over the filesystem core, without a
 * mount.
 */
import {expect} from 'chai'
import fs from 'node:fs'

import {FsError, ROOT_INO} from '../../../src/storage/index.js'
import {SEEK_DATA, SEEK_HOLE, copyFileRange, fallocate, seekData} from '../../../src/vfs/file-ranges.js'
import {type Cred, FileSystem, ROOT_CRED} from '../../../src/vfs/filesystem.js'
import {withCore} from '../../helpers/core.js'

const {O_RDONLY, O_RDWR, O_WRONLY} = fs.constants
const ALICE: Cred = {uid: 1000, gid: 1000}
const FALLOC_FL_KEEP_SIZE = 1
const FALLOC_FL_PUNCH_HOLE = 2

/** `fn` fails with FsError `code`. */
function fails(fn: () => unknown, code: string, what?: string): void {
  expect(fn, what).to.throw(FsError).with.property('code', code)
}

describe('vfs: byte ranges of open files (fallocate, SEEK_DATA / SEEK_HOLE, copy_file_range)', () => {
  const fixture = withCore('razorfs-ranges-', {uid: 0, gid: 0, rootMode: 0o777})
  let core: FileSystem
  beforeEach(() => {
    core = fixture.core
  })

  /** A file `name` holding `data`, open with `flags`: its inode and handle. */
  function open(name: string, data: Buffer | string, flags = O_RDWR, cred: Cred = ROOT_CRED): {ino: number; fh: number} {
    const {fh, attr} = core.create(ROOT_INO, name, 0o644, flags, cred)
    if (data.length > 0) fixture.image.write(attr.ino, Buffer.from(data), 0)
    return {ino: attr.ino, fh}
  }

  const contents = (ino: number): Buffer => {
    const buf = Buffer.alloc(core.getattr(ino).size)
    fixture.image.read(ino, buf, 0)
    return buf
  }

  describe('fallocate', () => {
    it('mode 0 past the end grows the file with zeros', () => {
      const f = open('f', 'abc')
      fallocate(core, f.ino, f.fh, 0, 2, 8, ROOT_CRED)
      expect(core.getattr(f.ino).size).to.equal(10)
      expect(contents(f.ino)).to.deep.equal(Buffer.concat([Buffer.from('abc'), Buffer.alloc(7)]))
    })

    it('mode 0 inside the file changes nothing: it never shrinks', () => {
      const f = open('f', 'abcdef')
      const before = core.getattr(f.ino)
      fallocate(core, f.ino, f.fh, 0, 1, 3, ROOT_CRED)
      expect(core.getattr(f.ino)).to.deep.equal(before)
      expect(contents(f.ino).toString()).to.equal('abcdef')
    })

    it('any other mode (keep size, punch hole) is EOPNOTSUPP and changes nothing', () => {
      const f = open('f', 'abcdef')
      for (const mode of [FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE]) {
        fails(() => fallocate(core, f.ino, f.fh, mode, 0, 100, ROOT_CRED), 'EOPNOTSUPP', `mode ${mode}`)
      }

      expect(contents(f.ino).toString()).to.equal('abcdef')
    })

    it('grows through a write handle without write permission on the file; a read-only core refuses', () => {
      const f = open('f', '', O_WRONLY, ALICE)
      core.setattr(f.ino, {mode: 0o444}, ALICE)
      fallocate(core, f.ino, f.fh, 0, 0, 5, ALICE)
      expect(core.getattr(f.ino).size).to.equal(5)
      const ro = new FileSystem(fixture.image, {readOnly: true})
      fails(() => fallocate(ro, f.ino, f.fh, 0, 0, 50, ROOT_CRED), 'EROFS')
    })
  })

  describe('lseek SEEK_DATA / SEEK_HOLE', () => {
    it('all of a file is data; its end is the hole', () => {
      const f = open('f', 'abcdef')
      expect(seekData(core, f.ino, 0, SEEK_DATA)).to.equal(0)
      expect(seekData(core, f.ino, 4, SEEK_DATA)).to.equal(4)
      expect(seekData(core, f.ino, 0, SEEK_HOLE)).to.equal(6)
      expect(seekData(core, f.ino, 5, SEEK_HOLE)).to.equal(6)
    })

    it('at or past the end there is neither data nor hole: ENXIO', () => {
      const f = open('f', 'abcdef')
      for (const whence of [SEEK_DATA, SEEK_HOLE]) {
        fails(() => seekData(core, f.ino, 6, whence), 'ENXIO')
        fails(() => seekData(core, f.ino, 100, whence), 'ENXIO')
      }

      const empty = open('e', '')
      fails(() => seekData(core, empty.ino, 0, SEEK_DATA), 'ENXIO')
    })
  })

  describe('copy_file_range', () => {
    it('copies a range between offsets and returns the bytes copied', () => {
      const src = open('src', '0123456789')
      const dst = open('dst', 'abcdefghij')
      expect(copyFileRange(core, src.fh, 2, dst.fh, 5, 4)).to.equal(4)
      expect(contents(dst.ino).toString()).to.equal('abcde2345j')
    })

    it('stops at the end of the source, and copies nothing from past it', () => {
      const src = open('src', '0123456789')
      const dst = open('dst', '')
      expect(copyFileRange(core, src.fh, 7, dst.fh, 2, 100)).to.equal(3)
      expect(contents(dst.ino)).to.deep.equal(Buffer.concat([Buffer.alloc(2), Buffer.from('789')]))
      expect(copyFileRange(core, src.fh, 10, dst.fh, 0, 5)).to.equal(0)
      expect(copyFileRange(core, src.fh, 0, dst.fh, 0, 0)).to.equal(0)
    })

    it('copies more than one chunk (1 MiB) byte for byte', () => {
      const data = Buffer.alloc(2.5 * 1024 * 1024 + 17)
      for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 11)) & 0xff
      const src = open('src', data)
      const dst = open('dst', '')
      expect(copyFileRange(core, src.fh, 0, dst.fh, 1, data.length)).to.equal(data.length)
      expect(contents(dst.ino).subarray(1).equals(data)).to.equal(true)
    })

    it("within one file, and through the handles' own checks (EBADF)", () => {
      const f = open('f', 'abcdef')
      expect(copyFileRange(core, f.fh, 0, f.fh, 6, 3)).to.equal(3)
      expect(contents(f.ino).toString()).to.equal('abcdefabc')
      const readOnly = core.open(f.ino, O_RDONLY, ROOT_CRED)
      const writeOnly = core.open(f.ino, O_WRONLY, ROOT_CRED)
      fails(() => copyFileRange(core, f.fh, 0, readOnly, 0, 1), 'EBADF')
      fails(() => copyFileRange(core, writeOnly, 0, f.fh, 0, 1), 'EBADF')
    })
  })
})
