/**
 * Two small filesystems on the raw razorfs_ll binding, for the binding's own tests (run as a
 * child process: `node ll-servers.js noop|memfs MOUNTPOINT`; it prints "ready" once mounted and
 * exits when the mount goes away or on SIGTERM).
 *
 * - noop: answers every request without storing anything (the ceiling of any JS filesystem).
 * - memfs: a tiny in-memory tree (files and directories).
 * Looking up the name "boom" throws out of the dispatcher in both: the binding must answer EIO
 * and keep serving (no dead mount).
 *
 * `node ll-servers.js memfs MOUNTPOINT THREADS TIMEOUT` serves memfs on THREADS loop threads (0:
 * on the JS thread) with entry and attribute timeouts of TIMEOUT seconds, and takes commands on
 * stdin, one a line, each answered by one line on stdout that starts with its first word:
 *   counts                  the lookups and getattrs served so far ("counts LOOKUPS GETATTRS")
 *   chmod NAME MODE         change /NAME's mode behind the kernel's back (octal)
 *   rename NAME NEW         rename /NAME behind the kernel's back
 *   write NAME TEXT         replace /NAME's contents behind the kernel's back (the same length)
 *   inval-attr NAME         notifyInvalInode(/NAME, -1, 0): its attributes
 *   inval-data NAME         notifyInvalInode(/NAME, 0, 0): its attributes and pages
 *   inval-entry NAME        notifyInvalEntry(1, NAME)
 * An invalidation is answered once the addon has written it ("inval-… SENT ABSENT FAILED").
 * Looking up "notify-me" queues an invalidation of that very name (and of /) before the lookup is
 * answered: written from the JS thread, it would wait for the lookup's reply for good.
 */
import {constants as osConstants} from 'node:os'

import {type LowLevelAddon, OP, type RequestContext, loadLowLevel, replyDirents} from '../../src/fuse/ll/binding.js'
import {type LlRequest, mountLowLevel} from '../../src/fuse/ll/requests.js'

const E = osConstants.errno
const S_IFDIR = 0o040000
const S_IFREG = 0o100000

interface Node {
  ino: number
  mode: number
  uid: number
  gid: number
  data: Buffer
  children?: Map<string, number>
  nlink: number
}

/**
 * Every time of every node: the server's start. A time read at each reply made a refresh of the
 * attributes show a new mtime whenever a second had passed since the last one, and the kernel
 * (libfuse's auto_inval_data) then dropped the file's cached pages, which the invalidation test
 * expects to stay until it drops them itself.
 */
const STARTED = Math.floor(Date.now() / 1000)

function attr(n: Node): Float64Array {
  return Float64Array.of(n.ino, n.mode, n.nlink, n.uid, n.gid, 0, n.data.length, Math.ceil(n.data.length / 512), STARTED, 0, STARTED, 0, STARTED, 0)
}

function serve(kind: string, mnt: string, threads: number, timeout: number): void {
  const ll: LowLevelAddon = loadLowLevel()
  // Inode numbers above 2^32 on purpose: they must survive the trip to the kernel and back.
  const BIG = 2 ** 33
  const nodes = new Map<number, Node>([[1, {ino: 1, mode: S_IFDIR | 0o755, uid: 0, gid: 0, data: Buffer.alloc(0), children: new Map(), nlink: 2}]])
  let next = BIG
  const dirFor = (ino: number): Node => {
    const n = nodes.get(ino)
    if (n === undefined) throw E.ENOENT
    if (n.children === undefined) throw E.ENOTDIR
    return n
  }

  const noop = (r: LlRequest, _ctx: Readonly<RequestContext>): void => {
    const req = r.req
    switch (r.op) {
      case OP.LOOKUP:
        ll.replyErr(req, E.ENOENT)
        return
      case OP.GETATTR:
        ll.replyAttr(req, attr(r.ino === 1 ? nodes.get(1)! : {ino: r.ino, mode: S_IFREG | 0o644, uid: 0, gid: 0, data: Buffer.alloc(0), nlink: 1}), 1)
        return
      case OP.CREATE:
        ll.replyCreate(req, attr({ino: next++, mode: S_IFREG | 0o644, uid: 0, gid: 0, data: Buffer.alloc(0), nlink: 1}), 0, 0, 1, 0)
        return
      case OP.OPEN:
      case OP.OPENDIR:
        ll.replyOpen(req, 1, 0)
        return
      case OP.READ:
        ll.replyBuf(req, Buffer.alloc(r.size))
        return
      case OP.WRITE:
        ll.replyWrite(req, r.data.length, r.token, r.data)
        return
      case OP.READDIR:
      case OP.READDIRPLUS:
        ll.replyBuf(req, Buffer.alloc(0))
        return
      case OP.STATFS:
        ll.replyStatfs(req, Float64Array.of(4096, 4096, 1000, 1000, 1000, 1000, 1000, 1000, 0, 0, 255))
        return
      default:
        ll.replyErr(req, 0)
    }
  }

  let lookups = 0
  let getattrs = 0
  const memfs = (r: LlRequest, ctx: Readonly<RequestContext>): void => {
    const req = r.req
    try {
      switch (r.op) {
        case OP.LOOKUP: {
          const name = r.name.toString()
          lookups++
          if (name === 'notify-me') {
            ll.notifyInvalEntry(session, r.parent, r.name)
            ll.notifyInvalInode(session, r.parent, -1, 0)
          }

          const ino = dirFor(r.parent).children!.get(name)
          if (ino === undefined) throw E.ENOENT
          ll.replyEntry(req, attr(nodes.get(ino)!), timeout, timeout)
          return
        }

        case OP.GETATTR: {
          getattrs++
          const n = nodes.get(r.ino)
          if (n === undefined) throw E.ENOENT
          ll.replyAttr(req, attr(n), timeout)
          return
        }

        case OP.SETATTR: {
          const n = nodes.get(r.ino)
          if (n === undefined) throw E.ENOENT
          if (r.fields.size !== undefined) {
            const data = Buffer.alloc(r.fields.size)
            n.data.copy(data)
            n.data = data
          }

          ll.replyAttr(req, attr(n), timeout)
          return
        }

        case OP.MKDIR:
        case OP.CREATE: {
          const dir = dirFor(r.parent)
          const name = r.name.toString()
          if (dir.children!.has(name)) throw E.EEXIST
          const isDir = r.op === OP.MKDIR
          const n: Node = {
            ino: next++,
            mode: (isDir ? S_IFDIR : S_IFREG) | (r.mode & 0o7777),
            uid: ctx.uid,
            gid: ctx.gid,
            data: Buffer.alloc(0),
            nlink: isDir ? 2 : 1,
          }
          if (isDir) n.children = new Map()
          nodes.set(n.ino, n)
          dir.children!.set(name, n.ino)
          if (isDir) ll.replyEntry(req, attr(n), timeout, timeout)
          else ll.replyCreate(req, attr(n), timeout, timeout, n.ino, 0)
          return
        }

        case OP.UNLINK:
        case OP.RMDIR: {
          const dir = dirFor(r.parent)
          const name = r.name.toString()
          const ino = dir.children!.get(name)
          if (ino === undefined) throw E.ENOENT
          dir.children!.delete(name)
          nodes.delete(ino)
          ll.replyErr(req, 0)
          return
        }

        case OP.OPEN:
          ll.replyOpen(req, r.ino, 0)
          return
        case OP.OPENDIR:
          dirFor(r.ino)
          ll.replyOpen(req, r.ino, 0)
          return
        case OP.READ: {
          const n = nodes.get(r.ino)!
          ll.replyBuf(req, n.data.subarray(r.off, r.off + r.size))
          return
        }

        case OP.WRITE: {
          const n = nodes.get(r.ino)!
          const data = r.data
          const end = r.off + data.length
          if (end > n.data.length) {
            const grown = Buffer.alloc(end)
            n.data.copy(grown)
            n.data = grown
          }

          data.copy(n.data, r.off)
          ll.replyWrite(req, data.length, r.token, data)
          return
        }

        case OP.READDIR:
        case OP.READDIRPLUS: {
          const dir = dirFor(r.ino)
          const all: Array<[string, Node]> = [['.', dir], ['..', dir], ...[...dir.children!].map(([k, v]) => [k, nodes.get(v)!] as [string, Node])]
          const rest = all.slice(r.off)
          const attrs = new Float64Array(14 * rest.length)
          rest.forEach(([, n], i) => attrs.set(attr(n), 14 * i))
          replyDirents(
            ll,
            req,
            r.size,
            r.op === OP.READDIRPLUS,
            rest.map(([k]) => Buffer.from(k)),
            attrs,
            Float64Array.from(rest, (_, i) => r.off + i + 1),
            timeout,
            timeout,
          )
          return
        }

        case OP.STATFS:
          ll.replyStatfs(req, Float64Array.of(4096, 4096, 1000, 1000, 1000, 1000, 1000, 1000, 0, 0, 255))
          return
        case OP.FLUSH:
        case OP.RELEASE:
        case OP.RELEASEDIR:
        case OP.FSYNC:
        case OP.FSYNCDIR:
        case OP.ACCESS:
          ll.replyErr(req, 0)
          return
        default:
          ll.replyErr(req, E.ENOSYS)
      }
    } catch (error) {
      if (typeof error === 'number') {
        ll.replyErr(req, error)
        return
      }

      process.stderr.write(`memfs: request ${r.op} failed: ${(error as Error).message}\n`)
      ll.replyErr(req, E.EIO)
    }
  }

  const handler = kind === 'noop' ? noop : memfs
  const session = mountLowLevel(
    ll,
    mnt,
    'fsname=razorfs-test,default_permissions,allow_other',
    (r, ctx) => {
      if (r.op === OP.ENDED) {
        process.stdout.write('ended\n')
        process.stdin.destroy() // memfs's commands keep the process alive otherwise
        return
      }

      if (r.op === OP.INIT) return
      // A bug that escapes every handler: the binding must answer EIO and keep serving.
      if (r.op === OP.LOOKUP && r.name.toString() === 'boom') throw new Error('a handler bug')
      handler(r, ctx)
    },
    1 << 20,
    0,
    threads,
  )
  process.stdout.write('ready\n')
  process.on('SIGTERM', () => ll.unmount(session))
  if (kind === 'memfs') takeCommands()

  function takeCommands(): void {
    const root = nodes.get(1)!
    const named = (name: string): Node => {
      const n = nodes.get(root.children!.get(name) ?? 0)
      if (n === undefined) throw new Error(`no /${name}`)
      return n
    }

    // Answer once the addon has written every notice queued so far (polled: nothing waits on it).
    const whenWritten = (word: string): void => {
      const [queued, pending, sent, absent, failed] = ll.notifyCounts(session)
      if (pending > 0 || sent + absent + failed < queued) setTimeout(() => whenWritten(word), 1)
      else process.stdout.write(`${word} ${sent} ${absent} ${failed}\n`)
    }

    let buffered = ''
    process.stdin.on('data', (d: Buffer) => {
      buffered += d.toString()
      let nl: number
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const [word, a, b] = buffered.slice(0, nl).split(' ')
        buffered = buffered.slice(nl + 1)
        if (word === 'counts') process.stdout.write(`counts ${lookups} ${getattrs}\n`)
        else if (word === 'chmod') named(a).mode = (named(a).mode & ~0o7777) | Number.parseInt(b, 8)
        else if (word === 'rename') {
          root.children!.set(b, named(a).ino)
          root.children!.delete(a)
        } else if (word === 'write') named(a).data = Buffer.from(b)
        else if (word === 'inval-attr') ll.notifyInvalInode(session, named(a).ino, -1, 0)
        else if (word === 'inval-data') ll.notifyInvalInode(session, named(a).ino, 0, 0)
        else if (word === 'inval-entry') ll.notifyInvalEntry(session, 1, Buffer.from(a))
        if (word.startsWith('inval-')) whenWritten(word)
        else if (word !== 'counts') process.stdout.write(`${word} ok\n`)
      }
    })
  }
}

const [kind, mnt, threads, timeout] = process.argv.slice(2)
if (kind !== undefined && mnt !== undefined) serve(kind, mnt, Number(threads ?? 4), Number(timeout ?? 1))
