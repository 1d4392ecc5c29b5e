/** The C WAL report (read only, never required). The progress bar: test/unit/progress.test.ts. */
import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'

import {readWal} from '../../../src/migrate/wal.js'
import {fixture, patch, tmp, u32} from './helpers.js'

describe('migrate: the C WAL report', () => {
  it('disk fixture: header fields, CRC, 20 entries by operation', () => {
    const w = readWal(fixture('disk').wal)
    expect(w.valid).to.equal(true)
    expect(w.bytes).to.equal(8_388_736)
    expect(w.header).to.deep.equal({
      magic: '0x574C4F47',
      version: 1,
      nextTxId: 1,
      nextLsn: 21,
      head: 1418,
      tail: 0,
      checkpointLsn: 20,
      entryCount: 20,
      crc: '0xEAF60FBC',
      crcOk: true,
    })
    expect(w.entries).to.include({count: 20, firstLsn: 1, lastLsn: 20, pastHead: 0})
    expect(w.entries!.byOp).to.deep.equal({INSERT: 4, WRITE: 13, DELETE: 2, CHECKPOINT: 1})
    expect(w.problems).to.deep.equal([])
  })

  it('disk-crashed fixture: 6 INSERT entries', () => {
    const w = readWal(fixture('disk-crashed').wal)
    expect(w.header).to.include({nextLsn: 7, head: 360, entryCount: 6, checkpointLsn: 0, crcOk: true})
    expect(w.entries!.byOp).to.deep.equal({INSERT: 6})
    expect(w.problems).to.deep.equal([])
  })

  it('a damaged or foreign WAL is reported, never thrown', () => {
    const t = tmp()
    try {
      const file = path.join(t.dir, 'wal')
      fs.copyFileSync(fixture('disk').wal, file)
      fs.chmodSync(file, 0o644) // the fixture is read-only; only root could patch the copy as it is
      patch(file, 16, u32(99)) // next_lsn: the header CRC no longer matches
      let w = readWal(file)
      expect(w.valid).to.equal(true)
      expect(w.problems.join('\n')).to.include('CRC does not match')

      patch(file, 128 + 40 + 3, Buffer.from([0xff])) // the first entry's payload
      w = readWal(file)
      expect(w.entries!.count).to.equal(0)
      expect(w.entries!.stoppedAt).to.match(/damaged entry/)

      patch(file, 0, Buffer.from('nope'))
      w = readWal(file)
      expect(w.valid).to.equal(false)
      expect(w.problems.join('\n')).to.match(/bad magic/)

      fs.writeFileSync(file, 'short')
      expect(readWal(file).problems.join('\n')).to.match(/shorter than its 128-byte header/)
      expect(readWal(path.join(t.dir, 'absent')).problems.join('\n')).to.match(/ENOENT/)
    } finally {
      t.remove()
    }
  })

  it('entries past a stale head are counted', () => {
    const t = tmp()
    try {
      const file = path.join(t.dir, 'wal')
      fs.copyFileSync(fixture('disk-crashed').wal, file)
      fs.chmodSync(file, 0o644) // the fixture is read-only; only root could patch the copy as it is
      patch(file, 24, Buffer.from([180, 0, 0, 0])) // head after 3 of the 6 entries (60 bytes each)
      const w = readWal(file)
      expect(w.entries).to.include({count: 3, pastHead: 3})
      expect(w.problems.join('\n')).to.match(/3 well-formed entries lie past the header's head/)
    } finally {
      t.remove()
    }
  })
})
