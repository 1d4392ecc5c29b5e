/**
 * Finding, reading and validating an image of the C RAZORFS (disk or shm layout).
 *
 * Everything here only reads: files are opened O_RDONLY (content files also O_NOFOLLOW), nothing
 * is created, renamed or removed. `readSource` validates the whole image (headers, every slot
 * reachable from the root, every name, every content file of a reachable regular file, decoded
 * and hashed) and returns what it found: the entries to migrate, the bad ones with their reasons,
 * and notes about what is odd but harmless.
 */
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import zlib from 'node:zlib'

import {FILES, readU64} from '../storage/format.js'
import {FILE_SIZE_MAX, NAME_MAX} from '../storage/types.js'
import {readFully} from '../storage/mapped-file.js'
import {
  C_COMPRESSED_HEADER, C_COMPRESSED_MAGIC, C_DISK, C_FILE_HEADER, C_FILE_MAGIC, C_LAYOUTS, C_MAX_CHILDREN, C_NO_INDEX,
  C_NODE, C_NODES_HEADER, C_NODES_MAGIC, C_NODES_VERSION, C_SHM, C_SHM_STRINGS_SIZE, type CLayout,
  cNodesFileSize, contentInode, cSlotOffset, decodeName,
} from './c-format.js'

const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const CHUNK = 1024 * 1024

/** A problem that makes the whole source unusable (no --skip-bad can help). */
export class SourceError extends Error {
  readonly code = 'MIGRATE_BAD_SOURCE'
  constructor(readonly file: string, readonly reason: string) {
    super(`${file}: ${reason}`)
    this.name = 'SourceError'
  }
}

// ---- finding a source ---------------------------------------------------------------------------

/** What one directory holds, as far as a migration is concerned. */
export interface Detection {
  dir: string
  /**
   * - `found`: a C RAZORFS image (its nodes file has the C magic number);
   * - `absent`: no such directory; `not-dir`: a file, not a directory; `unreadable`: cannot list it;
   * - `none`: a directory without a C nodes file;
   * - `razorfs`: a razorfs image (already migrated?), not a C one;
   * - `bad-magic`: a C file name, but not the C magic number (damaged, or not a C RAZORFS file);
   * - `ambiguous`: the files of both C layouts.
   */
  state: 'found' | 'absent' | 'not-dir' | 'unreadable' | 'none' | 'razorfs' | 'bad-magic' | 'ambiguous'
  layout?: CLayout
  /** One line for the report. */
  detail: string
}

/** The directories a migration without --from looks in, in order. */
export const DEFAULT_SOURCES = ['/dev/shm', '/var/lib/razorfs', '/tmp/razorfs_data']
/** Where the C version keeps its write-ahead log. */
export const DEFAULT_WAL = '/tmp/razorfs_wal.log'

/** The first 8 bytes of a file (fewer if it is shorter), or undefined if it cannot be read. */
function head8(file: string): Buffer | undefined {
  let fd: number
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
  } catch {
    return undefined
  }

  try {
    const buf = Buffer.alloc(8)
    const n = fs.readSync(fd, buf, 0, 8, 0)
    return buf.subarray(0, n)
  } catch {
    return undefined
  } finally {
    fs.closeSync(fd)
  }
}

type Magic = 'c' | 'razorfs' | 'other'

function magicOf(file: string): Magic {
  const b = head8(file)
  if (b === undefined || b.length < 4) return 'other'
  if (b.readUInt32LE(0) === C_NODES_MAGIC) return 'c'
  if (b.length >= 8 && b.readUInt32LE(4) === FILES[0].magic) return 'razorfs'
  return 'other'
}

function hex32(n: number): string {
  return `0x${n.toString(16).toUpperCase().padStart(8, '0')}`
}

/** What `dir` holds: a C RAZORFS image of which layout, or why not. Reads only the nodes files' magic. */
export function detect(dir: string): Detection {
  let names: string[]
  try {
    const st = fs.statSync(dir)
    if (!st.isDirectory()) return {dir, state: 'not-dir', detail: 'not a directory'}
    names = fs.readdirSync(dir)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return {dir, state: 'absent', detail: 'no such directory'}
    return {dir, state: 'unreadable', detail: `cannot read it (${code ?? (error as Error).message})`}
  }

  const present = C_LAYOUTS.filter(layout => names.includes(layout.nodes))
  if (present.length === 0) return {dir, state: 'none', detail: `no C RAZORFS image (no ${C_DISK.nodes} or ${C_SHM.nodes})`}
  const magics = present.map(layout => ({layout, magic: magicOf(path.join(dir, layout.nodes))}))
  const c = magics.filter(m => m.magic === 'c')
  if (c.length > 1) {
    return {dir, state: 'ambiguous', detail: `holds the files of both C layouts (${C_DISK.nodes} and ${C_SHM.nodes}); copy one of them into a directory of its own`}
  }

  if (c.length === 1) {
    const layout = c[0].layout
    const contents = names.filter(name => contentInode(layout, name) !== undefined).length
    return {dir, state: 'found', layout, detail: `C RAZORFS ${layout.kind} layout: ${layout.nodes}, ${layout.strings}, ${contents} content file${contents === 1 ? '' : 's'}`}
  }

  if (magics.some(m => m.magic === 'razorfs')) {
    return {dir, state: 'razorfs', detail: 'holds a razorfs image (nodes.dat with the razorfs magic), not a C RAZORFS one: nothing to migrate'}
  }

  const b = head8(path.join(dir, present[0].nodes))
  const got = b === undefined ? 'unreadable' : b.length < 4 ? `${b.length} bytes long` : `magic ${hex32(b.readUInt32LE(0))}`
  return {dir, state: 'bad-magic', layout: present[0], detail: `${present[0].nodes}: not a C RAZORFS nodes file (${got}, expected magic ${hex32(C_NODES_MAGIC)})`}
}

// ---- the model -----------------------------------------------------------------------------------

export interface CNodesHeader {
  magic: number
  version: number
  capacity: number
  used: number
  nextInode: number
  freeCount: number
}

/** A node reached from the root, good enough to be migrated. */
export interface SourceEntry {
  /** The path in the migrated tree ('/' for the root). */
  path: string
  /** Path components, as bytes (the root has none). */
  names: Buffer[]
  /** Index in `entries` of the parent directory (-1 for the root). */
  parent: number
  type: 'dir' | 'file'
  /** Permission bits (mode & 07777). */
  mode: number
  size: number
  /** Unix seconds: the only timestamp of the C format. */
  mtime: number
  inode: number
  slot: number
  /** Regular files with a content file: its name and how it is stored. */
  content?: {file: string; compressed: boolean; payloadBytes: number; decodedBytes: number; bufferSize: number}
  /** Regular files: sha256 of the content (after decoding, cut or zero-extended to `size`). */
  sha256?: string
}

/** A node (or a reference to one) that cannot be migrated, and why. */
export interface BadEntry {
  /** Where it is: the path it would have (names that are not legal are shown quoted). */
  path: string
  slot?: number
  inode?: number
  reason: string
  /** Live nodes below it that are left out with it. */
  below: number
}

export interface Source {
  dir: string
  layout: CLayout
  nodesFile: string
  stringsFile: string
  header: CNodesHeader
  /** The names file's `used` field and real length. */
  strings: {used: number; bytes: number}
  /** Slots whose inode field is not 0. */
  liveSlots: number
  entries: SourceEntry[]
  bad: BadEntry[]
  /** Odd but harmless facts, one line each (a stale header, leftover content files, ...). */
  notes: string[]
  /** Live slots that no directory reaches (not migrated). */
  unreachable: Array<{slot: number; inode: number; name: string; type: string}>
  /** Content files that no reachable regular file owns (not migrated). */
  unreferenced: string[]
  /** Every file of the source image (nodes, names, content files): what --remove-source deletes. */
  files: string[]
  totals: {dirs: number; files: number; bytes: number}
}

export interface ReadOptions {
  /** Called once, before contents are read, with the bytes of content to read (an estimate). */
  onTotal?: (bytes: number) => void
  /** Called with the number of content bytes processed (for a progress bar). */
  onBytes?: (n: number) => void
}

// ---- names --------------------------------------------------------------------------------------

/** A name's bytes for display: printable UTF-8 as is, anything else escaped; quoted if not a legal name. */
export function showName(name: Buffer, legal = true): string {
  const text = name.toString('utf8')
  const roundTrips = Buffer.from(text, 'utf8').equals(name)
  if (legal && roundTrips && !/[\u0000-\u001F\u007F]/.test(text)) return text
  let out = ''
  for (const ch of roundTrips ? text : name.toString('latin1')) {
    const code = ch.codePointAt(0)!
    if (!roundTrips && code > 0x7E) out += `\\x${code.toString(16).padStart(2, '0')}`
    else if (code < 0x20 || code === 0x7F) out += `\\x${code.toString(16).padStart(2, '0')}`
    else if (ch === '"' || ch === '\\') out += `\\${ch}`
    else out += ch
  }

  return `"${out}"`
}

function joinPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`
}

/** Why `name` cannot be a directory entry, or undefined if it can. */
export function nameProblem(name: Buffer): string | undefined {
  if (name.length === 0) return 'empty name (its first byte is NUL)'
  if (name.includes(0x2F)) return "name contains '/'"
  if (name.includes(0)) return 'name contains a NUL byte'
  if (name.length === 1 && name[0] === 0x2E) return "name is '.'"
  if (name.length === 2 && name[0] === 0x2E && name[1] === 0x2E) return "name is '..'"
  if (name.length > NAME_MAX) return `name is ${name.length} bytes long (at most ${NAME_MAX})`
  return undefined
}

// ---- reading ------------------------------------------------------------------------------------

function readRegular(file: string, what: string): Buffer {
  let st: fs.Stats
  try {
    st = fs.lstatSync(file)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new SourceError(file, code === 'ENOENT' ? `missing: the ${what} is needed` : `cannot read the ${what} (${code})`)
  }

  if (!st.isFile()) throw new SourceError(file, `the ${what} is not a regular file${st.isSymbolicLink() ? ' (a symbolic link)' : ''}`)
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
    try {
      const buf = Buffer.alloc(st.size)
      let got = 0
      while (got < st.size) {
        const n = fs.readSync(fd, buf, got, st.size - got, got)
        if (n === 0) break
        got += n
      }

      return buf.subarray(0, got)
    } finally {
      fs.closeSync(fd)
    }
  } catch (error) {
    throw new SourceError(file, `cannot read the ${what} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`)
  }
}

/** Read and check the nodes file's header and size. */
function readNodes(file: string): {buf: Buffer; header: CNodesHeader; notes: string[]} {
  const buf = readRegular(file, 'nodes file')
  const notes: string[] = []
  const H = C_NODES_HEADER.OFF
  if (buf.length < C_NODES_HEADER.SIZE) throw new SourceError(file, `truncated: ${buf.length} bytes, shorter than its ${C_NODES_HEADER.SIZE}-byte header`)
  const header: CNodesHeader = {
    magic: buf.readUInt32LE(H.magic),
    version: buf.readUInt32LE(H.version),
    capacity: buf.readUInt32LE(H.capacity),
    used: buf.readUInt32LE(H.used),
    nextInode: buf.readUInt32LE(H.nextInode),
    freeCount: buf.readUInt32LE(H.freeCount),
  }
  if (header.magic !== C_NODES_MAGIC) {
    const razorfs = buf.length >= 8 && buf.readUInt32LE(4) === FILES[0].magic
    throw new SourceError(file, razorfs
      ? 'this is a razorfs image (razorfs magic), not a C RAZORFS one: nothing to migrate'
      : `bad magic ${hex32(header.magic)} (a C RAZORFS nodes file starts with ${hex32(C_NODES_MAGIC)}, bytes 4F 5A 41 52)`)
  }

  if (header.version !== C_NODES_VERSION) throw new SourceError(file, `unsupported version ${header.version} (this reader knows version ${C_NODES_VERSION})`)
  if (header.capacity === 0 || header.capacity >= C_NO_INDEX) {
    throw new SourceError(file, `capacity ${header.capacity} is out of range (1 to ${C_NO_INDEX - 1}; the C build uses 1024)`)
  }

  const want = cNodesFileSize(header.capacity)
  if (buf.length < want) throw new SourceError(file, `truncated: ${buf.length} bytes, a nodes file of capacity ${header.capacity} has ${want}`)
  if (buf.length > want) notes.push(`${path.basename(file)}: ${buf.length - want} bytes past the free list (capacity ${header.capacity}) ignored`)
  return {buf, header, notes}
}

function readStrings(file: string, layout: CLayout): {buf: Buffer; used: number; notes: string[]} {
  const buf = readRegular(file, 'names file')
  const notes: string[] = []
  if (buf.length < 4) throw new SourceError(file, `truncated: ${buf.length} bytes, shorter than its 4-byte header`)
  const used = buf.readUInt32LE(0)
  const base = path.basename(file)
  if (layout.kind === 'disk') {
    if (4 + used !== buf.length) notes.push(`${base}: header says ${used} bytes of names, the file holds ${buf.length - 4}; names are read from what the file holds`)
  } else {
    if (used > buf.length) notes.push(`${base}: header says ${used} bytes in use, the file has ${buf.length}; names are read from what the file holds`)
    if (buf.length !== C_SHM_STRINGS_SIZE) notes.push(`${base}: ${buf.length} bytes (the C version makes it ${C_SHM_STRINGS_SIZE})`)
  }

  return {buf, used, notes}
}

// ---- contents -----------------------------------------------------------------------------------

/** What a content file holds, once checked: where its payload is and how to decode it. */
interface ContentPlan {
  file: string
  compressed: boolean
  payloadBytes: number
  /** Bytes the payload decodes to. */
  decodedBytes: number
  /** The header's buffer size (not authoritative). */
  bufferSize: number
}

/** A content file's problem that leaves its node out. */
class ContentProblem extends Error {}

function openNoFollow(file: string): number {
  try {
    return fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ELOOP') throw new ContentProblem(`content file ${path.basename(file)} is a symbolic link`)
    if (code === 'ENOENT') throw new ContentProblem(`content file ${path.basename(file)} is missing`)
    throw new ContentProblem(`cannot open content file ${path.basename(file)} (${code})`)
  }
}

/** Check a content file's header against its name and its node; inflate a compressed payload. */
function checkContent(file: string, inode: number, fd: number): {plan: ContentPlan; inflated?: Buffer} {
  const base = path.basename(file)
  const st = fs.fstatSync(fd)
  if (!st.isFile()) throw new ContentProblem(`content file ${base} is not a regular file`)
  const F = C_FILE_HEADER.OFF
  const head = Buffer.alloc(C_FILE_HEADER.SIZE)
  const got = readFully(fd, head, 0)
  if (got < C_FILE_HEADER.SIZE) throw new ContentProblem(`content file ${base} is truncated: ${got} bytes, shorter than its ${C_FILE_HEADER.SIZE}-byte header`)
  const magic = head.readUInt32LE(F.magic)
  if (magic !== C_FILE_MAGIC) throw new ContentProblem(`content file ${base} has a bad magic number ${hex32(magic)} (expected ${hex32(C_FILE_MAGIC)})`)
  const owner = head.readUInt32LE(F.inode)
  if (owner !== inode) throw new ContentProblem(`content file ${base}: its header says inode ${owner}, its name says inode ${inode}`)
  const dataSize = head.readBigUInt64LE(F.dataSize)
  const held = BigInt(st.size - C_FILE_HEADER.SIZE)
  if (dataSize > held) throw new ContentProblem(`content file ${base} is truncated: its header says ${dataSize} payload bytes, it holds ${held}`)
  if (dataSize < held) throw new ContentProblem(`content file ${base} has ${held - dataSize} bytes past the ${dataSize} payload bytes its header declares`)
  const payloadBytes = Number(dataSize)
  const flag = head.readInt32LE(F.isCompressed)
  if (flag !== 0 && flag !== 1) throw new ContentProblem(`content file ${base}: is_compressed is ${flag} (0 or 1)`)
  const bufferSize = readU64(head, F.bufferSize)
  if (flag === 0) return {plan: {file, compressed: false, payloadBytes, decodedBytes: payloadBytes, bufferSize}}

  const C = C_COMPRESSED_HEADER.OFF
  if (payloadBytes < C_COMPRESSED_HEADER.SIZE) throw new ContentProblem(`content file ${base}: compressed payload of ${payloadBytes} bytes, shorter than its ${C_COMPRESSED_HEADER.SIZE}-byte header`)
  const payload = Buffer.alloc(payloadBytes)
  if (readFully(fd, payload, C_FILE_HEADER.SIZE) !== payloadBytes) throw new ContentProblem(`content file ${base} is truncated (short read)`)
  const cmagic = payload.readUInt32LE(C.magic)
  if (cmagic !== C_COMPRESSED_MAGIC) throw new ContentProblem(`content file ${base}: bad compression magic ${hex32(cmagic)} (expected ${hex32(C_COMPRESSED_MAGIC)})`)
  const original = payload.readUInt32LE(C.originalSize)
  const compressed = payload.readUInt32LE(C.compressedSize)
  if (compressed !== payloadBytes - C_COMPRESSED_HEADER.SIZE) {
    throw new ContentProblem(`content file ${base}: compression header says ${compressed} compressed bytes, the payload holds ${payloadBytes - C_COMPRESSED_HEADER.SIZE}`)
  }

  let inflated: Buffer
  try {
    // One byte more than promised, so that a stream that inflates to more is caught.
    inflated = zlib.inflateSync(payload.subarray(C_COMPRESSED_HEADER.SIZE), {maxOutputLength: Math.max(1, original + 1)})
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ERR_BUFFER_TOO_LARGE') throw new ContentProblem(`content file ${base}: the zlib stream inflates to more than the ${original} bytes its header says`)
    throw new ContentProblem(`content file ${base}: the zlib stream is damaged (${(error as Error).message})`)
  }

  if (inflated.length !== original) throw new ContentProblem(`content file ${base}: the zlib stream inflates to ${inflated.length} bytes, its header says ${original}`)
  return {plan: {file, compressed: true, payloadBytes, decodedBytes: original, bufferSize}, inflated}
}

/**
 * The content of a regular file, `size` bytes: the decoded payload cut or zero-extended to the
 * node's size. Calls `sink` with each piece in order; returns the sha256. Throws ContentProblem.
 */
function streamContent(plan: ContentPlan | undefined, inode: number, size: number, sink: (piece: Buffer, pos: number) => void, zeros: (pos: number, length: number) => void): string {
  const hash = createHash('sha256')
  let pos = 0
  if (plan !== undefined) {
    const fd = openNoFollow(plan.file)
    try {
      const {plan: now, inflated} = checkContent(plan.file, inode, fd)
      if (now.compressed !== plan.compressed || now.decodedBytes !== plan.decodedBytes) throw new ContentProblem(`content file ${path.basename(plan.file)} changed while it was read`)
      const available = Math.min(size, now.decodedBytes)
      if (inflated !== undefined) {
        for (; pos < available; pos += CHUNK) {
          const piece = inflated.subarray(pos, Math.min(available, pos + CHUNK))
          hash.update(piece)
          sink(piece, pos)
        }
      } else {
        const buf = Buffer.alloc(Math.min(CHUNK, Math.max(1, available)))
        while (pos < available) {
          const want = Math.min(buf.length, available - pos)
          const n = readFully(fd, buf.subarray(0, want), C_FILE_HEADER.SIZE + pos)
          if (n !== want) throw new ContentProblem(`content file ${path.basename(plan.file)} became shorter while it was read`)
          const piece = buf.subarray(0, n)
          hash.update(piece)
          sink(piece, pos)
          pos += n
        }
      }

      pos = available
    } finally {
      fs.closeSync(fd)
    }
  }

  if (pos < size) {
    zeros(pos, size - pos)
    const zero = Buffer.alloc(Math.min(CHUNK, size - pos))
    for (let at = pos; at < size; at += zero.length) hash.update(zero.subarray(0, Math.min(zero.length, size - at)))
  }

  return hash.digest('hex')
}

/**
 * Stream one entry's content into `sink` (pieces of real data, in order) and `zeros` (the
 * zero-filled tail, if the decoded payload is shorter than the node's size). Returns the sha256,
 * which must equal the one computed when the source was read, or the source changed.
 */
export function copyContent(source: Source, entry: SourceEntry, sink: (piece: Buffer, pos: number) => void, zeros: (pos: number, length: number) => void): string {
  const plan = entry.content === undefined ? undefined : {...entry.content, file: path.join(source.dir, entry.content.file)}
  try {
    return streamContent(plan, entry.inode, entry.size, sink, zeros)
  } catch (error) {
    if (error instanceof ContentProblem) throw new SourceError(entry.path, `${error.message} (the source changed after it was checked?)`)
    throw error
  }
}

// ---- the whole source ---------------------------------------------------------------------------

function typeName(mode: number): string {
  switch (mode & S_IFMT) {
    case S_IFDIR: return 'directory'
    case S_IFREG: return 'file'
    default: return `type 0o${(mode & S_IFMT).toString(8)}`
  }
}

/**
 * Read and validate the C RAZORFS image in `dir` (of `layout`). Throws SourceError when the
 * image as a whole is unusable; bad entries are returned in `bad` (the caller decides whether
 * they fail the migration or are skipped).
 */
export function readSource(dir: string, layout: CLayout, opts: ReadOptions = {}): Source {
  const nodesFile = path.join(dir, layout.nodes)
  const stringsFile = path.join(dir, layout.strings)
  const {buf: nodes, header, notes} = readNodes(nodesFile)
  const strings = readStrings(stringsFile, layout)
  notes.push(...strings.notes)
  const capacity = header.capacity
  const N = C_NODE.OFF

  // Content files on disk, by inode.
  const contentFiles = new Map<number, string>()
  for (const name of fs.readdirSync(dir)) {
    const inode = contentInode(layout, name)
    if (inode !== undefined) contentFiles.set(inode, name)
  }

  const slot = (i: number) => cSlotOffset(i)
  const inodeOf = (i: number) => nodes.readUInt32LE(slot(i) + N.inode)
  const modeOf = (i: number) => nodes.readUInt16LE(slot(i) + N.mode)
  const numChildrenOf = (i: number) => nodes.readUInt16LE(slot(i) + N.numChildren)
  const childAt = (i: number, k: number) => nodes.readUInt16LE(slot(i) + N.children + 2 * k)

  // Live slots, whatever the (possibly stale) header says.
  let liveSlots = 0
  let highest = -1
  let maxInode = 0
  let contentBytes = 0
  for (let i = 0; i < capacity; i++) {
    const ino = inodeOf(i)
    if (ino !== 0) {
      liveSlots++
      highest = i
      maxInode = Math.max(maxInode, ino)
      if ((modeOf(i) & S_IFMT) === S_IFREG) contentBytes += Math.min(FILE_SIZE_MAX, readU64(nodes, slot(i) + N.size))
    }
  }

  opts.onTotal?.(contentBytes)

  if (highest + 1 > header.used) notes.push(`${layout.nodes}: header says used=${header.used}, but slots up to ${highest} are live: the header is stale (the C version writes it only at a clean unmount); the tree was walked from slot 0`)
  if (maxInode >= header.nextInode) notes.push(`${layout.nodes}: header says next_inode=${header.nextInode}, but inode ${maxInode} exists: the header is stale`)
  if (header.freeCount > capacity) notes.push(`${layout.nodes}: header says free_count=${header.freeCount}, more than the capacity ${capacity}`)

  // The root.
  if (inodeOf(0) === 0) throw new SourceError(nodesFile, 'slot 0 (the root directory) is free: there is no tree')
  if ((modeOf(0) & S_IFMT) !== S_IFDIR) throw new SourceError(nodesFile, `slot 0 (the root) is not a directory (mode 0o${modeOf(0).toString(8)})`)
  if (numChildrenOf(0) > C_MAX_CHILDREN) throw new SourceError(nodesFile, `slot 0 (the root) says it has ${numChildrenOf(0)} children, at most ${C_MAX_CHILDREN}`)
  if (inodeOf(0) !== 1) notes.push(`the root (slot 0) has inode ${inodeOf(0)}, not 1`)
  if (nodes.readUInt32LE(slot(0) + N.parent) !== C_NO_INDEX) notes.push(`the root (slot 0) has parent ${nodes.readUInt32LE(slot(0) + N.parent)}, not 0xFFFF`)
  const rootName = decodeName(strings.buf, layout, nodes.readUInt32LE(slot(0) + N.nameOffset))
  if (typeof rootName === 'string' || rootName.toString('latin1') !== '/') {
    const other = layout === C_DISK ? C_SHM : C_DISK
    const otherName = decodeName(strings.buf, other, nodes.readUInt32LE(slot(0) + N.nameOffset))
    const hint = typeof otherName !== 'string' && otherName.toString('latin1') === '/' ? `; its names file looks like the ${other.kind} layout's` : ''
    notes.push(`the root's name is ${typeof rootName === 'string' ? `unreadable (${rootName})` : showName(rootName, false)}, not "/"${hint}`)
  }

  const entries: SourceEntry[] = []
  const bad: BadEntry[] = []
  const placed = new Map<number, number>() // slot -> entry index
  const inodes = new Map<number, number>() // inode -> entry index
  const accounted = new Set<number>() // slots in the tree, or left out below a bad entry
  const unreferenced = new Set(contentFiles.keys())

  /** Live slots below `i` (not counting i), walked defensively; marks them accounted for. */
  const hangingBelow = (i: number): number => {
    let count = 0
    const stack = [i]
    const seen = new Set<number>([i])
    while (stack.length > 0) {
      const s = stack.pop()!
      if ((modeOf(s) & S_IFMT) !== S_IFDIR) continue
      const n = Math.min(numChildrenOf(s), C_MAX_CHILDREN)
      for (let k = 0; k < n; k++) {
        const c = childAt(s, k)
        if (c >= capacity || seen.has(c) || placed.has(c) || inodeOf(c) === 0) continue
        seen.add(c)
        if (!accounted.has(c)) count++
        accounted.add(c)
        stack.push(c)
      }
    }

    return count
  }

  const reject = (where: string, i: number | undefined, reason: string): void => {
    const inode = i === undefined ? undefined : inodeOf(i)
    let below = 0
    if (i !== undefined && !placed.has(i)) {
      accounted.add(i)
      below = hangingBelow(i)
    }

    bad.push({path: where, slot: i, inode, reason, below})
  }

  const root: SourceEntry = {
    path: '/', names: [], parent: -1, type: 'dir', mode: modeOf(0) & 0o7777, size: 0,
    mtime: nodes.readUInt32LE(slot(0) + N.mtime), inode: inodeOf(0), slot: 0,
  }
  entries.push(root)
  placed.set(0, 0)
  accounted.add(0)
  inodes.set(root.inode, 0)

  const stack = [0]
  while (stack.length > 0) {
    const dirEntry = stack.pop()!
    const d = entries[dirEntry]
    const n = numChildrenOf(d.slot)
    for (let k = n; k < C_MAX_CHILDREN; k++) {
      if (childAt(d.slot, k) !== C_NO_INDEX) {
        notes.push(`${d.path} (slot ${d.slot}): child index ${childAt(d.slot, k)} at position ${k}, past num_children=${n}, ignored`)
        break
      }
    }

    const seenNames = new Map<string, number>()
    const children: number[] = []
    for (let k = 0; k < n; k++) {
      const c = childAt(d.slot, k)
      const where = joinPath(d.path, `[child ${k}]`)
      if (c === C_NO_INDEX) {
        reject(where, undefined, `child ${k} of ${n} is 0xFFFF (no child), although num_children=${n}`)
        continue
      }

      if (c >= capacity) {
        reject(where, undefined, `child index ${c} is out of range (slots 0 to ${capacity - 1})`)
        continue
      }

      const ino = inodeOf(c)
      const rawName = decodeName(strings.buf, layout, nodes.readUInt32LE(slot(c) + N.nameOffset))
      const shown = typeof rawName === 'string' ? `[slot ${c}]` : showName(rawName, nameProblem(rawName) === undefined)
      const at = joinPath(d.path, shown)
      if (ino === 0) {
        reject(at, undefined, `child index ${c} points to a free slot`)
        continue
      }

      if (placed.has(c)) {
        // Is it this directory or one of its ancestors?
        let cycle = false
        for (let e = dirEntry; e >= 0; e = entries[e].parent) {
          if (entries[e].slot === c) {
            cycle = true
            break
          }
        }

        const other = entries[placed.get(c)!].path
        reject(at, c, cycle
          ? `cycle: child index ${c} is ${other}, this directory or one of its ancestors`
          : `slot ${c} is already in the tree as ${other} (the C format has no hard links)`)
        continue
      }

      if (accounted.has(c)) {
        reject(at, c, `slot ${c} was already reached below an entry that is left out`)
        continue
      }

      if (typeof rawName === 'string') {
        reject(at, c, rawName)
        continue
      }

      const problem = nameProblem(rawName)
      if (problem !== undefined) {
        reject(at, c, problem)
        continue
      }

      const key = rawName.toString('latin1')
      if (seenNames.has(key)) {
        reject(at, c, `duplicate name in ${d.path} (also slot ${seenNames.get(key)})`)
        continue
      }

      const mode = modeOf(c)
      const type = mode & S_IFMT
      if (type !== S_IFDIR && type !== S_IFREG) {
        reject(at, c, `unsupported file type (mode 0o${mode.toString(8)}; the C format has only directories and regular files)`)
        continue
      }

      if (inodes.has(ino)) {
        reject(at, c, `inode ${ino} is already used by ${entries[inodes.get(ino)!].path}`)
        continue
      }

      const parentField = nodes.readUInt32LE(slot(c) + N.parent)
      if (parentField !== d.slot) notes.push(`${at} (slot ${c}): its parent field says slot ${parentField}, but slot ${d.slot} lists it`)
      const size64 = nodes.readBigUInt64LE(slot(c) + N.size)
      const mtime = nodes.readUInt32LE(slot(c) + N.mtime)
      if (type === S_IFDIR) {
        if (numChildrenOf(c) > C_MAX_CHILDREN) {
          reject(at, c, `num_children is ${numChildrenOf(c)}, at most ${C_MAX_CHILDREN}`)
          continue
        }

        if (size64 !== 0n) notes.push(`${at} (slot ${c}): a directory with size ${size64}, ignored`)
        const index = entries.length
        entries.push({path: at, names: [...d.names, Buffer.from(rawName)], parent: dirEntry, type: 'dir', mode: mode & 0o7777, size: 0, mtime, inode: ino, slot: c})
        placed.set(c, index)
        accounted.add(c)
        inodes.set(ino, index)
        seenNames.set(key, c)
        children.push(index)
        continue
      }

      // A regular file.
      if (size64 > BigInt(FILE_SIZE_MAX)) {
        reject(at, c, `size ${size64} is larger than the largest razorfs file (2^44 bytes)`)
        continue
      }

      if (numChildrenOf(c) !== 0) notes.push(`${at} (slot ${c}): a regular file with num_children=${numChildrenOf(c)}: its child indices are ignored`)
      const size = Number(size64)
      const contentName = contentFiles.get(ino)
      let content: SourceEntry['content']
      let sha256: string
      try {
        let plan: ContentPlan | undefined
        if (contentName !== undefined) {
          const fd = openNoFollow(path.join(dir, contentName))
          try {
            plan = checkContent(path.join(dir, contentName), ino, fd).plan
          } finally {
            fs.closeSync(fd)
          }
        } else if (size > 0) {
          throw new ContentProblem(`content file ${layout.contentPrefix}${ino} is missing (the file has size ${size})`)
        }

        const decoded = plan?.decodedBytes ?? 0
        if (size > decoded && size > (plan?.bufferSize ?? 0)) {
          throw new ContentProblem(`size ${size} is larger than its content (${decoded} bytes) and than its buffer (${plan?.bufferSize ?? 0} bytes)`)
        }

        sha256 = streamContent(plan, ino, size, piece => opts.onBytes?.(piece.length), (_pos, length) => opts.onBytes?.(length))
        if (plan !== undefined) {
          content = {file: contentName!, compressed: plan.compressed, payloadBytes: plan.payloadBytes, decodedBytes: plan.decodedBytes, bufferSize: plan.bufferSize}
          if (plan.decodedBytes > size) notes.push(`${at}: content holds ${plan.decodedBytes} bytes, the file's size is ${size}: cut to ${size}`)
          if (plan.decodedBytes < size) notes.push(`${at}: content holds ${plan.decodedBytes} bytes, the file's size is ${size}: zero-extended`)
        }
      } catch (error) {
        if (!(error instanceof ContentProblem)) throw error
        if (contentName !== undefined) unreferenced.delete(ino)
        reject(at, c, error.message)
        continue
      }

      unreferenced.delete(ino)
      const index = entries.length
      entries.push({path: at, names: [...d.names, Buffer.from(rawName)], parent: dirEntry, type: 'file', mode: mode & 0o7777, size, mtime, inode: ino, slot: c, content, sha256})
      placed.set(c, index)
      accounted.add(c)
      inodes.set(ino, index)
      seenNames.set(key, c)
    }

    // Depth first, children in the order the directory lists them.
    for (let j = children.length - 1; j >= 0; j--) stack.push(children[j])
  }

  // Directories own no content files.
  for (const e of entries) {
    if (e.type === 'dir' && unreferenced.has(e.inode)) {
      notes.push(`${contentFiles.get(e.inode)}: content file of a directory (${e.path}), ignored`)
      unreferenced.delete(e.inode)
    }
  }

  const unreachable: Source['unreachable'] = []
  for (let i = 0; i < capacity; i++) {
    if (inodeOf(i) === 0 || accounted.has(i)) continue
    const raw = decodeName(strings.buf, layout, nodes.readUInt32LE(slot(i) + N.nameOffset))
    unreachable.push({slot: i, inode: inodeOf(i), name: typeof raw === 'string' ? '?' : showName(raw, nameProblem(raw) === undefined), type: typeName(modeOf(i))})
    unreferenced.delete(inodeOf(i))
  }

  // Content files of nodes left out below a bad entry are accounted for by that entry.
  for (const i of accounted) if (!placed.has(i)) unreferenced.delete(inodeOf(i))

  const files = [nodesFile, stringsFile, ...[...contentFiles.values()].sort().map(name => path.join(dir, name))]
  const totals = {dirs: 0, files: 0, bytes: 0}
  for (const e of entries) {
    if (e.type === 'dir') totals.dirs++
    else {
      totals.files++
      totals.bytes += e.size
    }
  }

  return {
    dir, layout, nodesFile, stringsFile, header, strings: {used: strings.used, bytes: strings.buf.length}, liveSlots,
    entries, bad, notes, unreachable,
    unreferenced: [...unreferenced].sort((a, b) => a - b).map(ino => contentFiles.get(ino)!),
    files, totals,
  }
}
