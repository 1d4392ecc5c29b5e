/**
 * `razorfs dump`: a listing of the tree of an image (`ls -lR` / debugfs style, or JSON lines), and
 * its headers (dumpe2fs -h style). Streams: one line is written per name as the walk reaches it,
 * and the walk keeps one frame per directory level (walk.ts), so memory does not grow with the
 * image.
 */
import {FsError, type Image, ROOT_INO, type Timespec} from '../storage/index.js'
import {S_IFBLK, S_IFCHR, S_IFLNK, S_IFMT} from '../storage/format.js'
import {headerReports, headerText} from './headers.js'
import type {FdWriter} from './output.js'
import {type InodeRecord, Records} from './records.js'
import {devMajor, devMinor, escapeName, formatTime, modeString, putBytes, typeName} from './text.js'
import {type TreeItem, listing, preorder} from './walk.js'

export interface DumpStart {
  slot: number
  path: Buffer
}

export class DumpError extends Error {
  readonly code: string

  constructor(code: string, message: string) {
    super(message)
    this.name = 'DumpError'
    this.code = code
  }
}

/**
 * Where a dump starts: `--inode N`, else PATH-IN-IMAGE (from the root; symlinks are not followed,
 * `.` and `..` are), else the root. The path of an inode given by number is found by walking the
 * `parent` fields of directories; a non-directory shows as `<inode N>`.
 */
export function resolveStart(image: Image, records: Records, pathArg: string | undefined, inode: number | undefined): DumpStart {
  if (inode !== undefined) {
    const slot = records.slotOf(inode)
    if (slot === 0) throw new DumpError('ENOENT', `no inode ${inode} in the image (free, or its slot was reused)`)
    return {slot, path: records.isDir(slot) ? dirPath(records, slot) : Buffer.from(`<inode ${inode}>`)}
  }

  let ino = ROOT_INO
  const parts = (pathArg ?? '/').split('/').filter(p => p !== '')
  for (const [i, part] of parts.entries()) {
    const slot = records.slotOf(ino)
    if (!records.isDir(slot)) {
      throw new DumpError(
        'ENOTDIR',
        `not a directory in the image: /${parts.slice(0, i).join('/')}${(records.mode(slot) & S_IFMT) === S_IFLNK ? ' (a symlink: dump does not follow symlinks)' : ''}`,
      )
    }

    let next: number
    try {
      next = image.lookup(ino, part)
    } catch (error) {
      if (error instanceof FsError) throw new DumpError(error.code, `cannot look up /${parts.slice(0, i + 1).join('/')} in the image: ${error.message}`)
      throw error
    }

    if (next === 0) throw new DumpError('ENOENT', `no such file or directory in the image: /${parts.slice(0, i + 1).join('/')}`)
    ino = next
  }

  const slot = records.slotOf(ino)
  // The canonical path (. and .. resolved) of a directory comes from its parent chain.
  return {slot, path: records.isDir(slot) ? dirPath(records, slot) : Buffer.from(`/${parts.join('/')}`)}
}

/** The path of a directory, from its `parent` chain and a search of each parent's entries. */
export function dirPath(records: Records, slot: number): Buffer {
  const names: Buffer[] = []
  let cur = slot
  for (let depth = 0; cur !== 1 && depth < 4096; depth++) {
    const parent = records.parentOf(cur)
    if (!records.isLive(parent) || !records.isDir(parent)) return Buffer.from(`<directory inode ${records.inoOf(slot)}>`)
    let found: Buffer | undefined
    let budget = records.entryHighWater
    for (let d = records.dirHead(parent); d !== 0 && budget-- > 0 && records.entryInRange(d); d = records.entryNext(d)) {
      records.tick()
      if (records.entryChild(d) === cur) {
        found = records.entryName(d)
        break
      }
    }

    if (found === undefined) return Buffer.from(`<directory inode ${records.inoOf(slot)}>`)
    names.push(found)
    cur = parent
  }

  if (cur !== 1) return Buffer.from(`<directory inode ${records.inoOf(slot)}>`)
  return names.length === 0 ? Buffer.from('/') : Buffer.concat(names.reverse().flatMap(n => [Buffer.from('/'), n]))
}

/** One JSON object for a name and its inode (FORMAT.md field names, plus derived fields). */
export function itemJson(records: Records, item: TreeItem): Record<string, unknown> {
  // Built by assignment into one object (putBytes sets `path` or `pathBase64` in place), not by
  // spreading small objects with computed keys, which V8 builds slowly: this runs once per name.
  const out: Record<string, unknown> = {kind: 'inode'}
  putBytes(out, 'path', item.path)
  putBytes(out, 'name', item.name)
  out.depth = item.depth
  out.dirent = item.dirent
  if (item.slot === 0) {
    out.problem = item.problem
    return out
  }

  const r = records.inode(item.slot)
  out.type = typeName(r.mode)
  out.modeString = modeString(r.mode)
  Object.assign(out, r)
  if ((r.mode & S_IFMT) === S_IFLNK) putBytes(out, 'symlink', records.symlinkTarget(item.slot))
  if (r.xattr !== 0) {
    out.xattrs = records.xattrs(item.slot).map(x => {
      const o: Record<string, unknown> = {}
      putBytes(o, 'name', x.name)
      putBytes(o, 'value', x.value)
      return o
    })
  }

  const problems = records.inodeProblems(item.slot)
  if (problems.length > 0) out.problems = problems
  return out
}

export const COLUMNS = `${'inode'.padStart(10)} ${'mode'.padEnd(10)} ${'links'.padStart(5)} ${'uid'.padStart(5)} ${'gid'.padStart(5)} ${'size'.padStart(10)} ${'mtime (UTC)'.padEnd(35)} name`

/** One line of the human listing: `ls -l --full-time -n` columns, inode first. */
function itemLine(records: Records, item: TreeItem, shownName: Buffer, xattrLines: boolean): string {
  if (item.slot === 0) return problemLine(shownName, item.problem)
  const r: InodeRecord = records.inode(item.slot)
  return nodeLine(
    {...r, mtime: {sec: r.mtimeSec, nsec: r.mtimeNsec}},
    shownName,
    () => records.symlinkTarget(item.slot),
    xattrLines ? {xattrs: r.xattr === 0 ? [] : records.xattrs(item.slot), problems: records.inodeProblems(item.slot)} : undefined,
  )
}

/** The line of a name whose inode cannot be shown. */
export function problemLine(shownName: Buffer, problem: string | undefined): string {
  return `${'?'.padStart(10)} ${'?'.padEnd(10)} ${escapeName(shownName)}  (${problem})\n`
}

/** The listing's line of an inode (of an image or a shared volume), with its xattrs and problems on indented lines after it if `extra`. */
export function nodeLine(
  r: {ino: number; mode: number; nlink: number; uid: number; gid: number; rdev: number; size: number; mtime: Timespec},
  shownName: Buffer,
  target: () => Buffer,
  extra?: {xattrs: Array<{name: Buffer; value: Buffer}>; problems: string[]},
): string {
  const type = r.mode & S_IFMT
  const size = type === S_IFCHR || type === S_IFBLK ? `${devMajor(r.rdev)}, ${devMinor(r.rdev)}` : String(r.size)
  let line = `${String(r.ino).padStart(10)} ${modeString(r.mode)} ${String(r.nlink).padStart(5)} ${String(r.uid).padStart(5)} ${String(r.gid).padStart(5)} ${size.padStart(10)} ${formatTime(r.mtime)} ${escapeName(shownName)}`
  if (type === S_IFLNK) line += ` -> ${escapeName(target())}`
  line += '\n'
  for (const x of extra?.xattrs ?? []) line += `${' '.repeat(11)}xattr ${escapeName(x.name)}=${xattrValue(x.value)}\n`
  for (const p of extra?.problems ?? []) line += `${' '.repeat(11)}problem: ${p}\n`
  return line
}

/** An xattr value: escaped text in quotes, or hex if it is mostly binary; long values are cut. */
export function xattrValue(value: Buffer): string {
  const shown = value.subarray(0, 64)
  const more = value.length > shown.length ? ` ... (${value.length} bytes)` : ''
  const printable = shown.every(b => (b >= 0x20 && b < 0x7f) || b >= 0x80 || b === 0x0a || b === 0x09)
  return printable ? `"${escapeName(shown, {space: false}).replaceAll('"', '\\"')}"${more}` : `0x${shown.toString('hex')}${more}`
}

export interface DumpOptions {
  json: boolean
  headers: boolean
  /** Print the tree (false with --headers alone). */
  tree: boolean
}

/** Counts of what was written, for tests and the benchmark. */
export interface DumpSummary {
  items: number
  directories: number
}

export function dump(image: Image, start: DumpStart | undefined, out: FdWriter, opts: DumpOptions): DumpSummary {
  const records = new Records(image)
  const summary: DumpSummary = {items: 0, directories: 0}
  if (opts.headers) {
    for (const report of headerReports(image)) out.write(opts.json ? `${JSON.stringify(report)}\n` : headerText(report))
  }

  if (!opts.tree || start === undefined) return summary
  if (opts.json) {
    for (const item of preorder(records, start.slot, start.path)) {
      out.write(`${JSON.stringify(itemJson(records, item))}\n`)
      summary.items++
      records.tick()
    }

    return summary
  }

  let first = true
  listing(records, start.slot, start.path, {
    directory(path, slot) {
      out.write(`${first ? '' : '\n'}${escapeName(path)}:\n${COLUMNS}\n`)
      first = false
      summary.directories++
      out.write(itemLine(records, {path, name: path, slot, dirent: 0, depth: 0}, Buffer.from('.'), true))
      const parent = records.parentOf(slot)
      if (records.isLive(parent)) out.write(itemLine(records, {path, name: path, slot: parent, dirent: 0, depth: 0}, Buffer.from('..'), false))
    },
    entry(item) {
      if (item.depth === 0) out.write(`${COLUMNS}\n`)
      out.write(itemLine(records, item, item.depth === 0 ? item.path : item.name, true))
      summary.items++
      records.tick()
    },
  })
  return summary
}
