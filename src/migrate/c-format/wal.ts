/**
 * The C write-ahead log (`/tmp/razorfs_wal.log`): a 128-byte header, then a circular log of
 * entries, each a 40-byte header and its payload. Its only codec: nothing else in src/migrate
 * reads these bytes.
 */
import zlib from 'node:zlib'

import {hex32} from './image.js'
import {cRecord} from './record.js'

/** The WAL's header: 128 bytes (56 used; the CRC covers bytes 0-51). */
export const C_WAL_HEADER = cRecord(
  'cWalHeader',
  [
    ['magic', 'u32'],
    ['version', 'u32'],
    ['nextTxId', 'u64'],
    ['nextLsn', 'u64'],
    ['head', 'u64'], // log offset where the next entry goes
    ['tail', 'u64'], // log offset of the oldest entry
    ['checkpointLsn', 'u64'],
    ['entryCount', 'u32'],
    ['crc', 'u32'],
  ],
  128,
)

/** One WAL entry: 40 bytes, followed by `dataLen` payload bytes. */
export const C_WAL_ENTRY = cRecord('cWalEntry', [
  ['txId', 'u64'],
  ['lsn', 'u64'],
  ['op', 'u32'],
  ['dataLen', 'u32'], // payload bytes that follow the entry
  ['timestampUs', 'u64'], // microseconds since the epoch
  ['crc', 'u32'],
  ['reserved', 'u32'],
])

/** 'WLOG' (bytes `47 4F 4C 57`). */
export const C_WAL_MAGIC = 0x57_4c_4f_47
/** The WAL's circular log follows the 128-byte header; the C build makes it 8 MiB. */
export const C_WAL_LOG_SIZE = 8 * 1024 * 1024

export const C_WAL_OPS: Readonly<Record<number, string>> = {
  1: 'BEGIN',
  2: 'INSERT',
  3: 'DELETE',
  4: 'UPDATE',
  5: 'WRITE',
  6: 'COMMIT',
  7: 'ABORT',
  8: 'CHECKPOINT',
}

/** The header's CRC covers its bytes up to (not including) the CRC field. */
const HEADER_CRC_BYTES = C_WAL_HEADER.OFF.crc

// ---- the header ---------------------------------------------------------------------------------

/** A decoded header, and whether its CRC matches its bytes. */
export type CWalHeader = ReturnType<typeof C_WAL_HEADER.decode> & {crcOk: boolean}

/** The header at the start of `buf` (which holds at least C_WAL_HEADER.SIZE bytes). */
export function decodeWalHeader(buf: Buffer): CWalHeader {
  const h = C_WAL_HEADER.decode(buf)
  return {...h, crcOk: zlib.crc32(buf.subarray(0, HEADER_CRC_BYTES)) === h.crc}
}

/**
 * Every problem of a WAL header; [] if none. With a wrong magic number it is not a C WAL, and
 * that is its only problem (the log is then not read). Whether head and tail lie inside the log
 * depends on the file's length: the log walk checks that.
 */
export function validateWalHeader(h: CWalHeader): string[] {
  if (h.magic !== C_WAL_MAGIC) return [`bad magic ${hex32(h.magic)} (a C RAZORFS WAL starts with ${hex32(C_WAL_MAGIC)}): not read further`]
  return h.crcOk ? [] : ['the header CRC does not match (its fields may be stale or damaged)']
}

// ---- an entry -----------------------------------------------------------------------------------

export type CWalEntry = ReturnType<typeof C_WAL_ENTRY.decode>

/** An all-zero entry (no LSN, no operation): where the log ends. */
export function isEmptyWalEntry(e: CWalEntry): boolean {
  return e.lsn === 0 && e.op === 0
}

/** The name of an entry's operation (`op N` for an unknown one). */
export function walOpName(op: number): string {
  return C_WAL_OPS[op] ?? `op ${op}`
}

/**
 * Every problem of the entry `raw` (its C_WAL_ENTRY.SIZE bytes, decoded as `e`) followed by
 * `payload` (its dataLen bytes), the entry after LSN `prevLsn` (undefined for the first); [] if
 * none. `raw` is not changed.
 */
export function validateWalEntry(e: CWalEntry, raw: Buffer, payload: Buffer, prevLsn: number | undefined): string[] {
  const problems: string[] = []
  const zeroed = Buffer.from(raw.subarray(0, C_WAL_ENTRY.SIZE))
  zeroed.writeUInt32LE(0, C_WAL_ENTRY.OFF.crc)
  if (zlib.crc32(payload, zlib.crc32(zeroed)) !== e.crc) problems.push(`CRC mismatch (the entry says ${hex32(e.crc)})`)
  if (prevLsn !== undefined && e.lsn !== prevLsn + 1) problems.push(`LSN ${e.lsn} does not follow ${prevLsn}`)
  return problems
}
