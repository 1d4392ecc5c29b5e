/**
 * `razorfs migrate`: copy an image of the C RAZORFS into a new razorfs image.
 *
 * 1. Find the source (--from, or the first of /dev/shm, /var/lib/razorfs, /tmp/razorfs_data)
 *    and its layout (file names, then magic numbers).
 * 2. Read and validate all of it (source.ts) before anything is written. Bad entries fail the
 *    migration, or with --skip-bad are left out (with what hangs below them) and listed.
 * 3. Check the target: never the source's own directory, never over a C image, never over a
 *    razorfs image without --force.
 * 4. Build the new image in a staging directory inside the data dir (storage/staging.ts), verify
 *    it against the source (every entry's type, mode, mtime, size and sha256), then move it into
 *    place (an image replaced by --force goes only then). A failure before that, or a rename that
 *    fails while it moves in, leaves the data dir as it was (or absent, if it did not exist).
 * 5. --remove-source deletes the source's files only after a successful verify.
 *
 * With --meta URL the target is a volume on PostgreSQL instead (shared.ts): made here as
 * `init --meta` makes one, then filled and verified in one transaction of the database, so a
 * failure leaves it empty, never half filled. Steps 1, 2 and 5 are the same.
 *
 * The source is only ever opened for reading.
 */
import fs from 'node:fs'
import path from 'node:path'

import {Image, ROOT_INO} from '../storage/index.js'
import {Staging} from '../storage/staging.js'
import {C_SHM, type CLayout} from './c-format.js'
import {Progress} from '../progress.js'
import {DEFAULT_SOURCES, DEFAULT_WAL, detect, readSource, type Source, SourceError} from './source.js'
import {fillShared, sharedName, sharedRefusal} from './shared.js'
import type {MigrateOptions, MigrateReport, ReportEntry, Verified} from './types.js'
import {readWal} from './wal.js'
import {MigrateError, octal, verifyVolume, writeEntries, owner} from './write.js'

export {MigrateError, type MigrateErrorCode} from './write.js'
export type {MigrateOptions, MigrateReport, ReportEntry, Verified} from './types.js'

/** Test hooks: where a migration without --from looks (colon-separated), and the default WAL. */
export const SOURCES_ENV = 'RAZORFS_MIGRATE_SOURCES'
export const WAL_ENV = 'RAZORFS_MIGRATE_WAL'

function realOrResolved(p: string): string {
  const abs = path.resolve(p)
  try {
    return fs.realpathSync(abs)
  } catch {
    // Not there (yet): resolve the nearest existing ancestor.
    const parent = path.dirname(abs)
    return parent === abs ? abs : path.join(realOrResolved(parent), path.basename(abs))
  }
}

/** Find the source: --from, or the first C image in the default places. */
function findSource(opts: MigrateOptions, report: MigrateReport): {dir: string; layout: CLayout} {
  const env = opts.env ?? process.env
  if (opts.from !== undefined) {
    const dir = path.resolve(opts.from === 'shm' ? '/dev/shm' : opts.from)
    report.source.dir = dir
    const d = detect(dir)
    switch (d.state) {
      case 'found':
        report.source.layout = d.layout!.kind
        return {dir, layout: d.layout!}
      case 'bad-magic':
        // readSource names the bad magic number.
        report.source.layout = d.layout!.kind
        return {dir, layout: d.layout!}
      default:
        throw new MigrateError(d.state === 'ambiguous' ? 'MIGRATE_BAD_SOURCE' : 'MIGRATE_NO_SOURCE', `--from ${dir}: ${d.detail}; nothing was written`, report)
    }
  }

  const places = env[SOURCES_ENV] ? env[SOURCES_ENV].split(':').filter(Boolean) : DEFAULT_SOURCES
  const found = places.map(dir => detect(path.resolve(dir)))
  report.source.chosenBy = 'search'
  report.source.searched = found.map(d => ({dir: d.dir, state: d.state, detail: d.detail}))
  const first = found.find(d => d.state === 'found')
  if (first === undefined) {
    const lines = found.map(d => `${d.dir}: ${d.detail}`).join('; ')
    throw new MigrateError('MIGRATE_NO_SOURCE', `no C RAZORFS image found (looked in ${lines}); give its directory with --from; nothing was written`, report)
  }

  report.source.dir = first.dir
  report.source.layout = first.layout!.kind
  return {dir: first.dir, layout: first.layout!}
}

function findWal(opts: MigrateOptions, sourceDir: string, report: MigrateReport): void {
  const env = opts.env ?? process.env
  if (opts.wal !== undefined) {
    const file = path.resolve(opts.wal)
    report.wal.looked = [file]
    if (!fs.existsSync(file)) throw new MigrateError('MIGRATE_WAL', `--wal ${file}: no such file; nothing was written`, report)
    report.wal.report = readWal(file)
    return
  }

  const candidates = [env[WAL_ENV] || DEFAULT_WAL, path.join(sourceDir, path.basename(DEFAULT_WAL))]
  report.wal.looked = candidates
  for (const file of candidates) {
    if (fs.existsSync(file)) {
      report.wal.report = readWal(file)
      return
    }
  }
}

/** Why the data dir cannot take the new image, or undefined. */
function targetRefusal(dataDir: string, opts: MigrateOptions, source: Source, report: MigrateReport): string | undefined {
  if (realOrResolved(dataDir) === realOrResolved(source.dir)) {
    const moved = `${source.dir.replace(/\/+$/, '')}.c`
    return source.layout === C_SHM
      ? `the data dir ${dataDir} is the source's own directory; choose another data dir with --data-dir`
      : `the data dir ${dataDir} is the source's own directory: a razorfs image would overwrite the C files (both use nodes.dat and strings.dat). ` +
          `Choose another data dir with --data-dir, or move the C image away first (mv ${source.dir} ${moved} && razorfs migrate --from ${moved})`
  }

  let st: fs.Stats | undefined
  try {
    st = fs.statSync(dataDir)
  } catch {
    st = undefined
  }

  report.target.existed = st !== undefined
  if (st === undefined) return undefined
  if (!st.isDirectory()) return `the data dir ${dataDir} exists but is not a directory`
  const there = detect(dataDir)
  if (there.state === 'found' || there.state === 'ambiguous') {
    return `the data dir ${dataDir} holds a C RAZORFS image (${there.detail}); migrate it from there into another data dir (--force does not replace a C image)`
  }

  if (Image.exists(dataDir)) {
    report.target.heldImage = true
    if (!opts.force) return `the data dir ${dataDir} already holds a razorfs image; use --force to replace it (its contents are lost)`
  }

  return undefined
}

/** Order of paths: component by component, bytewise (a directory right before its contents). */
function comparePaths(a: Buffer[], b: Buffer[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = Buffer.compare(a[i], b[i])
    if (c !== 0) return c
  }

  return a.length - b.length
}

function toReportEntry(e: Source['entries'][number]): ReportEntry {
  return {
    path: e.path,
    type: e.type,
    mode: octal(e.mode),
    size: e.size,
    mtime: e.mtime,
    ...(e.sha256 === undefined ? {} : {sha256: e.sha256}),
    cInode: e.inode,
    cSlot: e.slot,
    ...(e.content === undefined ? {} : {compressed: e.content.compressed}),
  }
}

/** Write the source's entries into the image in `dir` (created here). Returns the image's UUID. */
function writeImage(dir: string, source: Source, opts: MigrateOptions, progress: Progress): string {
  const {uid, gid} = owner(opts)
  const image = Image.create(dir, {capacity: source.entries.length + 16, uid, gid, rootMode: source.entries[0].mode})
  let closed = false
  try {
    const uuid = image.info().uuid
    writeEntries(image, source, opts, progress)
    image.close()
    closed = true
    return uuid
  } finally {
    if (!closed) image.abandon()
  }
}

/** verifyVolume of the image in `dir`. */
function verifyImage(dir: string, source: Source, progress: Progress): Verified {
  const image = Image.open(dir, {readOnly: true})
  try {
    return verifyVolume(image, source, progress, 'the new image was not put in place and the source was not touched')
  } finally {
    image.close()
  }
}

/** Delete the source's files (and its directory, for the disk layout, if that leaves it empty). */
function removeSource(source: Source): string[] {
  const removed: string[] = []
  for (const file of source.files) {
    try {
      fs.unlinkSync(file)
      removed.push(file)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
  }

  if (source.layout !== C_SHM) {
    try {
      fs.rmdirSync(source.dir)
      removed.push(source.dir)
    } catch {
      // not empty (other files are not ours to remove), or in use
    }
  }

  return removed
}

/** Run a migration (or a dry run). Throws MigrateError / SourceError with nothing written on failure. */
export function migrate(opts: MigrateOptions): MigrateReport {
  const progress = opts.progress ?? new Progress({stream: {isTTY: false, write: () => true}})
  if ((opts.meta === undefined) === (opts.dataDir === undefined)) throw new Error('internal: migrate takes a data dir or a --meta URL')
  const dataDir = opts.dataDir === undefined ? null : path.resolve(opts.dataDir)
  const report: MigrateReport = {
    dryRun: opts.dryRun === true,
    source: {dir: '', layout: 'disk', chosenBy: 'from'},
    wal: {looked: []},
    target: {dataDir, meta: opts.meta === undefined ? null : sharedName(opts.meta), existed: false, heldImage: false, replaced: false},
    entries: [],
    skipped: [],
    unreachable: [],
    unreferenced: [],
    notes: [],
    summary: {dirs: 0, files: 0, bytes: 0, skipped: 0, skippedBelow: 0},
    sourceRemoval: {requested: opts.removeSource === true, removed: []},
  }

  const {dir, layout} = findSource(opts, report)
  findWal(opts, dir, report)

  let source: Source
  progress.phase('checking', 0)
  try {
    source = readSource(dir, layout, {onTotal: n => progress.setTotal(n), onBytes: n => progress.add(n)})
  } catch (error) {
    if (error instanceof SourceError) throw new MigrateError('MIGRATE_BAD_SOURCE', `the source is damaged: ${error.message}; nothing was written`, report)
    throw error
  } finally {
    progress.finish()
  }

  const h = source.header
  report.source.nodes = {
    file: source.nodesFile,
    magic: `0x${h.magic.toString(16).toUpperCase()}`,
    version: h.version,
    capacity: h.capacity,
    used: h.used,
    nextInode: h.nextInode,
    freeCount: h.freeCount,
    liveSlots: source.liveSlots,
  }
  report.source.strings = {file: source.stringsFile, ...source.strings}
  report.source.contentFiles = source.files.length - 2
  report.entries = [...source.entries].sort((a, b) => comparePaths(a.names, b.names)).map(toReportEntry)
  report.skipped = source.bad
  report.unreachable = source.unreachable
  report.unreferenced = source.unreferenced
  report.notes = source.notes
  report.summary = {...source.totals, skipped: source.bad.length, skippedBelow: source.bad.reduce((n, b) => n + b.below, 0)}

  if (source.bad.length > 0 && !opts.skipBad) {
    const n = source.bad.length
    throw new MigrateError(
      'MIGRATE_BAD_SOURCE',
      `the source has ${n} bad entr${n === 1 ? 'y' : 'ies'} (${source.bad[0].path}: ${source.bad[0].reason}${n > 1 ? '; ...' : ''}); nothing was written. ` +
        'Use --skip-bad to migrate everything else',
      report,
    )
  }

  const refusal = dataDir === null ? sharedRefusal(opts.meta!, opts, report) : targetRefusal(dataDir, opts, source, report)
  if (refusal !== undefined) {
    report.target.refusal = refusal
    if (!opts.dryRun)
      throw new MigrateError(refusal.includes("source's own directory") ? 'MIGRATE_SAME_DIR' : 'MIGRATE_TARGET', `${refusal}; nothing was written`, report)
  }

  if (opts.dryRun) return report
  if (dataDir === null) fillShared(opts.meta!, source, opts, report, progress)
  else intoImage(dataDir, source, opts, report, progress)
  removeAfter(source, opts, report)
  return report
}

/** Steps 4: the new image, written and verified in a staging directory, then put in place. */
function intoImage(dataDir: string, source: Source, opts: MigrateOptions, report: MigrateReport, progress: Progress): void {
  // Checked again under the lock: another migration or init may have been quicker.
  const staging = Staging.begin(dataDir, {
    kind: 'migrate',
    force: opts.force === true,
    refuse: () =>
      new MigrateError(
        'MIGRATE_TARGET',
        `the data dir ${dataDir} already holds a razorfs image; use --force to replace it (its contents are lost); nothing was written`,
        report,
      ),
    beforeRename: opts.beforeRename,
  })
  try {
    report.notes.push(...staging.notes)
    progress.phase('writing', source.totals.bytes)
    report.target.uuid = writeImage(staging.dir, source, opts, progress)
    opts.afterWrite?.(staging.dir)
    progress.phase('verifying', source.totals.bytes)
    report.verified = verifyImage(staging.dir, source, progress)
    progress.finish()
    report.target.replaced = staging.commit().replaced
  } catch (error) {
    progress.finish()
    staging.abort()
    if (error instanceof SourceError) throw new MigrateError('MIGRATE_BAD_SOURCE', `${error.message}; nothing was put in place`, report)
    throw error
  } finally {
    staging.release()
  }

  // The image in place opens and has the root we wrote.
  const check = Image.open(dataDir, {readOnly: true})
  try {
    check.getattr(ROOT_INO)
  } finally {
    check.close()
  }
}

/** Step 5: --remove-source, after a verified migration, unless something was left out. */
function removeAfter(source: Source, opts: MigrateOptions, report: MigrateReport): void {
  if (opts.removeSource) {
    if (source.bad.length > 0 || source.unreachable.length > 0) {
      const parts = [
        ...(source.bad.length > 0 ? [`${source.bad.length} bad entr${source.bad.length === 1 ? 'y was' : 'ies were'} skipped`] : []),
        ...(source.unreachable.length > 0
          ? [`${source.unreachable.length} live slot${source.unreachable.length === 1 ? ' is' : 's are'} in no directory`]
          : []),
      ]
      report.sourceRemoval.kept = `${parts.join(' and ')}: what was left out exists only in the source; delete it by hand once you no longer need it`
    } else {
      report.sourceRemoval.removed = removeSource(source)
    }
  }
}
