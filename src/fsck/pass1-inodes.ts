/**
 * Pass 1: the record tables and every inode record; the only full scan of nodes.dat (the string
 * heap's scan, pass1-strings.ts, runs in the middle of it).
 *
 * Checks, in order:
 *   1. the control blocks of nodes.dat and entries.dat: highWater (inside the file, no record above
 *      it), the free list (every free slot exactly once, nothing else), live, fixed fields, the
 *      rest of page 1;
 *   2. the orphan list (every IF_ORPHAN inode exactly once, nothing else);
 *   3. the string heap (pass1-strings.ts);
 *   4. each inode: flags, generation, a valid type, the fields each type fixes (rdev, parent,
 *      dirHead, link, target, dataId, size of non-files, nanoseconds, reserved bytes), a
 *      symlink's target and size, the xattr blob, content file numbers (unique, below nextDataId);
 *   5. the root: slot 1 is a live directory.
 * Collects: `st.nodeHw`, `st.entHw`, `st.ino` (free / live / damaged and left), `st.type`, and
 *   whether each table, the orphan list and the root are sound.
 * Relies on: pass 0 and 7 (the image opened).
 * Repairs: counters set, lists rebuilt, fields set, invalid inodes freed (their names and strings
 *   are reclaimed by passes 2 and 5, their content files go to /lost+found in pass 6), a new root
 *   directory. When nodes.dat lost records (pass 0), the free slots entries name are saved before
 *   they are cleared, for pass 2 to rebuild those inodes from (salvage.ts).
 * Frees: nothing.
 */
import fs from 'node:fs'
import path from 'node:path'

import {DATA_OFFSET, IF_ORPHAN, IF_USED, INODE, S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG} from '../storage/format.js'
import {CONTROL_OFFSET} from '../storage/codec/control.js'
import {fromWords} from '../storage/codec/field.js'
import * as inode from '../storage/codec/inode.js'
import type {MappedFile} from '../storage/mapped-file.js'
import type {RecordTable} from '../storage/table.js'
import {FILE_SIZE_MAX} from '../storage/types.js'
import {lastNonZero} from './bytes.js'
import {CheckedImage, D, GEN_MASK, I, ROOT, TC} from './checked-image.js'
import {PR} from './problems.js'
import {controlPage, pass1Strings} from './pass1-strings.js'
import {DATA_ID_LIMIT, contentPath} from './locate.js'
import {saveLostRecords} from './salvage.js'
import {type Check, INO_BAD, INO_FREE, INO_LIVE, STR_BLOB, STR_NAME, typeName, validType} from './state.js'

export function pass1(c: Check): void {
  c.ctx.header(PR.PR_1_PASS_HEADER)
  checkTable(c, 'nodes')
  checkTable(c, 'entries')
  checkOrphanList(c)
  pass1Strings(c)
  saveLostRecords(c)
  checkInodes(c)
  checkRoot(c)
  c.ctx.endPass()
}

interface TableView {
  file: MappedFile
  table: RecordTable
  isUsed(buf: Buffer, slot: number): boolean
}

function view(c: Check, which: 'nodes' | 'entries'): TableView {
  const {img} = c
  return which === 'nodes'
    ? {file: img.nf, table: img.nodes, isUsed: (b, s) => inode.isUsed(b, img.no(s))}
    : {file: img.ef, table: img.entries, isUsed: (b, s) => D.type.get(b, img.eo(s)) !== 0}
}

/** highWater, free list, live and fixed fields of one record table. */
function checkTable(c: Check, which: 'nodes' | 'entries'): void {
  const {ctx, img, st} = c
  const v = view(c, which)
  const {file, table} = v
  const name = file.spec.name
  const rs = file.spec.recordSize
  const cap = CheckedImage.capacity(file)
  let ok = true

  // highWater: inside the file, and no record above it.
  const hw = table.highWater
  const lastByte = lastNonZero(file.buf, DATA_OFFSET + rs, DATA_OFFSET + cap * rs)
  const last = lastByte < 0 ? 0 : Math.floor((lastByte - DATA_OFFSET) / rs)
  let expected = hw
  let reason = ''
  if (hw > cap) {
    expected = Math.max(1, last + 1)
    reason = `the file holds ${cap} slots`
  } else if (hw < 1 && last < 1) {
    expected = 1
    reason = 'slot 0 is never used'
  } else if (hw < last + 1) {
    expected = last + 1
    reason = `slot ${last} above it holds a record`
  }

  if (expected !== hw) {
    if (ctx.fix(PR.PR_1_HIGH_WATER, {file: name, value: hw, reason, expected})) img.store.transaction(() => img.setCtl32(file, TC.highWater, expected))
    else ok = false
  }

  if (which === 'nodes') st.growInodes(expected)
  else st.growEntries(expected)
  if (which === 'nodes') st.nodeHw = expected
  else st.entHw = expected

  // Fixed fields of the control block.
  const ctl = (field: typeof TC.orphanHead | typeof TC.nextDataId, want: number): void => {
    const value = img.ctl(file, field)
    if (value === want) return
    if (ctx.fix(PR.PR_1_CONTROL_FIELD, {file: name, field: field.name, value, expected: want})) {
      img.store.transaction(() => img.setField(file, CONTROL_OFFSET, field, want))
    }
  }

  if (which === 'entries') {
    ctl(TC.orphanHead, 0)
    ctl(TC.nextDataId, 0)
  }

  controlPage(c, file, 24)

  // The free list: every free slot below highWater exactly once.
  const seen = new Uint8Array(expected)
  let count = 0
  let freeTotal = 0
  const b = file.buf
  for (let s = 1; s < expected; s++) if (!v.isUsed(b, s)) freeTotal++
  let why: string | undefined
  let cur = table.freeHead
  while (cur !== 0) {
    if (cur >= expected) why = `it names slot ${cur}, at or above highWater`
    else if (v.isUsed(b, cur)) why = `slot ${cur} on it is in use`
    else if (seen[cur]) why = `slot ${cur} appears twice`
    if (why !== undefined) break
    seen[cur] = 1
    count++
    cur = table.link.get(b, table.off(cur))
  }

  if (why === undefined && count !== freeTotal) why = `${freeTotal - count} free slots are not on it`
  if (why !== undefined) {
    if (ctx.fix(PR.PR_1_FREE_LIST, {file: name, reason: why})) {
      img.store.transaction(() => img.relinkFree(table, expected, s => v.isUsed(file.buf, s)))
    } else {
      ok = false
    }
  }

  const used = Math.max(0, expected - 1 - freeTotal)
  if (table.live !== used) {
    if (ctx.fix(PR.PR_1_LIVE_COUNT, {file: name, value: table.live, expected: used})) img.store.transaction(() => img.setCtl32(file, TC.live, used))
    else ok = false
  }

  if (which === 'nodes') st.nodeTableOk = ok
  else st.entTableOk = ok
}

/** Every IF_ORPHAN inode on the orphan list exactly once, and nothing else. */
function checkOrphanList(c: Check): void {
  const {ctx, img, st} = c
  const nb = img.nb
  const hw = st.nodeHw
  const isOrphan = (s: number): boolean => {
    const flags = I.flags.get(nb, img.no(s))
    return (flags & IF_USED) !== 0 && (flags & IF_ORPHAN) !== 0
  }

  let total = 0
  for (let s = 1; s < hw; s++) if (isOrphan(s)) total++
  const seen = new Uint8Array(hw)
  let count = 0
  let why: string | undefined
  for (let cur = img.nodeCtl(TC.orphanHead); cur !== 0; ) {
    if (cur >= hw) why = `it names slot ${cur}, at or above highWater`
    else if (!isOrphan(cur)) why = `inode ${cur} on it is not an orphan`
    else if (seen[cur]) why = `inode ${cur} appears twice`
    if (why !== undefined) break
    seen[cur] = 1
    count++
    cur = I.link.get(nb, img.no(cur))
  }

  if (why === undefined && count !== total) why = `${total - count} orphans are not on it`
  if (why === undefined) return
  if (!ctx.fix(PR.PR_1_ORPHAN_LIST, {reason: why})) {
    st.orphanListOk = false
    return
  }

  img.store.transaction(() => {
    let prev = 0
    for (let s = 1; s < hw; s++) {
      if (!isOrphan(s)) continue
      if (prev === 0) img.setCtl32(img.nf, TC.orphanHead, s)
      else img.setN32(prev, I.link, s)
      prev = s
    }

    if (prev === 0) img.setCtl32(img.nf, TC.orphanHead, 0)
    else img.setN32(prev, I.link, 0)
  })
}

const NSEC_MAX = 999_999_999
const TYPE_DIR = S_IFDIR >>> 12

/** Free an inode that pass 1 clears (off the orphan list first). */
function clearInode(c: Check, slot: number): void {
  const {img, st} = c
  img.store.transaction(() => {
    if ((img.n32(slot, I.flags) & IF_ORPHAN) !== 0) img.unlinkOrphan(slot, st.limit)
    img.setN32(slot, I.flags, img.n32(slot, I.flags) & ~IF_ORPHAN)
    img.freeInode(slot)
  })
  st.ino[slot] = INO_FREE
  st.type[slot] = 0
}

/** What the inode scan carries from slot to slot. */
interface InodeScan {
  firstData: Map<number, number>
  dupData: Array<[number, number, number]>
  blobOwner: Uint32Array
  maxData: number
  maxDataSlot: number
}

/** Word offsets of an INODE (a u64 field is its low word, then its high word). */
const W = {
  gen: I.gen.word,
  flags: I.flags.word,
  mode: I.mode.word,
  sizeLo: I.size.word,
  sizeHi: I.size.word + 1,
  atimeNsec: I.atimeNsec.word,
  mtimeNsec: I.mtimeNsec.word,
  ctimeNsec: I.ctimeNsec.word,
  parent: I.parent.word,
  rdevLo: I.rdev.word,
  rdevHi: I.rdev.word + 1,
  dataLo: I.dataId.word,
  dataHi: I.dataId.word + 1,
  xattr: I.xattr.word,
  target: I.target.word,
  dirHead: I.dirHead.word,
  link: I.link.word,
  reserved: I.reserved.word,
}
const RECORD_WORDS = INODE.SIZE >>> 2
const T_REG = S_IFREG >>> 12
const T_LNK = S_IFLNK >>> 12
const T_CHR = S_IFCHR >>> 12
const T_BLK = S_IFBLK >>> 12

/**
 * The inode scan. Most records are sound, so each is first judged by a fast test on the mapping's
 * words that accepts only what every check of `checkSlot` would accept; anything else goes to
 * `checkSlot`, which finds, reports and repairs each problem.
 */
function checkInodes(c: Check): void {
  const {ctx, img, st} = c
  const hw = st.nodeHw
  const scan: InodeScan = {firstData: new Map(), dupData: [], blobOwner: new Uint32Array(Math.max(1, st.heapEnd)), maxData: 0, maxDataSlot: 0}
  const {dupData, blobOwner} = scan
  const valid = new Uint8Array(16)
  for (let t = 0; t < 16; t++) valid[t] = validType(t << 12) ? 1 : 0
  const str = st.str
  let w = img.words(img.nf)
  const base = DATA_OFFSET >>> 2
  for (let slot = 1; slot < hw; slot++) {
    ctx.tick(1, 'inodes', slot, hw)
    const b = base + slot * RECORD_WORDS
    const flags = w[b + W.flags]
    if ((flags & IF_USED) === 0) {
      st.ino[slot] = INO_FREE
      let zero = w[b + W.gen] <= GEN_MASK
      for (let k = 1; k < RECORD_WORDS && zero; k++) if (k !== W.link && w[b + k] !== 0) zero = false
      if (!zero) {
        checkSlot(c, slot, scan)
        w = img.words(img.nf)
      }

      continue
    }

    // The fast test.
    const mode = w[b + W.mode]
    const type = (mode & S_IFMT) >>> 12
    const orphan = (flags & IF_ORPHAN) !== 0
    let ok =
      (flags & ~(IF_USED | IF_ORPHAN)) === 0 &&
      w[b + W.gen] <= GEN_MASK &&
      valid[type] === 1 &&
      w[b + W.atimeNsec] <= NSEC_MAX &&
      w[b + W.mtimeNsec] <= NSEC_MAX &&
      w[b + W.ctimeNsec] <= NSEC_MAX &&
      (orphan || w[b + W.link] === 0) &&
      ((w[b + W.rdevLo] | w[b + W.rdevHi]) === 0 || type === T_CHR || type === T_BLK) &&
      (type === TYPE_DIR || (w[b + W.parent] | w[b + W.dirHead]) === 0) &&
      (type === T_LNK || w[b + W.target] === 0) &&
      (type === T_REG || type === TYPE_DIR || type === T_LNK || (w[b + W.sizeLo] | w[b + W.sizeHi]) === 0) &&
      ((w[b + W.dataLo] | w[b + W.dataHi]) === 0 || (type === T_REG && fromWords(w[b + W.dataLo], w[b + W.dataHi]) < DATA_ID_LIMIT)) &&
      (type !== T_REG || fromWords(w[b + W.sizeLo], w[b + W.sizeHi]) <= FILE_SIZE_MAX)
    for (let k = W.reserved; k < RECORD_WORDS && ok; k++) if (w[b + k] !== 0) ok = false
    const xattr = w[b + W.xattr]
    if (ok && xattr !== 0) ok = xattr < st.heapEnd && str[xattr] === STR_BLOB && blobOwner[xattr] === 0
    if (ok && type === T_LNK) {
      const target = w[b + W.target]
      ok = target !== 0 && target < st.heapEnd && str[target] === STR_NAME && w[b + W.sizeHi] === 0 && w[b + W.sizeLo] === img.strLength(target)
    }

    if (!ok) {
      checkSlot(c, slot, scan)
      w = img.words(img.nf)
      continue
    }

    st.ino[slot] = INO_LIVE
    st.type[slot] = type
    if (xattr !== 0) blobOwner[xattr] = slot
    const dataId = fromWords(w[b + W.dataLo], w[b + W.dataHi])
    if (dataId !== 0) noteData(scan, slot, dataId)
  }

  // nextDataId: above every content file number in use.
  const next = img.nodeCtl(TC.nextDataId)
  const want = Math.max(1, scan.maxData + 1)
  if (next < want || next >= DATA_ID_LIMIT) {
    const ok =
      scan.maxDataSlot === 0
        ? ctx.fix(PR.PR_1_CONTROL_FIELD, {file: img.nf.spec.name, field: 'nextDataId', value: next, expected: want})
        : ctx.fix(PR.PR_1_NEXT_DATA_ID, {value: next, slot: scan.maxDataSlot, dataId: scan.maxData, expected: want})
    if (ok) img.store.transaction(() => img.setCtl64(img.nf, TC.nextDataId, want))
  }

  // Shared content files: the second inode gets a copy of its own, under a new number.
  for (const [first, slot, dataId] of dupData) {
    if (st.ino[slot] !== INO_LIVE || !ctx.fix(PR.PR_1_DUP_DATA_ID, {first, slot, dataId})) continue
    // A number whose content file does not exist: one no inode names may still hold bytes (pass 6).
    let fresh = Math.max(img.nodeCtl(TC.nextDataId), 1)
    while (fs.existsSync(contentPath(c, fresh))) fresh++
    const from = contentPath(c, dataId)
    const to = contentPath(c, fresh)
    if (fs.existsSync(from)) {
      fs.mkdirSync(path.dirname(to), {recursive: true, mode: 0o700})
      fs.copyFileSync(from, to)
      fs.chmodSync(to, 0o600)
    }

    img.store.transaction(() => {
      img.setCtl64(img.nf, TC.nextDataId, fresh + 1)
      img.setN64(slot, I.dataId, fresh)
    })
  }
}

/**
 * One inode, every check, each problem reported and (if accepted) repaired: the rules the record
 * obeys on its own (codec/inode.ts `validate`), then what it must agree with (its symlink target's
 * string, its content file number, its xattr blob).
 */
function checkSlot(c: Check, slot: number, scan: InodeScan): void {
  const {ctx, img, st} = c
  const {blobOwner} = scan
  const o = img.no(slot)
  let nb = img.nb
  const flags = I.flags.get(nb, o)
  const gen = I.gen.get(nb, o)
  const problems = inode.validate(nb, o)

  if ((flags & IF_USED) === 0) {
    st.ino[slot] = INO_FREE
    // A free slot keeps only its generation and its free-list link.
    if (problems.length > 0 && ctx.fix(PR.PR_1_FREE_NOT_ZERO, {slot})) {
      img.store.transaction(() => {
        img.zeroRange(img.nf, o + I.flags.off, o + I.link.off)
        img.zeroRange(img.nf, o + I.link.off + I.link.size, o + INODE.SIZE)
        img.setN32(slot, I.gen, gen & GEN_MASK)
      })
    }

    return
  }

  const fix = (code: number, values: Record<string, unknown>, apply: () => void): boolean => {
    if (!ctx.fix(code, {slot, ...values})) return false
    img.store.transaction(apply)
    nb = img.nb
    return true
  }

  const mode = I.mode.get(nb, o)
  const type = (mode & S_IFMT) >>> 12
  const tname = typeName(type)
  let dataIdProblem = false
  let sizeProblem = false
  for (const p of problems) {
    switch (p.rule) {
      case 'flags': {
        fix(PR.PR_1_BAD_FLAGS, {flags: p.value}, () => img.setN32(slot, I.flags, flags & (IF_USED | IF_ORPHAN)))
        break
      }

      case 'gen': {
        fix(PR.PR_1_BAD_GEN, {gen}, () => img.setN32(slot, I.gen, gen & GEN_MASK))
        break
      }

      case 'type': {
        if (ctx.fix(PR.PR_1_BAD_TYPE, {slot, mode: p.value})) clearInode(c, slot)
        else st.ino[slot] = INO_BAD
        return
      }

      case 'field': {
        const f = I[p.field as keyof typeof I]
        fix(PR.PR_1_BAD_FIELD, {type: tname, field: p.field, value: p.value, expected: p.expected}, () => {
          if (f.type === 'u32' || f.type === 'u64') img.setField(img.nf, o, f, 0)
          else img.zeroRange(img.nf, o + f.off, o + f.off + f.size)
        })
        break
      }

      case 'dataId': {
        dataIdProblem = true
        break
      }

      default:
        sizeProblem = true
    }
  }

  st.ino[slot] = INO_LIVE
  st.type[slot] = type

  // A symlink's target: an interned string, as long as the size says.
  if (type === S_IFLNK >>> 12) {
    const target = I.target.get(nb, o)
    if (target === 0 || target >= st.heapEnd || st.str[target] !== STR_NAME) {
      const reason = target === 0 ? 'it has none' : `unit ${target} does not hold an interned string`
      if (ctx.fix(PR.PR_1_BAD_SYMLINK, {slot, reason})) clearInode(c, slot)
      else st.ino[slot] = INO_BAD
      return
    }

    const length = img.strLength(target)
    const size = I.size.get(nb, o)
    if (size !== length) fix(PR.PR_1_SYMLINK_SIZE, {size, length}, () => img.setN64(slot, I.size, length))
  }

  // Content file number: regular files only, unique, below nextDataId.
  const dataId = I.dataId.get(nb, o)
  if (dataIdProblem) {
    fix(PR.PR_1_BAD_DATA_ID, {type: tname, dataId, reason: `a ${tname} has no contents`}, () => img.setN64(slot, I.dataId, 0))
  } else if (dataId >= DATA_ID_LIMIT) {
    fix(PR.PR_1_BAD_DATA_ID, {type: tname, dataId, reason: `content file numbers stay below 2^48`}, () => img.setN64(slot, I.dataId, 0))
  } else if (dataId !== 0) {
    noteData(scan, slot, dataId)
  }

  if (sizeProblem) {
    const size = I.size.get(nb, o)
    const length = contentLength(c, I.dataId.get(nb, o))
    const want = Math.min(length, FILE_SIZE_MAX)
    fix(PR.PR_1_BAD_SIZE, {size, max: FILE_SIZE_MAX, length}, () => img.setN64(slot, I.size, want))
  }

  // xattr blob: a well-formed private blob, owned by this inode only.
  const xattr = I.xattr.get(nb, o)
  if (xattr !== 0) {
    if (xattr >= st.heapEnd || st.str[xattr] !== STR_BLOB) {
      const reason = xattr < st.heapEnd && st.str[xattr] !== 0 ? 'the blob does not parse' : 'no blob starts there'
      fix(PR.PR_1_BAD_XATTR, {unit: xattr, reason}, () => img.setN32(slot, I.xattr, 0))
    } else if (blobOwner[xattr] !== 0) {
      fix(PR.PR_1_SHARED_XATTR, {first: blobOwner[xattr], unit: xattr}, () => img.setN32(slot, I.xattr, 0))
    } else {
      blobOwner[xattr] = slot
    }
  }
}

function noteData(scan: InodeScan, slot: number, dataId: number): void {
  const first = scan.firstData.get(dataId)
  if (first === undefined) scan.firstData.set(dataId, slot)
  else scan.dupData.push([first, slot, dataId])
  if (dataId > scan.maxData) {
    scan.maxData = dataId
    scan.maxDataSlot = slot
  }
}

function contentLength(c: Check, dataId: number): number {
  if (dataId === 0 || dataId >= DATA_ID_LIMIT) return 0
  try {
    return fs.statSync(contentPath(c, dataId)).size
  } catch {
    return 0
  }
}

/** Slot 1 must be a live directory; its entries (parent 1) survive a recreated root. */
function checkRoot(c: Check): void {
  const {ctx, img, st} = c
  if (st.isDir(ROOT)) {
    // Inode number 1: slot 1, generation 0.
    const gen = img.n32(ROOT, I.gen)
    if (gen !== 0 && ctx.fix(PR.PR_1_BAD_FIELD, {slot: ROOT, type: 'root directory', field: 'gen', value: gen, expected: 0})) {
      img.store.transaction(() => img.setN32(ROOT, I.gen, 0))
    }

    return
  }
  const reason =
    st.nodeHw <= ROOT
      ? 'the inode table is empty'
      : st.ino[ROOT] === INO_FREE
        ? 'slot 1 is free'
        : st.ino[ROOT] === INO_BAD
          ? 'slot 1 is damaged'
          : `slot 1 is a ${typeName(st.type[ROOT])}`
  if (!ctx.fix(PR.PR_1_NO_ROOT, {reason}, {canFix: st.nodeTableOk && st.orphanListOk})) {
    st.rootOk = false
    return
  }

  img.store.transaction(() => {
    if (st.nodeHw <= ROOT) {
      img.nf.ensureSize(img.no(ROOT + 1))
      img.setCtl32(img.nf, TC.highWater, ROOT + 1)
      img.zeroRange(img.nf, img.no(ROOT), img.no(ROOT + 1))
      img.setCtl32(img.nf, TC.live, img.nodes.live + 1)
    } else {
      if (img.used(ROOT)) {
        if ((img.n32(ROOT, I.flags) & IF_ORPHAN) !== 0) img.unlinkOrphan(ROOT, st.limit)
        img.freeInode(ROOT)
      }

      if (!img.takeFreeSlot(img.nodes, ROOT, st.limit)) img.setCtl32(img.nf, TC.live, img.nodes.live + 1)
      // The root's inode number is 1: slot 1, generation 0.
      img.zeroRange(img.nf, img.no(ROOT), img.no(ROOT + 1))
    }

    img.initDir(ROOT, ROOT, 0o755)
  })
  st.growInodes(ROOT + 1)
  st.ino[ROOT] = INO_LIVE
  st.type[ROOT] = TYPE_DIR
  st.relist.add(ROOT)
}
