/**
 * PgVolume when things go wrong (issue 20): the server stopped and started under a running loop of
 * calls (EIO while it is gone, then the volume resumes by itself with its session and its holds, and
 * every acknowledged change is there), and sessions whose client died (kill -9) or stopped
 * heartbeating (SIGSTOP) reaped by another client after their lease, with their orphans freed,
 * while a session only cut off by an outage is not. Real PostgreSQL: the tests' server is stopped
 * and started with pg_ctl (test/helpers/pg.ts, pgControl).
 */
import {expect} from 'chai'
import {type ChildProcessByStdio, spawn} from 'node:child_process'
import {once} from 'node:events'
import {createInterface} from 'node:readline'
import type {Readable, Writable} from 'node:stream'
import {setImmediate as tick} from 'node:timers/promises'
import {fileURLToPath} from 'node:url'

import {FsError} from '../../../src/storage/errors.js'
import {PgVolume} from '../../../src/storage/pg/volume.js'
import {ROOT_INO} from '../../../src/storage/types.js'
import {codeOf} from '../../helpers/errors.js'
import {sql, usePgControl, useSchemas} from '../../helpers/pg.js'

const FILE = {mode: 0o100644, uid: 0, gid: 0}
const HOST_JS = fileURLToPath(new URL('../../helpers/pg-host.js', import.meta.url))
/** How long a call may take to fail while the server is gone: well under the bridge's 30 s. */
const FAIL_FAST_MS = 10_000

function withLease(url: string, seconds: number): string {
  const u = new URL(url)
  u.searchParams.set('session_timeout', String(seconds))
  return u.toString()
}

async function sessionIds(url: string): Promise<number[]> {
  return (await sql(url, 'SELECT id FROM sessions ORDER BY id')).rows.map(r => Number(r.id))
}

function readAll(v: PgVolume, ino: number): string {
  const buf = Buffer.alloc(4096)
  return buf.subarray(0, v.read(ino, buf, 0)).toString()
}

/** A volume in a process of its own (pg-host.js serve), driven one call per line. */
class Host {
  private readonly lines: AsyncIterator<string>
  constructor(readonly child: ChildProcessByStdio<Writable, Readable, null>) {
    this.lines = createInterface({input: child.stdout})[Symbol.asyncIterator]()
  }

  static async start(url: string): Promise<Host> {
    const host = new Host(spawn(process.execPath, [HOST_JS, url, 'serve'], {stdio: ['pipe', 'pipe', 'inherit']}))
    expect((await host.lines.next()).value).to.equal('ready')
    return host
  }

  async call(op: string, name = '', text = ''): Promise<{ok?: unknown; error?: string}> {
    this.child.stdin.write(`${JSON.stringify([op, name, text])}\n`)
    return JSON.parse((await this.lines.next()).value as string) as {ok?: unknown; error?: string}
  }

  async ok(op: string, name = '', text = ''): Promise<unknown> {
    const r = await this.call(op, name, text)
    expect(r.error, `${op} ${name}`).to.equal(undefined)
    return r.ok
  }

  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = once(this.child, 'exit')
    this.child.kill('SIGKILL')
    await exited
  }
}

/** Is the inode gone (ENOENT)? */
function gone(v: PgVolume, ino: number): boolean {
  try {
    v.getattr(ino)
    return false
  } catch (error) {
    if (error instanceof FsError && error.code === 'ENOENT') return true
    throw error
  }
}

/** Call fn (which reaps) until until() holds; fail after a bound far past the leases used here. */
async function eventually(what: string, fn: () => void, until: () => boolean, boundMs = 60_000): Promise<void> {
  const end = Date.now() + boundMs
  for (;;) {
    fn()
    if (until()) return
    if (Date.now() > end) expect.fail(`${what}: not within ${boundMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

describe('PgVolume: outages and expired sessions', function () {
  this.timeout(180_000)
  const fresh = useSchemas()

  /** A volume a here, and one in a process of its own with a lease of `lease` seconds; both ended after fn. */
  async function withHost(lease: number, fn: (url: string, a: PgVolume, host: Host) => Promise<void>): Promise<void> {
    const url = fresh()
    const a = PgVolume.create(url)
    const host = await Host.start(withLease(url, lease))
    try {
      await fn(url, a, host)
    } finally {
      host.child.kill('SIGCONT')
      await host.kill()
      a.close()
    }
  }

  describe('outages of the server', () => {
    const control = usePgControl()

    for (const mode of ['fast', 'immediate'] as const) {
      it(`(pg_ctl stop -m ${mode}): EIO while it is gone, at once; then the volume resumes with its session and holds, and nothing acknowledged is lost`, async () => {
        const url = fresh()
        const v = PgVolume.create(url)
        const d = v.mknod(ROOT_INO, 'd', {mode: 0o040755, uid: 0, gid: 0}).ino
        // A file held open and unlinked: only this session's hold keeps it.
        const held = v.mknod(ROOT_INO, 'held', FILE).ino
        v.write(held, Buffer.from('still here'), 0)
        v.retain(held)
        v.unlink(ROOT_INO, 'held')
        const session = v.sessionId()
        // A read-only volume beside it resumes too (its connection is read-only, its session row is not).
        const r = PgVolume.open(url, {readOnly: true})
        const readerSession = r.sessionId()

        const acked = new Map<string, number>()
        let i = 0
        let eio = 0
        let slowest = 0
        /** One step of the loop: a create and a write; what returned is acknowledged. */
        const step = (): boolean => {
          const name = `f${i++}`
          const started = Date.now()
          try {
            const ino = v.mknod(d, name, FILE).ino
            acked.set(name, -1)
            v.write(ino, Buffer.from(`data of ${name}`), 0)
            acked.set(name, ino)
            return true
          } catch (error) {
            expect(error).to.be.instanceOf(FsError)
            expect((error as FsError).code, (error as Error).message).to.equal('EIO')
            eio++
            slowest = Math.max(slowest, Date.now() - started)
            return false
          }
        }

        /** Run the loop until the promise settles (and at least `min` more steps), letting its events in. */
        const loopUntil = async (p: Promise<void>, min: number): Promise<void> => {
          let settled = false
          let failure: unknown
          p.then(
            () => (settled = true),
            error => {
              settled = true
              failure = error
            },
          )
          for (let n = 0; !settled || n < min; n++) {
            step()
            await tick()
          }

          if (failure !== undefined) throw failure
        }

        for (let n = 0; n < 20; n++) expect(step()).to.equal(true)
        await loopUntil(control().stop(mode), 0)
        // The server is gone: every call fails with EIO, promptly.
        const down = eio
        await loopUntil(Promise.resolve(), 10)
        expect(eio - down, 'every call while the server is down').to.equal(10)
        expect(codeOf(() => v.getattr(held))).to.equal('EIO')
        expect(slowest, 'a call fails fast when the server is gone').to.be.below(FAIL_FAST_MS)

        await loopUntil(control().start(), 0)
        // Back: the calls succeed again, without reopening.
        let after = 0
        while (after < 20) if (step()) after++
        expect(eio, 'calls failed while the server was down').to.be.greaterThan(0)

        expect(v.sessionId(), 'the same session, taken up again').to.equal(session)
        expect(readAll(v, held), 'the file held open is still there').to.equal('still here')
        expect(r.lookup(d, 'f0'), 'the read-only volume reads again').to.equal(acked.get('f0'))
        expect(codeOf(() => r.mknod(ROOT_INO, 'x', FILE))).to.equal('EROFS')
        expect(r.sessionId()).to.equal(readerSession)
        r.close()
        expect(await sessionIds(url)).to.deep.equal([session])
        const holds = await sql(url, 'SELECT session, ino, count FROM holds')
        expect(holds.rows.map(r => [Number(r.session), Number(r.ino), r.count])).to.deep.equal([[session, held, 1]])

        for (const [name, ino] of acked) {
          const found = v.lookup(d, name)
          expect(found, `${name} was acknowledged`).to.not.equal(0)
          if (ino !== -1) expect(readAll(v, ino), `the write to ${name} was acknowledged`).to.equal(`data of ${name}`)
        }

        v.release(held)
        expect(codeOf(() => v.getattr(held))).to.equal('ENOENT')
        v.close()
        expect(await sessionIds(url)).to.deep.equal([])
      })
    }

    it('a transaction cut by the outage fails whole; the calls after it run on the new connection', async () => {
      const url = fresh()
      const v = PgVolume.create(url)
      const f = v.mknod(ROOT_INO, 'f', FILE).ino
      let stopped: Promise<void> | undefined
      expect(
        codeOf(() =>
          v.transaction(() => {
            v.setattr(f, {mode: 0o600})
            stopped = control().stop('immediate')
            // The server goes while the transaction is open: wait for it here, then try a call.
            const until = Date.now() + 60_000
            while (Date.now() < until) {
              try {
                v.setattr(f, {mode: 0o640})
              } catch (error) {
                if ((error as FsError).code === 'EIO') throw error
              }
            }
          }),
        ),
      ).to.equal('EIO')
      await stopped
      await control().start()
      expect(v.getattr(f).mode, 'nothing of the transaction').to.equal(0o100644)
      v.close()
    })

    it('a server that stops answering the heartbeat (its backend frozen): the connections are dropped and made again, the session kept', async () => {
      const url = fresh()
      const v = PgVolume.create(url, {timeoutMs: 2000}) // the heartbeat's watchdog: 10 s, its floor
      const session = v.sessionId()
      const beats = async (): Promise<number[]> =>
        (await sql(url, "SELECT pid FROM pg_stat_activity WHERE application_name = 'razorfs heartbeat'")).rows.map(r => r.pid as number)
      const [frozen, ...others] = await beats()
      expect(others, 'one volume open').to.deep.equal([])
      process.kill(frozen, 'SIGSTOP')
      try {
        // Calls go on meanwhile; the link is dropped (a call caught in that moment: EIO) and made again.
        const end = Date.now() + 60_000
        let eio = 0
        for (;;) {
          try {
            v.getattr(ROOT_INO)
          } catch (error) {
            if ((error as FsError).code !== 'EIO') throw error
            eio++
          }

          if ((await beats()).some(pid => pid !== frozen)) break
          if (Date.now() > end) expect.fail('the frozen heartbeat connection was not replaced within 60 s')
          await new Promise(resolve => setTimeout(resolve, 200))
        }

        expect(eio, 'at most the call caught in the drop').to.be.at.most(1)
      } finally {
        process.kill(frozen, 'SIGCONT')
      }

      expect(v.sessionId()).to.equal(session)
      expect(v.mknod(ROOT_INO, 'after', FILE).nlink).to.equal(1)
      v.close()
    })

    it('a session cut off for longer than its lease is not reaped when the server comes back (its restart counts as a heartbeat)', async () => {
      const url = fresh()
      const a = PgVolume.create(url)
      const b = PgVolume.open(withLease(url, 4))
      const f = a.mknod(ROOT_INO, 'f', FILE).ino
      b.retain(f)
      a.unlink(ROOT_INO, 'f')
      const session = b.sessionId()
      await control().stop('fast')
      await new Promise(resolve => setTimeout(resolve, 5000)) // past b's lease, counted from its last heartbeat
      await control().start()
      expect(a.reap(), 'nobody reaped').to.equal(0)
      expect(a.getattr(f).nlink, 'b still holds it').to.equal(0)
      expect(b.sessionId()).to.equal(session)
      expect(readAll(b, f)).to.equal('')
      b.release(f)
      expect(codeOf(() => a.getattr(f))).to.equal('ENOENT')
      a.close()
      b.close()
    })
  })

  describe('sessions', () => {
    it('of a client killed with -9: reaped by another client once its lease ran out, its orphan freed', () =>
      withHost(2, async (url, a, host) => {
        const theirs = (await host.ok('session')) as number
        const orphan = (await host.ok('mknod', 'orphan')) as number
        await host.ok('write', 'orphan', 'bytes')
        await host.ok('retain', 'orphan')
        await host.ok('unlink', 'orphan')
        expect(a.getattr(orphan).nlink).to.equal(0)
        expect(await sessionIds(url)).to.include(theirs)
        await host.kill()
        await eventually(
          'the killed session reaped',
          () => a.reap(),
          () => gone(a, orphan),
        )
        expect(await sessionIds(url)).to.deep.equal([a.sessionId()])
        expect((await sql(url, 'SELECT count(*)::int AS n FROM blocks')).rows[0].n, 'its blocks went with it').to.equal(0)
      }))

    it('of a stopped client (SIGSTOP: connected, no heartbeats): reaped, its connection ended; woken, it registers again and keeps what still exists (ESTALE for the rest)', () =>
      withHost(2, async (url, a, host) => {
        const theirs = (await host.ok('session')) as number
        const orphan = (await host.ok('mknod', 'orphan')) as number
        const kept = (await host.ok('mknod', 'kept')) as number
        await host.ok('write', 'kept', 'kept bytes')
        for (const name of ['orphan', 'kept']) await host.ok('retain', name)
        await host.ok('unlink', 'orphan')
        const [{backend_pid: backend}] = (await sql(url, 'SELECT backend_pid FROM sessions WHERE id = $1', [theirs])).rows
        host.child.kill('SIGSTOP')
        await eventually(
          'the stopped session reaped',
          () => a.reap(),
          () => gone(a, orphan),
        )
        expect(await sessionIds(url)).to.deep.equal([a.sessionId()])
        expect(a.getattr(kept).nlink, 'a file with a name stays').to.equal(1)
        const left = await sql(url, 'SELECT pid FROM pg_stat_activity WHERE pid = $1', [backend])
        expect(left.rows, 'its connection was ended by the reaper').to.deep.equal([])

        host.child.kill('SIGCONT')
        // Its connection was ended by the reaper: the first call may fail with EIO, then it is back.
        let read = await host.call('read', 'kept')
        if (read.error === 'EIO') read = await host.call('read', 'kept')
        expect(read).to.deep.equal({ok: 'kept bytes'})
        const now = (await host.ok('session')) as number
        expect(now, 'a new session').to.not.equal(theirs)
        expect((await host.call('read', 'orphan')).error, 'freed while it was gone').to.equal('ESTALE')
        const holds = await sql(url, 'SELECT session, ino, count FROM holds')
        expect(
          holds.rows.map(r => [Number(r.session), Number(r.ino), r.count]),
          'the file still there held again',
        ).to.deep.equal([[now, kept, 1]])

        a.unlink(ROOT_INO, 'kept')
        expect(a.getattr(kept).nlink, 'held by the woken client').to.equal(0)
        await host.ok('release', 'kept')
        await host.ok('release', 'orphan') // a lost one: no error
        expect(codeOf(() => a.getattr(kept))).to.equal('ENOENT')
      }))

    it('a live session is not reaped however often others reap, and keeps its holds', () =>
      withHost(3, async (url, a, host) => {
        const theirs = (await host.ok('session')) as number
        const f = (await host.ok('mknod', 'f')) as number
        await host.ok('retain', 'f')
        await host.ok('unlink', 'f')
        // Longer than its lease: its heartbeats keep it.
        const end = Date.now() + 4000
        while (Date.now() < end) {
          a.reap()
          await new Promise(resolve => setTimeout(resolve, 100))
        }

        expect(await sessionIds(url)).to.include(theirs)
        expect(a.getattr(f).nlink).to.equal(0)
        expect(await host.ok('session')).to.equal(theirs)
      }))
  })
})
