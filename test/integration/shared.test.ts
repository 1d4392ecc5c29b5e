/**
 * One volume on PostgreSQL mounted by two hosts (issue 20): two `razorfs mount -f --meta URL`
 * processes on one schema, each on its own mountpoint, as two hosts would have them. Each test
 * takes a fresh schema of the test server (test/helpers/pg.ts) and mounts it twice.
 *
 * Each mount hears of the other's changes as they commit and drops them from its kernel's caches
 * (shared-coherence.test.ts tests that, and measures how long it takes): what one host must see
 * of the other's changes is polled for with a deadline (`until`), never waited for by a fixed sleep. What the server decides (who wins a
 * create, a rename, an unlink) needs no waiting: each request reaches the database.
 */
import {expect} from 'chai'
import {type ChildProcess, spawn} from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'

import {runCli} from '../helpers/cli.js'
import {cleanupMount, mount, until} from '../helpers/mount.js'
import {sql} from '../helpers/pg.js'
import {useTwoHosts} from '../helpers/two-hosts.js'

/** How long another host may take to see a change: its notification, with room for a busy machine. */
const SEEN_WITHIN_MS = 15_000

/** The outcome of each step a race runner took: 'OK' or the errno code. */
type Outcomes = Record<string, string>

/**
 * Start a node child that waits for a line on stdin, then runs `body` (with `fs`, `dir` and an
 * `outcome(key, fn)` that records 'OK' or the errno code) and prints the outcomes as JSON.
 */
function racer(dir: string, body: string): {proc: ChildProcess; ready: Promise<void>; done: Promise<Outcomes>} {
  const code = `const fs = require('fs'); const dir = process.argv[1]; const out = {}
const outcome = (k, f) => { try { f(); out[k] = 'OK' } catch (e) { out[k] = e.code ?? String(e) } }
process.stdout.write('ready\\n')
process.stdin.once('data', () => { ${body}; process.stdout.write(JSON.stringify(out) + '\\n', () => process.exit(0)) })`
  const proc = spawn(process.execPath, ['-e', code, dir], {stdio: ['pipe', 'pipe', 'inherit']})
  let text = ''
  const ready = new Promise<void>(resolve => {
    proc.stdout!.on('data', (d: Buffer) => {
      text += d.toString()
      if (text.startsWith('ready\n')) resolve()
    })
  })
  const done = new Promise<Outcomes>((resolve, reject) => {
    proc.on('exit', code => {
      if (code !== 0) reject(new Error(`racer exited with ${code}: ${text}`))
      else resolve(JSON.parse(text.slice('ready\n'.length)) as Outcomes)
    })
  })
  return {proc, ready, done}
}

/** Run two racers, one on each host, released together; returns their outcomes. */
async function race(dirA: string, dirB: string, body: string): Promise<[Outcomes, Outcomes]> {
  const a = racer(dirA, body)
  const b = racer(dirB, body)
  await Promise.all([a.ready, b.ready])
  a.proc.stdin!.end('go\n')
  b.proc.stdin!.end('go\n')
  return Promise.all([a.done, b.done])
}

/** The names in a directory, sorted; ENOENT gives none. */
function names(dir: string): string[] {
  return fs.readdirSync(dir).sort()
}

describe('one volume on PostgreSQL mounted by two hosts', function () {
  this.timeout(180_000)
  const hosts = useTwoHosts('razorfs-shared-')
  const {A, B} = hosts

  it('mounts the volume twice, with its URL as the source and no data dir', () => {
    expect(fs.existsSync(hosts.dirs.dataDir), 'no data dir is made').to.equal(false)
    const line = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .find(l => l.split(' ')[4] === hosts.a!.mnt)
    expect(line).to.include(' - fuse.razorfs postgresql://')
    expect(hosts.a!.stdout()).to.match(/^mounted postgresql:\/\/\S+ on /)
    fs.writeFileSync(A('hello'), 'from A')
    expect(fs.readFileSync(B('hello'), 'utf8')).to.equal('from A')
  })

  it('creates of the same names from both hosts at once: each name made exactly once, EEXIST for the other', async () => {
    fs.mkdirSync(A('race'))
    await until('host B to see the directory', () => fs.existsSync(B('race')), SEEN_WITHIN_MS)
    const count = 200
    const [fromA, fromB] = await race(
      A('race'),
      B('race'),
      `for (let i = 0; i < ${count}; i++) outcome('n' + i, () => fs.closeSync(fs.openSync(dir + '/n' + i, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY)))`,
    )
    let wonA = 0
    for (let i = 0; i < count; i++) {
      const pair = [fromA[`n${i}`], fromB[`n${i}`]].sort()
      expect(pair, `n${i}`).to.deep.equal(['EEXIST', 'OK'])
      if (fromA[`n${i}`] === 'OK') wonA++
    }

    expect(names(A('race'))).to.have.length(count)
    console.log(`      host A won ${wonA} of ${count} names, host B ${count - wonA}`)
  })

  it('renames and unlinks of the same names from both hosts at once: each done exactly once, ENOENT for the other', async () => {
    const count = 150
    fs.mkdirSync(A('r'))
    for (let i = 0; i < count; i++) {
      fs.writeFileSync(A('r', `f${i}`), `file ${i}`)
      fs.writeFileSync(A('r', `u${i}`), '')
    }

    await until('host B to see the files', () => fs.existsSync(B('r', `u${count - 1}`)), SEEN_WITHIN_MS)
    const [fromA, fromB] = await race(
      A('r'),
      B('r'),
      `const me = process.argv[1].includes('mnt-b') ? 'b' : 'a'
for (let i = 0; i < ${count}; i++) {
  outcome('rename' + i, () => fs.renameSync(dir + '/f' + i, dir + '/' + me + i))
  outcome('unlink' + i, () => fs.unlinkSync(dir + '/u' + i))
}`,
    )
    for (let i = 0; i < count; i++) {
      for (const op of ['rename', 'unlink']) expect([fromA[`${op}${i}`], fromB[`${op}${i}`]].sort(), `${op} ${i}`).to.deep.equal(['ENOENT', 'OK'])
    }

    // A directory listing reaches the database: both hosts list what it holds at once.
    const expected = Array.from({length: count}, (_, i) => (fromA[`rename${i}`] === 'OK' ? `a${i}` : `b${i}`)).sort()
    expect(names(A('r'))).to.deep.equal(expected)
    expect(names(B('r'))).to.deep.equal(expected)
    for (let i = 0; i < count; i++) expect(fs.readFileSync(B('r', expected.find(n => n.slice(1) === String(i))!), 'utf8')).to.equal(`file ${i}`)
  })

  it('data written and closed on A is read whole on B by an open once B sees its size (close-to-open); at once if its size stays', async () => {
    const first = crypto.randomBytes(100_000)
    fs.writeFileSync(A('c2o'), first)
    await until('host B to see the first version', () => fs.existsSync(B('c2o')) && fs.statSync(B('c2o')).size === first.length, SEEN_WITHIN_MS)
    // B reads it whole: its kernel now holds the pages of the first version.
    expect(fs.readFileSync(B('c2o')).equals(first)).to.equal(true)

    for (const size of [300_000, 100_000, 7]) {
      const next = crypto.randomBytes(size)
      const fd = fs.openSync(A('c2o'), 'w')
      fs.writeSync(fd, next)
      fs.closeSync(fd)
      const mtime = fs.statSync(A('c2o')).mtimeMs
      await until(
        `host B to see the version of ${size} bytes`,
        () => {
          const st = fs.statSync(B('c2o'))
          return st.size === size && st.mtimeMs === mtime
        },
        SEEN_WITHIN_MS,
      )
      expect(fs.readFileSync(B('c2o')).equals(next), `B reads the ${size} bytes A wrote`).to.equal(true)
    }

    // Rewritten in place, same size: B's open sees the new mtime in the volume and drops its pages
    // (auto_cache, the default of a shared mount), so it reads the new bytes at once, with no wait.
    for (let round = 0; round < 3; round++) {
      const same = crypto.randomBytes(7)
      expect(fs.readFileSync(B('c2o')).length).to.equal(7)
      fs.writeFileSync(A('c2o'), same)
      expect(fs.readFileSync(B('c2o')).equals(same), `round ${round}: B reads what A wrote, at once`).to.equal(true)
    }
  })

  it('a file unlinked on A while open on B stays readable on B until B closes it', async () => {
    const data = crypto.randomBytes(200_000)
    fs.writeFileSync(A('held'), data)
    await until('host B to see the file', () => fs.existsSync(B('held')), SEEN_WITHIN_MS)
    const fd = fs.openSync(B('held'), 'r')
    try {
      fs.unlinkSync(A('held'))
      expect(fs.existsSync(A('held'))).to.equal(false)
      await until('host B to see the name gone', () => !fs.existsSync(B('held')), SEEN_WITHIN_MS)
      // Read through B's descriptor from the volume, not a page cache: the bytes are still there.
      const back = Buffer.alloc(data.length)
      let got = 0
      while (got < data.length) {
        const n = fs.readSync(fd, back, got, data.length - got, got)
        if (n === 0) break
        got += n
      }

      expect(got).to.equal(data.length)
      expect(back.equals(data)).to.equal(true)
      expect(fs.fstatSync(fd).nlink).to.equal(0)
    } finally {
      fs.closeSync(fd)
    }

    // Closed on B: nothing holds it any longer, and the volume has freed it.
    await untilCount('the unlinked inode to be freed', () => countInodes(hosts.url), 1)
  })

  it('kill -9 of host A: host B goes on working, and A may mount again', async () => {
    fs.mkdirSync(A('work'))
    fs.writeFileSync(A('work', 'before'), 'A wrote this')
    const fd = fs.openSync(A('work', 'open-on-a'), 'w')
    fs.writeSync(fd, 'held open by A')
    fs.unlinkSync(A('work', 'open-on-a')) // held only by A's session now
    await hosts.a!.crash()
    try {
      fs.closeSync(fd) // on the dead mount
    } catch {
      // ENOTCONN: the descriptor is gone all the same
    }

    const mntA = hosts.a!.mnt
    hosts.a = undefined

    expect(fs.readFileSync(B('work', 'before'), 'utf8')).to.equal('A wrote this')
    fs.writeFileSync(B('work', 'after'), 'B goes on')
    fs.renameSync(B('work', 'after'), B('work', 'after-renamed'))
    expect(names(B('work'))).to.deep.equal(['after-renamed', 'before'])

    cleanupMount(mntA)
    hosts.a = await mount({dataDir: hosts.dirs.dataDir, meta: hosts.url, mnt: mntA})
    expect(names(A('work'))).to.deep.equal(['after-renamed', 'before'])
    // Once the killed session's lease has run out, a live one's reaper frees what only it held.
    await untilCount('the killed session reaped and its orphan freed', () => countInodes(hosts.url), 4)
    // And the volume is consistent: fsck checks it while both hosts have it mounted.
    const checked = runCli(['fsck', '-fn', '--meta', hosts.url])
    expect(checked.status, checked.stdout + checked.stderr).to.equal(0)
    expect(checked.stdout).to.match(/^razorfs: clean, 4 inodes, 3 entries\n$/)
  })
})

/** The inodes of the volume at `url` (the root is one), counted by a query of its own. */
async function countInodes(url: string): Promise<number> {
  return Number((await sql(url, 'SELECT count(*) AS n FROM inodes')).rows[0].n)
}

/** Poll `count()` until it gives `want`, or fail after `ms` naming `what` and the last count. */
async function untilCount(what: string, count: () => Promise<number>, want: number, ms = SEEN_WITHIN_MS): Promise<void> {
  const deadline = Date.now() + ms
  let last = await count()
  while (last !== want) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${last}, not ${want}`)
    await new Promise(resolve => setTimeout(resolve, 50))
    last = await count()
  }
}
