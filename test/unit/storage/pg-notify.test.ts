/**
 * The notifications of a shared volume (schema.ts's rz_notify, notify.ts's listener): what each
 * change reports to the other sessions, and that a session hears nothing of its own changes nor
 * of a change that was rolled back. Two PgVolumes on one schema, as two hosts would have them.
 */
import {expect} from 'chai'

import {PgListener, parseNotice} from '../../../src/storage/pg/notify.js'
import {parsePgUrl} from '../../../src/storage/pg/url.js'
import {PgVolume} from '../../../src/storage/pg/volume.js'
import {ROOT_INO} from '../../../src/storage/types.js'
import {codeOf} from '../../helpers/errors.js'
import {dropSchemas, schemaUrl, sql, usePg} from '../../helpers/pg.js'

const FILE = {mode: 0o100644, uid: 0, gid: 0}
const DIR = {mode: 0o040755, uid: 0, gid: 0}

describe('shared volume notifications', function () {
  this.timeout(120_000)

  it('parses a payload: attributes, contents, names in hex; unknown items skipped', () => {
    const n = parseNotice('12 e1:6162 a1 a7 d7 x9 e3:ff')
    expect(n.session).to.equal(12)
    expect([...n.inodes]).to.deep.equal([
      [1, false],
      [7, true],
    ])
    expect(n.entries).to.deep.equal([
      [1, Buffer.from('ab')],
      [3, Buffer.from([0xff])],
    ])
    expect(parseNotice('0 aX a5').inodes.size).to.equal(0) // a bad item ends the parse
  })

  describe('on PostgreSQL', () => {
    const server = usePg()
    const made: string[] = []
    after(() => dropSchemas(made))

    it('a listener whose start fails after connecting (its volume closed meanwhile) leaves no connection behind', async () => {
      const url = schemaUrl(server())
      made.push(url)
      PgVolume.create(url).close()
      const target = parsePgUrl(url)
      const listening = async (): Promise<number> =>
        (await sql(url, 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = $1', [`LISTEN ${target.schema}`])).rows[0].n as number
      const sink = {inode: () => {}, entry: () => {}, missed: () => {}}
      const listener = new PgListener(
        target,
        () => {
          throw new Error('the volume is closed')
        },
        sink,
      )
      let failed = false
      await listener.start().catch(() => (failed = true))
      expect(failed, 'start rejects').to.equal(true)
      // Its connection was ended: none is left listening (a left one kept the mount's server alive after its end).
      const deadline = Date.now() + 10_000
      while ((await listening()) > 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
      expect(await listening()).to.equal(0)
      await listener.close()
    })

    it("reports each change's inodes and names to the other sessions, not to its own, and nothing rolled back", async () => {
      const url = schemaUrl(server())
      made.push(url)
      const a = PgVolume.create(url)
      const b = PgVolume.open(url)
      const m = a.mknod(ROOT_INO, 'm', DIR).ino // where the markers go
      // What b heard, merged: an inode's contents changed if any notice said so.
      const inodes = new Map<number, boolean>()
      const entries = new Set<string>()
      const stop = await b.watch({
        inode: (ino, data) => inodes.set(ino, data || inodes.get(ino) === true),
        entry: (parent, name) => entries.add(`e${parent}/${name.toString()}`),
        missed: () => {
          throw new Error('no notification can have been missed: the listener was never cut off')
        },
      })
      // What b heard up to a's next marker (notices arrive in commit order; the listener hands
      // each batch over at once, so what came with the marker is there when the marker is).
      let markers = 0
      const next = async (): Promise<string[]> => {
        const marker = `e${m}/marker${++markers}`
        a.mknod(m, `marker${markers}`, FILE)
        const deadline = Date.now() + 30_000
        while (!entries.has(marker)) {
          if (Date.now() > deadline) expect.fail(`${marker} never heard; heard ${[...entries].join(' ')}`)
          await new Promise(resolve => setTimeout(resolve, 5))
        }

        entries.delete(marker)
        inodes.delete(m)
        const got = [...entries, ...[...inodes].map(([ino, data]) => `${data ? 'd' : 'a'}${ino}`)]
        entries.clear()
        inodes.clear()
        return got
      }

      try {
        const f = a.mknod(ROOT_INO, 'f', FILE).ino
        const d = a.mknod(ROOT_INO, 'd', DIR).ino
        expect(await next()).to.have.members(['e1/f', 'e1/d', 'a1'])
        a.write(f, Buffer.from('hello'), 0)
        a.setattr(f, {mode: 0o600})
        a.setxattr(f, 'user.x', Buffer.from('1'))
        expect(await next()).to.have.members([`d${f}`])
        a.setattr(f, {mode: 0o644})
        expect(await next()).to.have.members([`a${f}`])
        a.setattr(f, {size: 2})
        expect(await next()).to.have.members([`d${f}`])
        a.link(f, d, 'hard')
        expect(await next()).to.have.members([`e${d}/hard`, `a${d}`, `a${f}`])
        a.rename(ROOT_INO, 'f', d, 'g')
        expect(await next()).to.have.members(['e1/f', `e${d}/g`, 'a1', `a${d}`, `a${f}`])
        a.rename(d, 'g', d, 'hard') // two names of one inode: nothing changes, nothing is said
        expect(await next()).to.have.members([])
        const h = a.mknod(d, 'h', FILE).ino
        a.rename(d, 'h', d, 'g') // replaces g (a link of f)
        expect(await next()).to.have.members([`e${d}/h`, `e${d}/g`, `a${d}`, `a${h}`, `a${f}`])
        a.unlink(d, 'g')
        a.removexattr(f, 'user.x')
        expect(await next()).to.have.members([`e${d}/g`, `a${d}`, `a${h}`, `a${f}`])
        expect(codeOf(() => a.rmdir(ROOT_INO, 'm'))).to.equal('ENOTEMPTY') // refused: nothing said
        a.setxattr(f, 'user.y', Buffer.from('2'))
        const rx = a.mknod(ROOT_INO, 'rx', DIR).ino
        expect(await next()).to.have.members(['e1/rx', 'a1', `a${f}`])
        a.rmdir(ROOT_INO, 'rx')
        expect(await next()).to.have.members(['e1/rx', 'a1', `a${rx}`])

        // b's own changes, and a change that failed, say nothing to b.
        b.mknod(ROOT_INO, 'own', FILE)
        b.setattr(f, {mode: 0o644})
        expect(codeOf(() => a.mknod(ROOT_INO, 'own', FILE))).to.equal('EEXIST')
        expect(await next()).to.have.members([])
      } finally {
        await stop()
        b.close()
        a.close()
      }
    })
  })
})
