/**
 * Every golden vector in data/golden (gzip-compressed), byte for byte, with verify() after each one and
 * (for the smaller machines) after every 25 commands.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { listVectors, readVectorFile } from '../src/cli/conformance.js';
import { dataPath } from '../src/cli/paths.js';
import { verify } from '../src/core/verify.js';
import { ScriptRunner } from '../src/script/run.js';

const dir = dataPath('golden');
// listVectors throws when the folder is missing, empty or has a .in without its .out.
const names = listVectors(dir);

test('the golden folder has vectors of all three groups', () => {
  assert.ok(names.length >= 100, `only ${names.length} vectors`);
  assert.ok(names.some((n) => n.startsWith('numa-')));
  assert.ok(names.some((n) => n.startsWith('arm64-')));
});

for (const name of names) {
  test(`golden ${name}`, () => {
    const input = readVectorFile(dir, `${name}.in`);
    const expected = readVectorFile(dir, `${name}.out`);
    const runner = new ScriptRunner();
    const out: string[] = [];
    let n = 0;
    for (const line of input.split('\n')) {
      out.push(runner.exec(line));
      // Check invariants as we go on machines small enough to scan cheaply.
      if (++n % 25 === 0 && runner.vm && runner.vm.phase === 2 && runner.vm.totalPages <= 1 << 18) verify(runner.vm);
    }
    const actual = out.join('');
    if (actual !== expected) {
      const a = actual.split('\n');
      const b = expected.split('\n');
      const i = a.findIndex((l, k) => l !== b[k]);
      assert.fail(
        `${name}: first difference at output line ${i + 1}: expected ${JSON.stringify(b[i])}, got ${JSON.stringify(a[i])}`,
      );
    }
    assert.equal(runner.errors, 0);
    if (runner.vm) verify(runner.vm);
  });
}
