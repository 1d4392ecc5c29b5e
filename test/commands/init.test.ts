import {expect} from 'chai'
import {existsSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {lines, runCli, stackLines, tempDir} from '../helpers/cli.js'

// These tests need the real storage engine (src/storage/image.ts).
describe('razorfs init', () => {
  let tmp: ReturnType<typeof tempDir>
  let dataDir: string

  beforeEach(() => {
    tmp = tempDir()
    dataDir = join(tmp.dir, 'x')
  })
  afterEach(() => tmp.remove())

  const mode = (path: string) => statSync(path).mode & 0o7777

  it('creates the data dir (0700) and the image files (0600)', () => {
    const result = runCli(['init', '--data-dir', dataDir])
    expect(result.status, result.stderr).to.equal(0)
    expect(result.stderr).to.equal('')
    expect(mode(dataDir).toString(8)).to.equal('700')
    for (const name of ['nodes.dat', 'strings.dat']) {
      const file = join(dataDir, name)
      expect(existsSync(file), `${name} exists`).to.equal(true)
      expect(mode(file).toString(8), `${name} mode`).to.equal('600')
      expect(result.stdout).to.include(name)
    }

    expect(result.stdout).to.include(dataDir)
    expect(result.stdout).to.match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/)
  })

  it('refuses to replace an image, suggesting --force; --force replaces it', () => {
    expect(runCli(['init', '--data-dir', dataDir]).status).to.equal(0)
    const first = JSON.parse(runCli(['init', '--data-dir', dataDir, '--force', '--json']).stdout)

    const again = runCli(['init', '--data-dir', dataDir])
    expect(again.status).to.not.equal(0)
    expect(again.stdout).to.equal('')
    expect(lines(again.stderr)).to.have.length(1)
    expect(again.stderr).to.match(/^razorfs: /)
    expect(again.stderr).to.include('--force')
    expect(stackLines(again.stderr)).to.deep.equal([])

    const forced = runCli(['init', '--data-dir', dataDir, '--force', '--json'])
    expect(forced.status, forced.stderr).to.equal(0)
    expect(JSON.parse(forced.stdout).uuid).to.not.equal(first.uuid)
  })

  it('--json prints the image info', () => {
    const result = runCli(['init', '--data-dir', dataDir, '--json'])
    expect(result.status, result.stderr).to.equal(0)
    const info = JSON.parse(result.stdout)
    expect(info.uuid).to.be.a('string').and.not.equal('')
    expect(info.dir).to.equal(dataDir)
    expect(info.files.map((file: {name: string}) => file.name)).to.include.members(['nodes.dat', 'strings.dat'])
  })

  it('takes the data dir from RAZORFS_DATA_DIR when --data-dir is absent', () => {
    const result = runCli(['init', '--json'], {RAZORFS_DATA_DIR: dataDir})
    expect(result.status, result.stderr).to.equal(0)
    expect(JSON.parse(result.stdout).dir).to.equal(dataDir)
  })

  it('fails with one line, no stack trace, when the data dir is a regular file', () => {
    writeFileSync(dataDir, 'not a directory')
    const result = runCli(['init', '--data-dir', dataDir])
    expect(result.status).to.not.equal(0)
    expect(result.stdout).to.equal('')
    expect(lines(result.stderr)).to.deep.equal([
      `razorfs: ${dataDir}: exists but is not a directory; the data dir must be a directory`,
    ])
    expect(stackLines(result.stderr)).to.deep.equal([])
  })

  it('fails with one line when a parent of the data dir is a regular file', () => {
    writeFileSync(join(tmp.dir, 'file'), '')
    const result = runCli(['init', '--data-dir', join(tmp.dir, 'file', 'x')])
    expect(result.status).to.equal(1)
    expect(lines(result.stderr)).to.have.length(1)
    expect(result.stderr).to.include('ENOTDIR')
    expect(stackLines(result.stderr)).to.deep.equal([])
  })

  it('under --json, a failure is {"error": {"code": "RZ_DATA_DIR", ...}} on stdout, exit 1', () => {
    writeFileSync(dataDir, '')
    const result = runCli(['init', '--data-dir', dataDir, '--json'])
    expect(result.status).to.equal(1)
    const out = JSON.parse(result.stdout)
    expect(out.error.code).to.equal('RZ_DATA_DIR')
    expect(out.error.message).to.include('not a directory')
  })
})
