/** How byte counts are shown to people: the stats table and the progress bars. */

/** Bytes for people: "1.5 MiB (1,572,864 bytes)" style, short form. */
export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }

  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`
}
