/**
 * The write-ahead log's appends through its shared mapping (wal.ts, Wal.append): what a process
 * that never closes the log leaves is read back by a new open, past the first mapping, across a
 * growth, a recycle and a shrink; a log with holes is written, not mapped.
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
