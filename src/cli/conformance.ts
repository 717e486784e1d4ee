/**
 * `vmphys conformance [DIR] [--filter S]`: run every golden vector (NAME.in → NAME.out, each
 * plain or gzip-compressed as NAME.in.gz / NAME.out.gz) and compare byte for byte. DIR defaults
 * to the repository's data/golden. Prints one line per failure with the first differing line,
 * and ends with `N passed, M failed`. Exit status 1 if any vector fails, if DIR holds no
 * vector, or if a NAME.in has no NAME.out. Owned by the CLI.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { verify } from '../core/verify.js';
import { ScriptRunner } from '../script/run.js';
import { parseArgs } from './args.js';
import { CliFailure, ioMessage } from './common.js';
import { dataPath } from './paths.js';

export const USAGE = `usage: vmphys conformance [DIR] [--filter S]
Runs every golden vector NAME.in in DIR and compares its output with NAME.out byte for byte
(either file may be gzip-compressed: NAME.in.gz, NAME.out.gz).
  DIR          folder of vectors (default: the repository's data/golden)
  --filter S   run only the vectors whose name contains S
Ends with 'N passed, M failed'; exit status 1 when any vector fails.
`;

export interface VectorResult {
  name: string;
  ok: boolean;
  ms: number;
  detail?: string;
}

/** The text of `DIR/NAME.EXT` or, when only that exists, of `DIR/NAME.EXT.gz` (gunzipped). */
export function readVectorFile(dir: string, file: string): string {
  const plain = join(dir, file);
  if (existsSync(plain)) return readFileSync(plain, 'utf8');
  return gunzipSync(readFileSync(`${plain}.gz`)).toString('utf8');
}

/** Names of the vectors in `dir` (NAME for every NAME.in or NAME.in.gz), sorted. */
export function vectorNames(dir: string): string[] {
  const names = new Set<string>();
  for (const f of readdirSync(dir)) {
    if (f.endsWith('.in')) names.add(f.slice(0, -3));
    else if (f.endsWith('.in.gz')) names.add(f.slice(0, -6));
  }
  return [...names].sort();
}

/** True when `dir` holds the expected output of vector `name`. */
export function hasOutput(dir: string, name: string): boolean {
  return existsSync(join(dir, `${name}.out`)) || existsSync(join(dir, `${name}.out.gz`));
}

/** Run one vector; `detail` names the first differing output line. */
export function runVector(dir: string, name: string): VectorResult {
  const t0 = performance.now();
  const input = readVectorFile(dir, `${name}.in`);
  const expected = readVectorFile(dir, `${name}.out`);
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

/**
 * The vectors of `dir` matching `filter`, checked before any runs: a folder that cannot be
 * read, one with no vector, a filter that matches none or a NAME.in without NAME.out is a
 * CliFailure.
 */
export function listVectors(dir: string, filter = ''): string[] {
  let all: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new CliFailure(`'${dir}' is not a folder of vectors`);
    all = vectorNames(dir);
  } catch (e) {
    if (e instanceof CliFailure) throw e;
    throw new CliFailure(`cannot read the vectors: ${ioMessage(e, dir)}`);
  }
  if (all.length === 0) throw new CliFailure(`no vectors (NAME.in files) found in '${dir}'`);
  const names = all.filter((n) => n.includes(filter));
  if (names.length === 0) throw new CliFailure(`--filter '${filter}' matches none of the ${all.length} vectors`);
  const lone = names.filter((n) => !hasOutput(dir, n));
  if (lone.length > 0)
    throw new CliFailure(
      `${lone[0]}.in has no ${lone[0]}.out beside it in '${dir}'${lone.length > 1 ? ` (and ${lone.length - 1} more)` : ''}`,
    );
  return names;
}

export function conformanceMain(args: string[]): number {
  const a = parseArgs(args, { values: ['filter'], flags: [], maxPositional: 1 });
  if (a.flags.has('help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const dir = a.positional[0] ?? dataPath('golden');
  const names = listVectors(dir, a.values.get('filter') ?? '');
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
  if (failed > 0) throw new CliFailure(`${failed} of ${names.length} vectors failed`);
  return 0;
}

/** Entry point used by the dispatcher. */
export function main(args: string[]): number {
  return conformanceMain(args);
}
