import {Args} from '@oclif/core'

import {RazorCommand} from '../base-command.js'
import {EXIT, EXIT_MOUNT_FAILURE} from '../exit-codes.js'
import {type RazorMount, type ServerStatus, namesMount, razorMounts, readStatus, realTarget, serverAlive} from '../fuse/status.js'
import {type CheckpointState, checkpointState} from '../storage/index.js'
import {displayPgUrl, isPgUrl} from '../volume-url.js'

export interface MountReport {
  mountpoint: string
  /** The data dir of an image; null for a volume on PostgreSQL. */
  dataDir: string | null
  /** The URL (without its password) of a volume on PostgreSQL; null for an image. */
  meta: string | null
  /** live: its server runs; dead: its server is gone (clean it up with razorfs umount --force); unknown: no status file names it. */
  state: RazorMount['state']
  /** The server's pid (a dead mount: the pid its server had; null: unknown). */
  pid: number | null
  /** Seconds since the mount (live mounts). */
  uptimeS: number | null
  /** What the server last wrote in DATA-DIR/razorfs.status (null: none, or a dead server's). */
  server: ServerStatus | null
  /** The last checkpoint of the image, from its header (null: none, or a volume on PostgreSQL, which has none). */
  checkpoint: {generation: number; lsn: number; time: string} | null
}

export default class Status extends RazorCommand<typeof Status> {
  static override summary = 'Show the razorfs mounts: server, uptime, last checkpoint and recovery, requests per second, cache.'
  static override description = `Lists every razorfs mount of this system (their type is fuse.razorfs, their source the data dir, or the URL of a volume on PostgreSQL without its password), or the one of TARGET (a mountpoint, a data dir or such a URL) or of --data-dir. For each: the mountpoint, the data dir, the state (live; dead: its server is gone, clean it up with razorfs umount --force), the server's pid, binding, options and log, its uptime, the image's last checkpoint, what the mount recovered, the requests served (per second over the last second, and by operation since the mount) and the cache figures (resident memory against the server's budget, clean-page releases, opens that kept or dropped the page cache).

The figures come from DATA-DIR/razorfs.status (for a volume on PostgreSQL, /tmp/razorfs-UID/mount-HASH/razorfs.status), which the server replaces every second and removes when it has closed the image cleanly; a status file whose process is gone (or is another process now) is never shown as live. A mount of a volume on PostgreSQL has no checkpoint, recovery or page budget: those lines are left out.

With no mount, prints nothing (exit 0). A TARGET that is not mounted is an error (exit 32, as umount(8)'s "not mounted").`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %>', description: 'Every razorfs mount.'},
    {command: '<%= config.bin %> <%= command.id %> /mnt/rz --json', description: 'The mount on /mnt/rz, as JSON.'},
  ]

  static override enableJsonFlag = true
  static override args = {
    target: Args.string({description: 'A mountpoint, a data dir or the URL of a volume on PostgreSQL (default: every razorfs mount).'}),
  }

  public async run(): Promise<{mounts: MountReport[]}> {
    const {target} = this.args
    if (target === '') this.error("TARGET is an empty string; give a mountpoint or a data dir (see 'razorfs status --help')", {exit: EXIT.USAGE})
    const wanted = target ?? (this.flags['data-dir'] === undefined ? undefined : this.dataDir())
    const found = razorMounts().filter(m => wanted === undefined || namesMount(m, wanted))
    if (wanted !== undefined && found.length === 0) {
      const stale = readStatus(realTarget(wanted))
      const last = stale !== undefined && !serverAlive(stale) ? ` (its last server, pid ${stale.pid}, is gone)` : ''
      this.error(`${isPgUrl(wanted) ? displayPgUrl(wanted) : realTarget(wanted)}: not mounted${last}`, {exit: EXIT_MOUNT_FAILURE})
    }

    const reports = found.map(m => report(m))
    if (!this.jsonEnabled()) process.stdout.write(reports.map(r => render(r)).join('\n'))
    return {mounts: reports}
  }
}

function report(m: RazorMount): MountReport {
  const cp: CheckpointState | undefined = m.dataDir === null ? undefined : checkpointState(m.dataDir)
  const live = m.state === 'live' && m.status !== undefined
  return {
    mountpoint: m.mountpoint,
    dataDir: m.dataDir,
    meta: m.meta,
    state: m.state,
    pid: m.status?.pid ?? (m.state === 'dead' ? (readStatus(m.home)?.pid ?? null) : null),
    uptimeS: live ? Math.max(0, Math.round((Date.now() - Date.parse(m.status!.mountedAt)) / 1000)) : null,
    server: live ? m.status! : null,
    checkpoint: cp === undefined ? null : {generation: cp.generation, lsn: cp.lsn, time: new Date(cp.timeMs).toISOString()},
  }
}

const n = (x: number) => x.toLocaleString('en-US')
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MiB`

/** 3d 4h, 3h 12m, 12m 5s, 5s. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  const parts: Array<[number, string]> = [
    [Math.floor(s / 86_400), 'd'],
    [Math.floor(s / 3600) % 24, 'h'],
    [Math.floor(s / 60) % 60, 'm'],
    [s % 60, 's'],
  ]
  const first = parts.findIndex(([v]) => v > 0)
  if (first < 0) return '0s'
  return parts
    .slice(first, first + 2)
    .filter(([v], i) => i === 0 || v > 0)
    .map(([v, unit]) => `${v}${unit}`)
    .join(' ')
}

function render(r: MountReport): string {
  const rows: Array<[string, string]> = [r.meta === null ? ['data dir', r.dataDir ?? '-'] : ['meta', r.meta]]
  const s = r.server
  let head: string
  if (r.state === 'dead') {
    head = `${r.mountpoint}: dead (its server${r.pid === null ? '' : `, pid ${r.pid},`} is gone: "Transport endpoint is not connected")`
    rows.push([
      'clean up',
      `razorfs umount --force ${r.mountpoint}  (${r.meta === null ? 'the next mount recovers the image' : 'the next mount of the volume frees what it held'})`,
    ])
  } else if (s === null) {
    head = `${r.mountpoint}: live (no status file ${r.meta === null ? `in ${r.dataDir}` : 'for it'}: its server cannot write one, or is older than razorfs status)`
  } else {
    head = `${r.mountpoint}: ${s.state === 'serving' ? 'live' : s.state}`
    rows.push(
      ['server', `pid ${s.pid}, binding ${s.binding}, up ${duration(r.uptimeS ?? 0)} (mounted ${s.mountedAt})`],
      ['options', s.options.length === 0 ? '(none)' : s.options.join(',')],
      ['log', s.log ?? 'stderr (a foreground server)'],
    )
  }

  if (r.checkpoint !== null) {
    const ago = duration((Date.now() - Date.parse(r.checkpoint.time)) / 1000)
    rows.push(['checkpoint', `#${n(r.checkpoint.generation)} at ${r.checkpoint.time} (${ago} ago), log position ${n(r.checkpoint.lsn)}`])
  }

  if (s !== null) {
    const rec = s.recovery
    if (r.meta === null)
      rows.push([
        'recovery',
        rec === null
          ? '-'
          : rec.wasClean
            ? 'none needed: the image was clean at mount'
            : `recovered ${n(rec.transactions)} transactions at mount${rec.tornBytes > 0 ? `, discarded a torn tail of ${n(rec.tornBytes)} bytes` : ''}`,
      ])
    const top = Object.entries(s.ops.byOp)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 6)
      .map(([op, count]) => `${op} ${n(count)}`)
    rows.push(['requests', `${s.ops.perSecond}/s now, ${n(s.ops.total)} since mount${top.length === 0 ? '' : ` (${top.join(', ')})`}`])
    const c = s.cache
    const pageCache = c.pageCache === null ? '' : `; page cache kept at ${n(c.pageCache.kept)} opens, dropped at ${n(c.pageCache.dropped)}`
    const budget = c.residentBudgetBytes === null ? '' : ` of a ${mib(c.residentBudgetBytes)} budget, ${n(c.pageReleases ?? 0)} clean-page releases`
    rows.push(['cache', `resident ${mib(c.residentBytes)}${budget}${pageCache}`])
  }

  const width = Math.max(...rows.map(([k]) => k.length))
  return `${head}\n${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n')}\n`
}
