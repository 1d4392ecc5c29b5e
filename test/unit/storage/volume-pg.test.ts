/**
 * The storage interface's suite (test/interface/volume.suite.ts) on its second implementation:
 * PgVolume, each case in a new PostgreSQL schema of the test server (test/helpers/pg.ts). A crash
 * is the server ending the volume's connection, as when its client is killed.
 */
import {PgVolume} from '../../../src/storage/pg/volume.js'
import {type VolumeHarness, reopeningHarness, volumeSuite} from '../../interface/volume.suite.js'
import {dropSchemas, schemaUrl, usePg} from '../../helpers/pg.js'

describe('PostgreSQL backend', () => {
  const server = usePg()
  const made: string[] = []
  after(() => dropSchemas(made))

  function pgHarness(): VolumeHarness {
    const url = schemaUrl(server())
    made.push(url)
    return reopeningHarness(PgVolume.create(url, {uid: 0, gid: 0}), opts => PgVolume.open(url, {readOnly: opts.readOnly}))
  }

  volumeSuite('PostgreSQL', pgHarness)
})
