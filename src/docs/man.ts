/**
 * razorfs(1), the man page, written in roff (the man macros) from what `--help` is made of: oclif's
 * command metadata (summary, description, arguments, flags, examples) and the usage lines oclif
 * renders. The sections that are not per command (exit status, environment, files) are written
 * here, from the same constants the code uses.
 */
import {EXIT, EXIT_FAILURE, EXIT_MOUNT_FAILURE} from '../exit-codes.js'

/** A flag as the man page shows it (oclif's cached flag, the fields used here). */
export interface ManFlag {
  name: string
  char?: string
  type: 'boolean' | 'option'
  summary?: string
  description?: string
  helpValue?: string | string[]
  options?: readonly string[]
  default?: unknown
  helpGroup?: string
  hidden?: boolean
  allowNo?: boolean
}

/** A command as the man page shows it. */
export interface ManCommand {
  id: string
  summary?: string
  description?: string
  /** oclif's usage lines, without `$ `. */
  usage: string[]
  args: Array<{name: string; description?: string; required?: boolean}>
  flags: ManFlag[]
  examples: Array<{command: string; description?: string}>
}

export interface ManPage {
  version: string
  /** One line: what razorfs is. */
  description: string
  commands: ManCommand[]
}

/** `text` as roff text: backslashes, hyphens and non-ASCII escaped, no line starting with a control character. */
export function roffText(text: string): string {
  return text
    .replaceAll('\\', '\\e')
    .replaceAll('-', '\\-')
    .replace(/[^\x00-\x7f]/gu, c => `\\[u${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}]`)
    .replace(/^([.'])/gm, '\\&$1')
}

const bold = (text: string): string => `\\fB${roffText(text)}\\fR`
const italic = (text: string): string => `\\fI${roffText(text)}\\fR`

/** Paragraphs of a help text: a one-line paragraph is filled, one of several lines keeps its lines (tables). */
function paragraphs(text: string, macro = '.PP'): string[] {
  const out: string[] = []
  for (const paragraph of text.trim().split(/\n\s*\n/)) {
    const lines = paragraph.split('\n')
    out.push(macro)
    if (lines.length === 1) {
      out.push(roffText(lines[0]))
    } else {
      out.push(roffText(lines[0]), '.nf', '.RS 2', ...lines.slice(1).map(roffText), '.RE', '.fi')
    }
  }
  return out
}

/** The tag of a flag: `-f, --foreground`, `--binding=ll|fuse-native`, `-o, --options=<opt,...>`. */
export function flagLabel(flag: ManFlag): string {
  const names = [flag.char ? bold(`-${flag.char}`) : undefined, bold(`--${flag.allowNo ? '[no-]' : ''}${flag.name}`)]
  let label = names.filter(name => name !== undefined).join(', ')
  if (flag.type === 'option') {
    const value = flag.options?.join('|') ?? (Array.isArray(flag.helpValue) ? flag.helpValue.join(' ') : flag.helpValue) ?? '<value>'
    label += `=${italic(value)}`
  }
  return label
}

function flagText(flag: ManFlag): string[] {
  const text = [flag.summary, flag.description].filter(Boolean).join('\n\n')
  const extra = flag.type === 'option' && flag.default !== undefined ? ` (default: ${String(flag.default)})` : ''
  // Inside a .TP item: its first paragraph follows the tag, the next ones are .IP (indented alike).
  return paragraphs(text + extra, '.IP').slice(1)
}

function commandSection(command: ManCommand): string[] {
  const out = [`.SS "${command.id}"`]
  for (const usage of command.usage) out.push('.PP', `${bold(usage.split(' ')[0])} ${roffText(usage.split(' ').slice(1).join(' '))}`)
  const summary = command.summary ?? command.description?.split('\n')[0] ?? ''
  const description = command.summary ? command.description : command.description?.split('\n').slice(1).join('\n')
  out.push('.PP', roffText(summary))
  if (description?.trim()) out.push(...paragraphs(description))
  if (command.args.length > 0) {
    out.push('.PP', 'Arguments:')
    for (const arg of command.args) out.push('.TP', italic(arg.name.toUpperCase()), roffText(arg.description ?? ''))
  }
  const visible = command.flags.filter(flag => !flag.hidden)
  const ordered = [...visible.filter(f => f.helpGroup !== 'GLOBAL'), ...visible.filter(f => f.helpGroup === 'GLOBAL')]
  if (ordered.length > 0) {
    out.push('.PP', 'Flags:')
    for (const flag of ordered) out.push('.TP', flagLabel(flag), ...flagText(flag))
  }
  if (command.examples.length > 0) {
    out.push('.PP', 'Examples:')
    for (const example of command.examples) {
      if (example.description) out.push('.PP', '.RS 2', roffText(example.description), '.RE')
      out.push('.PP', '.RS 4', '.nf', roffText(`$ ${example.command}`), '.fi', '.RE')
    }
  }
  return out
}

const EXIT_STATUS: Array<[number, string]> = [
  [EXIT.OK, 'Success.'],
  [EXIT_FAILURE, 'The command failed (the one line on stderr says why); for fsck: errors were found and corrected.'],
  [EXIT.UNCORRECTED, 'fsck: errors were left uncorrected.'],
  [EXIT.OPERATIONAL, 'fsck: operational error (the check could not be done).'],
  [EXIT.USAGE, 'Usage error: unknown command or flag, missing or unexpected argument, bad value.'],
  [EXIT_MOUNT_FAILURE, 'fsck: cancelled; umount, status: not mounted, not a razorfs mount, busy, or the unmount failed (umount(8)\'s "mount failure").'],
]

const ENVIRONMENT: Array<[string, string]> = [
  ['RAZORFS_DATA_DIR', 'The data dir, when --data-dir is not given (ignored if empty).'],
  ['XDG_DATA_HOME', 'The data dir is $XDG_DATA_HOME/razorfs for a user other than root, if it is an absolute path.'],
  ['RAZORFS_PROGRESS_DELAY_MS', 'How long a phase runs before a progress bar is drawn on a terminal (default 400).'],
  ['RAZORFS_CACHE_DIR', 'The cache dir (shell completion, help), instead of $XDG_CACHE_HOME/razorfs-cli or ~/.cache/razorfs-cli.'],
  ['DEBUG', 'When set, a failure prints its stack trace too.'],
]

const FILES: Array<[string, string]> = [
  ['DATA-DIR', 'The data dir: --data-dir, else $RAZORFS_DATA_DIR, else /var/lib/razorfs for root, else $XDG_DATA_HOME/razorfs, else ~/.local/share/razorfs.'],
  [
    'DATA-DIR/nodes.dat, entries.dat, entries.idx, strings.dat, strings.idx',
    'The mapped files of the image: inodes, directory entries and their index, names and their index.',
  ],
  ['DATA-DIR/wal.log', 'The write-ahead log.'],
  ['DATA-DIR/lock', 'The lock file; it holds the pid of the process that has the image open for writing.'],
  ['DATA-DIR/data/', 'The contents of regular files, one host file per razorfs file.'],
  ['DATA-DIR/razorfs.log', 'The log of a mount started without -f.'],
  ['DATA-DIR/razorfs.status', 'What razorfs status reads: the figures of a running mount, rewritten once a second.'],
  ['~/.cache/razorfs-cli/', 'Shell completion scripts (razorfs autocomplete) and help texts already shown; safe to delete.'],
]

const SEE_ALSO = ['fusermount3(1)', 'mount.fuse3(8)', 'mount(8)', 'umount(8)', 'fsck(8)', 'e2fsck(8)']

/** The man page, roff source. */
export function manPage(page: ManPage): string {
  const commands = [...page.commands].sort((a, b) => a.id.localeCompare(b.id))
  const out = [
    `.TH RAZORFS 1 "" "razorfs ${page.version}" "User Commands"`,
    // No hyphenation, ragged right: names, paths and flags stay whole.
    '.nh',
    '.ad l',
    '.SH NAME',
    `razorfs \\- ${roffText(page.description)}`,
    '.SH SYNOPSIS',
    `${bold('razorfs')} ${italic('COMMAND')} [${italic('ARGUMENTS')}] [${italic('FLAGS')}]`,
    '.br',
    `${bold('razorfs')} [${italic('COMMAND')}] ${bold('--help')}`,
    '.br',
    `${bold('razorfs help')} [${italic('COMMAND')}]`,
    '.SH DESCRIPTION',
    roffText(page.description + '.'),
    '.PP',
    roffText(
      'Every command works on the image in one data dir (see FILES) and takes --data-dir. ' +
        '"razorfs --help" lists the commands and "razorfs COMMAND --help" describes one, as this page does below.',
    ),
    '.SH COMMANDS',
    ...commands.flatMap(commandSection),
    '.SH EXIT STATUS',
    ...EXIT_STATUS.flatMap(([code, text]) => ['.TP', bold(String(code)), roffText(text)]),
    '.PP',
    roffText('fsck ORs its codes together, as fsck(8) does.'),
    '.SH ENVIRONMENT',
    ...ENVIRONMENT.flatMap(([name, text]) => ['.TP', bold(name), roffText(text)]),
    '.SH FILES',
    ...FILES.flatMap(([name, text]) => ['.TP', italic(name), roffText(text)]),
    '.SH SEE ALSO',
    SEE_ALSO.map(ref => {
      const [name, section] = ref.split('(')
      return `${bold(name)}(${section}`
    }).join(', '),
  ]
  return out.join('\n') + '\n'
}
