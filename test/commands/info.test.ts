/**
 * razorfs info, through bin/run.js, on a real mount: every field of the text and of --json
 * against stat(2) of the path on the mount and the content file on the host; hard links in two
 * directories, xattrs, a symlink, a directory, a sparse file, the root; the --data-dir form on
 * the live and on the unmounted image; and the errors (not on a razorfs mount, missing path,
 * relative in-image path).
 */
import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'

import type {InodeInfo} from '../../src/inspect/index.js'
import {lines, runCli, stackLines, tempDir} from '../helpers/cli.js'
import {mount, type Mounted, mountDirs} from '../helpers/mount.js'
import {Xattrs} from '../helpers/xattr.js'

const NS = 1_000_000_000n

function info(args: string[]): InodeInfo {
  const r = runCli(['info', '--json', ...args])
  expect(r.status, r.stderr).to.equal(0)
  expect(r.stderr).to.equal('')
  return JSON.parse(r.stdout) as InodeInfo
}

/** `razorfs info PATH` as text: its rows as [label, value], continuation rows under the last label. */
function infoText(args: string[]): Map<string, string[]> {
  const r = runCli(['info', ...args])
  expect(r.status, r.stderr).to.equal(0)
  const rows = new Map<string, string[]>()
  let label = ''
  for (const line of lines(r.stdout)) {
    const m = /^(\S*)\s+(.*)$/.exec(line)
    expect(m, line).to.not.equal(null)
    if (m![1] !== '') label = m![1]
    rows.set(label, [...(rows.get(label) ?? []), m![2]])
  }

  return rows
}

function expectOneLine(r: ReturnType<typeof runCli>, status: number, pattern: RegExp): void {
  expect(r.status, r.stderr).to.equal(status)
  expect(stackLines(r.stderr)).to.deep.equal([])
  expect(lines(r.stderr), r.stderr).to.have.length(1)
  expect(r.stderr.trimEnd(), r.stderr)
    .to.match(/^razorfs: /)
    .and.match(pattern)
  expect(r.stdout).to.equal('')
}

/** The fields every form of info shows, checked against lstat(2) of `file` on the mount. */
function expectMatchesStat(i: InodeInfo, file: string): void {
  const st = fs.lstatSync(file, {bigint: true})
  expect(BigInt(i.ino)).to.equal(st.ino)
  expect(i.slot).to.equal(Number(st.ino % 2n ** 32n))
  expect(i.gen).to.equal(Number(st.ino / 2n ** 32n))
  expect(BigInt(i.mode)).to.equal(st.mode)
  expect(BigInt(i.nlink)).to.equal(st.nlink)
  expect(BigInt(i.uid)).to.equal(st.uid)
  expect(BigInt(i.gid)).to.equal(st.gid)
  expect(BigInt(i.size)).to.equal(st.size)
  expect(BigInt(i.atimeSec) * NS + BigInt(i.atimeNsec)).to.equal(st.atimeNs)
  expect(BigInt(i.mtimeSec) * NS + BigInt(i.mtimeNsec)).to.equal(st.mtimeNs)
  expect(BigInt(i.ctimeSec) * NS + BigInt(i.ctimeNsec)).to.equal(st.ctimeNs)
}

describe('razorfs info', function () {
  this.timeout(120_000)
  let dirs: ReturnType<typeof mountDirs>
  let m: Mounted | undefined
  let mnt: string
  const xattrs = new Xattrs()

  before(async () => {
    dirs = mountDirs('razorfs-info-')
    mnt = dirs.mnt
    m = await mount({dataDir: dirs.dataDir, mnt})
    fs.mkdirSync(path.join(mnt, 'a'))
    fs.mkdirSync(path.join(mnt, 'b'))
    fs.writeFileSync(path.join(mnt, 'a', 'f'), 'hello, razorfs\n')
    fs.linkSync(path.join(mnt, 'a', 'f'), path.join(mnt, 'b', 'g'))
    await xattrs.set(path.join(mnt, 'a', 'f'), 'user.comment', Buffer.from('two words'))
    await xattrs.set(path.join(mnt, 'a', 'f'), 'user.bin', Buffer.from([0, 0xff, 1]))
    fs.symlinkSync('a/f', path.join(mnt, 's'))
    fs.mkdirSync(path.join(mnt, 'd'))
    for (const name of ['x', 'y', 'z']) fs.writeFileSync(path.join(mnt, 'd', name), '')
    fs.mkdirSync(path.join(mnt, 'd', 'sub'))
    // 1 byte at 8 MiB: 8 MiB + 1 apparent, one host block stored.
    const fd = fs.openSync(path.join(mnt, 'sparse'), 'w')
    fs.writeSync(fd, Buffer.from('!'), 0, 1, 8 << 20)
    fs.closeSync(fd)
    // A file never written, made through the server: a passthrough open (the default) gives a new
    // file its content file at once, for the kernel to write.
    await m.stop()
    m = await mount({dataDir: dirs.dataDir, mnt, options: 'nopassthrough'})
    fs.writeFileSync(path.join(mnt, 'empty'), '')
  })

  after(async () => {
    xattrs.close()
    await m?.stop()
    dirs.remove()
  })

  it('a file: inode, type, mode, links, owner, sizes, content file, times, xattrs and both names, as text', () => {
    const file = path.join(mnt, 'a', 'f')
    const st = fs.lstatSync(file, {bigint: true})
    const rows = infoText([file])
    const j = info([file])
    const content = fs.statSync(j.contentFile!.path)
    expect(rows.get('path')).to.deep.equal([file])
    expect(rows.get('image')![0]).to.equal(`${dirs.dataDir} (mounted on ${mnt}, in use by pid ${m!.proc.pid})`)
    expect(rows.get('inode')).to.deep.equal([`${st.ino} (slot ${st.ino % 2n ** 32n}, generation ${st.ino / 2n ** 32n})`])
    expect(rows.get('type')).to.deep.equal(['file, -rw-r--r-- (0644)'])
    expect(rows.get('links')).to.deep.equal(['2'])
    expect(rows.get('owner')).to.deep.equal([`uid ${st.uid}, gid ${st.gid}`])
    expect(rows.get('size')).to.deep.equal([`${st.size} bytes apparent, ${(content.blocks * 512).toLocaleString('en-US')} bytes stored on the host`])
    expect(rows.get('contents')).to.deep.equal([`${j.contentFile!.path} (${content.size} bytes long on the host, ${content.blocks} blocks of 512)`])
    const time = (label: string, ns: bigint): void => {
      const date = new Date(Number(ns / 1_000_000n)).toISOString().slice(0, 19).replace('T', ' ')
      expect(rows.get(label)).to.deep.equal([`${date}.${String(ns % NS).padStart(9, '0')} +0000 (${ns} ns)`])
    }

    time('atime', st.atimeNs)
    time('mtime', st.mtimeNs)
    time('ctime', st.ctimeNs)
    expect(rows.get('xattrs')).to.deep.equal(['user.comment = "two words" (9 bytes)', 'user.bin = 0x00ff01 (3 bytes)'])
    expect(rows.get('names')).to.deep.equal([path.join(mnt, 'a', 'f'), path.join(mnt, 'b', 'g')])
  })

  it('a file --json: FORMAT.md fields against stat(2), the content file on the host, xattrs, every name', () => {
    const file = path.join(mnt, 'b', 'g')
    const j = info([file])
    expectMatchesStat(j, file)
    expect(j).to.deep.include({path: file, pathOn: 'host', dataDir: dirs.dataDir, mountpoint: mnt, type: 'file', modeString: '-rw-r--r--', contents: 'file'})
    expect(j.live).to.deep.equal({locked: true, pid: m!.proc.pid})
    // The content file is data/<low byte in hex>/<dataId> in the data dir, and holds the bytes.
    expect(j.dataId).to.be.greaterThan(0)
    const contentPath = path.join(dirs.dataDir, 'data', (j.dataId & 0xff).toString(16).padStart(2, '0'), String(j.dataId))
    const host = fs.statSync(contentPath)
    expect(j.contentFile).to.deep.equal({path: contentPath, exists: true, hostSize: host.size, hostBlocks: host.blocks})
    expect(fs.readFileSync(contentPath, 'utf8')).to.equal('hello, razorfs\n')
    expect(j.bytes).to.deep.equal({apparent: 15, stored: host.blocks * 512})
    expect(j.xattrs).to.deep.equal([
      {name: 'user.comment', value: 'two words', size: 9},
      {name: 'user.bin', valueBase64: Buffer.from([0, 0xff, 1]).toString('base64'), size: 3},
    ])
    expect(j.xattr).to.be.greaterThan(0)
    const dirA = fs.statSync(path.join(mnt, 'a')).ino
    const dirB = fs.statSync(path.join(mnt, 'b')).ino
    expect(j.names.map(n => ({path: n.path, hostPath: n.hostPath, parentIno: n.parentIno}))).to.deep.equal([
      {path: '/a/f', hostPath: path.join(mnt, 'a', 'f'), parentIno: dirA},
      {path: '/b/g', hostPath: path.join(mnt, 'b', 'g'), parentIno: dirB},
    ])
    for (const n of j.names) expect(n.dirent).to.be.greaterThan(0)
    // Through either name, from a relative path too: the same inode.
    const rel = runCli(['info', '--json', path.relative(process.cwd(), path.join(mnt, 'a', 'f'))])
    expect((JSON.parse(rel.stdout) as InodeInfo).ino).to.equal(j.ino)
  })

  it('a sparse file: apparent size against the host blocks its content file takes', () => {
    const file = path.join(mnt, 'sparse')
    const j = info([file])
    expectMatchesStat(j, file)
    const host = fs.statSync(j.contentFile!.path)
    expect(host.size).to.equal((8 << 20) + 1)
    expect(j.bytes).to.deep.equal({apparent: (8 << 20) + 1, stored: host.blocks * 512})
    expect(j.bytes!.stored)
      .to.be.greaterThan(0)
      .and.lessThan(1 << 20)
  })

  it('a file never written: no content file, no xattrs', () => {
    const file = path.join(mnt, 'empty')
    const j = info([file])
    expectMatchesStat(j, file)
    expect(j).to.deep.include({dataId: 0, contents: 'none', bytes: {apparent: 0, stored: 0}, xattrs: []})
    expect(j.contentFile).to.equal(undefined)
    const rows = infoText([file])
    expect(rows.get('contents')).to.deep.equal(['none (no content file yet: the file reads as zeros)'])
    expect(rows.get('xattrs')).to.deep.equal(['(none)'])
  })

  it('a symlink: the link itself (not followed), its target and where it is kept', () => {
    const link = path.join(mnt, 's')
    const j = info([link])
    expectMatchesStat(j, link)
    expect(j).to.deep.include({type: 'symlink', symlink: fs.readlinkSync(link), size: 3, contents: 'strings.dat'})
    expect(j.names.map(n => n.hostPath)).to.deep.equal([link])
    const rows = infoText([link])
    expect(rows.get('type')).to.deep.equal(['symlink, lrwxrwxrwx (0777)'])
    expect(rows.get('target')).to.deep.equal(['a/f (3 bytes)'])
    expect(rows.get('contents')![0]).to.match(/^inline: the target, interned in strings\.dat \(unit \d+\)$/)
  })

  it('a directory: entries, links, its one name; the mountpoint is the root, inode 1', () => {
    const dir = path.join(mnt, 'd')
    const j = info([dir])
    expectMatchesStat(j, dir)
    expect(j).to.deep.include({type: 'dir', entries: fs.readdirSync(dir).length, contents: 'entries.dat', nlink: 3})
    expect(j.names.map(n => n.path)).to.deep.equal(['/d'])
    expect(infoText([dir]).get('entries')).to.deep.equal(['4'])

    const root = info([mnt])
    expectMatchesStat(root, mnt)
    expect(root).to.deep.include({ino: 1, type: 'dir', entries: fs.readdirSync(mnt).length})
    expect(root.names).to.deep.equal([{path: '/', hostPath: mnt, dirent: 0, parentIno: 1}])
  })

  it('--data-dir DIR /path: a path inside the live image', () => {
    const j = info(['--data-dir', dirs.dataDir, '/b/g'])
    expectMatchesStat(j, path.join(mnt, 'a', 'f'))
    expect(j).to.deep.include({path: '/b/g', pathOn: 'image', mountpoint: mnt})
    expect(j.names.map(n => n.path)).to.deep.equal(['/a/f', '/b/g'])
    expect(infoText(['--data-dir', dirs.dataDir, '/b/g']).get('names')).to.deep.equal(['/a/f', '/b/g'])
  })

  it('errors: not on a razorfs mount (32), a missing path (1), a bad in-image path (16, 1), no PATH (16)', () => {
    const tmp = tempDir()
    try {
      expectOneLine(runCli(['info', tmp.dir]), 32, new RegExp(`^razorfs: ${tmp.dir}: not on a razorfs mount \\(it is on /\\S*, type \\S+\\)$`))
      const json = runCli(['info', '--json', tmp.dir])
      expect(json.status).to.equal(32)
      expect(JSON.parse(json.stdout).error.message).to.match(/not on a razorfs mount/)
    } finally {
      tmp.remove()
    }

    const missing = path.join(mnt, 'a', 'nope')
    expectOneLine(runCli(['info', missing]), 1, new RegExp(`^razorfs: ${missing}: no such file or directory$`))
    expectOneLine(runCli(['info', '/nonexistent/razorfs-info']), 1, /^razorfs: \/nonexistent\/razorfs-info: no such file or directory$/)
    expectOneLine(runCli(['info', '--data-dir', dirs.dataDir, 'a/f']), 16, /a\/f: with --data-dir, PATH is a path inside the image and must start with \//)
    expectOneLine(runCli(['info', '--data-dir', dirs.dataDir, '/a/nope']), 1, /no such file or directory in the image: \/a\/nope$/)
    // A host path given with --data-dir: the hint says how PATH is read.
    expectOneLine(runCli(['info', '--data-dir', dirs.dataDir, path.join(mnt, 'a', 'f')]), 1, /with --data-dir, PATH is a path inside the image/)
    expectOneLine(runCli(['info']), 16, /missing 1 required arg/)
    expectOneLine(runCli(['info', '']), 16, /PATH is an empty string/)
  })

  it('--data-dir DIR /path on the unmounted image: the same inode, its names in the image', async () => {
    const before = info([path.join(mnt, 'a', 'f')])
    await m!.stop()
    m = undefined
    const j = info(['--data-dir', dirs.dataDir, '/a/f'])
    const {live: _l, mountpoint: _m, path: _p, pathOn: _o, names: _n, ...same} = before
    expect(j).to.deep.include(same)
    expect(j).to.deep.include({mountpoint: null, live: {locked: false, pid: null}, pathOn: 'image'})
    expect(j.names.map(n => n.path)).to.deep.equal(['/a/f', '/b/g'])
    expect(j.names.every(n => n.hostPath === undefined)).to.equal(true)
    const rows = infoText(['--data-dir', dirs.dataDir, '/a/f'])
    expect(rows.get('image')).to.deep.equal([`${dirs.dataDir} (not mounted)`])
    expect(rows.get('names')).to.deep.equal(['/a/f', '/b/g'])
    // The empty mountpoint is no longer on a razorfs mount.
    expectOneLine(runCli(['info', mnt]), 32, /not on a razorfs mount/)
  })
})

describe('razorfs info (fuse-native: st_ino is the slot)', function () {
  this.timeout(120_000)
  let dirs: ReturnType<typeof mountDirs>
  let m: Mounted

  before(async () => {
    dirs = mountDirs('razorfs-info-native-')
    m = await mount({dataDir: dirs.dataDir, mnt: dirs.mnt, extraArgs: ['--binding', 'fuse-native']})
  })

  after(async () => {
    await m.stop()
    dirs.remove()
  })

  it('finds the inode of a reused slot (generation 1) from its 32-bit st_ino', () => {
    // Free a slot and reuse it: the new inode's number is slot + 2^32, which fuse-native truncates.
    fs.writeFileSync(path.join(dirs.mnt, 'old'), 'x')
    fs.unlinkSync(path.join(dirs.mnt, 'old'))
    fs.writeFileSync(path.join(dirs.mnt, 'new'), 'new contents')
    const file = path.join(dirs.mnt, 'new')
    const j = info([file])
    expect(j.gen).to.equal(1)
    expect(j.slot).to.equal(fs.statSync(file).ino)
    expect(j.ino).to.equal(j.slot + 2 ** 32)
    expect(j).to.deep.include({type: 'file', size: 12})
    expect(fs.readFileSync(j.contentFile!.path, 'utf8')).to.equal('new contents')
    expect(j.names.map(n => n.hostPath)).to.deep.equal([file])
  })
})
