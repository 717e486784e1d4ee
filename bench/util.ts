/**
 * Shared pieces of the benchmark harness: the suite contract, repetition and statistics, machine
 * description, child processes, and the pre-parsed trace. Owned by the benchmark work; suites
 * written by others (bench/suites/startup.ts, workers.ts) import from here but do not edit it.
 *
 * The contract: `bench/run.ts` imports every `dist/bench/suites/*.js`; each exports
 *   export const suite: Suite = { name: 'alloc', async run({ quick }) { return [...Result] } };
 * A Result's `value` is the median over repetitions after warm-up, `samples` the per-repetition
 * values, `spread` their min/max/quartiles, `goal` a human statement of the target (e.g.
 * '≥ 20 M ops/s'), `notes` anything a reader needs to interpret the figure. Units are free text
 * ('ops/s', 'events/s', 'ns/pair', 'ms', '×'); charts group results by unit.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTraceEvents, type TraceEvents } from '../src/trace/parse.js';

/** One measured figure. */
export interface Result {
  name: string;
  unit: string;
  value: number;
  samples?: number[];
  spread?: { min: number; max: number; p25?: number; p75?: number };
  goal?: string;
  notes?: string;
}

/** Options every suite receives. */
export interface SuiteOptions {
  /** A fast smoke run: fewer repetitions and smaller inputs; figures are not representative. */
  quick: boolean;
}

/** What a `dist/bench/suites/*.js` module exports as `suite`. */
export interface Suite {
  name: string;
  run(opts: SuiteOptions): Promise<Result[]>;
}

/** The machine a result file was measured on. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  v8: string;
  platform: string;
  date: string;
  /** 1-minute load average when the suite started (other work on the machine skews figures). */
  loadavg: number;
}

/** Describe this machine and runtime. */
export function machineInfo(): MachineInfo {
  const c = cpus();
  return {
    cpu: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform}-${process.arch}`,
    date: new Date().toISOString(),
    loadavg: Math.round(loadavg()[0] * 100) / 100,
  };
}

export { dataPath, repoRoot } from '../src/cli/paths.js';

import { dataPath } from '../src/cli/paths.js';

/** The Linux trace in data/traces that every replay benchmark uses. */
export function sharedTrace(): string {
  return dataPath('traces', 'linux-6.18-mixed-B.csv.xz');
}

/** Run a full GC when the process was started with --expose-gc (children always are). */
export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) g();
}

/** Linear-interpolated quantile of sorted values. */
function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const x = (sorted.length - 1) * q;
  const lo = Math.floor(x);
  const hi = Math.ceil(x);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (x - lo);
}

/** Median and spread of samples. */
export function summarize(samples: number[]): { value: number; spread: Required<NonNullable<Result['spread']>> } {
  const s = [...samples].sort((a, b) => a - b);
  return {
    value: quantile(s, 0.5),
    spread: { min: s[0], max: s[s.length - 1], p25: quantile(s, 0.25), p75: quantile(s, 0.75) },
  };
}

/** Options of `repeat`. */
export interface RepeatOptions {
  /** Measured repetitions (default 7). */
  reps?: number;
  /** Unmeasured repetitions first (default 1). */
  warmup?: number;
}

/**
 * Call `rep()` warmup + reps times (GC between calls when exposed) and summarise the values it
 * returns (each call measures itself and returns e.g. ops/s), warm-up excluded.
 */
export async function repeat(
  rep: () => number | Promise<number>,
  opts: RepeatOptions = {},
): Promise<{ value: number; samples: number[]; spread: Required<NonNullable<Result['spread']>> }> {
  const reps = opts.reps ?? 7;
  const warmup = opts.warmup ?? 1;
  const samples: number[] = [];
  for (let i = 0; i < warmup + reps; i++) {
    gc();
    const v = await rep();
    if (i >= warmup) samples.push(v);
  }
  return { samples, ...summarize(samples) };
}

/** A Result from samples (median, spread) plus a name, unit and optional goal/notes. */
export function result(
  name: string,
  unit: string,
  samples: number[],
  extra: { goal?: string; notes?: string } = {},
): Result {
  const s = summarize(samples);
  return { name, unit, value: s.value, samples, spread: s.spread, ...extra };
}

const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));
const RESULT_TAG = '@@VMPHYS-BENCH-RESULT ';

/**
 * Run `exportName(arg)` of a compiled module in a fresh `node --expose-gc` process and return
 * what it returns (JSON round-tripped). `module` is a file path (e.g.
 * `fileURLToPath(import.meta.url)` of the calling suite). The child's stderr is passed through;
 * a non-zero exit rejects.
 */
export function runChild<T>(
  module: string,
  exportName: string,
  arg: unknown = null,
  nodeArgs: string[] = [],
): Promise<T> {
  return runChildOutput<T>(module, exportName, arg, nodeArgs).then((r) => r.value);
}

/**
 * `runChild`, also handing back everything the child wrote to stdout (e.g. V8's `--trace-deopt`
 * output, which node writes there) for the caller to parse.
 */
export function runChildOutput<T>(
  module: string,
  exportName: string,
  arg: unknown = null,
  nodeArgs: string[] = [],
): Promise<{ value: T; stdout: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(
      process.execPath,
      ['--expose-gc', ...nodeArgs, CHILD, module, exportName, JSON.stringify(arg)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => {
      out += s;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith(RESULT_TAG));
      if (code !== 0 || line === undefined) {
        reject(new Error(`bench child ${exportName} exited with ${code}${out ? `: ${out.slice(-500)}` : ''}`));
        return;
      }
      resolvePromise({ value: JSON.parse(line.slice(RESULT_TAG.length)) as T, stdout: out });
    });
  });
}

/** Marker line a child prints before the work of its machine k (see `deoptsPerMachine`). */
export function machineMarker(k: number): string {
  return `@@VMPHYS-BENCH-MACHINE ${k}`;
}

/**
 * Count V8 deoptimisations per machine in `--trace-deopt` output: the lines after
 * `machineMarker(k)` and before the next marker belong to machine k. A deoptimisation is a
 * `[bailout` line (the function itself deoptimised) or a `marking dependent code` line (its
 * optimised code thrown away); only functions named in `hot` are counted. Returns counts per
 * machine (index = k) and the deoptimised functions, with their reasons, per machine.
 */
export function deoptsPerMachine(
  stdout: string,
  hot: ReadonlySet<string>,
  machines: number,
): { counts: number[]; what: string[][] } {
  const counts = new Array<number>(machines).fill(0);
  const what: string[][] = Array.from({ length: machines }, () => []);
  let k = -1;
  for (const line of stdout.split('\n')) {
    const m = /^@@VMPHYS-BENCH-MACHINE (\d+)/.exec(line);
    if (m) {
      k = Number(m[1]);
      continue;
    }
    if (k < 0 || k >= machines) continue;
    const bail = /^\[bailout .*reason: ([^)]*)\).*deoptimizing 0x[0-9a-f]+ <JSFunction (\S+)/.exec(line);
    const dep = /^\[marking dependent code .*<SharedFunctionInfo (\S+?)>.*reason: ([^\]]*)\]/.exec(line);
    const fn = bail ? bail[2] : dep ? dep[1] : null;
    const reason = bail ? bail[1] : dep ? dep[2] : '';
    if (fn !== null && hot.has(fn)) {
      counts[k]++;
      what[k].push(`${fn}: ${reason}`);
    }
  }
  return { counts, what };
}

/** Used by bench/child.ts to hand a value back to `runChild`. */
export function childReply(value: unknown): void {
  process.stdout.write(`${RESULT_TAG}${JSON.stringify(value)}\n`);
}

/** Run `runChild` n times in sequence (fresh process each) and collect the numbers returned. */
export async function childSamples(module: string, exportName: string, arg: unknown, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await runChild<number>(module, exportName, arg));
  return out;
}

/** A pre-parsed trace: parallel arrays of all events. */
export type { TraceEvents };

/**
 * Parse a trace completely into memory (the replay benchmarks time the allocator, not the
 * parser). The arrays are cached as one binary file in the OS temp directory, keyed by the
 * trace's path, size, mtime and `limit`, so child processes load them in milliseconds.
 */
export async function loadTrace(file: string, limit?: number): Promise<TraceEvents> {
  const st = statSync(file);
  const key = `${file}|${st.size}|${st.mtimeMs}|${limit ?? 'all'}`;
  let h = 2166136261;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
  const cache = join(tmpdir(), `vmphys-bench-trace-${(h >>> 0).toString(16)}.bin`);
  if (existsSync(cache)) {
    const buf = readFileSync(cache);
    const n = buf.readUInt32LE(0);
    if (buf.length === 8 + n * 11) {
      const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
      return {
        count: n,
        pfn: new Float64Array(ab.slice(8, 8 + n * 8)),
        op: new Uint8Array(ab, 8 + n * 8, n),
        order: new Uint8Array(ab, 8 + n * 9, n),
        flags: new Uint8Array(ab, 8 + n * 10, n),
      };
    }
  }
  const ev = await readTraceEvents(file, limit);
  const n = ev.count;
  const out = Buffer.alloc(8 + n * 11);
  out.writeUInt32LE(n, 0);
  Buffer.from(ev.pfn.buffer).copy(out, 8);
  Buffer.from(ev.op.buffer).copy(out, 8 + n * 8);
  Buffer.from(ev.order.buffer).copy(out, 8 + n * 9);
  Buffer.from(ev.flags.buffer).copy(out, 8 + n * 10);
  writeFileSync(`${cache}.${process.pid}`, out);
  renameSync(`${cache}.${process.pid}`, cache);
  return ev;
}

/** Format a number with SI suffix (1.23 M). */
export function si(v: number, digits = 3): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${(v / 1e9).toPrecision(digits)} G`;
  if (a >= 1e6) return `${(v / 1e6).toPrecision(digits)} M`;
  if (a >= 1e3) return `${(v / 1e3).toPrecision(digits)} k`;
  if (a === 0) return '0';
  return v.toPrecision(digits);
}
