/**
 * Issue 4, harness 2: power loss, approximated with a loop-mounted ext4 image copied while the
 * server is SIGSTOPped (power-harness.ts). Skipped, with the reason printed, only where loop
 * devices cannot be used. The self-test breaks fsync on purpose (the no-fsync switch, set by
 * broken-server.ts) and must see violations.
 */
import {expect} from 'chai'

import {LONG, log, mountUnavailable, SEED} from './params.js'
import {formatPower, loopUnavailable, runPowerHarness} from './power-harness.js'

const CYCLES = LONG ? 50 : 5
const SELF_TEST_CYCLES = LONG ? 4 : 2

describe(`crash harness: power loss (${LONG ? 'long' : 'short'} mode)`, function () {
  this.timeout(LONG ? 0 : 150_000)

  before(function () {
    const why = mountUnavailable() ?? loopUnavailable()
    if (why) {
      log(`      skipped: ${why}`)
      this.skip()
    }
  })

  it(`${CYCLES} power-loss cycles: everything fsync'd survives, nothing is corrupt (0 violations)`, async () => {
    const s = await runPowerHarness({
      // Every 5th long-mode cycle runs past twice the commit interval (the age rule); short mode keeps to the budget of npm test.
      label: 'power loss',
      cycles: CYCLES,
      minWorkMs: 800,
      maxWorkMs: LONG ? 8000 : 2500,
      longEvery: LONG ? 5 : 0,
      seed: SEED + 2,
      log,
    })
    log(formatPower(s))
    expect(s.cycles).to.equal(CYCLES)
    expect(s.syncs, 'fsyncs acknowledged').to.be.greaterThan(0)
    expect(s.violations, s.samples.join('\n')).to.equal(0)
  })

  it('self-test: with the no-fsync switch the same harness reports violations', async () => {
    const s = await runPowerHarness({
      label: 'power-loss self-test (no-fsync)',
      cycles: SELF_TEST_CYCLES,
      minWorkMs: 1200,
      maxWorkMs: 2000,
      longEvery: 0,
      seed: SEED + 3,
      breakSwitch: 'no-fsync',
      log,
    })
    log(formatPower(s))
    expect(s.violations, 'a server whose fsync does nothing must fail the harness').to.be.greaterThan(0)
  })
})
