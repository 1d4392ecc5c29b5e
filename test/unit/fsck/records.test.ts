/**
 * The format functions of the codecs (src/storage/codec: control.ts, dirent.ts, string-unit.ts)
 * agree with what the storage classes write: every entry sits in the entries.idx bucket dirHash
 * puts it in, and every string's units are those stringClass gives.
 */
import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {CONTROL_OFFSET, DATA_OFFSET, DIRENT, HEAP_CONTROL, STRING} from '../../../src/storage/format.js'
import {Image, ROOT_INO} from '../../../src/storage/index.js'
import {bucketOf} from '../../../src/storage/codec/control.js'
import {dirHash} from '../../../src/storage/codec/dirent.js'
import {sizeClass as stringClass, units as stringUnits} from '../../../src/storage/codec/string-unit.js'

const D = DIRENT.OFF

describe('fsck: format functions (src/storage/codec)', () => {
  let dir: string
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-records-'))
  })
  after(() => fs.rmSync(dir, {recursive: true, force: true}))

  it('dirHash and bucketOf place every entry where entries.idx has it (through splits)', () => {
    const img = Image.create(dir, {capacity: 16})
    try {
      const sub = img.mknod(ROOT_INO, 'sub', {mode: 0o40755, uid: 0, gid: 0})
      for (let i = 0; i < 700; i++) img.mknod(i % 2 ? sub.ino : ROOT_INO, `name-${i}-${'x'.repeat(i % 40)}`, {mode: 0o100644, uid: 0, gid: 0})
      const x = img.internals()
      const level = x.entryIndex.level
      const split = x.entryIndex.split
      expect(level).to.be.above(8)
      const eb = x.entries.file.buf
      let seen = 0
      for (let b = 0; b < x.entryIndex.buckets; b++) {
        for (let d = x.entryIndex.file.buf.readUInt32LE(DATA_OFFSET + 4 * b); d !== 0; d = eb.readUInt32LE(x.entries.off(d) + D.hashNext)) {
          const key = dirHash(eb.readUInt32LE(x.entries.off(d) + D.parent), eb.readUInt32LE(x.entries.off(d) + D.nameHash))
          expect(bucketOf(key, level, split)).to.equal(b)
          expect(x.entryIndex.bucketOf(key)).to.equal(b)
          seen++
        }
      }

      expect(seen).to.equal(701)
    } finally {
      img.close()
    }
  })

  it('stringUnits and stringClass give the units the heap allocates', () => {
    expect(stringClass(stringUnits(1))).to.deep.equal([2, 2])
    expect(stringClass(stringUnits(4095))).to.deep.equal([257, 257])
    expect(stringClass(stringUnits(4097))).to.deep.equal([258, 512])
    expect(stringClass(stringUnits(131_056))).to.deep.equal([262, 8192])
    const img = Image.open(dir)
    try {
      const x = img.internals()
      const before = x.strings.bump
      const sizes = [1, 14, 15, 16, 200, 4095]
      let expected = before
      x.store.transaction(() => {
        for (const n of sizes) {
          const unit = x.strings.intern(Buffer.alloc(n, 0x61 + (n % 26)))
          expect(unit).to.equal(expected)
          expected += stringClass(stringUnits(n))[1]
        }
      })
      expect(x.strings.bump).to.equal(expected)
      const used = x.strings.file.buf.readUInt32LE(CONTROL_OFFSET + HEAP_CONTROL.OFF.liveBytes)
      expect(used % STRING.SIZE).to.equal(0)
    } finally {
      img.close()
    }
  })
})
