/**
 * Is an image in use (its lock held by a read-write opener), asked without touching the lock:
 * /proc/locks lists every flock(2) with the device and inode of the locked file and the holder's
 * pid. Taking the lock to test it (DirLock.isLocked) would make a concurrent opener fail for that
 * instant; this reads only. Elsewhere than Linux it falls back to DirLock.isLocked.
 */
import fs from 'node:fs'
import path from 'node:path'

import {LOCK_NAME} from '../storage/format.js'
import {DirLock} from '../storage/lock.js'
import {devMajor, devMinor} from './text.js'

export interface LiveState {
  /** A process holds the image's lock (it is mounted or otherwise open read-write). */
  locked: boolean
  /** The holder's pid, from /proc/locks or the lock file. */
  pid: number | null
}

export function liveState(dir: string): LiveState {
  const lockPath = path.join(dir, LOCK_NAME)
  let st: fs.Stats
  try {
    st = fs.statSync(lockPath)
  } catch {
    return {locked: false, pid: null}
  }

  let table: string
  try {
    table = fs.readFileSync('/proc/locks', 'utf8')
  } catch {
    const locked = DirLock.isLocked(dir)
    return {locked, pid: locked ? (DirLock.holder(dir) ?? null) : null}
  }

  const want = `${devMajor(st.dev).toString(16).padStart(2, '0')}:${devMinor(st.dev).toString(16).padStart(2, '0')}:${st.ino}`
  for (const line of table.split('\n')) {
    // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" (waiters have "->" after the number)
    const f = line.trim().split(/\s+/)
    if (f[1] === '->' || f[1] !== 'FLOCK') continue
    if (f[5] !== want) continue
    const pid = Number(f[4])
    return {locked: true, pid: pid > 0 ? pid : (DirLock.holder(dir) ?? null)}
  }

  return {locked: false, pid: null}
}
