/**
 * Connecting to a volume's schema, and what a connection first asks of it: the format (meta row)
 * and, for an older one, its upgrade; and making a new volume there (makeVolume). The Backend's
 * connections and fsck's come from here.
 */
import pg from 'pg'

import {ImageError} from '../errors.js'
import {S_IFDIR} from '../format.js'
import {PG_BLOCK_SIZE, PG_FORMAT_VERSION, PG_MAGIC, schemaStatements, upgradeStatements} from './schema.js'

// int8 comes as a string: a number, if it is one a double holds exactly.
pg.types.setTypeParser(pg.types.builtins.INT8, (text: string) => {
  const n = Number(text)
  if (!Number.isSafeInteger(n)) throw new Error(`a bigint past 2^53 in the database: ${text}`)
  return n
})

/** Where a volume is: the driver's connection settings, its schema, and the URL as shown (no password). */
export interface Target {
  config: pg.ClientConfig
  schema: string
  display: string
}

type Row = Record<string, unknown>

/** The meta row of a volume. */
export interface VolumeMeta {
  formatVersion: number
  blockSize: number
  uuid: string
  createdMs: number
}

/** The meta row, or an ImageError saying why this is not a volume this build reads; an older format is upgraded. */
export async function volumeMeta(c: pg.Client, target: Target): Promise<VolumeMeta> {
  const {display, schema} = target
  let rows: Row[]
  try {
    rows = (await c.query<Row>('SELECT magic, format_version, block_size, uuid, created_ms FROM meta')).rows
  } catch (error) {
    const code = (error as {code?: string}).code
    if (code === '42P01') {
      // No meta table: an empty (or absent) schema holds no volume yet; one with tables, something else.
      const other = await c.query('SELECT 1 FROM pg_tables WHERE schemaname = $1 LIMIT 1', [schema])
      if (other.rowCount === 0)
        throw new ImageError('RZ_NO_IMAGE', `no razorfs volume in schema '${schema}'; make one with razorfs init --meta '${display}'`, display)
      throw new ImageError('RZ_BAD_MAGIC', `not a razorfs database (schema '${schema}' holds other tables)`, display)
    }

    if (code === '42703') throw new ImageError('RZ_BAD_MAGIC', `not a razorfs database (schema '${schema}' holds something else)`, display)
    throw error
  }

  const meta = rows[0]
  if (meta?.magic !== PG_MAGIC) throw new ImageError('RZ_BAD_MAGIC', `not a razorfs database (schema '${schema}' holds something else)`, display)
  const version = meta.format_version as number
  if (version > PG_FORMAT_VERSION)
    throw new ImageError('RZ_VERSION', `schema of format version ${version}, newer than this razorfs reads (${PG_FORMAT_VERSION}): upgrade razorfs`, display)
  return {formatVersion: version, blockSize: meta.block_size as number, uuid: meta.uuid as string, createdMs: meta.created_ms as number}
}

/** Bring an older volume to this format, once (the first client of the new build to open it). */
export async function upgradeVolume(c: pg.Client, target: Target): Promise<void> {
  await c.query('BEGIN READ WRITE')
  try {
    await c.query('LOCK TABLE meta IN EXCLUSIVE MODE')
    const meta = await volumeMeta(c, target)
    if (meta.formatVersion < PG_FORMAT_VERSION) {
      for (let v = meta.formatVersion; v < PG_FORMAT_VERSION; v++) await c.query(upgradeStatements(v))
      await c.query('UPDATE meta SET format_version = $1', [PG_FORMAT_VERSION])
    }

    await c.query('COMMIT')
  } catch (error) {
    await c.query('ROLLBACK').catch(() => {})
    throw error
  }
}

/** A connection to the volume's schema (search_path set, commits durable when they return); a failure is the driver's error (connectProblem words it). */
export async function connectTo(target: Target, connectTimeoutMs: number, role = ''): Promise<pg.Client> {
  const {config, schema} = target
  const client = new pg.Client({
    ...config,
    application_name: `${config.application_name ?? 'razorfs'}${role}`,
    connectionTimeoutMillis: connectTimeoutMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  })
  client.on('error', () => {}) // a lost connection fails the query in flight, and 'end' drops the link
  try {
    await client.connect()
    // A commit that returned is on disk, whatever the server's default: nothing acknowledged is lost.
    await client.query(`SET search_path TO ${schema}; SET synchronous_commit TO on`)
  } catch (error) {
    void client.end().catch(() => {}) // not waited for: a connect that timed out may never end cleanly
    throw error
  }

  return client
}

/** One line for a failed connect: unreachable, authentication, no such database, or the driver's words. */
export function connectProblem(error: unknown): string {
  const e = error as {code?: string; message?: string}
  const code = e.code ?? ''
  if (['ECONNREFUSED', 'ENOENT', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET'].includes(code))
    return `PostgreSQL server unreachable (${e.message})`
  if (code === '28P01' || code === '28000') return `authentication failed (${e.message})`
  if (code === '3D000') return `no such database (${e.message})`
  return `cannot connect to PostgreSQL (${e.message})`
}

/**
 * Make a new volume in the schema: refused (ImageError) if the schema holds other tables, or a
 * volume and not `force`. `check`: only those checks, in a transaction that is rolled back.
 * Whether a volume was there (and, unless `check`, replaced).
 */
export async function makeVolume(
  target: Target,
  timeoutMs: number,
  opts: {force: boolean; check?: boolean; uid: number; gid: number; rootMode: number; sec: number; nsec: number},
): Promise<{volume: boolean}> {
  const {schema, display} = target
  let c: pg.Client
  try {
    c = await connectTo(target, target.config.connectionTimeoutMillis ?? timeoutMs)
  } catch (error) {
    throw new ImageError('RZ_IO', connectProblem(error), display)
  }

  let volume = false
  await c.query('BEGIN')
  try {
    // What the schema holds now: nothing, a razorfs volume (replaced only with force), or
    // tables of something else, which are never touched.
    const tables = (await c.query<Row>('SELECT tablename FROM pg_tables WHERE schemaname = $1', [schema])).rows.map(r => r.tablename as string)
    if (tables.includes('meta')) {
      await c.query('SAVEPOINT probe')
      try {
        await volumeMeta(c, target)
        volume = true
      } catch (error) {
        volume = error instanceof ImageError && error.code === 'RZ_VERSION' // a newer volume is still one
      }

      await c.query('ROLLBACK TO SAVEPOINT probe')
    }

    if (tables.length > 0 && !volume)
      throw new ImageError('RZ_BAD_MAGIC', `schema '${schema}' holds tables that are not a razorfs volume; name another schema (?schema=NAME)`, display)
    if (volume && !opts.force) throw new ImageError('RZ_EXISTS', `a razorfs volume already exists in schema '${schema}' (--force replaces it)`, display)
    if (opts.check) {
      await c.query('ROLLBACK')
      await c.end()
      return {volume}
    }

    if (volume) await c.query(`DROP SCHEMA ${schema} CASCADE`)
    await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
    await c.query(schemaStatements())
    await c.query('INSERT INTO meta (magic, format_version, uuid, created_ms, block_size) VALUES ($1, $2, gen_random_uuid(), $3, $4)', [
      PG_MAGIC,
      PG_FORMAT_VERSION,
      Date.now(),
      PG_BLOCK_SIZE,
    ])
    const t = [opts.sec, opts.nsec]
    await c.query('INSERT INTO inodes VALUES (1, $1, 2, $2, $3, 0, 0, $4, $5, $4, $5, $4, $5, 1, NULL)', [
      S_IFDIR | (opts.rootMode & 0o7777),
      opts.uid,
      opts.gid,
      ...t,
    ])
    await c.query('COMMIT')
  } catch (error) {
    await c.query('ROLLBACK').catch(() => {})
    await c.end().catch(() => {})
    if (error instanceof ImageError) throw error
    throw new ImageError('RZ_IO', `cannot make the volume: ${(error as Error).message}`, display)
  }

  await c.end()
  return {volume}
}
