/**
 * `npm run lab`: the policy lab's figures. Replays the repository's Linux trace under FreeBSD's
 * policy and its alternatives in two scenarios (a fresh lazy machine just larger than the trace's
 * peak footprint, and a seeded fragmented snapshot), measures the cost of the fragmentation series
 * (paired, alternating runs), and writes bench/results/policy.json, docs/img/policy-*.svg and the
 * tables of docs/policy-lab.md (between its markers) from that result file.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { firecrackerMap } from '../src/boot/ramspec.js';
import { buildMachine } from '../src/boot/startup.js';
import { policyCharts, policyTable } from '../src/cli/replay.js';
import { policyByName } from '../src/core/policy.js';
import { restore, snapshot } from '../src/core/snapshot.js';
import { type PolicyResult, runPolicies } from '../src/lab/experiment.js';
import { fragment } from '../src/lab/fragment.js';
import { DEFAULT_SERIES_EVERY, FragSeries } from '../src/lab/series.js';
import { readTraceEvents, type TraceEvents } from '../src/trace/parse.js';
import { TraceReplayer } from '../src/trace/replay.js';
import { machineInfo, repoRoot } from './util.js';

const TRACE = 'data/traces/linux-6.18-mixed-B.csv.xz';
const POLICY_NAMES = [
  'freebsd',
  'split-head',
  'lowest',
  'lifo',
  'smallest-fit',
  'max-order-10',
  'lazy-chunk-9',
  'drain-never',
  'pcpu',
];
const FRESH_MIB = 1664;
const FRAG = { ramMiB: 3072, target: 0.8, seed: 1, freeFraction: 0.5 };

function peakFootprint(ev: TraceEvents): { pages: number; at: number } {
  const r = new TraceReplayer(buildMachine(undefined, 'lazy'), { sampleEvery: 0 });
  let pages = 0;
  let at = 0;
  for (let i = 0; i < ev.count; i += 1000) {
    r.run(ev.op, ev.pfn, ev.order, ev.flags, i, Math.min(ev.count, i + 1000));
    if (r.heldPages > pages) {
      pages = r.heldPages;
      at = r.events;
    }
  }
  return { pages, at };
}

/** Replay seconds with and without a FragSeries at its default interval, alternating (paired). */
function seriesCost(ev: TraceEvents, pairs: number) {
  const map = { ram: firecrackerMap(FRESH_MIB * 2 ** 20).ram };
  const once = (withSeries: boolean): number => {
    const vm = buildMachine(map, 'lazy');
    const r = new TraceReplayer(vm, { sampleEvery: 0 });
    const t0 = performance.now();
    if (withSeries) {
      const s = new FragSeries(vm);
      s.replay(r, ev.op, ev.pfn, ev.order, ev.flags, 0, ev.count);
      s.finish(r.events);
    } else r.run(ev.op, ev.pfn, ev.order, ev.flags, 0, ev.count);
    return (performance.now() - t0) / 1000;
  };
  once(false);
  once(true);
  const plain: number[] = [];
  const sampled: number[] = [];
  for (let i = 0; i < pairs; i++) {
    if (i % 2 === 0) {
      plain.push(once(false));
      sampled.push(once(true));
    } else {
      sampled.push(once(true));
      plain.push(once(false));
    }
  }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
  const ratios = plain.map((p, i) => sampled[i] / p);
  return {
    every: DEFAULT_SERIES_EVERY,
    pairs,
    plainSeconds: plain,
    seriesSeconds: sampled,
    medianPlain: med(plain),
    medianSeries: med(sampled),
    medianRatio: med(ratios),
    minRatio: Math.min(...ratios),
    maxRatio: Math.max(...ratios),
  };
}

function slim(r: PolicyResult) {
  return r;
}

async function main(): Promise<void> {
  const root = repoRoot();
  process.chdir(root);
  const ev = await readTraceEvents(TRACE);
  const peak = peakFootprint(ev);
  console.log(`trace peak footprint ${peak.pages} pages at event ${peak.at}`);
  const policies = POLICY_NAMES.map(policyByName);
  const freshMap = { ram: firecrackerMap(FRESH_MIB * 2 ** 20).ram };
  const log = (r: PolicyResult) => console.log(`  ${r.policy.name}: ${r.seconds.toFixed(2)} s`);
  console.log(`fresh ${FRESH_MIB} MiB lazy machine`);
  const fresh = runPolicies(ev, policies, { build: () => buildMachine(freshMap, 'lazy'), onPolicy: log });
  const vm = buildMachine({ ram: firecrackerMap(FRAG.ramMiB * 2 ** 20).ram }, 'lazy');
  const frag = fragment(vm, FRAG);
  const snap = snapshot(vm);
  console.log(`fragmented ${FRAG.ramMiB} MiB machine: U_9 ${frag.unusable.toFixed(3)}, ${frag.freePages} free pages`);
  const fragged = runPolicies(ev, policies, { build: () => restore(snap, { shared: false }), onPolicy: log });
  console.log('series cost (paired)');
  const cost = seriesCost(ev, 7);
  console.log(
    `  median ratio ${cost.medianRatio.toFixed(3)} (${cost.minRatio.toFixed(3)} .. ${cost.maxRatio.toFixed(3)})`,
  );
  const result = {
    suite: 'policy',
    machine: machineInfo(),
    trace: TRACE,
    events: ev.count,
    peakFootprint: peak,
    scenarios: [
      { name: 'fresh', machine: `Firecracker ${FRESH_MIB} MiB, lazy start-up`, results: fresh.map(slim) },
      {
        name: 'fragmented',
        machine: `Firecracker ${FRAG.ramMiB} MiB, fragmented (seed ${FRAG.seed}, target U_9 ${FRAG.target})`,
        fragment: frag,
        results: fragged.map(slim),
      },
    ],
    seriesCost: cost,
  };
  writeFileSync(join(root, 'bench/results/policy.json'), `${JSON.stringify(result)}\n`);
  writeFromResults(root);
}

/** Charts and tables from bench/results/policy.json. */
function writeFromResults(root: string): void {
  const r = JSON.parse(readFileSync(join(root, 'bench/results/policy.json'), 'utf8'));
  let md = '';
  for (const sc of r.scenarios) {
    const charts = policyCharts(sc.results, sc.machine);
    writeFileSync(join(root, `docs/img/policy-${sc.name}-u9.svg`), charts.u9);
    writeFileSync(join(root, `docs/img/policy-${sc.name}-s9.svg`), charts.s9);
    md += `\n**${sc.machine}** (${r.events.toLocaleString('en-US')} events of \`${r.trace}\`; peak footprint ${r.peakFootprint.pages.toLocaleString('en-US')} pages)\n\n`;
    md += policyTable(sc.results);
    md += `\n![U_9, ${sc.name}](img/policy-${sc.name}-u9.svg)\n![S_9, ${sc.name}](img/policy-${sc.name}-s9.svg)\n`;
  }
  const c = r.seriesCost;
  md += `\nSeries cost at its default interval (${c.every} events), ${c.pairs} paired alternating replays on the fresh machine: median ${c.medianPlain.toFixed(3)} s without, ${c.medianSeries.toFixed(3)} s with; median ratio ${c.medianRatio.toFixed(3)} (range ${c.minRatio.toFixed(3)} – ${c.maxRatio.toFixed(3)}).\n`;
  const file = join(root, 'docs/policy-lab.md');
  const BEGIN = '<!-- lab:begin (npm run lab) -->';
  const END = '<!-- lab:end -->';
  const text = existsSync(file) ? readFileSync(file, 'utf8') : `# Policy lab\n\n${BEGIN}\n${END}\n`;
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new Error('docs/policy-lab.md lacks its lab markers');
  writeFileSync(file, `${text.slice(0, a + BEGIN.length)}\n${md}${text.slice(b)}`);
}

if (process.argv.includes('--from-results')) writeFromResults(repoRoot());
else await main();
