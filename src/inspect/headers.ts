/**
 * The headers of an image, as `dumpe2fs -h` shows a superblock: every field of each mapped file's
 * HEADER (read from the file itself, as it is on disk), its control block (page 1, from the
 * open image: the WAL replayed in memory), the WAL header and what the read-only open recovered.
 * Field names are docs/FORMAT.md's.
 */
import fs from 'node:fs'
import path from 'node:path'

import {
  CONTROL_OFFSET,
  FILES,
  HEADER,
  HEAP_CONTROL,
  HF_CLEAN,
  INDEX_CONTROL,
  type Layout,
  STRING_CLASSES,
  TABLE_CONTROL,
  WAL_HEADER,
  WAL_NAME,
} from '../storage/format.js'
import type {Image} from '../storage/index.js'
import {decodeFields, fieldsOf} from '../storage/codec/field.js'
import {freeHeadFields} from '../storage/codec/control.js'
import * as header from '../storage/codec/header.js'
import {uuidString} from '../storage/codec/header.js'
import * as walHeader from '../storage/codec/wal-header.js'
import {isoMs} from './text.js'

export type FieldValue = number | string | boolean | null

/** Decode every field of a layout (codec/field.ts); `uuid` fields as a UUID, `reserved` left out, other bytes as hex. */
export function decodeLayout<K extends string>(layout: Layout<K>, buf: Buffer, base = 0): Record<string, FieldValue> {
  const out: Record<string, FieldValue> = {}
  for (const [name, value] of Object.entries(decodeFields(fieldsOf(layout), buf, base)) as Array<[string, number | Buffer]>) {
    if (name === 'reserved') continue
    out[name] = typeof value === 'number' ? value : name === 'uuid' ? uuidString(value) : value.toString('hex')
  }

  return out
}

function magicText(magic: number): string {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(magic >>> 0)
  return b.toString('latin1').replaceAll(/[^\x20-\x7E]/g, '.')
}

export interface HeaderReport {
  kind: 'header'
  file: string
  what: string
  fields: Record<string, FieldValue>
  control: Record<string, FieldValue>
}

export interface WalReport {
  kind: 'walHeader'
  file: string
  fields: Record<string, FieldValue>
}

export interface RecoveryReportLine {
  kind: 'recovery'
  wasClean: boolean
  transactions: number
  tornBytes: number
}

/** Control block fields; the heap's free-list heads are summarised (non-empty size classes). */
function controlOf(image: Image, fileId: number): Record<string, FieldValue> {
  const file = image.internals().store.files[fileId]
  const buf = file.buf
  if (fileId === 0 || fileId === 1) return decodeLayout(TABLE_CONTROL, buf, CONTROL_OFFSET)
  if (fileId === 2 || fileId === 4) return decodeLayout(INDEX_CONTROL, buf, CONTROL_OFFSET)
  const out = decodeLayout(HEAP_CONTROL, buf, CONTROL_OFFSET)
  let classes = 0
  for (let k = 1; k < STRING_CLASSES; k++) if (freeHeadFields[k].get(buf, CONTROL_OFFSET) !== 0) classes++
  delete out.freeHeads
  out.freeClasses = classes
  return out
}

export function* headerReports(image: Image): Generator<HeaderReport | WalReport | RecoveryReportLine> {
  const store = image.internals().store
  for (const spec of FILES) {
    const file = store.files[spec.id]
    const head = file.pread(0, HEADER.SIZE)
    const fields: Record<string, FieldValue> = head.length < HEADER.SIZE ? {} : decodeLayout(HEADER, head)
    const problems = header.validate(spec, head, file.size)
    if (head.length === HEADER.SIZE) {
      fields.checksumOk = !problems.some(p => p.field === 'checksum')
      fields.magicText = magicText(fields.magic as number)
      fields.clean = ((fields.flags as number) & HF_CLEAN) !== 0
      fields.createdAt = isoMs(fields.createdMs as number)
      fields.mountedAt = isoMs(fields.mountedMs as number)
    }

    fields.fileBytes = file.size
    if (problems.length > 0) fields.problems = problems.map(p => p.message).join('; ')
    yield {kind: 'header', file: spec.name, what: spec.what, fields, control: controlOf(image, spec.id)}
  }

  const walPath = path.join(image.dir, WAL_NAME)
  const fields: Record<string, FieldValue> = {}
  const fd = fs.openSync(walPath, 'r')
  try {
    const head = Buffer.alloc(WAL_HEADER.SIZE)
    const n = fs.readSync(fd, head, 0, head.length, 0)
    if (n === WAL_HEADER.SIZE) {
      Object.assign(fields, decodeLayout(WAL_HEADER, head))
      const problems = walHeader.validate(head, store.uuid)
      fields.checksumOk = !problems.some(p => p.field === 'checksum')
      if (problems.length > 0) fields.problems = problems.map(p => p.message).join('; ')
      fields.magicText = magicText(fields.magic as number)
    }

    fields.fileBytes = fs.fstatSync(fd).size
  } finally {
    fs.closeSync(fd)
  }

  const wal = store.wal
  fields.cycleBytes = wal.pos
  fields.nextLsn = wal.nextLsn
  yield {kind: 'walHeader', file: WAL_NAME, fields}
  const {recovery} = image.info()
  yield {kind: 'recovery', ...recovery}
}

/** Human form: one block per file, `field: value` lines (dumpe2fs -h style). */
export function headerText(report: HeaderReport | WalReport | RecoveryReportLine): string {
  if (report.kind === 'recovery') {
    return `recovery (this read-only open, nothing written)\n${lines({
      wasClean: report.wasClean,
      transactions: report.transactions,
      tornBytes: report.tornBytes,
    })}\n`
  }

  const title = report.kind === 'header' ? `${report.file} (${report.what})` : `${report.file} (write-ahead log)`
  let text = `${title}\n${lines(report.fields)}\n`
  if (report.kind === 'header') text += `  control block:\n${lines(report.control, '    ')}\n`
  return text
}

const HEX_FIELDS = new Set(['checksum', 'magic', 'flags', 'salt'])

function lines(fields: Record<string, FieldValue>, indent = '  '): string {
  const width = Math.max(...Object.keys(fields).map(k => k.length)) + 1
  return Object.entries(fields)
    .map(([k, v]) => {
      let shown = v === null ? '-' : typeof v === 'boolean' ? (v ? 'yes' : 'no') : String(v)
      if (typeof v === 'number' && HEX_FIELDS.has(k)) shown = `0x${v.toString(16).padStart(8, '0')}`
      return `${indent}${`${k}:`.padEnd(width)} ${shown}`
    })
    .join('\n')
}
