/**
 * The xattr blob of an inode (docs/FORMAT.md "xattr blob encoding"): its only encoder, decoder and
 * validator. A blob is the concatenation, without padding, of one entry per attribute:
 * u16 name length (1 to 255), u32 value length (0 to 65,536), the name, the value.
 */
import {XATTR_SIZE_MAX} from '../types.js'

/** All xattrs of one inode, names and values with their 6-byte headers. */
export const XATTR_BLOB_MAX = 128 * 1024 - 64
/** Longest attribute name, in bytes. */
export const XATTR_NAME_MAX = 255
const NAME_LENGTH = 2
const HEAD = NAME_LENGTH + 4

export interface XattrEntry {
  name: Buffer
  value: Buffer
}

/**
 * The attributes of a blob in order, as views of `blob` (copy what you keep). Stops at an entry
 * that runs past the end (a damaged blob: `validate` says why).
 */
export function decode(blob: Buffer): XattrEntry[] {
  const out: XattrEntry[] = []
  for (let p = 0; p + HEAD <= blob.length; ) {
    const nameLen = blob.readUInt16LE(p)
    const valueLen = blob.readUInt32LE(p + NAME_LENGTH)
    const end = p + HEAD + nameLen + valueLen
    if (end > blob.length) break
    out.push({name: blob.subarray(p + HEAD, p + HEAD + nameLen), value: blob.subarray(p + HEAD + nameLen, end)})
    p = end
  }

  return out
}

/** The blob of `entries`, in their order (names as UTF-8 when given as strings). */
export function encode(entries: Iterable<readonly [Buffer | string, Buffer]>): Buffer {
  const parts: Buffer[] = []
  for (const [name, value] of entries) {
    const nameBytes = typeof name === 'string' ? Buffer.from(name) : name
    const head = Buffer.alloc(HEAD)
    head.writeUInt16LE(nameBytes.length, 0)
    head.writeUInt32LE(value.length, NAME_LENGTH)
    parts.push(head, nameBytes, value)
  }

  return Buffer.concat(parts)
}

/** Every problem of a blob (an empty list: it parses exactly, entry after entry, to its last byte). */
export function validate(blob: Buffer): string[] {
  const problems: string[] = []
  if (blob.length > XATTR_BLOB_MAX) problems.push(`${blob.length} bytes, more than ${XATTR_BLOB_MAX}`)
  let p = 0
  for (let i = 0; p < blob.length; i++) {
    if (p + HEAD > blob.length) {
      problems.push(`attribute ${i} at byte ${p}: its header runs past the end`)
      break
    }

    const nameLen = blob.readUInt16LE(p)
    const valueLen = blob.readUInt32LE(p + NAME_LENGTH)
    if (nameLen < 1 || nameLen > XATTR_NAME_MAX) problems.push(`attribute ${i} at byte ${p}: a name of ${nameLen} bytes`)
    if (valueLen > XATTR_SIZE_MAX) problems.push(`attribute ${i} at byte ${p}: a value of ${valueLen} bytes`)
    p += HEAD + nameLen + valueLen
    if (p > blob.length) problems.push(`attribute ${i} runs past the end`)
  }

  return problems
}
