/**
 * Opening the volume a command names: the image of a data dir (--data-dir, or the default one), or
 * a shared volume on PostgreSQL (--meta URL). Commands resolve the flags with volumeTarget once,
 * then open with openVolume (or openServedVolume, for a mount); the FUSE server and the filesystem
 * core know the result only as a Volume.
 */
import {ensureDataDir} from './data-dir.js'
import {ImageError} from './errors.js'
import {Image} from './image.js'
import {isPgUrl} from '../volume-url.js'
import {parsePgUrl} from './pg/url.js'
import {PgVolume} from './pg/volume.js'
import type {RecoveryReport} from './types.js'

/** Where a volume is: the image of a data dir, or a schema of a PostgreSQL database. */
export type VolumeTarget =
  | {kind: 'image'; dataDir: string}
  /** url: as given (with any password); display: without its password, for messages and mountinfo. */
  | {kind: 'pg'; url: string; display: string}

/** --meta that is not a PostgreSQL URL, or a URL that does not parse: a usage error. */
export class VolumeTargetError extends Error {}

/**
 * The volume of `--meta URL` if given, else of the data dir (`dataDir()`, called only then).
 * Throws VolumeTargetError for a --meta that is not a usable PostgreSQL URL.
 */
export function volumeTarget(meta: string | undefined, dataDir: () => string): VolumeTarget {
  if (meta === undefined) return {kind: 'image', dataDir: dataDir()}
  if (!isPgUrl(meta)) throw new VolumeTargetError(`--meta ${meta}: not a PostgreSQL URL (postgres://user@host/database)`)
  try {
    return {kind: 'pg', url: meta, display: parsePgUrl(meta).display}
  } catch (error) {
    throw new VolumeTargetError(`--meta ${(error as Error).message}`)
  }
}

/** What a target is called in messages, status and mountinfo: the data dir, or the URL without its password. */
export function targetName(target: VolumeTarget): string {
  return target.kind === 'image' ? target.dataDir : target.display
}

export interface OpenVolumeOptions {
  readOnly: boolean
  /** The image's checkpoint threshold (bytes); the store's default when undefined. No meaning on PostgreSQL. */
  walLimit?: number
}

/** Open the volume of `target` as it is (an image must exist, read-write opens lock it). */
export function openVolume(target: VolumeTarget, opts: OpenVolumeOptions): Image | PgVolume {
  if (target.kind === 'pg') return PgVolume.open(target.url, {readOnly: opts.readOnly})
  return Image.open(target.dataDir, {readOnly: opts.readOnly, lock: true, walLimit: opts.walLimit})
}

/**
 * Open the volume a mount serves. An image: read-write locked, recovered, marked in use, and
 * created first (with its data dir) if there is none, except for a read-only mount; the libuv
 * pool empties and removes its freed content files and makes new ones ahead (Image.poolHostWork).
 * A volume on PostgreSQL is never created here (razorfs init --meta makes it): its absence is
 * RZ_NO_IMAGE.
 */
export function openServedVolume(target: VolumeTarget, opts: OpenVolumeOptions): Image | PgVolume {
  if (target.kind === 'image') {
    const {dataDir} = target
    ensureDataDir(dataDir)
    if (!Image.exists(dataDir)) {
      if (opts.readOnly) throw new ImageError('RZ_NO_IMAGE', 'holds no image and a read-only mount cannot create one; run `razorfs init`', dataDir)
      Image.create(dataDir, {}).close()
    }
  }

  const volume = openVolume(target, opts)
  if (volume instanceof Image) volume.poolHostWork()
  return volume
}

/** What opening recovered: an image's WAL replay; null for a volume on PostgreSQL, which has no log of its own. */
export function openRecovery(volume: Image | PgVolume): RecoveryReport | null {
  return volume instanceof Image ? volume.info().recovery : null
}
