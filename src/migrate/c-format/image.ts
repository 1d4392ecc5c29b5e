/**
 * The files of a C RAZORFS image: the two layouts (disk and shm), which file names each uses and
 * how it addresses names. What every codec of src/migrate/c-format/ shares lives here too.
 */

/** The two layouts of the C version: which file names they use, and how names are addressed. */
export interface CLayout {
  readonly kind: 'disk' | 'shm'
  readonly nodes: string
  readonly strings: string
  /** Prefix of a content file's name; the inode number (decimal) follows. */
  readonly contentPrefix: string
  /** File offset of the name at `nameOffset`. */
  readonly nameAt: (nameOffset: number) => number
  /** File offset where the names area begins. */
  readonly namesStart: number
}

export const C_DISK: CLayout = {
  kind: 'disk',
  nodes: 'nodes.dat',
  strings: 'strings.dat',
  contentPrefix: 'file_',
  // [u32 used][used bytes]: name_offset counts from the end of the prefix.
  nameAt: nameOffset => 4 + nameOffset,
  namesStart: 4,
}

export const C_SHM: CLayout = {
  kind: 'shm',
  nodes: 'razorfs_nodes',
  strings: 'razorfs_strings',
  contentPrefix: 'razorfs_file_',
  // [u32 used (counting the prefix)][names...]: name_offset is a file offset.
  nameAt: nameOffset => nameOffset,
  namesStart: 4,
}

export const C_LAYOUTS: readonly CLayout[] = [C_DISK, C_SHM]

/** The inode number of a content file's name under `layout`, or undefined if it is not one. */
export function contentInode(layout: CLayout, name: string): number | undefined {
  if (!name.startsWith(layout.contentPrefix)) return undefined
  const digits = name.slice(layout.contentPrefix.length)
  if (!/^(0|[1-9]\d{0,9})$/.test(digits)) return undefined
  const n = Number(digits)
  return n <= 0xffff_ffff ? n : undefined
}

/** A magic number or CRC as the reports show it: `0x` and 8 upper-case hex digits. */
export function hex32(n: number): string {
  return `0x${n.toString(16).toUpperCase().padStart(8, '0')}`
}
