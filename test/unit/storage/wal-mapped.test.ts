/**
 * The write-ahead log's appends through its shared mapping (wal.ts, Wal.append): what a process
 * that never closes the log leaves is read back by a new open, past the first mapping, across a
 * growth, a recycle and a shrink; a log with holes is written, not mapped. A sync writes back
 * the pages the records changed, not the large folio around them.
 */
import {expect} from 'chai'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {encode} from '../../../src/storage/codec/wal-record.js'
import {Wal} from '../../../src/storage/wal.js'

describe('storage: write-ahead log appends through a shared mapping', () => {
  let dir: string
  let file: string
  const uuid = crypto.randomBytes(16)

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-wal-mapped-'))
    file = path.join(dir, 'wal.log')
  })

  afterEach(() => fs.rmSync(dir, {recursive: true, force: true}))

  /** Append `n` records of about 1 KiB, making room first as the store does; their payloads. */
  const appendRecords = (wal: Wal, n: number): string[] => {
    const payloads: string[] = []
    for (let i = 0; i < n; i++) {
      const bytes = crypto.randomBytes(1000)
      const record = encode(wal.nextLsn, [{fileId: 1, offset: 8192 + i * 8, bytes}], wal.salt)
      wal.ensureRoom(record.length)
      wal.append(record)
      payloads.push(bytes.toString('hex'))
    }

    return payloads
  }

  /** What a new open of the file finds (the first log is never closed: as after kill -9). */
  const scanned = (): string[] => {
    const wal = Wal.open(file, uuid, true)
    try {
      return wal.scan().records.map(r => r.entries[0].bytes.toString('hex'))
    } finally {
      wal.close()
    }
  }

  it('records past the first mapping and across the log growing are all found by a new open', () => {
    const wal = Wal.create(file, uuid, 1)
    const payloads = appendRecords(wal, 3000) // about 3 MiB: the log grows from 1 MiB twice
    expect(fs.statSync(file).size).to.be.at.least(3 << 20)
    expect(scanned()).to.deep.equal(payloads)
  })

  it('after a recycle and a shrink, the next records go to the new cycle and are found', () => {
    const wal = Wal.create(file, uuid, 1)
    appendRecords(wal, 2000)
    wal.recycle(wal.nextLsn)
    wal.shrink() // cuts the file back to 1 MiB: the old mapping reached past it
    expect(fs.statSync(file).size).to.equal(1 << 20)
    const payloads = appendRecords(wal, 1500)
    expect(scanned()).to.deep.equal(payloads)
  })

  /** Sectors the block device under `file` wrote during `fn`; undefined without one (tmpfs). */
  const sectorsWritten = (fn: () => void): number | undefined => {
    const dev = fs.statSync(file).dev
    const stat = `/sys/dev/block/${Math.floor(dev / 256) & 0xf_ff}:${(dev & 0xff) | ((dev >> 12) & 0xf_ff_00)}/stat`
    if (!fs.existsSync(stat)) return undefined
    const written = (): number => Number(fs.readFileSync(stat, 'utf8').trim().split(/\s+/)[6])
    const before = written()
    fn()
    return written() - before
  }

  /** Median sectors written by `rounds` syncs of one small record each (a transaction and its fsync). */
  const sectorsPerSync = (wal: Wal, rounds: number): number | undefined => {
    const counts: number[] = []
    for (let i = 0; i < rounds; i++) {
      const n = sectorsWritten(() => {
        appendRecords(wal, 1)
        wal.sync()
      })
      if (n === undefined) return undefined
      counts.push(n)
    }

    return counts.sort((a, b) => a - b)[Math.floor(rounds / 2)]
  }

  it('a sync writes back about the page of its record, also after a read of the whole log and in a grown log', function () {
    const first = Wal.create(file, uuid, 1)
    appendRecords(first, 100)
    first.sync()
    first.close()
    // Large reads (this one, or the scan at open) cache the file in large folios on Linux 6.16+:
    // a store through the mapping then dirtied 1 MiB, and each sync wrote 2,048 sectors.
    fs.readFileSync(file)
    const wal = Wal.open(file, uuid, false)
    wal.scan()
    wal.allocateAtOpen()
    const atOpen = sectorsPerSync(wal, 15)
    if (atOpen === undefined) this.skip() // no block device under the temp dir
    expect(atOpen).to.be.below(256)
    appendRecords(wal, 2000) // past the first MiB: ensureRoom allocates more
    expect(sectorsPerSync(wal, 15)).to.be.below(256)
    wal.close()
  })

  it('a log with holes that allocateAtOpen could not fill is written, not mapped, and still read back', () => {
    const wal = Wal.create(file, uuid, 1)
    wal.close()
    fs.truncateSync(file, 4 << 20) // 3 MiB of hole past what was allocated
    const reopened = Wal.open(file, uuid, false)
    reopened.scan()
    // Not allocateAtOpen: the holes stay, as on a full host.
    const payloads = appendRecords(reopened, 200)
    expect(scanned()).to.deep.equal(payloads)
    reopened.close()
  })
})
