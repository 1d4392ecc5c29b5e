/**
 * Switches that deliberately break durability, so the crash harnesses can prove they detect a
 * broken store (issue 4). All are off; nothing in src/ turns one on and no flag or environment
 * variable reaches them. Only a test calls `breakDurability`: the harnesses' self-tests start
 * their server through `test/crash/broken-server.ts`, which turns the switches on and then runs
 * `razorfs mount -f` in the same process.
 *
 * - `no-wal`:   commits skip the WAL append: changes live only in the private mapping, so a
 *               kill -9 loses every acknowledged operation since the last checkpoint.
 * - `no-fsync`: fdatasync/fsync of the WAL and of content files do nothing, so a power loss
 *               loses what fsync acknowledged.
 * - `pg-lazy-commit`: a volume on PostgreSQL acknowledges each request before its transaction
 *               commits: the requests run in one open transaction (a savepoint each) that the
 *               worker's timer commits a few times a second, so a kill -9 of the client loses
 *               what was acknowledged since the last commit (the server rolls the rest back).
 *               The worker thread gets the switches from the thread that opened the volume
 *               (pg/bridge.ts passes `brokenSwitches()` in its workerData).
 *
 * The flags are live bindings: wal.ts and contents.ts read their current value at each use, and
 * `razorfs mount` prints a warning when one is on.
 */
/**
 * Test tuning, not a breakage: how many content-file descriptors stay open (contents.ts). The
 * harnesses' workloads use a few dozen files; a test entry lowers this (`content-fds=N` in
 * `test/crash/broken-server.ts`) so that their files are evicted, and synced in the background,
 * all the time.
 */
export let CONTENT_FDS = 256

/** Set the test tuning (tests only). */
export function tuneForTests(t: {contentFds?: number}): void {
  if (t.contentFds !== undefined) CONTENT_FDS = t.contentFds
}

export const BREAK_SWITCHES = ['no-wal', 'no-fsync', 'pg-lazy-commit'] as const
export type BreakSwitch = (typeof BREAK_SWITCHES)[number]

export let BREAK_NO_WAL = false
export let BREAK_NO_FSYNC = false
export let BREAK_PG_LAZY_COMMIT = false
export let BREAK_ANY = false

/** Turn the named switches on (tests only). An unknown name throws. */
export function breakDurability(switches: Iterable<string>): void {
  for (const name of switches) {
    if (name === 'no-wal') BREAK_NO_WAL = true
    else if (name === 'no-fsync') BREAK_NO_FSYNC = true
    else if (name === 'pg-lazy-commit') BREAK_PG_LAZY_COMMIT = true
    else throw new Error(`unknown durability switch ${JSON.stringify(name)} (known: ${BREAK_SWITCHES.join(', ')})`)
  }

  BREAK_ANY = BREAK_NO_WAL || BREAK_NO_FSYNC || BREAK_PG_LAZY_COMMIT
}

/** The switches that are on, by name. */
export function brokenSwitches(): BreakSwitch[] {
  const on: Record<BreakSwitch, boolean> = {'no-wal': BREAK_NO_WAL, 'no-fsync': BREAK_NO_FSYNC, 'pg-lazy-commit': BREAK_PG_LAZY_COMMIT}
  return BREAK_SWITCHES.filter(name => on[name])
}
