/**
 * The migration engine in-process (src/migrate/migrate.ts): what happens when the new image does
 * not verify (nothing put in place, the source kept even with --remove-source), and the owner
 * and times of what is migrated.
 */
import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'

import {migrate, MigrateError} from '../../../src/migrate/migrate.js'
import {Image, ROOT_INO} from '../../../src/storage/index.js'
import {IMAGE_FILES, copyFixture, fixture, snapshot, tmp} from './helpers.js'

const ENV = {RAZORFS_MIGRATE_SOURCES: '/nonexistent', RAZORFS_MIGRATE_WAL: '/nonexistent/wal.log'}

/** Change one byte of /big.txt in the image in `dir` (and nothing else). */
function tamper(dir: string): void {
  const image = Image.open(dir)
  try {
    const ino = image.lookup(ROOT_INO, 'big.txt')
    const {mtime} = image.getattr(ino)
    image.write(ino, Buffer.from('!'), 500)
    image.setattr(ino, {atime: mtime, mtime}) // only the content differs
  } finally {
    image.close()
  }
}

describe('migrate: verification', () => {
  it('a new image that does not match the source is not put in place; --remove-source keeps the source', () => {
    const t = tmp()
    try {
      const src = copyFixture(fixture('disk'), path.join(t.dir, 'src'))
      const before = snapshot(src)
      const dataDir = path.join(t.dir, 'data')
      expect(() => migrate({from: src, dataDir, removeSource: true, env: ENV, afterWrite: tamper})).to.throw(
        MigrateError,
        /verification failed: \/big\.txt: sha256 [0-9a-f]{64}, expected 8a5d30db.*the new image was not put in place and the source was not touched/,
      )
      expect(fs.existsSync(dataDir)).to.equal(false)
      expect(snapshot(src)).to.deep.equal(before)
    } finally {
      t.remove()
    }
  })

  // Rename 10 of 14: the old image is out, three files of the new one are in; everything is renamed back.
  let renames = 0
  const failures = [
    {what: 'the new one does not verify', opts: {afterWrite: tamper}, error: /verification failed/},
    {
      what: 'a rename fails while the new one moves in',
      opts: {
        beforeRename: () => {
          if (++renames === 10) throw new Error('injected rename failure')
        },
      },
      error: /injected rename failure/,
    },
  ]
  for (const failure of failures) {
    it(`over an existing image with --force: the old image stays when ${failure.what}`, () => {
      const t = tmp()
      try {
        const dataDir = path.join(t.dir, 'data')
        migrate({from: fixture('shm').dir, dataDir, env: ENV})
        // The lock file is not part of the image: taking the lock rewrites the holder's pid in it.
        const image = (): Record<string, string> => Object.fromEntries(Object.entries(snapshot(dataDir)).filter(([name]) => name !== '/lock'))
        const before = image()
        expect(() => migrate({from: fixture('disk').dir, dataDir, force: true, env: ENV, ...failure.opts})).to.throw(failure.error)
        expect(image()).to.deep.equal(before)
        expect(fs.readdirSync(dataDir).sort()).to.deep.equal(IMAGE_FILES)
      } finally {
        t.remove()
      }
    })
  }

  it('every entry belongs to the given owner; atime = mtime, to the second', () => {
    const t = tmp()
    try {
      const dataDir = path.join(t.dir, 'data')
      const report = migrate({from: fixture('disk').dir, dataDir, uid: 1234, gid: 5678, env: ENV})
      expect(report.verified).to.deep.equal({entries: 13, files: 8, bytes: 185_380})
      const image = Image.open(dataDir, {readOnly: true})
      try {
        const check = (ino: number): void => {
          const a = image.getattr(ino)
          expect([a.uid, a.gid]).to.deep.equal([1234, 5678])
          expect(a.atime).to.deep.equal(a.mtime)
          expect(a.mtime.nsec).to.equal(0)
          if ((a.mode & 0o170000) === 0o040000) for (const e of image.readdir(ino)) check(e.ino)
        }

        check(ROOT_INO)
        expect(image.getattr(ROOT_INO).mtime.sec).to.equal(1_795_526_242)
      } finally {
        image.close()
      }
    } finally {
      t.remove()
    }
  })
})
