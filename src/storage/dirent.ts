/**
 * Adding a directory entry: the one place a `DIRENT` record is written whole (docs/FORMAT.md
 * "DIRENT" and "Directories"). `Image` adds entries with it (mknod, link, rename) and so does
 * fsck (/lost+found and the inodes it reconnects there), over the same storage classes.
 */
import {DIRENT, INLINE_NAME, INODE, S_IFMT, readU64} from './format.js'
import type {LinearHash} from './linear-hash.js'
import {dirHash} from './records.js'
import type {Store} from './store.js'
import {type StringHeap, fnv1a} from './string-heap.js'
import type {RecordTable} from './table.js'

const I = INODE.OFF
const D = DIRENT.OFF

/** The store and the storage classes an entry touches (what `Image` and fsck's `CheckedImage` hold). */
export interface EntryTables {
  readonly store: Store
  readonly nodes: RecordTable
  readonly entries: RecordTable
  readonly entryIndex: LinearHash
  readonly strings: StringHeap
}

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
  const node = (slot: number, field: number) => nodes.file.buf.readUInt32LE(nodes.off(slot) + field)
  const head = node(dir, I.dirHead)
  store.set32(f, o + D.parent, dir)
  store.set32(f, o + D.name, nameUnit)
  store.set32(f, o + D.child, child)
  store.set32(f, o + D.childGen, node(child, I.gen))
  store.set32(f, o + D.nameHash, hash)
  store.set8(f, o + D.nameLength, name.length)
  store.setBytes(f, o + D.inlineName, name.subarray(0, INLINE_NAME))
  store.set32(f, o + D.next, head)
  store.set32(f, o + D.prev, 0)
  store.set8(f, o + D.type, (node(child, I.mode) & S_IFMT) >>> 12)
  if (head !== 0) store.set32(f, entries.off(head) + D.prev, d)
  store.set32(nodes.file, nodes.off(dir) + I.dirHead, d)
  store.set64(nodes.file, nodes.off(dir) + I.size, readU64(nodes.file.buf, nodes.off(dir) + I.size) + 1)
  t.entryIndex.insert(d, dirHash(dir, hash))
  return d
}
