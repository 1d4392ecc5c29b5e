/**
 * /proc/self/mountinfo, parsed once for everyone (proc(5)): one mount a line,
 * `ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER-OPTIONS`.
 * Paths escape space, tab, newline and backslash as `\ooo` (octal) and are bytes: they are
 * decoded back to the path node:fs would use.
 */
import fs from 'node:fs'

export interface MountEntry {
  /** The mountpoint, unescaped. */
  mountPoint: string
  /** Device major and minor; for a FUSE mount the minor is its connection number (/sys/fs/fuse/connections/N). */
  major: number
  minor: number
  fsType: string
  /** The mount's source, unescaped: a FUSE filesystem's fsname (razorfs: the data dir). */
  source: string
  /** The per-mount options (ro, nosuid, noatime, ...) and the filesystem's own (user_id=, max_read=, ...). */
  mountOptions: string[]
  superOptions: string[]
}

/** Undo mountinfo's `\ooo` escapes; the bytes are UTF-8 like node:fs paths. */
export function unescapeMountPath(field: string): string {
  if (!field.includes('\\')) return field
  const latin1 = Buffer.from(field, 'utf8').toString('latin1')
  const raw = latin1.replaceAll(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)))
  return Buffer.from(raw, 'latin1').toString('utf8')
}

/** Parse mountinfo text (exported for tests); lines that do not parse are skipped. */
export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = []
  for (const line of text.split('\n')) {
    const fields = line.split(' ')
    const dash = fields.indexOf('-', 6)
    const device = fields[2]?.split(':')
    if (fields.length < 7 || device?.length !== 2 || dash < 0) continue
    out.push({
      mountPoint: unescapeMountPath(fields[4]),
      major: Number(device[0]),
      minor: Number(device[1]),
      fsType: fields[dash + 1] ?? '',
      source: unescapeMountPath(fields[dash + 2] ?? ''),
      mountOptions: fields[5].split(','),
      superOptions: (fields[dash + 3] ?? '').split(','),
    })
  }

  return out
}

export function mounts(): MountEntry[] {
  return parseMountInfo(fs.readFileSync('/proc/self/mountinfo', 'utf8'))
}

/** Every mountpoint of this mount namespace. */
export function mountPoints(): Set<string> {
  return new Set(mounts().map(m => m.mountPoint))
}

/** The last (topmost) mount on `mountPoint` (absolute), if any. */
export function findMount(mountPoint: string): MountEntry | undefined {
  return mounts()
    .filter(m => m.mountPoint === mountPoint)
    .at(-1)
}
