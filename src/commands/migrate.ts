import {Flags} from '@oclif/core'

import {RazorCommand} from '../base-command.js'

export default class Migrate extends RazorCommand<typeof Migrate> {
  static override summary = 'Copy the files of a C RAZORFS image into a new razorfs image.'
  static override description = `Reads an image of the original C RAZORFS (its nodes, names and file_<inode> contents) from --from and writes every directory and file into a new image in the data dir, then verifies the copy. The source is only read, unless --remove-source is given. The C version's write-ahead log holds metadata only and is never replayed; with --wal it is read for the report.

Sources: the C disk layout (/var/lib/razorfs: nodes.dat, strings.dat, file_<inode>) or its older shm layout (/dev/shm: razorfs_nodes, razorfs_strings, razorfs_file_<inode>).

NOT IMPLEMENTED YET (issue 6): the command exits 1 and does nothing.`

  static override examples = [
    {
      command: '<%= config.bin %> <%= command.id %> --from /var/lib/razorfs --data-dir /srv/rz --dry-run',
      description: 'Show what would be copied from a C RAZORFS disk image, write nothing.',
    },
    {
      command: '<%= config.bin %> <%= command.id %> --from /dev/shm --wal /tmp/razorfs_wal.log --skip-bad --json',
      description: 'Migrate a C RAZORFS shm image into the default data dir, skipping unreadable files.',
    },
  ]

  static override enableJsonFlag = true
  static override flags = {
    'dry-run': Flags.boolean({default: false, description: 'Read and check the source, report, write nothing.'}),
    force: Flags.boolean({default: false, description: 'Replace an existing image in the data dir. Its contents are lost.'}),
    from: Flags.string({
      description: 'Directory of the C RAZORFS image to read (its disk or shm layout).',
      helpValue: '<dir>',
      required: true,
    }),
    'remove-source': Flags.boolean({
      default: false,
      description: 'Delete the source files once the new image is written and verified.',
      exclusive: ['dry-run'],
    }),
    'skip-bad': Flags.boolean({
      default: false,
      description: 'Skip nodes and content files that cannot be read (and report them) instead of stopping.',
    }),
    wal: Flags.string({
      description: "The C version's write-ahead log, read for the report only (it usually is /tmp/razorfs_wal.log).",
      helpValue: '<file>',
    }),
  }

  public async run(): Promise<void> {
    this.notImplemented(6)
  }
}
