/**
 * The worker thread of the PostgreSQL bridge (bridge.ts): it owns the volume's connections and
 * runs each request, in order, as one transaction (or as part of the caller's, between begin and
 * commit). Errors go back by kind: an errno (a function's RAISE 'ENOENT', or EEXIST for a unique
 * violation: a concurrent create of the same name), an ImageError when opening, else EIO.
 */
import {type MessagePort, workerData} from 'node:worker_threads'

import {BREAK_PG_LAZY_COMMIT, breakDurability} from '../debug.js'
import {FsError, ImageError} from '../errors.js'
import {Backend} from './backend.js'
import {type Target, makeVolume} from './connect.js'
import type {Reply, ReplyError, Request} from './bridge.js'

/**
 * A call that lost a deadlock or a serialization race is run again, when it is a transaction of
 * its own: not inside the caller's, and not one that begins, ends or opens something.
 */
const RETRYABLE = new Set(['40P01', '40001'])
const NOT_RETRIED = new Set(['create', 'open', 'close', 'abandon', 'begin', 'commit', 'rollback'])
/** Requests that run without a link or make their own: the rest first make sure of one (Backend.ready). */
const NO_READY = new Set(['create', 'open', 'close', 'abandon', 'commit', 'rollback', 'session'])

function replyError(error: unknown): ReplyError {
  if (error instanceof FsError) return {kind: 'fs', code: error.code as never}
  if (error instanceof ImageError) return {kind: 'image', code: error.code, message: error.message}
  const e = error as {code?: string; message?: string}
  if (e.code === 'P0001' && /^E[A-Z0-9]+$/.test(e.message ?? '')) return {kind: 'fs', code: e.message as never}
  if (e.code === '23505') return {kind: 'fs', code: 'EEXIST'}
  if (e.code === '25006') return {kind: 'fs', code: 'EROFS'}
  return {kind: 'io', message: e.message ?? String(error)}
}

const {port, done, target, timeoutMs, broken} = workerData as {port: MessagePort; done: Int32Array; target: Target; timeoutMs: number; broken?: string[]}
breakDurability(broken ?? [])
let queue = Promise.resolve()
const enqueue = (task: () => Promise<void>): void => {
  queue = queue.then(task).catch(() => {})
}

const backend = new Backend(target, timeoutMs, enqueue)
const ops: Record<string, (...args: never[]) => Promise<unknown>> = {
  create: opts => makeVolume(target, timeoutMs, opts),
  open: opts => backend.open(opts),
  close: () => backend.close(),
  abandon: () => backend.abandon(),
  session: async () => backend.sessionId(),
  reap: () => backend.reapNow(),
  retain: ino => backend.retain(ino),
  release: ino => backend.release(ino),
  q: (name, values) => backend.q(name, values),
  begin: () => backend.begin(),
  commit: () => backend.commit(),
  rollback: () => backend.rollback(),
  read: (ino, pos, len) => backend.read(ino, pos, len),
  write: (ino, pos, data, sec, nsec) => backend.write(ino, pos, data, sec, nsec),
  setattr: values => backend.setattr(values),
}

async function handle(request: Request): Promise<Reply> {
  const op = ops[request.op]
  for (let attempt = 1; ; attempt++) {
    try {
      backend.staleCheck(request.op, request.args)
      if (!NO_READY.has(request.op)) await backend.ready()
      const run = (): Promise<unknown> => op(...(request.args as never[]))
      // The crash self-test's broken durability (debug.ts): acknowledged before its transaction commits.
      if (BREAK_PG_LAZY_COMMIT && !NO_READY.has(request.op) && request.op !== 'begin') return {id: request.id, value: await backend.lazily(run)}
      return {id: request.id, value: await run()}
    } catch (error) {
      if (backend.failed(error)) {
        const why = (error as Error).message
        return {id: request.id, error: {kind: 'io', message: /reconnecting/.test(why) ? why : `lost the connection to PostgreSQL (${why})`}}
      }

      const code = (error as {code?: string}).code ?? ''
      const retry = RETRYABLE.has(code) && !backend.inTx && !NOT_RETRIED.has(request.op) && attempt < 5
      if (!retry) return {id: request.id, error: replyError(error)}
    }
  }
}

port.on('message', (request: Request) => {
  enqueue(async () => {
    const reply = await handle(request)
    port.postMessage(reply)
    Atomics.store(done, 0, request.id)
    Atomics.notify(done, 0)
  })
})
