/**
 * Mounts an earlier run left behind (a run killed with SIGKILL cannot clean up): every run's
 * mounts live under its work dir, razorfs-bench-XXXXXX. Before a run starts, each such mount
 * whose run is gone is unmounted, that run's processes still running stopped and its work dir
 * removed; a mount that cannot be unmounted
 * stops the run with one line. Mounts of a run still going on (another `npm run bench` on the
 * machine) are left alone.
 */
import fs from 'node:fs'

import {mountPoints} from '../../src/fuse/mountinfo.js'
import {cleanupMount} from './targets.js'
import {OneLineError, log, sleep} from './util.js'

const WORK_DIR = /^(.*\/razorfs-bench-[^/]+)\//

function readProc(pid: string, file: string): string {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8')
  } catch {
    return ''
  }
}

/** Processes whose command line names a path under `workDir` (servers, drivers, tar...). */
function processesIn(workDir: string): string[] {
  return fs
    .readdirSync('/proc')
    .filter(p => /^\d+$/.test(p) && p !== String(process.pid))
    .filter(pid =>
      readProc(pid, 'cmdline')
        .split('\0')
        .some(arg => arg.startsWith(workDir + '/')),
    )
}

/**
 * A run is alive while a process working in its work dir (a server, a driver, tar...) is the
 * child of a live `bench/run.js`: a killed run's servers, reparented, do not count.
 */
function runAlive(workDir: string): boolean {
  for (const pid of processesIn(workDir)) {
    const stat = readProc(pid, 'stat')
    const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]
    if (ppid !== undefined && readProc(ppid, 'cmdline').includes('bench/run.js')) return true
  }

  return false
}

export async function clearLeftovers(): Promise<void> {
  const dead = new Set<string>()
  for (const mnt of mountPoints()) {
    const workDir = WORK_DIR.exec(mnt)?.[1]
    if (workDir === undefined) continue
    if (runAlive(workDir)) {
      log(`leaving ${mnt} alone: another bench run is using it`)
      continue
    }

    log(`unmounting ${mnt}, left behind by an earlier run`)
    await cleanupMount(mnt)
    if (mountPoints().has(mnt)) throw new OneLineError(`${mnt} is still mounted from an earlier run and could not be unmounted (try: umount -l ${mnt})`)
    dead.add(workDir)
  }

  // The dead run's servers that outlive their mount (a fuse-native server does not notice an
  // unmount), then its files.
  for (const dir of dead) {
    const left = processesIn(dir)
    const kill = (pid: string, signal: NodeJS.Signals) => {
      try {
        process.kill(Number(pid), signal)
      } catch {
        // gone meanwhile
      }
    }

    for (const pid of left) kill(pid, 'SIGTERM')
    for (let i = 0; i < 100 && processesIn(dir).length > 0; i++) await sleep(50)
    for (const pid of processesIn(dir)) kill(pid, 'SIGKILL')
    if (left.length > 0) log(`stopped ${left.length} process(es) of that run still running`)
    fs.rmSync(dir, {recursive: true, force: true})
  }
}
