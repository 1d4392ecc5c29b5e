import {RazorCommand} from '../base-command.js'
import {type ImageStats, colourWanted, imageStats, renderStats} from '../inspect/index.js'

export default class Stats extends RazorCommand<typeof Stats> {
  static override summary = 'Print the figures of an image: inodes by type, bytes, names, reclaimable space, log, clean flag, largest directories.'
  static override description = `Opens the image read-only (no lock, nothing written: it may be mounted) and prints, from one pass over its inode table:
- inodes used and allocated; regular files, directories, symlinks and other types;
- bytes: apparent (sum of file sizes) and stored (host blocks of the content files);
- names: directory entries, distinct interned strings and the dedup ratio (entries per interned string);
- reclaimable space: free inode and entry records, free string heap bytes;
- the write-ahead log (size, transactions since the last checkpoint) and the last checkpoint (generation, LSN, time);
- the clean flag, and whether the image is live (locked by pid N);
- the 5 largest directories.

A table (coloured on a terminal, not in a pipe or with NO_COLOR), or JSON with --json.`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %>', description: 'Figures of the default image.'},
    {command: '<%= config.bin %> <%= command.id %> --data-dir /srv/rz --json', description: 'The same, as JSON.'},
  ]

  static override enableJsonFlag = true

  public async run(): Promise<ImageStats> {
    const stats = imageStats(this.dataDir())
    if (!this.jsonEnabled()) process.stdout.write(renderStats(stats, colourWanted(process.stdout)))
    return stats
  }
}
