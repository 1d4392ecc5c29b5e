/** The machine a run ran on, for the report: hardware, software, the work dir's filesystem, CPU steal. */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {mounts} from '../../src/fuse/mountinfo.js'
import {REPO, paths} from './paths.js'
import {getRazorfsBinding} from './targets.js'
import {GiB, MiB} from './util.js'

export function machine(): Record<string, string> {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8')
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? '?'
  const fuseNative = (JSON.parse(fs.readFileSync(path.join(REPO, 'node_modules/fuse-native/package.json'), 'utf8')) as {version: string}).version
  let fsType = '?'
  let best = ''
  const workDir = paths.workDir
  // The longest mountpoint the work dir is on or under.
  for (const {mountPoint: mnt, fsType: type} of mounts()) {
    if ((workDir === mnt || workDir.startsWith(mnt.endsWith('/') ? mnt : mnt + '/')) && mnt.length > best.length) {
      best = mnt
      fsType = type
    }
  }

  const razorfsBinding = getRazorfsBinding()
  return {
    cpu: model,
    cores: String(os.cpus().length),
    ram: `${(os.totalmem() / GiB).toFixed(1)} GiB`,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    'fuse-native': fuseNative,
    'work dir': `${path.dirname(workDir)} (${fsType} on ${best})`,
    'razorfs server': `\`razorfs mount -f${razorfsBinding === undefined ? '' : ` --binding ${razorfsBinding}`}\` (binding: ${razorfsBinding ?? "the mount command's default, ll"})`,
  }
}

/** Jiffies of the machine's CPUs from /proc/stat: [stolen by the hypervisor, all]. */
export function cpuJiffies(): [number, number] {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number)
  return [f[7] ?? 0, f.reduce((a, b) => a + b, 0)]
}

/** Share of CPU time the hypervisor took (steal) between two cpuJiffies() readings, %. */
export const stealPct = (a: [number, number], b: [number, number]): number => (b[1] > a[1] ? (100 * (b[0] - a[0])) / (b[1] - a[1]) : 0)

/**
 * Touch most of the machine's free memory once before anything is timed (or `atMost` bytes of it
 * before one step): write a file in /dev/shm as large as 3/4 of the available memory, then delete it. On this VM (a Firecracker
 * guest) a page of RAM is slow the first time it is touched after boot, and every write to the
 * host filesystem lands in page cache, often on such pages: after writing and deleting 11 GB in
 * /dev/shm (26 s, ~420 MB/s), razorfs's 1 GiB sequential write went from 0.47x of noop to 1.13x
 * and 1.32x, the next runs on the same code (noop copies into no page cache; native does, too).
 * Free pages go cold again: the guest reports them to the host (virtio-balloon free page
 * reporting), which discards them.
 */
export function warmMemory(atMost = Infinity): {gib: number; sec: number} | undefined {
  const kib = /MemAvailable:\s+(\d+)/.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1]
  let shm: fs.StatsFs
  try {
    shm = fs.statfsSync('/dev/shm')
  } catch {
    return undefined // no /dev/shm: nothing to warm with
  }

  const block = 64 * MiB
  const bytes = Math.floor(Math.min(Number(kib ?? 0) * 1024 * 0.75, shm.bavail * shm.bsize * 0.9, atMost) / block) * block
  if (bytes <= 0) return undefined
  const file = path.join('/dev/shm', `razorfs-bench-warm-${process.pid}`)
  const buf = Buffer.alloc(block, 0x5a)
  const start = Date.now()
  // The name goes at once: a run killed while it writes (or another run's warm-up filling the
  // memory, an OOM kill) leaves nothing in /dev/shm, as the pages go with the last fd.
  const fd = fs.openSync(file, 'w', 0o600)
  fs.rmSync(file, {force: true})
  try {
    for (let done = 0; done < bytes; done += block) fs.writeSync(fd, buf)
  } finally {
    fs.closeSync(fd)
  }

  return {gib: bytes / GiB, sec: (Date.now() - start) / 1000}
}
