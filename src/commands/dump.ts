import {Args, Flags} from '@oclif/core'

import {RazorCommand} from '../base-command.js'

export default class Dump extends RazorCommand<typeof Dump> {
  static override summary = 'Print the records of an image: headers, inodes, directory entries.'
  static override description = `Opens the image read-only (it may be mounted) and prints the stored records, with the field names of docs/FORMAT.md: the file headers with --headers, the inode at PATH-IN-IMAGE (a path from the image's root) or --inode N, with its directory entries if it is a directory. With --archive, writes the whole image (headers and all) to FILE instead, for a bug report.

NOT IMPLEMENTED YET (issue 5): the command exits 1 and does nothing.`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %> --headers', description: "Print the files' headers."},
    {command: '<%= config.bin %> <%= command.id %> /etc/hosts --json', description: 'Print the inode at /etc/hosts in the image, as JSON.'},
    {command: '<%= config.bin %> <%= command.id %> --inode 1', description: 'Print the root inode and its entries.'},
    {command: '<%= config.bin %> <%= command.id %> --archive /tmp/rz-image.tar', description: 'Save the whole image to a file.'},
  ]

  static override enableJsonFlag = true
  static override args = {
    'path-in-image': Args.string({description: "A path inside the image, from its root (e.g. /a/b)."}),
  }

  static override flags = {
    archive: Flags.string({description: 'Write the whole image to FILE instead of printing.', helpValue: '<file>'}),
    headers: Flags.boolean({default: false, description: "Print the files' headers (both slots of each)."}),
    inode: Flags.integer({description: 'Print the inode with this number.', min: 1}),
  }

  public async run(): Promise<void> {
    this.notImplemented(5)
  }
}
