/**
 * INODE, a record of nodes.dat (docs/FORMAT.md "INODE"): field accessors, the only decoder and
 * encoder of a whole record, and the rules a record obeys on its own (`validate`; what it must
 * agree with elsewhere, such as its symlink target's string, is fsck's).
 *
 * Storage reads and writes single fields through `inodeFields` (no allocation per read); `decode`
 * builds an object for fsck and inspect.
 */
import {IF_ORPHAN, IF_USED, INODE, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK} from '../format.js'
import {FILE_SIZE_MAX} from '../types.js'
import {type RecordOf, fieldsOf, putFields} from './field.js'
import * as inodeNumber from './inode-number.js'
import {GEN_MASK} from './inode-number.js'

export const inodeFields = fieldsOf(INODE)
const I = inodeFields

/** The fields of an INODE record (`reserved` left out). */
export type InodeFields = Omit<RecordOf<typeof INODE>, 'reserved'>

/** A decoded inode with its slot and inode number. */
export interface InodeRecord extends InodeFields {
  ino: number
  slot: number
}

/** The inode of slot `slot`, whose record is at byte `o` of `b`. */
export function decode(b: Buffer, o: number, slot: number): InodeRecord {
  const gen = I.gen.get(b, o)
  // A literal of fixed shape (dump decodes one per name), in dump's order.
  return {
    ino: inodeNumber.encode(slot, gen),
    slot,
    gen,
    flags: I.flags.get(b, o),
    mode: I.mode.get(b, o),
    nlink: I.nlink.get(b, o),
    uid: I.uid.get(b, o),
    gid: I.gid.get(b, o),
    size: I.size.get(b, o),
    atimeSec: I.atimeSec.get(b, o),
    atimeNsec: I.atimeNsec.get(b, o),
    mtimeSec: I.mtimeSec.get(b, o),
    mtimeNsec: I.mtimeNsec.get(b, o),
    ctimeSec: I.ctimeSec.get(b, o),
    ctimeNsec: I.ctimeNsec.get(b, o),
    parent: I.parent.get(b, o),
    rdev: I.rdev.get(b, o),
    dataId: I.dataId.get(b, o),
    xattr: I.xattr.get(b, o),
    target: I.target.get(b, o),
    dirHead: I.dirHead.get(b, o),
    link: I.link.get(b, o),
  }
}

/** The 128 bytes of a record (reserved bytes zero). */
export function encode(r: InodeFields): Buffer {
  const out = Buffer.alloc(INODE.SIZE)
  putFields(I, out, 0, r)
  return out
}

/**
 * The three times of an inode as (seconds, nanoseconds) field pairs, by name: a lookup by a
 * constant name, where building the field's name (`${which}Sec`) would cost a string per access.
 */
export const timeFields = {
  atime: {sec: I.atimeSec, nsec: I.atimeNsec},
  mtime: {sec: I.mtimeSec, nsec: I.mtimeNsec},
  ctime: {sec: I.ctimeSec, nsec: I.ctimeNsec},
} as const

/** Is the slot at `o` in use (IF_USED)? */
export function isUsed(b: Buffer, o: number): boolean {
  return (I.flags.get(b, o) & IF_USED) !== 0
}

const TYPES = new Set([S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK])

/** Are the S_IFMT bits of `mode` one of the seven file types? */
export function isValidType(mode: number): boolean {
  return TYPES.has(mode & S_IFMT)
}

/** Nanoseconds of a time: below one second. */
export const NSEC_MAX = 999_999_999

export interface InodeProblem {
  /**
   * `free`: a free slot holds more than its generation (below 2^20) and free-list link;
   * `flags`: unknown flag bits; `gen`: a generation of 2^20 or more; `type`: not a file type (no
   * rule after it is checked); `field`: a field that must hold `expected` (0, or zeros for
   * `reserved`); `dataId`: a content file for an inode that is not a regular file; `size`: a
   * regular file larger than FILE_SIZE_MAX.
   */
  rule: 'free' | 'flags' | 'gen' | 'type' | 'field' | 'dataId' | 'size'
  field: string
  value: number | string
  expected: number | string
}

const T_DIR = S_IFDIR >>> 12
const T_REG = S_IFREG >>> 12
const T_LNK = S_IFLNK >>> 12
const T_CHR = S_IFCHR >>> 12
const T_BLK = S_IFBLK >>> 12
const NSEC = Object.values(timeFields).map(t => t.nsec)

/** A field its type fixes at 0 that is not. */
function mustBeZero(problems: InodeProblem[], f: typeof I.link | typeof I.size, b: Buffer, o: number): void {
  const value = f.get(b, o)
  if (value !== 0) problems.push({rule: 'field', field: f.name, value, expected: 0})
}

/** Every rule of FORMAT.md's INODE table the record at `o` breaks, in the order fsck reports them. */
export function validate(b: Buffer, o: number): InodeProblem[] {
  const problems: InodeProblem[] = []
  const flags = I.flags.get(b, o)
  const gen = I.gen.get(b, o)
  if ((flags & IF_USED) === 0) {
    let blank = gen <= GEN_MASK
    for (let i = o + I.flags.off; i < o + INODE.SIZE && blank; i++) if (b[i] !== 0 && (i < o + I.link.off || i >= o + I.link.off + 4)) blank = false
    if (!blank) problems.push({rule: 'free', field: 'gen', value: gen, expected: 'a free slot holds only its generation and link'})
    return problems
  }

  const unknown = flags & ~(IF_USED | IF_ORPHAN)
  if (unknown !== 0) problems.push({rule: 'flags', field: 'flags', value: `0x${unknown.toString(16)}`, expected: 0})
  if (gen > GEN_MASK) problems.push({rule: 'gen', field: 'gen', value: gen, expected: gen & GEN_MASK})
  const mode = I.mode.get(b, o)
  if (!isValidType(mode)) {
    problems.push({rule: 'type', field: 'mode', value: `0o${mode.toString(8)}`, expected: 'a file type'})
    return problems
  }

  const type = (mode & S_IFMT) >>> 12
  for (const nsec of NSEC) if (nsec.get(b, o) > NSEC_MAX) mustBeZero(problems, nsec, b, o)
  if (!I.reserved.isZero(b, o)) problems.push({rule: 'field', field: 'reserved', value: 'not zero', expected: 'zeros'})
  if ((flags & IF_ORPHAN) === 0) mustBeZero(problems, I.link, b, o)
  if (type !== T_CHR && type !== T_BLK) mustBeZero(problems, I.rdev, b, o)
  if (type !== T_DIR) {
    mustBeZero(problems, I.parent, b, o)
    mustBeZero(problems, I.dirHead, b, o)
  }

  if (type !== T_LNK) mustBeZero(problems, I.target, b, o)
  if (type !== T_REG && type !== T_DIR && type !== T_LNK) mustBeZero(problems, I.size, b, o)
  const dataId = I.dataId.get(b, o)
  if (dataId !== 0 && type !== T_REG) problems.push({rule: 'dataId', field: 'dataId', value: dataId, expected: 0})
  const size = I.size.get(b, o)
  if (type === T_REG && size > FILE_SIZE_MAX) problems.push({rule: 'size', field: 'size', value: size, expected: `at most ${FILE_SIZE_MAX}`})
  return problems
}
