import {RazorCommand} from '../base-command.js'

export default class Stats extends RazorCommand<typeof Stats> {
  static override summary = 'Print the counters of an image: inodes, sizes, files, WAL, last recovery.'
  static override description = `Opens the image read-only (it may be mounted) and prints its UUID, format version, inodes used and allocated, the size of each file, the size of the write-ahead log and what the last open recovered.

NOT IMPLEMENTED YET (issue 5): the command exits 1 and does nothing.`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %>', description: 'Counters of the default image.'},
    {command: '<%= config.bin %> <%= command.id %> --data-dir /srv/rz --json', description: 'The same, as JSON.'},
  ]

  static override enableJsonFlag = true

  public async run(): Promise<void> {
    this.notImplemented(5)
  }
}
