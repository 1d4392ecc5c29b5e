/**
 * A report on the C RAZORFS write-ahead log. The C version logged metadata only and never
 * replayed its log, so a migration needs nothing from it: this is read for the report alone,
 * and a missing or damaged log never stops a migration.
 */
import fs from 'node:fs'
import zlib from 'node:zlib'

import {readU64} from '../storage/format.js'
import {C_WAL_ENTRY, C_WAL_HEADER, C_WAL_MAGIC, C_WAL_OPS} from './c-format.js'

export interface WalReport {
  path: string
  bytes: number
  /** The header could be read and carries the C magic number. */
  valid: boolean
  /** Why it is not valid, or what is odd about it. */
  problems: string[]
  header?: {
    magic: string
    version: number
    nextTxId: number
    nextLsn: number
    head: number
    tail: number
    checkpointLsn: number
    entryCount: number
    crc: string
    crcOk: boolean
  }
  entries?: {
    /** Entries between tail and head whose CRC matches. */
    count: number
    byOp: Record<string, number>
    firstLsn?: number
    lastLsn?: number
    /** ISO times of the first and last entries. */
    first?: string
    last?: string
    /** Well-formed entries found past the header's head (a stale header). */
    pastHead: number
    /** Where the walk stopped early, if it did. */
    stoppedAt?: string
  }
}

const HEADER_CRC_BYTES = 52

function hex32(n: number): string {
  return `0x${n.toString(16).toUpperCase().padStart(8, '0')}`
}

/** Read the WAL at `file` for a report. Never throws for a damaged file (only `problems`). */
export function readWal(file: string): WalReport {
  let buf: Buffer
  try {
    const st = fs.statSync(file)
    if (!st.isFile()) return {path: file, bytes: 0, valid: false, problems: ['not a regular file']}
    buf = fs.readFileSync(file)
  } catch (error) {
    return {path: file, bytes: 0, valid: false, problems: [`cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`]}
  }

  const report: WalReport = {path: file, bytes: buf.length, valid: false, problems: []}
  if (buf.length < C_WAL_HEADER.SIZE) {
    report.problems.push(`${buf.length} bytes, shorter than its ${C_WAL_HEADER.SIZE}-byte header`)
    return report
  }

  const H = C_WAL_HEADER.OFF
  const magic = buf.readUInt32LE(H.magic)
  const crc = buf.readUInt32LE(H.crc)
  const crcOk = zlib.crc32(buf.subarray(0, HEADER_CRC_BYTES)) === crc
  const header = {
    magic: hex32(magic),
    version: buf.readUInt32LE(H.version),
    nextTxId: readU64(buf, H.nextTxId),
    nextLsn: readU64(buf, H.nextLsn),
    head: readU64(buf, H.head),
    tail: readU64(buf, H.tail),
    checkpointLsn: readU64(buf, H.checkpointLsn),
    entryCount: buf.readUInt32LE(H.entryCount),
    crc: hex32(crc),
    crcOk,
  }
  report.header = header
  if (magic !== C_WAL_MAGIC) {
    report.problems.push(`bad magic ${hex32(magic)} (a C RAZORFS WAL starts with ${hex32(C_WAL_MAGIC)}): not read further`)
    return report
  }

  report.valid = true
  if (!crcOk) report.problems.push('the header CRC does not match (its fields may be stale or damaged)')
  const logSize = buf.length - C_WAL_HEADER.SIZE
  if (logSize <= 0) return report

  /** `n` bytes of the circular log from log offset `at` (wrapping at its end). */
  const logBytes = (at: number, n: number): Buffer => {
    const out = Buffer.alloc(n)
    for (let done = 0; done < n;) {
      const pos = (at + done) % logSize
      const take = Math.min(n - done, logSize - pos)
      buf.copy(out, done, C_WAL_HEADER.SIZE + pos, C_WAL_HEADER.SIZE + pos + take)
      done += take
    }

    return out
  }

  const E = C_WAL_ENTRY.OFF
  const entries: NonNullable<WalReport['entries']> = {count: 0, byOp: {}, pastHead: 0}
  report.entries = entries
  if (header.tail >= logSize || header.head >= logSize) {
    report.problems.push(`head ${header.head} or tail ${header.tail} lies outside the ${logSize}-byte log: entries not read`)
    return report
  }

  let at = header.tail
  let walked = 0
  let prevLsn: number | undefined
  let firstUs: number | undefined
  let lastUs: number | undefined
  let reachedHead = header.head === header.tail && header.entryCount === 0
  // Walk from tail while entries are well-formed; past head only to detect a stale header.
  while (walked + C_WAL_ENTRY.SIZE <= logSize) {
    if (at === header.head) reachedHead = true
    const e = logBytes(at, C_WAL_ENTRY.SIZE)
    const lsn = readU64(e, E.lsn)
    const op = e.readUInt32LE(E.op)
    const len = e.readUInt32LE(E.dataLen)
    if (lsn === 0 && op === 0) {
      if (!reachedHead) entries.stoppedAt = `an empty entry at log offset ${at}, before the head (${header.head})`
      break
    }

    if (len > logSize - C_WAL_ENTRY.SIZE || walked + C_WAL_ENTRY.SIZE + len > logSize) {
      if (!reachedHead) entries.stoppedAt = `an entry at log offset ${at} whose length ${len} runs past the log`
      break
    }

    const payload = logBytes(at + C_WAL_ENTRY.SIZE, len)
    const want = e.readUInt32LE(E.crc)
    e.writeUInt32LE(0, E.crc)
    if (zlib.crc32(payload, zlib.crc32(e)) !== want || (prevLsn !== undefined && lsn !== prevLsn + 1)) {
      if (!reachedHead) entries.stoppedAt = `a damaged entry (CRC or LSN) at log offset ${at}`
      break
    }

    if (reachedHead) {
      entries.pastHead++
    } else {
      entries.count++
      const name = C_WAL_OPS[op] ?? `op ${op}`
      entries.byOp[name] = (entries.byOp[name] ?? 0) + 1
      entries.firstLsn ??= lsn
      entries.lastLsn = lsn
      const us = readU64(e, E.timestampUs)
      firstUs ??= us
      lastUs = us
    }

    prevLsn = lsn
    walked += C_WAL_ENTRY.SIZE + len
    at = (at + C_WAL_ENTRY.SIZE + len) % logSize
  }

  if (firstUs !== undefined) entries.first = new Date(firstUs / 1000).toISOString()
  if (lastUs !== undefined) entries.last = new Date(lastUs / 1000).toISOString()
  if (entries.count !== header.entryCount) report.problems.push(`the header says ${header.entryCount} entries, ${entries.count} were read between tail and head`)
  if (entries.pastHead > 0) report.problems.push(`${entries.pastHead} well-formed entries lie past the header's head: the header is stale`)
  return report
}
