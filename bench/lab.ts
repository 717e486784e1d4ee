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

const SERIES_GOAL = 0.1;

function median(a: number[]): number {
  const b = [...a].sort((x, y) => x - y);
  const n = b.length;
  return n % 2 === 1 ? b[n >> 1] : (b[n / 2 - 1] + b[n / 2]) / 2;
}

function quantile(a: number[], q: number): number {
  const b = [...a].sort((x, y) => x - y);
  const x = q * (b.length - 1);
  const i = Math.floor(x);
  return i + 1 < b.length ? b[i] + (x - i) * (b[i + 1] - b[i]) : b[i];
}

/**
 * The series' cost at its default interval, in one process: after warm-up, `pairs` pairs of
 * replays of the whole trace on the fresh machine, one without and one with a FragSeries, the
 * order inside a pair alternating. Both replay in the same chunks of the series interval (one
 * call over the whole trace resolves it into one large batch, which is itself slower, so it
 * would flatter the series); each replay timed in wall-clock and in process CPU time
 * (`process.cpuUsage`, user + system). Reported: per-pair ratios (with / without), their median
 * and quartiles, and as a cross-check the cost of one sample (timed over many samples of the end
 * state) × the samples a replay takes ÷ the median replay time without the series.
 */
function seriesCost(ev: TraceEvents, pairs: number, warmup: number) {
  const map = { ram: firecrackerMap(FRESH_MIB * 2 ** 20).ram };
  let samples = 0;
  const once = (withSeries: boolean): { wall: number; cpu: number } => {
    const vm = buildMachine(map, 'lazy');
    const r = new TraceReplayer(vm, { sampleEvery: 0 });
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    if (withSeries) {
      const s = new FragSeries(vm);
      s.replay(r, ev.op, ev.pfn, ev.order, ev.flags, 0, ev.count);
      s.finish(r.events);
      samples = s.length;
    } else
      for (let i = 0; i < ev.count; i += DEFAULT_SERIES_EVERY)
        r.run(ev.op, ev.pfn, ev.order, ev.flags, i, Math.min(ev.count, i + DEFAULT_SERIES_EVERY));
    const wall = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    return { wall, cpu: (c.user + c.system) / 1e6 };
  };
  for (let i = 0; i < warmup; i++) {
    once(i % 2 === 0);
    once(i % 2 !== 0);
  }
  const plain: { wall: number; cpu: number }[] = [];
  const sampled: { wall: number; cpu: number }[] = [];
  for (let i = 0; i < pairs; i++) {
    if (i % 2 === 0) {
      plain.push(once(false));
      sampled.push(once(true));
    } else {
      sampled.push(once(true));
      plain.push(once(false));
    }
  }
  // Cross-check: one sample's cost on the end state of a replay.
  const vm = buildMachine(map, 'lazy');
  new TraceReplayer(vm, { sampleEvery: 0 }).run(ev.op, ev.pfn, ev.order, ev.flags, 0, ev.count);
  const reps = 20000;
  const probe = new FragSeries(vm, { capacity: reps });
  for (let i = 0; i < 1000; i++) probe.sample(i);
  const probe2 = new FragSeries(vm, { capacity: reps });
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) probe2.sample(i);
  const sampleWall = (performance.now() - t0) / 1000 / reps;
  const cu = process.cpuUsage(c0);
  const sampleCpu = (cu.user + cu.system) / 1e6 / reps;
  const wallRatios = plain.map((p, i) => sampled[i].wall / p.wall);
  const cpuRatios = plain.map((p, i) => sampled[i].cpu / p.cpu);
  const medianPlainCpu = median(plain.map((x) => x.cpu));
  const estimate = (sampleCpu * samples) / medianPlainCpu;
  const medianCpuRatio = median(cpuRatios);
  return {
    every: DEFAULT_SERIES_EVERY,
    pairs,
    warmup,
    samplesPerReplay: samples,
    plainWall: plain.map((x) => x.wall),
    seriesWall: sampled.map((x) => x.wall),
    plainCpu: plain.map((x) => x.cpu),
    seriesCpu: sampled.map((x) => x.cpu),
    medianPlainWall: median(plain.map((x) => x.wall)),
    medianSeriesWall: median(sampled.map((x) => x.wall)),
    medianPlainCpu,
    medianSeriesCpu: median(sampled.map((x) => x.cpu)),
    wallRatio: {
      median: median(wallRatios),
      q1: quantile(wallRatios, 0.25),
      q3: quantile(wallRatios, 0.75),
      min: Math.min(...wallRatios),
      max: Math.max(...wallRatios),
    },
    cpuRatio: {
      median: medianCpuRatio,
      q1: quantile(cpuRatios, 0.25),
      q3: quantile(cpuRatios, 0.75),
      min: Math.min(...cpuRatios),
      max: Math.max(...cpuRatios),
    },
    sampleSecondsWall: sampleWall,
    sampleSecondsCpu: sampleCpu,
    estimatedOverhead: estimate,
    goal: `the series costs at most ${SERIES_GOAL * 100} % of replay time at its default interval`,
    verdict:
      medianCpuRatio - 1 <= SERIES_GOAL && estimate <= SERIES_GOAL
        ? 'met'
        : medianCpuRatio - 1 <= SERIES_GOAL || estimate <= SERIES_GOAL
          ? 'unclear (the paired ratio and the per-sample estimate disagree)'
          : 'not met',
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
  const cost = seriesCost(ev, 21, 2);
  console.log(
    `  median CPU ratio ${cost.cpuRatio.median.toFixed(3)} (IQR ${cost.cpuRatio.q1.toFixed(3)} .. ${cost.cpuRatio.q3.toFixed(3)}), ` +
      `wall ${cost.wallRatio.median.toFixed(3)}; per-sample estimate ${(100 * cost.estimatedOverhead).toFixed(2)} %: ${cost.verdict}`,
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

/** How many policies end in distinct states, and which orders fail (the same for all or not). */
function endStates(rs: PolicyResult[]): string {
  const distinct = new Set(rs.map((r) => r.endState)).size;
  const key = (r: PolicyResult) => JSON.stringify(r.counts.failedByOrder);
  const fails = (r: PolicyResult) =>
    r.counts.failedByOrder
      .map((n, o) => (n > 0 ? `order ${o}: ${n}` : ''))
      .filter((x) => x !== '')
      .join(', ') || 'none';
  const same = rs.every((r) => key(r) === key(rs[0]));
  let out = `\nEnd states (hash of every page's state byte): ${distinct} distinct among ${rs.length} policies. Failed allocations by requested order: `;
  out += same
    ? `${fails(rs[0])} under every policy.\n`
    : `${rs.map((r) => `${r.policy.name} ${fails(r)}`).join('; ')}.\n`;
  return out;
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
    md += endStates(sc.results);
    md += `\n![U_9, ${sc.name}](img/policy-${sc.name}-u9.svg)\n![S_9, ${sc.name}](img/policy-${sc.name}-s9.svg)\n`;
  }
  const c = r.seriesCost;
  const pct = (x: number) => `${(100 * (x - 1)).toFixed(1)} %`;
  md += `\n**Series cost** at its default interval (${c.every} events, ${c.samplesPerReplay} samples per replay of the trace on the fresh machine), ${c.pairs} pairs of alternating replays without and with the series (both in chunks of ${c.every} events) in one process after ${c.warmup} warm-up pairs:\n\n`;
  md += '| | without | with | ratio median | quartiles | min – max |\n|---|---:|---:|---:|---:|---:|\n';
  md += `| CPU time (user + system) | ${c.medianPlainCpu.toFixed(3)} s | ${c.medianSeriesCpu.toFixed(3)} s | ${c.cpuRatio.median.toFixed(3)} (${pct(c.cpuRatio.median)}) | ${c.cpuRatio.q1.toFixed(3)} – ${c.cpuRatio.q3.toFixed(3)} | ${c.cpuRatio.min.toFixed(3)} – ${c.cpuRatio.max.toFixed(3)} |\n`;
  md += `| wall clock | ${c.medianPlainWall.toFixed(3)} s | ${c.medianSeriesWall.toFixed(3)} s | ${c.wallRatio.median.toFixed(3)} (${pct(c.wallRatio.median)}) | ${c.wallRatio.q1.toFixed(3)} – ${c.wallRatio.q3.toFixed(3)} | ${c.wallRatio.min.toFixed(3)} – ${c.wallRatio.max.toFixed(3)} |\n`;
  md += `\nCross-check: one sample costs ${(c.sampleSecondsCpu * 1e6).toFixed(1)} µs of CPU; × ${c.samplesPerReplay} samples ÷ ${c.medianPlainCpu.toFixed(3)} s = ${(100 * c.estimatedOverhead).toFixed(2)} % of a replay.\n\nGoal: ${c.goal}. Verdict (median CPU ratio and the per-sample estimate both within the goal): **${c.verdict}**.\n`;
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
