/**
 * One "host" of a shared volume, as a process of its own (for test/unit/storage/pg-volume.test.ts
 * and pg-outage.test.ts):
 *
 *   node dist/test/helpers/pg-host.js URL race DIR COUNT
 *
 * opens the volume at URL, writes "ready", waits for a line on stdin, then tries to create
 * n0 .. n<COUNT-1> in directory DIR (a name under the root) and prints, as JSON, the names it made,
 * those refused with EEXIST, and any other error.
 *
 *   node dist/test/helpers/pg-host.js URL serve
 *
 * opens the volume at URL, writes "ready", then runs one call per line of stdin, a JSON array
 * [op, name, text?] about a file of the root: mknod, write (text), read, retain, release, unlink,
 * or [session] (the session id); and answers each with one line, {"ok": value} or {"error": code}.
 */
import {createInterface} from 'node:readline'

import {FsError} from '../../src/storage/errors.js'
import {PgVolume} from '../../src/storage/pg/volume.js'
import {ROOT_INO} from '../../src/storage/types.js'

const [url, what, dirName, count] = process.argv.slice(2)
if (what !== 'race' && what !== 'serve') throw new Error(`unknown command ${what}`)
const volume = PgVolume.open(url)
if (what === 'serve') serve()
else race()

function serve(): void {
  const inos = new Map<string, number>()
  const call = (op: string, name: string, text: string): unknown => {
    const ino = (): number => inos.get(name) ?? volume.lookup(ROOT_INO, name)
    switch (op) {
      case 'session':
        return volume.sessionId()
      case 'mknod':
        inos.set(name, volume.mknod(ROOT_INO, name, {mode: 0o100644, uid: 0, gid: 0}).ino)
        return inos.get(name)
      case 'write':
        return volume.write(ino(), Buffer.from(text), 0)
      case 'read': {
        const buf = Buffer.alloc(4096)
        return buf.subarray(0, volume.read(ino(), buf, 0)).toString()
      }

      case 'retain':
        return volume.retain(ino()) ?? null
      case 'release':
        return volume.release(ino()) ?? null
      case 'unlink':
        return volume.unlink(ROOT_INO, name) ?? null
      default:
        throw new Error(`unknown op ${op}`)
    }
  }

  process.stdout.write('ready\n')
  createInterface({input: process.stdin}).on('line', line => {
    const [op, name, text] = JSON.parse(line) as [string, string, string]
    let answer: unknown
    try {
      answer = {ok: call(op, name, text)}
    } catch (error) {
      answer = {error: error instanceof FsError ? error.code : (error as Error).message}
    }

    process.stdout.write(`${JSON.stringify(answer)}\n`)
  })
}

function race(): void {
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
}
