/** Draining a bulk directory listing (a DirentSink filled chunk by chunk), for the listing tests. */
import {type DirentSink, direntSink} from '../../src/storage/types.js'

/** One listed entry: [name, inode number, file type bits]. */
export type Listed = [name: string, ino: number, type: number]

/**
 * Every entry of a listing from where it stands, `chunk` at a time: `fill` copies up to `max`
 * entries into the sink from index 0 without moving, `skip` moves on; `between` runs after each
 * chunk with the names listed so far.
 */
export function drainSink(
  fill: (sink: DirentSink, max: number) => number,
  skip: (count: number) => unknown,
  chunk: number,
  between: (listed: string[]) => void = () => {},
): Listed[] {
  const sink = direntSink(chunk)
  const out: Listed[] = []
  for (;;) {
    const n = fill(sink, chunk)
    if (n === 0) return out
    for (let i = 0; i < n; i++) out.push([sink.names.subarray(i === 0 ? 0 : sink.ends[i - 1], sink.ends[i]).toString(), sink.inos[i], sink.types[i]])
    skip(n)
    between(out.map(e => e[0]))
  }
}
