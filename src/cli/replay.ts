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
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { buildMachine, FIRECRACKER_128G, type MachineMapLike } from '../boot/startup.js';
import { type ReplayReport, replayTrace } from '../trace/replay.js';
import { parseArgs, UsageError } from './args.js';
import { CliFailure, checkWritable, intOption, ioMessage, readMapFile } from './common.js';
import { lineChart } from './svg.js';

const USAGE = `usage: vmphys replay FILE [--map FILE] [--mode lazy|eager] [--json] [--svg FILE] [--limit N] [--sample N]
  FILE          trace CSV (ts,cpu,op,pfn,order,migratetype,gfp_flags), optionally .gz or .xz
  --map FILE    memory map (iomem, e820, FreeBSD boot output or JSON; see vmphys boot);
                default: the 128 GiB Firecracker VM the traces in data/traces were recorded on
  --mode M      lazy (default) or eager start-up
  --json        print one JSON object instead of text
  --svg FILE    draw the free-block histogram per order over time
  --limit N     replay only the first N events
  --sample N    events between histogram samples (default 16384)
`;

/** Entry point of `vmphys replay`. */
export async function main(args: string[]): Promise<number> {
  const opts = parseArgs(args, {
    values: ['map', 'mode', 'svg', 'limit', 'sample'],
    flags: ['json'],
    maxPositional: 1,
  });
  if (opts.flags.has('help')) {
    process.stdout.write(USAGE);
    return 0;
  }
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
