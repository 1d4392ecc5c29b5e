/** What reading a C RAZORFS image yields (the passes of ../source.ts fill it in), and its one error. */
import type {CLayout, CNodesHeader} from '../c-format.js'

/** A problem that makes the whole source unusable (no --skip-bad can help). */
export class SourceError extends Error {
  readonly code = 'MIGRATE_BAD_SOURCE'
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`)
    this.name = 'SourceError'
  }
}

/** A node reached from the root, good enough to be migrated. */
export interface SourceEntry {
  /** The path in the migrated tree ('/' for the root). */
  path: string
  /** Path components, as bytes (the root has none). */
  names: Buffer[]
  /** Index in `entries` of the parent directory (-1 for the root). */
  parent: number
  type: 'dir' | 'file'
  /** Permission bits (mode & 07777). */
  mode: number
  size: number
  /** Unix seconds: the only timestamp of the C format. */
  mtime: number
  inode: number
  slot: number
  /** Regular files with a content file: its name and how it is stored. */
  content?: {file: string; compressed: boolean; payloadBytes: number; decodedBytes: number; bufferSize: number}
  /** Regular files: sha256 of the content (after decoding, cut or zero-extended to `size`). */
  sha256?: string
}

/** A node (or a reference to one) that cannot be migrated, and why. */
export interface BadEntry {
  /** Where it is: the path it would have (names that are not legal are shown quoted). */
  path: string
  slot?: number
  inode?: number
  reason: string
  /** Live nodes below it that are left out with it. */
  below: number
}

export interface Source {
  dir: string
  layout: CLayout
  nodesFile: string
  stringsFile: string
  header: CNodesHeader
  /** The names file's `used` field and real length. */
  strings: {used: number; bytes: number}
  /** Slots whose inode field is not 0. */
  liveSlots: number
  entries: SourceEntry[]
  bad: BadEntry[]
  /** Odd but harmless facts, one line each (a stale header, leftover content files, ...). */
  notes: string[]
  /** Live slots that no directory reaches (not migrated). */
  unreachable: Array<{slot: number; inode: number; name: string; type: string}>
  /** Content files that no reachable regular file owns (not migrated). */
  unreferenced: string[]
  /** Every file of the source image (nodes, names, content files): what --remove-source deletes. */
  files: string[]
  totals: {dirs: number; files: number; bytes: number}
}

export interface ReadOptions {
  /** Called once, before contents are read, with the bytes of content to read (an estimate). */
  onTotal?: (bytes: number) => void
  /** Called with the number of content bytes processed (for a progress bar). */
  onBytes?: (n: number) => void
}
