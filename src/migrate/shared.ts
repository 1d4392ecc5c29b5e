/**
 * `razorfs migrate --meta URL`: the target is a new volume on PostgreSQL (issue 20). It is made
 * as `init --meta` makes one (refused over a volume without --force, never over a schema holding
 * other tables), then filled and verified in one transaction of the database (Volume.transaction)
 * by the writer and verifier that fill the image (write.ts): a failure (a source that changed, a
 * verification that does not match, a lost connection) rolls the whole copy back and leaves the
 * new volume empty, never half filled. What --force replaced is gone by then, as with
 * `init --force --meta`.
 */
import type {Progress} from '../progress.js'
import {errnoText, ImageError} from '../storage/errors.js'
import {parsePgUrl} from '../storage/pg/url.js'
import {PgVolume} from '../storage/pg/volume.js'
import type {MigrateOptions, MigrateReport} from './types.js'
import {type Source, SourceError} from './source.js'
import {MigrateError, owner, verifyVolume, writeEntries} from './write.js'

/** The volume's URL without its password: what the report and the messages name. */
export function sharedName(url: string): string {
  return parsePgUrl(url).display
}

/**
 * Why the URL cannot take the new volume, or undefined: create's refusals, checked without
 * writing anything. A server that cannot be reached is an error, in a dry run too.
 */
export function sharedRefusal(url: string, opts: MigrateOptions, report: MigrateReport): string | undefined {
  try {
    const {volume} = PgVolume.check(url, {force: opts.force === true})
    report.target.existed = volume
    report.target.heldImage = volume
    return undefined
  } catch (error) {
    if (!(error instanceof ImageError) || error.code === 'RZ_IO') {
      throw new MigrateError('MIGRATE_TARGET', `${errnoText(error)}; nothing was written`, report)
    }

    if (error.code === 'RZ_EXISTS') {
      report.target.existed = true
      report.target.heldImage = true
      return `${sharedName(url)} already holds a razorfs volume; use --force to replace it (its contents are lost)`
    }

    return error.message
  }
}

/** Step 4 with --meta: make the volume, then write and verify the source in it in one transaction. */
export function fillShared(url: string, source: Source, opts: MigrateOptions, report: MigrateReport, progress: Progress): void {
  const name = sharedName(url)
  const volume = PgVolume.create(url, {force: opts.force === true, ...owner(opts), rootMode: source.entries[0].mode})
  report.target.replaced = report.target.heldImage
  report.target.uuid = volume.meta.uuid
  const emptied = `the copy was rolled back: the volume at ${name} is left empty (razorfs migrate --force --meta makes it again)`
  try {
    volume.transaction(() => {
      progress.phase('writing', source.totals.bytes)
      writeEntries(volume, source, opts, progress)
      opts.afterWriteVolume?.(volume)
      progress.phase('verifying', source.totals.bytes)
      report.verified = verifyVolume(volume, source, progress, `${emptied}; the source was not touched`)
    })
  } catch (error) {
    if (error instanceof MigrateError) throw error
    if (error instanceof SourceError) throw new MigrateError('MIGRATE_BAD_SOURCE', `${error.message}; ${emptied}`, report)
    throw new MigrateError('MIGRATE_TARGET', `cannot fill the volume at ${name}: ${errnoText(error)}; ${emptied}`, report)
  } finally {
    progress.finish()
    volume.close()
  }
}
