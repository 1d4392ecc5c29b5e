/**
 * The storage classes over a store's mapped files, wired once: the inode and entry tables with
 * their free-list links, the string heap with strings.idx, and entries.idx keyed by each entry's
 * (parent, nameHash). `Image`, fsck's `CheckedImage` and, through `Image.internals()`, the inspect
 * records all read and write through the tables this builds.
 */
import {direntFields as D, keyOf} from './codec/dirent.js'
import {inodeFields as I} from './codec/inode.js'
import {FILE_ENTRIES, FILE_ENTRY_INDEX, FILE_NODES, FILE_STRINGS, FILE_STRING_INDEX} from './format.js'
import {LinearHash} from './linear-hash.js'
import type {MappedFile} from './mapped-file.js'
import type {Store} from './store.js'
import {StringHeap} from './string-heap.js'
import {RecordTable} from './table.js'

/** The store and the storage classes over it. */
export interface Tables {
  readonly store: Store
  readonly nodes: RecordTable
  readonly entries: RecordTable
  readonly entryIndex: LinearHash
  readonly strings: StringHeap
}

/**
 * Build the tables over `store`'s files and install the header counters a checkpoint writes
 * (FORMAT.md "HEADER": used and reclaimable per file).
 */
export function openTables(store: Store): Tables {
  const f = store.files
  const nodes = new RecordTable(store, f[FILE_NODES], I.link)
  const entries = new RecordTable(store, f[FILE_ENTRIES], D.hashNext)
  const strings = new StringHeap(store, f[FILE_STRINGS], f[FILE_STRING_INDEX])
  const entryIndex = new LinearHash(store, f[FILE_ENTRY_INDEX], {
    hash: d => keyOf(entries.file.buf, entries.off(d)),
    next: d => D.hashNext.get(entries.file.buf, entries.off(d)),
    setNext: (d, next) => D.hashNext.set(store, entries.file, entries.off(d), next),
  })
  const tables = {store, nodes, entries, entryIndex, strings}
  store.counters = file => counters(tables, file)
  return tables
}

/** Counters a checkpoint writes into each file's header. */
function counters(t: Tables, file: MappedFile): {used: number; reclaimable: number} {
  switch (file.spec.id) {
    case FILE_NODES:
      return {used: t.nodes.live, reclaimable: Math.max(0, t.nodes.highWater - 1 - t.nodes.live)}
    case FILE_ENTRIES:
      return {used: t.entries.live, reclaimable: Math.max(0, t.entries.highWater - 1 - t.entries.live)}
    case FILE_ENTRY_INDEX:
      return {used: t.entryIndex.buckets, reclaimable: 0}
    case FILE_STRINGS:
      return {used: t.strings.bump, reclaimable: t.strings.freeBytes}
    default:
      return {used: t.strings.index.buckets, reclaimable: 0}
  }
}
