/**
 * Every binary layout of a razorfs image, declared once.
 *
 * A layout is an ordered field table; offsets and sizes are computed from it, never written by
 * hand anywhere else. docs/FORMAT.md describes the same tables in prose and a test pins every
 * offset, so a change here that is not also a change of FORMAT_VERSION fails the build.
 *
 * All integers are little-endian. u64 fields hold values below 2^53 and are read as JS numbers.
 */

export type FieldType = 'u8' | 'u16' | 'u32' | 'u64' | 'i64' | `bytes${number}`

export interface Layout<K extends string, E extends readonly [K, FieldType] = readonly [K, FieldType]> {
  readonly name: string
  readonly SIZE: number
  readonly OFF: Readonly<Record<K, number>>
  readonly WIDTH: Readonly<Record<K, number>>
  readonly FIELDS: ReadonlyArray<E>
}

function widthOf(type: FieldType): number {
  switch (type) {
    case 'u8':
      return 1
    case 'u16':
      return 2
    case 'u32':
      return 4
    case 'u64':
    case 'i64':
      return 8
    default:
      return Number(type.slice(5))
  }
}

/**
 * Build a layout from its fields in on-disk order; `size` pads the record (must not be exceeded).
 * The field types are kept in the layout's type, so that codec/field.ts can type each accessor.
 */
export function layout<const E extends readonly [string, FieldType]>(name: string, fields: ReadonlyArray<E>, size?: number): Layout<E[0], E> {
  type K = E[0]
  const OFF = {} as Record<K, number>
  const WIDTH = {} as Record<K, number>
  let at = 0
  for (const [field, type] of fields) {
    const width = widthOf(type)
    const align = type.startsWith('bytes') ? 1 : width
    if (at % align !== 0) throw new Error(`${name}.${field}: misaligned at ${at}`)
    OFF[field as K] = at
    WIDTH[field as K] = width
    at += width
  }

  if (size !== undefined && at > size) throw new Error(`${name}: fields take ${at} bytes, more than ${size}`)
  return Object.freeze({name, SIZE: size ?? at, OFF: Object.freeze(OFF), WIDTH: Object.freeze(WIDTH), FIELDS: Object.freeze([...fields])})
}

// ---- format constants --------------------------------------------------------------------------

/** The on-disk format this build writes and the newest it reads. History: 1 = first release. */
export const FORMAT_VERSION = 1
/** Page size of the mapped files: the unit of dirty tracking and of checkpoint writes. */
export const PAGE_SIZE = 4096
/** Page 0 holds the header (written only at checkpoints, with its checksum). */
export const HEADER_OFFSET = 0
/** Page 1 is the control block: counters and list heads, changed by transactions like any record. */
export const CONTROL_OFFSET = PAGE_SIZE
/** Records (or the string heap) start at page 2. */
export const DATA_OFFSET = 2 * PAGE_SIZE

/** ASCII tag read as a little-endian u32, so the tag reads as text in a hex dump (offset 4 of a header). */
function tag(text: string): number {
  return Buffer.from(text, 'latin1').readUInt32LE(0)
}

/**
 * The mapped files of an image. `id` is the file number used in WAL entries; never renumber.
 * `recordSize` is the size of one record (strings.dat: its allocation unit).
 */
export const FILES = [
  {id: 0, name: 'nodes.dat', magic: tag('RZND'), recordSize: 128, what: 'inode table'},
  {id: 1, name: 'entries.dat', magic: tag('RZDE'), recordSize: 64, what: 'directory entry table'},
  {id: 2, name: 'entries.idx', magic: tag('RZDX'), recordSize: 4, what: 'directory entry hash index'},
  {id: 3, name: 'strings.dat', magic: tag('RZST'), recordSize: 16, what: 'string heap'},
  {id: 4, name: 'strings.idx', magic: tag('RZSX'), recordSize: 4, what: 'string hash index'},
] as const

export type FileSpec = (typeof FILES)[number]
export const FILE_NODES = 0
export const FILE_ENTRIES = 1
export const FILE_ENTRY_INDEX = 2
export const FILE_STRINGS = 3
export const FILE_STRING_INDEX = 4

export const WAL_NAME = 'wal.log'
export const WAL_MAGIC = tag('RZWL')
export const WAL_RECORD_MAGIC = tag('RZTX')
export const LOCK_NAME = 'lock'
/** Files open for the kernel to write through passthrough (writers.ts): WRITERS_HEADER, then WRITERS_ENTRY places. */
export const WRITERS_NAME = 'writers'
export const DATA_DIR_NAME = 'data'

/** The files of an image's data dir besides the lock and data/: the five mapped files, then the log. */
export const IMAGE_FILE_NAMES: readonly string[] = [...FILES.map(f => f.name), WAL_NAME]

// ---- header (page 0 of every mapped file) ------------------------------------------------------

/** Header flag: the image was closed cleanly (set at the last checkpoint of a close). */
export const HF_CLEAN = 1

/**
 * The header of every mapped file. `checksum` is CRC-32 (zlib's) of bytes 4..255 and comes first
 * so it covers everything after it. The header is only written whole, at a checkpoint, by one
 * pwrite of 256 bytes inside one 512-byte sector.
 */
export const HEADER = layout(
  'header',
  [
    ['checksum', 'u32'],
    ['magic', 'u32'],
    ['formatVersion', 'u16'],
    ['headerSize', 'u16'],
    ['recordSize', 'u32'],
    ['dataOffset', 'u32'],
    ['flags', 'u32'],
    ['capacity', 'u64'], // records (string heap: units) the file held at the checkpoint
    ['used', 'u64'], // records (units) in use at the checkpoint
    ['generation', 'u64'], // checkpoints taken since init
    ['checkpointLsn', 'u64'], // every WAL record up to this LSN is in the file
    ['uuid', 'bytes16'], // the image's UUID, the same in every file and in the WAL header
    ['createdMs', 'u64'],
    ['mountedMs', 'u64'], // last read-write open
    ['reclaimable', 'u64'], // bytes (string heap) or records freed and reusable
    ['fileId', 'u32'], // FILES[].id
    ['reserved', 'bytes156'],
  ],
  256,
)

// ---- control blocks (page 1) -------------------------------------------------------------------

/** Control block of a record table (nodes.dat, entries.dat). Slot 0 is never used (0 = none). */
export const TABLE_CONTROL = layout(
  'tableControl',
  [
    ['highWater', 'u32'], // slots [1, highWater) have been used at least once
    ['live', 'u32'], // slots in use now
    ['freeHead', 'u32'], // first free slot (free slots chain through their link field)
    ['orphanHead', 'u32'], // nodes.dat: first inode with nlink 0 still open when it was unlinked
    ['nextDataId', 'u64'], // nodes.dat: next content file number
  ],
  64,
)

/** Control block of a linear-hash index (entries.idx, strings.idx): one u32 chain head per bucket. */
export const INDEX_CONTROL = layout(
  'indexControl',
  [
    ['level', 'u32'], // buckets = 2^level + split
    ['split', 'u32'],
    ['count', 'u64'], // items in the index
  ],
  64,
)

/**
 * Size classes of the string heap, in 16-byte units: exact from 1 to 257 units (4,112 bytes: a
 * symlink target of 4,095 bytes plus the entry header), then powers of two up to 8,192 units
 * (128 KiB, enough for an inode's xattr blob). Class k >= 258 holds 2^(k - 258 + 9) units.
 */
export const STRING_EXACT_CLASSES = 257
export const STRING_CLASSES = 258 + 5
export const STRING_UNIT = 16

export const HEAP_CONTROL = layout('heapControl', [
  ['bump', 'u32'], // next never-used unit
  ['liveBytes', 'u32'], // bytes in live entries (headers included, rounded to units)
  ['freeBytes', 'u64'], // bytes in freed entries, reusable
  ['freeHeads', `bytes${STRING_CLASSES * 4}`], // u32 per size class: first free entry
])

// ---- records -----------------------------------------------------------------------------------

/** Inode flag bits. */
export const IF_USED = 1
export const IF_ORPHAN = 2

/**
 * An inode (nodes.dat, 128 bytes). The inode number of slot s is `s + gen * 2^32`: a reused slot
 * gives a new number, so stale handles and hard-link detection never confuse two files.
 */
export const INODE = layout(
  'inode',
  [
    ['gen', 'u32'], // generation of the slot (0 .. 2^20 - 1, wraps); bumped when the inode is freed
    ['flags', 'u32'], // IF_USED, IF_ORPHAN
    ['mode', 'u32'], // S_IFMT type bits and permission bits
    ['nlink', 'u32'],
    ['uid', 'u32'],
    ['gid', 'u32'],
    ['size', 'u64'], // bytes (regular files), bytes of the target (symlinks), entries (directories)
    ['atimeSec', 'i64'],
    ['mtimeSec', 'i64'],
    ['ctimeSec', 'i64'],
    ['atimeNsec', 'u32'],
    ['mtimeNsec', 'u32'],
    ['ctimeNsec', 'u32'],
    ['parent', 'u32'], // directories: slot of the parent ('..'); root: itself
    ['rdev', 'u64'],
    ['dataId', 'u64'], // content file number (data/<xx>/<dataId>), 0 = no contents yet
    ['xattr', 'u32'], // strings.dat unit of the xattr blob, 0 = none
    ['target', 'u32'], // strings.dat unit of the symlink target
    ['dirHead', 'u32'], // directories: first entry (entries.dat slot)
    ['link', 'u32'], // free list / orphan list chain
    ['reserved', 'bytes24'],
  ],
  128,
)

/** Bytes of a name kept in its directory entry (all of a name up to this long). */
export const INLINE_NAME = 30

/**
 * A directory entry (entries.dat, 64 bytes): (parent, name) -> child. It carries what a lookup
 * needs (the name's hash and length, its first 30 bytes, the child's generation and type), so a
 * lookup of a name of up to 30 bytes reads the index bucket and the entries of its chain only.
 * The interned name in strings.dat stays the reference; the inline bytes are a copy.
 */
export const DIRENT = layout(
  'dirent',
  [
    ['parent', 'u32'], // inode slot of the directory
    ['name', 'u32'], // strings.dat unit of the name
    ['child', 'u32'], // inode slot of the child
    ['childGen', 'u32'], // generation of the child (its inode number is child + childGen * 2^32)
    ['next', 'u32'], // next entry of the same directory (readdir order)
    ['prev', 'u32'], // previous entry of the same directory
    ['hashNext', 'u32'], // next entry in the same index bucket; free list chain when free
    ['nameHash', 'u32'], // FNV-1a of the name bytes (the index key is mix(parent, nameHash))
    ['type', 'u8'], // child's S_IFMT >> 12, 0 = free slot
    ['nameLength', 'u8'], // bytes of the name (1..255)
    ['inlineName', `bytes${INLINE_NAME}`], // the name's first min(nameLength, 30) bytes, then zeros
  ],
  64,
)

/** Entry kinds in the string heap. */
export const SK_FREE = 0
export const SK_NAME = 1 // interned, deduplicated (names and symlink targets)
export const SK_BLOB = 2 // private to one inode (xattr blobs)

/** Header of a string heap entry; the bytes follow it, the entry is rounded up to 16 bytes. */
export const STRING = layout(
  'string',
  [
    ['refs', 'u32'], // references from inodes and entries; free entries: 0
    ['hashNext', 'u32'], // next entry in the same index bucket; free list chain when free
    ['hash', 'u32'], // FNV-1a of the bytes
    ['length', 'u16'], // bytes (blobs: low 16 bits; see lengthHigh)
    ['kind', 'u8'], // SK_*
    ['lengthHigh', 'u8'], // bytes >> 16
  ],
  16,
)

// ---- write-ahead log (wal.log) -----------------------------------------------------------------

/** WAL header, 64 bytes at offset 0. `checksum` is CRC-32 of bytes 4..63. */
export const WAL_HEADER = layout(
  'walHeader',
  [
    ['checksum', 'u32'],
    ['magic', 'u32'],
    ['formatVersion', 'u16'],
    ['headerSize', 'u16'],
    ['salt', 'u32'], // random per cycle; seeds every record checksum of the cycle
    ['uuid', 'bytes16'],
    ['startLsn', 'u64'], // LSN of the first record of this cycle
    ['reserved', 'bytes24'],
  ],
  64,
)

/**
 * A committed transaction: this header, then `entries` entries, the whole padded to 8 bytes.
 * `checksum` is CRC-32, seeded with the cycle's salt, of everything after the checksum field up to
 * the end of the padding: a record left over from an earlier cycle can never pass for a new one.
 */
export const WAL_RECORD = layout('walRecord', [
  ['magic', 'u32'],
  ['checksum', 'u32'],
  ['lsn', 'u64'],
  ['length', 'u32'], // whole record in bytes, header and padding included
  ['entries', 'u32'],
])

/** One change in a record: `length` bytes (padded to 8) that go to `offset` of file `fileId`. */
export const WAL_ENTRY = layout('walEntry', [
  ['fileId', 'u8'],
  ['reserved', 'bytes3'],
  ['length', 'u32'],
  ['offset', 'u64'],
])

// ---- files the kernel writes (writers) ----------------------------------------------------------

/** Bytes 0 to 15 of `writers`: whose list it is. */
export const WRITERS_HEADER = layout('writersHeader', [['uuid', 'bytes16']])

/** Place k of `writers`, at 16 + 8k: a file open for the kernel to write (0: a free place). */
export const WRITERS_ENTRY = layout('writersEntry', [['ino', 'u64']])

// ---- file types (S_IFMT) -----------------------------------------------------------------------

export const S_IFMT = 0o170000
export const S_IFSOCK = 0o140000
export const S_IFLNK = 0o120000
export const S_IFREG = 0o100000
export const S_IFBLK = 0o060000
export const S_IFDIR = 0o040000
export const S_IFCHR = 0o020000
export const S_IFIFO = 0o010000

export function pad8(n: number): number {
  return (n + 7) & ~7
}
