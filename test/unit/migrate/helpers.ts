/**
 * Helpers of the migration tests: the C RAZORFS fixtures (../shared/fixtures/c-razorfs from the
 * repo root) and their manifests, writable copies to damage, and listings of a migrated image
 * (through the storage API or a mountpoint) in the manifest's terms.
 */
import {expect} from 'chai'
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import zlib from 'node:zlib'
import {fileURLToPath} from 'node:url'

import {C_NODE, cSlotOffset} from '../../../src/migrate/c-format.js'
import {Image, ROOT_INO} from '../../../src/storage/index.js'
import type {Volume} from '../../../src/storage/volume.js'

/** This file runs from dist/test/unit/migrate/; the repo root is four levels up. */
export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url))
export const FIXTURES = path.join(REPO_ROOT, '..', 'shared', 'fixtures', 'c-razorfs')

export interface Fixture {
  name: 'disk' | 'shm' | 'disk-crashed'
  /** The directory of the C image's files. */
  dir: string
  layout: 'disk' | 'shm'
  wal: string
  manifest: string
}

export const ALL_FIXTURES: Fixture[] = [
  {
    name: 'disk',
    dir: path.join(FIXTURES, 'disk', 'var-lib-razorfs'),
    layout: 'disk',
    wal: path.join(FIXTURES, 'disk', 'razorfs_wal.log'),
    manifest: path.join(FIXTURES, 'disk', 'manifest.tsv'),
  },
  {
    name: 'shm',
    dir: path.join(FIXTURES, 'shm', 'dev-shm'),
    layout: 'shm',
    wal: path.join(FIXTURES, 'shm', 'razorfs_wal.log'),
    manifest: path.join(FIXTURES, 'shm', 'manifest.tsv'),
  },
  {
    name: 'disk-crashed',
    dir: path.join(FIXTURES, 'disk-crashed', 'var-lib-razorfs'),
    layout: 'disk',
    wal: path.join(FIXTURES, 'disk-crashed', 'razorfs_wal.log'),
    manifest: path.join(FIXTURES, 'disk-crashed', 'manifest.tsv'),
  },
]

/** The files of a razorfs image's data dir, sorted (nothing staged or left over beside them). */
export const IMAGE_FILES = ['data', 'entries.dat', 'entries.idx', 'lock', 'nodes.dat', 'strings.dat', 'strings.idx', 'wal.log']

/** The disk fixture's files: its nodes and names files, then its content files in name order. */
export const DISK_FIXTURE_FILES = ['nodes.dat', 'strings.dat', 'file_10', 'file_12', 'file_13', 'file_15', 'file_7', 'file_8', 'file_9']

export function fixture(name: Fixture['name']): Fixture {
  return ALL_FIXTURES.find(f => f.name === name)!
}

/** What a manifest says about one path; `mtime` only where the manifest has that column (and not '-'). */
export interface Row {
  path: string
  type: 'dir' | 'file'
  size: number
  sha256?: string
  mode: number
  mtime?: number
  inode: number
  slot: number
}

export function readManifest(f: Fixture): Row[] {
  const lines = fs.readFileSync(f.manifest, 'utf8').split('\n')
  const head = lines.find(l => l.startsWith('# path\t'))
  if (head === undefined) throw new Error(`${f.manifest}: no "# path" header line`)
  const cols = head.slice(2).split('\t')
  const rows: Row[] = []
  for (const line of lines) {
    if (line === '' || line.startsWith('#')) continue
    const cells = line.split('\t')
    const get = (name: string) => cells[cols.indexOf(name)]
    const mtime = cols.includes('mtime_epoch') && get('mtime_epoch') !== '-' ? Number(get('mtime_epoch')) : undefined
    rows.push({
      path: get('path'),
      type: get('type') as Row['type'],
      size: Number(get('size')),
      ...(get('sha256') === '-' ? {} : {sha256: get('sha256')}),
      mode: Number.parseInt(get('mode'), 8),
      ...(mtime === undefined ? {} : {mtime}),
      inode: Number(get('c_inode')),
      slot: Number(get('c_node_index')),
    })
  }

  return rows
}

/** A listing entry of a migrated tree. */
export interface Listed {
  path: string
  type: 'dir' | 'file' | 'other'
  size: number
  mode: number
  mtime: number
  sha256?: string
}

/** Every entry of the image in `dataDir`, through the storage API (read-only open). */
export function listImage(dataDir: string): Listed[] {
  const image = Image.open(dataDir, {readOnly: true})
  try {
    return listVolume(image)
  } finally {
    image.close()
  }
}

/** Every entry of a volume (an image, or a volume on PostgreSQL), through the storage API. */
export function listVolume(volume: Volume): Listed[] {
  const out: Listed[] = []
  const visit = (ino: number, p: string): void => {
    const a = volume.getattr(ino)
    const fmt = a.mode & 0o170000
    const type = fmt === 0o040000 ? 'dir' : fmt === 0o100000 ? 'file' : 'other'
    const item: Listed = {path: p, type, size: type === 'dir' ? 0 : a.size, mode: a.mode & 0o7777, mtime: a.mtime.sec}
    if (type === 'file') {
      const hash = createHash('sha256')
      const buf = Buffer.alloc(65536)
      for (let pos = 0; pos < a.size; ) {
        const n = volume.read(ino, buf, pos)
        if (n === 0) break
        hash.update(buf.subarray(0, n))
        pos += n
      }

      item.sha256 = hash.digest('hex')
    }

    out.push(item)
    if (type === 'dir') {
      for (const e of volume.readdir(ino)) visit(e.ino, p === '/' ? `/${e.name.toString()}` : `${p}/${e.name.toString()}`)
    }
  }

  visit(ROOT_INO, '/')
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}

/** Every entry under a mountpoint, through node:fs. */
export function listMount(mnt: string): Listed[] {
  const out: Listed[] = []
  const visit = (abs: string, p: string): void => {
    const st = fs.lstatSync(abs)
    const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other'
    const item: Listed = {path: p, type, size: type === 'dir' ? 0 : st.size, mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000)}
    if (type === 'file') item.sha256 = createHash('sha256').update(fs.readFileSync(abs)).digest('hex')
    out.push(item)
    if (type === 'dir') for (const name of fs.readdirSync(abs)) visit(path.join(abs, name), p === '/' ? `/${name}` : `${p}/${name}`)
  }

  visit(mnt, '/')
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}

/** The listing matches the manifest exactly: the same paths, and for each its type, size, sha256, mode, mtime. */
export function expectMatchesManifest(listed: Listed[], rows: Row[], what: string): void {
  expect(
    listed.map(l => l.path),
    `${what}: paths`,
  ).to.deep.equal(rows.map(r => r.path).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)))
  const byPath = new Map(listed.map(l => [l.path, l]))
  for (const r of rows) {
    const l = byPath.get(r.path)!
    expect(l.type, `${what}: ${r.path} type`).to.equal(r.type)
    expect(l.mode, `${what}: ${r.path} mode`).to.equal(r.mode)
    if (r.type === 'file') {
      expect(l.size, `${what}: ${r.path} size`).to.equal(r.size)
      expect(l.sha256, `${what}: ${r.path} sha256`).to.equal(r.sha256)
    }

    if (r.mtime !== undefined) expect(l.mtime, `${what}: ${r.path} mtime`).to.equal(r.mtime)
  }
}

/** A fresh temp dir, removed by `remove`. */
export function tmp(prefix = 'razorfs-migrate-'): {dir: string; remove: () => void} {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  return {dir, remove: () => fs.rmSync(dir, {recursive: true, force: true})}
}

/** A writable copy of a fixture's image files in `to` (created). */
export function copyFixture(f: Fixture, to: string): string {
  fs.mkdirSync(to, {recursive: true})
  for (const name of fs.readdirSync(f.dir)) {
    fs.copyFileSync(path.join(f.dir, name), path.join(to, name))
    fs.chmodSync(path.join(to, name), 0o644)
  }

  return to
}

/** Overwrite bytes of `file` at `off`. */
export function patch(file: string, off: number, bytes: Buffer | number[]): void {
  const fd = fs.openSync(file, 'r+')
  try {
    const buf = Buffer.from(bytes)
    fs.writeSync(fd, buf, 0, buf.length, off)
  } finally {
    fs.closeSync(fd)
  }
}

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2)
  b.writeUInt16LE(n)
  return b
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n >>> 0)
  return b
}

export function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8)
  b.writeBigUInt64LE(n)
  return b
}

type NodeField = 'inode' | 'parent' | 'numChildren' | 'mode' | 'nameOffset' | 'size' | 'mtime'

/** Set one field of node slot `slot` in a nodes file. */
export function setNode(nodesFile: string, slot: number, field: NodeField, value: number | bigint): void {
  const off = cSlotOffset(slot) + C_NODE.OFF[field]
  const bytes = field === 'numChildren' || field === 'mode' ? u16(Number(value)) : field === 'size' ? u64(BigInt(value)) : u32(Number(value))
  patch(nodesFile, off, bytes)
}

/** Set child `k` of node slot `slot`. */
export function setChild(nodesFile: string, slot: number, k: number, child: number): void {
  patch(nodesFile, cSlotOffset(slot) + C_NODE.OFF.children + 2 * k, u16(child))
}

export function readNode(nodesFile: string, slot: number): {inode: number; numChildren: number; nameOffset: number; children: number[]} {
  const b = fs.readFileSync(nodesFile)
  const o = cSlotOffset(slot)
  const n = b.readUInt16LE(o + C_NODE.OFF.numChildren)
  return {
    inode: b.readUInt32LE(o),
    numChildren: n,
    nameOffset: b.readUInt32LE(o + C_NODE.OFF.nameOffset),
    children: Array.from({length: n}, (_, k) => b.readUInt16LE(o + C_NODE.OFF.children + 2 * k)),
  }
}

/** Append a NUL-terminated name to a disk-layout strings.dat; returns its name_offset. */
export function appendName(stringsFile: string, name: Buffer | string): number {
  const b = fs.readFileSync(stringsFile)
  const used = b.readUInt32LE(0)
  const bytes = Buffer.concat([Buffer.from(name), Buffer.from([0])])
  const out = Buffer.concat([u32(used + bytes.length), b.subarray(4, 4 + used), bytes])
  fs.writeFileSync(stringsFile, out)
  return used
}

/** Name, size, mode and sha256 of every file under `dir` (recursively): to prove nothing changed. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  if (!fs.existsSync(dir)) return out
  const visit = (abs: string, rel: string): void => {
    const st = fs.lstatSync(abs)
    if (st.isDirectory()) {
      out[`${rel}/`] = `dir ${(st.mode & 0o7777).toString(8)}`
      for (const name of fs.readdirSync(abs)) visit(path.join(abs, name), `${rel}/${name}`)
    } else {
      const sha = st.isFile() ? createHash('sha256').update(fs.readFileSync(abs)).digest('hex') : 'other'
      out[rel] = `${st.size} ${(st.mode & 0o7777).toString(8)} ${sha} ${st.mtimeMs}`
    }
  }

  visit(dir, '')
  return out
}

/** One node of a synthetic C image. */
export interface CNodeSpec {
  slot: number
  inode: number
  parent: number
  /** Full mode: S_IFDIR or S_IFREG plus permission bits. */
  mode: number
  name: string
  children?: number[]
  mtime?: number
  /** Regular files: the content (a content file is written unless it is empty). */
  content?: Buffer
  compress?: boolean
}

/** Write a C RAZORFS image of either layout into `dir` (created), as FORMAT.md describes it. */
export function writeCImage(dir: string, layout: 'disk' | 'shm', nodes: CNodeSpec[], capacity = 1024): void {
  fs.mkdirSync(dir, {recursive: true})
  const buf = Buffer.alloc(24 + 130 * capacity)
  buf.writeUInt32LE(0x52_41_5a_4f, 0)
  buf.writeUInt32LE(1, 4)
  buf.writeUInt32LE(capacity, 8)
  buf.writeUInt32LE(Math.max(...nodes.map(n => n.slot)) + 1, 12)
  buf.writeUInt32LE(Math.max(...nodes.map(n => n.inode)) + 1, 16)
  const names: Buffer[] = []
  let used = 0 // bytes of names (after the 4-byte prefix)
  const offsets = new Map<string, number>()
  const nameOffset = (name: string): number => {
    if (!offsets.has(name)) {
      offsets.set(name, used)
      names.push(Buffer.from(`${name}\0`))
      used += Buffer.byteLength(name) + 1
    }

    return layout === 'disk' ? offsets.get(name)! : offsets.get(name)! + 4
  }

  for (const n of nodes) {
    const o = cSlotOffset(n.slot)
    const children = n.children ?? []
    buf.writeUInt32LE(n.inode, o)
    buf.writeUInt32LE(n.parent, o + 4)
    buf.writeUInt16LE(children.length, o + 8)
    buf.writeUInt16LE(n.mode, o + 10)
    buf.writeUInt32LE(nameOffset(n.name), o + 12)
    for (let k = 0; k < 16; k++) buf.writeUInt16LE(k < children.length ? children[k] : 0xffff, o + 16 + 2 * k)
    buf.writeBigUInt64LE(BigInt(n.content?.length ?? 0), o + 48)
    buf.writeUInt32LE(n.mtime ?? 1_700_000_000, o + 56)
    if (n.content !== undefined && n.content.length > 0) {
      let payload = n.content
      if (n.compress) {
        const z = zlib.deflateSync(n.content, {level: 1})
        const h = Buffer.alloc(12)
        h.writeUInt32LE(0x52_5a_43_50, 0)
        h.writeUInt32LE(n.content.length, 4)
        h.writeUInt32LE(z.length, 8)
        payload = Buffer.concat([h, z])
      }

      const head = Buffer.alloc(32)
      head.writeUInt32LE(0x46_49_4c_45, 0)
      head.writeUInt32LE(n.inode, 4)
      head.writeBigUInt64LE(BigInt(n.content.length), 8)
      head.writeBigUInt64LE(BigInt(payload.length), 16)
      head.writeInt32LE(n.compress ? 1 : 0, 24)
      fs.writeFileSync(path.join(dir, `${layout === 'disk' ? 'file_' : 'razorfs_file_'}${n.inode}`), Buffer.concat([head, payload]))
    }
  }

  fs.writeFileSync(path.join(dir, layout === 'disk' ? 'nodes.dat' : 'razorfs_nodes'), buf)
  const body = Buffer.concat(names)
  if (layout === 'disk') {
    fs.writeFileSync(path.join(dir, 'strings.dat'), Buffer.concat([u32(used), body]))
  } else {
    const strings = Buffer.alloc(1024 * 1024)
    strings.writeUInt32LE(used + 4, 0)
    body.copy(strings, 4)
    fs.writeFileSync(path.join(dir, 'razorfs_strings'), strings)
  }
}

/** A copy of the disk fixture with three bad entries: a name with '/', a content header naming another inode, a child out of range. */
export function hostile(dir: string): string {
  const src = copyFixture(fixture('disk'), dir)
  const nodes = path.join(src, 'nodes.dat')
  patch(path.join(src, 'strings.dat'), 4 + readNode(nodes, 2).nameOffset, Buffer.from('no/es')) // /docs/notes, with deep/leaf.txt below
  patch(path.join(src, 'file_15'), 4, u32(14)) // /readme_moved.txt
  setNode(nodes, 4, 'numChildren', 1) // /emptydir lists slot 5000
  setChild(nodes, 4, 0, 5000)
  return src
}

/** What --skip-bad leaves out of hostile(): the bad entries and what hangs below them. */
export const HOSTILE_LEFT_OUT = ['/docs/notes', '/docs/notes/deep', '/docs/notes/deep/leaf.txt', '/readme_moved.txt']
