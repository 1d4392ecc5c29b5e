/**
 * Pins the on-disk format: every layout of src/storage/format.ts (a literal table below), the
 * layout tables of docs/FORMAT.md (parsed and compared with the code, so the docs cannot drift)
 * and the exact bytes of one encoded header.
 *
 * A failure here means the format changed. If that is intended: bump FORMAT_VERSION, update
 * docs/FORMAT.md (tables and version history) and the literals of this file.
 */
import {expect} from 'chai'
import {readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

import {ImageError} from '../../../src/storage/errors.js'
import * as format from '../../../src/storage/format.js'
import {DATA_OFFSET, FILES, FORMAT_VERSION, HEADER, HF_CLEAN, type FieldType, type Layout, WAL_MAGIC, WAL_RECORD_MAGIC} from '../../../src/storage/format.js'
import {parseHeader} from '../../../src/storage/store.js'
import {crc32} from '../../../src/storage/codec/checksum.js'
import {type HeaderInfo, encode as encodeHeader} from '../../../src/storage/codec/header.js'

type AnyLayout = Layout<string>

/** Every exported layout of format.ts, by export name (HEADER, INODE, ...). */
function codeLayouts(): Map<string, AnyLayout> {
  const out = new Map<string, AnyLayout>()
  for (const [exportName, value] of Object.entries(format)) {
    if (typeof value === 'object' && value !== null && 'SIZE' in value && 'OFF' in value && 'FIELDS' in value) {
      out.set(exportName, value as AnyLayout)
    }
  }

  return out
}

function widthOf(type: string): number {
  switch (type) {
    case 'u8':
      return 1
    case 'u16':
      return 2
    case 'u32':
      return 4
    case 'u64':
    case 'i64':
      return 8
    default: {
      const m = /^bytes(\d+)$/.exec(type)
      if (m === null) throw new Error(`unknown field type ${type}`)
      return Number(m[1])
    }
  }
}

// ---- (a) the layouts, pinned -------------------------------------------------------------------

/** [offset, field, type] in on-disk order. Changing any of this is a format change. */
type Row = readonly [number, string, FieldType]

const EXPECTED: Record<string, {name: string; size: number; fields: Row[]}> = {
  HEADER: {
    name: 'header',
    size: 256,
    fields: [
      [0, 'checksum', 'u32'],
      [4, 'magic', 'u32'],
      [8, 'formatVersion', 'u16'],
      [10, 'headerSize', 'u16'],
      [12, 'recordSize', 'u32'],
      [16, 'dataOffset', 'u32'],
      [20, 'flags', 'u32'],
      [24, 'capacity', 'u64'],
      [32, 'used', 'u64'],
      [40, 'generation', 'u64'],
      [48, 'checkpointLsn', 'u64'],
      [56, 'uuid', 'bytes16'],
      [72, 'createdMs', 'u64'],
      [80, 'mountedMs', 'u64'],
      [88, 'reclaimable', 'u64'],
      [96, 'fileId', 'u32'],
      [100, 'reserved', 'bytes156'],
    ],
  },
  TABLE_CONTROL: {
    name: 'tableControl',
    size: 64,
    fields: [
      [0, 'highWater', 'u32'],
      [4, 'live', 'u32'],
      [8, 'freeHead', 'u32'],
      [12, 'orphanHead', 'u32'],
      [16, 'nextDataId', 'u64'],
    ],
  },
  INDEX_CONTROL: {
    name: 'indexControl',
    size: 64,
    fields: [
      [0, 'level', 'u32'],
      [4, 'split', 'u32'],
      [8, 'count', 'u64'],
    ],
  },
  HEAP_CONTROL: {
    name: 'heapControl',
    size: 1068,
    fields: [
      [0, 'bump', 'u32'],
      [4, 'liveBytes', 'u32'],
      [8, 'freeBytes', 'u64'],
      [16, 'freeHeads', 'bytes1052'],
    ],
  },
  INODE: {
    name: 'inode',
    size: 128,
    fields: [
      [0, 'gen', 'u32'],
      [4, 'flags', 'u32'],
      [8, 'mode', 'u32'],
      [12, 'nlink', 'u32'],
      [16, 'uid', 'u32'],
      [20, 'gid', 'u32'],
      [24, 'size', 'u64'],
      [32, 'atimeSec', 'i64'],
      [40, 'mtimeSec', 'i64'],
      [48, 'ctimeSec', 'i64'],
      [56, 'atimeNsec', 'u32'],
      [60, 'mtimeNsec', 'u32'],
      [64, 'ctimeNsec', 'u32'],
      [68, 'parent', 'u32'],
      [72, 'rdev', 'u64'],
      [80, 'dataId', 'u64'],
      [88, 'xattr', 'u32'],
      [92, 'target', 'u32'],
      [96, 'dirHead', 'u32'],
      [100, 'link', 'u32'],
      [104, 'reserved', 'bytes24'],
    ],
  },
  DIRENT: {
    name: 'dirent',
    size: 64,
    fields: [
      [0, 'parent', 'u32'],
      [4, 'name', 'u32'],
      [8, 'child', 'u32'],
      [12, 'childGen', 'u32'],
      [16, 'next', 'u32'],
      [20, 'prev', 'u32'],
      [24, 'hashNext', 'u32'],
      [28, 'nameHash', 'u32'],
      [32, 'type', 'u8'],
      [33, 'nameLength', 'u8'],
      [34, 'inlineName', 'bytes30'],
    ],
  },
  STRING: {
    name: 'string',
    size: 16,
    fields: [
      [0, 'refs', 'u32'],
      [4, 'hashNext', 'u32'],
      [8, 'hash', 'u32'],
      [12, 'length', 'u16'],
      [14, 'kind', 'u8'],
      [15, 'lengthHigh', 'u8'],
    ],
  },
  WAL_HEADER: {
    name: 'walHeader',
    size: 64,
    fields: [
      [0, 'checksum', 'u32'],
      [4, 'magic', 'u32'],
      [8, 'formatVersion', 'u16'],
      [10, 'headerSize', 'u16'],
      [12, 'salt', 'u32'],
      [16, 'uuid', 'bytes16'],
      [32, 'startLsn', 'u64'],
      [40, 'reserved', 'bytes24'],
    ],
  },
  WAL_RECORD: {
    name: 'walRecord',
    size: 24,
    fields: [
      [0, 'magic', 'u32'],
      [4, 'checksum', 'u32'],
      [8, 'lsn', 'u64'],
      [16, 'length', 'u32'],
      [20, 'entries', 'u32'],
    ],
  },
  WAL_ENTRY: {
    name: 'walEntry',
    size: 16,
    fields: [
      [0, 'fileId', 'u8'],
      [1, 'reserved', 'bytes3'],
      [4, 'length', 'u32'],
      [8, 'offset', 'u64'],
    ],
  },
  WRITERS_HEADER: {
    name: 'writersHeader',
    size: 16,
    fields: [[0, 'uuid', 'bytes16']],
  },
  WRITERS_ENTRY: {
    name: 'writersEntry',
    size: 8,
    fields: [[0, 'ino', 'u64']],
  },
}

describe('format: layouts', () => {
  const layouts = codeLayouts()

  it('format.ts exports exactly the pinned layouts', () => {
    expect([...layouts.keys()].sort()).to.deep.equal(Object.keys(EXPECTED).sort())
  })

  for (const [exportName, want] of Object.entries(EXPECTED)) {
    it(`${exportName}: name, SIZE and every field offset and type`, () => {
      const got = layouts.get(exportName)
      expect(got, `${exportName} is not exported by format.ts`).to.not.equal(undefined)
      const layout = got!
      expect(layout.name).to.equal(want.name)
      expect(layout.SIZE).to.equal(want.size)
      expect(layout.FIELDS.map(([field, type]) => [layout.OFF[field], field, type])).to.deep.equal(want.fields)
      expect(Object.keys(layout.OFF).sort()).to.deep.equal(want.fields.map(([, field]) => field).sort())
      const last = want.fields.at(-1)!
      expect(last[0] + widthOf(last[2]), 'fields fit in SIZE').to.be.at.most(want.size)
    })
  }

  it('pins the format constants', () => {
    expect(FORMAT_VERSION).to.equal(1)
    expect(format.PAGE_SIZE).to.equal(4096)
    expect(format.HEADER_OFFSET).to.equal(0)
    expect(format.CONTROL_OFFSET).to.equal(4096)
    expect(DATA_OFFSET).to.equal(8192)
    expect(HF_CLEAN).to.equal(1)
    expect([format.IF_USED, format.IF_ORPHAN]).to.deep.equal([1, 2])
    expect([format.SK_FREE, format.SK_NAME, format.SK_BLOB]).to.deep.equal([0, 1, 2])
    expect([format.STRING_UNIT, format.STRING_EXACT_CLASSES, format.STRING_CLASSES]).to.deep.equal([16, 257, 263])
    expect(FILES.map(f => [f.id, f.name, f.magic, f.recordSize])).to.deep.equal([
      [0, 'nodes.dat', 0x444e5a52, 128],
      [1, 'entries.dat', 0x45445a52, 64],
      [2, 'entries.idx', 0x58445a52, 4],
      [3, 'strings.dat', 0x54535a52, 16],
      [4, 'strings.idx', 0x58535a52, 4],
    ])
    expect([WAL_MAGIC, WAL_RECORD_MAGIC]).to.deep.equal([0x4c575a52, 0x58545a52])
    expect([format.WAL_NAME, format.LOCK_NAME, format.DATA_DIR_NAME]).to.deep.equal(['wal.log', 'lock', 'data'])
  })
})

// ---- (b) docs/FORMAT.md matches the code -------------------------------------------------------

const DOC_PATH = fileURLToPath(new URL('../../../../docs/FORMAT.md', import.meta.url))
const TABLE_HEAD = /^\|\s*offset\s*\|\s*size\s*\|\s*type\s*\|\s*field\s*\|\s*meaning\s*\|\s*$/

interface DocRow {
  line: number
  offset: number
  size: number
  type: string
  field: string
  meaning: string
}

interface DocLayout {
  line: number
  /** The "(N bytes)" of the heading. */
  size: number | undefined
  rows: DocRow[] | undefined
}

/**
 * The layout tables of FORMAT.md: a heading naming a layout in backticks (`### \`INODE\` (128
 * bytes)`), then one table whose header is `offset | size | type | field | meaning`. Such a table
 * anywhere else is an error, so a layout removed from the code cannot stay documented.
 */
function parseDoc(text: string, known: ReadonlySet<string>): Map<string, DocLayout> {
  const out = new Map<string, DocLayout>()
  const lines = text.split(/\r?\n/)
  let current: string | undefined
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    if (/^#{1,6}\s/.test(line)) {
      const names = [...line.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map(m => m[1]).filter(n => known.has(n))
      if (names.length > 1) throw new Error(`FORMAT.md:${i + 1}: a heading names ${names.length} layouts`)
      current = names[0]
      if (current !== undefined) {
        if (out.has(current)) throw new Error(`FORMAT.md:${i + 1}: ${current} has two headings`)
        const size = /\((\d+) bytes\)/.exec(line)
        out.set(current, {line: i + 1, size: size === null ? undefined : Number(size[1]), rows: undefined})
      }

      continue
    }

    if (!TABLE_HEAD.test(line)) continue
    if (current === undefined) throw new Error(`FORMAT.md:${i + 1}: a layout table not under a heading naming a layout of format.ts`)
    const doc = out.get(current)!
    if (doc.rows !== undefined) throw new Error(`FORMAT.md:${i + 1}: a second layout table under ${current}`)
    doc.rows = []
    i += 2 // the header row and the |---| row
    for (; i < lines.length && lines[i].startsWith('|'); i++) {
      const cells = lines[i]
        .split('|')
        .slice(1, -1)
        .map(c => c.trim())
      if (cells.length < 5) throw new Error(`FORMAT.md:${i + 1}: a layout row needs 5 cells`)
      const plain = (cell: string): string => cell.replaceAll('`', '')
      doc.rows.push({
        line: i + 1,
        offset: Number(plain(cells[0])),
        size: Number(plain(cells[1])),
        type: plain(cells[2]),
        field: plain(cells[3]),
        meaning: cells.slice(4).join('|').trim(),
      })
    }

    i-- // the line that ended the table may be a heading
  }

  return out
}

describe('format: docs/FORMAT.md', () => {
  const layouts = codeLayouts()
  let text = ''
  let doc = new Map<string, DocLayout>()
  before(() => {
    text = readFileSync(DOC_PATH, 'utf8')
    doc = parseDoc(text, new Set(layouts.keys()))
  })

  it('documents every layout of format.ts, each with one table', () => {
    for (const name of layouts.keys()) {
      expect(doc.has(name), `FORMAT.md has no heading naming \`${name}\``).to.equal(true)
      expect(doc.get(name)!.rows, `FORMAT.md has no layout table under \`${name}\``).to.not.equal(undefined)
    }
  })

  for (const [name, layout] of layouts) {
    it(`${name}: the table equals the code`, () => {
      const d = doc.get(name)
      if (d?.rows === undefined) expect.fail(`${name} is not documented`)
      expect(d.size, `FORMAT.md:${d.line}: the heading's "(N bytes)"`).to.equal(layout.SIZE)
      const want = layout.FIELDS.map(([field, type]) => ({offset: layout.OFF[field], size: widthOf(type), type, field}))
      for (const [i, r] of d.rows.entries()) {
        const got = {offset: r.offset, size: r.size, type: r.type, field: r.field}
        expect(got, `FORMAT.md:${r.line}: row ${i + 1} of ${name}`).to.deep.equal(want[i] ?? 'no such field in format.ts')
        expect(r.meaning, `FORMAT.md:${r.line}: empty meaning`).to.not.equal('')
      }

      expect(d.rows.length, `FORMAT.md:${d.line}: rows of ${name} (fields: ${want.map(w => w.field).join(', ')})`).to.equal(want.length)
    })
  }

  it('gives every magic number in hex and ASCII', () => {
    for (const magic of [...FILES.map(f => f.magic), WAL_MAGIC, WAL_RECORD_MAGIC]) {
      const hex = `0x${magic.toString(16).padStart(8, '0')}`
      const b = Buffer.alloc(4)
      b.writeUInt32LE(magic)
      expect(text).to.include(`\`${hex}\` "${b.toString('latin1')}"`)
    }
  })

  it('has the current format version in its version history', () => {
    const history = text.slice(text.indexOf('## Version history'))
    expect(history).to.match(new RegExp(`^\\| ${FORMAT_VERSION} \\|`, 'm'))
  })
})

// ---- (c) golden bytes of a header --------------------------------------------------------------

const INFO: HeaderInfo = {
  formatVersion: 1,
  recordSize: 128,
  flags: HF_CLEAN,
  capacity: 1024,
  used: 3,
  generation: 7,
  checkpointLsn: 2 ** 32 + 42,
  uuid: Buffer.from('00112233445566778899aabbccddeeff', 'hex'),
  createdMs: 1_700_000_000_000,
  mountedMs: 1_700_000_123_456,
  reclaimable: 5,
}

/** encodeHeader(nodes.dat, INFO), 16 bytes a line. */
const GOLDEN = [
  '71343164525a4e440100000180000000', // checksum 0x64313471, "RZND", version 1, header size 256, record size 128
  '00200000010000000004000000000000', // data offset 8192, flags HF_CLEAN, capacity 1024
  '03000000000000000700000000000000', // used 3, generation 7
  '2a000000010000000011223344556677', // checkpoint LSN 2^32 + 42, uuid...
  '8899aabbccddeeff0068e5cf8b010000', // ...uuid, created 1700000000000
  '404ae7cf8b0100000500000000000000', // mounted 1700000123456, reclaimable 5
  '00000000000000000000000000000000', // file id 0 at 96, then reserved and padding
  ...Array.from({length: 9}, () => '00000000000000000000000000000000'),
].join('')

describe('format: header bytes', () => {
  const nodes = FILES[0]
  const fileSize = DATA_OFFSET + INFO.capacity * nodes.recordSize

  it('encodeHeader writes the golden bytes', () => {
    const head = encodeHeader(nodes, INFO)
    expect(head.length).to.equal(HEADER.SIZE)
    expect(head.toString('hex')).to.equal(GOLDEN)
    expect(head.readUInt32LE(0)).to.equal(crc32(head.subarray(4)))
  })

  it('parseHeader reads them back', () => {
    const parsed = parseHeader(nodes, 'nodes.dat', Buffer.from(GOLDEN, 'hex'), fileSize)
    expect(parsed).to.deep.equal(INFO)
  })

  describe('validation order', () => {
    /** The golden header with `edit` applied; `reseal` recomputes the checksum. */
    function variant(edit: (b: Buffer) => void, reseal = true): Buffer {
      const b = Buffer.from(GOLDEN, 'hex')
      edit(b)
      if (reseal) b.writeUInt32LE(crc32(b.subarray(4)), 0)
      return b
    }

    function codeOf(head: Buffer, size = fileSize): string {
      try {
        parseHeader(nodes, 'f', head, size)
      } catch (error) {
        expect(error).to.be.instanceOf(ImageError)
        return (error as ImageError).code
      }

      return 'ok'
    }

    const O = HEADER.OFF
    it('short header: RZ_TRUNCATED', () => {
      expect(codeOf(Buffer.from(GOLDEN, 'hex').subarray(0, 255))).to.equal('RZ_TRUNCATED')
    })

    it('magic before anything else (even a bad checksum)', () => {
      expect(codeOf(variant(b => b.writeUInt32LE(0xdeadbeef, O.magic), false))).to.equal('RZ_BAD_MAGIC')
      expect(() => parseHeader(FILES[1], 'f', Buffer.from(GOLDEN, 'hex'), fileSize)).to.throw(/holds a razorfs inode table \(nodes\.dat\)/)
    })

    it('a newer version before the checksum', () => {
      expect(codeOf(variant(b => b.writeUInt16LE(FORMAT_VERSION + 1, O.formatVersion), false))).to.equal('RZ_VERSION')
    })

    it('then the checksum, over bytes 4..255', () => {
      expect(
        codeOf(
          variant(b => {
            b[255] ^= 1
          }, false),
        ),
      ).to.equal('RZ_CHECKSUM')
      expect(
        codeOf(
          variant(b => {
            b[0] ^= 1
          }, false),
        ),
      ).to.equal('RZ_CHECKSUM')
    })

    it('then version 0, then the fields', () => {
      expect(codeOf(variant(b => b.writeUInt16LE(0, O.formatVersion)))).to.equal('RZ_VERSION')
      expect(codeOf(variant(b => b.writeUInt16LE(128, O.headerSize)))).to.equal('RZ_CORRUPTED')
      expect(codeOf(variant(b => b.writeUInt32LE(64, O.recordSize)))).to.equal('RZ_CORRUPTED')
      expect(codeOf(variant(b => b.writeUInt32LE(4096, O.dataOffset)))).to.equal('RZ_CORRUPTED')
      expect(codeOf(variant(b => b.writeUInt32LE(1, O.fileId)))).to.equal('RZ_CORRUPTED')
      expect(codeOf(variant(b => b.writeUInt32LE(2, O.flags)))).to.equal('RZ_CORRUPTED')
      expect(codeOf(variant(b => b.writeUInt32LE(2000, O.used)))).to.equal('RZ_CORRUPTED')
      expect(codeOf(Buffer.from(GOLDEN, 'hex'), fileSize - 1)).to.equal('RZ_TRUNCATED')
      expect(codeOf(variant(b => b.fill(0, O.uuid, O.uuid + 16)))).to.equal('RZ_CORRUPTED')
    })

    it('used > capacity is reported before a truncated file', () => {
      expect(
        codeOf(
          variant(b => b.writeUInt32LE(2000, O.used)),
          DATA_OFFSET,
        ),
      ).to.equal('RZ_CORRUPTED')
    })
  })
})
