/**
 * Storage layer: checkpoint time after N operations, and recovery time (Image.open after a crash)
 * against the size of the write-ahead log left behind. Public storage API only.
 *
 *   node --expose-gc dist/bench/recovery.js '{"checkpointOps":[1000,10000],"walMiB":[1,8]}'
 *
 * prints one JSON line; progress goes to stderr.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {Image, ROOT_INO} from '../src/storage/index.js'

const FILE_SPEC = {mode: 0o100644, uid: 0, gid: 0}
/** Never checkpoint on our own while filling the log. */
const NO_AUTO_CHECKPOINT = 2 ** 40

export interface RecoveryResult {
  checkpoint: Array<{ops: number; walBytes: number; ms: number}>
  recovery: Array<{walMiB: number; walBytes: number; transactions: number; recovered: number; openMs: number; cleanOpenMs: number}>
}

const gc = (): void => (globalThis as {gc?: () => void}).gc?.()
const ms = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6
const walBytes = (dir: string): number => fs.statSync(path.join(dir, 'wal.log')).size

function fresh(root: string, name: string): string {
  const dir = path.join(root, name)
  fs.mkdirSync(dir)
  Image.create(dir).close()
  return dir
}

function main(): void {
  const opts = JSON.parse(process.argv[2] ?? '{}') as {checkpointOps?: number[]; walMiB?: number[]}
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-recovery-'))
  const out: RecoveryResult = {checkpoint: [], recovery: []}
  try {
    for (const n of opts.checkpointOps ?? [1000, 10_000, 100_000]) {
      const dir = fresh(root, `ckpt-${n}`)
      const image = Image.open(dir, {walLimit: NO_AUTO_CHECKPOINT})
      for (let i = 0; i < n; i++) image.mknod(ROOT_INO, `file-${i}`, FILE_SPEC)
      const wal = walBytes(dir)
      gc()
      const start = process.hrtime.bigint()
      image.checkpoint()
      const t = ms(start)
      image.close()
      out.checkpoint.push({ops: n, walBytes: wal, ms: t})
      process.stderr.write(`recovery: checkpoint after ${n} creates (${(wal / 2 ** 20).toFixed(1)} MiB of WAL): ${t.toFixed(1)} ms\n`)
    }

    for (const mib of opts.walMiB ?? [1, 16, 64]) {
      const dir = fresh(root, `wal-${mib}`)
      const image = Image.open(dir, {walLimit: NO_AUTO_CHECKPOINT})
      let n = 0
      while (walBytes(dir) < mib * 2 ** 20) {
        for (let k = 0; k < 500; k++) image.mknod(ROOT_INO, `file-${n++}`, FILE_SPEC)
      }

      const wal = walBytes(dir)
      image.abandon() // what kill -9 leaves: the WAL holds every transaction since the checkpoint
      gc()
      let start = process.hrtime.bigint()
      const reopened = Image.open(dir)
      const openMs = ms(start)
      const recovered = reopened.info().recovery.transactions
      reopened.close()
      gc()
      start = process.hrtime.bigint()
      const again = Image.open(dir)
      const cleanOpenMs = ms(start)
      again.close()
      out.recovery.push({walMiB: mib, walBytes: wal, transactions: n, recovered, openMs, cleanOpenMs})
      process.stderr.write(
        `recovery: open after a crash with ${(wal / 2 ** 20).toFixed(1)} MiB of WAL (${n} creates): ${openMs.toFixed(1)} ms (recovered ${recovered})\n`,
      )
    }
  } finally {
    fs.rmSync(root, {recursive: true, force: true})
  }

  process.stdout.write(JSON.stringify(out) + '\n')
}

main()
