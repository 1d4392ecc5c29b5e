/**
 * Pass 6: content files (data/xx/<dataId>).
 *
 * Checks: every content file is named by a live inode's dataId (at the path that id gives; only
 *   regular files have one: pass 1 reports any other inode's).
 *   A content file longer than its inode's size is fine (FORMAT.md: bytes past the size are never
 *   read), and so is a missing one (it reads as zeros).
 * Collects: the number of content files.
 * Relies on: passes 1 and 4 (the final set of inodes and their dataIds).
 * Repairs: a content file no inode names (a crash between an inode's free and the file's deferred
 *   removal, or an inode fsck cleared) is removed, once the WAL holding the metadata changes of
 *   this run is durable: a power loss can then never bring back an inode whose file is gone. The
 *   first read-write open after an unclean shutdown removes the same files (Image.reclaimContents,
 *   with the same listing), so after recovery this pass finds none.
 *   Files whose names are not content file names are left alone.
 * Frees: nothing.
 */
import fs from 'node:fs'
import path from 'node:path'

import {listContentFiles, liveDataIds} from '../storage/contents.js'
import {DATA_DIR_NAME} from '../storage/format.js'
import {PR} from './problems.js'
import type {Check} from './state.js'

export function pass6(c: Check): number {
  const {ctx, img, st} = c
  ctx.header(PR.PR_6_PASS_HEADER)
  const ids = liveDataIds(img.nb, s => img.no(s), st.nodeHw)
  let files = 0
  let synced = false
  for (const f of listContentFiles(path.join(img.dir, DATA_DIR_NAME))) {
    files++
    if (f.id !== undefined && ids.has(f.id)) continue
    let bytes = 0
    try {
      bytes = fs.statSync(f.path).size
    } catch {
      continue
    }

    if (ctx.fix(PR.PR_6_UNUSED_CONTENT, {path: `${DATA_DIR_NAME}/${f.rel}`, bytes})) {
      if (!synced) {
        img.store.sync()
        synced = true
      }

      fs.rmSync(f.path, {force: true})
      files--
    }
  }

  ctx.endPass()
  return files
}
