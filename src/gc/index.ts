/** What `razorfs gc` calls: the compaction (compact.ts) and its report for people. */
import {humanBytes} from '../units.js'
import type {GcReport} from './compact.js'

export {type GcReport, type ImageFigures, gcImage} from './compact.js'

/** The size of each file before and after (or, for a dry run, what gc would leave), and the reclaimable space. */
export function renderFigures(r: GcReport): string {
  const rows: Array<[string, string, string]> = r.before.files.map((f, i) => [f.name, humanBytes(f.bytes), humanBytes(r.after.files[i]?.bytes ?? 0)])
  rows.push(['total', humanBytes(r.before.totalBytes), humanBytes(r.after.totalBytes)])
  rows.push(['reclaimable', humanBytes(r.before.reclaimable.bytes), humanBytes(r.after.reclaimable.bytes)])
  const head: [string, string, string] = ['file', 'before', r.dryRun ? 'after (would be)' : 'after']
  const w = [0, 1, 2].map(c => Math.max(head[c].length, ...rows.map(row => row[c].length)))
  const line = (row: [string, string, string]): string => `  ${row[0].padEnd(w[0])}  ${row[1].padStart(w[1])}  ${row[2].padStart(w[2])}\n`
  const b = r.before.reclaimable
  return (
    `image in ${r.dataDir}: ${r.inodes} inodes, ${r.entries} entries\n` +
    line(head) +
    rows.map(row => line(row)).join('') +
    `  reclaimable before: ${b.inodeRecords} inode records, ${b.entryRecords} entry records, ${humanBytes(b.stringBytes)} of string heap\n`
  )
}
