/**
 * The codecs of src/storage/codec: each record kind encodes, decodes back what it encoded, and its
 * `validate` lists every problem (the store refuses the first, fsck reports them all).
 */
import {expect} from 'chai'

import {ImageError} from '../../../src/storage/errors.js'
import * as format from '../../../src/storage/format.js'
import {DIRENT, FILES, INODE, S_IFDIR, S_IFLNK, S_IFREG, SK_BLOB, SK_FREE, SK_NAME, type Layout} from '../../../src/storage/format.js'
import {parseHeader} from '../../../src/storage/store.js'
import {crc32, fnv1a} from '../../../src/storage/codec/checksum.js'
import {BytesField, fieldsOf} from '../../../src/storage/codec/field.js'
import * as dirent from '../../../src/storage/codec/dirent.js'
import * as header from '../../../src/storage/codec/header.js'
import * as inode from '../../../src/storage/codec/inode.js'
import * as inodeNumber from '../../../src/storage/codec/inode-number.js'
import * as stringUnit from '../../../src/storage/codec/string-unit.js'
import * as walHeader from '../../../src/storage/codec/wal-header.js'
import * as walRecord from '../../../src/storage/codec/wal-record.js'
import * as xattrBlob from '../../../src/storage/codec/xattr-blob.js'

const UUID = Buffer.from('00112233445566778899aabbccddeeff', 'hex')
const nodes = FILES[0]

function info(): header.HeaderInfo {
  return {
    formatVersion: 1,
    recordSize: 128,
    flags: 1,
    capacity: 100,
    used: 7,
    generation: 2 ** 40 + 3,
    checkpointLsn: 99,
    uuid: UUID,
    createdMs: 1_700_000_000_123,
    mountedMs: 1_700_000_001_456,
    reclaimable: 5,
  }
}

const reseal = (head: Buffer): void => {
  head.writeUInt32LE(crc32(head.subarray(4, 256)), 0)
}

describe('storage codecs (src/storage/codec)', () => {
  it('fieldsOf: one accessor per field of every layout, at its offset, reading back what it writes', () => {
    for (const value of Object.values(format)) {
      if (typeof value !== 'object' || value === null || !('FIELDS' in value)) continue
      const layout = value as Layout<string>
      const fields = fieldsOf(layout) as Record<
        string,
        {off: number; size: number; get(b: Buffer, o: number): unknown; put(b: Buffer, o: number, v: never): void}
      >
      expect(Object.keys(fields)).to.deep.equal(layout.FIELDS.map(([name]) => name))
      for (const [name, type] of layout.FIELDS) {
        const f = fields[name]
        expect(f.off, `${layout.name}.${name}`).to.equal(layout.OFF[name])
        const buf = Buffer.alloc(layout.SIZE + 16)
        if (f instanceof BytesField) {
          const bytes = Buffer.alloc(f.size, 0xa5)
          f.put(buf, 8, bytes)
          expect(f.get(buf, 8).equals(bytes)).to.equal(true)
        } else {
          const v = type === 'u8' ? 0xfe : type === 'u16' ? 0xfedc : type === 'u32' ? 0xfedcba98 : type === 'i64' ? -(2 ** 52) + 7 : 2 ** 52 + 7
          ;(f.put as (b: Buffer, o: number, v: number) => void)(buf, 8, v)
          expect(f.get(buf, 8), `${layout.name}.${name}`).to.equal(v)
        }

        // Nothing outside the field was written.
        expect(buf.subarray(0, 8 + f.off).every(b => b === 0) && buf.subarray(8 + f.off + f.size).every(b => b === 0)).to.equal(true)
      }
    }
  })

  describe('header', () => {
    it('decodes what it encodes, and a good header has no problem', () => {
      const head = header.encode(nodes, info())
      expect(header.validate(nodes, head, 1 << 20)).to.deep.equal([])
      expect(header.decode(head)).to.deep.equal(info())
      expect(header.hasMagic(nodes, head)).to.equal(true)
      expect(header.hasMagic(FILES[1], head)).to.equal(false)
    })

    it('lists every problem, in the order of the validation table; the store throws the first', () => {
      const head = header.encode(nodes, info())
      head.writeUInt32LE(64, header.headerFields.recordSize.off)
      head.writeUInt32LE(0x10, header.headerFields.flags.off)
      header.headerFields.uuid.put(head, 0, Buffer.alloc(16))
      head[200] = 1
      reseal(head)
      const problems = header.validate(nodes, head, 4096)
      expect(problems.map(p => p.field)).to.deep.equal(['recordSize', 'flags', 'capacity', 'uuid', 'reserved'])
      expect(problems.map(p => p.code)).to.deep.equal(['RZ_CORRUPTED', 'RZ_CORRUPTED', 'RZ_TRUNCATED', 'RZ_CORRUPTED', 'RZ_CORRUPTED'])
      expect(problems.find(p => p.field === 'reserved')!.ignoredByOpen).to.equal(true)
      expect(() => parseHeader(nodes, 'f', head, 4096)).to.throw(ImageError, /record size 64, expected 128/)

      head[100] = 9 // not resealed: the checksum too
      expect(header.validate(nodes, head, 4096).map(p => p.field)).to.deep.equal(['checksum', 'recordSize', 'flags', 'capacity', 'uuid', 'reserved'])
      expect(header.validate(nodes, head.subarray(0, 100), 100).map(p => p.code)).to.deep.equal(['RZ_TRUNCATED'])
    })

    it('reserved bytes that are not zero: reported, but an open reads the header', () => {
      const head = header.encode(nodes, info())
      head[255] = 7
      reseal(head)
      expect(header.validate(nodes, head, 1 << 20).map(p => p.field)).to.deep.equal(['reserved'])
      expect(parseHeader(nodes, 'f', head, 1 << 20)).to.deep.equal(info())
    })
  })

  describe('WAL header', () => {
    it('decodes what it encodes; lists every problem', () => {
      const head = walHeader.encode({salt: 0xdeadbeef, uuid: UUID, startLsn: 2 ** 33 + 1})
      expect(walHeader.validate(head, UUID)).to.deep.equal([])
      expect(walHeader.decode(head)).to.deep.equal({formatVersion: 1, salt: 0xdeadbeef, uuid: UUID, startLsn: 2 ** 33 + 1})
      head.writeUInt16LE(2, walHeader.walHeaderFields.formatVersion.off)
      head.writeUInt16LE(32, walHeader.walHeaderFields.headerSize.off)
      head[63] = 1
      expect(walHeader.validate(head, Buffer.alloc(16, 1)).map(p => p.field)).to.deep.equal(['formatVersion', 'checksum', 'headerSize', 'reserved', 'uuid'])
      expect(walHeader.validate(head.subarray(0, 10)).map(p => p.code)).to.deep.equal(['RZ_TRUNCATED'])
    })
  })

  describe('WAL record', () => {
    const log = (...records: Buffer[]): Buffer => Buffer.concat([Buffer.alloc(64), ...records, Buffer.alloc(64)])

    it('scans back what it encodes', () => {
      const a = walRecord.encode(
        5,
        [
          {fileId: 0, offset: 8192, bytes: Buffer.from('abc')},
          {fileId: 3, offset: 4096, bytes: Buffer.alloc(9, 2)},
        ],
        77,
      )
      const b = walRecord.encode(6, [], 77)
      expect(walRecord.validate(a, 77)).to.deep.equal([])
      const scan = walRecord.scan(walRecord.bufferSource(log(a, b)), 5, 77)
      expect(scan.records.map(r => [r.lsn, r.at, r.entries.map(e => [e.fileId, e.offset, e.bytes.toString('hex')])])).to.deep.equal([
        [
          5,
          64,
          [
            [0, 8192, '616263'],
            [3, 4096, '020202020202020202'],
          ],
        ],
        [6, 64 + a.length, []],
      ])
      expect(scan).to.include({end: 64 + a.length + b.length, nextLsn: 7, torn: undefined, bad: undefined})
      // Another salt: the records are not this cycle's.
      expect(walRecord.scan(walRecord.bufferSource(log(a, b)), 5, 78).torn).to.deep.equal({at: 64, bytes: a.length, lsn: 5})
    })

    it('a torn tail, a record whose entries overrun it, an entry outside the image', () => {
      const a = walRecord.encode(1, [{fileId: 0, offset: 8192, bytes: Buffer.alloc(40)}], 0)
      const cut = Buffer.concat([Buffer.alloc(64), a.subarray(0, 30)])
      expect(walRecord.scan(walRecord.bufferSource(cut), 1, 0).torn).to.deep.equal({at: 64, bytes: 30, lsn: 1})
      const overrun = Buffer.from(a)
      overrun.writeUInt32LE(4096, 24 + 4)
      overrun.writeUInt32LE(crc32(overrun.subarray(8), 0), 4)
      expect(walRecord.validate(overrun, 0)).to.deep.equal([{kind: 'corrupt', message: 'its entries overrun the record'}])
      expect(walRecord.scan(walRecord.bufferSource(log(overrun)), 1, 0).bad).to.deep.equal({at: 64, lsn: 1, reason: 'its entries overrun the record'})
      expect(walRecord.entryProblem({fileId: 5, offset: 8192, bytes: Buffer.alloc(1)})).to.match(/outside the image \(file 5/)
      expect(walRecord.entryProblem({fileId: 0, offset: 0, bytes: Buffer.alloc(1)})).to.match(/outside the image/)
      expect(walRecord.entryProblem({fileId: 4, offset: 4096, bytes: Buffer.alloc(1)})).to.equal(undefined)
    })
  })

  describe('INODE', () => {
    const fields: inode.InodeFields = {
      gen: 3,
      flags: 1,
      mode: S_IFREG | 0o644,
      nlink: 1,
      uid: 1000,
      gid: 100,
      size: 2 ** 40,
      atimeSec: -5,
      atimeNsec: 1,
      mtimeSec: 2 ** 33,
      mtimeNsec: 999_999_999,
      ctimeSec: 7,
      ctimeNsec: 0,
      parent: 0,
      rdev: 0,
      dataId: 2 ** 35,
      xattr: 9,
      target: 0,
      dirHead: 0,
      link: 0,
    }

    it('decodes what it encodes, with its slot and inode number', () => {
      const rec = inode.encode(fields)
      expect(rec.length).to.equal(INODE.SIZE)
      expect(inode.decode(rec, 0, 12)).to.deep.equal({ino: 12 + 3 * 2 ** 32, slot: 12, ...fields})
      expect(inode.validate(rec, 0)).to.deep.equal([])
    })

    it('lists every rule the record breaks on its own', () => {
      const rec = inode.encode({...fields, mode: S_IFLNK | 0o777, flags: 1 | 8, gen: 2 ** 20, atimeNsec: 2e9, parent: 4, link: 2})
      rec[INODE.SIZE - 1] = 1
      expect(inode.validate(rec, 0).map(p => [p.rule, p.field])).to.deep.equal([
        ['flags', 'flags'],
        ['gen', 'gen'],
        ['field', 'atimeNsec'],
        ['field', 'reserved'],
        ['field', 'link'],
        ['field', 'parent'],
        ['dataId', 'dataId'],
      ])
      const bad = inode.encode({...fields, mode: 0o170000})
      expect(inode.validate(bad, 0).map(p => p.rule)).to.deep.equal(['type'])
      const free = inode.encode({
        ...fields,
        flags: 0,
        mode: 0,
        nlink: 0,
        uid: 0,
        gid: 0,
        size: 0,
        atimeSec: 0,
        atimeNsec: 0,
        mtimeSec: 0,
        mtimeNsec: 0,
        ctimeSec: 0,
        ctimeNsec: 0,
        dataId: 0,
        xattr: 0,
        link: 5,
      })
      expect(inode.validate(free, 0)).to.deep.equal([])
      free[20] = 1
      expect(inode.validate(free, 0).map(p => p.rule)).to.deep.equal(['free'])
      expect(inode.validate(inode.encode({...fields, mode: S_IFDIR | 0o755, size: 3, dataId: 0, dirHead: 2, parent: 1}), 0)).to.deep.equal([])
    })
  })

  describe('DIRENT', () => {
    it('decodes what it encodes; keys, child number, inline name and lookup comparison', () => {
      const name = Buffer.from('a-name')
      const r: dirent.DirentFields = {
        parent: 1,
        name: 40,
        child: 7,
        childGen: 2,
        next: 3,
        prev: 0,
        hashNext: 0,
        nameHash: fnv1a(name),
        type: 8,
        nameLength: name.length,
      }
      const rec = dirent.encode(r, name)
      expect(rec.length).to.equal(DIRENT.SIZE)
      expect(dirent.decode(rec, 0)).to.deep.equal(r)
      expect(dirent.validate(rec, 0)).to.deep.equal([])
      expect(dirent.childIno(rec, 0)).to.equal(inodeNumber.encode(7, 2))
      expect(dirent.keyOf(rec, 0)).to.equal(dirent.dirHash(1, fnv1a(name)))
      expect(dirent.inlineName(rec, 0).toString()).to.equal('a-name')
      const heap = {equals: () => false}
      expect(dirent.isEntryOf(rec, 0, 1, fnv1a(name), name, heap)).to.equal(true)
      expect(dirent.isEntryOf(rec, 0, 2, fnv1a(name), name, heap)).to.equal(false)
      const long = Buffer.alloc(40, 0x62)
      const longRec = dirent.encode({...r, nameHash: fnv1a(long), nameLength: 40}, long)
      expect(dirent.inlineName(longRec, 0).length).to.equal(30)
      expect(dirent.isEntryOf(longRec, 0, 1, fnv1a(long), long, {equals: (unit, bytes) => unit === 40 && bytes === long})).to.equal(true)
    })

    it('lists every rule the record breaks on its own', () => {
      const rec = dirent.encode(
        {parent: 0, name: 0, child: 5, childGen: 0, next: 0, prev: 0, hashNext: 0, nameHash: 0, type: 3, nameLength: 0},
        Buffer.alloc(0),
      )
      rec[DIRENT.SIZE - 1] = 1
      expect(dirent.validate(rec, 0).map(p => p.rule)).to.deep.equal(['type', 'nameLength', 'inlineName', 'link', 'link'])
      const free = Buffer.alloc(DIRENT.SIZE)
      dirent.direntFields.hashNext.put(free, 0, 9)
      expect(dirent.validate(free, 0)).to.deep.equal([])
      free[0] = 1
      expect(dirent.validate(free, 0).map(p => p.rule)).to.deep.equal(['free'])
    })
  })

  describe('xattr blob', () => {
    it('decodes what it encodes, in order', () => {
      const blob = xattrBlob.encode([
        ['user.a', Buffer.from('1')],
        [Buffer.from('user.empty'), Buffer.alloc(0)],
        ['trusted.x', Buffer.alloc(300, 7)],
      ])
      expect(xattrBlob.validate(blob)).to.deep.equal([])
      expect(xattrBlob.decode(blob).map(x => [x.name.toString(), x.value.length])).to.deep.equal([
        ['user.a', 1],
        ['user.empty', 0],
        ['trusted.x', 300],
      ])
      expect(xattrBlob.encode([]).length).to.equal(0)
    })

    it('lists every problem', () => {
      const blob = xattrBlob.encode([
        ['', Buffer.from('v')],
        ['n'.repeat(256), Buffer.alloc(0)],
        ['ok', Buffer.from('x')],
      ])
      expect(xattrBlob.validate(blob)).to.have.length(2)
      expect(xattrBlob.validate(blob.subarray(0, blob.length - 1))).to.deep.equal([
        'attribute 0 at byte 0: a name of 0 bytes',
        'attribute 1 at byte 7: a name of 256 bytes',
        'attribute 2 runs past the end',
      ])
      expect(xattrBlob.validate(blob.subarray(0, 3))).to.deep.equal(['attribute 0 at byte 0: its header runs past the end'])
      // decode stops at an entry that runs past the end
      expect(xattrBlob.decode(blob.subarray(0, blob.length - 1))).to.have.length(2)
    })
  })

  describe('string heap entry', () => {
    it('splits the length into its u16 and u8 halves and back', () => {
      for (const length of [0, 1, 4095, 65_535, 65_536, 131_056]) {
        const head = stringUnit.encode({refs: 1, hashNext: 5, hash: 0xabcdef01, length, kind: length > 4095 ? SK_BLOB : SK_NAME})
        expect(stringUnit.decode(head, 0)).to.deep.equal({refs: 1, hashNext: 5, hash: 0xabcdef01, length, kind: length > 4095 ? SK_BLOB : SK_NAME})
        expect(stringUnit.length(head, 0)).to.equal(length)
        expect(stringUnit.hasLength(head, 0, length)).to.equal(length < 65_536)
      }
    })

    it('validates the kind and the length a kind allows; units and size classes', () => {
      const at = (kind: number, length: number): string[] => stringUnit.validate(stringUnit.encode({refs: 0, hashNext: 0, hash: 0, length, kind}), 0)
      expect(at(SK_NAME, 4095)).to.deep.equal([])
      expect(at(SK_NAME, 4096)).to.deep.equal(['a name of 4096 bytes'])
      expect(at(SK_BLOB, 0)).to.deep.equal(['an xattr blob of 0 bytes'])
      expect(at(SK_FREE, stringUnit.STRING_MAX_BYTES + 1)).to.have.length(1)
      expect(at(3, 1)).to.deep.equal(['kind 3 is not a string kind'])
      expect(stringUnit.sizeClass(stringUnit.units(4097))).to.deep.equal([258, 512])
      expect(stringUnit.span(stringUnit.encode({refs: 1, hashNext: 0, hash: 0, length: 1, kind: SK_NAME}), 0)).to.equal(2)
    })
  })

  it('inode numbers: slot + gen * 2^32', () => {
    expect(inodeNumber.encode(1, 0)).to.equal(1)
    expect(inodeNumber.decode(inodeNumber.encode(0xffff_ffff, inodeNumber.GEN_MASK))).to.deep.equal({slot: 0xffff_ffff, gen: inodeNumber.GEN_MASK})
    expect(inodeNumber.nextGen(inodeNumber.GEN_MASK)).to.equal(0)
    expect(inodeNumber.validate(5)).to.deep.equal([])
    expect(inodeNumber.validate(2 ** 32)).to.deep.equal(['slot 0 is never used'])
    expect(inodeNumber.validate(0)).to.have.length(1)
    expect(inodeNumber.validate(2 ** 52 + 1)).to.deep.equal(['generation 1048576 is not below 2^20'])
  })
})
