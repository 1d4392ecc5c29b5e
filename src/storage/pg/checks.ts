/**
 * What razorfs fsck --meta runs on a volume's schema (src/fsck/shared/): one connection of its own
 * (no session: it is no client of the volume), the queries that find each kind of problem, and the
 * statements that repair them, next to the schema they read (schema.ts).
 *
 * Checking only (-n): one REPEATABLE READ, READ ONLY transaction, so every query sees the same
 * snapshot while mounts go on working. Repairing: the connection holds REPAIR_LOCK exclusively
 * until it ends, after the live sessions were counted under it (none may be); each repair is a
 * transaction of its own.
 */
import type pg from 'pg'

import {ImageError} from '../errors.js'
import {type Target, type VolumeMeta, connectProblem, connectTo, volumeMeta} from './connect.js'
import {PG_FORMAT_VERSION, REPAIR_LOCK} from './schema.js'
import {parsePgUrl} from './url.js'

const F = 0o170000
const DIR = 0o040000
const REG = 0o100000
const LNK = 0o120000
const IS_DIR = (i: string): string => `${i}.mode & ${F} = ${DIR}`

/** Queries by name; what each returns is in the comment. */
export const CHECKS = {
  /** inodes, entries, files with blocks; inodes by type (mode & S_IFMT) as [type, n] pairs. */
  counts: `SELECT (SELECT count(*) FROM inodes) AS inodes, (SELECT count(*) FROM entries) AS entries,
    (SELECT count(DISTINCT ino) FROM blocks) AS content_files,
    (SELECT coalesce(json_agg(json_build_array(t, n)), '[]') FROM (SELECT mode & ${F} AS t, count(*) AS n FROM inodes GROUP BY 1) x) AS types`,
  /** Sessions whose lease ran out: id, host, client_pid, ago_ms, holds. */
  expiredSessions: `SELECT s.id, s.host, s.client_pid, (extract(epoch FROM now() - greatest(s.heartbeat, pg_postmaster_start_time())) * 1000 - s.lease_ms)::bigint AS ago_ms,
    (SELECT count(*) FROM holds h WHERE h.session = s.id) AS holds FROM sessions s WHERE rz_expired(s) ORDER BY s.id`,
  /** The number ino_seq hands out next, and the largest inode. */
  sequence: `SELECT (SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM ino_seq) AS next, (SELECT coalesce(max(ino), 1) FROM inodes) AS max`,
  root: 'SELECT mode, parent FROM inodes WHERE ino = 1',
  /** Entries held by an inode that is not a directory: parent, name, ino, pmode. */
  entriesNotInDir: `SELECT e.parent, e.name, e.ino, p.mode AS pmode FROM entries e JOIN inodes p ON p.ino = e.parent WHERE NOT ${IS_DIR('p')} ORDER BY 1, 2`,
  /** Names a directory may not hold: parent, name, ino. */
  badNames: `SELECT parent, name, ino FROM entries WHERE length(name) NOT BETWEEN 1 AND 255 OR name IN ('\\x2e'::bytea, '\\x2e2e'::bytea)
    OR position('\\x2f'::bytea IN name) > 0 OR position('\\x00'::bytea IN name) > 0 ORDER BY 1, 2`,
  /** Every name of each directory named more than once: ino, parent, name, field (its parent column). */
  multiNamedDirs: `SELECT e.ino, e.parent, e.name, d.parent AS field FROM entries e JOIN inodes d ON d.ino = e.ino
    WHERE ${IS_DIR('d')} AND e.ino IN (SELECT ino FROM entries GROUP BY ino HAVING count(*) > 1) ORDER BY 1, 2, 3`,
  /**
   * Directories the root does not reach by entries (UNION ends cycles), but for an empty one
   * removed while open (an orphan): ino, and the parent and name of an entry naming it, if any.
   */
  unreachableDirs: `WITH RECURSIVE r(ino) AS (
      SELECT 1::bigint
      UNION
      SELECT e.ino FROM entries e JOIN r ON e.parent = r.ino JOIN inodes c ON c.ino = e.ino WHERE ${IS_DIR('c')}
    )
    SELECT d.ino, x.parent AS holder, x.name FROM inodes d
      LEFT JOIN LATERAL (SELECT e.parent, e.name FROM entries e WHERE e.ino = d.ino ORDER BY 1, 2 LIMIT 1) x ON true
    WHERE ${IS_DIR('d')} AND d.ino NOT IN (SELECT ino FROM r)
      AND NOT (d.nlink = 0 AND x.parent IS NULL AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.parent = d.ino))
    ORDER BY d.ino`,
  /** Non-directories with links that no entry names: ino, mode, size. */
  unattached: `SELECT i.ino, i.mode, i.size FROM inodes i WHERE NOT ${IS_DIR('i')} AND i.nlink > 0 AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.ino = i.ino) ORDER BY 1`,
  /** The root's entry lost+found: ino, mode. */
  lostFound: `SELECT e.ino, c.mode FROM entries e JOIN inodes c ON c.ino = e.ino WHERE e.parent = 1 AND e.name = '\\x6c6f73742b666f756e64'::bytea`,
  nameTaken: 'SELECT 1 FROM entries WHERE parent = $1 AND name = $2',
  /** Directories (named once, or the root) whose parent column is not the directory holding them: ino, parent, holder. */
  badParents: `SELECT d.ino, d.parent, CASE WHEN d.ino = 1 THEN 1 ELSE e.parent END AS holder FROM inodes d LEFT JOIN entries e ON e.ino = d.ino
    WHERE ${IS_DIR('d')} AND (d.ino = 1 OR (SELECT count(*) FROM entries x WHERE x.ino = d.ino) = 1)
      AND d.parent IS DISTINCT FROM CASE WHEN d.ino = 1 THEN 1 ELSE e.parent END ORDER BY 1`,
  /** Fields that have one right value for the inode's type: ino, mode, parent, target_len, size. */
  badFields: `SELECT ino, mode, parent, length(target) AS target_len, size FROM inodes
    WHERE (NOT ${IS_DIR('inodes')} AND parent IS NOT NULL) OR (mode & ${F} <> ${LNK} AND target IS NOT NULL)
      OR (${IS_DIR('inodes')} AND size <> 0) OR (mode & ${F} = ${LNK} AND size <> coalesce(length(target), 0)) ORDER BY 1`,
  /** Link counts that are not the entries naming the inode (directories: 2 + subdirectories): ino, mode, nlink, expected. */
  badNlinks: `SELECT i.ino, i.mode, i.nlink, CASE WHEN ${IS_DIR('i')} THEN 2 + coalesce(s.n, 0) ELSE n.n END AS expected FROM inodes i
      LEFT JOIN (SELECT ino, count(*) AS n FROM entries GROUP BY ino) n ON n.ino = i.ino
      LEFT JOIN (SELECT e.parent, count(*) AS n FROM entries e JOIN inodes c ON c.ino = e.ino WHERE ${IS_DIR('c')} GROUP BY e.parent) s ON s.parent = i.ino
    WHERE CASE WHEN ${IS_DIR('i')} THEN (i.ino = 1 OR n.n > 0) AND i.nlink <> 2 + coalesce(s.n, 0) ELSE n.n > 0 AND i.nlink <> n.n END ORDER BY 1`,
  /**
   * Inodes without links, names or entries that no live session holds (orphans): ino, mode, size,
   * and whether an expired session still holds them.
   */
  orphans: `SELECT i.ino, i.mode, i.size, EXISTS (SELECT 1 FROM holds h WHERE h.ino = i.ino) AS held FROM inodes i
    WHERE i.nlink = 0 AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.ino = i.ino) AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.parent = i.ino)
      AND NOT EXISTS (SELECT 1 FROM holds h JOIN sessions s ON s.id = h.session WHERE h.ino = i.ino AND NOT rz_expired(s)) ORDER BY 1`,
  /** Blocks of inodes that are not regular files: ino, mode, n, bytes. */
  blocksNotRegular: `SELECT b.ino, i.mode, count(*) AS n, sum(length(b.data))::bigint AS bytes FROM blocks b JOIN inodes i ON i.ino = b.ino
    WHERE i.mode & ${F} <> ${REG} GROUP BY 1, 2 ORDER BY 1`,
  /** Blocks longer than the block size ($1): ino, blk, length. */
  longBlocks: 'SELECT ino, blk, length(data) AS length FROM blocks WHERE length(data) > $1 ORDER BY 1, 2',
  /** Regular files whose blocks hold bytes past their size (blocks of $1 bytes): ino, size, end. */
  pastSize: `SELECT i.ino, i.size, max(b.blk * $1 + length(b.data)) AS end FROM inodes i JOIN blocks b ON b.ino = i.ino
    WHERE i.mode & ${F} = ${REG} GROUP BY 1, 2 HAVING max(b.blk * $1 + length(b.data)) > i.size ORDER BY 1`,
} as const

export type CheckName = keyof typeof CHECKS
type Row = Record<string, unknown>

/** A statement of a repair. */
export type Statement = [text: string, values?: unknown[]]

/** The repairs, as statements (run in one transaction by PgCheckLink.repair). */
export const REPAIRS = {
  endSession: (id: number): Statement[] => [['DELETE FROM sessions WHERE id = $1', [id]]],
  setSequence: (max: number): Statement[] => [["SELECT setval('ino_seq', $1)", [max]]],
  /** A new root directory (owner 0, mode 0755). */
  createRoot: (sec: number, nsec: number): Statement[] => [
    [`INSERT INTO inodes VALUES (1, ${DIR | 0o755}, 2, 0, 0, 0, 0, $1, $2, $1, $2, $1, $2, 1, NULL)`, [sec, nsec]],
  ],
  /** Inode 1 is not a directory: it moves to a new number (its names, contents, xattrs and holds with it), and 1 becomes a new root. */
  replaceRoot: (sec: number, nsec: number): Statement[] => [
    ["SELECT set_config('razorfs.fsck_ino', nextval('ino_seq')::text, true)"],
    [
      `INSERT INTO inodes SELECT current_setting('razorfs.fsck_ino')::bigint, mode, nlink, uid, gid, rdev, size, atime_s, atime_ns, mtime_s, mtime_ns,
        ctime_s, ctime_ns, NULL, target FROM inodes WHERE ino = 1`,
    ],
    ...['entries', 'blocks', 'xattrs', 'holds'].map((t): Statement => [`UPDATE ${t} SET ino = current_setting('razorfs.fsck_ino')::bigint WHERE ino = 1`]),
    [
      `UPDATE inodes SET mode = ${DIR | 0o755}, nlink = 2, uid = 0, gid = 0, rdev = 0, size = 0, atime_s = $1, atime_ns = $2, mtime_s = $1, mtime_ns = $2,
        ctime_s = $1, ctime_ns = $2, parent = 1, target = NULL WHERE ino = 1`,
      [sec, nsec],
    ],
  ],
  removeEntry: (parent: number, name: Buffer): Statement[] => [['DELETE FROM entries WHERE parent = $1 AND name = $2', [parent, name]]],
  /** /lost+found in the root (owner 0, mode 0700). */
  createLostFound: (sec: number, nsec: number): Statement[] => [
    ["SELECT set_config('razorfs.fsck_ino', nextval('ino_seq')::text, true)"],
    [`INSERT INTO inodes VALUES (current_setting('razorfs.fsck_ino')::bigint, ${DIR | 0o700}, 2, 0, 0, 0, 0, $1, $2, $1, $2, $1, $2, 1, NULL)`, [sec, nsec]],
    ["INSERT INTO entries VALUES (1, '\\x6c6f73742b666f756e64'::bytea, current_setting('razorfs.fsck_ino')::bigint)"],
    ['UPDATE inodes SET nlink = nlink + 1 WHERE ino = 1'],
  ],
  /** A name for `ino` in directory `dir` (lost+found); a directory's parent becomes `dir`, whose link count grows. */
  attach: (dir: number, name: Buffer, ino: number, isDir: boolean): Statement[] => [
    ['INSERT INTO entries VALUES ($1, $2, $3)', [dir, name, ino]],
    ...(isDir
      ? ([
          ['UPDATE inodes SET parent = $1 WHERE ino = $2', [dir, ino]],
          ['UPDATE inodes SET nlink = nlink + 1 WHERE ino = $1', [dir]],
        ] as Statement[])
      : ([['UPDATE inodes SET nlink = 1 WHERE ino = $1', [ino]]] as Statement[])),
  ],
  setField: (ino: number, field: 'parent' | 'target' | 'size' | 'nlink', value: number | null): Statement[] => [
    [`UPDATE inodes SET ${field} = $2 WHERE ino = $1`, [ino, value]],
  ],
  freeInode: (ino: number): Statement[] => [['DELETE FROM inodes WHERE ino = $1 AND nlink = 0', [ino]]],
  dropBlocks: (ino: number): Statement[] => [['DELETE FROM blocks WHERE ino = $1', [ino]]],
  trimBlock: (ino: number, blk: number, size: number): Statement[] => [
    ['UPDATE blocks SET data = substring(data FROM 1 FOR $3) WHERE ino = $1 AND blk = $2', [ino, blk, size]],
  ],
}

/** A live session, as a repair refused for it names it. */
export interface LiveSession {
  id: number
  host: string
  pid: number
  readOnly: boolean
}

export class PgCheckLink {
  private constructor(
    private readonly c: pg.Client,
    readonly writable: boolean,
    readonly meta: VolumeMeta,
    readonly display: string,
  ) {}

  /**
   * Connect to the volume at `url` and check its meta row (ImageError: unreachable, authentication,
   * not a razorfs database, a newer format). Writable: take the repair lock and refuse (RZ_LOCKED)
   * while a session is live; else a read-only snapshot.
   */
  static async open(url: string, writable: boolean, timeoutMs = 30_000): Promise<PgCheckLink> {
    const target: Target = parsePgUrl(url)
    let c: pg.Client
    try {
      c = await connectTo(target, timeoutMs, ' fsck')
    } catch (error) {
      throw new ImageError('RZ_IO', connectProblem(error), target.display)
    }

    try {
      const meta = await volumeMeta(c, target)
      if (meta.formatVersion < PG_FORMAT_VERSION)
        throw new ImageError(
          'RZ_VERSION',
          `schema of format version ${meta.formatVersion}, older than this razorfs checks (${PG_FORMAT_VERSION}); any read-write open upgrades it (razorfs fsck -p)`,
          target.display,
        )
      if (!writable) await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
      else {
        const got = await c.query<Row>(`SELECT pg_try_advisory_lock(${REPAIR_LOCK}) AS ok`)
        if (got.rows[0].ok !== true) throw new ImageError('RZ_LOCKED', 'another razorfs fsck is repairing the volume', target.display)
        const live = (await c.query<Row>('SELECT id, host, client_pid, read_only FROM sessions s WHERE NOT rz_expired(s) ORDER BY id')).rows
        if (live.length > 0) {
          const sessions = live.map(r => ({id: r.id as number, host: r.host as string, pid: r.client_pid as number, readOnly: r.read_only as boolean}))
          const named = sessions.map(s => `${s.host} pid ${s.pid}${s.readOnly ? ' (read-only)' : ''}`).join(', ')
          throw new ImageError(
            'RZ_LOCKED',
            `in use by ${sessions.length} live session${sessions.length === 1 ? '' : 's'} (${named}); repairs need every client gone (fsck -n checks a volume in use)`,
            target.display,
          )
        }
      }

      return new PgCheckLink(c, writable, meta, target.display)
    } catch (error) {
      await c.end().catch(() => {})
      if (error instanceof ImageError) throw error
      throw new ImageError('RZ_IO', `cannot check the volume: ${(error as Error).message}`, target.display)
    }
  }

  async rows(name: CheckName, values: unknown[] = []): Promise<Row[]> {
    return (await this.c.query<Row>(CHECKS[name], values)).rows
  }

  /** Run a repair's statements in one transaction. */
  async repair(statements: Statement[]): Promise<void> {
    if (!this.writable) throw new Error('internal: a repair on a volume opened to check only')
    await this.c.query('BEGIN')
    try {
      for (const [text, values] of statements) await this.c.query(text, values)
      await this.c.query('COMMIT')
    } catch (error) {
      await this.c.query('ROLLBACK').catch(() => {})
      throw error
    }
  }

  /** End the connection of an expired session that is still there (a stopped client), as rz_reap does; another role's is left. */
  async endBackend(session: number): Promise<void> {
    await this.c
      .query(
        `SELECT pg_terminate_backend(s.backend_pid, 5000) FROM sessions s JOIN pg_stat_activity a ON a.pid = s.backend_pid AND a.backend_start = s.backend_start
         WHERE s.id = $1 AND s.backend_pid <> pg_backend_pid()`,
        [session],
      )
      .catch(() => {})
  }

  /** End the snapshot, and the connection (and with it the repair lock). */
  async close(): Promise<void> {
    if (!this.writable) await this.c.query('COMMIT').catch(() => {})
    await this.c.end().catch(() => {})
  }
}
