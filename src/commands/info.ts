import {Args} from '@oclif/core'

import {RazorCommand} from '../base-command.js'
import {EXIT} from '../exit-codes.js'
import {type InodeInfo, inodeInfo, renderInfo} from '../inspect/index.js'

export default class Info extends RazorCommand<typeof Info> {
  static override summary = 'Show one inode: number, type, links, owner, size apparent vs stored, where its contents live on the host, xattrs, every name.'
  static override description = `PATH is a file, directory or other inode on a live razorfs mount (it is not followed if it is a symlink). The mount is the one of PATH's device (its type is fuse.razorfs, its source the data dir); stat(2) gives the inode number, and the image is opened read-only (no lock, nothing written, the write-ahead log replayed in memory) to read that inode. With --data-dir given on the command line, PATH is instead a path inside that image, from its root (it must start with /): the image may be mounted or not. RAZORFS_DATA_DIR does not change how PATH is read.

Prints the path; the data dir and mountpoint; the inode number, slot and generation; the type and mode; the links count; the owner; for regular files the size (apparent) and the host space of the content file (stored: st_blocks x 512); where the contents live on the host (the content file DATA-DIR/data/xx/ID, "none" before the first write, strings.dat for a symlink's target, entries.dat for a directory's entries); directories: the number of entries; symlinks: the target; atime, mtime and ctime (UTC, and nanoseconds since the epoch); the xattrs (name, value escaped or in hex, size); and every name of the inode (all its hard links), sorted, as host paths under the mountpoint when PATH is on a mount, else as paths in the image.

Finding every name reads the whole of entries.dat once (64 bytes per name in the image: 32 MB for 500,000 names, where the whole command takes about a second), in constant memory.

--json prints one object: the inode's fields under their docs/FORMAT.md names (ino, slot, gen, mode, nlink, uid, gid, size, atimeSec, atimeNsec, ..., dataId, xattr, target, dirHead) and type, modeString, bytes {apparent, stored}, contents, contentFile {path, exists, hostSize, hostBlocks}, entries, symlink, xattrs [{name, value, size}], names [{path, hostPath, dirent, parentIno}]; bytes that are not UTF-8 are given as <field>Base64.

A PATH not on a razorfs mount exits with 32 (as razorfs status does for a target that is not mounted); a missing PATH exits with 1.`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %> /mnt/rz/docs/report.txt', description: 'A file on a mount.'},
    {
      command: '<%= config.bin %> <%= command.id %> --data-dir /srv/rz /docs/report.txt --json',
      description: 'The same file in the image of /srv/rz (mounted or not), as JSON.',
    },
  ]

  static override enableJsonFlag = true
  static override args = {
    path: Args.string({description: 'A path on a razorfs mount; with --data-dir, a path inside that image (starting with /).', required: true}),
  }

  public async run(): Promise<InodeInfo> {
    const {path} = this.args
    if (path === '') this.error("PATH is an empty string (see 'razorfs info --help')", {exit: EXIT.USAGE})
    const inImage = this.flags['data-dir'] !== undefined
    if (inImage && !path.startsWith('/')) {
      this.error(`${path}: with --data-dir, PATH is a path inside the image and must start with / (see 'razorfs info --help')`, {exit: EXIT.USAGE})
    }

    const info = inodeInfo(inImage ? {dataDir: this.dataDir(), imagePath: path} : {hostPath: path})
    if (!this.jsonEnabled()) process.stdout.write(renderInfo(info))
    return info
  }
}
