/**
 * Hosts of their own network for the shared-volume tests (issue 20): each host is a network
 * namespace (`ip netns add`, iproute2) joined to the test's namespace by a veth pair, with an
 * address at each end. Its server runs under `nsenter --net=`, so it has only that link (and its
 * own loopback) to reach PostgreSQL, while it shares the test's mount namespace, so its FUSE mount
 * is visible to the test as a mount of another machine would be through its own shell.
 *
 * The test's PostgreSQL listens on a unix socket only; a relay in the test's namespace (a TCP
 * server on each host's far end, piping bytes to that socket) stands for the route to the database
 * host. It counts the connections of each host, and can cut one: close its connections and take
 * its link down, as a dead database host and then a pulled cable would, until `restore`.
 */
import {spawnSync} from 'node:child_process'
import net from 'node:net'

import {parsePgUrl} from '../../src/storage/pg/url.js'

export interface NetHost {
  /** The namespace's name (`ip netns exec NAME`, `/run/netns/NAME`). */
  ns: string
  /** The relay's address as this host sees it: host[:port] for a postgres:// URL. */
  server: string
  /** The command prefix that runs a program on this host. */
  prefix: string[]
  /** Connections to the relay this host has opened so far. */
  connections: number
  /**
   * Pull this host's cable: its connections are closed (the host sees them end, as when the
   * database host goes away), then its link is taken down, so that connecting again gets no answer.
   */
  cut(): Promise<void>
  /** Plug it back in. */
  restore(): void
}

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, {encoding: 'utf8'})
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${(r.error?.message ?? r.stderr).trim()}`)
}

/** Why these hosts cannot be made here, or undefined. */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root'
  const r = spawnSync('ip', ['netns', 'list'], {encoding: 'utf8'})
  if (r.error !== undefined || r.status !== 0)
    return `ip netns does not work here (install iproute2: apt-get install -y iproute2): ${(r.error?.message ?? r.stderr).trim()}`
  if (spawnSync('nsenter', ['--version']).status !== 0) return 'nsenter is missing (util-linux)'
  return undefined
}

/** Where the relay sends each connection: the server of `url` (its unix socket, or host:port). */
function upstream(url: string): net.NetConnectOpts {
  const {config} = parsePgUrl(url)
  const port = config.port ?? 5432
  const host = config.host ?? '/var/run/postgresql'
  return host.startsWith('/') ? {path: `${host}/.s.PGSQL.${port}`} : {host, port}
}

/**
 * `count` hosts, each in a namespace of its own with a veth pair to this one, and a relay to the
 * PostgreSQL server of `url` on each pair's far end. `remove` closes the relay and deletes them.
 */
export async function makeNetHosts(url: string, count: number): Promise<{hosts: NetHost[]; remove: () => Promise<void>}> {
  const tag = `rz${process.pid % 100_000}`
  const sockets = new Set<net.Socket>()
  const servers: net.Server[] = []
  const made: string[] = []
  const remove = async (): Promise<void> => {
    for (const s of sockets) s.destroy()
    await Promise.all(servers.map(s => new Promise(resolve => s.close(resolve))))
    for (const ns of made) spawnSync('ip', ['netns', 'del', ns])
  }

  const hosts: NetHost[] = []
  try {
    for (let i = 0; i < count; i++) {
      const ns = `${tag}-h${i}`
      const outer = `${tag}h${i}o` // the test's end of the pair (names: at most 15 bytes)
      const inner = `${tag}h${i}i`
      // 10.213.N.0/30 per host, N from the pid so that two test processes do not collide.
      const net3 = `10.213.${(process.pid * count + i) % 250}`
      spawnSync('ip', ['netns', 'del', ns]) // a leftover of a killed run with this pid
      spawnSync('ip', ['link', 'del', outer])
      ip('netns', 'add', ns)
      made.push(ns)
      ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', inner)
      ip('link', 'set', inner, 'netns', ns)
      ip('addr', 'add', `${net3}.1/30`, 'dev', outer)
      ip('link', 'set', outer, 'up')
      ip('-n', ns, 'addr', 'add', `${net3}.2/30`, 'dev', inner)
      ip('-n', ns, 'link', 'set', inner, 'up')
      ip('-n', ns, 'link', 'set', 'lo', 'up')

      const mine = new Set<net.Socket>()
      let cut = false
      const server = net.createServer(client => {
        if (cut) return void client.destroy() // a connect that got through before the link went down
        host.connections++
        const db = net.connect(upstream(url))
        for (const s of [client, db]) {
          sockets.add(s)
          mine.add(s)
          s.on('close', () => {
            sockets.delete(s)
            mine.delete(s)
          })
          s.on('error', () => {
            client.destroy()
            db.destroy()
          })
        }

        client.pipe(db)
        db.pipe(client)
      })
      servers.push(server)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen({host: `${net3}.1`, port: 0}, resolve)
      })
      const {port} = server.address() as net.AddressInfo
      const host: NetHost = {
        ns,
        server: `${net3}.1:${port}`,
        prefix: ['nsenter', `--net=/run/netns/${ns}`, '--'],
        connections: 0,
        async cut() {
          cut = true
          for (const s of mine) s.destroy()
          await new Promise(resolve => setTimeout(resolve, 100)) // the FINs on their way before the link goes
          ip('link', 'set', outer, 'down')
        },
        restore() {
          cut = false
          ip('link', 'set', outer, 'up')
        },
      }
      hosts.push(host)
    }
  } catch (error) {
    await remove()
    throw error
  }

  return {hosts, remove}
}
