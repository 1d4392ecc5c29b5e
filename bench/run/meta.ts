/**
 * The metadata workload: create, stat and unlink of many files, flat or in a deep tree, all
 * targets mounted at once and taking turns in chunks of files; a listing of the flat directory;
 * razorfs stopped, checked and remounted with all files present; rounds of the smallest size run
 * inside the phases of the largest.
 */
import fs from 'node:fs'
import path from 'node:path'

import {type DriverResult, type Layout, treeDirs} from '../driver.js'
import {ATTR_EXPIRE_MS, type Config} from './config.js'
import {paths} from './paths.js'
import {type MetaRecord, type RazorfsLife, type Rate, type ReaddirRecord, rate, results} from './results.js'
import {close, open, openAll} from './session.js'
import type {Memory, Session, TargetName} from './targets.js'
import {MiB, cleanEnv, countName, driver, exec, fmt, log, median, sleep} from './util.js'

function dirBytes(dir: string): number {
  let total = 0
  for (const e of fs.readdirSync(dir, {withFileTypes: true, recursive: true})) {
    if (e.isFile()) total += fs.statSync(path.join(e.parentPath, e.name)).size
  }

  return total
}

/** Files made and removed on every target after razorfs's remount, before the unlink phase. */
const WARM_FILES = 2000

/** Drop the kernel's cached names and inodes of every filesystem; false where not allowed (not root). */
function dropNames(): boolean {
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '2')
    return true
  } catch {
    return false
  }
}

/** razorfs with all files present: memory, stop (checkpoint), fsck, remount. */
async function razorfsLifecycle(s: Session, layout: Layout, files: number): Promise<{session: Session; life: RazorfsLife}> {
  const memory = s.memory()
  const dataDir = s.dataDir!
  const stop = await s.stop()
  const imageMiB = dirBytes(dataDir) / MiB
  log(`  razorfs: stopped in ${fmt(stop.ms)} ms (exit ${stop.code}); image ${fmt(imageMiB, 1)} MiB; fsck -n -f ...`)
  const f = await exec(process.execPath, [paths.runJs, 'fsck', '-n', '-f', dataDir], {env: cleanEnv()})
  const fsckOut = (f.stdout + f.stderr).trim()
  const implemented = !(f.code === 1 && /not implemented yet/.test(fsckOut))
  log(`  razorfs: fsck exit ${f.code} in ${fmt(f.ms)} ms${implemented ? '' : ' (fsck not implemented yet)'}`)
  const again = await open('razorfs', `remount-${layout}`, {dataDir})
  const remountMs = again.mountMs!
  // The files, the root, and the directory of the files (flat) or the tree's top directory and every directory under it (deep).
  const inodes = files + 1 + (layout === 'deep' ? treeDirs('', files).length + 1 : 1)
  log(`  razorfs: remount of ${fmt(inodes)} inodes in ${fmt(remountMs)} ms`)
  await sleep(200)
  return {
    session: again,
    life: {
      layout,
      files,
      inodes,
      memory,
      stopMs: stop.ms,
      stopCode: stop.code,
      imageMiB,
      fsck: {ms: f.ms, code: f.code, implemented, output: fsckOut.slice(0, 400)},
      remountMs,
      memoryAfterRemount: again.memory(),
    },
  }
}

/** The round whose rate is the median (rounds are few: 1 or 3). */
function medianRate(rates: Rate[]): Rate {
  return [...rates].sort((a, b) => a.opsPerSec - b.opsPerSec)[Math.floor(rates.length / 2)]
}

/** What benchMeta runs and where its records go. */
interface MetaPlan {
  layouts: Layout[]
  sizes: number[]
  /** Rounds of a size (the median round is reported). */
  rounds: (n: number) => number
  /** The size whose flat directory is also listed (readdir). */
  readdirN: number
  /** Stop, fsck and remount razorfs at the largest size (results.razorfsLife). */
  lifecycle: boolean
  /** Run rounds of the smallest size inside the phases of the largest (MetaRecord.paired). */
  paired: boolean
  into: {meta: MetaRecord[]; readdir: ReaddirRecord[]}
}

const mainMetaPlan = (cfg: Config): MetaPlan => ({
  layouts: cfg.metaLayouts,
  sizes: cfg.metaSizes,
  rounds: n => (n <= cfg.metaRoundsUpTo ? cfg.rounds : 1),
  readdirN: cfg.readdirN,
  lifecycle: true,
  paired: true,
  into: results,
})

type MetaOp = 'create' | 'stat' | 'unlink'

/**
 * Where rounds of the smallest size run inside each phase of the largest, as fractions of the
 * phase's files: three in the long create phase, one halfway through stat and through unlink.
 * Their rates are measured minutes, not a quarter of an hour, from the large phase's, on the same
 * machine state: the scaling target divides by them.
 */
export const PAIRED_AT: Record<MetaOp, number[]> = {create: [1 / 6, 1 / 2, 5 / 6], stat: [1 / 2], unlink: [1 / 2]}

/** Files each target takes in turn (driver.ts). */
const metaChunk = (n: number): number => Math.max(100, Math.min(1000, Math.floor(n / 8)))

/** Two driver results of one job cut in two, as one. */
function joined(a: DriverResult, b: DriverResult): DriverResult {
  return {
    ...a,
    ops: a.ops + b.ops,
    bytes: a.bytes + b.bytes,
    sec: a.sec + b.sec,
    endMs: b.endMs,
    endMono: b.endMono,
    perDir: a.perDir?.map((x, i) => ({ops: x.ops + b.perDir![i].ops, sec: x.sec + b.perDir![i].sec})),
  }
}

/**
 * One round of `n` files in a new directory `name` of each session: create, stat, unlink, interleaved
 * as in benchMeta. `coldUnlink`: the kernel's cached names are dropped before the unlinks, as they
 * were before the unlink phase this round is paired with (each unlink then needs a lookup).
 */
async function smallRound(sessions: Session[], layout: Layout, n: number, name: string, coldUnlink = false): Promise<Array<Record<MetaOp, Rate>>> {
  const dirs = sessions.map(s => path.join(s.root, name))
  const job = {dirs, layout, from: 0, to: n, chunk: metaChunk(n)}
  await driver({op: 'mkdirs', dirs, layout, to: n})
  const create = await driver({op: 'create', ...job})
  await sleep(ATTR_EXPIRE_MS)
  const stat = await driver({op: 'stat', ...job})
  await sleep(ATTR_EXPIRE_MS)
  if (coldUnlink) dropNames()
  const unlink = await driver({op: 'unlink', ...job})
  return sessions.map((_, i) => ({create: rate(create.perDir![i]), stat: rate(stat.perDir![i]), unlink: rate(unlink.perDir![i])}))
}

/**
 * Metadata workloads: for each layout and size, all targets are mounted at once and the driver
 * interleaves them in chunks of files (bench/driver.ts), so that the load of a shared machine
 * falls on all of them alike. Small sizes run several rounds (fresh directories each time) and
 * report the median round.
 */
export async function benchMeta(cfg: Config, targets: TargetName[], plan: MetaPlan = mainMetaPlan(cfg)): Promise<void> {
  const largest = Math.max(...plan.sizes)
  const smallest = Math.min(...plan.sizes)
  for (const layout of plan.layouts) {
    for (const n of plan.sizes) {
      const rounds = plan.rounds(n)
      const paired = plan.paired && n === largest && n > smallest
      log(
        `meta ${layout} ${countName(n)}: ${targets.join(', ')} (interleaved${rounds > 1 ? `, ${rounds} rounds` : ''}` +
          `${paired ? `; rounds of ${countName(smallest)} inside each phase` : ''})`,
      )
      const sessions = await openAll(targets, `meta-${layout}-${countName(n)}`)
      // The paired rounds' own mounts, open throughout like the small size's own rounds; a first
      // round (not counted) warms their servers up as the median of those rounds is warm.
      const small: Session[] = []
      if (paired) {
        for (const target of targets) small.push(await open(target, `paired-${layout}`))
        await smallRound(small, layout, smallest, 'warm-up')
      }

      const rates = targets.map(() => ({create: [] as Rate[], stat: [] as Rate[], unlink: [] as Rate[]}))
      const cpus = targets.map(() => ({
        create: [] as Array<number | undefined>,
        stat: [] as Array<number | undefined>,
        unlink: [] as Array<number | undefined>,
      }))
      const pairedRates = targets.map(() => ({create: [] as Rate[], stat: [] as Rate[], unlink: [] as Rate[]}))
      let memory: Array<Memory | undefined> = []
      for (let r = 0; r < rounds; r++) {
        // The razorfs remount below moves its tree to another mountpoint: paths follow the sessions.
        const dirs = (): string[] => sessions.map(s => path.join(s.root, `${layout}${rounds > 1 ? `-${r}` : ''}`))
        const chunk = metaChunk(n)
        /** The unlink phase starts with no cached names (razorfs remounted, caches dropped). */
        let unlinkCold = false
        await driver({op: 'mkdirs', dirs: dirs(), layout, to: n})
        // Server CPU per phase: each target's server is its own process, so this is separable
        // although the targets take turns; it does not depend on the machine's load as wall time does.
        const cpu = async (fn: () => Promise<DriverResult>): Promise<[DriverResult, Array<number | undefined>]> => {
          const before = sessions.map(s => s.cpuMs())
          const r = await fn()
          return [
            r,
            sessions.map((s, i) => {
              const after = s.cpuMs()
              return after === undefined || before[i] === undefined ? undefined : after - before[i]!
            }),
          ]
        }

        // One phase over files [0, n); when paired, cut at PAIRED_AT with a round of the smallest
        // size on the paired mounts in each cut (not counted in this phase's time or CPU).
        const phase = async (op: MetaOp): Promise<[DriverResult, Array<number | undefined>]> => {
          const bounds = [0, ...(paired ? PAIRED_AT[op].map(f => Math.round((f * n) / chunk) * chunk) : []), n]
          let all: [DriverResult, Array<number | undefined>] | undefined
          for (let k = 0; k + 1 < bounds.length; k++) {
            if (k > 0) {
              const got = await smallRound(small, layout, smallest, `${op}-${k}`, op === 'unlink' && unlinkCold)
              for (const i of targets.keys()) pairedRates[i][op].push(got[i][op])
              log(
                `  ${countName(smallest)} round at ${countName(bounds[k])} of the ${op} phase: ${targets.map((t, i) => `${t} ${fmt(got[i][op].opsPerSec)}/s`).join(', ')}`,
              )
            }

            const part = await cpu(() => driver({op, dirs: dirs(), layout, from: bounds[k], to: bounds[k + 1], chunk}))
            all =
              all === undefined
                ? part
                : [joined(all[0], part[0]), all[1].map((x, i) => (x === undefined || part[1][i] === undefined ? undefined : x + part[1][i]!))]
          }

          return all!
        }

        const [create, createCpu] = await phase('create')
        await sleep(ATTR_EXPIRE_MS)
        const [stat, statCpu] = await phase('stat')
        memory = sessions.map(s => s.memory())
        if (layout === 'flat' && n === plan.readdirN && r === 0) {
          await sleep(ATTR_EXPIRE_MS)
          const rd = await driver({op: 'readdir', dirs: dirs(), expect: n, repeats: 3})
          for (const [i, target] of targets.entries()) {
            const listings = rd.perDir![i].rounds!
            plan.into.readdir.push({target, entries: n, rounds: listings, entriesPerSec: n / Math.min(...listings)})
            log(`  readdir of ${fmt(n)} entries, ${target}: ${listings.map(x => (x * 1000).toFixed(0)).join(', ')} ms`)
          }
        }

        const rz = targets.indexOf('razorfs')
        if (plan.lifecycle && rz >= 0 && n === largest && r === rounds - 1) {
          const {session, life} = await razorfsLifecycle(sessions[rz], layout, n)
          sessions[rz] = session
          results.razorfsLife.push(life)
          // The remounted server is a new process whose JS is not compiled yet: a warm-up (2,000
          // files made, their names dropped, then looked up and removed, in a directory of their
          // own, on every target) so that the phase measures unlinks, not the first seconds of a
          // process.
          const warm = sessions.map(x => path.join(x.root, `warm-${layout}`))
          await driver({op: 'mkdirs', dirs: warm, layout: 'flat', to: WARM_FILES})
          await driver({op: 'create', dirs: warm, layout: 'flat', from: 0, to: WARM_FILES})
          dropNames()
          await driver({op: 'unlink', dirs: warm, layout: 'flat', from: 0, to: WARM_FILES})
          // The remount left razorfs with no cached names, so its unlinks would each need a lookup
          // the other targets' would not: every target starts the unlink phase cold, and so does
          // the paired round inside it.
          unlinkCold = dropNames()
          log(
            unlinkCold
              ? '  unlink phase: every target cold (echo 2 > /proc/sys/vm/drop_caches)'
              : '  unlink phase: razorfs cold after its remount, the others warm (not root: cached names not dropped)',
          )
        }

        await sleep(ATTR_EXPIRE_MS)
        const [unlink, unlinkCpu] = await phase('unlink')
        for (const i of targets.keys()) {
          rates[i].create.push(rate(create.perDir![i]))
          rates[i].stat.push(rate(stat.perDir![i]))
          rates[i].unlink.push(rate(unlink.perDir![i]))
          const perOp = (ms: number | undefined) => (ms === undefined ? undefined : (ms * 1000) / n)
          cpus[i].create.push(perOp(createCpu[i]))
          cpus[i].stat.push(perOp(statCpu[i]))
          cpus[i].unlink.push(perOp(unlinkCpu[i]))
        }
      }

      for (const s of [...sessions, ...small]) await close(s)
      for (const [i, target] of targets.entries()) {
        const rec: MetaRecord = {
          target,
          layout,
          files: n,
          create: medianRate(rates[i].create),
          stat: medianRate(rates[i].stat),
          unlink: medianRate(rates[i].unlink),
          memory: memory[i],
          rounds: {create: rates[i].create.map(x => x.opsPerSec), stat: rates[i].stat.map(x => x.opsPerSec), unlink: rates[i].unlink.map(x => x.opsPerSec)},
        }
        const cpuMedian = (xs: Array<number | undefined>) => (xs.some(x => x === undefined) ? undefined : median(xs as number[]))
        if (target !== 'native') rec.cpuUsPerOp = {create: cpuMedian(cpus[i].create)!, stat: cpuMedian(cpus[i].stat)!, unlink: cpuMedian(cpus[i].unlink)!}
        const p = pairedRates[i]
        if (paired) rec.paired = {files: smallest, create: medianRate(p.create), stat: medianRate(p.stat), unlink: medianRate(p.unlink)}
        plan.into.meta.push(rec)
        const show = (op: MetaOp) => `${op} ${fmt(rec[op].opsPerSec)}/s${rounds > 1 ? ` (${rec.rounds![op].map(x => fmt(x)).join(', ')})` : ''}`
        log(
          `  ${target}: ${show('create')}, ${show('stat')}, ${show('unlink')}` +
            (rec.memory ? `; server RSS ${fmt(rec.memory.rssMiB)} MiB (peak ${fmt(rec.memory.hwmMiB)})` : ''),
        )
      }
    }
  }
}
