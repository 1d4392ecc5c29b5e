/**
 * The reader of C RAZORFS images (src/migrate/source.ts): layout detection, the three fixtures
 * read exactly as their manifests say, and hostile input (every kind of damage the issue lists,
 * and a few more) reported with a clear reason.
 */
import {expect} from 'chai'
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import zlib from 'node:zlib'

import {C_DISK, C_SHM} from '../../../src/migrate/c-format.js'
import {detect, nameProblem, readSource, type Source, SourceError} from '../../../src/migrate/source.js'
import {Image} from '../../../src/storage/index.js'
import {ALL_FIXTURES, DISK_FIXTURE_FILES, appendName, copyFixture, fixture, patch, readManifest, readNode, setChild, setNode, tmp, u32, u64} from './helpers.js'

/** Slots of the disk fixture (manifest's c_node_index). */
const SLOT = {
  root: 0,
  docs: 1,
  notes: 2,
  deep: 3,
  emptydir: 4,
  freed: 5,
  leaf: 6,
  medium: 7,
  big: 8,
  random: 9,
  empty: 10,
  twowrites: 11,
  oldName: 12,
  readmeMoved: 13,
}

describe('migrate: layout detection', () => {
  it('finds each fixture with its layout', () => {
    for (const f of ALL_FIXTURES) {
      const d = detect(f.dir)
      expect(d.state, f.name).to.equal('found')
      expect(d.layout!.kind, f.name).to.equal(f.layout)
    }
  })

  it('tells absent, empty, non-directory, razorfs, bad-magic and two-layout directories apart', () => {
    const t = tmp()
    try {
      expect(detect(path.join(t.dir, 'nope')).state).to.equal('absent')
      fs.mkdirSync(path.join(t.dir, 'empty'))
      expect(detect(path.join(t.dir, 'empty')).state).to.equal('none')
      fs.writeFileSync(path.join(t.dir, 'file'), 'x')
      expect(detect(path.join(t.dir, 'file')).state).to.equal('not-dir')

      fs.mkdirSync(path.join(t.dir, 'rz'))
      Image.create(path.join(t.dir, 'rz')).close()
      const rz = detect(path.join(t.dir, 'rz'))
      expect(rz.state).to.equal('razorfs')
      expect(rz.detail).to.match(/razorfs image.*not a C RAZORFS one/)

      const bad = copyFixture(fixture('disk'), path.join(t.dir, 'bad'))
      patch(path.join(bad, 'nodes.dat'), 0, Buffer.from('JUNK'))
      const b = detect(bad)
      expect(b.state).to.equal('bad-magic')
      expect(b.detail).to.include('0x4B4E554A')

      const both = copyFixture(fixture('disk'), path.join(t.dir, 'both'))
      copyFixture(fixture('shm'), both)
      expect(detect(both).state).to.equal('ambiguous')
    } finally {
      t.remove()
    }
  })

  it('judges names', () => {
    expect(nameProblem(Buffer.from('ok.txt'))).to.equal(undefined)
    expect(nameProblem(Buffer.from('a/b'))).to.include("'/'")
    expect(nameProblem(Buffer.from('.'))).to.include("'.'")
    expect(nameProblem(Buffer.from('..'))).to.include("'..'")
    expect(nameProblem(Buffer.from('...'))).to.equal(undefined)
    expect(nameProblem(Buffer.alloc(0))).to.include('empty')
    expect(nameProblem(Buffer.from('a\0b'))).to.include('NUL')
    expect(nameProblem(Buffer.alloc(256, 0x61))).to.include('256 bytes')
    expect(nameProblem(Buffer.alloc(255, 0x61))).to.equal(undefined)
  })
})

describe('migrate: reading the fixtures', () => {
  for (const f of ALL_FIXTURES) {
    it(`${f.name}: every manifest row, nothing bad, nothing left over`, () => {
      const source = readSource(f.dir, f.layout === 'disk' ? C_DISK : C_SHM)
      const rows = readManifest(f)
      expect(source.bad).to.deep.equal([])
      expect(source.unreachable).to.deep.equal([])
      expect(source.unreferenced).to.deep.equal([])
      expect(source.entries.map(e => e.path).sort()).to.deep.equal(rows.map(r => r.path).sort())
      const byPath = new Map(source.entries.map(e => [e.path, e]))
      for (const r of rows) {
        const e = byPath.get(r.path)!
        expect(e.type, r.path).to.equal(r.type)
        expect(e.mode, r.path).to.equal(r.mode)
        expect(e.inode, r.path).to.equal(r.inode)
        expect(e.slot, r.path).to.equal(r.slot)
        if (r.type === 'file') {
          expect(e.size, r.path).to.equal(r.size)
          expect(e.sha256, r.path).to.equal(r.sha256)
        }

        if (r.mtime !== undefined) expect(e.mtime, r.path).to.equal(r.mtime)
      }

      const dirs = rows.filter(r => r.type === 'dir').length
      expect(source.totals).to.deep.equal({dirs, files: rows.length - dirs, bytes: rows.reduce((n, r) => n + (r.type === 'file' ? r.size : 0), 0)})
    })
  }

  it('disk: /big.txt is zlib-compressed and decodes to its 102400 bytes', () => {
    const source = readSource(fixture('disk').dir, C_DISK)
    const big = source.entries.find(e => e.path === '/big.txt')!
    expect(big.content).to.include({file: 'file_9', compressed: true, decodedBytes: 102_400})
    expect(big.content!.payloadBytes).to.be.lessThan(10_000)
    expect(source.entries.find(e => e.path === '/random.bin')!.content!.compressed).to.equal(false)
  })

  it('disk-crashed: the stale header is noted and ignored (101 live slots walked from slot 0)', () => {
    const source = readSource(fixture('disk-crashed').dir, C_DISK)
    expect(source.header).to.include({used: 1, nextInode: 2, freeCount: 0})
    expect(source.liveSlots).to.equal(101)
    expect(source.entries).to.have.length(101)
    expect(source.notes.join('\n')).to.match(/used=1, but slots up to 100 are live: the header is stale/)
    expect(source.notes.join('\n')).to.match(/next_inode=2, but inode 101 exists/)
  })

  it('clean fixtures give no notes; the source files list is nodes, names and content files', () => {
    const source = readSource(fixture('disk').dir, C_DISK)
    expect(source.notes).to.deep.equal([])
    expect(source.files.map(f => path.basename(f))).to.deep.equal(DISK_FIXTURE_FILES)
  })
})

// ---- hostile input -------------------------------------------------------------------------------

interface Case {
  what: string
  damage: (dir: string) => void
  /** A SourceError whose message matches (the whole source is unusable). */
  fatal?: RegExp
  /** Or one bad entry: its path and reason. */
  bad?: {path: string | RegExp; reason: RegExp; below?: number}
}

const N = (dir: string) => path.join(dir, 'nodes.dat')
const S = (dir: string) => path.join(dir, 'strings.dat')

/** The disk fixture's name offsets (from its nodes). */
function nameOffsetOf(dir: string, slot: number): number {
  return readNode(N(dir), slot).nameOffset
}

const CASES: Case[] = [
  // the whole source
  {what: 'bad magic', damage: d => patch(N(d), 0, Buffer.from('XXXX')), fatal: /nodes\.dat: bad magic 0x58585858.*0x52415A4F/},
  {what: 'unsupported version', damage: d => patch(N(d), 4, u32(2)), fatal: /unsupported version 2/},
  {what: 'a truncated nodes file', damage: d => fs.truncateSync(N(d), 5000), fatal: /truncated: 5000 bytes, a nodes file of capacity 1024 has 133144/},
  {what: 'a nodes file shorter than its header', damage: d => fs.truncateSync(N(d), 10), fatal: /truncated: 10 bytes, shorter than its 24-byte header/},
  {what: 'an oversized capacity', damage: d => patch(N(d), 8, u32(0xffff_ffff)), fatal: /capacity 4294967295 is out of range/},
  {what: 'a capacity the file does not hold', damage: d => patch(N(d), 8, u32(4096)), fatal: /truncated: 133144 bytes, a nodes file of capacity 4096/},
  {what: 'a missing names file', damage: d => fs.rmSync(S(d)), fatal: /strings\.dat: missing/},
  {what: 'a names file shorter than its header', damage: d => fs.writeFileSync(S(d), Buffer.from([1, 2])), fatal: /truncated: 2 bytes/},
  {what: 'a free root slot', damage: d => setNode(N(d), 0, 'inode', 0), fatal: /slot 0 \(the root directory\) is free/},
  {what: 'a root that is a file', damage: d => setNode(N(d), 0, 'mode', 0o100644), fatal: /slot 0 \(the root\) is not a directory/},
  {what: 'a root with more than 16 children', damage: d => setNode(N(d), 0, 'numChildren', 40), fatal: /says it has 40 children, at most 16/},
  {
    what: 'a nodes file that is a symlink',
    damage: d => {
      fs.renameSync(N(d), path.join(d, 'real'))
      fs.symlinkSync(path.join(d, 'real'), N(d))
    },
    fatal: /not a regular file \(a symbolic link\)/,
  },

  // indices
  {
    what: 'a child index out of range',
    damage: d => setChild(N(d), SLOT.root, 0, 2000),
    bad: {path: '/[child 0]', reason: /child index 2000 is out of range \(slots 0 to 1023\)/},
  },
  {what: 'a 0xFFFF child within num_children', damage: d => setChild(N(d), SLOT.root, 0, 0xffff), bad: {path: '/[child 0]', reason: /0xFFFF \(no child\)/}},
  {what: 'a child pointing to a free slot', damage: d => setChild(N(d), SLOT.root, 0, SLOT.freed), bad: {path: '/readme.txt', reason: /points to a free slot/}},
  {
    what: 'a cycle (a directory listing its grandparent)',
    damage: d => {
      setNode(N(d), SLOT.deep, 'numChildren', 2)
      setChild(N(d), SLOT.deep, 1, SLOT.docs)
    },
    bad: {path: '/docs/notes/deep/docs', reason: /cycle: child index 1 is \/docs/},
  },
  {
    what: 'a directory listing itself',
    damage: d => {
      setNode(N(d), SLOT.emptydir, 'numChildren', 1)
      setChild(N(d), SLOT.emptydir, 0, SLOT.emptydir)
    },
    bad: {path: '/emptydir/emptydir', reason: /cycle/},
  },
  {
    what: 'a node listed by two directories',
    damage: d => {
      setNode(N(d), SLOT.emptydir, 'numChildren', 1)
      setChild(N(d), SLOT.emptydir, 0, SLOT.leaf)
    },
    bad: {path: /leaf\.txt$/, reason: /already in the tree as .*leaf\.txt \(the C format has no hard links\)/},
  },
  {
    what: 'num_children over 16 on a directory',
    damage: d => setNode(N(d), SLOT.emptydir, 'numChildren', 300),
    bad: {path: '/emptydir', reason: /num_children is 300, at most 16/},
  },

  // names
  {
    what: "a name with '/'",
    damage: d => patch(S(d), 4 + nameOffsetOf(d, SLOT.docs), Buffer.from('d/cs')),
    bad: {path: '/"d/cs"', reason: /name contains '\/'/, below: 6},
  },
  {what: "a name '.'", damage: d => patch(S(d), 4 + nameOffsetOf(d, SLOT.emptydir), Buffer.from('.\0')), bad: {path: '/"."', reason: /name is '\.'/}},
  {
    what: "a name '..'",
    damage: d => patch(S(d), 4 + nameOffsetOf(d, SLOT.docs), Buffer.from('..\0')),
    bad: {path: '/".."', reason: /name is '\.\.'/, below: 6},
  },
  {what: 'an empty name (a NUL first)', damage: d => patch(S(d), 4 + nameOffsetOf(d, SLOT.random), Buffer.from([0])), bad: {path: '/""', reason: /empty name/}},
  {what: 'no name (0xFFFFFFFF)', damage: d => setNode(N(d), SLOT.random, 'nameOffset', 0xffff_ffff), bad: {path: '/[slot 9]', reason: /has no name/}},
  {
    what: 'a name offset out of range',
    damage: d => setNode(N(d), SLOT.random, 'nameOffset', 1_000_000),
    bad: {path: '/[slot 9]', reason: /name offset 1000000 is out of range/},
  },
  {
    what: 'an unterminated name',
    damage: d => {
      const b = fs.readFileSync(S(d))
      fs.writeFileSync(S(d), Buffer.concat([b, Buffer.from('tail')]))
      setNode(N(d), SLOT.random, 'nameOffset', b.length - 4)
    },
    bad: {path: '/[slot 9]', reason: /not NUL-terminated/},
  },
  {
    what: 'a name of 300 bytes',
    damage: d => setNode(N(d), SLOT.random, 'nameOffset', appendName(S(d), 'x'.repeat(300))),
    bad: {path: /^\/"x{300}"$/, reason: /300 bytes long \(at most 255\)/},
  },
  {
    what: 'a name with control characters is shown escaped',
    damage: d => setNode(N(d), SLOT.random, 'nameOffset', appendName(S(d), 'a\nb/c')),
    bad: {path: '/"a\\x0ab/c"', reason: /'\/'/},
  },
  {
    what: 'two entries with one name',
    damage: d => setNode(N(d), SLOT.random, 'nameOffset', nameOffsetOf(d, SLOT.big)),
    bad: {path: '/big.txt', reason: /duplicate name in \/ \(also slot 8\)/},
  },

  // nodes
  {
    what: 'an unsupported file type',
    damage: d => setNode(N(d), SLOT.empty, 'mode', 0o120777),
    bad: {path: '/empty.txt', reason: /unsupported file type \(mode 0o120777/},
  },
  {
    what: 'an oversized file size',
    damage: d => setNode(N(d), SLOT.empty, 'size', 2n ** 50n),
    bad: {path: '/empty.txt', reason: /size 1125899906842624 is larger than the largest razorfs file/},
  },
  {
    what: 'one inode number on two nodes',
    damage: d => setNode(N(d), SLOT.empty, 'inode', 9),
    bad: {path: '/empty.txt', reason: /inode 9 is already used by \/big\.txt/},
  },
  {
    what: 'a size larger than the content and its buffer',
    damage: d => setNode(N(d), SLOT.readmeMoved, 'size', 5_000_000),
    bad: {path: '/readme_moved.txt', reason: /size 5000000 is larger than its content \(14 bytes\)/},
  },

  // content files
  {
    what: 'a missing content file',
    damage: d => fs.rmSync(path.join(d, 'file_15')),
    bad: {path: '/readme_moved.txt', reason: /content file file_15 is missing \(the file has size 14\)/},
  },
  {
    what: 'a truncated content file',
    damage: d => fs.truncateSync(path.join(d, 'file_8'), 500),
    bad: {path: '/docs/medium.txt', reason: /file_8 is truncated: its header says 1000 payload bytes, it holds 468/},
  },
  {
    what: 'a content file shorter than its header',
    damage: d => fs.truncateSync(path.join(d, 'file_8'), 20),
    bad: {path: '/docs/medium.txt', reason: /truncated: 20 bytes, shorter than its 32-byte header/},
  },
  {
    what: 'a content file with trailing bytes',
    damage: d => fs.appendFileSync(path.join(d, 'file_8'), 'extra'),
    bad: {path: '/docs/medium.txt', reason: /5 bytes past the 1000 payload bytes/},
  },
  {
    what: 'a content file with a bad magic number',
    damage: d => patch(path.join(d, 'file_7'), 0, Buffer.from('NOPE')),
    bad: {path: '/docs/notes/deep/leaf.txt', reason: /file_7 has a bad magic number/},
  },
  {
    what: 'a content header that disagrees with its name',
    damage: d => patch(path.join(d, 'file_7'), 4, u32(99)),
    bad: {path: '/docs/notes/deep/leaf.txt', reason: /file_7: its header says inode 99, its name says inode 7/},
  },
  {
    what: 'an oversized data_size',
    damage: d => patch(path.join(d, 'file_7'), 16, u64(2n ** 62n)),
    bad: {path: '/docs/notes/deep/leaf.txt', reason: /truncated: its header says 4611686018427387904 payload bytes, it holds 26/},
  },
  {
    what: 'is_compressed neither 0 nor 1',
    damage: d => patch(path.join(d, 'file_7'), 24, u32(7)),
    bad: {path: '/docs/notes/deep/leaf.txt', reason: /is_compressed is 7/},
  },
  {
    what: 'a damaged zlib stream',
    damage: d => patch(path.join(d, 'file_9'), 32 + 12 + 100, Buffer.alloc(64, 0xaa)),
    bad: {path: '/big.txt', reason: /file_9: the zlib stream is damaged/},
  },
  {
    what: 'a zlib stream that inflates past its declared size',
    damage: d => patch(path.join(d, 'file_9'), 32 + 4, u32(1000)),
    bad: {path: '/big.txt', reason: /inflates to more than the 1000 bytes its header says/},
  },
  {
    what: 'a compressed size that disagrees with the payload',
    damage: d => patch(path.join(d, 'file_9'), 32 + 8, u32(5)),
    bad: {path: '/big.txt', reason: /compression header says 5 compressed bytes/},
  },
  {
    what: 'a bad compression magic',
    damage: d => patch(path.join(d, 'file_9'), 32, Buffer.from('ZZZZ')),
    bad: {path: '/big.txt', reason: /bad compression magic/},
  },
  {
    what: 'a content file that is a symlink',
    damage: d => {
      fs.rmSync(path.join(d, 'file_15'))
      fs.symlinkSync('/etc/hostname', path.join(d, 'file_15'))
    },
    bad: {path: '/readme_moved.txt', reason: /file_15 is a symbolic link/},
  },
  {
    what: 'a content file that is a directory',
    damage: d => {
      fs.rmSync(path.join(d, 'file_15'))
      fs.mkdirSync(path.join(d, 'file_15'))
    },
    bad: {path: '/readme_moved.txt', reason: /file_15/},
  },
]

describe('migrate: hostile input', () => {
  for (const c of CASES) {
    it(`${c.what}: ${c.fatal ? 'the source is refused' : 'one bad entry'}`, () => {
      const t = tmp()
      try {
        const dir = copyFixture(fixture('disk'), path.join(t.dir, 'src'))
        c.damage(dir)
        if (c.fatal !== undefined) {
          expect(() => readSource(dir, C_DISK)).to.throw(SourceError, c.fatal)
          return
        }

        const source = readSource(dir, C_DISK)
        expect(source.bad, JSON.stringify(source.bad)).to.have.length(1)
        const b = source.bad[0]
        if (typeof c.bad!.path === 'string') expect(b.path).to.equal(c.bad!.path)
        else expect(b.path).to.match(c.bad!.path)
        expect(b.reason).to.match(c.bad!.reason)
        if (c.bad!.below !== undefined) expect(b.below).to.equal(c.bad!.below)
        // What is left is still a tree whose paths are all legal.
        for (const e of source.entries) for (const name of e.names) expect(nameProblem(name)).to.equal(undefined)
      } finally {
        t.remove()
      }
    })
  }

  it('does not write to the source: every file is byte-for-byte and mtime-for-mtime the same', () => {
    const t = tmp()
    try {
      const dir = copyFixture(fixture('disk'), path.join(t.dir, 'src'))
      const before = fs.readdirSync(dir).map(n => [n, fs.readFileSync(path.join(dir, n)).toString('hex'), fs.statSync(path.join(dir, n)).mtimeMs])
      readSource(dir, C_DISK)
      const after = fs.readdirSync(dir).map(n => [n, fs.readFileSync(path.join(dir, n)).toString('hex'), fs.statSync(path.join(dir, n)).mtimeMs])
      expect(after).to.deep.equal(before)
    } finally {
      t.remove()
    }
  })
})

describe('migrate: odd but harmless', () => {
  function read(damage: (dir: string) => void): Source {
    const t = tmp()
    try {
      const dir = copyFixture(fixture('disk'), path.join(t.dir, 'src'))
      damage(dir)
      return readSource(dir, C_DISK)
    } finally {
      t.remove()
    }
  }

  it('a node size shorter than the content cuts it (noted)', () => {
    const s = read(d => setNode(N(d), SLOT.readmeMoved, 'size', 5))
    expect(s.bad).to.deep.equal([])
    const e = s.entries.find(x => x.path === '/readme_moved.txt')!
    expect(e.size).to.equal(5)
    expect(e.sha256).to.equal('185f8db32271fe25f561a6fc938b2e264306ec304eda518007d1764826381969') // sha256('Hello')
    expect(s.notes.join('\n')).to.include('cut to 5')
  })

  it('a node size within the buffer but past the content is zero-extended (noted)', () => {
    const s = read(d => {
      patch(path.join(d, 'file_15'), 8, u64(100n))
      setNode(N(d), SLOT.readmeMoved, 'size', 20)
    })
    expect(s.bad).to.deep.equal([])
    const e = s.entries.find(x => x.path === '/readme_moved.txt')!
    expect(e.size).to.equal(20)
    const want = Buffer.concat([Buffer.from('Hello RAZORFS\n'), Buffer.alloc(6)])
    expect(e.sha256).to.equal(createSha(want))
    expect(s.notes.join('\n')).to.include('zero-extended')
  })

  it('a live slot that no directory lists is reported as unreachable, not migrated', () => {
    const s = read(d => setNode(N(d), SLOT.freed, 'inode', 77))
    expect(s.bad).to.deep.equal([])
    expect(s.unreachable).to.deep.equal([{slot: 5, inode: 77, name: 'readme.txt', type: 'file'}])
  })

  it('a content file no file owns is reported, not migrated', () => {
    const s = read(d => fs.copyFileSync(path.join(d, 'file_7'), path.join(d, 'file_99')))
    expect(s.bad).to.deep.equal([])
    expect(s.unreferenced).to.deep.equal(['file_99'])
  })

  it('a parent field that disagrees with the directory listing the node is noted', () => {
    const s = read(d => setNode(N(d), SLOT.leaf, 'parent', 1))
    expect(s.bad).to.deep.equal([])
    expect(s.notes.join('\n')).to.match(/leaf\.txt \(slot 6\): its parent field says slot 1, but slot 3 lists it/)
  })

  it('a child index past num_children is noted and ignored', () => {
    const s = read(d => setChild(N(d), SLOT.emptydir, 3, SLOT.leaf))
    expect(s.bad).to.deep.equal([])
    expect(s.notes.join('\n')).to.match(/\/emptydir \(slot 4\): child index 6 at position 3, past num_children=0, ignored/)
  })

  it('a names file whose header disagrees with its length is noted', () => {
    const s = read(d => patch(S(d), 0, u32(5)))
    expect(s.bad).to.deep.equal([])
    expect(s.notes.join('\n')).to.match(/strings\.dat: header says 5 bytes of names, the file holds 156/)
  })

  it('an empty file with a content file is read as empty', () => {
    const s = read(d => {
      const data = Buffer.from('ignored')
      const head = Buffer.alloc(32)
      head.writeUInt32LE(0x46494c45, 0)
      head.writeUInt32LE(11, 4)
      head.writeBigUInt64LE(7n, 8)
      head.writeBigUInt64LE(7n, 16)
      fs.writeFileSync(path.join(d, 'file_11'), Buffer.concat([head, data]))
    })
    expect(s.bad).to.deep.equal([])
    expect(s.entries.find(x => x.path === '/empty.txt')!.sha256).to.equal(createSha(Buffer.alloc(0)))
  })

  it('a compressed payload written with zlib level 9 decodes as well', () => {
    const s = read(d => {
      const data = Buffer.from('x'.repeat(5000))
      const z = zlib.deflateSync(data, {level: 9})
      const head = Buffer.alloc(32)
      head.writeUInt32LE(0x46494c45, 0)
      head.writeUInt32LE(15, 4)
      head.writeBigUInt64LE(5000n, 8)
      head.writeBigUInt64LE(BigInt(12 + z.length), 16)
      head.writeInt32LE(1, 24)
      const ch = Buffer.alloc(12)
      ch.writeUInt32LE(0x525a4350, 0)
      ch.writeUInt32LE(5000, 4)
      ch.writeUInt32LE(z.length, 8)
      fs.writeFileSync(path.join(d, 'file_15'), Buffer.concat([head, ch, z]))
      setNode(N(d), SLOT.readmeMoved, 'size', 5000)
    })
    expect(s.bad).to.deep.equal([])
    expect(s.entries.find(x => x.path === '/readme_moved.txt')!.sha256).to.equal(createSha(Buffer.from('x'.repeat(5000))))
  })
})

function createSha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex')
}
