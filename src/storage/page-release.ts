/**
 * Dropping clean pages of a mapped file from this process's resident set: scans of an image
 * opened read-only (dump, stats) call it for the pages they have read, and a mounted image when
 * the server is over its resident budget (Image.releaseCleanPages), so that a large image does not
 * keep every page it touched resident (a 1M-inode image would otherwise cost its 128 MiB
 * nodes.dat and more in RSS).
 *
 * MADV_DONTNEED on a MAP_PRIVATE file mapping drops the process's page table entries; a later
 * access reads the page from the page cache again. A page that is not dirty holds exactly the file's
 * bytes: either nothing changed it, or its change was written to the file at the last checkpoint
 * (which dropped the private copy then). Pages changed since (and pages a WAL replay changed) are
 * in the file's dirty set until the next checkpoint and are never dropped; nor is anything of a
 * read-only file that had to be copied to the heap (`detached`). Nothing is written, and the
 * image's contents as seen through the mapping do not change.
 */
import {createRequire} from 'node:module'

import {PAGE_SIZE} from './format.js'
import type {MappedFile} from './mapped-file.js'

interface Advise {
  advise(buffer: Buffer, offset: number, length: number, advise: number): void
  MADV_DONTNEED: number
}

let mmapIo: Advise | undefined
/**
 * With dirty pages in a range, clean runs shorter than this stay mapped: a fault maps much more
 * than its page (fault-around; the kernel maps a page-cache folio whole), so dropping a few pages
 * between dirty ones frees little for long; and each dropped run costs one madvise(2), so skipping
 * short runs spares most of the calls when thousands of dirty pages are scattered over an image.
 */
const MIN_GAP = 16

function qualifies(file: MappedFile): boolean {
  // `detached` is private to MappedFile: a read-only file whose replay grew it is a heap copy.
  return !(file as unknown as {detached: boolean}).detached && file.buf.length === file.size && file.size > 0
}

/**
 * Drop the clean pages of `file` between byte offsets `from` and `to` (rounded inwards to pages)
 * from this process's mapping, but for runs shorter than MIN_GAP between dirty pages. Returns the
 * pages dropped (0 when the file does not qualify).
 */
export function releaseCleanPages(file: MappedFile, from = 0, to = file.size): number {
  if (!qualifies(file)) return 0
  mmapIo ??= createRequire(import.meta.url)('@riaskov/mmap-io') as Advise
  const first = Math.ceil(from / PAGE_SIZE)
  const end = Math.floor(Math.min(to, file.size) / PAGE_SIZE)
  if (end <= first) return 0
  // Drop the gaps between the dirty pages: at most one system call per run of dirty pages (one
  // when none is dirty), not a look at every page of a large file.
  const dirty = [...file.dirty].filter(page => page >= first && page < end).sort((a, b) => a - b)
  const shortest = dirty.length === 0 ? 1 : MIN_GAP
  let dropped = 0
  let page = first
  for (const d of [...dirty, end]) {
    if (d - page >= shortest) {
      mmapIo.advise(file.buf, page * PAGE_SIZE, (d - page) * PAGE_SIZE, mmapIo.MADV_DONTNEED)
      dropped += d - page
    }

    page = d + 1
  }

  return dropped
}
