/**
 * The shared workload (issue 20): one volume on PostgreSQL (RAZORFS_PG_URL, else a throwaway
 * cluster started as the tests start theirs, test/helpers/pg.ts) made by `razorfs init --meta`
 * and mounted twice (two mountpoints standing for two hosts), against razorfs on a local image in
 * the same run. At 1, 2 and 4 clients (client c on mount c % 2 of the volume; all on the one local
 * mount): create, stat, unlink of files in each client's own directory, tar -xf of a small tree by
 * every client at once, sequential write of a file each, then read of it back through the other
 * mount. Each step visits the two targets in turn (round r, step s starting at target (r + s) % 2),
 * each turn after an untimed `sync` and at least 1.2 s after that target's previous turn. Then the
 * invalidation latency between the two mounts: a change on A (chmod, or a new name), B polling
 * stat until it sees it (bench/driver.ts, op invalidation).
 */
import fs from 'node:fs'
import path from 'node:path'

import {type InvalidationKind, type Job} from '../driver.js'
import {pgUrl, sql, dropSchemas} from '../../test/helpers/pg.js'
import {rx} from './checks.js'
import {ATTR_EXPIRE_MS, type Config} from './config.js'
import {paths} from './paths.js'
import {type SharedInfo, type SharedRound, rate, results} from './results.js'
import {close, open} from './session.js'
import type {Session, TargetName} from './targets.js'
import {MiB, OneLineError, cleanEnv, driver, drivers, exec, fmt, log, median, sizeName, sleep} from './util.js'
import {treeSubset} from './workloads.js'

const STEPS = ['create', 'stat', 'unlink', 'untar', 'write', 'read'] as const
type Step = (typeof STEPS)[number]
/** How long B may take to see a change before the run fails. */
const SEEN_WITHIN_MS = 30_000
/** The clients' start barrier: four node processes starting at once on a loaded 2-CPU machine may take over the usual 1.5 s. */
const LEAD_MS = 4000
const together = (jobs: Job[]): ReturnType<typeof drivers> => drivers(jobs, LEAD_MS)
const INVALIDATION_KINDS: InvalidationKind[] = ['chmod', 'create']

/** A target of the workload: its name and the mounts its clients use in turn. */
interface Side {
  target: TargetName
  mounts: string[]
}

/** Nearest-rank percentile. */
const percentile = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.max(0, Math.ceil((p / 100) * xs.length) - 1)]

async function untarAll(side: Side, dirs: string[], tarball: string): Promise<number> {
  const start = performance.now()
  await Promise.all(
    dirs.map(async (dir, c) => {
      fs.mkdirSync(dir)
      const r = await exec('tar', ['-xf', tarball, '-C', dir], {env: cleanEnv()})
      if (r.code !== 0) throw new Error(`${side.target}: tar -xf (client ${c}) failed (exit ${r.code}): ${r.stderr.trim().slice(0, 300)}`)
    }),
  )
  return (performance.now() - start) / 1000
}

/** One step of round `r` at `k` clients on one side; fills its part of `out`. */
async function step(name: Step, side: Side, r: number, k: number, per: number, size: number, tarball: string, out: Partial<SharedRound>): Promise<void> {
  const mount = (c: number): string => side.mounts[c % side.mounts.length]
  const dir = (c: number, m = mount(c)): string => path.join(m, `r${r}-k${k}`, `c${c}`)
  const clients = Array.from({length: k}, (_, c) => c)
  const meta = (op: 'create' | 'stat' | 'unlink'): Job[] => clients.map(c => ({op, dirs: [dir(c)], layout: 'flat' as const, from: 0, to: per}))
  const file = (c: number, m = mount(c)): string => path.join(dir(c, m), 'seq')
  switch (name) {
    case 'create':
      for (const c of clients) fs.mkdirSync(dir(c), {recursive: true})
      out.create = rate(await together(meta('create')))
      return
    case 'stat':
    case 'unlink':
      out[name] = rate(await together(meta(name)))
      return
    case 'untar':
      out.untarSec = await untarAll(
        side,
        clients.map(c => path.join(dir(c), 'tree')),
        tarball,
      )
      return
    case 'write': {
      const w = await together(clients.map(c => ({op: 'seqwrite' as const, file: file(c), size, bs: MiB})))
      out.writeMBps = w.bytes / w.sec / 1e6
      return
    }

    case 'read': {
      // Through the other mount of the volume: what one host wrote and closed, another reads.
      const other = (c: number): string => side.mounts[(c + 1) % side.mounts.length]
      const rd = await together(clients.map(c => ({op: 'seqread' as const, file: file(c, other(c)), size, bs: MiB, verify: true})))
      out.readMBps = rd.bytes / rd.sec / 1e6
      for (const c of clients) fs.rmSync(file(c))
    }
  }
}

/** Wait until `check` holds (B seeing what A made), polling; fail after SEEN_WITHIN_MS. */
async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + SEEN_WITHIN_MS
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`shared: ${what} not seen within ${SEEN_WITHIN_MS} ms`)
    await sleep(10)
  }
}

export async function benchShared(cfg: Config): Promise<void> {
  const sc = cfg.shared
  const info: SharedInfo = {files: sc.files, treeEntries: sc.treeEntries, bytes: sc.bytes, rounds: sc.rounds, invalidation: []}
  results.sharedInfo = info
  const fromEnv = process.env.RAZORFS_PG_URL !== undefined && process.env.RAZORFS_PG_URL !== ''
  const server = pgUrl()
  if (server === undefined) {
    info.skipped = 'no PostgreSQL server: set RAZORFS_PG_URL, or install PostgreSQL (apt-get install -y postgresql) so that the run can start one'
    log(`shared: skipped: ${info.skipped}`)
    return
  }

  info.server = fromEnv ? 'RAZORFS_PG_URL' : 'a throwaway cluster started by the run (initdb, unix socket only, fsync=off)'
  const u = new URL(server)
  u.searchParams.set('schema', `rz_bench_${process.pid}`)
  const url = u.toString()
  const init = await exec(process.execPath, [paths.runJs, 'init', '--meta', url], {env: cleanEnv()})
  if (init.code !== 0) throw new OneLineError(`shared: razorfs init --meta failed (exit ${init.code}): ${(init.stderr + init.stdout).trim().split('\n')[0]}`)
  const sessions: Session[] = []
  try {
    info.serverVersion = String((await sql(url, 'SHOW server_version')).rows[0].server_version)
    const tarball = path.join(paths.workDir, 'shared-tree.tar')
    const source = fs.realpathSync(path.join(paths.app, 'node_modules'))
    const pack = await exec('tar', ['-cf', tarball, '-C', path.dirname(source), ...treeSubset(source, sc.treeEntries)])
    if (pack.code !== 0) throw new Error(`tar -c failed: ${pack.stderr}`)
    const entries = (await exec('tar', ['-tf', tarball])).stdout.split('\n').filter(Boolean).length
    info.treeEntries = entries
    log(
      `shared: PostgreSQL ${info.serverVersion} (${info.server}); one volume mounted twice (razorfs-pg) against a local image (razorfs); ` +
        `clients ${sc.clients.join(', ')}: ${fmt(sc.files)} files, untar of ${fmt(entries)} entries each, ${sizeName(sc.bytes)} written and read; ${sc.rounds} round(s); ` +
        `${sc.samples} invalidation samples of each kind`,
    )
    const local = await open('razorfs', 'shared')
    sessions.push(local)
    const a = await open('razorfs-pg', 'shared-a', {meta: url})
    sessions.push(a)
    const b = await open('razorfs-pg', 'shared-b', {meta: url})
    sessions.push(b)
    const sides: Side[] = [
      {target: 'razorfs', mounts: [local.root]},
      {target: 'razorfs-pg', mounts: [a.root, b.root]},
    ]
    const recs = sides.map(side => sc.clients.map(k => ({target: side.target, clients: k, rounds: [] as SharedRound[]})))
    const lastEnd = sides.map(() => 0)
    for (let r = 0; r < sc.rounds; r++) {
      for (const [ki, k] of sc.clients.entries()) {
        const per = Math.floor(sc.files / k)
        const size = Math.max(1, Math.floor(sc.bytes / k / MiB)) * MiB
        const outs: Array<Partial<SharedRound>> = sides.map(() => ({}))
        for (const [si, name] of STEPS.entries()) {
          for (let j = 0; j < sides.length; j++) {
            const i = (r + ki + si + j) % sides.length
            // Untimed: flush what the previous turn wrote; let this target's kernel caches expire.
            await exec('sync', [])
            const wait = lastEnd[i] + ATTR_EXPIRE_MS - Date.now()
            if (wait > 0) await sleep(wait)
            await step(name, sides[i], r, k, per, size, tarball, outs[i])
            lastEnd[i] = Date.now()
          }
        }

        for (const i of sides.keys()) recs[i][ki].rounds.push(outs[i] as SharedRound)
        const show = (o: Partial<SharedRound>): string =>
          `create ${fmt(o.create!.opsPerSec)}/s, stat ${fmt(o.stat!.opsPerSec)}/s, unlink ${fmt(o.unlink!.opsPerSec)}/s, untar ${fmt(o.untarSec!, 2)} s, ` +
          `write ${fmt(o.writeMBps!)} MB/s, read ${fmt(o.readMBps!)} MB/s`
        log(`  round ${r + 1}, ${k} client${k > 1 ? 's' : ''}: ${sides.map((s, i) => `${s.target}: ${show(outs[i])}`).join('; ')}`)
      }
    }

    results.shared.push(...recs.flat())

    // The invalidation latency, on a directory both mounts have seen.
    const dirA = path.join(a.root, 'inval')
    const dirB = path.join(b.root, 'inval')
    fs.mkdirSync(dirA)
    await until('the directory inval on mount B', () => fs.existsSync(dirB))
    for (const kind of INVALIDATION_KINDS) {
      const got = await driver({op: 'invalidation', a: dirA, b: dirB, kind, samples: sc.samples, timeoutMs: SEEN_WITHIN_MS})
      const ms = got.latenciesMs!
      const rec = {kind, latenciesMs: ms, medianMs: median(ms), p99Ms: percentile(ms, 99)}
      info.invalidation.push(rec)
      log(`  invalidation, ${kind} on A seen by stat on B: median ${fmt(rec.medianMs, 1)} ms, p99 ${fmt(rec.p99Ms, 1)} ms (${ms.length} samples)`)
    }
  } finally {
    for (const s of sessions) await close(s)
    await dropSchemas([url])
  }
}

/** The median of per-round ratios of a figure (local image's rounds against the volume's). */
function roundRatio(pg: SharedRound[], local: SharedRound[], figure: (x: SharedRound) => number): number | undefined {
  const n = Math.min(pg.length, local.length)
  if (n === 0) return undefined
  return median(Array.from({length: n}, (_, i) => figure(pg[i]) / figure(local[i])))
}

/** The report's section (docs/BENCHMARKS.md). */
export function sharedSection(): string[] {
  const info = results.sharedInfo
  if (info === undefined) return []
  const L: string[] = ['## Shared volume on PostgreSQL: two mounts against a local image (issue 20)', '']
  if (info.skipped !== undefined) return [...L, `Not run: ${info.skipped}.`, '']
  L.push(
    `One volume made by \`razorfs init --meta\` in PostgreSQL ${info.serverVersion ?? '?'} (${info.server}, on this machine) and mounted twice by \`razorfs mount -f --meta URL\` (\`razorfs-pg\`; two mountpoints standing for two hosts), ` +
      'against `razorfs mount -f` of a local image (`razorfs`, the ll binding) in the same run. With k clients (one driver or tar process each, started together), client c works on mount c % 2 of the volume (all on the one local mount): ' +
      `create, stat, unlink of ${fmt(info.files)} files in all, split among the clients, each in its own directory (ops/s, aggregate); \`tar -xf\` of a tree of ${fmt(info.treeEntries)} entries by every client at once (seconds, first start to last end); ` +
      `sequential write of ${sizeName(info.bytes)} in all in 1 MiB blocks, a file per client, then read of each file through the *other* mount of the volume (MB/s, aggregate). ` +
      `Each step visits the two targets in turn, after an untimed \`sync\` and at least 1.2 s after that target's previous turn; ${info.rounds > 1 ? `median of ${info.rounds} rounds, ratios the median of the per-round ratios` : 'one round'}. ` +
      "Both keep names and attributes in the kernel for an hour; a shared mount drops what another host changed when that host's commit is notified, so on both the kernel answers most of the stat step (each client stats the files it made, on its own mount).",
    '',
  )
  L.push('| clients | step | razorfs (local image) | razorfs-pg (2 mounts) | speed razorfs-pg / razorfs |', '|---:|---|---:|---:|---:|')
  const clients = [...new Set(results.shared.map(s => s.clients))].sort((x, y) => x - y)
  const figures: Array<[string, (x: SharedRound) => number, string, number]> = [
    ['create ops/s', x => x.create.opsPerSec, '', 0],
    ['stat ops/s', x => x.stat.opsPerSec, '', 0],
    ['unlink ops/s', x => x.unlink.opsPerSec, '', 0],
    ['untar s', x => x.untarSec, ' s', 2],
    ['write MB/s', x => x.writeMBps, '', 0],
    ['read MB/s', x => x.readMBps, '', 0],
  ]
  for (const k of clients) {
    const local = results.shared.find(s => s.clients === k && s.target === 'razorfs')?.rounds ?? []
    const pg = results.shared.find(s => s.clients === k && s.target === 'razorfs-pg')?.rounds ?? []
    for (const [name, figure, unit, digits] of figures) {
      const v = (rounds: SharedRound[]): string => (rounds.length === 0 ? '-' : `${fmt(median(rounds.map(x => figure(x))), digits)}${unit}`)
      // Seconds: the speed ratio is the inverse of the time ratio.
      const speed = roundRatio(pg, local, figure)
      L.push(`| ${k} | ${name} | ${v(local)} | ${v(pg)} | ${rx(speed === undefined ? undefined : name.endsWith(' s') ? 1 / speed : speed)} |`)
    }
  }

  L.push('')
  if (info.invalidation.length > 0) {
    L.push(
      'Invalidation latency: how long mount B takes to see a change made on mount A. Each sample: B stats the file (or the name about to be made, ENOENT), so its kernel holds what it saw; after a pseudo-random pause of 0 to 1 s, ' +
        "A changes the file's mode (`chmod`) or makes the name (`create`); from A's call returning, B stats every millisecond until it sees the change. " +
        "B's kernel would keep the old view for its hour-long timeouts: what ends it is A's commit, notified through PostgreSQL to B's server, which drops it from B's kernel (ARCHITECTURE.md, \"Coherence\").",
      '',
    )
    L.push('| change on A | samples | median | p99 | most |', '|---|---:|---:|---:|---:|')
    for (const x of info.invalidation)
      L.push(`| ${x.kind} | ${x.latenciesMs.length} | ${fmt(x.medianMs, 1)} ms | ${fmt(x.p99Ms, 1)} ms | ${fmt(Math.max(...x.latenciesMs), 1)} ms |`)
    L.push('')
  }

  return L
}
