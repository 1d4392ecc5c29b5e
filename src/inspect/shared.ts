/**
 * dump, stats and `init --from` on a volume shared through PostgreSQL (`--meta URL`). The image's
 * versions (index.ts) read its records; these go through the Volume interface (names, attributes,
 * contents, xattrs) and a few figures PgVolume answers in SQL, and write the same output: the same
 * listing lines and archive members, and JSON of the same shape, with null for what a shared
 * volume does not have (record slots, string units, the log, the checkpoint).
 *
 * A walk holds one directory listing per level (readdir of a shared volume comes whole, in name
 * order), so memory grows with the largest directory on the path, not with the volume.
 */
import fs from 'node:fs'

import {Chalk} from 'chalk'
import Table from 'cli-table3'

import type {Progress} from '../progress.js'
import {type Attr, type DirEntry, errnoText, FsError, ImageError, ROOT_INO} from '../storage/index.js'
import {S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK} from '../storage/format.js'
import {PgVolume} from '../storage/pg/volume.js'
import type {Volume} from '../storage/volume.js'
import {humanBytes} from '../units.js'
import {type ArchiveItem, type ArchiveSource, writeArchive} from './archive.js'
import type {InodeCounts} from './stats.js'
import {COLUMNS, DumpError, type DumpSummary, nodeLine} from './dump.js'
import {type ArchiveResult, archiveTo, type DumpRequest, openArchive} from './index.js'
import {FdWriter, OutputClosed} from './output.js'
import {Restorer, type RestoreSummary} from './restore.js'
import {TarError} from './tar/format.js'
import {TarReader} from './tar/reader.js'
import {bytesField, escapeName, modeString, putBytes, thousands, typeName} from './text.js'
import {joinPath} from './walk.js'

const TOP = 5

function withShared<T>(url: string, fn: (volume: PgVolume) => T): T {
  const volume = PgVolume.open(url, {readOnly: true})
  try {
    return fn(volume)
  } finally {
    volume.close()
  }
}

/** One name of a walk over a volume. */
interface VolumeItem {
  path: Buffer
  name: Buffer
  ino: number
  depth: number
  attr: Attr
  /** The directory that holds the name (0 for the start). */
  parent: number
}

interface Start {
  ino: number
  path: Buffer
  attr: Attr
}

const isDir = (attr: Attr): boolean => (attr.mode & S_IFMT) === S_IFDIR

/** Where a dump starts: --inode N, else the path (symlinks not followed), else the root; as resolveStart does for an image. */
function startOf(volume: Volume, pathArg: string | undefined, inode: number | undefined): Start {
  if (inode !== undefined) {
    let attr: Attr
    try {
      attr = volume.getattr(inode)
    } catch (error) {
      if (error instanceof FsError && error.code === 'ENOENT') throw new DumpError('ENOENT', `no inode ${inode} in the volume`)
      throw error
    }

    return {ino: inode, attr, path: isDir(attr) ? dirPath(volume, inode) : Buffer.from(`<inode ${inode}>`)}
  }

  let ino = ROOT_INO
  const parts = (pathArg ?? '/').split('/').filter(p => p !== '')
  for (const [i, part] of parts.entries()) {
    const mode = volume.getattr(ino).mode & S_IFMT
    if (mode !== S_IFDIR) {
      throw new DumpError(
        'ENOTDIR',
        `not a directory in the volume: /${parts.slice(0, i).join('/')}${mode === S_IFLNK ? ' (a symlink: dump does not follow symlinks)' : ''}`,
      )
    }

    const next = volume.lookup(ino, part)
    if (next === 0) throw new DumpError('ENOENT', `no such file or directory in the volume: /${parts.slice(0, i + 1).join('/')}`)
    ino = next
  }

  const attr = volume.getattr(ino)
  return {ino, attr, path: isDir(attr) ? dirPath(volume, ino) : Buffer.from(`/${parts.join('/')}`)}
}

/** The path of a directory, from its '..' chain and a search of each parent's entries. */
function dirPath(volume: Volume, ino: number): Buffer {
  const names: Buffer[] = []
  for (let cur = ino, depth = 0; cur !== ROOT_INO; depth++) {
    const parent = volume.lookup(cur, '..')
    const found = depth < 4096 ? [...volume.readdir(parent)].find(e => e.ino === cur) : undefined
    if (found === undefined) return Buffer.from(`<directory inode ${ino}>`)
    names.push(found.name)
    cur = parent
  }

  return names.length === 0 ? Buffer.from('/') : Buffer.concat(names.reverse().flatMap(n => [Buffer.from('/'), n]))
}

/** Pre-order: each name, then everything below it (directories in name order). */
function* preorder(volume: Volume, start: Start): Generator<VolumeItem> {
  const startName = start.path.length === 1 ? start.path : start.path.subarray(start.path.lastIndexOf(0x2f) + 1)
  yield {path: start.path, name: startName, ino: start.ino, depth: 0, attr: start.attr, parent: 0}
  if (!isDir(start.attr)) return
  const stack: Array<{ino: number; path: Buffer; entries: DirEntry[]; i: number}> = [
    {ino: start.ino, path: start.path, entries: [...volume.readdir(start.ino)], i: 0},
  ]
  while (stack.length > 0) {
    const top = stack.at(-1)!
    if (top.i >= top.entries.length) {
      stack.pop()
      continue
    }

    const e = top.entries[top.i++]
    const attr = volume.getattr(e.ino)
    const item = {path: joinPath(top.path, e.name), name: e.name, ino: e.ino, depth: stack.length, attr, parent: top.ino}
    yield item
    if (isDir(attr)) stack.push({ino: e.ino, path: item.path, entries: [...volume.readdir(e.ino)], i: 0})
  }
}

function xattrsOf(volume: Volume, ino: number): Array<{name: Buffer; value: Buffer}> {
  return volume.listxattr(ino).map(name => ({name: Buffer.from(name), value: volume.getxattr(ino, name)}))
}

function targetOf(volume: Volume, attr: Attr): Buffer {
  return (attr.mode & S_IFMT) === S_IFLNK ? volume.readlink(attr.ino) : Buffer.alloc(0)
}

/**
 * One JSON object for a name: the keys of the image's (dump.ts itemJson), the inode's fields under
 * their docs/FORMAT.md names; null for what a shared volume does not have.
 */
function itemJson(volume: Volume, item: VolumeItem): Record<string, unknown> {
  const a = item.attr
  const out: Record<string, unknown> = {kind: 'inode'}
  putBytes(out, 'path', item.path)
  putBytes(out, 'name', item.name)
  out.depth = item.depth
  out.dirent = null
  out.type = typeName(a.mode)
  out.modeString = modeString(a.mode)
  Object.assign(out, {
    ino: a.ino,
    slot: null,
    gen: null,
    flags: null,
    mode: a.mode,
    nlink: a.nlink,
    uid: a.uid,
    gid: a.gid,
    size: a.size,
    atimeSec: a.atime.sec,
    atimeNsec: a.atime.nsec,
    mtimeSec: a.mtime.sec,
    mtimeNsec: a.mtime.nsec,
    ctimeSec: a.ctime.sec,
    ctimeNsec: a.ctime.nsec,
    parent: isDir(a) ? (item.parent === 0 ? volume.lookup(a.ino, '..') : item.parent) : null,
    rdev: a.rdev,
    dataId: null,
    xattr: null,
    target: null,
    dirHead: null,
    link: null,
  })
  if ((a.mode & S_IFMT) === S_IFLNK) putBytes(out, 'symlink', volume.readlink(a.ino))
  const xattrs = xattrsOf(volume, a.ino)
  if (xattrs.length > 0) {
    out.xattrs = xattrs.map(x => {
      const o: Record<string, unknown> = {}
      putBytes(o, 'name', x.name)
      putBytes(o, 'value', x.value)
      return o
    })
  }

  return out
}

/** The listing (ls -lR, or JSON lines) of a shared volume on stdout (no --headers: a shared volume has no image files). */
export function dumpShared(url: string, req: DumpRequest, fd = 1): DumpSummary {
  return withShared(url, volume => {
    const start = startOf(volume, req.path, req.inode)
    const out = new FdWriter(fd)
    const summary: DumpSummary = {items: 0, directories: 0}
    try {
      if (req.json) {
        for (const item of preorder(volume, start)) {
          out.write(`${JSON.stringify(itemJson(volume, item))}\n`)
          summary.items++
        }
      } else {
        listing(volume, start, out, summary)
      }

      out.flush()
      return summary
    } catch (error) {
      if (error instanceof OutputClosed) return {items: 0, directories: 0}
      throw error
    }
  })
}

/** `ls -lR` order, with the image's columns: each directory's entries, then its subdirectories the same way. */
function listing(volume: Volume, start: Start, out: FdWriter, summary: DumpSummary): void {
  const line = (attr: Attr, shown: Buffer, extra: boolean): string =>
    nodeLine(attr, shown, () => targetOf(volume, attr), extra ? {xattrs: xattrsOf(volume, attr.ino), problems: []} : undefined)
  if (!isDir(start.attr)) {
    out.write(`${COLUMNS}\n`)
    out.write(line(start.attr, start.path, true))
    summary.items++
    return
  }

  const dirs: Array<{ino: number; path: Buffer; attr: Attr}> = [{ino: start.ino, path: start.path, attr: start.attr}]
  let first = true
  while (dirs.length > 0) {
    const dir = dirs.pop()!
    out.write(`${first ? '' : '\n'}${escapeName(dir.path)}:\n${COLUMNS}\n`)
    first = false
    summary.directories++
    out.write(line(dir.attr, Buffer.from('.'), true))
    out.write(line(volume.getattr(volume.lookup(dir.ino, '..')), Buffer.from('..'), false))
    const subdirs: Array<{ino: number; path: Buffer; attr: Attr}> = []
    for (const e of volume.readdir(dir.ino)) {
      const attr = volume.getattr(e.ino)
      out.write(line(attr, e.name, true))
      summary.items++
      if (isDir(attr)) subdirs.push({ino: e.ino, path: joinPath(dir.path, e.name), attr})
    }

    // Depth first, in name order: the first subdirectory is popped first.
    dirs.push(...subdirs.reverse())
  }
}

/** `razorfs dump --archive FILE --meta URL`: as archiveImage, from a shared volume. */
export function archiveShared(
  url: string,
  file: string,
  req: {path?: string; inode?: number},
  warn: (message: string) => void,
  progress?: Progress,
): ArchiveResult {
  return withShared(url, volume => {
    const start = startOf(volume, req.path, req.inode)
    if (start.ino === ROOT_INO) {
      const fs = volume.statfs()
      progress?.phase('archiving', fs.files - fs.ffree, 'items')
    }
    function* items(): Generator<ArchiveItem> {
      for (const item of preorder(volume, start)) {
        yield {
          path: item.path,
          name: item.name,
          depth: item.depth,
          node: item.attr,
          xattrs: () => xattrsOf(volume, item.ino),
          target: () => targetOf(volume, item.attr),
        }
      }
    }

    const source: ArchiveSource = {items: items(), dirStart: isDir(start.attr), read: (ino, buf, pos) => volume.read(ino, buf, pos)}
    return archiveTo(file, progress, out => writeArchive(source, start.path, out, warn, progress))
  })
}

/** `razorfs stats --meta URL`: the keys of the image's report; null where a shared volume has no such thing. */
export interface SharedStats {
  dataDir: null
  meta: string
  schema: string
  uuid: string
  formatVersion: number
  inodes: {used: number; capacity: null} & InodeCounts
  bytes: {
    apparent: number
    /** What the blocks table takes on the server (rows, TOAST, index). */
    stored: number
    /** Regular files with at least one block. */
    contentFiles: number
  }
  names: {entries: number; interned: null; dedupRatio: null; heapBytes: null}
  reclaimable: null
  log: null
  checkpoint: null
  clean: null
  /** Other clients with a live session: mounts, and commands running now. */
  live: {locked: boolean; pid: null; sessions: number}
  largestDirectories: Array<{ino: number; entries: number; path?: string; pathBase64?: string}>
  /** The volume's tables as files are the image's: what they take on the server. */
  files: Array<{name: string; bytes: number}>
}

const TYPE_KEYS: Record<number, keyof SharedStats['inodes']> = {
  [S_IFREG]: 'files',
  [S_IFDIR]: 'directories',
  [S_IFLNK]: 'symlinks',
  [S_IFIFO]: 'fifos',
  [S_IFSOCK]: 'sockets',
  [S_IFCHR]: 'charDevices',
  [S_IFBLK]: 'blockDevices',
}

export function sharedStats(url: string): SharedStats {
  return withShared(url, volume => {
    const f = volume.figures(TOP)
    const inodes: SharedStats['inodes'] = {
      used: 0,
      capacity: null,
      files: 0,
      directories: 0,
      symlinks: 0,
      fifos: 0,
      sockets: 0,
      charDevices: 0,
      blockDevices: 0,
      orphans: 0,
    }
    let apparent = 0
    for (const t of f.types) {
      inodes.used += t.count
      inodes.orphans += t.orphans
      const key = TYPE_KEYS[t.type]
      if (key !== undefined) (inodes[key] as number) += t.count
      if (t.type === S_IFREG) apparent += t.bytes
    }

    return {
      dataDir: null,
      meta: volume.meta.url,
      schema: volume.meta.schema,
      uuid: volume.meta.uuid,
      formatVersion: volume.meta.formatVersion,
      inodes,
      bytes: {apparent, stored: f.blockBytes, contentFiles: f.filesWithBlocks},
      names: {entries: f.entries, interned: null, dedupRatio: null, heapBytes: null},
      reclaimable: null,
      log: null,
      checkpoint: null,
      clean: null,
      live: {locked: f.otherSessions > 0, pid: null, sessions: f.otherSessions},
      largestDirectories: f.largest.map(d => ({ino: d.ino, entries: d.entries, ...bytesField('path', dirPath(volume, d.ino))})),
      files: [{name: `${volume.meta.schema} (all tables)`, bytes: f.tableBytes}],
    }
  })
}

/** The human report of a shared volume: the image's table (stats.ts renderStats), with the rows that apply. */
export function renderSharedStats(s: SharedStats, colour: boolean): string {
  const c = new Chalk({level: colour ? 1 : 0})
  const table = new Table({style: {head: [], border: [], compact: true, 'padding-left': 1, 'padding-right': 1}, colAligns: ['left', 'right', 'left']})
  const section = (title: string): void => void table.push([{colSpan: 3, content: c.bold.cyan(title)}])
  const row = (label: string, value: string, note = ''): void => void table.push([label, value, note])
  const i = s.inodes
  section('inodes')
  row('used', thousands(i.used))
  row('regular files', thousands(i.files))
  row('directories', thousands(i.directories))
  row('symlinks', thousands(i.symlinks))
  row(
    'others',
    thousands(i.fifos + i.sockets + i.charDevices + i.blockDevices),
    `fifos ${i.fifos}, sockets ${i.sockets}, char devices ${i.charDevices}, block devices ${i.blockDevices}`,
  )
  if (i.orphans > 0) row('orphans', c.yellow(thousands(i.orphans)), 'unlinked while open')
  section('contents')
  row('apparent', humanBytes(s.bytes.apparent), `${thousands(s.bytes.apparent)} bytes: sum of file sizes`)
  row('stored', humanBytes(s.bytes.stored), `blocks table on the server; ${thousands(s.bytes.contentFiles)} files with blocks`)
  section('names')
  row('entries', thousands(s.names.entries))
  section('server')
  row('tables', humanBytes(s.files[0].bytes), `schema ${s.schema}`)
  row('sessions', thousands(s.live.sessions), s.live.locked ? c.yellow('live: other clients have the volume open') : 'no other client')
  if (s.largestDirectories.length > 0) {
    section(`largest directories (top ${TOP})`)
    for (const [n, d] of s.largestDirectories.entries()) {
      const p = escapeName(d.path === undefined ? Buffer.from(d.pathBase64!, 'base64') : Buffer.from(d.path))
      row(`#${n + 1}`, thousands(d.entries), `${p.length > 64 ? `${p.slice(0, 30)}...${p.slice(-31)}` : p} (inode ${d.ino})`)
    }
  }

  return `razorfs volume ${c.bold(s.uuid)} (format ${s.formatVersion})\nmeta ${s.meta}\n${table.toString()}\n`
}

/** `init --from --meta`: the keys of the image's RestoreResult (null where a shared volume has no such thing), with where the volume is. */
export interface SharedRestoreResult {
  dir: null
  meta: string
  schema: string
  uuid: string
  formatVersion: number
  createdMs: number
  mountedMs: null
  readOnly: false
  recovery: null
  inodes: {used: number; capacity: null}
  files: null
  restored: RestoreSummary & {archive: string}
  notes: string[]
}

/**
 * `razorfs init --from FILE --meta URL`: make a new volume at the URL and fill it from the archive.
 * That the input starts with a tar header is checked before the volume is made; an archive found
 * damaged later leaves the volume as far as it was filled, and the error says so (init --force
 * --meta makes it again).
 */
export function restoreShared(url: string, file: string, opts: {force: boolean; progress?: Progress}): SharedRestoreResult {
  const fromStdin = file === '-'
  const name = fromStdin ? 'standard input' : file
  let fd: number
  try {
    fd = fromStdin ? 0 : openArchive(file)
  } catch (error) {
    if (error instanceof TarError) throw new TarError(`${name}: ${error.message}; no volume was made`)
    throw error
  }

  try {
    const reader = new TarReader(fd)
    try {
      reader.checkStart()
    } catch (error) {
      if (error instanceof TarError) throw new TarError(`${name}: ${error.message}; no volume was made`, error.offset)
      throw error
    }

    const volume = PgVolume.create(url, {force: opts.force})
    let restored: RestoreSummary
    let used: number
    try {
      const archive = fs.fstatSync(fd)
      opts.progress?.phase('restoring', archive.isFile() ? archive.size : 0)
      const target = {volume, transaction: <T>(fn: () => T): T => volume.transaction(fn), setCtime: volume.setCtime.bind(volume)}
      restored = new Restorer(target, reader, opts.progress).run()
      const counts = volume.statfs()
      used = counts.files - counts.ffree
      opts.progress?.finish()
    } catch (error) {
      const partly = `the volume at ${volume.meta.url} is left partly filled (razorfs init --force --meta makes it again)`
      if (error instanceof TarError) throw new TarError(`${name}: ${error.message}; ${partly}`, error.offset)
      if (error instanceof ImageError) throw error
      throw new ImageError('RZ_IO', `cannot fill the volume: ${errnoText(error)}; ${partly}`)
    } finally {
      volume.close()
    }

    const {meta} = volume
    return {
      dir: null,
      meta: meta.url,
      schema: meta.schema,
      uuid: meta.uuid,
      formatVersion: meta.formatVersion,
      createdMs: meta.createdMs,
      mountedMs: null,
      readOnly: false,
      recovery: null,
      inodes: {used, capacity: null},
      files: null,
      restored: {archive: fromStdin ? '-' : fs.realpathSync(file), ...restored},
      notes: [],
    }
  } finally {
    if (!fromStdin) fs.closeSync(fd)
  }
}

/** `razorfs gc --meta URL`: what gc does on a shared volume (nothing to rebuild), with the figures to say so. */
export interface SharedGcReport {
  meta: string
  unchanged: true
  /** What the volume's tables take on the server. */
  tableBytes: number
  note: string
}

export function sharedGc(url: string): SharedGcReport {
  return withShared(url, volume => {
    const {tableBytes} = volume.figures(0)
    return {
      meta: volume.meta.url,
      unchanged: true,
      tableBytes,
      note: `freed records are deleted rows, whose space PostgreSQL's autovacuum reuses (its tables take ${humanBytes(tableBytes)})`,
    }
  })
}
