/**
 * Pass 7: the write-ahead log. It runs second, right after pass 0 and before the image is opened,
 * because a damaged log stops the open (it keeps the number of the list in issue 5: log last).
 *
 * Checks: wal.log exists; its header (magic, version, checksum, size, reserved bytes, the image's
 *   UUID); that it does not start after any file's checkpoint (no recycled transaction a file still
 *   needs); then scans the current cycle exactly as `Wal.scan` and recovery do: a torn last record
 *   (what a crash during an append leaves; recovery discards it), a checksummed record whose entries
 *   overrun it, and a record recovery would replay that writes outside the image.
 * Collects: the number of transactions the open will replay (a cleanly closed image has none).
 * Relies on: pass 0 (the image's UUID, the headers' checkpoint LSNs).
 * Repairs (raw writes under the lock): a new header (the log's records are discarded), the image's
 *   UUID, a lagging file's checkpoint LSN, and cutting the log at a torn or bad record.
 * Frees: nothing.
 */
import fs from 'node:fs'
import {randomInt} from 'node:crypto'

import {FORMAT_VERSION} from '../storage/format.js'
import * as header from '../storage/codec/header.js'
import {uuidString} from '../storage/codec/header.js'
import * as walHeader from '../storage/codec/wal-header.js'
import {bufferSource, entryProblem, scan} from '../storage/codec/wal-record.js'
import type {FsckContext} from './context.js'
import {type PreOpen, writeAt} from './pass0-headers.js'
import {PR} from './problems.js'

export interface LogCheck {
  /** Transactions of the current cycle that recovery will replay. */
  records: number
  /**
   * Committed transactions are lost: the log is missing or unreadable, starts after a file's
   * checkpoint, or holds a checksummed record that cannot be replayed. File sizes may then be
   * older than the bytes of their content files (pass 6).
   */
  lost: boolean
  /**
   * The log ends in a torn record: what a crash during an append leaves, but also a log cut short,
   * which loses every transaction after the cut (pass 6 then keeps the content files of ids the
   * lost transactions may have allocated).
   */
  torn: boolean
}

interface Scan {
  records: number
  /** Offset just past the last good record. */
  end: number
  torn: {at: number; bytes: number; lsn: number} | undefined
  bad: {at: number; lsn: number; reason: string} | undefined
}

/**
 * Scan the current cycle as Wal.scan and Store.recover do (codec/wal-record.ts), without throwing:
 * the scan stops at a record recovery would refuse to replay (LSN above `minLsn`, an entry outside
 * the image) as at one whose entries overrun it.
 */
function scanLog(bytes: Buffer, startLsn: number, salt: number, minLsn: number): Scan {
  const s = scan(bufferSource(bytes), startLsn, salt)
  for (const [i, r] of s.records.entries()) {
    if (r.lsn <= minLsn) continue
    const reason = r.entries.map(e => entryProblem(e)).find(p => p !== undefined)
    if (reason !== undefined) return {records: i, end: r.at, torn: undefined, bad: {at: r.at, lsn: r.lsn, reason}}
  }

  return {records: s.records.length, end: s.end, torn: s.torn, bad: s.bad}
}

/** A new, empty log (like Wal.create): O_TRUNC, mode 0600, a fresh salt. */
function createLog(file: string, uuid: Buffer, startLsn: number): void {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o600)
  try {
    fs.fchmodSync(fd, 0o600)
    const head = walHeader.encode({uuid, startLsn, salt: randomInt(2 ** 32)})
    fs.writeSync(fd, head, 0, head.length, 0)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

function cutLog(file: string, at: number): void {
  const fd = fs.openSync(file, 'r+')
  try {
    fs.ftruncateSync(fd, at)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

export function pass7(ctx: FsckContext, pre: PreOpen): LogCheck {
  ctx.header(PR.PR_7_PASS_HEADER)
  const wal = pre.wal
  const headers = pre.files.filter(f => f.header !== undefined)
  const lsns = headers.map(f => f.header!.checkpointLsn)
  let minLsn = lsns.length === 0 ? 0 : Math.min(...lsns)
  const result: LogCheck = {records: 0, lost: false, torn: false}
  const problem = (): void => {
    pre.clean = false
  }

  if (!wal.present) {
    problem()
    result.lost = true
    if (ctx.fix(PR.PR_7_LOG_MISSING)) createLog(wal.path, pre.imageUuid, minLsn + 1)
    else pre.blocked.push('wal.log is missing')
    return result
  }

  if (wal.newer !== undefined) ctx.fix(PR.PR_7_LOG_VERSION_NEWER, {version: wal.newer, supported: FORMAT_VERSION})
  if (wal.bad !== undefined) {
    problem()
    result.lost = true
    if (ctx.fix(PR.PR_7_LOG_HEADER, {reason: wal.bad})) createLog(wal.path, pre.imageUuid, minLsn + 1)
    else pre.blocked.push('the header of wal.log is corrupt')
    return result
  }

  if (!wal.uuid!.equals(pre.imageUuid)) {
    problem()
    if (ctx.fix(PR.PR_7_LOG_UUID, {uuid: uuidString(wal.uuid!), imageUuid: uuidString(pre.imageUuid)})) {
      writeAt(wal.path, walHeader.encode({uuid: pre.imageUuid, startLsn: wal.startLsn, salt: wal.salt}), 0)
    } else {
      pre.blocked.push('wal.log belongs to another image')
      return result
    }
  }

  // Transactions a file needs that the log no longer holds.
  if (wal.startLsn > minLsn + 1) {
    for (const f of headers) {
      const h = f.header!
      if (wal.startLsn <= h.checkpointLsn + 1) continue
      problem()
      result.lost = true
      if (ctx.fix(PR.PR_7_LOG_GAP, {start: wal.startLsn, file: f.spec.name, lsn: h.checkpointLsn, from: h.checkpointLsn + 1, to: wal.startLsn - 1})) {
        h.checkpointLsn = wal.startLsn - 1
        h.flags = 0
        writeAt(f.path, header.encode(f.spec, h), 0)
      } else {
        pre.blocked.push(`the log lacks transactions ${f.spec.name} needs`)
      }
    }

    minLsn = Math.min(...headers.map(f => f.header!.checkpointLsn))
  }

  const bytes = fs.readFileSync(wal.path)
  const scan = scanLog(bytes, wal.startLsn, wal.salt, minLsn)
  result.records = scan.records
  if (scan.bad !== undefined) {
    problem()
    result.lost = true
    if (ctx.fix(PR.PR_7_BAD_RECORD, {lsn: scan.bad.lsn, offset: scan.bad.at, reason: scan.bad.reason, after: bytes.length - scan.bad.at}))
      cutLog(wal.path, scan.bad.at)
    else pre.blocked.push(`transaction ${scan.bad.lsn} of the log cannot be replayed`)
  } else if (scan.torn !== undefined) {
    problem()
    result.torn = true
    if (ctx.fix(PR.PR_7_TORN_TAIL, {bytes: scan.torn.bytes, lsn: scan.torn.lsn, offset: scan.torn.at})) cutLog(wal.path, scan.torn.at)
  }

  if (scan.records > 0) pre.clean = false
  return result
}
