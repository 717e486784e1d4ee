/**
 * `vmphys conformance [DIR] [--filter S]`: run every golden vector (NAME.in → NAME.out) and
 * compare byte for byte. Prints one line per failure with the first differing line, and ends
 * with `N passed, M failed`. Exit status 1 if any vector fails.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { verify } from '../core/verify.js';
import { ScriptRunner } from '../script/run.js';
import { sharedData } from './paths.js';

export interface VectorResult {
  name: string;
  ok: boolean;
  ms: number;
  detail?: string;
}

/** Run one vector; `detail` names the first differing output line. */
export function runVector(dir: string, name: string): VectorResult {
  const t0 = performance.now();
  const input = readFileSync(join(dir, `${name}.in`), 'utf8');
  const expected = readFileSync(join(dir, `${name}.out`), 'utf8');
  let actual: string;
  try {
    const runner = new ScriptRunner();
    actual = runner.run(input);
    // Every vector must also leave the allocator consistent.
    if (runner.vm) verify(runner.vm);
  } catch (e) {
    return { name, ok: false, ms: performance.now() - t0, detail: `crashed: ${(e as Error).stack}` };
  }
  const ms = performance.now() - t0;
  if (actual === expected) return { name, ok: true, ms };
  const a = actual.split('\n');
  const b = expected.split('\n');
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i])
      return {
        name,
        ok: false,
        ms,
        detail: `line ${i + 1}: expected ${JSON.stringify(b[i])}, got ${JSON.stringify(a[i])}`,
      };
  }
  return { name, ok: false, ms, detail: 'differs' };
}

export function conformanceMain(args: string[]): number {
  let dir = sharedData('golden');
  let filter = '';
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--filter') filter = args[++i] ?? '';
    else dir = args[i];
  }
  const names = readdirSync(dir)
    .filter((f) => f.endsWith('.in'))
    .map((f) => f.slice(0, -3))
    .filter((n) => n.includes(filter))
    .sort();
  let passed = 0;
  let failed = 0;
  for (const name of names) {
    const r = runVector(dir, name);
    if (r.ok) passed++;
    else {
      failed++;
      console.log(`FAIL ${name}: ${r.detail}`);
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}
