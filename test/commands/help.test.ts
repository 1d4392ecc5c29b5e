/**
 * The help cache (src/cli/help-cache.ts): bin/run.js answers help requests with what oclif printed
 * for them, byte for byte, without loading oclif; a request it has not seen, or one of another
 * build, goes to oclif and is remembered.
 */
import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'

import {helpDirs, helpFileName} from '../../src/cli/help-cache.js'
import {RUN_JS, OCLIF_RUN_JS, listedCommands, runCli, runInPty, runLogged, runOclif, tempDir} from '../helpers/cli.js'

const ROOT = path.resolve(path.dirname(RUN_JS), '..')

/** The subjects of the root help: '' and each command it lists. */
function subjects(): string[] {
  const help = runOclif(['--help'])
  expect(help.status).to.equal(0)
  return ['', ...listedCommands(help.stdout)]
}

/** Every way of asking for a subject's help. */
function forms(subject: string): string[][] {
  return subject === ''
    ? [[], ['--help'], ['-h'], ['help']]
    : [
        [subject, '--help'],
        [subject, '-h'],
        ['help', subject],
      ]
}

/** Whether a run loaded any of oclif. */
const oclifLoaded = (loaded: string[]): boolean => loaded.some(url => url.includes('/@oclif/'))

describe('razorfs help cache', () => {
  let tmp: ReturnType<typeof tempDir>
  /** An empty cache dir of the user's for each test: only the build's seed (dist/help) is warm. */
  let env: NodeJS.ProcessEnv

  beforeEach(() => {
    tmp = tempDir()
    env = {XDG_CACHE_HOME: path.join(tmp.dir, 'cache')}
  })
  afterEach(() => tmp.remove())

  it('the build seeds every subject: in a pipe each form prints what oclif prints, without loading oclif', () => {
    const all = subjects()
    expect(all).to.include.members(['', 'mount', 'autocomplete'])
    for (const subject of all) {
      const expected = runOclif(forms(subject)[0], env)
      expect(expected.status).to.equal(0)
      expect(expected.stdout).to.match(/^USAGE$/m)
      for (const args of forms(subject)) {
        const fast = runLogged(args, env)
        const what = `razorfs ${args.join(' ')}`
        expect(fast.status, what).to.equal(0)
        expect(fast.stderr, what).to.equal('')
        expect(fast.stdout, what).to.equal(expected.stdout)
        expect(oclifLoaded(fast.loaded), `${what} loaded oclif`).to.equal(false)
      }
    }
    expect(fs.existsSync(path.join(tmp.dir, 'cache')), 'a seeded request writes nothing').to.equal(false)
  })

  it('the check above can fail: a command that is not a help request loads oclif', () => {
    expect(oclifLoaded(runLogged(['stats', '--json'], env).loaded)).to.equal(true)
  })

  it('another width (OCLIF_COLUMNS) goes to oclif once, then comes from the user cache', () => {
    for (const [columns, args] of [
      ['50', ['mount', '--help']],
      ['137', ['--help']],
      ['137', ['help', 'fsck']],
    ] as Array<[string, string[]]>) {
      const wide = {...env, OCLIF_COLUMNS: columns}
      const expected = runOclif(args, wide)
      const first = runLogged(args, wide)
      expect(oclifLoaded(first.loaded)).to.equal(true)
      expect(first.stdout).to.equal(expected.stdout)
      const second = runLogged(args, wide)
      expect(oclifLoaded(second.loaded), `the second razorfs ${args.join(' ')} at ${columns} columns`).to.equal(false)
      expect(second.stdout).to.equal(expected.stdout)
      expect(second.stdout).to.not.equal(runOclif(args, env).stdout, 'the width changes the text')
    }
  })

  it('a cached text of another build, or a damaged one, is not used but replaced', () => {
    const dir = helpDirs(ROOT, env).user
    const file = path.join(dir, helpFileName({colour: false, subject: 'init', width: 77}))
    fs.mkdirSync(dir, {recursive: true})
    for (const stale of ['razorfs-help 0 some other build\nSTALE HELP\n', 'no newline at all']) {
      fs.writeFileSync(file, stale)
      const result = runCli(['init', '--help'], {...env, OCLIF_COLUMNS: '77'})
      expect(result.status).to.equal(0)
      expect(result.stdout).to.equal(runOclif(['init', '--help'], {...env, OCLIF_COLUMNS: '77'}).stdout)
      expect(fs.readFileSync(file, 'utf8')).to.not.equal(stale)
    }
  })

  it('with DEBUG set oclif answers (and may print its debug lines)', () => {
    expect(oclifLoaded(runLogged(['--help'], {...env, DEBUG: 'nothing-that-matches'}).loaded)).to.equal(true)
  })

  it('an unknown command is not cached: it stays a usage error', () => {
    for (let i = 0; i < 2; i++) {
      const result = runCli(['help', 'frobnicate'], env)
      expect(result.status).to.equal(16)
      expect(result.stdout).to.equal('')
    }
    expect(fs.existsSync(path.join(tmp.dir, 'cache'))).to.equal(false)
  })

  describe('on a terminal', () => {
    // A terminal turns "\n" into "\r\n"; the colours are what oclif decides (NO_COLOR: none).
    for (const [what, colour] of [
      ['coloured', {NO_COLOR: undefined}],
      ['NO_COLOR', {NO_COLOR: '1'}],
    ] as Array<[string, NodeJS.ProcessEnv]>) {
      it(`${what}: the terminal's width, oclif's bytes, then from the cache`, () => {
        const ttyEnv = {...env, TERM: 'xterm-256color', CI: undefined, ...colour}
        for (const [columns, args] of [
          [100, ['mount', '--help']],
          [30, ['--help']], // oclif wraps to at least 40 columns
        ] as Array<[number, string[]]>) {
          const expected = runInPty(args, ttyEnv, {columns, entry: OCLIF_RUN_JS})
          expect(expected.status).to.equal(0)
          expect(expected.output.includes('\x1b[1mUSAGE\x1b[22m')).to.equal(what === 'coloured')
          const first = runInPty(args, ttyEnv, {columns})
          expect(first.output).to.equal(expected.output)

          // The text was stored under the terminal's width; the next run prints the stored text.
          const name = helpFileName({colour: what === 'coloured', subject: args.length === 1 ? '' : args[0], width: Math.max(columns, 40)})
          const file = path.join(helpDirs(ROOT, env).user, name)
          const [id, text] = [fs.readFileSync(file, 'utf8').split('\n')[0], fs.readFileSync(file, 'utf8').split('\n').slice(1).join('\n')]
          expect(text.replaceAll('\n', '\r\n')).to.equal(expected.output)
          fs.writeFileSync(file, `${id}\nFROM THE CACHE\n`)
          expect(runInPty(args, ttyEnv, {columns}).output).to.equal('FROM THE CACHE\r\n')
        }
      })
    }
  })
})
