/**
 * fsck of a volume shared through PostgreSQL (runSharedFsck, `fsck --meta`), on a real server
 * (test/helpers/pg.ts): each problem made by changing rows with SQL, found by -n (changing
 * nothing), repaired by -y, and then the volume checks clean and its files read back; repairs
 * refused while a session is live, and a session refused while fsck repairs. Every row of passes
 * 8 and 9 is raised (the image's cases cover the others).
 */
import {expect} from 'chai'
import pg from 'pg'

import {type FsckMode} from '../../../src/fsck/context.js'
import {PROBLEMS} from '../../../src/fsck/problems.js'
import {runSharedFsck, type SharedFsckReport} from '../../../src/fsck/shared/run.js'
import {ImageError} from '../../../src/storage/errors.js'
import {REPAIR_LOCK} from '../../../src/storage/pg/schema.js'
import {parsePgUrl} from '../../../src/storage/pg/url.js'
import {PgVolume} from '../../../src/storage/pg/volume.js'
import {ROOT_INO} from '../../../src/storage/types.js'
import {sql, useSchemas} from '../../helpers/pg.js'

const FILE = {mode: 0o100644, uid: 0, gid: 0}
const DIR = {mode: 0o040755, uid: 0, gid: 0}

/** The tree every case starts from: /a ("hello", also /d/h), /d/e/f ("deep"), /k/, /s -> a. */
interface Tree {
  a: number
  d: number
  e: number
  f: number
  k: number
  s: number
}

function build(url: string): Tree {
  const v = PgVolume.create(url)
  try {
    const a = v.mknod(ROOT_INO, 'a', FILE).ino
    v.write(a, Buffer.from('hello'), 0)
    const d = v.mknod(ROOT_INO, 'd', DIR).ino
    const e = v.mknod(d, 'e', DIR).ino
    const f = v.mknod(e, 'f', FILE).ino
    v.write(f, Buffer.from('deep'), 0)
    const k = v.mknod(ROOT_INO, 'k', DIR).ino
    const s = v.mknod(ROOT_INO, 's', {...FILE, mode: 0o120777, target: 'a'}).ino
    v.link(a, d, 'h')
    return {a, d, e, f, k, s}
  } finally {
    v.close()
  }
}

const fsck = (url: string, mode: FsckMode, force = true): Promise<SharedFsckReport> => runSharedFsck({url, mode, force})
const ids = (r: SharedFsckReport): string[] => r.problems.map(p => p.id)

/** Read a file of the volume by its path. */
function readPath(url: string, path: string): string {
  const v = PgVolume.open(url, {readOnly: true})
  try {
    let ino = ROOT_INO
    for (const part of path.split('/').filter(p => p !== '')) ino = v.lookup(ino, part)
    const buf = Buffer.alloc(v.getattr(ino).size)
    v.read(ino, buf, 0)
    return buf.toString()
  } finally {
    v.close()
  }
}

function names(url: string, path: string): string[] {
  const v = PgVolume.open(url, {readOnly: true})
  try {
    let ino = ROOT_INO
    for (const part of path.split('/').filter(p => p !== '')) ino = v.lookup(ino, part)
    return [...v.readdir(ino)].map(e => e.name.toString())
  } finally {
    v.close()
  }
}

/** A snapshot of every table, to show -n changed nothing. */
async function tables(url: string): Promise<string> {
  const out: unknown[] = []
  for (const t of ['inodes', 'entries', 'blocks', 'xattrs', 'sessions', 'holds'])
    out.push((await sql(url, `SELECT * FROM ${t} ORDER BY 1, 2`)).rows.map(r => JSON.stringify(r)))
  out.push((await sql(url, 'SELECT last_value, is_called FROM ino_seq')).rows)
  return JSON.stringify(out)
}

/** -n finds `want` (exit 4) and changes nothing; -y repairs them and `also` (what the repairs lead to, exit 1); then -n is clean. */
async function roundTrip(url: string, want: string[], also: string[] = []): Promise<SharedFsckReport> {
  const before = await tables(url)
  const dry = await fsck(url, 'no')
  expect(dry.exitCode, dry.error ?? ids(dry).join(', ')).to.equal(4)
  expect(ids(dry)).to.include.members(want)
  expect(dry.problems.every(p => !p.fixed)).to.equal(true)
  expect(await tables(url), '-n changed nothing').to.equal(before)
  const yes = await fsck(url, 'yes')
  expect(yes.exitCode, yes.error ?? yes.problems.map(p => p.message).join(' | ')).to.equal(1)
  expect(ids(yes)).to.include.members([...want, ...also])
  expect(yes.problems.every(p => p.fixed)).to.equal(true)
  const again = await fsck(url, 'no')
  expect(again.exitCode, again.problems.map(p => p.message).join(' | ')).to.equal(0)
  expect(again.clean).to.equal(true)
  return yes
}

describe('fsck --meta: a volume shared through PostgreSQL', function () {
  this.timeout(120_000)
  const fresh = useSchemas()
  const raised = new Set<string>()
  const note = (r: SharedFsckReport): void => void ids(r).forEach(id => raised.add(id))

  it('reports a clean volume clean, without -f after pass 8 only, with -v the pass headers', async () => {
    const url = fresh()
    build(url)
    const lines: string[] = []
    const r = await runSharedFsck({url, mode: 'no', force: true, verbose: true, out: l => lines.push(l)})
    expect(r).to.include({clean: true, checked: 'full', exitCode: 0, dir: null})
    expect(r.counts).to.include({inodes: 7, directories: 4, regularFiles: 2, symlinks: 1, entries: 7, names: null, contentFiles: 2})
    expect(lines).to.include.members(['Pass 8: checking the sessions and the inode sequence of the shared volume', 'razorfs: clean, 7 inodes, 7 entries'])
    expect(lines).to.include('Pass 9: checking the inodes, entries and blocks of the shared volume')
    expect(await fsck(url, 'no', false)).to.include({clean: true, checked: 'headers', exitCode: 0})
  })

  it('finds and repairs counts, fields, blocks, orphans, expired sessions, the sequence, bad entries', async () => {
    const url = fresh()
    const t = build(url)
    await sql(
      url,
      `UPDATE inodes SET nlink = 7 WHERE ino = ${t.a};
       UPDATE inodes SET size = 3 WHERE ino = ${t.a};
       UPDATE inodes SET size = 99 WHERE ino = ${t.s};
       UPDATE inodes SET size = 5 WHERE ino = ${t.k};
       UPDATE inodes SET parent = 1 WHERE ino = ${t.e};
       UPDATE inodes SET parent = 1, target = '\\x01' WHERE ino = ${t.f};
       INSERT INTO blocks VALUES (${t.k}, 0, '\\x0102');
       UPDATE blocks SET data = data || decode(repeat('00', 65536), 'hex') WHERE ino = ${t.f};
       INSERT INTO entries VALUES (${t.a}, 'x', ${t.s});
       INSERT INTO inodes VALUES (100, ${0o100600}, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, NULL);
       INSERT INTO entries VALUES (1, '\\x2e2e', 100);
       INSERT INTO inodes VALUES (101, ${0o100600}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, NULL);
       INSERT INTO inodes VALUES (102, ${0o100600}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, NULL);
       INSERT INTO sessions (id, backend_pid, host, client_pid, read_only, lease_ms, heartbeat) VALUES (900, 0, 'gone', 4242, false, 0, now() - interval '1 hour');
       INSERT INTO holds VALUES (900, 102, 1);
       SELECT setval('ino_seq', 50);`,
    )
    const yes = await roundTrip(
      url,
      [
        'PR_8_EXPIRED_SESSION',
        'PR_8_INO_SEQUENCE',
        'PR_9_ENTRY_NOT_IN_DIR',
        'PR_2_BAD_NAME',
        'PR_3_BAD_PARENT',
        'PR_1_BAD_FIELD',
        'PR_1_SYMLINK_SIZE',
        'PR_4_BAD_NLINK',
        'PR_4_ORPHAN',
        'PR_9_BLOCKS_NOT_REGULAR',
        'PR_9_BLOCK_TOO_LONG',
        'PR_9_BLOCKS_PAST_SIZE',
      ],
      ['PR_3_NO_LPF', 'PR_3_UNATTACHED_INODE'],
    )
    note(yes)
    // Salvaged, not dropped: the bytes past the size, the file that had only a bad name.
    expect(readPath(url, '/a')).to.equal('hello')
    expect(readPath(url, '/d/e/f').slice(0, 4)).to.equal('deep')
    expect(names(url, '/lost+found')).to.deep.equal(['#100'])
    const left = await sql(url, 'SELECT (SELECT count(*) FROM sessions) AS s, (SELECT count(*) FROM inodes WHERE ino IN (101, 102)) AS i')
    expect(left.rows[0]).to.deep.equal({s: 0, i: 0})
    // The sequence hands out numbers past every inode again: a create works.
    const v = PgVolume.open(url)
    try {
      expect(v.mknod(ROOT_INO, 'new', FILE).ino).to.be.above(102)
    } finally {
      v.close()
    }
  })

  it('reconnects a cycle of directories to /lost+found, drops a second name of a directory, makes a file root a directory', async () => {
    const url = fresh()
    const t = build(url)
    await sql(url, `UPDATE entries SET parent = ${t.e} WHERE ino = ${t.d}; INSERT INTO entries VALUES (${t.d}, 'k2', ${t.k});`)
    note(await roundTrip(url, ['PR_3_UNCONNECTED_DIR', 'PR_9_DIR_MULTI_NAME', 'PR_4_BAD_NLINK'], ['PR_3_NO_LPF']))
    const top = names(url, '/lost+found')
    expect(top).to.have.length(1)
    expect(readPath(url, `/lost+found/${top[0]}/${top[0] === `#${t.e}` ? 'd/h' : 'e/f'}`)).to.equal(top[0] === `#${t.e}` ? 'hello' : 'deep')
    expect(names(url, '/').sort()).to.deep.equal(['a', 'k', 'lost+found', 's'])

    const other = fresh()
    build(other)
    await sql(other, `UPDATE inodes SET mode = ${0o100644} WHERE ino = 1`)
    note(await roundTrip(other, ['PR_1_NO_ROOT'], ['PR_3_UNATTACHED_INODE']))
    expect(readPath(other, '/d/h')).to.equal('hello')
  })

  it('-n reports an orphan held by an expired session, and without -f checks the rest when pass 8 finds something', async () => {
    const url = fresh()
    build(url)
    await sql(
      url,
      `INSERT INTO inodes VALUES (nextval('ino_seq'), ${0o100600}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, NULL);
       INSERT INTO sessions (id, backend_pid, host, client_pid, read_only, lease_ms, heartbeat) VALUES (900, 0, 'gone', 4242, false, 0, now() - interval '1 hour');
       INSERT INTO holds VALUES (900, currval('ino_seq'), 1);`,
    )
    // Both legitimate states (the next client's reaper ends them): reported, and exit 0.
    const dry = await fsck(url, 'no', false)
    expect(dry, dry.problems.map(p => p.message).join(' | ')).to.include({exitCode: 0, clean: false, checked: 'full'})
    expect(ids(dry)).to.deep.equal(['PR_8_EXPIRED_SESSION', 'PR_4_ORPHAN'])
    expect(dry.problems[0].message).to.match(/^Session 900 of gone \(pid 4242\) expired \d+ s ago, holding 1 inodes open/)
    const preen = await fsck(url, 'preen', false)
    expect(preen.exitCode).to.equal(1)
    expect(preen.problems.every(p => p.fixed)).to.equal(true)
    expect(await fsck(url, 'no')).to.include({exitCode: 0, clean: true})
  })

  it('refuses repairs while a session is live (exit 8, naming it), checks with -n; a session cannot start while fsck repairs', async () => {
    const url = fresh()
    const t = build(url)
    await sql(url, `UPDATE inodes SET nlink = 7 WHERE ino = ${t.a}`)
    const v = PgVolume.open(url)
    try {
      for (const mode of ['yes', 'preen'] as const) {
        const r = await fsck(url, mode)
        expect(r.exitCode).to.equal(8)
        expect(r.errorCode).to.equal('RZ_LOCKED')
        expect(r.error).to.match(/: in use by 1 live session \(\S+ pid \d+\); repairs need every client gone/)
        expect(r.problems).to.deep.equal([])
      }

      const dry = await fsck(url, 'no')
      expect(dry.exitCode).to.equal(4)
      expect(ids(dry)).to.deep.equal(['PR_4_BAD_NLINK'])
    } finally {
      v.close()
    }

    // fsck's lock, held: a mount cannot register its session until it is let go.
    const {config, schema} = parsePgUrl(url)
    const client = new pg.Client(config)
    await client.connect()
    try {
      await client.query(`SET search_path TO ${schema}`)
      await client.query(`SELECT pg_advisory_lock(${REPAIR_LOCK})`)
      let refused: unknown
      try {
        PgVolume.open(url).close()
      } catch (error) {
        refused = error
      }

      expect(refused).to.be.instanceOf(ImageError)
      expect((refused as Error).message).to.match(/razorfs fsck is repairing the volume; try again when it is done$/)
      const other = await fsck(url, 'yes')
      expect(other.error).to.match(/another razorfs fsck is repairing the volume$/)
    } finally {
      await client.end()
    }

    expect((await fsck(url, 'yes')).exitCode).to.equal(1)
    PgVolume.open(url).close()
  })

  it('raises every row of passes 8 and 9', () => {
    const shared = PROBLEMS.filter(p => p.code >= 0x08_0000 && !p.header).map(p => p.id)
    expect(shared.filter(id => !raised.has(id))).to.deep.equal([])
  })
})
