/**
 * The razorfs CLI with a gc that kills itself (SIGKILL) at a chosen point, for the gc kill tests
 * only:
 *
 *   node dist/test/helpers/gc-kill.js POINT N ARGS...
 *
 * sets src/gc/compact.ts's test hook so that the N-th time gc reaches POINT ('copy',
 * 'attributes', 'built', 'rename', 'committed') the process sends itself SIGKILL, then runs the
 * CLI with ARGS as bin/run.js does. This entry lives under test/ so that the shipped CLI has no
 * way to reach the hook (as test/crash/broken-server.ts does for the durability switches).
 */
import {execute} from '@oclif/core'

import {setGcTestHook} from '../../src/gc/compact.js'

const [point, nth, ...args] = process.argv.slice(2)
if (point === undefined || nth === undefined || args.length === 0) {
  process.stderr.write('usage: gc-kill.js POINT N ARGS...\n')
  process.exit(16)
}

let seen = 0
setGcTestHook(at => {
  if (at === point && ++seen === Number(nth)) process.kill(process.pid, 'SIGKILL')
})
// The same root as bin/run.js (this file runs from dist/test/helpers/), so the commands are
// loaded from dist/src/commands/ and share this process's gc/compact.js module.
await execute({args, dir: new URL('../../../bin/run.js', import.meta.url).href})
