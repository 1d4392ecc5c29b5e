/**
 * Pass 5: names and strings: reference counts and reclaiming.
 *
 * Checks: each interned string (kind 1) is unique (no two with the same bytes) and its refs is the
 *   number of entries and symlinks naming it; each xattr blob (kind 2) is owned by exactly one
 *   inode and has refs 1.
 * Collects: nothing.
 * Relies on: passes 1 to 4 (the final set of entries and inodes; the heap's free lists and
 *   strings.idx are sound, so strings can be freed).
 * Repairs: duplicates merged (their users repointed to the first copy); refs set; names and blobs
 *   nothing uses reclaimed: freed through the heap (off strings.idx, onto their free list, the
 *   counters adjusted), which is what "unused names reclaimed" means.
 * Frees: nothing.
 */
import {IF_USED, S_IFLNK, S_IFMT} from '../storage/format.js'
import {bucketWord} from '../storage/codec/control.js'
import {shown} from './bytes.js'
import {D, I, S} from './checked-image.js'
import {PR} from './problems.js'
import {type Check, STR_BAD_BLOB, STR_BLOB, STR_NAME} from './state.js'

export function pass5(c: Check): void {
  const {ctx, img, st} = c
  ctx.header(PR.PR_5_PASS_HEADER)
  const end = st.heapEnd
  const str = st.str
  const canFree = st.heapOk && st.stringIndexOk

  // ---- duplicates: two interned strings with the same bytes (one strings.idx chain, or one hash) ----
  const merge = new Map<number, number>()
  const sameBytes = (a: number, b: number): boolean => img.strLength(a) === img.strLength(b) && img.strBytes(a).equals(img.strBytes(b))
  const found: Array<[number, number]> = []
  if (st.stringIndexOk) {
    const index = img.strings.index
    const xw = img.words(index.file)
    const chain: number[] = []
    const buckets = index.buckets
    for (let bucket = 0; bucket < buckets; bucket++) {
      ctx.tick(5, 'names', bucket, buckets)
      chain.length = 0
      for (let u = xw[bucketWord(bucket)], steps = 0; u !== 0 && steps < st.limit; u = S.hashNext.get(img.sb, img.so(u)), steps++) {
        if (u < end && str[u] === STR_NAME) chain.push(u)
      }

      if (chain.length < 2) continue
      chain.sort((x, y) => x - y)
      for (let j = 1; j < chain.length; j++) {
        for (let i = 0; i < j; i++) {
          if (chain[i] !== 0 && S.hash.get(img.sb, img.so(chain[i])) === S.hash.get(img.sb, img.so(chain[j])) && sameBytes(chain[i], chain[j])) {
            found.push([chain[i], chain[j]])
            chain[j] = 0
            break
          }
        }
      }
    }
  } else {
    const byHash = new Map<number, number[]>()
    for (let u = 1; u < end; u++) {
      if (str[u] !== STR_NAME) continue
      const hash = S.hash.get(img.sb, img.so(u))
      const list = byHash.get(hash)
      if (list === undefined) {
        byHash.set(hash, [u])
        continue
      }

      const same = list.find(v => sameBytes(v, u))
      if (same === undefined) list.push(u)
      else found.push([same, u])
    }
  }

  for (const [same, u] of found.sort((x, y) => x[1] - y[1])) {
    if (ctx.fix(PR.PR_5_DUP_NAME, {first: same, unit: u, name: shown(Buffer.from(img.strBytes(u)))}, {canFix: canFree})) merge.set(u, same)
  }

  // ---- references ----
  if (merge.size > 0) {
    img.store.transaction(() => {
      for (let d = 1; d < st.entHw; d++) {
        if (img.e8(d, D.type) === 0) continue
        const to = merge.get(img.e32(d, D.name))
        if (to !== undefined) img.setE32(d, D.name, to)
      }

      for (let s = 1; s < st.nodeHw; s++) {
        const to = merge.get(img.n32(s, I.target))
        if (to !== undefined && (img.n32(s, I.flags) & IF_USED) !== 0) img.setN32(s, I.target, to)
      }
    })
  }

  const refs = new Uint32Array(end)
  const ew = img.words(img.ef)
  const eb = img.eb
  for (let d = 1; d < st.entHw; d++) {
    if (D.type.get(eb, img.eo(d)) === 0) continue
    const u = ew[(img.eo(d) >>> 2) + D.name.word]
    if (u < end && str[u] === STR_NAME) refs[u]++
  }

  const owners = new Uint32Array(end)
  const nw = img.words(img.nf)
  for (let s = 1; s < st.nodeHw; s++) {
    const b = img.no(s) >>> 2
    if ((nw[b + I.flags.word] & IF_USED) === 0) continue
    if ((nw[b + I.mode.word] & S_IFMT) === S_IFLNK) {
      const t = nw[b + I.target.word]
      if (t < end && str[t] === STR_NAME) refs[t]++
    }

    const x = nw[b + I.xattr.word]
    if (x < end && (str[x] === STR_BLOB || str[x] === STR_BAD_BLOB)) owners[x]++
  }

  // ---- each string ----
  const free = (u: number): void => {
    img.store.transaction(() => {
      S.refs.set(img.store, img.sf, img.so(u), 1)
      img.strings.release(u)
    })
  }

  for (let u = 1; u < end; u++) {
    const kind = str[u]
    if (kind !== STR_NAME && kind !== STR_BLOB && kind !== STR_BAD_BLOB) continue
    ctx.tick(5, 'strings', u, end)
    const stored = S.refs.get(img.sb, img.so(u))
    if (kind === STR_NAME) {
      if (merge.has(u)) {
        free(u)
        continue
      }

      if (refs[u] === 0) {
        if (ctx.fix(PR.PR_5_UNUSED_NAME, {unit: u, name: shown(Buffer.from(img.strBytes(u)))}, {canFix: canFree})) free(u)
      } else if (refs[u] !== stored && ctx.fix(PR.PR_5_BAD_REFS, {unit: u, name: shown(Buffer.from(img.strBytes(u))), value: stored, expected: refs[u]})) {
        img.store.transaction(() => S.refs.set(img.store, img.sf, img.so(u), refs[u]))
      }
    } else if (owners[u] === 0) {
      if (ctx.fix(PR.PR_5_UNUSED_BLOB, {unit: u, length: img.strLength(u)}, {canFix: st.heapOk})) free(u)
    } else if (stored !== 1 && ctx.fix(PR.PR_5_BLOB_REFS, {unit: u, value: stored})) {
      img.store.transaction(() => S.refs.set(img.store, img.sf, img.so(u), 1))
    }
  }

  ctx.endPass()
}
