/**
 * Extended attributes of the image: each inode's xattrs are one blob in the string heap
 * (codec/xattr-blob.ts), decoded on read and written whole on change. Stands on the inode layer.
 */
import {FsError} from '../errors.js'
import type {StringHeap} from '../string-heap.js'
import {inodeFields as I} from '../codec/inode.js'
import * as xattrBlob from '../codec/xattr-blob.js'
import {XATTR_BLOB_MAX} from '../codec/xattr-blob.js'
import {XATTR_CREATE, XATTR_REPLACE, XATTR_SIZE_MAX} from '../types.js'
import {type Inodes, nowTimespec} from './inodes.js'

export function checkXattrName(name: string, syscall: string): void {
  const len = Buffer.byteLength(name)
  if (len === 0) throw new FsError('EINVAL', syscall, name)
  if (len > 255) throw new FsError('ERANGE', syscall, name)
}

export class Xattrs {
  private readonly strings: StringHeap

  constructor(private readonly inodes: Inodes) {
    this.strings = inodes.strings
  }

  getxattr(ino: number, name: string): Buffer {
    const found = this.xattrs(this.inodes.slotOf(ino, 'getxattr')).get(name)
    if (found === undefined) throw new FsError('ENODATA', 'getxattr', name)
    return found
  }

  listxattr(ino: number): string[] {
    return [...this.xattrs(this.inodes.slotOf(ino, 'listxattr')).keys()]
  }

  setxattr(ino: number, name: string, value: Buffer, flags: number): void {
    const slot = this.inodes.slotOf(ino, 'setxattr')
    checkXattrName(name, 'setxattr')
    if (value.length > XATTR_SIZE_MAX) throw new FsError('E2BIG', 'setxattr', name)
    const all = this.xattrs(slot)
    const exists = all.has(name)
    if ((flags & XATTR_CREATE) !== 0 && exists) throw new FsError('EEXIST', 'setxattr', name)
    if ((flags & XATTR_REPLACE) !== 0 && !exists) throw new FsError('ENODATA', 'setxattr', name)
    all.set(name, value)
    this.storeXattrs(slot, all, 'setxattr')
  }

  removexattr(ino: number, name: string): void {
    const slot = this.inodes.slotOf(ino, 'removexattr')
    checkXattrName(name, 'removexattr')
    const all = this.xattrs(slot)
    if (!all.delete(name)) throw new FsError('ENODATA', 'removexattr', name)
    this.storeXattrs(slot, all, 'removexattr', true)
  }

  /** The inode's xattrs (codec/xattr-blob.ts), names decoded, values copied. */
  private xattrs(slot: number): Map<string, Buffer> {
    const unit = this.inodes.get32(slot, I.xattr)
    const out = new Map<string, Buffer>()
    if (unit === 0) return out
    for (const {name, value} of xattrBlob.decode(this.strings.bytes(unit))) out.set(name.toString('utf8'), Buffer.from(value))
    return out
  }

  private storeXattrs(slot: number, all: Map<string, Buffer>, syscall: string, freeing = false): void {
    const blob = xattrBlob.encode(all)
    if (blob.length > XATTR_BLOB_MAX) throw new FsError('ENOSPC', syscall)
    this.inodes.store.transaction(() => {
      const old = this.inodes.get32(slot, I.xattr)
      if (old !== 0) this.strings.release(old)
      this.inodes.set32(slot, I.xattr, blob.length === 0 ? 0 : this.strings.allocBlob(blob))
      this.inodes.setTime(slot, 'ctime', nowTimespec())
    }, freeing)
  }
}
