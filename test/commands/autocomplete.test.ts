/**
 * Shell completion (@oclif/plugin-autocomplete): `razorfs autocomplete SHELL` prints the setup and
 * writes the completion scripts to the cache dir (never the data dir); the bash script completes
 * commands and flags when bash calls it.
 */
import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

import {RUN_JS, listedCommands, runCli, tempDir} from '../helpers/cli.js'

describe('razorfs autocomplete', () => {
  let tmp: ReturnType<typeof tempDir>
  let env: NodeJS.ProcessEnv

  before(() => {
    tmp = tempDir()
    env = {HOME: tmp.dir, XDG_CACHE_HOME: path.join(tmp.dir, 'cache'), RAZORFS_DATA_DIR: path.join(tmp.dir, 'data')}
  })
  after(() => tmp.remove())

  for (const [shell, rc] of [
    ['bash', '~/.bashrc'],
    ['zsh', '~/.zshrc'],
  ]) {
    it(`${shell} prints the setup instructions and writes the scripts to the cache dir`, () => {
      const result = runCli(['autocomplete', shell], env)
      expect(result.status, result.stderr).to.equal(0)
      expect(result.stdout).to.include(`razorfs autocomplete script ${shell}`)
      expect(result.stdout).to.include(rc)
      const scripts = path.join(tmp.dir, 'cache', 'razorfs-cli', 'autocomplete')
      expect(fs.readdirSync(scripts)).to.include.members(['bash_setup', 'zsh_setup', 'functions'])
      expect(fs.existsSync(path.join(tmp.dir, 'data')), 'the data dir is left alone').to.equal(false)
    })
  }

  it('--refresh-cache writes the scripts', () => {
    const result = runCli(['autocomplete', '--refresh-cache'], env)
    expect(result.status, result.stderr).to.equal(0)
    expect(fs.existsSync(path.join(tmp.dir, 'cache', 'razorfs-cli', 'autocomplete', 'functions', 'bash', 'razorfs.bash'))).to.equal(true)
  })

  it('the zsh function lists every command with its summary', () => {
    const zsh = fs.readFileSync(path.join(tmp.dir, 'cache', 'razorfs-cli', 'autocomplete', 'functions', 'zsh', '_razorfs'), 'utf8')
    for (const command of ['dump', 'fsck', 'init', 'migrate', 'mount', 'stats', 'status', 'umount']) expect(zsh).to.match(new RegExp(`^"${command}\\[`, 'm'))
  })

  /** The words bash offers for the command line `words` (the last one being completed). */
  function complete(words: string[]): string[] {
    const setup = runCli(['autocomplete', 'script', 'bash'], env)
    expect(setup.status, setup.stderr).to.equal(0)
    const script = [
      setup.stdout,
      `COMP_WORDS=(${words.map(w => `'${w}'`).join(' ')})`,
      `COMP_CWORD=${words.length - 1}`,
      // The function bash calls on TAB, as `complete -p razorfs` names it.
      'eval "$(complete -p razorfs | sed -n "s/^complete -F \\([^ ]*\\) .*/fn=\\1/p")"',
      '"$fn"',
      'printf "%s\\n" "${COMPREPLY[@]}"',
    ].join('\n')
    const result = spawnSync('bash', ['--norc', '-c', script], {
      encoding: 'utf8',
      env: {...process.env, ...env, PATH: `${path.dirname(RUN_JS)}:${process.env.PATH}`},
    })
    expect(result.status, result.stderr).to.equal(0)
    return result.stdout.split('\n').filter(Boolean).sort()
  }

  it('bash completes a command', () => {
    expect(complete(['razorfs', 'mo'])).to.deep.equal(['mount'])
    expect(complete(['razorfs', 'st'])).to.deep.equal(['stats', 'status'])
  })

  it('bash offers every command of --help for an empty word', () => {
    const help = runCli(['--help'], env)
    expect(complete(['razorfs', ''])).to.deep.equal(listedCommands(help.stdout).sort())
  })

  it("bash completes a command's flags, not its hidden ones", () => {
    expect(complete(['razorfs', 'mount', '--bi'])).to.deep.equal(['--binding'])
    expect(complete(['razorfs', 'fsck', '--re'])).to.deep.equal(['--read-only'])
    expect(complete(['razorfs', 'mount', '--det'])).to.deep.equal([])
  })
})
