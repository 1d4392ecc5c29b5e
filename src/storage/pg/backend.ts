/**
 * What the worker thread (worker.ts) runs each request on: the volume's connections, its session
 * and the statements.
 *
 * A link is two connections: `op` runs the requests, `beat` refreshes the session's heartbeat on a
 * timer of its own, so that a heartbeat never waits behind a request or a lock. When either
 * connection goes (the server stopped or restarted, the network dropped it, or a heartbeat got no
 * answer within the calls' timeout) the link is dropped whole: the request in flight fails with
 * EIO, and so does every request until a new link is made, which the next request or the timer
 * tries at once (a refused connect fails at once, one that hangs within RECONNECT_TIMEOUT_MS); for
 * RETRY_AFTER_MS after a connect that hung, requests fail without trying.
 * A new link resumes the session: the same row if it is still there (its holds with it), else a
 * new one, re-holding the inodes still open that still exist; those freed meanwhile are `lost`,
 * and calls on them fail with ESTALE. docs/ARCHITECTURE.md, "Sessions and open files".
 */
import os from 'node:os'

import pg from 'pg'

import {FsError, ImageError} from '../errors.js'
import {type BlockStore, PgBlockStore} from './blocks.js'
import {S_IFDIR, S_IFMT, S_IFREG} from '../format.js'
import {INO_ARG, QUERIES} from './queries.js'
import {type Target, type VolumeMeta, connectProblem, connectTo, upgradeVolume, volumeMeta} from './connect.js'
import {PG_FORMAT_VERSION, REPAIR_LOCK} from './schema.js'

/** A new link's connect gives up after this long (or the calls' timeout, if shorter). */
const RECONNECT_TIMEOUT_MS = 5000
/**
 * After a connect that took this long to fail (a host that does not answer), requests fail at
 * once for this long rather than each trying and waiting out RECONNECT_TIMEOUT_MS in turn (a
 * create is two requests); the timer goes on trying meanwhile. A connect refused at once is tried
 * again by the next request.
 */
const RETRY_AFTER_MS = 1000
/** A heartbeat without an answer for the calls' timeout, and at least this long, drops the link (a network that drops packets). */
const WATCHDOG_MIN_MS = 10_000
/** The heartbeat's period: a sixth of the lease, at most 5 s. */
const BEAT_MAX_MS = 5000

type Row = Record<string, unknown>

/** The two connections of a volume: requests, and heartbeats. */
interface Link {
  op: pg.Client
  beat: pg.Client
  dead: boolean
}

/** An error that says the connection is gone (rather than a statement refused). */
function connectionLost(error: unknown): boolean {
  if (error instanceof FsError || error instanceof ImageError) return false
  const e = error as {code?: unknown; syscall?: unknown; message?: string}
  if (typeof e.code === 'string' && (e.code.startsWith('08') || e.code.startsWith('57P'))) return true
  if (e.syscall !== undefined) return true // ECONNRESET, EPIPE, ...
  return /connection terminated|not queryable|connection ended|connection error/i.test(e.message ?? '')
}

export class Backend {
  private link: Link | undefined
  /** Why there is no link, for the EIO of the calls that need one. */
  private problem = 'not connected'
  private blocks!: BlockStore
  /** Between begin and commit or rollback. */
  inTx = false
  /** The link went in the caller's transaction: the server rolled it back; its calls fail until it ends. */
  private txLost = false
  /** Inodes that shrank in the open transaction: they may not grow again before it commits. */
  private readonly shrunk = new Set<number>()
  private session = 0
  private readOnly = false
  private leaseMs = 0
  private meta!: VolumeMeta
  /** The heartbeat found the session row gone (reaped): register again before the next request. */
  private sessionGone = false
  /** This session's open handles per inode, as the holds table has them; and the changes of the open transaction. */
  private readonly held = new Map<number, number>()
  private readonly txHeld = new Map<number, number>()
  /** Inodes held open that were freed while the session was gone, with their handles still to release. */
  private readonly lost = new Map<number, number>()
  private ticker: NodeJS.Timeout | undefined
  private ticks = 0
  private beating = false
  private repairing = false
  /** When the last connect that hung failed (Date.now()), while there is no link. */
  private failedAt: number | undefined
  /** Only with the crash self-test's switch `pg-lazy-commit` (debug.ts): the requests' transaction, open until the timer commits it. */
  private lazyTx = false

  constructor(
    private readonly target: Target,
    /** How long a call may take (the bridge's timeout); a heartbeat without an answer for this long drops the link. */
    private readonly timeoutMs: number,
    /** Run a task on the request queue, after the requests before it. */
    private readonly enqueue: (task: () => Promise<void>) => void,
  ) {}

  private get client(): pg.Client {
    if (this.link === undefined) throw new Error(this.problem)
    return this.link.op
  }

  private async query(name: string, values: unknown[] = []): Promise<Row[]> {
    return (await this.client.query<Row>({name, text: QUERIES[name], values})).rows
  }

  /** Run fn in a transaction of its own, or in the caller's open one. */
  private async atomically<T>(fn: () => Promise<T>): Promise<T> {
    if (this.inTx || this.lazyTx) return fn()
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

  private connectOne(connectTimeoutMs: number, role = ''): Promise<pg.Client> {
    return connectTo(this.target, connectTimeoutMs, role)
  }

  /** Connect both connections (op read-only if the volume is), and make them the link. */
  private async connect(connectTimeoutMs: number): Promise<void> {
    const op = await this.connectOne(connectTimeoutMs)
    let beat: pg.Client
    try {
      beat = await this.connectOne(connectTimeoutMs, ' heartbeat')
    } catch (error) {
      void op.end().catch(() => {})
      throw error
    }

    if (this.readOnly) await op.query('SET default_transaction_read_only = on').catch(() => {})
    const link: Link = {op, beat, dead: false}
    for (const c of [op, beat]) c.on('end', () => this.drop(link, 'the connection to PostgreSQL closed'))
    this.link = link
    if (this.meta !== undefined) this.blocks = new PgBlockStore(op, this.meta.blockSize)
  }

  /** Drop a link that failed; requests fail with EIO (saying why) until a new one is made. */
  private drop(link: Link, why: string): void {
    if (link.dead) return
    link.dead = true
    if (this.link === link) {
      this.link = undefined
      this.problem = `lost the connection to PostgreSQL (${why}); reconnecting`
      if (this.inTx) this.txLost = true
      this.lazyTx = false
    }

    void link.op.end().catch(() => {})
    void link.beat.end().catch(() => {})
  }

  /**
   * Before a request: a link, and a session. Inside the caller's transaction nothing is
   * reconnected: a link lost there lost the transaction, and its calls fail until it ends.
   */
  async ready(): Promise<void> {
    if (this.inTx) {
      if (this.txLost || this.link === undefined) throw new Error(`${this.problem}: the transaction was rolled back`)
      return
    }

    if (this.link === undefined) {
      if (this.failedAt !== undefined && Date.now() - this.failedAt < RETRY_AFTER_MS) throw new Error(this.problem)
      const started = Date.now()
      try {
        await this.connect(Math.min(RECONNECT_TIMEOUT_MS, this.timeoutMs))
      } catch (error) {
        if (Date.now() - started >= RETRY_AFTER_MS) this.failedAt = Date.now()
        this.problem = `PostgreSQL unreachable (${connectProblem(error)}); reconnecting`
        throw new Error(this.problem)
      }

      this.failedAt = undefined
      this.sessionGone = true // resume, or register again
    }

    if (this.sessionGone) await this.resume()
  }

  /**
   * On a new link, or when the heartbeat found the row gone: take up the session again. Its row,
   * if still there, gets the new connection's pid and a heartbeat, and its holds are intact. Else
   * (it expired and was reaped) a new row, and the holds of the inodes still open that still
   * exist; the others were freed with the old session (lost: ESTALE from now on).
   */
  private async resume(): Promise<void> {
    const c = this.client
    await c.query('BEGIN READ WRITE')
    try {
      const found = await c.query(
        `UPDATE sessions SET backend_pid = pg_backend_pid(), heartbeat = now(),
           backend_start = (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()) WHERE id = $1`,
        [this.session],
      )
      if (found.rowCount === 0) {
        const session = await this.register(c)
        const inos = [...this.held.keys()]
        const kept = await c.query<Row>(
          `INSERT INTO holds (session, ino, count)
           SELECT $1, h.ino, h.count FROM unnest($2::bigint[], $3::int[]) AS h(ino, count) JOIN inodes i ON i.ino = h.ino RETURNING holds.ino`,
          [session, inos, inos.map(i => this.held.get(i))],
        )
        await c.query('COMMIT')
        this.session = session
        const still = new Set(kept.rows.map(r => r.ino as number))
        for (const ino of inos) {
          if (still.has(ino)) continue
          this.lost.set(ino, (this.lost.get(ino) ?? 0) + this.held.get(ino)!)
          this.held.delete(ino)
        }
      } else {
        await c.query('COMMIT')
      }
    } catch (error) {
      await c.query('ROLLBACK').catch(() => {})
      // fsck repairing: the request fails (EIO, saying so), and the next one tries again
      throw error instanceof ImageError ? new Error(error.message) : error
    }

    await this.tagSession()
    this.sessionGone = false
  }

  /** Name the session on the request connection (`razorfs.session`), for what the server runs there: on each new link, and after registering again. */
  private async tagSession(): Promise<void> {
    await this.client.query(`SET razorfs.session = ${this.session}`)
  }

  /**
   * A new session row, in the caller's transaction. It holds the repair lock shared till the
   * commit: none is registered while razorfs fsck repairs the volume (REPAIR_LOCK), ImageError RZ_LOCKED then.
   */
  private async register(c: pg.Client): Promise<number> {
    const lock = await c.query<Row>(`SELECT pg_try_advisory_xact_lock_shared(${REPAIR_LOCK}) AS ok`)
    if (lock.rows[0].ok !== true) throw new ImageError('RZ_LOCKED', 'razorfs fsck is repairing the volume; try again when it is done', this.target.display)
    const r = await c.query<Row>(
      `INSERT INTO sessions (backend_pid, backend_start, host, client_pid, read_only, lease_ms)
       SELECT pg_backend_pid(), (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()), $1, $2, $3, $4 RETURNING id`,
      [os.hostname(), process.pid, this.readOnly, this.leaseMs],
    )
    return r.rows[0].id as number
  }

  /** The timer: a heartbeat, or a new link when there is none; every few beats, the reaper. */
  private startTicker(): void {
    const beatMs = Math.max(50, Math.min(BEAT_MAX_MS, Math.floor(this.leaseMs / 6)))
    const reapEvery = Math.max(1, Math.ceil(this.leaseMs / 2 / beatMs))
    this.ticker = setInterval(() => {
      this.ticks++
      if (this.lazyTx) this.enqueue(() => this.commitLazy().catch(() => {}))
      if (this.link === undefined || this.sessionGone) this.repair()
      else void this.beat()
      if (!this.readOnly && this.ticks % reapEvery === 0)
        this.enqueue(() =>
          this.reapNow().then(
            () => {},
            () => {},
          ),
        )
    }, beatMs)
  }

  /** A new link (or session) made by the timer, so that an idle volume resumes too. */
  private repair(): void {
    if (this.repairing) return
    this.repairing = true
    this.enqueue(async () => {
      this.repairing = false
      if (this.inTx || this.ticker === undefined) return
      await this.ready().catch(() => {})
    })
  }

  private async beat(): Promise<void> {
    const link = this.link
    const session = this.session
    if (link === undefined || this.beating) return
    this.beating = true
    const limit = Math.max(this.timeoutMs, WATCHDOG_MIN_MS)
    const watchdog = setTimeout(() => this.drop(link, `no answer to a heartbeat within ${limit} ms`), limit)
    try {
      const r = await link.beat.query({name: 'beat', text: 'UPDATE sessions SET heartbeat = now() WHERE id = $1', values: [session]})
      if (r.rowCount === 0 && this.link === link && this.session === session) {
        this.sessionGone = true
        this.repair()
      }
    } catch (error) {
      this.drop(link, (error as Error).message)
    } finally {
      clearTimeout(watchdog)
      this.beating = false
    }
  }

  /** End the sessions whose lease ran out (rz_reap), now; how many. */
  async reapNow(): Promise<number> {
    if (this.inTx || this.readOnly) return 0
    await this.ready()
    // A heartbeat first: a client that was stopped past its lease and wakes up takes its session
    // back if nobody reaped it yet, rather than reaping itself.
    const mine = await this.client.query('UPDATE sessions SET heartbeat = now() WHERE id = $1', [this.session])
    if (mine.rowCount === 0) {
      this.sessionGone = true
      await this.ready()
    }

    const r = await this.client.query<Row>('SELECT rz_reap(0) AS n')
    return r.rows[0].n as number
  }

  async open(opts: {readOnly: boolean; leaseMs: number}): Promise<{session: number; meta: VolumeMeta}> {
    this.readOnly = opts.readOnly
    this.leaseMs = opts.leaseMs
    try {
      await this.connect(this.target.config.connectionTimeoutMillis ?? this.timeoutMs)
    } catch (error) {
      throw new ImageError('RZ_IO', connectProblem(error), this.target.display)
    }

    const c = this.client
    try {
      this.meta = await volumeMeta(c, this.target)
      if (this.meta.formatVersion < PG_FORMAT_VERSION) {
        await upgradeVolume(c, this.target)
        this.meta = await volumeMeta(c, this.target)
      }

      this.blocks = new PgBlockStore(c, this.meta.blockSize)
      if (!opts.readOnly) await c.query('SELECT rz_reap(0)')
      await c.query('BEGIN READ WRITE')
      this.session = await this.register(c)
      await c.query('COMMIT')
      await this.tagSession()
    } catch (error) {
      this.stop()
      if (error instanceof ImageError) throw error
      throw new ImageError('RZ_IO', `cannot open the volume: ${(error as Error).message}`, this.target.display)
    }

    this.startTicker()
    return {session: this.session, meta: this.meta}
  }

  /** Stop the timer and drop the connections. */
  private stop(): void {
    clearInterval(this.ticker)
    this.ticker = undefined
    if (this.link !== undefined) this.drop(this.link, 'closed')
  }

  /**
   * A clean end: the session goes, and with it the inodes only it held. In an outage (no link, and
   * none to be made) the session is left to expire.
   */
  async close(): Promise<void> {
    clearInterval(this.ticker)
    this.ticker = undefined
    try {
      if (this.inTx) await this.rollback()
      await this.commitLazy()
      await this.ready()
      await this.client.query('SET default_transaction_read_only = off')
      await this.client.query('SELECT rz_reap($1)', [this.session])
    } catch {
      // the server is gone: the session's lease runs out, and the next client's reaper ends it
    } finally {
      this.stop()
    }
  }

  /**
   * As a killed client whose lease then ran out: the server ends the connection, rolling back what
   * is open, and the session stays behind, expired, for the next client's reaper (tests).
   */
  async abandon(): Promise<void> {
    clearInterval(this.ticker)
    this.ticker = undefined
    const link = this.link
    if (link === undefined) return
    await link.beat.query('UPDATE sessions SET lease_ms = 0 WHERE id = $1', [this.session]).catch(() => {})
    const ended = new Promise<void>(resolve => link.op.once('end', resolve))
    await link.op.query('SELECT pg_terminate_backend(pg_backend_pid())').catch(() => {})
    await ended
    this.stop()
  }

  /** The session's id now (it changes when a reaped session registers again). */
  sessionId(): number {
    return this.session
  }

  /** A request about an inode that was freed while this session was gone: ESTALE, without asking. */
  staleCheck(op: string, args: unknown[]): void {
    if (this.lost.size === 0) return
    let ino: unknown
    if (op === 'q') {
      const at = INO_ARG[args[0] as string]
      ino = at === undefined ? undefined : (args[1] as unknown[])[at]
    } else if (op === 'read' || op === 'write' || op === 'retain') ino = args[0]
    else if (op === 'setattr') ino = (args[0] as unknown[])[0]
    if (typeof ino === 'number' && this.lost.has(ino)) throw new FsError('ESTALE', op)
  }

  q(name: string, values: unknown[]): Promise<Row[]> {
    return this.query(name, values)
  }

  private count(ino: number, delta: number): void {
    const map = this.inTx ? this.txHeld : this.held
    const n = (map.get(ino) ?? 0) + delta
    if (n === 0) map.delete(ino)
    else map.set(ino, n)
  }

  async retain(ino: number): Promise<void> {
    await this.query('retain', [this.session, ino])
    this.count(ino, 1)
  }

  async release(ino: number): Promise<void> {
    const lost = this.lost.get(ino)
    if (lost !== undefined) {
      if (lost <= 1) this.lost.delete(ino)
      else this.lost.set(ino, lost - 1)
      return
    }

    await this.query('release', [this.session, ino])
    if ((this.held.get(ino) ?? 0) + (this.txHeld.get(ino) ?? 0) > 0) this.count(ino, -1)
  }

  /**
   * Broken on purpose, for the crash self-test only (debug.ts, `pg-lazy-commit`; worker.ts calls
   * this only with the switch on): run a request inside the one open transaction, under a
   * savepoint of its own, and return before anything commits; the timer commits (commitLazy).
   */
  async lazily<T>(fn: () => Promise<T>): Promise<T> {
    if (this.inTx) return fn()
    if (!this.lazyTx) {
      await this.client.query('BEGIN')
      this.lazyTx = true
    }

    await this.client.query('SAVEPOINT request')
    try {
      const result = await fn()
      await this.client.query('RELEASE SAVEPOINT request')
      return result
    } catch (error) {
      if (this.lazyTx) await this.client.query('ROLLBACK TO SAVEPOINT request').catch(() => {})
      throw error
    }
  }

  /** Commit what `lazily` left open (nothing to do without the switch). */
  private async commitLazy(): Promise<void> {
    if (!this.lazyTx) return
    this.lazyTx = false
    await this.client.query('COMMIT')
  }

  async begin(): Promise<void> {
    await this.commitLazy()
    await this.client.query('BEGIN')
    this.inTx = true
    this.txLost = false
    this.shrunk.clear()
    this.txHeld.clear()
  }

  async commit(): Promise<void> {
    const lost = this.txLost
    this.inTx = false
    this.txLost = false
    const changes = [...this.txHeld]
    this.txHeld.clear()
    if (lost) throw new Error(`${this.problem}: the transaction was rolled back`)
    const r = await this.client.query('COMMIT')
    if (r.command === 'ROLLBACK') throw new Error('the transaction failed and was rolled back')
    for (const [ino, delta] of changes) this.count(ino, delta)
  }

  async rollback(): Promise<void> {
    const lost = this.txLost
    this.inTx = false
    this.txLost = false
    this.txHeld.clear()
    if (!lost && this.link !== undefined) await this.client.query('ROLLBACK')
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

  /** After a request failed: was it the connection? Then the link goes (the next request makes another). */
  failed(error: unknown): boolean {
    const link = this.link
    if (link === undefined) return !(error instanceof FsError || error instanceof ImageError)
    if (!connectionLost(error)) return false
    this.drop(link, (error as Error).message)
    return true
  }
}
