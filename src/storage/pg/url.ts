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

import {displayPgUrl, isPgUrl} from '../../volume-url.js'

export const DEFAULT_SCHEMA = 'razorfs'

export interface PgTarget {
  /** What pg's Client takes. */
  config: ClientConfig
  /** The PostgreSQL schema that holds the volume. */
  schema: string
  /** The URL without its password, for messages. */
  display: string
  /** The session lease asked for with session_timeout=, in milliseconds. */
  leaseMs?: number
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
  let leaseMs: number | undefined
  const timeout = params.get('session_timeout')
  if (timeout !== null) {
    const seconds = Number(timeout)
    if (timeout.trim() === '' || !Number.isFinite(seconds) || seconds <= 0 || seconds > 86_400)
      throw new Error(`${spec}: session_timeout '${timeout}' is not a number of seconds (0 < s <= 86400)`)
    leaseMs = Math.ceil(seconds * 1000)
  }

  return {config, schema, display: displayPgUrl(spec), leaseMs}
}
