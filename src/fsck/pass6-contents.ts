/**
 * Pass 6: content files (data/xx/<dataId>).
 *
 * Checks: every content file is named by a live inode's dataId (at the path that id gives; only
 *   regular files have one: pass 1 reports any other inode's). A content file longer than its
 *   inode's size is fine (FORMAT.md: bytes past the size are never read), and so is a missing one
 *   (it reads as zeros); but when the log lost committed transactions (pass 7), a longer content
 *   file holds bytes written after the size the inode still has: PR_6_CONTENT_PAST_SIZE.
 * Collects: the number of content files.
 * Relies on: passes 1 to 5 (the final set of inodes and their dataIds; sound tables to allocate
 *   from when a content file is reconnected).
 * Repairs: an empty content file no inode names is a spare a crash left (PR_6_SPARE_CONTENT,
 *   expected state): removed, since it holds nothing. Any other content file no inode names is
 *   removed (PR_6_UNUSED_CONTENT) only when that proves it is garbage, and otherwise gets an
 *   inode in /lost+found (PR_6_LOST_CONTENT). It is proof when nothing but the states a crash
 *   leaves was found before this pass: no problem but orphans
 *   (PR_4_ORPHAN) and a torn last transaction (PR_7_TORN_TAIL). Then the inode table and the log
 *   are whole, and no inode naming the file means the transaction that freed its inode (or an
 *   orphan's release) was committed, or the allocation of its number was lost with the unsynced
 *   tail of the log (a power loss): the two cases recovery reclaims (FORMAT.md "Recovery"). A torn
 *   tail may also be a log cut short, which loses the transactions after the cut: then a number at
 *   or above nextDataId may have been handed out by one of them, and its file is kept. Otherwise
 *   (any other problem: a file lost records, the log lost transactions, an inode fsck cleared) the
 *   absence of an inode proves nothing and the file is kept, as "#<dataId>" in /lost+found: a
 *   regular file, owner 0, mode 0600, its size the file's length, its times the file's.
 *   A removal happens once the WAL holding the metadata changes of this run is durable: a power
 *   loss can then never bring back an inode whose file is gone. The first read-write open after an
 *   unclean shutdown removes the content files no inode names (Image.reclaimContents, with the
 *   same listing), so after recovery this pass finds none. Files named like content files
 *   but at the path of no id razorfs hands out (a leading zero, the wrong xx, a number of 2^48 or
 *   more) were never written by razorfs and are removed as before; files in data/ that do not look
 *   like content files are left alone.
 * Frees: nothing.
 */
import fs from 'node:fs'
import path from 'node:path'

import {listContentFiles, liveDataIds} from '../storage/content-files.js'
import {DATA_DIR_NAME, IF_ORPHAN, S_IFREG} from '../storage/format.js'
import {FILE_SIZE_MAX, timespecOfNs} from '../storage/types.js'
import {D, I, ROOT, TC} from './checked-image.js'
import {DATA_ID_LIMIT, contentPath} from './locate.js'
import {LPF, LostFound} from './lost-found.js'
import {PR} from './problems.js'
import {type Check, ENT_LIVE, INO_LIVE, typeName} from './state.js'

const T_REG = S_IFREG >>> 12
/** Problems that are states a crash leaves, not damage: they do not make the absence of an inode unproven. */
const CRASH_STATES = new Set(['PR_4_ORPHAN', 'PR_7_TORN_TAIL'])

export function pass6(c: Check): number {
  const {ctx, img, st} = c
  ctx.header(PR.PR_6_PASS_HEADER)
  const damage = ctx.problems.filter(p => !CRASH_STATES.has(p.id) && !p.id.startsWith('PR_6_'))
  if (st.logLost) sizesPastLog(c)
  const ids = liveDataIds(img.nb, s => img.no(s), st.nodeHw)
  const next = img.nodeCtl(TC.nextDataId)
  const lf = new LostFound(c, {
    find() {
      const d = st.entryIndexOk ? img.findEntry(ROOT, LPF, st.limit) : 0
      return d !== 0 && st.ent[d] === ENT_LIVE ? d : 0
    },
    displaced: slot => reconnectDisplaced(c, lf, slot),
  })
  let files = 0
  let synced = false
  for (const f of listContentFiles(path.join(img.dir, DATA_DIR_NAME))) {
    files++
    if (f.id !== undefined && ids.has(f.id)) continue
    let stat: fs.BigIntStats
    try {
      stat = fs.statSync(f.path, {bigint: true})
    } catch {
      continue
    }

    const bytes = Number(stat.size)
    const shown = `${DATA_DIR_NAME}/${f.rel}`
    // Empty, at the path of an id: a spare (nothing in it to keep, whatever else is damaged).
    const problem = bytes === 0 && f.id !== undefined && f.id < DATA_ID_LIMIT ? PR.PR_6_SPARE_CONTENT : PR.PR_6_UNUSED_CONTENT
    const why =
      problem === PR.PR_6_SPARE_CONTENT || f.id === undefined || f.id >= DATA_ID_LIMIT
        ? undefined
        : damage.length > 0
          ? `the image is damaged (${damage.length} problem${damage.length === 1 ? '' : 's'} before this pass, the first ${damage[0].id}), so that no inode names it proves nothing`
          : st.logTorn && f.id >= next
            ? `the log ends in a torn transaction and its number is not below nextDataId (${next}): a transaction lost after the tear may have handed it out`
            : undefined
    if (why !== undefined) {
      if (ctx.fix(PR.PR_6_LOST_CONTENT, {path: shown, bytes, reason: why}, {canFix: st.canAllocate && (!ctx.writable || lf.get() !== 0)}) && lf.get() !== 0) {
        reconnectContent(c, lf, f.id!, stat)
      }

      continue
    }

    if (ctx.fix(problem, {path: shown, bytes})) {
      if (!synced) {
        img.store.sync()
        synced = true
      }

      fs.rmSync(f.path, {force: true})
      files--
    }
  }

  ctx.endPass()
  return files
}

/** A new regular file in /lost+found for content file `dataId` (its bytes stay where they are). */
function reconnectContent(c: Check, lf: LostFound, dataId: number, stat: fs.BigIntStats): void {
  const {img, st} = c
  const time = (ns: bigint): [number, number] => {
    const {sec, nsec} = timespecOfNs(ns)
    return [sec, nsec]
  }
  img.store.transaction(() => {
    const slot = img.nodes.alloc()
    st.growInodes(img.nodes.highWater)
    img.initInode(slot, S_IFREG | 0o600, 1, {uid: 0, gid: 0}, [time(stat.atimeNs), time(stat.mtimeNs), time(stat.mtimeNs)])
    img.setN64(slot, I.size, Math.min(Number(stat.size), FILE_SIZE_MAX))
    img.setN64(slot, I.dataId, dataId)
    st.ino[slot] = INO_LIVE
    st.type[slot] = T_REG
    lf.attach(slot, `#${dataId}`)
    if (img.nodeCtl(TC.nextDataId) <= dataId) img.setCtl64(img.nf, TC.nextDataId, dataId + 1)
  })
}

/**
 * The inode of a non-directory that was named lost+found lost that name when /lost+found was
 * made: reconnected in it as pass 3 would have, if no other entry names it.
 */
function reconnectDisplaced(c: Check, lf: LostFound, slot: number): void {
  const {ctx, img, st} = c
  for (let d = 1; d < st.entHw; d++) if (st.ent[d] === ENT_LIVE && img.e8(d, D.type) !== 0 && img.e32(d, D.child) === slot) return
  if ((img.n32(slot, I.flags) & IF_ORPHAN) !== 0) return
  if (!ctx.fix(PR.PR_3_UNATTACHED_INODE, {slot, type: typeName(st.type[slot]), size: img.n64(slot, I.size)})) return
  img.store.transaction(() => {
    lf.attach(slot, `#${slot}`)
    img.setN32(slot, I.nlink, 1)
  })
}

/** The log lost transactions: a file's size may be older than the bytes its content file holds. */
function sizesPastLog(c: Check): void {
  const {ctx, img, st} = c
  for (let s = 1; s < st.nodeHw; s++) {
    if (st.ino[s] !== INO_LIVE || st.type[s] !== T_REG) continue
    const dataId = img.n64(s, I.dataId)
    if (dataId === 0) continue
    let length: number
    try {
      length = fs.statSync(contentPath(c, dataId)).size
    } catch {
      continue
    }

    const size = img.n64(s, I.size)
    length = Math.min(length, FILE_SIZE_MAX)
    if (length <= size) continue
    if (ctx.fix(PR.PR_6_CONTENT_PAST_SIZE, {slot: s, size, path: contentPath(c, dataId).slice(img.dir.length + 1), length})) {
      img.store.transaction(() => img.setN64(s, I.size, length))
    }
  }
}
