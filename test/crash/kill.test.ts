/**
 * Issue 4, harness 1: kill -9 of the server at random moments (kill-harness.ts). Short mode runs
 * in `npm test`; `npm run test:crash` runs the long mode. The self-test runs the same harness
 * against a server whose durability is broken on purpose (the no-wal switch, set by broken-server.ts) and
 * must see violations, which proves the harness can fail.
 */
import {expect} from 'chai'

import {formatKill, runKillHarness} from './kill-harness.js'
import {LONG, log, mountUnavailable, SEED} from './params.js'

const CYCLES = LONG ? 200 : 20
const SELF_TEST_CYCLES = LONG ? 6 : 2

describe(`crash harness: kill -9 (${LONG ? 'long' : 'short'} mode)`, function () {
  this.timeout(LONG ? 0 : 150_000)

  before(function () {
    const why = mountUnavailable()
    if (why) {
      log(`      skipped: ${why}`)
      this.skip()
    }
  })

  it(`${CYCLES} kill -9 cycles: every acknowledged operation survives, nothing is corrupt (0 violations)`, async () => {
    const s = await runKillHarness({label: 'kill -9', cycles: CYCLES, maxWorkMs: LONG ? 2500 : 700, seed: SEED, log})
    log(formatKill(s))
    expect(s.cycles).to.equal(CYCLES)
    expect(s.acked, 'acknowledged operations checked').to.be.greaterThan(CYCLES)
    expect(s.violations, s.samples.join('\n')).to.equal(0)
  })

  it('self-test: with the no-wal switch the same harness reports violations', async () => {
    const s = await runKillHarness({
      label: 'kill -9 self-test (no-wal)',
      cycles: SELF_TEST_CYCLES,
      minWorkMs: 300,
      maxWorkMs: 700,
      startupKills: false,
      seed: SEED + 1,
      breakSwitch: 'no-wal',
      log,
    })
    log(formatKill(s))
    expect(s.violations, 'a server that does not log its changes must fail the harness').to.be.greaterThan(0)
  })
})
