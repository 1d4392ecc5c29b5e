import {Args, Flags} from '@oclif/core'
import fs from 'node:fs'
import path from 'node:path'

import {RazorCommand, metaFlag} from '../base-command.js'
import {ImageError, type ImageErrorCode} from '../storage/index.js'
import {EXIT} from '../exit-codes.js'
import type {FsckMode} from '../fsck/context.js'
import {type FsckReport, runFsck} from '../fsck/run.js'
import {type SharedFsckReport, runSharedFsck} from '../fsck/shared/run.js'
import {terminalAsk, terminalProgress} from '../fsck/terminal.js'

const MODES = ['read-only', 'yes', 'preen']

export default class Fsck extends RazorCommand<typeof Fsck> {
  static override summary = 'Check an image and repair it.'
  static override description = `Checks the image in passes, as e2fsck does: 0 the file headers, 7 the write-ahead log (both before the image is opened), 1 inode records and the string heap, 2 directory entries, 3 connectivity, 4 link counts and orphans, 5 names and their references, 6 content files. PATH is the data dir or its nodes.dat; without it, the data dir (--data-dir).

-n opens the image read-only (no lock, nothing written: it works on a mounted image) and answers no. Otherwise fsck takes the image's lock and refuses an image in use ("in use by pid N", exit 8); -y repairs everything, -p only what is safe unattended, and without either it asks on the terminal (y, n, a = yes to all, q = quit). Without a terminal, one of -n, -p or -y is required (exit 16).

Without -f, an image that was closed cleanly is only checked for its headers and log. On a clean image it prints one line ("razorfs: clean, N inodes, M entries").

With --meta URL, the volume in PostgreSQL at the URL, with the same flags, problem table and exit codes: pass 8 its sessions (an expired one is ended, as the next client would) and inode sequence, pass 9 (with -f, or when pass 8 found something) its root, entries, connectivity (to /lost+found), link counts, orphans and blocks. -n checks one snapshot while it is mounted; a repair takes a lock that keeps mounts from starting and refuses while any session is live ("in use by 1 live session (host pid N)", exit 8).

Exit code (bits, OR-ed as fsck(8) does): 0 no errors, 1 errors corrected, 4 errors left uncorrected, 8 operational error, 16 usage error, 32 cancelled.`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %> -n', description: 'Check the default image, change nothing.'},
    {command: '<%= config.bin %> <%= command.id %> -p /srv/rz', description: 'Repair what is safe to repair unattended.'},
    {command: '<%= config.bin %> <%= command.id %> -fy --json /srv/rz/nodes.dat', description: 'Force a full check, repair everything, report as JSON.'},
    {
      command: '<%= config.bin %> <%= command.id %> -fn --meta postgres://rz@db.example/files',
      description: 'Check a volume shared through PostgreSQL, fully, changing nothing.',
    },
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
      exclusive: MODES.filter(m => m !== 'preen'),
    }),
    'read-only': Flags.boolean({
      char: 'n',
      default: false,
      description: 'Open the image read-only and answer "no" to every repair.',
      exclusive: MODES.filter(m => m !== 'read-only'),
    }),
    meta: metaFlag('Check the volume in PostgreSQL at this URL (postgres://user@host/database[?schema=name]) instead of an image.'),
    verbose: Flags.boolean({char: 'v', default: false, description: 'Print each pass and what was checked.'}),
    yes: Flags.boolean({
      char: 'y',
      default: false,
      description: 'Answer "yes" to every repair.',
      exclusive: MODES.filter(m => m !== 'yes'),
    }),
  }

  // A check that cannot be carried out is an operational error (fsck(8)'s 8), not 1 ("corrected").
  protected override failureExitCode: number = EXIT.OPERATIONAL

  public async run(): Promise<FsckReport | SharedFsckReport> {
    const {flags} = this
    const json = this.jsonEnabled()
    const mode: FsckMode = flags['read-only'] ? 'no' : flags.yes ? 'yes' : flags.preen ? 'preen' : 'ask'
    if (mode === 'ask' && !process.stdin.isTTY) {
      this.error('interactive repair needs a terminal: give -n (check only), -p (repair what is safe) or -y (repair everything)', {exit: EXIT.USAGE})
    }

    const target = this.volumeTarget(flags.meta)
    if (target.kind === 'pg' && this.args.path !== undefined) this.error('give PATH or --meta, not both', {exit: EXIT.USAGE})
    const write = (text: string): boolean => (json ? process.stderr : process.stdout).write(text)
    const common = {
      mode,
      force: flags.force,
      verbose: flags.verbose,
      out: json ? undefined : (line: string) => write(`${line}\n`),
      ask: mode === 'ask' ? terminalAsk(write) : undefined,
    }
    const report =
      target.kind === 'pg' ? await runSharedFsck({...common, url: target.url}) : runFsck({...common, dir: this.imageDir(), progress: terminalProgress()})
    if (report.exitCode & EXIT.OPERATIONAL) {
      // One line (or a JSON error): the image could not be checked.
      const error = report.errorCode === undefined ? new Error(report.error) : new ImageError(report.errorCode as ImageErrorCode, report.error ?? '')
      throw Object.assign(error, {exitCode: report.exitCode, code: report.errorCode ?? 'RZ_FSCK'})
    }

    if (report.error !== undefined && !json) process.stderr.write(`razorfs: ${report.error}\n`)
    process.exitCode = report.exitCode
    return report
  }

  /** PATH (the data dir, or a nodes.dat in it) or the data dir. */
  private imageDir(): string {
    const arg = this.args.path
    if (arg === undefined) return this.dataDir()
    const resolved = path.resolve(arg)
    try {
      if (fs.statSync(resolved).isDirectory()) return resolved
    } catch {
      // Absent: a path ending in nodes.dat names its directory; anything else is the data dir itself.
    }

    return path.basename(resolved) === 'nodes.dat' || fs.existsSync(resolved) ? path.dirname(resolved) : resolved
  }
}
