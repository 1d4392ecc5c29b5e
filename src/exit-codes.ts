/**
 * Exit codes of every razorfs command. The values are fsck(8)'s bits (as e2fsck uses them), so
 * `fsck` can OR them together; the other commands use only a few of them:
 *
 * - `OK` (0): the command did what it was asked.
 * - `CORRECTED` (1): fsck found errors and corrected them. For every other command, 1 is the
 *   ordinary failure code ("it did not work"): the one line on stderr says why.
 * - `UNCORRECTED` (4): fsck left errors uncorrected (`-n`, or a fix declined).
 * - `OPERATIONAL` (8): fsck could not do its job (image unreadable, locked, I/O error).
 * - `USAGE` (16): the command line was wrong (unknown flag, missing argument, bad value). oclif's
 *   parser gets this code from `oclif.exitCodes` in package.json; `RazorCommand.catch` enforces it.
 * - `CANCELLED` (32): cancelled by the user (fsck interrupted).
 */
export const EXIT = {
  OK: 0,
  CORRECTED: 1,
  UNCORRECTED: 4,
  OPERATIONAL: 8,
  USAGE: 16,
  CANCELLED: 32,
} as const

/** The code of an ordinary failure of any command but fsck. */
export const EXIT_FAILURE = 1

/**
 * `umount` and `status`: umount(8)'s "mount failure" (32): the target is not mounted, not a
 * razorfs mount, busy, or could not be unmounted; `info`: PATH is not on a razorfs mount.
 * (fsck's CANCELLED has the same value.)
 */
export const EXIT_MOUNT_FAILURE = 32

export type ExitCode = (typeof EXIT)[keyof typeof EXIT]
