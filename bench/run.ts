/**
 * The benchmark suite (issue 7): `npm run bench` (full) or `npm run bench -- --quick`.
 *
 * Every workload runs against several targets in the same run, taking turns so that a change of
 * load on the machine hits them all alike:
 *   native    a directory on the host filesystem;
 *   noop      bench/noop-fs: a fuse-native filesystem that stores nothing, mounted with razorfs's
 *             fuse-native options: the ceiling of any filesystem served through fuse-native;
 *   noop-c    bench/noop-c/: the same in C on libfuse 3's low-level API, multi-threaded loop,
 *             razorfs's kernel options: the FUSE limit (built with cc at the start of the run);
 *   mergerfs, bindfs  C/C++ FUSE filesystems serving a host directory on the same disk;
 *   razorfs   `razorfs mount -f` on a fresh data dir.
 * Which workload runs on which: config.ts, targetsOf. The bindings workload adds noop-ll
 * (bench/noop-ll.ts, the same on razorfs's libfuse 3 addon) and razorfs on each binding
 * (razorfs-fn, razorfs-ll). Workloads are driven from child processes (bench/driver.ts; tar,
 * grep, find, du, rm, git, sqlite3, dd; fio if installed).
 *
 * Writes docs/BENCHMARKS.md, bench/results/bench.json, bench/charts/*.png; progress on stderr.
 * Options (`--help`): --quick, --only LIST (meta,bindings,real,parallel,seq,sweep,random,storage,
 * recovery,scale,shared,profile), --targets LIST, --sizes LIST, --layouts LIST, --binding ll|fuse-native,
 * --no-profile, --keep (keep the work dir), --dir DIR (parent of the work dir).
 *
 * This file runs the workloads in order and writes the results; the rest is in bench/run/:
 *   config.ts     the command line, the full and the quick sizes
 *   paths.ts      the work dir, the copy of the build the children run from, the output files
 *   targets.ts    each target: a host directory or a server on a mountpoint, started and stopped
 *   session.ts    a target open for one workload; sequential I/O in rounds, the targets taking turns
 *   leftovers.ts  mounts an earlier, killed run left behind: unmounted before a run starts
 *   meta.ts       the metadata workload (and razorfs's stop, fsck and remount)
 *   real.ts       the real workloads: untar, grep, find, du, rm, git, SQLite, dd, 4 untars at once
 *   scale.ts      images of 10k..10M files built through the storage API, mounted (bench/scale.ts builds)
 *   shared.ts     one volume on PostgreSQL mounted twice, against a local image; invalidation latency
 *   workloads.ts  the other workloads
 *   results.ts    the records the workloads write
 *   checks.ts     the targets (thresholds) judged, and the ratios they use
 *   machine.ts    the machine table: hardware, the work dir's filesystem, CPU steal
 *   report.ts     the markdown report
 *   util.ts       the log, number formats, child processes and the driver
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {type MetaPoint, type PeerPoint, type ThroughputPoint, renderMainChart, renderPeersChart} from './chart.js'
import {checks} from './run/checks.js'
import {configOf, parseArgs, targetsOf} from './run/config.js'
import {clearLeftovers} from './run/leftovers.js'
import {cpuJiffies, machine, stealPct, warmMemory} from './run/machine.js'
import {benchMeta} from './run/meta.js'
import {REPO, RESULTS, makeWorkDir, paths, usePartialOutput} from './run/paths.js'
import {PEER_TARGETS, peerRows, report} from './run/report.js'
import {results} from './run/results.js'
import {cleanup} from './run/session.js'
import {benchReal} from './run/real.js'
import {benchScale} from './run/scale.js'
import {benchShared} from './run/shared.js'
import {prepareTargets, setRazorfsBinding} from './run/targets.js'
import {OneLineError, T0, fmt, log} from './run/util.js'
import {benchBindings, benchParallel, benchProfile, benchRandom, benchRecovery, benchSeq, benchStorage, benchSweep} from './run/workloads.js'

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const cfg = configOf(args)
  await clearLeftovers()
  makeWorkDir(args.dir)
  setRazorfsBinding(args.binding)
  const targetsFor = (w: Parameters<typeof targetsOf>[1]) => (args.only.has(w) ? targetsOf(args, w) : [])
  try {
    await prepareTargets([...new Set([...args.only].flatMap(w => targetsFor(w)))])
  } catch (error) {
    await cleanup(false)
    throw error
  }

  fs.mkdirSync(RESULTS, {recursive: true})
  if (args.partial) usePartialOutput()
  const {charts} = paths
  fs.mkdirSync(charts, {recursive: true})
  if (args.only.has('profile')) for (const f of fs.readdirSync(charts)) if (/^flame-.*\.png$/.test(f)) fs.rmSync(path.join(charts, f))
  const warm = warmMemory()
  const loadStart = os.loadavg()
  const jiffiesStart = cpuJiffies()
  const mach = machine()
  mach['memory warm-up'] =
    warm === undefined
      ? 'none (no /dev/shm, or no room in it)'
      : `${fmt(warm.gib, 1)} GiB written to /dev/shm and deleted before the run, in ${fmt(warm.sec, 1)} s (a VM's first touch of a page is slow: see bench/run.ts, warmMemory)`
  log(`${cfg.mode} run in ${paths.workDir}; workloads ${[...args.only].map(w => `${w} (${targetsFor(w).join(', ') || 'no mount'})`).join(', ')}`)
  log(`memory warm-up: ${mach['memory warm-up']}`)
  // Ctrl-C or a kill: stop every server and workload process, unmount, exit (once; a second
  // signal while that runs only says so).
  let interrupted = false
  const onSignal = (): void => {
    if (interrupted) {
      log('still stopping servers and unmounting')
      return
    }

    interrupted = true
    log('interrupted: stopping servers')
    void cleanup(args.keep).then(
      () => process.exit(130),
      () => process.exit(130),
    )
  }

  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    const t = targetsFor
    if (args.only.has('meta')) await benchMeta(cfg, t('meta'))
    if (args.only.has('bindings')) await benchBindings(cfg)
    if (args.only.has('real')) await benchReal(cfg, t('real'))
    if (args.only.has('seq')) await benchSeq(cfg, t('seq'))
    if (args.only.has('sweep')) await benchSweep(cfg, t('sweep'))
    if (args.only.has('random')) await benchRandom(cfg, t('random'))
    if (args.only.has('parallel')) await benchParallel(cfg, t('parallel'))
    if (args.only.has('storage')) await benchStorage(cfg)
    if (args.only.has('recovery')) await benchRecovery(cfg)
    if (args.only.has('scale')) await benchScale(cfg, args.keep)
    if (args.only.has('shared')) await benchShared(cfg)
    if (args.only.has('profile')) await benchProfile(cfg, t('profile'))
  } finally {
    await cleanup(args.keep)
  }

  const totalSec = (Date.now() - T0) / 1000
  const targetChecks = checks(cfg)
  const load = {start: loadStart, end: os.loadavg(), stealPct: stealPct(jiffiesStart, cpuJiffies())}
  const json = {
    date: new Date().toISOString(),
    mode: cfg.mode,
    args: {...args, only: [...args.only]},
    config: cfg,
    machine: mach,
    load,
    totalSec,
    targets: targetChecks,
    results,
  }
  fs.writeFileSync(paths.json, JSON.stringify(json, null, 2) + '\n')

  const meta: MetaPoint[] = results.meta.flatMap(m =>
    (['create', 'stat', 'unlink'] as const).map(op => ({target: m.target, layout: m.layout, op, files: m.files, opsPerSec: m[op].opsPerSec})),
  )
  const tput: ThroughputPoint[] = results.sweep.flatMap(r => [
    {target: r.target, dir: 'write' as const, bs: r.bs, mbPerSec: r.writeMBps},
    {target: r.target, dir: 'read' as const, bs: r.bs, mbPerSec: r.readMBps},
  ])
  const mainChart = meta.length > 0 || tput.length > 0
  if (mainChart)
    await renderMainChart(meta, tput, `razorfs benchmarks (${cfg.mode} run, ${new Date().toISOString().slice(0, 10)})`, path.join(charts, 'bench.png'))
  // One bar per workload and target: time relative to native (or to the first target shown).
  const rows = peerRows()
  const shown = PEER_TARGETS.filter(t => rows.some(r => r.time(t) !== undefined))
  const reference = shown.includes('native') ? 'native' : shown[0]
  const peers: PeerPoint[] = rows.flatMap(r => {
    const base = r.time(reference)
    return base === undefined
      ? []
      : shown.flatMap(target => (r.time(target) === undefined ? [] : [{workload: r.name, target, relative: r.time(target)! / base}]))
  })
  const peersChart = peers.length > 0
  if (peersChart)
    await renderPeersChart(
      peers,
      reference,
      `razorfs and its peers (${cfg.mode} run, ${new Date().toISOString().slice(0, 10)})`,
      path.join(charts, 'peers.png'),
    )
  const md = report(cfg, args, mach, load, totalSec, targetChecks, mainChart, peersChart)
  fs.writeFileSync(paths.doc, md)
  log(`wrote ${path.relative(REPO, paths.doc)}, ${path.relative(REPO, paths.json)}, ${path.relative(REPO, charts)}/*.png in ${fmt(totalSec / 60, 1)} min`)
  for (const c of targetChecks) log(`  ${c.pass === undefined ? 'n/a ' : c.pass ? 'PASS' : 'FAIL'}  ${c.name}: ${c.measured} (needs ${c.threshold})`)
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof OneLineError ? error.message : ((error as Error)?.stack ?? String(error))}\n`)
  process.exitCode = 1
})
