/**
 * WAL_HEADER, bytes 0 to 63 of wal.log (docs/FORMAT.md "WAL_HEADER" and step 4 of "Opening an
 * image: validation"): its only encoder, decoder and validator. `Wal.open` refuses the first
 * problem, fsck (pass 0 reads it, pass 7 reports) all of them.
 */
import type {ImageErrorCode} from '../errors.js'
import {FORMAT_VERSION, WAL_HEADER, WAL_MAGIC} from '../format.js'
import {crc32} from './checksum.js'
import {type RecordOf, decodeFields, fieldsOf, putFields} from './field.js'

export const walHeaderFields = fieldsOf(WAL_HEADER)
const H = walHeaderFields

const INFO_FIELDS = ['formatVersion', 'salt', 'uuid', 'startLsn'] as const

/**
 * A decoded WAL header: `salt` seeds the checksum of every record of the current cycle, `startLsn`
 * is the LSN of its first record.
 */
export type WalHeaderInfo = Pick<RecordOf<typeof WAL_HEADER>, (typeof INFO_FIELDS)[number]>

export interface WalHeaderProblem {
  /** What `Wal.open` fails with. */
  code: ImageErrorCode
  /** The field at fault (`length`: fewer than 64 bytes, nothing else checked). */
  field: string
  message: string
  /** Reserved bytes that are not zero: an open ignores them, fsck does not. */
  ignoredByOpen: boolean
}

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`

/**
 * Every problem of the WAL header `head` (the first bytes of the file, up to 64), in the order of
 * the validation: length, magic, a newer version, checksum, version, header size, reserved bytes,
 * and, if `uuid` is given, the image's UUID.
 */
export function validate(head: Buffer, uuid?: Buffer): WalHeaderProblem[] {
  const problems: WalHeaderProblem[] = []
  const add = (code: ImageErrorCode, field: string, message: string, ignoredByOpen = false): void => {
    problems.push({code, field, message, ignoredByOpen})
  }

  if (head.length < WAL_HEADER.SIZE) {
    add('RZ_TRUNCATED', 'length', `truncated: ${head.length} bytes, shorter than the ${WAL_HEADER.SIZE}-byte header`)
    return problems
  }

  const magic = H.magic.get(head, 0)
  if (magic !== WAL_MAGIC) add('RZ_BAD_MAGIC', 'magic', `not a razorfs write-ahead log (bad magic number ${hex(magic)})`)
  const version = H.formatVersion.get(head, 0)
  if (version > FORMAT_VERSION)
    add('RZ_VERSION', 'formatVersion', `format version ${version} is newer than this razorfs reads (${FORMAT_VERSION}); upgrade razorfs`)
  if (H.checksum.get(head, 0) !== crc32(head.subarray(H.magic.off, WAL_HEADER.SIZE)))
    add('RZ_CHECKSUM', 'checksum', 'header checksum mismatch: the header is corrupt')
  if (version < 1) add('RZ_VERSION', 'formatVersion', `format version ${version} is not a valid version`)
  const size = H.headerSize.get(head, 0)
  if (size !== WAL_HEADER.SIZE) add('RZ_CORRUPTED', 'headerSize', `bad header: header size ${size}, expected ${WAL_HEADER.SIZE}`)
  if (!H.reserved.isZero(head, 0)) add('RZ_CORRUPTED', 'reserved', 'bad header: reserved bytes are not zero', true)
  if (uuid !== undefined && !H.uuid.get(head, 0).equals(uuid)) add('RZ_MISMATCH', 'uuid', 'belongs to another image (UUID differs from nodes.dat)')
  return problems
}

export function decode(head: Buffer): WalHeaderInfo {
  return decodeFields(H, head, 0, INFO_FIELDS)
}

/** The 64 bytes of a WAL header of this format version, checksummed. */
export function encode(h: Omit<WalHeaderInfo, 'formatVersion'>): Buffer {
  const head = Buffer.alloc(WAL_HEADER.SIZE)
  putFields(H, head, 0, {...h, magic: WAL_MAGIC, formatVersion: FORMAT_VERSION, headerSize: WAL_HEADER.SIZE})
  H.checksum.put(head, 0, crc32(head.subarray(H.magic.off)))
  return head
}
