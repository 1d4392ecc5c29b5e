/**
 * Where a volume on PostgreSQL keeps file contents: fixed-size blocks keyed by (inode, block
 * number). The volume speaks to them through BlockStore only, so that a later step can keep them
 * in an object store (S3) instead; PgBlockStore keeps them in the `blocks` table of the same
 * database, inside the transaction of the operation that calls it. A block holds its bytes up to
 * the last one written (it may be shorter than the block size); a missing block, or the part past
 * a short block's end within the file's size, reads as zeros.
 */
import type {ClientBase} from 'pg'

export interface BlockStore {
  readonly blockSize: number
  /** Bytes [pos, pos + len) of an inode's contents, holes as zeros (the caller keeps within the size). */
  read(ino: number, pos: number, len: number): Promise<Buffer>
  /** Store `data` at `pos`. */
  write(ino: number, pos: number, data: Buffer): Promise<void>
  /** Drop every byte at or past `size`. */
  truncate(ino: number, size: number): Promise<void>
  // Freeing an inode frees its blocks: the `blocks` table's ON DELETE CASCADE. A store outside the
  // database will need a queue of freed inodes instead (docs/ARCHITECTURE.md).
}

export class PgBlockStore implements BlockStore {
  constructor(
    private readonly client: ClientBase,
    readonly blockSize: number,
  ) {}

  async read(ino: number, pos: number, len: number): Promise<Buffer> {
    const out = Buffer.alloc(len)
    if (len === 0) return out
    const bs = this.blockSize
    const first = Math.floor(pos / bs)
    const last = Math.floor((pos + len - 1) / bs)
    // From each block, only the part inside [pos, pos + len).
    const r = await this.client.query<{blk: number; data: Buffer}>({
      name: 'rz_block_read',
      text: `SELECT blk, substring(data FROM (greatest(p - blk * bs, 0) + 1)::int FOR (least(p + n - blk * bs, bs) - greatest(p - blk * bs, 0))::int) AS data
             FROM blocks, (SELECT $2::bigint AS p, $3::bigint AS n, $4::bigint AS bs) AS a WHERE ino = $1 AND blk BETWEEN $5 AND $6`,
      values: [ino, pos, len, bs, first, last],
    })
    for (const row of r.rows) row.data.copy(out, Math.max(row.blk * bs - pos, 0))
    return out
  }

  async write(ino: number, pos: number, data: Buffer): Promise<void> {
    const bs = this.blockSize
    for (let done = 0; done < data.length; ) {
      const at = pos + done
      const blk = Math.floor(at / bs)
      const off = at - blk * bs
      const n = Math.min(bs - off, data.length - done)
      await this.client.query({name: 'rz_block_write', text: 'SELECT rz_block_write($1, $2, $3, $4)', values: [ino, blk, off, data.subarray(done, done + n)]})
      done += n
    }
  }

  async truncate(ino: number, size: number): Promise<void> {
    await this.client.query({name: 'rz_block_truncate', text: 'SELECT rz_block_truncate($1, $2, $3)', values: [ino, size, this.blockSize]})
  }
}
