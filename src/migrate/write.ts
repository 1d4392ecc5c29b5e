/**
 * Writing the source into a volume and verifying it there, for both targets of a migration: the
 * new image in its staging directory (migrate.ts) and a new volume on PostgreSQL (shared.ts).
 */
import {createHash} from 'node:crypto'

import type {Progress} from '../progress.js'
import {S_IFDIR, S_IFMT, S_IFREG} from '../storage/format.js'
import {ROOT_INO} from '../storage/index.js'
import type {Volume} from '../storage/volume.js'
import type {MigrateOptions, MigrateReport, Verified} from './types.js'
import {copyContent, type Source, SourceError} from './source.js'

export type MigrateErrorCode =
  | 'MIGRATE_NO_SOURCE' // nothing to migrate where we looked
  | 'MIGRATE_BAD_SOURCE' // the source is damaged: nothing was written
  | 'MIGRATE_SAME_DIR' // the data dir is the source's own directory
  | 'MIGRATE_TARGET' // the data dir cannot take the new image (a C image, an existing image without --force, ...)
  | 'MIGRATE_VERIFY' // the new image does not match the source (it was not put in place)
  | 'MIGRATE_WAL' // --wal names no readable file

export class MigrateError extends Error {
  readonly exitCode = 1
  constructor(
    readonly code: MigrateErrorCode,
    message: string,
    readonly report?: Partial<MigrateReport>,
  ) {
    super(message)
    this.name = 'MigrateError'
  }
}

export function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(3, '0')
}

/** The owner of everything migrated: the options', else this process's. */
export function owner(opts: MigrateOptions): {uid: number; gid: number} {
  return {uid: opts.uid ?? process.getuid?.() ?? 0, gid: opts.gid ?? process.getgid?.() ?? 0}
}

/** Write the source's entries below the root of `volume` (a new one, whose root has the source root's mode). */
export function writeEntries(volume: Volume, source: Source, opts: MigrateOptions, progress: Progress): void {
  const {uid, gid} = owner(opts)
  const inos = new Array<number>(source.entries.length)
  inos[0] = ROOT_INO
  for (let i = 1; i < source.entries.length; i++) {
    const e = source.entries[i]
    const name = e.names.at(-1)!
    const attr = volume.mknod(inos[e.parent], name, {mode: (e.type === 'dir' ? S_IFDIR : S_IFREG) | e.mode, uid, gid})
    inos[i] = attr.ino
    if (e.type !== 'file') continue
    const sha = copyContent(
      source,
      e,
      (piece, pos) => {
        volume.write(attr.ino, piece, pos)
        progress.add(piece.length)
      },
      (pos, length) => {
        volume.setattr(attr.ino, {size: pos + length})
        progress.add(length)
      },
    )
    if (sha !== e.sha256) throw new SourceError(e.path, 'its content changed after the source was checked')
  }

  // Times last: creating entries and writing contents set them.
  for (let i = source.entries.length - 1; i >= 0; i--) {
    const e = source.entries[i]
    const t = {sec: e.mtime, nsec: 0}
    volume.setattr(inos[i], {mode: e.mode, atime: t, mtime: t})
  }
}

/**
 * Compare `image` (a volume) with the source, entry by entry; throws MIGRATE_VERIFY on a
 * difference, its message ending with `outcome` (what became of the new image or volume).
 */
export function verifyVolume(image: Volume, source: Source, progress: Progress, outcome: string): Verified {
  const fail = (where: string, what: string): never => {
    throw new MigrateError('MIGRATE_VERIFY', `verification failed: ${where}: ${what}; ${outcome}`)
  }

  const inos = new Array<number>(source.entries.length)
  inos[0] = ROOT_INO
  let files = 0
  let bytes = 0
  const buf = Buffer.alloc(1024 * 1024)
  const children = new Map<number, number>()
  for (let i = 0; i < source.entries.length; i++) {
    const e = source.entries[i]
    if (i > 0) {
      const ino = image.lookup(inos[e.parent], e.names.at(-1)!)
      if (ino === 0) fail(e.path, 'missing')
      inos[i] = ino
      children.set(e.parent, (children.get(e.parent) ?? 0) + 1)
    }

    const attr = image.getattr(inos[i])
    const type = attr.mode & S_IFMT
    if (type !== (e.type === 'dir' ? S_IFDIR : S_IFREG))
      fail(e.path, `type 0o${type.toString(8)}, expected a ${e.type === 'dir' ? 'directory' : 'regular file'}`)
    if ((attr.mode & 0o7777) !== e.mode) fail(e.path, `mode ${octal(attr.mode)}, expected ${octal(e.mode)}`)
    if (attr.mtime.sec !== e.mtime || attr.mtime.nsec !== 0) fail(e.path, `mtime ${attr.mtime.sec}.${attr.mtime.nsec}, expected ${e.mtime}`)
    if (e.type === 'dir') continue
    if (attr.size !== e.size) fail(e.path, `size ${attr.size}, expected ${e.size}`)
    const hash = createHash('sha256')
    for (let pos = 0; pos < e.size; ) {
      const n = image.read(inos[i], buf, pos)
      if (n === 0) fail(e.path, `content ends at ${pos} of ${e.size} bytes`)
      hash.update(buf.subarray(0, n))
      pos += n
      progress.add(n)
    }

    const sha = hash.digest('hex')
    if (sha !== e.sha256) fail(e.path, `sha256 ${sha}, expected ${e.sha256}`)
    files++
    bytes += e.size
  }

  // Nothing more than the source: each directory holds exactly its entries.
  for (let i = 0; i < source.entries.length; i++) {
    if (source.entries[i].type !== 'dir') continue
    const count = [...image.readdir(inos[i])].length
    if (count !== (children.get(i) ?? 0)) fail(source.entries[i].path, `${count} entries, expected ${children.get(i) ?? 0}`)
  }

  return {entries: source.entries.length, files, bytes}
}
