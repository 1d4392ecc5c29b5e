/**
 * Pass 6: content files (data/xx/<dataId>).
 *
 * Checks: every content file is named by a live regular file's dataId (at the path that id gives).
 *   A content file longer than its inode's size is fine (FORMAT.md: bytes past the size are never
 *   read), and so is a missing one (it reads as zeros).
 * Collects: the number of content files.
 * Relies on: passes 1 and 4 (the final set of inodes and their dataIds).
 * Repairs: a content file no inode names (a crash between an inode's free and the file's deferred
 *   removal, or an inode fsck cleared) is removed, once the WAL holding the metadata changes of
 *   this run is durable: a power loss can then never bring back an inode whose file is gone.
 *   Files whose names are not content file names are left alone.
 * Frees: nothing.
 */
import fs from 'node:fs'
import path from 'node:path'

import {DATA_DIR_NAME, IF_USED, S_IFMT, S_IFREG, readU64} from '../storage/format.js'
import {I} from './checked-image.js'
import {PR} from './problems.js'
import type {Check} from './state.js'

export function pass6(c: Check): number {
  const {ctx, img, st} = c
  ctx.header(PR.PR_6_PASS_HEADER)
  const ids = new Set<number>()
  for (let s = 1; s < st.nodeHw; s++) {
    const o = img.no(s)
    const nb = img.nb
    if ((nb.readUInt32LE(o + I.flags) & IF_USED) === 0 || (nb.readUInt32LE(o + I.mode) & S_IFMT) !== S_IFREG) continue
    const id = readU64(nb, o + I.dataId)
    if (id !== 0) ids.add(id)
  }

  const root = path.join(img.dir, DATA_DIR_NAME)
  let dirs: string[]
  try {
    dirs = fs.readdirSync(root)
  } catch {
    ctx.endPass()
    return 0
  }

  let files = 0
  let synced = false
  for (const xx of dirs.sort()) {
    if (!/^[0-9a-f]{2}$/.test(xx)) continue
    let names: string[]
    try {
      names = fs.readdirSync(path.join(root, xx))
    } catch {
      continue
    }

    for (const name of names.sort()) {
      if (!/^[0-9]+$/.test(name)) continue
      files++
      const id = Number(name)
      if (ids.has(id) && String(id) === name && (id % 256).toString(16).padStart(2, '0') === xx) continue
      const file = path.join(root, xx, name)
      let bytes = 0
      try {
        bytes = fs.statSync(file).size
      } catch {
        continue
      }

      if (ctx.fix(PR.PR_6_UNUSED_CONTENT, {path: `${DATA_DIR_NAME}/${xx}/${name}`, bytes})) {
        if (!synced) {
          img.store.sync()
          synced = true
        }

        fs.rmSync(file, {force: true})
        files--
      }
    }
  }

  ctx.endPass()
  return files
}
