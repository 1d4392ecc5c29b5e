/**
 * Pass 4: link counts, directory sizes and orphans.
 *
 * Checks: a non-directory's nlink is the number of entries naming it; a directory's nlink is 2 +
 *   its subdirectories and its size is its number of entries; an orphan (IF_ORPHAN, on the orphan
 *   list) is named by no entry.
 * Collects: nothing.
 * Relies on: passes 2 and 3 (the entries left are sound and final; every live inode that is not
 *   an orphan is named by one, unless its reconnection was declined: then it is left alone here).
 * Repairs: nlink and size set; an orphan that entries name is taken off the list; an orphan no
 *   entry names is freed: no process can hold it after a restart, exactly what a read-write open
 *   does (its strings and content file are reclaimed by passes 5 and 6).
 * Frees: nothing.
 */
import {IF_ORPHAN, S_IFDIR} from '../storage/format.js'
import {fromWords} from '../storage/codec/field.js'
import {D, I} from './checked-image.js'
import {PR} from './problems.js'
import {type Check, ENT_LIVE, INO_FREE, typeName} from './state.js'

const TYPE_DIR = S_IFDIR >>> 12

export function pass4(c: Check): void {
  const {ctx, img, st} = c
  ctx.header(PR.PR_4_PASS_HEADER)
  const hw = st.nodeHw
  const links = new Uint32Array(hw)
  const subdirs = new Uint32Array(hw)
  const entries = new Float64Array(hw)
  const ew = img.words(img.ef)
  const eb = img.eb
  for (let d = 1; d < st.entHw; d++) {
    if (st.ent[d] !== ENT_LIVE || D.type.get(eb, img.eo(d)) === 0) continue
    const b = img.eo(d) >>> 2
    const p = ew[b + D.parent.word]
    const ch = ew[b + D.child.word]
    if (!st.isDir(p) || !st.isLive(ch)) continue
    links[ch]++
    entries[p]++
    if (st.type[ch] === TYPE_DIR) subdirs[p]++
  }

  for (let s = 1; s < hw; s++) {
    if (!st.isLive(s)) continue
    ctx.tick(4, 'inodes', s, hw)
    const type = st.type[s]
    const nw = img.words(img.nf)
    const b = img.no(s) >>> 2
    const nlink = nw[b + I.nlink.word]
    // The common case: nothing to say.
    if (
      (nw[b + I.flags.word] & IF_ORPHAN) === 0 &&
      (type === TYPE_DIR
        ? nlink === 2 + subdirs[s] && fromWords(nw[b + I.size.word], nw[b + I.size.word + 1]) === entries[s]
        : links[s] === 0 || nlink === links[s])
    )
      continue
    if ((img.n32(s, I.flags) & IF_ORPHAN) !== 0) {
      if (links[s] === 0 && !(type === TYPE_DIR && entries[s] > 0)) {
        if (ctx.fix(PR.PR_4_ORPHAN, {slot: s, type: typeName(type), size: img.n64(s, I.size)}, {canFix: st.orphanListOk && st.nodeTableOk})) {
          img.store.transaction(() => {
            img.unlinkOrphan(s, st.limit)
            img.freeInode(s)
          })
          st.ino[s] = INO_FREE
        }

        continue
      }

      if (links[s] > 0 && ctx.fix(PR.PR_4_ORPHAN_LINKED, {slot: s, count: links[s]}, {canFix: st.orphanListOk})) {
        img.store.transaction(() => img.unlinkOrphan(s, st.limit))
      }
    }

    if (type === TYPE_DIR) {
      const want = 2 + subdirs[s]
      if (nlink !== want && ctx.fix(PR.PR_4_BAD_NLINK, {slot: s, type: typeName(type), value: nlink, expected: want}))
        img.store.transaction(() => img.setN32(s, I.nlink, want))
      const size = img.n64(s, I.size)
      if (size !== entries[s] && ctx.fix(PR.PR_4_DIR_SIZE, {slot: s, value: size, expected: entries[s]}))
        img.store.transaction(() => img.setN64(s, I.size, entries[s]))
    } else if (links[s] > 0 && nlink !== links[s]) {
      if (ctx.fix(PR.PR_4_BAD_NLINK, {slot: s, type: typeName(type), value: nlink, expected: links[s]}))
        img.store.transaction(() => img.setN32(s, I.nlink, links[s]))
    }
  }

  ctx.endPass()
}
