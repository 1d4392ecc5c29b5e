import {Flags} from '@oclif/core'

import {metaFlag, RazorCommand} from '../base-command.js'
import {migrate, MigrateError, type MigrateReport} from '../migrate/migrate.js'
import {Progress} from '../progress.js'
import {renderFailure, renderReport} from '../migrate/report.js'

export default class Migrate extends RazorCommand<typeof Migrate> {
  static override summary = 'Copy the files of a C RAZORFS image into a new razorfs image (or a new volume in PostgreSQL).'
  static override description = `Reads an image of the original C RAZORFS and writes every directory and file into a new razorfs image in the data dir: paths, types, sizes, contents (zlib payloads decompressed), modes and mtimes. Then it verifies the copy (every file's size and sha256 against the source) and prints a summary.

Sources: the C disk layout (/var/lib/razorfs or /tmp/razorfs_data: nodes.dat, strings.dat, file_<inode>) or its older shm layout (/dev/shm: razorfs_nodes, razorfs_strings, razorfs_file_<inode>). Without --from, razorfs looks in /dev/shm, then /var/lib/razorfs, then /tmp/razorfs_data, says what it found there and migrates the first C image. --from DIR takes a directory holding either layout's files (a copy is fine); the layout is told by file names and magic numbers.

The whole source is validated before anything is written. A damaged source (bad magic or version, truncated files, indices out of range, cycles, illegal names such as '/', '.', '..' or empty ones, content files whose header disagrees with their name, ...) is reported entry by entry and nothing is written; with --skip-bad the bad entries, and whatever hangs below them, are left out and listed, and the rest is migrated. The source is only read; --remove-source deletes its files once the new image is written and verified (not if anything was skipped).

The data dir must not hold a razorfs image already (unless --force) and must not be the source's own directory. The new image is built and verified in a staging directory inside the data dir, and only then put in place: a failure leaves the data dir as it was.

The C version's write-ahead log (/tmp/razorfs_wal.log, or --wal FILE) holds metadata only and was never replayed: if found it is read for the report, it is never required.

With --meta URL, the copy goes into a new volume on PostgreSQL, for many hosts to share, instead of the data dir: the volume is made as \`razorfs init --meta\` makes one (refused if the URL's schema holds a volume already, unless --force, which replaces it; never over a schema holding other tables), then filled and verified in one transaction of the database. A failure rolls the whole copy back: the new volume is left empty, never half filled, and the error says so. --dry-run writes nothing there either.`

  static override examples = [
    {
      command: '<%= config.bin %> <%= command.id %> --dry-run',
      description: 'Look for a C RAZORFS image in /dev/shm, /var/lib/razorfs and /tmp/razorfs_data and show what would be copied.',
    },
    {
      command: '<%= config.bin %> <%= command.id %> --from /var/lib/razorfs --data-dir /srv/rz --dry-run',
      description: 'Show what would be copied from a C RAZORFS disk image, write nothing.',
    },
    {
      command: '<%= config.bin %> <%= command.id %> --from /var/lib/razorfs --meta postgres://rz@db.example/files',
      description: 'Migrate a C RAZORFS disk image into a new volume shared by many hosts (database "files" on db.example, schema razorfs).',
    },
    {
      command: '<%= config.bin %> <%= command.id %> --from shm --data-dir /srv/rz --wal /tmp/razorfs_wal.log --skip-bad --json',
      description: 'Migrate the C RAZORFS image of /dev/shm into /srv/rz, leaving out bad entries; report as JSON.',
    },
  ]

  static override enableJsonFlag = true
  static override flags = {
    'dry-run': Flags.boolean({default: false, description: 'Read and check the source, report what would be migrated, write nothing.'}),
    force: Flags.boolean({
      default: false,
      description:
        'Replace an existing razorfs image in the data dir (only once the new one is verified), or volume at --meta (when the copy starts). Its contents are lost.',
    }),
    from: Flags.string({
      description:
        "'shm' (= /dev/shm) or a directory holding a C RAZORFS image (either layout). Default: the first found in /dev/shm, /var/lib/razorfs, /tmp/razorfs_data.",
      helpValue: 'shm|<dir>',
    }),
    meta: metaFlag('Migrate into a new volume in PostgreSQL at this URL (postgres://user@host/database[?schema=name]) instead of the data dir.'),
    'remove-source': Flags.boolean({
      default: false,
      description: 'Delete the source files once the new image is written and verified (kept if anything was skipped).',
      exclusive: ['dry-run'],
    }),
    'skip-bad': Flags.boolean({
      default: false,
      description: 'Leave out bad entries (and what hangs below them), list each with its reason, and migrate the rest.',
    }),
    wal: Flags.string({
      description: "The C version's write-ahead log, read for the report only (default: /tmp/razorfs_wal.log if it exists).",
      helpValue: '<file>',
    }),
  }

  public async run(): Promise<MigrateReport> {
    const flags = this.flags
    const json = this.jsonEnabled()
    const target = this.volumeTarget(flags.meta)
    let report: MigrateReport
    try {
      report = migrate({
        from: flags.from,
        ...(target.kind === 'pg' ? {meta: target.url} : {dataDir: target.dataDir}),
        dryRun: flags['dry-run'],
        force: flags.force,
        skipBad: flags['skip-bad'],
        removeSource: flags['remove-source'],
        wal: flags.wal,
        progress: new Progress(),
      })
    } catch (error) {
      if (error instanceof MigrateError && error.code === 'MIGRATE_BAD_SOURCE') {
        if (json) {
          this.logJson({error: {code: error.code, message: error.message, report: error.report}})
          this.exit(1)
        }

        for (const line of renderFailure(error.report)) this.log(line)
      }

      throw error
    }

    if (!json) for (const line of renderReport(report, {skipBad: flags['skip-bad']})) this.log(line)
    return report
  }
}
