import {Config, loadHelpClass} from '@oclif/core'

/**
 * oclif's own rendering of razorfs's help, captured instead of printed: the text that
 * `razorfs [SUBJECT] --help` writes to stdout at a given width (coloured if this process's streams
 * would be). The build uses it for the help cache's seed and for the man page's synopses.
 */

/** The subjects of the help: '' (the root) and every visible top-level command. */
export function helpSubjects(config: Config): string[] {
  return ['', ...config.commands.filter(c => !c.hidden && !c.id.includes(':')).map(c => c.id)].sort()
}

/** What oclif prints for `razorfs [subject] --help` at `width` columns. */
export async function renderHelp(config: Config, subject: string, width: number): Promise<string> {
  const Help = await loadHelpClass(config)
  const help = new Help(config, {...config.pjson.oclif.helpOptions, maxWidth: width})
  const chunks: string[] = []
  const write = process.stdout.write
  process.stdout.write = ((chunk: string | Uint8Array) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'))
    return true
  }) as typeof process.stdout.write
  try {
    await help.showHelp(subject === '' ? [] : [subject])
  } finally {
    process.stdout.write = write
  }
  return chunks.join('')
}

/** The usage lines of a help text (its USAGE section, `$ ` removed), unwrapped if rendered wide enough. */
export function usageLines(help: string): string[] {
  const section = help.split(/^USAGE$/m)[1]?.split(/\n\n/)[0] ?? ''
  return [...section.matchAll(/^ {2}\$ (.*)$/gm)].map(m => m[1])
}
