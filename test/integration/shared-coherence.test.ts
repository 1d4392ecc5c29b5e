/**
 * Coherence across the mounts of one volume on PostgreSQL (issue 20): two `razorfs mount -f --meta
 * URL` processes on one schema, as two hosts. Names and attributes are cached for an hour
 * (SHARED_DEFAULTS), so what B sees of A's changes it sees only because A's commits are notified
 * and B drops them from its kernel's caches; a stat of what did not change stays in B's kernel.
 *
 * B's view is polled for (the notification travels through PostgreSQL to B's server and its notify
 * thread), with a deadline far below the hour the kernel would otherwise keep the old answer.
 * The invalidation latency (A's change returned → B's stat shows it) is measured and printed.
 */
import {expect} from 'chai'
import fs from 'node:fs'

import {type ServerStatus, sharedMountHome, statusPath} from '../../src/fuse/status.js'
import {type Mounted, until} from '../helpers/mount.js'
import {useTwoHosts} from '../helpers/two-hosts.js'

/** How long B may take to see a change: far below the hour its kernel would keep the old one. */
const SEEN_WITHIN_MS = 10_000
/**
 * Latency samples, and the bounds: the 100 ms for the median; for the p99, five times that,
 * since a 2-CPU machine loaded to 10 has measured a p99 of 62 ms and a max of 93 ms (ARCHITECTURE.md,
 * "Coherence"), and the test must not fail on a machine's noise. Both are printed.
 */
const SAMPLES = Number(process.env.RAZORFS_COHERENCE_SAMPLES ?? 200)
const MEDIAN_BOUND_MS = 100
const P99_BOUND_MS = 500

const sleeper = new Int32Array(new SharedArrayBuffer(4))

/** Poll `cond` without the event loop (every 0.2 ms) until it holds; the milliseconds it took. */
function pollMs(what: string, cond: () => boolean, ms = SEEN_WITHIN_MS): number {
  const start = performance.now()
  while (!cond()) {
    if (performance.now() - start > ms) throw new Error(`timed out waiting for ${what}`)
    Atomics.wait(sleeper, 0, 0, 0.2)
  }

  return performance.now() - start
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]
}

describe('coherence of one volume on PostgreSQL mounted by two hosts', function () {
  this.timeout(300_000)
  const hosts = useTwoHosts('razorfs-coherence-')
  const {A, B} = hosts

  /** m's server status, from a status file written after this call. */
  async function statusOf(m: Mounted): Promise<ServerStatus> {
    const file = statusPath(sharedMountHome(m.mnt))
    const since = Date.now()
    let status: ServerStatus | undefined
    await until(
      'a fresh status file',
      () => {
        try {
          status = JSON.parse(fs.readFileSync(file, 'utf8')) as ServerStatus
          return Date.parse(status.updatedAt) >= since
        } catch {
          return false
        }
      },
      SEEN_WITHIN_MS,
    )
    return status!
  }

  /** m's request counters, from a status file written after this call. */
  async function countersOf(m: Mounted): Promise<Record<string, number>> {
    return (await statusOf(m)).ops.byOp
  }

  /** How many requests of each kind `action` sent to m's server. */
  async function requests(m: Mounted, action: () => void): Promise<(op: string) => number> {
    const before = await countersOf(m)
    action()
    const after = await countersOf(m)
    return op => (after[op] ?? 0) - (before[op] ?? 0)
  }

  it("shows A's create, write and close, rename, unlink, chmod and mkdir on B's stat, ls and cat", async () => {
    fs.mkdirSync(A('d'))
    fs.writeFileSync(A('d', 'f'), 'first')
    // B caches all of it: the names, the attributes, the file's pages.
    const seen = (p: string) => fs.statSync(p)
    pollMs('B to see d/f', () => fs.existsSync(B('d', 'f')))
    expect(fs.readdirSync(B('d'))).to.deep.equal(['f'])
    expect(fs.readFileSync(B('d', 'f'), 'utf8')).to.equal('first')
    const dirBefore = seen(B('d'))

    // create: the name, and the directory's times and size
    fs.writeFileSync(A('d', 'g'), '')
    pollMs('B to see the create', () => fs.readdirSync(B('d')).includes('g'))
    const dirAfter = seen(A('d'))
    pollMs("B to see d's new mtime", () => seen(B('d')).mtimeMs === dirAfter.mtimeMs)
    expect(seen(B('d')).mtimeMs).to.not.equal(dirBefore.mtimeMs)

    // write and close: the size and the contents, read by cat on B
    fs.writeFileSync(A('d', 'f'), 'second, longer')
    pollMs('B to see the new size', () => seen(B('d', 'f')).size === 14)
    expect(fs.readFileSync(B('d', 'f'), 'utf8')).to.equal('second, longer')
    const fd = fs.openSync(B('d', 'f'), 'r') // an open file's pages, dropped too
    fs.writeFileSync(A('d', 'f'), 'third, as long')
    pollMs('B to read the new contents through its open file', () => {
      const buf = Buffer.alloc(64)
      return buf.subarray(0, fs.readSync(fd, buf, 0, 64, 0)).toString() === 'third, as long'
    })
    fs.closeSync(fd)

    // rename: the old name gone, the new one there, on stat and ls
    fs.renameSync(A('d', 'f'), A('d', 'h'))
    pollMs('B to lose the old name', () => !fs.existsSync(B('d', 'f')))
    expect(fs.readFileSync(B('d', 'h'), 'utf8')).to.equal('third, as long')
    expect(fs.readdirSync(B('d')).sort()).to.deep.equal(['g', 'h'])

    // unlink
    seen(B('d', 'g'))
    fs.unlinkSync(A('d', 'g'))
    pollMs('B to see the unlink', () => !fs.existsSync(B('d', 'g')))

    // chmod
    expect(seen(B('d', 'h')).mode & 0o777).to.equal(0o644)
    fs.chmodSync(A('d', 'h'), 0o600)
    pollMs('B to see the chmod', () => (seen(B('d', 'h')).mode & 0o777) === 0o600)

    // mkdir: the name, and the parent's link count
    const links = seen(B('d')).nlink
    fs.mkdirSync(A('d', 'sub'))
    pollMs("B to see the parent's link count", () => seen(B('d')).nlink === links + 1)
    expect(seen(B('d', 'sub')).isDirectory()).to.equal(true)
  })

  it('keeps a stat on B in its kernel between changes, and A its own changes', async () => {
    /**
     * The lookups and getattrs 100 stats of `p` sent to m's server, the fewest of three tries: a
     * notification of an earlier change may still land during one, while a cache that does not
     * hold sends 100 in every try.
     */
    const fewest = async (m: Mounted, p: string): Promise<number> => {
      let least = Infinity
      for (let t = 0; t < 3 && least > 0; t++) {
        const delta = await requests(m, () => {
          for (let i = 0; i < 100; i++) fs.statSync(p)
        })
        least = Math.min(least, delta('lookup') + delta('getattr'))
      }

      return least
    }

    fs.writeFileSync(A('f'), 'x')
    pollMs('B to see f', () => fs.existsSync(B('f')) && fs.statSync(B('f')).size === 1)
    expect(await fewest(hosts.b!, B('f')), 'B: 100 stats of an unchanged file').to.equal(0)
    // A's own change: its replies updated A's kernel, and its own notification is not for it.
    fs.chmodSync(A('f'), 0o600)
    pollMs('B to see the chmod', () => (fs.statSync(B('f')).mode & 0o777) === 0o600)
    expect(await fewest(hosts.a!, A('f')), 'A: 100 stats after its own chmod').to.equal(0)
    // B fetched the changed attributes, and keeps them again.
    expect(await fewest(hosts.b!, B('f')), 'B: 100 stats after it saw the chmod').to.equal(0)
  })

  it('opens a file it creates with its page cache kept, and asks nothing more of it', async () => {
    fs.mkdirSync(A('new'))
    const before = (await statusOf(hosts.a!)).cache.pageCache!
    for (let i = 0; i < 20; i++) fs.closeSync(fs.openSync(A('new', `f${i}`), 'wx'))
    const after = (await statusOf(hosts.a!)).cache.pageCache!
    // Nothing to drop, no invalidation queued: the create's reply carries the new file's attributes.
    expect(after.dropped - before.dropped, 'page caches dropped').to.equal(0)
    expect(after.kept - before.kept, 'opens that kept the page cache').to.equal(20)
    const asked = await requests(hosts.a!, () => {
      for (let i = 0; i < 20; i++) fs.statSync(A('new', `f${i}`))
    })
    // At most the directory's attributes, which the kernel itself drops at each create in it.
    expect(asked('getattr') + asked('lookup'), 'requests for 20 stats').to.be.at.most(1)
  })

  it(`invalidation latency over ${SAMPLES} changes (chmod: attributes; rename: names): printed, median < ${MEDIAN_BOUND_MS} ms, p99 < ${P99_BOUND_MS} ms`, () => {
    fs.writeFileSync(A('lat0'), 'x')
    pollMs('B to see lat0', () => fs.existsSync(B('lat0')))
    const attr: number[] = []
    const name: number[] = []
    let current = 'lat0'
    for (let i = 0; i < SAMPLES; i++) {
      if (i % 2 === 0) {
        const mode = i % 4 === 0 ? 0o600 : 0o644
        fs.statSync(B(current)) // cached on B
        fs.chmodSync(A(current), mode) // committed when it returns
        attr.push(pollMs(`B to see chmod ${i}`, () => (fs.statSync(B(current)).mode & 0o777) === mode))
      } else {
        const next = `lat${i}`
        fs.statSync(B(current))
        fs.renameSync(A(current), A(next))
        const old = current
        current = next
        name.push(pollMs(`B to lose ${old}`, () => !fs.existsSync(B(old))))
      }
    }

    const all = [...attr, ...name].sort((x, y) => x - y)
    const line = (what: string, v: number[]) => {
      const s = [...v].sort((x, y) => x - y)
      return `${what}: median ${quantile(s, 0.5).toFixed(1)} ms, p99 ${quantile(s, 0.99).toFixed(1)} ms, max ${s.at(-1)!.toFixed(1)} ms (${s.length} samples)`
    }

    console.log(`      invalidation latency, A's change returned -> B's stat shows it:`)
    console.log(`        ${line('attributes (chmod)', attr)}`)
    console.log(`        ${line('names (rename)', name)}`)
    console.log(`        ${line('all', all)}`)
    expect(quantile(all, 0.5), 'median').to.be.below(MEDIAN_BOUND_MS)
    expect(quantile(all, 0.99), 'p99').to.be.below(P99_BOUND_MS)
  })
})
