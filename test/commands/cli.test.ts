import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {pathToFileURL} from 'node:url'

import {type CliResult, NOBODY, RUN_JS, lines, runCli, runCliAsNobody, listedCommands, runLogged, stackLines, tempDir} from '../helpers/cli.js'

/** razorfs's own commands (each takes --data-dir); `compact` is `gc` under another name (an oclif alias). */
const COMMANDS = ['compact', 'dump', 'fsck', 'gc', 'info', 'init', 'migrate', 'mount', 'stats', 'status', 'umount']
/** What the root help lists: those and the shell completion plugin's `autocomplete`. */
const LISTED = ['autocomplete', ...COMMANDS]

describe('razorfs (root)', () => {
  it('--help lists exactly the twelve commands (gc and its alias compact, and autocomplete) and exits 0', () => {
    const result = runCli(['--help'])
    expect(result.status).to.equal(0)
    expect(listedCommands(result.stdout).sort()).to.deep.equal(LISTED)
  })

  it('with no arguments prints the same list', () => {
    const result = runCli([])
    expect(result.status).to.equal(0)
    expect(listedCommands(result.stdout).sort()).to.deep.equal(LISTED)
  })

  it("help COMMAND shows that command's help", () => {
    const result = runCli(['help', 'init'])
    expect(result.status).to.equal(0)
    expect(result.stdout).to.match(/^USAGE\n\s+\$ razorfs init/m)
  })

  for (const command of COMMANDS) {
    it(`${command} --help exits 0 and documents --data-dir`, () => {
      const result = runCli([command, '--help'])
      expect(result.status).to.equal(0)
      expect(result.stdout).to.include(`$ razorfs ${command}`)
      expect(result.stdout).to.include('--data-dir')
      expect(result.stdout).to.include('RAZORFS_DATA_DIR')
    })
  }

  it('an unknown command exits 16 with one line on stderr', () => {
    const result = runCli(['frobnicate'])
    expect(result.status).to.equal(16)
    expect(lines(result.stderr)).to.deep.equal(["razorfs: unknown command 'frobnicate' (see 'razorfs --help')"])
  })

  it('asking the help of an unknown command is the same usage error; words after a command ask for its help', () => {
    for (const [args, line] of [
      [['frobnicate', '--help'], "razorfs: unknown command 'frobnicate' (see 'razorfs --help')"],
      [['mont', '-h'], "razorfs: unknown command 'mont'; did you mean 'mount'? (see 'razorfs --help')"],
    ] as Array<[string[], string]>) {
      const result = runCli(args)
      expect(result.status, args.join(' ')).to.equal(16)
      expect(result.stdout).to.equal('')
      expect(lines(result.stderr)).to.deep.equal([line])
    }

    const words = runCli(['stats', 'extra', '--help'])
    expect(words.status, words.stderr).to.equal(0)
    expect(words.stderr).to.equal('')
    expect(words.stdout).to.equal(runCli(['stats', '--help']).stdout)
  })
})

describe('usage errors exit 16', () => {
  const cases: Array<[string, string[]]> = [
    ['an unknown flag (init)', ['init', '--bogus']],
    ['an unknown flag (mount)', ['mount', '--bogus', '/tmp/x']],
    ['an unknown flag (fsck)', ['fsck', '--bogus']],
    ['an unknown flag (migrate)', ['migrate', '--from', '/x', '--bogus']],
    ['an unknown flag (dump)', ['dump', '--bogus']],
    ['an unknown flag (stats)', ['stats', '--bogus']],
    ['an unknown flag (status)', ['status', '--bogus']],
    ['an unknown flag (umount)', ['umount', '--bogus', '/tmp/x']],
    ['a missing argument', ['mount']],
    ['an unexpected argument', ['stats', 'extra']],
    ['a value outside the allowed ones', ['mount', '--binding', 'nope', '/tmp/x']],
    ['a bad integer', ['init', '--capacity', 'many']],
    ['an integer out of range', ['init', '--capacity', '0']],
    ['exclusive flags', ['fsck', '-n', '-y']],
  ]
  for (const [what, args] of cases) {
    it(`${what}: razorfs ${args.join(' ')}`, () => {
      const result = runCli(args)
      expect(result.status, result.stderr).to.equal(16)
      expect(result.stdout).to.equal('')
      const err = lines(result.stderr)
      expect(err).to.have.length(1)
      expect(err[0]).to.match(/^razorfs: /)
      expect(stackLines(result.stderr)).to.deep.equal([])
    })
  }

  it('under --json, prints {"error": {"code": "USAGE", ...}} on stdout and still exits 16', () => {
    const result = runCli(['stats', '--json', '--bogus'])
    expect(result.status).to.equal(16)
    const out = JSON.parse(result.stdout)
    expect(out.error.code).to.equal('USAGE')
    expect(out.error.message).to.include('--bogus')
  })
})

describe('usage errors name the real cause', () => {
  it('words after a command that takes no more arguments are unexpected arguments, not an unknown command', () => {
    const cases: Array<[string[], string]> = [
      [['stats', 'extra'], "razorfs: unexpected argument: extra (see 'razorfs stats --help')"],
      [['stats', '/some/dir', 'extra'], "razorfs: unexpected arguments: /some/dir, extra (see 'razorfs stats --help')"],
      [['init', 'extra'], "razorfs: unexpected argument: extra (see 'razorfs init --help')"],
      [['migrate', 'extra'], "razorfs: unexpected argument: extra (see 'razorfs migrate --help')"],
      [['dump', '/a', 'extra'], "razorfs: unexpected argument: extra (see 'razorfs dump --help')"],
      [['fsck', '/a', 'extra'], "razorfs: unexpected argument: extra (see 'razorfs fsck --help')"],
      [['mount', '/a', 'extra'], "razorfs: unexpected argument: extra (see 'razorfs mount --help')"],
    ]
    for (const [args, line] of cases) {
      const result = runCli(args)
      expect(result.status, `${args.join(' ')}: ${result.stderr}`).to.equal(16)
      expect(lines(result.stderr)).to.deep.equal([line])
      expect(result.stdout).to.equal('')
    }
  })

  it('an unknown command names the closest one', () => {
    const cases: Array<[string[], string]> = [
      [['mont', '/mnt'], 'mount'],
      [['fsk', '-n'], 'fsck'],
      [['dupm'], 'dump'],
      [['stat'], 'stats'],
      [['migr'], 'migrate'],
      [['help', 'inti'], 'init'],
      [['ifno', '/mnt/rz/f'], 'info'],
    ]
    for (const [args, closest] of cases) {
      const result = runCli(args)
      expect(result.status, result.stderr).to.equal(16)
      expect(lines(result.stderr)).to.deep.equal([
        `razorfs: unknown command '${args[args[0] === 'help' ? 1 : 0]}'; did you mean '${closest}'? (see 'razorfs --help')`,
      ])
    }
  })

  it('-h is --help, for the root and every command', () => {
    for (const command of [[], ...LISTED.map(c => [c])]) {
      const short = runCli([...command, '-h'])
      const long = runCli([...command, '--help'])
      expect(short.status, `${command} -h: ${short.stderr}`).to.equal(0)
      expect(short.stderr).to.equal('')
      expect(short.stdout).to.equal(long.stdout)
      expect(short.stdout).to.match(/^USAGE$/m)
    }
  })
})

describe('a data dir another user may not read', () => {
  let tmp: ReturnType<typeof tempDir>
  let dir: string
  /** Runs a command as a user who may not read `dir`: nobody if we are root, else ourselves with `dir` at mode 0. */
  let runAsStranger: (args: string[]) => CliResult

  before(() => {
    tmp = tempDir()
    fs.chmodSync(tmp.dir, 0o755)
    dir = path.join(tmp.dir, 'image')
    const made = runCli(['init', '--data-dir', dir])
    expect(made.status, made.stderr).to.equal(0)
    expect(fs.statSync(dir).mode & 0o777).to.equal(0o700)
    if (process.getuid?.() === 0) {
      runAsStranger = args => runCliAsNobody(args, {HOME: '/nonexistent'})!
    } else {
      fs.chmodSync(dir, 0)
      runAsStranger = args => runCli(args)
    }
  })

  after(() => {
    fs.chmodSync(dir, 0o700)
    tmp.remove()
  })

  for (const [args, status] of [
    [['stats'], 1],
    [['dump'], 1],
    [['dump', '--archive', '/dev/null'], 1],
    [['fsck', '-n'], 8],
  ] as Array<[string[], number]>) {
    it(`razorfs ${args.join(' ')} says permission denied, naming the data dir (not "holds no razorfs image")`, () => {
      const result = runAsStranger([...args, '--data-dir', dir])
      expect(result.status, result.stderr).to.equal(status)
      const err = lines(result.stderr)
      expect(err).to.have.length(1)
      expect(err[0]).to.match(
        new RegExp(
          `^razorfs: ${dir}: cannot read the data dir: permission denied \\(EACCES\\); it is mode 0[0-7]{3}, owned by uid \\d+; this process runs as uid \\d+$`,
        ),
      )
      expect(result.stdout).to.equal('')
    })
  }

  it('a readable data dir with files this user may not read: the line names the file and the cause', () => {
    const root = process.getuid?.() === 0
    fs.chmodSync(dir, 0o755)
    if (!root) for (const name of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, name), 0)
    try {
      for (const [args, status] of [
        [['stats'], 1],
        [['fsck', '-n'], 8],
      ] as Array<[string[], number]>) {
        const result = runAsStranger([...args, '--data-dir', dir])
        expect(result.status, result.stderr).to.equal(status)
        const err = lines(result.stderr)
        expect(err).to.have.length(1)
        expect(err[0]).to.match(new RegExp(`^razorfs: ${dir}/[a-z.]+: .*permission denied`))
        expect(err[0]).not.to.include('internal error')
      }
    } finally {
      if (!root) for (const name of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, name), 0o600)
      fs.chmodSync(dir, root ? 0o700 : 0)
    }
  })
})

describe("oclif's own directories are not razorfs's data dir", () => {
  /** Any warning Node or oclif prints ("(node:123) [EACCES] Error: ...", "Warning: ..."). */
  function warnings(stderr: string): string[] {
    return lines(stderr).filter(line => /^\(node:\d+\)|warning/i.test(line))
  }

  it('no warning about package.json in a data dir at the default place, nor in RAZORFS_DATA_DIR', () => {
    const tmp = tempDir()
    try {
      fs.chmodSync(tmp.dir, 0o755)
      // The default data dir of a user whose HOME is tmp.dir (as root it would be /var/lib/razorfs).
      const home = tmp.dir
      const dataDir = path.join(home, '.local', 'share', 'razorfs')
      const env = {HOME: home, XDG_DATA_HOME: undefined, RAZORFS_DATA_DIR: undefined}
      expect(runCli(['init', '--data-dir', dataDir]).status).to.equal(0)
      // Something oclif cannot read as its package.json (it used to warn about it on every run).
      fs.writeFileSync(path.join(dataDir, 'package.json'), 'not json')
      // As root, the user is nobody (root's default data dir is /var/lib/razorfs), owning it all.
      const root = process.getuid?.() === 0
      if (root) execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, home])
      const run = (args: string[], extra: NodeJS.ProcessEnv = {}): CliResult =>
        root ? runCliAsNobody(args, {...env, ...extra})! : runCli(args, {...env, ...extra})
      const byDefault = run(['stats', '--json'])
      expect(byDefault.status, byDefault.stderr).to.equal(0)
      expect(JSON.parse(byDefault.stdout).dataDir).to.equal(dataDir)
      expect(warnings(byDefault.stderr)).to.deep.equal([])
      expect(byDefault.stderr).to.equal('')
      const byEnv = run(['stats'], {RAZORFS_DATA_DIR: dataDir})
      expect(byEnv.status, byEnv.stderr).to.equal(0)
      expect(byEnv.stderr).to.equal('')
      // Nor when oclif's data dir would be one the user may not read (HOME of another user).
      if (root) {
        const other = run(['--help'], {HOME: '/root'})
        expect(other.status, other.stderr).to.equal(0)
        expect(other.stderr).to.equal('')
      }
    } finally {
      tmp.remove()
    }
  })
})

describe('razorfs --help loads none of razorfs itself', () => {
  /** The modules of dist/src/ that `razorfs ...args` loads, relative to dist/src/. */
  function loaded(args: string[]): string[] {
    const result = runLogged(args, {RAZORFS_DATA_DIR: '/nonexistent/razorfs-test'})
    expect(result.status, result.stderr).to.be.oneOf([0, 1])
    const src = pathToFileURL(path.join(path.dirname(RUN_JS), '..', 'dist', 'src')).href + '/'
    return result.loaded
      .filter(url => url.startsWith(src))
      .map(url => url.slice(src.length))
      .sort()
  }

  it('the hook sees the storage layer when a command runs (the check below can fail)', () => {
    expect(loaded(['stats'])).to.include.members(['storage/index.js', 'commands/stats.js', 'base-command.js'])
  })

  // The help cache (cli/help-cache.js) is what answers them; without it oclif loads no command either.
  for (const args of [['--help'], ['-h'], [], ['stats', '--help'], ['dump', '-h'], ['help', 'mount']]) {
    it(`razorfs ${args.join(' ')} loads no command, storage, fuse or progress module`, () => {
      expect(loaded(args)).to.deep.equal(['cli/help-cache.js'])
    })
  }
})
