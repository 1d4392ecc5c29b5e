/**
 * Staging (src/storage/staging.ts): a new image goes into the data dir only once it is complete.
 * A rename that fails while it moves in puts the old image back; a run killed while it moves in
 * (a real SIGKILL, at every rename) is finished by the next `begin`; a run killed before leaves a
 * staging dir that the next `begin` removes.
 */
import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {Image, ImageError, ROOT_INO} from '../../../src/storage/index.js'
import {Staging, type StagingOptions} from '../../../src/storage/staging.js'
import {tempDir} from '../../helpers/cli.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const STORAGE = path.resolve(HERE, '../../../src/storage/index.js')
const STAGING = path.resolve(HERE, '../../../src/storage/staging.js')
const IMAGE_NAMES = ['data', 'entries.dat', 'entries.idx', 'lock', 'nodes.dat', 'strings.dat', 'strings.idx', 'wal.log']
/** Renames of a commit over an image with contents: 7 names out, 7 in. */
const RENAMES = 14

const options = (over: Partial<StagingOptions> = {}): StagingOptions => ({
  kind: 'restore',
  force: true,
  refuse: () => new ImageError('RZ_EXISTS', 'already holds a razorfs image'),
  ...over,
})

/** An image in `dir` holding one file named `name` with a few bytes of content. */
function makeImage(dir: string, name: string): string {
  const image = Image.create(dir)
  try {
    const ino = image.mknod(ROOT_INO, name, {mode: 0o100644, uid: 0, gid: 0}).ino
    image.write(ino, Buffer.from(`${name}\n`), 0)
    return image.info().uuid
  } finally {
    image.close()
  }
}

/** The UUID of the image in `dir` and the names in its root; it must open. */
function imageIn(dir: string): {uuid: string; names: string[]} {
  const image = Image.open(dir, {readOnly: true})
  try {
    return {uuid: image.info().uuid, names: [...image.readdir(ROOT_INO)].map(e => e.name.toString())}
  } finally {
    image.close()
  }
}

describe('storage/staging', () => {
  let t: ReturnType<typeof tempDir>
  let tmp: string
  let dataDir: string
  let oldUuid: string

  beforeEach(() => {
    t = tempDir('razorfs-staging-')
    tmp = t.dir
    dataDir = path.join(tmp, 'data-dir')
    fs.mkdirSync(dataDir)
    oldUuid = makeImage(dataDir, 'old')
  })
  afterEach(() => t.remove())

  it('commit replaces the image; the data dir then holds the new image and nothing else', () => {
    let renames = 0
    const staging = Staging.begin(dataDir, options({beforeRename: () => renames++}))
    const uuid = makeImage(staging.dir, 'new')
    expect(staging.commit()).to.deep.equal({replaced: true})
    staging.release()
    expect(renames).to.equal(RENAMES)
    expect(imageIn(dataDir)).to.deep.equal({uuid, names: ['new']})
    expect(fs.readdirSync(dataDir).sort()).to.deep.equal(IMAGE_NAMES)
  })

  it('refuses an image without force, and abort removes a data dir it created', () => {
    expect(() => Staging.begin(dataDir, options({force: false}))).to.throw(ImageError, /already holds/)
    expect(fs.readdirSync(dataDir).sort()).to.deep.equal(IMAGE_NAMES)
    const fresh = path.join(tmp, 'a', 'b')
    const staging = Staging.begin(fresh, options({force: false}))
    makeImage(staging.dir, 'new')
    staging.abort()
    staging.release()
    expect(fs.existsSync(path.join(tmp, 'a'))).to.equal(false)
  })

  for (let k = 1; k <= RENAMES; k++) {
    it(`rename ${k} of ${RENAMES} fails: everything moves back, the old image stays`, () => {
      let n = 0
      const staging = Staging.begin(
        dataDir,
        options({
          beforeRename: () => {
            if (++n === k) throw new Error('injected rename failure')
          },
        }),
      )
      makeImage(staging.dir, 'new')
      expect(() => staging.commit()).to.throw('injected rename failure')
      staging.abort()
      staging.release()
      expect(imageIn(dataDir)).to.deep.equal({uuid: oldUuid, names: ['old']})
      expect(fs.readdirSync(dataDir).sort()).to.deep.equal(IMAGE_NAMES)
    })
  }

  /** The bytes of `name` in the root of an image opened before. */
  const contentOf = (image: Image, name: string): string => {
    const buf = Buffer.alloc(64)
    return buf.subarray(0, image.read(image.lookup(ROOT_INO, name), buf, 0)).toString()
  }

  for (let k = 1; k <= RENAMES; k++) {
    it(`a reader opened (without the lock) before rename ${k} of ${RENAMES} reads the new image, its contents too once the swap is done`, () => {
      let n = 0
      let reader: Image | undefined
      const staging = Staging.begin(
        dataDir,
        options({
          beforeRename: () => {
            if (++n === k) reader = Image.open(dataDir, {readOnly: true})
          },
        }),
      )
      makeImage(staging.dir, 'new')
      staging.commit()
      staging.release()
      try {
        expect(contentOf(reader!, 'new')).to.equal('new\n')
      } finally {
        reader?.close()
      }
    })
  }

  it('a reader of an image that a swap has replaced since gets an error for a content file it had not opened, never zeros', () => {
    const reader = Image.open(dataDir, {readOnly: true})
    try {
      const staging = Staging.begin(dataDir, options())
      makeImage(staging.dir, 'new')
      staging.commit()
      staging.release()
      expect(() => contentOf(reader, 'old')).to.throw(ImageError, /was replaced while it was being read/)
    } finally {
      reader.close()
    }
  })

  it(`killed (SIGKILL) before each of the ${RENAMES} renames: the next begin, or read-write open, finishes the move`, function () {
    this.timeout(120_000)
    for (let k = 1; k <= RENAMES; k++) {
      fs.rmSync(dataDir, {recursive: true, force: true})
      fs.mkdirSync(dataDir)
      oldUuid = makeImage(dataDir, 'old')
      const script = `
        import {Image, ImageError, ROOT_INO} from ${JSON.stringify(STORAGE)}
        import {Staging} from ${JSON.stringify(STAGING)}
        let n = 0
        const staging = Staging.begin(${JSON.stringify(dataDir)}, {
          kind: 'restore', force: true, refuse: () => new ImageError('RZ_EXISTS', 'exists'),
          beforeRename: () => { if (++n === ${k}) process.kill(process.pid, 'SIGKILL') },
        })
        const image = Image.create(staging.dir)
        const ino = image.mknod(ROOT_INO, 'new', {mode: 0o100644, uid: 0, gid: 0}).ino
        image.write(ino, Buffer.from('new\\n'), 0)
        process.stdout.write(image.info().uuid)
        image.close()
        staging.commit()
      `
      const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {encoding: 'utf8'})
      expect(child.signal, child.stderr).to.equal('SIGKILL')
      const newUuid = child.stdout
      const left = fs.readdirSync(dataDir).filter(name => name.startsWith('.restore-staging-'))
      expect(left, `rename ${k}`).to.have.length(1)

      if (k % 2 === 0) {
        const staging = Staging.begin(dataDir, options())
        expect(staging.notes).to.deep.equal([`finished putting in place the image that an interrupted restore had completed in ${path.join(dataDir, left[0])}`])
        staging.abort()
        staging.release()
      } else {
        // Any read-write open (mount, fsck -y) finishes the move too, and never creates an image over it.
        expect(Image.exists(dataDir), `rename ${k}`).to.equal(true)
        Image.open(dataDir).close()
      }

      expect(imageIn(dataDir), `rename ${k}`).to.deep.equal({uuid: newUuid, names: ['new']})
      expect(fs.readdirSync(dataDir).sort()).to.deep.equal(IMAGE_NAMES)
    }
  })
})
