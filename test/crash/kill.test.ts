/**
 * Issue 4, harness 1: kill -9 of the server at random moments (kill-harness.ts). Short mode runs
 * in `npm test`; `npm run test:crash` runs the long mode. The self-test runs the same harness
 * against a server whose durability is broken on purpose (the no-wal switch, set by broken-server.ts) and
 * must see violations, which proves the harness can fail.
 *
 * Issue 20: the same harness against a mount of a volume on PostgreSQL (`mount -f --meta URL`,
 * a fresh schema of the tests' server, test/helpers/pg.ts), with its own self-test (the
 * pg-lazy-commit switch: requests acknowledged before their transaction commits).
 */
import {expect} from 'chai'

import {formatKill, type KillOptions, runKillHarness} from './kill-harness.js'
import {LONG, log, mountUnavailable, SEED} from './params.js'
import {useSchemas} from '../helpers/pg.js'

const CYCLES = LONG ? 200 : 20
const SELF_TEST_CYCLES = LONG ? 6 : 2
const PG_CYCLES = LONG ? 100 : 6
const PG_SELF_TEST_CYCLES = LONG ? 4 : 2
/** The killed servers' sessions expire after this (session_timeout=): the reaper frees their orphans within the run. */
const PG_LEASE_S = 2

/** The harness must find nothing: every acknowledged operation there, nothing corrupt. */
async function expectNoViolations(o: Pick<KillOptions, 'label' | 'cycles' | 'seed' | 'pgUrl'>): Promise<void> {
  const s = await runKillHarness({maxWorkMs: LONG ? 2500 : 700, log, ...o})
  log(formatKill(s))
  expect(s.cycles).to.equal(o.cycles)
  expect(s.acked, 'acknowledged operations checked').to.be.greaterThan(o.cycles)
  expect(s.violations, s.samples.join('\n')).to.equal(0)
}

/** Self-test: against a server broken on purpose, the harness must report violations. Kills only during the workload, after 300 ms, so that there is always acknowledged work to lose. */
async function expectViolations(o: Pick<KillOptions, 'label' | 'cycles' | 'seed' | 'breakSwitch' | 'pgUrl' | 'syncKills'>, why: string): Promise<void> {
  const s = await runKillHarness({minWorkMs: 300, maxWorkMs: 700, startupKills: false, log, ...o})
  log(formatKill(s))
  expect(s.violations, why).to.be.greaterThan(0)
}

describe(`crash harness: kill -9 (${LONG ? 'long' : 'short'} mode)`, function () {
  this.timeout(LONG ? 0 : 150_000)

  before(function () {
    const why = mountUnavailable()
    if (why) {
      log(`      skipped: ${why}`)
      this.skip()
    }
  })

  it(`${CYCLES} kill -9 cycles: every acknowledged operation survives, nothing is corrupt (0 violations)`, () =>
    expectNoViolations({label: 'kill -9', cycles: CYCLES, seed: SEED}))

  it('self-test: with the no-wal switch the same harness reports violations', () =>
    expectViolations(
      {label: 'kill -9 self-test (no-wal)', cycles: SELF_TEST_CYCLES, seed: SEED + 1, breakSwitch: 'no-wal', syncKills: false},
      'a server that does not log its changes must fail the harness',
    ))
})

describe(`crash harness: kill -9 of a mount of a volume on PostgreSQL (${LONG ? 'long' : 'short'} mode)`, function () {
  this.timeout(LONG ? 0 : 150_000)
  const fresh = useSchemas()
  /** A fresh schema's URL, its sessions on a short lease. */
  const url = (): string => {
    const u = new URL(fresh())
    u.searchParams.set('session_timeout', String(PG_LEASE_S))
    return u.toString()
  }

  before(function () {
    const why = mountUnavailable()
    if (why) {
      log(`      skipped: ${why}`)
      this.skip()
    }
  })

  it(`${PG_CYCLES} kill -9 cycles: every acknowledged operation is committed, nothing half done (0 violations)`, () =>
    expectNoViolations({label: 'kill -9 (PostgreSQL)', cycles: PG_CYCLES, seed: SEED + 2, pgUrl: url()}))

  it('self-test: with the pg-lazy-commit switch the same harness reports violations', () =>
    expectViolations(
      {label: 'kill -9 (PostgreSQL) self-test (pg-lazy-commit)', cycles: PG_SELF_TEST_CYCLES, seed: SEED + 3, breakSwitch: 'pg-lazy-commit', pgUrl: url()},
      'a server that acknowledges before it commits must fail the harness',
    ))
})
