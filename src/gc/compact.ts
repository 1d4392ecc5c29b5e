/**
 * `razorfs gc` (alias `compact`): give back the space an image no longer uses, offline.
 *
 * The image is rebuilt, not edited in place: a new image is built in a staging directory inside
 * the data dir (storage/staging.ts, as `init --from` does), sized to exactly what it will hold,
 * checked against the old one, and put in place by rename(2)s. Every step before the renames
 * leaves the old image untouched; a run killed during the renames is finished by the next
 * read-write open, and a read-only open reads the new image meanwhile (staging.ts `imagePaths`).
 *
 * How the new image is built, from a depth-first walk of the old one (oldest entry first, so that
 * readdir lists each directory in the same order):
 * 1. tree: each name becomes an entry of the new image (`mknod`, or `link` for the further names
 *    of a hard-linked inode). Inodes are numbered in walk order from slot 1 (generation 0): gc
 *    **renumbers inodes**. Names and symlink targets are interned again, once each.
 * 2. attributes: each inode's mode, owner, times (ns), size, device number, content file number
 *    and xattr blob are copied into its new record as they are, after the tree is complete (adding
 *    entries changes the times of directories). No string is ever freed while building, so the new
 *    string heap has no free bytes; the tables have no free records; the log is cut to its minimum.
 * 3. verify: both images are walked again side by side: the same names in the same order, and for
 *    each inode the same attributes, link count, xattrs and target, with the new numbers one to one
 *    with the old ones. Any difference abandons the new image.
 *
 * The content files (`data/`) are shared: their numbers are kept (`dataId`, `nextDataId`), so
 * the new image names the very files the old one does and gc neither copies nor moves them.
 */
import fs from 'node:fs'
import path from 'node:path'

import {type Progress} from '../progress.js'
import {type InodeRecord, Records} from '../inspect/records.js'
import {type TreeItem, preorder} from '../inspect/walk.js'
import {CONTROL_OFFSET, tableControlFields as TC} from '../storage/codec/control.js'
import {inodeFields as I} from '../storage/codec/inode.js'
import {
  DATA_OFFSET,
  FILES,
  FILE_NODES,
  HF_CLEAN,
  IMAGE_FILE_NAMES,
  S_IFBLK,
  S_IFCHR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  STRING_UNIT,
  WAL_NAME,
} from '../storage/format.js'
import {Image, ImageError} from '../storage/index.js'
import {FILE_RESERVE, WAL_MIN_SIZE} from '../storage/space.js'
import {Staging} from '../storage/staging.js'

/** Items per transaction while building (one WAL record each). */
const BATCH = 512
/** The new image's log limit while it is built: it checkpoints often, so its log stays small. */
const BUILD_WAL_LIMIT = 8 << 20
const ROOT_SLOT = 1

export interface FileFigure {
  name: string
  bytes: number
}

/** What the image's files take, and what its tables hold that nothing uses. */
export interface ImageFigures {
  /** The five mapped files and wal.log, in that order (content files are not counted: gc does not change them). */
  files: FileFigure[]
  totalBytes: number
  reclaimable: {
    inodeRecords: number
    entryRecords: number
    stringBytes: number
    /** Free records x record size, plus free string heap bytes (as `razorfs stats` counts it). */
    bytes: number
  }
}

export interface GcReport {
  dataDir: string
  dryRun: boolean
  /** Nothing to give back: the image was left as it was. */
  unchanged: boolean
  /** The image had not been closed cleanly: gc recovered it first (a dry run only says it would). */
  recovered: boolean
  inodes: number
  entries: number
  before: ImageFigures
  /** After the gc; for a dry run, what the gc would leave (the same figures, computed). */
  after: ImageFigures
  /** before.totalBytes - after.totalBytes. */
  gaveBack: number
  notes: string[]
}

export interface GcOptions {
  dryRun?: boolean
  progress?: Progress
}

/**
 * Test hook (the kill tests only: test/helpers/gc-kill.ts sets it; nothing in src/ does, and no
 * flag or environment variable reaches it): called at named points of a gc ('copy' after each
 * batch of the tree, 'attributes' after each batch of attributes, 'built' once the new image is
 * verified, 'rename' before each rename of the commit, 'committed' once it is in place).
 */
let testHook: ((point: string) => void) | undefined
export function setGcTestHook(hook: ((point: string) => void) | undefined): void {
  testHook = hook
}

/** Records each mapped file must hold for the image's live contents (CreateOptions.sizes). */
export function neededSizes(image: Image): number[] {
  const {nodes, entries, strings} = image.internals()
  return [
    nodes.live + 1,
    entries.live + 1,
    Math.max(256, entries.live) + 1,
    1 + Math.ceil(strings.liveBytes / STRING_UNIT),
    Math.max(256, strings.index.count) + 1,
  ]
}

/** The bytes of a mapped file created for `records` records (Store.create). */
function fileBytes(recordSize: number, records: number): number {
  return Math.ceil((DATA_OFFSET + records * recordSize + FILE_RESERVE) / 4096) * 4096
}

/** The figures a gc of `image` would leave. */
export function figuresAfter(image: Image): ImageFigures {
  const sizes = neededSizes(image)
  const files = [...FILES.map(spec => ({name: spec.name, bytes: fileBytes(spec.recordSize, sizes[spec.id])})), {name: WAL_NAME, bytes: WAL_MIN_SIZE}]
  return {files, totalBytes: files.reduce((a, f) => a + f.bytes, 0), reclaimable: {inodeRecords: 0, entryRecords: 0, stringBytes: 0, bytes: 0}}
}

/** The figures of an open image whose files are in `dir`. */
export function figuresOf(image: Image, dir: string): ImageFigures {
  const {nodes, entries, strings} = image.internals()
  const files = IMAGE_FILE_NAMES.map(name => ({name, bytes: fs.statSync(path.join(dir, name)).size}))
  const inodeRecords = Math.max(0, nodes.highWater - 1 - nodes.live)
  const entryRecords = Math.max(0, entries.highWater - 1 - entries.live)
  return {
    files,
    totalBytes: files.reduce((a, f) => a + f.bytes, 0),
    reclaimable: {
      inodeRecords,
      entryRecords,
      stringBytes: strings.freeBytes,
      bytes: inodeRecords * nodes.recordSize + entryRecords * entries.recordSize + strings.freeBytes,
    },
  }
}

function withReadOnly<T>(dir: string, fn: (image: Image) => T): T {
  const image = Image.open(dir, {readOnly: true})
  try {
    return fn(image)
  } finally {
    image.close()
  }
}

function isClean(image: Image): boolean {
  return (image.internals().store.headers[FILE_NODES].flags & HF_CLEAN) !== 0
}

/** Would a gc change anything? */
function worthIt(before: ImageFigures, after: ImageFigures): boolean {
  return before.reclaimable.bytes > 0 || after.totalBytes < before.totalBytes
}

/**
 * Run a gc of the image in `dir` (or, with `dryRun`, only say what it would give back: the image
 * is opened read-only and nothing is written). The image must not be in use: the lock is taken
 * for the whole run (RZ_LOCKED otherwise).
 */
export function gcImage(dir: string, opts: GcOptions = {}): GcReport {
  if (!Image.exists(dir)) Image.open(dir, {readOnly: true}).close() // the error that names what is missing
  const notes: string[] = []
  if (opts.dryRun) {
    return withReadOnly(dir, image => {
      const before = figuresOf(image, dir)
      const clean = isClean(image)
      const after = worthIt(before, figuresAfter(image)) ? figuresAfter(image) : before
      if (!clean) notes.push('the image was not closed cleanly: gc would recover it first (as a mount does)')
      const {nodes, entries} = image.internals()
      return {
        dataDir: dir,
        dryRun: true,
        unchanged: after === before,
        recovered: false,
        inodes: nodes.live,
        entries: entries.live,
        before,
        after,
        gaveBack: before.totalBytes - after.totalBytes,
        notes,
      }
    })
  }

  // An image not closed cleanly is recovered first, as a mount would: the WAL replayed, orphans freed.
  let recovered = false
  if (!withReadOnly(dir, isClean)) {
    Image.open(dir).close()
    recovered = true
    notes.push('the image was not closed cleanly: recovered it first')
  }

  const staging = Staging.begin(dir, {
    kind: 'gc',
    force: true,
    refuse: () => new ImageError('RZ_EXISTS', 'internal: gc refused its own image', dir),
    shareContents: true,
    beforeRename: () => testHook?.('rename'),
  })
  notes.push(...staging.notes)
  try {
    const old = Image.open(dir, {readOnly: true}) // the lock is the staging's: nobody can change it now
    let before: ImageFigures
    let inodes: number
    let entries: number
    try {
      if (!isClean(old)) throw new ImageError('RZ_IO', 'was opened by another process since gc recovered it; run razorfs gc again', dir)
      before = figuresOf(old, dir)
      inodes = old.internals().nodes.live
      entries = old.internals().entries.live
      if (!worthIt(before, figuresAfter(old))) {
        staging.abort()
        return {dataDir: dir, dryRun: false, unchanged: true, recovered, inodes, entries, before, after: before, gaveBack: 0, notes}
      }

      const map = build(old, staging.dir, opts.progress)
      verify(old, staging.dir, map, opts.progress)
      opts.progress?.finish()
    } finally {
      old.close()
    }

    testHook?.('built')
    staging.commit()
    testHook?.('committed')
    const after = withReadOnly(dir, image => figuresOf(image, dir))
    return {dataDir: dir, dryRun: false, unchanged: false, recovered, inodes, entries, before, after, gaveBack: before.totalBytes - after.totalBytes, notes}
  } catch (error) {
    staging.abort()
    throw error
  } finally {
    staging.release()
  }
}

/** Why gc stops: the old image holds something a walk cannot carry over whole. */
function refuse(what: string, dir: string): ImageError {
  return new ImageError('RZ_CORRUPTED', `${what}; run razorfs fsck -fy first (gc changed nothing)`, dir)
}

/** Build the new image in `into` from `old`; returns the new slot of each old slot (0: none). */
function build(old: Image, into: string, progress?: Progress): Uint32Array {
  const records = new Records(old)
  const t = old.internals()
  const map = new Uint32Array(t.nodes.highWater)
  const image = Image.create(into, {
    sizes: neededSizes(old),
    walLimit: BUILD_WAL_LIMIT,
    uuid: t.store.uuid,
    createdMs: t.store.headers[FILE_NODES].createdMs,
  })
  try {
    map[ROOT_SLOT] = ROOT_SLOT
    progress?.phase('gc: copying the tree', t.entries.live, 'items')
    const walk = preorder(records, ROOT_SLOT, Buffer.from('/'), {oldestFirst: true})
    walk.next() // the root: it is there
    let done = 0
    for (let batch = takeBatch(walk); batch.length > 0; batch = takeBatch(walk)) {
      image.transaction(() => {
        for (const item of batch) addItem(records, image, map, item, old.dir)
      })
      done += batch.length
      progress?.set(done)
      testHook?.('copy')
      records.releasePages()
    }

    let mapped = 0
    for (const n of map) if (n !== 0) mapped++
    if (mapped !== t.nodes.live) throw refuse(`${t.nodes.live - mapped} inodes are not reachable from the root`, old.dir)

    progress?.phase('gc: copying attributes', t.nodes.live, 'items')
    const nt = image.internals()
    done = 0
    for (let slot = 1; slot < map.length; ) {
      const end = Math.min(map.length, slot + BATCH)
      image.transaction(() => {
        for (; slot < end; slot++) if (map[slot] !== 0) copyAttributes(records, nt, slot, map[slot])
        if (end === map.length) TC.nextDataId.set(nt.store, nt.nodes.file, CONTROL_OFFSET, TC.nextDataId.get(t.nodes.file.buf, CONTROL_OFFSET))
      })
      done += BATCH
      progress?.set(Math.min(done, t.nodes.live))
      testHook?.('attributes')
      records.releasePages()
    }

    image.close()
  } catch (error) {
    image.abandon()
    throw error
  }

  return map
}

function takeBatch(walk: Generator<TreeItem>): TreeItem[] {
  const out: TreeItem[] = []
  for (let r = walk.next(); !r.done; r = walk.next()) {
    out.push(r.value)
    if (out.length === BATCH) break
  }

  return out
}

/** One name of the old tree in the new image: a new inode, or a further link to one already made. */
function addItem(records: Records, image: Image, map: Uint32Array, item: TreeItem, dir: string): void {
  const shown = item.path.toString('utf8')
  if (item.problem !== undefined) throw refuse(`${shown}: ${item.problem}`, dir)
  const parent = map[records.entryParent(item.dirent)]
  if (parent === 0) throw refuse(`${shown}: its directory was not reached first`, dir)
  const existing = map[item.slot]
  if (existing !== 0) {
    if (records.isDir(item.slot)) throw refuse(`${shown}: a directory with a second name`, dir)
    image.link(existing, parent, item.name)
    return
  }

  const r = records.inode(item.slot)
  const type = r.mode & S_IFMT
  const spec = {
    mode: r.mode,
    uid: r.uid,
    gid: r.gid,
    rdev: type === S_IFCHR || type === S_IFBLK ? r.rdev : 0,
    ...(type === S_IFLNK ? {target: records.symlinkTarget(item.slot)} : {}),
  }
  map[item.slot] = image.mknod(parent, item.name, spec).ino
}

/** The attributes of old inode `slot` into new inode `to` (in the running transaction). */
function copyAttributes(records: Records, nt: ReturnType<Image['internals']>, slot: number, to: number): void {
  const r: InodeRecord = records.inode(slot)
  const {store, nodes, strings} = nt
  const f = nodes.file
  const o = nodes.off(to)
  I.mode.set(store, f, o, r.mode)
  I.uid.set(store, f, o, r.uid)
  I.gid.set(store, f, o, r.gid)
  I.atimeSec.set(store, f, o, r.atimeSec)
  I.atimeNsec.set(store, f, o, r.atimeNsec)
  I.mtimeSec.set(store, f, o, r.mtimeSec)
  I.mtimeNsec.set(store, f, o, r.mtimeNsec)
  I.ctimeSec.set(store, f, o, r.ctimeSec)
  I.ctimeNsec.set(store, f, o, r.ctimeNsec)
  I.rdev.set(store, f, o, r.rdev)
  if ((r.mode & S_IFMT) === S_IFREG) {
    // Written into the record, not through setattr/write: the content file is the old image's too, and must not be touched.
    I.size.set(store, f, o, r.size)
    I.dataId.set(store, f, o, r.dataId)
  }

  if (r.xattr !== 0) I.xattr.set(store, f, o, strings.allocBlob(Buffer.from(records.stringBytes(r.xattr))))
}

/** Fields that must be equal in the old and the new record of an inode. */
const SAME: Array<keyof InodeRecord> = [
  'flags',
  'mode',
  'nlink',
  'uid',
  'gid',
  'size',
  'atimeSec',
  'atimeNsec',
  'mtimeSec',
  'mtimeNsec',
  'ctimeSec',
  'ctimeNsec',
  'rdev',
  'dataId',
]

/** Walk both images side by side: same tree, same inodes (through `map`), or throw. */
function verify(old: Image, built: string, map: Uint32Array, progress?: Progress): void {
  const image = Image.open(built, {readOnly: true})
  try {
    const a = new Records(old)
    const b = new Records(image)
    const mismatch = (what: string): Error =>
      new Error(`the rebuilt image differs from the old one (${what}): the old one may be inconsistent; run razorfs fsck -fy first (gc changed nothing)`)
    progress?.phase('gc: verifying', old.internals().entries.live + 1, 'items')
    const wa = preorder(a, ROOT_SLOT, Buffer.from('/'), {oldestFirst: true})
    const wb = preorder(b, ROOT_SLOT, Buffer.from('/'), {oldestFirst: true})
    let n = 0
    for (;;) {
      const x = wa.next()
      const y = wb.next()
      if (x.done || y.done) {
        if (!x.done || !y.done) throw mismatch('one tree is longer')
        break
      }

      const p = x.value.path.toString('utf8')
      if (!x.value.path.equals(y.value.path)) throw mismatch(`${p} / ${y.value.path.toString('utf8')}`)
      if (map[x.value.slot] !== y.value.slot) throw mismatch(`${p}: inode`)
      const ra = a.inode(x.value.slot)
      const rb = b.inode(y.value.slot)
      for (const k of SAME) if (ra[k] !== rb[k]) throw mismatch(`${p}: ${k} ${ra[k]} / ${rb[k]}`)
      if (!a.symlinkTarget(x.value.slot).equals(b.symlinkTarget(y.value.slot))) throw mismatch(`${p}: target`)
      if (!a.stringBytes(ra.xattr).equals(b.stringBytes(rb.xattr))) throw mismatch(`${p}: xattrs`)
      if (++n % BATCH === 0) {
        progress?.set(n)
        a.releasePages()
        b.releasePages()
      }
    }

    const nt = image.internals()
    const ot = old.internals()
    if (nt.nodes.live !== ot.nodes.live || nt.entries.live !== ot.entries.live) throw mismatch('counts')
    if (TC.nextDataId.get(nt.nodes.file.buf, CONTROL_OFFSET) !== TC.nextDataId.get(ot.nodes.file.buf, CONTROL_OFFSET)) throw mismatch('nextDataId')
  } finally {
    image.close()
  }
}
