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
  // The whole record changes: one before-image, then its fields in place (a setter each was a
  // sixth of a create's storage time).
  store.changing(f, o, entries.recordSize)
  const eb = f.buf
  D.parent.put(eb, o, dir)
  D.name.put(eb, o, nameUnit)
  D.child.put(eb, o, child)
  D.childGen.put(eb, o, I.gen.get(nb, childOff))
  D.nameHash.put(eb, o, hash)
  D.nameLength.put(eb, o, name.length)
  D.inlineName.put(eb, o, name)
  D.next.put(eb, o, head)
  D.prev.put(eb, o, 0)
  D.type.put(eb, o, typeOf(I.mode.get(nb, childOff) & S_IFMT))
  if (head !== 0) D.prev.set(store, f, entries.off(head), d)
  I.dirHead.set(store, nodes.file, dirOff, d)
  I.size.set(store, nodes.file, dirOff, I.size.get(nodes.file.buf, dirOff) + 1)
  t.entryIndex.insert(d, dirHash(dir, hash))
  return d
}
