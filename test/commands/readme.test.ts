/**
 * README.md says what `--help` says: its command table lists exactly the commands of
 * `razorfs --help`, and its `-o` table exactly the options of `razorfs mount --help` (which are
 * MOUNT_OPTIONS, the list the mount parses), in the same order.
 */
import {expect} from 'chai'
import fs from 'node:fs'
import {fileURLToPath} from 'node:url'

import {MOUNT_OPTIONS} from '../../src/fuse/mount-options.js'
import {listedCommands, runCli} from '../helpers/cli.js'

const README = fs.readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8')

/** The text of README's section `## title` (to the next `## `). */
function section(title: string): string {
  const start = README.indexOf(`\n## ${title}\n`)
  expect(start, `README has a "## ${title}" section`).to.be.at.least(0)
  const end = README.indexOf('\n## ', start + 1)
  return README.slice(start, end < 0 ? undefined : end)
}

/** The first cells of a markdown table's rows: `| \`name\` | ...`. */
function firstCells(text: string): string[] {
  return [...text.matchAll(/^\| `([^`]+)` \|/gm)].map(m => m[1])
}

describe('README.md matches --help', () => {
  it('the command table lists exactly the commands of razorfs --help', () => {
    const help = runCli(['--help'])
    expect(help.status).to.equal(0)
    const listed = listedCommands(help.stdout)
    expect(firstCells(section('Commands')).sort()).to.deep.equal(listed.sort())
  })

  it('the -o table lists exactly the options of razorfs mount --help, in its order', () => {
    const help = runCli(['mount', '--help'])
    expect(help.status).to.equal(0)
    const block = help.stdout.split(/^ *Mount options.*$/m)[1]?.split(/\n\s*\n/)[0] ?? ''
    const inHelp = [...block.matchAll(/^\s*(\S+) {2,}\S/gm)].map(m => m[1])
    const options = section('Mounting').split('| option | effect |')[1]?.split('\n\n')[0] ?? ''
    expect(firstCells(options)).to.deep.equal(inHelp)
    expect(inHelp.map(o => o.replace(/=.*/, ''))).to.deep.equal(MOUNT_OPTIONS.map(o => o.name))
  })
})
