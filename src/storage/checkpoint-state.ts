/**
 * The last checkpoint of an image, read from the header of its nodes file without opening the
 * image (no lock, no mapping, nothing written): what `razorfs status` shows of a mounted image.
 * A checkpoint writes the header with its generation and log position (and the clean flag at a
 * clean close); the file's mtime is when, as for `razorfs stats`.
 */
import fs from 'node:fs'
import path from 'node:path'

import {FILES, FILE_NODES, HEADER, HF_CLEAN} from './format.js'
import {parseHeader} from './store.js'

export interface CheckpointState {
  generation: number
  lsn: number
  /** When the nodes file was last written (ms since the epoch). */
  timeMs: number
  /** The image is marked clean (closed cleanly, not mounted read-write since). */
  clean: boolean
}

/** The last checkpoint of the image in `dir`, or undefined if its header cannot be read (none, torn, damaged). */
export function checkpointState(dir: string): CheckpointState | undefined {
  const spec = FILES[FILE_NODES]
  const file = path.join(dir, spec.name)
  let fd: number
  try {
    fd = fs.openSync(file, 'r')
  } catch {
    return undefined
  }

  try {
    const st = fs.fstatSync(fd)
    const head = Buffer.alloc(HEADER.SIZE)
    fs.readSync(fd, head, 0, HEADER.SIZE, 0)
    const h = parseHeader(spec, file, head, st.size)
    return {generation: h.generation, lsn: h.checkpointLsn, timeMs: st.mtimeMs, clean: (h.flags & HF_CLEAN) !== 0}
  } catch {
    return undefined
  } finally {
    fs.closeSync(fd)
  }
}
