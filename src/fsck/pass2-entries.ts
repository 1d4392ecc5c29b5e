/**
 * Pass 2: directory entries (entries.dat) and their two access paths, the directory lists and
 * entries.idx.
 *
 * Checks:
 *   1. each live directory's list (dirHead, next, prev): its entries, each once, prev links right,
 *      and every entry whose parent it is (an entry whose parent field is not a live directory is
 *      tolerated and remembered: the list that holds it says what its parent was);
 *   2. each entry: a free slot holds only its free-list link; the parent is a live directory; the
 *      child is a live inode, not the root, not the directory itself; childGen and type are the
 *      child's; the name is an interned, legal name (1 to 255 bytes, no "/" or NUL, not "." or
 *      ".."), and nameHash, nameLength and inlineName are its copies;
 *   3. entries.idx: every used entry exactly once, in the bucket of its key, and counted;
 *   4. no two entries of one directory have the same name.
 * Collects: `st.ent` (free / live / damaged and left).
 * Relies on: pass 1 (`st.ino`, `st.type`, `st.str`, sound tables, heap and strings.idx: a name is
 *   interned again from an entry's own copy when its interned string is lost).
 * First, when nodes.dat lost records (pass 0), the inodes entries name in blank slots are rebuilt
 *   (salvage.ts), so that their entries are checked against them rather than removed.
 * Repairs: fields copied from the child or the name; a name interned again; a parent restored from
 *   the list holding the entry; entries removed (out of the index and their list, then freed);
 *   lists and the index rebuilt from the entries. Decisions are taken first and the entries.idx and
 *   list changes applied together at the end, so a removal never walks a chain being repaired.
 * Frees: the per-pass maps.
 */
import {DATA_OFFSET, DIRENT, INLINE_NAME, INODE, S_IFDIR, STRING} from '../storage/format.js'
import {fnv1a} from '../storage/codec/checksum.js'
import {CONTROL_OFFSET, INDEX_CONTROL_USED, bucketOf, bucketOffset, bucketWord} from '../storage/codec/control.js'
import * as dirent from '../storage/codec/dirent.js'
import * as stringUnit from '../storage/codec/string-unit.js'
import {isZero, lastNonZero, nameProblem, shown} from './bytes.js'
import {CheckedImage, D, GEN_MASK, I, ROOT, S, XC} from './checked-image.js'
import {label} from './locate.js'
import {PR} from './problems.js'
import {rebuildLostInodes} from './salvage.js'
import {type Check, ENT_BAD, ENT_FREE, ENT_LIVE, INO_BAD, INO_FREE, INO_LIVE, STR_NAME, typeName} from './state.js'

export function pass2(c: Check): void {
  const {ctx, img, st} = c
  ctx.header(PR.PR_2_PASS_HEADER)
  rebuildLostInodes(c)
  const hw = st.entHw
  st.growEntries(hw)
  const ent = st.ent
  ent.fill(ENT_FREE)

  // ---- 1. directory lists ----
  const listed = new Uint8Array(hw)
  const owner = new Uint32Array(hw)
  const relist = new Set<number>()
  const damaged = new Map<number, string>()
  {
    const ew = img.words(img.ef)
    const eb = img.eb
    const nw = img.words(img.nf)
    const EB = DATA_OFFSET >>> 2
    const headWord = (DATA_OFFSET >>> 2) + I.dirHead.word
    for (let s = 1; s < st.nodeHw; s++) {
      if (!st.isDir(s)) continue
      ctx.tick(2, 'lists', s, st.nodeHw)
      let prev = 0
      let why: string | undefined
      for (let d = nw[headWord + s * (INODE.SIZE >>> 2)]; d !== 0; ) {
        const b = EB + d * EW.size
        if (d >= hw) why = `it names entry slot ${d}, outside the table`
        else if (D.type.get(eb, img.eo(d)) === 0) why = `entry ${d} on it is free`
        else if (listed[d]) why = `entry ${d} is listed twice`
        else if (ew[b + EW.parent] !== s && st.isDir(ew[b + EW.parent])) why = `entry ${d} on it belongs to directory ${ew[b + EW.parent]}`
        else if (ew[b + EW.prev] !== prev) why = `entry ${d} has prev ${ew[b + EW.prev]}, expected ${prev}`
        if (why !== undefined) break
        listed[d] = 1
        owner[d] = s
        prev = d
        d = ew[b + EW.next]
      }

      if (why !== undefined) damaged.set(s, why)
    }

    for (let d = 1; d < hw; d++) {
      if (listed[d] || D.type.get(eb, img.eo(d)) === 0) continue
      const p = ew[EB + d * EW.size + EW.parent]
      if (st.isDir(p) && !damaged.has(p)) damaged.set(p, `entry ${d} is not on it`)
    }
  }

  for (const [s, reason] of [...damaged].sort((a, b) => a[0] - b[0])) {
    if (ctx.fix(PR.PR_2_DIR_LIST, {dir: s, reason})) relist.add(s)
  }

  // A list is sound unless it is damaged and its rebuild was declined.
  const listOk = (s: number): boolean => !damaged.has(s) || relist.has(s)

  // ---- 2. each entry ----
  const clear: number[] = []
  const newParent = new Map<number, number>()
  const newHash = new Map<number, number>()
  const nameOk = new Uint8Array(hw)
  const v: EntryScan = {listed, owner, listOk, clear, newParent, newHash, nameOk}
  let ew = img.words(img.ef)
  let eb = img.eb
  let sb = img.sb
  const legal = new Uint8Array(Math.max(1, st.heapEnd))
  const {ino, type: types, str} = st
  const nodeHw = st.nodeHw
  const heapEnd = st.heapEnd
  let nw = img.words(img.nf)
  const NB = DATA_OFFSET >>> 2
  for (let d = 1; d < hw; d++) {
    ctx.tick(2, 'entries', d, hw)
    // The fast test: accepts only entries every check of checkEntry accepts.
    const b = (DATA_OFFSET >>> 2) + d * EW.size
    const o = DATA_OFFSET + d * DIRENT.SIZE
    const type = D.type.get(eb, o)
    let ok: boolean
    if (type === 0) {
      ok = true
      for (let k = 0; k < EW.size && ok; k++) if (k !== EW.hashNext && ew[b + k] !== 0) ok = false
      if (ok) continue
    } else {
      const parent = ew[b + EW.parent]
      const child = ew[b + EW.child]
      const unit = ew[b + EW.name]
      ok =
        parent < nodeHw &&
        ino[parent] === INO_LIVE &&
        types[parent] === TYPE_DIR &&
        child > ROOT &&
        child < nodeHw &&
        child !== parent &&
        ino[child] === INO_LIVE &&
        type === types[child] &&
        ew[b + EW.childGen] === (nw[NB + child * (INODE.SIZE >>> 2)] & GEN_MASK) &&
        unit > 0 &&
        unit < heapEnd &&
        str[unit] === STR_NAME
      if (ok) {
        const so = img.so(unit)
        const len = stringUnit.length(sb, so)
        const m = len < INLINE_NAME ? len : INLINE_NAME
        const inline = o + D.inlineName.off
        const bytesAt = so + STRING.SIZE
        ok =
          len >= 1 &&
          len <= 255 &&
          D.nameLength.get(eb, o) === len &&
          ew[b + EW.nameHash] === S.hash.get(sb, so) &&
          eb.compare(sb, bytesAt, bytesAt + m, inline, inline + m) === 0
        for (let k = inline + m; k < o + DIRENT.SIZE && ok; k++) if (eb[k] !== 0) ok = false
        if (ok) {
          if (legal[unit] === 0) legal[unit] = legalAt(sb, bytesAt, len) ? 1 : 2
          ok = legal[unit] === 1
        }
      }

      if (ok) {
        ent[d] = ENT_LIVE
        nameOk[d] = 1
        continue
      }
    }

    checkEntry(c, d, v)
    // A repair may have grown a file (a name interned again): read the current mappings.
    ew = img.words(img.ef)
    eb = img.eb
    sb = img.sb
    nw = img.words(img.nf)
  }

  // ---- 3. entries.idx ----
  const cleared = new Set(clear)
  const pendingKey = new Map<number, number>()
  for (const d of new Set([...newParent.keys(), ...newHash.keys()])) {
    if (!cleared.has(d)) pendingKey.set(d, dirent.dirHash(newParent.get(d) ?? img.e32(d, D.parent), newHash.get(d) ?? img.e32(d, D.nameHash)))
  }

  const foundIn = new Map<number, number>()
  const indexWhy = checkIndex(c, pendingKey, foundIn)
  let rebuildIndex = false
  if (indexWhy !== undefined) {
    if (ctx.fix(PR.PR_2_INDEX, {reason: indexWhy})) rebuildIndex = true
    else st.entryIndexOk = false
  }

  // ---- apply: removals, new parents and hashes, rebuilt lists and index ----
  if (ctx.writable && (clear.length > 0 || newParent.size > 0 || newHash.size > 0 || relist.size > 0 || rebuildIndex)) {
    const indexSound = !rebuildIndex && st.entryIndexOk
    img.store.transaction(() => {
      for (const d of clear) {
        if (indexSound) img.unlinkFromIndexBucket(d, img.entryBucket(d), st.limit)
        if (listed[d] && listOk(owner[d]) && !relist.has(owner[d])) unlinkFromList(c, d, owner[d])
        img.freeEntry(d)
        ent[d] = ENT_FREE
      }

      for (const [d, key] of pendingKey) {
        // The index may file the entry under its right key already (only the field was damaged).
        const found = foundIn.get(d)
        const move = indexSound && found !== undefined && found !== bucketOf(key, img.entryIndex.level, img.entryIndex.split)
        if (move) img.unlinkFromIndexBucket(d, found, st.limit)
        if (newParent.has(d)) img.setE32(d, D.parent, newParent.get(d)!)
        if (newHash.has(d)) img.setE32(d, D.nameHash, newHash.get(d)!)
        if (move) img.entryIndex.insert(d, key)
      }
    })

    if (relist.size > 0) rebuildLists(c, relist)
    if (rebuildIndex) {
      img.store.transaction(() => {
        const items: number[] = []
        for (let d = 1; d < hw; d++) if (img.e8(d, D.type) !== 0) items.push(d)
        img.rebuildIndex(
          img.entryIndex,
          items,
          d => img.entryKey(d),
          (d, next) => img.setE32(d, D.hashNext, next),
        )
      })
    }
  }

  // ---- 4. duplicate names in a directory ----
  checkDuplicates(c, nameOk)
  ctx.endPass()
}

interface EntryScan {
  listed: Uint8Array
  owner: Uint32Array
  listOk(dir: number): boolean
  clear: number[]
  newParent: Map<number, number>
  newHash: Map<number, number>
  nameOk: Uint8Array
}

/** Word offsets of a DIRENT (its bytes 32 to 63 are read as bytes). */
const EW = {
  parent: D.parent.word,
  name: D.name.word,
  child: D.child.word,
  childGen: D.childGen.word,
  next: D.next.word,
  prev: D.prev.word,
  hashNext: D.hashNext.word,
  nameHash: D.nameHash.word,
  size: DIRENT.SIZE >>> 2,
}
const TYPE_DIR = S_IFDIR >>> 12

/** Is the name at bytes [start, start + len) legal (no "/" or NUL, not "." or "..")? */
function legalAt(buf: Buffer, start: number, len: number): boolean {
  if (len <= 2 && buf[start] === 0x2e && (len === 1 || buf[start + 1] === 0x2e)) return false
  for (let i = start; i < start + len; i++) if (buf[i] === 0x2f || buf[i] === 0) return false
  return true
}

/** One entry, every check, each problem reported; field repairs made now, the rest recorded in `v`. */
function checkEntry(c: Check, d: number, v: EntryScan): void {
  const {ctx, img, st} = c
  const {owner, listOk, clear, newParent, newHash, nameOk} = v
  const ent = st.ent
  const o = img.eo(d)
  let eb = img.eb
  if (D.type.get(eb, o) === 0) {
    // A free slot keeps only its free-list link (codec/dirent.ts `validate`).
    if (dirent.validate(eb, o).length > 0 && ctx.fix(PR.PR_2_FREE_NOT_ZERO, {entry: d})) {
      img.store.transaction(() => {
        img.zeroRange(img.ef, o, o + D.hashNext.off)
        img.zeroRange(img.ef, o + D.hashNext.off + D.hashNext.size, o + DIRENT.SIZE)
      })
    }

    return
  }

  let parent = D.parent.get(eb, o)
  const child = D.child.get(eb, o)
  const name = shown(label(c, d))
  ent[d] = ENT_LIVE
  if (!st.isDir(parent)) {
    if (parent >= 1 && parent < st.nodeHw && st.ino[parent] === INO_BAD) {
      ent[d] = ENT_BAD
      return
    }

    if (owner[d] !== 0 && listOk(owner[d])) {
      if (ctx.fix(PR.PR_2_PARENT_FIELD, {entry: d, name, value: parent, expected: owner[d]})) {
        newParent.set(d, owner[d])
        parent = owner[d]
      } else {
        ent[d] = ENT_BAD
        return
      }
    } else {
      if (ctx.fix(PR.PR_2_BAD_PARENT, {entry: d, name, parent})) clear.push(d)
      else ent[d] = ENT_BAD
      return
    }
  }

  let reason: string | undefined
  if (child < 1 || child >= st.nodeHw) reason = 'outside the inode table'
  else if (st.ino[child] === INO_BAD) {
    ent[d] = ENT_BAD
    return
  } else if (st.ino[child] === INO_FREE) reason = 'free'
  else if (child === ROOT) reason = 'the root directory'
  else if (child === parent) reason = 'the directory itself'
  if (reason !== undefined) {
    if (ctx.fix(PR.PR_2_BAD_CHILD, {entry: d, name, parent, child, reason})) clear.push(d)
    else ent[d] = ENT_BAD
    return
  }

  // The name.
  const verdict = checkName(c, d, parent, name)
  eb = img.eb
  if (verdict === 'clear') {
    clear.push(d)
    return
  }

  if (verdict === 'ok') nameOk[d] = 1
  if (typeof verdict === 'number') {
    newHash.set(d, verdict)
    nameOk[d] = 1
  }

  // The child's generation and type.
  const gen = img.n32(child, I.gen) & GEN_MASK
  const childGen = D.childGen.get(eb, o)
  if (childGen !== gen && ctx.fix(PR.PR_2_CHILD_GEN, {entry: d, name, parent, value: childGen, child, expected: gen})) {
    img.store.transaction(() => img.setE32(d, D.childGen, gen))
  }

  const type = img.e8(d, D.type)
  if (type !== st.type[child] && ctx.fix(PR.PR_2_CHILD_TYPE, {entry: d, name, parent, value: type, child, expected: typeName(st.type[child])})) {
    img.store.transaction(() => img.setE8(d, D.type, st.type[child]))
  }
}

/**
 * The name of entry d: 'ok', 'clear' (no usable name), 'left' (a problem answered no), or the
 * new nameHash to set (applied with the index changes).
 */
function checkName(c: Check, d: number, parent: number, name: string): 'ok' | 'clear' | 'left' | number {
  const {ctx, img, st} = c
  const o = img.eo(d)
  const eb = img.eb
  const unit = D.name.get(eb, o)
  const nameLen = D.nameLength.get(eb, o)
  const nameHash = D.nameHash.get(eb, o)
  const inline = Buffer.from(D.inlineName.get(eb, o))
  // The entry's own copy is whole and proves itself: a short name whose bytes hash to nameHash.
  const own =
    nameLen >= 1 &&
    nameLen <= INLINE_NAME &&
    isZero(inline, nameLen, INLINE_NAME) &&
    fnv1a(inline, 0, nameLen) === nameHash &&
    nameProblem(inline.subarray(0, nameLen)) === undefined
  const ownBytes = inline.subarray(0, Math.min(nameLen, INLINE_NAME))

  let why: string | undefined
  if (unit === 0 || unit >= st.heapEnd) why = unit === 0 ? 'it has none' : 'past the end of the strings'
  else if (st.str[unit] !== STR_NAME) why = 'no interned name starts there'
  else if (img.strLength(unit) > 255) why = `it is ${img.strLength(unit)} bytes long`
  else why = nameProblem(img.strBytes(unit))

  const repoint = (code: number, values: Record<string, unknown>, target: () => number): 'ok' | 'left' => {
    if (!ctx.fix(code, {entry: d, parent, unit, ...values}, {canFix: st.canAllocate})) return 'left'
    img.store.transaction(() => img.setE32(d, D.name, target()))
    return 'ok'
  }

  if (why === undefined) {
    const bytes = img.strBytes(unit)
    const sHash = S.hash.get(img.sb, img.so(unit))
    const want = dirent.inlineOf(bytes)
    const field = nameLen !== bytes.length ? 'nameLength' : nameHash !== sHash ? 'nameHash' : !inline.equals(want) ? 'inlineName' : undefined
    if (field === undefined) return 'ok'
    if (own && !ownBytes.equals(bytes)) {
      return repoint(PR.PR_2_NAME_REPOINT, {name: shown(ownBytes), other: shown(Buffer.from(bytes))}, () => img.strings.intern(Buffer.from(ownBytes), nameHash))
    }

    const other = nameLen > INLINE_NAME ? findByCopy(c, nameHash, nameLen, inline) : 0
    if (other !== 0 && other !== unit) {
      return repoint(PR.PR_2_NAME_REPOINT, {name, other: shown(Buffer.from(bytes))}, () => other)
    }

    if (!ctx.fix(PR.PR_2_NAME_COPY, {entry: d, name, parent, field})) return 'left'
    img.store.transaction(() => {
      img.setE8(d, D.nameLength, bytes.length)
      if (!inline.equals(want)) D.inlineName.set(img.store, img.ef, o, want)
    })
    return sHash === nameHash ? 'ok' : sHash
  }

  if (own) {
    return repoint(PR.PR_2_NAME_RESTORE, {name: shown(ownBytes), reason: why}, () => img.strings.intern(Buffer.from(ownBytes), nameHash)) === 'ok'
      ? 'ok'
      : 'left'
  }

  const other = nameLen > INLINE_NAME ? findByCopy(c, nameHash, nameLen, inline) : 0
  if (other !== 0) return repoint(PR.PR_2_NAME_RESTORE, {name: shown(Buffer.from(img.strBytes(other))), reason: why}, () => other)
  return ctx.fix(PR.PR_2_BAD_NAME, {entry: d, parent, reason: `name unit ${unit}: ${why}`}) ? 'clear' : 'left'
}

/** An interned name of `len` bytes hashing to `hash` that starts with the 30 bytes `inline` (through strings.idx). */
function findByCopy(c: Check, hash: number, len: number, inline: Buffer): number {
  const {img, st} = c
  if (!st.stringIndexOk) return 0
  const sb = img.sb
  let steps = 0
  for (let u = img.strings.index.first(hash); u !== 0 && steps < st.limit; u = S.hashNext.get(sb, img.so(u)), steps++) {
    if (u >= st.heapEnd || st.str[u] !== STR_NAME) return 0
    if (S.hash.get(sb, img.so(u)) !== hash || img.strLength(u) !== len) continue
    const bytes = img.strBytes(u)
    if (bytes.compare(inline, 0, INLINE_NAME, 0, INLINE_NAME) === 0 && nameProblem(bytes) === undefined) return u
  }

  return 0
}

/** Unlink an entry from the list of `dir` that holds it (its parent field names another). */
function unlinkFromList(c: Check, d: number, dir: number): void {
  const {img} = c
  const next = img.e32(d, D.next)
  const prev = img.e32(d, D.prev)
  if (prev === 0) img.setN32(dir, I.dirHead, next)
  else img.setE32(prev, D.next, next)
  if (next !== 0) img.setE32(next, D.prev, prev)
  img.setN64(dir, I.size, Math.max(0, img.n64(dir, I.size) - 1))
}

/** Rebuild the lists of `dirs` from the entries whose parent they are (slot order, newest first). */
function rebuildLists(c: Check, dirs: Set<number>): void {
  const {img, st} = c
  const members = new Map<number, number[]>()
  for (const s of dirs) members.set(s, [])
  for (let d = st.entHw - 1; d >= 1; d--) {
    if (img.e8(d, D.type) === 0) continue
    members.get(img.e32(d, D.parent))?.push(d)
  }

  img.store.transaction(() => {
    for (const [s, list] of members) {
      if (!st.isDir(s)) continue
      img.setN32(s, I.dirHead, list[0] ?? 0)
      for (let i = 0; i < list.length; i++) {
        img.setE32(list[i], D.prev, i === 0 ? 0 : list[i - 1])
        img.setE32(list[i], D.next, list[i + 1] ?? 0)
      }

      img.setN64(s, I.size, list.length)
    }
  })
}

/**
 * entries.idx: why it is damaged, or undefined. An entry in `pendingKey` (its parent or nameHash
 * field is being corrected) may sit in the bucket of its old or of its corrected key; where it
 * was found goes to `foundIn`.
 */
function checkIndex(c: Check, pendingKey: Map<number, number>, foundIn: Map<number, number>): string | undefined {
  const {ctx, img, st} = c
  const xf = img.xf
  const xb = xf.buf
  const hw = st.entHw
  const capB = CheckedImage.capacity(xf)
  const level = img.ctl(xf, XC.level)
  const split = img.ctl(xf, XC.split)
  const count = img.ctl(xf, XC.count)
  if (level > 30 || split >= 2 ** level || 2 ** level + split > capB) {
    return `its control block says level ${level}, split ${split}, for a file of ${capB} buckets`
  }

  const inUse = 2 ** level + split
  const ew = img.words(img.ef)
  const xw = img.words(xf)
  const eb = img.eb
  const EB = DATA_OFFSET >>> 2
  let used = 0
  for (let d = 1; d < hw; d++) if (D.type.get(eb, img.eo(d)) !== 0) used++
  const seen = new Uint8Array(hw)
  let found = 0
  const mask = 2 ** level - 1
  const mask2 = 2 ** (level + 1) - 1
  for (let bucket = 0; bucket < inUse; bucket++) {
    ctx.tick(2, 'entries.idx', bucket, inUse)
    for (let d = xw[bucketWord(bucket)]; d !== 0; ) {
      if (d >= hw || D.type.get(eb, img.eo(d)) === 0) return `bucket ${bucket} names entry slot ${d}, which is not a used entry`
      if (seen[d]) return `entry ${d} is chained twice`
      seen[d] = 1
      found++
      const b = EB + d * EW.size
      const h = dirent.dirHash(ew[b + EW.parent], ew[b + EW.nameHash])
      let want = h & mask
      if (want < split) want = h & mask2
      if (want !== bucket) {
        const pending = pendingKey.get(d)
        if (pending === undefined || bucketOf(pending, level, split) !== bucket)
          return `entry ${d} is in bucket ${bucket}, but its key puts it in bucket ${want}`
      }

      if (pendingKey.has(d)) foundIn.set(d, bucket)
      d = ew[b + EW.hashNext]
    }
  }

  if (found !== used) return `${used - found} entries are not in it`
  if (count !== used) return `its count is ${count}, but it holds ${used} entries`
  if (lastNonZero(xb, bucketOffset(inUse), bucketOffset(capB)) >= 0) return `buckets past the ${inUse} in use are not empty`
  if (lastNonZero(xb, CONTROL_OFFSET + INDEX_CONTROL_USED, DATA_OFFSET) >= 0) return 'the control page holds stray bytes'
  return undefined
}

/**
 * Two live entries of one directory with the same name: the second (higher slot) is removed.
 * Entries with one name in one directory share a key, so with a sound entries.idx each bucket's
 * chain is compared within itself; without one, a map by key does the grouping.
 */
function checkDuplicates(c: Check, nameOk: Uint8Array): void {
  const {ctx, img, st} = c
  const candidate = (d: number): boolean => st.ent[d] === ENT_LIVE && nameOk[d] === 1 && img.e8(d, D.type) !== 0
  const same = (a: number, b: number): boolean =>
    img.e32(a, D.parent) === img.e32(b, D.parent) &&
    img.e32(a, D.nameHash) === img.e32(b, D.nameHash) &&
    img.e8(a, D.nameLength) === img.e8(b, D.nameLength) &&
    label(c, a).equals(label(c, b))
  const dups: Array<[number, number]> = []
  if (st.entryIndexOk) {
    const index = img.entryIndex
    const xw = img.words(img.xf)
    const chain: number[] = []
    const buckets = index.buckets
    for (let bucket = 0; bucket < buckets; bucket++) {
      ctx.tick(2, 'names', bucket, buckets)
      chain.length = 0
      for (let d = xw[bucketWord(bucket)], steps = 0; d !== 0 && steps < st.limit; d = img.e32(d, D.hashNext), steps++) if (candidate(d)) chain.push(d)
      if (chain.length < 2) continue
      chain.sort((a, b) => a - b)
      for (let j = 1; j < chain.length; j++) {
        for (let i = 0; i < j; i++) {
          if (chain[i] !== 0 && same(chain[i], chain[j])) {
            dups.push([chain[i], chain[j]])
            chain[j] = 0
            break
          }
        }
      }
    }
  } else {
    const first = new Map<number, number[]>()
    for (let d = 1; d < st.entHw; d++) {
      if (!candidate(d)) continue
      const key = img.entryKey(d)
      const list = first.get(key)
      if (list === undefined) {
        first.set(key, [d])
        continue
      }

      const dup = list.find(e => same(e, d))
      if (dup === undefined) list.push(d)
      else dups.push([dup, d])
    }
  }

  for (const [keep, d] of dups.sort((a, b) => a[1] - b[1])) {
    const parent = img.e32(d, D.parent)
    if (ctx.fix(PR.PR_2_DUP_NAME, {parent, name: shown(label(c, d)), first: keep, entry: d}, {canFix: st.entryIndexOk && st.entTableOk})) {
      img.store.transaction(() => img.removeEntry(d, st.limit))
      st.ent[d] = ENT_FREE
    }
  }
}
