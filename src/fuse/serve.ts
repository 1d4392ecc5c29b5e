/**
 * Serving a volume on a mountpoint: open it (the caller says how: the image of a data dir, or a
 * volume on PostgreSQL), mount, keep the commit interval, notice signals and outside unmounts, and
 * end with a clean close.
 */
import fs from 'node:fs'
import path from 'node:path'

import {addonFunction} from '../addon.js'
import {FileSystem} from '../vfs/filesystem.js'
import type {Volume} from '../vfs/volume.js'
import {FuseNativeAdapter} from './fuse-native-adapter.js'
import {LowLevelAdapter} from './ll-adapter.js'
import {mountPoints} from './mountinfo.js'
import {type MountSettings, SHARED_DEFAULTS} from './mount-options.js'
import {type AdapterCounters, type RecoveryInfo, StatusWriter, sharedMountHome} from './status.js'

/** Seconds between WAL fsyncs: older acknowledged changes survive a power loss (like ext4 commit=5). */
export const COMMIT_INTERVAL_S = 5

/**
 * Resident set size (MiB) above which the server drops the clean pages of the image's mappings
 * (checked every CHECK_EVERY requests and ten times a second; `ServeOptions.residentMib`). Pages
 * the mount touches are read back from the page cache as needed, so a 1M-inode image does not
 * keep all of its metadata resident.
 */
export const RESIDENT_MIB = 160
/** Growth of the resident set since the last release left it that makes another one worth it. */
const RELEASE_MIN = 8 * 1024 * 1024
/**
 * Requests between two looks at the resident set. A lookup in a large image faults in up to a
 * mapping piece (128 KiB, mapped-file.ts) of each table it reads, and thousands of lookups a second
 * would make a whole 1M-file image resident between two ticks of a timer: counted in requests, the
 * growth between two looks stays a few MiB at any request rate. A look counts the page faults
 * (threadFaults) and reads the resident size (/proc/self/stat: 48 us in a serving razorfs, 4.4%
 * of its busy time in a create loop when read at every look) only after FAULTS_PER_LOOK of them:
 * the resident set grows only by faults, each of at most one 128 KiB mapping piece (4 MiB in all).
 */
const CHECK_EVERY = 32
const FAULTS_PER_LOOK = 32

/**
 * Page faults of this thread (the JS thread, which maps the image's pages in): the addon's
 * getrusage(RUSAGE_THREAD), else the process's (process.resourceUsage, 17 us a call in a serving
 * razorfs: it sums every thread's CPU time).
 */
const threadFaults =
  addonFunction<() => number>('threadFaults') ??
  ((): number => {
    const u = process.resourceUsage()
    return u.minorPageFault + u.majorPageFault
  })

/**
 * The resident set in bytes: the addon reads /proc/self/statm through a descriptor it keeps open;
 * Node's process.memoryUsage.rss() opens, reads and closes /proc/self/stat, whose making sums every
 * thread's CPU time (1.8% of the JS thread during four untars at once, before).
 */
const addonResident = addonFunction<() => number>('resident')
const residentBytes = (): number => {
  const bytes = addonResident?.() ?? -1
  return bytes >= 0 ? bytes : process.memoryUsage.rss()
}

/** What a mount serves: the image of a data dir, or a volume on PostgreSQL (its URL without a password). */
export type Served = {dataDir: string} | {meta: string}

export interface ServeOptions<V extends Volume> {
  /** What is served: the mount's source (mountinfo, df, razorfs status), and in the log. */
  served: Served
  /** Open (read-only or not) the volume to serve, once the mountpoint has been checked. */
  open: (readOnly: boolean) => V
  mountpoint: string
  /** What -o asked for (mount-options.ts). */
  settings: MountSettings
  mkdir: boolean
  log: (line: string) => void
  /** The server's log file, for the status file (undefined: its stderr, a foreground server). */
  logFile?: string
  /** What opening the volume recovered, for the status file (null: nothing to recover, PostgreSQL). */
  recovery?: (volume: V) => RecoveryInfo | null
  /** Which FUSE binding serves the mount. */
  binding?: Binding
  /** Resident budget of the server in MiB (default RESIDENT_MIB). */
  residentMib?: number
  /** The ll binding's polling window in microseconds (default POLL_WINDOW_US; 0: no polling). */
  pollUs?: number
  /** The ll binding's session loop: 0 on the JS thread (default LOOP_THREADS), N on N libfuse workers. */
  loopThreads?: number
}

export type Binding = 'll' | 'fuse-native'
export const BINDINGS: readonly Binding[] = ['ll', 'fuse-native']

export class MountError extends Error {}

/**
 * The directory of a mount's status file and of a detached server's log: the data dir, or for a
 * volume on PostgreSQL sharedMountHome of the (prepared, absolute) mountpoint, made here (0700).
 */
export function mountHome(served: Served, mountpoint: string): string {
  if ('dataDir' in served) return path.resolve(served.dataDir)
  const home = sharedMountHome(mountpoint)
  const uid = process.getuid?.() ?? 0
  const parent = path.dirname(home)
  try {
    fs.mkdirSync(parent, {mode: 0o700, recursive: true})
    const st = fs.lstatSync(parent)
    // Another user's (or a symlink) in /tmp: our status file and log must not go there.
    if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) throw new Error(`${parent} is not a directory of uid ${uid} with mode 0700`)
    fs.mkdirSync(home, {mode: 0o700, recursive: true})
  } catch (error) {
    throw new MountError(`cannot make the directory of the mount's status file and log: ${(error as Error).message}`)
  }

  return home
}

/**
 * Check (and with --mkdir create) the mountpoint; returns its absolute path. A directory that is
 * not empty is refused unless `nonempty` (-o nonempty): the mount would hide what it holds.
 */
export function prepareMountpoint(mountpoint: string, mkdir: boolean, nonempty = false): string {
  // path.resolve('') is the working directory: an empty argument must not mount over it.
  if (mountpoint === '') throw new MountError('the mountpoint is an empty string; give the path of a directory')
  let abs = path.resolve(mountpoint)
  let st: fs.Stats
  try {
    st = fs.statSync(abs)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOTCONN') throw new MountError(`${abs} is a dead FUSE mount (its server was killed); clean it up with \`fusermount3 -u ${abs}\``)
    if (code !== 'ENOENT') throw new MountError(`${abs}: ${(error as Error).message}`)
    if (!mkdir) throw new MountError(`mountpoint ${abs} does not exist (use --mkdir to create it)`)
    fs.mkdirSync(abs, {recursive: true})
    st = fs.statSync(abs)
  }

  if (!st.isDirectory()) throw new MountError(`mountpoint ${abs} is not a directory`)
  // The kernel's name for it (mountinfo's, which status and umount match): through any symlink.
  abs = fs.realpathSync(abs)
  if (mountPoints().has(abs)) throw new MountError(`${abs} is already a mount point`)
  if (!nonempty) {
    let entries: string[]
    try {
      entries = fs.readdirSync(abs)
    } catch (error) {
      throw new MountError(`${abs}: ${(error as Error).message}`)
    }

    if (entries.length > 0) {
      const what = entries.length === 1 ? '1 entry, which the mount would hide' : `${entries.length} entries, which the mount would hide`
      throw new MountError(`mountpoint ${abs} is not empty (${what}); use -o nonempty to mount over it`)
    }
  }

  return abs
}

/**
 * Serve in this process until SIGINT, SIGTERM, SIGHUP or an outside unmount. `onMounted` runs
 * once the kernel has the mount. Resolves after the volume was closed cleanly.
 */
export async function serve<V extends Volume>(opts: ServeOptions<V>, onMounted: (volume: V) => void): Promise<void> {
  const {settings} = opts
  const mountpoint = prepareMountpoint(opts.mountpoint, opts.mkdir, settings.nonempty)
  const readOnly = settings.readOnly
  const volume = opts.open(readOnly)
  const residentBudget = (opts.residentMib ?? RESIDENT_MIB) * 1024 * 1024
  const binding = opts.binding ?? 'll'
  let onEnded = (): void => {}
  // The resident budget: looked at every CHECK_EVERY requests (and by a timer). A release only
  // when it can give back RELEASE_MIN since the last one: the heap, the dirty pages and the hash
  // indexes stay, so right after a release that left the server near the budget another one frees
  // little and every lookup faults its pages back in.
  let pageReleases = 0
  let floor = 0
  let faultsSeen = 0
  const checkResident = (): void => {
    const rss = residentBytes()
    if (rss > residentBudget && rss - floor >= RELEASE_MIN && volume.releaseCleanPages !== undefined) {
      volume.releaseCleanPages()
      pageReleases++
      floor = residentBytes()
    }
  }

  let requests = 0
  const onRequest = (): void => {
    if (++requests % CHECK_EVERY !== 0) return
    const faults = threadFaults()
    if (faults - faultsSeen < FAULTS_PER_LOOK) return
    faultsSeen = faults
    checkResident()
  }

  let adapter: {mount(): Promise<void>; unmount(): Promise<void>; counters(): AdapterCounters}
  let core: FileSystem
  // Stops listening for the changes of a shared volume's other mounts (Volume.watch).
  let unwatch = async (): Promise<void> => {}
  // The mount's source is the data dir or the URL: mountinfo, df and `razorfs status` show it.
  const {served} = opts
  const shared = 'meta' in served
  const fsname = shared ? served.meta : path.resolve(served.dataDir)
  const what = shared ? `volume ${fsname}` : `image ${fsname}`
  let home: string
  try {
    home = mountHome(served, mountpoint)
  } catch (error) {
    volume.close()
    throw error
  }

  try {
    if (binding === 'll') {
      // libfuse 3 passes the caller: new files belong to it; the kernel checks permissions.
      core = new FileSystem(volume, {readOnly, checkPermissions: false})
      const ll = new LowLevelAdapter(core, mountpoint, {
        settings,
        fsname,
        log: opts.log,
        onEnded: () => onEnded(),
        onRequest,
        pollUs: opts.pollUs,
        loopThreads: opts.loopThreads,
        // Other hosts change a shared volume: their changes are notified (watch, below).
        defaults: shared ? SHARED_DEFAULTS : undefined,
      })
      adapter = ll
      // Before the mount: nothing is cached yet, and a change in between is not missed.
      if (volume.watch !== undefined) unwatch = await volume.watch(ll.changes(), opts.log)
    } else {
      core = new FileSystem(volume, {readOnly})
      adapter = new FuseNativeAdapter(core, mountpoint, {settings, fsname, log: opts.log, onRequest})
    }

    await adapter.mount()
  } catch (error) {
    await unwatch()
    volume.close()
    throw new MountError(`cannot mount on ${mountpoint}: ${(error as Error).message}`)
  }

  const status = new StatusWriter(
    {
      dataDir: shared ? null : fsname,
      meta: shared ? fsname : null,
      home,
      mountpoint,
      binding,
      options: settings.given,
      readOnly,
      log: opts.logFile ?? null,
      recovery: opts.recovery?.(volume) ?? null,
      mountedAt: new Date(),
    },
    // A volume on PostgreSQL maps nothing: no budget, no page releases.
    () => ({counters: adapter.counters(), residentBudgetBytes: shared ? null : residentBudget, pageReleases: shared ? null : pageReleases}),
    opts.log,
  )
  status.start()
  const ended = new Promise<void>(resolve => {
    let stopping = false
    // The host first writes back what the commit's sync would wait for, in the libuv pool, while
    // requests are served: the sync then holds the JS thread only for what was written since. It
    // is waited for half an interval at most (a slow or hanging host disk), and a later commit
    // does not wait for one still running (writeBackAhead resolves at once).
    let committing = false
    const commit = setInterval(() => {
      if (committing) return
      committing = true
      let timer: NodeJS.Timeout | undefined
      const waited = new Promise<void>(resolve => {
        timer = setTimeout(resolve, (COMMIT_INTERVAL_S * 1000) / 2)
      })
      void Promise.race([core.writeBackAhead().catch(() => {}), waited])
        .then(() => {
          if (!stopping) core.syncAll()
        })
        .catch((error: unknown) => opts.log(`commit: ${(error as Error).message}`))
        .finally(() => {
          clearTimeout(timer)
          committing = false
        })
    }, COMMIT_INTERVAL_S * 1000)
    // fuse-native does not notice an outside unmount; the ll session ends by itself (after a lazy
    // unmount, once the last file open on the detached mount is closed: it serves them until then).
    const watch =
      binding === 'll'
        ? undefined
        : setInterval(() => {
            if (!mountPoints().has(mountpoint)) void stop('unmounted from outside', false)
          }, 500)
    // Between requests too (commits, checkpoints).
    const resident = setInterval(checkResident, 100)

    const stop = async (why: string, unmount: boolean): Promise<void> => {
      if (stopping) return
      stopping = true
      clearInterval(commit)
      clearInterval(watch)
      clearInterval(resident)
      status.closing()
      opts.log(`${why}: unmounting`)
      if (unmount) {
        try {
          await adapter.unmount()
        } catch (error) {
          opts.log(`unmount: ${(error as Error).message}`)
        }
      } else {
        await adapter.unmount().catch(() => {})
      }

      try {
        await unwatch()
        volume.close()
        status.closed()
        opts.log(`${what} closed cleanly`)
      } catch (error) {
        status.closeFailed((error as Error).message)
        opts.log(`closing the ${what}: ${(error as Error).message}`)
      }

      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.removeListener(sig, handlers[sig])
      resolve()
    }

    onEnded = () => void stop('unmounted from outside', false)
    const handlers = {
      SIGINT: () => void stop('SIGINT', true),
      SIGTERM: () => void stop('SIGTERM', true),
      SIGHUP: () => void stop('SIGHUP', true),
    }
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, handlers[sig])
  })
  // After the handlers: what onMounted prints tells the world the server is up, and a signal sent
  // on seeing it must find them (a pipe write may be read before this thread runs on).
  onMounted(volume)
  await ended
}
