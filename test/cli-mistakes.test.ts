/**
 * Ordinary user mistakes on the command line: each one ends with exactly one line on stderr
 * (`vmphys CMD: what is wrong`), exit status 2 for a usage error and 1 for a failure, and never
 * a stack trace. Also a fuzz of the argument parsers (random options around one unknown
 * option), `--help` for every subcommand, `--version`, and the viz server's answer to a
 * malformed URL.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';

const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'vmphys-mistakes-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const MISSING = join(tmp, 'no-such-file');
const EMPTYDIR = join(tmp, 'empty');
mkdirSync(EMPTYDIR);
const LONE = join(tmp, 'lone');
mkdirSync(LONE);
writeFileSync(join(LONE, 'x.in'), 'init\n');
const TRACE = fileURLToPath(new URL('../../test/fixtures/trace-small.csv', import.meta.url));
const BOOT = 'seg 0x1000 0x9f000\nseg 0x100000 0x8000000\ninit\nstartup lazy\n';
const RESTORE = join(tmp, 'restore.in');
writeFileSync(RESTORE, `${BOOT}alloc default 0\nrestore ${MISSING}\ncounts\n`);
const SNAPSHOT = join(tmp, 'snapshot.in');
writeFileSync(SNAPSHOT, `${BOOT}alloc default 0\nsnapshot ${join(MISSING, 'dir', 'x')}\ncounts\n`);

function vmphys(args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', input: '', cwd: tmp });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The mistake contract: one stderr line naming the command, the exit status, no stack frame. */
function assertMistake(args: string[], status: 1 | 2, pattern?: RegExp) {
  const r = vmphys(args);
  const what = `vmphys ${args.join(' ')}`;
  assert.equal(r.status, status, `${what}: exit ${r.status}, stderr: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n {4}at /, `${what}: stack trace`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `${what}: expected one stderr line, got:\n${r.stderr}`);
  assert.match(lines[0], /^vmphys( [a-z-]+)?: /, what);
  if (pattern) assert.match(lines[0], pattern, what);
  return r;
}

describe('each known mistake: one line, the right exit status, no stack trace', () => {
  const cases: Array<[string[], 1 | 2, RegExp?]> = [
    [['run', MISSING], 1, /no such file/],
    [['run', tmp], 1, /is a directory/],
    [['run'], 2, /SCRIPT/],
    [['conformance', MISSING], 1, /no such file/],
    [['conformance', EMPTYDIR], 1, /no vectors/],
    [['conformance', LONE], 1, /x\.in has no x\.out/],
    [['replay', tmp], 1, /is a directory/],
    [['replay', TRACE, '--map', tmp], 1, /--map.*is a directory/],
    [['replay'], 2, /trace FILE/],
    [['boot', '--map', MISSING], 1, /--map.*no such file/],
    [['boot', '--map', tmp], 1, /--map.*is a directory/],
    [['boot', '--ram', '1G', '--map', MISSING], 2, /--map, --ram/],
    [['boot', '--ram', '16T'], 2, /--ram 16T.*2\^31 pages/],
    [['boot', '--ram', 'lots'], 2, /--ram/],
    [['boot', '--svg', join(MISSING, 'x.svg'), '--ram', '64M'], 1, /--svg/],
    [['boot', '--svg', tmp, '--ram', '64M'], 1, /--svg.*is a directory/],
    [['boot', '--profile', 'sparc'], 2, /--profile/],
    [['boot', 'extra'], 2, /unexpected argument 'extra'/],
    [['stress', '--ram', '64T'], 2, /--ram 64T.*2\^31 pages/],
    [['stress', '--workers'], 2, /--workers needs a value/],
    [['stress', '--workers', 'abc'], 2, /--workers/],
    [['run', RESTORE], 1, /:6: EIO: .*no such file/],
    [['run', SNAPSHOT], 1, /:6: EIO: .*no such file/],
    [['bench'], 2, /unknown command 'bench'/],
    [['viz', '--trace', tmp, '--port', '0'], 1, /--trace.*is a directory/],
    [['viz', '--map', MISSING], 1, /--map.*no such file/],
    [['viz', '--ram', '1G', '--map', MISSING], 2, /--map, --ram/],
    [['phys-free', '--ram', '8P'], 2, /--ram/],
    [['phys-segs', 'x'], 2, /unexpected argument 'x'/],
    [['phys-free', '--mode', 'sideways'], 2, /--mode/],
    [['phys-free', '--map', MISSING], 1, /no such file/],
    [['replay', TRACE, '--limit', '-3'], 2, /--limit/],
    [['replay', TRACE, '--limit'], 2, /--limit needs a value/],
    [['boot', '--events=x'], 2, /--events/],
    [['boot', '--json=yes'], 2, /--json takes no value/],
    [['nosuchcommand'], 2, /unknown command/],
  ];
  for (const [args, status, pattern] of cases) test(args.join(' '), () => void assertMistake(args, status, pattern));

  test('a failing script line keeps the output of the lines before and after it', () => {
    const r = vmphys(['run', RESTORE]);
    const out = r.stdout.trimEnd().split('\n');
    assert.deepEqual(out.slice(0, 5), ['ok', 'ok', 'ok', 'ok', '0x1000000']);
    assert.match(out[5], /^error: EIO: /);
    assert.match(out[6], /^lazyinit=/);
  });
});

describe('help and version', () => {
  for (const cmd of ['run', 'conformance', 'boot', 'phys-free', 'phys-segs', 'replay', 'stress', 'viz']) {
    test(`vmphys ${cmd} --help explains its options`, () => {
      const r = vmphys([cmd, '--help']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.match(r.stdout, new RegExp(`^usage: vmphys ${cmd}`));
      // Every option named in the synopsis has its own explaining line.
      const synopsis = r.stdout.split('\n').filter((l) => /^(usage:| {10,}\[)/.test(l));
      const named = new Set(synopsis.join(' ').match(/--[a-z0-9-]+/g) ?? []);
      for (const opt of named) assert.match(r.stdout, new RegExp(`\\n {2}${opt}\\b`), `${cmd}: ${opt} not explained`);
    });
  }
  test('vmphys --version', () => {
    const r = vmphys(['--version']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^vmphys \d+\.\d+\.\d+\n$/);
  });
  test('vmphys with no command prints the usage and exits 2', () => {
    const r = vmphys([]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^usage: vmphys/);
  });
});

test('fuzz: random options around an unknown one are refused in one line, exit 2', () => {
  const token = fc.constantFrom(
    '--map',
    '--ram',
    '--mode',
    '--json',
    '--svg',
    '--limit',
    '--sample',
    '--port',
    '--events',
    '--profile',
    '--drain',
    '--workers',
    '--ops',
    '--filter',
    '--trace',
    'lazy',
    'eager',
    'both',
    '1G',
    '64T',
    '0',
    '-1',
    '',
    'x',
    '--',
    '--ram=',
    '--mode=',
    '--=',
    '=',
    '-',
    '-z',
    MISSING,
    '0x1000-0x2000',
    '--reserve',
    '--blacklist',
  );
  const cmd = fc.constantFrom('boot', 'phys-free', 'phys-segs', 'replay', 'viz', 'stress', 'conformance', 'run');
  fc.assert(
    fc.property(cmd, fc.array(token, { maxLength: 5 }), fc.nat(5), (c, toks, at) => {
      // The unknown option can be hidden behind '--' (then it is a positional argument or a
      // file name) or taken as a value; either way the command must refuse in one line.
      const args = [...toks];
      args.splice(Math.min(at, args.length), 0, '--no-such-option');
      const r = vmphys([c, ...args]);
      const what = `vmphys ${c} ${JSON.stringify(args)}`;
      assert.ok(r.status === 1 || r.status === 2, `${what}: exit ${r.status}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n {4}at /, what);
      assert.equal(r.stderr.split('\n').filter((l) => l !== '').length, 1, `${what}:\n${r.stderr}`);
    }),
    { numRuns: 20, seed: 13 },
  );
});

test('viz answers a malformed URL with 400, not 500', async () => {
  const p = spawn(process.execPath, [cli, 'viz', '--port', '0', '--ram', '64M'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr.on('data', (b: Buffer) => {
    err += b.toString();
  });
  const exited = new Promise<number | null>((resolve) => p.on('close', (code) => resolve(code)));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      p.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        const nl = out.indexOf('\n');
        if (nl >= 0) resolve(out.slice(0, nl));
      });
      p.on('close', (code) => reject(new Error(`viz exited ${code}: ${err}`)));
    });
    const res = await fetch(`${url}%E0%A4%A`);
    assert.equal(res.status, 400);
    const ok = await fetch(`${url}config.json`);
    assert.equal(ok.status, 200);
  } finally {
    p.kill('SIGTERM');
    assert.equal(await exited, 0, err);
  }
});
