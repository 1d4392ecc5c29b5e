/**
 * The storage formats of the original C RAZORFS (upstream commit 2a25872), as far as
 * `razorfs migrate` reads them. Written from the byte-by-byte description of the formats
 * (docs/FORMAT.md, "Legacy formats (C RAZORFS)"), not from the C code.
 *
 * All integers are little-endian; the structs are those of x86_64 glibc.
 */
import {layout} from '../storage/format.js'

/** `nodes.dat` / `razorfs_nodes` header: 24 bytes at offset 0. */
export const C_NODES_HEADER = layout('cNodesHeader', [
  ['magic', 'u32'],
  ['version', 'u32'],
  ['capacity', 'u32'],
  ['used', 'u32'],
  ['nextInode', 'u32'],
  ['freeCount', 'u32'],
])

/** One node slot: 128 bytes, of which the first 64 are the node and the rest process state. */
export const C_NODE = layout('cNode', [
  ['inode', 'u32'],
  ['parent', 'u32'],
  ['numChildren', 'u16'],
  ['mode', 'u16'],
  ['nameOffset', 'u32'],
  ['children', 'bytes32'],
  ['size', 'u64'],
  ['mtime', 'u32'],
  ['unused', 'u32'],
  ['lock', 'bytes64'],
], 128)

/** Content file header: 32 bytes, then `dataSize` payload bytes. */
export const C_FILE_HEADER = layout('cFileHeader', [
  ['magic', 'u32'],
  ['inode', 'u32'],
  ['bufferSize', 'u64'],
  ['dataSize', 'u64'],
  ['isCompressed', 'u32'],
  ['padding', 'bytes4'],
])

/** Header of a compressed payload: 12 bytes, then a zlib stream. */
export const C_COMPRESSED_HEADER = layout('cCompressedHeader', [
  ['magic', 'u32'],
  ['originalSize', 'u32'],
  ['compressedSize', 'u32'],
])

/** The WAL's header: 128 bytes (56 used; the CRC covers bytes 0-51). */
export const C_WAL_HEADER = layout('cWalHeader', [
  ['magic', 'u32'],
  ['version', 'u32'],
  ['nextTxId', 'u64'],
  ['nextLsn', 'u64'],
  ['head', 'u64'],
  ['tail', 'u64'],
  ['checkpointLsn', 'u64'],
  ['entryCount', 'u32'],
  ['crc', 'u32'],
], 128)

/** One WAL entry: 40 bytes, followed by `dataLen` payload bytes. */
export const C_WAL_ENTRY = layout('cWalEntry', [
  ['txId', 'u64'],
  ['lsn', 'u64'],
  ['op', 'u32'],
  ['dataLen', 'u32'],
  ['timestampUs', 'u64'],
  ['crc', 'u32'],
  ['reserved', 'u32'],
])

/** 'RAZO' read as a little-endian u32 (bytes `4F 5A 41 52`). */
export const C_NODES_MAGIC = 0x52_41_5A_4F
export const C_NODES_VERSION = 1
/** 'FILE' (bytes `45 4C 49 46`). */
export const C_FILE_MAGIC = 0x46_49_4C_45
/** 'RZCP' (bytes `50 43 5A 52`). */
export const C_COMPRESSED_MAGIC = 0x52_5A_43_50
/** 'WLOG' (bytes `47 4F 4C 57`). */
export const C_WAL_MAGIC = 0x57_4C_4F_47

/** The slot index that means "none" (the root's parent, an unused child). */
export const C_NO_INDEX = 0xFFFF
/** The name offset that means "no name". */
export const C_NO_NAME = 0xFFFF_FFFF
export const C_MAX_CHILDREN = 16
/** The capacity of the C builds; other capacities are read if the file size agrees. */
export const C_DEFAULT_CAPACITY = 1024
/** The shm names segment is zero-filled to this size. */
export const C_SHM_STRINGS_SIZE = 1024 * 1024
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

/** Bytes of the nodes file for a capacity: header, slots, then the u16 free list. */
export function cNodesFileSize(capacity: number): number {
  return C_NODES_HEADER.SIZE + C_NODE.SIZE * capacity + 2 * capacity
}

/** Offset of slot `i` in the nodes file. */
export function cSlotOffset(i: number): number {
  return C_NODES_HEADER.SIZE + C_NODE.SIZE * i
}

/** The two layouts of the C version: which file names they use, and how names are addressed. */
export interface CLayout {
  readonly kind: 'disk' | 'shm'
  readonly nodes: string
  readonly strings: string
  /** Prefix of a content file's name; the inode number (decimal) follows. */
  readonly contentPrefix: string
  /** File offset of the name at `nameOffset`. */
  readonly nameAt: (nameOffset: number) => number
  /** File offset where the names area begins. */
  readonly namesStart: number
}

export const C_DISK: CLayout = {
  kind: 'disk',
  nodes: 'nodes.dat',
  strings: 'strings.dat',
  contentPrefix: 'file_',
  // [u32 used][used bytes]: name_offset counts from the end of the prefix.
  nameAt: nameOffset => 4 + nameOffset,
  namesStart: 4,
}

export const C_SHM: CLayout = {
  kind: 'shm',
  nodes: 'razorfs_nodes',
  strings: 'razorfs_strings',
  contentPrefix: 'razorfs_file_',
  // [u32 used (counting the prefix)][names...]: name_offset is a file offset.
  nameAt: nameOffset => nameOffset,
  namesStart: 4,
}

export const C_LAYOUTS: readonly CLayout[] = [C_DISK, C_SHM]

/** The inode number of a content file's name under `layout`, or undefined if it is not one. */
export function contentInode(layout: CLayout, name: string): number | undefined {
  if (!name.startsWith(layout.contentPrefix)) return undefined
  const digits = name.slice(layout.contentPrefix.length)
  if (!/^(0|[1-9]\d{0,9})$/.test(digits)) return undefined
  const n = Number(digits)
  return n <= 0xFFFF_FFFF ? n : undefined
}
