import {Args, Flags} from '@oclif/core'
import path from 'node:path'

import {RazorCommand} from '../base-command.js'
import {EXIT} from '../exit-codes.js'
import {LOG_NAME, META_ENV, daemonOutput, detach} from '../fuse/daemon.js'
import {type MountSettings, MountOptionError, mountOptionsHelp, parseMountOptions} from '../fuse/mount-options.js'
import {type Binding, type Served, mountHome, prepareMountpoint, serve} from '../fuse/serve.js'
import {ensureDataDir} from '../storage/data-dir.js'
import {BREAK_ANY, brokenSwitches} from '../storage/debug.js'
import {type VolumeTarget, openRecovery, openServedVolume, targetName} from '../storage/open.js'

export default class Mount extends RazorCommand<typeof Mount> {
  static override summary = 'Mount the image of the data dir (or a volume on PostgreSQL) on a directory through FUSE.'
  static override description = `Opens the image (replaying its write-ahead log if the last session did not end cleanly) and serves it on MOUNTPOINT until the filesystem is unmounted (razorfs umount MOUNTPOINT, fusermount3 -u MOUNTPOINT, or umount) or the process gets SIGINT/SIGTERM. Without -f it detaches once the mount is up.

Needs /dev/fuse and the system's libfuse2 and fuse3 packages.

If the data dir holds no image, one is created first. With -f the command prints "mounted DATA-DIR on MOUNTPOINT" and serves until SIGINT, SIGTERM or SIGHUP (or an outside unmount), then checkpoints, marks the image clean and unmounts. Without -f it starts the server in the background and returns once the mount is live, with the server's warnings (such as "recovered N transactions") on stderr; the server then logs to DATA-DIR/razorfs.log, each line with its time and pid.

MOUNTPOINT must be an empty directory (-o nonempty mounts over one that is not). The mount's source is the data dir (df and /proc/mounts show it); razorfs status lists the mounts.

With --meta URL, the mount serves the volume that razorfs init --meta made in PostgreSQL, which other hosts mount at the same time (on the ll binding only). Its source is the URL without its password; a detached server logs to /tmp/razorfs-UID/mount-HASH/razorfs.log (the command prints where). Each mount hears of the changes the other hosts commit and drops them from its kernel's caches, so a change shows on the other hosts within milliseconds while names and attributes that did not change stay cached; data written and closed on one host is read whole by an open on another. Nothing is recovered at mount: every change was a committed transaction.

Mount options (-o, comma-separated; a bad one exits 16):
${mountOptionsHelp()}`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %> -f /tmp/rz', description: 'Mount in the foreground.'},
    {
      command: '<%= config.bin %> <%= command.id %> --data-dir /srv/rz -o allow_other,ro --mkdir /mnt/rz',
      description: 'Mount read-only for all users, creating /mnt/rz if needed.',
    },
    {
      command: '<%= config.bin %> <%= command.id %> --meta postgres://rz@db.example/files /mnt/rz',
      description: 'Mount the volume shared by many hosts in the database "files" on db.example.',
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
    binding: Flags.string({
      default: 'll',
      description: 'FUSE binding: ll (our libfuse 3 low-level binding, the default) or fuse-native (libfuse 2).',
      options: ['ll', 'fuse-native'],
    }),
    mkdir: Flags.boolean({default: false, description: 'Create MOUNTPOINT (and its parents) if it is absent.'}),
    'resident-mib': Flags.integer({
      hidden: true,
      min: 1,
      description: 'Resident budget of the server in MiB: above it, clean pages of the image are dropped (default 160).',
    }),
    'wal-limit': Flags.integer({
      hidden: true,
      min: 4096,
      description: 'Checkpoint once the write-ahead log holds this many bytes (default 64 MiB).',
    }),
    'poll-us': Flags.integer({
      hidden: true,
      min: 0,
      description: 'll binding: keep polling for requests this many microseconds after the last one (default 100; 0: off).',
    }),
    'loop-threads': Flags.integer({
      hidden: true,
      min: 0,
      description: 'll binding: serve /dev/fuse from the JS thread (0, the default) or from N libfuse worker threads.',
    }),
    options: Flags.string({
      char: 'o',
      description: 'Mount options, comma-separated, as for mount(8) (e.g. ro,allow_other): see below.',
      helpValue: '<opt,...>',
    }),
    meta: Flags.string({
      description: 'Mount the volume in PostgreSQL at this URL (postgres://user@host/database[?schema=name]), made by razorfs init --meta.',
      exclusive: ['data-dir'],
      helpValue: '<url>',
    }),
    detached: Flags.boolean({
      hidden: true,
      default: false,
      description: 'Run as the server that `mount` without -f starts (with -f): report to it on fd 3, then log to DATA-DIR/razorfs.log.',
    }),
  }

  public async run(): Promise<void> {
    const {binding, foreground, mkdir, options, detached} = this.flags
    const target = this.target()
    const served: Served = target.kind === 'image' ? {dataDir: target.dataDir} : {meta: target.display}
    const name = targetName(target)
    // First: from here on, what the server writes goes to the command that started it.
    // (A detached server's MOUNTPOINT is the absolute path its command prepared.)
    const home = foreground && detached ? mountHome(served, path.resolve(this.args.mountpoint)) : undefined
    const daemon = home === undefined ? undefined : daemonOutput(home)
    const walLimit = this.flags['wal-limit']
    const tuning = {residentMib: this.flags['resident-mib'], pollUs: this.flags['poll-us'], loopThreads: this.flags['loop-threads']}
    const {mountpoint} = this.args
    if (mountpoint === '') this.usage('MOUNTPOINT is an empty string; give the path of a directory')
    if (target.kind === 'pg' && binding !== 'll') this.usage('--meta needs the ll binding (fuse-native cannot serve a volume on PostgreSQL)')
    if (target.kind === 'pg' && walLimit !== undefined) this.usage('--wal-limit has no meaning with --meta (a volume on PostgreSQL has no log of its own)')
    const settings = this.settings(options)
    if (!foreground) {
      // Everything that can be checked here is, so that its error comes before detaching.
      const abs = prepareMountpoint(mountpoint, mkdir, settings.nonempty)
      if (target.kind === 'image') ensureDataDir(target.dataDir)
      const hidden = Object.entries({
        '--resident-mib': tuning.residentMib,
        '--wal-limit': walLimit,
        '--poll-us': tuning.pollUs,
        '--loop-threads': tuning.loopThreads,
      }).flatMap(([flag, value]) => (value === undefined ? [] : [flag, String(value)]))
      const args = [
        // The URL's password goes to the server in its environment (META_ENV), never on a command line.
        ...(target.kind === 'image' ? ['--data-dir', target.dataDir] : ['--meta', target.display]),
        '--binding',
        binding,
        ...(options === undefined ? [] : ['-o', options]),
        ...(mkdir ? ['--mkdir'] : []),
        ...hidden,
        abs,
      ]
      const env: Record<string, string> = target.kind === 'pg' ? {[META_ENV]: target.url} : {}
      const {pid, log} = await detach(args, mountHome(served, abs), line => process.stderr.write(`${line}\n`), env)
      this.log(`mounted ${name} on ${mountpoint} (server pid ${pid}, log ${log})`)
      return
    }

    const log = (line: string) => process.stderr.write(`razorfs mount: ${line}\n`)
    if (BREAK_ANY) log(`WARNING: durability is broken on purpose (${brokenSwitches().join(', ')}): a crash-harness self-test`)
    const open = (readOnly: boolean) => openServedVolume(target, {readOnly, walLimit})
    await serve(
      {
        served,
        open,
        mountpoint,
        settings,
        mkdir,
        log,
        logFile: home === undefined ? undefined : path.join(home, LOG_NAME),
        recovery: openRecovery,
        binding: binding as Binding,
        ...tuning,
      },
      volume => {
        const recovery = openRecovery(volume)
        if (recovery !== null && !recovery.wasClean) {
          log(
            `the image was not cleanly unmounted: recovered ${recovery.transactions} transactions` +
              (recovery.tornBytes > 0 ? `, discarded a torn tail of ${recovery.tornBytes} bytes` : ''),
          )
        }

        this.log(`mounted ${name} on ${mountpoint}`)
        daemon?.ready()
      },
    )
  }

  /** The volume of --meta or the data dir; a detached server takes the URL (with its password) from its environment. */
  private target(): VolumeTarget {
    const meta = this.flags.detached && this.flags.meta !== undefined ? (process.env[META_ENV] ?? this.flags.meta) : this.flags.meta
    delete process.env[META_ENV]
    return this.volumeTarget(meta)
  }

  /** -o, checked: a bad option is a usage error naming it. */
  private settings(options: string | undefined): MountSettings {
    try {
      return parseMountOptions(options)
    } catch (error) {
      if (error instanceof MountOptionError) this.usage(error.message)
      throw error
    }
  }

  private usage(message: string): never {
    this.error(`${message} (see 'razorfs mount --help')`, {exit: EXIT.USAGE})
  }
}
