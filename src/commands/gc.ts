import {Flags} from '@oclif/core'

import {RazorCommand, metaFlag} from '../base-command.js'
import {sharedGc, type SharedGcReport} from '../inspect/shared.js'
import {readStatus, serverAlive} from '../fuse/status.js'
import {type GcReport, gcImage, renderFigures} from '../gc/index.js'
import {Progress} from '../progress.js'
import {ImageError} from '../storage/index.js'
import {humanBytes} from '../units.js'

export default class Gc extends RazorCommand<typeof Gc> {
  static override aliases = ['compact']
  static override summary = 'Give back the space an image no longer uses (offline; compact is the same command).'
  static override description = `Rebuilds the image of the data dir so that its files hold only what is live: free inode and entry records (the "reclaimable" of razorfs stats) and free string heap bytes are dropped, the indexes are sized to their contents, and wal.log is cut to its 1 MiB minimum. Each mapped file keeps its 256 KiB full-disk reserve. Contents (data/) are shared with the rebuilt image: they are neither copied nor moved.

gc renumbers inodes: they are numbered again from 1 in depth-first order. Everything else stays: names and directory order, hard links, symlinks, device nodes, FIFOs, sockets, modes, owners, times (ns), sizes, xattrs, contents, the image's UUID.

Offline only: gc takes the image's lock and refuses an image that is mounted or otherwise in use (naming the mountpoint and the server's pid). An image that was not closed cleanly is recovered first, as a mount would.

Crash-safe: the new image is built in a staging directory inside the data dir, checked against the old one (every name, inode and attribute), then put in place by renames. Killed at any moment, gc leaves the old image or the new one: the next read-write open (mount, gc, fsck) finishes an interrupted swap, and read-only commands read the new image meanwhile.

With --meta URL (a volume in PostgreSQL), there is nothing for gc to rebuild: freed inodes, entries and blocks are rows deleted when they are freed, and PostgreSQL's autovacuum gives their space back to the tables. gc checks that the volume opens and says so in one line; it changes nothing.

--dry-run opens the image read-only and reports what gc would give back; nothing is written. On a terminal, a progress bar on stderr follows each phase. Prints one line ("razorfs: gc gave back ..."); --verbose (and --dry-run) add the size of each file before and after; --json prints the whole report.`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %> --dry-run', description: 'What gc would give back, changing nothing.'},
    {command: '<%= config.bin %> <%= command.id %> --data-dir /srv/rz', description: 'Compact the image in /srv/rz (not mounted).'},
    {command: '<%= config.bin %> compact --data-dir /srv/rz --json', description: 'The same, through the alias, with a JSON report.'},
  ]

  static override enableJsonFlag = true
  static override flags = {
    'dry-run': Flags.boolean({default: false, description: 'Report what would be given back; change nothing.'}),
    verbose: Flags.boolean({char: 'v', default: false, description: 'Print the size of each file before and after.'}),
    meta: metaFlag('The volume in PostgreSQL at this URL: nothing to compact there (see above); checks that it opens.'),
  }

  public async run(): Promise<GcReport | SharedGcReport> {
    const target = this.volumeTarget(this.flags.meta)
    if (target.kind === 'pg') {
      const report = sharedGc(target.url)
      if (!this.jsonEnabled()) this.log(`razorfs: gc: nothing to compact on PostgreSQL (${report.meta}): ${report.note}`)
      return report
    }

    const dir = target.dataDir
    const dryRun = this.flags['dry-run']
    let report: GcReport
    try {
      report = gcImage(dir, {dryRun, progress: new Progress()})
    } catch (error) {
      throw inUse(error, dir)
    }

    if (!this.jsonEnabled()) {
      if (dryRun || this.flags.verbose) process.stdout.write(renderFigures(report))
      for (const note of report.notes) this.log(`razorfs: note: ${note}`)
      const span = `(${humanBytes(report.before.totalBytes)} → ${humanBytes(report.after.totalBytes)})`
      if (report.unchanged) this.log(`razorfs: gc: nothing to give back (${humanBytes(report.before.totalBytes)})`)
      else if (dryRun) this.log(`razorfs: gc would give back ${humanBytes(report.gaveBack)} ${span}`)
      else this.log(`razorfs: gc gave back ${humanBytes(report.gaveBack)} ${span}`)
    }

    return report
  }
}

/** RZ_LOCKED, said as what it is when a server holds the image: a mount, with its mountpoint. */
function inUse(error: unknown, dir: string): unknown {
  if (!(error instanceof ImageError) || error.code !== 'RZ_LOCKED') return error
  const status = readStatus(dir)
  if (status === undefined || !serverAlive(status)) return new ImageError('RZ_LOCKED', `${error.message}; gc works offline only`)
  return new ImageError(
    'RZ_LOCKED',
    `${dir} is mounted on ${status.mountpoint} (server pid ${status.pid}); gc works offline only: unmount it first (razorfs umount ${status.mountpoint})`,
  )
}
