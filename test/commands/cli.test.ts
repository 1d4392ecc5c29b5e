import {expect} from 'chai'

import {lines, runCli, stackLines} from '../helpers/cli.js'

const COMMANDS = ['dump', 'fsck', 'init', 'migrate', 'mount', 'stats']

/** The command names listed under COMMANDS in the root help. */
function listedCommands(help: string): string[] {
  const section = help.split(/^COMMANDS$/m)[1] ?? ''
  return [...section.matchAll(/^ {2}(\S+)/gm)].map((match) => match[1]).sort()
}

describe('razorfs (root)', () => {
  it('--help lists exactly the six commands and exits 0', () => {
    const result = runCli(['--help'])
    expect(result.status).to.equal(0)
    expect(listedCommands(result.stdout)).to.deep.equal(COMMANDS)
  })

  it('with no arguments prints the same list', () => {
    const result = runCli([])
    expect(result.status).to.equal(0)
    expect(listedCommands(result.stdout)).to.deep.equal(COMMANDS)
  })

  it('help COMMAND shows that command\'s help', () => {
    const result = runCli(['help', 'init'])
    expect(result.status).to.equal(0)
    expect(result.stdout).to.match(/^USAGE\n\s+\$ razorfs init/m)
  })

  for (const command of COMMANDS) {
    it(`${command} --help exits 0 and documents --data-dir`, () => {
      const result = runCli([command, '--help'])
      expect(result.status).to.equal(0)
      expect(result.stdout).to.include(`$ razorfs ${command}`)
      expect(result.stdout).to.include('--data-dir')
      expect(result.stdout).to.include('RAZORFS_DATA_DIR')
    })
  }

  it('an unknown command exits 16 with one line on stderr', () => {
    const result = runCli(['frobnicate'])
    expect(result.status).to.equal(16)
    expect(lines(result.stderr)).to.deep.equal(["razorfs: unknown command 'frobnicate' (see 'razorfs --help')"])
  })
})

describe('usage errors exit 16', () => {
  const cases: Array<[string, string[]]> = [
    ['an unknown flag (init)', ['init', '--bogus']],
    ['an unknown flag (mount)', ['mount', '--bogus', '/tmp/x']],
    ['an unknown flag (fsck)', ['fsck', '--bogus']],
    ['an unknown flag (migrate)', ['migrate', '--from', '/x', '--bogus']],
    ['an unknown flag (dump)', ['dump', '--bogus']],
    ['an unknown flag (stats)', ['stats', '--bogus']],
    ['a missing argument', ['mount']],
    ['an unexpected argument', ['stats', 'extra']],
    ['a value outside the allowed ones', ['mount', '--binding', 'nope', '/tmp/x']],
    ['a bad integer', ['init', '--capacity', 'many']],
    ['an integer out of range', ['init', '--capacity', '0']],
    ['exclusive flags', ['fsck', '-n', '-y']],
  ]
  for (const [what, args] of cases) {
    it(`${what}: razorfs ${args.join(' ')}`, () => {
      const result = runCli(args)
      expect(result.status, result.stderr).to.equal(16)
      expect(result.stdout).to.equal('')
      const err = lines(result.stderr)
      expect(err).to.have.length(1)
      expect(err[0]).to.match(/^razorfs: /)
      expect(stackLines(result.stderr)).to.deep.equal([])
    })
  }

  it('under --json, prints {"error": {"code": "USAGE", ...}} on stdout and still exits 16', () => {
    const result = runCli(['stats', '--json', '--bogus'])
    expect(result.status).to.equal(16)
    const out = JSON.parse(result.stdout)
    expect(out.error.code).to.equal('USAGE')
    expect(out.error.message).to.include('--bogus')
  })
})
