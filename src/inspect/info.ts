/**
 * `razorfs info`: one inode, found from a path on a live razorfs mount (stat(2) gives the inode
 * number, /proc/self/mountinfo the mount whose device it is on, and the mount's source its data
 * dir) or from a path inside an image (--data-dir), read from the image opened read-only (no
 * lock, the WAL replayed in memory: a live image shows every committed change).
 *
 * Every name of the inode comes from one pass over entries.dat (the entries whose child is its
 * slot and generation), and each name's directory path from the `parent` chain (dump.ts
 * `dirPath`): the cost grows with the number of names in the image, memory does not.
 */
import fs from 'node:fs'
import path from 'node:path'

import {EXIT_MOUNT_FAILURE} from '../exit-codes.js'
import {mounts} from '../fuse/mountinfo.js'
import {type RazorMount, razorMounts} from '../fuse/status.js'
import {direntFields as D} from '../storage/codec/dirent.js'
import {FILE_ENTRIES, S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG} from '../storage/format.js'
import {errnoText, Image} from '../storage/index.js'
import {DumpError, dirPath, resolveStart, xattrValue} from './dump.js'
import {type LiveState, liveState} from './live.js'
import {type InodeRecord, Records} from './records.js'
import {devMajor, devMinor, escapeName, formatTime, modeString, putBytes, thousands, typeName} from './text.js'
import {joinPath} from './walk.js'

/** What to look up: a path on a razorfs mount, or a path inside the image of a data dir. */
export type InfoTarget = {hostPath: string} | {dataDir: string; imagePath: string}

/** A failure of `razorfs info`, with the exit code it gives (1, or 32 for "not a razorfs mount"). */
export class InfoError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode = 1,
  ) {
    super(message)
    this.name = 'InfoError'
  }
}

export interface InfoName {
  /** The name's path in the image, from its root (UTF-8, else `pathBase64`). */
  path?: string
  pathBase64?: string
  /** The same name on the host, under the mountpoint (when the image is mounted). */
  hostPath?: string
  hostPathBase64?: string
  /** entries.dat slot of the entry (0: the root, which no entry names). */
  dirent: number
  /** Inode number of the directory holding the entry. */
  parentIno: number
}

/** The JSON of `razorfs info --json`: the inode's fields under their docs/FORMAT.md names, and what is derived from them. */
export interface InodeInfo extends InodeRecord {
  /** PATH as asked: the absolute host path, or the path inside the image (UTF-8, else `pathBase64`). */
  path?: string
  pathBase64?: string
  /** Where `path` is: on the host (a mount), or in the image (--data-dir). */
  pathOn: 'host' | 'image'
  dataDir: string
  /** The mountpoint of the image (the one PATH is on, else the first live mount of the data dir), or null. */
  mountpoint: string | null
  live: LiveState
  type: string
  modeString: string
  /** Devices: major and minor of `rdev`. */
  rdevMajor?: number
  rdevMinor?: number
  /** Regular files: `size`; stored: host space of the content file (st_blocks x 512), 0 without one. */
  bytes?: {apparent: number; stored: number}
  /**
   * Where the contents live: `file` (the content file, `contentFile`), `none` (a regular file
   * with no content file yet: reads as zeros), `strings.dat` (a symlink's target, interned),
   * `entries.dat` (a directory's entries), or null (other types hold no contents).
   */
  contents: 'file' | 'none' | 'strings.dat' | 'entries.dat' | null
  /** The content file: absolute path, whether it exists, its length and st_blocks on the host. */
  contentFile?: {path: string; exists: boolean; hostSize: number; hostBlocks: number}
  /** Directories: number of entries (= `size`). */
  entries?: number
  symlink?: string
  symlinkBase64?: string
  xattrs: Array<{name?: string; nameBase64?: string; value?: string; valueBase64?: string; size: number}>
  /** Every name of the inode in the image, sorted by path. */
  names: InfoName[]
  /** What is wrong with the record on its own (codec/inode.ts `validate`), if anything. */
  problems?: string[]
}

/** Look up one inode and describe it. */
export function inodeInfo(target: InfoTarget): InodeInfo {
  if ('hostPath' in target) return hostInfo(target.hostPath)
  const mount = razorMounts().find(m => m.dataDir === target.dataDir && m.state !== 'dead')
  return withRecords(target.dataDir, records => {
    let slot: number
    try {
      slot = resolveStart(records.image, records, target.imagePath, undefined).slot
    } catch (error) {
      if (error instanceof DumpError && error.code === 'ENOENT' && fs.existsSync(target.imagePath)) {
        throw new InfoError(
          error.code,
          `${error.message} (with --data-dir, PATH is a path inside the image; leave --data-dir out to look up a path on a mount)`,
        )
      }

      throw error
    }

    return describe(records, slot, {path: Buffer.from(target.imagePath), on: 'image'}, mount?.mountpoint ?? null)
  })
}

function withRecords<T>(dir: string, fn: (records: Records) => T): T {
  const image = Image.open(dir, {readOnly: true})
  try {
    return fn(new Records(image))
  } finally {
    image.close()
  }
}

/** The razorfs mount on device `dev` (the one with `abs` under its mountpoint, if several). */
function mountOnDevice(dev: number, abs: string): RazorMount | undefined {
  const major = devMajor(dev)
  const minor = devMinor(dev)
  const found = razorMounts().filter(m => m.mount.major === major && m.mount.minor === minor)
  return found.find(m => isUnder(abs, m.mountpoint)) ?? found[0]
}

function isUnder(file: string, dir: string): boolean {
  return file === dir || file.startsWith(dir.endsWith('/') ? dir : `${dir}/`)
}

function hostInfo(hostPath: string): InodeInfo {
  const abs = path.resolve(hostPath)
  let st: fs.BigIntStats
  try {
    st = fs.lstatSync(abs, {bigint: true})
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO'
    if (code === 'ENOENT') throw new InfoError(code, `${hostPath}: no such file or directory`)
    if (code === 'ENOTCONN') {
      const dead = razorMounts()
        .filter(m => isUnder(abs, m.mountpoint))
        .sort((a, b) => b.mountpoint.length - a.mountpoint.length)[0]
      const fix = dead === undefined ? '' : `: its server is gone; clean it up with razorfs umount --force ${dead.mountpoint}`
      throw new InfoError(code, `${hostPath}: on a dead mount${fix}`, EXIT_MOUNT_FAILURE)
    }

    throw new InfoError(code, `${hostPath}: cannot stat: ${errnoText(error)}`)
  }

  const mount = mountOnDevice(Number(st.dev), abs)
  if (mount === undefined) {
    const other = mounts()
      .filter(m => m.major === devMajor(Number(st.dev)) && m.minor === devMinor(Number(st.dev)))
      .at(-1)
    const on = other === undefined ? '' : ` (it is on ${other.mountPoint}, type ${other.fsType})`
    throw new InfoError('ENOTRAZORFS', `${hostPath}: not on a razorfs mount${on}`, EXIT_MOUNT_FAILURE)
  }

  const ino = Number(st.ino)
  const {dataDir} = mount
  if (dataDir === null)
    throw new InfoError('ESHARED', `${hostPath}: on a mount of the volume ${mount.meta} on PostgreSQL, which razorfs info does not read (yet)`)
  return withRecords(dataDir, records => {
    let slot = records.slotOf(ino)
    // fuse-native reports only the slot (its stat has 32 bits for st_ino): take the slot's live inode.
    if (slot === 0 && ino < 2 ** 32 && records.isLive(ino)) slot = ino
    if (slot === 0 || (records.mode(slot) & S_IFMT) !== (Number(st.mode) & S_IFMT)) {
      throw new InfoError(
        'ENOENT',
        `${hostPath}: the image in ${dataDir} has no ${typeName(Number(st.mode))} with inode number ${ino} (the mount reports one: is another filesystem mounted over part of it?)`,
      )
    }

    return describe(records, slot, {path: Buffer.from(abs), on: 'host'}, mount.mountpoint)
  })
}

/** Every entry naming the inode of `slot` (its generation checked), with its path; the root has none, its path is `/`. */
function namesOf(records: Records, slot: number, mountpoint: string | null): InfoName[] {
  const found: Array<{path: Buffer; dirent: number; parentIno: number}> = []
  if (slot === 1) found.push({path: Buffer.from('/'), dirent: 0, parentIno: records.inoOf(1)})
  const {entries} = records.internals
  const high = Math.min(records.entryHighWater, Math.floor((entries.file.size - entries.off(0)) / entries.recordSize))
  for (let d = 1; d < high; d++) {
    // Pages already read are dropped from the mapping as the scan moves on (constant RSS), as stats does.
    if ((d & 0x3fff) === 0) records.releasePages({file: FILE_ENTRIES, to: entries.off(d)})
    const o = entries.off(d)
    if (D.child.get(entries.file.buf, o) !== slot || D.type.get(entries.file.buf, o) === 0 || !records.entryTargetLive(d)) continue
    const {parent} = records.dirent(d)
    const dir = records.isLive(parent) && records.isDir(parent) ? dirPath(records, parent) : Buffer.from(`<directory slot ${parent}>`)
    found.push({path: joinPath(dir, records.entryName(d)), dirent: d, parentIno: records.isLive(parent) ? records.inoOf(parent) : 0})
  }

  found.sort((a, b) => Buffer.compare(a.path, b.path))
  return found.map(f => {
    const out: Record<string, unknown> = {}
    putBytes(out, 'path', f.path)
    if (mountpoint !== null) putBytes(out, 'hostPath', hostPathOf(mountpoint, f.path))
    out.dirent = f.dirent
    out.parentIno = f.parentIno
    return out as unknown as InfoName
  })
}

function hostPathOf(mountpoint: string, imagePath: Buffer): Buffer {
  if (imagePath.length === 1) return Buffer.from(mountpoint)
  return Buffer.concat([Buffer.from(mountpoint === '/' ? '' : mountpoint), imagePath])
}

function describe(records: Records, slot: number, asked: {path: Buffer; on: 'host' | 'image'}, mountpoint: string | null): InodeInfo {
  const r = records.inode(slot)
  const type = r.mode & S_IFMT
  const out: Record<string, unknown> = {}
  putBytes(out, 'path', asked.path)
  out.pathOn = asked.on
  out.dataDir = records.image.dir
  out.mountpoint = mountpoint
  out.live = liveState(records.image.dir)
  out.type = typeName(r.mode)
  out.modeString = modeString(r.mode)
  Object.assign(out, r)
  if (type === S_IFCHR || type === S_IFBLK) {
    out.rdevMajor = devMajor(r.rdev)
    out.rdevMinor = devMinor(r.rdev)
  }

  out.contents = null
  if (type === S_IFREG) {
    const file = r.dataId === 0 ? undefined : records.internals.contents.pathOf(r.dataId)
    const st = file === undefined ? undefined : fs.lstatSync(file, {throwIfNoEntry: false})
    out.bytes = {apparent: r.size, stored: (st?.blocks ?? 0) * 512}
    out.contents = file === undefined ? 'none' : 'file'
    if (file !== undefined) out.contentFile = {path: path.resolve(file), exists: st !== undefined, hostSize: st?.size ?? 0, hostBlocks: st?.blocks ?? 0}
  } else if (type === S_IFDIR) {
    out.contents = 'entries.dat'
    out.entries = r.size
  } else if (type === S_IFLNK) {
    out.contents = 'strings.dat'
    putBytes(out, 'symlink', records.symlinkTarget(slot))
  }

  out.xattrs = records.xattrs(slot).map(x => {
    const o: Record<string, unknown> = {}
    putBytes(o, 'name', x.name)
    putBytes(o, 'value', x.value)
    o.size = x.value.length
    return o
  })
  out.names = namesOf(records, slot, mountpoint)
  const problems = records.inodeProblems(slot)
  if (problems.length > 0) out.problems = problems
  return out as unknown as InodeInfo
}

function bytesOf(obj: object, key: string): Buffer {
  const o = obj as Record<string, string | undefined>
  return o[key] === undefined ? Buffer.from(o[`${key}Base64`] ?? '', 'base64') : Buffer.from(o[key], 'utf8')
}

/** `2025-01-02 03:04:05.123456789 +0000 (1735787045123456789 ns)`. */
function time(sec: number, nsec: number): string {
  return `${formatTime({sec, nsec})} (${BigInt(sec) * 1_000_000_000n + BigInt(nsec)} ns)`
}

/** The human form: one `label  value` line per field, names and values escaped as `ls -b` does. */
export function renderInfo(info: InodeInfo): string {
  const rows: Array<[string, string]> = [['path', escapeName(bytesOf(info, 'path'))]]
  const where = info.mountpoint === null ? 'not mounted' : `mounted on ${info.mountpoint}`
  rows.push(['image', `${info.dataDir} (${where}${info.live.locked ? `, in use by pid ${info.live.pid ?? '?'}` : ''})`])
  rows.push(['inode', `${info.ino} (slot ${info.slot}, generation ${info.gen})`])
  rows.push(['type', `${info.type}, ${info.modeString} (${(info.mode & 0o7777).toString(8).padStart(4, '0')})`])
  rows.push(['links', String(info.nlink)], ['owner', `uid ${info.uid}, gid ${info.gid}`])
  if (info.bytes !== undefined) {
    rows.push(['size', `${thousands(info.bytes.apparent)} bytes apparent, ${thousands(info.bytes.stored)} bytes stored on the host`])
  } else if (info.entries !== undefined) {
    rows.push(['entries', thousands(info.entries)])
  } else if (info.symlink !== undefined || info.symlinkBase64 !== undefined) {
    rows.push(['target', `${escapeName(bytesOf(info, 'symlink'))} (${thousands(info.size)} bytes)`])
  } else if (info.rdevMajor !== undefined) {
    rows.push(['device', `${info.rdevMajor}, ${info.rdevMinor}`])
  }

  rows.push(['contents', contentsText(info)])
  rows.push(['atime', time(info.atimeSec, info.atimeNsec)], ['mtime', time(info.mtimeSec, info.mtimeNsec)], ['ctime', time(info.ctimeSec, info.ctimeNsec)])
  if (info.xattrs.length === 0) rows.push(['xattrs', '(none)'])
  for (const [i, x] of info.xattrs.entries()) {
    rows.push([i === 0 ? 'xattrs' : '', `${escapeName(bytesOf(x, 'name'))} = ${xattrValue(bytesOf(x, 'value'))} (${x.size} bytes)`])
  }

  const host = info.pathOn === 'host'
  if (info.names.length === 0) rows.push(['names', '(none: unlinked while open)'])
  for (const [i, n] of info.names.entries()) {
    rows.push([i === 0 ? 'names' : '', escapeName(bytesOf(n, host ? 'hostPath' : 'path'))])
  }

  for (const p of info.problems ?? []) rows.push(['problem', p])
  const width = Math.max(...rows.map(([k]) => k.length))
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`.trimEnd()).join('\n') + '\n'
}

function contentsText(info: InodeInfo): string {
  switch (info.contents) {
    case 'file': {
      const f = info.contentFile!
      if (!f.exists) return `${f.path} (absent on the host: the file reads as zeros)`
      return `${f.path} (${thousands(f.hostSize)} bytes long on the host, ${thousands(f.hostBlocks)} blocks of 512)`
    }

    case 'none':
      return 'none (no content file yet: the file reads as zeros)'
    case 'strings.dat':
      return `inline: the target, interned in strings.dat (unit ${info.target})`
    case 'entries.dat':
      return `inline: its entries, in entries.dat (first: slot ${info.dirHead})`
    default:
      return 'none (this type holds no contents)'
  }
}
