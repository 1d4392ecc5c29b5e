/**
 * The filesystem core speaks to storage only through the storage interface: src/vfs/ imports from
 * src/storage/ the Volume interface (src/storage/volume.ts), the public types and constants
 * (types.ts) and the errors (errors.ts), never an implementation such as the Image. Whatever
 * opens a volume lives outside src/vfs/ (src/storage/open.ts, called by the mount command).
 */
import {expect} from 'chai'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {layerDir, sources, storageImports} from '../../helpers/imports.js'

const VFS = layerDir('vfs')
/** What src/vfs/ may import from src/storage/, and whether only its types. */
const ALLOWED: Record<string, 'types' | 'values'> = {'volume.js': 'types', 'types.js': 'values', 'errors.js': 'values'}

function offending(dir: string): string[] {
  return storageImports(dir)
    .filter(i => ALLOWED[i.module] === undefined || (ALLOWED[i.module] === 'types' && !i.typeOnly))
    .map(i => `${i.file}: ${i.typeOnly ? 'import type from' : 'import from'} ${i.module}`)
}

describe('vfs: the storage boundary', () => {
  it('flags an import of the image, or a value of the interface module', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-boundary-'))
    try {
      const vfs = path.join(root, 'src', 'vfs')
      fs.mkdirSync(vfs, {recursive: true})
      fs.writeFileSync(path.join(vfs, 'a.ts'), "import type {Image} from '../storage/image.js'\nimport {FsError} from '../storage/errors.js'\n")
      fs.writeFileSync(path.join(vfs, 'b.ts'), "export {Thing} from '../storage/volume.js'\nimport type {Volume} from '../storage/volume.js'\n")
      expect(offending(vfs).sort()).to.deep.equal(['a.ts: import type from image.js', 'b.ts: import from volume.js'])
    } finally {
      fs.rmSync(root, {recursive: true, force: true})
    }
  })

  it('src/vfs/ imports from src/storage/ only the Volume interface, the types and the errors', () => {
    expect(sources(VFS).length).to.be.at.least(2)
    expect(storageImports(VFS).map(i => i.module)).to.include('volume.js')
    expect(offending(VFS)).to.deep.equal([])
  })
})
