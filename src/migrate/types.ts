/**
 * The shapes `razorfs migrate` is driven by and reports in: its options, its report, and what a
 * verification checked. Declared apart from migrate.ts so that its parts (write.ts, shared.ts,
 * report.ts) and migrate.ts itself can all speak of them without importing one another in a loop.
 */
import type {Progress} from '../progress.js'
import type {Volume} from '../storage/volume.js'
import type {BadEntry, Detection, Source} from './source.js'
import type {WalReport} from './wal.js'

/** What a verification checked. */
export interface Verified {
  entries: number
  files: number
  bytes: number
}

export interface MigrateOptions {
  /** 'shm' (= /dev/shm), a directory, or undefined to look in the default places. */
  from?: string
  /** The data dir of the new image; not with `meta`. */
  dataDir?: string
  /** Migrate into a new volume on PostgreSQL at this URL (shared.ts) instead of an image. */
  meta?: string
  dryRun?: boolean
  force?: boolean
  skipBad?: boolean
  removeSource?: boolean
  wal?: string
  progress?: Progress
  /** Owner of everything migrated (the C format has no owners): default, this process's. */
  uid?: number
  gid?: number
  env?: NodeJS.ProcessEnv
  /** Test hook: called with the staging directory once the new image is written, before it is verified. */
  afterWrite?: (staging: string) => void
  /** Test hook: called with the volume (--meta) once it is written, before it is verified, in the same transaction. */
  afterWriteVolume?: (volume: Volume) => void
  /** Test hook: called before each rename that puts the new image in place (see Staging); may throw. */
  beforeRename?: (from: string, to: string) => void
}

export interface ReportEntry {
  path: string
  type: 'dir' | 'file'
  /** Permission bits, octal ('644'). */
  mode: string
  size: number
  mtime: number
  sha256?: string
  cInode: number
  cSlot: number
  compressed?: boolean
}

export interface MigrateReport {
  dryRun: boolean
  source: {
    dir: string
    layout: 'disk' | 'shm'
    /** How it was chosen: the --from flag, or the first C image found where we looked. */
    chosenBy: 'from' | 'search'
    searched?: Array<{dir: string; state: Detection['state']; detail: string}>
    nodes?: {file: string; magic: string; version: number; capacity: number; used: number; nextInode: number; freeCount: number; liveSlots: number}
    strings?: {file: string; used: number; bytes: number}
    contentFiles?: number
  }
  wal: {looked: string[]; report?: WalReport}
  /**
   * The image's data dir, or (--meta) the volume's URL without its password: the other one null.
   * heldImage: a razorfs image (or volume) is there already.
   */
  target: {dataDir: string | null; meta: string | null; existed: boolean; heldImage: boolean; replaced: boolean; uuid?: string; refusal?: string}
  entries: ReportEntry[]
  skipped: BadEntry[]
  unreachable: Source['unreachable']
  unreferenced: string[]
  notes: string[]
  summary: {dirs: number; files: number; bytes: number; skipped: number; skippedBelow: number}
  verified?: Verified
  sourceRemoval: {requested: boolean; removed: string[]; kept?: string}
}
