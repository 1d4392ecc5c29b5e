/**
 * The C content files (`file_<inode>` / `razorfs_file_<inode>`): a 32-byte header, then the
 * payload, which is the data or (compressed) a 12-byte header and a zlib stream. Their only codec:
 * nothing else in src/migrate reads these headers.
 */
import {hex32} from './image.js'
import {cRecord} from './record.js'

/** Content file header: 32 bytes, then `dataSize` payload bytes. */
export const C_FILE_HEADER = cRecord('cFileHeader', [
  ['magic', 'u32'],
  ['inode', 'u32'], // the owner's inode number (the file's name says it too)
  ['bufferSize', 'u64'], // the size of the C buffer: not authoritative (the node's size is)
  ['dataSize', 'u64big'], // payload bytes that follow the header (exact: may exceed 2^53)
  ['isCompressed', 'i32'], // 0 or 1 when sound
  ['padding', 'bytes4'],
])

export type CFileHeader = ReturnType<typeof C_FILE_HEADER.decode>

/** Header of a compressed payload: 12 bytes, then a zlib stream. */
export const C_COMPRESSED_HEADER = cRecord('cCompressedHeader', [
  ['magic', 'u32'],
  ['originalSize', 'u32'], // bytes the zlib stream inflates to
  ['compressedSize', 'u32'], // bytes of the zlib stream
])

export type CCompressedHeader = ReturnType<typeof C_COMPRESSED_HEADER.decode>

/** 'FILE' (bytes `45 4C 49 46`). */
export const C_FILE_MAGIC = 0x46_49_4c_45
/** 'RZCP' (bytes `50 43 5A 52`). */
export const C_COMPRESSED_MAGIC = 0x52_5a_43_50

// ---- the file header ----------------------------------------------------------------------------

/**
 * Every problem of the header of content file `name`, which its name says belongs to inode
 * `inode` and which holds `held` bytes after its header; [] if none. Each leaves the file's node
 * out. With a wrong magic number it is not a content file, and that is its only problem.
 */
export function validateFileHeader(h: CFileHeader, file: {name: string; inode: number; held: bigint}): string[] {
  const {name, held} = file
  if (h.magic !== C_FILE_MAGIC) return [`content file ${name} has a bad magic number ${hex32(h.magic)} (expected ${hex32(C_FILE_MAGIC)})`]
  const problems: string[] = []
  if (h.inode !== file.inode) problems.push(`content file ${name}: its header says inode ${h.inode}, its name says inode ${file.inode}`)
  if (h.dataSize > held) problems.push(`content file ${name} is truncated: its header says ${h.dataSize} payload bytes, it holds ${held}`)
  if (h.dataSize < held) problems.push(`content file ${name} has ${held - h.dataSize} bytes past the ${h.dataSize} payload bytes its header declares`)
  if (h.isCompressed !== 0 && h.isCompressed !== 1) problems.push(`content file ${name}: is_compressed is ${h.isCompressed} (0 or 1)`)
  if (h.isCompressed === 1 && h.dataSize < BigInt(C_COMPRESSED_HEADER.SIZE)) {
    problems.push(`content file ${name}: compressed payload of ${h.dataSize} bytes, shorter than its ${C_COMPRESSED_HEADER.SIZE}-byte header`)
  }

  return problems
}

// ---- the header of a compressed payload ---------------------------------------------------------

/**
 * Every problem of the compression header of content file `name`, whose payload holds
 * `streamBytes` bytes after that header; [] if none. With a wrong magic number that is its only
 * problem. Whether the stream inflates to `originalSize` is known only by inflating it.
 */
export function validateCompressedHeader(h: CCompressedHeader, file: {name: string; streamBytes: number}): string[] {
  const {name, streamBytes} = file
  if (h.magic !== C_COMPRESSED_MAGIC) return [`content file ${name}: bad compression magic ${hex32(h.magic)} (expected ${hex32(C_COMPRESSED_MAGIC)})`]
  if (h.compressedSize !== streamBytes)
    return [`content file ${name}: compression header says ${h.compressedSize} compressed bytes, the payload holds ${streamBytes}`]
  return []
}
