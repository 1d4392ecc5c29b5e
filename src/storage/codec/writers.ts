/**
 * WRITERS_HEADER and WRITERS_ENTRY, the `writers` file (docs/FORMAT.md "WRITERS_HEADER",
 * "WRITERS_ENTRY" and "Writers"): its only encoder and decoder.
 */
import {WRITERS_ENTRY, WRITERS_HEADER} from '../format.js'
import {fieldsOf} from './field.js'

const H = fieldsOf(WRITERS_HEADER)
const E = fieldsOf(WRITERS_ENTRY)

/** The header of a list of the image with UUID `uuid`. */
export function encodeHeader(uuid: Buffer): Buffer {
  const b = Buffer.alloc(WRITERS_HEADER.SIZE)
  H.uuid.put(b, 0, uuid)
  return b
}

/** Byte offset of place `k`. */
export function entryOffset(k: number): number {
  return WRITERS_HEADER.SIZE + k * WRITERS_ENTRY.SIZE
}

/** Place `ino` (0: free) into `b`, an entry's worth of bytes. */
export function encodeEntry(b: Buffer, ino: number): Buffer {
  E.ino.put(b, 0, ino)
  return b
}

/** The inode numbers a list holds, or none if it is too short or another image's. */
export function decodeList(bytes: Buffer, uuid: Buffer): number[] {
  if (bytes.length < WRITERS_HEADER.SIZE || !H.uuid.get(bytes, 0).equals(uuid)) return []
  const out: number[] = []
  for (let o = WRITERS_HEADER.SIZE; o + WRITERS_ENTRY.SIZE <= bytes.length; o += WRITERS_ENTRY.SIZE) {
    const ino = E.ino.get(bytes, o)
    if (ino !== 0) out.push(ino)
  }

  return out
}
