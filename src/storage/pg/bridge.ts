/**
 * The synchronous bridge to PostgreSQL. The Volume interface is synchronous, node-postgres is
 * not: a worker thread (worker.ts) owns the connection, and each call posts a request to it over a
 * MessagePort, then blocks in Atomics.wait on a SharedArrayBuffer until the worker has posted the
 * reply and bumped the counter there; receiveMessageOnPort then takes the reply synchronously.
 * One call is in flight at a time. A call that gets no reply within the timeout fails with EIO
 * (its reply, should it come later, is dropped): the caller's thread is never blocked for good.
 * The timeout bounds a server that does not answer; one known to be gone (a closed connection, a
 * refused connect) fails the call at once in the worker (worker.ts).
 */
import {MessageChannel, type MessagePort, Worker, receiveMessageOnPort} from 'node:worker_threads'

import {brokenSwitches} from '../debug.js'
import {FsError, type FsErrorCode, ImageError, type ImageErrorCode} from '../errors.js'

export interface Request {
  id: number
  op: string
  args: unknown[]
}

export type ReplyError = {kind: 'fs'; code: FsErrorCode} | {kind: 'image'; code: ImageErrorCode; message: string} | {kind: 'io'; message: string}

export type Reply = {id: number; value: unknown} | {id: number; error: ReplyError}

/** How long a call waits for the database before it fails with EIO (30 s). */
export const DEFAULT_TIMEOUT_MS = 30_000
/** What the first call may take on top, for the worker to start (load its modules) on a busy host. */
const STARTUP_MS = 30_000

export class SyncBridge {
  private readonly worker: Worker
  private readonly port: MessagePort
  /** [0]: the id of the last reply posted. */
  private readonly done = new Int32Array(new SharedArrayBuffer(4))
  private seq = 0
  private closed = false
  private started = false
  /** Why the worker died, should it ever (a bug): calls fail with EIO at once, and the process lives on. */
  private died: string | undefined

  constructor(
    workerData: Record<string, unknown>,
    private readonly timeoutMs = DEFAULT_TIMEOUT_MS,
  ) {
    const {port1, port2} = new MessageChannel()
    this.port = port1
    this.worker = new Worker(new URL('worker.js', import.meta.url), {
      // The crash self-tests' durability switches (none unless a test entry turned them on) reach the worker's own copy of debug.ts.
      workerData: {...workerData, timeoutMs, port: port2, done: this.done, broken: brokenSwitches()},
      transferList: [port2],
    })
    this.worker.on('error', error => {
      this.died = error.message
    })
    // Neither keeps the process alive: a volume left open does not hold a CLI or a test run.
    this.worker.unref()
    this.port.unref()
  }

  /** Run `op` in the worker and return its result; its error is rethrown here as an FsError or ImageError. */
  call(op: string, ...args: unknown[]): unknown {
    if (this.closed) throw new FsError('EIO', op, 'the volume is closed')
    if (this.died !== undefined) throw new FsError('EIO', op, `the PostgreSQL worker died: ${this.died}`)
    const id = (this.seq = (this.seq + 1) | 0)
    this.port.postMessage({id, op, args} satisfies Request)
    const deadline = Date.now() + this.timeoutMs + (this.started ? 0 : STARTUP_MS)
    for (;;) {
      const last = Atomics.load(this.done, 0)
      if (((last - id) | 0) >= 0) break
      const left = deadline - Date.now()
      if (left <= 0) throw new FsError('EIO', op, `no answer from PostgreSQL within ${this.timeoutMs} ms`)
      Atomics.wait(this.done, 0, last, left)
    }

    for (;;) {
      const got = receiveMessageOnPort(this.port)
      if (got === undefined) throw new FsError('EIO', op, 'the PostgreSQL worker lost a reply')
      const reply = got.message as Reply
      if (reply.id !== id) continue // the late reply of a call that timed out
      this.started = true
      if ('value' in reply) return reply.value
      const e = reply.error
      if (e.kind === 'fs') throw new FsError(e.code, op)
      if (e.kind === 'image') throw new ImageError(e.code, e.message)
      throw new FsError('EIO', op, e.message)
    }
  }

  /** Stop the worker (after its last call); the bridge is unusable after. */
  close(): void {
    this.closed = true
    this.port.close()
    void this.worker.terminate()
  }
}

/** A Uint8Array that came through structured clone, as a Buffer (no copy). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}
