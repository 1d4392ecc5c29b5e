/**
 * `razorfs mount --meta URL`: a volume on PostgreSQL (issue 20) mounted detached, shown by status
 * with its URL (never its password) and unmounted by umount; and the one-line refusals, in the
 * foreground and detached alike. Each test takes a fresh schema of the test server (test/helpers/pg.ts).
 */
import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {parsePgUrl} from '../../src/storage/pg/url.js'
import {PgVolume} from '../../src/storage/pg/volume.js'
import {lines, runCli, stackLines} from '../helpers/cli.js'
import {sharedMountHome, statusPath} from '../../src/fuse/status.js'
import {cleanupMount, isMounted, mount} from '../helpers/mount.js'
import {dropSchemas, schemaUrl, sql, usePg} from '../helpers/pg.js'

const SECRET = 's3cret-razorfs-test'

describe('razorfs mount --meta', function () {
  this.timeout(120_000)
  const server = usePg()
  const made: string[] = []
  let root: string
  let mnt: string

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-mount-meta-'))
    mnt = path.join(root, 'mnt')
    fs.mkdirSync(mnt)
  })

  afterEach(() => {
    cleanupMount(mnt)
    fs.rmSync(root, {recursive: true, force: true})
  })

  after(() => dropSchemas(made))

  /** A fresh schema's URL; with a volume in it unless `empty`. */
  const fresh = (empty = false): string => {
    const url = schemaUrl(server())
    made.push(url)
    if (!empty) PgVolume.create(url).close()
    return url
  }

  /** Both ways (-f and detached), the run fails with one line on stderr containing `text`, and nothing is mounted. */
  const refused = (args: string[], text: string, status = 1): void => {
    for (const fg of [['-f'], []]) {
      const r = runCli(['mount', ...fg, ...args, mnt])
      const how = fg.length === 0 ? 'detached' : 'foreground'
      expect(r.status, `${how}: ${r.stderr}`).to.equal(status)
      expect(r.stdout, how).to.equal('')
      expect(lines(r.stderr), `${how}: ${r.stderr}`).to.have.length(1)
      expect(r.stderr, how).to.match(/^razorfs: /)
      expect(r.stderr, how).to.include(text)
      expect(r.stderr, how).not.to.include(SECRET)
      expect(stackLines(r.stderr), how).to.deep.equal([])
      expect(isMounted(mnt), how).to.equal(false)
    }
  }

  it('mounts detached; status shows the URL without its password, and no checkpoint or recovery; umount URL unmounts', () => {
    const url = fresh()
    const withPassword = new URL(url)
    withPassword.searchParams.set('password', SECRET)
    const r = runCli(['mount', '--meta', withPassword.toString(), mnt])
    expect(r.status, r.stderr).to.equal(0)
    const said = /^mounted (\S+) on (\S+) \(server pid (\d+), log (\S+)\)\n$/.exec(r.stdout)
    expect(said, r.stdout).to.not.equal(null)
    const [, shown, on, pid, log] = said!
    expect(on).to.equal(mnt)
    expect(shown).to.match(/^postgresql:\/\//)
    expect(shown).to.not.include(SECRET)
    expect(isMounted(mnt)).to.equal(true)
    // Nowhere another user could read it: the server's command line, mountinfo, the status file.
    expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')).to.not.include(SECRET)
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).to.not.include(SECRET)

    fs.writeFileSync(path.join(mnt, 'f'), 'shared')
    const status = runCli(['status', mnt])
    expect(status.status, status.stderr).to.equal(0)
    expect(status.stdout).to.include(`${mnt}: live`)
    expect(status.stdout).to.match(new RegExp(`^ {2}meta +${shown.replaceAll(/[?.*+()[\]\\^$|]/g, '\\$&')}$`, 'm'))
    expect(status.stdout).to.include(`log       ${log}`)
    for (const absent of ['data dir', 'checkpoint', 'recovery', 'budget', SECRET]) expect(status.stdout).to.not.include(absent)
    const json = JSON.parse(runCli(['status', '--json', withPassword.toString()]).stdout)
    expect(json.mounts).to.have.length(1)
    expect(json.mounts[0]).to.include({mountpoint: mnt, dataDir: null, meta: shown, state: 'live', checkpoint: null, pid: Number(pid)})
    expect(json.mounts[0].server).to.include({dataDir: null, meta: shown, recovery: null})
    expect(json.mounts[0].server.cache).to.include({residentBudgetBytes: null, pageReleases: null})

    const u = runCli(['umount', withPassword.toString()])
    expect(u.status, u.stderr).to.equal(0)
    expect(isMounted(mnt)).to.equal(false)
    expect(fs.readFileSync(log, 'utf8')).to.match(/razorfs mount: volume \S+ closed cleanly\n$/)
    expect(fs.readFileSync(log, 'utf8')).to.not.include(SECRET)
    const v = PgVolume.open(url)
    expect(v.lookup(1, 'f')).to.be.greaterThan(1)
    v.close()
  })

  it('a foreground mount without a log leaves nothing in /tmp/razorfs-UID after a clean stop; its status file was there meanwhile', async () => {
    const m = await mount({dataDir: root, meta: fresh(), mnt})
    const home = sharedMountHome(mnt)
    expect(fs.existsSync(statusPath(home)), 'status file while mounted').to.equal(true)
    expect(await m.stop('SIGTERM')).to.equal(0)
    expect(fs.existsSync(home), `${home} after the stop`).to.equal(false)
  })

  it('says in one line: server unreachable, authentication failed, no such database', () => {
    refused(['--meta', 'postgresql:///postgres?host=/nonexistent-razorfs-dir'], 'PostgreSQL server unreachable')
    const stranger = new URL(fresh())
    stranger.searchParams.set('user', 'no_such_role_razorfs')
    stranger.searchParams.set('password', SECRET)
    refused(['--meta', stranger.toString()], 'authentication failed')
    const noDb = new URL(server())
    noDb.pathname = '/no_such_database_razorfs'
    refused(['--meta', noDb.toString()], 'no such database')
  })

  it('says in one line: no volume there (suggesting init --meta), not a razorfs database, a newer format', async () => {
    const empty = fresh(true)
    refused(['--meta', empty], `no razorfs volume in schema '${parsePgUrl(empty).schema}'; make one with razorfs init --meta`)
    const other = fresh(true)
    await sql(other, `CREATE SCHEMA ${parsePgUrl(other).schema}; CREATE TABLE accounts (id int)`)
    refused(['--meta', other], 'not a razorfs database')
    const newer = fresh()
    await sql(newer, 'UPDATE meta SET format_version = 99')
    refused(['--meta', newer], 'schema of format version 99, newer than this razorfs reads')
  })

  it('refuses --meta that is not a PostgreSQL URL, with --data-dir, or on the fuse-native binding (16)', () => {
    refused(['--meta', 'mysql://db/files'], 'not a PostgreSQL URL', 16)
    refused(['--meta', fresh(), '--data-dir', root], '--data-dir', 16)
    refused(['--meta', fresh(), '--binding', 'fuse-native'], '--meta needs the ll binding', 16)
  })
})
