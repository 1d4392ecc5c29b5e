/**
 * Corruption fuzzing of fsck: a small populated image, random damage (byte flips, truncation,
 * zeroed pages, swapped records) to one of its files, then fsck through the library: -n must not
 * write, -y must repair, a second -y must find nothing, and the image must then open and read.
 * Used by fuzz.test.ts (in a worker thread, so that a hang can be cut off) and `npm run test:fuzz`.
 */
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import v8 from 'node:v8'
import vm from 'node:vm'

import {DATA_OFFSET, DIRENT, INODE, STRING_UNIT, WAL_HEADER} from '../../../src/storage/format.js'
import {Image, ROOT_INO} from '../../../src/storage/index.js'
import {type FsckReport, runFsck} from '../../../src/fsck/run.js'

export const FILES = ['nodes.dat', 'entries.dat', 'entries.idx', 'strings.dat', 'strings.idx', 'wal.log']
const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_IFLNK = 0o120000

v8.setFlagsFromString('--expose_gc')
const gc = vm.runInNewContext('gc') as () => void

/**
 * Collect garbage and let finalizers run: a mapping is unmapped only when its Buffer is collected
 * and its N-API finalizer has run on a later turn of the event loop (mmap-io has no munmap), so
 * thousands of opens in one synchronous loop run out of mappings (vm.max_map_count) without it.
 */
export async function collect(): Promise<void> {
  gc()
  await new Promise(resolve => setImmediate(resolve))
  await new Promise(resolve => setTimeout(resolve, 1))
}

/** A deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * A small image with every kind of record: nested directories, files with contents, hard links,
 * symlinks, xattrs, a FIFO and a device, long names (past the 30 inline bytes), freed inodes,
 * entries and strings (on the free lists), and, when `crash`, transactions only in the WAL and an
 * orphan (a file unlinked while open).
 */
export function buildBase(dir: string, crash: boolean, grown = false): void {
  fs.mkdirSync(dir, {recursive: true})
  const img = Image.create(dir, {capacity: grown ? 512 : 64})
  const u = {uid: 1000, gid: 1000}
  const a = img.mknod(ROOT_INO, 'alpha', {mode: S_IFDIR | 0o755, ...u})
  const b = img.mknod(a.ino, 'beta', {mode: S_IFDIR | 0o700, ...u})
  const long = 'a-name-that-is-longer-than-thirty-bytes-so-not-inline'
  const f1 = img.mknod(ROOT_INO, 'hello.txt', {mode: S_IFREG | 0o644, ...u})
  img.write(f1.ino, Buffer.from('hello world\n'), 0)
  const f2 = img.mknod(b.ino, long, {mode: S_IFREG | 0o600, ...u})
  img.write(f2.ino, Buffer.alloc(5000, 7), 0)
  img.link(f1.ino, b.ino, 'hard-link')
  img.mknod(a.ino, 'sym', {mode: S_IFLNK | 0o777, ...u, target: '../hello.txt'})
  img.mknod(a.ino, 'sym-long', {mode: S_IFLNK | 0o777, ...u, target: `/${long}/${long}`})
  img.mknod(ROOT_INO, 'fifo', {mode: 0o010644, ...u})
  img.mknod(ROOT_INO, 'dev', {mode: 0o020644, ...u, rdev: 0x0501})
  img.setxattr(f1.ino, 'user.comment', Buffer.from('a comment'))
  img.setxattr(a.ino, 'user.big', Buffer.alloc(300, 0x41))
  for (let i = 0; i < 12; i++) {
    const f = img.mknod(b.ino, `file-${i}`, {mode: S_IFREG | 0o644, ...u})
    if (i % 3 === 0) img.write(f.ino, Buffer.from(`contents ${i}`), 0)
  }

  for (let i = 0; i < 12; i += 2) img.unlink(b.ino, `file-${i}`)
  const gone = img.mknod(a.ino, 'gone', {mode: S_IFDIR | 0o755, ...u})
  img.mknod(gone.ino, 'x', {mode: S_IFREG | 0o644, ...u})
  img.unlink(gone.ino, 'x')
  img.rmdir(a.ino, 'gone')
  img.rename(ROOT_INO, 'fifo', a.ino, 'fifo-moved')
  if (grown) {
    // Enough entries and names for both indexes to split and the tables to span pages.
    for (let d = 0; d < 12; d++) {
      const sub = img.mknod(d % 2 ? b.ino : ROOT_INO, `dir-${d}`, {mode: S_IFDIR | 0o755, ...u})
      for (let i = 0; i < 30; i++) {
        const f = img.mknod(sub.ino, `f${i}-${'n'.repeat(i)}`, {mode: S_IFREG | 0o644, ...u})
        if (i % 7 === 0) img.write(f.ino, Buffer.from(`data ${d} ${i}`), 0)
        if (i % 5 === 0) img.setxattr(f.ino, 'user.i', Buffer.from(String(i)))
      }

      for (let i = 0; i < 30; i += 4) img.unlink(sub.ino, `f${i}-${'n'.repeat(i)}`)
    }
  }

  if (!crash) {
    img.close()
    return
  }

  img.checkpoint()
  const open = img.mknod(ROOT_INO, 'open-unlinked', {mode: S_IFREG | 0o644, ...u})
  img.write(open.ino, Buffer.from('still open'), 0)
  img.retain(open.ino)
  img.unlink(ROOT_INO, 'open-unlinked')
  img.mknod(b.ino, 'after-checkpoint', {mode: S_IFREG | 0o644, ...u})
  img.setxattr(b.ino, 'user.late', Buffer.from('late'))
  img.abandon()
}

export function copyDir(from: string, to: string): void {
  fs.rmSync(to, {recursive: true, force: true})
  fs.cpSync(from, to, {recursive: true})
}

export function snapshot(dir: string): string {
  const hash = createHash('sha256')
  const walk = (d: string): void => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name)
      const st = fs.statSync(p)
      if (st.isDirectory()) walk(p)
      else if (name === 'lock') continue
      // A file too big to read whole (the 2 GiB case) by its size and modification time.
      else if (st.size > 64 << 20) hash.update(`${p}\0${st.size}\0${st.mtimeMs}`)
      else hash.update(`${p}\0`).update(fs.readFileSync(p))
    }
  }

  walk(dir)
  return hash.digest('hex')
}

export interface Damage {
  kind: 'flip' | 'truncate' | 'zero-page' | 'swap'
  file: string
  /** A byte of a header (0..255 of a mapped file, 0..63 of the WAL) changed. */
  header: boolean
  what: string
}

/** Damage the image in `dir`: one file, or (one case in six) two. */
export function corrupt(dir: string, random: () => number): Damage {
  const first = corruptOne(dir, random)
  if (random() >= 1 / 6) return first
  const second = corruptOne(dir, random)
  return {kind: first.kind, file: `${first.file}+${second.file}`, header: first.header || second.header, what: `${first.what}; ${second.file}: ${second.what}`}
}

function corruptOne(dir: string, random: () => number): Damage {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]
  const file = pick(FILES)
  const p = path.join(dir, file)
  const bytes = fs.readFileSync(p)
  const wal = file === 'wal.log'
  const headerSize = wal ? WAL_HEADER.SIZE : 256
  const size = bytes.length
  let kind = pick(['flip', 'flip', 'flip', 'truncate', 'zero-page', 'swap'] as const)
  // A file already cut short (by a first damage) has no records to swap or pages to zero.
  if (size < DATA_OFFSET + 1024 && kind !== 'truncate') kind = 'flip'
  if (size === 0) return {kind: 'truncate', file, header: false, what: 'already empty'}
  // Where the records that matter are: the header, page 1, and the first records.
  const hot = (): number => {
    const r = random()
    if (wal) return Math.floor(random() * Math.min(size, 4096))
    if (r < 0.25) return Math.floor(random() * headerSize)
    if (r < 0.4) return 4096 + Math.floor(random() * 128)
    const span = r < 0.85 ? Math.min(size - DATA_OFFSET, 4096) : size - DATA_OFFSET
    return DATA_OFFSET + Math.floor(random() * Math.max(1, span))
  }

  let header = false
  let what = ''
  if (kind === 'flip') {
    const n = 1 + Math.floor(random() * 4)
    const at: number[] = []
    for (let i = 0; i < n; i++) {
      const off = Math.min(size - 1, hot())
      bytes[off] ^= 1 + Math.floor(random() * 255)
      at.push(off)
      if (off < headerSize) header = true
    }

    what = `flip at ${at.join(',')}`
    fs.writeFileSync(p, bytes)
  } else if (kind === 'truncate') {
    const len = random() < 0.2 ? Math.floor(random() * (wal ? 80 : 8200)) : Math.floor(random() * size)
    fs.truncateSync(p, len)
    header = len < headerSize
    what = `truncate to ${len}`
  } else if (kind === 'zero-page') {
    const pages = Math.ceil(size / 4096)
    const page = random() < 0.5 ? Math.min(pages - 1, Math.floor(random() * 3)) : Math.floor(random() * pages)
    const start = page * 4096
    const before = bytes.subarray(start, Math.min(size, start + headerSize))
    header = page === 0 && before.some(b => b !== 0)
    bytes.fill(0, start, Math.min(size, start + 4096))
    what = `zero page ${page}`
    fs.writeFileSync(p, bytes)
  } else {
    const rs = file === 'nodes.dat' ? INODE.SIZE : file === 'entries.dat' ? DIRENT.SIZE : file === 'strings.dat' ? STRING_UNIT * 2 : 4
    const base = wal ? WAL_HEADER.SIZE : DATA_OFFSET
    const count = Math.max(2, Math.floor(Math.min(size - base, 4096) / rs))
    const i = Math.floor(random() * count)
    const j = Math.floor(random() * count)
    const a = Buffer.from(bytes.subarray(base + i * rs, base + (i + 1) * rs))
    bytes.copy(bytes, base + i * rs, base + j * rs, base + (j + 1) * rs)
    a.copy(bytes, base + j * rs)
    what = `swap records ${i} and ${j} of ${rs} bytes`
    fs.writeFileSync(p, bytes.subarray(0, size))
  }

  return {kind, file, header, what}
}

/** Open the image read-write and read everything in it; returns the number of inodes seen. */
export function readAll(dir: string): number {
  const img = Image.open(dir)
  try {
    let n = 0
    const buf = Buffer.alloc(65536)
    const walk = (ino: number, depth: number): void => {
      if (depth > 64) throw new Error('directory tree deeper than 64')
      for (const e of img.readdir(ino)) {
        n++
        const attr = img.getattr(e.ino)
        img.listxattr(e.ino)
        if ((attr.mode & 0o170000) === S_IFDIR) walk(e.ino, depth + 1)
        else if ((attr.mode & 0o170000) === S_IFLNK) img.readlink(e.ino)
        else if ((attr.mode & 0o170000) === S_IFREG) img.read(e.ino, buf, 0)
      }
    }

    walk(ROOT_INO, 0)
    return n
  } finally {
    img.close()
  }
}

export interface CaseResult {
  damage: Damage
  failure?: string
  first?: FsckReport
}

/** One fuzz case on a copy of `base` in `work`. */
export function runCase(base: string, work: string, seed: number): CaseResult {
  copyDir(base, work)
  const random = rng(seed)
  const damage = corrupt(work, random)
  const fail = (failure: string, first?: FsckReport): CaseResult => ({damage, failure, first})
  const deadlineMs = Date.now() + 30_000

  const before = snapshot(work)
  const dry = runFsck({dir: work, mode: 'no', force: true, deadlineMs})
  if (dry.exitCode & 8) return fail(`fsck -n: operational error: ${dry.error} ${dry.stack ?? ''}`, dry)
  if (snapshot(work) !== before) return fail('fsck -n changed the image')
  if (damage.header && dry.problems.length === 0) return fail('header damage not detected by -n', dry)

  const first = runFsck({dir: work, mode: 'yes', force: true, deadlineMs})
  if (first.exitCode & 8) return fail(`fsck -y: operational error: ${first.error} ${first.stack ?? ''}`, first)
  if (damage.header && first.problems.length === 0) return fail('header damage not detected by -y', first)
  if (first.exitCode & 4)
    return fail(
      `fsck -y left problems: ${first.problems
        .filter(p => !p.fixed)
        .map(p => p.message)
        .join(' | ')}`,
      first,
    )
  const second = runFsck({dir: work, mode: 'yes', force: true, deadlineMs})
  if (second.exitCode !== 0 || second.problems.length > 0) {
    return fail(`second fsck -y exit ${second.exitCode}: ${second.error ?? second.problems.map(p => `${p.id}: ${p.message}`).join(' | ')}`, first)
  }

  try {
    readAll(work)
  } catch (error) {
    return fail(`the repaired image does not open and read: ${(error as Error).stack}`, first)
  }

  const third = runFsck({dir: work, mode: 'no', force: true, deadlineMs})
  if (third.exitCode !== 0 || third.problems.length > 0) {
    return fail(`fsck -n after a read-write open exit ${third.exitCode}: ${third.error ?? third.problems.map(p => `${p.id}: ${p.message}`).join(' | ')}`, first)
  }

  return {damage, first}
}
