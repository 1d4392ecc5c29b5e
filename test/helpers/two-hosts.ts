/**
 * One volume on PostgreSQL mounted twice, as two hosts would mount it: inside a describe, each
 * test gets a fresh schema of the test server (test/helpers/pg.ts) with a volume in it, mounted
 * by two `razorfs mount -f --meta URL` processes on mountpoints of their own (A on dirs.mnt, B on
 * dirs.root/mnt-b), their sessions on a lease of LEASE_S. After each test both are stopped (exit 0, unless killed with SIGKILL, and no
 * "unexpected error" in their output) and the schema is dropped. A test may replace `a` or `b`.
 */
import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'

import {PgVolume} from '../../src/storage/pg/volume.js'
import {type Mounted, mount, mountDirs} from './mount.js'
import {dropSchemas, schemaUrl, usePg} from './pg.js'

export interface TwoHosts {
  /** The volume's URL (its own schema). */
  url: string
  dirs: ReturnType<typeof mountDirs>
  a: Mounted | undefined
  b: Mounted | undefined
  /** A path on host A's mount, or on host B's. */
  A: (...parts: string[]) => string
  B: (...parts: string[]) => string
}

/** The sessions' lease of the two hosts (the URL's session_timeout), seconds: a killed host's session expires within a test. */
export const LEASE_S = 2

export function useTwoHosts(prefix: string): TwoHosts {
  const server = usePg()
  const hosts: TwoHosts = {
    url: '',
    dirs: undefined as unknown as TwoHosts['dirs'],
    a: undefined,
    b: undefined,
    A: (...parts) => path.join(hosts.a!.mnt, ...parts),
    B: (...parts) => path.join(hosts.b!.mnt, ...parts),
  }

  beforeEach(async () => {
    const url = new URL(schemaUrl(server()))
    url.searchParams.set('session_timeout', String(LEASE_S))
    hosts.url = url.toString()
    PgVolume.create(hosts.url).close()
    hosts.dirs = mountDirs(prefix)
    const mntB = path.join(hosts.dirs.root, 'mnt-b')
    fs.mkdirSync(mntB)
    hosts.a = await mount({dataDir: hosts.dirs.dataDir, meta: hosts.url, mnt: hosts.dirs.mnt})
    hosts.b = await mount({dataDir: hosts.dirs.dataDir, meta: hosts.url, mnt: mntB})
  })

  afterEach(async () => {
    for (const m of [hosts.a, hosts.b]) {
      if (m === undefined) continue
      const code = await m.stop()
      if (m.proc.signalCode !== 'SIGKILL') expect(code, m.output()).to.equal(0)
      expect(m.output()).not.to.match(/unexpected error/)
    }

    hosts.a = hosts.b = undefined
    hosts.dirs.remove()
    await dropSchemas([hosts.url])
  })

  return hosts
}
