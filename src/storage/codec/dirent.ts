/**
 * DIRENT, a record of entries.dat (docs/FORMAT.md "DIRENT" and "Directories"): field accessors,
 * the index key, the name comparison a lookup makes, the only decoder and encoder of a whole
 * record, and the rules a record obeys on its own (`validate`; whether its parent, child and name
 * exist is fsck's).
 */
import {DIRENT, INLINE_NAME, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK} from '../format.js'
import {NAME_MAX} from '../types.js'
import {type RecordOf, decodeFields, fieldsOf, putFields} from './field.js'
import * as inodeNumber from './inode-number.js'

export const direntFields = fieldsOf(DIRENT)
const D = direntFields

/**
 * Index key of an entry (its entries.idx hash): its directory slot mixed with the FNV-1a hash of
 * its name (`h = imul(parent, 0x9E3779B1) xor nameHash`, then the murmur3 finaliser), as a u32.
 */
export function dirHash(parent: number, nameHash: number): number {
  return fmix32(Math.imul(parent, 0x9e3779b1) ^ nameHash)
}

/** The finaliser of murmur3 (32 bits): every input bit moves every output bit. */
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

/** The index key of the entry at `o`, from its own fields. */
export function keyOf(b: Buffer, o: number): number {
  return dirHash(D.parent.get(b, o), D.nameHash.get(b, o))
}

/** Inode number of the entry's child, from the entry alone (its slot and recorded generation). */
export function childIno(b: Buffer, o: number): number {
  return inodeNumber.encode(D.child.get(b, o), D.childGen.get(b, o))
}

/** The bytes of the name the entry holds itself (all of a name up to 30 bytes): a view of `b`. */
export function inlineName(b: Buffer, o: number): Buffer {
  const start = o + D.inlineName.off
  return b.subarray(start, start + Math.min(D.nameLength.get(b, o), INLINE_NAME))
}

/** The `inlineName` field of a name: its first 30 bytes, then zeros. */
export function inlineOf(name: Buffer): Buffer {
  const out = Buffer.alloc(INLINE_NAME)
  name.copy(out, 0, 0, INLINE_NAME)
  return out
}

/** Where a long name is compared: the string heap (`StringHeap.equals`). */
export interface NameStore {
  equals(unit: number, bytes: Buffer): boolean
}

/**
 * Is the entry at `o` the entry (dir, name)? `hash` is the name's FNV-1a. Compares the hash, the
 * directory and the length first, then the bytes: from the entry for a name of up to 30 bytes,
 * else from the heap (FORMAT.md "Directories").
 */
export function isEntryOf(b: Buffer, o: number, dir: number, hash: number, name: Buffer, heap: NameStore): boolean {
  if (D.nameHash.get(b, o) !== hash || D.parent.get(b, o) !== dir || D.nameLength.get(b, o) !== name.length) return false
  const start = o + D.inlineName.off
  return name.length <= INLINE_NAME ? b.compare(name, 0, name.length, start, start + name.length) === 0 : heap.equals(D.name.get(b, o), name)
}

/** The fields of a DIRENT record but `inlineName` (a copy of the name's first bytes). */
export type DirentFields = Omit<RecordOf<typeof DIRENT>, 'inlineName'>
const NUMBERS = DIRENT.FIELDS.map(([name]) => name).filter(name => name !== 'inlineName') as Array<keyof DirentFields>

export function decode(b: Buffer, o: number): DirentFields {
  return decodeFields(D, b, o, NUMBERS)
}

/** The 64 bytes of a record; `name` (the name's bytes) gives inlineName. */
export function encode(r: DirentFields, name: Buffer): Buffer {
  const out = Buffer.alloc(DIRENT.SIZE)
  putFields(D, out, 0, {...r, inlineName: name})
  return out
}

/** `type` of an entry: its child's S_IFMT >> 12. */
export function typeOf(mode: number): number {
  return mode >>> 12
}

const TYPES = new Set([S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK].map(typeOf))

export interface DirentProblem {
  /** `free`: a free slot (type 0) holds more than its free-list link; else the field at fault. */
  rule: 'free' | 'type' | 'nameLength' | 'inlineName' | 'link'
  message: string
}

/** Every rule of FORMAT.md's DIRENT table the record at `o` breaks on its own. */
export function validate(b: Buffer, o: number): DirentProblem[] {
  const problems: DirentProblem[] = []
  const type = D.type.get(b, o)
  if (type === 0) {
    for (let i = o; i < o + DIRENT.SIZE; i++) {
      if (b[i] !== 0 && (i < o + D.hashNext.off || i >= o + D.hashNext.off + 4)) {
        problems.push({rule: 'free', message: 'a free slot holds more than its free-list link'})
        break
      }
    }

    return problems
  }

  if (!TYPES.has(type)) problems.push({rule: 'type', message: `type ${type} is not a file type`})
  const len = D.nameLength.get(b, o)
  if (len < 1 || len > NAME_MAX) problems.push({rule: 'nameLength', message: `a name of ${len} bytes`})
  for (let i = o + D.inlineName.off + Math.min(len, INLINE_NAME); i < o + DIRENT.SIZE; i++) {
    if (b[i] !== 0) {
      problems.push({rule: 'inlineName', message: `bytes past the first ${Math.min(len, INLINE_NAME)} of inlineName are not zero`})
      break
    }
  }

  for (const f of [D.parent, D.name, D.child]) if (f.get(b, o) === 0) problems.push({rule: 'link', message: `${f.name} is 0`})
  return problems
}
