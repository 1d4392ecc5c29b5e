/** The text form of a migration report (the JSON form is the report itself). */
import type {MigrateReport} from './types.js'
import type {WalReport} from './wal.js'

function n(value: number): string {
  return value.toLocaleString('en-US')
}

function plural(count: number, one: string, many = `${one}s`): string {
  return `${n(count)} ${count === 1 ? one : many}`
}

function walLines(report: MigrateReport): string[] {
  const w: WalReport | undefined = report.wal.report
  if (w === undefined) return [`C WAL: not found (looked at ${report.wal.looked.join(', ')}); it is not needed`]
  const out = [`C WAL: ${w.path} (${n(w.bytes)} bytes)`]
  const h = w.header
  if (h !== undefined) {
    out.push(
      `  header: magic ${h.magic}, version ${h.version}, next_tx_id ${h.nextTxId}, next_lsn ${h.nextLsn}, head ${h.head}, tail ${h.tail}, ` +
        `checkpoint_lsn ${h.checkpointLsn}, entry_count ${h.entryCount}, CRC ${h.crc} ${h.crcOk ? 'ok' : 'MISMATCH'}`,
    )
  }

  const e = w.entries
  if (e !== undefined) {
    const ops = Object.entries(e.byOp)
      .map(([op, count]) => `${count} ${op}`)
      .join(', ')
    const span = e.firstLsn === undefined ? '' : ` (LSN ${e.firstLsn}-${e.lastLsn}, ${e.first} to ${e.last})`
    out.push(`  entries: ${n(e.count)}${span}${ops ? `: ${ops}` : ''}`)
    if (e.stoppedAt !== undefined) out.push(`  stopped at ${e.stoppedAt}`)
  }

  for (const p of w.problems) out.push(`  note: ${p}`)
  out.push('  it records metadata only and the C version never replayed it: read for this report, not migrated')
  return out
}

function sourceLines(report: MigrateReport): string[] {
  const s = report.source
  const out: string[] = []
  if (s.searched !== undefined) {
    out.push('Looked for a C RAZORFS image in:')
    for (const d of s.searched) out.push(`  ${d.dir}: ${d.detail}${d.dir === s.dir ? '  <- migrating this one' : ''}`)
  }

  out.push(`Source: ${s.dir} (C RAZORFS ${s.layout} layout)`)
  if (s.nodes !== undefined) {
    const x = s.nodes
    out.push(
      `  ${x.file}: magic ${x.magic}, version ${x.version}, capacity ${x.capacity}, header used=${x.used} next_inode=${x.nextInode} free_count=${x.freeCount}; ${plural(x.liveSlots, 'live slot')}`,
    )
  }

  if (s.strings !== undefined) out.push(`  ${s.strings.file}: ${n(s.strings.bytes)} bytes, header used=${s.strings.used}`)
  if (s.contentFiles !== undefined) out.push(`  ${plural(s.contentFiles, 'content file')}`)
  return out
}

/** The problems and oddities: bad entries (skipped or fatal), unreachable slots, notes. */
export function problemLines(report: Partial<MigrateReport>, skipping: boolean): string[] {
  const out: string[] = []
  const bad = report.skipped ?? []
  if (bad.length > 0) {
    out.push(skipping ? `Skipped (${bad.length}):` : `Bad entries (${bad.length}):`)
    for (const b of bad) {
      const where = b.slot === undefined ? '' : ` (slot ${b.slot}${b.inode ? `, inode ${b.inode}` : ''})`
      const below = b.below > 0 ? `; ${plural(b.below, 'entry', 'entries')} below it left out with it` : ''
      out.push(`  ${b.path}${where}: ${b.reason}${below}`)
    }
  }

  const lost = report.unreachable ?? []
  if (lost.length > 0) {
    out.push(`Live slots that no directory reaches, not migrated (${lost.length}):`)
    for (const u of lost) out.push(`  slot ${u.slot}: inode ${u.inode}, ${u.type} ${u.name}`)
  }

  if ((report.unreferenced ?? []).length > 0) out.push(`Content files no file owns, not migrated: ${report.unreferenced!.join(', ')}`)
  if ((report.notes ?? []).length > 0) {
    out.push('Notes:')
    for (const note of report.notes!) out.push(`  ${note}`)
  }

  return out
}

/** The whole report of a successful run or dry run. */
export function renderReport(report: MigrateReport, opts: {skipBad: boolean}): string[] {
  const where = report.target.dataDir ?? report.target.meta
  const kind = report.target.dataDir === null ? 'volume' : 'image'
  const out = [...sourceLines(report), ...walLines(report), ...problemLines(report, opts.skipBad)]
  const s = report.summary
  const what = `${plural(s.dirs, 'directory', 'directories')} (with the root), ${plural(s.files, 'file')}, ${n(s.bytes)} bytes`
  const skipped =
    s.skipped === 0
      ? 'nothing skipped'
      : `${plural(s.skipped, 'bad entry', 'bad entries')} skipped${s.skippedBelow > 0 ? ` (and ${n(s.skippedBelow)} below them)` : ''}`
  if (report.dryRun) {
    out.push(`Would migrate into ${where}: ${what}; ${skipped}:`)
    for (const e of report.entries) {
      out.push(
        `  ${e.type === 'dir' ? 'dir ' : 'file'} ${e.mode.padStart(4, '0')} ${String(e.size).padStart(10)} ${new Date(e.mtime * 1000).toISOString().slice(0, 19)}Z ${e.path}`,
      )
    }

    if (report.target.refusal !== undefined) out.push(`A real run would refuse: ${report.target.refusal}`)
    else if (report.target.heldImage)
      out.push(`A real run would replace the razorfs ${kind} ${report.target.dataDir === null ? 'at' : 'in'} ${where} (--force)`)
    out.push('Dry run: nothing was written.')
    return out
  }

  out.push(
    `Migrated into ${where} (razorfs ${kind} ${report.target.uuid}${report.target.replaced ? `, replacing the ${kind} that was there` : ''}): ${what}; ${skipped}`,
  )
  const v = report.verified
  if (v !== undefined) out.push(`Verified: ${plural(v.entries, 'entry', 'entries')}; every file's size and sha256, every mode and mtime match the source`)
  const r = report.sourceRemoval
  if (!r.requested) out.push(`The source was not changed (--remove-source deletes it after a verified migration)`)
  else if (r.kept !== undefined) out.push(`The source was not removed: ${r.kept}`)
  else {
    out.push(`Removed the source: ${r.removed.join(', ')}`)
    if (report.wal.report !== undefined) out.push(`The C WAL ${report.wal.report.path} is not part of the ${kind}: it was left in place (delete it by hand)`)
  }
  return out
}

/** What a failed run prints before its one-line error. */
export function renderFailure(report: Partial<MigrateReport> | undefined): string[] {
  if (report === undefined) return []
  const out: string[] = []
  if (report.source !== undefined && report.source.dir !== '') out.push(...sourceLines(report as MigrateReport))
  else if (report.source?.searched !== undefined) {
    out.push('Looked for a C RAZORFS image in:')
    for (const d of report.source.searched) out.push(`  ${d.dir}: ${d.detail}`)
  }

  out.push(...problemLines(report, false))
  return out
}
