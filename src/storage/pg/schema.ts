/**
 * The schema of a razorfs volume on PostgreSQL, declared once: the tables, and one plpgsql
 * function per namespace or attribute change so that each Volume method is one statement, one
 * round trip and one transaction (docs/FORMAT.md, "The PostgreSQL schema"). Everything lives in
 * one PostgreSQL schema (`razorfs` unless the URL names another), found through search_path.
 *
 * Errors: a function refuses with RAISE EXCEPTION 'ENOENT' (SQLSTATE P0001, the message an errno
 * name); a concurrent insert of the same name fails with unique_violation (23505), which the
 * volume answers with EEXIST. Locks: READ COMMITTED, and every change first locks the rows of the
 * directories it changes (FOR UPDATE, in inode order), then those of the inodes it changes; a
 * directory moved to another parent also takes a schema-wide advisory lock for the loop check.
 *
 * Notifications: every change also NOTIFYs, on the channel named after the schema, the inodes and
 * names it touched (rz_notify; the payload is NOTIFY_FORMAT's), for the other mounts to drop
 * from their kernel caches. PostgreSQL delivers them at commit, and only then.
 */

import {S_IFDIR, S_IFMT, S_IFREG} from '../format.js'

/** The format this build writes and reads; a volume of a newer one is refused. */
export const PG_FORMAT_VERSION = 2
/** The `magic` of the meta row: what makes a schema a razorfs volume. */
export const PG_MAGIC = 'razorfs'
/** Bytes per content block (the last block of a file is as long as its data). */
export const PG_BLOCK_SIZE = 1 << 16
/** How long a session lives without a heartbeat (30 s), unless its client asks for another lease. */
export const DEFAULT_LEASE_MS = 30_000
/** Links of one inode, as the image's LINK_MAX. */
export const PG_LINK_MAX = 65000
/** The names and values of one inode's xattrs, together (the image's limit). */
export const PG_XATTR_LIST_MAX = 65536 + 4096

/**
 * The advisory lock (in the two-int key space, apart from rz_rename's one-bigint lock) that razorfs
 * fsck holds exclusively, for its connection's life, while it repairs a volume; a client holds it
 * shared in the transaction that registers its session, so no session starts during a repair, and
 * fsck, once it holds it, sees every session there will be until it is done.
 */
export const REPAIR_LOCK = `hashtext(current_schema()), ${0x72_66_73_63}`

/** Tables, in creation order. */
const TABLES = `
CREATE TABLE meta (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  magic text NOT NULL,
  format_version int NOT NULL,
  uuid uuid NOT NULL,
  created_ms bigint NOT NULL,
  block_size int NOT NULL
);
CREATE SEQUENCE ino_seq START 2 MAXVALUE 9007199254740991;
CREATE TABLE inodes (
  ino bigint PRIMARY KEY CHECK (ino BETWEEN 1 AND 9007199254740991),
  mode int NOT NULL,
  nlink int NOT NULL,
  uid bigint NOT NULL,
  gid bigint NOT NULL,
  rdev bigint NOT NULL,
  size bigint NOT NULL,
  atime_s bigint NOT NULL, atime_ns int NOT NULL,
  mtime_s bigint NOT NULL, mtime_ns int NOT NULL,
  ctime_s bigint NOT NULL, ctime_ns int NOT NULL,
  parent bigint,
  target bytea
);
CREATE TABLE entries (
  parent bigint NOT NULL REFERENCES inodes,
  name bytea NOT NULL,
  ino bigint NOT NULL REFERENCES inodes,
  PRIMARY KEY (parent, name)
);
CREATE TABLE xattrs (
  ino bigint NOT NULL REFERENCES inodes ON DELETE CASCADE,
  name text NOT NULL,
  value bytea NOT NULL,
  PRIMARY KEY (ino, name)
);
CREATE TABLE blocks (
  ino bigint NOT NULL REFERENCES inodes ON DELETE CASCADE,
  blk bigint NOT NULL,
  data bytea NOT NULL,
  PRIMARY KEY (ino, blk)
);
CREATE TABLE sessions (
  id bigserial PRIMARY KEY,
  backend_pid int NOT NULL,
  backend_start timestamptz,
  host text NOT NULL,
  client_pid int NOT NULL,
  read_only boolean NOT NULL,
  started timestamptz NOT NULL DEFAULT now(),
  heartbeat timestamptz NOT NULL DEFAULT now(),
  lease_ms int NOT NULL CHECK (lease_ms >= 0)
);
CREATE TABLE holds (
  session bigint NOT NULL REFERENCES sessions ON DELETE CASCADE,
  ino bigint NOT NULL REFERENCES inodes ON DELETE CASCADE,
  count int NOT NULL CHECK (count > 0),
  PRIMARY KEY (session, ino)
);
CREATE INDEX holds_ino ON holds (ino);
-- Blocks uncompressed: a read of part of a block fetches only the TOAST chunks it needs.
ALTER TABLE blocks ALTER COLUMN data SET STORAGE EXTERNAL;
`

/**
 * The functions. rz_parent locks a directory that is to change and checks it; rz_drop frees an
 * inode that has neither a link nor a hold.
 */
const FUNCTIONS = `
-- Tell the other mounts what this transaction changed (notify.ts parses it): the session that
-- changed it (the setting razorfs.session; 0 for a writer without one), then the items.
CREATE FUNCTION rz_notify(items text) RETURNS void LANGUAGE sql AS $$
  SELECT pg_notify(current_schema(), coalesce(nullif(current_setting('razorfs.session', true), ''), '0') || ' ' || items)
$$;

-- The items of a notification: a name (parent, name), an inode's attributes, its contents too.
CREATE FUNCTION rz_e(d bigint, n bytea) RETURNS text LANGUAGE sql AS $$ SELECT 'e' || d || ':' || encode(n, 'hex') $$;
CREATE FUNCTION rz_a(i bigint) RETURNS text LANGUAGE sql AS $$ SELECT 'a' || i $$;
CREATE FUNCTION rz_d(i bigint) RETURNS text LANGUAGE sql AS $$ SELECT 'd' || i $$;

CREATE FUNCTION rz_parent(d bigint) RETURNS inodes LANGUAGE plpgsql AS $$
DECLARE p inodes;
BEGIN
  SELECT * INTO p FROM inodes WHERE ino = d FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'ENOENT'; END IF;
  IF p.mode & ${S_IFMT} <> ${S_IFDIR} THEN RAISE EXCEPTION 'ENOTDIR'; END IF;
  IF p.nlink = 0 THEN RAISE EXCEPTION 'ENOENT'; END IF;
  RETURN p;
END $$;

CREATE FUNCTION rz_drop(i bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM holds WHERE ino = i) THEN
    DELETE FROM inodes WHERE ino = i AND nlink = 0;
  END IF;
END $$;

CREATE FUNCTION rz_touch(i bigint, s bigint, ns int, dlinks int DEFAULT 0) RETURNS void LANGUAGE sql AS $$
  UPDATE inodes SET nlink = nlink + dlinks, mtime_s = s, mtime_ns = ns, ctime_s = s, ctime_ns = ns WHERE ino = i
$$;

CREATE FUNCTION rz_mknod(d bigint, n bytea, m int, u bigint, g bigint, dev bigint, tgt bytea, s bigint, ns int)
RETURNS inodes LANGUAGE plpgsql AS $$
DECLARE p inodes; r inodes; dir boolean := m & ${S_IFMT} = ${S_IFDIR};
BEGIN
  p := rz_parent(d);
  IF EXISTS (SELECT 1 FROM entries WHERE parent = d AND name = n) THEN RAISE EXCEPTION 'EEXIST'; END IF;
  IF dir AND p.nlink >= ${PG_LINK_MAX} THEN RAISE EXCEPTION 'EMLINK'; END IF;
  INSERT INTO inodes VALUES (nextval('ino_seq'), m, CASE WHEN dir THEN 2 ELSE 1 END, u, g, dev,
    coalesce(length(tgt), 0), s, ns, s, ns, s, ns, CASE WHEN dir THEN d END, tgt) RETURNING * INTO r;
  INSERT INTO entries VALUES (d, n, r.ino);
  PERFORM rz_touch(d, s, ns, CASE WHEN dir THEN 1 ELSE 0 END);
  PERFORM rz_notify(rz_e(d, n) || ' ' || rz_a(d));
  RETURN r;
END $$;

CREATE FUNCTION rz_link(i bigint, d bigint, n bytea, s bigint, ns int) RETURNS inodes LANGUAGE plpgsql AS $$
DECLARE c inodes;
BEGIN
  PERFORM rz_parent(d);
  SELECT * INTO c FROM inodes WHERE ino = i FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'ENOENT'; END IF;
  IF c.mode & ${S_IFMT} = ${S_IFDIR} THEN RAISE EXCEPTION 'EPERM'; END IF;
  IF c.nlink = 0 THEN RAISE EXCEPTION 'ENOENT'; END IF;
  IF c.nlink >= ${PG_LINK_MAX} THEN RAISE EXCEPTION 'EMLINK'; END IF;
  IF EXISTS (SELECT 1 FROM entries WHERE parent = d AND name = n) THEN RAISE EXCEPTION 'EEXIST'; END IF;
  INSERT INTO entries VALUES (d, n, i);
  PERFORM rz_touch(d, s, ns);
  UPDATE inodes SET nlink = nlink + 1, ctime_s = s, ctime_ns = ns WHERE ino = i RETURNING * INTO c;
  PERFORM rz_notify(rz_e(d, n) || ' ' || rz_a(d) || ' ' || rz_a(i));
  RETURN c;
END $$;

-- unlink (dir false) and rmdir (dir true)
CREATE FUNCTION rz_remove(d bigint, n bytea, dir boolean, s bigint, ns int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE c inodes; i bigint;
BEGIN
  PERFORM rz_parent(d);
  SELECT ino INTO i FROM entries WHERE parent = d AND name = n;
  IF NOT FOUND THEN RAISE EXCEPTION 'ENOENT'; END IF;
  SELECT * INTO c FROM inodes WHERE ino = i FOR UPDATE;
  IF dir THEN
    IF c.mode & ${S_IFMT} <> ${S_IFDIR} THEN RAISE EXCEPTION 'ENOTDIR'; END IF;
    IF EXISTS (SELECT 1 FROM entries WHERE parent = i) THEN RAISE EXCEPTION 'ENOTEMPTY'; END IF;
    UPDATE inodes SET nlink = 0, ctime_s = s, ctime_ns = ns WHERE ino = i;
  ELSE
    IF c.mode & ${S_IFMT} = ${S_IFDIR} THEN RAISE EXCEPTION 'EISDIR'; END IF;
    UPDATE inodes SET nlink = nlink - 1, ctime_s = s, ctime_ns = ns WHERE ino = i;
  END IF;
  DELETE FROM entries WHERE parent = d AND name = n;
  PERFORM rz_touch(d, s, ns, CASE WHEN dir THEN -1 ELSE 0 END);
  PERFORM rz_notify(rz_e(d, n) || ' ' || rz_a(d) || ' ' || rz_a(i));
  PERFORM rz_drop(i);
END $$;

-- Is directory x the directory d or below it?
CREATE FUNCTION rz_within(x bigint, d bigint) RETURNS boolean LANGUAGE sql STABLE AS $$
  WITH RECURSIVE up(ino) AS (
    SELECT x
    UNION ALL
    SELECT i.parent FROM inodes i JOIN up ON i.ino = up.ino WHERE up.ino <> 1
  ) SELECT EXISTS (SELECT 1 FROM up WHERE ino = d)
$$;

-- flags: 1 RENAME_NOREPLACE, 2 RENAME_EXCHANGE (checked by the caller)
CREATE FUNCTION rz_rename(op bigint, oname bytea, np bigint, nname bytea, flags int, s bigint, ns int)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE a inodes; b inodes; src inodes; dst inodes; si bigint; di bigint;
  exchange boolean := flags & 2 <> 0; sdir boolean; ddir boolean := false;
BEGIN
  PERFORM 1 FROM inodes WHERE ino IN (op, np) ORDER BY ino FOR UPDATE;
  a := rz_parent(op);
  b := rz_parent(np);
  SELECT ino INTO si FROM entries WHERE parent = op AND name = oname;
  IF NOT FOUND THEN RAISE EXCEPTION 'ENOENT'; END IF;
  SELECT ino INTO di FROM entries WHERE parent = np AND name = nname;
  IF di IS NULL AND exchange THEN RAISE EXCEPTION 'ENOENT'; END IF;
  IF di IS NOT NULL AND flags & 1 <> 0 THEN RAISE EXCEPTION 'EEXIST'; END IF;
  IF si = di THEN RETURN; END IF;
  PERFORM 1 FROM inodes WHERE ino IN (si, di) ORDER BY ino FOR UPDATE;
  SELECT * INTO src FROM inodes WHERE ino = si;
  sdir := src.mode & ${S_IFMT} = ${S_IFDIR};
  IF di IS NOT NULL THEN
    SELECT * INTO dst FROM inodes WHERE ino = di;
    ddir := dst.mode & ${S_IFMT} = ${S_IFDIR};
  END IF;
  IF op <> np AND (sdir OR (exchange AND ddir)) THEN
    PERFORM pg_advisory_xact_lock(hashtext(current_schema()));
    IF sdir AND rz_within(np, si) THEN RAISE EXCEPTION 'EINVAL'; END IF;
    IF exchange AND ddir AND rz_within(op, di) THEN RAISE EXCEPTION 'EINVAL'; END IF;
  END IF;
  IF exchange THEN
    UPDATE entries SET ino = di WHERE parent = op AND name = oname;
    UPDATE entries SET ino = si WHERE parent = np AND name = nname;
    IF op <> np AND sdir <> ddir THEN
      IF sdir AND b.nlink >= ${PG_LINK_MAX} OR ddir AND a.nlink >= ${PG_LINK_MAX} THEN RAISE EXCEPTION 'EMLINK'; END IF;
    END IF;
    IF op <> np THEN
      UPDATE inodes SET parent = np WHERE ino = si AND sdir;
      UPDATE inodes SET parent = op WHERE ino = di AND ddir;
    END IF;
    UPDATE inodes SET ctime_s = s, ctime_ns = ns WHERE ino IN (si, di);
    PERFORM rz_touch(op, s, ns, CASE WHEN op = np THEN 0 ELSE ddir::int - sdir::int END);
    IF op <> np THEN PERFORM rz_touch(np, s, ns, sdir::int - ddir::int); END IF;
    PERFORM rz_notify(concat_ws(' ', rz_e(op, oname), rz_e(np, nname), rz_a(op), rz_a(np), rz_a(si), rz_a(di)));
    RETURN;
  END IF;
  IF di IS NOT NULL THEN
    IF sdir AND NOT ddir THEN RAISE EXCEPTION 'ENOTDIR'; END IF;
    IF ddir AND NOT sdir THEN RAISE EXCEPTION 'EISDIR'; END IF;
    IF ddir AND EXISTS (SELECT 1 FROM entries WHERE parent = di) THEN RAISE EXCEPTION 'ENOTEMPTY'; END IF;
  ELSIF sdir AND op <> np AND b.nlink >= ${PG_LINK_MAX} THEN
    RAISE EXCEPTION 'EMLINK';
  END IF;
  IF di IS NOT NULL THEN
    DELETE FROM entries WHERE parent = np AND name = nname;
    UPDATE inodes SET nlink = CASE WHEN ddir THEN 0 ELSE nlink - 1 END, ctime_s = s, ctime_ns = ns WHERE ino = di;
  END IF;
  UPDATE entries SET parent = np, name = nname WHERE parent = op AND name = oname;
  UPDATE inodes SET parent = CASE WHEN sdir THEN np END, ctime_s = s, ctime_ns = ns WHERE ino = si;
  -- links of the parents: a directory that moves leaves op for np; a directory replaced leaves np
  PERFORM rz_touch(op, s, ns, CASE WHEN sdir AND op <> np THEN -1 ELSE 0 END);
  IF op <> np THEN PERFORM rz_touch(np, s, ns, sdir::int - ddir::int);
  ELSIF ddir THEN PERFORM rz_touch(np, s, ns, -1);
  END IF;
  PERFORM rz_notify(concat_ws(' ', rz_e(op, oname), rz_e(np, nname), rz_a(op), rz_a(np), rz_a(si), rz_a(di)));
  IF di IS NOT NULL THEN PERFORM rz_drop(di); END IF;
END $$;

-- setattr without a size; returns the inode after. m: permission bits or NULL; times: NULL = keep.
CREATE FUNCTION rz_setattr(i bigint, m int, u bigint, g bigint, sz bigint, at_s bigint, at_ns int, mt_s bigint, mt_ns int, s bigint, ns int)
RETURNS inodes LANGUAGE plpgsql AS $$
DECLARE c inodes;
BEGIN
  SELECT * INTO c FROM inodes WHERE ino = i FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'ENOENT'; END IF;
  IF sz IS NOT NULL THEN
    IF c.mode & ${S_IFMT} = ${S_IFDIR} THEN RAISE EXCEPTION 'EISDIR'; END IF;
    IF c.mode & ${S_IFMT} <> ${S_IFREG} THEN RAISE EXCEPTION 'EINVAL'; END IF;
  END IF;
  UPDATE inodes SET
    mode = CASE WHEN m IS NULL THEN mode ELSE (mode & ${S_IFMT}) | (m & 4095) END,
    uid = coalesce(u, uid), gid = coalesce(g, gid), size = coalesce(sz, size),
    atime_s = coalesce(at_s, atime_s), atime_ns = coalesce(at_ns, atime_ns),
    mtime_s = CASE WHEN mt_s IS NOT NULL THEN mt_s WHEN sz IS NOT NULL THEN s ELSE mtime_s END,
    mtime_ns = CASE WHEN mt_s IS NOT NULL THEN mt_ns WHEN sz IS NOT NULL THEN ns ELSE mtime_ns END,
    ctime_s = s, ctime_ns = ns
  WHERE ino = i RETURNING * INTO c;
  PERFORM rz_notify(CASE WHEN sz IS NULL THEN rz_a(i) ELSE rz_d(i) END);
  RETURN c;
END $$;

-- The inode a write or truncation changes, locked and checked: a regular file.
CREATE FUNCTION rz_regular(i bigint) RETURNS inodes LANGUAGE plpgsql AS $$
DECLARE c inodes;
BEGIN
  SELECT * INTO c FROM inodes WHERE ino = i FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'ENOENT'; END IF;
  IF c.mode & ${S_IFMT} = ${S_IFDIR} THEN RAISE EXCEPTION 'EISDIR'; END IF;
  IF c.mode & ${S_IFMT} <> ${S_IFREG} THEN RAISE EXCEPTION 'EINVAL'; END IF;
  RETURN c;
END $$;

-- A write of bytes up to e: the file locked and checked, its size grown, m and ctime set.
-- nogrow: the file shrank in this transaction and may not grow before it commits.
CREATE FUNCTION rz_wrote(i bigint, e bigint, nogrow boolean, s bigint, ns int) RETURNS inodes LANGUAGE plpgsql AS $$
DECLARE c inodes;
BEGIN
  c := rz_regular(i);
  IF nogrow AND e > c.size THEN RAISE EXCEPTION 'EINVAL'; END IF;
  UPDATE inodes SET size = greatest(size, e), mtime_s = s, mtime_ns = ns, ctime_s = s, ctime_ns = ns
  WHERE ino = i RETURNING * INTO c;
  PERFORM rz_notify(rz_d(i));
  RETURN c;
END $$;

-- The block store (blocks.ts): bytes piece at off of block b, zeros before them if the block is shorter.
CREATE FUNCTION rz_block_write(i bigint, b bigint, off int, piece bytea) RETURNS void LANGUAGE plpgsql AS $$
DECLARE d bytea;
BEGIN
  SELECT data INTO d FROM blocks WHERE ino = i AND blk = b FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO blocks VALUES (i, b, CASE WHEN off = 0 THEN piece ELSE decode(repeat('00', off), 'hex') || piece END);
    RETURN;
  END IF;
  IF length(d) < off THEN d := d || decode(repeat('00', off - length(d)), 'hex'); END IF;
  UPDATE blocks SET data = overlay(d PLACING piece FROM off + 1 FOR length(piece)) WHERE ino = i AND blk = b;
END $$;

-- Cut an inode's blocks at byte sz (blocks of bs bytes).
CREATE FUNCTION rz_block_truncate(i bigint, sz bigint, bs int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM blocks WHERE ino = i AND blk * bs >= sz;
  UPDATE blocks SET data = substring(data FROM 1 FOR (sz - blk * bs)::int)
  WHERE ino = i AND blk = sz / bs AND length(data) > sz - blk * bs;
END $$;

-- flags: 1 XATTR_CREATE, 2 XATTR_REPLACE
CREATE FUNCTION rz_setxattr(i bigint, n text, v bytea, flags int, s bigint, ns int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE had boolean; total bigint;
BEGIN
  PERFORM 1 FROM inodes WHERE ino = i FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'ENOENT'; END IF;
  had := EXISTS (SELECT 1 FROM xattrs WHERE ino = i AND name = n);
  IF had AND flags & 1 <> 0 THEN RAISE EXCEPTION 'EEXIST'; END IF;
  IF NOT had AND flags & 2 <> 0 THEN RAISE EXCEPTION 'ENODATA'; END IF;
  SELECT coalesce(sum(octet_length(name) + length(value)), 0) INTO total FROM xattrs WHERE ino = i AND name <> n;
  IF total + octet_length(n) + length(v) > ${PG_XATTR_LIST_MAX} THEN RAISE EXCEPTION 'ENOSPC'; END IF;
  INSERT INTO xattrs VALUES (i, n, v) ON CONFLICT (ino, name) DO UPDATE SET value = EXCLUDED.value;
  UPDATE inodes SET ctime_s = s, ctime_ns = ns WHERE ino = i;
  PERFORM rz_notify(rz_a(i));
END $$;

CREATE FUNCTION rz_removexattr(i bigint, n text, s bigint, ns int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM inodes WHERE ino = i FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'ENOENT'; END IF;
  DELETE FROM xattrs WHERE ino = i AND name = n;
  IF NOT FOUND THEN RAISE EXCEPTION 'ENODATA'; END IF;
  UPDATE inodes SET ctime_s = s, ctime_ns = ns WHERE ino = i;
  PERFORM rz_notify(rz_a(i));
END $$;

CREATE FUNCTION rz_retain(sess bigint, i bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM inodes WHERE ino = i FOR UPDATE;
  IF NOT FOUND THEN RAISE EXCEPTION 'ENOENT'; END IF;
  INSERT INTO holds VALUES (sess, i, 1) ON CONFLICT (session, ino) DO UPDATE SET count = holds.count + 1;
END $$;

CREATE FUNCTION rz_release(sess bigint, i bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM inodes WHERE ino = i FOR UPDATE;
  DELETE FROM holds WHERE session = sess AND ino = i AND count = 1;
  IF NOT FOUND THEN
    UPDATE holds SET count = count - 1 WHERE session = sess AND ino = i;
  ELSE
    PERFORM rz_drop(i);
  END IF;
END $$;

`

/**
 * Sessions (format 2): a session is a lease. Its client refreshes `heartbeat` every few seconds on
 * a connection of its own; one whose heartbeat is older than its `lease_ms` is dead. The server's
 * own start counts as a heartbeat of every session, so that clients get a whole lease to come back
 * after a restart of the server. The backend pid plays no part: a client that reconnects has a new
 * one, and keeps its session.
 */
const SESSION_FUNCTIONS = `
CREATE OR REPLACE FUNCTION rz_expired(s sessions) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT greatest(s.heartbeat, pg_postmaster_start_time()) + s.lease_ms * interval '1 millisecond' < now()
$$;

-- End the sessions whose lease ran out and free the inodes they alone held; with own (a session
-- id), end that one too (a clean close). The connection of an expired session that is still there
-- (a stopped process) is ended first, and with it its open transaction and its locks; should it
-- wake up, it finds its session gone and registers again.
CREATE OR REPLACE FUNCTION rz_reap(own bigint) RETURNS int LANGUAGE plpgsql AS $$
DECLARE n int; victim int;
BEGIN
  FOR victim IN SELECT s.backend_pid FROM sessions s JOIN pg_stat_activity a ON a.pid = s.backend_pid AND a.backend_start = s.backend_start
             WHERE s.id <> own AND rz_expired(s) AND s.backend_pid <> pg_backend_pid() LOOP
    BEGIN
      PERFORM pg_terminate_backend(victim, 5000);
    EXCEPTION WHEN OTHERS THEN
      NULL; -- another role's connection: its locks, if any, are waited for below
    END;
  END LOOP;
  WITH dead AS (DELETE FROM sessions s WHERE s.id = own OR rz_expired(s) RETURNING id) SELECT count(*) INTO n FROM dead;
  DELETE FROM inodes i WHERE i.nlink = 0 AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.ino = i.ino);
  RETURN n;
END $$;
`

/** The statements that make a new volume's schema in an empty PostgreSQL schema (search_path set). */
export function schemaStatements(): string {
  return TABLES + FUNCTIONS + SESSION_FUNCTIONS
}

/**
 * The statements that bring a volume of an older format to this one (search_path set), in the
 * transaction that then sets meta.format_version. Format 1 had no leases (a session was dead when
 * its backend was; its sessions get the default lease) and no notifications.
 */
export function upgradeStatements(from: number): string {
  if (from !== 1) throw new Error(`no upgrade from format version ${from}`)
  // The change functions of format 2 notify (rz_notify); their signatures are format 1's.
  return `ALTER TABLE sessions ADD COLUMN lease_ms int NOT NULL CHECK (lease_ms >= 0) DEFAULT ${DEFAULT_LEASE_MS};
ALTER TABLE sessions ALTER COLUMN lease_ms DROP DEFAULT;
${FUNCTIONS.replaceAll('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION')}
${SESSION_FUNCTIONS}`
}
