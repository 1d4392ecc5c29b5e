/**
 * The scale workload's image (issue 18): N empty regular files, SCALE_PER_DIR to a directory
 * under the root (bench/driver.ts, scalePath), built through the public storage API, not through
 * a mount, and closed cleanly (checkpoint, marked clean) so that a mount opens it at once.
 *
 *   node dist/bench/scale.js '{"dir":"DATA-DIR","files":1000000}'
 *
 * DATA-DIR must exist and hold no image. Prints one JSON line (ScaleBuild); progress on stderr.
 */
import fs from 'node:fs'
import path from 'node:path'

import {Image, ROOT_INO} from '../src/storage/index.js'
import {SCALE_PER_DIR, scaleDirName, scaleFileName} from './driver.js'

const S_IFREG = 0o100000
const S_IFDIR = 0o040000
const FILE_SPEC = {mode: S_IFREG | 0o644, uid: 0, gid: 0}
const DIR_SPEC = {mode: S_IFDIR | 0o755, uid: 0, gid: 0}
/** Creates per store transaction: one WAL record (and commit) per batch instead of per file. */
const BATCH = 100
/** Every this many files, the mapped files' clean pages leave the builder's resident set. */
const RELEASE_EVERY = 1_000_000

export interface ScaleBuild {
  files: number
  dirs: number
  /** Image.create to the last mknod. */
  buildSec: number
  /** Image.close (final checkpoint). */
  closeSec: number
  /** The image's files on disk after the close. */
  imageBytes: number
  /** The builder's own peak RSS (not the server's). */
  builderPeakRssMiB: number
}

const seconds = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e9

function build(dir: string, files: number): ScaleBuild {
  const dirs = Math.ceil(files / SCALE_PER_DIR)
  const names = Array.from({length: SCALE_PER_DIR}, (_, k) => Buffer.from(scaleFileName(k)))
  const start = process.hrtime.bigint()
  // Room for every inode up front: the node table does not grow (and copy) while filling.
  const image = Image.create(dir, {capacity: files + dirs + 16})
  let done = 0
  let lastLog = start
  try {
    for (let d = 0; d < dirs; d++) {
      const n = Math.min(SCALE_PER_DIR, files - d * SCALE_PER_DIR)
      const parent = image.transaction(() => image.mknod(ROOT_INO, scaleDirName(d), DIR_SPEC).ino)
      for (let k = 0; k < n; k += BATCH) {
        image.transaction(() => {
          for (let j = k; j < Math.min(n, k + BATCH); j++) image.mknod(parent, names[j], FILE_SPEC)
        })
      }

      const before = done
      done += n
      if (Math.floor(done / RELEASE_EVERY) > Math.floor(before / RELEASE_EVERY)) image.releaseCleanPages()
      const t = process.hrtime.bigint()
      if (Number(t - lastLog) > 20e9) {
        lastLog = t
        process.stderr.write(
          `    scale: ${done.toLocaleString('en-US')}/${files.toLocaleString('en-US')} files (${Math.round(done / seconds(start)).toLocaleString('en-US')}/s)\n`,
        )
      }
    }
  } catch (error) {
    image.abandon()
    throw error
  }

  const buildSec = seconds(start)
  const closing = process.hrtime.bigint()
  image.close()
  const closeSec = seconds(closing)
  const imageBytes = Image.files(dir).reduce((a, f) => a + f.bytes, 0)
  return {files, dirs, buildSec, closeSec, imageBytes, builderPeakRssMiB: process.resourceUsage().maxRSS / 1024}
}

if (process.argv[1]?.endsWith('scale.js')) {
  try {
    const job = JSON.parse(process.argv[2] ?? '{}') as {dir?: string; files?: number}
    if (job.dir === undefined || !Number.isInteger(job.files) || job.files! < 1) throw new Error('usage: scale.js \'{"dir":"DATA-DIR","files":N}\'')
    if (!fs.statSync(job.dir).isDirectory()) throw new Error(`${job.dir} is not a directory`)
    process.stdout.write(JSON.stringify(build(path.resolve(job.dir), job.files!)) + '\n')
  } catch (error) {
    process.stderr.write(`scale: ${(error as Error).message}\n`)
    process.exit(1)
  }
}
