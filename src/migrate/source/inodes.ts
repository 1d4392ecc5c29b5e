/**
 * The C inode table: every slot of the nodes file decoded (by the codec), the live ones counted
 * whatever the possibly stale header says, and the root checked. A root that cannot be walked
 * refuses the whole source.
 */
import {FILE_SIZE_MAX} from '../../storage/types.js'
import {C_MAX_CHILDREN, C_NO_INDEX, type CLayout, type CNode, type CNodesHeader, cNodeType, decodeNode} from '../c-format.js'
import {SourceError} from './model.js'
import {rootNameNote} from './names.js'

export interface InodeTable {
  /** Every slot's node, by slot index (free slots too: their inode is 0). */
  nodes: CNode[]
  /** Slots whose inode is not 0. */
  liveSlots: number
  /** The highest live slot (-1 if none). */
  highest: number
  /** The highest inode number of a live slot. */
  maxInode: number
  /** Bytes of content the live regular files claim (an estimate, for a progress bar). */
  contentBytes: number
}

/** Decode the `header.capacity` slots of the nodes file `buf`. */
export function readInodeTable(buf: Buffer, header: CNodesHeader): InodeTable {
  const table: InodeTable = {nodes: [], liveSlots: 0, highest: -1, maxInode: 0, contentBytes: 0}
  for (let i = 0; i < header.capacity; i++) {
    const node = decodeNode(buf, i)
    table.nodes.push(node)
    if (node.inode === 0) continue
    table.liveSlots++
    table.highest = i
    table.maxInode = Math.max(table.maxInode, node.inode)
    if (cNodeType(node.mode) === 'file') table.contentBytes += Math.min(FILE_SIZE_MAX, Number(node.size))
  }

  return table
}

/**
 * Notes on a stale header, and the root (slot 0) checked: it must be live, a directory, with at
 * most C_MAX_CHILDREN children (else SourceError for `nodesFile`); anything else odd about it is noted.
 */
export function checkInodeTable(table: InodeTable, header: CNodesHeader, layout: CLayout, nodesFile: string, strings: Buffer): string[] {
  const notes: string[] = []
  if (table.highest + 1 > header.used)
    notes.push(
      `${layout.nodes}: header says used=${header.used}, but slots up to ${table.highest} are live: the header is stale (the C version writes it only at a clean unmount); the tree was walked from slot 0`,
    )
  if (table.maxInode >= header.nextInode)
    notes.push(`${layout.nodes}: header says next_inode=${header.nextInode}, but inode ${table.maxInode} exists: the header is stale`)
  if (header.freeCount > header.capacity) notes.push(`${layout.nodes}: header says free_count=${header.freeCount}, more than the capacity ${header.capacity}`)

  const root = table.nodes[0]
  if (root.inode === 0) throw new SourceError(nodesFile, 'slot 0 (the root directory) is free: there is no tree')
  if (cNodeType(root.mode) !== 'dir') throw new SourceError(nodesFile, `slot 0 (the root) is not a directory (mode 0o${root.mode.toString(8)})`)
  if (root.numChildren > C_MAX_CHILDREN)
    throw new SourceError(nodesFile, `slot 0 (the root) says it has ${root.numChildren} children, at most ${C_MAX_CHILDREN}`)
  if (root.inode !== 1) notes.push(`the root (slot 0) has inode ${root.inode}, not 1`)
  if (root.parent !== C_NO_INDEX) notes.push(`the root (slot 0) has parent ${root.parent}, not 0xFFFF`)
  const name = rootNameNote(strings, layout, root.nameOffset)
  if (name !== undefined) notes.push(name)
  return notes
}
