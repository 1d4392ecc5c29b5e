/**
 * razorfs fsck as a command: PATH handling (a nodes.dat from inside the data dir), exit codes,
 * the one-line summary, --json, the usage error without a terminal, and a live image held open
 * by another process (-n checks it and changes nothing; a repair is refused with exit 8).
 */
import {expect} from 'chai'
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {buildBase, snapshot} from '../unit/fsck/fuzz-lib.js'
import {lines, RUN_JS, runCli, stackLines, tempDir} from '../helpers/cli.js'

const STORAGE = fileURLToPath(new URL('../../src/storage/index.js', import.meta.url))

function cli(args: string[], cwd: string): {status: number | null; stdout: string; stderr: string} {
  const env: NodeJS.ProcessEnv = {...process.env, NO_COLOR: '1', RAZORFS_DATA_DIR: '/nonexistent/razorfs-test'}
  delete env.DEBUG
  const r = spawnSync(process.execPath, [RUN_JS, ...args], {cwd, encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000})
  return {status: r.status, stdout: r.stdout, stderr: r.stderr}
}

/** A process holding the image open read-write (like a mount) until killed. */
function holder(dir: string): Promise<ChildProcess> {
  const code = `import {Image, ROOT_INO} from ${JSON.stringify(STORAGE)}
const img = Image.open(${JSON.stringify(dir)})
img.mknod(ROOT_INO, 'made-by-the-holder', {mode: 0o100644, uid: 0, gid: 0})
process.stdout.write('ready\\n')
setInterval(() => {}, 1000)`
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {stdio: ['ignore', 'pipe', 'inherit']})
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child))
    child.once('exit', code => reject(new Error(`the holder exited with ${code}`)))
  })
}

describe('razorfs fsck', function () {
  this.timeout(120_000)
  let tmp: ReturnType<typeof tempDir>
  let dir: string

  beforeEach(() => {
    tmp = tempDir()
    dir = path.join(tmp.dir, 'data')
    buildBase(dir, false)
  })
  afterEach(() => tmp.remove())

  it('takes nodes.dat from inside the data dir; a clean image prints one line and exits 0', () => {
    const r = cli(['fsck', '-n', 'nodes.dat'], dir)
    expect(r.status, r.stderr).to.equal(0)
    expect(lines(r.stdout)).to.deep.equal(['razorfs: clean, 15 inodes, 15 entries'])
    expect(r.stderr).to.equal('')
    const forced = cli(['fsck', '-fp', 'nodes.dat'], dir)
    expect(forced.status, forced.stderr).to.equal(0)
    expect(lines(forced.stdout)).to.deep.equal(['razorfs: clean, 15 inodes, 15 entries'])
    expect(cli(['fsck', '-n', '.'], dir).status).to.equal(0)
    expect(runCli(['fsck', '-n', '--data-dir', dir]).status).to.equal(0)
  })

  it('exits 4 with -n on a damaged image, 1 once -y repairs it, then 0', () => {
    const fd = fs.openSync(path.join(dir, 'strings.dat'), 'r+')
    fs.writeSync(fd, Buffer.from([1]), 0, 1, 1234)
    fs.closeSync(fd)
    const before = snapshot(dir)
    const dry = runCli(['fsck', '-n', dir])
    expect(dry.status).to.equal(4)
    expect(lines(dry.stdout)[0]).to.equal('strings.dat: bytes 1234 to 1234 of the header page are not zero. Fix? no')
    expect(snapshot(dir)).to.equal(before)
    const fix = runCli(['fsck', '-y', path.join(dir, 'nodes.dat')])
    expect(fix.status, fix.stdout + fix.stderr).to.equal(1)
    expect(lines(fix.stdout)).to.include('razorfs: ***** IMAGE WAS MODIFIED *****')
    expect(runCli(['fsck', '-fy', dir]).status).to.equal(0)
  })

  it('--json prints the report: clean, problems with code, id, message and fixed, exitCode, counts', () => {
    const fd = fs.openSync(path.join(dir, 'nodes.dat'), 'r+')
    fs.writeSync(fd, Buffer.from([1]), 0, 1, 3000)
    fs.closeSync(fd)
    const r = runCli(['fsck', '-n', '--json', dir])
    expect(r.status).to.equal(4)
    expect(r.stderr).to.equal('')
    const report = JSON.parse(r.stdout)
    expect(report).to.include({clean: false, exitCode: 4, checked: 'full'})
    expect(report.problems).to.deep.equal([
      {code: '0x000009', id: 'PR_0_PAGE0_GARBAGE', message: 'nodes.dat: bytes 3000 to 3000 of the header page are not zero.', fixed: false},
    ])
    expect(report.counts).to.include({inodes: 15, entries: 15, directories: 3, problems: 1, fixed: 0, uncorrected: 1})
    const fixed = JSON.parse(runCli(['fsck', '-y', '--json', dir]).stdout)
    expect(fixed).to.include({exitCode: 1})
    expect(fixed.problems[0].fixed).to.equal(true)
  })

  it('without -n, -p or -y and without a terminal: a usage error (exit 16), nothing done', () => {
    const before = snapshot(dir)
    const r = runCli(['fsck', dir])
    expect(r.status).to.equal(16)
    expect(lines(r.stderr)).to.deep.equal([
      'razorfs: interactive repair needs a terminal: give -n (check only), -p (repair what is safe) or -y (repair everything)',
    ])
    expect(snapshot(dir)).to.equal(before)
    expect(runCli(['fsck', '-n', '-y', dir]).status).to.equal(16)
  })

  it('an image that is not there: exit 8, one line', () => {
    const r = runCli(['fsck', '-n', path.join(tmp.dir, 'nothing')])
    expect(r.status).to.equal(8)
    expect(lines(r.stderr)).to.have.length(1)
    expect(r.stderr).to.match(/no such data directory; create one with 'razorfs init'/)
    expect(stackLines(r.stderr)).to.deep.equal([])
  })

  it('a live image held by another process: -n checks it and changes nothing; -y and -p are refused with exit 8', async () => {
    const child = await holder(dir)
    try {
      const before = snapshot(dir)
      const r = runCli(['fsck', '-n', '-f', dir])
      expect(r.status, r.stdout + r.stderr).to.equal(0)
      // 15 inodes, and the file the holder made (only in its log so far) shows through replay.
      expect(lines(r.stdout)).to.deep.equal(['razorfs: clean, 16 inodes, 16 entries'])
      expect(snapshot(dir)).to.equal(before)
      for (const flag of ['-y', '-p']) {
        const refused = runCli(['fsck', flag, dir])
        expect(refused.status).to.equal(8)
        expect(lines(refused.stderr)).to.deep.equal([`razorfs: ${dir}: image is in use by pid ${child.pid}`])
        expect(refused.stdout).to.equal('')
      }

      expect(snapshot(dir)).to.equal(before)
    } finally {
      child.kill('SIGKILL')
      await new Promise(resolve => child.once('exit', resolve))
    }

    // The holder was killed: its log is replayed and the image checks clean.
    const after = runCli(['fsck', '-fy', dir])
    expect(after.status, after.stdout).to.equal(0)
  })

  it('prints no progress bar into a pipe', () => {
    const r = runCli(['fsck', '-fn', dir])
    expect(r.stderr).to.equal('')
    expect(r.stdout).to.not.include('\r')
  })
})
