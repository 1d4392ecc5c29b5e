/**
 * Corruption fuzzing (issue 5): RAZORFS_FUZZ_N random corruptions (default 500; `npm run
 * test:fuzz` runs 10,000) of a small populated image, cleanly closed or crashed: byte flips,
 * truncation, zeroed pages and swapped records of nodes.dat, entries.dat, the indexes,
 * strings.dat and wal.log. For each: fsck -n never crashes and writes nothing; header damage is
 * always detected; fsck -y never crashes (exit 8) and leaves nothing; a second -y finds nothing
 * (exit 0: never worse); the image then opens read-write and reads whole. Three images take
 * turns: cleanly closed, crashed (transactions only in the WAL, an orphan), and (one case in
 * five) crashed with a few hundred entries (split indexes, tables over several pages). Cases run through the
 * library, all in one child process (fuzz-child.ts); a case that runs past 30 s is a hang (the
 * child is killed and a new one goes on after that case). RAZORFS_FUZZ_SEED sets the first seed: each case is reproducible by seed.
 */
import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fork} from 'node:child_process'
import {fileURLToPath} from 'node:url'

import {buildBase} from './fuzz-lib.js'

const N = Number(process.env.RAZORFS_FUZZ_N ?? 500)
const FIRST = Number(process.env.RAZORFS_FUZZ_SEED ?? 1)
const CASE_TIMEOUT_MS = 30_000

interface Outcome {
  seed: number
  base?: string
  failure?: string
  damage?: {file: string; what: string}
}

function runChild(bases: string[], work: string, seeds: number[], done: (o: Outcome) => void): Promise<number | undefined> {
  return new Promise(resolve => {
    const child = fork(fileURLToPath(new URL('fuzz-child.js', import.meta.url)), [JSON.stringify({bases, work, seeds})], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    let current: number | undefined
    let finished = false
    let timer: NodeJS.Timeout | undefined
    const finish = (cut: number | undefined): void => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      resolve(cut)
    }

    const arm = (): void => {
      clearTimeout(timer)
      timer = setTimeout(() => {
        // A hang: kill the runner; the caller goes on after this seed.
        const cut = current
        child.kill('SIGKILL')
        finish(cut)
      }, CASE_TIMEOUT_MS)
    }

    child.on('message', (m: {type: string} & Outcome) => {
      if (m.type === 'start') {
        current = m.seed
        arm()
      } else if (m.type === 'done') {
        done(m)
        current = undefined
        arm()
      } else {
        finish(undefined)
      }
    })
    child.on('exit', (code, signal) => {
      if (finished) return
      if (current !== undefined) done({seed: current, failure: `the runner died (exit ${code}, ${signal}) during this case`})
      finish(current ?? seeds.at(-1))
    })
  })
}

describe(`fsck: corruption fuzzing (${N} cases)`, function () {
  this.timeout(0)
  let root: string

  before(() => {
    root = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'fsck-fuzz-'))
  })
  after(() => fs.rmSync(root, {recursive: true, force: true}))

  it('never crashes, hangs, misses header damage or makes an image worse; the repaired image opens', async () => {
    const [clean, crashed, grown] = [path.join(root, 'clean'), path.join(root, 'crashed'), path.join(root, 'grown')]
    buildBase(clean, false)
    buildBase(crashed, true)
    buildBase(grown, true, true)
    // Case `seed` damages bases[seed % 5]: the bigger image one case in five (it is slower to check).
    const bases = [clean, crashed, clean, crashed, grown]
    const started = Date.now()
    const outcomes = new Map<number, Outcome>()
    let seeds = Array.from({length: N}, (_, i) => FIRST + i)
    while (seeds.length > 0) {
      const cut = await runChild(bases, path.join(root, 'work'), seeds, o => outcomes.set(o.seed, o))
      if (cut === undefined) break
      if (!outcomes.has(cut)) outcomes.set(cut, {seed: cut, failure: `hang: still running after ${CASE_TIMEOUT_MS} ms`})
      seeds = seeds.filter(s => s > cut)
    }

    const failures = [...outcomes.values()].filter(o => o.failure !== undefined)
    const kind = (f: string): string =>
      f.startsWith('hang')
        ? 'hangs'
        : /operational error|exception|worker crashed/.test(f)
          ? 'crashes'
          : /second fsck|left problems|after a read-write open/.test(f)
            ? 'worsenings'
            : /not detected/.test(f)
              ? 'undetected header damage'
              : 'unreadable after repair'
    const counts: Record<string, number> = {crashes: 0, hangs: 0, worsenings: 0, 'undetected header damage': 0, 'unreadable after repair': 0}
    for (const f of failures) counts[kind(f.failure!)]++
    const summary = `fuzz: ${outcomes.size} cases (seeds ${FIRST} to ${FIRST + N - 1}) in ${((Date.now() - started) / 1000).toFixed(1)} s: ${Object.entries(
      counts,
    )
      .map(([k, v]) => `${v} ${k}`)
      .join(', ')}`
    console.log(`      ${summary}`)
    for (const f of failures.slice(0, 10))
      console.log(`      seed ${f.seed} (${f.base}, ${f.damage?.file}: ${f.damage?.what}): ${f.failure!.split('\n').slice(0, 3).join(' ')}`)
    expect(outcomes.size).to.equal(N)
    expect(failures.map(f => `seed ${f.seed}: ${f.failure!.split('\n')[0]}`)).to.deep.equal([])
  })
})
