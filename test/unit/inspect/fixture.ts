/**
 * A small image with every file type, hard links, xattrs, odd names (spaces, newlines, bytes that
 * are not UTF-8), sparse and large files, special mode bits, big ids and nanosecond times, built
 * through the storage API (names that are not UTF-8 cannot pass through the fuse-native mount);
 * and `snapshot`, everything the public API says about a tree, to compare two images exactly.
 */
import {createHash} from 'node:crypto'
import fs from 'node:fs'

import {Image, ROOT_INO, type Timespec} from '../../../src/storage/index.js'
import type {Volume} from '../../../src/storage/volume.js'

export const S_IFREG = 0o100000
export const S_IFDIR = 0o040000
export const S_IFLNK = 0o120000
export const S_IFIFO = 0o010000
export const S_IFCHR = 0o020000
export const S_IFBLK = 0o060000
export const S_IFSOCK = 0o140000
export const S_IFMT = 0o170000

export const NON_UTF8 = Buffer.from([0x6e, 0xff, 0xfe, 0x2e, 0x80])
export const LONG_NAME = 'L'.repeat(255)
/** Linux makedev(259, 70000): a minor number above 255 and above 0xFFFFF. */
export const BIG_RDEV = Number((70000n & 0xffn) | ((259n & 0xfffn) << 8n) | ((70000n & ~0xffn) << 12n))

const t = (sec: number, nsec: number): Timespec => ({sec, nsec})

/** Build the fixture in `dir` (created if needed); returns the image closed. */
export function buildFixture(dir: string): void {
  fs.mkdirSync(dir, {recursive: true})
  const image = Image.create(dir, {uid: 0, gid: 0, rootMode: 0o751})
  try {
    const R = ROOT_INO
    const file = (parent: number, name: Buffer | string, mode = 0o644, uid = 1000, gid = 1000): number =>
      image.mknod(parent, name, {mode: S_IFREG | mode, uid, gid}).ino
    const dir = (parent: number, name: Buffer | string, mode = 0o755, uid = 1000, gid = 1000): number =>
      image.mknod(parent, name, {mode: S_IFDIR | mode, uid, gid}).ino

    const plain = file(R, 'plain.txt')
    image.write(plain, Buffer.from('hello, razorfs\n'), 0)
    image.setxattr(plain, 'user.text', Buffer.from('a value with spaces'))
    image.setxattr(plain, 'user.bin', Buffer.from([0, 1, 2, 0xff, 0xfe, 0x0a, 0x3d]))
    image.setattr(plain, {atime: t(1_600_000_000, 123_456_789), mtime: t(1_500_000_000, 987_654_321)})

    const odd = dir(R, 'odd names')
    file(odd, 'with space')
    file(odd, 'new\nline')
    file(odd, 'tab\there')
    file(odd, NON_UTF8, 0o600, 0, 0)
    file(odd, 'ünïcödé ✓')
    file(odd, 'back\\slash "quoted"')
    image.link(plain, odd, 'hard link to plain')
    image.link(plain, R, Buffer.concat([Buffer.from('hard '), NON_UTF8]))

    const special = dir(R, 'special', 0o1777, 0, 0)
    image.mknod(special, 'fifo', {mode: S_IFIFO | 0o640, uid: 5, gid: 6})
    image.mknod(special, 'null', {mode: S_IFCHR | 0o666, uid: 0, gid: 0, rdev: (1 << 8) | 3})
    image.mknod(special, 'nvme', {mode: S_IFBLK | 0o660, uid: 0, gid: 6, rdev: BIG_RDEV})
    image.mknod(special, 'socket', {mode: S_IFSOCK | 0o755, uid: 0, gid: 0})
    const link = image.mknod(special, 'link', {mode: S_IFLNK | 0o777, uid: 0, gid: 0, target: '../plain.txt'}).ino
    image.setxattr(link, 'user.on-symlink', Buffer.from('x'))
    image.mknod(special, 'odd link', {mode: S_IFLNK | 0o777, uid: 0, gid: 0, target: Buffer.concat([Buffer.from('target '), NON_UTF8])})
    const fifoLinked = image.lookup(special, 'fifo')
    image.link(fifoLinked, special, 'fifo again')

    const big = dir(R, 'big')
    const setuid = file(big, 'setuid', 0o4755, 3_000_000_000, 3_000_000_001)
    image.write(setuid, Buffer.from('#!/bin/sh\n'), 0)
    const sparse = file(big, 'sparse')
    image.write(sparse, Buffer.from('end of a sparse file'), 5 * 1024 * 1024 + 3)
    const random = file(big, 'random')
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 17)
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2_654_435_761) >>> 24
    image.write(random, bytes, 0)
    const truncated = file(big, 'grown by truncate')
    image.setattr(truncated, {size: 100_000})
    file(big, 'empty')
    dir(big, 'empty dir', 0o700)

    let deep = R
    for (let i = 0; i < 4; i++) deep = dir(deep, `${String(i).repeat(120)}`)
    const long = file(deep, LONG_NAME)
    image.write(long, Buffer.from('deep'), 0)

    image.setxattr(odd, 'user.dir-attr', Buffer.from('on a directory'))
    image.setxattr(R, 'user.root', Buffer.from('on the root'))
    const old = file(R, 'before 1970')
    image.setattr(old, {atime: t(-1, 999_999_999), mtime: t(-86_400 * 365, 5)})
    image.setattr(odd, {atime: t(1_700_000_000, 1), mtime: t(1_700_000_001, 2)})
  } finally {
    image.close()
  }
}

export interface NodeSnapshot {
  type: number
  mode: number
  uid: number
  gid: number
  size: number
  rdev: number
  nlink: number
  atime: Timespec
  mtime: Timespec
  ctime: Timespec
  target?: string
  xattrs: Array<[string, string]>
  sha256?: string
  /** The first path (in walk order) of the inode: equal for all names of one inode. */
  linkGroup: string
  /** Names of a directory in readdir order (hex). */
  entries?: string[]
}

/** Everything the public API says about the tree, keyed by path (hex of the bytes). */
export function snapshot(dir: string): Map<string, NodeSnapshot> {
  const image = Image.open(dir, {readOnly: true})
  try {
    return snapshotVolume(image)
  } finally {
    image.close()
  }
}

/** snapshot of any volume (an image, a shared volume); the caller closes it. */
export function snapshotVolume(image: Volume): Map<string, NodeSnapshot> {
  const out = new Map<string, NodeSnapshot>()
  const first = new Map<number, string>()
  const buf = Buffer.alloc(1 << 20)
  const visit = (ino: number, path: Buffer): void => {
    const key = path.toString('hex')
    const a = image.getattr(ino)
    if (!first.has(ino)) first.set(ino, key)
    const node: NodeSnapshot = {
      type: a.mode & S_IFMT,
      mode: a.mode,
      uid: a.uid,
      gid: a.gid,
      size: a.size,
      rdev: a.rdev,
      nlink: a.nlink,
      atime: a.atime,
      mtime: a.mtime,
      ctime: a.ctime,
      linkGroup: first.get(ino)!,
      xattrs: image.listxattr(ino).map(name => [name, image.getxattr(ino, name).toString('hex')]),
    }
    if ((a.mode & S_IFMT) === S_IFLNK) node.target = image.readlink(ino).toString('hex')
    if ((a.mode & S_IFMT) === S_IFREG) {
      const hash = createHash('sha256')
      for (let pos = 0; pos < a.size; ) {
        const n = image.read(ino, buf, pos)
        hash.update(buf.subarray(0, n))
        pos += n
      }

      node.sha256 = hash.digest('hex')
    }

    out.set(key, node)
    if ((a.mode & S_IFMT) === S_IFDIR) {
      const entries = [...image.readdir(ino)]
      node.entries = entries.map(e => e.name.toString('hex'))
      for (const e of entries) visit(e.ino, Buffer.concat([path, path.length === 1 ? Buffer.alloc(0) : Buffer.from('/'), e.name]))
    }
  }

  visit(ROOT_INO, Buffer.from('/'))

  return out
}
