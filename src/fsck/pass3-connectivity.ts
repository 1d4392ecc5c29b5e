/**
 * Pass 3: connectivity.
 *
 * Checks: every directory is named by exactly one entry; every directory is reachable from the root
 *   by entries (no cycles) and its parent field is the directory holding its entry; every live
 *   inode that is not an orphan is named by some entry.
 * Collects: nothing for later passes (pass 4 recounts the entries).
 * Relies on: pass 1 (the root is a live directory, `st.ino`/`st.type`), pass 2 (`st.ent`: the
 *   entries left are sound; lists and entries.idx are sound, so entries can be added and removed).
 * Repairs: extra entries naming a directory removed; parent fields set; unreachable directories
 *   (the top of each unreachable subtree; a cycle is cut at one of its entries) and unattached
 *   inodes get an entry "#<slot>" in /lost+found, which is created (owner 0, mode 0700) when first
 *   needed; a non-directory named lost+found in the root is unlinked first (and reconnected); see
 *   lost-found.ts.
 * Frees: its maps.
 */
import {IF_ORPHAN, S_IFDIR} from '../storage/format.js'
import {shown} from './bytes.js'
import {D, I, ROOT} from './checked-image.js'
import {PR} from './problems.js'
import {type Check, ENT_FREE, ENT_LIVE, typeName} from './state.js'
import {label} from './locate.js'
import {LPF, LostFound} from './lost-found.js'

const TYPE_DIR = S_IFDIR >>> 12

interface Links {
  /** Live entries naming each inode. */
  count: Uint32Array
  /** For each directory: the parent of the (first) entry naming it. */
  holder: Uint32Array
  /** For each directory: its first entry, chained through `sibling`. */
  first: Uint32Array
  sibling: Uint32Array
}

function collect(c: Check): Links {
  const {img, st} = c
  const links: Links = {
    count: new Uint32Array(st.nodeHw),
    holder: new Uint32Array(st.nodeHw),
    first: new Uint32Array(st.nodeHw),
    sibling: new Uint32Array(st.entHw),
  }
  const ew = img.words(img.ef)
  const eb = img.eb
  for (let d = st.entHw - 1; d >= 1; d--) {
    if (st.ent[d] !== ENT_LIVE || D.type.get(eb, img.eo(d)) === 0) continue
    const b = img.eo(d) >>> 2
    const p = ew[b + D.parent.word]
    const ch = ew[b + D.child.word]
    if (!st.isDir(p) || !st.isLive(ch)) continue
    if (links.count[ch]++ === 0 || links.holder[ch] === 0) links.holder[ch] = p
    links.sibling[d] = links.first[p]
    links.first[p] = d
  }

  return links
}

export function pass3(c: Check): void {
  const {ctx, img, st} = c
  ctx.header(PR.PR_3_PASS_HEADER)
  if (!st.isDir(ROOT)) {
    ctx.endPass()
    return
  }

  const canEdit = (): boolean => st.entryIndexOk && st.entTableOk

  // ---- directories named by more than one entry ----
  let links = collect(c)
  const multi = new Map<number, number[]>()
  for (let s = 1; s < st.nodeHw; s++) if (links.count[s] > 1 && st.type[s] === TYPE_DIR) multi.set(s, [])
  if (multi.size > 0) {
    for (let d = 1; d < st.entHw; d++) {
      if (st.ent[d] !== ENT_LIVE) continue
      const list = multi.get(img.e32(d, D.child))
      if (list !== undefined && st.isDir(img.e32(d, D.parent))) list.push(d)
    }

    for (const [dir, list] of multi) {
      const parentField = img.n32(dir, I.parent)
      const keep = list.find(d => img.e32(d, D.parent) === parentField) ?? list[0]
      for (const d of list) {
        if (d === keep) continue
        if (ctx.fix(PR.PR_3_DIR_MULTI_LINK, {dir, entry: d, name: shown(label(c, d)), parent: img.e32(d, D.parent)}, {canFix: canEdit()})) {
          img.store.transaction(() => img.removeEntry(d, st.limit))
          st.ent[d] = ENT_FREE
        }
      }
    }

    links = collect(c)
  }

  // ---- reachability from the root ----
  const reached = new Uint8Array(st.nodeHw + 1)
  const queue = new Uint32Array(st.nodeHw + 1)
  const walk = (from: number): void => {
    let head = 0
    let tail = 0
    reached[from] = 1
    queue[tail++] = from
    while (head < tail) {
      const s = queue[head++]
      ctx.tick(3, 'directories', head, st.nodeHw)
      for (let d = links.first[s]; d !== 0; d = links.sibling[d]) {
        const ch = img.e32(d, D.child)
        if (st.type[ch] !== TYPE_DIR || reached[ch]) continue
        reached[ch] = 1
        queue[tail++] = ch
      }
    }
  }

  walk(ROOT)

  // ---- /lost+found, created when something must go there ----
  const lf = new LostFound(c, {
    find() {
      let d = 0
      for (let e = links.first[ROOT]; e !== 0; e = links.sibling[e]) if (label(c, e).equals(LPF)) d = e
      return d
    },
    found(slot, created) {
      if (!created) {
        if (!reached[slot]) walk(slot)
      } else if (slot < reached.length) {
        reached[slot] = 1
        links.holder[slot] = ROOT
      }
    },
    // Its inode is reconnected below like any other unattached one, if that was its only name.
    displaced: slot => links.count[slot]--,
  })
  const lostFound = (): number => lf.get()
  const reconnect = (slot: number, cut: number): void => {
    img.store.transaction(() => lf.attach(slot, `#${slot}`, cut))
  }

  // ---- unreachable directories: reconnect the top of each unreachable tree ----
  const tops = new Set<number>()
  const stamp = new Uint32Array(st.nodeHw + 1)
  let walkId = 0
  const hw = st.nodeHw
  for (let u = 1; u < hw; u++) {
    if (!st.isDir(u) || reached[u]) continue
    // An empty orphan directory (removed while open) is pass 4's: it is freed, not reconnected.
    if (links.count[u] === 0 && links.first[u] === 0 && (img.n32(u, I.flags) & IF_ORPHAN) !== 0) continue
    walkId++
    let top = u
    let reason = 'no entry names it'
    for (let v = u, steps = 0; steps <= hw; steps++) {
      stamp[v] = walkId
      const h = links.count[v] === 0 ? 0 : links.holder[v]
      if (h === 0 || reached[h] || !st.isDir(h)) {
        top = v
        if (h !== 0) reason = `its entry is in directory ${h}`
        break
      }

      if (stamp[h] === walkId) {
        top = v
        reason = `it is in a cycle of directories, its entry is in directory ${h}`
        break
      }

      v = h
    }

    const cut = links.count[top] === 0 ? 0 : entryNaming(c, links, top)
    if (ctx.fix(PR.PR_3_UNCONNECTED_DIR, {dir: top, reason}, {canFix: st.canAllocate && (!ctx.writable || lostFound() !== 0)}) && lostFound() !== 0) {
      reconnect(top, cut)
    }

    tops.add(top)
    walk(top)
  }

  // ---- parent fields: the directory holding each directory's entry ----
  for (let s = 1; s < hw; s++) {
    if (!reached[s] || !st.isDir(s) || tops.has(s)) continue
    const want = s === ROOT ? ROOT : links.holder[s]
    const value = img.n32(s, I.parent)
    if (value !== want && ctx.fix(PR.PR_3_BAD_PARENT, {dir: s, value, expected: want})) img.store.transaction(() => img.setN32(s, I.parent, want))
  }

  // ---- unattached inodes ----
  for (let s = 1; s < hw; s++) {
    if (!st.isLive(s) || st.type[s] === TYPE_DIR || links.count[s] !== 0) continue
    if ((img.n32(s, I.flags) & IF_ORPHAN) !== 0) continue
    ctx.tick(3, 'inodes', s, hw)
    if (
      ctx.fix(
        PR.PR_3_UNATTACHED_INODE,
        {slot: s, type: typeName(st.type[s]), size: img.n64(s, I.size)},
        {canFix: st.canAllocate && (!ctx.writable || lostFound() !== 0)},
      ) &&
      lostFound() !== 0
    ) {
      reconnect(s, 0)
      img.store.transaction(() => img.setN32(s, I.nlink, 1))
    }
  }

  ctx.endPass()
}

/** The live entry naming directory `dir` (in the directory `links.holder` says). */
function entryNaming(c: Check, links: Links, dir: number): number {
  const {img} = c
  for (let d = links.first[links.holder[dir]]; d !== 0; d = links.sibling[d]) if (img.e32(d, D.child) === dir) return d
  return 0
}
