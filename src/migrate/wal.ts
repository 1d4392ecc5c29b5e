/**
 * A report on the C RAZORFS write-ahead log. The C version logged metadata only and never
 * replayed its log, so a migration needs nothing from it: this is read for the report alone,
 * and a missing or damaged log never stops a migration.
 */
import fs from 'node:fs'

import {
  C_WAL_ENTRY,
  C_WAL_HEADER,
  C_WAL_MAGIC,
  type CWalHeader,
  decodeWalHeader,
  hex32,
  isEmptyWalEntry,
  validateWalEntry,
  validateWalHeader,
  walOpName,
} from './c-format.js'

export interface WalReport {
  path: string
  bytes: number
  /** The header could be read and carries the C magic number. */
  valid: boolean
  /** Why it is not valid, or what is odd about it. */
  problems: string[]
  /** The header's fields (docs/FORMAT.md), its magic number and CRC in hex, and whether the CRC matches. */
  header?: Omit<CWalHeader, 'magic' | 'crc'> & {magic: string; crc: string}
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

  const h = decodeWalHeader(buf)
  // The decoded header in the report's terms (the same fields, in the same order).
  const header = {...h, magic: hex32(h.magic), crc: hex32(h.crc)}
  report.header = header
  report.problems.push(...validateWalHeader(h))
  if (h.magic !== C_WAL_MAGIC) return report // not a C WAL: not read further

  report.valid = true
  const logSize = buf.length - C_WAL_HEADER.SIZE
  if (logSize <= 0) return report

  /** `n` bytes of the circular log from log offset `at` (wrapping at its end). */
  const logBytes = (at: number, n: number): Buffer => {
    const out = Buffer.alloc(n)
    for (let done = 0; done < n; ) {
      const pos = (at + done) % logSize
      const take = Math.min(n - done, logSize - pos)
      buf.copy(out, done, C_WAL_HEADER.SIZE + pos, C_WAL_HEADER.SIZE + pos + take)
      done += take
    }

    return out
  }

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
    const raw = logBytes(at, C_WAL_ENTRY.SIZE)
    const e = C_WAL_ENTRY.decode(raw)
    if (isEmptyWalEntry(e)) {
      if (!reachedHead) entries.stoppedAt = `an empty entry at log offset ${at}, before the head (${header.head})`
      break
    }

    const len = e.dataLen
    if (len > logSize - C_WAL_ENTRY.SIZE || walked + C_WAL_ENTRY.SIZE + len > logSize) {
      if (!reachedHead) entries.stoppedAt = `an entry at log offset ${at} whose length ${len} runs past the log`
      break
    }

    if (validateWalEntry(e, raw, logBytes(at + C_WAL_ENTRY.SIZE, len), prevLsn).length > 0) {
      if (!reachedHead) entries.stoppedAt = `a damaged entry (CRC or LSN) at log offset ${at}`
      break
    }

    if (reachedHead) {
      entries.pastHead++
    } else {
      entries.count++
      const name = walOpName(e.op)
      entries.byOp[name] = (entries.byOp[name] ?? 0) + 1
      entries.firstLsn ??= e.lsn
      entries.lastLsn = e.lsn
      firstUs ??= e.timestampUs
      lastUs = e.timestampUs
    }

    prevLsn = e.lsn
    walked += C_WAL_ENTRY.SIZE + len
    at = (at + C_WAL_ENTRY.SIZE + len) % logSize
  }

  if (firstUs !== undefined) entries.first = new Date(firstUs / 1000).toISOString()
  if (lastUs !== undefined) entries.last = new Date(lastUs / 1000).toISOString()
  if (entries.count !== header.entryCount)
    report.problems.push(`the header says ${header.entryCount} entries, ${entries.count} were read between tail and head`)
  if (entries.pastHead > 0) report.problems.push(`${entries.pastHead} well-formed entries lie past the header's head: the header is stale`)
  return report
}
