/**
 * One "host" of a shared volume, as a process of its own (for test/unit/storage/pg-shared.test.ts):
 *
 *   node dist/test/helpers/pg-host.js URL race DIR COUNT
 *
 * opens the volume at URL, writes "ready", waits for a line on stdin, then tries to create
 * n0 .. n<COUNT-1> in directory DIR (a name under the root) and prints, as JSON, the names it made,
 * those refused with EEXIST, and any other error.
 */
import {createInterface} from 'node:readline'

import {FsError} from '../../src/storage/errors.js'
import {PgVolume} from '../../src/storage/pg/volume.js'
import {ROOT_INO} from '../../src/storage/types.js'

const [url, what, dirName, count] = process.argv.slice(2)
if (what !== 'race') throw new Error(`unknown command ${what}`)
const volume = PgVolume.open(url)
const dir = volume.lookup(ROOT_INO, dirName)
process.stdout.write('ready\n')
const lines = createInterface({input: process.stdin})
lines.once('line', () => {
  const won: string[] = []
  const lost: string[] = []
  const errors: string[] = []
  for (let i = 0; i < Number(count); i++) {
    const name = `n${i}`
    try {
      volume.mknod(dir, name, {mode: 0o100644, uid: 0, gid: 0})
      won.push(name)
    } catch (error) {
      if (error instanceof FsError && error.code === 'EEXIST') lost.push(name)
      else errors.push(`${name}: ${(error as Error).message}`)
    }
  }

  volume.close()
  process.stdout.write(`${JSON.stringify({won, lost, errors})}\n`, () => process.exit(0))
})
