/**
 * Short mode (inside `npm test`) or long mode (`npm run test:crash`, RAZORFS_CRASH_LONG=1).
 * RAZORFS_CRASH_SEED repeats a run's random choices (kill moments still depend on timing).
 */
import fs from 'node:fs'

export const LONG = process.env.RAZORFS_CRASH_LONG === '1'
export const SEED = process.env.RAZORFS_CRASH_SEED ? Number(process.env.RAZORFS_CRASH_SEED) : Math.floor(Math.random() * 2 ** 31)

export const log = (line: string): void => {
  process.stdout.write(`${line}\n`)
}

/** Why real mounts cannot run here, or undefined. */
export function mountUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root'
  if (!fs.existsSync('/dev/fuse')) return '/dev/fuse is missing'
  return undefined
}
