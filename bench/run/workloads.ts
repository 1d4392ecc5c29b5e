/**
 * The workloads other than metadata: parallel clients, sequential I/O and the block-size sweep,
 * both bindings side by side, random 4 KiB I/O, the storage layer and recovery without FUSE, and
 * the servers under the CPU profiler (the real workloads are in real.ts).
 */
import fs from 'node:fs'
import path from 'node:path'

import {type FlameRow, renderFlame} from '../chart.js'
import type {DriverResult, Job} from '../driver.js'
import {breakdown, flameRows, loadProfile, selfTimes} from '../profile.js'
import type {RecoveryResult} from '../recovery.js'
import {ATTR_EXPIRE_MS, type Config} from './config.js'
import {benchMeta} from './meta.js'
import {REPO, RESULTS, paths} from './paths.js'
import {type IoRecord, type ParallelRecord, type ProfileRecord, flames, rate, results} from './results.js'
import {close, ioRounds, open, openAll, openFresh} from './session.js'
import {BINDING_TARGETS, type TargetName} from './targets.js'
import {MiB, bsName, cleanEnv, driver, drivers, exec, fmt, log, sizeName, sleep} from './util.js'

export async function benchParallel(cfg: Config, targets: TargetName[]): Promise<void> {
  const k = cfg.clients
  const per = Math.floor(cfg.parallelFiles / k)
  for (const target of targets) {
    log(`parallel: ${target}, ${k} clients x ${fmt(per)} files, then ${k} x ${sizeName(cfg.parallelBytes / k)} written`)
    const s = await openFresh(target, 'parallel')
    const jobs = (op: 'create' | 'stat' | 'unlink'): Job[] =>
      Array.from({length: k}, (_, c) => ({op, dirs: [path.join(s.root, `c${c}`)], layout: 'flat' as const, from: 0, to: per}))
    await driver({op: 'mkdirs', dirs: Array.from({length: k}, (_, c) => path.join(s.root, `c${c}`)), layout: 'flat', to: per})
    const create = await drivers(jobs('create'))
    await sleep(ATTR_EXPIRE_MS)
    const stat = await drivers(jobs('stat'))
    await sleep(ATTR_EXPIRE_MS)
    const unlink = await drivers(jobs('unlink'))
    const size = Math.floor(cfg.parallelBytes / k / MiB) * MiB
    const write = await drivers(Array.from({length: k}, (_, c) => ({op: 'seqwrite' as const, file: path.join(s.root, `w${c}`), size, bs: MiB})))
    await close(s)
    const rec: ParallelRecord = {
      target,
      clients: k,
      files: per * k,
      create: rate(create),
      stat: rate(stat),
      unlink: rate(unlink),
      writeBytes: write.bytes,
      writeMBps: write.bytes / write.sec / 1e6,
    }
    results.parallel.push(rec)
    log(`  create ${fmt(rec.create.opsPerSec)}/s, stat ${fmt(rec.stat.opsPerSec)}/s, unlink ${fmt(rec.unlink.opsPerSec)}/s, write ${fmt(rec.writeMBps)} MB/s`)
  }
}

const showRounds = (rec: IoRecord, key: 'writeMBps' | 'readMBps'): string =>
  `${fmt(rec[key])} MB/s${rec.rounds.length > 1 ? ` (${rec.rounds.map(x => fmt(x[key])).join(', ')})` : ''}`

/** Sequential write + read of `bytes` in 1 MiB blocks on `targets` (mounted at once), in rounds. */
export async function benchSeq(cfg: Config, targets: TargetName[], label = 'seq', bytes = cfg.seqBytes, into = results.seq): Promise<void> {
  log(`${label}: ${targets.join(', ')}: ${sizeName(bytes)} with 1 MiB blocks, ${cfg.rounds} rounds`)
  const sessions = await openAll(targets, label)
  const recs = await ioRounds(cfg, sessions, label, bytes, MiB)
  for (const s of sessions) await close(s)
  for (const rec of recs) {
    into.push(rec)
    log(`  ${rec.target}: write ${showRounds(rec, 'writeMBps')}, read ${showRounds(rec, 'readMBps')}`)
  }
}

/**
 * Both FUSE bindings side by side (issue 8): native, the do-nothing filesystem on each binding,
 * and razorfs on each; create/stat/unlink of cfg.bindingsFiles files in one directory and a
 * listing of it (interleaved, in rounds, as benchMeta), then sequential write and read of
 * cfg.bindingsBytes in 1 MiB blocks (in rounds, as benchSeq).
 */
export async function benchBindings(cfg: Config): Promise<void> {
  const targets = BINDING_TARGETS
  const n = cfg.bindingsFiles
  await benchMeta(cfg, targets, {layouts: ['flat'], sizes: [n], rounds: () => cfg.rounds, readdirN: n, lifecycle: false, paired: false, into: results.bindings})
  await benchSeq(cfg, targets, 'bindings-seq', cfg.bindingsBytes, results.bindings.seq)
}

export async function benchSweep(cfg: Config, targets: TargetName[]): Promise<void> {
  log(`sweep: ${targets.join(', ')}: ${sizeName(cfg.sweepBytes)} per block size, ${cfg.rounds} rounds`)
  const sessions = await openAll(targets, 'sweep')
  for (const bs of cfg.sweepBs) {
    const recs = await ioRounds(cfg, sessions, `sweep-${bs}`, cfg.sweepBytes, bs)
    results.sweep.push(...recs)
    log(`  bs ${bsName(bs)}: ${recs.map(r => `${r.target} write ${fmt(r.writeMBps)}, read ${fmt(r.readMBps)}`).join('; ')} MB/s`)
  }

  for (const s of sessions) await close(s)
}

let fioPath: string | undefined | null = null
async function findFio(): Promise<string | undefined> {
  if (fioPath !== null) return fioPath
  const r = await exec('sh', ['-c', 'command -v fio'])
  fioPath = r.code === 0 ? r.stdout.trim() : undefined
  return fioPath
}

async function fio(file: string, rw: 'randread' | 'randwrite', size: number, seconds: number): Promise<number> {
  const r = await exec(
    (await findFio())!,
    [
      `--name=${rw}`,
      `--filename=${file}`,
      `--rw=${rw}`,
      '--bs=4k',
      '--direct=1',
      '--ioengine=psync',
      '--iodepth=1',
      `--size=${size}`,
      '--time_based',
      `--runtime=${seconds}`,
      '--output-format=json',
    ],
    {env: cleanEnv()},
  )
  if (r.code !== 0) throw new Error(`fio ${rw} failed: ${r.stderr.slice(0, 500)}`)
  const job = (JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as {jobs: Array<Record<'read' | 'write', {iops: number}>>}).jobs[0]
  return rw === 'randread' ? job.read.iops : job.write.iops
}

export async function benchRandom(cfg: Config, targets: TargetName[]): Promise<void> {
  const tool = (await findFio()) === undefined ? 'driver' : 'fio'
  log(`random 4 KiB (${tool}, O_DIRECT, one client): ${targets.join(', ')}, ${sizeName(cfg.randBytes)} file, ${cfg.randSeconds} s each`)
  const sessions = await openAll(targets, 'random')
  const files = sessions.map(s => path.join(s.root, 'rand'))
  for (const file of files) await driver({op: 'seqwrite', file, size: cfg.randBytes, bs: MiB})
  const iops = async (file: string, rw: 'randread' | 'randwrite'): Promise<number> => {
    if (tool === 'fio') return fio(file, rw, cfg.randBytes, cfg.randSeconds)
    const r = await driver({op: rw, file, size: cfg.randBytes, seconds: cfg.randSeconds})
    return r.ops / r.sec
  }

  const reads: number[] = []
  const writes: number[] = []
  for (const file of files) reads.push(await iops(file, 'randread'))
  for (const file of files) writes.push(await iops(file, 'randwrite'))
  for (const s of sessions) await close(s)
  for (const [i, target] of targets.entries()) {
    results.random.push({target, tool, fileBytes: cfg.randBytes, seconds: cfg.randSeconds, readIops: reads[i], writeIops: writes[i]})
    log(`  ${target}: randread ${fmt(reads[i])} IOPS, randwrite ${fmt(writes[i])} IOPS`)
  }
}

/** Top-level packages of node_modules (scoped ones by package), in name order, up to `limit` entries. */
export function treeSubset(source: string, limit: number): string[] {
  const out: string[] = []
  let count = 0
  const countOf = (p: string): number => fs.readdirSync(p, {recursive: true}).length + 1
  const isDir = (p: string): boolean => fs.lstatSync(p).isDirectory()
  for (const name of fs.readdirSync(source).sort()) {
    if (name.startsWith('.') || !isDir(path.join(source, name))) continue
    const packages = name.startsWith('@')
      ? fs
          .readdirSync(path.join(source, name))
          .sort()
          .map(sub => `${name}/${sub}`)
          .filter(p => isDir(path.join(source, p)))
      : [name]
    for (const pkg of packages) {
      if (count >= limit) return out
      out.push(`node_modules/${pkg}`)
      count += countOf(path.join(source, pkg))
    }
  }

  return out
}

export async function benchStorage(cfg: Config): Promise<void> {
  // bench/storage.ts writes bench/results/storage.json beside its own build: in the copy.
  const file = path.join(paths.app, 'bench/results/storage.json')
  fs.rmSync(file, {force: true})
  log(
    `storage: bench/storage.ts${
      Object.keys(cfg.storageEnv).length > 0
        ? ` (${Object.entries(cfg.storageEnv)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')})`
        : ''
    }`,
  )
  const r = await exec(process.execPath, ['--expose-gc', path.join(paths.here, 'storage.js')], {env: {...cleanEnv(), ...cfg.storageEnv}, inheritStderr: true})
  if (!fs.existsSync(file)) throw new Error(`bench/storage.ts wrote no results (exit ${r.code})`)
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the JSON bench/storage.ts writes, read as it is
  results.storage = {exitCode: r.code, json: JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, any>, markdown: r.stdout}
  // A full run updates bench/results/storage.json as `npm run bench:storage` does; a quick one
  // (smaller sizes) leaves the last full numbers there.
  if (cfg.mode === 'full') fs.copyFileSync(file, path.join(RESULTS, 'storage.json'))
}

export async function benchRecovery(cfg: Config): Promise<void> {
  log('recovery: checkpoint after N creates; open after a crash with N MiB of WAL')
  const r = await exec(process.execPath, ['--expose-gc', path.join(paths.here, 'recovery.js'), JSON.stringify(cfg.recovery)], {
    env: cleanEnv(),
    inheritStderr: true,
  })
  if (r.code !== 0) throw new Error(`recovery benchmark failed (exit ${r.code})`)
  results.recovery = JSON.parse(r.stdout) as RecoveryResult
}

export async function benchProfile(cfg: Config, targets: TargetName[]): Promise<void> {
  const dir = path.join(RESULTS, 'profiles')
  fs.mkdirSync(dir, {recursive: true})
  const source = fs.realpathSync(path.join(REPO, 'node_modules'))
  const tarball = path.join(paths.workDir, 'profile-tree.tar')
  const pack = await exec('tar', ['-cf', tarball, '-C', path.dirname(source), ...treeSubset(source, cfg.profileTreeEntries)])
  if (pack.code !== 0) throw new Error(`tar -c failed: ${pack.stderr}`)
  const tarEntries = (await exec('tar', ['-tf', tarball])).stdout.split('\n').filter(Boolean).length
  for (const target of targets.filter(t => t !== 'native')) {
    log(
      `profile: ${target} server under --cpu-prof: ${fmt(cfg.profileFiles)} create/stat/unlink, ${sizeName(cfg.profileBytes)} written (1 MiB blocks), untar of ${fmt(tarEntries)} entries`,
    )
    const file = path.join(dir, `${target}.cpuprofile`)
    fs.rmSync(file, {force: true})
    const s = await open(target, 'profile', {profile: dir})
    const job = {dirs: [path.join(s.root, 'p')], layout: 'flat' as const, from: 0, to: cfg.profileFiles}
    await driver({op: 'mkdirs', ...job})
    const phases: Record<string, DriverResult> = {}
    phases.create = await driver({op: 'create', ...job})
    await sleep(ATTR_EXPIRE_MS)
    phases.stat = await driver({op: 'stat', ...job})
    phases.readdir = await driver({op: 'readdir', dirs: job.dirs, expect: cfg.profileFiles, repeats: 30})
    await sleep(ATTR_EXPIRE_MS)
    phases.unlink = await driver({op: 'unlink', ...job})
    phases.write = await driver({op: 'seqwrite', file: path.join(s.root, 'w'), size: cfg.profileBytes, bs: MiB})
    // untar of a small source tree (more files than razorfs keeps content fds open: 256)
    const dest = path.join(s.root, 'tree')
    fs.mkdirSync(dest)
    const startMono = Number(process.hrtime.bigint() / 1000n)
    const untar = await exec('tar', ['-xf', tarball, '-C', dest])
    if (untar.code !== 0) throw new Error(`${target}: tar -x failed: ${untar.stderr.slice(0, 500)}`)
    phases.untar = {ops: tarEntries, bytes: 0, sec: untar.ms / 1000, startMs: 0, endMs: 0, startMono, endMono: Number(process.hrtime.bigint() / 1000n)}
    await close(s)
    const profile = loadProfile(file)
    const rec: ProfileRecord = {target, files: cfg.profileFiles, writeBytes: cfg.profileBytes, file: path.relative(REPO, file), phases: {}}
    for (const [name, r] of Object.entries(phases)) {
      rec.phases[name] = {
        ...selfTimes(profile, r.startMono, r.endMono, 12),
        ops: r.ops,
        opsPerSec: r.ops / r.sec,
        fromUs: r.startMono,
        toUs: r.endMono,
        breakdown: breakdown(profile, r.startMono, r.endMono),
      }
      if (target === 'razorfs') {
        const rows: FlameRow[] = flameRows(profile, r.startMono, r.endMono)
        await renderFlame(
          rows,
          `razorfs server, ${name} phase: CPU time by call stack (width = inclusive time; idle left out)`,
          path.join(paths.charts, `flame-${name}.png`),
        )
        flames.add(name)
      }

      const b = rec.phases[name].breakdown
      log(
        `  ${name}: ${fmt(rec.phases[name].opsPerSec)}/s; idle ${b.idlePct.toFixed(0)}%, razorfs code ${b.razorfsPct.toFixed(0)}%, binding ${b.bindingPct.toFixed(0)}%, GC ${b.gcPct.toFixed(0)}%, other ${b.otherPct.toFixed(0)}%; ` +
          `top: ${rec.phases[name].top
            .slice(0, 3)
            .map(t => `${t.fn} ${t.pct.toFixed(0)}%`)
            .join('; ')}`,
      )
    }

    results.profile.push(rec)
  }
}
