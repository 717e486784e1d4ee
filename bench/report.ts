/**
 * `npm run bench:report` = `node dist/bench/report.js`: every verdict and every table of the
 * benchmarks, computed from the result files alone (bench/results/<suite>.json and
 * bench/results/mutation.json). Owned by the benchmark work. It writes the charts and
 * BENCHMARKS.md, and the README's results table between `<!-- results:begin -->` and
 * `<!-- results:end -->`. `npm run bench` calls it at the end; run it alone to regenerate the
 * documents without measuring again.
 *
 * A goal is the Result's `goal` text; its first `≥ N`, `≤ N` or bare `N` (with k/M/G or
 * KiB/MiB/GiB) is compared with the median `value`, so "met" / "not met" and the ratio to the goal
 * are never written by hand. Results named `model: …` are predictions of a model, labelled so.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { barChart } from '../src/cli/svg.js';
import { type MachineInfo, type Result, repoRoot, si } from './util.js';

/** The content of bench/results/<suite>.json. */
export interface ResultFile {
  suite: string;
  machine: MachineInfo;
  quick: boolean;
  /** Wall-clock seconds the suite took. */
  seconds: number;
  results: Result[];
}

/** Suites whose workloads each run in a fresh `node --expose-gc` child (bench/util.ts runChild). */
const CHILD_SUITES = new Set(['alloc', 'drain', 'peers', 'replay', 'startup']);

// ---------------------------------------------------------------------------------------------
// Goals and verdicts

/** A goal parsed from its text: value `op` target. */
export interface Goal {
  op: '≥' | '≤' | '=';
  target: number;
}

const SCALE: Record<string, number> = { k: 1e3, M: 1e6, G: 1e9, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30 };

/** The first comparison in a goal text ('≥ 20 M events/s (FreeBSD: 46 M)' → ≥ 2e7), or null. */
export function parseGoal(text: string | undefined): Goal | null {
  if (!text) return null;
  const m = /([≥≤])\s*([\d.]+)\s*(KiB|MiB|GiB|k|M|G)?(?![A-Za-z])/.exec(text);
  if (m) return { op: m[1] as '≥' | '≤', target: Number(m[2]) * (m[3] ? SCALE[m[3]] : 1) };
  const bare = /^\s*([\d.]+)\s*$/.exec(text);
  if (bare) return { op: '=', target: Number(bare[1]) };
  return null;
}

/** A verdict computed from a result: met or not, and value ÷ target. */
export interface Verdict {
  met: boolean;
  ratio: number;
  model: boolean;
  text: string;
}

/** Is this result the output of a model rather than a measurement? */
export function isModel(r: Result): boolean {
  return /^model:/i.test(r.name);
}

export function verdict(r: Result): Verdict | null {
  const g = parseGoal(r.goal);
  if (!g || !Number.isFinite(r.value)) return null;
  const met = g.op === '≥' ? r.value >= g.target : g.op === '≤' ? r.value <= g.target : r.value === g.target;
  const ratio = g.target === 0 ? Number.NaN : r.value / g.target;
  const model = isModel(r);
  const base = met ? 'met' : '**not met**';
  const ratioText = !Number.isFinite(ratio)
    ? ''
    : ratio < 0.01
      ? ' (< 0.01× the goal)'
      : ` (${ratio.toPrecision(3)}× the goal)`;
  const text = model
    ? `${met ? 'met' : 'not met'} by the model's prediction (model output, not measured)`
    : `${base}${ratioText}`;
  return { met, ratio, model, text };
}

// ---------------------------------------------------------------------------------------------
// BENCHMARKS.md and charts

function slug(s: string): string {
  const map: Record<string, string> = { '×': 'ratio', µs: 'us', '/': '-per-' };
  return s
    .replace(/×|µs|\//g, (m) => map[m])
    .replace(/[^A-Za-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase();
}
/** Bar charts of one result file, one per unit: [file name, svg text]. */
export function suiteCharts(f: ResultFile): Array<[string, string]> {
  const byUnit = new Map<string, Result[]>();
  for (const r of f.results) {
    const list = byUnit.get(r.unit) ?? [];
    list.push(r);
    byUnit.set(r.unit, list);
  }
  const out: Array<[string, string]> = [];
  for (const [unit, rs] of byUnit) {
    const values = rs.map((r) => r.value);
    const spread = rs.map((r) => r.spread);
    const wide = rs.length > 6;
    out.push([
      `${f.suite}-${slug(unit)}.svg`,
      barChart({
        title: `${f.suite}: ${unit}`,
        subtitle: `${f.machine.cpu}, ${f.machine.cores} cores, Node ${f.machine.node}, ${f.machine.date.slice(0, 10)}; median, whiskers min–max`,
        categories: rs.map((r) => r.name),
        series: [
          {
            name: unit,
            values,
            low: spread.map((s, i) => s?.min ?? values[i]),
            high: spread.map((s, i) => s?.max ?? values[i]),
          },
        ],
        yAxis: {
          label: unit,
          log: Math.max(...values) / Math.max(1e-12, Math.min(...values.filter((v) => v > 0))) > 200,
        },
        width: wide ? 1100 : 800,
        height: wide ? 640 : 460,
        legend: false,
      }),
    ]);
  }
  return out;
}

export function fmtValue(v: number, unit: string): string {
  if (!Number.isFinite(v)) return String(v);
  if (unit === '×') return `${v.toFixed(2)}×`;
  if (Math.abs(v) >= 1e4) return si(v, 3);
  return Number(v.toPrecision(4)).toLocaleString('en-US');
}

/** Result files written before verdicts were computed here carry one in their notes: drop it. */
function stripVerdict(notes: string): string {
  return notes.replace(/^(meets|below|above) the goal; /, '').replace(/; (meets|below|above) the goal$/, '');
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** BENCHMARKS.md from result files (sorted by suite name). */
export function renderMarkdown(files: ResultFile[], charts: Map<string, string[]>): string {
  const lines = [
    '# Benchmarks',
    '',
    '<!-- Generated by `npm run bench:report` (bench/report.ts) from bench/results/*.json. Do not edit by hand. -->',
    '',
    'Run `npm run bench` for every suite, `node dist/bench/run.js alloc peers` for some, `--quick` for a smoke run',
    '(results of a quick run go to bench/results/quick/ and are not shown here). Values are medians over repeated',
    'runs after a warm-up; spread is min–max (p25–p75). The suites alloc, drain, peers, replay and startup run each',
    'workload in a fresh `node --expose-gc` child process, with a GC between repetitions; the workers suite runs in',
    'the `npm run bench` process itself, its workers as worker threads. The load average is that of the machine when',
    'the suite started: other work on the machine lowers the figures. The verdict column is computed from the value',
    'and the goal by bench/report.ts; rows named `model: …` are predictions of a model, not measurements.',
    '',
  ];
  for (const f of files) {
    const m = f.machine;
    lines.push(`## ${f.suite}`, '');
    lines.push(
      `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.platform}; Node ${m.node} (V8 ${m.v8}); ` +
        `${m.date}; load average ${m.loadavg}; suite took ${f.seconds.toFixed(0)} s${f.quick ? '; QUICK RUN' : ''}.`,
      '',
    );
    lines.push(
      `Process: ${CHILD_SUITES.has(f.suite) ? 'each workload in a fresh `node --expose-gc` child' : 'the bench process (worker threads)'}.`,
      '',
    );
    lines.push(
      '| benchmark | value | unit | spread min–max (p25–p75) | goal | verdict | notes |',
      '|---|---:|---|---|---|---|---|',
    );
    for (const r of f.results) {
      const sp = r.spread;
      const spread = sp
        ? `${fmtValue(sp.min, r.unit)}–${fmtValue(sp.max, r.unit)}${sp.p25 !== undefined && sp.p75 !== undefined ? ` (${fmtValue(sp.p25, r.unit)}–${fmtValue(sp.p75, r.unit)})` : ''}`
        : '';
      lines.push(
        `| ${cell(r.name)} | ${fmtValue(r.value, r.unit)} | ${cell(r.unit)} | ${spread} | ${cell(r.goal ?? '')} | ${verdict(r)?.text ?? ''} | ${cell(stripVerdict(r.notes ?? ''))} |`,
      );
    }
    lines.push('');
    for (const c of charts.get(f.suite) ?? []) lines.push(`![${c}](bench/results/${c})`, '');
  }
  return `${lines.join('\n')}\n`;
}

/** Read every bench/results/*.json, write the charts and BENCHMARKS.md. */
export function regenerate(root = repoRoot()): void {
  const dir = join(root, 'bench', 'results');
  const files = [...loadResults(root).values()];
  files.sort((a, b) => a.suite.localeCompare(b.suite));
  const charts = new Map<string, string[]>();
  for (const f of files) {
    const names: string[] = [];
    for (const [name, svg] of suiteCharts(f)) {
      writeFileSync(join(dir, name), svg);
      names.push(name);
    }
    // Extra charts a suite wrote itself (e.g. replay-histogram-lazy.svg).
    for (const x of readdirSync(dir).sort())
      if (
        x.endsWith('.svg') &&
        x.startsWith(`${f.suite}-`) &&
        !names.includes(x) &&
        !/-(ratio|us|ns-per-pair|ops-per-s|events-per-s)\.svg$/.test(x)
      )
        names.push(x);
    charts.set(f.suite, names);
  }
  writeFileSync(join(root, 'BENCHMARKS.md'), renderMarkdown(files, charts));
}

// ---------------------------------------------------------------------------------------------
// The README results table

/** Every suite result file in bench/results, by suite name. */
export function loadResults(root = repoRoot()): Map<string, ResultFile> {
  const dir = join(root, 'bench', 'results');
  const out = new Map<string, ResultFile>();
  if (!existsSync(dir)) return out;
  for (const f of readdirSync(dir).sort()) {
    if (!f.endsWith('.json')) continue;
    const j = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Partial<ResultFile>;
    if (typeof j.suite === 'string' && Array.isArray(j.results)) out.set(j.suite, j as ResultFile);
  }
  return out;
}

/** The summary of bench/results/mutation.json (written by `npm run mutation`). */
interface MutationFile {
  date: string;
  complete: boolean;
  planned: number;
  found: number;
  files: string[];
  summary: { tested: number; killed: number; timeout: number; survived: number; killRate: number | null };
}

/** A README row: what, the measured figures (with the files they come from), the verdict. */
interface Row {
  what: string;
  measured: string;
  goal: string;
}

const MUTATION_GOAL = 0.9;

/** The rows of the README table; a row whose results are missing says so instead of a figure. */
export function readmeRows(results: Map<string, ResultFile>, mutation: MutationFile | null): Row[] {
  const get = (suite: string, name: string): Result | null =>
    results.get(suite)?.results.find((r) => r.name === name) ?? null;
  const v = (suite: string, name: string): string => {
    const r = get(suite, name);
    return r
      ? `${fmtValue(r.value, r.unit)}${r.unit === '×' ? '' : ` ${r.unit}`}`
      : `(no \`${name}\` in ${suite}.json)`;
  };
  const goalOf = (suite: string, ...names: string[]): string => {
    const rs = names.map((n) => get(suite, n)).filter((r): r is Result => r !== null);
    if (rs.length === 0) return '(no result)';
    const g = rs[0].goal ?? '';
    const vs = rs.map((r) => verdict(r));
    if (vs.some((x) => x === null)) return g;
    const all = vs.every((x) => x?.met);
    const none = vs.every((x) => !x?.met);
    if (rs.length === 1) return `${g} — ${vs[0]?.text}`;
    const each = rs.map((r, i) => `${vs[i]?.met ? 'met' : 'not met'}: ${fmtValue(r.value, r.unit)}`).join('; ');
    return `${g} — ${all ? 'met by all' : none ? '**not met** by any' : `**partly met** (${each})`}`;
  };
  const rows: Row[] = [];
  const S = 'startup';
  rows.push({
    what: 'lazy ready, sparse 1 TiB (warm code)',
    measured: `${v(S, 'lazy ready, sparse 1 TiB (warm code)')}; RSS growth ${v(S, 'lazy RSS growth at ready, sparse 1 TiB')}; ${v(S, 'lazy pages initialised at ready, sparse 1 TiB')} initialised`,
    goal: [goalOf(S, 'lazy ready, sparse 1 TiB (warm code)'), goalOf(S, 'lazy RSS growth at ready, sparse 1 TiB')].join(
      '<br>',
    ),
  });
  rows.push({
    what: 'eager ÷ lazy ready: 64 GiB / sparse 1 TiB',
    measured: `${v(S, 'eager ready, 64 GiB (warm code)')} ÷ ${v(S, 'lazy ready, 64 GiB (warm code)')} = ${v(S, 'eager ÷ lazy ready time, 64 GiB')} / ${v(S, 'eager ÷ lazy ready time, sparse 1 TiB')}`,
    goal: goalOf(S, 'eager ÷ lazy ready time, 64 GiB'),
  });
  const pauses = ['128 MiB', '1 GiB', '16 GiB', '64 GiB', 'sparse 1 TiB'].map(
    (l) => `lazy first-allocation pause (steal + init of one lazy block), ${l}`,
  );
  rows.push({
    what: 'first allocation after a lazy boot (steal + init of a lazy block), 128 MiB / 1 GiB / 16 GiB / 64 GiB / sparse 1 TiB',
    measured: pauses.map((n) => v(S, n)).join(' / '),
    goal: goalOf(S, ...pauses),
  });
  rows.push({
    what: 'drain ÷ first-touch floor of the same bytes, 1 GiB / 16 GiB',
    measured: `${v('drain', 'drain ÷ floor (bytes), 1 GiB')} / ${v('drain', 'drain ÷ floor (bytes), 16 GiB')}`,
    goal: goalOf('drain', 'drain ÷ floor (bytes), 1 GiB', 'drain ÷ floor (bytes), 16 GiB'),
  });
  const lifo = ['order-0 alloc+free, hot LIFO, index API', 'order-0 alloc+free, hot LIFO, public API'];
  rows.push({
    what: 'order-0 hot LIFO (index API / public API)',
    measured: lifo.map((n) => v('alloc', n)).join(' / '),
    goal: goalOf('alloc', ...lifo),
  });
  const R = 'replay';
  const rp = ['TraceReplayer.replay (allocator work), lazy', 'TraceReplayer.replay (allocator work), eager'];
  rows.push({
    what: 'trace replay: allocator work (resolved trace), lazy / eager, 128 GiB map',
    measured: `${rp.map((n) => v(R, n)).join(' / ')}; end to end with the free matching ${v(R, 'TraceReplayer.run (resolve + replay), lazy')} / ${v(R, 'TraceReplayer.run (resolve + replay), eager')}`,
    goal: goalOf(R, ...rp),
  });
  rows.push({
    what: 'the same resolved trace through a 40-line FIFO buddy (the queue discipline alone): JavaScript lazy / eager run; C -O2',
    measured: `${v(R, 'reference: minimal FIFO buddy, same resolved trace (lazy run)')} / ${v(R, 'reference: minimal FIFO buddy, same resolved trace (eager run)')}; ${v(R, 'reference: the same minimal FIFO buddy in C (-O2), same resolved trace')}`,
    goal: 'reference (no goal)',
  });
  rows.push({
    what: 'trace replay vs `@thi.ng/malloc` (first 100k events): vmphys ÷ thi.ng',
    measured: v(R, 'trace first 100k: vmphys (index API) ÷ @thi.ng/malloc'),
    goal: goalOf(R, 'trace first 100k: vmphys (index API) ÷ @thi.ng/malloc'),
  });
  const P = 'peers';
  const pp = [
    'hot LIFO: @thi.ng/malloc ns ÷ vmphys + per-CPU page cache ns',
    'hot LIFO: @thi.ng/malloc ns ÷ vmphys (index API) ns',
  ];
  rows.push({
    what: 'hot LIFO pair, thi.ng ns ÷ vmphys ns: through the per-CPU page cache / vm_phys directly (index API)',
    measured: `${pp.map((n) => v(P, n)).join(' / ')} (${v(P, 'hot LIFO: vmphys + per-CPU page cache (pgcache path)')}, ${v(P, 'hot LIFO: vmphys (index API)')}, thi.ng ${v(P, 'hot LIFO: @thi.ng/malloc MemPool')})`,
    goal: goalOf(P, ...pp),
  });
  const W = 'workers';
  rows.push({
    what: '2 workers ÷ 1 (order-0 through per-CPU caches), measured',
    measured: `${v(W, 'speedup, 2 vs 1 worker (order-0, pcpu)')} (2-thread CPU ceiling of the same run: ${v(W, 'CPU ceiling: 2 threads of independent arithmetic vs 1')})`,
    goal: goalOf(W, 'speedup, 2 vs 1 worker (order-0, pcpu)'),
  });
  rows.push({
    what: '16 workers (order-0, per-CPU caches): **model output** (Amdahl + lock queueing from the holds measured at 2 workers), not a measurement',
    measured: `model: ${v(W, 'model: speedup at 16 workers (order-0, pcpu)')}; measured at the sizes this machine runs: 2 workers ${v(W, 'speedup, 2 vs 1 worker (order-0, pcpu)')}`,
    goal: goalOf(W, 'model: speedup at 16 workers (order-0, pcpu)'),
  });
  const lat = [
    'alloc latency p99 while draining / idle p99',
    'alloc latency p99 while draining / idle p99, page buffers pre-faulted',
  ];
  rows.push({
    what: 'p99 alloc latency while draining ÷ idle (as is / page buffers pre-faulted)',
    measured: lat.map((n) => v(W, n)).join(' / '),
    goal: goalOf(W, ...lat),
  });
  rows.push({
    what: "drainer's longest lock hold",
    measured: `${v(W, 'drainer longest lock hold')}; not descheduled: ${v(W, 'drainer longest lock hold, holds not descheduled')}; VM stalls > 50 µs seen by a busy thread: ${v(W, 'VM stalls longer than 50 µs seen by a busy thread')}`,
    goal: goalOf(W, 'drainer longest lock hold'),
  });
  if (mutation) {
    const s = mutation.summary;
    const rate = s.killRate;
    const met = rate !== null && rate >= MUTATION_GOAL;
    rows.push({
      what: `mutation testing of src/core (\`npm run mutation\`, ${mutation.date.slice(0, 10)}; [bench/results/mutation.md](bench/results/mutation.md))`,
      measured:
        `kill rate ${rate === null ? 'n/a' : `${(100 * rate).toFixed(1)} %`}: ${s.killed + s.timeout} of ${s.tested} mutants killed, ${s.survived} survived ` +
        `(a sample of ${mutation.planned} of ${mutation.found}${mutation.complete ? '' : `, run stopped after ${s.tested}`}; survivors not yet sorted into equivalent and missing tests)`,
      goal: `≥ 90 % of non-equivalent mutants — ${met ? 'met' : '**not met**'} on all tested mutants (equivalent ones included)`,
    });
  }
  return rows;
}

const BEGIN = '<!-- results:begin -->';
const END = '<!-- results:end -->';

/** The README's results table text (between the markers). */
export function renderReadmeTable(results: Map<string, ResultFile>, mutation: MutationFile | null): string {
  const dates = [...results.values()].map((f) => f.machine.date).sort();
  const m = [...results.values()][0]?.machine;
  const lines = [
    '<!-- Generated by `npm run bench:report` (bench/report.ts) from bench/results/*.json. Do not edit by hand. -->',
    '',
    m
      ? `Result files of ${dates[0]?.slice(0, 16).replace('T', ' ')} – ${dates[dates.length - 1]?.slice(0, 16).replace('T', ' ')} UTC (${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}); medians, spreads and notes in [BENCHMARKS.md](BENCHMARKS.md). Verdicts are computed from the files by bench/report.ts.`
      : 'No result files in bench/results: run `npm run bench`.',
    '',
    '| what | measured | goal — verdict |',
    '| --- | --- | --- |',
  ];
  for (const r of readmeRows(results, mutation)) lines.push(`| ${r.what} | ${r.measured} | ${r.goal} |`);
  return lines.join('\n');
}

/** Replace the README section between the markers; throws if they are missing. */
export function writeReadmeResults(root = repoRoot()): void {
  const readme = join(root, 'README.md');
  const text = readFileSync(readme, 'utf8');
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md has no ${BEGIN} … ${END} section`);
  const mpath = join(root, 'bench', 'results', 'mutation.json');
  const mutation = existsSync(mpath) ? (JSON.parse(readFileSync(mpath, 'utf8')) as MutationFile) : null;
  const table = renderReadmeTable(loadResults(root), mutation);
  writeFileSync(readme, `${text.slice(0, a + BEGIN.length)}\n${table}\n${text.slice(b)}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = repoRoot();
  regenerate(root);
  writeReadmeResults(root);
  process.stdout.write('bench:report: wrote bench/results/*.svg, BENCHMARKS.md and the README results table\n');
}
