/**
 * The C nodes file (`nodes.dat` / `razorfs_nodes`): a 24-byte header, `capacity` node slots of
 * 128 bytes, then a u16 free list. Its only codec: nothing else in src/migrate reads these bytes.
 */
import {FILES, HEADER, S_IFDIR, S_IFMT, S_IFREG} from '../../storage/format.js'
import {FILE_SIZE_MAX} from '../../storage/types.js'
import {hex32} from './image.js'
import {cRecord} from './record.js'

/** `nodes.dat` / `razorfs_nodes` header: 24 bytes at offset 0. */
export const C_NODES_HEADER = cRecord('cNodesHeader', [
  ['magic', 'u32'],
  ['version', 'u32'],
  ['capacity', 'u32'], // number of slots
  // Written only at a clean unmount (stale after a crash): never trusted.
  ['used', 'u32'], // high-water mark of slots
  ['nextInode', 'u32'],
  ['freeCount', 'u32'], // valid entries of the free list
])

export type CNodesHeader = ReturnType<typeof C_NODES_HEADER.decode>

/** One node slot: 128 bytes, of which the first 64 are the node and the rest process state. */
export const C_NODE = cRecord(
  'cNode',
  [
    ['inode', 'u32'], // 0: a free slot
    ['parent', 'u32'], // parent slot index (C_NO_INDEX for the root)
    ['numChildren', 'u16'],
    ['mode', 'u16'], // S_IFDIR or S_IFREG plus the permission bits (anything else is a problem)
    ['nameOffset', 'u32'],
    ['children', 'u16x16'], // child slot indices, the unused ones too (C_NO_INDEX when clean)
    ['size', 'u64big'], // the logical size, authoritative for a regular file (exact: may exceed 2^53)
    ['mtime', 'u32'], // Unix seconds
    ['unused', 'u32'],
    ['lock', 'bytes64'], // process state (a pthread rwlock and padding): not read
  ],
  128,
)

export type CNode = ReturnType<typeof C_NODE.decode>

/** 'RAZO' read as a little-endian u32 (bytes `4F 5A 41 52`). */
export const C_NODES_MAGIC = 0x52_41_5a_4f
export const C_NODES_VERSION = 1
/** The slot index that means "none" (the root's parent, an unused child). */
export const C_NO_INDEX = 0xffff
export const C_MAX_CHILDREN = 16
/** The capacity of the C builds; other capacities are read if the file size agrees. */
export const C_DEFAULT_CAPACITY = 1024

/** Bytes of the nodes file for a capacity: header, slots, then the u16 free list. */
export function cNodesFileSize(capacity: number): number {
  return C_NODES_HEADER.SIZE + C_NODE.SIZE * capacity + 2 * capacity
}

/** Offset of slot `i` in the nodes file. */
export function cSlotOffset(i: number): number {
  return C_NODES_HEADER.SIZE + C_NODE.SIZE * i
}

// ---- what a file is, from its first bytes -------------------------------------------------------

/**
 * What the first bytes of a nodes file (at least 8 for `razorfs`) say it is: a C nodes file, a
 * razorfs one (its magic number at offset 4), or neither. `magic` is the u32 at offset 0.
 */
export function sniffNodesFile(head: Buffer): {kind: 'c' | 'razorfs' | 'other'; magic?: number} {
  if (head.length < 4) return {kind: 'other'}
  const magic = head.readUInt32LE(C_NODES_HEADER.OFF.magic)
  if (magic === C_NODES_MAGIC) return {kind: 'c', magic}
  if (head.length >= HEADER.OFF.magic + 4 && head.readUInt32LE(HEADER.OFF.magic) === FILES[0].magic) return {kind: 'razorfs', magic}
  return {kind: 'other', magic}
}

// ---- the header ---------------------------------------------------------------------------------

/**
 * Every problem of the header of the nodes file `file` (the whole file: its length must agree
 * with the capacity), each of which makes the file unusable; [] if none. With a wrong magic number
 * it is not a C nodes file, and that is its only problem. `used`, `next_inode` and `free_count`
 * are never problems: the C version writes them only at a clean unmount.
 */
export function validateNodesHeader(h: CNodesHeader, file: Buffer): string[] {
  if (h.magic !== C_NODES_MAGIC) {
    return [
      sniffNodesFile(file).kind === 'razorfs'
        ? 'this is a razorfs image (razorfs magic), not a C RAZORFS one: nothing to migrate'
        : `bad magic ${hex32(h.magic)} (a C RAZORFS nodes file starts with ${hex32(C_NODES_MAGIC)}, bytes 4F 5A 41 52)`,
    ]
  }

  const problems: string[] = []
  if (h.version !== C_NODES_VERSION) problems.push(`unsupported version ${h.version} (this reader knows version ${C_NODES_VERSION})`)
  if (h.capacity === 0 || h.capacity >= C_NO_INDEX) {
    problems.push(`capacity ${h.capacity} is out of range (1 to ${C_NO_INDEX - 1}; the C build uses 1024)`)
  } else if (file.length < cNodesFileSize(h.capacity)) {
    problems.push(`truncated: ${file.length} bytes, a nodes file of capacity ${h.capacity} has ${cNodesFileSize(h.capacity)}`)
  }

  return problems
}

// ---- a node slot --------------------------------------------------------------------------------

/** The node of slot `slot` of the nodes file `buf` (which holds that slot). */
export function decodeNode(buf: Buffer, slot: number): CNode {
  return C_NODE.decode(buf, cSlotOffset(slot))
}

/** What a node is: a directory, a regular file, or (undefined) a type the C format does not have. */
export function cNodeType(mode: number): 'dir' | 'file' | undefined {
  const type = mode & S_IFMT
  return type === S_IFDIR ? 'dir' : type === S_IFREG ? 'file' : undefined
}

/**
 * Every problem that keeps a live node from being migrated; [] if none. A node of an unsupported
 * type has that problem only (its other fields mean nothing). Relations between nodes (indices,
 * cycles, names, inode numbers) are the tree walk's to check; harmless oddities (a directory with
 * a size, a file with children) are not problems.
 */
export function validateNode(node: CNode): string[] {
  const type = cNodeType(node.mode)
  if (type === undefined) return [`unsupported file type (mode 0o${node.mode.toString(8)}; the C format has only directories and regular files)`]
  const problems: string[] = []
  if (type === 'dir' && node.numChildren > C_MAX_CHILDREN) problems.push(`num_children is ${node.numChildren}, at most ${C_MAX_CHILDREN}`)
  if (type === 'file' && node.size > BigInt(FILE_SIZE_MAX)) problems.push(`size ${node.size} is larger than the largest razorfs file (2^44 bytes)`)
  return problems
}
