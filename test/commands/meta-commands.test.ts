/**
 * stats, dump (listing, --json, --archive), init --from and gc on a volume shared through
 * PostgreSQL (`--meta URL`, issue 20), against a real server (test/helpers/pg.ts): a tree goes
 * from an image to a shared volume and back through archives and comes back the same, and the
 * JSON has the image's keys.
 */
import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

import {S_IFMT, S_IFREG} from '../../src/storage/format.js'
import {PgVolume} from '../../src/storage/pg/volume.js'
import {ROOT_INO} from '../../src/storage/types.js'
import {RUN_JS, lines, runCli, stackLines, tempDir} from '../helpers/cli.js'
import {useSchemas} from '../helpers/pg.js'
import {type NodeSnapshot, buildFixture, snapshot, snapshotVolume} from '../unit/inspect/fixture.js'

/**
 * A snapshot that does not depend on the order of a directory's entries (an image lists them
 * newest first, a shared volume in name order): entries and xattrs sorted, and each inode's
 * link group named by the least of its paths. A directory's size is left out: an image gives its
 * number of entries, a shared volume 0 (both are what st_size of a directory may be).
 */
function normalised(snap: Map<string, NodeSnapshot>): Record<string, NodeSnapshot> {
  const group = new Map<string, string>()
  for (const [key, node] of snap) {
    const least = group.get(node.linkGroup)
    if (least === undefined || key < least) group.set(node.linkGroup, key)
  }

  const out: Record<string, NodeSnapshot> = {}
  for (const key of [...snap.keys()].sort()) {
    const node = snap.get(key)!
    const entries = node.entries === undefined ? {} : {entries: [...node.entries].sort(), size: 0}
    out[key] = {...node, linkGroup: group.get(node.linkGroup)!, xattrs: [...node.xattrs].sort(), ...entries}
  }

  return out
}

function sharedSnapshot(url: string): Record<string, NodeSnapshot> {
  const v = PgVolume.open(url, {readOnly: true})
  try {
    return normalised(snapshotVolume(v))
  } finally {
    v.close()
  }
}

describe('razorfs stats, dump, init --from and gc with --meta', function () {
  this.timeout(300_000)
  const fresh = useSchemas()
  const tmp = tempDir('razorfs-meta-cmds-')
  const image = path.join(tmp.dir, 'image')
  let url: string
  after(() => tmp.remove())

  before(() => {
    buildFixture(image)
    url = fresh()
    const archive = path.join(tmp.dir, 'image.tar')
    const dumped = runCli(['dump', '--archive', archive, '--data-dir', image])
    expect(dumped.status, dumped.stderr).to.equal(0)
    const r = runCli(['init', '--meta', url, '--from', archive])
    expect(r.status, r.stderr).to.equal(0)
    expect(r.stderr).to.equal('')
    expect(r.stdout).to.match(/^Created razorfs volume [0-9a-f-]{36}\n {2}meta {4}.*\n {2}schema .*\n {2}from .*image\.tar: \d+ members: .* 3 hard links/)
  })

  it('init --from ARCHIVE --meta fills the volume with the tree: bytes, modes, owners, ns times, links, xattrs, odd names', () => {
    expect(sharedSnapshot(url)).to.deep.equal(normalised(snapshot(image)))
  })

  it('dump --archive --meta gives back the same tree, to an image and to another shared volume', () => {
    const archive = path.join(tmp.dir, 'shared.tar')
    const made = runCli(['dump', '--meta', url, '--archive', archive])
    expect(made.status, made.stderr).to.equal(0)
    expect(made.stderr).to.equal('')
    expect(made.stdout).to.match(/^wrote \d+ members \(.* 3 hard links.*\) to .*shared\.tar, \d+ bytes\n$/)

    const copy = path.join(tmp.dir, 'copy')
    const back = runCli(['init', '--from', archive, '--data-dir', copy])
    expect(back.status, back.stderr).to.equal(0)
    expect(normalised(snapshot(copy))).to.deep.equal(normalised(snapshot(image)))

    const other = fresh()
    const json = runCli(['init', '--meta', other, '--from', archive, '--json'])
    expect(json.status, json.stderr).to.equal(0)
    const info = JSON.parse(json.stdout) as Record<string, unknown>
    const local = JSON.parse(runCli(['init', '--from', archive, '--json', '--data-dir', path.join(tmp.dir, 'copy2')]).stdout) as Record<string, unknown>
    expect(Object.keys(info)).to.include.members(Object.keys(local))
    expect(info).to.include({dir: null, recovery: null, files: null, readOnly: false})
    expect(info.restored).to.deep.equal({...(local.restored as object), archive: fs.realpathSync(archive)})
    expect(sharedSnapshot(other)).to.deep.equal(normalised(snapshot(image)))

    // From standard input: dump --archive - | init --from - --meta.
    const third = fresh()
    const fromPipe = spawnSync(
      'bash',
      [
        '-c',
        `set -o pipefail; node ${JSON.stringify(RUN_JS)} dump --archive - --data-dir "$1" | node ${JSON.stringify(RUN_JS)} init --from - --meta "$2"`,
        '-',
        image,
        third,
      ],
      {encoding: 'utf8'},
    )
    expect(fromPipe.status, fromPipe.stderr).to.equal(0)
    expect(fromPipe.stdout).to.match(/\n {2}from -: \d+ members/)
    expect(sharedSnapshot(third)).to.deep.equal(normalised(snapshot(image)))

    // An archive of a subtree, and through a pipe.
    const subCopy = path.join(tmp.dir, 'special')
    const piped = spawnSync(
      'bash',
      [
        '-c',
        `set -o pipefail; node ${JSON.stringify(RUN_JS)} dump /special --meta "$1" --archive - | node ${JSON.stringify(RUN_JS)} init --from - --data-dir "$2"`,
        '-',
        url,
        subCopy,
      ],
      {encoding: 'utf8'},
    )
    expect(piped.status, piped.stderr).to.equal(0)
    expect(piped.stderr).to.match(/^wrote \d+ members/)
    const names = Object.keys(normalised(snapshot(subCopy))).map(k => Buffer.from(k, 'hex').toString())
    expect(names).to.include.members(['/', '/fifo', '/null', '/nvme', '/socket'])
  })

  it("dump --meta lists the tree with the image listing's lines, in name order", () => {
    const shared = runCli(['dump', '--meta', url])
    expect(shared.status, shared.stderr).to.equal(0)
    expect(shared.stderr).to.equal('')
    const local = runCli(['dump', '--data-dir', image])
    // Inode numbers differ, the image lists newest first, and a directory's size is its entries
    // there (0 here): compare the lines without these, sorted.
    const strip = (text: string): string[] =>
      text
        .split('\n')
        .map(l => l.replace(/^ {0,9}\d+ /, '').replace(/^(d\S{9} +\d+ +\d+ +\d+ +)\d+/, '$1-'))
        .sort()
    expect(strip(shared.stdout)).to.deep.equal(strip(local.stdout))
    expect(shared.stdout).to.match(/^\/:\n {5}inode mode/)
    expect(shared.stdout).to.include('xattr user.text="a value with spaces"')

    const sub = runCli(['dump', '/special', '--meta', url])
    expect(sub.status, sub.stderr).to.equal(0)
    expect(sub.stdout).to.match(/^\/special:\n/)
    expect(sub.stdout).to.match(/^ +\d+ crw-rw-rw- +1 +0 +0 +1, 3 .* null$/m)
  })

  it("dump --json --meta: the image's keys, null where a shared volume has no such field", () => {
    const shared = lines(runCli(['dump', '--json', '--meta', url]).stdout).map(l => JSON.parse(l) as Record<string, unknown>)
    const local = lines(runCli(['dump', '--json', '--data-dir', image]).stdout).map(l => JSON.parse(l) as Record<string, unknown>)
    expect(shared).to.have.length(local.length)
    const byPath = new Map(local.map(o => [String(o.path ?? o.pathBase64), o]))
    for (const o of shared) {
      const mine = byPath.get(String(o.path ?? o.pathBase64))
      expect(mine, String(o.path)).to.not.equal(undefined)
      expect(Object.keys(o).sort(), String(o.path)).to.deep.equal(Object.keys(mine!).sort())
      for (const key of ['slot', 'gen', 'flags', 'dataId', 'xattr', 'target', 'dirHead', 'link', 'dirent']) expect(o[key], key).to.equal(null)
      if (o.type !== 'dir') expect(o.size, String(o.path)).to.equal(mine!.size)
      for (const key of ['type', 'modeString', 'mode', 'uid', 'gid', 'rdev', 'mtimeSec', 'mtimeNsec', 'ctimeSec', 'ctimeNsec', 'depth', 'symlink', 'xattrs']) {
        expect(o[key], `${String(o.path)}: ${key}`).to.deep.equal(mine![key])
      }
    }
  })

  it("stats --meta: the figures of the volume, the image's JSON keys (null where they do not apply)", () => {
    const r = runCli(['stats', '--meta', url])
    expect(r.status, r.stderr).to.equal(0)
    expect(r.stdout).to.match(/^razorfs volume [0-9a-f-]{36} \(format \d+\)\nmeta /)
    expect(r.stdout).to.match(/regular files\W+14\W/)

    const shared = JSON.parse(runCli(['stats', '--json', '--meta', url]).stdout) as Record<string, Record<string, unknown>>
    const local = JSON.parse(runCli(['stats', '--json', '--data-dir', image]).stdout) as Record<string, Record<string, unknown>>
    expect(Object.keys(shared)).to.include.members(Object.keys(local))
    for (const key of ['inodes', 'bytes', 'names']) expect(Object.keys(shared[key]).sort(), key).to.deep.equal(Object.keys(local[key]).sort())
    for (const key of ['used', 'files', 'directories', 'symlinks', 'fifos', 'sockets', 'charDevices', 'blockDevices', 'orphans']) {
      expect(shared.inodes[key], key).to.equal(local.inodes[key])
    }

    expect(shared.inodes.capacity).to.equal(null)
    expect(shared.bytes.apparent).to.equal(local.bytes.apparent)
    expect(shared.names.entries).to.equal(local.names.entries)
    for (const key of ['dataDir', 'reclaimable', 'log', 'checkpoint', 'clean']) expect(shared[key], key).to.equal(null)
    expect(shared.live).to.deep.include({locked: false, sessions: 0})

    // A session of another client shows as live.
    const other = PgVolume.open(url)
    try {
      const live = JSON.parse(runCli(['stats', '--json', '--meta', url]).stdout) as {live: {locked: boolean; sessions: number}}
      expect(live.live).to.deep.include({locked: true, sessions: 1})
    } finally {
      other.close()
    }
  })

  it('gc --meta says in one line that there is nothing to compact, and changes nothing', () => {
    const before = sharedSnapshot(url)
    const r = runCli(['gc', '--meta', url])
    expect(r.status, r.stderr).to.equal(0)
    expect(lines(r.stdout)).to.have.length(1)
    expect(r.stdout).to.match(/^razorfs: gc: nothing to compact on PostgreSQL /)
    const json = JSON.parse(runCli(['gc', '--meta', url, '--json']).stdout) as {unchanged: boolean}
    expect(json.unchanged).to.equal(true)
    expect(sharedSnapshot(url)).to.deep.equal(before)
  })

  it('a file written through the volume reads back from a shared archive', () => {
    const v = PgVolume.open(url)
    const data = Buffer.alloc(3 * 1024 * 1024 + 17, 7)
    data.write('start', 0)
    try {
      const ino = v.mknod(ROOT_INO, 'bigfile', {mode: S_IFREG | 0o600, uid: 0, gid: 0}).ino
      v.write(ino, data, 0)
    } finally {
      v.close()
    }

    const archive = path.join(tmp.dir, 'bigfile.tar')
    expect(runCli(['dump', '--meta', url, '--archive', archive]).status).to.equal(0)
    const copy = path.join(tmp.dir, 'bigfile')
    expect(runCli(['init', '--from', archive, '--data-dir', copy]).status).to.equal(0)
    expect(normalised(snapshot(copy))).to.deep.equal(sharedSnapshot(url))
    const node = sharedSnapshot(url)[Buffer.from('/bigfile').toString('hex')]
    expect(node.mode & S_IFMT).to.equal(S_IFREG)
    expect(node.size).to.equal(data.length)
  })

  it('fails with one line: no volume, bad URL, unreachable, a damaged archive, --headers', () => {
    const refused = (args: string[], text: RegExp, status = 1, input?: Buffer): void => {
      const r = runCli(args, {}, input)
      expect(r.status, r.stderr).to.equal(status)
      expect(lines(r.stderr), r.stderr).to.have.length(1)
      expect(r.stderr.trim()).to.match(text)
      expect(stackLines(r.stderr)).to.deep.equal([])
    }

    const empty = fresh()
    for (const cmd of [['stats'], ['dump'], ['dump', '--archive', path.join(tmp.dir, 'x.tar')], ['gc']]) {
      refused([...cmd, '--meta', empty], /^razorfs: .*no razorfs volume/)
      refused([...cmd, '--meta', 'mysql://db/files'], /not a PostgreSQL URL/, 16)
      refused([...cmd, '--meta', 'postgresql:///postgres?host=/nonexistent-razorfs-dir'], /PostgreSQL server unreachable/)
    }

    refused(['dump', '--headers', '--meta', url], /--headers: a volume on PostgreSQL has no image files/, 16)
    refused(['dump', '/nope', '--meta', url], /no such file or directory in the volume: \/nope/)
    refused(['stats', '--meta', url, '--data-dir', tmp.dir], /cannot also be provided/, 16)

    const notTar = path.join(tmp.dir, 'not.tar')
    fs.writeFileSync(notTar, 'just text\n'.repeat(100))
    const blank = fresh()
    refused(['init', '--meta', blank, '--from', notTar], /not\.tar: not a tar archive: .*; no volume was made$/)
    refused(['stats', '--meta', blank], /no razorfs volume/)

    const cut = path.join(tmp.dir, 'cut.tar')
    expect(runCli(['dump', '--archive', cut, '--data-dir', image]).status).to.equal(0)
    fs.truncateSync(cut, 200_000)
    refused(
      ['init', '--meta', blank, '--from', cut],
      /cut\.tar: truncated: .*; the volume at .* is left partly filled \(razorfs init --force --meta makes it again\)$/,
    )
    refused(['init', '--meta', url, '--from', cut], /already exists/)
  })
})
