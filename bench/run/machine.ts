/** The machine a run ran on, for the report: hardware, software, the work dir's filesystem, CPU steal. */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {mounts} from '../../src/fuse/mountinfo.js'
import {REPO, paths} from './paths.js'
import {getRazorfsBinding} from './targets.js'
import {GiB} from './util.js'

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
