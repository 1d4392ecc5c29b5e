/**
 * Synthetic C images (written by the test from FORMAT.md's description) for what the fixtures do
 * not hold: a tree 1000 directories deep, both layouts, special permission bits, names that are
 * not UTF-8, and hostile names in the shm layout's addressing.
 */
import {expect} from 'chai'
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {C_SHM} from '../../../src/migrate/c-format.js'
import {migrate} from '../../../src/migrate/migrate.js'
import {readSource} from '../../../src/migrate/source.js'
import {Image, ROOT_INO} from '../../../src/storage/index.js'
import {type CNodeSpec, listImage, setNode, tmp, writeCImage} from './helpers.js'

const ENV = {RAZORFS_MIGRATE_SOURCES: '/nonexistent', RAZORFS_MIGRATE_WAL: '/nonexistent/wal.log'}
const DIR = 0o040000
const REG = 0o100000

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex')
}

describe('migrate: synthetic C images', () => {
  for (const layout of ['disk', 'shm'] as const) {
    it(`${layout}: a chain of 1000 directories with a compressed file at the bottom`, () => {
      const t = tmp()
      try {
        const depth = 1000
        const nodes: CNodeSpec[] = [{slot: 0, inode: 1, parent: 0xffff, mode: DIR | 0o755, name: '/', children: [1]}]
        for (let i = 1; i <= depth; i++) {
          nodes.push({slot: i, inode: i + 1, parent: i - 1, mode: DIR | 0o750, name: `d${i}`, children: [i + 1], mtime: 1_600_000_000 + i})
        }

        const content = Buffer.from('deep '.repeat(10_000))
        nodes.push({slot: depth + 1, inode: depth + 2, parent: depth, mode: REG | 0o640, name: 'leaf', content, compress: true, mtime: 1_650_000_000})
        const src = path.join(t.dir, 'src')
        writeCImage(src, layout, nodes)
        const dataDir = path.join(t.dir, 'data')
        const report = migrate({from: src, dataDir, env: ENV})
        expect(report.summary).to.deep.equal({dirs: depth + 1, files: 1, bytes: content.length, skipped: 0, skippedBelow: 0})
        expect(report.source.layout).to.equal(layout)
        const listed = listImage(dataDir)
        expect(listed).to.have.length(depth + 2)
        const leaf = listed.find(l => l.path.endsWith('/leaf'))!
        expect(leaf.path.split('/')).to.have.length(depth + 2)
        expect(leaf).to.include({size: content.length, sha256: sha(content), mode: 0o640, mtime: 1_650_000_000})
        expect(listed.find(l => l.path === '/d1/d2')).to.include({mode: 0o750, mtime: 1_600_000_002})
      } finally {
        t.remove()
      }
    })
  }

  it('keeps setuid, setgid and sticky bits, and names that are not UTF-8', () => {
    const t = tmp()
    try {
      const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9]) // "café" in Latin-1
      const nodes: CNodeSpec[] = [
        {slot: 0, inode: 1, parent: 0xffff, mode: DIR | 0o755, name: '/', children: [2, 1]},
        {slot: 1, inode: 2, parent: 0, mode: DIR | 0o1777, name: 'tmp'},
        {slot: 2, inode: 3, parent: 0, mode: REG | 0o6755, name: 'suid', content: Buffer.from('#!/bin/true\n')},
      ]
      const src = path.join(t.dir, 'src')
      writeCImage(src, 'disk', nodes)
      // A name of Latin-1 bytes for /tmp.
      const strings = path.join(src, 'strings.dat')
      const b = fs.readFileSync(strings)
      const off = b.readUInt32LE(0)
      const grown = Buffer.concat([b, latin1, Buffer.from([0])])
      grown.writeUInt32LE(off + latin1.length + 1, 0)
      fs.writeFileSync(strings, grown)
      setNode(path.join(src, 'nodes.dat'), 1, 'nameOffset', off)

      const dataDir = path.join(t.dir, 'data')
      const report = migrate({from: src, dataDir, env: ENV})
      expect(report.entries.map(e => e.path)).to.include('/"caf\\xe9"')
      const image = Image.open(dataDir, {readOnly: true})
      try {
        const dir = image.lookup(ROOT_INO, latin1)
        expect(dir).to.not.equal(0)
        expect(image.getattr(dir).mode).to.equal(DIR | 0o1777)
        expect(image.getattr(image.lookup(ROOT_INO, 'suid')).mode).to.equal(REG | 0o6755)
      } finally {
        image.close()
      }
    } finally {
      t.remove()
    }
  })

  it('shm: a name offset inside the 4-byte header is out of range', () => {
    const t = tmp()
    try {
      const nodes: CNodeSpec[] = [
        {slot: 0, inode: 1, parent: 0xffff, mode: DIR | 0o755, name: '/', children: [1]},
        {slot: 1, inode: 2, parent: 0, mode: REG | 0o644, name: 'a'},
      ]
      const src = path.join(t.dir, 'shm')
      writeCImage(src, 'shm', nodes)
      setNode(path.join(src, 'razorfs_nodes'), 1, 'nameOffset', 2)
      const s = readSource(src, C_SHM)
      expect(s.bad).to.have.length(1)
      expect(s.bad[0]).to.include({path: '/[slot 1]'})
      expect(s.bad[0].reason).to.match(/name offset 2 is out of range/)
    } finally {
      t.remove()
    }
  })

  it("shm: a names file addressed like the disk layout's is noted at the root", () => {
    const t = tmp()
    try {
      const nodes: CNodeSpec[] = [{slot: 0, inode: 1, parent: 0xffff, mode: DIR | 0o755, name: '/'}]
      const src = path.join(t.dir, 'shm')
      writeCImage(src, 'shm', nodes)
      setNode(path.join(src, 'razorfs_nodes'), 0, 'nameOffset', 0)
      const s = readSource(src, C_SHM)
      expect(s.notes.join('\n')).to.match(/the root's name is .*, not "\/"; its names file looks like the disk layout's/)
    } finally {
      t.remove()
    }
  })
})
