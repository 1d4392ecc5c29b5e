/**
 * The scale workload (issue 18): for each size, an image of N files built through the storage
 * API (bench/scale.ts, in a child), then mounted by a fresh razorfs server: mount time, memory
 * right after the mount, stat of distinct existing files scattered over the tree (each one a
 * lookup on the fresh mount), create of new files in existing 1,000-file directories, the peak
 * memory after both, and the stop (checkpoint + unmount). The image is removed after its size
 * unless --keep.
 */
import fs from 'node:fs'
import path from 'node:path'

import {SCALE_PER_DIR} from '../driver.js'
import type {ScaleBuild} from '../scale.js'
import type {Config} from './config.js'
import {paths} from './paths.js'
import {type ScaleRecord, rate, results} from './results.js'
import {close, open} from './session.js'
import {statusMiB} from './targets.js'
import {MiB, cleanEnv, countName, driver, exec, fmt, log} from './util.js'

/** Disk an image takes per file, with room to spare (about 240 bytes a file measured at 1M). */
const BYTES_PER_FILE = 400
/** Directories the creates go to, at most (spread evenly over the tree). */
const CREATE_DIRS = 100

const mib = (m?: {rssMiB: number; hwmMiB: number}): string => (m === undefined ? '-' : `${fmt(m.rssMiB)} MiB (peak ${fmt(m.hwmMiB)})`)

/** Sample the server's RssAnon and RssFile every 50 ms until stop(); the most of each. */
function sample(pid: number | undefined): {stop: () => ScaleRecord['sampled']} {
  const most = {rssAnonMiB: 0, rssFileMiB: 0, samples: 0}
  const read = (at: number): void => {
    const s = statusMiB(at)
    if (s === undefined) return // the server is gone: its stop reports why
    most.rssAnonMiB = Math.max(most.rssAnonMiB, s.RssAnon ?? 0)
    most.rssFileMiB = Math.max(most.rssFileMiB, s.RssFile ?? 0)
    most.samples++
  }

  const timer = pid === undefined ? undefined : setInterval(() => read(pid), 50)
  return {
    stop: () => {
      clearInterval(timer)
      return most.samples > 0 ? most : undefined
    },
  }
}

export async function benchScale(cfg: Config, keep: boolean): Promise<void> {
  const {sizes, stats, creates} = cfg.scale
  log(`scale: images of ${sizes.map(countName).join(', ')} files built through the storage API, mounted: ${fmt(stats)} stats, ${fmt(creates)} creates`)
  for (const files of sizes) {
    const rec: ScaleRecord = {files}
    results.scale.push(rec)
    const fsStat = fs.statfsSync(paths.workDir)
    const free = fsStat.bavail * fsStat.bsize
    const need = files * BYTES_PER_FILE + 256 * MiB
    if (free < need) {
      rec.skipped = `${fmt(free / 1e9, 1)} GB free in ${paths.workDir}, needs about ${fmt(need / 1e9, 1)} GB`
      log(`  ${countName(files)}: skipped: ${rec.skipped}`)
      continue
    }

    const top = path.join(paths.workDir, `scale-${countName(files)}`)
    const dataDir = path.join(top, 'data')
    fs.mkdirSync(dataDir, {recursive: true})
    const b = await exec(process.execPath, [path.join(paths.here, 'scale.js'), JSON.stringify({dir: dataDir, files})], {env: cleanEnv(), inheritStderr: true})
    if (b.code !== 0) throw new Error(`scale: building the ${countName(files)}-file image failed (exit ${b.code})`)
    rec.build = JSON.parse(b.stdout) as ScaleBuild
    log(
      `  ${countName(files)}: built in ${fmt(rec.build.buildSec, 1)} s + close ${fmt(rec.build.closeSec, 1)} s (${fmt(files / rec.build.buildSec)} files/s), ${fmt(rec.build.imageBytes / MiB)} MiB on disk`,
    )

    const s = await open('razorfs', `scale-${countName(files)}`, {dataDir})
    try {
      rec.mountMs = s.mountMs
      rec.memoryAfterMount = s.memory()
      const sampler = sample(s.pid)
      rec.stat = rate(await driver({op: 'scalestat', root: s.root, files, count: stats}))
      const dirs = rec.build.dirs
      const k = Math.min(CREATE_DIRS, dirs)
      const createDirs = Array.from({length: k}, (_, j) => Math.floor((j * dirs) / k))
      rec.createDirs = k
      rec.create = rate(await driver({op: 'scalecreate', root: s.root, dirs: createDirs, count: creates}))
      rec.memoryAfter = s.memory()
      rec.sampled = sampler.stop()
    } finally {
      const stop = keep ? await s.stop() : await close(s)
      rec.stopMs = stop.ms
      rec.stopCode = stop.code
      if (!keep) fs.rmSync(top, {recursive: true, force: true})
    }

    log(
      `  ${countName(files)}: mount ${fmt(rec.mountMs ?? 0)} ms, RSS after mount ${mib(rec.memoryAfterMount)}; ` +
        `stat ${fmt(rec.stat.opsPerSec)}/s (${fmt(rec.stat.ops)}), create ${fmt(rec.create.opsPerSec)}/s in ${rec.createDirs} dirs of ${fmt(SCALE_PER_DIR)}; ` +
        `RSS after ${mib(rec.memoryAfter)}, most sampled: anon ${fmt(rec.sampled?.rssAnonMiB ?? 0)} MiB, file ${fmt(rec.sampled?.rssFileMiB ?? 0)} MiB; stop ${fmt(rec.stopMs)} ms (exit ${rec.stopCode})`,
    )
  }
}

/** The report's section (docs/BENCHMARKS.md): one row a size, and the largest size against the smallest. */
export function scaleSection(cfg: Config): string[] {
  if (results.scale.length === 0) return []
  const L: string[] = ['## Scale: images of up to 10M files built through the storage API (issue 18)', '']
  L.push(
    `Each image holds N empty files, ${fmt(SCALE_PER_DIR)} to a directory, built by \`bench/scale.ts\` through \`Image\` (transactions of 100 creates) and closed cleanly, then mounted by a new \`razorfs mount -f\`. ` +
      `On that fresh mount: stat of ${fmt(cfg.scale.stats)} distinct existing files scattered over the whole tree (all of them when N is smaller; every stat is a lookup), ` +
      `then create of ${fmt(cfg.scale.creates)} new files spread over up to ${CREATE_DIRS} existing directories; one driver process. ` +
      'Mount: spawn to the mount in /proc/self/mountinfo (node and oclif start-up included; the image was just written, so its pages are in the page cache). ' +
      'RSS is VmRSS (VmHWM) of the server from /proc: right after the mount, and after the stats and creates (the peak); during those, RssAnon (heap, private copies of changed pages) and RssFile (pages of the mapped image files, shared with the page cache) are sampled every 50 ms and the most of each is shown. Stop: SIGTERM to exit (checkpoint + unmount).',
    '',
  )
  L.push(
    '| files | directories | build | image on disk | mount | stat/s | create/s | RSS after mount | RSS after (peak) | most anon / file-backed RSS seen | stop |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  )
  const m = (x?: {rssMiB: number; hwmMiB: number}): string => (x === undefined ? '-' : `${fmt(x.rssMiB)} MiB (${fmt(x.hwmMiB)})`)
  for (const r of results.scale) {
    if (r.skipped !== undefined) {
      L.push(`| ${countName(r.files)} | skipped: ${r.skipped} | | | | | | | | | |`)
      continue
    }

    const b = r.build
    L.push(
      `| ${countName(r.files)} | ${b === undefined ? '-' : fmt(b.dirs)} | ${b === undefined ? '-' : `${fmt(b.buildSec + b.closeSec, 1)} s`} | ${b === undefined ? '-' : `${fmt(b.imageBytes / MiB)} MiB`} | ` +
        `${r.mountMs === undefined ? '-' : `${fmt(r.mountMs)} ms`} | ${r.stat === undefined ? '-' : fmt(r.stat.opsPerSec)} | ${r.create === undefined ? '-' : fmt(r.create.opsPerSec)} | ` +
        `${m(r.memoryAfterMount)} | ${m(r.memoryAfter)} | ${r.sampled === undefined ? '-' : `${fmt(r.sampled.rssAnonMiB)} / ${fmt(r.sampled.rssFileMiB)} MiB`} | ${r.stopMs === undefined ? '-' : `${fmt(r.stopMs)} ms`} |`,
    )
  }

  const ran = results.scale.filter(r => r.stat !== undefined && r.create !== undefined && r.mountMs !== undefined)
  if (ran.length > 1) {
    const small = ran.reduce((a, b) => (b.files < a.files ? b : a))
    const big = ran.reduce((a, b) => (b.files > a.files ? b : a))
    const x = (v: number): string => `${v.toFixed(2)}x`
    L.push(
      '',
      `${countName(big.files)} against ${countName(small.files)}: mount time ${x(big.mountMs! / small.mountMs!)}, stat rate ${x(big.stat!.opsPerSec / small.stat!.opsPerSec)}, ` +
        `create rate ${x(big.create!.opsPerSec / small.create!.opsPerSec)}, peak RSS ${x(big.memoryAfter!.hwmMiB / small.memoryAfter!.hwmMiB)} (mount time and RSS: above 1x is worse; rates: below 1x is worse).`,
    )
  }

  L.push('')
  return L
}
