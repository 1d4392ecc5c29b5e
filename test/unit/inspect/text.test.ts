import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {devMajor, devMinor, escapeName, fieldBytes, formatTime, makeDev, modeString, putBytes} from '../../../src/inspect/text.js'

describe('inspect/text', () => {
  it('escapes names as ls -b does (checked against GNU ls)', () => {
    const names = [
      Buffer.from('plain'),
      Buffer.from('a b'),
      Buffer.from('n\nl'),
      Buffer.from('t\tx'),
      Buffer.from([1, 0x63]),
      Buffer.from('back\\slash'),
      Buffer.from([0x7f]),
      Buffer.from('é ✓'),
      Buffer.from([0xff, 0xfe, 0x6f, 0x6b]),
      Buffer.from([0xc3]),
      Buffer.from([0xe2, 0x9c]),
      Buffer.from('q"\''),
    ]
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-lsb-'))
    try {
      for (const [i, name] of names.entries()) {
        const sub = path.join(dir, String(i))
        fs.mkdirSync(sub)
        fs.writeFileSync(Buffer.concat([Buffer.from(`${sub}/`), name]), '')
        const ls = spawnSync('ls', ['-b', sub], {encoding: 'utf8', env: {...process.env, LC_ALL: 'C.UTF-8'}})
        expect(escapeName(name), `name ${name.toString('hex')}`).to.equal(ls.stdout.replace(/\n$/, ''))
      }
    } finally {
      fs.rmSync(dir, {recursive: true, force: true})
    }
  })

  it('escapes to one token: distinct names never print the same', () => {
    const a = escapeName(Buffer.from('x\\ny'))
    const b = escapeName(Buffer.from('x\ny'))
    expect(a).to.not.equal(b)
    expect(escapeName(Buffer.from('a b'), {space: false})).to.equal('a b')
  })

  it('carries bytes in JSON as UTF-8 text or base64, exactly', () => {
    for (const bytes of [Buffer.from('ascii'), Buffer.from('ünï ✓'), Buffer.from([0xff, 0, 0x80]), Buffer.alloc(0)]) {
      const obj: Record<string, unknown> = {}
      putBytes(obj, 'name', bytes)
      const parsed = JSON.parse(JSON.stringify(obj)) as Record<string, unknown>
      expect(fieldBytes(parsed, 'name')!.equals(bytes)).to.equal(true)
      expect(Object.keys(obj)).to.deep.equal([bytes.includes(0xff) ? 'nameBase64' : 'name'])
    }
  })

  it('shows modes as ls -l does', () => {
    expect(modeString(0o040755)).to.equal('drwxr-xr-x')
    expect(modeString(0o104755)).to.equal('-rwsr-xr-x')
    expect(modeString(0o102644)).to.equal('-rw-r-Sr--')
    expect(modeString(0o041777)).to.equal('drwxrwxrwt')
    expect(modeString(0o041776)).to.equal('drwxrwxrwT')
    expect(modeString(0o120777)).to.equal('lrwxrwxrwx')
    expect(modeString(0o010600)).to.equal('prw-------')
    expect(modeString(0o140755)).to.equal('srwxr-xr-x')
    expect(modeString(0o020666)).to.equal('crw-rw-rw-')
    expect(modeString(0o060660)).to.equal('brw-rw----')
  })

  it('formats times in UTC with nanoseconds', () => {
    expect(formatTime({sec: 0, nsec: 1})).to.equal('1970-01-01 00:00:00.000000001 +0000')
    expect(formatTime({sec: 1_700_000_000, nsec: 123_456_789})).to.equal('2023-11-14 22:13:20.123456789 +0000')
    expect(formatTime({sec: -1, nsec: 999_999_999})).to.equal('1969-12-31 23:59:59.999999999 +0000')
    expect(formatTime({sec: 2 ** 40, nsec: 0})).to.equal(`@${2 ** 40}.000000000`)
  })

  it('splits and joins device numbers as glibc does', () => {
    expect(devMajor((8 << 8) | 1)).to.equal(8)
    expect(devMinor((8 << 8) | 1)).to.equal(1)
    for (const [major, minor] of [
      [0, 0],
      [1, 3],
      [259, 70_000],
      [4095, 255],
      [4096, 256],
      [0xfffff, 0xffffffff],
    ]) {
      const dev = makeDev(major, minor)
      expect([devMajor(dev), devMinor(dev)]).to.deep.equal([major, minor])
    }
  })
})
