/**
 * Extended attributes through the mount. node:fs has no xattr calls, so a small python3 process
 * (python3 is on every machine of this project's kind, see the env notes) makes them: one JSON
 * request per line on stdin, one reply per line on stdout, one request at a time.
 */
import {type ChildProcessWithoutNullStreams, spawn} from 'node:child_process'
import readline from 'node:readline'

const HELPER = String.raw`
import errno, json, os, sys
def reply(o):
    sys.stdout.write(json.dumps(o) + "\n")
    sys.stdout.flush()
for line in sys.stdin:
    req = json.loads(line)
    try:
        op = req["op"]
        if op == "set":
            os.setxattr(req["path"], req["name"], bytes.fromhex(req["value"]), req.get("flags", 0))
            reply({"ok": True})
        elif op == "remove":
            os.removexattr(req["path"], req["name"])
            reply({"ok": True})
        elif op == "dump":
            out = {}
            for p in req["paths"]:
                try:
                    out[p] = {n: os.getxattr(p, n).hex() for n in os.listxattr(p)}
                except OSError as e:
                    out[p] = {"\u0000errno": errno.errorcode.get(e.errno, str(e.errno))}
            reply({"ok": True, "result": out})
        else:
            reply({"ok": False, "code": "EINVAL", "message": "unknown op"})
    except OSError as e:
        reply({"ok": False, "code": errno.errorcode.get(e.errno, str(e.errno)), "message": str(e)})
`

export class XattrError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export class Xattrs {
  private readonly proc: ChildProcessWithoutNullStreams
  private readonly waiting: Array<(line: string) => void> = []
  private closed = false

  constructor() {
    this.proc = spawn('python3', ['-u', '-c', HELPER], {stdio: ['pipe', 'pipe', 'pipe']})
    this.proc.on('error', () => {
      this.closed = true
    })
    this.proc.on('exit', () => {
      this.closed = true
      for (const w of this.waiting.splice(0)) w('{"ok": false, "code": "EPIPE", "message": "xattr helper exited"}')
    })
    readline.createInterface({input: this.proc.stdout}).on('line', line => this.waiting.shift()?.(line))
  }

  private async call(req: object): Promise<{ok: boolean; code?: string; message?: string; result?: Record<string, Record<string, string>>}> {
    if (this.closed) throw new XattrError('EPIPE', 'the xattr helper (python3) is not running')
    const reply = new Promise<string>(resolve => this.waiting.push(resolve))
    this.proc.stdin.write(JSON.stringify(req) + '\n')
    const parsed = JSON.parse(await reply)
    if (!parsed.ok) throw new XattrError(parsed.code, `${parsed.code}: ${parsed.message}`)
    return parsed
  }

  async set(path: string, name: string, value: Buffer): Promise<void> {
    await this.call({op: 'set', path, name, value: value.toString('hex')})
  }

  async remove(path: string, name: string): Promise<void> {
    await this.call({op: 'remove', path, name})
  }

  /** Every xattr of every path; a path that could not be read maps to its errno code. */
  async dump(paths: string[]): Promise<Map<string, Map<string, Buffer> | string>> {
    const {result} = await this.call({op: 'dump', paths})
    const out = new Map<string, Map<string, Buffer> | string>()
    for (const [p, attrs] of Object.entries(result ?? {})) {
      const err = attrs['\u0000errno']
      out.set(p, err === undefined ? new Map(Object.entries(attrs).map(([n, v]) => [n, Buffer.from(v, 'hex')])) : err)
    }

    return out
  }

  close(): void {
    this.closed = true
    this.proc.stdin.end()
    this.proc.kill()
  }
}
