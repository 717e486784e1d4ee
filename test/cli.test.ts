/**
 * The script CLI (`vmphys run`): bad lines print `error: CODE: message`, name FILE:LINE on
 * stderr, the script goes on, and the exit status is 1; snapshot/restore in scripts; a fuzz of
 * the script interpreter (only typed errors, never a crash).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { verify } from '../src/core/verify.js';
import { ScriptRunner } from '../src/script/run.js';

const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'vmphys-cli-'));

function run(script: string) {
  const f = join(dir, `s${Math.random().toString(36).slice(2)}.in`);
  writeFileSync(f, script);
  return { ...spawnSync(process.execPath, [cli, 'run', f], { encoding: 'utf8' }), file: f };
}

const BOOT = 'seg 0x1000 0x9f000\nseg 0x100000 0x8000000\ninit\nstartup lazy\n';

test('bad lines print error: CODE, go on, name FILE:LINE, and exit 1', () => {
  const r = run(`${BOOT}alloc default 0\nfree 0x123 0 default\nalloc lazyinit 0\nbogus 1\ncounts\n`);
  assert.equal(r.status, 1);
  const lines = r.stdout.trimEnd().split('\n');
  assert.deepEqual(lines.slice(0, 5), ['ok', 'ok', 'ok', 'ok', '0x1000000']);
  assert.match(lines[5], /^error: EALIGN: /);
  assert.match(lines[6], /^error: (EPOOL): /);
  assert.match(lines[7], /^error: ECOMMAND: /);
  assert.match(lines[8], /^lazyinit=\d+ default=4095 direct=0 total=\d+$/);
  assert.match(r.stderr, new RegExp(`${r.file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6: EALIGN`));
});

test('a clean script exits 0', () => {
  const r = run(`${BOOT}alloc default 0\ncounts\n`);
  assert.equal(r.status, 0, r.stderr);
});

test('snapshot FILE and restore FILE in a script', () => {
  const snap = join(dir, 'snap.bin');
  const r = run(`${BOOT}alloc default 0\nsnapshot ${snap}\nalloc default 3\nrestore ${snap}\nalloc default 3\n`);
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout.trimEnd().split('\n');
  assert.equal(out[6], out[8], 'after restore the same call returns the same address');
  const bad = run(`${BOOT}restore ${join(dir, 'nope.bin')}\n`);
  assert.notEqual(bad.status, 0);
});

test('fuzz: random script lines only ever give output or typed errors', () => {
  const word = fc.constantFrom(
    'alloc',
    'free',
    'contig',
    'npages',
    'unfree',
    'find_range',
    'drain',
    'domain',
    'dump',
    'counts',
    'free_contig',
    'freelist_alloc',
    'seg',
    'avail',
    'init',
    'startup',
    'profile',
    'xyz',
    '#',
    '',
  );
  const arg = fc.oneof(
    fc.constantFrom(
      'default',
      'direct',
      'lazyinit',
      'dma32',
      'lowmem',
      'lazy',
      'eager',
      '-1',
      '0',
      '13',
      '0x1000',
      '0x2000000',
      '0xffffffffffffffff',
      'zz',
    ),
    fc.nat(5000).map(String),
    fc.nat(0x8000).map((n) => `0x${(n * 4096).toString(16)}`),
  );
  const line = fc.tuple(word, fc.array(arg, { maxLength: 6 })).map(([w, a]) => [w, ...a].join(' '));
  fc.assert(
    fc.property(fc.array(line, { maxLength: 60 }), (lines) => {
      const r = new ScriptRunner();
      r.exec('seg 0x1000 0x9f000');
      r.exec('seg 0x100000 0x4000000');
      r.exec('init');
      r.exec('startup lazy');
      for (const l of lines) {
        const out = r.exec(l);
        assert.ok(out === '' || out.endsWith('\n'));
      }
      if (r.vm && r.vm.phase === 2) verify(r.vm);
    }),
    { numRuns: 300 },
  );
  // From an empty machine too: configuration commands in any order, in any state.
  fc.assert(
    fc.property(fc.array(line, { maxLength: 40 }), (lines) => {
      const r = new ScriptRunner();
      for (const l of lines) r.exec(l);
      if (r.vm && r.vm.phase === 2) verify(r.vm);
    }),
    { numRuns: 300 },
  );
});
