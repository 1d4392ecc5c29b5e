/**
 * Debug switches that deliberately break durability, so the crash harnesses can prove they
 * detect a broken store (issue 4). Set RAZORFS_BREAK to a comma-separated list:
 *
 * - `no-wal`:   commits skip the WAL append: changes live only in the private mapping, so a
 *               kill -9 loses every acknowledged operation since the last checkpoint.
 * - `no-fsync`: fdatasync/fsync of the WAL and of content files do nothing, so a power loss
 *               loses what fsync acknowledged.
 *
 * Never set in production; `razorfs mount` prints a warning when one is on.
 */
const switches = new Set((process.env.RAZORFS_BREAK ?? '').split(',').map(s => s.trim()).filter(s => s !== ''))

export const BREAK_NO_WAL = switches.has('no-wal')
export const BREAK_NO_FSYNC = switches.has('no-fsync')
export const BREAK_ANY = BREAK_NO_WAL || BREAK_NO_FSYNC
