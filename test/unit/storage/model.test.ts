/**
 * Model-based property test of the storage core: random sequences of operations run against an
 * image and against a small in-memory model; every operation must succeed or fail alike (same
 * errno), and after close + reopen (or a simulated crash + recovery) the whole tree, contents,
 * link counts, hard-link identity, symlink targets and xattrs must equal the model's.
 */
import {expect} from 'chai'
import fc from 'fast-check'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {FsError, Image, ROOT_INO, RENAME_EXCHANGE, RENAME_NOREPLACE, XATTR_CREATE, XATTR_REPLACE} from '../../../src/storage/index.js'

const S_IFREG = 0o100000
const S_IFDIR = 0o040000
const S_IFLNK = 0o120000

// ---- the model --------------------------------------------------------------------------------

interface MNode {
  id: number
  type: number
  mode: number
  nlink: number
  data: Buffer
  target?: string
  xattrs: Map<string, Buffer>
  children?: Map<string, number>
  parent?: number
}

class ModelError extends Error {
  constructor(readonly code: string) {
    super(code)
  }
}

function fail(code: string): never {
  throw new ModelError(code)
}

class Model {
  nodes = new Map<number, MNode>()
  nextId = 2

  constructor() {
    this.nodes.set(1, {id: 1, type: S_IFDIR, mode: 0o755, nlink: 2, data: Buffer.alloc(0), xattrs: new Map(), children: new Map(), parent: 1})
  }

  get(id: number): MNode {
    return this.nodes.get(id)!
  }

  private dir(id: number): MNode {
    const n = this.get(id)
    if (n.type !== S_IFDIR) fail('ENOTDIR')
    return n
  }

  private checkName(name: string): void {
    if (Buffer.byteLength(name) > 255) fail('ENAMETOOLONG')
    if (name === '' || name === '.' || name === '..' || name.includes('/')) fail('EINVAL')
  }

  mknod(parent: number, name: string, type: number, mode: number, target?: string): number {
    const dir = this.dir(parent)
    this.checkName(name)
    if (dir.children!.has(name)) fail('EEXIST')
    const id = this.nextId++
    const node: MNode = {id, type, mode, nlink: 1, data: Buffer.alloc(0), xattrs: new Map()}
    if (type === S_IFDIR) {
      node.nlink = 2
      node.children = new Map()
      node.parent = parent
      dir.nlink++
    }

    if (type === S_IFLNK) node.target = target
    this.nodes.set(id, node)
    dir.children!.set(name, id)
    return id
  }

  link(id: number, parent: number, name: string): void {
    const node = this.get(id)
    const dir = this.dir(parent)
    this.checkName(name)
    if (node.type === S_IFDIR) fail('EPERM')
    if (dir.children!.has(name)) fail('EEXIST')
    dir.children!.set(name, id)
    node.nlink++
  }

  private drop(id: number): void {
    const node = this.get(id)
    node.nlink = node.type === S_IFDIR ? 0 : node.nlink - 1
    if (node.nlink === 0) this.nodes.delete(id)
  }

  remove(parent: number, name: string, wantDir: boolean): void {
    const dir = this.dir(parent)
    if (Buffer.byteLength(name) > 255) fail('ENAMETOOLONG')
    if (wantDir && name === '.') fail('EINVAL')
    if (wantDir && name === '..') fail('ENOTEMPTY')
    const id = dir.children!.get(name)
    if (id === undefined) fail('ENOENT')
    const node = this.get(id)
    const isDir = node.type === S_IFDIR
    if (wantDir && !isDir) fail('ENOTDIR')
    if (!wantDir && isDir) fail('EISDIR')
    if (isDir && node.children!.size > 0) fail('ENOTEMPTY')
    dir.children!.delete(name)
    if (isDir) dir.nlink--
    this.drop(id)
  }

  private within(id: number, ancestor: number): boolean {
    for (let cur = id; ; cur = this.get(cur).parent!) {
      if (cur === ancestor) return true
      if (cur === 1) return false
    }
  }

  rename(op: number, on: string, np: number, nn: string, flags: number): void {
    const src = this.dir(op)
    const dst = this.dir(np)
    if (Buffer.byteLength(on) > 255) fail('ENAMETOOLONG')
    this.checkName(nn)
    this.checkName(on)
    const child = src.children!.get(on)
    if (child === undefined) fail('ENOENT')
    const childIsDir = this.get(child).type === S_IFDIR
    const victim = dst.children!.get(nn)
    if (op === np && on === nn) return
    if (victim !== undefined && (flags & RENAME_NOREPLACE) !== 0) fail('EEXIST')
    if (victim === undefined && (flags & RENAME_EXCHANGE) !== 0) fail('ENOENT')
    if (childIsDir && op !== np && this.within(np, child)) fail('EINVAL')
    const victimIsDir = victim !== undefined && this.get(victim).type === S_IFDIR
    if ((flags & RENAME_EXCHANGE) !== 0) {
      if (victimIsDir && op !== np && this.within(op, victim!)) fail('EINVAL')
      src.children!.set(on, victim!)
      dst.children!.set(nn, child)
      if (op !== np) {
        if (childIsDir) this.get(child).parent = np
        if (victimIsDir) this.get(victim!).parent = op
        const delta = Number(childIsDir) - Number(victimIsDir)
        src.nlink -= delta
        dst.nlink += delta
      }

      return
    }

    if (victim === child) return
    if (victim !== undefined) {
      if (childIsDir && !victimIsDir) fail('ENOTDIR')
      if (!childIsDir && victimIsDir) fail('EISDIR')
      if (victimIsDir && this.get(victim).children!.size > 0) fail('ENOTEMPTY')
      dst.children!.delete(nn)
      if (victimIsDir) dst.nlink--
      this.drop(victim)
    }

    src.children!.delete(on)
    dst.children!.set(nn, child)
    if (childIsDir && op !== np) {
      this.get(child).parent = np
      src.nlink--
      dst.nlink++
    }
  }

  write(id: number, pos: number, bytes: Buffer): void {
    const node = this.get(id)
    if (bytes.length === 0) return
    const end = pos + bytes.length
    if (end > node.data.length) {
      const grown = Buffer.alloc(end)
      node.data.copy(grown)
      node.data = grown
    }

    bytes.copy(node.data, pos)
  }

  truncate(id: number, size: number): void {
    const node = this.get(id)
    const next = Buffer.alloc(size)
    node.data.copy(next, 0, 0, Math.min(size, node.data.length))
    node.data = next
  }

  setxattr(id: number, name: string, value: Buffer, flags: number): void {
    const node = this.get(id)
    const exists = node.xattrs.has(name)
    if ((flags & XATTR_CREATE) !== 0 && exists) fail('EEXIST')
    if ((flags & XATTR_REPLACE) !== 0 && !exists) fail('ENODATA')
    node.xattrs.set(name, value)
  }

  removexattr(id: number, name: string): void {
    if (!this.get(id).xattrs.delete(name)) fail('ENODATA')
  }

  /** Live ids of a kind, in a stable order (for picking by index). */
  ids(filter: (n: MNode) => boolean): number[] {
    return [...this.nodes.values()]
      .filter(n => filter(n))
      .map(n => n.id)
      .sort((a, b) => a - b)
  }
}

// ---- operations -------------------------------------------------------------------------------

const NAMES = ['a', 'b', 'c', 'dir', 'file', 'x y', 'new\nline', 'é', 'a'.repeat(255), 'b'.repeat(256), '..', '']

type Op =
  | {op: 'create' | 'mkdir' | 'symlink'; dir: number; name: number; mode: number}
  | {op: 'link'; file: number; dir: number; name: number}
  | {op: 'unlink' | 'rmdir'; dir: number; name: number}
  | {op: 'rename'; dir: number; name: number; dir2: number; name2: number; flags: number}
  | {op: 'write'; file: number; pos: number; len: number; seed: number}
  | {op: 'truncate'; file: number; size: number}
  | {op: 'setxattr'; node: number; name: number; len: number; flags: number}
  | {op: 'removexattr'; node: number; name: number}
  | {op: 'chmod'; node: number; mode: number}
  | {op: 'checkpoint' | 'reopen'}

const idx = fc.nat(1000)
const nameIdx = fc.nat(NAMES.length - 1)
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({op: fc.constantFrom('create' as const, 'mkdir' as const, 'symlink' as const), dir: idx, name: nameIdx, mode: fc.nat(0o777)}),
  },
  {weight: 2, arbitrary: fc.record({op: fc.constant('link' as const), file: idx, dir: idx, name: nameIdx})},
  {weight: 3, arbitrary: fc.record({op: fc.constantFrom('unlink' as const, 'rmdir' as const), dir: idx, name: nameIdx})},
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('rename' as const),
      dir: idx,
      name: nameIdx,
      dir2: idx,
      name2: nameIdx,
      flags: fc.constantFrom(0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({op: fc.constant('write' as const), file: idx, pos: fc.oneof(fc.nat(5000), fc.nat(300_000)), len: fc.nat(6000), seed: fc.nat(255)}),
  },
  {weight: 2, arbitrary: fc.record({op: fc.constant('truncate' as const), file: idx, size: fc.oneof(fc.nat(4000), fc.nat(200_000))})},
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('setxattr' as const),
      node: idx,
      name: fc.nat(3),
      len: fc.nat(300),
      flags: fc.constantFrom(0, 0, XATTR_CREATE, XATTR_REPLACE),
    }),
  },
  {weight: 1, arbitrary: fc.record({op: fc.constant('removexattr' as const), node: idx, name: fc.nat(3)})},
  {weight: 1, arbitrary: fc.record({op: fc.constant('chmod' as const), node: idx, mode: fc.nat(0o7777)})},
  {weight: 1, arbitrary: fc.record({op: fc.constantFrom('checkpoint' as const, 'reopen' as const)})},
)

function pick(list: number[], i: number): number | undefined {
  return list.length === 0 ? undefined : list[i % list.length]
}

function fill(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len)
  for (let i = 0; i < len; i++) b[i] = (seed + i * 31) & 0xff
  return b
}

/** Run one op on both; both must throw the same errno or both succeed. */
class Runner {
  model = new Model()
  /** model id -> image inode number */
  ino = new Map<number, number>([[1, ROOT_INO]])
  image: Image

  constructor(
    readonly dir: string,
    walLimit: number,
  ) {
    this.image = Image.create(dir, {})
    if (walLimit > 0) this.reopen(walLimit)
  }

  reopen(walLimit?: number): void {
    this.image.close()
    this.image = Image.open(this.dir, {walLimit})
  }

  private both(what: string, onModel: () => void, onImage: () => void): void {
    let modelErr: string | undefined
    let imageErr: string | undefined
    try {
      onModel()
    } catch (error) {
      if (!(error instanceof ModelError)) throw error
      modelErr = error.code
    }

    try {
      onImage()
    } catch (error) {
      if (!(error instanceof FsError)) throw error
      imageErr = error.code
    }

    expect(imageErr, `${what}: image vs model`).to.equal(modelErr)
  }

  apply(o: Op): void {
    const m = this.model
    const dirs = m.ids(n => n.type === S_IFDIR)
    const files = m.ids(n => n.type === S_IFREG)
    const all = m.ids(() => true)
    const I = (id: number) => this.ino.get(id)!
    switch (o.op) {
      case 'create':
      case 'mkdir':
      case 'symlink': {
        const dir = pick(dirs, o.dir)!
        const name = NAMES[o.name]
        const type = o.op === 'create' ? S_IFREG : o.op === 'mkdir' ? S_IFDIR : S_IFLNK
        const target = o.op === 'symlink' ? `target-${o.mode}/${name}` : undefined
        let id = 0
        let ino = 0
        this.both(
          `${o.op} ${JSON.stringify(name)}`,
          () => {
            id = m.mknod(dir, name, type, o.mode, target)
          },
          () => {
            ino = this.image.mknod(I(dir), name, {mode: type | o.mode, uid: 0, gid: 0, target}).ino
          },
        )
        if (id !== 0) this.ino.set(id, ino)
        break
      }

      case 'link': {
        const id = pick(all, o.file)!
        const dir = pick(dirs, o.dir)!
        const name = NAMES[o.name]
        this.both(
          `link ${name}`,
          () => m.link(id, dir, name),
          () => this.image.link(I(id), I(dir), name),
        )
        break
      }

      case 'unlink':
      case 'rmdir': {
        const dir = pick(dirs, o.dir)!
        const name = NAMES[o.name]
        this.both(
          `${o.op} ${name}`,
          () => m.remove(dir, name, o.op === 'rmdir'),
          () => (o.op === 'rmdir' ? this.image.rmdir(I(dir), name) : this.image.unlink(I(dir), name)),
        )
        break
      }

      case 'rename': {
        const a = pick(dirs, o.dir)!
        const b = pick(dirs, o.dir2)!
        const on = NAMES[o.name]
        const nn = NAMES[o.name2]
        this.both(
          `rename ${on} -> ${nn} (${o.flags})`,
          () => m.rename(a, on, b, nn, o.flags),
          () => this.image.rename(I(a), on, I(b), nn, o.flags),
        )
        break
      }

      case 'write': {
        const id = pick(files, o.file)
        if (id === undefined) break
        const bytes = fill(o.len, o.seed)
        m.write(id, o.pos, bytes)
        expect(this.image.write(I(id), bytes, o.pos)).to.equal(o.len)
        break
      }

      case 'truncate': {
        const id = pick(files, o.file)
        if (id === undefined) break
        m.truncate(id, o.size)
        this.image.setattr(I(id), {size: o.size})
        break
      }

      case 'setxattr': {
        const id = pick(all, o.node)!
        const name = `user.k${o.name}`
        const value = fill(o.len, o.name)
        this.both(
          `setxattr ${name}`,
          () => m.setxattr(id, name, value, o.flags),
          () => this.image.setxattr(I(id), name, value, o.flags),
        )
        break
      }

      case 'removexattr': {
        const id = pick(all, o.node)!
        const name = `user.k${o.name}`
        this.both(
          `removexattr ${name}`,
          () => m.removexattr(id, name),
          () => this.image.removexattr(I(id), name),
        )
        break
      }

      case 'chmod': {
        const id = pick(all, o.node)!
        m.get(id).mode = o.mode
        this.image.setattr(I(id), {mode: o.mode})
        break
      }

      case 'checkpoint': {
        this.image.checkpoint()
        break
      }

      case 'reopen': {
        this.reopen()
        break
      }
    }
  }

  /** Compare the whole tree reachable from the root with the model. */
  compare(): void {
    const seen = new Map<number, number>() // image ino -> model id
    const walk = (id: number, ino: number, where: string): void => {
      const node = this.model.get(id)
      const attr = this.image.getattr(ino)
      expect(attr.mode & 0o170000, `${where}: type`).to.equal(node.type)
      expect(attr.mode & 0o7777, `${where}: mode`).to.equal(node.mode & 0o7777)
      expect(attr.nlink, `${where}: nlink`).to.equal(node.nlink)
      const xattrs = Object.fromEntries([...node.xattrs].map(([k, v]) => [k, v.toString('hex')]))
      const got = Object.fromEntries(this.image.listxattr(ino).map(k => [k, this.image.getxattr(ino, k).toString('hex')]))
      expect(got, `${where}: xattrs`).to.deep.equal(xattrs)
      if (node.type === S_IFREG) {
        expect(attr.size, `${where}: size`).to.equal(node.data.length)
        const buf = Buffer.alloc(node.data.length + 10)
        const n = this.image.read(ino, buf, 0)
        expect(n, `${where}: bytes read`).to.equal(node.data.length)
        expect(buf.subarray(0, n).equals(node.data), `${where}: contents`).to.equal(true)
      }

      if (node.type === S_IFLNK) expect(this.image.readlink(ino).toString(), `${where}: target`).to.equal(node.target)
      if (node.type === S_IFDIR) {
        const entries = [...this.image.readdir(ino)]
        const names = entries.map(e => e.name.toString()).sort()
        expect(names, `${where}: entries`).to.deep.equal([...node.children!.keys()].sort())
        expect(this.image.lookup(ino, '..'), `${where}: ..`).to.equal(this.ino.get(node.parent!))
        for (const e of entries) {
          const childId = node.children!.get(e.name.toString())!
          expect(e.type, `${where}/${e.name}: d_type`).to.equal(this.model.get(childId).type)
          expect(this.image.lookup(ino, e.name), `${where}/${e.name}: lookup`).to.equal(e.ino)
          // Hard links: one image inode per model node, and the same one each time.
          const known = seen.get(e.ino)
          if (known === undefined) {
            seen.set(e.ino, childId)
            this.ino.set(childId, e.ino)
            walk(childId, e.ino, `${where}/${e.name}`)
          } else {
            expect(known, `${where}/${e.name}: hard link identity`).to.equal(childId)
          }
        }
      }
    }

    walk(1, ROOT_INO, '')
    expect(this.image.usage().inodes, 'live inodes').to.equal(this.model.nodes.size)
  }
}

describe('storage: model-based property test', function () {
  let root: string
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-model-'))
  })
  after(() => fs.rmSync(root, {recursive: true, force: true}))

  const runs = Number(process.env.RAZORFS_MODEL_RUNS ?? 1000)
  it(`${runs} random sequences match the model after close + reopen or crash + recovery`, function () {
    this.timeout(0)
    let n = 0
    fc.assert(
      fc.property(
        fc.array(opArb, {minLength: 1, maxLength: 40}),
        fc.constantFrom('close', 'close', 'crash'),
        fc.constantFrom(0, 0, 4096),
        (ops, ending, walLimit) => {
          const dir = path.join(root, `run-${n++}`)
          fs.mkdirSync(dir)
          const r = new Runner(dir, walLimit)
          try {
            for (const o of ops) r.apply(o)
            if (ending === 'crash') r.image.abandon()
            else r.image.close()
            r.image = Image.open(dir)
            if (ending === 'crash') expect(r.image.info().recovery.wasClean).to.equal(false)
            r.compare()
          } finally {
            r.image.abandon()
            fs.rmSync(dir, {recursive: true, force: true})
          }
        },
      ),
      {numRuns: runs, seed: process.env.RAZORFS_SEED === undefined ? undefined : Number(process.env.RAZORFS_SEED)},
    )
  })
})
