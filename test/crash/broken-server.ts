/**
 * The razorfs CLI with durability broken on purpose, for the crash harnesses' self-tests only:
 *
 *   node dist/test/crash/broken-server.js SWITCHES ARGS...
 *
 * turns on SWITCHES (comma-separated: `no-wal`, `no-fsync`, `pg-lazy-commit`; see src/storage/debug.ts) in this
 * process, then runs the CLI with ARGS as bin/run.js does (the harnesses pass `mount -f ...`).
 * A switch `content-fds=N` is test tuning, not a breakage: the server keeps N content-file
 * descriptors open instead of 256, so that the harnesses' few files are evicted all the time.
 * This entry lives under test/ so that the shipped CLI has no way to break durability.
 */
import {execute} from '@oclif/core'

import {breakDurability, tuneForTests} from '../../src/storage/debug.js'

const [switches, ...args] = process.argv.slice(2)
if (switches === undefined || args.length === 0) {
  process.stderr.write('usage: broken-server.js SWITCHES ARGS...\n')
  process.exit(16)
}

const names = switches
  .split(',')
  .map(s => s.trim())
  .filter(s => s !== '')
for (const name of names) {
  const fds = /^content-fds=(\d+)$/.exec(name)
  if (fds !== null) tuneForTests({contentFds: Number(fds[1])})
}

breakDurability(names.filter(name => !name.startsWith('content-fds=')))
// The same root as bin/run.js (this file runs from dist/test/crash/), so the commands are loaded
// from dist/src/commands/ and share this process's storage/debug.js module.
await execute({args, dir: new URL('../../../bin/run.js', import.meta.url).href})
