/**
 * What a mounted image holds, seen the way a user sees it: the test walks the mountpoint with
 * node:fs (lstat, readdir, readFile, readlink; xattrs through the python3 helper, node has no
 * xattr calls) and compares every path with the tree it expects. The expected trees of the fsck
 * cases' two base images (fuzz-lib.ts `buildBase`) are written out here by hand, not read from a
 * mount, so a wrong mount and a wrong expectation cannot agree by construction.
 */
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import type {Xattrs} from '../../helpers/xattr.js'

export type Kind = 'dir' | 'file' | 'symlink' | 'fifo' | 'chr' | 'blk' | 'sock'

/** One name of the tree, as lstat and friends report it (times left out). */
export interface Node {
  type: Kind
  /** Permission bits (mode & 07777). */
  mode: number
  uid: number
  gid: number
  nlink: number
  /** st_size: bytes of a file or symlink target, entries of a directory (razorfs). */
  size: number
  /** Regular files: their bytes, by `describe`. */
  content?: string
  /** Symlinks: readlink. */
  target?: string
  /** Devices: st_rdev. */
  rdev?: number
  /** xattrs (name -> value, utf8) of anything but a symlink, when it has any. */
  xattrs?: Record<string, string>
  /** Every path of the tree with this one's inode number (sorted), when there is more than one. */
  links?: string[]
}

/** Absolute path inside the filesystem ("/alpha/beta") -> what is there. */
export type Tree = Record<string, Node>

export interface Observed {
  tree: Tree
  /** Distinct inode numbers the walk met. */
  inodes: number
  /** Inodes in use by statfs (f_files - f_ffree). */
  statfsInodes: number
}

/** Bytes as a short comparable string: the text itself when short and printable, else length and hash. */
export function describe(bytes: Buffer): string {
  const text = bytes.toString('utf8')
  if (bytes.length <= 64 && /^[\u0020-\u007E\n]*$/.test(text)) return text
  return `<${bytes.length} bytes, sha256 ${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}>`
}

const KINDS: ReadonlyArray<[number, Kind]> = [
  [0o040000, 'dir'],
  [0o100000, 'file'],
  [0o120000, 'symlink'],
  [0o010000, 'fifo'],
  [0o020000, 'chr'],
  [0o060000, 'blk'],
  [0o140000, 'sock'],
]

function kindOf(mode: number): Kind {
  const kind = KINDS.find(([bits]) => (mode & 0o170000) === bits)
  if (!kind) throw new Error(`unknown file type in mode ${mode.toString(8)}`)
  return kind[1]
}

/** Walk the whole mounted filesystem at `mnt`. */
export async function observe(mnt: string, xattrs: Xattrs): Promise<Observed> {
  const tree: Tree = {}
  const byIno = new Map<number, string[]>()
  const visit = (p: string): void => {
    const host = path.join(mnt, p)
    const st = fs.lstatSync(host)
    const node: Node = {type: kindOf(st.mode), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, nlink: st.nlink, size: st.size}
    tree[p] = node
    byIno.set(st.ino, [...(byIno.get(st.ino) ?? []), p])
    if (node.type === 'file') node.content = describe(fs.readFileSync(host))
    else if (node.type === 'symlink') node.target = fs.readlinkSync(host)
    else if (node.type === 'chr' || node.type === 'blk') node.rdev = st.rdev
    else if (node.type === 'dir') for (const name of fs.readdirSync(host).sort()) visit(path.posix.join(p, name))
  }

  visit('/')
  const withXattrs = Object.keys(tree).filter(p => tree[p].type !== 'symlink')
  const dumped = await xattrs.dump(withXattrs.map(p => path.join(mnt, p)))
  for (const p of withXattrs) {
    const got = dumped.get(path.join(mnt, p))
    if (typeof got === 'string' || got === undefined) throw new Error(`listxattr ${p}: ${got ?? 'no answer'}`)
    if (got.size > 0) tree[p].xattrs = Object.fromEntries([...got].sort(([a], [b]) => (a < b ? -1 : 1)).map(([n, v]) => [n, v.toString('utf8')]))
  }

  for (const paths of byIno.values()) if (paths.length > 1) for (const p of paths) tree[p].links = [...paths].sort()
  const sfs = fs.statfsSync(mnt)
  return {tree, inodes: byIno.size, statfsInodes: sfs.files - sfs.ffree}
}

/** Differences between two trees, one line per path and field ("/a: nlink 3, expected 2"). */
export function compare(got: Tree, want: Tree): string[] {
  const out: string[] = []
  for (const p of [...new Set([...Object.keys(got), ...Object.keys(want)])].sort()) {
    if (!(p in want)) out.push(`${p}: present, expected absent (${short(got[p])})`)
    else if (!(p in got)) out.push(`${p}: absent, expected ${short(want[p])}`)
    else {
      for (const field of [...new Set([...Object.keys(got[p]), ...Object.keys(want[p])])].sort() as Array<keyof Node>) {
        const [g, w] = [JSON.stringify(got[p][field]), JSON.stringify(want[p][field])]
        const show = (value: Node[keyof Node], text: string) => (field === 'mode' && typeof value === 'number' ? `0o${value.toString(8)}` : clip(text))
        if (g !== w) out.push(`${p}: ${field} ${show(got[p][field], g)}, expected ${show(want[p][field], w)}`)
      }
    }
  }

  return out
}

function clip(text = 'undefined'): string {
  return text.length > 120 ? `${text.slice(0, 100)}...(${text.length} chars)` : text
}

function short(node: Node): string {
  return clip(JSON.stringify({...node, ...(node.xattrs ? {xattrs: Object.keys(node.xattrs)} : {})}))
}

// ---- the expected trees ------------------------------------------------------------------------

export const LONG = 'a-name-that-is-longer-than-thirty-bytes-so-not-inline'
const U = {uid: 1000, gid: 1000}

function file(mode: number, content: Buffer | string, extra: Partial<Node> = {}): Node {
  const bytes = Buffer.from(content)
  return {type: 'file', mode, ...U, nlink: 1, size: bytes.length, content: describe(bytes), ...extra}
}

/**
 * What `buildBase(dir, crash)` leaves visible: the root (owner: whoever created it), alpha with
 * beta, a symlink of each length and the moved FIFO, hello.txt with its hard link in beta, a char
 * device, and the odd-numbered file-N (every third with contents). The crash base adds what the
 * log replays (after-checkpoint, user.late on beta); its orphan is nowhere.
 */
export function baseTree(kind: 'clean' | 'crash'): Tree {
  const crash = kind === 'crash'
  const hello = {xattrs: {'user.comment': 'a comment'}, nlink: 2, links: ['/alpha/beta/hard-link', '/hello.txt']}
  const tree: Tree = {
    '/': {type: 'dir', mode: 0o755, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, nlink: 3, size: 3},
    '/alpha': {type: 'dir', mode: 0o755, ...U, nlink: 3, size: 4, xattrs: {'user.big': 'A'.repeat(300)}},
    '/alpha/beta': {type: 'dir', mode: 0o700, ...U, nlink: 2, size: crash ? 9 : 8, ...(crash ? {xattrs: {'user.late': 'late'}} : {})},
    [`/alpha/beta/${LONG}`]: file(0o600, Buffer.alloc(5000, 7)),
    '/alpha/beta/hard-link': file(0o644, 'hello world\n', hello),
    '/alpha/fifo-moved': {type: 'fifo', mode: 0o644, ...U, nlink: 1, size: 0},
    '/alpha/sym': {type: 'symlink', mode: 0o777, ...U, nlink: 1, size: 12, target: '../hello.txt'},
    '/alpha/sym-long': {type: 'symlink', mode: 0o777, ...U, nlink: 1, size: 2 * LONG.length + 2, target: `/${LONG}/${LONG}`},
    '/dev': {type: 'chr', mode: 0o644, ...U, nlink: 1, size: 0, rdev: 0x0501},
    '/hello.txt': file(0o644, 'hello world\n', hello),
  }
  for (const i of [1, 3, 5, 7, 9, 11]) tree[`/alpha/beta/file-${i}`] = file(0o644, i % 3 === 0 ? `contents ${i}` : '')
  if (crash) tree['/alpha/beta/after-checkpoint'] = file(0o644, '')
  return tree
}

// ---- editing an expected tree (the bookkeeping POSIX does for a name added or removed) ----------

function parentOf(t: Tree, p: string): Node {
  const parent = t[path.posix.dirname(p)]
  if (parent?.type !== 'dir') throw new Error(`expected tree: no directory holds ${p}`)
  return parent
}

/** Remove the name `p` (and what is under it): its directory loses an entry (and a link for a subdirectory); its other names lose a link. */
export function unlinkName(t: Tree, p: string): void {
  const node = t[p]
  if (!node) throw new Error(`expected tree: no ${p}`)
  const parent = parentOf(t, p)
  parent.size--
  if (node.type === 'dir') parent.nlink--
  for (const q of Object.keys(t)) if (q === p || q.startsWith(`${p}/`)) delete t[q]
  for (const other of node.links ?? []) {
    if (other === p) continue
    const o = t[other]
    o.nlink--
    o.links = o.links!.filter(x => x !== p)
    if (o.links.length < 2) delete o.links
  }
}

/** Add the name `p` for a new node: its directory gains an entry (and a link for a subdirectory). */
export function addName(t: Tree, p: string, node: Node): void {
  if (t[p]) throw new Error(`expected tree: ${p} exists`)
  const parent = parentOf(t, p)
  parent.size++
  if (node.type === 'dir') parent.nlink++
  t[p] = node
}

/** Rename `from` (and what is under it) to `to`: one entry less in its old directory, one more in the new. */
export function moveName(t: Tree, from: string, to: string): void {
  if (!t[from]) throw new Error(`expected tree: no ${from}`)
  if (t[to]) throw new Error(`expected tree: ${to} exists`)
  const isDir = t[from].type === 'dir'
  const [oldParent, newParent] = [parentOf(t, from), parentOf(t, to)]
  oldParent.size--
  newParent.size++
  if (isDir) {
    oldParent.nlink--
    newParent.nlink++
  }

  const renamed = (q: string) => (q === from || q.startsWith(`${from}/`) ? to + q.slice(from.length) : q)
  for (const q of Object.keys(t)) {
    const node = t[q]
    if (node.links) node.links = node.links.map(x => renamed(x)).sort()
    if (renamed(q) !== q) {
      delete t[q]
      t[renamed(q)] = node
    }
  }
}

/** The inode at `p` (every name of it) has no xattrs. */
export function dropXattrs(t: Tree, p: string): void {
  for (const q of t[p].links ?? [p]) delete t[q].xattrs
}

/** The /lost+found fsck creates when it needs one: root's, mode 0700, empty. */
export function ensureLostFound(t: Tree): Node {
  if (!t['/lost+found']) addName(t, '/lost+found', {type: 'dir', mode: 0o700, uid: 0, gid: 0, nlink: 2, size: 0})
  return t['/lost+found']
}
