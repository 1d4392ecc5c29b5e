/**
 * The first pass: open the source's files and check them as wholes. The nodes and names files are
 * read whole (regular files only, never through a symbolic link); their headers are decoded and
 * validated by the codecs of ../c-format/. Any problem here refuses the whole source.
 */
import fs from 'node:fs'
import path from 'node:path'

import {readFully} from '../../storage/mapped-file.js'
import {
  C_NAMES_HEADER,
  C_NODES_HEADER,
  type CLayout,
  type CNodesHeader,
  cNodesFileSize,
  contentInode,
  validateNamesHeader,
  validateNodesHeader,
} from '../c-format.js'
import {SourceError} from './model.js'

/** The whole of `file`, a regular file (the `what` of the image, for messages). */
function readRegular(file: string, what: string): Buffer {
  let st: fs.Stats
  try {
    st = fs.lstatSync(file)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new SourceError(file, code === 'ENOENT' ? `missing: the ${what} is needed` : `cannot read the ${what} (${code})`)
  }

  if (!st.isFile()) throw new SourceError(file, `the ${what} is not a regular file${st.isSymbolicLink() ? ' (a symbolic link)' : ''}`)
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
    try {
      const buf = Buffer.alloc(st.size)
      return buf.subarray(0, readFully(fd, buf, 0))
    } finally {
      fs.closeSync(fd)
    }
  } catch (error) {
    throw new SourceError(file, `cannot read the ${what} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`)
  }
}

/** The nodes file, whole, and its header, checked against the file's length. */
export function readNodesFile(file: string): {buf: Buffer; header: CNodesHeader; notes: string[]} {
  const buf = readRegular(file, 'nodes file')
  if (buf.length < C_NODES_HEADER.SIZE) throw new SourceError(file, `truncated: ${buf.length} bytes, shorter than its ${C_NODES_HEADER.SIZE}-byte header`)
  const header = C_NODES_HEADER.decode(buf)
  const problems = validateNodesHeader(header, buf)
  if (problems.length > 0) throw new SourceError(file, problems[0])
  const notes: string[] = []
  const want = cNodesFileSize(header.capacity)
  if (buf.length > want) notes.push(`${path.basename(file)}: ${buf.length - want} bytes past the free list (capacity ${header.capacity}) ignored`)
  return {buf, header, notes}
}

/** The names file, whole, and its header's `used` (a header that disagrees with the file is only noted). */
export function readNamesFile(file: string, layout: CLayout): {buf: Buffer; used: number; notes: string[]} {
  const buf = readRegular(file, 'names file')
  if (buf.length < C_NAMES_HEADER.SIZE) throw new SourceError(file, `truncated: ${buf.length} bytes, shorter than its ${C_NAMES_HEADER.SIZE}-byte header`)
  const header = C_NAMES_HEADER.decode(buf)
  const notes = validateNamesHeader(header, layout, buf.length).map(problem => `${path.basename(file)}: ${problem}`)
  return {buf, used: header.used, notes}
}

/** The content files in `dir`, by the inode number their names carry. */
export function listContentFiles(dir: string, layout: CLayout): Map<number, string> {
  const contentFiles = new Map<number, string>()
  for (const name of fs.readdirSync(dir)) {
    const inode = contentInode(layout, name)
    if (inode !== undefined) contentFiles.set(inode, name)
  }

  return contentFiles
}
