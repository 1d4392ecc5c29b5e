/**
 * `razorfs umount`: unmount a razorfs mount and wait until its server has closed the image
 * cleanly. The server notices the unmount (the ll session ends; fuse-native's watch sees the
 * mount go), checkpoints, marks the image clean and removes its status file, then exits: that the
 * file is gone once the process is is how a clean close is told from a server that died.
 */
import {spawnSync} from 'node:child_process'

import {findMount, mountPoints} from './mountinfo.js'
import {FS_TYPE, type RazorMount, type ServerStatus, namesMount, razorMounts, readStatus, realTarget, serverAlive} from './status.js'

/** How long a clean close may take (a checkpoint of a large image), and a lazy one before we stop waiting. */
const CLOSE_TIMEOUT_MS = 120_000
const LAZY_WAIT_MS = 5000

/**
 * A failure of umount; the message names the cause. `unmounted`: the mount went, but its server
 * did not close the image cleanly (or not yet); otherwise nothing was unmounted.
 */
export class UnmountError extends Error {
  constructor(
    message: string,
    readonly unmounted = false,
  ) {
    super(message)
  }
}

/**
 * The razorfs mount `target` names: its mountpoint, or its source (a data dir, or the URL of a
 * volume on PostgreSQL). Throws UnmountError (32) when there is none, or when the mountpoint holds
 * another filesystem.
 */
export function findRazorMount(target: string): RazorMount {
  const abs = realTarget(target)
  const all = razorMounts()
  const found = all.find(m => m.mountpoint === abs) ?? all.find(m => namesMount(m, target))
  if (found !== undefined) return found
  const other = findMount(abs)
  if (other !== undefined) throw new UnmountError(`${abs} is not a razorfs mount (it is ${other.fsType}); use umount(8)`)
  const stale = readStatus(abs)
  if (stale !== undefined && !serverAlive(stale)) {
    throw new UnmountError(`${abs}: not mounted (its last server, pid ${stale.pid}, is gone; the next mount recovers the image)`)
  }

  throw new UnmountError(`${abs}: not mounted`)
}

export interface UnmountOptions {
  /** Detach now; the server closes the image once the last file open on the mount is closed. */
  lazy: boolean
  /** Remove a dead mount; stop a live server even if files are open on its mount (they get EIO or ENOTCONN). */
  force: boolean
}

export interface UnmountResult {
  mountpoint: string
  /** The data dir of an image; null for a volume on PostgreSQL. */
  dataDir: string | null
  /** The URL (without its password) of a volume on PostgreSQL; null for an image. */
  meta: string | null
  pid: number | null
  /** closed: the server closed the image cleanly and exited. detached: lazily unmounted, the server still serves open files. removed: a dead mount, removed. unmounted: no status file told more. */
  outcome: 'closed' | 'detached' | 'removed' | 'unmounted'
}

function fusermount(args: string[]): {ok: boolean; message: string} {
  const run = spawnSync('fusermount3', args, {encoding: 'utf8'})
  if (run.error) return {ok: false, message: `cannot run fusermount3: ${run.error.message}`}
  const message =
    (run.stderr || '')
      .trim()
      .split('\n')
      .at(-1)
      ?.replace(/^fusermount3: /, '') ?? ''
  return {ok: run.status === 0, message}
}

function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

/** Wait until `cond()` or `ms` has passed; returns whether it held. */
async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) return false
    await sleep(50)
  }

  return true
}

export async function unmount(m: RazorMount, opts: UnmountOptions): Promise<UnmountResult> {
  const {mountpoint, dataDir, meta} = m
  const status: ServerStatus | undefined = m.status
  const pid = status?.pid ?? null
  const result = (outcome: UnmountResult['outcome']): UnmountResult => ({mountpoint, dataDir, meta, pid, outcome})
  const gone = () => !mountPoints().has(mountpoint) || findMount(mountpoint)?.fsType !== FS_TYPE

  if (m.state === 'dead') {
    const who = pid === null ? 'its server is gone' : `its server, pid ${pid}, is gone`
    if (!opts.force) throw new UnmountError(`${mountpoint} is a dead mount (${who}: "Transport endpoint is not connected"); use --force to remove it`)
    const run = fusermount(['-u', '-z', mountpoint])
    if (!run.ok && !gone()) throw new UnmountError(`cannot remove the dead mount ${mountpoint}: ${run.message}`)
    return result('removed')
  }

  if (opts.force && status !== undefined) {
    // The server unmounts, lazily if files are open, and aborts their connection after a grace period.
    try {
      process.kill(status.pid, 'SIGTERM')
    } catch (error) {
      throw new UnmountError(`cannot signal the server of ${mountpoint} (pid ${status.pid}): ${(error as Error).message}`)
    }
  } else {
    const run = fusermount(opts.lazy || opts.force ? ['-u', '-z', mountpoint] : ['-u', mountpoint])
    if (!run.ok) {
      if (/busy/i.test(run.message)) {
        throw new UnmountError(
          `${mountpoint} is busy (a process has a file open or its working directory there); close them, or use -l to detach it now (the image is closed once they are), or --force`,
        )
      }

      throw new UnmountError(`cannot unmount ${mountpoint}: ${run.message}`)
    }
  }

  if (status === undefined) {
    await waitFor(gone, 5000)
    return result('unmounted')
  }

  const exited = await waitFor(() => !serverAlive(status), opts.lazy ? LAZY_WAIT_MS : CLOSE_TIMEOUT_MS)
  if (!exited) {
    if (opts.lazy) return result('detached')
    throw new UnmountError(
      `${mountpoint} was unmounted, but its server (pid ${status.pid}) is still closing the image after ${CLOSE_TIMEOUT_MS / 1000} s${status.log === null ? '' : `; see ${status.log}`}`,
      true,
    )
  }

  const left = readStatus(m.home)
  if (left !== undefined && left.pid === status.pid) {
    const why =
      left.state === 'close failed' ? `closing the image failed: ${left.error}` : 'its server ended before it closed the image; the next mount recovers it'
    throw new UnmountError(`${mountpoint} was unmounted, but ${why}${status.log === null ? '' : ` (see ${status.log})`}`, true)
  }

  return result('closed')
}
