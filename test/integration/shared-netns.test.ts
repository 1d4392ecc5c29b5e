/**
 * One volume on PostgreSQL mounted by two hosts that each have a network of their own (issue 20):
 * each `razorfs mount -f --meta URL` runs in a network namespace joined to the test's by a veth
 * pair (test/helpers/netns.ts), and reaches PostgreSQL over TCP across it, through a relay that
 * stands for the route to the database host. The mounts share the test's mount namespace, so the
 * test uses both mountpoints as two hosts' shells would.
 *
 * The relay runs in this process's event loop, so every file operation here is asynchronous
 * (fs.promises, in libuv's pool): a synchronous one would block the relay that the server serving it
 * needs.
 */
import {expect} from 'chai'
import crypto from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import path from 'node:path'

import {PgVolume} from '../../src/storage/pg/volume.js'
import {parsePgUrl} from '../../src/storage/pg/url.js'
import {type Mounted, mount, mountDirs} from '../helpers/mount.js'
import {type NetHost, makeNetHosts, netnsUnavailable} from '../helpers/netns.js'
import {dropSchemas, schemaUrl, usePg} from '../helpers/pg.js'
import {LEASE_S} from '../helpers/two-hosts.js'

/** How long a host may take to see the other's change, or to come back after its cable is plugged in. */
const SEEN_WITHIN_MS = 15_000
const LATENCY_SAMPLES = 50
/** How long a call of a host cut off may hang before it fails. */
const FAILS_WITHIN_MS = 10_000

async function until(what: string, cond: () => Promise<boolean>, ms = SEEN_WITHIN_MS): Promise<number> {
  const start = performance.now()
  while (!(await cond())) {
    if (performance.now() - start > ms) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 1))
  }

  return performance.now() - start
}

const exists = (p: string): Promise<boolean> =>
  fsp.stat(p).then(
    () => true,
    () => false,
  )

/** The errno code of `p` rejecting, or 'OK'. */
const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'OK',
    (error: NodeJS.ErrnoException) => error.code ?? String(error),
  )

describe('one volume on PostgreSQL mounted by two hosts in network namespaces of their own', function () {
  this.timeout(120_000)
  const server = usePg()
  let net: Awaited<ReturnType<typeof makeNetHosts>> | undefined
  let hosts: NetHost[] = []
  let mounts: Mounted[] = []
  let dirs: ReturnType<typeof mountDirs>
  let url = ''
  const A = (...parts: string[]): string => path.join(mounts[0].mnt, ...parts)
  const B = (...parts: string[]): string => path.join(mounts[1].mnt, ...parts)

  before(async function () {
    const why = netnsUnavailable()
    if (why !== undefined) {
      if (process.env.CI !== undefined && process.env.CI !== '') throw new Error(`CI: ${why}`)
      console.warn(`\n  !!! SKIPPING the network-namespace tests: ${why}\n`)
      this.skip()
    }
  })

  beforeEach(async () => {
    url = schemaUrl(server())
    PgVolume.create(url).close()
    net = await makeNetHosts(url, 2)
    hosts = net.hosts
    dirs = mountDirs('razorfs-netns-')
    const {config, schema} = parsePgUrl(url)
    mounts = []
    for (const [i, host] of hosts.entries()) {
      // The host's URL: TCP to the relay on its link, the same database and schema.
      const own = new URL(`postgresql://${encodeURIComponent(config.user!)}@${host.server}/${encodeURIComponent(config.database!)}`)
      own.searchParams.set('schema', schema)
      own.searchParams.set('session_timeout', String(LEASE_S))
      const mnt = i === 0 ? dirs.mnt : path.join(dirs.root, `mnt-${i}`)
      mounts.push(await mount({dataDir: dirs.dataDir, meta: own.toString(), mnt, prefix: host.prefix}))
    }
  })

  afterEach(async () => {
    for (const host of hosts) host.restore()
    for (const m of mounts) {
      const code = await m.stop()
      expect(code, m.output()).to.equal(0)
      expect(m.output()).not.to.match(/unexpected error/)
    }

    mounts = []
    dirs?.remove()
    await net?.remove()
    net = undefined
    await dropSchemas([url])
  })

  it('each host reaches PostgreSQL over its own link; data written and closed on A is read whole on B; changes are seen across, latency printed', async () => {
    // The calls' connection, the heartbeat's and the listener's, each host through its own relay.
    for (const [i, host] of hosts.entries()) expect(host.connections, `host ${i}'s connections`).to.be.at.least(3)

    const data = crypto.randomBytes(300_000)
    await fsp.writeFile(A('blob'), data)
    await until('B to see the blob whole', async () => (await exists(B('blob'))) && (await fsp.stat(B('blob'))).size === data.length)
    expect((await fsp.readFile(B('blob'))).equals(data)).to.equal(true)

    const seen: number[] = []
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      const mode = i % 2 === 0 ? 0o600 : 0o644
      await fsp.stat(B('blob')) // cached on B
      await fsp.chmod(A('blob'), mode)
      seen.push(await until(`B to see chmod ${i}`, async () => ((await fsp.stat(B('blob'))).mode & 0o777) === mode))
    }

    seen.sort((x, y) => x - y)
    const at = (q: number): string => seen[Math.min(seen.length - 1, Math.ceil(q * seen.length) - 1)].toFixed(1)
    console.log(`      over veth: A's chmod seen by B's stat after median ${at(0.5)} ms, p99 ${at(0.99)} ms (${seen.length} samples)`)
  })

  it("A's cable pulled: A's calls fail with EIO, B goes on; plugged back, A resumes by itself and sees what B did meanwhile, to what A had cached too", async () => {
    await fsp.writeFile(A('before'), 'written before the cut')
    await fsp.writeFile(A('old'), 'renamed by B during the cut')
    await until('B to see them', async () => (await exists(B('before'))) && (await exists(B('old'))))
    // Cached on A, for the hour of its timeouts: only a notification, or the lack of one, drops them.
    expect((await fsp.stat(A('before'))).mode & 0o777).to.equal(0o644)
    expect(await exists(A('old'))).to.equal(true)
    const handle = await fsp.open(A('before'), 'r') // an open file on A across the cut
    // Closed whatever happens: a server whose mount has an open file waits for it to close before it exits.
    try {
      await hosts[0].cut()
      await fsp.writeFile(B('during'), 'written by B while A was cut off')
      await fsp.chmod(B('before'), 0o600)
      await fsp.rename(B('old'), B('renamed'))
      expect(await fsp.readFile(B('before'), 'utf8')).to.equal('written before the cut')
      // A host that does not answer: a connect gives up after 5 s, and for a second after that every
      // call fails without trying (ARCHITECTURE.md, "Failure behaviour"); twice that, for a busy machine.
      const timed = async (what: string, p: Promise<unknown>): Promise<void> => {
        const start = performance.now()
        expect(await outcome(p), what).to.equal('EIO')
        const ms = performance.now() - start
        console.log(`      ${what}: EIO after ${ms.toFixed(0)} ms`)
        expect(ms, `${what}: ms to EIO`).to.be.below(FAILS_WITHIN_MS)
      }

      await timed("A's lookup of a name it never saw", fsp.stat(A('during')))
      await timed("A's create", fsp.writeFile(A('lost'), 'x'))
      expect(fs.existsSync(path.join('/proc', String(mounts[0].proc.pid))), "A's server alive").to.equal(true)

      hosts[0].restore()
      const back = await until("A to come back and see B's file", () => exists(A('during')), 30_000)
      console.log(`      A resumed ${back.toFixed(0)} ms after its cable was plugged back in`)
      expect(await fsp.readFile(A('during'), 'utf8')).to.equal('written by B while A was cut off')
      // What B changed of what A had cached: A heard nothing of it, so A dropped everything it had
      // cached once it listened again.
      await until("A to see B's chmod and rename", async () => ((await fsp.stat(A('before'))).mode & 0o777) === 0o600 && !(await exists(A('old'))))
      expect(await fsp.readFile(A('renamed'), 'utf8')).to.equal('renamed by B during the cut')
      expect((await handle.read(Buffer.alloc(64), 0, 64, 0)).bytesRead).to.equal('written before the cut'.length)
      await fsp.writeFile(A('after'), 'A again')
      await until('B to see A again', () => exists(B('after')))
      expect(await fsp.readFile(B('after'), 'utf8')).to.equal('A again')
      expect(await exists(B('lost')), 'the create that failed on A').to.equal(false)
    } finally {
      hosts[0].restore()
      await handle.close()
    }
  })
})
