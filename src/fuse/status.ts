/**
 * What a running server tells other processes (`razorfs status`, `razorfs umount`): a small JSON
 * file in the data dir, `razorfs.status`, that the server replaces (write, then rename) once a
 * second from a timer, never from a request, and removes once it has closed the image cleanly.
 *
 * A razorfs mount is found through /proc/self/mountinfo: its type is `fuse.razorfs` and its
 * source (fsname) is its data dir, or for a volume on PostgreSQL its URL (without a password); the
 * status file (and a detached server's log) of such a mount live in a directory of their own,
 * sharedMountHome, found from the mountpoint and the uid of the mount's owner. The file names the server's pid and the start time of that
 * process (/proc/PID/stat), so a file left by a server that was killed (or whose pid was given to
 * another process since) is told apart from a live one: the mount is then reported dead.
 */
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {displayPgUrl, isPgUrl} from '../volume-url.js'
import {type MountEntry, mounts} from './mountinfo.js'

export const STATUS_NAME = 'razorfs.status'
/** The mount type of every razorfs mount (subtype razorfs). */
export const FS_TYPE = 'fuse.razorfs'
/** Seconds between two writes of the status file. */
export const STATUS_INTERVAL_S = 1

/** Requests served, by operation, and the page cache decisions of opens (the adapters count them). */
export interface AdapterCounters {
  ops: Record<string, number>
  /** Opens that kept the file's page cache, and those that dropped it (absent: libfuse 2 decides). */
  pageCache?: {kept: number; dropped: number}
}

export interface RecoveryInfo {
  /** The image had been closed cleanly before this mount opened it. */
  wasClean: boolean
  /** Transactions replayed from the write-ahead log at this mount. */
  transactions: number
  tornBytes: number
}

export interface ServerStatus {
  version: 1
  /** serving; closing (unmounting, checkpointing); or the reason the close failed. */
  state: 'serving' | 'closing' | 'close failed'
  error?: string
  pid: number
  /** Start time of the server process in clock ticks after boot (/proc/PID/stat, field 22). */
  startTicks: number | null
  /** The data dir of an image; null for a volume on PostgreSQL. */
  dataDir: string | null
  /** The URL (without its password) of a volume on PostgreSQL; null for an image. */
  meta: string | null
  mountpoint: string
  binding: string
  options: string[]
  readOnly: boolean
  /** The server's log file (a detached server), or null (its stderr: a foreground one). */
  log: string | null
  startedAt: string
  mountedAt: string
  updatedAt: string
  /** What opening the image recovered; null for a volume on PostgreSQL (nothing to recover). */
  recovery: RecoveryInfo | null
  ops: {
    total: number
    /** Requests a second over the last interval. */
    perSecond: number
    byOp: Record<string, number>
  }
  cache: {
    residentBytes: number
    /** null: a volume on PostgreSQL, which maps nothing it could drop. */
    residentBudgetBytes: number | null
    /** Times the server dropped the clean pages of the image to stay within its budget (null as above). */
    pageReleases: number | null
    pageCache: {kept: number; dropped: number} | null
  }
}

/** The start time of process `pid` in clock ticks after boot, or undefined if there is none (or a zombie). */
export function processStart(pid: number): number | undefined {
  let stat: string
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }

  // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses; the fields after the last ')'.
  const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  if (after[0] === 'Z' || after[0] === 'X') return undefined
  const ticks = Number(after[19])
  return Number.isFinite(ticks) ? ticks : undefined
}

/** The real uid of a process, or undefined if there is none. */
function processUid(pid: number): number | undefined {
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined
  try {
    const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)
    return line === null ? undefined : Number(line[1])
  } catch {
    return undefined
  }
}

/** Is the process a status file names still the one that wrote it? */
export function serverAlive(status: Pick<ServerStatus, 'pid' | 'startTicks'>): boolean {
  const start = processStart(status.pid)
  return start !== undefined && (status.startTicks === null || start === status.startTicks)
}

/** The kernel's name for a path a user gave (mountinfo's): through symlinks, if it can be resolved. */
export function realTarget(target: string): string {
  const abs = path.resolve(target)
  try {
    return fs.realpathSync(abs)
  } catch {
    return abs // a dead mount (ENOTCONN), or gone
  }
}

export function statusPath(dataDir: string): string {
  return path.join(dataDir, STATUS_NAME)
}

/**
 * The directory of the status file and the log of a mount of a volume on PostgreSQL, which has
 * no data dir: /tmp/razorfs-UID/mount-HASH (UID the mount owner's, HASH of the mountpoint), made
 * (mode 0700) by the server. What `razorfs status` and `umount` read there is believed only as a
 * data dir's status file is: a process that is gone is never shown as live.
 */
export function sharedMountHome(mountpoint: string, uid = process.getuid?.() ?? 0): string {
  const hash = createHash('sha256').update(mountpoint).digest('hex').slice(0, 16)
  return path.join('/tmp', `razorfs-${uid}`, `mount-${hash}`)
}

/** The status file of `dataDir`, whatever it says; undefined if there is none (or it does not parse). */
export function readStatus(dataDir: string): ServerStatus | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(statusPath(dataDir), 'utf8')) as ServerStatus
    return parsed?.version === 1 && typeof parsed.pid === 'number' ? parsed : undefined
  } catch {
    return undefined
  }
}

export interface StatusSample {
  counters: AdapterCounters
  residentBudgetBytes: number | null
  pageReleases: number | null
}

/**
 * The server's side: writes the status file every STATUS_INTERVAL_S from a timer (which does not
 * keep the process alive), with the figures `sample` gives at that moment.
 */
export class StatusWriter {
  private timer: NodeJS.Timeout | undefined
  private lastTotal = 0
  private lastTime = performance.now()
  private state: ServerStatus['state'] = 'serving'
  private error: string | undefined
  private failed: string | undefined
  private readonly startTicks = processStart(process.pid) ?? null
  readonly file: string

  constructor(
    private readonly base: Pick<ServerStatus, 'dataDir' | 'meta' | 'mountpoint' | 'binding' | 'options' | 'readOnly' | 'log' | 'recovery'> & {
      mountedAt: Date
      /** The directory the file goes in: the data dir, or sharedMountHome. */
      home: string
    },
    private readonly sample: () => StatusSample,
    private readonly log: (line: string) => void,
  ) {
    this.file = statusPath(base.home)
  }

  start(): void {
    this.write()
    this.timer = setInterval(() => this.write(), STATUS_INTERVAL_S * 1000)
    this.timer.unref()
  }

  /** The server is closing the image (written at once). */
  closing(): void {
    this.stopTimer()
    this.state = 'closing'
    this.write()
  }

  /**
   * The volume was closed cleanly: the file goes, and a shared mount's home directory with it
   * unless something else is there (its log stays).
   */
  closed(): void {
    this.stopTimer()
    try {
      fs.rmSync(this.file, {force: true})
    } catch (error) {
      this.log(`status file: ${(error as Error).message}`)
    }

    if (this.base.meta === null) return
    try {
      fs.rmdirSync(this.base.home)
    } catch {
      // Not empty (the mount's log is there) or gone: it stays as it is.
    }
  }

  /** Closing the image failed: the file stays, saying why. */
  closeFailed(message: string): void {
    this.stopTimer()
    this.state = 'close failed'
    this.error = message
    this.write()
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
  }

  private status(): ServerStatus {
    const s = this.sample()
    const byOp = s.counters.ops
    const total = Object.values(byOp).reduce((a, b) => a + b, 0)
    const now = performance.now()
    const seconds = (now - this.lastTime) / 1000
    const perSecond = seconds > 0 ? Math.round(((total - this.lastTotal) / seconds) * 10) / 10 : 0
    this.lastTotal = total
    this.lastTime = now
    return {
      version: 1,
      state: this.state,
      ...(this.error === undefined ? {} : {error: this.error}),
      pid: process.pid,
      startTicks: this.startTicks,
      dataDir: this.base.dataDir,
      meta: this.base.meta,
      mountpoint: this.base.mountpoint,
      binding: this.base.binding,
      options: this.base.options,
      readOnly: this.base.readOnly,
      log: this.base.log,
      startedAt: new Date(performance.timeOrigin).toISOString(),
      mountedAt: this.base.mountedAt.toISOString(),
      updatedAt: new Date().toISOString(),
      recovery: this.base.recovery,
      ops: {total, perSecond, byOp},
      cache: {
        residentBytes: process.memoryUsage.rss(),
        residentBudgetBytes: s.residentBudgetBytes,
        pageReleases: s.pageReleases,
        pageCache: s.counters.pageCache ?? null,
      },
    }
  }

  /** Replace the file (a failure is logged once, not each second: a full disk must not flood the log). */
  private write(): void {
    const tmp = `${this.file}.${process.pid}.tmp`
    try {
      fs.writeFileSync(tmp, `${JSON.stringify(this.status(), null, 2)}\n`, {mode: 0o644})
      fs.renameSync(tmp, this.file)
      this.failed = undefined
    } catch (error) {
      fs.rmSync(tmp, {force: true})
      const message = (error as Error).message
      if (message !== this.failed) this.log(`cannot write the status file: ${message}`)
      this.failed = message
    }
  }
}

/** A razorfs mount of this mount namespace, and what its status file says. */
export interface RazorMount {
  mountpoint: string
  /** The data dir of an image; null for a volume on PostgreSQL. */
  dataDir: string | null
  /** The URL (without its password) of a volume on PostgreSQL; null for an image. */
  meta: string | null
  /** Where its status file is: the data dir, or sharedMountHome. */
  home: string
  /**
   * live: its server runs. dead: its server is gone (the mount answers "Transport endpoint is not
   * connected"). unknown: no status file names this mount (a server that could not write one).
   */
  state: 'live' | 'dead' | 'unknown'
  status?: ServerStatus
  mount: MountEntry
}

/** Is `mountpoint` a dead FUSE mount (its server gone)? */
export function deadMount(mountpoint: string): boolean {
  try {
    fs.statSync(mountpoint)
    return false
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOTCONN'
  }
}

/** Every razorfs mount in /proc/self/mountinfo (the topmost of each mountpoint). */
export function razorMounts(): RazorMount[] {
  const all = mounts()
  const out: RazorMount[] = []
  for (const [i, m] of all.entries()) {
    if (m.fsType !== FS_TYPE) continue
    if (all.slice(i + 1).some(later => later.mountPoint === m.mountPoint)) continue // covered by a later mount
    const userId = m.superOptions.find(o => o.startsWith('user_id='))
    const shared = isPgUrl(m.source)
    const home = shared ? sharedMountHome(m.mountPoint, userId === undefined ? undefined : Number(userId.slice('user_id='.length))) : m.source
    const status = readStatus(home)
    // The status file is the mount owner's to write: its pid is believed (signalled by umount
    // --force, waited on) only if that process is the mount owner's too, or is gone.
    const owner = processUid(status?.pid ?? 0)
    const mine = status !== undefined && status.mountpoint === m.mountPoint && (owner === undefined || userId === undefined || `user_id=${owner}` === userId)
    let state: RazorMount['state']
    if (mine) state = serverAlive(status) ? 'live' : 'dead'
    else state = deadMount(m.mountPoint) ? 'dead' : 'unknown'
    out.push({
      mountpoint: m.mountPoint,
      dataDir: shared ? null : m.source,
      meta: shared ? m.source : null,
      home,
      state,
      status: mine ? status : undefined,
      mount: m,
    })
  }

  return out
}

/**
 * Does `target` (as a user gave it to status or umount) name mount `m`: its mountpoint, its data
 * dir, or the URL of its volume (with or without a password)?
 */
export function namesMount(m: RazorMount, target: string): boolean {
  if (isPgUrl(target)) {
    try {
      return displayPgUrl(target) === m.meta
    } catch {
      return false // not a URL after all
    }
  }

  const real = realTarget(target)
  // A data dir is the mount's source as the mount command resolved it, through a symlink or not.
  return m.mountpoint === real || m.dataDir === real || m.dataDir === path.resolve(target)
}
