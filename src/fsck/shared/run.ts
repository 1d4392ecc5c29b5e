/**
 * fsck of a volume shared through PostgreSQL (`razorfs fsck --meta URL`, issue 20): the same
 * problem table, context (answers by mode, counts), report and exit codes as the image's
 * (../run.ts), over the schema's rows instead of records. The queries and repair statements live
 * next to the schema (storage/pg/checks.ts); here is what each problem is and in which order.
 *
 * The schema's foreign keys rule out what an image can have (an entry naming a missing inode,
 * xattrs, blocks or holds of a missing one, a hold of a missing session), and its transactions a
 * torn change: what is left is what a bug, or a hand on the rows, can do.
 *
 * Pass 8 (always): sessions whose lease ran out (ended, as the next client's reaper would), and
 * the inode sequence (past the largest inode). Pass 9 (with -f, or after a repair in pass 8): the
 * root; entries in non-directories and invalid names; directories with two names; directories
 * the root does not reach (reconnected to /lost+found, a cycle cut at its top); inodes with links
 * and no name (reconnected); the parent column of directories; fields one type fixes (parent,
 * target, size); link counts; orphans (no link, no name, no live session's hold: freed); blocks
 * of non-regular files, blocks longer than the block size, bytes past a file's size (the size
 * grows to keep them). Without -f, a volume whose pass 8 found nothing is reported clean: a
 * shared volume changes only in transactions.
 *
 * -n checks in one read-only snapshot, with mounts live. Any other mode first takes the repair
 * lock and refuses while a session is live (storage/pg/checks.ts PgCheckLink.open): exit 8.
 */
import {S_IFDIR, S_IFLNK, S_IFMT, S_IFREG} from '../../storage/format.js'
import {nowTimespec} from '../../storage/image/inodes.js'
import {PgCheckLink, REPAIRS} from '../../storage/pg/checks.js'
import {displayPgUrl} from '../../volume-url.js'
import {EXIT} from '../../exit-codes.js'
import {nameProblem, shown} from '../bytes.js'
import {FsckContext, type FsckOptions} from '../context.js'
import {PR} from '../problems.js'
import {type FsckReport, emptyCounts, failureOf, summarize} from '../run.js'
import {typeName} from '../state.js'

export interface SharedFsckOptions extends Omit<FsckOptions, 'dir' | 'progress' | 'deadlineMs'> {
  /** The volume's URL (with its password, if any). */
  url: string
}

/** The image's report (FsckReport), keys and all: `dir` is null, `meta` says where the volume is. */
export type SharedFsckReport = Omit<FsckReport, 'dir'> & {dir: null; meta: string}

type Row = Record<string, unknown>
const ROOT = 1
const LPF = Buffer.from('lost+found')

const num = (v: unknown): number => Number(v)
const typeOf = (mode: unknown): string => typeName((num(mode) & S_IFMT) >>> 12)
const isDir = (mode: unknown): boolean => (num(mode) & S_IFMT) === S_IFDIR

/** One run: the link, the context, and what the passes hand on. */
class Check {
  /** The root is a directory (found so, or made so): pass 9 can go on past it. */
  rootOk = true
  /** ino_seq is past every inode: inodes can be made (lost+found, a moved root). */
  seqOk = true
  /** Expired sessions left in place (declined, or -n): orphans they hold cannot be freed. */
  expiredLeft = false
  private lpf: number | undefined
  /** An inode lost its name to /lost+found being made: the unattached inodes are looked for again. */
  displaced = false

  constructor(
    readonly ctx: FsckContext,
    readonly link: PgCheckLink,
  ) {}

  fix(code: number, values: Record<string, unknown>, canFix = true): boolean {
    return this.ctx.fix(code, values, {canFix})
  }

  /** /lost+found, found or made on first use; 0 if there is none and can be none (-n, declined). */
  async lostFound(): Promise<number> {
    if (this.lpf !== undefined) return this.lpf
    this.lpf = 0
    if (!this.ctx.writable) return 0
    const [found] = await this.link.rows('lostFound')
    if (found !== undefined) {
      if (isDir(found.mode)) return (this.lpf = num(found.ino))
      if (!this.fix(PR.PR_3_LPF_NOT_DIR, {slot: found.ino, type: typeOf(found.mode)})) return 0
      // Its inode keeps its link count: with no other name it is reconnected as an unattached one.
      await this.link.repair(REPAIRS.removeEntry(ROOT, LPF))
      this.displaced = true
    }

    if (!this.fix(PR.PR_3_NO_LPF, {}, this.seqOk && this.rootOk)) return 0
    const now = nowTimespec()
    await this.link.repair(REPAIRS.createLostFound(now.sec, now.nsec))
    const [made] = await this.link.rows('lostFound')
    return (this.lpf = num(made.ino))
  }

  /** Give `ino` a name "#ino" (or "#ino.N") in /lost+found, first removing the entry `cut` if given. */
  async reconnect(ino: number, dir: boolean, cut?: {parent: number; name: Buffer}): Promise<void> {
    const lpf = await this.lostFound()
    let name = Buffer.from(`#${ino}`)
    for (let n = 1; (await this.link.rows('nameTaken', [lpf, name])).length > 0; n++) name = Buffer.from(`#${ino}.${n}`)
    await this.link.repair([...(cut === undefined ? [] : REPAIRS.removeEntry(cut.parent, cut.name)), ...REPAIRS.attach(lpf, name, ino, dir)])
  }

  /** Can something be reconnected: with -n the question is asked (and answered no); else /lost+found must exist or be made. */
  async canReconnect(): Promise<boolean> {
    return this.rootOk && (!this.ctx.writable || (await this.lostFound()) !== 0)
  }
}

/** Run fsck on the volume at `opts.url`. Never throws for a problem of the volume: see `error`. */
export async function runSharedFsck(opts: SharedFsckOptions): Promise<SharedFsckReport> {
  const meta = displayPgUrl(opts.url)
  const ctx = new FsckContext({...opts, dir: meta})
  const counts = emptyCounts()
  counts.names = null
  let checked: SharedFsckReport['checked'] = 'none'
  let failure: ReturnType<typeof failureOf> | undefined
  let link: PgCheckLink | undefined
  try {
    link = await PgCheckLink.open(opts.url, ctx.writable)
    const c = new Check(ctx, link)
    await pass8(c)
    if (opts.force || ctx.problems.length > 0) {
      await pass9(c)
      checked = 'full'
    } else {
      checked = 'headers'
    }

    const [n] = await link.rows('counts')
    counts.inodes = num(n.inodes)
    counts.entries = num(n.entries)
    counts.contentFiles = num(n.content_files)
    for (const [type, count] of n.types as Array<[number, number]>) {
      if (type === S_IFDIR) counts.directories += num(count)
      else if (type === S_IFREG) counts.regularFiles += num(count)
      else if (type === S_IFLNK) counts.symlinks += num(count)
      else counts.otherFiles += num(count)
    }
  } catch (thrown) {
    failure = failureOf(thrown)
  } finally {
    await link?.close()
  }

  let exit = failure?.exit ?? 0
  if (ctx.fixed > 0) exit |= EXIT.CORRECTED
  if (ctx.uncorrected > 0) exit |= EXIT.UNCORRECTED
  counts.problems = ctx.problems.length
  counts.fixed = ctx.fixed
  counts.uncorrected = ctx.uncorrected
  const report: SharedFsckReport = {
    dir: null,
    meta,
    clean: failure === undefined && ctx.problems.length === 0,
    checked,
    problems: ctx.problems,
    exitCode: exit,
    counts,
  }
  if (failure !== undefined) {
    report.error = failure.error
    if (failure.errorCode !== undefined) report.errorCode = failure.errorCode
    if (failure.stack !== undefined) report.stack = failure.stack
  }

  summarize(ctx, report, 'VOLUME')
  return report
}

/** Pass 8: expired sessions, the inode sequence. */
async function pass8(c: Check): Promise<void> {
  const {ctx, link} = c
  ctx.header(PR.PR_8_PASS_HEADER)
  for (const s of await link.rows('expiredSessions')) {
    const values = {id: s.id, host: s.host, pid: s.client_pid, ago: Math.max(0, Math.round(num(s.ago_ms) / 1000)), holds: s.holds}
    if (c.fix(PR.PR_8_EXPIRED_SESSION, values)) {
      await link.endBackend(num(s.id))
      await link.repair(REPAIRS.endSession(num(s.id)))
    } else {
      c.expiredLeft = true
    }
  }

  const [seq] = await link.rows('sequence')
  if (num(seq.next) <= num(seq.max)) {
    if (c.fix(PR.PR_8_INO_SEQUENCE, {next: seq.next, max: seq.max})) await link.repair(REPAIRS.setSequence(num(seq.max)))
    else c.seqOk = false
  }
}

/** Pass 9: the tree, link counts, orphans, blocks. */
async function pass9(c: Check): Promise<void> {
  const {ctx, link} = c
  ctx.header(PR.PR_9_PASS_HEADER)
  await root(c)
  if (!c.rootOk) return

  // ---- entries: in non-directories, invalid names, second names of directories ----
  for (const e of await link.rows('entriesNotInDir')) {
    const name = Buffer.from(e.name as Uint8Array)
    if (c.fix(PR.PR_9_ENTRY_NOT_IN_DIR, {name: shown(name), child: e.ino, parent: e.parent, type: typeOf(e.pmode)}))
      await link.repair(REPAIRS.removeEntry(num(e.parent), name))
  }

  for (const e of await link.rows('badNames')) {
    const name = Buffer.from(e.name as Uint8Array)
    if (c.fix(PR.PR_2_BAD_NAME, {entry: shown(name), parent: e.parent, reason: nameProblem(name) ?? 'it is invalid'}))
      await link.repair(REPAIRS.removeEntry(num(e.parent), name))
  }

  const names = new Map<number, Row[]>()
  for (const e of await link.rows('multiNamedDirs')) names.set(num(e.ino), [...(names.get(num(e.ino)) ?? []), e])
  for (const [dir, list] of names) {
    const keep = list.find(e => num(e.parent) === num(e.field)) ?? list[0]
    for (const e of list) {
      if (e === keep) continue
      const name = Buffer.from(e.name as Uint8Array)
      if (c.fix(PR.PR_9_DIR_MULTI_NAME, {dir, name: shown(name), parent: e.parent})) await link.repair(REPAIRS.removeEntry(num(e.parent), name))
    }
  }

  // ---- connectivity: the top of each unreachable tree goes to /lost+found ----
  const unreached = new Map<number, Row>()
  for (const d of await link.rows('unreachableDirs')) unreached.set(num(d.ino), d)
  const tops = new Map<number, string>()
  for (const u of unreached.keys()) {
    const seen = new Set<number>()
    for (let v = u; ; ) {
      seen.add(v)
      const holder = unreached.get(v)!.holder
      if (holder === null) {
        tops.set(v, 'no entry names it')
        break
      }

      const h = num(holder)
      if (!unreached.has(h)) {
        tops.set(v, `its entry is in inode ${h}`)
        break
      }

      if (seen.has(h)) {
        if (![...seen].some(s => tops.has(s))) tops.set(v, `it is in a cycle of directories, its entry is in directory ${h}`)
        break
      }

      v = h
    }
  }

  for (const [dir, reason] of tops) {
    const d = unreached.get(dir)!
    if (c.fix(PR.PR_3_UNCONNECTED_DIR, {dir, reason}, await c.canReconnect()) && (await c.lostFound()) !== 0) {
      await c.reconnect(dir, true, d.holder === null ? undefined : {parent: num(d.holder), name: Buffer.from(d.name as Uint8Array)})
    }
  }

  // ---- inodes with links and no name ----
  do {
    c.displaced = false
    for (const i of await link.rows('unattached')) {
      if (c.fix(PR.PR_3_UNATTACHED_INODE, {slot: i.ino, type: typeOf(i.mode), size: i.size}, await c.canReconnect()) && (await c.lostFound()) !== 0)
        await c.reconnect(num(i.ino), false)
    }
  } while (c.displaced)

  // ---- the parent column of directories; fields a type fixes ----
  for (const d of await link.rows('badParents')) {
    if (c.fix(PR.PR_3_BAD_PARENT, {dir: d.ino, value: d.parent, expected: d.holder})) await link.repair(REPAIRS.setField(num(d.ino), 'parent', num(d.holder)))
  }

  await fields(c)

  // ---- link counts, then orphans ----
  for (const i of await link.rows('badNlinks')) {
    if (c.fix(PR.PR_4_BAD_NLINK, {slot: i.ino, type: typeOf(i.mode), value: i.nlink, expected: i.expected}))
      await link.repair(REPAIRS.setField(num(i.ino), 'nlink', num(i.expected)))
  }

  for (const i of await link.rows('orphans')) {
    // Held by a session that expired and was not ended: it goes with that session, not before.
    if (c.fix(PR.PR_4_ORPHAN, {slot: i.ino, type: typeOf(i.mode), size: i.size}, !(i.held === true && c.expiredLeft)))
      await link.repair(REPAIRS.freeInode(num(i.ino)))
  }

  await blocks(c)
}

/** The root: inode 1, a directory. Missing: made (everything is then reconnected); not a directory: it moves to a new number first. */
async function root(c: Check): Promise<void> {
  const [r] = await c.link.rows('root')
  if (r !== undefined && isDir(r.mode)) return
  const reason = r === undefined ? 'there is no inode 1' : `inode 1 is a ${typeOf(r.mode)}, which keeps its contents under a new number`
  const now = nowTimespec()
  if (!c.fix(PR.PR_1_NO_ROOT, {reason}, c.seqOk)) {
    c.rootOk = false
    return
  }

  await c.link.repair(r === undefined ? REPAIRS.createRoot(now.sec, now.nsec) : REPAIRS.replaceRoot(now.sec, now.nsec))
}

async function fields(c: Check): Promise<void> {
  const {link} = c
  for (const i of await link.rows('badFields')) {
    const ino = num(i.ino)
    const type = num(i.mode) & S_IFMT
    const slot = {slot: ino, type: typeOf(i.mode)}
    if (type !== S_IFDIR && i.parent !== null && c.fix(PR.PR_1_BAD_FIELD, {...slot, field: 'parent', value: i.parent, expected: 'NULL'}))
      await link.repair(REPAIRS.setField(ino, 'parent', null))
    if (type !== S_IFLNK && i.target_len !== null && c.fix(PR.PR_1_BAD_FIELD, {...slot, field: 'target', value: `of ${i.target_len} bytes`, expected: 'NULL'}))
      await link.repair(REPAIRS.setField(ino, 'target', null))
    if (type === S_IFDIR && num(i.size) !== 0 && c.fix(PR.PR_1_BAD_FIELD, {...slot, field: 'size', value: i.size, expected: 0}))
      await link.repair(REPAIRS.setField(ino, 'size', 0))
    const length = num(i.target_len ?? 0)
    if (type === S_IFLNK && num(i.size) !== length && c.fix(PR.PR_1_SYMLINK_SIZE, {slot: ino, size: i.size, length}))
      await link.repair(REPAIRS.setField(ino, 'size', length))
  }
}

async function blocks(c: Check): Promise<void> {
  const {link} = c
  const bs = link.meta.blockSize
  for (const b of await link.rows('blocksNotRegular')) {
    if (c.fix(PR.PR_9_BLOCKS_NOT_REGULAR, {slot: b.ino, type: typeOf(b.mode), count: b.n, bytes: b.bytes})) await link.repair(REPAIRS.dropBlocks(num(b.ino)))
  }

  for (const b of await link.rows('longBlocks', [bs])) {
    if (c.fix(PR.PR_9_BLOCK_TOO_LONG, {blk: b.blk, slot: b.ino, length: b.length, max: bs})) await link.repair(REPAIRS.trimBlock(num(b.ino), num(b.blk), bs))
  }

  for (const f of await link.rows('pastSize', [bs])) {
    if (c.fix(PR.PR_9_BLOCKS_PAST_SIZE, {slot: f.ino, size: f.size, end: f.end})) await link.repair(REPAIRS.setField(num(f.ino), 'size', num(f.end)))
  }
}
