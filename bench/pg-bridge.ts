/**
 * What the synchronous bridge of the PostgreSQL backend costs per call (src/storage/pg/bridge.ts):
 * the same statements timed through PgVolume (caller blocked in Atomics.wait, a worker thread
 * running the query) and straight from an async pg client in this thread, one at a time. Uses
 * RAZORFS_PG_URL, else starts a throwaway cluster as the tests do (test/helpers/pg.ts).
 *
 *   npm run build && node dist/bench/pg-bridge.js [ROUNDS]
 *
 * Prints p50 and p99 in microseconds per operation, and the bridge's share (the difference).
 */
import pg from 'pg'

import {parsePgUrl} from '../src/storage/pg/url.js'
import {PgVolume} from '../src/storage/pg/volume.js'
import {ROOT_INO} from '../src/storage/types.js'
import {dropSchemas, pgUrl, schemaUrl} from '../test/helpers/pg.js'

const ROUNDS = Number(process.argv[2] ?? 2000)
const WARMUP = 200

function percentiles(us: number[]): {p50: number; p99: number} {
  const s = [...us].sort((a, b) => a - b)
  return {p50: s[Math.floor(s.length * 0.5)], p99: s[Math.floor(s.length * 0.99)]}
}

function timeSync(fn: (i: number) => void): {p50: number; p99: number} {
  for (let i = 0; i < WARMUP; i++) fn(i)
  const us: number[] = []
  for (let i = 0; i < ROUNDS; i++) {
    const t = performance.now()
    fn(WARMUP + i)
    us.push((performance.now() - t) * 1000)
  }

  return percentiles(us)
}

async function timeAsync(fn: (i: number) => Promise<unknown>): Promise<{p50: number; p99: number}> {
  for (let i = 0; i < WARMUP; i++) await fn(i)
  const us: number[] = []
  for (let i = 0; i < ROUNDS; i++) {
    const t = performance.now()
    await fn(WARMUP + i)
    us.push((performance.now() - t) * 1000)
  }

  return percentiles(us)
}

async function main(): Promise<void> {
  const server = pgUrl()
  if (server === undefined) process.exit(1)
  const url = schemaUrl(server)
  const volume = PgVolume.create(url)
  const file = volume.mknod(ROOT_INO, 'f', {mode: 0o100644, uid: 0, gid: 0}).ino
  const {config, schema} = parsePgUrl(url)
  const client = new pg.Client(config)
  await client.connect()
  await client.query(`SET search_path TO ${schema}`)

  const rows: Array<[string, {p50: number; p99: number}, {p50: number; p99: number}]> = [
    ['SELECT 1', timeSync(() => volume.ping()), await timeAsync(() => client.query({name: 'one', text: 'SELECT 1'}))],
    [
      'getattr',
      timeSync(() => volume.getattr(file)),
      await timeAsync(() => client.query({name: 'getattr', text: 'SELECT * FROM inodes WHERE ino = $1', values: [file]})),
    ],
    [
      'lookup',
      timeSync(() => volume.lookup(ROOT_INO, 'f')),
      await timeAsync(() =>
        client.query({
          name: 'lookup',
          text: 'SELECT p.mode, p.parent, e.ino FROM inodes p LEFT JOIN entries e ON e.parent = p.ino AND e.name = $2 WHERE p.ino = $1',
          values: [ROOT_INO, Buffer.from('f')],
        }),
      ),
    ],
    [
      'mknod (one function, one commit)',
      timeSync(i => volume.mknod(ROOT_INO, `s${i}`, {mode: 0o100644, uid: 0, gid: 0})),
      await timeAsync(i =>
        client.query({
          name: 'mknod',
          text: 'SELECT * FROM rz_mknod($1, $2, $3, $4, $5, $6, $7, $8, $9)',
          values: [ROOT_INO, Buffer.from(`a${i}`), 0o100644, 0, 0, 0, null, 1, 2],
        }),
      ),
    ],
  ]
  const write = timeSync(i => volume.write(file, Buffer.alloc(4096, i), (i % 256) * 4096))
  const read = timeSync(i => volume.read(file, Buffer.alloc(4096), (i % 256) * 4096))
  await client.end()
  volume.close()
  await dropSchemas([url])

  const f = (n: number): string => n.toFixed(0).padStart(6)
  console.log(`PgVolume through the bridge vs an async pg client in this thread, ${ROUNDS} calls each, µs`)
  console.log('operation                          bridge p50   p99 | async p50   p99 | bridge cost p50')
  for (const [name, bridge, direct] of rows)
    console.log(`${name.padEnd(34)} ${f(bridge.p50)} ${f(bridge.p99)} |    ${f(direct.p50)} ${f(direct.p99)} | ${f(bridge.p50 - direct.p50)}`)
  console.log(`${'write 4 KiB (4 round trips)'.padEnd(34)} ${f(write.p50)} ${f(write.p99)}`)
  console.log(`${'read 4 KiB (2 round trips)'.padEnd(34)} ${f(read.p50)} ${f(read.p99)}`)
}

await main()
