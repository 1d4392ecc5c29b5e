/**
 * The do-nothing fuse-native filesystem: the ceiling any filesystem served through fuse-native
 * can reach on this machine. `node dist/bench/noop-fs.js MOUNTPOINT` mounts it with exactly the
 * fuse-native options razorfs uses (src/fuse/fuse-native-adapter.ts: use_ino, big_writes,
 * max_write=131072, default_permissions through fsname; timeout off), prints "mounted MOUNTPOINT"
 * and serves until SIGTERM/SIGINT.
 *
 * It stores no data and no attributes. To let every workload run the same way as on a real
 * filesystem it keeps only the name tree (path -> type, inode number, size; a directory's child
 * names): a lookup of a name that was never created must fail (else open(O_CREAT|O_EXCL) could
 * not create), readdir must list what `rm -rf` and `find` then visit, `find` needs distinct inode
 * numbers, and reads stop at the size that was written. Reads answer the requested length without
 * touching the buffer, writes are accepted without copying, everything else succeeds.
 */
import {createRequire} from 'node:module'
import {constants as osConstants} from 'node:os'

type Cb = (code: number, ...rest: unknown[]) => void

interface Node {
  ino: number
  mode: number
  size: number
  children?: Set<string>
  target?: string
}

const ERRNO = osConstants.errno as Record<string, number>
const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_IFLNK = 0o120000
const EPOCH = new Date(1_700_000_000_000)

const nodes = new Map<string, Node>()
let nextIno = 2
let nextFh = 1
nodes.set('/', {ino: 1, mode: S_IFDIR | 0o755, size: 4096, children: new Set()})

function split(p: string): [string, string] {
  const i = p.lastIndexOf('/')
  return [i <= 0 ? '/' : p.slice(0, i), p.slice(i + 1)]
}

function add(p: string, mode: number, target?: string): number {
  const [parent, name] = split(p)
  const dir = nodes.get(parent)
  if (dir?.children === undefined) return -ERRNO.ENOENT
  if (nodes.has(p)) return -ERRNO.EEXIST
  nodes.set(p, {ino: nextIno++, mode, size: 0, children: (mode & S_IFDIR) === S_IFDIR ? new Set() : undefined, target})
  dir.children.add(name)
  return 0
}

function remove(p: string): number {
  const node = nodes.get(p)
  if (node === undefined) return -ERRNO.ENOENT
  nodes.delete(p)
  const [parent, name] = split(p)
  nodes.get(parent)?.children?.delete(name)
  return 0
}

function statOf(n: Node): Record<string, unknown> {
  return {
    mode: n.mode,
    uid: 0,
    gid: 0,
    size: n.size,
    dev: 0,
    nlink: n.children === undefined ? 1 : 2,
    ino: n.ino,
    rdev: 0,
    blksize: 4096,
    blocks: Math.ceil(n.size / 512),
    atime: EPOCH,
    mtime: EPOCH,
    ctime: EPOCH,
  }
}

const grow = (p: string, end: number): void => {
  const n = nodes.get(p)
  if (n !== undefined && end > n.size) n.size = end
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- fuse-native calls each op with its own arguments
const ops: Record<string, (...args: any[]) => void> = {
  init: (cb: Cb) => cb(0),
  statfs: (_p: string, cb: Cb) =>
    cb(0, {
      bsize: 4096,
      frsize: 4096,
      blocks: 1 << 30,
      bfree: 1 << 30,
      bavail: 1 << 30,
      files: 1 << 30,
      ffree: 1 << 30,
      favail: 1 << 30,
      fsid: 0,
      flag: 0,
      namemax: 255,
    }),
  getattr: (p: string, cb: Cb) => {
    const n = nodes.get(p)
    if (n === undefined) cb(-ERRNO.ENOENT)
    else cb(0, statOf(n))
  },
  access: (_p: string, _mode: number, cb: Cb) => cb(0),
  opendir: (_p: string, _flags: number, cb: Cb) => cb(0, nextFh++),
  readdir: (p: string, cb: Cb) => cb(0, [...(nodes.get(p)?.children ?? [])]),
  releasedir: (_p: string, _fh: number, cb: Cb) => cb(0),
  fsyncdir: (_p: string, _d: number, _fh: number, cb: Cb) => cb(0),
  mkdir: (p: string, mode: number, cb: Cb) => cb(add(p, S_IFDIR | (mode & 0o7777))),
  mknod: (p: string, mode: number, _dev: number, cb: Cb) => cb(add(p, mode)),
  create: (p: string, mode: number, cb: Cb) => {
    const code = add(p, S_IFREG | (mode & 0o7777))
    if (code === 0 || code === -ERRNO.EEXIST) cb(0, nextFh++)
    else cb(code)
  },
  symlink: (target: string, p: string, cb: Cb) => cb(add(p, S_IFLNK | 0o777, target)),
  readlink: (p: string, cb: Cb) => cb(0, nodes.get(p)?.target ?? 'x'),
  link: (_src: string, dest: string, cb: Cb) => cb(add(dest, S_IFREG | 0o644)),
  unlink: (p: string, cb: Cb) => cb(remove(p)),
  rmdir: (p: string, cb: Cb) => cb(remove(p)),
  rename: (src: string, dest: string, cb: Cb) => {
    const n = nodes.get(src)
    if (n === undefined) return cb(-ERRNO.ENOENT)
    remove(src)
    if (nodes.has(dest)) remove(dest)
    add(dest, n.mode, n.target)
    nodes.get(dest)!.size = n.size
    if (n.children !== undefined) {
      // Carry the subtree over (not on any measured path).
      for (const key of [...nodes.keys()]) {
        if (key.startsWith(src + '/')) {
          nodes.set(dest + key.slice(src.length), nodes.get(key)!)
          nodes.delete(key)
        }
      }

      nodes.get(dest)!.children = n.children
    }

    cb(0)
  },
  chmod: (_p: string, _mode: number, cb: Cb) => cb(0),
  chown: (_p: string, _uid: number, _gid: number, cb: Cb) => cb(0),
  utimens: (_p: string, _a: number, _m: number, cb: Cb) => cb(0),
  truncate: (p: string, size: number, cb: Cb) => {
    const n = nodes.get(p)
    if (n !== undefined) n.size = size
    cb(0)
  },
  ftruncate: (p: string, _fh: number, size: number, cb: Cb) => {
    const n = nodes.get(p)
    if (n !== undefined) n.size = size
    cb(0)
  },
  open: (_p: string, _flags: number, cb: Cb) => cb(0, nextFh++),
  // fuse-native takes the byte count (or -errno) as the first callback argument of read/write.
  read: (_p: string, _fh: number, _buf: Buffer, len: number, _pos: number, cb: (n: number) => void) => cb(len),
  write: (p: string, _fh: number, _buf: Buffer, len: number, pos: number, cb: (n: number) => void) => {
    grow(p, pos + len)
    cb(len)
  },
  flush: (_p: string, _fh: number, cb: Cb) => cb(0),
  fsync: (_p: string, _d: number, _fh: number, cb: Cb) => cb(0),
  release: (_p: string, _fh: number, cb: Cb) => cb(0),
  setxattr: (_p: string, _n: string, _v: Buffer, _pos: number, _flags: number, cb: Cb) => cb(0),
  getxattr: (_p: string, _n: string, _pos: number, cb: Cb) => cb(-ERRNO.ENODATA),
  listxattr: (_p: string, cb: Cb) => cb(0, []),
  removexattr: (_p: string, _n: string, cb: Cb) => cb(0),
}

interface FuseInstance {
  mount(cb: (err: Error | null) => void): void
  unmount(cb: (err: Error | null) => void): void
}
type FuseConstructor = new (mnt: string, ops: Record<string, unknown>, opts: Record<string, unknown>) => FuseInstance

function main(): void {
  const mnt = process.argv[2]
  if (mnt === undefined) {
    process.stderr.write('usage: noop-fs MOUNTPOINT\n')
    process.exit(16)
  }

  const Fuse = createRequire(import.meta.url)('fuse-native') as FuseConstructor
  // The same options as FuseNativeAdapter.mount().
  const extra = ['use_ino', 'big_writes', 'max_write=131072', 'default_permissions']
  const fuse = new Fuse(mnt, ops, {fsname: `noopfs,${extra.join(',')}`, subtype: 'noopfs', timeout: false, force: false})
  fuse.mount(err => {
    if (err) {
      process.stderr.write(`noop-fs: cannot mount on ${mnt}: ${err.message}\n`)
      process.exit(1)
    }

    process.stdout.write(`mounted ${mnt}\n`)
  })
  let stopping = false
  const stop = (): void => {
    if (stopping) return
    stopping = true
    fuse.unmount(err => {
      if (err) process.stderr.write(`noop-fs: unmount: ${err.message}\n`)
      process.exit(err ? 1 : 0)
    })
  }

  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main()
