/**
 * The URL of a volume on PostgreSQL: `postgres://USER:PASSWORD@HOST:PORT/DATABASE?schema=NAME`
 * (or `postgresql://`). A unix socket directory goes in `host=`, as libpq has it
 * (`postgres:///db?host=/run/postgresql&user=me`; `user=`, `password=` and `port=` work there too).
 * The volume lives in one PostgreSQL schema of the database, `razorfs` unless `schema=` names another,
 * so one database can hold several volumes. The user defaults to PGUSER, else the process's user
 * (node-postgres would need $USER); the password to PGPASSWORD, as libpq does.
 */
import os from 'node:os'

import type {ClientConfig} from 'pg'

export const DEFAULT_SCHEMA = 'razorfs'

export interface PgTarget {
  /** What pg's Client takes. */
  config: ClientConfig
  /** The PostgreSQL schema that holds the volume. */
  schema: string
  /** The URL without its password, for messages. */
  display: string
}

/** Is `spec` a PostgreSQL URL (rather than a path)? */
export function isPgUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec)
}

/** Parse a volume URL; throws an Error with a one-line message for one that is not. */
export function parsePgUrl(spec: string): PgTarget {
  let u: URL
  try {
    u = new URL(spec)
  } catch {
    throw new Error(`${spec}: not a PostgreSQL URL (postgres://user@host/database)`)
  }

  if (!isPgUrl(spec)) throw new Error(`${spec}: not a PostgreSQL URL (postgres://user@host/database)`)
  const params = u.searchParams
  const schema = params.get('schema') ?? DEFAULT_SCHEMA
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`${spec}: schema '${schema}' is not a plain lower-case SQL name`)
  const user = decodeURIComponent(u.username) || params.get('user') || process.env.PGUSER || os.userInfo().username
  const host = u.hostname === '' ? (params.get('host') ?? process.env.PGHOST) : decodeURIComponent(u.hostname)
  const config: ClientConfig = {
    user,
    host,
    port: u.port !== '' ? Number(u.port) : params.has('port') ? Number(params.get('port')) : undefined,
    password: u.password !== '' ? decodeURIComponent(u.password) : (params.get('password') ?? process.env.PGPASSWORD),
    database: decodeURIComponent(u.pathname.replace(/^\//, '')) || user,
    application_name: 'razorfs',
  }
  return {config, schema, display: displayPgUrl(spec)}
}

/** A PostgreSQL URL without its password, for messages, mountinfo and status (the same URL always reads the same). */
export function displayPgUrl(spec: string): string {
  const shown = new URL(spec)
  shown.password = ''
  shown.searchParams.delete('password')
  return decodeURIComponent(shown.toString())
}
