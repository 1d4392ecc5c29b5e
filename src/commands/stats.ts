import {RazorCommand, metaFlag} from '../base-command.js'
import {type ImageStats, colourWanted, imageStats, renderStats} from '../inspect/index.js'
import {type SharedStats, renderSharedStats, sharedStats} from '../inspect/shared.js'

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

A table (coloured on a terminal, not in a pipe or with NO_COLOR), or JSON with --json.

With --meta URL, the figures of the volume in PostgreSQL at the URL (opened read-only, as one more session): inodes by type and orphans, apparent bytes, what the blocks and all the volume's tables take on the server, directory entries, the other clients' live sessions, the 5 largest directories. Counting takes one pass over the inodes table and one over the entries table. The JSON has the image's keys; those a shared volume has no such thing for (capacity, interned strings, reclaimable records, log, checkpoint, clean flag) are null.`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %>', description: 'Figures of the default image.'},
    {command: '<%= config.bin %> <%= command.id %> --data-dir /srv/rz --json', description: 'The same, as JSON.'},
    {command: '<%= config.bin %> <%= command.id %> --meta postgres://rz@db.example/files', description: 'Figures of a volume shared through PostgreSQL.'},
  ]

  static override enableJsonFlag = true
  static override flags = {
    meta: metaFlag('Report on the volume in PostgreSQL at this URL (postgres://user@host/database[?schema=name]) instead of the data dir.'),
  }

  public async run(): Promise<ImageStats | SharedStats> {
    const target = this.volumeTarget(this.flags.meta)
    if (target.kind === 'pg') {
      const shared = sharedStats(target.url)
      if (!this.jsonEnabled()) process.stdout.write(renderSharedStats(shared, colourWanted(process.stdout)))
      return shared
    }

    const stats = imageStats(target.dataDir)
    if (!this.jsonEnabled()) process.stdout.write(renderStats(stats, colourWanted(process.stdout)))
    return stats
  }
}
