/**
 * Pass 1, second half: the string heap (strings.dat) and its index (strings.idx), the only full
 * scan of strings.dat. It runs between the record tables and the inode records because inodes and
 * entries point into the heap, and because later repairs (a name interned again, /lost+found) must
 * allocate from sound free lists.
 *
 * Checks: the heap can be walked from unit 1 to `bump`, string after string (kind 0 to 2, a length
 *   its kind allows, inside the heap); no string swallows a unit something refers to (unless the
 *   string proves itself whole: a name whose hash matches, a blob that parses); `bump` is the end
 *   of the last string; header fields fixed by kind (free: refs 0 and hash 0; blob: hash 0 and no
 *   chain); every name's hash is the FNV-1a of its bytes; each size class's free list chains
 *   exactly the free strings of that class; liveBytes and freeBytes add up; strings.idx chains
 *   every name exactly once, in the bucket of its hash, and counts them.
 * Collects: `st.str`, what starts at each unit (free, name, blob, damaged blob), and `st.heapEnd`.
 * Relies on: the record tables' highWater (pass 1 first half): inodes and entries give the units
 *   something refers to, where the walk picks up again after unreadable bytes.
 * Repairs: unreadable units become free strings (chunks of at most 257 units); a name's hash is set
 *   from its bytes; free lists, counters and strings.idx are rebuilt from the walk.
 * Frees: the reference hints.
 */
import {DATA_OFFSET, HEAP_CONTROL, SK_BLOB, SK_FREE, SK_NAME, STRING, STRING_CLASSES, STRING_UNIT} from '../storage/format.js'
import {fnv1a} from '../storage/codec/checksum.js'
import {CONTROL_OFFSET, INDEX_CONTROL_USED, bucketHead, bucketOf, bucketOffset, freeHeadFields} from '../storage/codec/control.js'
import {isUsed} from '../storage/codec/inode.js'
import * as stringUnit from '../storage/codec/string-unit.js'
import * as xattrBlob from '../storage/codec/xattr-blob.js'
import {isZero, lastNonZero} from './bytes.js'
import {CheckedImage, D, HC, I, S, XC} from './checked-image.js'
import {PR} from './problems.js'
import {type Check, STR_BAD_BLOB, STR_BAD_NAME, STR_BLOB, STR_FREE, STR_NAME} from './state.js'

/** Units taken by a string header at `o` (0 = not a valid header: codec/string-unit.ts), and why not. */
function spanAt(buf: Buffer, o: number): {units: number; why: string} {
  const why = stringUnit.validate(buf, o)
  return why.length > 0 ? {units: 0, why: why[0]} : {units: stringUnit.span(buf, o), why: ''}
}

/** Size class of the string at unit `u`. */
const classAt = (c: Check, u: number): number => stringUnit.sizeClass(stringUnit.units(c.img.strLength(u)))[0]

export function pass1Strings(c: Check): void {
  const {ctx, img, st} = c
  const capU = CheckedImage.capacity(img.sf)
  let sb = img.sb

  // Units something refers to: where the walk picks up again after unreadable bytes.
  const refd = new Uint8Array(capU + 1)
  const nb = img.nb
  for (let slot = 1; slot < st.nodeHw; slot++) {
    const o = img.no(slot)
    if (!isUsed(nb, o)) continue
    const target = I.target.get(nb, o)
    const xattr = I.xattr.get(nb, o)
    if (target > 0 && target < capU) refd[target] = 1
    if (xattr > 0 && xattr < capU) refd[xattr] = 1
  }

  const eb = img.eb
  for (let d = 1; d < st.entHw; d++) {
    const o = img.eo(d)
    if (D.type.get(eb, o) === 0) continue
    const name = D.name.get(eb, o)
    if (name > 0 && name < capU) refd[name] = 1
  }

  // Where the strings end: bump, or further if something refers to a plausible string past it.
  const bump = img.strings.bump
  let end = bump >= 1 && bump <= capU ? bump : capU
  for (let u = end; u < capU; u++) {
    if (refd[u] && spanAt(sb, img.so(u)).units > 0 && !isZero(sb, img.so(u), img.so(u) + STRING.SIZE)) {
      end = capU
      break
    }
  }

  // ---- the walk ----
  const kinds = new Uint8Array(Math.max(capU, 1))
  const gaps: Array<[number, number, string]> = []
  let lastEnd = 1
  for (let u = 1; u < end; ) {
    ctx.tick(1, 'strings', u, end)
    const o = img.so(u)
    let {units, why} = spanAt(sb, o)
    if (units > 0 && u + units > end) {
      why = `the string at unit ${u} runs past unit ${end}`
      units = 0
    }

    const kind = S.kind.get(sb, o)
    const len = stringUnit.length(sb, o)
    let self: boolean | undefined
    const selfCheck = (): boolean => {
      self ??=
        kind === SK_NAME
          ? fnv1a(stringUnit.bytes(sb, o)) === S.hash.get(sb, o)
          : kind === SK_BLOB
            ? xattrBlob.validate(stringUnit.bytes(sb, o)).length === 0
            : false
      return self
    }

    if (units > 1) {
      for (let v = u + 1; v < u + units; v++) {
        if (refd[v] && !selfCheck()) {
          why = `unit ${v}, which an inode or entry refers to, lies inside the string at unit ${u}`
          units = 0
          break
        }
      }
    }

    if (units > 0) {
      kinds[u] = kind === SK_FREE ? STR_FREE : kind === SK_NAME ? STR_NAME : selfCheck() ? STR_BLOB : STR_BAD_BLOB
      // A free string of 0 bytes (one unit) is never written by the heap, only by this pass: one
      // at the end is not a string the heap ends with (zeros past the end read as such).
      if (kind !== SK_FREE || len !== 0) lastEnd = u + units
      u += units
      continue
    }

    let r = u + 1
    while (r < end && refd[r] === 0) r++
    gaps.push([u, r, why])
    u = r
  }

  let carvedEnd = 0
  const carved = new Uint8Array(kinds.length)
  for (const [g, r, why] of gaps) {
    let stop = r
    if (r >= end) {
      // Zeros at the end are past the heap, not garbage in it.
      const last = lastNonZero(sb, img.so(g), img.so(r))
      stop = last < 0 ? g : Math.floor((last - DATA_OFFSET) / STRING_UNIT) + 1
      if (stop - g <= 1) continue
    }

    if (ctx.fix(PR.PR_1_HEAP_GARBAGE, {from: g, to: stop - 1, reason: why})) {
      img.store.transaction(() => {
        for (let u = g, n = stop - g; n > 0; ) {
          let chunk = Math.min(257, n)
          if (n - chunk === 1) chunk--
          const length = chunk * STRING_UNIT - STRING.SIZE
          img.store.setBytes(img.sf, img.so(u), stringUnit.encode({refs: 0, hashNext: 0, hash: 0, length, kind: SK_FREE}))
          kinds[u] = STR_FREE
          carved[u] = 1
          u += chunk
          n -= chunk
        }
      })
      sb = img.sb
      carvedEnd = Math.max(carvedEnd, stop)
    } else {
      st.heapOk = false
    }
  }

  // ---- bump ----
  const expectedBump = Math.max(1, lastEnd, carvedEnd)
  for (let u = expectedBump; u < kinds.length; u++) kinds[u] = 0
  if (bump !== expectedBump) {
    const reason =
      bump > capU
        ? `the file holds ${capU} units`
        : bump < expectedBump
          ? `strings lie up to unit ${expectedBump - 1}`
          : `nothing lies past unit ${expectedBump - 1}`
    if (ctx.fix(PR.PR_1_HEAP_BUMP, {value: bump, reason, expected: expectedBump})) img.store.transaction(() => img.setCtl32(img.sf, HC.bump, expectedBump))
    else st.heapOk = false
  }

  st.heapEnd = expectedBump
  st.str = kinds

  // ---- header fields of each string ----
  const rehash = new Map<number, number>()
  for (let u = 1; u < expectedBump; u++) {
    const k = kinds[u]
    if (k === 0) continue
    const o = img.so(u)
    const field = (f: typeof S.refs, kindName: string): void => {
      const value = f.get(sb, o)
      if (value === 0) return
      if (ctx.fix(PR.PR_1_STRING_FIELD, {unit: u, kind: kindName, field: f.name, value, expected: 0}))
        img.store.transaction(() => f.set(img.store, img.sf, o, 0))
      sb = img.sb
    }

    if (k === STR_FREE) {
      // A freed name keeps its hash (StringHeap.release leaves it), so only refs is fixed.
      field(S.refs, 'free')
    } else if (k === STR_BLOB || k === STR_BAD_BLOB) {
      field(S.hash, 'xattr blob')
      field(S.hashNext, 'xattr blob')
    } else {
      const stored = S.hash.get(sb, o)
      const computed = fnv1a(stringUnit.bytes(sb, o))
      if (stored !== computed) {
        if (ctx.fix(PR.PR_1_STRING_HASH, {unit: u, stored: hex(stored), computed: hex(computed)})) rehash.set(u, stored)
        else kinds[u] = STR_BAD_NAME
      }
    }

    ctx.tick(1, 'strings', u, expectedBump)
  }

  // ---- free lists ----
  const total = new Uint32Array(STRING_CLASSES)
  const carvedIn = new Uint32Array(STRING_CLASSES)
  const classOf = (u: number): number => classAt(c, u)
  for (let u = 1; u < expectedBump; u++) {
    if (kinds[u] !== STR_FREE) continue
    if (carved[u]) carvedIn[classOf(u)]++
    else total[classOf(u)]++
  }

  const seen = new Uint8Array(kinds.length)
  for (let k = 0; k < STRING_CLASSES; k++) {
    let reason: string | undefined
    let count = 0
    let cur = freeHeadFields[k].get(sb, CONTROL_OFFSET)
    if (k === 0 && cur !== 0) reason = 'size class 0 is never used, but its list is not empty'
    while (cur !== 0 && reason === undefined) {
      if (cur >= expectedBump) reason = `it names unit ${cur}, past the end of the strings`
      else if (kinds[cur] !== STR_FREE || carved[cur]) reason = `unit ${cur} on it is not a free string`
      else if (classOf(cur) !== k) reason = `the free string at unit ${cur} on it is of class ${classOf(cur)}`
      else if (seen[cur]) reason = `unit ${cur} appears twice`
      else {
        seen[cur] = 1
        count++
        cur = S.hashNext.get(sb, img.so(cur))
      }
    }

    if (reason === undefined && count !== total[k]) reason = `${total[k] - count} free strings of the class are not on it`
    let rebuild = carvedIn[k] > 0
    if (reason !== undefined) {
      if (ctx.fix(PR.PR_1_HEAP_FREE_LIST, {class: k, reason})) rebuild = true
      else st.heapOk = false
    }

    if (rebuild) {
      img.store.transaction(() => {
        let prev = -1
        for (let u = 1; u < expectedBump; u++) {
          if (kinds[u] !== STR_FREE || classOf(u) !== k) continue
          if (prev < 0) img.setCtl32(img.sf, freeHeadFields[k], u)
          else img.setField(img.sf, img.so(prev), S.hashNext, u)
          prev = u
        }

        if (prev < 0) img.setCtl32(img.sf, freeHeadFields[k], 0)
        else img.setField(img.sf, img.so(prev), S.hashNext, 0)
      })
      sb = img.sb
    }
  }

  // ---- counters ----
  let liveBytes = 0
  let freeBytes = 0
  for (let u = 1; u < expectedBump; u++) {
    const k = kinds[u]
    if (k === 0) continue
    const bytes = stringUnit.span(img.sb, img.so(u)) * STRING_UNIT
    if (k === STR_FREE) freeBytes += bytes
    else liveBytes += bytes
  }

  const storedLive = img.ctl(img.sf, HC.liveBytes)
  const storedFree = img.ctl(img.sf, HC.freeBytes)
  if (storedLive !== liveBytes) {
    if (ctx.fix(PR.PR_1_HEAP_COUNTER, {field: 'liveBytes', value: storedLive, expected: liveBytes}))
      img.store.transaction(() => img.setCtl32(img.sf, HC.liveBytes, liveBytes))
    else st.heapOk = false
  }

  if (storedFree !== freeBytes) {
    if (ctx.fix(PR.PR_1_HEAP_COUNTER, {field: 'freeBytes', value: storedFree, expected: freeBytes}))
      img.store.transaction(() => img.setCtl64(img.sf, HC.freeBytes, freeBytes))
    else st.heapOk = false
  }

  controlPage(c, img.sf, HEAP_CONTROL.SIZE)

  // ---- strings.idx ----
  checkStringIndex(c, rehash)
  ctx.endPass()
}

/** Bytes of page 1 after the control block must be zeros. */
export function controlPage(c: Check, file: CheckedImage['sf'], used: number): void {
  const b = file.buf
  const last = lastNonZero(b, CONTROL_OFFSET + used, DATA_OFFSET)
  if (last < 0) return
  let first = CONTROL_OFFSET + used
  while (b[first] === 0) first++
  if (c.ctx.fix(PR.PR_1_CONTROL_PAGE, {file: file.spec.name, from: first - CONTROL_OFFSET, to: last - CONTROL_OFFSET})) {
    c.img.store.transaction(() => c.img.zeroRange(file, CONTROL_OFFSET + used, DATA_OFFSET))
  }
}

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`

/**
 * strings.idx: every name exactly once, in the bucket of its hash; `rehash` holds names whose hash
 * this pass is correcting (unit -> the stored, wrong hash, under which the index files them now).
 */
function checkStringIndex(c: Check, rehash: Map<number, number>): void {
  const {ctx, img, st} = c
  const index = img.strings.index
  const xf = index.file
  const xb = xf.buf
  const kinds = st.str
  const capB = CheckedImage.capacity(xf)
  const level = img.ctl(xf, XC.level)
  const split = img.ctl(xf, XC.split)
  const count = img.ctl(xf, XC.count)
  const names: number[] = []
  for (let u = 1; u < st.heapEnd; u++) if (kinds[u] === STR_NAME || kinds[u] === STR_BAD_NAME) names.push(u)
  const hashOf = (u: number): number => rehash.get(u) ?? S.hash.get(img.sb, img.so(u))

  let reason: string | undefined
  if (level > 30 || split >= 2 ** level || 2 ** level + split > capB) {
    reason = `its control block says level ${level}, split ${split}, for a file of ${capB} buckets`
  } else {
    const inUse = 2 ** level + split
    const seen = new Uint8Array(Math.max(1, st.heapEnd))
    let found = 0
    for (let bucket = 0; bucket < inUse && reason === undefined; bucket++) {
      ctx.tick(1, 'strings.idx', bucket, inUse)
      for (let cur = bucketHead(xb, bucket); cur !== 0; cur = S.hashNext.get(img.sb, img.so(cur))) {
        if (cur >= st.heapEnd || (kinds[cur] !== STR_NAME && kinds[cur] !== STR_BAD_NAME)) {
          reason = `bucket ${bucket} names unit ${cur}, which is not a name`
          break
        }

        if (seen[cur]) {
          reason = `unit ${cur} is chained twice`
          break
        }

        seen[cur] = 1
        found++
        const want = bucketOf(hashOf(cur), level, split)
        if (want !== bucket) {
          reason = `the name at unit ${cur} is in bucket ${bucket}, but its hash puts it in bucket ${want}`
          break
        }
      }
    }

    if (reason === undefined && found !== names.length) reason = `${names.length - found} names are not in it`
    if (reason === undefined && count !== names.length) reason = `its count is ${count}, but it holds ${names.length} names`
    if (reason === undefined && lastNonZero(xb, bucketOffset(inUse), bucketOffset(capB)) >= 0) reason = `buckets past the ${inUse} in use are not empty`
    if (reason === undefined && lastNonZero(xb, CONTROL_OFFSET + INDEX_CONTROL_USED, DATA_OFFSET) >= 0) reason = 'the control page holds stray bytes'
  }

  if (reason !== undefined) {
    if (ctx.fix(PR.PR_1_STRING_INDEX, {reason})) {
      img.store.transaction(() => {
        for (const u of rehash.keys()) S.hash.set(img.store, img.sf, img.so(u), fnv1a(img.strBytes(u)))
        img.rebuildIndex(
          index,
          names,
          u => S.hash.get(img.sb, img.so(u)),
          (u, next) => img.setField(img.sf, img.so(u), S.hashNext, next),
        )
      })
    } else {
      st.stringIndexOk = false
      for (const u of rehash.keys()) kinds[u] = STR_BAD_NAME
    }

    return
  }

  // Sound: move each name whose hash is corrected to the bucket of its right hash.
  if (rehash.size > 0) {
    img.store.transaction(() => {
      for (const [u, old] of rehash) {
        index.remove(u, old)
        const right = fnv1a(img.strBytes(u))
        S.hash.set(img.store, img.sf, img.so(u), right)
        index.insert(u, right)
      }
    })
  }
}
