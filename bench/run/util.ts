/** Helpers of the benchmark run: the log, number formats, child processes and the driver. */
import {spawn} from 'node:child_process'
import path from 'node:path'

import type {DriverResult, Job} from '../driver.js'
import {paths} from './paths.js'

export const KiB = 1024
export const MiB = 1024 * KiB
export const GiB = 1024 * MiB

export const T0 = Date.now()

/** An error the run reports as its one line (no stack): a missing tool, a mount left behind. */
export class OneLineError extends Error {}

/** Workload processes running now (tar, git, dd, drivers...): killed if the run is interrupted. */
const children = new Set<ReturnType<typeof spawn>>()
export function killChildren(): void {
  for (const c of children) c.kill('SIGKILL')
}
export function log(msg: string): void {
  process.stderr.write(`[bench ${((Date.now() - T0) / 1000).toFixed(0).padStart(5)}s] ${msg}\n`)
}

export const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
export const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', {maximumFractionDigits: digits, minimumFractionDigits: digits})
export const sizeName = (bytes: number): string => (bytes >= GiB ? `${bytes / GiB} GiB` : bytes >= MiB ? `${bytes / MiB} MiB` : `${bytes / KiB} KiB`)
export const bsName = (bs: number): string => (bs >= MiB ? `${bs / MiB}M` : `${bs / KiB}K`)
export const countName = (n: number): string => (n >= 1e6 ? `${n / 1e6}M` : n >= 1e3 ? `${n / 1e3}k` : String(n))
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

interface ExecResult {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

/** Run a command to completion (asynchronously: servers must keep draining their pipes). */
export function exec(cmd: string, args: string[], opts: {env?: NodeJS.ProcessEnv; inheritStderr?: boolean} = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const start = performance.now()
    const child = spawn(cmd, args, {env: opts.env ?? process.env, stdio: ['ignore', 'pipe', opts.inheritStderr ? 'inherit' : 'pipe']})
    children.add(child)
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout!.on('data', (d: Buffer) => out.push(d))
    child.stderr?.on('data', (d: Buffer) => err.push(d))
    child.on('error', error => {
      children.delete(child)
      reject(error)
    })
    child.on('close', code => {
      children.delete(child)
      resolve({code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), ms: performance.now() - start})
    })
  })
}

/** The driver's environment: no NODE_OPTIONS (a profiled server must not pass --cpu-prof on). */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {...process.env, NO_COLOR: '1'}
  delete env.NODE_OPTIONS
  delete env.DEBUG
  return env
}

export async function driver(job: Job): Promise<DriverResult> {
  const r = await exec(process.execPath, [path.join(paths.here, 'driver.js'), JSON.stringify(job)], {env: cleanEnv(), inheritStderr: true})
  if (r.code !== 0) throw new Error(`driver ${job.op} failed (exit ${r.code})`)
  return JSON.parse(r.stdout) as DriverResult
}

/**
 * Several drivers at once, started together (epoch barrier `leadMs` from now: every process must
 * have started by then); aggregate rate over the union.
 */
export async function drivers(jobs: Job[], leadMs = 1500): Promise<{ops: number; bytes: number; sec: number}> {
  const startAt = Date.now() + leadMs
  const results = await Promise.all(jobs.map(job => driver({...job, startAt} as Job)))
  const start = Math.min(...results.map(r => r.startMs))
  const end = Math.max(...results.map(r => r.endMs))
  return {ops: results.reduce((a, r) => a + r.ops, 0), bytes: results.reduce((a, r) => a + r.bytes, 0), sec: (end - start) / 1000}
}
