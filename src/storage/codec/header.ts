/**
 * HEADER, page 0 of every mapped file (docs/FORMAT.md "HEADER" and "Opening an image:
 * validation"): its only encoder, decoder and validator.
 *
 * `validate` lists every problem of a header, in the order of FORMAT.md's validation table: the
 * store refuses to open on the first one (`Store.open`), fsck pass 0 reports them all, and
 * `razorfs dump --headers` shows the fields with `decodeFields`.
 */
import type {ImageErrorCode} from '../errors.js'
import {DATA_OFFSET, FILES, FORMAT_VERSION, HEADER, HF_CLEAN, type FileSpec} from '../format.js'
import {crc32} from './checksum.js'
import {type RecordOf, decodeFields, fieldsOf, putFields} from './field.js'

/** Accessors of the header's fields (offsets from the start of the file). */
export const headerFields = fieldsOf(HEADER)
const H = headerFields

/** The fields a decoded header keeps; the others are fixed by the file (`spec`) or the checksum. */
const INFO_FIELDS = [
  'formatVersion',
  'recordSize',
  'flags',
  'capacity',
  'used',
  'generation',
  'checkpointLsn',
  'uuid',
  'createdMs',
  'mountedMs',
  'reclaimable',
] as const

/** A decoded header: what the store keeps of each file's header, and writes back at a checkpoint. */
export type HeaderInfo = Pick<RecordOf<typeof HEADER>, (typeof INFO_FIELDS)[number]>

/** One thing wrong with a header. */
export interface HeaderProblem {
  /** What `Store.open` fails with. */
  code: ImageErrorCode
  /**
   * The field at fault: a HEADER field, or `length` (fewer than 256 bytes: nothing else is
   * checked) and `capacity` with code RZ_TRUNCATED (the file is shorter than the capacity says).
   */
  field: string
  /** The value found and the one expected, as fsck words them. */
  value: string
  expected: string
  /** The sentence of the store's ImageError. */
  message: string
  /** True for what an open ignores (reserved bytes that are not zero); fsck still reports it. */
  ignoredByOpen: boolean
}

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`

/**
 * Every problem of the header `head` (at least its first 256 bytes) of the file `spec` whose
 * length is `fileSize`, in the order of FORMAT.md's validation table (the version before the
 * checksum: a newer format may checksum differently, and is "upgrade razorfs", not corruption).
 */
export function validate(spec: FileSpec, head: Buffer, fileSize: number): HeaderProblem[] {
  const problems: HeaderProblem[] = []
  const add = (code: ImageErrorCode, field: string, value: string, expected: string, message: string, ignoredByOpen = false): void => {
    problems.push({code, field, value, expected, message, ignoredByOpen})
  }

  if (head.length < HEADER.SIZE) {
    add('RZ_TRUNCATED', 'length', String(head.length), String(HEADER.SIZE), `truncated: ${fileSize} bytes, shorter than its ${HEADER.SIZE}-byte header`)
    return problems
  }

  const magic = H.magic.get(head, 0)
  if (magic !== spec.magic) {
    const other = FILES.find(f => f.magic === magic)
    add(
      'RZ_BAD_MAGIC',
      'magic',
      other === undefined ? hex(magic) : `${hex(magic)} (the magic of ${other.name})`,
      hex(spec.magic),
      other === undefined ? `not a razorfs ${spec.what} (bad magic number ${hex(magic)})` : `holds a razorfs ${other.what} (${other.name}), not a ${spec.what}`,
    )
  }

  const version = H.formatVersion.get(head, 0)
  if (version > FORMAT_VERSION) {
    add(
      'RZ_VERSION',
      'formatVersion',
      String(version),
      String(FORMAT_VERSION),
      `format version ${version} is newer than this razorfs reads (${FORMAT_VERSION}); upgrade razorfs`,
    )
  }

  const stored = H.checksum.get(head, 0)
  const computed = crc32(head.subarray(H.magic.off, HEADER.SIZE))
  if (stored !== computed) {
    add(
      'RZ_CHECKSUM',
      'checksum',
      hex(stored),
      hex(computed),
      `header checksum mismatch (stored 0x${stored.toString(16)}, computed 0x${computed.toString(16)}): the header is corrupt`,
    )
  }

  if (version < 1) add('RZ_VERSION', 'formatVersion', String(version), String(FORMAT_VERSION), `format version ${version} is not a valid version`)
  const fixed = (field: 'headerSize' | 'recordSize' | 'dataOffset' | 'fileId', what: string, expected: number): void => {
    const value = H[field].get(head, 0)
    if (value !== expected) add('RZ_CORRUPTED', field, String(value), String(expected), `bad header: ${what} ${value}, expected ${expected}`)
  }

  fixed('headerSize', 'header size', HEADER.SIZE)
  fixed('recordSize', 'record size', spec.recordSize)
  fixed('dataOffset', 'data offset', DATA_OFFSET)
  fixed('fileId', 'file id', spec.id)
  const flags = H.flags.get(head, 0)
  if ((flags & ~HF_CLEAN) !== 0) {
    add('RZ_CORRUPTED', 'flags', hex(flags), `${hex(flags & HF_CLEAN)} (only HF_CLEAN may be set)`, `bad header: unknown flags 0x${flags.toString(16)}`)
  }

  const capacity = H.capacity.get(head, 0)
  const used = H.used.get(head, 0)
  if (used > capacity)
    add('RZ_CORRUPTED', 'used', String(used), `at most the capacity, ${capacity}`, `bad header: ${used} records used, more than the capacity of ${capacity}`)
  const needed = DATA_OFFSET + capacity * spec.recordSize
  if (needed > fileSize) {
    add(
      'RZ_TRUNCATED',
      'capacity',
      String(capacity),
      `at most ${Math.floor((fileSize - DATA_OFFSET) / spec.recordSize)}`,
      `truncated: the header says ${capacity} records (${needed} bytes) but the file has ${fileSize} bytes`,
    )
  }

  if (H.uuid.isZero(head, 0)) add('RZ_CORRUPTED', 'uuid', 'all zeros', 'the image UUID', 'bad header: the image UUID is zero')
  if (!H.reserved.isZero(head, 0)) add('RZ_CORRUPTED', 'reserved', 'not zero', 'zeros', 'bad header: reserved bytes are not zero', true)
  return problems
}

/** The fields of a header (valid or not: `validate` says). */
export function decode(head: Buffer): HeaderInfo {
  return decodeFields(H, head, 0, INFO_FIELDS)
}

/** The 256 bytes of the header of file `spec` (magic, sizes and file id from `spec`), checksummed. */
export function encode(spec: FileSpec, h: HeaderInfo): Buffer {
  const head = Buffer.alloc(HEADER.SIZE)
  putFields(H, head, 0, {...h, magic: spec.magic, headerSize: HEADER.SIZE, recordSize: spec.recordSize, dataOffset: DATA_OFFSET, fileId: spec.id})
  H.checksum.put(head, 0, crc32(head.subarray(H.magic.off)))
  return head
}

/** Does `head` (at least 8 bytes) start like the header of `spec` (its magic)? */
export function hasMagic(spec: FileSpec, head: Buffer): boolean {
  return head.length >= H.magic.off + 4 && H.magic.get(head, 0) === spec.magic
}

/** The image's UUID as text (8-4-4-4-12 hex digits). */
export function uuidString(uuid: Buffer): string {
  const h = uuid.toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}
