import {Args, Flags} from '@oclif/core'

import {RazorCommand} from '../base-command.js'
import {EXIT, EXIT_FAILURE, EXIT_MOUNT_FAILURE} from '../exit-codes.js'
import {type UnmountResult, UnmountError, findRazorMount, unmount} from '../fuse/unmount.js'

export default class Umount extends RazorCommand<typeof Umount> {
  static override summary = 'Unmount a razorfs mount and wait until its server has closed the image cleanly.'
  static override description = `Unmounts the razorfs mount on MOUNTPOINT (or the mount of a data dir, given as MOUNTPOINT or with --data-dir, or of the URL of a volume on PostgreSQL) with fusermount3 -u, then waits until its server has checkpointed the image, marked it clean and exited (the server logs "closed cleanly"). Prints nothing when it worked.

-l (lazy) detaches the mount now even if files are open on it; the server goes on serving them and closes the image once the last one is closed (the command waits 5 s for that, then returns 0 and says so on stderr).

--force removes a dead mount, one whose server was killed ("Transport endpoint is not connected"; refused without --force), and stops a live server even if files are open on its mount: it detaches the mount and, after 3 s, aborts what is still open (EIO, ENOTCONN).

Exit codes, as umount(8)'s: 0 unmounted and closed cleanly; 32 not unmounted (not mounted, not a razorfs mount, busy, a dead mount without --force, fusermount3 failed); 1 unmounted, but the server did not close the image cleanly (the next mount recovers it) or had not within 120 s; 16 usage.`

  static override examples = [
    {command: '<%= config.bin %> <%= command.id %> /mnt/rz', description: 'Unmount and wait for a clean close.'},
    {command: '<%= config.bin %> <%= command.id %> -l /mnt/rz', description: 'Detach now, even with files open.'},
    {command: '<%= config.bin %> <%= command.id %> --force /mnt/rz', description: 'Remove the dead mount a killed server left.'},
  ]

  static override enableJsonFlag = true
  static override args = {
    mountpoint: Args.string({description: 'The mountpoint (or the data dir, or the PostgreSQL URL) of a razorfs mount.'}),
  }

  static override flags = {
    lazy: Flags.boolean({char: 'l', default: false, description: 'Detach now; the server closes the image once no file is open on the mount.'}),
    force: Flags.boolean({default: false, description: 'Remove a dead mount; stop a live server even if files are open on its mount.'}),
  }

  protected override exitCodeOf(err: Error & {code?: unknown; exitCode?: unknown}): number {
    if (err instanceof UnmountError) return err.unmounted ? EXIT_FAILURE : EXIT_MOUNT_FAILURE
    return super.exitCodeOf(err)
  }

  public async run(): Promise<UnmountResult> {
    const {lazy, force} = this.flags
    let target = this.args.mountpoint
    if (target === undefined && this.flags['data-dir'] !== undefined) target = this.dataDir()
    if (target === undefined || target === '') {
      this.error(`${target === '' ? 'MOUNTPOINT is an empty string' : 'give MOUNTPOINT (or --data-dir)'} (see 'razorfs umount --help')`, {exit: EXIT.USAGE})
    }

    const result = await unmount(findRazorMount(target), {lazy, force})
    if (result.outcome === 'detached' && !this.jsonEnabled()) {
      process.stderr.write(`razorfs: ${result.mountpoint} is detached; its server (pid ${result.pid}) closes the image once the files open on it are closed\n`)
    }

    return result
  }
}
