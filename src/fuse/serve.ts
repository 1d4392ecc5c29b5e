/**
 * Serving a volume on a mountpoint: open it (the caller says how: the image of a data dir today),
 * mount, keep the commit interval, notice signals and outside unmounts, and end with a clean close.
 */
import {spawn} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

import {FileSystem} from '../vfs/filesystem.js'
import type {Volume} from '../vfs/volume.js'
import {FuseNativeAdapter} from './fuse-native-adapter.js'
import {LowLevelAdapter} from './ll-adapter.js'
import {mountPoints} from './mountinfo.js'

/** Seconds between WAL fsyncs: older acknowledged changes survive a power loss (like ext4 commit=5). */
export const COMMIT_INTERVAL_S = 5

/**
 * Resident set size (MiB) above which the server drops the clean pages of the image's mappings
 * (checked ten times a second; `ServeOptions.residentMib`). Pages the mount touches are read back
 * from the page cache as needed, so a 1M-inode image does not keep all of its metadata resident.
 */
export const RESIDENT_MIB = 128
/** Growth of the resident set since the last release left it that makes another one worth it. */
const RELEASE_MIN = 8 * 1024 * 1024

export interface ServeOptions<V extends Volume> {
  /** What is served, for the log (the data dir). */
  dataDir: string
  /** Open (read-only or not) the volume to serve, once the mountpoint has been checked. */
  open: (readOnly: boolean) => V
  mountpoint: string
  /** -o options, split on commas. */
  options: string[]
  mkdir: boolean
  log: (line: string) => void
  /** Which FUSE binding serves the mount. */
  binding?: Binding
  /** Resident budget of the server in MiB (default RESIDENT_MIB). */
  residentMib?: number
  /** The ll binding's polling window in microseconds (default POLL_WINDOW_US; 0: no polling). */
  pollUs?: number
}

export type Binding = 'll' | 'fuse-native'
export const BINDINGS: readonly Binding[] = ['ll', 'fuse-native']

export class MountError extends Error {}

/** Check (and with --mkdir create) the mountpoint; returns its absolute path. */
export function prepareMountpoint(mountpoint: string, mkdir: boolean): string {
  const abs = path.resolve(mountpoint)
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
  if (mountPoints().has(abs)) throw new MountError(`${abs} is already a mount point`)
  return abs
}

/** Options that go to the kernel/libfuse as they are; `ro` is also ours (read-only image). */
const PASSED =
  /^(allow_other|allow_root|ro|rw|default_permissions|auto_unmount|kernel_cache|auto_cache|noatime|atime|relatime|nodev|dev|nosuid|suid|noexec|exec|sync|async|dirsync|max_read=\d+|umask=[0-7]+|uid=\d+|gid=\d+|entry_timeout=[\d.]+|attr_timeout=[\d.]+|negative_timeout=[\d.]+)$/

export function parseOptions(text: string | undefined): string[] {
  const options = (text ?? '')
    .split(',')
    .map(o => o.trim())
    .filter(o => o !== '')
  for (const o of options) if (!PASSED.test(o)) throw new MountError(`unknown or unsupported mount option '${o}'`)
  return options
}

/**
 * Serve in this process until SIGINT, SIGTERM, SIGHUP or an outside unmount. `onMounted` runs
 * once the kernel has the mount. Resolves after the volume was closed cleanly.
 */
export async function serve<V extends Volume>(opts: ServeOptions<V>, onMounted: (volume: V) => void): Promise<void> {
  const mountpoint = prepareMountpoint(opts.mountpoint, opts.mkdir)
  const readOnly = opts.options.includes('ro')
  const volume = opts.open(readOnly)
  const residentBudget = (opts.residentMib ?? RESIDENT_MIB) * 1024 * 1024
  const binding = opts.binding ?? 'll'
  let onEnded = (): void => {}
  let adapter: {mount(): Promise<void>; unmount(): Promise<void>}
  let core: FileSystem
  try {
    if (binding === 'll') {
      // libfuse 3 passes the caller: new files belong to it; the kernel checks permissions.
      core = new FileSystem(volume, {readOnly, checkPermissions: false})
      adapter = new LowLevelAdapter(core, mountpoint, {options: opts.options, log: opts.log, onEnded: () => onEnded(), pollUs: opts.pollUs})
    } else {
      core = new FileSystem(volume, {readOnly})
      adapter = new FuseNativeAdapter(core, mountpoint, {options: opts.options, log: opts.log})
    }

    await adapter.mount()
  } catch (error) {
    volume.close()
    throw new MountError(`cannot mount on ${mountpoint}: ${(error as Error).message}`)
  }

  onMounted(volume)
  await new Promise<void>(resolve => {
    let stopping = false
    const commit = setInterval(() => {
      try {
        core.syncAll()
      } catch (error) {
        opts.log(`commit: ${(error as Error).message}`)
      }
    }, COMMIT_INTERVAL_S * 1000)
    const watch = setInterval(() => {
      if (!mountPoints().has(mountpoint)) void stop('unmounted from outside', false)
    }, 500)
    // Often enough that the pages touched between two checks stay few at full request rate (a
    // create or lookup touches pages all over the entry table and string heap of a large image).
    // A release only when it can give back RELEASE_MIN since the last one: the heap, the dirty
    // pages and the hash indexes stay, so right after a release that left the server near the
    // budget another one frees little and every lookup faults its pages back in.
    let floor = 0
    const resident = setInterval(() => {
      const rss = process.memoryUsage.rss()
      if (rss > residentBudget && rss - floor >= RELEASE_MIN && volume.releaseCleanPages !== undefined) {
        volume.releaseCleanPages()
        floor = process.memoryUsage.rss()
      }
    }, 100)

    const stop = async (why: string, unmount: boolean): Promise<void> => {
      if (stopping) return
      stopping = true
      clearInterval(commit)
      clearInterval(watch)
      clearInterval(resident)
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
        volume.close()
        opts.log(`image ${opts.dataDir} closed cleanly`)
      } catch (error) {
        opts.log(`closing the image: ${(error as Error).message}`)
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
}

/**
 * Start `razorfs mount -f` detached, logging to `<data-dir>/razorfs.log`, and return once the
 * mount is live (or throw with the reason the child gave). `prepareDataDir` makes the data dir
 * (for the log) once the mountpoint has been checked.
 */
export async function detach(args: string[], dataDir: string, mountpoint: string, prepareDataDir: (dir: string) => void): Promise<{pid: number; log: string}> {
  const abs = prepareMountpoint(mountpoint, args.includes('--mkdir'))
  prepareDataDir(dataDir)
  const log = path.join(dataDir, 'razorfs.log')
  const fd = fs.openSync(log, 'a', 0o600)
  const start = fs.fstatSync(fd).size
  const bin = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../bin/run.js')
  const child = spawn(process.execPath, [bin, 'mount', '-f', ...args], {detached: true, stdio: ['ignore', fd, fd]})
  fs.closeSync(fd)
  let exited: number | null | undefined
  child.on('exit', code => {
    exited = code
  })
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (mountPoints().has(abs)) {
      child.unref()
      return {pid: child.pid!, log}
    }

    if (exited !== undefined) {
      const lines = fs.readFileSync(log, 'utf8').slice(start).trim().split('\n')
      throw new MountError(lines.at(-1)?.replace(/^razorfs: /, '') || `the server exited with status ${exited}`)
    }

    await new Promise(resolve => setTimeout(resolve, 50))
  }

  child.kill('SIGTERM')
  throw new MountError(`the mount did not come up within 30 s; see ${log}`)
}
