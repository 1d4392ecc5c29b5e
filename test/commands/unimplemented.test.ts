import {expect} from 'chai'
import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {lines, runCli, tempDir} from '../helpers/cli.js'

/** Commands that exist but do nothing yet: [command, valid arguments, issue that implements it]. */
const UNIMPLEMENTED: Array<[string, string[], number]> = [
  ['fsck', ['-n'], 5],
  ['dump', ['--headers'], 5],
  ['stats', [], 5],
]

describe('commands not implemented yet', () => {
  for (const [command, args, issue] of UNIMPLEMENTED) {
    it(`${command} exits 1 with "not implemented yet (issue ${issue})" and does nothing`, () => {
      const tmp = tempDir()
      try {
        const dataDir = join(tmp.dir, 'data')
        const result = runCli([command, '--data-dir', dataDir, ...args])
        expect(result.status).to.equal(1)
        expect(result.stdout).to.equal('')
        expect(lines(result.stderr)).to.deep.equal([
          `razorfs ${command}: not implemented yet (issue ${issue}); nothing was done`,
        ])
        expect(existsSync(dataDir)).to.equal(false)
      } finally {
        tmp.remove()
      }
    })
  }

  for (const command of ['fsck', 'dump', 'stats']) {
    it(`${command} --json exits 1 with a JSON error`, () => {
      const extra = command === 'migrate' ? ['--from', '/x'] : []
      const result = runCli([command, '--json', ...extra])
      expect(result.status).to.equal(1)
      expect(JSON.parse(result.stdout)).to.deep.equal({
        error: {code: 'NOT_IMPLEMENTED', message: `not implemented yet (issue ${command === 'migrate' ? 6 : 5}); nothing was done`},
      })
    })
  }
})
