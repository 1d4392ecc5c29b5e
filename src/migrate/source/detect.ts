/** Finding a source: what a directory holds, as far as a migration is concerned. Reads only the nodes files' first bytes. */
import fs from 'node:fs'
import path from 'node:path'

import {readFully} from '../../storage/mapped-file.js'
import {C_DISK, C_LAYOUTS, C_NODES_MAGIC, C_SHM, type CLayout, contentInode, hex32, sniffNodesFile} from '../c-format.js'

/** What one directory holds, as far as a migration is concerned. */
export interface Detection {
  dir: string
  /**
   * - `found`: a C RAZORFS image (its nodes file has the C magic number);
   * - `absent`: no such directory; `not-dir`: a file, not a directory; `unreadable`: cannot list it;
   * - `none`: a directory without a C nodes file;
   * - `razorfs`: a razorfs image (already migrated?), not a C one;
   * - `bad-magic`: a C file name, but not the C magic number (damaged, or not a C RAZORFS file);
   * - `ambiguous`: the files of both C layouts.
   */
  state: 'found' | 'absent' | 'not-dir' | 'unreadable' | 'none' | 'razorfs' | 'bad-magic' | 'ambiguous'
  layout?: CLayout
  /** One line for the report. */
  detail: string
}

/** The directories a migration without --from looks in, in order. */
export const DEFAULT_SOURCES = ['/dev/shm', '/var/lib/razorfs', '/tmp/razorfs_data']
/** Where the C version keeps its write-ahead log. */
export const DEFAULT_WAL = '/tmp/razorfs_wal.log'

/** The first 8 bytes of a file (fewer if it is shorter), or undefined if it cannot be read. */
function head8(file: string): Buffer | undefined {
  let fd: number
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
  } catch {
    return undefined
  }

  try {
    const buf = Buffer.alloc(8)
    return buf.subarray(0, readFully(fd, buf, 0))
  } catch {
    return undefined
  } finally {
    fs.closeSync(fd)
  }
}

/** What `dir` holds: a C RAZORFS image of which layout, or why not. Reads only the nodes files' magic. */
export function detect(dir: string): Detection {
  let names: string[]
  try {
    const st = fs.statSync(dir)
    if (!st.isDirectory()) return {dir, state: 'not-dir', detail: 'not a directory'}
    names = fs.readdirSync(dir)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return {dir, state: 'absent', detail: 'no such directory'}
    return {dir, state: 'unreadable', detail: `cannot read it (${code ?? (error as Error).message})`}
  }

  const present = C_LAYOUTS.filter(layout => names.includes(layout.nodes))
  if (present.length === 0) return {dir, state: 'none', detail: `no C RAZORFS image (no ${C_DISK.nodes} or ${C_SHM.nodes})`}
  const magics = present.map(layout => ({layout, magic: sniffNodesFile(head8(path.join(dir, layout.nodes)) ?? Buffer.alloc(0)).kind}))
  const c = magics.filter(m => m.magic === 'c')
  if (c.length > 1) {
    return {
      dir,
      state: 'ambiguous',
      detail: `holds the files of both C layouts (${C_DISK.nodes} and ${C_SHM.nodes}); copy one of them into a directory of its own`,
    }
  }

  if (c.length === 1) {
    const layout = c[0].layout
    const contents = names.filter(name => contentInode(layout, name) !== undefined).length
    return {
      dir,
      state: 'found',
      layout,
      detail: `C RAZORFS ${layout.kind} layout: ${layout.nodes}, ${layout.strings}, ${contents} content file${contents === 1 ? '' : 's'}`,
    }
  }

  if (magics.some(m => m.magic === 'razorfs')) {
    return {dir, state: 'razorfs', detail: 'holds a razorfs image (nodes.dat with the razorfs magic), not a C RAZORFS one: nothing to migrate'}
  }

  const b = head8(path.join(dir, present[0].nodes))
  const got = b === undefined ? 'unreadable' : b.length < 4 ? `${b.length} bytes long` : `magic ${hex32(sniffNodesFile(b).magic!)}`
  return {
    dir,
    state: 'bad-magic',
    layout: present[0],
    detail: `${present[0].nodes}: not a C RAZORFS nodes file (${got}, expected magic ${hex32(C_NODES_MAGIC)})`,
  }
}
