/**
 * One opener at a time: an exclusive flock(2) on `<data-dir>/lock`, which holds the holder's pid.
 * The kernel drops the lock the moment its holder dies, so a `kill -9` never leaves a stale lock
 * (proper-lockfile, the design card's choice, refuses for 10 s after a kill -9: docs/ARCHITECTURE.md).
 */
import fs from 'node:fs'
import path from 'node:path'

import {ImageError} from './errors.js'
import {LOCK_NAME} from './format.js'
import {fsExtAddon as flock} from './fs-ext.js'

/** The pid line is always this long, so rewriting it never needs a new block of a full disk. */
const PID_LINE = 16

export class DirLock {
  private constructor(
    readonly path: string,
    private fd: number,
  ) {}

  /** Take the lock or throw RZ_LOCKED naming the holder's pid. */
  static acquire(dir: string): DirLock {
    const file = path.join(dir, LOCK_NAME)
    const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600)
    try {
      flock().flockSync(fd, 'exnb')
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      fs.closeSync(fd)
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') {
        const pid = DirLock.holder(dir)
        throw new ImageError('RZ_LOCKED', `image is in use by ${pid === undefined ? 'another process' : `pid ${pid}`}`, dir)
      }

      throw new ImageError('RZ_IO', `cannot lock: ${(error as Error).message}`, file)
    }

    try {
      // Overwritten in place, never truncated: on a full disk the old block is reused.
      fs.writeSync(fd, `${process.pid}\n`.padEnd(PID_LINE, ' '), 0)
      fs.ftruncateSync(fd, PID_LINE)
    } catch {
      // The pid is only what error messages name; the lock itself is held.
    }

    return new DirLock(file, fd)
  }

  /** Pid written by the current (or last) holder. */
  static holder(dir: string): number | undefined {
    try {
      const pid = Number.parseInt(fs.readFileSync(path.join(dir, LOCK_NAME), 'utf8'), 10)
      return Number.isFinite(pid) ? pid : undefined
    } catch {
      return undefined
    }
  }

  /** Is the image locked by a live process (without disturbing it)? */
  static isLocked(dir: string): boolean {
    let fd: number
    try {
      fd = fs.openSync(path.join(dir, LOCK_NAME), 'r')
    } catch {
      return false
    }

    try {
      flock().flockSync(fd, 'shnb')
      flock().flockSync(fd, 'un')
      return false
    } catch {
      return true
    } finally {
      fs.closeSync(fd)
    }
  }

  release(): void {
    if (this.fd < 0) return
    fs.closeSync(this.fd) // closing the last descriptor drops the flock
    this.fd = -1
  }
}
