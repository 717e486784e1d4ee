/**
 * `vmphys replay FILE [--map FILE] [--mode lazy|eager] [--json] [--svg FILE] [--limit N]
 *  [--sample N]`: stream a Linux page-allocator trace (plain, .gz or .xz) through a fresh
 * machine and report counts, speed, page conservation, verify() and the free-block histogram
 * per order over time. Owned by the CLI; the dispatcher (main.ts) loads it.
 *
 * Exit status: 0 when the replay ran and the allocator stayed consistent (failed allocations
 * are reported, not errors: a small --map may legitimately run out); 1 when the trace or map
 * cannot be read, verify() fails or pages are not conserved; 2 on a usage error.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { firecrackerMap } from '../boot/ramspec.js';
import { buildMachine, FIRECRACKER_128G, type MachineMapLike } from '../boot/startup.js';
import { VmPhysError } from '../core/errors.js';
import { makePolicy, POLICIES, type Policy, policyByName } from '../core/policy.js';
import { restore } from '../core/snapshot.js';
import type { VmPhys } from '../core/vmphys.js';
import { type PolicyResult, runPolicies } from '../lab/experiment.js';
import { DEFAULT_SERIES_EVERY } from '../lab/series.js';
import { readTraceEvents } from '../trace/parse.js';
import { type ReplayReport, replayTrace } from '../trace/replay.js';
import { parseArgs, UsageError } from './args.js';
import { CliFailure, checkWritable, intOption, ioMessage, ramOption, readMapFile } from './common.js';
import { lineChart } from './svg.js';

const USAGE = `usage: vmphys replay FILE [--map FILE] [--mode lazy|eager] [--json] [--svg FILE] [--limit N] [--sample N]
       vmphys replay FILE --policy P [--policy P ...] [--map FILE | --ram SIZE | --from SNAPSHOT]
                     [--every N] [--svg PREFIX] [--json] [--limit N]
  FILE          trace CSV (ts,cpu,op,pfn,order,migratetype,gfp_flags), optionally .gz or .xz
  --map FILE    memory map (iomem, e820, FreeBSD boot output or JSON; see vmphys boot);
                default: the 128 GiB Firecracker VM the traces in data/traces were recorded on
  --mode M      lazy (default) or eager start-up
  --json        print one JSON object instead of text
  --svg FILE    draw the free-block histogram per order over time
  --limit N     replay only the first N events
  --sample N    events between histogram samples (default 16384)
  --policy P    replay under policy P (a name, or a JSON file holding a policy object); repeat
                or separate with commas to compare: the same trace from the same machine per
                policy, a table of peak/mean U_9, minimum S_9, failed allocations and probe
                success, and with --svg PREFIX the charts PREFIX-u9.svg and PREFIX-s9.svg.
                Names: ${Object.keys(POLICIES).join(', ')}
  --ram SIZE    a Firecracker guest of SIZE RAM (e.g. 1664M) instead of --map
  --from FILE   start every policy from a snapshot (vmphys fragment --out FILE)
  --every N     events between fragmentation samples (default ${DEFAULT_SERIES_EVERY})
`;

/** `--policy` values (repeatable, comma-separated) taken out of args; the rest is returned. */
function takePolicies(args: string[]): { rest: string[]; specs: string[] } {
  const rest: string[] = [];
  const specs: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') {
      rest.push(...args.slice(i));
      break;
    }
    if (a === '--policy' || a.startsWith('--policy=')) {
      const v = a === '--policy' ? args[++i] : a.slice('--policy='.length);
      if (v === undefined || v === '' || v.startsWith('--')) throw new UsageError('--policy needs a value');
      specs.push(...v.split(',').filter((x) => x !== ''));
    } else rest.push(a);
  }
  return { rest, specs };
}

/** A policy by name, or from a JSON file (a policy object); typed errors become usage errors. */
export function loadPolicy(spec: string): Policy {
  try {
    if (spec in POLICIES) return policyByName(spec);
    if (existsSync(spec) && statSync(spec).isFile()) {
      let obj: unknown;
      try {
        obj = JSON.parse(readFileSync(spec, 'utf8'));
      } catch (e) {
        throw new UsageError(`--policy ${spec}: not JSON (${(e as Error).message})`);
      }
      return makePolicy(obj as Partial<Policy> & Record<string, unknown>);
    }
    return policyByName(spec);
  } catch (e) {
    if (e instanceof VmPhysError && !(e instanceof UsageError)) throw new UsageError(`--policy: ${e.message}`);
    throw e;
  }
}

/** Entry point of `vmphys replay`. */
export async function main(argv: string[]): Promise<number> {
  const { rest: args, specs } = takePolicies(argv);
  const opts = parseArgs(args, {
    values: ['map', 'mode', 'svg', 'limit', 'sample', 'ram', 'from', 'every'],
    flags: ['json'],
    maxPositional: 1,
  });
  if (opts.flags.has('help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (specs.length > 0) return policyMain(opts.positional[0], specs, opts.values, opts.flags.has('json'));
  for (const k of ['ram', 'from', 'every'])
    if (opts.values.has(k)) throw new UsageError(`--${k} is only for policy comparisons (--policy)`);
  const file = opts.positional[0];
  if (file === undefined) throw new UsageError('needs a trace FILE');
  const mode = opts.values.get('mode') ?? 'lazy';
  if (mode !== 'lazy' && mode !== 'eager') throw new UsageError(`--mode must be lazy or eager, not '${mode}'`);
  const limit = opts.values.has('limit') ? intOption(opts.values.get('limit'), 'limit', 0, 0) : undefined;
  const sample = intOption(opts.values.get('sample'), 'sample', 16384, 1);
  if (!existsSync(file)) throw new CliFailure(`cannot read the trace: '${file}': no such file or directory`);
  if (statSync(file).isDirectory())
    throw new CliFailure(`cannot read the trace: '${file}': is a directory, not a file`);
  const svg = opts.values.get('svg');
  if (svg !== undefined) checkWritable(svg, 'svg');

  let map: MachineMapLike = FIRECRACKER_128G;
  let mapName = 'firecracker-128g (default)';
  const mapFile = opts.values.get('map');
  if (mapFile !== undefined) {
    const m = readMapFile(mapFile).map;
    map = { ram: m.ram, reserved: m.reserved, affinity: m.affinity };
    mapName = basename(mapFile);
  }
  const report = await replayTrace(file, {
    build: () => buildMachine(map, mode),
    mapName,
    mode,
    limit,
    sampleEvery: sample,
  });
  if (opts.flags.has('json')) process.stdout.write(`${JSON.stringify(report)}\n`);
  else process.stdout.write(formatReport(report));
  if (svg !== undefined) {
    try {
      writeFileSync(svg, histogramSvg(report));
    } catch (e) {
      throw new CliFailure(`--svg: cannot write ${ioMessage(e, svg)}`);
    }
  }
  if (report.verify.startsWith('FAILED')) throw new CliFailure(`verify() failed after the replay: ${report.verify}`);
  if (!report.conserved) throw new CliFailure('pages were not conserved by the replay (see the report)');
  return 0;
}

const num = (n: number) => n.toLocaleString('en-US');

/** The human-readable report. */
export function formatReport(r: ReplayReport): string {
  const lines = [
    `replay ${basename(r.file)} on ${r.map} (${r.mode})`,
    `  events         ${num(r.events)} (${num(r.allocs)} allocations, ${num(r.frees)} frees)`,
    `  frees matched  ${num(r.matchedFrees)} (${num(r.splitFrees)} of them parts of a larger allocation)`,
    `  frees skipped  ${num(r.skippedFrees)} (no live traced allocation covers them)`,
    `  lost frees     ${num(r.lostFrees)} (live head allocated again: old block freed first)`,
    `  failed allocs  ${num(r.failedAllocs)}`,
    `  held at end    ${num(r.heldPages)} pages in ${num(r.heldBlocks)} blocks`,
    `  free pages     ${num(r.freePagesBefore)} before, ${num(r.freePagesAfter)} after (conserved: ${r.conserved ? 'yes' : 'NO'})`,
    `  speed          ${(r.eventsPerSec / 1e6).toFixed(2)} M events/s replaying (${r.replaySeconds.toFixed(3)} s); ` +
      `parsing ${r.parseSeconds.toFixed(3)} s (of which resolving frees to allocations ${r.resolveSeconds.toFixed(3)} s); ` +
      `machine set-up ${r.setupSeconds.toFixed(3)} s`,
    `  verify         ${r.verify}`,
    `  mapping        ${r.mapping}`,
    '',
    `  free blocks per order (all pools), sampled every ${num(r.histogram.every)} events:`,
  ];
  const h = r.histogram;
  const orders = [...Array(h.orders).keys()];
  lines.push(`  ${'event'.padStart(11)} ${orders.map((o) => `o${o}`.padStart(8)).join('')}`);
  const picks = new Set<number>();
  const n = h.events.length;
  for (let k = 0; k < 6 && n > 0; k++) picks.add(Math.round((k * (n - 1)) / 5));
  for (const s of [...picks].sort((a, b) => a - b))
    lines.push(`  ${num(h.events[s]).padStart(11)} ${h.counts[s].map((c) => num(c).padStart(8)).join('')}`);
  return `${lines.join('\n')}\n`;
}

/** The free-block histogram over time as an SVG line chart (log y; all-zero orders left out). */
export function histogramSvg(
  r: Pick<ReplayReport, 'file' | 'map' | 'mode' | 'events' | 'failedAllocs' | 'histogram'>,
): string {
  const h = r.histogram;
  const series = [];
  for (let o = 0; o < h.orders; o++) {
    const values = h.counts.map((row) => row[o]);
    if (values.some((v) => v > 0)) series.push({ name: `order ${o}`, values });
  }
  return lineChart({
    title: `Free blocks per order — ${basename(r.file)} (${r.mode})`,
    subtitle: `${r.map}; ${num(r.events)} events, ${num(r.failedAllocs)} failed allocations; sampled every ${num(h.every)} events`,
    xs: h.events,
    series,
    xAxis: { label: 'events replayed' },
    yAxis: { label: 'free blocks (all pools)', log: true },
    width: 900,
    height: 480,
    dots: false,
  });
}

/** `vmphys replay FILE --policy …`: run every policy and print the table (and charts). */
async function policyMain(
  file: string | undefined,
  specs: string[],
  v: Map<string, string>,
  json: boolean,
): Promise<number> {
  if (file === undefined) throw new UsageError('needs a trace FILE');
  const policies = specs.map(loadPolicy);
  const given = ['map', 'ram', 'from'].filter((k) => v.has(k));
  if (given.length > 1) throw new UsageError(`--${given[0]} and --${given[1]} cannot be combined`);
  if (v.has('sample')) throw new UsageError('--sample is for the histogram replay; use --every with --policy');
  const mode = v.get('mode') ?? 'lazy';
  if (mode !== 'lazy' && mode !== 'eager') throw new UsageError(`--mode must be lazy or eager, not '${mode}'`);
  const limit = v.has('limit') ? intOption(v.get('limit'), 'limit', 0, 1) : undefined;
  const every = intOption(v.get('every'), 'every', DEFAULT_SERIES_EVERY, 1);
  if (!existsSync(file) || statSync(file).isDirectory()) throw new CliFailure(`cannot read the trace: '${file}'`);
  const svg = v.get('svg');
  if (svg !== undefined) checkWritable(`${svg}-u9.svg`, 'svg');
  let build: () => VmPhys;
  let machine: string;
  const from = v.get('from');
  if (from !== undefined) {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(from);
    } catch (e) {
      throw new CliFailure(`--from: cannot read ${ioMessage(e, from)}`);
    }
    restore(bytes, { shared: false }); // rejects a bad snapshot before any replay
    build = () => restore(bytes, { shared: false });
    machine = `snapshot ${basename(from)}`;
  } else if (v.has('ram')) {
    const bytes = ramOption(v.get('ram') as string, 'ram');
    const m = firecrackerMap(bytes);
    build = () => buildMachine({ ram: m.ram }, mode);
    machine = `firecracker ${v.get('ram')} (${mode})`;
  } else {
    let map: MachineMapLike = FIRECRACKER_128G;
    machine = `firecracker-128g (${mode})`;
    const mapFile = v.get('map');
    if (mapFile !== undefined) {
      const m = readMapFile(mapFile).map;
      map = { ram: m.ram, reserved: m.reserved, affinity: m.affinity };
      machine = `${basename(mapFile)} (${mode})`;
    }
    build = () => buildMachine(map, mode);
  }
  const ev = await readTraceEvents(file, limit);
  const results = runPolicies(ev, policies, { build, every });
  if (json) process.stdout.write(`${JSON.stringify({ file, machine, results })}\n`);
  else process.stdout.write(`replay ${basename(file)} on ${machine}, ${num(ev.count)} events\n${policyTable(results)}`);
  if (svg !== undefined) {
    const charts = policyCharts(results, `${basename(file)} on ${machine}`);
    try {
      writeFileSync(`${svg}-u9.svg`, charts.u9);
      writeFileSync(`${svg}-s9.svg`, charts.s9);
    } catch (e) {
      throw new CliFailure(`--svg: cannot write ${ioMessage(e, svg)}`);
    }
  }
  return 0;
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

/** The side-by-side table of policy results (Markdown, readable as text). */
export function policyTable(results: PolicyResult[]): string {
  const o = results[0]?.order ?? 9;
  const head = [
    'policy',
    `peak U_${o}`,
    `mean U_${o}`,
    `min S_${o}`,
    `mean S_${o}`,
    'failed allocs',
    `order-${o} probe ok`,
    'contig probe ok',
    'blocks examined',
    'steals',
  ];
  const rows = results.map((r) => [
    r.policy.name,
    r.peakUnusable.toFixed(3),
    r.meanUnusable.toFixed(3),
    num(r.minSuitable),
    num(Math.round(r.meanSuitable)),
    num(r.counts.failedAllocs),
    pct(r.orderProbeSuccess[0] ?? Number.NaN),
    pct(r.contigSuccess[0] ?? Number.NaN),
    (r.contigExamined[0] ?? Number.NaN).toFixed(1),
    num(r.steals.reduce((a, row) => a + row.reduce((x, y) => x + y, 0), 0)),
  ]);
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const r of rows) lines.push(`| ${r.join(' | ')} |`);
  return `${lines.join('\n')}\n`;
}

/** SVG charts of U_j and S_j over events, one line per policy (samples on a common grid). */
export function policyCharts(results: PolicyResult[], where: string): { u9: string; s9: string } {
  const o = results[0]?.order ?? 9;
  const xs = results[0]?.events ?? [];
  const at = (col: number[]) => xs.map((_, i) => col[Math.min(i, col.length - 1)]);
  const dash = ['', '6 3', '2 3', '8 3 2 3', '4 4', '1 2'];
  const series = (pick: (r: PolicyResult) => number[]) =>
    results.map((r, k) => ({ name: r.policy.name, values: at(pick(r)), dash: dash[k % dash.length] || undefined }));
  const common = { xs, xAxis: { label: 'events replayed' }, width: 900, height: 440, dots: false };
  return {
    u9: lineChart({
      ...common,
      title: `Unusable free space index U_${o} over the replay`,
      subtitle: `${where}; sampled every ${num(results[0]?.every ?? 0)} events; 1 = no free 2 MiB block`,
      series: series((r) => r.unusable),
      yAxis: { label: `U_${o}`, min: 0, max: 1 },
    }),
    s9: lineChart({
      ...common,
      title: `Free superpage-sized blocks S_${o} over the replay`,
      subtitle: `${where}; sampled every ${num(results[0]?.every ?? 0)} events`,
      series: series((r) => r.suitable),
      yAxis: { label: `S_${o} (order-${o} requests the free memory could serve)`, min: 0 },
    }),
  };
}
