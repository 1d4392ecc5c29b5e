/** The checksums of the format (docs/FORMAT.md, "Checksums"). */
import zlib from 'node:zlib'

/** CRC-32 of zlib, as a u32; `seed` continues a running CRC (the WAL records seed it with the salt). */
export function crc32(buf: Buffer, seed = 0): number {
  return zlib.crc32(buf, seed) >>> 0
}

/** FNV-1a, 32 bits, of bytes [start, end) of `bytes`: the hash of a name (STRING.hash, DIRENT.nameHash). */
export function fnv1a(bytes: Buffer, start = 0, end = bytes.length): number {
  let h = 0x811c9dc5
  for (let i = start; i < end; i++) {
    h ^= bytes[i]
    h = Math.imul(h, 0x01000193)
  }

  return h >>> 0
}
