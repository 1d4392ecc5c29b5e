/** Helpers of the fsck tests: damaging an image on purpose, and finding its records. */
import fs from 'node:fs'
import path from 'node:path'
import zlib from 'node:zlib'

import {runFsck} from '../../../src/fsck/run.js'
import {readU64} from '../../../src/storage/codec/field.js'
import {CONTROL_OFFSET, DIRENT, HEADER, INODE, STRING, WAL_HEADER, WAL_RECORD, WAL_RECORD_MAGIC} from '../../../src/storage/format.js'
import {Image, type ImageInternals, ROOT_INO} from '../../../src/storage/index.js'

export const I = INODE.OFF
export const D = DIRENT.OFF
export const S = STRING.OFF
const TWO32 = 2 ** 32

/**
 * Open the image read-write, run `fn` with its internals (write through
 * `store.transaction(() => store.set32(...))`), then close it (a checkpoint: the bad bytes reach the
 * files) or, with `abandon`, drop it as a crash would (they stay in the WAL; no orphan is freed).
 */
export function poke(dir: string, fn: (x: ImageInternals, img: Image) => void, how: 'close' | 'abandon' = 'close'): void {
  const img = Image.open(dir)
  try {
    fn(img.internals(), img)
  } finally {
    if (how === 'close') img.close()
    else img.abandon()
  }
}

/** Slot of the inode at `p` ("/alpha/beta"), from the root. */
export function slotOf(img: Image, p: string): number {
  let ino = ROOT_INO
  for (const part of p.split('/').filter(s => s !== '')) {
    ino = img.lookup(ino, part)
    if (ino === 0) throw new Error(`no ${p}`)
  }

  return ino % TWO32
}

/** Entry slot naming `name` in the directory at `dirPath`. */
export function entryOf(img: Image, dirPath: string, name: string): number {
  const x = img.internals()
  const dir = slotOf(img, dirPath)
  const b = x.entries.file.buf
  const want = Buffer.from(name)
  for (let d = 1; d < x.entries.highWater; d++) {
    const o = x.entries.off(d)
    if (b[o + D.type] === 0 || b.readUInt32LE(o + D.parent) !== dir) continue
    if (Buffer.from(x.strings.bytes(b.readUInt32LE(o + D.name))).equals(want)) return d
  }

  throw new Error(`no entry ${name} in ${dirPath}`)
}

/** Set a u32 field of an inode / entry / string (in a transaction). */
export function setInode(x: ImageInternals, slot: number, field: number, value: number, wide = false): void {
  x.store.transaction(() =>
    wide ? x.store.set64(x.nodes.file, x.nodes.off(slot) + field, value) : x.store.set32(x.nodes.file, x.nodes.off(slot) + field, value),
  )
}

export function setEntry(x: ImageInternals, d: number, field: number, value: number, width: 1 | 4 = 4): void {
  x.store.transaction(() =>
    width === 1 ? x.store.set8(x.entries.file, x.entries.off(d) + field, value) : x.store.set32(x.entries.file, x.entries.off(d) + field, value),
  )
}

export function entryField(x: ImageInternals, d: number, field: number): number {
  return x.entries.file.buf.readUInt32LE(x.entries.off(d) + field)
}

export function inodeField(x: ImageInternals, slot: number, field: number): number {
  return x.nodes.file.buf.readUInt32LE(x.nodes.off(slot) + field)
}

export function inode64(x: ImageInternals, slot: number, field: number): number {
  return readU64(x.nodes.file.buf, x.nodes.off(slot) + field)
}

/** Set a u32 of a control block (page 1). */
export function setControl(x: ImageInternals, file: ImageInternals['nodes']['file'], field: number, value: number, wide = false): void {
  x.store.transaction(() => (wide ? x.store.set64(file, CONTROL_OFFSET + field, value) : x.store.set32(file, CONTROL_OFFSET + field, value)))
}

/** Change bytes of a file in place. */
export function patch(file: string, offset: number, bytes: Buffer): void {
  const fd = fs.openSync(file, 'r+')
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, offset)
  } finally {
    fs.closeSync(fd)
  }
}

/** Rewrite a mapped file's (256 bytes) or the WAL's (64 bytes) header checksum. */
export function fixChecksum(file: string): void {
  const size = path.basename(file) === 'wal.log' ? WAL_HEADER.SIZE : HEADER.SIZE
  const fd = fs.openSync(file, 'r+')
  try {
    const head = Buffer.alloc(size)
    fs.readSync(fd, head, 0, size, 0)
    head.writeUInt32LE(zlib.crc32(head.subarray(4)) >>> 0, 0)
    fs.writeSync(fd, head, 0, size, 0)
  } finally {
    fs.closeSync(fd)
  }
}

/** Offset just past the last record of the log's current cycle. */
export function walEnd(wal: string): number {
  const bytes = fs.readFileSync(wal)
  let lsn = readU64(bytes, WAL_HEADER.OFF.startLsn)
  let at = WAL_HEADER.SIZE
  while (at + WAL_RECORD.SIZE <= bytes.length && bytes.readUInt32LE(at) === WAL_RECORD_MAGIC && readU64(bytes, at + WAL_RECORD.OFF.lsn) === lsn) {
    at += bytes.readUInt32LE(at + WAL_RECORD.OFF.length)
    lsn++
  }

  return at
}

/** fsck -n -f of the image in `dir`: its exit code and the ids of the problems it found. */
export function fsckIds(dir: string): {exit: number; ids: string[]} {
  const r = runFsck({dir, mode: 'no', force: true})
  return {exit: r.exitCode, ids: r.problems.map(p => p.id)}
}
