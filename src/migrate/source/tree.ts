/**
 * The tree: walked depth first from the root (slot 0) through each directory's children, in the
 * order it lists them. A reference or a node that cannot be migrated is a bad entry (with the
 * live nodes below it, left out with it); the rest become the entries to migrate, regular files
 * with their content checked and hashed.
 */
import {C_MAX_CHILDREN, C_NO_INDEX, type CLayout, type CNode, cNodeType, decodeName, validateNode} from '../c-format.js'
import {ContentProblem, readContent} from './content.js'
import type {InodeTable} from './inodes.js'
import type {BadEntry, ReadOptions, SourceEntry} from './model.js'
import {joinPath, nameProblem, shownName} from './names.js'

export interface TreeInput {
  dir: string
  layout: CLayout
  table: InodeTable
  /** The names file, whole. */
  strings: Buffer
  /** Content files by inode number. */
  contentFiles: ReadonlyMap<number, string>
  opts: ReadOptions
}

export interface Tree {
  entries: SourceEntry[]
  bad: BadEntry[]
  notes: string[]
  /** Slot -> index in `entries`. */
  placed: Map<number, number>
  /** Slots in the tree, or left out below a bad entry. */
  accounted: Set<number>
  /** Inode numbers of content files that no entry or bad entry owns yet. */
  unreferenced: Set<number>
}

/** Walk the tree from slot 0 (checked by checkInodeTable). */
export function walkTree(input: TreeInput): Tree {
  const {dir, layout, strings, contentFiles, opts} = input
  const nodes = input.table.nodes
  const capacity = nodes.length
  const entries: SourceEntry[] = []
  const bad: BadEntry[] = []
  const notes: string[] = []
  const placed = new Map<number, number>()
  const inodes = new Map<number, number>() // inode -> entry index
  const accounted = new Set<number>()
  const unreferenced = new Set(contentFiles.keys())
  const childrenOf = (node: CNode): number[] => node.children.slice(0, Math.min(node.numChildren, C_MAX_CHILDREN))

  /** Live slots below `i` (not counting i), walked defensively; marks them accounted for. */
  const hangingBelow = (i: number): number => {
    let count = 0
    const stack = [i]
    const seen = new Set<number>([i])
    while (stack.length > 0) {
      const s = stack.pop()!
      if (cNodeType(nodes[s].mode) !== 'dir') continue
      for (const c of childrenOf(nodes[s])) {
        if (c >= capacity || seen.has(c) || placed.has(c) || nodes[c].inode === 0) continue
        seen.add(c)
        if (!accounted.has(c)) count++
        accounted.add(c)
        stack.push(c)
      }
    }

    return count
  }

  const reject = (where: string, i: number | undefined, reason: string): void => {
    const inode = i === undefined ? undefined : nodes[i].inode
    let below = 0
    if (i !== undefined && !placed.has(i)) {
      accounted.add(i)
      below = hangingBelow(i)
    }

    bad.push({path: where, slot: i, inode, reason, below})
  }

  const place = (entry: SourceEntry): number => {
    const index = entries.length
    entries.push(entry)
    placed.set(entry.slot, index)
    accounted.add(entry.slot)
    inodes.set(entry.inode, index)
    return index
  }

  place({path: '/', names: [], parent: -1, type: 'dir', mode: nodes[0].mode & 0o7777, size: 0, mtime: nodes[0].mtime, inode: nodes[0].inode, slot: 0})
  const stack = [0]
  while (stack.length > 0) {
    const dirEntry = stack.pop()!
    const d = entries[dirEntry]
    const n = nodes[d.slot].numChildren
    const listed = nodes[d.slot].children
    for (let k = n; k < C_MAX_CHILDREN; k++) {
      if (listed[k] !== C_NO_INDEX) {
        notes.push(`${d.path} (slot ${d.slot}): child index ${listed[k]} at position ${k}, past num_children=${n}, ignored`)
        break
      }
    }

    const seenNames = new Map<string, number>()
    const children: number[] = []
    for (let k = 0; k < n; k++) {
      const c = listed[k]
      const where = joinPath(d.path, `[child ${k}]`)
      if (c === C_NO_INDEX) {
        reject(where, undefined, `child ${k} of ${n} is 0xFFFF (no child), although num_children=${n}`)
        continue
      }

      if (c >= capacity) {
        reject(where, undefined, `child index ${c} is out of range (slots 0 to ${capacity - 1})`)
        continue
      }

      const node = nodes[c]
      const ino = node.inode
      const rawName = decodeName(strings, layout, node.nameOffset)
      const at = joinPath(d.path, shownName(rawName, `[slot ${c}]`))
      if (ino === 0) {
        reject(at, undefined, `child index ${c} points to a free slot`)
        continue
      }

      if (placed.has(c)) {
        // Is it this directory or one of its ancestors?
        let cycle = false
        for (let e = dirEntry; e >= 0; e = entries[e].parent) {
          if (entries[e].slot === c) {
            cycle = true
            break
          }
        }

        const other = entries[placed.get(c)!].path
        reject(
          at,
          c,
          cycle
            ? `cycle: child index ${c} is ${other}, this directory or one of its ancestors`
            : `slot ${c} is already in the tree as ${other} (the C format has no hard links)`,
        )
        continue
      }

      if (accounted.has(c)) {
        reject(at, c, `slot ${c} was already reached below an entry that is left out`)
        continue
      }

      if (typeof rawName === 'string') {
        reject(at, c, rawName)
        continue
      }

      const problem = nameProblem(rawName)
      if (problem !== undefined) {
        reject(at, c, problem)
        continue
      }

      const key = rawName.toString('latin1')
      if (seenNames.has(key)) {
        reject(at, c, `duplicate name in ${d.path} (also slot ${seenNames.get(key)})`)
        continue
      }

      // An unsupported type is then the node's only problem; the others are checked after its inode.
      const problems = validateNode(node)
      const type = cNodeType(node.mode)
      if (type === undefined) {
        reject(at, c, problems[0])
        continue
      }

      if (inodes.has(ino)) {
        reject(at, c, `inode ${ino} is already used by ${entries[inodes.get(ino)!].path}`)
        continue
      }

      if (node.parent !== d.slot) notes.push(`${at} (slot ${c}): its parent field says slot ${node.parent}, but slot ${d.slot} lists it`)
      if (problems.length > 0) {
        reject(at, c, problems[0])
        continue
      }

      const names = [...d.names, Buffer.from(rawName)]
      const mode = node.mode & 0o7777
      if (type === 'dir') {
        if (node.size !== 0n) notes.push(`${at} (slot ${c}): a directory with size ${node.size}, ignored`)
        children.push(place({path: at, names, parent: dirEntry, type: 'dir', mode, size: 0, mtime: node.mtime, inode: ino, slot: c}))
        seenNames.set(key, c)
        continue
      }

      // A regular file.
      if (node.numChildren !== 0) notes.push(`${at} (slot ${c}): a regular file with num_children=${node.numChildren}: its child indices are ignored`)
      const size = Number(node.size)
      const contentName = contentFiles.get(ino)
      let read: ReturnType<typeof readContent>
      try {
        read = readContent(dir, layout, contentName, ino, size, at, opts)
      } catch (error) {
        if (!(error instanceof ContentProblem)) throw error
        if (contentName !== undefined) unreferenced.delete(ino)
        reject(at, c, error.message)
        continue
      }

      notes.push(...read.notes)
      unreferenced.delete(ino)
      place({path: at, names, parent: dirEntry, type: 'file', mode, size, mtime: node.mtime, inode: ino, slot: c, content: read.content, sha256: read.sha256})
      seenNames.set(key, c)
    }

    // Depth first, children in the order the directory lists them.
    for (let j = children.length - 1; j >= 0; j--) stack.push(children[j])
  }

  return {entries, bad, notes, placed, accounted, unreferenced}
}
