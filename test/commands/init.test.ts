import {expect} from 'chai'
import {spawn, spawnSync} from 'node:child_process'
import fs, {existsSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {FdWriter} from '../../src/inspect/output.js'
import {TYPE} from '../../src/inspect/tar/format.js'
import {TarWriter} from '../../src/inspect/tar/writer.js'
import {Image, ROOT_INO} from '../../src/storage/index.js'
import {RUN_JS, lines, runCli, stackLines, tempDir} from '../helpers/cli.js'
import {snapshot} from '../unit/migrate/helpers.js'

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
    expect(lines(result.stderr)).to.deep.equal([`razorfs: ${dataDir}: exists but is not a directory; the data dir must be a directory`])
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

/** The files of an image as it was put in place: the data dir holds these and nothing else. */
const IMAGE_NAMES = ['data', 'entries.dat', 'entries.idx', 'lock', 'nodes.dat', 'strings.dat', 'strings.idx', 'wal.log']

/**
 * A razorfs archive of five members and where they start: `./`, `./a.txt`, `./big.bin` (200,000
 * bytes), `./d/`, `./d/e.txt`. Each member is a pax header (two blocks), a ustar header, its data.
 */
function writeGoodArchive(file: string): {starts: number[]; bigData: number} {
  const fd = fs.openSync(file, 'w')
  const out = new FdWriter(fd)
  const tar = new TarWriter(out)
  const starts: number[] = []
  let bigData = 0
  const big = Buffer.alloc(200_000)
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251
  for (const [name, type, data] of [
    ['./', TYPE.DIR, undefined],
    ['./a.txt', TYPE.FILE, Buffer.from('hello world\n')],
    ['./big.bin', TYPE.FILE, big],
    ['./d/', TYPE.DIR, undefined],
    ['./d/e.txt', TYPE.FILE, Buffer.from('five\n')],
  ] as const) {
    starts.push(out.written)
    tar.add({
      path: Buffer.from(name),
      type,
      mode: type === TYPE.DIR ? 0o755 : 0o644,
      uid: 0,
      gid: 0,
      size: data?.length ?? 0,
      mtime: {sec: 1_700_000_000, nsec: 1},
      devmajor: 0,
      devminor: 0,
      xattrs: [],
      vendor: {},
    })
    if (name === './big.bin') bigData = out.written
    if (data !== undefined) tar.data(data)
  }

  tar.finish()
  fs.closeSync(fd)
  return {starts, bigData}
}

describe('razorfs init --from: a bad archive changes nothing', () => {
  let tmp: ReturnType<typeof tempDir>
  let good: string
  let layout: ReturnType<typeof writeGoodArchive>

  before(() => {
    tmp = tempDir()
    good = join(tmp.dir, 'good.tar')
    layout = writeGoodArchive(good)
  })
  after(() => tmp.remove())

  /**
   * The image's files, byte for byte (not the lock, whose pid every lock holder rewrites, nor a
   * staging dir), after a check that the image opens and holds what the good archive holds.
   */
  const state = (dir: string): Record<string, string> => {
    const image = Image.open(dir, {readOnly: true})
    try {
      expect(image.getattr(image.lookup(ROOT_INO, 'big.bin')).size).to.equal(200_000)
    } finally {
      image.close()
    }

    return Object.fromEntries(Object.entries(snapshot(dir)).filter(([name]) => name !== '/lock' && !name.startsWith('/.restore-staging-')))
  }

  /** A copy of the good archive, cut to `bytes` or changed by `edit`. */
  const variant = (name: string, bytes: number, edit?: (b: Buffer) => void): string => {
    const data = Buffer.from(fs.readFileSync(good).subarray(0, bytes))
    edit?.(data)
    fs.writeFileSync(join(tmp.dir, name), data)
    return join(tmp.dir, name)
  }

  interface Case {
    what: string
    /** The archive (undefined: the `cut` bytes of the good one on standard input). */
    archive: () => string | undefined
    /** What the line says after "razorfs: <archive>: " and before "; the data dir ...". */
    problem: () => string
    stdin?: () => Buffer
  }

  const cases: Case[] = [
    {
      what: "truncated in the middle of a member's data",
      archive: () => variant('cut-data.tar', layout.bigData + 70_000),
      problem: () => `truncated: the archive ends at byte ${layout.bigData + 70_000}, in the data of member 3 (./big.bin)`,
    },
    {
      what: 'truncated in a header',
      archive: () => variant('cut-header.tar', layout.starts[3] + 1024 + 100),
      problem: () =>
        `truncated: the archive ends at byte ${layout.starts[3] + 1124}, in the header of member 4, which starts at byte ${layout.starts[3] + 1024}`,
    },
    {
      what: "truncated at a member's end (no end-of-archive marker)",
      archive: () => variant('cut-end.tar', layout.starts[4]),
      problem: () => `truncated: the archive ends at byte ${layout.starts[4]}, after member 4 (./d/), without the end-of-archive marker`,
    },
    {
      what: 'a bad header checksum',
      archive: () =>
        variant('bad-sum.tar', fs.statSync(good).size, b => {
          b[layout.starts[3] + 1024 + 1] ^= 0x20 // a byte of the name in member 4's ustar header
        }),
      problem: () => `damaged: the header at byte ${layout.starts[3] + 1024} (member 4): header checksum mismatch`,
    },
    {
      what: 'garbage (not a tar archive)',
      archive: () => {
        fs.writeFileSync(join(tmp.dir, 'garbage.bin'), 'garbage, not an archive\n'.repeat(200))
        return join(tmp.dir, 'garbage.bin')
      },
      problem: () => 'not a tar archive: no tar header at byte 0 (header checksum mismatch)',
    },
    {
      what: 'an empty file',
      archive: () => {
        fs.writeFileSync(join(tmp.dir, 'empty.tar'), '')
        return join(tmp.dir, 'empty.tar')
      },
      problem: () => 'not a tar archive: it is empty',
    },
    {
      what: 'a missing archive file',
      archive: () => join(tmp.dir, 'missing.tar'),
      problem: () => 'cannot open the archive: no such file or directory',
    },
    {
      what: 'truncated on standard input',
      archive: () => undefined,
      stdin: () => fs.readFileSync(good).subarray(0, layout.bigData + 70_000),
      problem: () => `truncated: the archive ends at byte ${layout.bigData + 70_000}, in the data of member 3 (./big.bin)`,
    },
  ]

  /** Runs the case; checks the exit code and that stderr is one line: the expected one, no stack, no errno name. */
  const fails = (c: Case, dir: string, force: boolean, existed: boolean): void => {
    const archive = c.archive()
    const args = ['init', '--from', archive ?? '-', '--data-dir', dir, ...(force ? ['--force'] : [])]
    const r = runCli(args, {}, c.stdin?.())
    const unchanged = existed ? `the data dir ${dir} was left as it was` : `the data dir ${dir} was not created`
    expect(r.status, r.stderr).to.equal(1)
    expect(r.stdout).to.equal('')
    expect(lines(r.stderr)).to.deep.equal([`razorfs: ${archive ?? 'standard input'}: ${c.problem()}; ${unchanged}`])
    expect(stackLines(r.stderr)).to.deep.equal([])
    expect(r.stderr).to.not.match(/\bE[A-Z]{3,}\b/) // no raw errno name (ENOENT, EISDIR, ...)
  }

  for (const c of cases) {
    it(`${c.what}: one line naming the archive (and where it is bad); no data dir is created`, () => {
      const dir = join(tmp.dir, 'fresh', 'x')
      fails(c, dir, false, false)
      expect(existsSync(join(tmp.dir, 'fresh'))).to.equal(false)
    })

    it(`${c.what}, with --force over an image: the old image stays, openable, the same`, () => {
      const dir = join(tmp.dir, 'old')
      fs.rmSync(dir, {recursive: true, force: true})
      expect(runCli(['init', '--from', good, '--data-dir', dir]).status).to.equal(0)
      const before = state(dir)
      fails(c, dir, true, true)
      expect(state(dir)).to.deep.equal(before)
      expect(fs.readdirSync(dir).sort()).to.deep.equal(IMAGE_NAMES)
    })
  }

  it('without --force, an image in the data dir is refused as before, whatever the archive', () => {
    const dir = join(tmp.dir, 'kept')
    expect(runCli(['init', '--from', good, '--data-dir', dir]).status).to.equal(0)
    const before = state(dir)
    const r = runCli(['init', '--from', variant('refused.tar', layout.bigData + 10), '--data-dir', dir])
    expect(r.status).to.equal(1)
    expect(lines(r.stderr)).to.deep.equal([`razorfs: ${dir}: already holds a razorfs image; use --force to replace it (its contents are lost)`])
    expect(state(dir)).to.deep.equal(before)
    expect(fs.readdirSync(dir).sort()).to.deep.equal(IMAGE_NAMES)
  })

  it('the good archive still restores, with --force over an image too, and leaves no staging dir', () => {
    const dir = join(tmp.dir, 'replaced')
    expect(runCli(['init', '--data-dir', dir]).status).to.equal(0)
    const r = runCli(['init', '--from', good, '--force', '--json', '--data-dir', dir])
    expect(r.status, r.stderr).to.equal(0)
    const info = JSON.parse(r.stdout) as {dir: string; files: Array<{path: string}>; restored: {members: number}; notes: string[]}
    expect(info.dir).to.equal(dir)
    expect(info.files.every(f => f.path.startsWith(`${dir}/`) && existsSync(f.path))).to.equal(true)
    expect(info.restored.members).to.equal(5)
    expect(info.notes).to.deep.equal([])
    expect(fs.readdirSync(dir).sort()).to.deep.equal(IMAGE_NAMES)
    expect(runCli(['dump', '--data-dir', dir]).stdout).to.include('big.bin')
  })

  it('no space for the new image (a 3 MiB tmpfs), with --force: the old image stays; one line, no errno name', function () {
    const host = join(tmp.dir, 'small')
    fs.mkdirSync(host)
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', host]).status !== 0) this.skip() // needs root
    try {
      const dir = join(host, 'd')
      expect(runCli(['init', '--from', good, '--data-dir', dir]).status).to.equal(0)
      const before = state(dir)
      const big = join(tmp.dir, 'big.tar')
      const fd = fs.openSync(big, 'w')
      const tar = new TarWriter(new FdWriter(fd))
      tar.add({
        path: Buffer.from('./big'),
        type: TYPE.FILE,
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: 4 << 20,
        mtime: {sec: 0, nsec: 0},
        devmajor: 0,
        devminor: 0,
        xattrs: [],
        vendor: {},
      })
      tar.data(Buffer.alloc(4 << 20, 0x5a))
      tar.finish()
      fs.closeSync(fd)
      for (const json of [false, true]) {
        const r = runCli(['init', '--from', big, '--force', '--data-dir', dir, ...(json ? ['--json'] : [])])
        expect(r.status).to.equal(1)
        const message = json ? (JSON.parse(r.stdout) as {error: {code: string; message: string}}).error : {code: 'RZ_NO_SPACE', message: lines(r.stderr)[0]}
        expect(message.code).to.equal('RZ_NO_SPACE')
        expect(message.message).to.match(new RegExp(`^(razorfs: )?cannot build the new image: .*no space left.*; the data dir ${dir} was left as it was$`))
        expect(message.message).to.not.match(/\bE[A-Z]{3,}\b/)
        expect(state(dir)).to.deep.equal(before)
        expect(fs.readdirSync(dir).sort()).to.deep.equal(IMAGE_NAMES)
      }
    } finally {
      spawnSync('umount', ['-l', host]) // lazily: this process may still map the image's files (unmapped at GC)
    }
  })

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} during a restore from a pipe: the old image stays; the next init --from removes the staging dir`, async () => {
      const dir = join(tmp.dir, `signal-${signal}`)
      expect(runCli(['init', '--from', good, '--data-dir', dir]).status).to.equal(0)
      const before = state(dir)
      const child = spawn(process.execPath, [RUN_JS, 'init', '--from', '-', '--force', '--data-dir', dir], {stdio: ['pipe', 'pipe', 'pipe']})
      const exited = new Promise<NodeJS.Signals | null>(resolve => child.on('exit', (_code, sig) => resolve(sig)))
      // Part of the archive, and the pipe left open: the restore waits for the rest.
      child.stdin.write(fs.readFileSync(good).subarray(0, layout.bigData + 70_000))
      let staging: string | undefined
      // Restoring: the staging image holds the contents of the first file.
      for (let i = 0; i < 500 && (staging === undefined || !existsSync(join(dir, staging, 'data'))); i++) {
        await new Promise(resolve => setTimeout(resolve, 20))
        staging = fs.readdirSync(dir).find(name => name.startsWith('.restore-staging-'))
      }

      expect(staging, 'the restore started').to.not.equal(undefined)
      expect(existsSync(join(dir, staging!, 'data')), 'the restore wrote contents').to.equal(true)
      child.kill(signal)
      expect(await exited).to.equal(signal)
      expect(state(dir)).to.deep.equal(before)

      const again = runCli(['init', '--from', good, '--force', '--data-dir', dir])
      expect(again.status, again.stderr).to.equal(0)
      expect(again.stdout).to.include(`  note: removed ${join(dir, staging!)}, left by a restore that did not finish\n`)
      expect(fs.readdirSync(dir).sort()).to.deep.equal(IMAGE_NAMES)
    })
  }
})
