/**
 * dump and stats at scale: builds images of 100k and 1M inodes through the storage API, then
 * runs `razorfs dump --json`, `razorfs dump` (human), `razorfs dump --archive -` and
 * `razorfs stats --json` on each as child processes, with their output to /dev/null, and prints
 * each one's wall time and peak RSS, once as is and once with V8's heap capped (CAPPED). Constant
 * memory shows as (nearly) the same peak RSS at 100k and 1M with the heap capped; as is, V8's own
 * heap sizing adds a few tens of MiB on long runs.
 *
 * Peak RSS comes from `/usr/bin/time -v` when it is there, else from the child itself
 * (process.resourceUsage().maxRSS at exit, through a --import hook).
 * Run with `npm run bench:inspect` (BENCH_SIZES=100000,1000000 to choose sizes, BENCH_DIR to keep
 * the images somewhere else than a temporary directory, BENCH_REUSE=1 to reuse images an earlier
 * run left in BENCH_DIR). Writes bench/results/inspect.json.
 */
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {Image, ROOT_INO} from '../src/storage/index.js'

const SIZES = (process.env.BENCH_SIZES ?? '100000,1000000').split(',').map(Number)
const RUN_JS = fileURLToPath(new URL('../../bin/run.js', import.meta.url))
const RESULTS = fileURLToPath(new URL('../../bench/results/inspect.json', import.meta.url))
const S_IFREG = 0o100000
const S_IFDIR = 0o040000
const S_IFLNK = 0o120000
/** Files per leaf directory: 1M inodes = 1,000 directories of ~1,000 names. */
const PER_DIR = 1000

const t0 = process.hrtime.bigint()
const log = (msg: string): void => {
  process.stderr.write(`[${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)}s] ${msg}\n`)
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')

/**
 * An image of `total` inodes: directories of PER_DIR names under 10 top directories; among the
 * names, every 10th a symlink, every 50th a second hard link to the previous file, every 100th
 * file with 1 KiB of content, every 1,000th with an xattr.
 */
function build(dir: string, total: number): {seconds: number; inodes: number} {
  const start = process.hrtime.bigint()
  fs.rmSync(dir, {recursive: true, force: true})
  fs.mkdirSync(dir, {recursive: true})
  const image = Image.create(dir, {capacity: total + 16, uid: 0, gid: 0})
  const content = Buffer.alloc(1024, 0x61)
  let inodes = 1
  const tops: number[] = []
  for (let t = 0; t < 10; t++) {
    tops.push(image.mknod(ROOT_INO, `top-${t}`, {mode: S_IFDIR | 0o755, uid: 0, gid: 0}).ino)
    inodes++
  }

  let d = 0
  while (inodes < total) {
    const dirIno = image.mknod(tops[d % 10], `dir-${String(d).padStart(5, '0')}`, {mode: S_IFDIR | 0o755, uid: 1000, gid: 1000}).ino
    inodes++
    let last = 0
    for (let i = 0; i < PER_DIR && inodes < total; i++) {
      const name = `name-${String(i).padStart(4, '0')}`
      if (i % 50 === 49 && last !== 0) {
        image.link(last, dirIno, `${name}-link`)
        continue
      }

      if (i % 10 === 9) {
        image.mknod(dirIno, name, {mode: S_IFLNK | 0o777, uid: 1000, gid: 1000, target: `../dir-${d}/name-0000`})
      } else {
        last = image.mknod(dirIno, name, {mode: S_IFREG | 0o644, uid: 1000, gid: 1000}).ino
        if (i % 100 === 0) image.write(last, content, 0)
        if (i % 1000 === 0) image.setxattr(last, 'user.bench', Buffer.from('yes'))
      }

      inodes++
    }

    d++
    if (d % 100 === 0) log(`build ${fmt(total)}: ${fmt(inodes)} inodes`)
  }

  image.close()
  return {seconds: Number(process.hrtime.bigint() - start) / 1e9, inodes}
}

interface Run {
  command: string
  nodeFlags: string[]
  wallSeconds: number
  maxRssMiB: number
  status: number | null
  stdoutBytes?: number
  via: string
}

const HAVE_TIME = fs.existsSync('/usr/bin/time')
const HOOK = path.join(os.tmpdir(), `razorfs-bench-rss-${process.pid}.mjs`)

/**
 * V8 flags of the second run of each command: a 1 MiB semi-space and a 24 MiB old space. Without
 * them V8 sizes its heap by allocation rate (the young generation alone grows from 16 to 32 MiB
 * over a long run), which shows as a higher peak RSS on a bigger image although the walk keeps
 * nothing; with them, a run that completes proves that what it keeps fits in 24 MiB.
 */
const CAPPED = ['--max-semi-space-size=1', '--max-old-space-size=24']

/** Run the CLI with stdout to /dev/null and measure it. */
function measure(args: string[], nodeFlags: string[] = []): Run {
  const command = `razorfs ${args.join(' ')}`
  const rssFile = path.join(os.tmpdir(), `razorfs-bench-rss-${process.pid}.json`)
  fs.rmSync(rssFile, {force: true})
  const start = process.hrtime.bigint()
  const env = {...process.env, NO_COLOR: '1', RAZORFS_RSS_FILE: rssFile}
  const out = fs.openSync('/dev/null', 'w')
  let result
  try {
    result = HAVE_TIME
      ? spawnSync('/usr/bin/time', ['-v', process.execPath, ...nodeFlags, RUN_JS, ...args], {
          env,
          stdio: ['ignore', out, 'pipe'],
          encoding: 'utf8',
          maxBuffer: 64 << 20,
        })
      : spawnSync(process.execPath, [...nodeFlags, '--import', HOOK, RUN_JS, ...args], {env, stdio: ['ignore', out, 'pipe'], encoding: 'utf8'})
  } finally {
    fs.closeSync(out)
  }

  const wallSeconds = Number(process.hrtime.bigint() - start) / 1e9
  let maxRssKiB = Number.NaN
  if (HAVE_TIME) {
    const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(result.stderr)
    if (m) maxRssKiB = Number(m[1])
  } else if (fs.existsSync(rssFile)) {
    maxRssKiB = JSON.parse(fs.readFileSync(rssFile, 'utf8')).maxRSS
  }

  if (result.status !== 0)
    log(
      `${command} exited ${result.status}: ${result.stderr
        .split('\n')
        .filter(l => !/^\t/.test(l))
        .join(' | ')}`,
    )
  return {command, nodeFlags, wallSeconds, maxRssMiB: maxRssKiB / 1024, status: result.status, via: HAVE_TIME ? '/usr/bin/time -v' : 'process.resourceUsage'}
}

function main(): void {
  fs.writeFileSync(
    HOOK,
    "import fs from 'node:fs'\nprocess.on('exit', () => { if (process.env.RAZORFS_RSS_FILE) fs.writeFileSync(process.env.RAZORFS_RSS_FILE, JSON.stringify(process.resourceUsage())) })\n",
  )
  const root = process.env.BENCH_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-bench-inspect-'))
  const results: Array<{inodes: number; buildSeconds: number; imageBytes: number; runs: Run[]}> = []
  try {
    const baseline = measure(['--version'])
    log(`baseline (razorfs --version): ${baseline.maxRssMiB.toFixed(1)} MiB peak RSS`)
    for (const size of SIZES) {
      const dir = path.join(root, `image-${size}`)
      log(`building ${fmt(size)} inodes in ${dir}`)
      const marker = path.join(dir, 'bench-built.json')
      // BENCH_REUSE=1 with BENCH_DIR: keep an image built by an earlier run.
      const built =
        process.env.BENCH_REUSE === '1' && fs.existsSync(marker)
          ? (JSON.parse(fs.readFileSync(marker, 'utf8')) as {seconds: number; inodes: number})
          : build(dir, size)
      fs.writeFileSync(marker, JSON.stringify(built))
      const imageBytes = fs
        .readdirSync(dir)
        .filter(f => f !== 'bench-built.json')
        .reduce((sum, f) => sum + (fs.statSync(path.join(dir, f)).isFile() ? fs.statSync(path.join(dir, f)).size : 0), 0)
      log(`built ${fmt(built.inodes)} inodes in ${built.seconds.toFixed(1)} s (${(imageBytes / 2 ** 20).toFixed(0)} MiB of mapped files and log)`)
      const runs: Run[] = []
      for (const flags of [[], CAPPED]) {
        for (const args of [['dump', '--json'], ['dump'], ['dump', '--archive', '-'], ['stats', '--json']]) {
          const run = measure([...args, '--data-dir', dir], flags)
          log(
            `${fmt(size)}: ${run.command.replace(` --data-dir ${dir}`, '')}${flags.length > 0 ? ' (V8 heap capped)' : ''}: ${run.wallSeconds.toFixed(1)} s, peak RSS ${run.maxRssMiB.toFixed(1)} MiB`,
          )
          runs.push(run)
        }
      }

      results.push({inodes: built.inodes, buildSeconds: built.seconds, imageBytes, runs})
    }

    const lines = [
      '| command | ' + results.map(r => `${fmt(r.inodes)} inodes: wall s / peak RSS MiB`).join(' | ') + ' |',
      `|---|${results.map(() => '---|').join('')}`,
    ]
    for (const [i, run] of results[0].runs.entries()) {
      const how = run.nodeFlags.length > 0 ? ` (node ${run.nodeFlags.join(' ')})` : ''
      lines.push(
        `| \`${run.command.replace(/ --data-dir \S+/, '')}\`${how} | ${results.map(r => `${r.runs[i].wallSeconds.toFixed(1)} / ${r.runs[i].maxRssMiB.toFixed(1)}`).join(' | ')} |`,
      )
    }

    process.stdout.write(
      `\nrazorfs dump / stats (peak RSS via ${baseline.via}; baseline \`razorfs --version\`: ${baseline.maxRssMiB.toFixed(1)} MiB)\n\n${lines.join('\n')}\n`,
    )
    fs.mkdirSync(path.dirname(RESULTS), {recursive: true})
    fs.writeFileSync(
      RESULTS,
      `${JSON.stringify({date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, baseline, results}, null, 2)}\n`,
    )
    const failed = results.flatMap(r => r.runs).filter(r => r.status !== 0)
    if (failed.length > 0) process.exitCode = 1
  } finally {
    fs.rmSync(HOOK, {force: true})
    if (process.env.BENCH_DIR === undefined) fs.rmSync(root, {recursive: true, force: true})
  }
}

main()
