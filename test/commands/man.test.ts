/**
 * The man page, man/razorfs.1, made by the build from the help (src/docs/man.ts): it documents
 * every command and flag that `--help` shows, it is roff that man(1) renders without a warning,
 * and package.json installs it.
 */
import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

import {roffText} from '../../src/docs/man.js'
import {RUN_JS, listedCommands, runCli} from '../helpers/cli.js'

const ROOT = path.resolve(path.dirname(RUN_JS), '..')
const MAN = path.join(ROOT, 'man', 'razorfs.1')

/** The commands `razorfs --help` lists. */
function commands(): string[] {
  const help = runCli(['--help'])
  expect(help.status).to.equal(0)
  return listedCommands(help.stdout)
}

/** The flags `razorfs COMMAND --help` lists (FLAGS and GLOBAL FLAGS): long names and short letters. */
function flags(command: string): string[] {
  const help = runCli([command, '--help'])
  expect(help.status).to.equal(0)
  const sections = help.stdout.split(/^(?=[A-Z][A-Z ]+$)/m).filter(s => /^(GLOBAL )?FLAGS$/m.test(s.split('\n')[0]))
  return sections.flatMap(s => [...s.matchAll(/^ {2,6}(?:(-\w), )?(--[\w-]+)/gm)].flatMap(m => (m[1] ? [m[1], m[2]] : [m[2]])))
}

/** Whether `command` runs here. */
function available(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0
}

describe('man page (man/razorfs.1)', () => {
  let roff: string
  before(() => {
    roff = fs.readFileSync(MAN, 'utf8')
  })

  /** The roff of one command's subsection. */
  function subsection(command: string): string {
    const start = roff.indexOf(`\n.SS "${command}"\n`)
    expect(start, `a subsection for ${command}`).to.be.at.least(0)
    const end = roff.slice(start + 1).search(/\n\.S[SH] /)
    return roff.slice(start, start + 1 + end)
  }

  it('has the sections NAME, SYNOPSIS, DESCRIPTION, COMMANDS, EXIT STATUS, FILES, SEE ALSO, in order', () => {
    const sections = [...roff.matchAll(/^\.SH (.*)$/gm)].map(m => m[1])
    const wanted = ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'COMMANDS', 'EXIT STATUS', 'FILES', 'SEE ALSO']
    expect(sections.filter(s => wanted.includes(s))).to.deep.equal(wanted)
  })

  it('documents every command of --help, each with every flag of its --help', () => {
    const listed = commands()
    expect(listed).to.include('mount')
    expect([...roff.matchAll(/^\.SS "(.*)"$/gm)].map(m => m[1]).sort()).to.deep.equal([...listed].sort())
    for (const command of listed) {
      const text = subsection(command)
      const shown = flags(command)
      if (command !== 'autocomplete') expect(shown, command).to.include('--data-dir')
      for (const flag of shown) expect(text, `${command} ${flag}`).to.include(`\\fB${roffText(flag)}`)
    }
  })

  it('hidden flags stay hidden', () => {
    expect(subsection('mount')).to.not.include(roffText('--detached'))
  })

  it('is roff of the man macros that it uses, escaped', () => {
    const macros = new Set(['.TH', '.SH', '.SS', '.PP', '.TP', '.IP', '.RS', '.RE', '.nf', '.fi', '.br', '.nh', '.ad'])
    let filling = true
    let depth = 0
    for (const [i, line] of roff.split('\n').entries()) {
      const where = `line ${i + 1}: ${line}`
      expect(line.startsWith("'"), where).to.equal(false)
      if (line.startsWith('.')) expect(macros.has(line.split(' ')[0]), where).to.equal(true)
      if (line === '.nf' || line === '.fi') {
        expect(filling, where).to.equal(line === '.nf')
        filling = line === '.fi'
      }
      if (line.startsWith('.RS')) depth++
      if (line === '.RE') depth--
      expect(depth, where).to.be.at.least(0)
      // Every backslash starts an escape this generator writes: \e \- \& \fB \fI \fR \[uXXXX].
      expect(line.replace(/\\(?:[e\-&]|f[BIR]|\[u[0-9A-F]{4,}\])/g, ''), where).to.not.include('\\')
    }
    expect(filling).to.equal(true)
    expect(depth).to.equal(0)
  })

  it('man renders it without a warning, with every command and flag', function () {
    if (!available('man') || !available('groff')) this.skip()
    const warnings = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z', MAN], {encoding: 'utf8'})
    expect(warnings.status).to.equal(0)
    expect(warnings.stderr).to.equal('')
    const man = spawnSync('man', ['--warnings', '-E', 'UTF-8', '-l', MAN], {
      encoding: 'utf8',
      env: {...process.env, MANWIDTH: '100', MANPAGER: 'cat', PAGER: 'cat'},
    })
    expect(man.status, man.stderr).to.equal(0)
    expect(man.stderr).to.equal('')
    const text = man.stdout.replace(/.\x08/g, '')
    expect(text).to.match(/^RAZORFS\(1\)/)
    for (const command of commands()) {
      expect(text).to.include(`razorfs ${command}`)
      for (const flag of flags(command)) expect(text, `${command} ${flag}`).to.include(flag)
    }
  })

  it('package.json installs it', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
    expect(pkg.man).to.deep.equal(['./man/razorfs.1'])
    expect(pkg.files).to.include('man')
  })
})
