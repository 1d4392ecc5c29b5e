/**
 * The real workloads (issue 18): real trees and programs rather than synthetic loops, on razorfs
 * and on the C FUSE filesystems people already use over a host directory (mergerfs, bindfs), with
 * the host directory itself (native) as the floor. All targets are mounted at once; in each
 * round every step visits the targets in turn (round r starting at target r), each turn after a
 * `sync` and at least the kernel's entry/attribute timeout after that target's previous turn, so
 * that the load of a shared machine falls on all of them alike. The median round counts.
 *
 * Steps: tar -xf of a tree of this repo's node_modules; grep -r, find, du -s over it; rm -rf of
 * it; git clone --no-hardlinks of a local repository made from node_modules (built once, kept in
 * the cache dir) and git status in the clone; SQLite (the sqlite3 CLI) with N committed
 * transactions; 4 clients untarring the tree at once; dd of N MiB with conv=fsync, then, after
 * dropping the page cache, a cold dd read.
 */
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {ATTR_EXPIRE_MS, type Config} from './config.js'
import {warmMemory} from './machine.js'
import {REPO, paths} from './paths.js'
import {REAL_STEPS, type RealStep, results} from './results.js'
import {close, openAll} from './session.js'
import type {Session, TargetName} from './targets.js'
import {MiB, OneLineError, cleanEnv, exec, fmt, log, sizeName, sleep} from './util.js'
import {treeSubset} from './workloads.js'

/** What the steps work on, made before the first round. */
export interface Corpus {
  tarball: string
  entries: number
  tarBytes: number
  /** Matches of grep -r over the tree (every target must find the same files). */
  grepFiles?: number
  repo: string
  repoFiles: number
  sqlFile: string
  txns: number
  ddBytes: number
  /** The page cache is dropped before each cold read (root); else the read is warm. */
  dropCaches: boolean
}

/** Where built inputs are kept between runs: $XDG_CACHE_HOME/razorfs-bench or ~/.cache/razorfs-bench. */
function cacheDir(): string {
  const dir = path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'razorfs-bench')
  fs.mkdirSync(dir, {recursive: true})
  return dir
}

async function need(cmd: string, args: string[], what: string): Promise<string> {
  const r = await exec(cmd, args, {env: cleanEnv()}).catch((error: Error) => ({code: -1, stdout: '', stderr: error.message, ms: 0}))
  if (r.code !== 0) throw new OneLineError(`${what} failed (${cmd} exit ${r.code}): ${r.stderr.trim().split('\n')[0]}`)
  return r.stdout
}

/**
 * A git repository whose one commit is `tarball`'s tree, in the cache dir (keyed by the
 * tarball's hash; made once): packed, as a repository one clones usually is.
 */
async function gitRepo(tarball: string): Promise<{repo: string; files: number}> {
  const key = createHash('sha256').update(fs.readFileSync(tarball)).digest('hex').slice(0, 16)
  const repo = path.join(cacheDir(), `git-${key}`)
  if (!fs.existsSync(path.join(repo, '.git', 'razorfs-bench-complete'))) {
    log(`  building the git repository ${repo} (once; kept for later runs)`)
    const tmp = `${repo}.tmp-${process.pid}`
    fs.rmSync(tmp, {recursive: true, force: true})
    fs.mkdirSync(tmp)
    await need('tar', ['-xf', tarball, '-C', tmp], 'untar into the git repository')
    const env = {
      ...cleanEnv(),
      GIT_AUTHOR_NAME: 'bench',
      GIT_AUTHOR_EMAIL: 'bench@localhost',
      GIT_COMMITTER_NAME: 'bench',
      GIT_COMMITTER_EMAIL: 'bench@localhost',
      GIT_AUTHOR_DATE: '2024-01-01T00:00:00Z',
      GIT_COMMITTER_DATE: '2024-01-01T00:00:00Z',
    }
    const git = async (...args: string[]) => {
      const r = await exec('git', ['-C', tmp, ...args], {env})
      if (r.code !== 0) throw new OneLineError(`git ${args[0]} in ${tmp} failed: ${r.stderr.trim().split('\n')[0]}`)
    }

    await git('init', '-q')
    await git('add', '-A', '-f', '.')
    await git('commit', '-q', '-m', 'node_modules')
    await git('repack', '-a', '-d', '-q')
    await git('prune')
    fs.writeFileSync(path.join(tmp, '.git', 'razorfs-bench-complete'), '')
    fs.rmSync(repo, {recursive: true, force: true})
    fs.renameSync(tmp, repo)
  }

  const files = (await need('git', ['-C', repo, 'ls-files'], 'git ls-files')).split('\n').filter(Boolean).length
  return {repo, files}
}

/** A tar of `entries` of node_modules (all of it if undefined) at `file`; its entry count. */
async function packTree(file: string, entries: number | undefined): Promise<number> {
  // The real directory: a node_modules symlink would be packed as one entry.
  const source = fs.realpathSync(path.join(REPO, 'node_modules'))
  const members = entries === undefined ? ['node_modules'] : treeSubset(source, entries)
  await need('tar', ['-cf', file, '-C', path.dirname(source), ...members], 'tar -c of node_modules')
  return (await need('tar', ['-tf', file], 'tar -t')).split('\n').filter(Boolean).length
}

function canDropCaches(): boolean {
  try {
    fs.accessSync('/proc/sys/vm/drop_caches', fs.constants.W_OK)
    return process.getuid?.() === 0
  } catch {
    return false
  }
}

async function prepare(cfg: Config): Promise<Corpus> {
  for (const cmd of ['tar', 'grep', 'find', 'du', 'git', 'sqlite3', 'dd']) {
    if ((await exec('sh', ['-c', `command -v ${cmd}`])).code !== 0)
      throw new OneLineError(`the real workloads need ${cmd}: apt-get install -y sqlite3 git (or leave them out: --only without real)`)
  }

  const tarball = path.join(paths.workDir, 'real-tree.tar')
  const entries = await packTree(tarball, cfg.real.treeEntries)
  const gitTar = path.join(paths.workDir, 'git-tree.tar')
  await packTree(gitTar, cfg.real.gitEntries)
  const {repo, files} = await gitRepo(gitTar)
  fs.rmSync(gitTar)
  // One table, each transaction two inserts and an update, committed (the CLI's defaults:
  // rollback journal, synchronous=FULL, so each commit writes and syncs a journal and the database).
  const sql = ['CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);', 'CREATE INDEX tk ON t(k);']
  for (let i = 0; i < cfg.real.sqliteTxns; i++)
    sql.push(
      `BEGIN; INSERT INTO t(k, v) VALUES (${i}, '${'x'.repeat(100)}-${i}'); INSERT INTO t(k, v) VALUES (${i + 1_000_000}, 'row ${i}'); UPDATE t SET v = 'u${i}' WHERE k = ${Math.floor(i / 2)}; COMMIT;`,
    )
  const sqlFile = path.join(paths.workDir, 'real.sql')
  fs.writeFileSync(sqlFile, sql.join('\n') + '\n')
  const corpus: Corpus = {
    tarball,
    entries,
    tarBytes: fs.statSync(tarball).size,
    repo,
    repoFiles: files,
    sqlFile,
    txns: cfg.real.sqliteTxns,
    ddBytes: cfg.real.ddBytes,
    dropCaches: canDropCaches(),
  }
  results.realInfo = {
    entries,
    tarBytes: corpus.tarBytes,
    treeSource: cfg.real.treeEntries === undefined ? "this repo's node_modules" : `the first packages of this repo's node_modules`,
    repoFiles: files,
    txns: corpus.txns,
    ddBytes: corpus.ddBytes,
    dropCaches: corpus.dropCaches,
    rounds: cfg.real.rounds,
  }
  return corpus
}

/** Read the inputs through once (untimed: the cold reads drop the page cache), so no turn pays for reading them from disk. */
async function warmInputs(c: Corpus): Promise<void> {
  await exec('sh', ['-c', `cat "$1" > /dev/null && find "$2" -type f -exec cat {} + > /dev/null`, 'sh', c.tarball, path.join(c.repo, '.git')])
}

async function ok(target: TargetName, what: string, cmd: string, args: string[]): Promise<{sec: number; stdout: string}> {
  const r = await exec(cmd, args, {env: cleanEnv()})
  if (r.code !== 0) throw new Error(`${target}: ${what} failed (exit ${r.code}): ${r.stderr.trim().slice(0, 500)}`)
  return {sec: r.ms / 1000, stdout: r.stdout}
}

/** One step on one target in round `r`; its seconds. */
async function step(name: RealStep, s: Session, r: number, c: Corpus): Promise<number> {
  const t = s.target
  const dir = path.join(s.root, `r${r}`)
  const tree = path.join(dir, 'tree')
  const clone = path.join(dir, 'clone')
  const big = path.join(dir, 'big')
  switch (name) {
    case 'tar -xf':
      fs.mkdirSync(tree, {recursive: true})
      return (await ok(t, 'tar -xf', 'tar', ['-xf', c.tarball, '-C', tree])).sec
    case 'grep -r': {
      // Exit 0: some file matched. Every target must list the same number of files.
      const g = await ok(t, 'grep -r', 'grep', ['-r', '-l', '-F', 'require(', tree])
      const n = g.stdout.split('\n').filter(Boolean).length
      c.grepFiles ??= n
      if (n !== c.grepFiles) throw new Error(`${t}: grep -r found ${n} files, another target ${c.grepFiles}`)
      return g.sec
    }

    case 'find': {
      const f = await ok(t, 'find', 'find', [tree])
      const n = f.stdout.split('\n').filter(Boolean).length - 1
      if (n < c.entries) throw new Error(`${t}: find listed ${n} entries of ${c.entries}`)
      return f.sec
    }

    case 'du -s':
      return (await ok(t, 'du -s', 'du', ['-s', tree])).sec
    case 'rm -rf': {
      const sec = (await ok(t, 'rm -rf', 'rm', ['-rf', tree])).sec
      if (fs.existsSync(tree)) throw new Error(`${t}: ${tree} still there after rm -rf`)
      return sec
    }

    case 'git clone':
      return (await ok(t, 'git clone', 'git', ['clone', '-q', '--no-hardlinks', c.repo, clone])).sec
    case 'git status': {
      const g = await ok(t, 'git status', 'git', ['-C', clone, 'status', '--porcelain'])
      if (g.stdout.trim() !== '') throw new Error(`${t}: git status in a fresh clone shows changes: ${g.stdout.slice(0, 300)}`)
      return g.sec
    }

    case 'sqlite': {
      const db = path.join(dir, 'bench.sqlite')
      const sec = (await ok(t, 'sqlite3', 'sqlite3', [db, `.read ${c.sqlFile}`])).sec
      const rows = Number((await ok(t, 'sqlite3 count', 'sqlite3', [db, 'SELECT count(*) FROM t;'])).stdout.trim())
      if (rows !== 2 * c.txns) throw new Error(`${t}: ${rows} rows in the SQLite database, expected ${2 * c.txns}`)
      return sec
    }

    case 'tar -xf x4': {
      const start = performance.now()
      await Promise.all(
        [0, 1, 2, 3].map(k => {
          const into = path.join(dir, `p${k}`)
          fs.mkdirSync(into)
          return ok(t, `tar -xf (client ${k})`, 'tar', ['-xf', c.tarball, '-C', into])
        }),
      )
      return (performance.now() - start) / 1000
    }

    case 'dd write':
      return (await ok(t, 'dd write', 'dd', ['if=/dev/zero', `of=${big}`, 'bs=1M', `count=${c.ddBytes / MiB}`, 'conv=fsync', 'status=none'])).sec
    case 'dd cold read': {
      if (c.dropCaches) {
        await exec('sync', [])
        fs.writeFileSync('/proc/sys/vm/drop_caches', '3')
        // The read fills free pages with the file, and pages the guest has given back to the host
        // are slow to touch again (machine.ts, warmMemory): which target got them was chance. A
        // cold read of razorfs's content file on the host took 0.39-0.76 s (_copy_to_iter, perf),
        // 0.10 s after free memory was touched, as native's. Every target's read gets touched pages
        // (a first read soon after the write is still slow in some rounds: ARCHITECTURE.md, peers).
        warmMemory(2 * c.ddBytes)
      }

      const sec = (await ok(t, 'dd read', 'dd', [`if=${big}`, 'of=/dev/null', 'bs=1M', 'status=none'])).sec
      fs.rmSync(big)
      return sec
    }
  }
}

export async function benchReal(cfg: Config, targets: TargetName[]): Promise<void> {
  if (targets.length === 0) return
  const c = await prepare(cfg)
  log(
    `real: ${targets.join(', ')}: tree of ${fmt(c.entries)} entries (${sizeName(Math.round(c.tarBytes / MiB) * MiB)} tar), git repository of ${fmt(c.repoFiles)} files, ` +
      `SQLite ${fmt(c.txns)} transactions, dd ${sizeName(c.ddBytes)}${c.dropCaches ? '' : ' (not root: the read is not cold)'}; ${cfg.real.rounds} rounds`,
  )
  const sessions = await openAll(targets, 'real')
  const secs = targets.map(() => Object.fromEntries(REAL_STEPS.map(s => [s, [] as number[]])) as Record<RealStep, number[]>)
  const lastEnd = targets.map(() => 0)
  for (let r = 0; r < cfg.real.rounds; r++) {
    await warmInputs(c)
    for (const name of REAL_STEPS) {
      for (let k = 0; k < sessions.length; k++) {
        const i = (r + k) % sessions.length
        // Untimed: flush what the previous turn wrote; let this target's kernel caches expire.
        await exec('sync', [])
        const wait = lastEnd[i] + ATTR_EXPIRE_MS - Date.now()
        if (wait > 0) await sleep(wait)
        secs[i][name].push(await step(name, sessions[i], r, c))
        lastEnd[i] = Date.now()
      }

      log(`  round ${r + 1}, ${name}: ${targets.map((t, i) => `${t} ${secs[i][name][r].toFixed(2)} s`).join(', ')}`)
    }

    // The round's leftovers (clone, database, the 4 trees) stay: removing them through the mounts
    // would take longer than the round; close() removes them from the host.
  }

  const closing = performance.now()
  for (const s of sessions) await close(s)
  log(`  stopped and removed the targets in ${((performance.now() - closing) / 1000).toFixed(1)} s`)
  for (const [i, target] of targets.entries()) results.real.push({target, secs: secs[i]})
}
