/**
 * Depth-first walks over the tree of an image in constant memory: an explicit stack holds one
 * frame per directory level (its slot, its path and a cursor into its entry chain), never a list
 * of entries. Directory chains are walked through the records themselves (`dirHead`, `next`), and
 * every walk is bounded (no more steps than entries.dat has slots; a directory already on the
 * stack is not entered again), so a damaged or changing image cannot make a walk loop.
 */
import type {Records} from './records.js'

const SLASH = Buffer.from('/')

/** One name in the tree: the start of a walk, or a directory entry. */
export interface TreeItem {
  /** Full path from the image's root (`/` for the root), as bytes. */
  path: Buffer
  /** The entry's name; for the start of a walk, the last component of its path ('/' for the root). */
  name: Buffer
  /** Inode slot of the entry's child; 0 if the entry is dangling (see `problem`). */
  slot: number
  /** entries.dat slot of the entry; 0 for the start of a walk. */
  dirent: number
  /** 0 for the start, 1 for its entries, ... */
  depth: number
  /** Why the entry's inode cannot be shown (dangling entry), if it cannot. */
  problem?: string
}

export function joinPath(dir: Buffer, name: Buffer): Buffer {
  if (dir.length === 1 && dir[0] === 0x2f) return Buffer.concat([SLASH, name])
  return Buffer.concat([dir, SLASH, name])
}

/** The entries of directory `dirSlot`, in chain order (newest first), bounded. */
export function* chain(records: Records, dirSlot: number): Generator<number> {
  let budget = records.entryHighWater
  for (let d = records.dirHead(dirSlot); d !== 0 && budget-- > 0; ) {
    if (!records.entryInRange(d)) return
    const next = records.entryNext(d)
    yield d
    d = next
  }
}

function itemOf(records: Records, dirPath: Buffer, d: number, depth: number): TreeItem {
  const name = records.entryName(d)
  const path = joinPath(dirPath, name)
  if (!records.entryTargetLive(d)) {
    return {path, name, slot: 0, dirent: d, depth, problem: `dangling entry: inode slot ${records.entryChild(d)} is free or of another generation`}
  }

  return {path, name, slot: records.entryChild(d), dirent: d, depth}
}

interface Frame {
  slot: number
  path: Buffer
  /** Next entry of the chain to look at (0 = done), and the steps left before giving up. */
  cursor: number
  budget: number
}

/**
 * Pre-order: each name, then (for a directory) everything below it, before the next name.
 * What archives and JSON lines need: every item carries its full path. `oldestFirst` walks each
 * directory from its oldest entry (the archive: recreating entries in that order gives the
 * restored image the same readdir order).
 */
export function* preorder(records: Records, startSlot: number, startPath: Buffer, opts: {oldestFirst?: boolean} = {}): Generator<TreeItem> {
  const oldestFirst = opts.oldestFirst ?? false
  const startName = startPath.length === 1 ? startPath : startPath.subarray(startPath.lastIndexOf(0x2f) + 1)
  yield {path: startPath, name: startName, slot: startSlot, dirent: 0, depth: 0}
  if (!records.isDir(startSlot)) return
  const stack: Frame[] = [frameOf(records, startSlot, startPath, oldestFirst)]
  const onStack = new Set<number>([startSlot])
  while (stack.length > 0) {
    const top = stack.at(-1)!
    const d = top.cursor
    if (d === 0 || top.budget-- <= 0 || !records.entryInRange(d)) {
      stack.pop()
      onStack.delete(top.slot)
      continue
    }

    top.cursor = oldestFirst ? records.entryPrev(d) : records.entryNext(d)
    const item = itemOf(records, top.path, d, stack.length)
    yield item
    if (item.slot !== 0 && records.isDir(item.slot) && !onStack.has(item.slot)) {
      stack.push(frameOf(records, item.slot, item.path, oldestFirst))
      onStack.add(item.slot)
    }
  }
}

/** A frame at the first entry of a directory's chain, or at its last (`oldestFirst`: walked back through `prev`). */
function frameOf(records: Records, slot: number, path: Buffer, oldestFirst = false): Frame {
  let cursor = records.dirHead(slot)
  if (oldestFirst) {
    let budget = records.entryHighWater
    for (let d = cursor; d !== 0 && budget-- > 0 && records.entryInRange(d); d = records.entryNext(d)) cursor = d
  }

  return {slot, path, cursor, budget: records.entryHighWater}
}

export interface ListingVisitor {
  /** A directory whose entries follow (`ls -R`'s "PATH:" line). */
  directory(path: Buffer, slot: number): void
  /** One entry of the directory last announced, or the start of the walk if it is not a directory. */
  entry(item: TreeItem): void
}

/**
 * `ls -lR` order: a directory's entries, then each of its subdirectories the same way. Each
 * directory's chain is walked twice (once to list it, once to find its subdirectories), so the
 * stack holds a cursor per level instead of a list of subdirectories.
 */
export function listing(records: Records, startSlot: number, startPath: Buffer, visitor: ListingVisitor): void {
  if (!records.isDir(startSlot)) {
    const startName = startPath.subarray(startPath.lastIndexOf(0x2f) + 1)
    visitor.entry({path: startPath, name: startName, slot: startSlot, dirent: 0, depth: 0})
    return
  }

  const stack: Frame[] = []
  const onStack = new Set<number>()
  const enter = (slot: number, path: Buffer): void => {
    visitor.directory(path, slot)
    for (const d of chain(records, slot)) visitor.entry(itemOf(records, path, d, stack.length + 1))
    stack.push(frameOf(records, slot, path))
    onStack.add(slot)
  }

  enter(startSlot, startPath)
  while (stack.length > 0) {
    const top = stack.at(-1)!
    const d = top.cursor
    if (d === 0 || top.budget-- <= 0 || !records.entryInRange(d)) {
      stack.pop()
      onStack.delete(top.slot)
      continue
    }

    top.cursor = records.entryNext(d)
    if (!records.entryTargetLive(d)) continue
    const child = records.entryChild(d)
    if (records.isDir(child) && !onStack.has(child)) enter(child, joinPath(top.path, records.entryName(d)))
  }
}
