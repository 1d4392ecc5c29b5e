/**
 * A PostgreSQL server for the tests of the shared backend (issue 20). The URL is
 * RAZORFS_PG_URL when it is set; otherwise this process starts a throwaway cluster of its own
 * (initdb and pg_ctl in a temporary directory, a unix socket only, no TCP port), once, and stops
 * and removes it when the process exits. Only when neither works do the PostgreSQL tests skip, with
 * a loud message saying what to install or start; under CI (CI set) they fail instead.
 */
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import pg from 'pg'

import {parsePgUrl} from '../../src/storage/pg/url.js'

type Server = {url: string} | {missing: string}

let server: Server | undefined
let warned = false

function run(cmd: string, args: string[], asUser?: string): {ok: boolean; output: string} {
  const runuser = ['/usr/sbin/runuser', '/sbin/runuser'].find(p => fs.existsSync(p)) ?? 'runuser'
  const [file, argv] = asUser === undefined ? [cmd, args] : [runuser, ['-u', asUser, '--', cmd, ...args]]
  const r = spawnSync(file, argv, {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
  return {ok: r.status === 0, output: `${r.error?.message ?? ''}${r.stdout ?? ''}${r.stderr ?? ''}`.trim()}
}

/** The directory of initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<newest>/bin. */
function pgBin(): string | undefined {
  const which = run('sh', ['-c', 'command -v initdb'])
  if (which.ok && which.output !== '') return path.dirname(which.output)
  const root = '/usr/lib/postgresql'
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter(v => fs.existsSync(path.join(root, v, 'bin', 'initdb'))) : []
  versions.sort((a, b) => Number(b) - Number(a))
  return versions.length === 0 ? undefined : path.join(root, versions[0], 'bin')
}

/** initdb + pg_ctl start in a temporary directory; stopped and removed when the process exits. */
function startThrowawayCluster(): Server {
  const bin = pgBin()
  if (bin === undefined) return {missing: 'initdb not found (install PostgreSQL: apt-get install -y postgresql)'}
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'razorfs-pg-'))
  const fail = (missing: string): Server => {
    fs.rmSync(dir, {recursive: true, force: true})
    return {missing}
  }

  // initdb and postgres refuse to run as root: as root, the cluster belongs to the postgres user.
  let owner: string | undefined
  if (process.getuid?.() === 0) {
    owner = 'postgres'
    const ids = run('id', ['-u', owner])
    const gids = run('id', ['-g', owner])
    if (!ids.ok || !gids.ok) return fail('no postgres user to run a throwaway cluster as (install PostgreSQL: apt-get install -y postgresql)')
    fs.chownSync(dir, Number(ids.output), Number(gids.output))
  }

  const user = os.userInfo().username
  const data = path.join(dir, 'data')
  const init = run(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', user, '--no-sync'], owner)
  if (!init.ok) return fail(`initdb failed: ${init.output.split('\n').pop()}`)
  const options = `-k ${dir} -c listen_addresses='' -c fsync=off`
  const start = run(path.join(bin, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'log'), '-o', options, '-w', 'start'], owner)
  if (!start.ok) return fail(`pg_ctl start failed: ${start.output.split('\n').pop()}`)
  process.on('exit', () => {
    run(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], owner)
    fs.rmSync(dir, {recursive: true, force: true})
  })
  return {url: `postgresql:///postgres?host=${encodeURIComponent(dir)}&user=${encodeURIComponent(user)}`}
}

/** The URL of the server the tests use, or undefined (after a loud warning) when there is none. */
export function pgUrl(): string | undefined {
  const fromEnv = process.env.RAZORFS_PG_URL
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv
  server ??= startThrowawayCluster()
  if ('url' in server) return server.url
  const message = `PostgreSQL tests need a server: set RAZORFS_PG_URL, or install PostgreSQL (apt-get install -y postgresql) so that the tests can start one (${server.missing})`
  if (process.env.CI !== undefined && process.env.CI !== '') throw new Error(`CI: ${message}`)
  if (!warned) console.warn(`\n  !!! SKIPPING the PostgreSQL tests. ${message}\n`)
  warned = true
  return undefined
}

/**
 * Inside a describe: skip its tests when there is no server (pgUrl warns), else hand out its URL.
 * The returned function is valid in hooks and tests, not at load time.
 */
export function usePg(): () => string {
  let url: string | undefined
  before(function () {
    this.timeout(120_000) // initdb and pg_ctl start: about two seconds
    url = pgUrl()
    if (url === undefined) this.skip()
  })
  return () => url!
}

let schemas = 0

/**
 * The server's URL naming a new PostgreSQL schema of its own (`schema=`), where PgVolume.create
 * makes a volume; dropSchemas removes them. A schema costs milliseconds, a database a second.
 */
export function schemaUrl(url: string): string {
  const u = new URL(url)
  u.searchParams.set('schema', `rz_test_${process.pid}_${++schemas}`)
  return u.toString()
}

/** Drop the schemas of these URLs (schemaUrl's), and everything in them. */
export async function dropSchemas(urls: string[]): Promise<void> {
  if (urls.length === 0) return
  const client = new pg.Client(parsePgUrl(urls[0]).config)
  await client.connect()
  try {
    for (const url of urls) await client.query(`DROP SCHEMA IF EXISTS ${parsePgUrl(url).schema} CASCADE`)
  } finally {
    await client.end()
  }
}

/** Run `text` (one or more statements) in the schema of `url` (which need not exist yet). */
export async function sql(url: string, text: string): Promise<pg.QueryResult> {
  const {config, schema} = parsePgUrl(url)
  const client = new pg.Client(config)
  await client.connect()
  try {
    await client.query(`SET search_path TO ${schema}`)
    return await client.query(text)
  } finally {
    await client.end()
  }
}
