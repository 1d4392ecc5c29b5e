/**
 * What a volume holds, read two ways: through a live mount (node:fs and the xattr helper), and
 * through the storage API opened read-only, walking the whole tree from the root: an image with
 * `Image.open(dir, {readOnly: true})` (which replays the WAL in memory), a volume on PostgreSQL
 * with `PgVolume.open(url, {readOnly: true})` (what is committed).
 */
import fs from 'node:fs'
import path from 'node:path'

import {Image, ROOT_INO} from '../../src/storage/index.js'
import {PgVolume} from '../../src/storage/pg/volume.js'
import type {Volume} from '../../src/storage/volume.js'
import type {Xattrs} from '../helpers/xattr.js'

const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_IFREG = 0o100000

export interface ObsEntry {
  path: string
  type: 'dir' | 'file' | 'other'
  ino: number
  nlink: number
  size: number
  /** Regular files only. */
  content?: Buffer
  xattrs: Map<string, Buffer>
}

export interface Observation {
  /** Relative path ('' is the root, 'a/f1' a file) -> entry. */
  entries: Map<string, ObsEntry>
  /** What the read-only open reported (storage API only). */
  recovery?: {wasClean: boolean; transactions: number; tornBytes: number}
}

export function typeOf(mode: number): ObsEntry['type'] {
  const t = mode & S_IFMT
  return t === S_IFDIR ? 'dir' : t === S_IFREG ? 'file' : 'other'
}

/** Walk the mounted tree. Throws on any error (a live mount must be readable). */
export async function observeMount(mnt: string, xattrs: Xattrs): Promise<Observation> {
  const entries = new Map<string, ObsEntry>()
  const walk = async (rel: string): Promise<void> => {
    const abs = path.join(mnt, rel)
    const st = await fs.promises.lstat(abs)
    const type = typeOf(st.mode)
    const entry: ObsEntry = {path: rel, type, ino: st.ino, nlink: st.nlink, size: st.size, xattrs: new Map()}
    entries.set(rel, entry)
    if (type === 'file') {
      entry.content = await fs.promises.readFile(abs)
      if (entry.content.length !== st.size) throw new Error(`${rel}: read ${entry.content.length} bytes, stat says ${st.size}`)
    } else if (type === 'dir') {
      for (const name of (await fs.promises.readdir(abs)).sort()) await walk(rel === '' ? name : `${rel}/${name}`)
    }
  }

  await walk('')
  const all = [...entries.keys()]
  const dumped = await xattrs.dump(all.map(p => path.join(mnt, p)))
  for (const p of all) {
    const x = dumped.get(path.join(mnt, p))
    if (typeof x === 'string') throw new Error(`listxattr ${p}: ${x}`)
    if (x) entries.get(p)!.xattrs = x
  }

  return {entries}
}

/** Open the image read-only through the storage API and walk all of it. Throws if it cannot. */
export function observeImage(dataDir: string): Observation {
  const image = Image.open(dataDir, {readOnly: true})
  try {
    return {entries: walkVolume(image), recovery: image.info().recovery}
  } finally {
    image.close()
  }
}

/** Open the volume on PostgreSQL read-only and walk all of it (what is committed). Throws if it cannot. */
export function observePg(url: string): Observation {
  const volume = PgVolume.open(url, {readOnly: true})
  try {
    return {entries: walkVolume(volume)}
  } finally {
    volume.close()
  }
}

/** Every entry of a volume, from the root, through the Volume interface. */
function walkVolume(volume: Volume): Map<string, ObsEntry> {
  const entries = new Map<string, ObsEntry>()
  const seen = new Set<number>()
  const walk = (ino: number, rel: string): void => {
    const attr = volume.getattr(ino)
    const type = typeOf(attr.mode)
    const entry: ObsEntry = {path: rel, type, ino, nlink: attr.nlink, size: attr.size, xattrs: new Map()}
    for (const name of volume.listxattr(ino)) entry.xattrs.set(name, Buffer.from(volume.getxattr(ino, name)))
    entries.set(rel, entry)
    if (type === 'file') {
      const buf = Buffer.alloc(attr.size)
      let done = 0
      while (done < attr.size) {
        const n = volume.read(ino, buf.subarray(done), done)
        if (n <= 0) throw new Error(`${rel}: read returned ${n} at ${done} of ${attr.size}`)
        done += n
      }

      entry.content = buf
    } else if (type === 'dir') {
      if (seen.has(ino)) throw new Error(`directory ${rel} (inode ${ino}) reached twice: the tree has a cycle`)
      seen.add(ino)
      const children = [...volume.readdir(ino)].map(e => ({name: e.name.toString(), ino: e.ino, type: e.type}))
      children.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))
      for (const c of children) {
        const childRel = rel === '' ? c.name : `${rel}/${c.name}`
        if (volume.lookup(ino, c.name) !== c.ino) throw new Error(`lookup(${rel}, ${c.name}) disagrees with readdir`)
        walk(c.ino, childRel)
        const childType = typeOf(c.type)
        if (childType !== entries.get(childRel)!.type)
          throw new Error(`${childRel}: the directory entry says ${childType}, the inode ${entries.get(childRel)!.type}`)
      }
    }
  }

  walk(ROOT_INO, '')
  return entries
}
