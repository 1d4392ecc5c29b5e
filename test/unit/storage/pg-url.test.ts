/**
 * Volume URLs of the PostgreSQL backend (src/storage/pg/url.ts), and the tests' server
 * (test/helpers/pg.ts): RAZORFS_PG_URL or a throwaway cluster, reachable.
 */
import {expect} from 'chai'
import os from 'node:os'

import pg from 'pg'

import {parsePgUrl} from '../../../src/storage/pg/url.js'
import {isPgUrl} from '../../../src/volume-url.js'
import {usePg} from '../../helpers/pg.js'

describe('PostgreSQL volume URLs', () => {
  it('take user, password, host, port, database and schema from the URL', () => {
    const t = parsePgUrl('postgres://ann:s%40cret@db.example:6543/files?schema=vol2')
    expect(t.config).to.include({user: 'ann', password: 's@cret', host: 'db.example', port: 6543, database: 'files'})
    expect(t.schema).to.equal('vol2')
    expect(t.display).to.equal('postgres://ann@db.example:6543/files?schema=vol2')
  })

  it('a socket directory in host=, the user defaulting to the process', () => {
    const saved = process.env.PGUSER
    delete process.env.PGUSER
    try {
      const t = parsePgUrl('postgresql:///files?host=%2Frun%2Fpostgresql&password=pw')
      expect(t.config).to.include({user: os.userInfo().username, host: '/run/postgresql', database: 'files', password: 'pw'})
      expect(t.schema).to.equal('razorfs')
      expect(t.display, 'no password in messages').to.not.include('pw')
    } finally {
      if (saved !== undefined) process.env.PGUSER = saved
    }
  })

  it('session_timeout= sets the session lease, in seconds', () => {
    expect(parsePgUrl('postgres://h/db').leaseMs).to.equal(undefined)
    expect(parsePgUrl('postgres://h/db?session_timeout=1.5').leaseMs).to.equal(1500)
    for (const bad of ['0', '-1', 'x', '', '1e9'])
      expect(() => parsePgUrl(`postgres://h/db?session_timeout=${bad}`)).to.throw(`session_timeout '${bad}' is not a number of seconds`)
  })

  it('refuses what is not one, in one line', () => {
    expect(isPgUrl('/var/lib/razorfs')).to.equal(false)
    expect(isPgUrl('postgres://h/db')).to.equal(true)
    expect(() => parsePgUrl('postgres://h/db?schema=Bad-Name')).to.throw("schema 'Bad-Name' is not a plain lower-case SQL name")
    expect(() => parsePgUrl('mysql://h/db')).to.throw('not a PostgreSQL URL')
  })

  describe('the test server', () => {
    const server = usePg()

    it('answers', async () => {
      const client = new pg.Client(parsePgUrl(server()).config)
      await client.connect()
      try {
        expect((await client.query('SELECT 1 AS one')).rows).to.deep.equal([{one: 1}])
      } finally {
        await client.end()
      }
    })
  })
})
