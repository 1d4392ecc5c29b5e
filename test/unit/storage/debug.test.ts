/**
 * The durability-breaking switches (src/storage/debug.ts) are off in every process unless a test
 * turns them on: no environment variable reaches them (nor the test tuning of the content cache).
 */
import {spawnSync} from 'node:child_process'

import {expect} from 'chai'

const DEBUG_JS = new URL('../../../src/storage/debug.js', import.meta.url).href

function inChild(script: string, env: NodeJS.ProcessEnv = {}): string {
  const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], {encoding: 'utf8', env: {...process.env, ...env}})
  expect(res.status, res.stderr).to.equal(0)
  return res.stdout.trim()
}

describe('storage: durability-breaking switches', () => {
  it('are off, whatever the environment says (the old RAZORFS_BREAK included)', () => {
    const out = inChild(
      `import * as d from ${JSON.stringify(DEBUG_JS)}; console.log(JSON.stringify([d.BREAK_NO_WAL, d.BREAK_NO_FSYNC, d.BREAK_ANY, d.brokenSwitches(), d.CONTENT_FDS]))`,
      {RAZORFS_BREAK: 'no-wal,no-fsync'},
    )
    expect(JSON.parse(out)).to.deep.equal([false, false, false, [], 256])
  })

  it('breakDurability turns on the named ones, seen live by importers; an unknown name throws', () => {
    const out = inChild(`import * as d from ${JSON.stringify(DEBUG_JS)}
      d.breakDurability(['no-fsync'])
      const one = [d.BREAK_NO_WAL, d.BREAK_NO_FSYNC, d.BREAK_ANY, d.brokenSwitches()]
      d.breakDurability(['no-wal'])
      let err = ''
      try { d.breakDurability(['no-such']) } catch (e) { err = e.message }
      console.log(JSON.stringify([one, d.brokenSwitches(), err]))`)
    const [one, both, err] = JSON.parse(out) as [unknown[], string[], string]
    expect(one).to.deep.equal([false, true, true, ['no-fsync']])
    expect(both).to.deep.equal(['no-wal', 'no-fsync'])
    expect(err).to.match(/unknown durability switch "no-such"/)
  })
})
