/**
 * The worker thread of the PostgreSQL bridge (bridge.ts): it owns the volume's one connection and
 * runs each request, in order, as one transaction (or as part of the caller's, between begin and
 * commit). Errors go back by kind: an errno (a function's RAISE 'ENOENT', or EEXIST for a unique
 * violation: a concurrent create of the same name), an ImageError when opening, else EIO.
 */
import os from 'node:os'
import {type MessagePort, workerData} from 'node:worker_threads'

import pg from 'pg'

import {FsError, ImageError} from '../errors.js'
import {type BlockStore, PgBlockStore} from './blocks.js'
import type {Reply, ReplyError, Request} from './bridge.js'
import {PG_BLOCK_SIZE, PG_FORMAT_VERSION, PG_MAGIC, schemaStatements} from './schema.js'

const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_IFREG = 0o100000

// int8 comes as a string: a number, if it is one a double holds exactly.
pg.types.setTypeParser(pg.types.builtins.INT8, (text: string) => {
  const n = Number(text)
  if (!Number.isSafeInteger(n)) throw new Error(`a bigint past 2^53 in the database: ${text}`)
  return n
})

/** The statements of the interface's reads and of the functions of schema.ts, each prepared once per connection. */
const QUERIES: Record<string, string> = {
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
}

interface Target {
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

class Backend {
  private client!: pg.Client
  private blocks!: BlockStore
  /** Between begin and commit or rollback. */
  inTx = false
  /** Inodes that shrank in the open transaction: they may not grow again before it commits. */
  private readonly shrunk = new Set<number>()
  private session = 0
  private meta!: VolumeMeta

  constructor(private readonly target: Target) {}

  private async query(name: string, values: unknown[] = []): Promise<Row[]> {
    return (await this.client.query<Row>({name, text: QUERIES[name], values})).rows
  }

  /** Run fn in a transaction of its own, or in the caller's open one. */
  private async atomically<T>(fn: () => Promise<T>): Promise<T> {
    if (this.inTx) return fn()
    await this.client.query('BEGIN')
    try {
      const result = await fn()
      await this.client.query('COMMIT')
      return result
    } catch (error) {
      await this.client.query('ROLLBACK').catch(() => {})
      throw error
    }
  }

  private async connect(): Promise<void> {
    const {config, schema, display} = this.target
    const client = new pg.Client(config)
    client.on('error', () => {}) // a lost connection fails the next query (EIO)
    try {
      await client.connect()
    } catch (error) {
      await client.end().catch(() => {})
      throw new ImageError('RZ_IO', connectProblem(error), display)
    }

    this.client = client
    await client.query(`SET search_path TO ${schema}`)
  }

  /** The volume's meta row, or an ImageError saying why this is not a volume this build reads. */
  private async checkFormat(): Promise<VolumeMeta> {
    const {display, schema} = this.target
    let rows: Row[]
    try {
      rows = (await this.client.query<Row>('SELECT magic, format_version, block_size, uuid, created_ms FROM meta')).rows
    } catch (error) {
      const code = (error as {code?: string}).code
      if (code === '42P01') {
        // No meta table: an empty (or absent) schema holds no volume yet; one with tables, something else.
        const other = await this.client.query('SELECT 1 FROM pg_tables WHERE schemaname = $1 LIMIT 1', [schema])
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

  async create(opts: {force: boolean; uid: number; gid: number; rootMode: number; sec: number; nsec: number}): Promise<void> {
    await this.connect()
    const {schema, display} = this.target
    const c = this.client
    await c.query('BEGIN')
    try {
      // What the schema holds now: nothing, a razorfs volume (replaced only with force), or
      // tables of something else, which are never touched.
      const tables = (await c.query<Row>('SELECT tablename FROM pg_tables WHERE schemaname = $1', [schema])).rows.map(r => r.tablename as string)
      let volume = false
      if (tables.includes('meta')) {
        await c.query('SAVEPOINT probe')
        try {
          await this.checkFormat()
          volume = true
        } catch (error) {
          volume = error instanceof ImageError && error.code === 'RZ_VERSION' // a newer volume is still one
        }

        await c.query('ROLLBACK TO SAVEPOINT probe')
      }

      if (tables.length > 0 && !volume)
        throw new ImageError('RZ_BAD_MAGIC', `schema '${schema}' holds tables that are not a razorfs volume; name another schema (?schema=NAME)`, display)
      if (volume && !opts.force) throw new ImageError('RZ_EXISTS', `a razorfs volume already exists in schema '${schema}' (--force replaces it)`, display)
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
  }

  async open(opts: {readOnly: boolean}): Promise<{session: number; meta: VolumeMeta}> {
    await this.connect()
    try {
      this.meta = await this.checkFormat()
      this.blocks = new PgBlockStore(this.client, this.meta.blockSize)
      if (!opts.readOnly) await this.client.query('SELECT rz_reap(0)')
      const r = await this.client.query<Row>(
        `INSERT INTO sessions (backend_pid, backend_start, host, client_pid, read_only)
         SELECT pg_backend_pid(), (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()), $1, $2, $3 RETURNING id`,
        [os.hostname(), process.pid, opts.readOnly],
      )
      this.session = r.rows[0].id as number
      // Whose changes rz_notify reports: the other mounts skip nothing else, this one its own.
      await this.client.query(`SET razorfs.session = ${this.session}`)
      if (opts.readOnly) await this.client.query('SET default_transaction_read_only = on')
    } catch (error) {
      await this.client.end().catch(() => {})
      if (error instanceof ImageError) throw error
      throw new ImageError('RZ_IO', `cannot open the volume: ${(error as Error).message}`, this.target.display)
    }

    return {session: this.session, meta: this.meta}
  }

  /** A clean end: the session goes, and with it the inodes only it held. */
  async close(): Promise<void> {
    if (this.inTx) await this.client.query('ROLLBACK')
    await this.client.query('SET default_transaction_read_only = off')
    await this.client.query('SELECT rz_reap($1)', [this.session])
    await this.client.end()
  }

  /** As a killed client: the server ends the connection, rolling back what is open; the session stays behind. */
  async abandon(): Promise<void> {
    const ended = new Promise<void>(resolve => this.client.once('end', resolve))
    await this.client.query('SELECT pg_terminate_backend(pg_backend_pid())').catch(() => {})
    await ended
  }

  q(name: string, values: unknown[]): Promise<Row[]> {
    return this.query(name, values)
  }

  async begin(): Promise<void> {
    await this.client.query('BEGIN')
    this.inTx = true
    this.shrunk.clear()
  }

  async commit(): Promise<void> {
    this.inTx = false
    const r = await this.client.query('COMMIT')
    if (r.command === 'ROLLBACK') throw new Error('the transaction failed and was rolled back')
  }

  async rollback(): Promise<void> {
    this.inTx = false
    await this.client.query('ROLLBACK')
  }

  async read(ino: number, pos: number, len: number): Promise<Uint8Array> {
    const [c] = await this.query('getattr', [ino])
    if (c === undefined) throw new FsError('ENOENT', 'read')
    const type = (c.mode as number) & S_IFMT
    if (type === S_IFDIR) throw new FsError('EISDIR', 'read')
    if (type !== S_IFREG) throw new FsError('EINVAL', 'read')
    const n = Math.max(0, Math.min(len, (c.size as number) - pos))
    return this.blocks.read(ino, pos, n)
  }

  write(ino: number, pos: number, data: Uint8Array, sec: number, nsec: number): Promise<void> {
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    return this.atomically(async () => {
      await this.client.query({
        name: 'wrote',
        text: 'SELECT rz_wrote($1, $2, $3, $4, $5)',
        values: [ino, pos + bytes.length, this.inTx && this.shrunk.has(ino), sec, nsec],
      })
      await this.blocks.write(ino, pos, bytes)
    })
  }

  /** setattr; with a size, the blocks past it go in the same transaction. */
  setattr(values: unknown[]): Promise<Row[]> {
    const ino = values[0] as number
    const size = values[4] as number | null
    if (size === null) return this.query('setattr', values)
    return this.atomically(async () => {
      if (this.inTx) {
        const [c] = await this.query('getattr', [ino])
        if (c !== undefined && size > (c.size as number) && this.shrunk.has(ino)) throw new FsError('EINVAL', 'truncate')
        if (c !== undefined && size < (c.size as number)) this.shrunk.add(ino)
      }

      const rows = await this.query('setattr', values)
      await this.blocks.truncate(ino, size)
      return rows
    })
  }
}

/** One line for a failed connect: unreachable, authentication, no such database, or the driver's words. */
function connectProblem(error: unknown): string {
  const e = error as {code?: string; message?: string}
  const code = e.code ?? ''
  if (['ECONNREFUSED', 'ENOENT', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET'].includes(code))
    return `PostgreSQL server unreachable (${e.message})`
  if (code === '28P01' || code === '28000') return `authentication failed (${e.message})`
  if (code === '3D000') return `no such database (${e.message})`
  return `cannot connect to PostgreSQL (${e.message})`
}

/**
 * A call that lost a deadlock or a serialization race is run again, when it is a transaction of
 * its own: not inside the caller's, and not one that begins, ends or opens something.
 */
const RETRYABLE = new Set(['40P01', '40001'])
const NOT_RETRIED = new Set(['create', 'open', 'close', 'abandon', 'begin', 'commit', 'rollback'])

function replyError(error: unknown): ReplyError {
  if (error instanceof FsError) return {kind: 'fs', code: error.code as never}
  if (error instanceof ImageError) return {kind: 'image', code: error.code, message: error.message}
  const e = error as {code?: string; message?: string}
  if (e.code === 'P0001' && /^E[A-Z0-9]+$/.test(e.message ?? '')) return {kind: 'fs', code: e.message as never}
  if (e.code === '23505') return {kind: 'fs', code: 'EEXIST'}
  if (e.code === '25006') return {kind: 'fs', code: 'EROFS'}
  return {kind: 'io', message: e.message ?? String(error)}
}

const {port, done, target} = workerData as {port: MessagePort; done: Int32Array; target: Target}
const backend = new Backend(target)
const ops: Record<string, (...args: never[]) => Promise<unknown>> = {
  create: opts => backend.create(opts),
  open: opts => backend.open(opts),
  close: () => backend.close(),
  abandon: () => backend.abandon(),
  q: (name, values) => backend.q(name, values),
  begin: () => backend.begin(),
  commit: () => backend.commit(),
  rollback: () => backend.rollback(),
  read: (ino, pos, len) => backend.read(ino, pos, len),
  write: (ino, pos, data, sec, nsec) => backend.write(ino, pos, data, sec, nsec),
  setattr: values => backend.setattr(values),
}

async function handle(request: Request): Promise<Reply> {
  const op = ops[request.op]
  for (let attempt = 1; ; attempt++) {
    try {
      return {id: request.id, value: await op(...(request.args as never[]))}
    } catch (error) {
      const code = (error as {code?: string}).code ?? ''
      const retry = RETRYABLE.has(code) && !backend.inTx && !NOT_RETRIED.has(request.op) && attempt < 5
      if (!retry) return {id: request.id, error: replyError(error)}
    }
  }
}

let queue = Promise.resolve()
port.on('message', (request: Request) => {
  queue = queue.then(async () => {
    const reply = await handle(request)
    port.postMessage(reply)
    Atomics.store(done, 0, request.id)
    Atomics.notify(done, 0)
  })
})
