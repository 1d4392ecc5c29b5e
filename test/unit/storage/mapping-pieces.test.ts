/**
 * The pieces of a mapped file (mapped-file.ts, splitMapping): every mapping the storage layer
 * makes is split into separate VMAs of pieceSize() bytes, so that a read fault makes at most one
 * piece resident (the kernel maps a whole large page-cache folio only when it lies inside the VMA).
 * Checked on the process's own /proc/self/smaps, for a file written the way an image is (large
 * writes: ext4 caches it in large folios). A sequential scan joins the pieces again (joinPieces).
 */
import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {FILES, PAGE_SIZE} from '../../../src/storage/format.js'
import {MAPPING_PIECE, MappedFile, pieceSize} from '../../../src/storage/mapped-file.js'

const MiB = 1 << 20

/** The VMAs of `file` in this process: [start, end, resident bytes] each (from /proc/self/smaps). */
function vmas(file: string): Array<{start: number; end: number; rss: number}> {
  const out: Array<{start: number; end: number; rss: number}> = []
  let current: {start: number; end: number; rss: number} | undefined
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s+(.*)$/.exec(line)
    if (head !== null) {
      current = head[3] === file ? {start: Number.parseInt(head[1], 16), end: Number.parseInt(head[2], 16), rss: 0} : undefined
      if (current !== undefined) out.push(current)
      continue
    }

    const rss = /^Rss:\s+(\d+) kB/.exec(line)
    if (rss !== null && current !== undefined) current.rss = Number(rss[1]) * 1024
  }

  return out
}

describe('storage: a mapped file is mapped in pieces', () => {
  let dir: string
  let file: MappedFile | undefined

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-pieces-'))
  })

  afterEach(() => {
    file?.close()
    file = undefined
    fs.rmSync(dir, {recursive: true, force: true})
  })

  /** A file of `size` bytes written in 1 MiB writes and fsync'd, as an image's checkpoint writes it. */
  function written(name: string, size: number): string {
    const at = path.join(dir, name)
    const fd = fs.openSync(at, 'w')
    const chunk = Buffer.alloc(MiB, 0x5a)
    for (let off = 0; off < size; off += MiB) fs.writeSync(fd, chunk, 0, Math.min(MiB, size - off), off)
    fs.fsyncSync(fd)
    fs.closeSync(fd)
    return at
  }

  it('splits the mapping into VMAs of one piece each', () => {
    const size = 4 * MiB + 3 * PAGE_SIZE
    file = MappedFile.create(FILES[0], path.join(dir, 'f.dat'), size)
    const pieces = vmas(file.path)
    expect(pieces.length).to.equal(Math.ceil(size / MAPPING_PIECE))
    expect(pieces.slice(0, -1).every(v => v.end - v.start === MAPPING_PIECE)).to.equal(true)
    expect(pieces.reduce((a, v) => a + v.end - v.start, 0)).to.equal(size)
  })

  it('a mapping made when the file grows is split too', () => {
    file = MappedFile.create(FILES[0], path.join(dir, 'f.dat'), MiB)
    file.ensureSize(6 * MiB)
    const live = vmas(file.path).filter(v => v.end - v.start === MAPPING_PIECE)
    expect(live.length).to.be.at.least(Math.floor(file.size / MAPPING_PIECE))
  })

  it('a read of one page makes at most one piece resident', () => {
    const size = 32 * MiB
    file = MappedFile.open(FILES[0], written('big.dat', size), true)
    // One page read in each MiB, at different places within it.
    let sum = 0
    for (let mib = 0; mib < 32; mib++) sum += file.buf[mib * MiB + ((mib * 37) % 256) * PAGE_SIZE]
    expect(sum).to.equal(32 * 0x5a)
    const resident = vmas(file.path)
    const total = resident.reduce((a, v) => a + v.rss, 0)
    expect(resident.every(v => v.rss <= MAPPING_PIECE)).to.equal(true)
    expect(total).to.be.at.most(32 * MAPPING_PIECE)
    expect(total).to.be.at.least(32 * PAGE_SIZE)
  })

  it('joinPieces makes it one VMA again (sequential scans)', () => {
    file = MappedFile.open(FILES[0], written('scan.dat', 4 * MiB), true)
    expect(vmas(file.path).length).to.equal((4 * MiB) / MAPPING_PIECE)
    file.joinPieces()
    expect(vmas(file.path).map(v => v.end - v.start)).to.deep.equal([4 * MiB])
  })

  it('very large files get larger pieces, at most 2,048 of them', () => {
    expect(pieceSize(64 * MiB)).to.equal(MAPPING_PIECE)
    expect(pieceSize(256 * MiB)).to.equal(MAPPING_PIECE)
    expect(pieceSize(256 * MiB + PAGE_SIZE)).to.equal(2 * MAPPING_PIECE)
    expect((2 * 1024 * MiB) / pieceSize(2 * 1024 * MiB - PAGE_SIZE)).to.be.at.most(2048)
  })
})
