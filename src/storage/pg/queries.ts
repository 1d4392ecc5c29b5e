/** The statements the worker prepares by name (backend.ts), and which of their arguments name an inode. */
import {S_IFMT, S_IFREG} from '../format.js'

/** The statements of the interface's reads and of the functions of schema.ts, each prepared once per connection. */
export const QUERIES: Record<string, string> = {
  getattr: 'SELECT * FROM inodes WHERE ino = $1',
  lookup: 'SELECT p.mode, p.parent, e.ino FROM inodes p LEFT JOIN entries e ON e.parent = p.ino AND e.name = $2 WHERE p.ino = $1',
  readdir:
    'SELECT p.mode AS pmode, e.name, e.ino, c.mode FROM inodes p LEFT JOIN entries e ON e.parent = p.ino LEFT JOIN inodes c ON c.ino = e.ino WHERE p.ino = $1 ORDER BY e.name',
  peek: 'SELECT e.name, e.ino, c.mode FROM entries e JOIN inodes c ON c.ino = e.ino WHERE e.parent = $1 AND e.name > $2 ORDER BY e.name LIMIT $3',
  getxattr: 'SELECT x.value FROM inodes i LEFT JOIN xattrs x ON x.ino = i.ino AND x.name = $2 WHERE i.ino = $1',
  listxattr: 'SELECT x.name FROM inodes i LEFT JOIN xattrs x ON x.ino = i.ino WHERE i.ino = $1',
  statfs: `SELECT count(*) AS inodes, coalesce(sum(size) FILTER (WHERE mode & ${S_IFMT} = ${S_IFREG}), 0)::bigint AS bytes FROM inodes`,
  mknod: 'SELECT * FROM rz_mknod($1, $2, $3, $4, $5, $6, $7, $8, $9)',
  link: 'SELECT * FROM rz_link($1, $2, $3, $4, $5)',
  remove: 'SELECT rz_remove($1, $2, $3, $4, $5)',
  rename: 'SELECT rz_rename($1, $2, $3, $4, $5, $6, $7)',
  setattr: 'SELECT * FROM rz_setattr($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)',
  setxattr: 'SELECT rz_setxattr($1, $2, $3, $4, $5, $6)',
  removexattr: 'SELECT rz_removexattr($1, $2, $3, $4)',
  retain: 'SELECT rz_retain($1, $2)',
  release: 'SELECT rz_release($1, $2)',
  ping: 'SELECT 1 AS one',
  // razorfs stats --meta: inodes by type (one pass over inodes), the rest from small scans and the catalog.
  statsTypes: `SELECT mode & ${S_IFMT} AS type, count(*) AS n, coalesce(sum(size), 0)::bigint AS bytes, count(*) FILTER (WHERE nlink = 0) AS orphans FROM inodes GROUP BY 1`,
  statsVolume: `SELECT (SELECT count(*) FROM entries) AS entries, (SELECT count(DISTINCT ino) FROM blocks) AS files_with_blocks,
    pg_total_relation_size('blocks')::bigint AS stored,
    (SELECT count(*) FROM sessions WHERE heartbeat + lease_ms * interval '1 millisecond' > now() AND id <> current_setting('razorfs.session')::bigint) AS others,
    (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'm')) AS total`,
  statsTop: 'SELECT parent AS ino, count(*) AS n FROM entries GROUP BY parent ORDER BY n DESC, parent LIMIT $1',
  // razorfs init --from --meta: an inode's ctime as archived (the interface sets it to now on every change).
  setctime: 'UPDATE inodes SET ctime_s = $2, ctime_ns = $3 WHERE ino = $1',
}

/** The argument of each statement that is an inode the caller may hold open (lost inodes: ESTALE). */
export const INO_ARG: Record<string, number> = {getattr: 0, lookup: 0, readdir: 0, peek: 0, getxattr: 0, listxattr: 0, setxattr: 0, removexattr: 0, link: 0}
