/**
 * Charts of a benchmark run: Vega-Lite specs compiled and rendered to SVG by vega (headless, no
 * canvas), then to PNG by @resvg/resvg-js (its Linux binary ships inside an npm package; text
 * uses the system's DejaVu fonts). Nothing is downloaded at run time.
 */
import fs from 'node:fs'
import {createRequire} from 'node:module'

const require = createRequire(import.meta.url)

export interface MetaPoint {
  target: string
  layout: string
  op: string
  files: number
  opsPerSec: number
}

export interface ThroughputPoint {
  target: string
  dir: 'write' | 'read'
  bs: number
  mbPerSec: number
}

export interface FlameRow {
  x0: number
  x1: number
  depth: number
  name: string
  ms: number
}

const TARGET_COLORS = {
  domain: ['native', 'noop', 'noop-c', 'mergerfs', 'bindfs', 'razorfs'],
  range: ['#888888', '#4c78a8', '#72b7b2', '#54a24b', '#eeca3b', '#e45756'],
}

export interface PeerPoint {
  workload: string
  target: string
  /** The target's time over the reference target's time at this workload. */
  relative: number
}

async function render(spec: Record<string, unknown>, file: string): Promise<void> {
  const vega = await import('vega')
  const vl = await import('vega-lite')
  const {Resvg} = require('@resvg/resvg-js') as typeof import('@resvg/resvg-js')
  const compiled = vl.compile(spec as never).spec
  const view = new vega.View(vega.parse(compiled), {renderer: 'none'})
  const svg = await view.toSVG()
  view.finalize()
  const png = new Resvg(svg, {
    background: 'white',
    fitTo: {mode: 'zoom', value: 2},
    font: {loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans'},
  })
    .render()
    .asPng()
  fs.writeFileSync(file, png)
}

/** ops/s against file count (per operation and layout), throughput against block size. */
export async function renderMainChart(meta: MetaPoint[], tput: ThroughputPoint[], title: string, file: string): Promise<void> {
  const color = {field: 'target', type: 'nominal', title: 'target', scale: TARGET_COLORS}
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {text: title, fontSize: 15},
    config: {font: 'DejaVu Sans', axis: {labelFontSize: 10, titleFontSize: 11}, header: {labelFontSize: 12, titleFontSize: 12}},
    vconcat: [
      {
        title: 'Metadata: operations per second against file count (one client)',
        data: {values: meta},
        facet: {
          row: {
            field: 'layout',
            type: 'nominal',
            title: null,
            sort: ['flat', 'deep'],
            header: {labelExpr: "datum.value == 'flat' ? 'one directory' : 'deep tree'"},
          },
          column: {field: 'op', type: 'nominal', title: null, sort: ['create', 'stat', 'unlink']},
        },
        spec: {
          width: 190,
          height: 150,
          mark: {type: 'line', point: true},
          encoding: {
            x: {field: 'files', type: 'quantitative', scale: {type: 'log'}, title: 'files', axis: {format: '~s', values: [1e3, 1e4, 1e5, 1e6]}},
            y: {field: 'opsPerSec', type: 'quantitative', scale: {type: 'log'}, title: 'ops/s', axis: {format: '~s'}},
            color,
          },
        },
      },
      {
        title: 'Sequential I/O: throughput against block size (one client)',
        data: {values: tput},
        facet: {column: {field: 'dir', type: 'nominal', title: null, sort: ['write', 'read']}},
        spec: {
          width: 300,
          height: 180,
          mark: {type: 'line', point: true},
          encoding: {
            x: {
              field: 'bs',
              type: 'quantitative',
              scale: {type: 'log', base: 2},
              title: 'block size (bytes)',
              axis: {
                values: [4096, 16_384, 65_536, 262_144, 1_048_576],
                labelExpr: "datum.value >= 1048576 ? (datum.value / 1048576) + 'M' : (datum.value / 1024) + 'K'",
              },
            },
            y: {field: 'mbPerSec', type: 'quantitative', scale: {type: 'log'}, title: 'MB/s', axis: {format: '~s'}},
            color,
          },
        },
      },
    ],
  }
  await render(spec, file)
}

/** One bar per workload and target: each target's time relative to the reference target's (a rule at 1). */
export async function renderPeersChart(points: PeerPoint[], reference: string, title: string, file: string): Promise<void> {
  const workloads = [...new Set(points.map(p => p.workload))]
  const shown = TARGET_COLORS.domain.map((t, i) => [t, TARGET_COLORS.range[i]]).filter(([t]) => points.some(p => p.target === t))
  const colors = {domain: shown.map(x => x[0]), range: shown.map(x => x[1])}
  // Bars on a log scale start at its bottom: a power of ten below the smallest bar.
  const floor = 10 ** Math.floor(Math.log10(Math.min(1, ...points.map(p => p.relative)) * 0.9))
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {text: title, fontSize: 15},
    config: {font: 'DejaVu Sans', axis: {labelFontSize: 10, titleFontSize: 11}},
    width: Math.max(600, workloads.length * 70),
    height: 280,
    data: {values: points},
    encoding: {x: {field: 'workload', type: 'nominal', sort: workloads, title: null, axis: {labelAngle: -30}}},
    layer: [
      {
        mark: {type: 'bar'},
        encoding: {
          xOffset: {field: 'target', type: 'nominal', sort: TARGET_COLORS.domain},
          y: {
            field: 'relative',
            type: 'quantitative',
            stack: null,
            scale: {type: 'log', domainMin: floor},
            title: `time / ${reference} time (lower is faster)`,
          },
          color: {field: 'target', type: 'nominal', title: 'target', scale: colors},
        },
      },
      {mark: {type: 'rule', strokeDash: [4, 3], color: '#333333'}, encoding: {x: null, y: {datum: 1}}},
    ],
  }
  await render(spec, file)
}

/** An icicle flame graph (callers on top, width = inclusive CPU time) of one profile window. */
export async function renderFlame(rows: FlameRow[], title: string, file: string): Promise<void> {
  const depth = Math.max(1, ...rows.map(r => r.depth + 1))
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {text: title, fontSize: 13},
    config: {font: 'DejaVu Sans', view: {stroke: null}},
    width: 1100,
    height: depth * 16,
    data: {values: rows.map(r => ({...r, label: r.name.length > 0 ? r.name : '?'}))},
    transform: [
      {calculate: 'datum.depth + 1', as: 'depth1'},
      {calculate: 'substring(datum.label, 0, floor((datum.x1 - datum.x0) * 1100 / 6.2))', as: 'short'},
    ],
    layer: [
      {
        mark: {type: 'rect', stroke: 'white', strokeWidth: 0.5},
        encoding: {
          x: {field: 'x0', type: 'quantitative', scale: {domain: [0, 1]}, axis: null},
          x2: {field: 'x1'},
          y: {field: 'depth', type: 'quantitative', scale: {domain: [0, depth], reverse: true}, axis: null},
          y2: {field: 'depth1'},
          color: {field: 'ms', type: 'quantitative', scale: {scheme: 'orangered'}, legend: null},
        },
      },
      {
        mark: {type: 'text', align: 'left', baseline: 'middle', dx: 2, dy: 8, fontSize: 9},
        encoding: {
          text: {field: 'short'},
          x: {field: 'x0', type: 'quantitative', scale: {domain: [0, 1]}, axis: null},
          y: {field: 'depth', type: 'quantitative', scale: {domain: [0, depth], reverse: true}, axis: null},
        },
      },
    ],
  }
  await render(spec, file)
}
