/**
 * Sessions: a target brought up for a workload in a directory of its own under the work dir,
 * stopped and removed when the workload is done (or when the run ends or is interrupted); and
 * sequential I/O in rounds, the targets taking turns.
 */
import fs from 'node:fs'
import path from 'node:path'

import type {Config} from './config.js'
import {paths} from './paths.js'
import {type IoRecord, type IoRound, results} from './results.js'
import {type Session, type TargetName, startTarget, stopServers} from './targets.js'
import {MiB, driver, exec, killChildren, log, median} from './util.js'

/** Sessions not stopped yet. */
const live = new Set<Session>()
let sessionCount = 0

/**
 * Start a target. razorfs gets a fresh data dir unless `dataDir` is given (remount of an
 * existing image). `profile` is a directory for the server's CPU profile (--cpu-prof).
 */
export async function open(target: TargetName, label: string, opts: {dataDir?: string; profile?: string; meta?: string} = {}): Promise<Session> {
  const base = path.join(paths.workDir, `${String(++sessionCount).padStart(3, '0')}-${label}-${target}`)
  const session = await startTarget(target, base, opts)
  const stop = session.stop
  session.stop = () => {
    live.delete(session)
    return stop()
  }

  live.add(session)
  return session
}

/** Stop a session and remove everything it left. */
export async function close(s: Session): Promise<{ms: number; code: number | null}> {
  const r = await s.stop()
  fs.rmSync(path.dirname(s.root), {recursive: true, force: true})
  if (s.dataDir !== undefined) fs.rmSync(s.dataDir, {recursive: true, force: true})
  return r
}

/** A session on a new, empty target; its mount time counts in the report. */
export async function openFresh(target: TargetName, label: string): Promise<Session> {
  const s = await open(target, label)
  if (s.mountMs !== undefined) {
    if (s.target === 'razorfs') results.mountEmptyMs.push(s.mountMs)
    if (s.target === 'noop') results.noopMountMs.push(s.mountMs)
  }

  return s
}

export async function openAll(targets: TargetName[], label: string): Promise<Session[]> {
  const sessions: Session[] = []
  for (const target of targets) sessions.push(await openFresh(target, label))
  return sessions
}

/**
 * Stop every session still running, and any server or workload process left (a target still
 * starting, a tar on a mount when the run is interrupted), unmount whatever is still mounted
 * under the work dir; remove the work dir unless `keep`.
 */
export async function cleanup(keep: boolean): Promise<void> {
  killChildren()
  for (const s of [...live]) {
    try {
      await s.stop()
    } catch (error) {
      log(`cleanup: ${(error as Error).message}`)
    }
  }

  await stopServers()

  if (!keep && paths.workDir !== '') fs.rmSync(paths.workDir, {recursive: true, force: true})
}

async function writeRead(s: Session, name: string, size: number, bs: number): Promise<IoRound> {
  const file = path.join(s.root, name)
  const c0 = s.cpuMs()
  const w = await driver({op: 'seqwrite', file, size, bs})
  const c1 = s.cpuMs()
  const r = await driver({op: 'seqread', file, size, bs, verify: !s.target.startsWith('noop')})
  const c2 = s.cpuMs()
  fs.rmSync(file)
  const perMiB = (a?: number, b?: number) => (a === undefined || b === undefined ? undefined : ((b - a) * 1000) / (size / MiB))
  return {writeMBps: size / w.sec / 1e6, readMBps: size / r.sec / 1e6, writeCpuUsPerMiB: perMiB(c0, c1), readCpuUsPerMiB: perMiB(c1, c2)}
}

/**
 * Sequential write + read of `size` bytes in blocks of `bs` on every target, in rounds: each
 * round visits the targets in turn (all mounted at once), starting one target later than the
 * round before, with a `sync` before each turn; the median round counts.
 */
export async function ioRounds(cfg: Config, sessions: Session[], label: string, size: number, bs: number): Promise<IoRecord[]> {
  const per = sessions.map(() => [] as IoRound[])
  for (let r = 0; r < cfg.rounds; r++) {
    // Round r starts at target r: no target always comes right after the others' writes.
    for (let k = 0; k < sessions.length; k++) {
      const i = (r + k) % sessions.length
      // What the previous turn wrote is flushed first, untimed: else the kernel's writeback of it
      // (gigabytes, once past the dirty background threshold) competes with this turn for the CPUs.
      await exec('sync', [])
      per[i].push(await writeRead(sessions[i], `${label}-${r}`, size, bs))
    }
  }

  return sessions.map((s, i) => ({
    target: s.target,
    bytes: size,
    bs,
    writeMBps: median(per[i].map(x => x.writeMBps)),
    readMBps: median(per[i].map(x => x.readMBps)),
    rounds: per[i],
  }))
}
