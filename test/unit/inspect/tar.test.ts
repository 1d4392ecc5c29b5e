/**
 * The pax codec alone: record lengths, times, headers, and interchange with GNU tar in both
 * directions (GNU tar lists and extracts what razorfs writes; razorfs reads what GNU tar writes).
 */
import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {FdWriter} from '../../../src/inspect/output.js'
import {
  BLOCK,
  RECORD,
  TYPE,
  type TarMember,
  TarError,
  formatPaxTime,
  parseHeaderBlock,
  parsePaxRecords,
  parsePaxTime,
  paxRecord,
} from '../../../src/inspect/tar/format.js'
import {TarReader} from '../../../src/inspect/tar/reader.js'
import {TarWriter} from '../../../src/inspect/tar/writer.js'

function member(p: string | Buffer, over: Partial<TarMember> = {}): TarMember {
  return {
    path: typeof p === 'string' ? Buffer.from(p) : p,
    type: TYPE.FILE,
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: 0,
    mtime: {sec: 1_700_000_000, nsec: 5},
    devmajor: 0,
    devminor: 0,
    xattrs: [],
    vendor: {},
    ...over,
  }
}

function readAll(file: string): Array<TarMember & {data: Buffer}> {
  const fd = fs.openSync(file, 'r')
  try {
    const reader = new TarReader(fd)
    const out: Array<TarMember & {data: Buffer}> = []
    for (let m = reader.next(); m !== null; m = reader.next()) {
      const chunks: Buffer[] = []
      const buf = Buffer.alloc(7000)
      for (let n = reader.read(buf); n > 0; n = reader.read(buf)) chunks.push(Buffer.from(buf.subarray(0, n)))
      out.push({...m, data: Buffer.concat(chunks)})
    }

    return out
  } finally {
    fs.closeSync(fd)
  }
}

describe('inspect/tar', () => {
  let dir: string
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-tar-'))
  })
  afterEach(() => fs.rmSync(dir, {recursive: true, force: true}))

  it('pax records count their own length, across digit boundaries', () => {
    for (let n = 0; n < 1200; n++) {
      const rec = paxRecord('k', 'v'.repeat(n))
      expect(Number(rec.toString('latin1', 0, rec.indexOf(0x20)))).to.equal(rec.length)
      expect(parsePaxRecords(rec).get('k')!.toString()).to.equal('v'.repeat(n))
    }

    const bin = Buffer.from([0, 0xff, 0x0a, 0x3d, 0x20])
    expect(
      parsePaxRecords(Buffer.concat([paxRecord('SCHILY.xattr.user.x', bin), paxRecord('path', 'a')]))
        .get('SCHILY.xattr.user.x')!
        .equals(bin),
    ).to.equal(true)
    expect(() => parsePaxRecords(Buffer.from('99 path=x\n'))).to.throw(TarError)
  })

  it('pax times are exact to the nanosecond, negative ones included', () => {
    for (const t of [
      {sec: 0, nsec: 0},
      {sec: 1_700_000_000, nsec: 1},
      {sec: -1, nsec: 999_999_999},
      {sec: -5, nsec: 1},
      {sec: -7, nsec: 0},
      {sec: 2 ** 40, nsec: 999_999_999},
    ]) {
      expect(parsePaxTime(formatPaxTime(t))).to.deep.equal(t)
    }

    expect(formatPaxTime({sec: -2, nsec: 500_000_000})).to.equal('-1.500000000')
    expect(parsePaxTime('12')).to.deep.equal({sec: 12, nsec: 0})
    expect(parsePaxTime('12.5')).to.deep.equal({sec: 12, nsec: 500_000_000})
  })

  it('writes what it reads: names as bytes, xattrs, links, devices, big numbers, contents', () => {
    const file = path.join(dir, 'a.tar')
    const fd = fs.openSync(file, 'w')
    const tar = new TarWriter(new FdWriter(fd))
    const odd = Buffer.concat([Buffer.from('./odd '), Buffer.from([0xff, 0x0a]), Buffer.from('name')])
    const long = Buffer.from(`./${'d'.repeat(150)}/${'f'.repeat(200)}`)
    const members: TarMember[] = [
      member('./', {type: TYPE.DIR, mode: 0o755}),
      member(odd, {size: 5, xattrs: [{name: Buffer.from('user.bin'), value: Buffer.from([0, 0xff])}], atime: {sec: 1, nsec: 2}, ctime: {sec: 3, nsec: 4}}),
      member(long, {size: 70_000, uid: 3_000_000_000, gid: 2_097_152}),
      member('./h', {type: TYPE.HARDLINK, linkpath: odd}),
      member('./s', {type: TYPE.SYMLINK, linkpath: Buffer.concat([Buffer.from('t'.repeat(120)), Buffer.from([0xfe])])}),
      member('./c', {type: TYPE.CHARDEV, devmajor: 1, devminor: 3}),
      member('./b', {type: TYPE.BLOCKDEV, devmajor: 259, devminor: 5_000_000}),
      member('./p', {type: TYPE.FIFO}),
      member('./sock', {vendor: {'RAZORFS.type': 'socket'}}),
    ]
    const contents = new Map([
      [odd.toString('hex'), Buffer.from('12345')],
      [long.toString('hex'), Buffer.alloc(70_000, 0x41)],
    ])
    for (const m of members) {
      tar.add(m)
      const data = contents.get(m.path.toString('hex'))
      if (data !== undefined) {
        tar.data(data.subarray(0, 1000))
        tar.data(data.subarray(1000))
      }
    }

    tar.finish()
    fs.closeSync(fd)
    expect(fs.statSync(file).size % RECORD).to.equal(0)
    const back = readAll(file)
    expect(back.map(m => m.path.toString('hex'))).to.deep.equal(members.map(m => m.path.toString('hex')))
    for (const [i, m] of members.entries()) {
      const b = back[i]
      expect({
        type: b.type,
        mode: b.mode,
        uid: b.uid,
        gid: b.gid,
        size: b.size,
        mtime: b.mtime,
        devmajor: b.devmajor,
        devminor: b.devminor,
        vendor: b.vendor,
      }).to.deep.equal({
        type: m.type,
        mode: m.mode,
        uid: m.uid,
        gid: m.gid,
        size: m.size,
        mtime: m.mtime,
        devmajor: m.devmajor,
        devminor: m.devminor,
        vendor: m.vendor,
      })
      expect(b.linkpath?.toString('hex')).to.equal(m.linkpath?.toString('hex'))
      expect(b.xattrs.map(x => [x.name.toString('hex'), x.value.toString('hex')])).to.deep.equal(
        m.xattrs.map(x => [x.name.toString('hex'), x.value.toString('hex')]),
      )
      expect(b.data.equals(contents.get(m.path.toString('hex')) ?? Buffer.alloc(0))).to.equal(true)
    }

    expect(back[1].atime).to.deep.equal({sec: 1, nsec: 2})
    expect(back[1].ctime).to.deep.equal({sec: 3, nsec: 4})

    // GNU tar lists it (and says nothing worse than unknown keywords) and extracts the bytes exactly.
    const list = spawnSync('tar', ['tvf', file], {encoding: 'utf8'})
    expect(list.status, list.stderr).to.equal(0)
    expect(list.stdout.split('\n').filter(Boolean)).to.have.length(members.length)
    const out = path.join(dir, 'x')
    fs.mkdirSync(out)
    // Making device nodes needs root (CAP_MKNOD): as another user tar extracts all but ./c and ./b.
    const devices = process.getuid?.() === 0 ? [] : ['--exclude=./c', '--exclude=./b']
    const x = spawnSync('tar', ['xf', file, '-C', out, '--warning=no-unknown-keyword', ...devices], {encoding: 'utf8'})
    expect(x.status, x.stderr).to.equal(0)
    expect(fs.readFileSync(Buffer.concat([Buffer.from(`${out}/`), odd.subarray(2)]), 'latin1')).to.equal('12345')
  })

  it('reads archives written by GNU tar (pax and gnu formats)', () => {
    const src = path.join(dir, 'src')
    const deep = path.join(src, 'd'.repeat(120), 'e'.repeat(120))
    fs.mkdirSync(deep, {recursive: true})
    fs.writeFileSync(path.join(deep, 'f'.repeat(200)), 'long')
    fs.writeFileSync(Buffer.concat([Buffer.from(`${src}/`), Buffer.from([0x62, 0xff, 0x20, 0x0a])]), 'odd')
    fs.linkSync(path.join(deep, 'f'.repeat(200)), path.join(src, 'hard'))
    fs.symlinkSync('hard', path.join(src, 'sym'))
    spawnSync('mkfifo', [path.join(src, 'fifo')])
    for (const format of ['posix', 'gnu']) {
      const file = path.join(dir, `${format}.tar`)
      const made = spawnSync('tar', [`--format=${format}`, '-cf', file, '-C', src, '.'], {encoding: 'utf8'})
      expect(made.status, made.stderr).to.equal(0)
      const back = readAll(file)
      const byName = new Map(back.map(m => [m.path.toString('latin1'), m]))
      const longName = `./${'d'.repeat(120)}/${'e'.repeat(120)}/${'f'.repeat(200)}`
      expect(byName.get(longName)?.data.toString(), `${format}: long name`).to.equal('long')
      expect(byName.get(Buffer.from([0x2e, 0x2f, 0x62, 0xff, 0x20, 0x0a]).toString('latin1'))?.data.toString(), `${format}: odd name`).to.equal('odd')
      const hard = byName.get('./hard') ?? byName.get(longName)
      expect(hard, `${format}: hard link`).to.not.equal(undefined)
      expect(back.some(m => m.type === TYPE.HARDLINK)).to.equal(true)
      expect(byName.get('./sym')?.linkpath?.toString()).to.equal('hard')
      expect(byName.get('./fifo')?.type).to.equal(TYPE.FIFO)
      const st = fs.statSync(path.join(deep, 'f'.repeat(200)))
      const m = byName.get(longName)!
      expect(m.mtime.sec).to.equal(Math.floor(st.mtimeMs / 1000))
      if (format === 'posix') expect(m.mtime.nsec).to.equal(Number(fs.statSync(path.join(deep, 'f'.repeat(200)), {bigint: true}).mtimeNs % 1_000_000_000n))
    }
  })

  it('rejects what is not a tar archive and a truncated one', () => {
    expect(() => parseHeaderBlock(Buffer.alloc(BLOCK, 0x41))).to.throw(TarError, /header checksum mismatch/)
    const file = path.join(dir, 't.tar')
    const fd = fs.openSync(file, 'w')
    const tar = new TarWriter(new FdWriter(fd))
    tar.add(member('./f', {size: 10_000}))
    tar.data(Buffer.alloc(10_000, 1))
    tar.finish()
    fs.closeSync(fd)
    fs.truncateSync(file, 3000)
    expect(() => readAll(file)).to.throw(TarError, /^truncated: the archive ends at byte 3000, in the data of member 1 \(\.\/f\)$/)
  })

  it('says where an archive is bad: the byte offset of the end of a truncated one, or of a damaged header', () => {
    // Three members: each is a pax header (2 blocks) and a ustar header, then its data.
    const file = path.join(dir, 'a.tar')
    const fd = fs.openSync(file, 'w')
    const out = new FdWriter(fd)
    const tar = new TarWriter(out)
    const starts: number[] = []
    for (const [name, size] of [
      ['./a', 700],
      ['./b', 0],
      ['./c', 3],
    ] as const) {
      starts.push(out.written)
      tar.add(member(name, {size}))
      if (size > 0) tar.data(Buffer.alloc(size, 7))
    }

    const end = out.written
    tar.finish()
    fs.closeSync(fd)
    const whole = fs.readFileSync(file)
    const cut = (n: number, name: string): string => {
      fs.writeFileSync(path.join(dir, name), whole.subarray(0, n))
      return path.join(dir, name)
    }

    expect(starts).to.deep.equal([0, 2560, 4096])
    expect(() => readAll(cut(starts[1] + 300, 'h.tar'))).to.throw(
      TarError,
      /^truncated: the archive ends at byte 2860, in the header of member 2, which starts at byte 2560$/,
    )
    expect(() => readAll(cut(starts[1] + 700, 'r.tar'))).to.throw(
      TarError,
      /^truncated: the archive ends at byte 3260, in the extended header of member 2, which starts at byte 2560$/,
    )
    expect(() => readAll(cut(starts[1] + 1500, 'x.tar'))).to.throw(
      TarError,
      /^truncated: the archive ends at byte 4060, in the header of member 2, which starts at byte 3584$/,
    )
    expect(() => readAll(cut(starts[1] - 100, 'p.tar'))).to.throw(
      TarError,
      /^truncated: the archive ends at byte 2460, in the padding after the data of member 1 \(\.\/a\)$/,
    )
    // Cut at a member's end: without the end-of-archive marker, the archive is truncated too.
    expect(() => readAll(cut(end, 'e.tar'))).to.throw(
      TarError,
      /^truncated: the archive ends at byte 6144, after member 3 \(\.\/c\), without the end-of-archive marker$/,
    )
    expect(readAll(cut(end + BLOCK, 'z.tar'))).to.have.length(3)

    const damaged = Buffer.from(whole)
    damaged[starts[2] + 1024 + 3] ^= 0x01 // the ustar header of member 3 (after its pax header)
    fs.writeFileSync(path.join(dir, 'd.tar'), damaged)
    expect(() => readAll(path.join(dir, 'd.tar'))).to.throw(TarError, /^damaged: the header at byte 5120 \(member 3\): header checksum mismatch$/)
  })
})
