/**
 * Harness 1 of issue 4: kill -9 of the server at random moments, during the workload, during
 * syncs and checkpoints (a small mount --wal-limit makes checkpoints frequent; a kill can be aimed
 * at a moment when a server thread is in fsync/fdatasync/syncfs) and during startup (recovery and the
 * checkpoint that follows it). A kill -9 keeps the page cache, so after each one EVERY
 * acknowledged operation must be visible, exactly; only the call in flight may be either way.
 *
 * Each cycle: mount (= recovery of the previous crash) -> fsck of the recovered image (nothing at
 * all may be found) -> the state through the mount is exactly the model -> workload -> kill -9 ->
 * clean up the dead mount -> read-only open through the storage API and a walk of the whole tree
 * -> exact check against the model, no-garbage check.
 *
 * The same harness runs against a volume on PostgreSQL (`pgUrl`: `mount -f --meta URL`), where
 * every acknowledged operation is a committed transaction. There the kills are aimed at the
 * server's startup (once it has connected: the open, the reaper, its session) or at a moment its
 * transaction is open (pg_stat_activity, pg-probe.ts) instead of at syncs; after a kill the
 * checker waits until PostgreSQL has ended the killed server's connections, reads what is
 * committed through a read-only PgVolume, and checks the tables for what a walk cannot see.
 * `fsck --meta` runs once, at the end, after the killed servers' sessions were reaped: before,
 * their expired sessions and the orphans they hold are expected state, as an image's orphan list
 * is before recovery.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {performance} from 'node:perf_hooks'

import {adopt, checkExact, checkGarbage, Violations} from './check.js'
import {Cycle, describe, FILE_DIRS, Model} from './model.js'
import {observeImage, observeMount, observePg, type Observation} from './observe.js'
import {PgProbe} from './pg-probe.js'
import {cleanupMount, fsck, type FsckResult, Server, sleep} from './server.js'
import {int, pick, rng, runWorkload} from './workload.js'
import {PgVolume} from '../../src/storage/pg/volume.js'
import {Xattrs} from '../helpers/xattr.js'

export interface KillOptions {
  label: string
  cycles: number
  /** Longest workload before the kill, in ms. */
  maxWorkMs: number
  /** Shortest (default 10 ms), and whether some kills hit startup instead (default yes): the self-test wants work to lose. */
  minWorkMs?: number
  startupKills?: boolean
  /**
   * Whether some kills are aimed at a sync or checkpoint (default yes). A server without a log
   * (the no-wal self-test) loses nothing to a kill at the end of a checkpoint, which has just
   * written everything back: its self-test kills at random moments only.
   */
  syncKills?: boolean
  seed: number
  /** Durability-breaking switches for the server (self-test; server.ts, src/storage/debug.ts). */
  breakSwitch?: string
  /**
   * Mount the volume on PostgreSQL at this URL (a schema of its own, made afresh; a short
   * session_timeout= lets the killed servers' sessions be reaped within the run) instead of an image.
   */
  pgUrl?: string
  log: (line: string) => void
}

export interface FsckTally {
  /** Runs after recovery (remount after a crash) and after the final clean unmount that found nothing. */
  clean: number
  problems: number
  /** Set when fsck is not implemented yet: the check was skipped (never counted as clean). */
  unavailable?: string
}

export interface KillSummary {
  label: string
  backend: 'image' | 'PostgreSQL'
  seed: number
  cycles: number
  /** aimedAtSync: on PostgreSQL, aimed at a moment the server's transaction is open. */
  kills: {workload: number; aimedAtSync: number; startup: number}
  /** Kills that found a server thread inside fsync/fdatasync/msync/syncfs (on PostgreSQL: its statement or transaction open). */
  killsInSync: number
  ops: number
  /** System calls acknowledged (and so checked after the kill). */
  acked: number
  filesChecked: number
  bytesChecked: number
  recoveredTransactions: number
  fsck: FsckTally
  resets: number
  violations: number
  samples: string[]
  evidence?: string
  seconds: number
}

/**
 * Run fsck (after recovery or a clean unmount) and count the result; any finding is a violation.
 * Once it says it is not implemented, skip it for the rest of the run.
 */
export function checkFsck(tally: FsckTally, volume: string, v: Violations, where: string): void {
  if (tally.unavailable !== undefined) return
  recordFsck(tally, fsck(volume), v, where)
}

export function recordFsck(tally: FsckTally, res: FsckResult, v: Violations, where: string): void {
  if (res.state === 'clean') tally.clean++
  else if (res.state === 'unavailable') tally.unavailable = res.detail
  else {
    tally.problems++
    v.add(where, `fsck: ${res.detail}`)
  }
}

/** Keep a copy of the first image that failed a check (not in self-tests), for a reproduction. */
export function keepEvidence(v: Violations, dataDir: string, breakSwitch: string | undefined): void {
  if (v.evidence !== undefined || breakSwitch !== undefined) return
  v.evidence = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-crash-evidence-'))
  fs.cpSync(dataDir, path.join(v.evidence, 'data'), {recursive: true})
}

export function formatFsck(f: FsckTally): string {
  if (f.unavailable) return `SKIPPED (${f.unavailable})`
  return `${f.clean} runs after recovery or the clean unmount found nothing, ${f.problems} found problems`
}

export function formatKill(s: KillSummary): string {
  const pg = s.backend === 'PostgreSQL'
  return [
    `${s.label}: ${s.cycles} kill -9 cycles of a mount of ${pg ? 'a volume on PostgreSQL' : 'an image'} (seed ${s.seed}) in ${s.seconds.toFixed(0)} s`,
    pg
      ? `  kills: ${s.kills.workload} during the workload at random moments, ${s.kills.aimedAtSync} aimed at an open transaction, ${s.kills.startup} during startup (connected, opening); ${s.killsInSync} found the server's statement or transaction open`
      : `  kills: ${s.kills.workload} during the workload at random moments, ${s.kills.aimedAtSync} aimed at a sync/checkpoint, ${s.kills.startup} during startup/recovery; ${s.killsInSync} found the server inside a sync`,
    `  ${s.ops} operations, ${s.acked} acknowledged system calls checked after the kills; ${s.filesChecked} file states and ${(s.bytesChecked / 2 ** 20).toFixed(1)} MiB compared${pg ? '' : `; ${s.recoveredTransactions} transactions recovered by remounts`}`,
    `  fsck: ${formatFsck(s.fsck)}; ${pg ? 'volume' : 'image'} resets after unreadable ${pg ? 'volumes' : 'images'}: ${s.resets}`,
    `  VIOLATIONS: ${s.violations}${s.evidence ? ` (the first failing image was kept in ${s.evidence})` : ''}`,
    ...s.samples.slice(0, 15).map(x => `    - ${x}`),
  ].join('\n')
}

export async function runKillHarness(o: KillOptions): Promise<KillSummary> {
  const started = performance.now()
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-crash-kill-'))
  const dataDir = path.join(root, 'data')
  const mnt = path.join(root, 'mnt')
  const r = rng(o.seed)
  const ids = {next: 1}
  const wids = {next: 1}
  const v = new Violations()
  const pgUrl = o.pgUrl
  /** What the server mounts: the data dir, or the URL. */
  const volume = pgUrl ?? dataDir
  const probe = pgUrl === undefined ? undefined : await PgProbe.connect(pgUrl)
  const s: KillSummary = {
    label: o.label,
    backend: pgUrl === undefined ? 'image' : 'PostgreSQL',
    seed: o.seed,
    cycles: 0,
    kills: {workload: 0, aimedAtSync: 0, startup: 0},
    killsInSync: 0,
    ops: 0,
    acked: 0,
    filesChecked: 0,
    bytesChecked: 0,
    recoveredTransactions: 0,
    fsck: {clean: 0, problems: 0},
    resets: 0,
    violations: 0,
    samples: [],
    seconds: 0,
  }
  const xattrs = new Xattrs()
  let server: Server | undefined
  let model = new Model(ids)

  /** A new image (or volume) with the fixed directories, cleanly unmounted. */
  const setup = async (): Promise<void> => {
    if (pgUrl === undefined) fs.rmSync(dataDir, {recursive: true, force: true})
    else PgVolume.create(pgUrl, {force: true}).close()
    server = new Server(volume, mnt, {})
    await server.waitMounted()
    for (const d of FILE_DIRS) await fs.promises.mkdir(path.join(mnt, d))
    const status = await server.stop()
    if (status !== 0) throw new Error(`setup: the server exited ${status}:\n${server.output}`)
    model = new Model(ids)
  }

  /** After a kill: the read-only open and walk, the exact and no-garbage checks (fsck waits for the recovery). */
  const afterCrash = async (cycle: Cycle, where: string, killed: Server): Promise<void> => {
    let obs: Observation
    try {
      // PostgreSQL ends a killed client's connections once it notices: a statement still running
      // commits (or not) by then. Only then is what is committed final.
      if (probe && !(await probe.waitGone(killed.startedMs, 30_000))) v.add(where, 'the connections of the killed server were still there 30 s after the kill')
      obs = pgUrl === undefined ? observeImage(dataDir) : observePg(pgUrl)
      if (probe) await probe.checkTables(obs, v, `${where}, the volume's tables after kill -9`)
    } catch (error) {
      v.add(where, `the ${pgUrl === undefined ? 'image' : 'volume'} does not open read-only or cannot be walked: ${(error as Error).message}`)
      s.resets++
      await setup()
      return
    }

    const before = v.count
    const alts = [cycle.model]
    const after = cycle.withPending()
    if (after) alts.push(after)
    const p = cycle.pending?.effect
    s.filesChecked += checkExact(obs, alts, v, `${where}, read-only open after kill -9`, p?.kind === 'write' ? {id: p.id} : undefined)
    s.bytesChecked += checkGarbage(obs, cycle, v, where)
    s.acked += cycle.acked
    for (const f of cycle.failures) v.add(where, `a system call failed while the server was alive: ${f}`)
    if (v.count > before && pgUrl === undefined) keepEvidence(v, dataDir, o.breakSwitch)
    model = adopt(obs, cycle.model)
  }

  try {
    await setup()
    for (let c = 1; c <= o.cycles; c++) {
      const where = `${o.label} cycle ${c}`
      // Drawn for both backends, so that a seed makes the same choices; on PostgreSQL there is no WAL and no content file.
      const walLimitDrawn = pick(r, [16 * 1024, 64 * 1024, 1024 * 1024, undefined])
      const walLimit = pgUrl === undefined ? walLimitDrawn : undefined
      const strategy = r() < 0.15 && o.startupKills !== false ? 'startup' : r() < 0.3 && o.syncKills !== false ? 'sync' : 'workload'
      const tc = performance.now()
      const contentFdsDrawn = pick(r, [4, undefined])
      const contentFds = pgUrl === undefined ? contentFdsDrawn : undefined
      server = new Server(volume, mnt, {walLimit, breakSwitch: o.breakSwitch, contentFds})
      s.cycles++
      if (strategy === 'startup') {
        // Kill while the image is being opened: recovery, the checkpoint after it, the mount. On
        // PostgreSQL: once it has connected (the format check, the reaper, its new session, the listener, the mount).
        s.kills.startup++
        const deadline = Date.now() + 10_000
        const started = async (srv: Server): Promise<boolean> => (probe ? probe.connected(srv.startedMs) : srv.opensImage())
        while (server.alive && !(await started(server)) && Date.now() < deadline) await sleep(1)
        await sleep(int(r, 0, 60))
        if (probe ? await probe.inTransaction(server.startedMs) : server.inSync()) s.killsInSync++
        await server.crash()
        await afterCrash(new Cycle(model), `${where} (killed at startup)`, server)
        continue
      }

      try {
        await server.waitMounted()
      } catch (error) {
        v.add(where, `remount failed: ${(error as Error).message}`)
        await server.crash()
        s.resets++
        await setup()
        continue
      }

      s.recoveredTransactions += server.recovered()
      // The mount has recovered the image (replay, orphans freed, content files of freed inodes
      // removed) and is idle: fsck -n must find nothing at all.
      if (pgUrl === undefined) checkFsck(s.fsck, dataDir, v, `${where}, fsck after recovery`)
      try {
        const seen = await observeMount(mnt, xattrs)
        checkExact(seen, [model], v, `${where}, through the mount after recovery`)
        model = adopt(seen, model)
      } catch (error) {
        v.add(where, `the mount cannot be walked after recovery: ${(error as Error).message}`)
      }

      const cycle = new Cycle(model)
      let killed = false
      const work = runWorkload({mnt, cycle, xattrs, r, wids, stopped: () => killed})
      const srv = server
      const kill = async (): Promise<void> => {
        /** Inside fsync/fdatasync/msync/syncfs; on PostgreSQL, inside a statement or transaction of a request. */
        const busy = async (): Promise<boolean> => (probe ? probe.inTransaction(srv.startedMs) : srv.inSync())
        if (strategy === 'sync') {
          s.kills.aimedAtSync++
          await sleep(int(r, Math.max(20, o.minWorkMs ?? 0), o.maxWorkMs / 2))
          const until = performance.now() + o.maxWorkMs
          while (!(await busy()) && performance.now() < until && srv.alive) await sleep(0)
        } else {
          s.kills.workload++
          await sleep(int(r, o.minWorkMs ?? 10, o.maxWorkMs))
        }

        if (await busy()) s.killsInSync++
        killed = true
        srv.signal('SIGKILL')
      }

      const t0 = performance.now()
      const [res] = await Promise.all([work, kill()])
      const t1 = performance.now()
      s.ops += res.ops
      await srv.exited
      cleanupMount(mnt)
      await afterCrash(cycle, where, srv)
      if (process.env.RAZORFS_CRASH_VERBOSE)
        o.log(
          `      ${where}: ${strategy}, walLimit ${walLimit}, contentFds ${contentFds ?? 'default'}, ${res.ops} ops, workload ${(t1 - t0).toFixed(0)} ms, checks ${(performance.now() - t1).toFixed(0)} ms, cycle ${(performance.now() - tc).toFixed(0)} ms; in flight: ${cycle.pending ? describe(cycle.pending.effect) : '-'}`,
        )
      if (c % 10 === 0 || c === o.cycles) o.log(`    ${o.label}: ${c}/${o.cycles} cycles, ${s.ops} ops, ${v.count} violations`)
    }

    // Last: a clean unmount must leave a clean image with the same contents.
    const where = `${o.label} final clean unmount`
    try {
      server = new Server(volume, mnt, {})
      await server.waitMounted()
      const seen = await observeMount(mnt, xattrs)
      checkExact(seen, [model], v, where)
      const status = await server.stop()
      if (status !== 0) v.add(where, `the server exited ${status}`)
      if (pgUrl === undefined) {
        const obs = observeImage(dataDir)
        if (!obs.recovery?.wasClean) v.add(where, 'the image is not marked clean after a clean unmount')
        checkExact(obs, [adopt(seen, model)], v, `${where}, read-only open`)
        checkFsck(s.fsck, dataDir, v, where)
      } else {
        const obs = observePg(pgUrl)
        checkExact(obs, [adopt(seen, model)], v, `${where}, read-only open`)
        await probe!.checkTables(obs, v, where)
        await probe!.checkReaped(pgUrl, 60_000, v, where)
        checkFsck(s.fsck, pgUrl, v, where)
      }
    } catch (error) {
      v.add(where, (error as Error).message)
    }
  } finally {
    if (server?.alive) await server.crash()
    cleanupMount(mnt)
    xattrs.close()
    await probe?.close()
    fs.rmSync(root, {recursive: true, force: true})
  }

  s.violations = v.count
  s.samples = v.samples
  s.evidence = v.evidence
  s.seconds = (performance.now() - started) / 1000
  return s
}
