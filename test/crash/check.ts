/**
 * The invariants the crash harnesses check on an observed image (issue 4):
 *
 * - structure: the fixed directories are there and nothing else but files in them; each file's
 *   link count equals the names it has; one identity (user.rzid) is one inode;
 * - exact (after kill -9): the namespace, every file's bytes and xattrs and link counts are what
 *   the acknowledged operations made them; only the operation in flight may be either before or
 *   after (a write in flight: each byte old or new);
 * - durable (after a power loss): every name whose last change was fsyncdir'd (or is older than
 *   twice the commit interval) is as the model says; every file whose last change was fsync'd
 *   (or is that old) has exactly that content and those xattrs;
 * - no garbage (always): every byte is what the file held there when the cycle started, or a byte
 *   that one of this cycle's writes to this file put at that position, or 0 where the file was
 *   truncated to or below that position; no file is larger than it ever was; a name only ever
 *   holds a file that was once given that name.
 */
import {Cycle, DIRS, dirOf, FILE_DIRS, type FileState, Model, pattern, RZID} from './model.js'
import type {ObsEntry, Observation} from './observe.js'

export class Violations {
  count = 0
  readonly samples: string[] = []
  /** Where a copy of the first failing image was kept, if one was. */
  evidence?: string

  add(where: string, what: string): void {
    this.count++
    if (this.samples.length < 40) this.samples.push(`${where}: ${what}`)
  }
}

const rzidOf = (x: Map<string, Buffer> | undefined): string | undefined => x?.get(RZID)?.toString()

function files(obs: Observation): ObsEntry[] {
  return [...obs.entries.values()].filter(e => e.type === 'file')
}

function xattrsEqual(a: Map<string, Buffer>, b: Map<string, Buffer>): boolean {
  if (a.size !== b.size) return false
  for (const [k, v] of a) if (!b.get(k)?.equals(v)) return false
  return true
}

function showX(x: Map<string, Buffer>): string {
  return `{${[...x]
    .sort()
    .map(([k, v]) => `${k}=${v.length > 12 ? v.subarray(0, 12).toString('hex') + '..' : v.toString('hex')}`)
    .join(', ')}}`
}

/** Fixed directories, nothing unexpected, link counts, one inode per identity. */
export function checkStructure(obs: Observation, v: Violations, where: string): void {
  for (const d of DIRS) {
    const e = obs.entries.get(d)
    if (!e) v.add(where, `directory /${d} is missing`)
    else if (e.type !== 'dir') v.add(where, `/${d} is a ${e.type}, not a directory`)
    else if (e.nlink !== (d === '' ? 2 + FILE_DIRS.length : 2)) v.add(where, `directory /${d} has nlink ${e.nlink}`)
  }

  for (const e of obs.entries.values()) {
    if (e.type === 'dir' && !(DIRS as readonly string[]).includes(e.path)) v.add(where, `unexpected directory /${e.path}`)
    if (e.type === 'other') v.add(where, `unexpected non-regular file /${e.path}`)
    if (e.type === 'file' && !(FILE_DIRS as readonly string[]).includes(dirOf(e.path))) v.add(where, `unexpected file /${e.path}`)
  }

  const byIno = new Map<number, ObsEntry[]>()
  for (const e of files(obs)) byIno.set(e.ino, [...(byIno.get(e.ino) ?? []), e])
  for (const [ino, es] of byIno) {
    if (es.some(e => e.nlink !== es.length)) v.add(where, `inode ${ino} (${es.map(e => e.path).join(', ')}) has nlink ${es[0].nlink} but ${es.length} names`)
  }

  const byRzid = new Map<string, Set<number>>()
  for (const e of files(obs)) {
    const r = rzidOf(e.xattrs)
    if (r !== undefined) byRzid.set(r, (byRzid.get(r) ?? new Set()).add(e.ino))
  }

  for (const [r, inos] of byRzid) if (inos.size > 1) v.add(where, `identity #${r} appears as ${inos.size} different inodes`)
}

/** Which identities each name held at some point of the cycle (the start state included). */
function nameHistory(cycle: Cycle): Map<string, Set<number>> {
  const h = new Map<string, Set<number>>()
  const add = (p: string, id: number | undefined): void => {
    if (id !== undefined) h.set(p, (h.get(p) ?? new Set()).add(id))
  }

  for (const [p, id] of cycle.base.names) add(p, id)
  // Replay names only, to know which file a rename or link moved.
  const names = new Map(cycle.base.names)
  const effects = [...cycle.entries.map(e => e.effect), ...(cycle.pending ? [cycle.pending.effect] : [])]
  for (const e of effects) {
    if (e.kind === 'create') {
      names.set(e.path, e.id)
      add(e.path, e.id)
    } else if (e.kind === 'link' || e.kind === 'rename') {
      const id = names.get(e.from)
      add(e.to, id)
      if (e.kind === 'rename' && id !== undefined && id !== names.get(e.to)) names.delete(e.from)
      if (id !== undefined) names.set(e.to, id)
    } else if (e.kind === 'unlink') {
      names.delete(e.path)
    }
  }

  return h
}

/**
 * No garbage: every byte of every file is the file's byte at the start of the cycle (0 past its
 * end then), or the byte one of this cycle's writes to it put there, or 0 at or past a size the
 * file was truncated to in the cycle; no file is larger than it ever was; a name holds only
 * identities it was once given.
 */
export function checkGarbage(obs: Observation, cycle: Cycle, v: Violations, where: string): number {
  const history = nameHistory(cycle)
  const writes = new Map<number, Array<{wid: number; off: number; len: number}>>()
  const maxSize = new Map<number, number>()
  const grow = (id: number, size: number): void => {
    maxSize.set(id, Math.max(maxSize.get(id) ?? 0, size))
  }

  /** Lowest size each file was truncated to in the cycle: from there on it may read zeros. */
  const cut = new Map<number, number>()
  for (const f of cycle.base.files.values()) grow(f.id, f.content.length)
  for (const e of [...cycle.entries.map(x => x.effect), ...(cycle.pending ? [cycle.pending.effect] : [])]) {
    if (e.kind === 'write') {
      writes.set(e.id, [...(writes.get(e.id) ?? []), e])
      grow(e.id, e.off + e.len)
    } else if (e.kind === 'truncate') {
      grow(e.id, e.size)
      cut.set(e.id, Math.min(cut.get(e.id) ?? Infinity, e.size))
    }
  }

  let bytes = 0
  for (const e of files(obs)) {
    const r = rzidOf(e.xattrs)
    const known = history.get(e.path)
    let candidates: number[]
    if (r !== undefined) {
      const id = Number(r)
      if (!Number.isSafeInteger(id) || !known?.has(id)) {
        v.add(where, `${e.path} holds identity #${r}, which was never given that name${known ? ` (it held ${[...known].map(i => '#' + i).join(', ')})` : ''}`)
        continue
      }

      candidates = [id]
    } else {
      if (!known) {
        v.add(where, `${e.path} exists but the checker never created that name`)
        continue
      }

      candidates = [...known]
    }

    const limit = Math.max(...candidates.map(id => maxSize.get(id) ?? 0))
    if (e.size > limit) v.add(where, `${e.path} (#${candidates.join('|')}) is ${e.size} bytes, larger than it ever was (${limit})`)
    const content = e.content!
    const ok = new Uint8Array(content.length)
    // A 0 is a byte the file had if it had a 0 there when the cycle began (a hole, or past its
    // end), or was truncated to there since; writes never write zeros. Otherwise a byte must be
    // the one the file held when the cycle began, or one of this cycle's writes to it.
    for (let i = 0; i < content.length; i++) {
      for (const id of candidates) {
        const b = cycle.base.files.get(id)?.content
        const had = b === undefined || i >= b.length ? 0 : b[i]
        if (content[i] === had || (content[i] === 0 && i >= (cut.get(id) ?? Infinity))) {
          ok[i] = 1
          break
        }
      }
    }

    for (const id of candidates) {
      for (const w of writes.get(id) ?? []) {
        const end = Math.min(w.off + w.len, content.length)
        for (let i = w.off; i < end; i++) if (ok[i] === 0 && pattern(w.wid, i) === content[i]) ok[i] = 1
      }
    }

    const bad: number[] = []
    for (let i = 0; i < content.length; i++) if (ok[i] === 0) bad.push(i)
    if (bad.length > 0) {
      v.add(
        where,
        `${e.path} (#${candidates.join('|')}) holds ${bad.length} bytes it never had, first at offset ${bad[0]} (0x${content[bad[0]].toString(16)})${describeRun(bad)}`,
      )
    }

    bytes += content.length
  }

  return bytes
}

function describeRun(bad: number[]): string {
  const runs: string[] = []
  let start = bad[0]
  let prev = bad[0]
  for (const i of [...bad.slice(1), -1]) {
    if (i === prev + 1) {
      prev = i
      continue
    }

    runs.push(start === prev ? `${start}` : `${start}-${prev}`)
    if (runs.length >= 4) break
    start = i
    prev = i
  }

  return ` (ranges ${runs.join(', ')}${runs.length >= 4 ? ', ...' : ''})`
}

/** Differences between the observed namespace and a model's. */
function namespaceDiff(obs: Observation, m: Model): string[] {
  const diffs: string[] = []
  const obsFiles = new Map(files(obs).map(e => [e.path, e]))
  for (const [p, id] of m.names) {
    const e = obsFiles.get(p)
    const want = rzidOf(m.files.get(id)?.xattrs)
    if (!e) diffs.push(`${p} (#${id}) is missing`)
    else if (rzidOf(e.xattrs) !== want) diffs.push(`${p} holds identity #${rzidOf(e.xattrs) ?? '(none)'}, expected #${want ?? '(none)'} (model #${id})`)
  }

  for (const p of obsFiles.keys()) if (!m.names.has(p)) diffs.push(`${p} exists (identity #${rzidOf(obsFiles.get(p)!.xattrs) ?? '(none)'}), expected absent`)
  // Names of one identity are one inode; names of different identities are different inodes.
  const inoOf = new Map<number, number>()
  const idOfIno = new Map<number, number>()
  for (const [p, id] of m.names) {
    const e = obsFiles.get(p)
    if (!e) continue
    const ino = inoOf.get(id)
    if (ino === undefined) inoOf.set(id, e.ino)
    else if (ino !== e.ino) diffs.push(`${p} is not the same inode as the other names of #${id}`)
    const other = idOfIno.get(e.ino)
    if (other === undefined) idOfIno.set(e.ino, id)
    else if (other !== id) diffs.push(`${p} (#${id}) is the same inode as #${other}`)
  }

  return diffs
}

function contentDiff(got: Buffer, wants: Buffer[], sizeRange: [number, number] | undefined): string | undefined {
  const sizes = wants.map(w => w.length)
  const sizeOk = sizes.includes(got.length) || (sizeRange !== undefined && got.length >= sizeRange[0] && got.length <= sizeRange[1])
  if (!sizeOk) return `size ${got.length}, expected ${[...new Set(sizes)].join(' or ')}`
  let bad = 0
  let first = -1
  for (let i = 0; i < got.length; i++) {
    if (!wants.some(w => (i < w.length ? w[i] : 0) === got[i])) {
      bad++
      if (first < 0) first = i
    }
  }

  return bad === 0
    ? undefined
    : `${bad} bytes differ, first at offset ${first} (got 0x${got[first].toString(16)}, expected ${wants.map(w => (first < w.length ? '0x' + w[first].toString(16) : '0')).join(' or ')})`
}

/**
 * After a kill -9: the observed state is exactly one of `alts` (the model; the model with the
 * operation in flight applied), except that a write in flight may have landed byte by byte.
 */
export function checkExact(obs: Observation, alts: Model[], v: Violations, where: string, inflightWrite?: {id: number}): number {
  checkStructure(obs, v, where)
  const diffs = alts.map(m => namespaceDiff(obs, m))
  let chosen = diffs.findIndex(d => d.length === 0)
  if (chosen < 0) {
    chosen = diffs.reduce((best, d, i) => (d.length < diffs[best].length ? i : best), 0)
    for (const d of diffs[chosen].slice(0, 6)) v.add(where, `namespace: ${d}`)
    if (diffs[chosen].length > 6) v.add(where, `namespace: ... ${diffs[chosen].length - 6} more differences`)
  }

  const m = alts[chosen]
  const obsFiles = new Map(files(obs).map(e => [e.path, e]))
  let checked = 0
  for (const [id] of m.files) {
    const links = m.linksOf(id)
    const e = links.map(p => obsFiles.get(p)).find(x => x !== undefined)
    if (!e) continue
    const states = alts.map(a => a.files.get(id)).filter((f): f is FileState => f !== undefined)
    const range: [number, number] | undefined =
      inflightWrite?.id === id ? [Math.min(...states.map(s => s.content.length)), Math.max(...states.map(s => s.content.length))] : undefined
    const cd = contentDiff(
      e.content!,
      states.map(s => s.content),
      range,
    )
    if (cd) v.add(where, `${e.path} (#${id}): content: ${cd}`)
    if (!states.some(s => xattrsEqual(s.xattrs, e.xattrs)))
      v.add(where, `${e.path} (#${id}): xattrs ${showX(e.xattrs)}, expected ${states.map(s => showX(s.xattrs)).join(' or ')}`)
    if (e.nlink !== links.length) v.add(where, `${e.path} (#${id}): nlink ${e.nlink}, expected ${links.length}`)
    checked++
  }

  return checked
}

export interface DurableStats {
  namesChecked: number
  filesChecked: number
}

/**
 * After a power loss at `stopAt`: every name and file whose last change was made durable (by an
 * fsyncdir of its directory / an fsync of the file that was acknowledged, or because it was
 * acknowledged more than `ageMs` before the stop) is exactly as the model says.
 */
export function checkDurable(obs: Observation, cycle: Cycle, stopAt: number, ageMs: number, v: Violations, where: string): DurableStats {
  checkStructure(obs, v, where)
  const lastName = new Map<string, {seq: number; tAck: number}>()
  const lastContent = new Map<number, {seq: number; tAck: number}>()
  const lastX = new Map<number, {seq: number; tAck: number}>()
  const fsyncs = new Map<number, number>()
  /** fdatasyncs: they make a file's contents durable, not its xattrs. */
  const datasyncs = new Map<number, number>()
  const fsyncdirs = new Map<string, number>()
  for (const en of cycle.entries) {
    const at = {seq: en.seq, tAck: en.tAck!}
    const e = en.effect
    switch (e.kind) {
      case 'create': {
        lastName.set(e.path, at)
        lastContent.set(e.id, at)
        lastX.set(e.id, at)
        break
      }

      case 'rename':
      case 'link': {
        if (e.kind === 'rename') lastName.set(e.from, at)
        lastName.set(e.to, at)
        break
      }

      case 'unlink': {
        lastName.set(e.path, at)
        break
      }

      case 'write':
      case 'truncate': {
        lastContent.set(e.id, at)
        break
      }

      case 'setxattr':
      case 'removexattr': {
        lastX.set(e.id, at)
        break
      }

      case 'fsync': {
        fsyncs.set(e.id, en.seq)
        break
      }

      case 'fdatasync': {
        datasyncs.set(e.id, en.seq)
        break
      }

      case 'fsyncdir': {
        fsyncdirs.set(e.dir, en.seq)
        break
      }

      case 'none': {
        break
      }
    }
  }

  // The call in flight is not durable, whatever it is.
  const p = cycle.pending?.effect
  const inflightNames = new Set<string>()
  const inflightContent = new Set<number>()
  const inflightX = new Set<number>()
  if (p) {
    if (p.kind === 'create') {
      inflightNames.add(p.path)
      inflightContent.add(p.id)
      inflightX.add(p.id)
    } else if (p.kind === 'rename' || p.kind === 'link') {
      inflightNames.add(p.from)
      inflightNames.add(p.to)
    } else if (p.kind === 'unlink') {
      inflightNames.add(p.path)
    } else if (p.kind === 'write' || p.kind === 'truncate') {
      inflightContent.add(p.id)
    } else if (p.kind === 'setxattr' || p.kind === 'removexattr') {
      inflightX.add(p.id)
    }
  }

  const aged = (at: {tAck: number}): boolean => at.tAck < stopAt - ageMs
  const nameDurable = (path: string): boolean => {
    if (inflightNames.has(path)) return false
    const at = lastName.get(path)
    return at === undefined || aged(at) || (fsyncdirs.get(dirOf(path)) ?? 0) > at.seq
  }

  /** `dataOnly`: an fdatasync counts too (for the contents). */
  const durable = (id: number, last: Map<number, {seq: number; tAck: number}>, inflight: Set<number>, dataOnly = false): boolean => {
    if (inflight.has(id)) return false
    const at = last.get(id)
    const synced = Math.max(fsyncs.get(id) ?? 0, dataOnly ? (datasyncs.get(id) ?? 0) : 0)
    return at === undefined || aged(at) || synced > at.seq
  }

  const m = cycle.model
  const obsFiles = new Map(files(obs).map(e => [e.path, e]))
  const stats: DurableStats = {namesChecked: 0, filesChecked: 0}
  const paths = new Set([...obsFiles.keys(), ...m.names.keys(), ...cycle.base.names.keys()])
  /** Identity of each observed file that can be told: its rzid, or what a durable name says. */
  const identity = new Map<string, number>()
  for (const [path, e] of obsFiles) {
    const r = rzidOf(e.xattrs)
    if (r !== undefined && Number.isSafeInteger(Number(r))) identity.set(path, Number(r))
  }

  for (const path of [...paths].sort()) {
    if (!nameDurable(path)) continue
    stats.namesChecked++
    const id = m.names.get(path)
    const e = obsFiles.get(path)
    if (id === undefined) {
      if (e) v.add(where, `${path}: exists (identity #${rzidOf(e.xattrs) ?? '(none)'}), but its removal was made durable`)
      continue
    }

    if (!e) {
      v.add(where, `${path} (#${id}): missing, but its name was made durable`)
      continue
    }

    const want = rzidOf(m.files.get(id)?.xattrs)
    const got = rzidOf(e.xattrs)
    if (got === undefined) {
      if (want !== undefined && durable(id, lastX, inflightX)) v.add(where, `${path} (#${id}): has no ${RZID}, but it was made durable`)
      identity.set(path, id)
    } else if (got !== want && want !== undefined) {
      v.add(where, `${path}: holds identity #${got}, but #${want} was made durable there`)
    }
  }

  // Each identity found whose contents / xattrs were made durable must have exactly them.
  const done = new Set<number>()
  for (const [path, id] of identity) {
    if (done.has(id)) continue
    done.add(id)
    const e = obsFiles.get(path)!
    const want = m.stateOf(id)
    if (!want) continue
    let checked = false
    if (durable(id, lastContent, inflightContent, true)) {
      checked = true
      const cd = contentDiff(e.content!, [want.content], undefined)
      if (cd) v.add(where, `${path} (#${id}): content made durable, but ${cd}`)
    }

    if (durable(id, lastX, inflightX)) {
      checked = true
      if (!xattrsEqual(want.xattrs, e.xattrs)) v.add(where, `${path} (#${id}): xattrs made durable were ${showX(want.xattrs)}, found ${showX(e.xattrs)}`)
    }

    if (checked) stats.filesChecked++
  }

  return stats
}

/**
 * The model that an observed state stands for: identities from user.rzid (or, for a file without
 * one, the identity its name had in `prev`, or a new one), contents and xattrs as observed.
 */
export function adopt(obs: Observation, prev: Model): Model {
  const m = new Model(prev.ids)
  const idOfIno = new Map<number, number>()
  const used = new Set<number>()
  for (const e of files(obs)) {
    let id = idOfIno.get(e.ino)
    if (id === undefined) {
      const r = Number(rzidOf(e.xattrs))
      const prevId = prev.names.get(e.path)
      if (rzidOf(e.xattrs) !== undefined && Number.isSafeInteger(r) && !used.has(r)) id = r
      else if (rzidOf(e.xattrs) === undefined && prevId !== undefined && !used.has(prevId) && rzidOf(prev.files.get(prevId)?.xattrs) === undefined) id = prevId
      else id = prev.ids.next++
      used.add(id)
      idOfIno.set(e.ino, id)
      m.files.set(id, {id, content: Buffer.from(e.content!), xattrs: new Map(e.xattrs)})
    }

    m.names.set(e.path, id)
  }

  return m
}
