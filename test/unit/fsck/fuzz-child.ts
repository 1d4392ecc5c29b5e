/**
 * The fuzz runner process: runs the cases it is given one after the other, through the fsck
 * library in this one process, and reports each to its parent (fuzz.test.ts), which kills it if a
 * case runs past its time: a hang is caught even when it is a synchronous endless loop. (A child
 * process, not a worker thread: the flock addon cannot be loaded by a second worker.)
 */
import path from 'node:path'

import {collect, runCase} from './fuzz-lib.js'

interface Job {
  bases: string[]
  work: string
  seeds: number[]
}

const job = JSON.parse(process.argv[2]) as Job
const send = (message: unknown): Promise<void> =>
  new Promise(resolve => {
    process.send!(message, () => resolve())
  })

for (const seed of job.seeds) {
  await send({type: 'start', seed})
  const base = job.bases[seed % job.bases.length]
  let failure: string | undefined
  let damage: unknown
  try {
    const result = runCase(base, path.join(job.work, 'case'), seed)
    failure = result.failure
    damage = result.damage
  } catch (error) {
    failure = `exception: ${(error as Error).stack ?? String(error)}`
  }

  await send({type: 'done', seed, failure, damage, base: path.basename(base)})
  if (seed % 40 === 0) await collect()
}

await send({type: 'end'})
process.disconnect()
