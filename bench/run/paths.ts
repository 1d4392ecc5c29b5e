/**
 * Where the benchmark run reads and writes: the repository, the work dir, the copy of the build
 * every child runs from, and the report's files.
 */
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

export const REPO = fileURLToPath(new URL('../../../', import.meta.url))
export const RESULTS = path.join(REPO, 'bench/results')

export const paths = {
  /** The run's work dir (mounts, data dirs, tarballs, the copy of the build). */
  workDir: '',
  /** The copy's root, its dist/bench and bin/run.js (see copyBuild). */
  app: '',
  here: '',
  runJs: '',
  /**
   * Where a run writes. A complete run (every target; all workloads, the profile aside) rewrites
   * docs/BENCHMARKS.md, bench/results/bench.json and bench/charts/; a partial one (--only,
   * --targets) writes the same files under bench/results/partial/ and leaves those alone.
   */
  charts: path.join(REPO, 'bench/charts'),
  doc: path.join(REPO, 'docs/BENCHMARKS.md'),
  json: path.join(RESULTS, 'bench.json'),
}

/** Make the work dir under `parent` and copy the build into it. */
export function makeWorkDir(parent: string): void {
  fs.mkdirSync(parent, {recursive: true})
  paths.workDir = fs.mkdtempSync(path.join(parent, 'razorfs-bench-'))
  copyBuild()
}

/**
 * Copy the build (bin, dist, package.json, the oclif manifest, the native addon) into the work
 * dir and run every child from there: a run takes minutes to hours, and an `npm run build`
 * meanwhile (rm -rf dist) must not pull the server or the driver out from under it.
 */
function copyBuild(): void {
  paths.app = path.join(paths.workDir, 'app')
  fs.mkdirSync(paths.app)
  for (const name of ['bin', 'dist', 'package.json', 'oclif.manifest.json', 'build/Release']) {
    const from = path.join(REPO, name)
    if (fs.existsSync(from)) fs.cpSync(from, path.join(paths.app, name), {recursive: true})
  }

  fs.symlinkSync(fs.realpathSync(path.join(REPO, 'node_modules')), path.join(paths.app, 'node_modules'))
  paths.here = path.join(paths.app, 'dist/bench')
  paths.runJs = path.join(paths.app, 'bin/run.js')
}

/** A partial run writes its report, JSON and charts under bench/results/partial/. */
export function usePartialOutput(): void {
  const dir = path.join(RESULTS, 'partial')
  paths.charts = dir
  paths.doc = path.join(dir, 'BENCHMARKS.md')
  paths.json = path.join(dir, 'bench.json')
}

/** A chart's link from the markdown file. */
export const chartLink = (name: string): string => path.relative(path.dirname(paths.doc), path.join(paths.charts, name))
