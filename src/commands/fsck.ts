import {Args, Flags} from '@oclif/core'

import {RazorCommand} from '../base-command.js'
import {EXIT} from '../exit-codes.js'

const MODES = ['read-only', 'yes', 'preen']

export default class Fsck extends RazorCommand<typeof Fsck> {
  static override summary = 'Check an image and repair it.'
  static override description = `Checks the image in passes, as e2fsck does: inodes, directory entries, connectivity, link counts, then the allocator and header counters. PATH is the data dir or its nodes.dat; without it, the data dir (--data-dir). The image must not be mounted.

Without -n, -y or -p, fsck asks before each repair. Exit code (bits, OR-ed as fsck(8) does): 0 no errors, 1 errors corrected, 4 errors left uncorrected, 8 operational error, 16 usage error, 32 cancelled.

NOT IMPLEMENTED YET (issue 5): the command exits 1 and does nothing.`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %> -n', description: 'Check the default image, change nothing.'},
    {command: '<%= config.bin %> <%= command.id %> -p /srv/rz', description: 'Repair what is safe to repair unattended.'},
    {command: '<%= config.bin %> <%= command.id %> -fy --json /srv/rz/nodes.dat', description: 'Force a full check, repair everything, report as JSON.'},
  ]

  static override enableJsonFlag = true
  static override args = {
    path: Args.string({description: 'The data dir, or the nodes.dat file in it (default: the data dir).'}),
  }

  static override flags = {
    force: Flags.boolean({char: 'f', default: false, description: 'Check even if the image is marked clean.'}),
    preen: Flags.boolean({
      char: 'p',
      default: false,
      description: 'Repair, without asking, only what is safe to repair unattended.',
      exclusive: MODES.filter((m) => m !== 'preen'),
    }),
    'read-only': Flags.boolean({
      char: 'n',
      default: false,
      description: 'Open the image read-only and answer "no" to every repair.',
      exclusive: MODES.filter((m) => m !== 'read-only'),
    }),
    yes: Flags.boolean({
      char: 'y',
      default: false,
      description: 'Answer "yes" to every repair.',
      exclusive: MODES.filter((m) => m !== 'yes'),
    }),
  }

  // A check that cannot be carried out is an operational error (fsck(8)'s 8), not 1 ("corrected").
  protected override failureExitCode: number = EXIT.OPERATIONAL

  public async run(): Promise<void> {
    this.notImplemented(5)
  }
}
