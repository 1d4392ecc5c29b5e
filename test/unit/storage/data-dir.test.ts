import {expect} from 'chai'
import {mkdirSync, statSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {ensureDataDir, resolveDataDir} from '../../../src/storage/data-dir.js'
import {ImageError} from '../../../src/storage/errors.js'
import {tempDir} from '../../helpers/cli.js'

describe('resolveDataDir', () => {
  const user = {env: {HOME: '/home/u'}, uid: 1000}

  it('takes --data-dir first, made absolute', () => {
    const ctx = {env: {HOME: '/home/u', RAZORFS_DATA_DIR: '/env', XDG_DATA_HOME: '/xdg'}, uid: 0}
    expect(resolveDataDir('/flag', ctx)).to.equal('/flag')
    expect(resolveDataDir('rel/dir', ctx)).to.equal(resolve('rel/dir'))
  })

  it('rejects an empty --data-dir', () => {
    expect(() => resolveDataDir('', user)).to.throw(ImageError, /empty/)
  })

  it('then RAZORFS_DATA_DIR, made absolute; an empty one is ignored', () => {
    expect(resolveDataDir(undefined, {env: {RAZORFS_DATA_DIR: '/env', XDG_DATA_HOME: '/xdg'}, uid: 0})).to.equal('/env')
    expect(resolveDataDir(undefined, {env: {RAZORFS_DATA_DIR: 'rel'}, uid: 1000})).to.equal(resolve('rel'))
    expect(resolveDataDir(undefined, {env: {RAZORFS_DATA_DIR: ''}, uid: 0})).to.equal('/var/lib/razorfs')
  })

  it('then /var/lib/razorfs for root', () => {
    expect(resolveDataDir(undefined, {env: {HOME: '/root', XDG_DATA_HOME: '/xdg'}, uid: 0})).to.equal('/var/lib/razorfs')
  })

  it('then $XDG_DATA_HOME/razorfs for other users, when it is absolute', () => {
    expect(resolveDataDir(undefined, {env: {HOME: '/home/u', XDG_DATA_HOME: '/xdg'}, uid: 1000})).to.equal('/xdg/razorfs')
    expect(resolveDataDir(undefined, {env: {HOME: '/home/u', XDG_DATA_HOME: 'rel'}, uid: 1000})).to.equal('/home/u/.local/share/razorfs')
  })

  it('then ~/.local/share/razorfs', () => {
    expect(resolveDataDir(undefined, user)).to.equal('/home/u/.local/share/razorfs')
    expect(resolveDataDir(undefined, {env: {}, home: '/h', uid: 1000})).to.equal('/h/.local/share/razorfs')
  })

  it('treats an unknown uid (no getuid) as not root', () => {
    expect(resolveDataDir(undefined, {env: {HOME: '/home/u'}, uid: undefined})).to.equal('/home/u/.local/share/razorfs')
  })

  it('reads process.env and the real uid by default', () => {
    const saved = process.env.RAZORFS_DATA_DIR
    process.env.RAZORFS_DATA_DIR = '/from/env'
    try {
      expect(resolveDataDir()).to.equal('/from/env')
    } finally {
      if (saved === undefined) delete process.env.RAZORFS_DATA_DIR
      else process.env.RAZORFS_DATA_DIR = saved
    }
  })
})

describe('ensureDataDir', () => {
  let tmp: ReturnType<typeof tempDir>
  beforeEach(() => {
    tmp = tempDir()
  })
  afterEach(() => tmp.remove())

  const mode = (path: string) => statSync(path).mode & 0o7777

  it('creates the dir and its parents, mode 0700 whatever the umask', () => {
    const old = process.umask(0o000)
    try {
      const dir = join(tmp.dir, 'a', 'b')
      ensureDataDir(dir)
      expect(mode(dir)).to.equal(0o700)
    } finally {
      process.umask(old)
    }

    const old2 = process.umask(0o777)
    try {
      const dir = join(tmp.dir, 'c')
      ensureDataDir(dir)
      expect(mode(dir)).to.equal(0o700)
    } finally {
      process.umask(old2)
    }
  })

  it('leaves an existing directory as it is', () => {
    const dir = join(tmp.dir, 'd')
    mkdirSync(dir, {mode: 0o755})
    ensureDataDir(dir)
    expect(mode(dir)).to.equal(0o755)
  })

  it('throws RZ_DATA_DIR, naming the path, for a regular file', () => {
    const file = join(tmp.dir, 'f')
    writeFileSync(file, '')
    expect(() => ensureDataDir(file))
      .to.throw(ImageError, /not a directory/)
      .with.property('code', 'RZ_DATA_DIR')
    expect(() => ensureDataDir(file)).to.throw(`${file}: `)
  })

  it('throws RZ_DATA_DIR when a parent is a regular file', () => {
    const file = join(tmp.dir, 'f')
    writeFileSync(file, '')
    expect(() => ensureDataDir(join(file, 'sub')))
      .to.throw(ImageError, /ENOTDIR/)
      .with.property('code', 'RZ_DATA_DIR')
  })
})
