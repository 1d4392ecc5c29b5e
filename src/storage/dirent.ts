/**
 * Adding a directory entry: the one place a `DIRENT` record is written whole (docs/FORMAT.md
 * "DIRENT" and "Directories"). `Image` adds entries with it (mknod, link, rename) and so does
 * fsck (/lost+found and the inodes it reconnects there), over the same storage classes.
 */
import {fnv1a} from './codec/checksum.js'
import {direntFields as D, dirHash, typeOf} from './codec/dirent.js'
import {inodeFields as I} from './codec/inode.js'
import {S_IFMT} from './format.js'
import type {Tables} from './tables.js'

/** The store and the storage classes an entry touches (what `openTables` builds). */
export type EntryTables = Tables

/**
 * Add the entry (dir, name) -> child, inside the caller's transaction: the name is interned (one
 * more reference), a free entry slot gets the record (the child's generation and type copied from
 * its inode), the entry goes to the front of the directory's list, the directory's size grows by
 * one and the entry is filed in entries.idx. The name must be valid and new in `dir`; link counts
 * and times are the caller's. Returns the entry slot.
 */
export function addEntry(t: EntryTables, dir: number, name: Buffer, child: number): number {
  const {store, nodes, entries} = t
  const hash = fnv1a(name)
  const nameUnit = t.strings.intern(name, hash)
  const d = entries.alloc()
  const f = entries.file
  const o = entries.off(d)
  const nb = nodes.file.buf
  const dirOff = nodes.off(dir)
  const childOff = nodes.off(child)
  const head = I.dirHead.get(nb, dirOff)
  D.parent.set(store, f, o, dir)
  D.name.set(store, f, o, nameUnit)
  D.child.set(store, f, o, child)
  D.childGen.set(store, f, o, I.gen.get(nb, childOff))
  D.nameHash.set(store, f, o, hash)
  D.nameLength.set(store, f, o, name.length)
  D.inlineName.set(store, f, o, name)
  D.next.set(store, f, o, head)
  D.prev.set(store, f, o, 0)
  D.type.set(store, f, o, typeOf(I.mode.get(nb, childOff) & S_IFMT))
  if (head !== 0) D.prev.set(store, f, entries.off(head), d)
  I.dirHead.set(store, nodes.file, dirOff, d)
  I.size.set(store, nodes.file, dirOff, I.size.get(nodes.file.buf, dirOff) + 1)
  t.entryIndex.insert(d, dirHash(dir, hash))
  return d
}
