/**
 * Who may do what: the caller's credentials and the POSIX permission rules the filesystem core
 * applies (filesystem.ts). Exactly one class (owner, else group, else other) decides; root passes
 * read and write checks, and execute checks when any execute bit is set.
 */
import {FsError} from '../storage/errors.js'
import type {Attr} from '../storage/types.js'

export interface Cred {
  uid: number
  gid: number
  /** Supplementary groups. */
  groups?: readonly number[]
}

export const ROOT_CRED: Cred = Object.freeze({uid: 0, gid: 0})

export const R_OK = 4
export const W_OK = 2
export const X_OK = 1
export const F_OK = 0

const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_ISUID = 0o4000
const S_ISGID = 0o2000
const S_ISVTX = 0o1000

/** Is `gid` the caller's group or one of its supplementary groups? */
export function inGroup(cred: Cred, gid: number): boolean {
  return cred.gid === gid || (cred.groups?.includes(gid) ?? false)
}

/** Does `cred` have every access in `mask` (R_OK | W_OK | X_OK) to an inode with `attr`? */
export function permits(attr: Attr, mask: number, cred: Cred): boolean {
  if (cred.uid === 0) {
    // Root may read and write anything, and execute anything with an execute bit (or a dir).
    return (mask & X_OK) === 0 || (attr.mode & S_IFMT) === S_IFDIR || (attr.mode & 0o111) !== 0
  }

  let bits: number
  if (cred.uid === attr.uid) bits = (attr.mode >> 6) & 7
  else if (inGroup(cred, attr.gid)) bits = (attr.mode >> 3) & 7
  else bits = attr.mode & 7
  return (bits & mask) === mask
}

/** Sticky directories: only the owner of the entry, of the directory, or root may remove it. */
export function stickyCheck(dir: Attr, child: Attr, cred: Cred, syscall: string): void {
  if ((dir.mode & S_ISVTX) !== 0 && cred.uid !== 0 && cred.uid !== dir.uid && cred.uid !== child.uid) {
    throw new FsError('EPERM', syscall)
  }
}

/**
 * `perm` (permission bits) without set-user-ID, and without set-group-ID where the file's group
 * execute bit is set; a directory keeps both. `mode` is the file's mode as it is now.
 */
export function withoutSetId(perm: number, mode: number): number {
  if ((mode & S_IFMT) === S_IFDIR) return perm
  return perm & ~(S_ISUID | ((mode & 0o010) === 0 ? 0 : S_ISGID))
}
