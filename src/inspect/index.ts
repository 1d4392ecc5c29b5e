/**
 * What the dump, stats and `init --from` commands call: each function opens what it needs, does
 * one job and closes everything again. Images are opened read-only (no lock, nothing written,
 * the WAL replayed in memory), except the new image `restoreImage` creates.
 */
import fs from 'node:fs'

import {Image, type ImageInfo, ensureDataDir} from '../storage/index.js'
import {type ArchiveSummary, writeArchive} from './archive.js'
import {type DumpSummary, dump, resolveStart} from './dump.js'
import {FdWriter, OutputClosed} from './output.js'
import {Records} from './records.js'
import {type RestoreSummary, Restorer} from './restore.js'
import {type ImageStats, collectStats} from './stats.js'
import {TarError} from './tar/format.js'
import {TarReader} from './tar/reader.js'

export {DumpError} from './dump.js'
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

/** Write the tree (from `/`, PATH or --inode) of the image in `dir` to `file` ('-': stdout) as a pax archive. */
export function archiveImage(dir: string, file: string, req: {path?: string; inode?: number}, warn: (message: string) => void): ArchiveResult {
  return withImage(dir, image => {
    const start = resolveStart(image, new Records(image), req.path, req.inode)
    const toStdout = file === '-'
    const fd = toStdout ? 1 : fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o600)
    try {
      const summary = writeArchive(image, start, new FdWriter(fd, 1 << 20), warn)
      if (!toStdout) fsyncIfPossible(fd)
      return {archive: toStdout || !fs.statSync(file).isFile() ? file : fs.realpathSync(file), ...summary}
    } finally {
      if (!toStdout) fs.closeSync(fd)
    }
  })
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
}

/**
 * Create a new image in `dir` from the archive `file` ('-': stdin). The archive is checked to
 * start like a tar archive before anything is created (a wrong file never costs an image, even
 * with --force); an archive that turns out damaged later leaves the new image incomplete.
 */
export function restoreImage(dir: string, file: string, opts: {force: boolean; capacity?: number}): RestoreResult {
  const fromStdin = file === '-'
  let fd: number
  try {
    fd = fromStdin ? 0 : fs.openSync(file, 'r')
  } catch (error) {
    throw new TarError(`cannot open the archive ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  }

  try {
    const reader = new TarReader(fd)
    if (!reader.looksLikeTar()) throw new TarError(`${fromStdin ? 'standard input' : file} is not a tar archive`)
    ensureDataDir(dir)
    const image = Image.create(dir, {force: opts.force, ...(opts.capacity === undefined ? {} : {capacity: opts.capacity})})
    try {
      let restored: RestoreSummary
      try {
        restored = new Restorer(image, reader).run()
      } catch (error) {
        if (error instanceof TarError) throw new TarError(`${error.message}; the new image in ${dir} is incomplete`)
        throw error
      }

      return {...image.info(), restored: {archive: fromStdin ? '-' : fs.realpathSync(file), ...restored}}
    } finally {
      image.close()
    }
  } finally {
    if (!fromStdin) fs.closeSync(fd)
  }
}
