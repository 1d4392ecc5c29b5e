/**
 * Finding, reading and validating an image of the C RAZORFS (disk or shm layout).
 *
 * Everything here only reads: files are opened O_RDONLY (content files also O_NOFOLLOW), nothing
 * is created, renamed or removed. `readSource` validates the whole image (headers, every slot
 * reachable from the root, every name, every content file of a reachable regular file, decoded
 * and hashed) and returns what it found: the entries to migrate, the bad ones with their reasons,
 * and notes about what is odd but harmless. It runs the passes of src/migrate/source/, which read
 * C records only through the codecs of src/migrate/c-format/:
 * 1. files.ts: the nodes and names files, read whole, their headers checked; the content files listed;
 * 2. inodes.ts: the inode table decoded, live slots counted, the root checked;
 * 3. tree.ts: the tree walked from the root, names (names.ts) and contents (content.ts) checked;
 * 4. leftovers.ts: what no directory reaches, what no file owns, the totals.
 */
import path from 'node:path'

import type {CLayout} from './c-format.js'
import {listContentFiles, readNamesFile, readNodesFile} from './source/files.js'
import {checkInodeTable, readInodeTable} from './source/inodes.js'
import {leftovers} from './source/leftovers.js'
import type {ReadOptions, Source} from './source/model.js'
import {walkTree} from './source/tree.js'

export {copyContent} from './source/content.js'
export {DEFAULT_SOURCES, DEFAULT_WAL, type Detection, detect} from './source/detect.js'
export {type BadEntry, type ReadOptions, type Source, type SourceEntry, SourceError} from './source/model.js'
export {nameProblem, showName} from './source/names.js'

/**
 * Read and validate the C RAZORFS image in `dir` (of `layout`). Throws SourceError when the
 * image as a whole is unusable; bad entries are returned in `bad` (the caller decides whether
 * they fail the migration or are skipped).
 */
export function readSource(dir: string, layout: CLayout, opts: ReadOptions = {}): Source {
  const nodesFile = path.join(dir, layout.nodes)
  const stringsFile = path.join(dir, layout.strings)
  const nodes = readNodesFile(nodesFile)
  const strings = readNamesFile(stringsFile, layout)
  const contentFiles = listContentFiles(dir, layout)
  const table = readInodeTable(nodes.buf, nodes.header)
  opts.onTotal?.(table.contentBytes)
  const checked = checkInodeTable(table, nodes.header, layout, nodesFile, strings.buf)
  const tree = walkTree({dir, layout, table, strings: strings.buf, contentFiles, opts})
  const rest = leftovers(tree, table, layout, strings.buf, contentFiles)
  return {
    dir,
    layout,
    nodesFile,
    stringsFile,
    header: nodes.header,
    strings: {used: strings.used, bytes: strings.buf.length},
    liveSlots: table.liveSlots,
    entries: tree.entries,
    bad: tree.bad,
    notes: [...nodes.notes, ...strings.notes, ...checked, ...tree.notes, ...rest.notes],
    unreachable: rest.unreachable,
    unreferenced: rest.unreferenced,
    files: [nodesFile, stringsFile, ...[...contentFiles.values()].sort().map(name => path.join(dir, name))],
    totals: rest.totals,
  }
}
