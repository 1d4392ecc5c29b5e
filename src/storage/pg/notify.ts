/**
 * Changes made by the other mounts of a shared volume, as they commit: every change NOTIFYs the
 * inodes and names it touched (rz_notify in schema.ts), and each mount LISTENs on a connection of
 * its own, in the event loop of the thread that serves it (not the bridge's, which is synchronous
 * and busy with the mount's own calls). Notifications of this mount's own session are skipped: its
 * replies already told its kernel. What arrives in one read of the socket is coalesced (each inode
 * and name once) and handed to the sink in one batch, on the next turn of the event loop.
 *
 * The payload (docs/FORMAT.md, "Notifications"): the session id, then items separated by spaces:
 * `a<ino>` the inode's attributes changed, `d<ino>` its contents too, `e<parent>:<hex name>` the
 * name in that directory now names another inode or none.
 */
import pg from 'pg'

import type {ChangeSink} from '../volume.js'
import type {PgTarget} from './url.js'

/** What one notification says. */
export interface Notice {
  session: number
  /** inode -> its contents changed too */
  inodes: Map<number, boolean>
  entries: Array<[parent: number, name: Buffer]>
}

/** Parse a payload; items it does not know (a newer writer's) are skipped, a bad one ends the parse. */
export function parseNotice(payload: string): Notice {
  const items = payload.split(' ')
  const notice: Notice = {session: Number(items[0]), inodes: new Map(), entries: []}
  for (let i = 1; i < items.length; i++) {
    const item = items[i]
    const kind = item[0]
    if (kind === 'a' || kind === 'd') {
      const ino = Number(item.slice(1))
      if (!Number.isSafeInteger(ino)) break
      notice.inodes.set(ino, kind === 'd' || notice.inodes.get(ino) === true)
    } else if (kind === 'e') {
      const colon = item.indexOf(':')
      const parent = Number(item.slice(1, colon))
      if (colon < 0 || !Number.isSafeInteger(parent)) break
      notice.entries.push([parent, Buffer.from(item.slice(colon + 1), 'hex')])
    }
  }

  return notice
}

/** Seconds between attempts to listen again after the connection was lost. */
const RETRY_MS = 1000

/**
 * LISTEN on the volume's channel (the schema's name) and hand others' changes to the sink.
 * A lost connection is opened again every second; what changed meanwhile is not replayed, so
 * once listening again the sink is told that changes were missed (docs/ARCHITECTURE.md, "Coherence").
 */
export class PgListener {
  private client: pg.Client | undefined
  private closed = false
  private retry: NodeJS.Timeout | undefined
  private readonly inodes = new Map<number, boolean>()
  private readonly entries = new Map<string, [number, Buffer]>()
  private flushing = false
  /** Notifications received, and those of other sessions. */
  received = 0
  applied = 0

  /** This mount's session id, asked again at each (re)connect: a session reaped during an outage registers again under a new id, and the outage cut this connection too. */
  private ownSession = 0

  constructor(
    private readonly target: PgTarget,
    private readonly sessionId: () => number,
    private readonly sink: ChangeSink,
    private readonly log: (line: string) => void = () => {},
  ) {}

  /** Connect and LISTEN; rejects when the first connection fails (later losses are retried). */
  async start(): Promise<void> {
    const client = new pg.Client(this.target.config)
    client.on('error', () => this.lost(client, 'connection error'))
    client.on('end', () => this.lost(client, 'connection closed'))
    client.on('notification', n => {
      this.received++
      this.take(n.payload ?? '')
    })
    try {
      await client.connect()
      await client.query(`LISTEN ${this.target.schema}`)
      this.ownSession = this.sessionId()
    } catch (error) {
      // Ended, whatever failed: a connection left open here would listen on unseen, and keep the
      // process alive after the mount's end (a server that never exits).
      client.end().catch(() => {})
      throw error
    }

    if (this.closed) {
      await client.end().catch(() => {})
      return
    }

    this.client = client
  }

  private lost(client: pg.Client, why: string): void {
    if (this.closed || this.client !== client) return
    this.client = undefined
    client.end().catch(() => {})
    this.log(`notifications from the other mounts: ${why}; listening again in ${RETRY_MS / 1000} s`)
    this.again()
  }

  private again(): void {
    this.retry = setTimeout(() => {
      this.retry = undefined
      if (this.closed) return
      this.start().then(
        () => {
          if (this.closed) return
          // What the others committed while this was not listening was not heard: once listening
          // again (so that nothing after goes unheard either), everything cached is dropped.
          this.flush()
          this.sink.missed()
          this.log('notifications from the other mounts: listening again; dropped what the kernel had cached')
        },
        () => this.again(),
      )
    }, RETRY_MS)
    this.retry.unref()
  }

  private take(payload: string): void {
    const notice = parseNotice(payload)
    if (notice.session === this.ownSession) return
    this.applied++
    for (const [ino, data] of notice.inodes) this.inodes.set(ino, data || this.inodes.get(ino) === true)
    for (const [parent, name] of notice.entries) this.entries.set(`${parent}:${name.toString('hex')}`, [parent, name])
    if (!this.flushing) {
      this.flushing = true
      setImmediate(() => this.flush())
    }
  }

  private flush(): void {
    this.flushing = false
    for (const [parent, name] of this.entries.values()) this.sink.entry(parent, name)
    for (const [ino, data] of this.inodes) this.sink.inode(ino, data)
    this.entries.clear()
    this.inodes.clear()
  }

  async close(): Promise<void> {
    this.closed = true
    clearTimeout(this.retry)
    const client = this.client
    this.client = undefined
    await client?.end().catch(() => {})
  }
}
