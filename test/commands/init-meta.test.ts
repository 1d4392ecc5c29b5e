/**
 * `razorfs init --meta URL`: a volume shared through PostgreSQL (issue 20), made by the CLI in a
 * schema of the test server (test/helpers/pg.ts), and its one-line refusals.
 */
import {expect} from 'chai'

import {PG_FORMAT_VERSION} from '../../src/storage/pg/schema.js'
import {PgVolume} from '../../src/storage/pg/volume.js'
import {ROOT_INO} from '../../src/storage/types.js'
import {lines, runCli, stackLines} from '../helpers/cli.js'
import {dropSchemas, schemaUrl, usePg} from '../helpers/pg.js'

describe('razorfs init --meta', function () {
  this.timeout(120_000)
  const server = usePg()
  const made: string[] = []
  after(() => dropSchemas(made))
  const fresh = (): string => {
    const url = schemaUrl(server())
    made.push(url)
    return url
  }

  /** The run failed with one line on stderr that contains `text`, and printed nothing else. */
  const refused = (args: string[], text: string, status = 1): void => {
    const r = runCli(args)
    expect(r.status, r.stderr).to.equal(status)
    expect(r.stdout).to.equal('')
    expect(lines(r.stderr), r.stderr).to.have.length(1)
    expect(r.stderr).to.match(/^razorfs: /)
    expect(r.stderr).to.include(text)
    expect(stackLines(r.stderr)).to.deep.equal([])
  }

  it('makes an empty volume that PgVolume opens; refuses to replace it without --force', () => {
    const url = fresh()
    const r = runCli(['init', '--meta', url])
    expect(r.status, r.stderr).to.equal(0)
    expect(r.stderr).to.equal('')
    expect(r.stdout).to.match(/^Created razorfs volume [0-9a-f-]{36}\n/)
    const v = PgVolume.open(url)
    expect([...v.readdir(ROOT_INO)]).to.deep.equal([])
    v.mknod(ROOT_INO, 'f', {mode: 0o100644, uid: 0, gid: 0})
    v.close()

    refused(['init', '--meta', url], 'a razorfs volume already exists in schema')
    const forced = runCli(['init', '--meta', url, '--force', '--json'])
    expect(forced.status, forced.stderr).to.equal(0)
    const info = JSON.parse(forced.stdout)
    expect(info).to.include({formatVersion: PG_FORMAT_VERSION, schema: new URL(url).searchParams.get('schema')})
    const again = PgVolume.open(url)
    expect([...again.readdir(ROOT_INO)], '--force replaced it').to.deep.equal([])
    expect(again.meta.uuid).to.equal(info.uuid)
    again.close()
  })

  it('says in one line: server unreachable, authentication failed, not a razorfs database, not a URL', () => {
    refused(['init', '--meta', 'postgresql:///postgres?host=/nonexistent-razorfs-dir'], 'PostgreSQL server unreachable')
    const stranger = new URL(server())
    stranger.searchParams.set('user', 'no_such_role_razorfs')
    refused(['init', '--meta', stranger.toString()], 'authentication failed')
    const catalog = new URL(server())
    catalog.searchParams.set('schema', 'pg_catalog')
    refused(['init', '--meta', catalog.toString()], "schema 'pg_catalog' holds tables that are not a razorfs volume")
    refused(['init', '--meta', 'mysql://db/files'], 'not a PostgreSQL URL', 16)
    refused(['init', '--meta', fresh(), '--capacity', '10'], 'cannot also be provided', 16)
  })
})
