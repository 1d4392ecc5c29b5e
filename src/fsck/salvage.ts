/**
 * Salvage of inodes when nodes.dat lost records (issue 16): e2fsck's rule that what can be read
 * is rebuilt or put in /lost+found, never thrown away.
 *
 * When pass 0 found nodes.dat missing, cut short or with an unreadable header (`st.nodesDamaged`),
 * records may be gone while entries.dat still names them. Each entry keeps its child's slot,
 * generation and type, so the inode can be rebuilt in place, with the same inode number:
 *
 * - `saveLostRecords` (pass 1, before the inode scan): a slot an entry names that is free but not
 *   blank holds fields the log replayed into a zeroed table (every field a transaction since the
 *   last checkpoint wrote holds its last value; the others are zeros). Pass 1 clears such slots
 *   (PR_1_FREE_NOT_ZERO); their bytes are saved first.
 * - `rebuildLostInodes` (pass 2, before the entries are checked): every blank slot that an entry
 *   names, or that entries have as their directory, becomes an inode of the entry's type (a
 *   directory when only its entries name it). Fields come from the saved record when its type is
 *   the entry's; otherwise owner 0, mode 0600 (directories 0700), times of now. A regular file gets
 *   a content file only from a saved record (its dataId, not used by another inode, and its size,
 *   or the content file's length when the size was not saved): nothing else ties a content file to
 *   an inode (FORMAT.md, "Content files"), so a file without one is rebuilt empty, and its bytes
 *   go to /lost+found in pass 6 with the other content files no inode names. A symlink needs a
 *   saved target and a device a saved device number: without them the entry is removed (pass 2,
 *   PR_2_BAD_CHILD) like any entry naming a free slot.
 *
 * Link counts, directory sizes and lists, parents and generations of other entries naming the
 * inode are set by the passes that check them (2, 3 and 4), as for any inode.
 */
import fs from 'node:fs'

import {DATA_OFFSET, INODE, S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG} from '../storage/format.js'
import * as inode from '../storage/codec/inode.js'
import {MAX_MAPPING} from '../storage/mapped-file.js'
import {FILE_SIZE_MAX} from '../storage/types.js'
import {isZero, shown} from './bytes.js'
import {CheckedImage, D, GEN_MASK, I, ROOT, TC} from './checked-image.js'
import {DATA_ID_LIMIT, contentPath, label} from './locate.js'
import {PR} from './problems.js'
import {type Check, INO_FREE, INO_LIVE, STR_NAME, typeName, validType} from './state.js'
import {liveDataIds} from '../storage/content-files.js'

const T_DIR = S_IFDIR >>> 12
const T_REG = S_IFREG >>> 12
const T_LNK = S_IFLNK >>> 12
const T_CHR = S_IFCHR >>> 12
const T_BLK = S_IFBLK >>> 12
const MAX_SLOTS = Math.floor((MAX_MAPPING - DATA_OFFSET) / INODE.SIZE)
/** Inodes written per transaction by a rebuild. */
const REBUILD_BATCH = 8192

/** Pass 1: keep the bytes of the free, non-blank slots entries name, before the scan clears them. */
export function saveLostRecords(c: Check): void {
  const {img, st} = c
  if (!st.nodesDamaged) return
  const nb = img.nb
  const eb = img.eb
  const capN = CheckedImage.capacity(img.nf)
  const capE = CheckedImage.capacity(img.ef)
  for (let d = 1; d < capE; d++) {
    const o = img.eo(d)
    if (D.type.get(eb, o) === 0) continue
    for (const slot of [D.child.get(eb, o), D.parent.get(eb, o)]) {
      if (slot <= ROOT || slot >= capN || st.lostRecords.has(slot)) continue
      const r = img.no(slot)
      if (inode.isUsed(nb, r) || blank(nb, r)) continue
      st.lostRecords.set(slot, Buffer.from(nb.subarray(r, r + INODE.SIZE)))
    }
  }
}

/** Is the record at `r` zero but for its generation and free-list link? */
function blank(nb: Buffer, r: number): boolean {
  return isZero(nb, r + I.flags.off, r + I.link.off) && isZero(nb, r + I.link.off + I.link.size, r + INODE.SIZE)
}

interface Lost {
  slot: number
  /** The first entry naming it (0: only its own entries name it, as their directory). */
  entry: number
  /** An entry whose directory it is. */
  member: number
  type: number
  gen: number
  parent: number
}

/** What a lost inode is rebuilt as. */
interface Rebuilt {
  lost: Lost
  mode: number
  uid: number
  gid: number
  size: number
  dataId: number
  target: number
  rdev: number
  /** Times from the saved record: atime, mtime, ctime as [sec, nsec]; undefined: now. */
  times: Array<[number, number]> | undefined
}

/** Pass 2, first: rebuild the inodes that entries name in slots nodes.dat lost. */
export function rebuildLostInodes(c: Check): void {
  const {ctx, img, st} = c
  if (!st.nodesDamaged || !st.nodeTableOk) return
  const hw = st.nodeHw
  // Slots past highWater are lost too (a zeroed control block); but not past what the entries
  // could plausibly name, so that one damaged entry cannot grow nodes.dat to its limit.
  const bound = Math.min(MAX_SLOTS, Math.max(hw, 4 * st.entHw + 1024))
  const nb = img.nb
  const isLost = (slot: number): boolean => slot > ROOT && slot < bound && (slot >= hw || (st.ino[slot] === INO_FREE && blank(nb, img.no(slot))))
  const lost = new Map<number, Lost>()
  const eb = img.eb
  for (let d = 1; d < st.entHw; d++) {
    const o = img.eo(d)
    const type = D.type.get(eb, o)
    if (type === 0) continue
    const child = D.child.get(eb, o)
    const parent = D.parent.get(eb, o)
    if (isLost(child)) {
      const l = lost.get(child)
      const named = {entry: d, type, gen: D.childGen.get(eb, o) & GEN_MASK, parent}
      if (l === undefined) lost.set(child, {slot: child, member: 0, ...named})
      else if (l.entry === 0) Object.assign(l, named)
    }

    if (isLost(parent) && !lost.has(parent)) lost.set(parent, {slot: parent, entry: 0, member: d, type: T_DIR, gen: 0, parent: ROOT})
    else if (isLost(parent) && lost.get(parent)!.member === 0) lost.get(parent)!.member = d
  }

  if (lost.size === 0) return
  const inUse = liveDataIds(nb, s => img.no(s), hw)
  const accepted: Rebuilt[] = []
  for (const l of [...lost.values()].sort((a, b) => a.slot - b.slot)) {
    ctx.tick(2, 'lost inodes', accepted.length, lost.size)
    const r = rebuildAs(c, l, inUse)
    if (r === undefined) continue
    const how =
      l.entry !== 0
        ? `entry ${l.entry} (${shown(label(c, l.entry))}) in directory ${l.parent} names it`
        : `it is the directory of entry ${l.member} (${shown(label(c, l.member))})`
    if (!ctx.fix(PR.PR_2_LOST_INODE, {slot: l.slot, how, what: describe(c, r)})) continue
    if (r.dataId !== 0) inUse.add(r.dataId)
    accepted.push(r)
  }

  if (accepted.length === 0) return
  let newHw = hw
  let maxData = 0
  for (const r of accepted) {
    newHw = Math.max(newHw, r.lost.slot + 1)
    maxData = Math.max(maxData, r.dataId)
  }

  if (newHw > hw) {
    img.store.transaction(() => {
      img.nf.ensureSize(img.no(newHw))
      img.setCtl32(img.nf, TC.highWater, newHw)
    })
    st.growInodes(newHw)
  }

  // Bounded transactions (each a WAL record); the free list, live count and nextDataId last.
  for (let i = 0; i < accepted.length; i += REBUILD_BATCH) {
    img.store.transaction(() => {
      for (const r of accepted.slice(i, i + REBUILD_BATCH)) write(c, r)
    })
  }

  img.store.transaction(() => {
    const free = img.relinkFree(img.nodes, newHw, s => img.used(s))
    img.setCtl32(img.nf, TC.live, newHw - 1 - free)
    if (maxData >= img.nodeCtl(TC.nextDataId)) img.setCtl64(img.nf, TC.nextDataId, maxData + 1)
  })
}

/** The inode a lost slot is rebuilt as, or undefined if its type needs what was lost. */
function rebuildAs(c: Check, l: Lost, inUse: Set<number>): Rebuilt | undefined {
  const {img, st} = c
  if (!validType(l.type << 12)) return undefined
  const bytes = st.lostRecords.get(l.slot)
  const saved = bytes === undefined ? undefined : inode.decode(bytes, 0, l.slot)
  const mode = saved === undefined ? 0 : saved.mode
  // The saved fields are the inode's only if the log wrote its type (mknod or chmod did).
  const own = saved !== undefined && validType(mode) && (mode & S_IFMT) >>> 12 === l.type ? saved : undefined
  const r: Rebuilt = {
    lost: l,
    mode: (l.type << 12) | (own === undefined ? (l.type === T_DIR ? 0o700 : 0o600) : mode & 0o7777),
    uid: own === undefined ? 0 : own.uid,
    gid: own === undefined ? 0 : own.gid,
    size: 0,
    dataId: 0,
    target: 0,
    rdev: 0,
    times: undefined,
  }
  if (own !== undefined && own.ctimeSec !== 0) {
    r.times = (['atime', 'mtime', 'ctime'] as const).map(w => [own[`${w}Sec`], own[`${w}Nsec`] % 1e9])
  }

  // A saved record of another type (or none) says nothing about this inode: only a whole field of
  // its own may be used. The dataId is the one link from an inode to its content file.
  const savedData = saved === undefined ? 0 : saved.dataId
  if (l.type === T_REG && savedData > 0 && savedData < DATA_ID_LIMIT && !inUse.has(savedData)) {
    r.dataId = savedData
    r.size = Math.min(saved!.size || contentLength(c, savedData), FILE_SIZE_MAX)
  } else if (l.type === T_LNK) {
    const target = own === undefined ? 0 : own.target
    if (target === 0 || target >= st.heapEnd || st.str[target] !== STR_NAME) return undefined
    r.target = target
    r.size = img.strLength(target)
  } else if (l.type === T_CHR || l.type === T_BLK) {
    if (own === undefined) return undefined
    r.rdev = own.rdev
  }

  return r
}

function contentLength(c: Check, dataId: number): number {
  try {
    return fs.statSync(contentPath(c, dataId)).size
  } catch {
    return 0
  }
}

function describe(c: Check, r: Rebuilt): string {
  const kind = typeName(r.lost.type)
  const mode = `mode 0${(r.mode & 0o7777).toString(8)}`
  const from = r.times === undefined ? '' : ', from the fields the log kept'
  if (r.lost.type === T_REG) {
    if (r.dataId === 0) return `an empty ${kind}, ${mode} (nothing else ties it to a content file: its bytes, if it had some, go to /lost+found)`
    const p = contentPath(c, r.dataId).slice(c.img.dir.length + 1)
    return `a ${kind} of ${r.size} bytes (${p}), ${mode}, from the fields the log kept`
  }

  return `a ${kind}, ${mode}${from}`
}

/** Write a rebuilt inode into its (blank) slot: inside the rebuild's transaction. */
function write(c: Check, r: Rebuilt): void {
  const {img, st} = c
  const {slot, type} = r.lost
  const o = img.no(slot)
  img.zeroRange(img.nf, o, o + INODE.SIZE)
  img.setN32(slot, I.gen, r.lost.gen)
  img.initInode(slot, r.mode, type === T_DIR ? 2 : 1, r, r.times)
  img.setN64(slot, I.size, r.size)
  img.setN64(slot, I.dataId, r.dataId)
  img.setN32(slot, I.target, r.target)
  img.setN64(slot, I.rdev, r.rdev)
  if (type === T_DIR) img.setN32(slot, I.parent, r.lost.entry === 0 ? ROOT : r.lost.parent)
  st.ino[slot] = INO_LIVE
  st.type[slot] = type
}
