/**
 * Build step (`npm run build`, after `oclif manifest`): writes what is made from the help.
 *
 * - `dist/help/`: the help cache's seed (src/cli/help-cache.ts): every subject's help as oclif
 *   prints it in a pipe (plain, 80 columns), so that `razorfs --help | less` and scripts never
 *   load oclif.
 * - `man/razorfs.1`: the man page (src/docs/man.ts).
 *
 * Usage: node dist/src/docs/generate.js [ROOT] (default: the package this file is in).
 */
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

// supports-color reads the environment when oclif loads it: the seed is what a pipe gets, plain.
process.env.FORCE_COLOR = '0'

const root = process.argv[2] ?? fileURLToPath(new URL('../../..', import.meta.url))
const {Config} = await import('@oclif/core')
const {buildId, helpDirs, storeHelp} = await import('../cli/help-cache.js')
const {helpSubjects, renderHelp, usageLines} = await import('./help-text.js')
const {manPage} = await import('./man.js')

const config = await Config.load({root: join(root, 'bin', 'run.js'), userPlugins: false})
const id = buildId(root)
if (id === undefined) throw new Error(`${root}: no oclif.manifest.json: run oclif manifest first`)

const seed = helpDirs(root).seed
for (const subject of helpSubjects(config)) {
  const text = await renderHelp(config, subject, 80)
  if (!storeHelp(seed, {subject, width: 80, colour: false, id, root}, text)) throw new Error(`${seed}: cannot write the help cache`)
}

const commands = []
for (const subject of helpSubjects(config).filter(s => s !== '')) {
  const command = config.findCommand(subject)!
  commands.push({
    id: command.id,
    summary: command.summary,
    description: command.description,
    // Wide enough that oclif does not wrap a usage line.
    usage: usageLines(await renderHelp(config, subject, 1000)),
    args: Object.values(command.args),
    flags: Object.values(command.flags).map(flag => ({...flag, type: flag.type})),
    examples: (command.examples ?? []).map(example => {
      const {command: line, description} = typeof example === 'string' ? {command: example, description: undefined} : example
      const rendered = line.replaceAll('<%= config.bin %>', config.bin).replaceAll('<%= command.id %>', command.id)
      return {command: rendered.replace(/^\$ /, ''), description}
    }),
  })
}
mkdirSync(join(root, 'man'), {recursive: true})
writeFileSync(join(root, 'man', 'razorfs.1'), manPage({version: config.version, description: config.pjson.description ?? '', commands}))
