/**
 * PgVolume beyond the interface suite: opening what is not a volume (one-line errors), the
 * bridge's timeout, and two volumes on one database as two hosts would have them: in one process,
 * then as two processes racing to create the same names.
 */
import {expect} from 'chai'
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {createInterface} from 'node:readline'
import {fileURLToPath} from 'node:url'

import pg from 'pg'

import {ImageError} from '../../../src/storage/errors.js'
import {PG_FORMAT_VERSION} from '../../../src/storage/pg/schema.js'
import {parsePgUrl} from '../../../src/storage/pg/url.js'
import {PgVolume} from '../../../src/storage/pg/volume.js'
import {ROOT_INO, RENAME_EXCHANGE} from '../../../src/storage/types.js'
import {codeOf} from '../../helpers/errors.js'
import {sql, useSchemas} from '../../helpers/pg.js'

const FILE = {mode: 0o100644, uid: 0, gid: 0}
const DIR = {mode: 0o040755, uid: 0, gid: 0}
const HOST_JS = fileURLToPath(new URL('../../helpers/pg-host.js', import.meta.url))

function imageError(fn: () => unknown): ImageError {
  try {
    fn()
  } catch (error) {
    if (error instanceof ImageError) return error
    throw error
  }

  expect.fail('expected an ImageError')
}

describe('PgVolume', function () {
  this.timeout(120_000)
  const fresh = useSchemas()

  describe('opening', () => {
    it('refuses what is not a razorfs volume, a newer format, a volume made twice, an unreachable server, in one line each', async () => {
      const url = fresh()
      let e = imageError(() => PgVolume.open(url))
      expect(e.code).to.equal('RZ_NO_IMAGE')
      expect(e.message).to.match(/^postgresql:.*: no razorfs volume in schema 'rz_test_\w+'; make one with razorfs init --meta/)
      expect(e.message).to.not.include('\n')

      PgVolume.create(url).close()
      e = imageError(() => PgVolume.create(url))
      expect(e.code).to.equal('RZ_EXISTS')
      await sql(url, 'UPDATE meta SET format_version = 99')
      e = imageError(() => PgVolume.open(url))
      expect(e.code).to.equal('RZ_VERSION')
      expect(e.message).to.include(`schema of format version 99, newer than this razorfs reads (${PG_FORMAT_VERSION})`)
      await sql(url, `UPDATE meta SET format_version = ${PG_FORMAT_VERSION}, magic = 'other'`)
      expect(imageError(() => PgVolume.open(url)).code).to.equal('RZ_BAD_MAGIC')

      const other = fresh()
      await sql(other, `CREATE SCHEMA ${parsePgUrl(other).schema}; CREATE TABLE meta (x int)`)
      e = imageError(() => PgVolume.open(other))
      expect(e.code).to.equal('RZ_BAD_MAGIC')
      expect(e.message).to.include('not a razorfs database')
      const tables = fresh()
      await sql(tables, `CREATE SCHEMA ${parsePgUrl(tables).schema}; CREATE TABLE accounts (x int)`)
      e = imageError(() => PgVolume.open(tables))
      expect(e.code).to.equal('RZ_BAD_MAGIC')
      expect(e.message).to.include("not a razorfs database (schema 'rz_test_")

      e = imageError(() => PgVolume.open('postgresql:///postgres?host=/nonexistent-razorfs-socket-dir'))
      expect(e.message).to.match(/^postgresql:.*: PostgreSQL server unreachable \(/)
      const noDb = new URL(url)
      noDb.searchParams.delete('schema')
      noDb.pathname = '/no_such_database_razorfs'
      expect(imageError(() => PgVolume.open(noDb.toString())).message).to.include('no such database')
    })

    it('upgrades a volume of format 1 (sessions without leases) at open, keeping what it holds', async () => {
      const url = fresh()
      const v = PgVolume.create(url)
      const f = v.mknod(ROOT_INO, 'f', FILE).ino
      v.close()
      // Format 1 as it was: no lease column, no rz_expired, rz_reap by backend.
      await sql(url, 'DROP FUNCTION rz_expired(sessions); ALTER TABLE sessions DROP COLUMN lease_ms; UPDATE meta SET format_version = 1')
      const w = PgVolume.open(url)
      expect(w.meta.formatVersion).to.equal(2)
      expect(w.lookup(ROOT_INO, 'f')).to.equal(f)
      const rows = (await sql(url, 'SELECT lease_ms FROM sessions')).rows
      expect(rows).to.deep.equal([{lease_ms: 30_000}])
      w.close()
    })

    it('create --force replaces a volume', () => {
      const url = fresh()
      const v = PgVolume.create(url)
      v.mknod(ROOT_INO, 'f', FILE)
      v.close()
      const again = PgVolume.create(url, {force: true})
      expect([...again.readdir(ROOT_INO)]).to.deep.equal([])
      again.close()
    })
  })

  it('a call the database does not answer in time fails with EIO, and the volume goes on', async () => {
    const url = fresh()
    PgVolume.create(url).close()
    const v = PgVolume.open(url, {timeoutMs: 500})
    const f = v.mknod(ROOT_INO, 'f', FILE).ino
    // Another client holds the inode's row lock: the volume's change waits for it.
    const {config, schema} = parsePgUrl(url)
    const other = new pg.Client(config)
    await other.connect()
    try {
      await other.query(`SET search_path TO ${schema}`)
      await other.query('BEGIN')
      await other.query('SELECT 1 FROM inodes WHERE ino = $1 FOR UPDATE', [f])
      expect(codeOf(() => v.setattr(f, {mode: 0o600}))).to.equal('EIO')
      await other.query('ROLLBACK')
    } finally {
      await other.end()
    }

    // The late answer is dropped; the next calls get their own.
    expect(v.lookup(ROOT_INO, 'f')).to.equal(f)
    expect(v.setattr(f, {mode: 0o640}).mode).to.equal(0o100640)
    v.close()
  })

  describe('two volumes on one database', () => {
    it('see each other’s changes at once: create, rename, exchange, unlink of a name the other holds open', () => {
      const url = fresh()
      const a = PgVolume.create(url)
      const b = PgVolume.open(url)
      const d = a.mknod(ROOT_INO, 'd', DIR).ino
      const f = a.mknod(d, 'f', FILE).ino
      a.write(f, Buffer.from('from a'), 0)
      expect(b.lookup(d, 'f')).to.equal(f)
      const buf = Buffer.alloc(16)
      expect(buf.subarray(0, b.read(f, buf, 0)).toString()).to.equal('from a')

      a.rename(d, 'f', ROOT_INO, 'g')
      expect([b.lookup(d, 'f'), b.lookup(ROOT_INO, 'g')]).to.deep.equal([0, f])
      b.rename(ROOT_INO, 'g', ROOT_INO, 'd', RENAME_EXCHANGE)
      expect([a.lookup(ROOT_INO, 'd'), a.lookup(ROOT_INO, 'g'), a.lookup(d, '..')]).to.deep.equal([f, d, ROOT_INO])

      expect(
        codeOf(() => b.mknod(ROOT_INO, 'g', FILE)),
        'a name the other made',
      ).to.equal('EEXIST')
      b.retain(f)
      a.unlink(ROOT_INO, 'd')
      expect(a.getattr(f).nlink, 'held open by b: it lives on').to.equal(0)
      b.write(f, Buffer.from('!'), 6)
      expect(buf.subarray(0, a.read(f, buf, 0)).toString()).to.equal('from a!')
      b.release(f)
      expect(codeOf(() => a.getattr(f))).to.equal('ENOENT')
      a.close()
      b.close()
    })

    it('an inode held by a volume that is killed is freed once another opens', () => {
      const url = fresh()
      const a = PgVolume.create(url)
      const b = PgVolume.open(url)
      const f = a.mknod(ROOT_INO, 'f', FILE).ino
      b.retain(f)
      a.unlink(ROOT_INO, 'f')
      b.abandon() // b's process dies without its release
      expect(a.getattr(f).nlink, 'a cannot tell b is gone before a volume opens').to.equal(0)
      PgVolume.open(url).close()
      expect(codeOf(() => a.getattr(f))).to.equal('ENOENT')
      a.close()
    })

    it('two processes creating the same names at once: each name made exactly once, EEXIST for the other', async () => {
      const url = fresh()
      const v = PgVolume.create(url)
      const d = v.mknod(ROOT_INO, 'race', DIR).ino
      const COUNT = 300
      const hosts = [0, 1].map(() => {
        const child = spawn(process.execPath, [HOST_JS, url, 'race', 'race', String(COUNT)], {stdio: ['pipe', 'pipe', 'inherit']})
        const lines = createInterface({input: child.stdout})
        return {child, lines: lines[Symbol.asyncIterator]()}
      })
      for (const h of hosts) expect((await h.lines.next()).value).to.equal('ready')
      for (const h of hosts) h.child.stdin.write('go\n')
      const results = await Promise.all(
        hosts.map(async h => {
          const line = (await h.lines.next()).value as string
          await once(h.child, 'exit')
          return JSON.parse(line) as {won: string[]; lost: string[]; errors: string[]}
        }),
      )
      for (const r of results) expect(r.errors).to.deep.equal([])
      const won = results.flatMap(r => r.won).sort()
      const all = Array.from({length: COUNT}, (_, i) => `n${i}`).sort()
      expect(won, 'each name made once').to.deep.equal(all)
      for (const [i, r] of results.entries()) expect([...r.lost].sort(), `host ${i} lost what the other won`).to.deep.equal([...results[1 - i].won].sort())
      expect([...v.readdir(d)].map(e => e.name.toString()).sort(), 'the directory holds each once').to.deep.equal(all)
      expect(v.getattr(d).nlink).to.equal(2)
      v.close()
    })
  })
})
