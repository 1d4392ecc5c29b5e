/**
 * The do-nothing filesystem on razorfs's own libfuse 3 low-level binding (src/fuse/ll): the
 * ceiling any filesystem served through `--binding ll` can reach on this machine, as
 * bench/noop-fs.ts is for fuse-native. `node dist/bench/noop-ll.js MOUNTPOINT` mounts it with
 * the options razorfs's ll adapter uses (src/fuse/ll-adapter.ts: default_permissions, 1 MiB
 * writes, its loop threads, its entry and attribute timeouts (an hour), plain readdir answered in runs,
 * adaptive polling),
 * prints "mounted MOUNTPOINT" and serves until SIGTERM/SIGINT.
 *
 * Like noop-fs it stores no data and no attributes, only what lets every workload run as on a
 * real filesystem: the name tree (parent inode + name -> inode; type and size per inode), so a
 * lookup of a name never created fails, readdir lists what `rm -rf` and `find` visit, and reads
 * stop at the size written. Reads answer from one zero-filled buffer, writes are accepted
 * without copying, everything else succeeds.
 */
import {constants as osConstants} from 'node:os'

import {LOOP_THREADS, TIMEOUT, direntBatch} from '../src/fuse/ll-adapter.js'
import {type LowLevelAddon, OP, OPEN_KEEP_CACHE, OPEN_NOFLUSH, loadLowLevel, requestPoller} from '../src/fuse/ll/binding.js'
import {type EndedRequest, type InitRequest, type LlRequest, mountLowLevel} from '../src/fuse/ll/requests.js'

const E = osConstants.errno
const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_IFLNK = 0o120000
const EPOCH_SEC = 1_700_000_000
const ROOT = 1

interface Node {
  ino: number
  mode: number
  size: number
  nlink: number
  /** Directories: name -> the entry (its name as bytes, made once, for readdir). */
  children?: Map<string, Entry>
  /** Directories: the listing as the addon takes it, made at an opendir after a change. */
  packed?: Packed
  target?: Buffer
}

/** A directory's entries ('.' and '..' first) in the addon's readdir form. */
interface Packed {
  count: number
  /** Names back to back; entry i ends at ends[i]. */
  names: Buffer
  ends: Uint32Array
  /** 14 numbers an entry, of which a plain readdir uses two: ino and type. */
  attrs: Float64Array
  /** Entry i's offset: i + 1. */
  offs: Float64Array
}

interface Entry {
  ino: number
  name: Buffer
}

const nodes = new Map<number, Node>([[ROOT, {ino: ROOT, mode: S_IFDIR | 0o755, size: 4096, nlink: 2, children: new Map()}]])
let nextIno = 2
/** Open directory handles: the listing as it was at opendir, read by position. */
const listings = new Map<number, Packed>()
/** Attributes of a readdirplus answer and name ends of a later part of a listing, reused. */
let direntAttrs = new Float64Array(14 * 1024)
let direntEnds = new Uint32Array(1024)
let nextFh = 1
const ZEROS = Buffer.alloc(1 << 20)
const DOT = Buffer.from('.')
const DOTDOT = Buffer.from('..')

function attr(n: Node): Float64Array {
  return Float64Array.of(n.ino, n.mode, n.nlink, 0, 0, 0, n.size, Math.ceil(n.size / 512), EPOCH_SEC, 0, EPOCH_SEC, 0, EPOCH_SEC, 0)
}

function dir(ino: number): Node {
  const n = nodes.get(ino)
  if (n === undefined) throw E.ENOENT
  if (n.children === undefined) throw E.ENOTDIR
  return n
}

function add(parent: number, name: string, mode: number, target?: Buffer): Node {
  const d = dir(parent)
  if (d.children!.has(name)) throw E.EEXIST
  const isDir = (mode & S_IFMT) === S_IFDIR
  const n: Node = {ino: nextIno++, mode, size: isDir ? 4096 : (target?.length ?? 0), nlink: isDir ? 2 : 1, children: isDir ? new Map() : undefined, target}
  nodes.set(n.ino, n)
  d.children!.set(name, {ino: n.ino, name: Buffer.from(name)})
  d.packed = undefined
  return n
}

function pack(d: Node): Packed {
  const entries = [{ino: d.ino, name: DOT}, {ino: d.ino, name: DOTDOT}, ...d.children!.values()]
  const count = entries.length
  const names = Buffer.concat(entries.map(e => e.name))
  const ends = new Uint32Array(count)
  const attrs = new Float64Array(14 * count)
  const offs = new Float64Array(count)
  let end = 0
  for (let i = 0; i < count; i++) {
    end += entries[i].name.length
    ends[i] = end
    attrs[14 * i] = entries[i].ino
    attrs[14 * i + 1] = nodes.get(entries[i].ino)?.mode ?? S_IFREG
    offs[i] = i + 1
  }

  return {count, names, ends, attrs, offs}
}

function remove(parent: number, name: string): void {
  const d = dir(parent)
  const e = d.children!.get(name)
  if (e === undefined) throw E.ENOENT
  d.children!.delete(name)
  d.packed = undefined
  const n = nodes.get(e.ino)!
  if (--n.nlink <= (n.children === undefined ? 0 : 1)) nodes.delete(e.ino)
}

function handle(ll: LowLevelAddon, r: Exclude<LlRequest, EndedRequest | InitRequest>): void {
  const req = r.req
  const node = (ino: number): Node => {
    const n = nodes.get(ino)
    if (n === undefined) throw E.ENOENT
    return n
  }

  switch (r.op) {
    case OP.LOOKUP: {
      const e = dir(r.parent).children!.get(String(r.name))
      if (e === undefined) throw E.ENOENT
      ll.replyEntry(req, attr(node(e.ino)), TIMEOUT, TIMEOUT)
      return
    }

    case OP.GETATTR:
      ll.replyAttr(req, attr(node(r.ino)), TIMEOUT)
      return
    case OP.SETATTR: {
      const n = node(r.ino)
      if (r.fields.size !== undefined) n.size = r.fields.size
      ll.replyAttr(req, attr(n), TIMEOUT)
      return
    }

    case OP.READLINK:
      ll.replyReadlink(req, node(r.ino).target ?? Buffer.from('x'))
      return
    case OP.MKNOD:
      ll.replyEntry(req, attr(add(r.parent, String(r.name), r.mode)), TIMEOUT, TIMEOUT)
      return
    case OP.MKDIR:
      ll.replyEntry(req, attr(add(r.parent, String(r.name), S_IFDIR | (r.mode & 0o7777))), TIMEOUT, TIMEOUT)
      return
    case OP.SYMLINK:
      ll.replyEntry(req, attr(add(r.parent, String(r.name), S_IFLNK | 0o777, Buffer.from(r.target))), TIMEOUT, TIMEOUT)
      return
    case OP.CREATE:
      ll.replyCreate(req, attr(add(r.parent, String(r.name), S_IFREG | (r.mode & 0o7777))), TIMEOUT, TIMEOUT, nextFh++, OPEN_KEEP_CACHE | OPEN_NOFLUSH)
      return
    case OP.LINK: {
      const n = node(r.ino)
      const d = dir(r.newParent)
      if (d.children!.has(String(r.newName))) throw E.EEXIST
      d.children!.set(String(r.newName), {ino: n.ino, name: Buffer.from(r.newName)})
      d.packed = undefined
      n.nlink++
      ll.replyEntry(req, attr(n), TIMEOUT, TIMEOUT)
      return
    }

    case OP.UNLINK:
    case OP.RMDIR:
      remove(r.parent, String(r.name))
      ll.replyErr(req, 0)
      return
    case OP.RENAME: {
      const from = dir(r.parent)
      const e = from.children!.get(String(r.name))
      if (e === undefined) throw E.ENOENT
      const to = dir(r.newParent)
      if (to.children!.has(String(r.newName))) remove(r.newParent, String(r.newName))
      from.children!.delete(String(r.name))
      to.children!.set(String(r.newName), {ino: e.ino, name: Buffer.from(r.newName)})
      from.packed = undefined
      to.packed = undefined
      ll.replyErr(req, 0)
      return
    }

    case OP.OPEN:
      ll.replyOpen(req, nextFh++, OPEN_KEEP_CACHE | OPEN_NOFLUSH)
      return
    case OP.READ: {
      const n = node(r.ino)
      ll.replyBuf(req, ZEROS, Math.max(0, Math.min(r.size, n.size - r.off, ZEROS.length)))
      return
    }

    case OP.WRITE: {
      const n = node(r.ino)
      const data = r.data
      n.size = Math.max(n.size, r.off + data.length)
      ll.replyWrite(req, data.length, r.token, data)
      return
    }

    case OP.OPENDIR: {
      const fh = nextFh++
      const d = dir(r.ino)
      listings.set(fh, (d.packed ??= pack(d)))
      ll.replyOpen(req, fh, 0)
      return
    }

    case OP.READDIR:
    case OP.READDIRPLUS: {
      // The answer is made of views of the packed listing.
      const p = listings.get(r.fh)
      const plus = r.op === OP.READDIRPLUS
      const from = Math.min(r.off, p?.count ?? 0)
      const count = p === undefined ? 0 : Math.min(direntBatch(r.size, plus), p.count - from)
      if (p === undefined || count === 0) {
        ll.replyBuf(req, Buffer.alloc(0))
        return
      }

      const base = from === 0 ? 0 : p.ends[from - 1]
      let ends = p.ends.subarray(from, from + count)
      if (from > 0) {
        if (direntEnds.length < count) direntEnds = new Uint32Array(count)
        for (let i = 0; i < count; i++) direntEnds[i] = ends[i] - base
        ends = direntEnds.subarray(0, count)
      }

      let attrs = p.attrs.subarray(14 * from, 14 * (from + count))
      if (plus) {
        if (direntAttrs.length < 14 * count) direntAttrs = new Float64Array(14 * count)
        direntAttrs.set(attrs)
        attrs = direntAttrs.subarray(0, 14 * count)
        // An entry removed since opendir still lists (as on any filesystem), without attributes.
        for (let i = 0; i < count; i++) {
          const n = from + i < 2 ? undefined : nodes.get(p.attrs[14 * (from + i)])
          if (n !== undefined) attrs.set(attr(n), 14 * i)
        }
      }

      const names = p.names.subarray(base, p.ends[from + count - 1])
      const offs = p.offs.subarray(from, from + count)
      if (plus) ll.replyDirents(req, r.size, true, names, ends, attrs, offs, TIMEOUT, TIMEOUT)
      else ll.replyDirents(req, r.size, false, names, ends, attrs, offs, TIMEOUT, TIMEOUT, r.fh, r.off)
      return
    }

    case OP.RELEASEDIR:
      listings.delete(r.fh)
      ll.replyErr(req, 0)
      return
    case OP.STATFS:
      ll.replyStatfs(req, Float64Array.of(4096, 4096, 2 ** 30, 2 ** 30, 2 ** 30, 2 ** 30, 2 ** 30, 2 ** 30, 0, 0, 255))
      return
    case OP.GETXATTR:
      throw E.ENODATA
    case OP.LISTXATTR:
      ll.replyXattr(req, 0)
      return
    case OP.LSEEK:
    case OP.COPY_FILE_RANGE:
    case OP.FALLOCATE:
      throw E.EOPNOTSUPP
    default: // flush, release, fsync, fsyncdir, access, setxattr, removexattr, forget
      ll.replyErr(req, 0)
  }
}

function main(): void {
  const mnt = process.argv[2]
  if (mnt === undefined) {
    process.stderr.write('usage: noop-ll MOUNTPOINT\n')
    process.exit(16)
  }

  const ll = loadLowLevel()
  const polled = requestPoller()
  let stopping = false
  const session = mountLowLevel(
    ll,
    mnt,
    'default_permissions,fsname=noopll,subtype=noopll',
    r => {
      if (r.op === OP.ENDED) {
        process.exit(stopping ? 0 : 1)
      }

      if (r.op === OP.INIT) return
      try {
        handle(ll, r)
      } catch (error) {
        ll.replyErr(r.req, typeof error === 'number' ? error : E.EIO, r.op === OP.WRITE ? r.token : 0)
        if (typeof error !== 'number') process.stderr.write(`noop-ll: request ${r.op}: ${(error as Error).message}\n`)
      }

      polled()
    },
    1 << 20,
    0,
    LOOP_THREADS,
  )
  process.stdout.write(`mounted ${mnt}\n`)
  const stop = (): void => {
    if (stopping) return
    stopping = true
    ll.unmount(session)
  }

  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main()
