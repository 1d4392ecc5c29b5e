/**
 * razorfs dump (listing, --json, --headers), dump --archive and init --from, as child processes:
 * output and errors, the exact round trip of a tree with every file type, hard links, xattrs and
 * odd names, and that a live image (held read-write by another process) is not changed.
 */
import {expect} from 'chai'
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {fieldBytes} from '../../src/inspect/text.js'
import {Image, ROOT_INO} from '../../src/storage/index.js'
import {RUN_JS, hashTree, lines, runCli, stackLines, tempDir} from '../helpers/cli.js'
import {BIG_RDEV, LONG_NAME, NON_UTF8, buildFixture, snapshot} from '../unit/inspect/fixture.js'

const STORAGE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/storage/index.js')

/** A node child that opened the image read-write (the lock, a live WAL) and keeps it open. */
export async function holdOpen(dir: string): Promise<{child: ChildProcess; stop: () => Promise<void>}> {
  const script = `
    import {Image, ROOT_INO} from ${JSON.stringify(STORAGE)}
    const image = Image.open(${JSON.stringify(dir)})
    // Committed but not checkpointed: only the WAL has it.
    image.mknod(ROOT_INO, 'made by the live writer', {mode: 0o100644, uid: 0, gid: 0})
    process.stdout.write('ready\\n')
    setInterval(() => {}, 1000)
  `
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {stdio: ['ignore', 'pipe', 'inherit']})
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve())
    child.on('exit', code => reject(new Error(`the writer exited ${code}`)))
  })
  return {
    child,
    stop: async () => {
      child.kill('SIGKILL')
      if (child.exitCode === null && child.signalCode === null) await new Promise(resolve => child.on('exit', resolve))
    },
  }
}

function jsonLines(text: string): Array<Record<string, unknown>> {
  return lines(text).map(line => JSON.parse(line) as Record<string, unknown>)
}

describe('razorfs dump', () => {
  let tmp: ReturnType<typeof tempDir>
  let image: string

  before(() => {
    tmp = tempDir()
    image = path.join(tmp.dir, 'image')
    buildFixture(image)
  })
  after(() => tmp.remove())

  describe('listing', () => {
    it('lists the tree like ls -lR, with escaped names, symlink targets, devices and xattrs', () => {
      const r = runCli(['dump', '--data-dir', image])
      expect(r.status, r.stderr).to.equal(0)
      expect(r.stderr).to.equal('')
      const out = r.stdout
      expect(out.startsWith('/:\n')).to.equal(true)
      for (const dir of ['/odd\\ names:', '/special:', '/big:']) expect(out).to.include(`\n${dir}\n`)
      expect(out).to.match(/ -rw-r--r-- +3 +1000 +1000 +15 2017-07-14 02:40:00\.987654321 \+0000 plain\.txt\n/)
      expect(out).to.include(' new\\nline\n')
      expect(out).to.include(' with\\ space\n')
      expect(out).to.include(' n\\377\\376.\\200\n')
      expect(out).to.include(' ünïcödé\\ ✓\n')
      expect(out).to.include(' hard\\ n\\377\\376.\\200\n')
      expect(out).to.match(/ lrwxrwxrwx +1 +0 +0 +12 .* link -> \.\.\/plain\.txt\n/)
      expect(out).to.include(' odd\\ link -> target\\ n\\377\\376.\\200\n')
      expect(out).to.match(/ crw-rw-rw- +1 +0 +0 +1, 3 .* null\n/)
      expect(out).to.match(/ brw-rw---- +1 +0 +6 +259, 70000 .* nvme\n/)
      expect(out).to.match(/ prw-r----- +2 +5 +6 +0 .* fifo\n/)
      expect(out).to.match(/ srwxr-xr-x .* socket\n/)
      expect(out).to.match(/ -rwsr-xr-x +1 3000000000 3000000001 /)
      expect(out).to.match(/ drwxrwxrwt .* \.\n/)
      expect(out).to.include('xattr user.text="a value with spaces"')
      expect(out).to.include('xattr user.bin=0x000102fffe0a3d')
      expect(out).to.include(` ${LONG_NAME}\n`)
      expect(out).to.include(' 1969-01-01 00:00:00.000000005 +0000 before\\ 1970\n')
    })

    it('starts at PATH-IN-IMAGE or --inode N', () => {
      const sub = runCli(['dump', '/special', '--data-dir', image])
      expect(sub.status, sub.stderr).to.equal(0)
      expect(sub.stdout.startsWith('/special:\n')).to.equal(true)
      expect(sub.stdout).to.not.include(' plain.txt\n')
      const viaDots = runCli(['dump', '/big/../special/.', '--data-dir', image])
      expect(viaDots.stdout).to.equal(sub.stdout)

      const ino = JSON.parse(lines(runCli(['dump', '/special', '--json', '--data-dir', image]).stdout)[0]).ino as number
      const byIno = runCli(['dump', '--inode', String(ino), '--data-dir', image])
      expect(byIno.stdout).to.equal(sub.stdout)

      const file = runCli(['dump', '/plain.txt', '--data-dir', image])
      expect(file.status, file.stderr).to.equal(0)
      expect(lines(file.stdout)).to.have.length(4) // header, the line, two xattrs
      expect(lines(file.stdout)[1]).to.match(/ \/plain\.txt$/)
    })

    it('--json: one object per name, FORMAT.md field names, bytes exact (base64 when not UTF-8)', () => {
      const r = runCli(['dump', '--json', '--data-dir', image])
      expect(r.status, r.stderr).to.equal(0)
      const items = jsonLines(r.stdout)
      const snap = snapshot(image)
      expect(items).to.have.length(snap.size)
      const paths = new Set(items.map(i => fieldBytes(i, 'path')!.toString('hex')))
      expect([...paths].sort()).to.deep.equal([...snap.keys()].sort())
      const odd = items.find(i => fieldBytes(i, 'name')!.equals(NON_UTF8))!
      expect(odd.nameBase64).to.equal(NON_UTF8.toString('base64'))
      expect(odd.name).to.equal(undefined)
      expect(odd).to.include({type: 'file', modeString: '-rw-------', uid: 0, gid: 0, nlink: 1})
      const plain = items.find(i => i.path === '/plain.txt')!
      expect(plain).to.include({mtimeSec: 1_500_000_000, mtimeNsec: 987_654_321, atimeSec: 1_600_000_000, atimeNsec: 123_456_789, size: 15, nlink: 3})
      for (const field of ['ino', 'slot', 'gen', 'flags', 'mode', 'ctimeSec', 'parent', 'rdev', 'dataId', 'xattr', 'target', 'dirHead', 'link'])
        expect(plain).to.have.property(field)
      expect(plain.xattrs).to.deep.equal([
        {name: 'user.text', value: 'a value with spaces'},
        {name: 'user.bin', valueBase64: Buffer.from([0, 1, 2, 0xff, 0xfe, 0x0a, 0x3d]).toString('base64')},
      ])
      const oddLink = items.find(i => i.path === '/special/odd link')!
      expect(fieldBytes(oddLink, 'symlink')!.equals(Buffer.concat([Buffer.from('target '), NON_UTF8]))).to.equal(true)
      expect(items.find(i => i.path === '/special/nvme')!.rdev).to.equal(BIG_RDEV)
      const root = items[0]
      expect(root).to.include({path: '/', depth: 0, type: 'dir', ino: ROOT_INO})
    })

    it('--headers: each file header, control block, WAL header and recovery (text and JSON lines)', () => {
      const text = runCli(['dump', '--headers', '--data-dir', image])
      expect(text.status, text.stderr).to.equal(0)
      for (const name of ['nodes.dat', 'entries.dat', 'entries.idx', 'strings.dat', 'strings.idx', 'wal.log'])
        expect(text.stdout).to.include(`\n${name} (`.slice(name === 'nodes.dat' ? 1 : 0))
      for (const field of [
        'magic:',
        'formatVersion:',
        'recordSize:',
        'capacity:',
        'used:',
        'generation:',
        'checkpointLsn:',
        'uuid:',
        'createdAt:',
        'mountedAt:',
        'clean:',
        'reclaimable:',
        'checksumOk:',
        'highWater:',
        'startLsn:',
        'salt:',
        'wasClean:',
        'tornBytes:',
      ]) {
        expect(text.stdout).to.include(field)
      }

      expect(text.stdout).to.not.include('plain.txt')
      const json = jsonLines(runCli(['dump', '--headers', '--json', '--data-dir', image]).stdout)
      expect(json.map(j => j.kind)).to.deep.equal(['header', 'header', 'header', 'header', 'header', 'walHeader', 'recovery'])
      const nodes = json[0] as {file: string; fields: Record<string, unknown>; control: Record<string, unknown>}
      expect(nodes.file).to.equal('nodes.dat')
      expect(nodes.fields).to.include({magicText: 'RZND', recordSize: 128, clean: true, checksumOk: true, formatVersion: 1})
      expect(nodes.control.live).to.be.a('number')
      const withTree = jsonLines(runCli(['dump', '/big', '--headers', '--json', '--data-dir', image]).stdout)
      expect(withTree.filter(j => j.kind === 'inode').length).to.be.greaterThan(3)
    })

    it('fails with one line: missing path, stale inode, both PATH and --inode, no image', () => {
      const cases: Array<[string[], number, RegExp]> = [
        [['dump', '/nope/x'], 1, /^razorfs: no such file or directory in the image: \/nope$/],
        [['dump', '/plain.txt/x'], 1, /^razorfs: not a directory in the image: \/plain\.txt$/],
        [['dump', '--inode', String(2 ** 40 + 5)], 1, /^razorfs: no inode \d+ in the image/],
        [['dump', '/big', '--inode', '1'], 16, /^razorfs: give PATH-IN-IMAGE or --inode, not both/],
        [['dump', '--archive', 'x.tar', '--headers'], 16, /^razorfs: /],
      ]
      for (const [args, status, message] of cases) {
        const r = runCli([...args, '--data-dir', image])
        expect(r.status, args.join(' ')).to.equal(status)
        expect(r.stdout).to.equal('')
        expect(lines(r.stderr), args.join(' ')).to.have.length(1)
        expect(r.stderr.trim()).to.match(message)
        expect(stackLines(r.stderr)).to.deep.equal([])
      }

      const none = runCli(['dump', '--data-dir', path.join(tmp.dir, 'none')])
      expect(none.status).to.equal(1)
      expect(lines(none.stderr)).to.have.length(1)
      const json = runCli(['dump', '/nope', '--json', '--data-dir', image])
      expect(json.status).to.equal(1)
      expect(JSON.parse(json.stdout).error.message).to.match(/no such file or directory in the image/)
    })

    it('stops quietly when its reader goes away (dump | head)', () => {
      const r = spawnSync(
        'bash',
        ['-c', `set -o pipefail; node ${JSON.stringify(RUN_JS)} dump --json --data-dir ${JSON.stringify(image)} | head -c 100 >/dev/null`],
        {encoding: 'utf8'},
      )
      expect(r.status, r.stderr).to.equal(0)
      expect(r.stderr).to.equal('')
    })
  })

  describe('--archive and init --from', () => {
    it('round-trips the tree exactly: types, modes, owners, ns times, hard links, xattrs, odd names, contents, order', () => {
      const archive = path.join(tmp.dir, 'backup.tar')
      const made = runCli(['dump', '--archive', archive, '--data-dir', image])
      expect(made.status, made.stderr).to.equal(0)
      expect(made.stdout).to.match(/^wrote \d+ members \(.* hard links/)
      expect(made.stderr).to.equal('')

      const list = spawnSync('tar', ['tvf', archive, '--warning=no-unknown-keyword'], {encoding: 'latin1'})
      expect(list.status, list.stderr).to.equal(0)
      expect(list.stdout).to.include('./plain.txt')
      expect(list.stdout).to.match(/^h.* link to \.\/plain\.txt$/m)
      expect(list.stdout).to.match(/^c.* 1,3 .*\.\/special\/null$/m)

      const copy = path.join(tmp.dir, 'restored')
      const restored = runCli(['init', '--from', archive, '--data-dir', copy])
      expect(restored.status, restored.stderr).to.equal(0)
      expect(restored.stdout).to.match(/^Created razorfs image /)
      const before = snapshot(image)
      const after = snapshot(copy)
      expect([...after.keys()]).to.deep.equal([...before.keys()])
      for (const [key, node] of before) expect(after.get(key), Buffer.from(key, 'hex').toString()).to.deep.equal(node)

      // Holes stay holes: the sparse file takes far less than its size.
      const json = JSON.parse(runCli(['stats', '--json', '--data-dir', copy]).stdout) as {bytes: {apparent: number; stored: number}}
      expect(json.bytes.stored).to.be.lessThan(json.bytes.apparent - 4 * 1024 * 1024)
    })

    it('streams through a pipe: dump --archive - | init --from -', () => {
      const copy = path.join(tmp.dir, 'piped')
      const r = spawnSync(
        'bash',
        [
          '-c',
          `set -o pipefail; node ${JSON.stringify(RUN_JS)} dump --archive - --data-dir ${JSON.stringify(image)} | node ${JSON.stringify(RUN_JS)} init --from - --json --data-dir ${JSON.stringify(copy)}`,
        ],
        {encoding: 'utf8'},
      )
      expect(r.status, r.stderr).to.equal(0)
      expect(r.stderr).to.match(/^wrote \d+ members/)
      const info = JSON.parse(r.stdout) as {restored: {members: number; hardLinks: number}}
      expect(info.restored.hardLinks).to.equal(3)
      expect([...snapshot(copy)]).to.deep.equal([...snapshot(image)])
    })

    it('an archive of a subtree restores as the root of the new image', () => {
      const archive = path.join(tmp.dir, 'special.tar')
      expect(runCli(['dump', '/special', '--archive', archive, '--data-dir', image]).status).to.equal(0)
      const copy = path.join(tmp.dir, 'special-copy')
      expect(runCli(['init', '--from', archive, '--data-dir', copy]).status).to.equal(0)
      const names = [...snapshot(copy).keys()].map(k => Buffer.from(k, 'hex').toString())
      expect(names).to.include.members(['/', '/fifo', '/fifo again', '/null', '/nvme', '/socket', '/link', '/odd link'])
      expect(snapshot(copy).get(Buffer.from('/').toString('hex'))!.mode).to.equal(0o041777)
    })

    it('init --from refuses a missing or non-tar file before touching the data dir', () => {
      const existing = path.join(tmp.dir, 'existing')
      expect(runCli(['init', '--data-dir', existing]).status).to.equal(0)
      const hashes = hashTree(existing)
      const notTar = path.join(tmp.dir, 'not.tar')
      fs.writeFileSync(notTar, 'just text, not an archive\n'.repeat(100))
      const notTarMessage = /not\.tar: not a tar archive: no tar header at byte 0 \(header checksum mismatch\); the data dir .* was left as it was$/
      const missingMessage = /missing\.tar: cannot open the archive: no such file or directory; the data dir .* was left as it was$/
      for (const [from, message] of [
        [notTar, notTarMessage],
        [path.join(tmp.dir, 'missing.tar'), missingMessage],
      ] as const) {
        const r = runCli(['init', '--from', from, '--force', '--data-dir', existing])
        expect(r.status).to.equal(1)
        expect(lines(r.stderr)).to.have.length(1)
        expect(r.stderr.trim()).to.match(message)
        expect(hashTree(existing)).to.deep.equal(hashes)
      }

      const fresh = path.join(tmp.dir, 'fresh')
      expect(runCli(['init', '--from', notTar, '--data-dir', fresh]).status).to.equal(1)
      expect(fs.existsSync(fresh)).to.equal(false)
    })

    it('init --from reports a truncated archive in one line, with its offset, and creates nothing', () => {
      const archive = path.join(tmp.dir, 'cut.tar')
      expect(runCli(['dump', '--archive', archive, '--data-dir', image]).status).to.equal(0)
      fs.truncateSync(archive, 200_000)
      const r = runCli(['init', '--from', archive, '--data-dir', path.join(tmp.dir, 'cut')])
      expect(r.status).to.equal(1)
      expect(lines(r.stderr)).to.have.length(1)
      expect(r.stderr.trim()).to.match(
        /^razorfs: .*cut\.tar: truncated: the archive ends at byte 200000, in the data of member \d+ \(.*\); the data dir .*cut was not created$/,
      )
      expect(fs.existsSync(path.join(tmp.dir, 'cut'))).to.equal(false)
    })
  })

  describe('on a live image (held read-write by another process)', () => {
    it('dump, dump --json, --headers, --archive and stats see its committed changes and change nothing', async () => {
      const live = path.join(tmp.dir, 'live')
      buildFixture(live)
      const writer = await holdOpen(live)
      try {
        const before = hashTree(live)
        const listing = runCli(['dump', '--data-dir', live])
        expect(listing.status, listing.stderr).to.equal(0)
        expect(listing.stdout).to.include(' made\\ by\\ the\\ live\\ writer\n')
        expect(runCli(['dump', '--json', '--data-dir', live]).status).to.equal(0)
        const headers = runCli(['dump', '--headers', '--data-dir', live])
        expect(headers.status, headers.stderr).to.equal(0)
        expect(headers.stdout).to.match(/transactions: +[1-9]/)
        const archive = path.join(tmp.dir, 'live.tar')
        expect(runCli(['dump', '--archive', archive, '--data-dir', live]).status).to.equal(0)
        const stats = runCli(['stats', '--json', '--data-dir', live])
        expect(stats.status, stats.stderr).to.equal(0)
        const s = JSON.parse(stats.stdout) as {live: {locked: boolean; pid: number}; clean: boolean}
        expect(s.live).to.deep.equal({locked: true, pid: writer.child.pid})
        expect(s.clean).to.equal(false)
        expect(runCli(['stats', '--data-dir', live]).stdout).to.include(`live: in use by pid ${writer.child.pid}`)
        expect(hashTree(live)).to.deep.equal(before)

        const copy = path.join(tmp.dir, 'live-copy')
        expect(runCli(['init', '--from', archive, '--data-dir', copy]).status).to.equal(0)
        const restored = Image.open(copy, {readOnly: true})
        expect(restored.lookup(ROOT_INO, 'made by the live writer')).to.not.equal(0)
        restored.close()
      } finally {
        await writer.stop()
      }
    })
  })
})
