/**
 * The content files on disk as a whole (contents.ts handles them one by one): listing the files
 * under data/ that are named like content files, and the dataIds the live inodes hold. Used by
 * recovery (Orphans.reclaimContents) and fsck to find the files no inode names.
 */
import fs from 'node:fs'
import path from 'node:path'

import {inodeFields as I, isUsed} from './codec/inode.js'

/** A file under data/ named like a content file: `<xx>/<decimal digits>`, xx two lowercase hex digits. */
export interface ContentFile {
  path: string
  /** `<xx>/<name>`, relative to data/. */
  rel: string
  /** The dataId whose path this is; undefined when it is the path of no id (a leading zero, the wrong xx). */
  id: number | undefined
}

/**
 * Every file under `root` (an image's data/) named like a content file, sorted by path. Other names
 * are never touched: they are not razorfs's. O(content files): one readdir per xx directory.
 */
export function listContentFiles(root: string): ContentFile[] {
  let dirs: string[]
  try {
    dirs = fs.readdirSync(root)
  } catch {
    return []
  }

  const out: ContentFile[] = []
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
      const id = Number(name)
      const exact = Number.isSafeInteger(id) && String(id) === name && (id % 256).toString(16).padStart(2, '0') === xx
      out.push({path: path.join(root, xx, name), rel: `${xx}/${name}`, id: exact ? id : undefined})
    }
  }

  return out
}

/**
 * The dataIds that live inodes among slots 1 .. highWater - 1 of nodes.dat's buffer name. Only
 * regular files get one; an inode of another type whose dataId is set (damage, which fsck pass 1
 * reports and clears) keeps its file too: what may be removed is decided by IF_USED alone.
 */
export function liveDataIds(nodes: Buffer, offsetOf: (slot: number) => number, highWater: number): Set<number> {
  const ids = new Set<number>()
  for (let s = 1; s < highWater; s++) {
    const o = offsetOf(s)
    if (!isUsed(nodes, o)) continue
    const id = I.dataId.get(nodes, o)
    if (id !== 0) ids.add(id)
  }

  return ids
}
