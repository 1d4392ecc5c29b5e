/**
 * One fsck run: the passes in order, then the report (e2fsck_run).
 *
 * Order: pass 0 (headers) and pass 7 (log) read raw files, before the image is opened, since a bad
 * header or log stops the open; then the image is opened (read-only for -n: no lock, nothing
 * written, the WAL replayed in memory; otherwise under the lock, refusing a locked image) and
 * passes 1 to 6 run. Without -f, an image whose headers say it was closed cleanly (and whose log
 * holds no transaction) is reported clean after passes 0 and 7, as e2fsck does.
 *
 * Exit code: the OR of fsck(8)'s bits: 1 errors corrected, 4 errors left uncorrected, 8 operational
 * error (the check could not be carried out), 32 cancelled by the user.
 *
 * Closing: an image fsck changed, or that was not closed cleanly, gets a checkpoint; it is marked
 * clean only if no problem was left. An image that was clean and not changed is not written at all.
 */
import fs from 'node:fs'
import path from 'node:path'

import {EXIT} from '../exit-codes.js'
import {FILE_ENTRIES, FILE_NODES, FILES, S_IFDIR, S_IFLNK, S_IFREG} from '../storage/format.js'
import {hasMagic} from '../storage/codec/header.js'
import {checkDataDir} from '../storage/data-dir.js'
import {DirLock} from '../storage/lock.js'
import {holdsFinishedStaging, tidy} from '../storage/staging.js'
import {errnoText, ImageError} from '../storage/errors.js'
import {CheckedImage} from './checked-image.js'
import {FsckAbort, FsckCancelled, FsckContext, type FsckOptions, type ProblemReport} from './context.js'
import {pass0} from './pass0-headers.js'
import {pass1} from './pass1-inodes.js'
import {pass2} from './pass2-entries.js'
import {pass3} from './pass3-connectivity.js'
import {pass4} from './pass4-counts.js'
import {pass5} from './pass5-strings.js'
import {pass6} from './pass6-contents.js'
import {pass7} from './pass7-log.js'
import {INO_LIVE, State} from './state.js'

export interface FsckCounts {
  inodes: number
  directories: number
  regularFiles: number
  symlinks: number
  otherFiles: number
  entries: number
  /** Interned names (null on a shared volume, which has none). */
  names: number | null
  contentFiles: number
  problems: number
  fixed: number
  uncorrected: number
}

export interface FsckReport {
  dir: string
  /** No problem was found (or the image was closed cleanly and -f was not given). */
  clean: boolean
  /** Which passes ran: only the header and log passes (a clean image), or all of them. */
  checked: 'headers' | 'full' | 'none'
  problems: ProblemReport[]
  exitCode: number
  counts: FsckCounts
  /** Why the check could not be carried out (exit 8) or was cancelled (exit 32). */
  error?: string
  /** The image error's code (RZ_LOCKED, RZ_NO_IMAGE, ...) when the image could not be opened. */
  errorCode?: string
  /** The stack of an internal error (a bug of fsck). */
  stack?: string
}

/** Every count zero. */
export function emptyCounts(): FsckCounts {
  return {
    inodes: 0,
    directories: 0,
    regularFiles: 0,
    symlinks: 0,
    otherFiles: 0,
    entries: 0,
    names: 0,
    contentFiles: 0,
    problems: 0,
    fixed: 0,
    uncorrected: 0,
  }
}

/** Run fsck on the image in `opts.dir`. Never throws for a problem of the image: see `error`. */
export function runFsck(opts: FsckOptions): FsckReport {
  const ctx = new FsckContext(opts)
  const dir = opts.dir
  const counts = emptyCounts()
  let checked: FsckReport['checked'] = 'none'
  let error: string | undefined
  let errorCode: string | undefined
  let stack: string | undefined
  let exit = 0
  let lock: DirLock | undefined
  let img: CheckedImage | undefined
  try {
    checkDataDir(dir)
    if (!holdsImage(dir) && !holdsFinishedStaging(dir)) throw new ImageError('RZ_NO_IMAGE', 'holds no razorfs image (no nodes.dat)', dir)
    if (ctx.writable) {
      lock = DirLock.acquire(dir)
      // A gc, restore or migrate killed while putting its image in place: finish that first, as every read-write open does.
      const notes: string[] = []
      tidy(dir, notes)
      for (const line of notes) ctx.note(`razorfs: ${line}`)
    } else if (holdsFinishedStaging(dir)) {
      throw new ImageError(
        'RZ_IO',
        'holds an image that an interrupted gc, restore or migrate was putting in place; any read-write open finishes that (razorfs fsck -p, a mount, razorfs gc), then check it',
        dir,
      )
    }
    const pre = pass0(ctx, dir)
    const log = pass7(ctx, pre)
    if (pre.blocked.length > 0) {
      ctx.note(`razorfs: the image cannot be opened until these problems are repaired (${pre.blocked.join('; ')}); the other passes were skipped`)
      checked = 'headers'
    } else if (pre.clean && !opts.force && ctx.problems.length === 0) {
      checked = 'headers'
      counts.inodes = pre.files[FILE_NODES].header!.used
      counts.entries = pre.files[FILE_ENTRIES].header!.used
    } else {
      img = CheckedImage.open(dir, !ctx.writable)
      const opened = img
      ctx.armBeforeFirstWrite(() => opened.store.markOpen())
      const st = new State()
      st.nodesDamaged = pre.files[FILE_NODES].damaged
      st.logLost = log.lost
      st.logTorn = log.torn
      const c = {ctx, img, st}
      pass1(c)
      pass2(c)
      pass3(c)
      pass4(c)
      pass5(c)
      counts.contentFiles = pass6(c)
      checked = 'full'
      counts.inodes = img.nodes.live
      counts.entries = img.entries.live
      counts.names = img.strings.index.count
      for (let s = 1; s < st.nodeHw; s++) {
        if (st.ino[s] !== INO_LIVE) continue
        const type = st.type[s] << 12
        if (type === S_IFDIR) counts.directories++
        else if (type === S_IFREG) counts.regularFiles++
        else if (type === S_IFLNK) counts.symlinks++
        else counts.otherFiles++
      }
    }
  } catch (thrown) {
    const failure = failureOf(thrown)
    exit |= failure.exit
    ;({error, errorCode, stack} = failure)
  } finally {
    try {
      if (img !== undefined) close(img, ctx, error !== undefined)
    } catch (thrown) {
      exit |= EXIT.OPERATIONAL
      error ??= `cannot close the image: ${(thrown as Error).message}`
    }

    lock?.release()
  }

  if (ctx.fixed > 0) exit |= EXIT.CORRECTED
  if (ctx.uncorrected > 0) exit |= EXIT.UNCORRECTED
  counts.problems = ctx.problems.length
  counts.fixed = ctx.fixed
  counts.uncorrected = ctx.uncorrected
  const report: FsckReport = {dir, clean: error === undefined && ctx.problems.length === 0, checked, problems: ctx.problems, exitCode: exit, counts}
  if (error !== undefined) report.error = error
  if (errorCode !== undefined) report.errorCode = errorCode
  if (stack !== undefined) report.stack = stack
  summarize(ctx, report)
  return report
}

/** How a run that threw ends: fsck(8)'s bit, one line saying why, the error's code, and the stack of a bug of fsck. */
export function failureOf(thrown: unknown): {exit: number; error: string; errorCode?: string; stack?: string} {
  if (thrown instanceof FsckCancelled) return {exit: EXIT.CANCELLED, error: thrown.message}
  if (thrown instanceof ImageError) return {exit: EXIT.OPERATIONAL, error: thrown.message, errorCode: thrown.code}
  if (thrown instanceof FsckAbort) return {exit: EXIT.OPERATIONAL, error: thrown.message}
  // The system refused (a file this user may not read, an I/O error): which file, and why.
  if (isSystemError(thrown)) return {exit: EXIT.OPERATIONAL, error: `${thrown.path}: ${errnoText(thrown)} (${thrown.code})`, errorCode: thrown.code}
  // A bug of fsck, not a property of the image: one line, and the stack for a report.
  return {exit: EXIT.OPERATIONAL, error: `internal error: ${String((thrown as Error)?.message ?? thrown).split('\n')[0]}`, stack: (thrown as Error)?.stack}
}

/** An error of a system call on a file, as Node throws it (code, syscall, path). */
function isSystemError(error: unknown): error is NodeJS.ErrnoException & {code: string; path: string} {
  const e = error as NodeJS.ErrnoException | undefined
  return typeof e?.code === 'string' && typeof e.syscall === 'string' && typeof e.path === 'string'
}

/**
 * Does `dir` hold an image? Its nodes.dat, or (nodes.dat deleted: pass 0 creates it again and the
 * inodes are rebuilt) another mapped file that starts with its razorfs header magic.
 */
function holdsImage(dir: string): boolean {
  if (fs.existsSync(path.join(dir, FILES[FILE_NODES].name))) return true
  return FILES.some(spec => {
    const head = Buffer.alloc(8)
    try {
      const fd = fs.openSync(path.join(dir, spec.name), 'r')
      try {
        return fs.readSync(fd, head, 0, 8, 0) === 8 && hasMagic(spec, head)
      } finally {
        fs.closeSync(fd)
      }
    } catch {
      return false
    }
  })
}

function close(img: CheckedImage, ctx: FsckContext, failed: boolean): void {
  const store = img.store
  if (store.readOnly) {
    store.release()
    return
  }

  const dirty = ctx.changed || !store.wasClean || store.recoveredTransactions > 0
  if (failed || ctx.uncorrected > 0) {
    // Problems are left: never mark the image clean, so the next fsck checks it fully.
    if (dirty || store.wasClean) store.checkpoint(false)
    store.release()
  } else if (dirty) {
    store.close()
  } else {
    store.release()
  }
}

/** The closing lines (and -v's figures) of a run; `kind` is IMAGE or VOLUME. */
export function summarize(ctx: FsckContext, report: Pick<FsckReport, 'error' | 'counts' | 'checked' | 'clean'>, kind = 'IMAGE'): void {
  const {counts} = report
  if (report.error !== undefined) return
  const what = `${counts.inodes} inodes, ${counts.entries} entries`
  if (ctx.opts.verbose && report.checked === 'full') {
    ctx.note('')
    ctx.note(
      `${String(counts.inodes).padStart(10)} inodes (${counts.directories} directories, ${counts.regularFiles} regular files, ${counts.symlinks} symlinks, ${counts.otherFiles} others)`,
    )
    ctx.note(`${String(counts.entries).padStart(10)} directory entries`)
    if (counts.names !== null) ctx.note(`${String(counts.names).padStart(10)} interned names`)
    ctx.note(`${String(counts.contentFiles).padStart(10)} content files`)
    ctx.note('')
  }

  if (report.clean) {
    ctx.note(`razorfs: clean, ${what}`)
    return
  }

  const tally = `${counts.problems} problems, ${counts.fixed} fixed, ${counts.uncorrected} left`
  ctx.note(report.checked === 'full' ? `razorfs: ${what}; ${tally}` : `razorfs: ${tally}`)
  if (counts.fixed > 0) ctx.note(`razorfs: ***** ${kind} WAS MODIFIED *****`)
  if (counts.uncorrected > 0) {
    ctx.note(
      ctx.mode === 'preen'
        ? "razorfs: UNEXPECTED INCONSISTENCY; run 'razorfs fsck' without -p (-y repairs everything)"
        : ctx.mode === 'no'
          ? `razorfs: ***** ${kind} HAS ERRORS: run 'razorfs fsck -y' to repair them *****`
          : `razorfs: ***** ${kind} STILL HAS ERRORS *****`,
    )
  }
}
