import {Args, Flags} from '@oclif/core'

import {RazorCommand, metaFlag} from '../base-command.js'
import {EXIT} from '../exit-codes.js'
import {type ArchiveResult, archiveImage, dumpImage} from '../inspect/index.js'
import {archiveShared, dumpShared} from '../inspect/shared.js'
import {Progress} from '../progress.js'

export default class Dump extends RazorCommand<typeof Dump> {
  static override summary = 'List the tree of an image (ls -lR style), print its headers, or back it up as a tar archive.'
  static override description = `Opens the image read-only: no lock is taken and nothing is written, so it works on a mounted (live) image; the write-ahead log is replayed in memory, so every committed change shows.

Without flags, lists the tree from PATH-IN-IMAGE (default /) or --inode N like \`ls -lR\`: for each directory a "PATH:" line, then one line per entry with inode number, mode, links, uid, gid, size (major, minor for devices), mtime (UTC, nanoseconds) and name, and "-> target" for symlinks; xattrs follow on indented lines. Names are escaped as \`ls -b\` does (\\ , \\n, \\ooo for bytes that are not UTF-8). Entries are in directory order (newest first).

--json prints JSON lines instead, in depth-first order: one object per name, with its path and the inode's fields under their docs/FORMAT.md names; a path, name, symlink target or xattr value that is not UTF-8 is given as <field>Base64 instead.

--headers prints each file's header (dumpe2fs -h style: magic, version, record size, capacity, used, generation, checkpoint LSN, UUID, times, clean flag, reclaimable, checksum) and control block, the WAL header and what this open recovered; the tree only if PATH-IN-IMAGE or --inode is given too.

--archive FILE writes the tree instead as a pax tar archive (GNU tar reads it: tar tvf FILE) with modes, owners, nanosecond times, hard links, symlinks, devices, FIFOs, xattrs and names as bytes; \`razorfs init --from FILE\` restores it. FILE "-" is standard output, which must not be a terminal. On a terminal, a progress bar on stderr counts the inodes written.

The listing streams: memory does not grow with the size of the image.

With --meta URL, the same for the volume in PostgreSQL at the URL (opened read-only, as one more session): the listing (entries in name order), --json (the image's keys; null for record slots, string units and the like, which a shared volume has none of) and --archive; --headers does not apply. A walk there holds one directory listing per level.`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %>', description: 'List the whole tree.'},
    {command: '<%= config.bin %> <%= command.id %> /etc --json', description: 'The tree under /etc in the image, as JSON lines.'},
    {command: '<%= config.bin %> <%= command.id %> --inode 1', description: 'The tree from the root inode.'},
    {command: '<%= config.bin %> <%= command.id %> --headers', description: "Print the files' headers."},
    {
      command: '<%= config.bin %> <%= command.id %> --archive /backup/rz.tar',
      description: 'Back up the whole image (restore: razorfs init --from /backup/rz.tar).',
    },
    {
      command: '<%= config.bin %> <%= command.id %> --meta postgres://rz@db.example/files --archive /backup/files.tar',
      description: 'Back up a volume shared through PostgreSQL (restore: razorfs init --from /backup/files.tar --meta URL).',
    },
  ]

  static override enableJsonFlag = true
  static override args = {
    'path-in-image': Args.string({description: 'A path inside the image, from its root (e.g. /a/b); symlinks are not followed.'}),
  }

  static override flags = {
    archive: Flags.string({
      description: 'Write the tree as a pax tar archive to FILE ("-": standard output) instead of listing it.',
      exclusive: ['headers'],
      helpValue: '<file>',
    }),
    headers: Flags.boolean({default: false, description: "Print each file's header and control block, the WAL header and the recovery report."}),
    inode: Flags.integer({description: 'Start at the inode with this number instead of a path.', min: 1}),
    meta: metaFlag('List (or archive) the volume in PostgreSQL at this URL (postgres://user@host/database[?schema=name]) instead of the data dir.'),
  }

  public async run(): Promise<ArchiveResult | undefined> {
    const {archive, headers, inode} = this.flags
    const path = this.args['path-in-image']
    if (path !== undefined && inode !== undefined) this.error('give PATH-IN-IMAGE or --inode, not both', {exit: EXIT.USAGE})
    const target = this.volumeTarget(this.flags.meta)
    if (target.kind === 'pg' && headers)
      this.error('--headers: a volume on PostgreSQL has no image files and no headers (razorfs stats --meta gives its figures)', {exit: EXIT.USAGE})
    if (archive === undefined) {
      const req = {path, inode, headers, json: this.jsonEnabled()}
      if (target.kind === 'pg') dumpShared(target.url, req)
      else dumpImage(target.dataDir, req)
      return undefined
    }

    if (archive === '-' && process.stdout.isTTY) {
      this.error('refusing to write a tar archive to a terminal; redirect standard output or give --archive FILE', {exit: EXIT.USAGE})
    }

    const warn = (message: string): void => void process.stderr.write(`razorfs: warning: ${message}\n`)
    const result =
      target.kind === 'pg'
        ? archiveShared(target.url, archive, {path, inode}, warn, new Progress())
        : archiveImage(target.dataDir, archive, {path, inode}, warn, new Progress())
    if (this.jsonEnabled() && archive === '-') {
      // The archive is on stdout: the summary goes to stderr so that it does not end up in it.
      process.stderr.write(`${JSON.stringify(result)}\n`)
      return undefined
    }

    if (!this.jsonEnabled()) {
      const line = `wrote ${result.members} members (${result.directories} directories, ${result.files} files, ${result.symlinks} symlinks, ${result.hardLinks} hard links, ${result.others} others; ${result.contentBytes} content bytes) to ${result.archive}, ${result.archiveBytes} bytes\n`
      // With the archive on stdout, the summary must not end up in it.
      if (archive === '-') process.stderr.write(line)
      else this.log(line.trimEnd())
    }

    return result
  }
}
