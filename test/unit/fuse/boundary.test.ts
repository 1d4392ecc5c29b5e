/**
 * The FUSE adapters only translate (issue 17): src/fuse/ speaks to the filesystem core (src/vfs/)
 * and may name storage's types, but never imports a value from src/storage/.
 */
import {expect} from 'chai'

import {imports, layerDir, sources, storageImports} from '../../helpers/imports.js'

const FUSE = layerDir('fuse')

describe('fuse: the adapter boundary', () => {
  it('finds the imports it checks (type-only or not)', () => {
    expect(imports("import type {A} from '../storage/types.js'\nimport {\n  B,\n} from '../storage/x.js'\nimport './side-effect.js'")).to.deep.equal([
      {from: '../storage/types.js', typeOnly: true},
      {from: '../storage/x.js', typeOnly: false},
      {from: './side-effect.js', typeOnly: false},
    ])
  })

  it('src/fuse/ imports nothing but types from src/storage/', () => {
    expect(sources(FUSE).length).to.be.greaterThan(3)
    const offending = storageImports(FUSE)
      .filter(i => !i.typeOnly)
      .map(i => `${i.file}: ${i.module}`)
    expect(offending).to.deep.equal([])
  })
})
