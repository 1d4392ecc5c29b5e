/**
 * Differential random test: one seeded random sequence of operations runs, through node:fs, on a
 * razorfs mount and on a directory of the host filesystem (ext4). Every step must succeed or fail
 * alike (same error code, same returned data), and afterwards the touched paths, their parents
 * and every open descriptor must look the same: type, mode, nlink, uid/gid, size, contents,
 * symlink target, directory listing, xattrs. Every PERIOD steps the whole trees are compared,
 * hard-link identity included; at the end the server is restarted and the trees compared again.
 * The run is repeated for each FUSE binding (fuse-native and ll), and on the ll binding for a
 * volume on PostgreSQL too (mount --meta, a fresh schema of the test server, test/helpers/pg.ts).
 *
 * RAZORFS_SEED=n replays a run, RAZORFS_DIFF_OPS=n sets its length (default 5000),
 * RAZORFS_DIFF_BINDINGS=ll (or fuse-native) runs one binding only, RAZORFS_DIFF_BACKENDS=image
 * (or pg) one backend only. A failure names the seed, the
 * step, the operation and the last operations before it; RAZORFS_DIFF_LOG=file appends every
 * operation to that file; RAZORFS_DIFF_STATS=1 prints the outcomes per kind of operation.
 *
 * xattrs go through one long-lived python3 helper (node has no xattr calls) that applies each
 * request to both trees.
 *
 * Not compared: timestamps, except right after utimes (atime and mtime; with fuse-native atime
 * only: it loses the mtime of utimens, PLATFORM.md); ownership by a non-root caller (everything
 * here runs as root); st_size and st_blocks of directories (filesystem-specific); system.* xattrs
 * (ext4 has ACLs, razorfs has none); rename flags (node:fs has no renameat2).
 *
 * fuse-native (libfuse 2's high-level, path-based API) has limitations the generator avoids:
 * - libfuse hides an open file instead of unlinking it (renames it to .fuse_hidden*; the adapter
 *   unlinks it at once and remembers the hidden name). The file stays reachable only through its
 *   directory's path: the generator does not remove that directory while the file is open
 *   (`pinnedDirs`). A directory cannot be hidden at all: an open directory is not removed or
 *   renamed over either (its descriptor would reach nothing: fstat gives ENOENT).
 * - rename(a, b) where a and b are hard links of one inode and b is open: libfuse hides b before
 *   the rename reaches us, so a disappears and b stays (POSIX: nothing happens). The adapter
 *   cannot tell this from unlink(b) followed by rename(a, b); the generator skips it.
 * - Every name of a hard-linked file is a kernel inode of its own. With libfuse's default 1 s
 *   attribute cache, size and nlink seen through one name stay stale for up to a second after a
 *   change through another: the fuse-native mount uses attr_timeout=0 (RAZORFS_DIFF_MOUNT_OPTS
 *   overrides). Each name also has its own page cache: a descriptor opened through one name can
 *   read stale data after a change through another (an open drops the cache, so new opens are
 *   coherent). Descriptors whose file had several names while open are not read from, nor are
 *   descriptors of one file opened through different names (one may since have been unlinked).
 * None of this applies to the ll binding (inode-based): there the generator holds nothing back.
 */
import {expect} from 'chai'
import {type ChildProcessWithoutNullStreams, spawn} from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {PgVolume} from '../../src/storage/pg/volume.js'
import {mount, type Mounted, mountDirs} from '../helpers/mount.js'
import {dropSchemas, schemaUrl, usePg} from '../helpers/pg.js'

const OPS = Number(process.env.RAZORFS_DIFF_OPS ?? 5000)
const SEED = process.env.RAZORFS_SEED === undefined ? crypto.randomInt(2 ** 31) : Number(process.env.RAZORFS_SEED)
/** The FUSE bindings to test (razorfs mount --binding), one run each. */
const BINDINGS = (process.env.RAZORFS_DIFF_BINDINGS ?? 'fuse-native,ll').split(',').filter(b => b !== '')
/** Where the volume is: the image of a data dir, or PostgreSQL (ll binding only: fuse-native cannot serve it). */
const BACKENDS = (process.env.RAZORFS_DIFF_BACKENDS ?? 'image,pg').split(',').filter(b => b !== '')
const SUITES = BACKENDS.flatMap(backend => BINDINGS.filter(b => backend === 'image' || b === 'll').map(binding => ({binding, backend})))
/** -o options of the mount for a binding. */
function mountOptions(binding: string): string | undefined {
  return process.env.RAZORFS_DIFF_MOUNT_OPTS ?? (binding === 'fuse-native' ? 'attr_timeout=0' : undefined)
}
/** Every operation is appended to this file (for debugging a replay). */
const LOG_FILE = process.env.RAZORFS_DIFF_LOG
/**
 * Relative symlinks can point above the tree under test (`../a/b` made at the top, or a symlink
 * moved up by a rename), and an operation through one then resolves outside it: on the host that
 * is wherever the two roots happen to sit, different for each side (a false mismatch), and writes
 * land outside the test's directory. Both roots therefore sit under the same chain of otherwise
 * empty directories, deeper than any such escape climbs (MAX_DEPTH plus renames): an escape
 * resolves to the same place on both sides, inside the test's own directory (whose `native` and
 * `mnt` are reached only by climbing the whole chain and naming them, which the generator's names
 * never do).
 */
const SANDBOX = Array.from({length: 24}, () => 'sandbox')
const PERIOD = 1000
const MAX_FDS = 6
const MAX_SIZE = 400_000
const MAX_DEPTH = 4

const {O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND, S_IFMT, S_IFDIR, S_IFREG, S_IFLNK} = fs.constants

// ---- seeded randomness ------------------------------------------------------------------------

class Rng {
  private a: number
  constructor(seed: number) {
    this.a = seed >>> 0
  }

  /** mulberry32 */
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0
    let t = this.a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }

  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  chance(p: number): boolean {
    return this.next() < p
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]
  }

  /** A weighted choice among [weight, value] pairs. */
  weighted<T>(choices: ReadonlyArray<readonly [number, T]>): T {
    let r = this.next() * choices.reduce((sum, [w]) => sum + w, 0)
    for (const [w, v] of choices) {
      r -= w
      if (r < 0) return v
    }

    return choices.at(-1)![1]
  }

  bytes(n: number): Buffer {
    const buf = Buffer.alloc(n)
    // Runs of one byte now and then, so that zeros of a hole are not the only repetition.
    if (this.chance(0.2)) return buf.fill(this.int(256))
    for (let i = 0; i + 4 <= n; i += 4) buf.writeUInt32LE(Math.floor(this.next() * 4_294_967_296), i)
    for (let i = n & ~3; i < n; i++) buf[i] = this.int(256)
    return buf
  }
}

// ---- outcomes ---------------------------------------------------------------------------------

type Outcome = {ok: unknown} | {err: string}

function attempt(fn: () => unknown): Outcome {
  try {
    return {ok: plain(fn())}
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (typeof code !== 'string') throw error
    return {err: code}
  }
}

/** Returned values as comparable JSON (descriptors differ between the trees: dropped). */
function plain(value: unknown): unknown {
  if (value === undefined || typeof value === 'number') return null
  if (Buffer.isBuffer(value)) return {bytes: value.length, sha1: sha1(value)}
  return value
}

function sha1(buf: Buffer): string {
  return crypto.createHash('sha1').update(buf).digest('hex')
}

function show(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'string' && v.length > 200 ? `${v.slice(0, 200)}...` : v))
}

// ---- snapshots --------------------------------------------------------------------------------

interface Snap {
  err?: string
  type?: string
  mode?: string
  nlink?: number
  uid?: number
  gid?: number
  size?: number
  sha1?: string
  target?: string
  list?: string[]
}

const TYPE_NAMES: Record<number, string> = {[S_IFDIR]: 'dir', [S_IFREG]: 'file', [S_IFLNK]: 'symlink'}

function statSnap(st: fs.Stats): Snap {
  const type = st.mode & S_IFMT
  const snap: Snap = {type: TYPE_NAMES[type] ?? type.toString(8), mode: (st.mode & 0o7777).toString(8), nlink: st.nlink, uid: st.uid, gid: st.gid}
  if (type !== S_IFDIR) snap.size = st.size
  return snap
}

/** Everything a path shows without following a final symlink. */
function snapshot(abs: string): Snap {
  let st: fs.Stats
  try {
    st = fs.lstatSync(abs)
  } catch (error) {
    return {err: (error as NodeJS.ErrnoException).code}
  }

  const snap = statSnap(st)
  try {
    if (st.isFile()) snap.sha1 = sha1(fs.readFileSync(abs))
    else if (st.isSymbolicLink()) snap.target = fs.readlinkSync(abs)
    else if (st.isDirectory()) snap.list = fs.readdirSync(abs).sort()
  } catch (error) {
    snap.err = (error as NodeJS.ErrnoException).code
  }

  return snap
}

interface Entry {
  rel: string
  type: 'f' | 'd' | 'l'
  depth: number
}

/** Every path under `root` (not following symlinks), parents before children. */
function walk(root: string): Entry[] {
  const out: Entry[] = []
  const visit = (rel: string, depth: number) => {
    const dirents = fs.readdirSync(rel === '' ? root : path.join(root, rel), {withFileTypes: true})
    // Sorted: a replay must choose the same paths whatever order the host lists them in.
    for (const d of dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const child = rel === '' ? d.name : `${rel}/${d.name}`
      const type = d.isDirectory() ? 'd' : d.isSymbolicLink() ? 'l' : 'f'
      out.push({rel: child, type, depth})
      if (type === 'd') visit(child, depth + 1)
    }
  }

  visit('', 1)
  return out
}

// ---- the xattr helper -------------------------------------------------------------------------

const PY_HELPER = String.raw`
import base64, errno, json, os, sys
roots = sys.argv[1:3]
def at(root, rel):
    return os.path.join(root, rel) if rel else root
def attempt(fn):
    try:
        return {"ok": fn()}
    except OSError as e:
        return {"err": errno.errorcode.get(e.errno, str(e.errno))}
def dump(p):
    names = sorted(os.listxattr(p, follow_symlinks=False))
    return {n: base64.b64encode(os.getxattr(p, n, follow_symlinks=False)).decode() for n in names}
for line in sys.stdin:
    q = json.loads(line)
    out = []
    for root in roots:
        if q["op"] == "dump":
            out.append([attempt(lambda: dump(at(root, rel))) for rel in q["paths"]])
            continue
        p = at(root, q["path"])
        f = q.get("follow", False)
        if q["op"] == "set":
            r = attempt(lambda: os.setxattr(p, q["name"], base64.b64decode(q["value"]), q["flags"], follow_symlinks=f))
        elif q["op"] == "get":
            r = attempt(lambda: base64.b64encode(os.getxattr(p, q["name"], follow_symlinks=f)).decode())
        elif q["op"] == "remove":
            r = attempt(lambda: os.removexattr(p, q["name"], follow_symlinks=f))
        elif q["op"] == "list":
            r = attempt(lambda: sorted(os.listxattr(p, follow_symlinks=f)))
        else:
            r = {"err": "bad op"}
        out.append(r)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
`

class XattrHelper {
  private readonly proc: ChildProcessWithoutNullStreams
  private buffered = ''
  private readonly waiting: Array<(line: string) => void> = []
  private stderr = ''

  constructor(nat: string, fus: string) {
    this.proc = spawn('python3', ['-u', '-c', PY_HELPER, nat, fus])
    this.proc.stdout.on('data', (d: Buffer) => {
      this.buffered += d.toString()
      for (let i = this.buffered.indexOf('\n'); i >= 0; i = this.buffered.indexOf('\n')) {
        const line = this.buffered.slice(0, i)
        this.buffered = this.buffered.slice(i + 1)
        this.waiting.shift()?.(line)
      }
    })
    this.proc.stderr.on('data', (d: Buffer) => {
      this.stderr += d.toString()
    })
  }

  /** The request's outcome on [native, razorfs]. */
  async call(req: Record<string, unknown>): Promise<[unknown, unknown]> {
    const reply = new Promise<string>((resolve, reject) => {
      this.waiting.push(resolve)
      this.proc.once('exit', code => reject(new Error(`xattr helper exited (${code}): ${this.stderr}`)))
    })
    this.proc.stdin.write(JSON.stringify(req) + '\n')
    const line = await reply
    this.proc.removeAllListeners('exit')
    return JSON.parse(line) as [unknown, unknown]
  }

  close(): void {
    this.proc.stdin.end()
  }
}

// ---- the run ----------------------------------------------------------------------------------

interface OpenFile {
  /** Path it was opened by, kept up to date across renames; meaningless once unlinked. */
  rel: string
  fds: [number, number]
  flags: number
  /** Unlinked while open: the directory it was unlinked from (libfuse's node still hangs there). */
  hiddenIn?: string
  /** Its file had other names (hard links) while it was open: reads may be stale (see the header). */
  aliased?: boolean
}

interface Step {
  desc: string
  /** Paths whose state to compare afterwards (their parents are compared too). */
  touched: string[]
  run?: (side: 0 | 1) => unknown
  xattr?: Record<string, unknown>
  after?: (result: Outcome) => void
}

const NAMES = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'dir', 'file.txt', 'ü-é', 'with space', '.dot']
const XATTR_NAMES = ['user.a', 'user.b', 'user.comment', 'user.big', 'trusted.t', 'user.' + 'n'.repeat(120)]

class Differential {
  readonly rng: Rng
  readonly roots: [string, string]
  readonly open: OpenFile[] = []
  readonly log: string[] = []
  step = 0
  entries: Entry[] = []
  /** (path, name) of xattrs set lately: gets and removes aim at them half of the time. */
  readonly xattrsSet: Array<[string, string]> = []
  /** Outcomes per kind of operation: what the run exercised. */
  readonly stats = new Map<string, Map<string, number>>()

  /**
   * @param libfuse2 the mount goes through libfuse 2's high-level API (fuse-native): avoid the
   *   limitations listed in the header
   */
  constructor(
    seed: number,
    nat: string,
    fus: string,
    readonly xattr: XattrHelper,
    readonly libfuse2: boolean,
  ) {
    this.rng = new Rng(seed)
    this.roots = [nat, fus]
  }

  abs(side: 0 | 1, rel: string): string {
    return rel === '' ? this.roots[side] : path.join(this.roots[side], rel)
  }

  fail(what: string, native: unknown, razorfs: unknown): never {
    const recent = this.log.slice(-25).join('\n  ')
    throw new Error(
      `differential mismatch (RAZORFS_SEED=${SEED} RAZORFS_DIFF_OPS=${this.step + 1}), step ${this.step}: ${what}\n` +
        `  native:  ${show(native)}\n  razorfs: ${show(razorfs)}\n last operations:\n  ${recent}`,
    )
  }

  same(what: string, a: unknown, b: unknown): void {
    if (JSON.stringify(a) !== JSON.stringify(b)) this.fail(what, a, b)
  }

  // ---- choosing paths ----

  dirs(): Entry[] {
    return this.entries.filter(e => e.type === 'd')
  }

  existing(type?: Entry['type']): string {
    const pool = type === undefined ? this.entries : this.entries.filter(e => e.type === type)
    return pool.length === 0 ? this.fresh() : this.rng.pick(pool).rel
  }

  /** A name in an existing directory (it may exist). */
  fresh(): string {
    const dirs = [
      '',
      ...this.dirs()
        .filter(e => e.depth < MAX_DEPTH)
        .map(e => e.rel),
    ]
    const dir = this.rng.pick(dirs)
    const name = this.rng.chance(0.01) ? 'L'.repeat(256) : this.rng.pick(NAMES)
    return dir === '' ? name : `${dir}/${name}`
  }

  /** Mostly existing paths, some new ones, a few that cannot be (under a file, in a missing dir). */
  any(): string {
    return this.rng.weighted<() => string>([
      [55, () => this.existing()],
      [35, () => this.fresh()],
      [4, () => `${this.existing('f')}/x`],
      [4, () => `nodir/${this.rng.pick(NAMES)}`],
      [2, () => `${this.existing('l')}/x`],
    ])()
  }

  /**
   * Directories an unlinked open file still hangs under in libfuse, and open directories (libfuse
   * cannot hide a directory: removed or replaced, its descriptor reaches nothing); see the header.
   */
  pinnedDirs(): Set<string> {
    if (!this.libfuse2) return new Set()
    return new Set(
      this.open.flatMap(o => {
        if (o.hiddenIn !== undefined) return [o.hiddenIn]
        return this.entries.some(e => e.rel === o.rel && e.type === 'd') ? [o.rel] : []
      }),
    )
  }

  // ---- bookkeeping of open files ----

  private parentOf(rel: string): string {
    const i = rel.lastIndexOf('/')
    return i < 0 ? '' : rel.slice(0, i)
  }

  private moved(from: string, to: string): void {
    const rewrite = (p: string) => (p === from ? to : p.startsWith(`${from}/`) ? to + p.slice(from.length) : p)
    for (const o of this.open) {
      if (o.hiddenIn === undefined && o.rel === to && from !== to) this.hide(o)
    }

    for (const o of this.open) {
      if (o.hiddenIn === undefined) o.rel = rewrite(o.rel)
      else o.hiddenIn = rewrite(o.hiddenIn)
    }
  }

  private unlinked(rel: string): void {
    for (const o of this.open) if (o.hiddenIn === undefined && o.rel === rel) this.hide(o)
  }

  private hide(o: OpenFile): void {
    o.hiddenIn = this.parentOf(o.rel)
    const counts = this.stats.get('(open file unlinked)') ?? new Map<string, number>()
    counts.set('ok', (counts.get('ok') ?? 0) + 1)
    this.stats.set('(open file unlinked)', counts)
  }

  // ---- operations ----

  private data(): Buffer {
    return this.rng.bytes(
      this.rng.weighted([
        [60, () => this.rng.int(600)],
        [35, () => this.rng.int(9000)],
        [5, () => 100_000 + this.rng.int(200_000)],
      ])(),
    )
  }

  private offset(rel: string): number {
    let size = 0
    try {
      size = fs.lstatSync(this.abs(0, rel)).size
    } catch {}

    const off = this.rng.weighted([
      [40, () => size],
      [30, () => this.rng.int(size + 1)],
      [25, () => size + this.rng.int(70_000)],
      [5, () => 0],
    ])()
    return Math.min(off, MAX_SIZE)
  }

  private mode(): number {
    return this.rng.weighted([
      [50, () => this.rng.pick([0o644, 0o600, 0o755, 0o700, 0o444, 0o000])],
      [50, () => this.rng.int(0o10000)],
    ])()
  }

  choose(): Step {
    const rng = this.rng
    const big = this.entries.length > 120
    const kind = rng.weighted<string>([
      [8, 'mkdir'],
      [14, 'write'],
      [5, 'truncate'],
      [big ? 12 : 5, 'unlink'],
      [big ? 6 : 3, 'rmdir'],
      [10, 'rename'],
      [4, 'link'],
      [4, 'symlink'],
      [2, 'readlink'],
      [5, 'chmod'],
      [2, 'chown'],
      [3, 'stat'],
      [2, 'readdir'],
      [2, 'utimes'],
      [4, 'fdopen'],
      [6, 'fdwrite'],
      [4, 'fdread'],
      [2, 'fdtruncate'],
      [3, 'fdclose'],
      [1, 'fsync'],
      [5, 'xset'],
      [2, 'xget'],
      [2, 'xremove'],
      [1, 'xlist'],
    ])
    switch (kind) {
      case 'mkdir': {
        const p = this.fresh()
        const mode = rng.pick([0o755, 0o700, 0o777, 0o2775, 0o1777, 0o555, 0o3755])
        return {desc: `mkdir ${p} ${mode.toString(8)}`, touched: [p], run: s => fs.mkdirSync(this.abs(s, p), mode)}
      }

      case 'write': {
        const p = rng.chance(0.7) ? this.existing('f') : this.any()
        const flags = rng.pick([
          O_WRONLY | O_CREAT,
          O_RDWR | O_CREAT | O_TRUNC,
          O_WRONLY | O_CREAT | O_EXCL,
          O_WRONLY | O_APPEND | O_CREAT,
          O_RDWR,
          O_WRONLY | O_TRUNC,
        ])
        const data = this.data()
        const pos = this.offset(p)
        const mode = this.mode()
        return {
          desc: `write ${p} flags=0x${flags.toString(16)} mode=${mode.toString(8)} pos=${pos} len=${data.length}`,
          touched: [p],
          run: s => {
            const fd = fs.openSync(this.abs(s, p), flags, mode)
            try {
              return fs.writeSync(fd, data, 0, data.length, pos)
            } finally {
              fs.closeSync(fd)
            }
          },
        }
      }

      case 'truncate': {
        const p = rng.chance(0.8) ? this.existing('f') : this.any()
        const size = Math.min(
          MAX_SIZE,
          rng.weighted([
            [50, () => rng.int(5000)],
            [40, () => rng.int(80_000)],
            [10, () => 0],
          ])(),
        )
        return {desc: `truncate ${p} ${size}`, touched: [p], run: s => fs.truncateSync(this.abs(s, p), size)}
      }

      case 'unlink': {
        const p = rng.chance(0.8) ? this.existing(rng.chance(0.8) ? 'f' : 'l') : this.any()
        return {desc: `unlink ${p}`, touched: [p], run: s => fs.unlinkSync(this.abs(s, p)), after: r => 'ok' in r && this.unlinked(p)}
      }

      case 'rmdir': {
        const p = rng.chance(0.8) ? this.existing('d') : this.any()
        if (this.pinnedDirs().has(p)) return this.choose()
        const dotted = rng.chance(0.03) ? `${p}/.` : p
        return {desc: `rmdir ${dotted}`, touched: [p], run: s => fs.rmdirSync(this.abs(s, dotted))}
      }

      case 'rename': {
        const from = rng.chance(0.85) ? this.existing() : this.any()
        const descendants = this.entries.filter(e => e.rel.startsWith(`${from}/`)).map(e => e.rel)
        const to = rng.weighted<() => string>([
          [30, () => this.fresh()],
          [20, () => this.existing(this.entries.find(e => e.rel === from)?.type)],
          [15, () => this.existing()],
          [10, () => (descendants.length > 0 ? rng.pick(descendants) : `${from}/${rng.pick(NAMES)}`)],
          [5, () => `${from}/${rng.pick(NAMES)}`],
          [5, () => this.parentOf(from) || from],
          [5, () => from],
        ])()
        if (this.pinnedDirs().has(to) || (this.libfuse2 && this.open.some(o => o.hiddenIn === undefined && o.rel === to) && this.sameInode(from, to)))
          return this.choose()
        return {
          desc: `rename ${from} -> ${to}`,
          touched: [from, to],
          run: s => fs.renameSync(this.abs(s, from), this.abs(s, to)),
          after: r => 'ok' in r && this.moved(from, to),
        }
      }

      case 'link': {
        const from = rng.chance(0.85) ? this.existing(rng.chance(0.9) ? 'f' : undefined) : this.any()
        const to = rng.chance(0.9) ? this.fresh() : this.existing()
        return {desc: `link ${from} -> ${to}`, touched: [from, to], run: s => fs.linkSync(this.abs(s, from), this.abs(s, to))}
      }

      case 'symlink': {
        const p = this.fresh()
        const target = rng.weighted<() => string>([
          [40, () => rng.pick(NAMES)],
          [30, () => path.relative(this.parentOf(p), this.existing()) || '.'],
          [10, () => `../${rng.pick(NAMES)}/${rng.pick(NAMES)}`],
          [10, () => path.basename(p)],
          [5, () => 'x'.repeat(1 + rng.int(300))],
          [5, () => '/nonexistent/razorfs'],
        ])()
        return {desc: `symlink ${p} -> ${target}`, touched: [p], run: s => fs.symlinkSync(target, this.abs(s, p))}
      }

      case 'readlink': {
        const p = rng.chance(0.7) ? this.existing('l') : this.any()
        return {desc: `readlink ${p}`, touched: [], run: s => fs.readlinkSync(this.abs(s, p))}
      }

      case 'chmod': {
        const p = this.any()
        const mode = this.mode()
        return {desc: `chmod ${p} ${mode.toString(8)}`, touched: [p], run: s => fs.chmodSync(this.abs(s, p), mode)}
      }

      case 'chown': {
        // Root may give a file away; a change of owner clears set-user-ID and set-group-ID.
        const p = this.any()
        const uid = rng.pick([-1, 0, 1000, 1001])
        const gid = rng.pick([-1, 0, 100, 1000])
        const follow = rng.chance(0.7)
        return {
          desc: `${follow ? 'chown' : 'lchown'} ${p} ${uid}:${gid}`,
          touched: [p],
          run: s => (follow ? fs.chownSync : fs.lchownSync)(this.abs(s, p), uid, gid),
        }
      }

      case 'stat': {
        const p = this.any()
        const follow = rng.chance(0.5)
        return {desc: `${follow ? 'stat' : 'lstat'} ${p}`, touched: [], run: s => statSnap(follow ? fs.statSync(this.abs(s, p)) : fs.lstatSync(this.abs(s, p)))}
      }

      case 'readdir': {
        const p = rng.chance(0.7) ? this.existing('d') : this.any()
        return {desc: `readdir ${p}`, touched: [], run: s => fs.readdirSync(this.abs(s, p)).sort()}
      }

      case 'utimes': {
        // fuse-native loses mtime (it passes atime twice): there only atime is compared.
        const p = this.any()
        const atime = 1_000_000_000 + rng.int(1_000_000_000)
        const mtime = this.libfuse2 ? atime : 1_000_000_000 + rng.int(1_000_000_000)
        return {
          desc: `utimes ${p} ${atime} ${mtime}`,
          touched: [p],
          run: s => {
            fs.utimesSync(this.abs(s, p), atime, mtime)
            const st = fs.statSync(this.abs(s, p))
            return this.libfuse2 ? [st.atimeMs] : [st.atimeMs, st.mtimeMs]
          },
        }
      }

      case 'fdopen': {
        if (this.open.length >= MAX_FDS) return this.closeOne()
        const p = rng.chance(0.8) ? this.existing('f') : this.fresh()
        // Only real names: libfuse ties an open file to the name it was opened by.
        if (this.entries.some(e => e.rel === p && e.type === 'l')) return this.choose()
        const flags = rng.pick([O_RDONLY, O_WRONLY, O_RDWR, O_RDWR | O_APPEND, O_WRONLY | O_CREAT, O_RDWR | O_CREAT | O_TRUNC, O_RDWR | O_CREAT | O_EXCL])
        const fds: [number, number] = [-1, -1]
        return {
          desc: `open ${p} flags=0x${flags.toString(16)}`,
          touched: [p],
          run: s => {
            fds[s] = fs.openSync(this.abs(s, p), flags, 0o644)
          },
          after: r => {
            if ('ok' in r) this.open.push({rel: p, fds, flags})
          },
        }
      }

      case 'fdwrite': {
        const o = this.pickOpen()
        if (o === undefined) return this.choose()
        const data = this.data()
        const pos = Math.min(MAX_SIZE, rng.chance(0.5) ? fs.fstatSync(o.fds[0]).size : rng.int(fs.fstatSync(o.fds[0]).size + 50_000))
        return {desc: `pwrite fd(${o.rel}) pos=${pos} len=${data.length}`, touched: [o.rel], run: s => fs.writeSync(o.fds[s], data, 0, data.length, pos)}
      }

      case 'fdread': {
        const o = this.pickOpen()
        if (o === undefined || o.aliased) return this.choose()
        const size = fs.fstatSync(o.fds[0]).size
        const pos = rng.int(size + 100)
        const len = rng.int(Math.min(200_000, size + 200) + 1)
        return {
          desc: `pread fd(${o.rel}) pos=${pos} len=${len}`,
          touched: [],
          run: s => {
            const buf = Buffer.alloc(len)
            return buf.subarray(0, fs.readSync(o.fds[s], buf, 0, len, pos))
          },
        }
      }

      case 'fdtruncate': {
        const o = this.pickOpen()
        if (o === undefined) return this.choose()
        const size = rng.int(rng.chance(0.5) ? 4000 : 100_000)
        return {desc: `ftruncate fd(${o.rel}) ${size}`, touched: [o.rel], run: s => fs.ftruncateSync(o.fds[s], size)}
      }

      case 'fdclose':
        return this.closeOne()

      case 'fsync': {
        const o = this.pickOpen()
        if (o === undefined) return this.choose()
        return {desc: `fsync fd(${o.rel})`, touched: [], run: s => fs.fsyncSync(o.fds[s])}
      }

      case 'xset': {
        const p = rng.chance(0.7) ? this.existing() : this.any()
        const name = rng.chance(0.03) ? rng.pick(['system.posix_acl_access', 'bogus.x', 'user.']) : rng.pick(XATTR_NAMES)
        const value = name === 'user.big' ? this.rng.bytes(1000 + rng.int(400)) : this.rng.bytes(rng.int(150))
        const flags = rng.pick([0, 0, 1, 2])
        const follow = rng.chance(0.3)
        if (name.startsWith('system.') || name === 'user.') return this.choose()
        this.xattrsSet.push([p, name])
        if (this.xattrsSet.length > 30) this.xattrsSet.shift()
        return {
          desc: `setxattr ${p} ${name} len=${value.length} flags=${flags}${follow ? '' : ' nofollow'}`,
          touched: [p],
          xattr: {op: 'set', path: p, name, value: value.toString('base64'), flags, follow},
        }
      }

      case 'xget': {
        const [p, name] = this.xattrTarget()
        const follow = rng.chance(0.3)
        return {desc: `getxattr ${p} ${name}${follow ? '' : ' nofollow'}`, touched: [], xattr: {op: 'get', path: p, name, follow}}
      }

      case 'xremove': {
        const [p, name] = this.xattrTarget()
        const follow = rng.chance(0.3)
        return {desc: `removexattr ${p} ${name}${follow ? '' : ' nofollow'}`, touched: [p], xattr: {op: 'remove', path: p, name, follow}}
      }

      default: {
        const p = rng.chance(0.7) ? this.existing() : this.any()
        const follow = rng.chance(0.3)
        return {desc: `listxattr ${p}${follow ? '' : ' nofollow'}`, touched: [], xattr: {op: 'list', path: p, follow}}
      }
    }
  }

  /** Are two paths (native) names of one inode? */
  private sameInode(a: string, b: string): boolean {
    try {
      return fs.lstatSync(this.abs(0, a)).ino === fs.lstatSync(this.abs(0, b)).ino
    } catch {
      return false
    }
  }

  private xattrTarget(): [string, string] {
    if (this.xattrsSet.length > 0 && this.rng.chance(0.6)) return this.rng.pick(this.xattrsSet)
    return [this.rng.chance(0.7) ? this.existing() : this.any(), this.rng.pick(XATTR_NAMES)]
  }

  private pickOpen(): OpenFile | undefined {
    return this.open.length === 0 ? undefined : this.rng.pick(this.open)
  }

  private closeOne(): Step {
    const o = this.pickOpen()
    if (o === undefined) return this.choose()
    return {
      desc: `close fd(${o.rel})${o.hiddenIn === undefined ? '' : ' (unlinked)'}`,
      touched: o.hiddenIn === undefined ? [o.rel] : [],
      run: s => fs.closeSync(o.fds[s]),
      after: () => this.open.splice(this.open.indexOf(o), 1),
    }
  }

  // ---- comparing ----

  comparePath(rel: string): void {
    const [a, b] = [snapshot(this.abs(0, rel)), snapshot(this.abs(1, rel))]
    if (a.sha1 !== undefined && b.sha1 !== undefined && a.sha1 !== b.sha1) {
      const [x, y] = [fs.readFileSync(this.abs(0, rel)), fs.readFileSync(this.abs(1, rel))]
      let at = 0
      while (at < x.length && x[at] === y[at]) at++
      let end = at
      while (end < x.length && x[end] !== y[end]) end++
      this.fail(
        `contents of '${rel}' (${x.length} and ${y.length} bytes) differ from byte ${at} to ${end}`,
        x.subarray(at, at + 16).toString('hex'),
        y.subarray(at, at + 16).toString('hex'),
      )
    }

    this.same(`state of '${rel}'`, a, b)
  }

  compareOpen(): void {
    /** libfuse node of each open host inode: its path, or its hiding for an unlinked one. */
    const nodes = new Map<number, OpenFile>()
    for (const o of this.open) {
      const [a, b] = o.fds.map(fd => {
        try {
          const st = fs.fstatSync(fd)
          if (this.libfuse2 && fd === o.fds[0]) this.markAliased(o, st, nodes)
          return statSnap(st)
        } catch (error) {
          return {err: (error as NodeJS.ErrnoException).code}
        }
      })
      this.same(`fstat of the descriptor opened on '${o.rel}'${o.hiddenIn === undefined ? '' : ' (since unlinked)'}`, a, b)
    }
  }

  /**
   * With libfuse 2 each name is a kernel inode with its own page cache (see the header): a
   * descriptor is aliased when its file has other names, or when another descriptor reaches the
   * same file through another libfuse node (another name, or a hidden one after an unlink).
   */
  private markAliased(o: OpenFile, st: fs.Stats, nodes: Map<number, OpenFile>): void {
    if (st.nlink > 1) o.aliased = true
    const other = nodes.get(st.ino)
    if (other === undefined) {
      nodes.set(st.ino, o)
    } else if (other.hiddenIn !== undefined || o.hiddenIn !== undefined || other.rel !== o.rel) {
      other.aliased = true
      o.aliased = true
    }
  }

  async compareXattrs(paths: string[]): Promise<void> {
    const [a, b] = (await this.xattr.call({op: 'dump', paths})) as [unknown[], unknown[]]
    for (const [i, rel] of paths.entries()) this.same(`xattrs of '${rel}'`, a[i], b[i])
  }

  /** The whole trees: same paths, same states, same xattrs, same hard-link groups. */
  async compareAll(): Promise<void> {
    const [na, fu] = [walk(this.roots[0]), walk(this.roots[1])]
    this.same('the list of all paths', na.map(e => `${e.rel}:${e.type}`).sort(), fu.map(e => `${e.rel}:${e.type}`).sort())
    for (const e of na) this.comparePath(e.rel)
    await this.compareXattrs(na.map(e => e.rel))
    // Hard links: names share an inode on one side exactly when they do on the other.
    const groups = (side: 0 | 1) => {
      const byIno = new Map<number, string[]>()
      for (const e of na) {
        if (e.type === 'd') continue
        const ino = fs.lstatSync(this.abs(side, e.rel)).ino
        byIno.set(ino, [...(byIno.get(ino) ?? []), e.rel])
      }

      return [...byIno.values()].map(g => g.sort().join(' = ')).sort()
    }

    this.same('hard-link groups', groups(0), groups(1))
  }

  async runStep(): Promise<void> {
    this.entries = walk(this.roots[0])
    const step = this.choose()
    this.log.push(`#${this.step} ${step.desc}`)
    if (LOG_FILE !== undefined) fs.appendFileSync(LOG_FILE, `${this.log.at(-1)}\n`)
    if (this.log.length > 100) this.log.shift()
    let outcomes: [unknown, unknown]
    if (step.xattr === undefined) {
      outcomes = [attempt(() => step.run!(0)), attempt(() => step.run!(1))]
    } else {
      outcomes = await this.xattr.call(step.xattr)
    }

    this.same(step.desc, outcomes[0], outcomes[1])
    const kind = step.desc.split(' ')[0]
    const result = outcomes[0] as Outcome
    const key = 'ok' in result ? 'ok' : result.err
    const counts = this.stats.get(kind) ?? new Map<string, number>()
    counts.set(key, (counts.get(key) ?? 0) + 1)
    this.stats.set(kind, counts)
    step.after?.(outcomes[0] as Outcome)
    // After a failure (alike on both sides) the touched paths themselves must be unchanged; their
    // directories are looked at after successes only, which keeps the run short.
    const paths = new Set<string>()
    for (const p of step.touched) {
      paths.add(p)
      if ('ok' in result) paths.add(this.parentOf(p))
    }

    for (const p of paths) this.comparePath(p)
    if (step.xattr !== undefined && step.touched.length > 0) await this.compareXattrs(step.touched)
    // Operations that change nothing (stat, reads, ...) touch nothing: no need to look again.
    if (step.touched.length > 0) this.compareOpen()
  }

  closeAll(): void {
    for (const o of this.open.splice(0)) {
      for (const fd of o.fds) {
        try {
          fs.closeSync(fd)
        } catch {}
      }
    }
  }
}

for (const {binding, backend} of SUITES)
  describe(`differential: razorfs (${binding} binding${backend === 'pg' ? ', volume on PostgreSQL' : ''}) against the host filesystem`, function () {
    this.timeout(300_000)
    const libfuse2 = binding === 'fuse-native'
    const server = backend === 'pg' ? usePg() : undefined
    let meta: string | undefined
    const mountIt = () => mount({dataDir: dirs.dataDir, meta, mnt: dirs.mnt, options: mountOptions(binding), extraArgs: ['--binding', binding]})
    let dirs: ReturnType<typeof mountDirs>
    let native: string
    let mounted: Mounted | undefined
    let helper: XattrHelper | undefined

    before(async () => {
      dirs = mountDirs('razorfs-diff-')
      native = path.join(dirs.root, 'native')
      fs.mkdirSync(native)
      meta = server === undefined ? undefined : schemaUrl(server())
      if (meta !== undefined) PgVolume.create(meta).close()
      mounted = await mountIt()
    })

    after(async () => {
      helper?.close()
      await mounted?.stop()
      dirs?.remove()
      if (meta !== undefined) await dropSchemas([meta])
    })

    it(`${OPS} random operations agree step by step, across a restart too`, async () => {
      const nat = path.join(native, ...SANDBOX, 'w')
      const fus = path.join(dirs.mnt, ...SANDBOX, 'w')
      fs.mkdirSync(nat, {recursive: true, mode: 0o755})
      fs.mkdirSync(fus, {recursive: true, mode: 0o755})
      fs.chmodSync(nat, 0o755)
      fs.chmodSync(fus, 0o755)
      helper = new XattrHelper(nat, fus)
      const diff = new Differential(SEED, nat, fus, helper, libfuse2)
      const started = Date.now()
      try {
        for (diff.step = 0; diff.step < OPS; diff.step++) {
          await diff.runStep()
          if ((diff.step + 1) % PERIOD === 0) await diff.compareAll()
        }

        diff.closeAll()
        await diff.compareAll()
        helper.close()
        helper = undefined
        // Persistence: a clean restart of the server shows the same tree.
        await mounted!.stop()
        mounted = await mountIt()
        helper = new XattrHelper(nat, fus)
        const again = new Differential(SEED, nat, fus, helper, libfuse2)
        again.step = OPS
        again.log.push(...diff.log.slice(-20), '(server restarted)')
        await again.compareAll()
      } catch (error) {
        diff.closeAll()
        if (error instanceof Error && !error.message.includes('RAZORFS_SEED')) {
          error.message = `(RAZORFS_SEED=${SEED}, step ${diff.step}: ${diff.log.at(-1)}) ${error.message}`
        }

        throw error
      }

      expect(Date.now() - started).to.be.below(300_000)
      console.log(`      seed ${SEED}: ${OPS} operations in ${((Date.now() - started) / 1000).toFixed(1)} s`)
      if (process.env.RAZORFS_DIFF_STATS !== undefined) {
        for (const [kind, counts] of [...diff.stats].sort()) {
          console.log(`        ${kind}: ${[...counts].map(([k, n]) => `${k} ${n}`).join(', ')}`)
        }
      }
    })
  })
