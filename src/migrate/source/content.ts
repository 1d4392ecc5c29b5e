/**
 * The data: content files checked (their headers through the codec), compressed payloads
 * inflated, and every regular file's content streamed and hashed, the decoded payload cut or
 * zero-extended to the node's size. A content file's problem leaves its node out.
 */
import {createHash} from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import zlib from 'node:zlib'

import {readFully} from '../../storage/mapped-file.js'
import {C_COMPRESSED_HEADER, C_FILE_HEADER, type CLayout, validateCompressedHeader, validateFileHeader} from '../c-format.js'
import {type ReadOptions, type Source, type SourceEntry, SourceError} from './model.js'

const CHUNK = 1024 * 1024

/** What a content file holds, once checked: where its payload is and how to decode it. */
interface ContentPlan {
  file: string
  compressed: boolean
  payloadBytes: number
  /** Bytes the payload decodes to. */
  decodedBytes: number
  /** The header's buffer size (not authoritative). */
  bufferSize: number
}

/** A content file's problem that leaves its node out. */
export class ContentProblem extends Error {}

function openNoFollow(file: string): number {
  try {
    return fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ELOOP') throw new ContentProblem(`content file ${path.basename(file)} is a symbolic link`)
    if (code === 'ENOENT') throw new ContentProblem(`content file ${path.basename(file)} is missing`)
    throw new ContentProblem(`cannot open content file ${path.basename(file)} (${code})`)
  }
}

/** Check a content file's header against its name and its node; inflate a compressed payload. */
function checkContent(file: string, inode: number, fd: number): {plan: ContentPlan; inflated?: Buffer} {
  const name = path.basename(file)
  const st = fs.fstatSync(fd)
  if (!st.isFile()) throw new ContentProblem(`content file ${name} is not a regular file`)
  const head = Buffer.alloc(C_FILE_HEADER.SIZE)
  const got = readFully(fd, head, 0)
  if (got < C_FILE_HEADER.SIZE) throw new ContentProblem(`content file ${name} is truncated: ${got} bytes, shorter than its ${C_FILE_HEADER.SIZE}-byte header`)
  const header = C_FILE_HEADER.decode(head)
  const problems = validateFileHeader(header, {name, inode, held: BigInt(st.size - C_FILE_HEADER.SIZE)})
  if (problems.length > 0) throw new ContentProblem(problems[0])
  const payloadBytes = Number(header.dataSize)
  const bufferSize = header.bufferSize
  if (header.isCompressed === 0) return {plan: {file, compressed: false, payloadBytes, decodedBytes: payloadBytes, bufferSize}}

  const payload = Buffer.alloc(payloadBytes)
  if (readFully(fd, payload, C_FILE_HEADER.SIZE) !== payloadBytes) throw new ContentProblem(`content file ${name} is truncated (short read)`)
  const compression = C_COMPRESSED_HEADER.decode(payload)
  const wrong = validateCompressedHeader(compression, {name, streamBytes: payloadBytes - C_COMPRESSED_HEADER.SIZE})
  if (wrong.length > 0) throw new ContentProblem(wrong[0])
  const original = compression.originalSize
  let inflated: Buffer
  try {
    // One byte more than promised, so that a stream that inflates to more is caught.
    inflated = zlib.inflateSync(payload.subarray(C_COMPRESSED_HEADER.SIZE), {maxOutputLength: Math.max(1, original + 1)})
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ERR_BUFFER_TOO_LARGE')
      throw new ContentProblem(`content file ${name}: the zlib stream inflates to more than the ${original} bytes its header says`)
    throw new ContentProblem(`content file ${name}: the zlib stream is damaged (${(error as Error).message})`)
  }

  if (inflated.length !== original)
    throw new ContentProblem(`content file ${name}: the zlib stream inflates to ${inflated.length} bytes, its header says ${original}`)
  return {plan: {file, compressed: true, payloadBytes, decodedBytes: original, bufferSize}, inflated}
}

/**
 * The content of a regular file, `size` bytes: the decoded payload cut or zero-extended to the
 * node's size. Calls `sink` with each piece in order; returns the sha256. Throws ContentProblem.
 */
function streamContent(
  plan: ContentPlan | undefined,
  inode: number,
  size: number,
  sink: (piece: Buffer, pos: number) => void,
  zeros: (pos: number, length: number) => void,
): string {
  const hash = createHash('sha256')
  let pos = 0
  if (plan !== undefined) {
    const fd = openNoFollow(plan.file)
    try {
      const {plan: now, inflated} = checkContent(plan.file, inode, fd)
      if (now.compressed !== plan.compressed || now.decodedBytes !== plan.decodedBytes)
        throw new ContentProblem(`content file ${path.basename(plan.file)} changed while it was read`)
      const available = Math.min(size, now.decodedBytes)
      if (inflated !== undefined) {
        for (; pos < available; pos += CHUNK) {
          const piece = inflated.subarray(pos, Math.min(available, pos + CHUNK))
          hash.update(piece)
          sink(piece, pos)
        }
      } else {
        const buf = Buffer.alloc(Math.min(CHUNK, Math.max(1, available)))
        while (pos < available) {
          const want = Math.min(buf.length, available - pos)
          const n = readFully(fd, buf.subarray(0, want), C_FILE_HEADER.SIZE + pos)
          if (n !== want) throw new ContentProblem(`content file ${path.basename(plan.file)} became shorter while it was read`)
          const piece = buf.subarray(0, n)
          hash.update(piece)
          sink(piece, pos)
          pos += n
        }
      }

      pos = available
    } finally {
      fs.closeSync(fd)
    }
  }

  if (pos < size) {
    zeros(pos, size - pos)
    const zero = Buffer.alloc(Math.min(CHUNK, size - pos))
    for (let at = pos; at < size; at += zero.length) hash.update(zero.subarray(0, Math.min(zero.length, size - at)))
  }

  return hash.digest('hex')
}

/**
 * Check and hash the content of the regular file at `at` (inode `inode`, `size` bytes) whose
 * content file in `dir` is `contentName` (undefined: it has none). Returns what the entry records
 * and notes on a content cut or zero-extended to the size. Throws ContentProblem.
 */
export function readContent(
  dir: string,
  layout: CLayout,
  contentName: string | undefined,
  inode: number,
  size: number,
  at: string,
  opts: ReadOptions,
): {content?: SourceEntry['content']; sha256: string; notes: string[]} {
  let plan: ContentPlan | undefined
  if (contentName !== undefined) {
    const fd = openNoFollow(path.join(dir, contentName))
    try {
      plan = checkContent(path.join(dir, contentName), inode, fd).plan
    } finally {
      fs.closeSync(fd)
    }
  } else if (size > 0) {
    throw new ContentProblem(`content file ${layout.contentPrefix}${inode} is missing (the file has size ${size})`)
  }

  const decoded = plan?.decodedBytes ?? 0
  if (size > decoded && size > (plan?.bufferSize ?? 0)) {
    throw new ContentProblem(`size ${size} is larger than its content (${decoded} bytes) and than its buffer (${plan?.bufferSize ?? 0} bytes)`)
  }

  const sha256 = streamContent(
    plan,
    inode,
    size,
    piece => opts.onBytes?.(piece.length),
    (_pos, length) => opts.onBytes?.(length),
  )
  if (plan === undefined) return {sha256, notes: []}
  const notes: string[] = []
  if (plan.decodedBytes > size) notes.push(`${at}: content holds ${plan.decodedBytes} bytes, the file's size is ${size}: cut to ${size}`)
  if (plan.decodedBytes < size) notes.push(`${at}: content holds ${plan.decodedBytes} bytes, the file's size is ${size}: zero-extended`)
  const content = {
    file: contentName!,
    compressed: plan.compressed,
    payloadBytes: plan.payloadBytes,
    decodedBytes: plan.decodedBytes,
    bufferSize: plan.bufferSize,
  }
  return {content, sha256, notes}
}

/**
 * Stream one entry's content into `sink` (pieces of real data, in order) and `zeros` (the
 * zero-filled tail, if the decoded payload is shorter than the node's size). Returns the sha256,
 * which must equal the one computed when the source was read, or the source changed.
 */
export function copyContent(
  source: Source,
  entry: SourceEntry,
  sink: (piece: Buffer, pos: number) => void,
  zeros: (pos: number, length: number) => void,
): string {
  const plan = entry.content === undefined ? undefined : {...entry.content, file: path.join(source.dir, entry.content.file)}
  try {
    return streamContent(plan, entry.inode, entry.size, sink, zeros)
  } catch (error) {
    if (error instanceof ContentProblem) throw new SourceError(entry.path, `${error.message} (the source changed after it was checked?)`)
    throw error
  }
}
