/**
 * What the tree walk left over, for the report: content files of directories, live slots that no
 * directory reaches, content files no file owns, and the totals of what is migrated.
 */
import {S_IFMT} from '../../storage/format.js'
import {type CLayout, cNodeType, decodeName} from '../c-format.js'
import type {InodeTable} from './inodes.js'
import type {Source} from './model.js'
import {shownName} from './names.js'
import type {Tree} from './tree.js'

function typeName(mode: number): string {
  switch (cNodeType(mode)) {
    case 'dir':
      return 'directory'
    case 'file':
      return 'file'
    default:
      return `type 0o${(mode & S_IFMT).toString(8)}`
  }
}

/** The leftovers of `tree` (whose `unreferenced` this consumes) and notes about them. */
export function leftovers(
  tree: Tree,
  table: InodeTable,
  layout: CLayout,
  strings: Buffer,
  contentFiles: ReadonlyMap<number, string>,
): Pick<Source, 'notes' | 'unreachable' | 'unreferenced' | 'totals'> {
  const {entries, accounted, placed, unreferenced} = tree
  const nodes = table.nodes
  const notes: string[] = []
  // Directories own no content files.
  for (const e of entries) {
    if (e.type === 'dir' && unreferenced.has(e.inode)) {
      notes.push(`${contentFiles.get(e.inode)}: content file of a directory (${e.path}), ignored`)
      unreferenced.delete(e.inode)
    }
  }

  const unreachable: Source['unreachable'] = []
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i]
    if (node.inode === 0 || accounted.has(i)) continue
    unreachable.push({slot: i, inode: node.inode, name: shownName(decodeName(strings, layout, node.nameOffset), '?'), type: typeName(node.mode)})
    unreferenced.delete(node.inode)
  }

  // Content files of nodes left out below a bad entry are accounted for by that entry.
  for (const i of accounted) if (!placed.has(i)) unreferenced.delete(nodes[i].inode)

  const totals = {dirs: 0, files: 0, bytes: 0}
  for (const e of entries) {
    if (e.type === 'dir') totals.dirs++
    else {
      totals.files++
      totals.bytes += e.size
    }
  }

  return {
    notes,
    unreachable,
    totals,
    unreferenced: [...unreferenced].sort((a, b) => a - b).map(ino => contentFiles.get(ino)!),
  }
}
