/**
 * Directory listings for requests that resume at an offset, as FUSE's readdir and readdirplus
 * do: each request asks for entries after the offset of the last one the kernel took, and may
 * come after names were added or removed. Offsets are positions in the handle's listing, plus 1
 * ('.' has offset 1, '..' offset 2).
 *
 * Every answer is kept per handle, plain or readdirplus: the kernel may take fewer of its entries
 * than it got (the caller's buffer was full; or, for a plain answer, the addon's run of it served
 * the kernel until it turned to readdirplus mid-listing) and ask again from the first one it did
 * not take; those entries are then sent again, less those whose names have gone meanwhile. The
 * handle's listing (the core's) stands after every entry handed out so far, at the kept answer's
 * `upTo`. So every offset of the last answer resumes exactly, whatever came and went before it.
 * Offset 0 starts over; any other offset the reader does not hold (a seekdir back past the last
 * answer) starts over and counts to it, which is exact only if no name before it came or went.
 */
import type {Attr, DirentSink} from '../storage/types.js'
import type {FileSystem} from './filesystem.js'
import {direntSink} from './volume.js'

/** The last answer of a handle, kept. */
interface HeldAnswer {
  offs: Float64Array
  names: Buffer
  ends: Uint32Array
  inos: Float64Array
  types: Uint32Array
  upTo: number
}

/**
 * The entries of one answer, in the reader's reused arrays: valid until its next request. Entry i
 * (i < count) is named names[ends[i - 1], ends[i]), is inode inos[i] of type types[i] (S_IFMT
 * bits), and carries offset offs[i].
 */
export class DirBatch {
  count = 0
  names: Buffer = Buffer.alloc(0)
  ends: Uint32Array = new Uint32Array(0)
  offs: Float64Array = new Float64Array(0)

  constructor(
    private readonly core: FileSystem,
    readonly inos: Float64Array,
    readonly types: Uint32Array,
  ) {}

  /** What a readdirplus answer tells of entry i: its attributes; none for '.' and '..'. */
  attr(i: number): Attr | undefined {
    return this.offs[i] > 2 ? this.core.getattr(this.inos[i]) : undefined
  }
}

export class DirReader {
  private readonly held = new Map<number, HeldAnswer>()
  private readonly sink: DirentSink
  private readonly offs: Float64Array
  private readonly batch: DirBatch

  /** `capacity`: the most entries an answer holds. */
  constructor(
    private readonly core: FileSystem,
    readonly capacity: number,
  ) {
    this.sink = direntSink(capacity)
    this.offs = new Float64Array(capacity)
    this.batch = new DirBatch(core, this.sink.inos, this.sink.types)
  }

  /**
   * Answer a request on directory handle `fh` for entries after offset `off`, at most `max`: `send`
   * gets them and returns how many went to the caller (the listing moves on over those, and they
   * are kept: see above).
   */
  read(fh: number, off: number, max: number, send: (batch: DirBatch) => number): void {
    const listing = this.core.listing(fh)
    const held = this.held.get(fh)
    const {sink, offs} = this
    max = Math.min(max, this.capacity)
    let again = 0 // entries sent again from `held`
    if (held !== undefined && off !== 0 && off >= held.offs[0] - 1 && off < listing.position && held.upTo === listing.position) {
      let pos = 0
      for (let j = firstAfter(held.offs, off); j < held.offs.length && again < max; j++) {
        const from = j === 0 ? 0 : held.ends[j - 1]
        // Left out if its name has gone meanwhile (readdirplus would have no attributes to send).
        if (held.offs[j] > 2 && !listing.has(held.names.subarray(from, held.ends[j]), held.inos[j])) continue
        pos += held.names.copy(sink.names, pos, from, held.ends[j])
        sink.ends[again] = pos
        sink.inos[again] = held.inos[j]
        sink.types[again] = held.types[j]
        offs[again++] = held.offs[j]
      }
    } else if (off !== listing.position || off === 0) {
      listing.rewind()
      listing.skip(off)
    }

    const fresh = listing.fill(sink, again, max - again)
    const n = again + fresh
    for (let k = 0; k < fresh; k++) offs[again + k] = listing.position + k + 1
    const batch = this.batch
    batch.count = n
    batch.names = sink.names.subarray(0, n === 0 ? 0 : sink.ends[n - 1])
    batch.ends = sink.ends.subarray(0, n)
    batch.offs = offs.subarray(0, n)
    const taken = send(batch)
    // Past the entries sent again (so all of those went), the listing moves on over those taken,
    // which are kept. Otherwise what was kept covers this answer already.
    if (taken > again) {
      listing.skip(taken - again)
      this.held.set(fh, {
        offs: offs.slice(0, taken),
        names: Buffer.from(batch.names.subarray(0, sink.ends[taken - 1])),
        ends: sink.ends.slice(0, taken),
        inos: sink.inos.slice(0, taken),
        types: sink.types.slice(0, taken),
        upTo: listing.position,
      })
    }
  }

  /** How many handles have an answer kept (for tests). */
  get keptAnswers(): number {
    return this.held.size
  }

  /** releasedir: forget what was kept for `fh`, and release the handle. */
  releasedir(fh: number): void {
    this.held.delete(fh)
    this.core.releasedir(fh)
  }
}

/** The index of the first offset past `off` in increasing `offs` (its length if none). */
function firstAfter(offs: Float64Array, off: number): number {
  let lo = 0
  let hi = offs.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (offs[mid] <= off) lo = mid + 1
    else hi = mid
  }

  return lo
}
