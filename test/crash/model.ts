/**
 * The crash harnesses' model of the filesystem (issue 4): what the checker was told by every
 * acknowledged operation. Files live in a few fixed directories; every file has an identity
 * (`id`), stored in the file itself as the xattr `user.rzid` right after it is created, and every
 * byte the checker writes is self-describing: `pattern(writeId, position)`, never 0. So a byte
 * read back is either 0 (a hole, a grow, a byte never written) or tells which write put it there.
 */

/** Directories of the workload, created once at setup; '' is the root. Files live in a, b, c. */
export const DIRS = ['', 'a', 'b', 'c'] as const
export const FILE_DIRS = ['a', 'b', 'c'] as const
export const NAMES_PER_DIR = 8
export const RZID = 'user.rzid'

/** The byte that write `wid` puts at absolute position `pos`: 1..255, a hash of both. */
export function pattern(wid: number, pos: number): number {
  let x = Math.imul(wid, 0x9e3779b1) ^ Math.imul(pos + 0x632be5ab, 0x85ebca6b)
  x ^= x >>> 15
  x = Math.imul(x, 0x2c1b3c6d)
  x ^= x >>> 12
  x = Math.imul(x, 0x297a2d39)
  x ^= x >>> 15
  return ((x >>> 0) % 255) + 1
}

export function patternBuffer(wid: number, pos: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(len)
  for (let i = 0; i < len; i++) b[i] = pattern(wid, pos + i)
  return b
}

export interface FileState {
  id: number
  /** Exactly `size` bytes. */
  content: Buffer
  xattrs: Map<string, Buffer>
}

export function dirOf(p: string): string {
  const i = p.lastIndexOf('/')
  return i < 0 ? '' : p.slice(0, i)
}

/** A change the checker asked for; applied to the model once the system call returned. */
export type Effect =
  | {kind: 'create'; path: string; id: number}
  | {kind: 'setxattr'; id: number; name: string; value: Buffer}
  | {kind: 'removexattr'; id: number; name: string}
  | {kind: 'write'; id: number; wid: number; off: number; len: number}
  | {kind: 'truncate'; id: number; size: number}
  | {kind: 'rename'; from: string; to: string}
  | {kind: 'unlink'; path: string}
  | {kind: 'link'; from: string; to: string}
  | {kind: 'fsync'; id: number}
  /** fdatasync: the file's contents and size only, not its xattrs (DURABILITY.md). */
  | {kind: 'fdatasync'; id: number}
  | {kind: 'fsyncdir'; dir: string}
  /** open, close, reads: no change to the state. */
  | {kind: 'none'; what: string}

export function describe(e: Effect): string {
  switch (e.kind) {
    case 'create':
      return `create ${e.path} (#${e.id})`
    case 'setxattr':
      return `setxattr #${e.id} ${e.name} (${e.value.length} bytes)`
    case 'removexattr':
      return `removexattr #${e.id} ${e.name}`
    case 'write':
      return `write #${e.id} w${e.wid} [${e.off}, ${e.off + e.len})`
    case 'truncate':
      return `truncate #${e.id} to ${e.size}`
    case 'rename':
      return `rename ${e.from} -> ${e.to}`
    case 'unlink':
      return `unlink ${e.path}`
    case 'link':
      return `link ${e.from} -> ${e.to}`
    case 'fsync':
      return `fsync #${e.id}`
    case 'fdatasync':
      return `fdatasync #${e.id}`
    case 'fsyncdir':
      return `fsyncdir /${e.dir}`
    case 'none':
      return e.what
  }
}

export class Model {
  /** path ('a/f3') -> identity */
  names = new Map<string, number>()
  /** identities with at least one name */
  files = new Map<number, FileState>()
  /** Final state of identities that lost their last name (for checks after a power loss). */
  graveyard = new Map<number, FileState>()

  constructor(public ids: {next: number}) {}

  clone(): Model {
    const m = new Model(this.ids)
    m.names = new Map(this.names)
    for (const [id, f] of this.files) m.files.set(id, {id, content: Buffer.from(f.content), xattrs: new Map(f.xattrs)})
    m.graveyard = new Map(this.graveyard)
    return m
  }

  linksOf(id: number): string[] {
    return [...this.names]
      .filter(([, i]) => i === id)
      .map(([p]) => p)
      .sort()
  }

  /** The identity's content and xattrs: live, or as it was when it lost its last name. */
  stateOf(id: number): FileState | undefined {
    return this.files.get(id) ?? this.graveyard.get(id)
  }

  private drop(id: number | undefined): void {
    if (id === undefined) return
    for (const i of this.names.values()) if (i === id) return
    const f = this.files.get(id)
    if (f) this.graveyard.set(id, f)
    this.files.delete(id)
  }

  apply(e: Effect, data?: (wid: number, off: number, len: number) => Buffer): void {
    switch (e.kind) {
      case 'create': {
        this.names.set(e.path, e.id)
        this.files.set(e.id, {id: e.id, content: Buffer.alloc(0), xattrs: new Map()})
        break
      }

      case 'setxattr': {
        this.files.get(e.id)?.xattrs.set(e.name, e.value)
        break
      }

      case 'removexattr': {
        this.files.get(e.id)?.xattrs.delete(e.name)
        break
      }

      case 'write': {
        // A write through a descriptor of an unlinked file changes nothing visible.
        const f = this.files.get(e.id)
        if (!f) break
        const end = e.off + e.len
        if (end > f.content.length) {
          const grown = Buffer.alloc(end)
          f.content.copy(grown)
          f.content = grown
        }

        ;(data ?? patternBuffer)(e.wid, e.off, e.len).copy(f.content, e.off)
        break
      }

      case 'truncate': {
        const f = this.files.get(e.id)
        if (!f) break
        if (e.size <= f.content.length) {
          f.content = Buffer.from(f.content.subarray(0, e.size))
        } else {
          const grown = Buffer.alloc(e.size)
          f.content.copy(grown)
          f.content = grown
        }

        break
      }

      case 'rename': {
        const src = this.names.get(e.from)
        const dst = this.names.get(e.to)
        if (src === undefined) throw new Error(`model: rename of missing ${e.from}`)
        // Two names of the same file: rename(2) does nothing (POSIX).
        if (e.from === e.to || src === dst) break
        this.names.delete(e.from)
        this.names.set(e.to, src)
        this.drop(dst)
        break
      }

      case 'unlink': {
        const id = this.names.get(e.path)
        this.names.delete(e.path)
        this.drop(id)
        break
      }

      case 'link': {
        const id = this.names.get(e.from)
        if (id === undefined) throw new Error(`model: link of missing ${e.from}`)
        this.names.set(e.to, id)
        break
      }

      case 'fsync':
      case 'fdatasync':
      case 'fsyncdir':
      case 'none': {
        break
      }
    }
  }
}

/** One system call of the workload, with when it was issued and acknowledged (performance.now()). */
export interface JournalEntry {
  seq: number
  effect: Effect
  tIssue: number
  /** null: not acknowledged (in flight when the server died or stopped, or failed). */
  tAck: number | null
}

/**
 * Everything one cycle did, against the state it started from (`base`, a copy): the harnesses
 * check the state after a crash against it.
 */
export class Cycle {
  readonly base: Model
  readonly entries: JournalEntry[] = []
  /** The call in flight (issued, not acknowledged). */
  pending: JournalEntry | null = null
  /** Calls that returned an error while the server was alive. */
  readonly failures: string[] = []
  private seq = 0

  constructor(readonly model: Model) {
    this.base = model.clone()
    this.base.graveyard.clear()
  }

  issue(effect: Effect, now: number): JournalEntry {
    const entry = {seq: ++this.seq, effect, tIssue: now, tAck: null}
    this.pending = entry
    return entry
  }

  ack(entry: JournalEntry, now: number): void {
    entry.tAck = now
    this.entries.push(entry)
    if (this.pending === entry) this.pending = null
    this.model.apply(entry.effect)
  }

  get acked(): number {
    return this.entries.length
  }

  /** The model as it is if the call in flight took effect too. */
  withPending(): Model | undefined {
    const effect = this.pending?.effect
    if (effect === undefined || ['none', 'fsync', 'fdatasync', 'fsyncdir'].includes(effect.kind)) return undefined
    const m = this.model.clone()
    try {
      m.apply(effect)
    } catch {
      return undefined
    }

    return m
  }
}
