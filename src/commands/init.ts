import {Flags} from '@oclif/core'

import {RazorCommand} from '../base-command.js'
import {EXIT} from '../exit-codes.js'
import {type RestoreResult, restoreImage} from '../inspect/index.js'
import {type SharedRestoreResult, restoreShared} from '../inspect/shared.js'
import {Progress} from '../progress.js'
import {ensureDataDir, Image, ImageError, type ImageInfo} from '../storage/index.js'
import {isPgUrl} from '../volume-url.js'
import {PgVolume} from '../storage/pg/volume.js'

type SharedVolumeInfo = PgVolume['meta']

export default class Init extends RazorCommand<typeof Init> {
  static override summary = 'Create a new, empty image in the data dir.'
  static override description = `Creates the data dir if it is absent (mode 0700) and writes the files of an empty image in it (mode 0600): a root directory and nothing else. An existing image is never replaced unless --force is given.

With --from FILE, the new image is filled from a tar archive: one written by \`razorfs dump --archive\` restores exactly (modes, owners, nanosecond times, hard links, symlinks, devices, FIFOs, sockets, xattrs, names as bytes); pax and GNU archives of GNU tar or bsdtar restore too (without sparse members). FILE "-" is standard input (not a terminal). On a terminal, a progress bar on stderr follows the archive being read. The new image is built in a staging directory inside the data dir and put in place only once the whole archive has been read: a missing, truncated or damaged archive leaves the data dir as it was (with --force, the old image stays until the new one is complete), and the error names the archive and the byte offset of the damage.

Prints the data dir, the image's UUID and each file it wrote (name, size in bytes, mode).

With --meta URL, the new volume is made in PostgreSQL instead of the data dir, for many hosts to share: postgres://USER:PASSWORD@HOST:PORT/DATABASE, or postgres:///DATABASE?host=/run/postgresql for a unix socket; the volume takes one PostgreSQL schema of the database, "razorfs" unless ?schema=NAME names another. A schema that holds other tables is never touched. Prints the volume's UUID, where it is, and its format version. With --from FILE too, the new volume is filled from the archive, as an image is: that FILE starts as a tar archive is checked before the volume is made; damage found later leaves the volume partly filled, and the error says so (init --force --meta makes it again).`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %>', description: 'Create an image in the default data dir.'},
    {
      command: '<%= config.bin %> <%= command.id %> --data-dir /srv/rz --capacity 100000',
      description: 'Create an image in /srv/rz with room for 100,000 inodes before it grows.',
    },
    {
      command: '<%= config.bin %> <%= command.id %> --data-dir /srv/rz2 --from /backup/rz.tar',
      description: 'Create an image in /srv/rz2 holding what the archive holds (made by razorfs dump --archive).',
    },
    {
      command: '<%= config.bin %> <%= command.id %> --meta postgres://rz@db.example/files',
      description: 'Create a volume shared by many hosts in the database "files" on db.example (schema razorfs).',
    },
    {
      command: '<%= config.bin %> <%= command.id %> --meta postgres://rz@db.example/files --from /backup/rz.tar',
      description: 'Create a shared volume holding what the archive holds (a backup of an image or of another shared volume).',
    },
    {
      command: '<%= config.bin %> <%= command.id %> --data-dir /srv/rz --force --json',
      description: 'Replace the image in /srv/rz (its contents are lost) and print the new one as JSON.',
    },
  ]

  static override enableJsonFlag = true
  static override flags = {
    capacity: Flags.integer({
      description: 'Inode records to pre-allocate; the image still grows on demand.',
      min: 1,
    }),
    from: Flags.string({
      description: 'Fill the new image (or volume at --meta) from this tar archive ("-": standard input), as written by razorfs dump --archive.',
      helpValue: '<file>',
    }),
    force: Flags.boolean({
      default: false,
      description: 'Replace an existing image in the data dir (or volume at --meta). Its contents are lost.',
    }),
    meta: Flags.string({
      description: 'Create the volume in PostgreSQL at this URL (postgres://user@host/database[?schema=name]) instead of the data dir.',
      exclusive: ['capacity', 'data-dir'],
      helpValue: '<url>',
    }),
  }

  public async run(): Promise<ImageInfo | RestoreResult | SharedVolumeInfo | SharedRestoreResult> {
    const {capacity, force, from, meta} = this.flags
    if (meta !== undefined) return from === undefined ? this.createShared(meta, force) : this.restoreShared(meta, from)
    const dir = this.dataDir()
    if (from !== undefined) return this.restore(dir, from)
    ensureDataDir(dir)
    const image = Image.create(dir, capacity === undefined ? {force} : {capacity, force})
    let info: ImageInfo
    try {
      info = image.info()
    } finally {
      image.close()
    }

    if (!this.jsonEnabled()) {
      const width = Math.max('data dir'.length, ...info.files.map(file => file.name.length))
      const sizeWidth = Math.max(...info.files.map(file => String(file.bytes).length))
      this.log(`Created razorfs image ${info.uuid}`)
      this.log(`  ${'data dir'.padEnd(width)}  ${info.dir}`)
      for (const file of info.files) {
        const mode = (file.mode & 0o7777).toString(8).padStart(4, '0')
        this.log(`  ${file.name.padEnd(width)}  ${String(file.bytes).padStart(sizeWidth)} bytes  mode ${mode}`)
      }
    }

    return info
  }

  private createShared(url: string, force: boolean): SharedVolumeInfo {
    if (!isPgUrl(url)) this.error(`--meta ${url}: not a PostgreSQL URL (postgres://user@host/database)`, {exit: EXIT.USAGE})
    let info: SharedVolumeInfo
    try {
      const volume = PgVolume.create(url, {force})
      info = volume.meta
      volume.close()
    } catch (error) {
      if (error instanceof ImageError) throw error
      this.error((error as Error).message, {exit: EXIT.USAGE}) // a malformed URL
    }

    if (!this.jsonEnabled()) {
      this.log(`Created razorfs volume ${info.uuid}`)
      this.log(`  meta    ${info.url}`)
      this.log(`  schema  ${info.schema} (format version ${info.formatVersion}, blocks of ${info.blockSize} bytes)`)
    }

    return info
  }

  private refuseTerminal(from: string): void {
    if (from === '-' && process.stdin.isTTY) {
      this.error('refusing to read a tar archive from a terminal; give --from FILE or redirect standard input', {exit: EXIT.USAGE})
    }
  }

  private restoreShared(meta: string, from: string): SharedRestoreResult {
    const target = this.volumeTarget(meta)
    if (target.kind !== 'pg') throw new Error('internal: --meta names no PostgreSQL volume')
    this.refuseTerminal(from)
    const result = restoreShared(target.url, from, {force: this.flags.force, progress: new Progress()})
    if (!this.jsonEnabled()) {
      this.log(`Created razorfs volume ${result.uuid}`)
      this.log(`  meta    ${result.meta}`)
      this.log(`  schema  ${result.schema} (format version ${result.formatVersion})`)
      this.restoredLine(result.restored)
    }

    return result
  }

  private restoredLine(r: RestoreResult['restored']): void {
    this.log(
      `  from ${r.archive}: ${r.members} members: ${r.directories} directories, ${r.files} files (${r.contentBytes} bytes), ${r.symlinks} symlinks, ${r.hardLinks} hard links, ${r.others} others`,
    )
  }

  private restore(dir: string, from: string): RestoreResult {
    const {capacity, force} = this.flags
    this.refuseTerminal(from)

    const result = restoreImage(dir, from, {force, capacity, progress: new Progress()})
    if (!this.jsonEnabled()) {
      this.log(`Created razorfs image ${result.uuid} in ${result.dir}`)
      this.restoredLine(result.restored)
      for (const note of result.notes) this.log(`  note: ${note}`)
    }

    return result
  }
}
