/**
 * Pass 0: the headers of the five mapped files, before the image is opened.
 *
 * Checks: every file exists, is at least the header and control pages long, no longer than one
 *   mapping, a whole number of pages, and as long as its header's capacity; every header field
 *   (the order and rules of `parseHeader` in store.ts, but reporting each bad field instead of
 *   stopping at the first); bytes 256 to 4095 of page 0 are zeros; every file has the image's UUID.
 * Collects: the parsed headers, the image's UUID (the majority of the valid headers and the WAL's),
 *   whether the image was closed cleanly (every header valid and HF_CLEAN: without -f the check
 *   stops after the log pass), and `blocked`: reasons the image cannot be opened yet.
 * Relies on: nothing (this pass and pass 7 read raw bytes with plain reads, no mapping).
 * Repairs: raw writes (headers are never logged; the lock is held): a bad header is rebuilt from the
 *   file's length and the other files (capacity from the length, checkpointLsn from the WAL's start
 *   so that recovery replays every logged transaction, UUID and times from the other headers);
 *   files are extended with zeros (never cut).
 * Frees: nothing.
 */
import {randomUUID} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import {DATA_OFFSET, FILES, FORMAT_VERSION, HEADER, HF_CLEAN, PAGE_SIZE, WAL_HEADER, WAL_NAME, type FileSpec} from '../storage/format.js'
import {MAX_MAPPING, readFully} from '../storage/mapped-file.js'
import * as header from '../storage/codec/header.js'
import {type HeaderInfo, uuidString} from '../storage/codec/header.js'
import * as walHeader from '../storage/codec/wal-header.js'
import type {FsckContext} from './context.js'
import {PR} from './problems.js'

export interface FileCheck {
  spec: FileSpec
  path: string
  present: boolean
  size: number
  /** The header, when its checksum and every field are valid (or once rebuilt). */
  header: HeaderInfo | undefined
  /** The UUID of a header whose checksum is right (a vote for the image's UUID). */
  votedUuid: Buffer | undefined
  /** The header must be written anew (it is corrupt, or the file was created or extended). */
  rebuild: boolean
  /**
   * Records of the file may be lost: it was missing, shorter than its header and control pages or
   * than its header's capacity, or its header was unreadable (a file overwritten whole, e.g.
   * zeroed). Passes 1 to 6 salvage around it (src/fsck/salvage.ts).
   */
  damaged: boolean
}

export interface WalPeek {
  path: string
  present: boolean
  size: number
  /** Why the header cannot be used, or undefined if it can. */
  bad: string | undefined
  /** The header's version is newer than this build's, and its checksum is right. */
  newer: number | undefined
  checksumOk: boolean
  uuid: Buffer | undefined
  startLsn: number
  salt: number
}

export interface PreOpen {
  files: FileCheck[]
  wal: WalPeek
  imageUuid: Buffer
  /** Every header valid, unchanged and marked clean. */
  clean: boolean
  /** Why the image cannot be opened (problems left uncorrected). */
  blocked: string[]
}

const MIN_SIZE = DATA_OFFSET
/** Smallest length fsck gives a file it creates or extends: header and control pages, 256 buckets for the indexes. */
function minLength(spec: FileSpec): number {
  return roundUp(DATA_OFFSET + (spec.recordSize === 4 ? 4 * 256 : 0))
}

function roundUp(n: number): number {
  return Math.ceil(n / PAGE_SIZE) * PAGE_SIZE
}

interface Issue {
  field: string
  value: string
  expected: string
}

/**
 * Every problem of a header (codec/header.ts `validate`, the rules `Store.open` applies, but each
 * one reported): the checksum apart, and the file's length left to the caller (it may extend it).
 */
function headerIssues(spec: FileSpec, head: Buffer): {checksum: header.HeaderProblem | undefined; version: number; magicOk: boolean; issues: Issue[]} {
  const problems = header.validate(spec, head, Number.POSITIVE_INFINITY)
  const issues = problems.filter(p => p.field !== 'checksum').map(({field, value, expected}) => ({field, value, expected}))
  return {
    checksum: problems.find(p => p.field === 'checksum'),
    version: header.decode(head).formatVersion,
    magicOk: !problems.some(p => p.field === 'magic'),
    issues,
  }
}

function readAt(file: string, len: number, pos: number): Buffer {
  const fd = fs.openSync(file, 'r')
  try {
    const out = Buffer.alloc(len)
    return out.subarray(0, readFully(fd, out, pos))
  } finally {
    fs.closeSync(fd)
  }
}

/** pwrite + fsync (the lock is held; headers are never logged). */
export function writeAt(file: string, data: Buffer, pos: number): void {
  const fd = fs.openSync(file, 'r+')
  try {
    let off = 0
    while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off, pos + off)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

/** Extend (never cut) a file with zeros to `size` bytes. */
function extend(file: string, size: number): void {
  const fd = fs.openSync(file, 'r+')
  try {
    if (fs.fstatSync(fd).size < size) fs.ftruncateSync(fd, size)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

/** Read and judge the WAL header (pass 7 reports its problems; pass 0 only uses its UUID and start). */
export function peekWal(dir: string): WalPeek {
  const file = path.join(dir, WAL_NAME)
  const peek: WalPeek = {path: file, present: false, size: 0, bad: undefined, newer: undefined, checksumOk: false, uuid: undefined, startLsn: 0, salt: 0}
  try {
    peek.size = fs.statSync(file).size
    peek.present = true
  } catch {
    peek.bad = 'missing'
    return peek
  }

  const head = readAt(file, WAL_HEADER.SIZE, 0)
  const problems = walHeader.validate(head)
  const has = (field: string): boolean => problems.some(p => p.field === field)
  peek.checksumOk = head.length === WAL_HEADER.SIZE && !has('checksum')
  const version = head.length === WAL_HEADER.SIZE ? walHeader.decode(head).formatVersion : 0
  // A newer log with a right checksum is the newer format, not damage; otherwise the first problem.
  if (!has('magic') && version > FORMAT_VERSION && peek.checksumOk) peek.newer = version
  else if (problems.length > 0) peek.bad = problems.find(p => p.field !== 'formatVersion' || version < 1)?.message
  if (peek.checksumOk) {
    const h = walHeader.decode(head)
    peek.uuid = h.uuid
    peek.startLsn = h.startLsn
    peek.salt = h.salt
  }

  return peek
}

/** Checkpoint LSN for a rebuilt header: the WAL's start - 1 (recovery replays every record of the log). */
export function rebuildLsn(pre: Pick<PreOpen, 'files' | 'wal'>): number {
  if (pre.wal.bad === undefined && pre.wal.newer === undefined && pre.wal.startLsn >= 1) return pre.wal.startLsn - 1
  const lsns = pre.files.filter(f => f.header !== undefined && !f.rebuild).map(f => f.header!.checkpointLsn)
  return lsns.length === 0 ? 0 : Math.min(...lsns)
}

export function pass0(ctx: FsckContext, dir: string): PreOpen {
  ctx.header(PR.PR_0_PASS_HEADER)
  const files: FileCheck[] = []
  const blocked: string[] = []
  const wal = peekWal(dir)
  let problems = 0
  const ask = (code: number, values: Record<string, unknown>): boolean => {
    problems++
    return ctx.fix(code, values)
  }

  for (const spec of FILES) {
    const file = path.join(dir, spec.name)
    const fc: FileCheck = {spec, path: file, present: false, size: 0, header: undefined, votedUuid: undefined, rebuild: false, damaged: false}
    files.push(fc)
    try {
      fc.size = fs.statSync(file).size
      fc.present = true
    } catch {
      fc.damaged = true
      if (ask(PR.PR_0_FILE_MISSING, {file: spec.name})) {
        fs.writeFileSync(file, Buffer.alloc(0), {mode: 0o600})
        fs.chmodSync(file, 0o600)
        extend(file, minLength(spec))
        fc.present = true
        fc.size = minLength(spec)
        fc.rebuild = true
      } else {
        blocked.push(`${spec.name} is missing`)
      }

      continue
    }

    if (fc.size > MAX_MAPPING) ctx.fix(PR.PR_0_FILE_TOO_BIG, {file: spec.name, size: fc.size, max: MAX_MAPPING})
    if (fc.size < MIN_SIZE) {
      fc.damaged = true
      if (ask(PR.PR_0_FILE_SHORT, {file: spec.name, size: fc.size, min: MIN_SIZE})) {
        extend(file, minLength(spec))
        fc.size = minLength(spec)
      } else {
        blocked.push(`${spec.name} is truncated`)
        continue
      }
    }

    const head = readAt(file, PAGE_SIZE, 0)
    const {checksum, version, magicOk, issues} = headerIssues(spec, head)
    if (version > FORMAT_VERSION && checksum === undefined && magicOk) {
      ctx.fix(PR.PR_0_VERSION_NEWER, {file: spec.name, version, supported: FORMAT_VERSION})
    }

    if (checksum === undefined && !issues.some(i => i.field === 'uuid')) fc.votedUuid = header.decode(head).uuid
    if (issues.length > 0 || checksum !== undefined) {
      fc.damaged = true
      let rebuild = false
      if (issues.length === 0) {
        rebuild = ask(PR.PR_0_HEADER_CHECKSUM, {file: spec.name, stored: checksum!.value, computed: checksum!.expected})
      } else {
        for (const issue of issues) rebuild = ask(PR.PR_0_HEADER_FIELD, {file: spec.name, ...issue}) || rebuild
      }

      if (rebuild) fc.rebuild = true
      else blocked.push(`the header of ${spec.name} is corrupt`)
    } else if (!fc.rebuild) {
      fc.header = header.decode(head)
      const needed = DATA_OFFSET + fc.header.capacity * spec.recordSize
      if (needed > fc.size) {
        fc.damaged = true
        if (ask(PR.PR_0_FILE_TRUNCATED, {file: spec.name, size: fc.size, capacity: fc.header.capacity, needed})) {
          extend(file, roundUp(needed))
          fc.size = roundUp(needed)
        } else {
          blocked.push(`${spec.name} is truncated`)
        }
      }
    }

    if (fc.size % PAGE_SIZE !== 0 && ask(PR.PR_0_FILE_UNALIGNED, {file: spec.name, size: fc.size, page: PAGE_SIZE})) {
      extend(file, roundUp(fc.size))
      fc.size = roundUp(fc.size)
    }

    const garbage = head.subarray(HEADER.SIZE, PAGE_SIZE)
    const first = garbage.findIndex(b => b !== 0)
    if (first >= 0) {
      let last = garbage.length - 1
      while (garbage[last] === 0) last--
      if (ask(PR.PR_0_PAGE0_GARBAGE, {file: spec.name, from: HEADER.SIZE + first, to: HEADER.SIZE + last})) {
        writeAt(file, Buffer.alloc(PAGE_SIZE - HEADER.SIZE), HEADER.SIZE)
      }
    }
  }

  // The image's UUID: the most common among the headers with a right checksum and the WAL's.
  const votes = new Map<string, number>()
  for (const f of files) if (f.votedUuid !== undefined) votes.set(f.votedUuid.toString('hex'), (votes.get(f.votedUuid.toString('hex')) ?? 0) + 1)
  if (wal.uuid !== undefined && !wal.uuid.every(b => b === 0)) votes.set(wal.uuid.toString('hex'), (votes.get(wal.uuid.toString('hex')) ?? 0) + 1)
  let best = files[0].votedUuid?.toString('hex')
  for (const [uuid, count] of votes) if (best === undefined || count > (votes.get(best) ?? 0)) best = uuid
  const imageUuid = best === undefined ? Buffer.from(randomUUID().replaceAll('-', ''), 'hex') : Buffer.from(best, 'hex')

  for (const f of files) {
    if (f.header === undefined || f.rebuild || f.header.uuid.equals(imageUuid)) continue
    if (ask(PR.PR_0_UUID_MISMATCH, {file: f.spec.name, uuid: uuidString(f.header.uuid), imageUuid: uuidString(imageUuid)})) {
      f.header.uuid = imageUuid
      f.header.flags = 0
      writeAt(f.path, header.encode(f.spec, f.header), 0)
    } else {
      blocked.push(`${f.spec.name} belongs to another image`)
    }
  }

  // Rebuild the headers that need it, from the file lengths and the other headers.
  const pre: PreOpen = {files, wal, imageUuid, clean: false, blocked}
  const good = files.filter(f => f.header !== undefined && !f.rebuild).map(f => f.header!)
  const lsn = rebuildLsn(pre)
  for (const f of files) {
    if (!f.rebuild || !f.present) continue
    const capacity = Math.floor((f.size - DATA_OFFSET) / f.spec.recordSize)
    const now = Date.now()
    f.header = {
      formatVersion: FORMAT_VERSION,
      recordSize: f.spec.recordSize,
      flags: 0,
      capacity,
      used: 0,
      generation: good.length === 0 ? 0 : Math.max(...good.map(h => h.generation)),
      checkpointLsn: lsn,
      uuid: imageUuid,
      createdMs: good.length === 0 ? now : Math.min(...good.map(h => h.createdMs)),
      mountedMs: good.length === 0 ? now : Math.max(...good.map(h => h.mountedMs)),
      reclaimable: 0,
    }
    writeAt(f.path, header.encode(f.spec, f.header), 0)
  }

  pre.clean = problems === 0 && files.every(f => f.header !== undefined && (f.header.flags & HF_CLEAN) !== 0)
  return pre
}
