/**
 * `razorfs mount -o`: every option razorfs takes, parsed and checked in one place before anything
 * is opened, mounted or detached, for both bindings. libfuse 3's low-level API parses only the
 * kernel's and fusermount's options; the ones libfuse 2's high-level API implemented for its
 * filesystems (timeouts, owner and mode presentation, page cache modes) are implemented by the ll
 * adapter from the settings made here, and handed to libfuse 2 as they are for fuse-native.
 */

/** An option without a value, or with one (`name=`). */
interface OptionSpec {
  name: string
  /** What the value must be; absent for an option without one. */
  value?: 'seconds' | 'id' | 'octal' | 'size'
  /** One line for --help. */
  help: string
}

/** The documented options, in README's order (README.md, "Mounting", lists the same). */
export const MOUNT_OPTIONS: readonly OptionSpec[] = [
  {name: 'ro', help: 'read-only: changes fail with EROFS, nothing is written'},
  {name: 'allow_other', help: 'other users may use the mount'},
  {name: 'allow_root', help: 'root may use the mount too'},
  {name: 'default_permissions', help: 'the kernel checks permissions (always on)'},
  {name: 'auto_unmount', help: 'the mount goes when the server dies'},
  {name: 'kernel_cache', help: "keep a file's page cache across opens (ll: default)"},
  {name: 'auto_cache', help: "keep it while the file's mtime and size stay (--meta: default)"},
  {name: 'noatime', help: 'do not update access times'},
  {name: 'nodev', help: "device files cannot be opened (libfuse's default)"},
  {name: 'nosuid', help: "setuid and setgid bits are ignored (libfuse's default)"},
  {name: 'noexec', help: 'files cannot be executed'},
  {name: 'uid', value: 'id', help: 'every file shows owner N'},
  {name: 'gid', value: 'id', help: 'every file shows group N'},
  {name: 'umask', value: 'octal', help: 'every file shows mode 0777 & ~M (octal)'},
  {name: 'max_read', value: 'size', help: 'largest read request, in bytes'},
  {name: 'entry_timeout', value: 'seconds', help: 'seconds the kernel caches names (ll: 3600, fuse-native: 1)'},
  {name: 'attr_timeout', value: 'seconds', help: 'seconds it caches attributes (ll: 3600, fuse-native: 1)'},
  {name: 'negative_timeout', value: 'seconds', help: 'seconds it caches missing names (ll: 3600, fuse-native and --meta: 0)'},
  {name: 'nonempty', help: 'mount over a directory that is not empty'},
  {name: 'nopassthrough', help: 'file contents go through the server (ll, local image: the kernel reads and writes them itself)'},
]

/**
 * Options accepted but not documented: the other halves of the flags above (the default of each)
 * and the kernel's other mount flags; libfuse takes all of them as they are.
 */
const QUIET_FLAGS = ['passthrough', 'rw', 'atime', 'relatime', 'dev', 'suid', 'exec', 'sync', 'async', 'dirsync']

/** What `-o` asked for, as the adapters use it. */
export interface MountSettings {
  /** The options as given (split on commas), for the status file and the log. */
  given: string[]
  readOnly: boolean
  /** Options for the kernel and fusermount, which both bindings pass to libfuse as they are. */
  kernel: string[]
  /**
   * Seconds the kernel may cache a name and its attributes, and a name that does not exist, if -o
   * said (else the binding's default: LL_TIMEOUTS, SHARED_DEFAULTS, DEFAULT_TIMEOUTS).
   */
  entryTimeout?: number
  attrTimeout?: number
  negativeTimeout?: number
  /** Presentation: the owner, group and permission mask every file shows (unset: its own). */
  uid?: number
  gid?: number
  umask?: number
  /** The page cache across opens: kept always (kernel_cache), or while mtime and size stay (auto_cache). */
  cache?: 'kernel_cache' | 'auto_cache'
  maxRead?: number
  nonempty: boolean
  /** Kernel FUSE passthrough of file contents where the binding and volume allow it (-o nopassthrough: off). */
  passthrough: boolean
}

/** A bad `-o`: names the option; the mount command exits 16 with it. */
export class MountOptionError extends Error {}

/** libfuse's defaults, which razorfs keeps on fuse-native. */
export const DEFAULT_TIMEOUTS = {entryTimeout: 1, attrTimeout: 1, negativeTimeout: 0} as const

/**
 * The ll binding's defaults for names, attributes and missing names: an hour, as a local
 * filesystem keeps them. Every change to the image goes through this one mount and the kernel
 * updates or drops what it caches for each change it makes (a create replaces the cached miss), so
 * what it caches longer is never stale (docs/ARCHITECTURE.md, "FUSE bindings").
 */
export const LL_TIMEOUTS = {entryTimeout: 3600, attrTimeout: 3600, negativeTimeout: 3600} as const

/**
 * The defaults of a mount of a volume on PostgreSQL (mount --meta): other hosts change it behind
 * the kernel's back, and each change they commit is notified to this mount, which drops what its
 * kernel caches of it (Volume.watch), so names and attributes are cached as long as on a local
 * image. A file's page cache is kept across opens only while its mtime and size stay (auto_cache):
 * an open reads the attributes from the database, so an open after another host's change reads
 * the new data even before the notification has come (docs/ARCHITECTURE.md, "Coherence").
 */
export const SHARED_DEFAULTS = {...LL_TIMEOUTS, negativeTimeout: 0, cache: 'auto_cache'} as const

const SPECS = new Map(MOUNT_OPTIONS.map(o => [o.name, o]))
const KERNEL_FLAGS = new Set([
  'ro',
  'rw',
  'allow_other',
  'allow_root',
  'default_permissions',
  'auto_unmount',
  'noatime',
  'atime',
  'relatime',
  'nodev',
  'dev',
  'nosuid',
  'suid',
  'noexec',
  'exec',
  'sync',
  'async',
  'dirsync',
])
/** Largest uid or gid: (uid_t)-1 means "no change" to the kernel. */
const ID_MAX = 2 ** 32 - 2
/** Longest timeout taken: a year is "for ever" for a cache. */
const SECONDS_MAX = 365 * 24 * 3600

function parseValue(name: string, kind: NonNullable<OptionSpec['value']>, text: string): number {
  const bad = (what: string) => new MountOptionError(`mount option '${name}=${text}': ${what}`)
  switch (kind) {
    case 'seconds': {
      if (!/^(\d+\.?\d*|\.\d+)$/.test(text)) throw bad('not a number of seconds (e.g. 0, 0.5, 30)')
      const n = Number(text)
      if (n > SECONDS_MAX) throw bad(`more than ${SECONDS_MAX} seconds (a year)`)
      return n
    }

    case 'id': {
      if (!/^\d+$/.test(text) || Number(text) > ID_MAX) throw bad(`not a numeric ${name} (0 to ${ID_MAX})`)
      return Number(text)
    }

    case 'octal': {
      if (!/^[0-7]{1,4}$/.test(text) || Number.parseInt(text, 8) > 0o777) throw bad('not an octal mask from 0 to 0777')
      return Number.parseInt(text, 8)
    }

    case 'size': {
      if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 2 ** 32 - 1) throw bad('not a number of bytes from 1 to 4294967295')
      return Number(text)
    }
  }
}

/**
 * Parse `-o` (comma-separated; a later option overrides an earlier one, as for mount(8)). Throws
 * MountOptionError naming the first bad option.
 */
export function parseMountOptions(text: string | undefined): MountSettings {
  const given = (text ?? '')
    .split(',')
    .map(o => o.trim())
    .filter(o => o !== '')
  const settings: MountSettings = {given, readOnly: false, kernel: [], nonempty: false, passthrough: true}
  const flags = new Map<string, true>()
  let maxRead: number | undefined
  for (const option of given) {
    const eq = option.indexOf('=')
    const name = eq < 0 ? option : option.slice(0, eq)
    const spec = SPECS.get(name)
    const known = spec !== undefined || QUIET_FLAGS.includes(name)
    if (!known) throw new MountOptionError(`unknown mount option '${option}' (known: ${MOUNT_OPTIONS.map(o => (o.value ? `${o.name}=` : o.name)).join(', ')})`)
    if (spec?.value === undefined) {
      if (eq >= 0) throw new MountOptionError(`mount option '${option}': ${name} takes no value`)
      if (name === 'kernel_cache' || name === 'auto_cache') settings.cache = name
      else if (name === 'nonempty') settings.nonempty = true
      else if (name === 'passthrough' || name === 'nopassthrough') settings.passthrough = name === 'passthrough'
      else if (name === 'ro' || name === 'rw') settings.readOnly = name === 'ro'
      else flags.set(name, true)
      continue
    }

    if (eq < 0 || eq === option.length - 1) throw new MountOptionError(`mount option '${option}' needs a value (${optionUsage(spec)})`)
    const value = parseValue(name, spec.value, option.slice(eq + 1))
    switch (name) {
      case 'uid':
        settings.uid = value
        break
      case 'gid':
        settings.gid = value
        break
      case 'umask':
        settings.umask = value
        break
      case 'max_read':
        maxRead = value
        break
      case 'entry_timeout':
        settings.entryTimeout = value
        break
      case 'attr_timeout':
        settings.attrTimeout = value
        break
      case 'negative_timeout':
        settings.negativeTimeout = value
        break
    }
  }

  if (flags.has('allow_other') && flags.has('allow_root')) throw new MountOptionError("mount options 'allow_other' and 'allow_root' exclude each other")
  settings.kernel = [settings.readOnly ? 'ro' : 'rw', ...[...flags.keys()].filter(f => KERNEL_FLAGS.has(f))]
  if (maxRead !== undefined) {
    settings.maxRead = maxRead
    settings.kernel.push(`max_read=${maxRead}`)
  }

  return settings
}

/**
 * The options libfuse 2 gets for fuse-native: the kernel's, and those its high-level API
 * implements itself (the same names and meanings razorfs gives them on the ll binding).
 */
export function libfuse2Options(s: MountSettings): string[] {
  const out = [...s.kernel]
  if (s.cache !== undefined) out.push(s.cache)
  if (s.uid !== undefined) out.push(`uid=${s.uid}`)
  if (s.gid !== undefined) out.push(`gid=${s.gid}`)
  if (s.umask !== undefined) out.push(`umask=${s.umask.toString(8).padStart(3, '0')}`)
  const {entryTimeout, attrTimeout, negativeTimeout} = DEFAULT_TIMEOUTS
  out.push(
    `entry_timeout=${s.entryTimeout ?? entryTimeout}`,
    `attr_timeout=${s.attrTimeout ?? attrTimeout}`,
    `negative_timeout=${s.negativeTimeout ?? negativeTimeout}`,
  )
  // libfuse 2 refuses a non-empty mountpoint itself (as root); razorfs has checked it already.
  if (s.nonempty) out.push('nonempty')
  return out
}

/** An option's value for libfuse's option parser: a comma or a backslash is escaped with a backslash. */
export function escapeOptionValue(value: string): string {
  return value.replaceAll(/[\\,]/g, c => `\\${c}`)
}

/** `uid=N`, `umask=M`, `entry_timeout=S`, `ro`. */
export function optionUsage(o: OptionSpec): string {
  return o.value === undefined ? o.name : `${o.name}=${{id: 'N', size: 'N', octal: 'M', seconds: 'S'}[o.value]}`
}

/** The -o list of `razorfs mount --help`, one option a line. */
export function mountOptionsHelp(): string {
  const width = Math.max(...MOUNT_OPTIONS.map(o => optionUsage(o).length))
  return MOUNT_OPTIONS.map(o => `  ${optionUsage(o).padEnd(width)}  ${o.help}`).join('\n')
}
