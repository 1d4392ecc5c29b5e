/**
 * What the commands do on a terminal and in a pipe, through bin/run.js: the progress bar (drawn
 * by src/progress.ts on stderr) shows on a pseudo-terminal and not a byte of it in a pipe; a tar
 * archive is never written to, nor read from, a terminal.
 */
import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'

import {lines, runCli, runInPty, stackLines, tempDir} from '../helpers/cli.js'
import {fixture} from '../unit/migrate/helpers.js'
import {buildFixture} from '../unit/inspect/fixture.js'
import {humanBytes} from '../../src/units.js'

/** Draw the bar at once (no 400 ms delay): the images here are small. */
const NOW = {RAZORFS_PROGRESS_DELAY_MS: '0'}

/**
 * The lines a terminal shows at the end: on each line, what was written after the last return to
 * its start (\r, ESC[1G, or erasing it: ESC[2K); other escape sequences removed.
 */
function screen(output: string): string[] {
  return lines(output.replaceAll('\r\n', '\n')).map(line => {
    const segments = line.split(/\r|\u001B\[1G|\u001B\[2K/)

    return segments.at(-1)!.replaceAll(/\u001B(\[[0-9;?]*[A-Za-z]|[78])/g, '')
  })
}

describe('progress bars: on a terminal, never in a pipe', function () {
  this.timeout(120_000)
  let tmp: ReturnType<typeof tempDir>
  let image: string
  let archive: string

  before(() => {
    tmp = tempDir()
    image = path.join(tmp.dir, 'image')
    buildFixture(image)
    archive = path.join(tmp.dir, 'image.tar')
    const made = runCli(['dump', '--data-dir', image, '--archive', archive])
    expect(made.status, made.stderr).to.equal(0)
  })

  after(() => tmp.remove())

  it('dump --archive FILE draws an "archiving" bar on a terminal', () => {
    const result = runInPty(['dump', '--data-dir', image, '--archive', path.join(tmp.dir, 'pty.tar')], NOW)
    expect(result.status, result.output).to.equal(0)
    expect(result.output).to.match(/archiving \[[#.]{30}\] +\d+% \d+ \/ \d+/)
    expect(result.output).to.include('\u001B[2K') // and erases it
    expect(screen(result.output).at(-1)).to.match(/^wrote \d+ members/)
  })

  it('dump --archive FILE in a pipe writes nothing on stderr', () => {
    const result = runCli(['dump', '--data-dir', image, '--archive', path.join(tmp.dir, 'pipe.tar')], NOW)
    expect(result.status, result.stderr).to.equal(0)
    expect(result.stderr).to.equal('')
    expect(result.stdout).to.match(/^wrote \d+ members/)
  })

  it('init --from FILE draws a "restoring" bar on a terminal', () => {
    const result = runInPty(['init', '--data-dir', path.join(tmp.dir, 'restored-pty'), '--from', archive], NOW)
    expect(result.status, result.output).to.equal(0)
    const size = fs.statSync(archive).size
    expect(result.output).to.match(new RegExp(`restoring \\[[#.]{30}\\] +\\d+% [0-9.]+ (B|KiB|MiB) / ${humanBytes(size)}`))
    expect(result.output).to.include('\u001B[2K')
    expect(screen(result.output)[0]).to.match(/^Created razorfs image /)
  })

  it('init --from FILE in a pipe writes nothing on stderr', () => {
    const result = runCli(['init', '--data-dir', path.join(tmp.dir, 'restored-pipe'), '--from', archive], NOW)
    expect(result.status, result.stderr).to.equal(0)
    expect(result.stderr).to.equal('')
    expect(result.stdout).to.match(/^Created razorfs image /)
  })

  it('migrate draws its bars on a terminal, and nothing on stderr in a pipe', () => {
    const env = {...NOW, RAZORFS_MIGRATE_SOURCES: '/nonexistent/a:/nonexistent/b', RAZORFS_MIGRATE_WAL: '/nonexistent/wal.log'}
    const from = fixture('disk').dir
    const pty = runInPty(['migrate', '--from', from, '--data-dir', path.join(tmp.dir, 'migrated-pty')], env)
    expect(pty.status, pty.output).to.equal(0)
    expect(pty.output).to.match(/writing \[[#.]{30}\] +\d+% /)
    const pipe = runCli(['migrate', '--from', from, '--data-dir', path.join(tmp.dir, 'migrated-pipe')], env)
    expect(pipe.status, pipe.stderr).to.equal(0)
    expect(pipe.stderr).to.equal('')
  })
})

describe('tar archives and terminals', function () {
  this.timeout(120_000)
  let tmp: ReturnType<typeof tempDir>

  before(() => {
    tmp = tempDir()
  })

  after(() => tmp.remove())

  it('dump --archive - refuses to write to a terminal: one line, exit 16', () => {
    const image = path.join(tmp.dir, 'image')
    expect(runCli(['init', '--data-dir', image]).status).to.equal(0)
    for (const extra of [[], ['--json']]) {
      const result = runInPty(['dump', '--data-dir', image, '--archive', '-', ...extra])
      expect(result.status, result.output).to.equal(16)
      const shown = screen(result.output)
      expect(stackLines(result.output)).to.deep.equal([])
      if (extra.length === 0) {
        expect(shown).to.deep.equal(['razorfs: refusing to write a tar archive to a terminal; redirect standard output or give --archive FILE'])
      } else {
        expect(JSON.parse(shown.join('\n')).error).to.include({code: 'USAGE'})
      }
    }

    // In a pipe, the archive is written.
    const piped = runCli(['dump', '--data-dir', image, '--archive', '-'])
    expect(piped.status, piped.stderr).to.equal(0)
    expect(piped.stdout).to.include('PaxHeaders/')
  })

  it('init --from - refuses to read from a terminal: one line, exit 16, nothing created', () => {
    const dir = path.join(tmp.dir, 'new')
    const result = runInPty(['init', '--data-dir', dir, '--from', '-'])
    expect(result.status, result.output).to.equal(16)
    expect(screen(result.output)).to.deep.equal(['razorfs: refusing to read a tar archive from a terminal; give --from FILE or redirect standard input'])
    expect(fs.existsSync(dir)).to.equal(false)
  })
})
