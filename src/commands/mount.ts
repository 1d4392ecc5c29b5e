import {Args, Flags} from '@oclif/core'

import {RazorCommand} from '../base-command.js'

export default class Mount extends RazorCommand<typeof Mount> {
  static override summary = 'Mount the image of the data dir on a directory through FUSE.'
  static override description = `Opens the image (replaying its write-ahead log if the last session did not end cleanly) and serves it on MOUNTPOINT until the filesystem is unmounted (fusermount3 -u MOUNTPOINT, or umount) or the process gets SIGINT/SIGTERM. Without -f it detaches once the mount is up.

Needs /dev/fuse and the system's libfuse2 and fuse3 packages.

NOT IMPLEMENTED YET (issue 3): the command exits 1 and does nothing.`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %> -f /tmp/rz', description: 'Mount in the foreground.'},
    {
      command: '<%= config.bin %> <%= command.id %> --data-dir /srv/rz -o allow_other,ro --mkdir /mnt/rz',
      description: 'Mount read-only for all users, creating /mnt/rz if needed.',
    },
  ]

  static override args = {
    mountpoint: Args.string({description: 'Directory to mount the filesystem on.', required: true}),
  }

  static override flags = {
    foreground: Flags.boolean({
      char: 'f',
      default: false,
      description: 'Stay in the foreground (logs go to stderr) instead of detaching.',
    }),
    mkdir: Flags.boolean({default: false, description: 'Create MOUNTPOINT (and its parents) if it is absent.'}),
    options: Flags.string({
      char: 'o',
      description: 'Mount options, comma-separated, as for mount(8) (e.g. ro,allow_other).',
      helpValue: '<opt,...>',
    }),
  }

  public async run(): Promise<void> {
    this.notImplemented(3)
  }
}
