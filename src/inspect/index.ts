/**
 * What the dump, stats, info and `init --from` commands call: each function opens what it needs, does
 * one job and closes everything again. Images are opened read-only (no lock, nothing written,
 * the WAL replayed in memory), except the new image `restoreImage` creates.
 */
import fs from 'node:fs'

import type {Progress} from '../progress.js'
import {errnoText, Image, ImageError, type ImageInfo, ROOT_INO} from '../storage/index.js'
import {Staging} from '../storage/staging.js'
import {type ArchiveSummary, imageArchiveSource, writeArchive} from './archive.js'
import {type DumpSummary, dump, resolveStart} from './dump.js'
import {FdWriter, OutputClosed} from './output.js'
import {Records} from './records.js'
import {type RestoreSummary, Restorer, imageRestoreTarget} from './restore.js'
import {type ImageStats, collectStats} from './stats.js'
import {TarError} from './tar/format.js'
import {TarReader} from './tar/reader.js'

export {DumpError} from './dump.js'
export {InfoError, inodeInfo, renderInfo, type InfoTarget, type InodeInfo} from './info.js'
export {OutputClosed} from './output.js'
export {TarError} from './tar/format.js'
export {colourWanted, renderStats, type ImageStats} from './stats.js'
export type {ArchiveSummary} from './archive.js'
export type {RestoreSummary} from './restore.js'

function withImage<T>(dir: string, fn: (image: Image) => T): T {
  const image = Image.open(dir, {readOnly: true})
  try {
    return fn(image)
  } finally {
    image.close()
  }
}

export interface DumpRequest {
  path?: string
  inode?: number
  headers: boolean
  json: boolean
}

/** Print the listing (and/or headers) of the image in `dir` on stdout. A closed pipe ends it quietly. */
export function dumpImage(dir: string, req: DumpRequest, fd = 1): DumpSummary {
  return withImage(dir, image => {
    const records = new Records(image)
    const tree = !req.headers || req.path !== undefined || req.inode !== undefined
    const start = tree ? resolveStart(image, records, req.path, req.inode) : undefined
    const out = new FdWriter(fd)
    try {
      const summary = dump(image, start, out, {json: req.json, headers: req.headers, tree})
      out.flush()
      return summary
    } catch (error) {
      if (error instanceof OutputClosed) return {items: 0, directories: 0}
      throw error
    }
  })
}

export interface ArchiveResult extends ArchiveSummary {
  archive: string
}

/**
 * Write the tree (from `/`, PATH or --inode) of the image in `dir` to `file` ('-': stdout) as a
 * pax archive. `progress` counts the inodes archived, of all the image holds when the tree is whole.
 */
export function archiveImage(
  dir: string,
  file: string,
  req: {path?: string; inode?: number},
  warn: (message: string) => void,
  progress?: Progress,
): ArchiveResult {
  return withImage(dir, image => {
    const records = new Records(image)
    const start = resolveStart(image, records, req.path, req.inode)
    progress?.phase('archiving', start.slot === records.slotOf(ROOT_INO) ? image.info().inodes.used : 0, 'items')
    return archiveTo(file, progress, out => writeArchive(imageArchiveSource(image, start), start.path, out, warn, progress))
  })
}

/** Open `file` ('-': stdout) for an archive, write it with `write`, fsync and close it; the summary with the archive's real path. */
export function archiveTo(file: string, progress: Progress | undefined, write: (out: FdWriter) => ArchiveSummary): ArchiveResult {
  const toStdout = file === '-'
  const fd = toStdout ? 1 : fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o600)
  try {
    const summary = write(new FdWriter(fd, 1 << 20))
    if (!toStdout) fsyncIfPossible(fd)
    progress?.finish()
    return {archive: toStdout || !fs.statSync(file).isFile() ? file : fs.realpathSync(file), ...summary}
  } finally {
    if (!toStdout) fs.closeSync(fd)
  }
}

/** fsync a written archive; devices and pipes (/dev/null, a FIFO) cannot be and need not be. */
function fsyncIfPossible(fd: number): void {
  try {
    fs.fsyncSync(fd)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EROFS') throw error
  }
}

export function imageStats(dir: string): ImageStats {
  return withImage(dir, image => collectStats(image))
}

export interface RestoreResult extends ImageInfo {
  restored: RestoreSummary & {archive: string}
  /** What was found and done in the data dir first: leftovers of a restore or migration that was killed. */
  notes: string[]
}

/**
 * Create a new image in `dir` from the archive `file` ('-': stdin); `progress` follows the bytes
 * read, of the archive's size when it is a regular file. The image is built in a
 * staging directory inside `dir` (storage/staging.ts) and put in place only once the whole archive
 * has been read and the image closed: a bad archive (missing, not a tar, truncated, damaged) leaves
 * `dir` as it was, an image that --force would replace included, and the error names the archive
 * ("standard input") and the byte offset of the damage. That the input starts with a tar header
 * is checked before the data dir is even created.
 */
export function restoreImage(dir: string, file: string, opts: {force: boolean; capacity?: number; progress?: Progress}): RestoreResult {
  const fromStdin = file === '-'
  const existed = fs.existsSync(dir)
  /**
   * A failure, saying that the data dir is as it was: for the archive, which one and where; for
   * the new image (`building`: no space, an I/O error), what, with its code and no errno name.
   * The data dir's own errors (unusable, locked, holding an image without --force) stay as they are.
   */
  const fail = (error: unknown, building = false): unknown => {
    const unchanged = existed ? `the data dir ${dir} was left as it was` : `the data dir ${dir} was not created`
    if (error instanceof TarError) return new TarError(`${fromStdin ? 'standard input' : file}: ${error.message}; ${unchanged}`, error.offset)
    const code = error instanceof ImageError ? error.code : hasErrno(error) ? 'RZ_IO' : undefined
    if (code === undefined || (error instanceof ImageError && !building)) return error
    return new ImageError(code, `cannot build the new image: ${errnoText(error)}; ${unchanged}`)
  }

  let fd: number
  try {
    fd = fromStdin ? 0 : openArchive(file)
  } catch (error) {
    throw fail(error)
  }

  try {
    const reader = new TarReader(fd)
    try {
      reader.checkStart()
    } catch (error) {
      throw fail(error)
    }

    let staging: Staging
    try {
      staging = Staging.begin(dir, {
        kind: 'restore',
        force: opts.force,
        refuse: () => new ImageError('RZ_EXISTS', 'already holds a razorfs image; use --force to replace it (its contents are lost)', dir),
      })
    } catch (error) {
      throw fail(error)
    }

    try {
      const image = Image.create(staging.dir, opts.capacity === undefined ? {} : {capacity: opts.capacity})
      let restored: RestoreSummary
      let info: ImageInfo
      try {
        const archive = fs.fstatSync(fd)
        opts.progress?.phase('restoring', archive.isFile() ? archive.size : 0)
        restored = new Restorer(imageRestoreTarget(image), reader, opts.progress).run()
        info = image.info()
        image.close()
        opts.progress?.finish()
      } catch (error) {
        image.abandon()
        throw error
      }

      staging.commit()
      return {...info, dir, files: Image.files(dir), restored: {archive: fromStdin ? '-' : fs.realpathSync(file), ...restored}, notes: staging.notes}
    } catch (error) {
      staging.abort()
      throw fail(error, true)
    } finally {
      staging.release()
    }
  } finally {
    if (!fromStdin) fs.closeSync(fd)
  }
}

/** Open an archive file for reading; a directory is refused here (reading it would fail with EISDIR). */
export function openArchive(file: string): number {
  let fd: number
  try {
    fd = fs.openSync(file, 'r')
  } catch (error) {
    throw new TarError(`cannot open the archive: ${errnoText(error)}`)
  }

  if (fs.fstatSync(fd).isDirectory()) {
    fs.closeSync(fd)
    throw new TarError('not a tar archive: it is a directory')
  }

  return fd
}

function hasErrno(error: unknown): boolean {
  return typeof (error as NodeJS.ErrnoException | undefined)?.errno === 'number'
}
