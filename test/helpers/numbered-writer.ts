/**
 * A writer of numbered files, as a process of its own (for test/integration/shared-outage.test.ts):
 *
 *   node dist/test/helpers/numbered-writer.js DIR TAG STOPFILE
 *
 * makes DIR/f0, DIR/f1, ... one after another (open O_CREAT|O_EXCL, write numberedContent(TAG, i),
 * fsync, close), until STOPFILE exists, and prints one JSON line per file: {i, t0, t1, ok: true}
 * when open, write, fsync and close all returned success (the file is acknowledged), else
 * {i, t0, t1, err, step} with the first error's code and the call that failed. A file that failed
 * is not tried again: the next number is. t0 and t1 are Date.now() before and after.
 */
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

export interface WriterRecord {
  i: number
  t0: number
  t1: number
  ok?: true
  err?: string
  step?: string
}

/** The bytes of file number i of writer TAG (a few KiB, telling writer and number apart). */
export function numberedContent(tag: string, i: number): Buffer {
  return Buffer.from(`${tag}:${i};`.repeat(500))
}

function main(dir: string, tag: string, stopFile: string): void {
  for (let i = 0; !fs.existsSync(stopFile); i++) {
    const t0 = Date.now()
    let step = 'open'
    let fd: number | undefined
    try {
      fd = fs.openSync(path.join(dir, `f${i}`), fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o644)
      step = 'write'
      fs.writeSync(fd, numberedContent(tag, i))
      step = 'fsync'
      fs.fsyncSync(fd)
      step = 'close'
      const closing = fd
      fd = undefined
      fs.closeSync(closing)
      process.stdout.write(`${JSON.stringify({i, t0, t1: Date.now(), ok: true} satisfies WriterRecord)}\n`)
    } catch (error) {
      if (fd !== undefined) {
        try {
          fs.closeSync(fd)
        } catch {
          // the first error is the one reported
        }
      }

      const err = (error as NodeJS.ErrnoException).code ?? String(error)
      process.stdout.write(`${JSON.stringify({i, t0, t1: Date.now(), err, step} satisfies WriterRecord)}\n`)
    }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [dir, tag, stopFile] = process.argv.slice(2)
  main(dir, tag, stopFile)
}
