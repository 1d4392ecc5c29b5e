/**
 * The kill harness's view of PostgreSQL when the server under test mounts a volume there
 * (`mount -f --meta URL`): which of the server's connections exist and what they are doing
 * (pg_stat_activity: the server's are those named razorfs* that began since the server was
 * started), so that a kill can be aimed at startup or at a moment its transaction is open and the
 * checker can wait until PostgreSQL has ended the connections of a killed server (a statement it
 * was running commits or not by then); and the invariants of the volume's tables that no walk of
 * the tree shows (no live inode without a name, no unlinked inode that nobody holds).
 */
import pg from 'pg'

import {parsePgUrl} from '../../src/storage/pg/url.js'
import {PgVolume} from '../../src/storage/pg/volume.js'
import type {Violations} from './check.js'
import type {Observation} from './observe.js'
import {sleep} from './server.js'

/** The server's connections: begun since `sinceMs`, named razorfs (requests, the listener) or razorfs heartbeat. */
const SERVER_BACKENDS = `FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND application_name LIKE 'razorfs%' AND backend_start >= to_timestamp($1::float8 / 1000)`

export class PgProbe {
  private constructor(
    private readonly client: pg.Client,
    private readonly schema: string,
  ) {}

  static async connect(url: string): Promise<PgProbe> {
    const {config, schema} = parsePgUrl(url)
    const client = new pg.Client({...config, application_name: 'crash checker'})
    await client.connect()
    return new PgProbe(client, schema)
  }

  async close(): Promise<void> {
    await this.client.end()
  }

  private async count(text: string, values: unknown[] = []): Promise<number> {
    return (await this.client.query<{n: number}>(`SELECT count(*)::int AS n ${text}`, values)).rows[0].n
  }

  /** Has a server started at `sinceMs` connected yet (its volume is being opened)? */
  async connected(sinceMs: number): Promise<boolean> {
    return (await this.count(SERVER_BACKENDS, [sinceMs])) > 0
  }

  /** Is the request connection of a server started at `sinceMs` inside a statement or a transaction right now? */
  async inTransaction(sinceMs: number): Promise<boolean> {
    return (await this.count(`${SERVER_BACKENDS} AND application_name = 'razorfs' AND state IN ('active', 'idle in transaction')`, [sinceMs])) > 0
  }

  /** Wait until PostgreSQL has ended every connection of a (killed) server started at `sinceMs`; false if not within `ms`. */
  async waitGone(sinceMs: number, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms
    while ((await this.count(SERVER_BACKENDS, [sinceMs])) > 0) {
      if (Date.now() > deadline) return false
      await sleep(5)
    }

    return true
  }

  /**
   * What a walk cannot see: every inode with a link is one the walk reached (nothing created or
   * unlinked by halves), and every inode without one is held open by a session (an orphan of a
   * killed server, left for the reaper; nothing else keeps an unlinked inode).
   */
  async checkTables(obs: Observation, v: Violations, where: string): Promise<void> {
    const reached = new Set([...obs.entries.values()].map(e => e.ino))
    const s = this.schema
    const linked = await this.count(`FROM ${s}.inodes WHERE nlink > 0`)
    if (linked !== reached.size) v.add(where, `${linked} inodes with links in the volume, but the walk from the root reached ${reached.size}`)
    const loose = await this.count(`FROM ${s}.inodes i WHERE nlink = 0 AND NOT EXISTS (SELECT 1 FROM ${s}.holds h WHERE h.ino = i.ino)`)
    if (loose > 0) v.add(where, `${loose} inodes without a link that no session holds`)
  }

  /**
   * After the final clean unmount: once the sessions of the killed servers are reaped (their
   * leases run out), none is left, nor any hold, nor any inode without a link.
   */
  async checkReaped(url: string, boundMs: number, v: Violations, where: string): Promise<void> {
    const s = this.schema
    const volume = PgVolume.open(url)
    try {
      const deadline = Date.now() + boundMs
      for (;;) {
        volume.reap()
        if ((await this.count(`FROM ${s}.sessions WHERE id <> $1`, [volume.sessionId()])) === 0) break
        if (Date.now() > deadline) {
          v.add(where, `sessions of killed servers still there ${boundMs} ms after the last kill, past their lease`)
          break
        }

        await sleep(100)
      }

      const holds = await this.count(`FROM ${s}.holds`)
      if (holds > 0) v.add(where, `${holds} holds left after every other session was reaped`)
      const orphans = await this.count(`FROM ${s}.inodes WHERE nlink = 0`)
      if (orphans > 0) v.add(where, `${orphans} inodes without a link left after every other session was reaped`)
    } finally {
      volume.close()
    }
  }
}
