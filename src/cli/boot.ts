/**
 * `vmphys boot`: start a machine from a memory map (or a Firecracker-shaped map of --ram SIZE),
 * eager against lazy, each in a fresh child process; print a table (default), JSON (--json) or
 * write an SVG chart (--svg FILE). Owned by the CLI.
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { exclusive, parseArgs, UsageError } from './args.js';
import type { BootJob } from './boot-child.js';
import {
  CliFailure,
  checkWritable,
  fmtBytes,
  intOption,
  ioMessage,
  parseAddrs,
  parseRanges,
  ramOption,
  readMapFile,
} from './common.js';
import { DEFAULT_TRACE } from './paths.js';

import type { BootReport } from './timeline.js';

export { parseAddrs, parseRanges };

const USAGE = `usage: vmphys boot [--map FILE | --ram SIZE[,SIZE...] | --sparse-1t] [--mode lazy|eager|both]
                   [--json] [--svg FILE] [--reserve A-B,...] [--blacklist ADDR,...]
                   [--workload trace|synthetic] [--events N] [--profile amd64|arm64|auto]
                   [--cold] [--in-process]
Boots a machine eager and lazy, each in a fresh process, and reports how soon the allocator was
ready, the memory it used and the background drain (vmlazyinit) that initialises the rest.
With no map, boots the embedded default: a Firecracker guest with 1 GiB of RAM.
  --map FILE         memory map: Linux /proc/iomem or boot log (e820), FreeBSD boot output or JSON
  --ram SIZE,...     Firecracker guests of these sizes, e.g. 128M,1G,24G (at most 2^31 pages)
  --sparse-1t        a sparse 1 TiB machine (8 banks spread over 64 TiB of addresses)
  --mode M           lazy, eager or both (default both)
  --json             print the reports as JSON instead of the table
  --svg FILE         also draw ready time and the drain as an SVG chart into FILE
  --reserve A-B,...  byte ranges the kernel keeps (hex or decimal), left out of the free lists
  --blacklist A,...  physical addresses of bad pages to leave out (vm.blacklist)
  --workload W       what runs while the drain goes on: trace (the Linux trace in data/traces,
                     the default) or synthetic
  --events N         workload events before the APs start and again during the drain (default 50000)
  --profile P        amd64, arm64 or auto (default: arm64 for maps with a UEFI memory map table)
  --cold             no JIT warm-up boots before the measured one
  --in-process       boot in this process (faster, but times include earlier boots' leftovers)
`;

function fmtMs(n: number): string {
  return n < 1 ? n.toFixed(3) : n < 100 ? n.toFixed(2) : n.toFixed(0);
}

/** Run one job in a fresh process (or here with inProcess). */
async function runJob(job: BootJob, inProcess: boolean): Promise<BootReport> {
  if (inProcess) {
    const { jobMap } = await import('./boot-child.js');
    const { runTimeline } = await import('./timeline.js');
    const { jobProfile } = await import('./boot-child.js');
    const text = job.mapFile ? (await import('node:fs')).readFileSync(job.mapFile, 'utf8') : undefined;
    return runTimeline(jobMap(job), { ...job, profile: jobProfile(job.profileName, text), progress: undefined });
  }
  const child = fileURLToPath(new URL('./boot-child.js', import.meta.url));
  const p = spawn(process.execPath, ['--expose-gc', '--max-old-space-size=8192', child, JSON.stringify(job)], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  p.stdout?.on('data', (b: Buffer) => out.push(b));
  p.stderr?.on('data', (b: Buffer) => err.push(b));
  const ticker = progress?.start(job);
  p.on('message', (m: { done: number; total: number }) => ticker?.drain(m.done, m.total));
  const status = await new Promise<number | null>((resolve) => p.on('close', (code) => resolve(code)));
  ticker?.stop();
  const text = Buffer.concat(out).toString('utf8');
  if (status === 0) return JSON.parse(text) as BootReport;
  // The child reports a typed error as {"error": message}; anything else is its last stderr line.
  let msg: string | undefined;
  try {
    msg = (JSON.parse(text) as { error?: string }).error;
  } catch {}
  const why = msg ?? Buffer.concat(err).toString('utf8').trim().split('\n').pop() ?? `exit status ${status}`;
  throw new CliFailure(`boot of ${job.mapName} (${job.mode}) failed: ${why}`);
}

/** A one-line progress display on a TTY for boots that run longer than a second. */
interface Progress {
  start(job: BootJob): { drain(done: number, total: number): void; stop(): void };
}

function ttyProgress(index: () => string): Progress | undefined {
  if (!process.stderr.isTTY) return undefined;
  return {
    start(job) {
      const t0 = performance.now();
      let drain = '';
      let shown = false;
      const draw = () => {
        const s = (performance.now() - t0) / 1000;
        if (s < 1) return;
        shown = true;
        const line = `  ${index()} ${job.mapName} (${job.mode}): ${drain || 'booting'} · ${s.toFixed(0)} s`;
        process.stderr.write(`\r${line.padEnd(process.stderr.columns ? process.stderr.columns - 1 : 79)}`);
      };
      const timer = setInterval(draw, 250);
      return {
        drain(done, total) {
          const f = total > 0 ? done / total : 1;
          const n = Math.round(f * 20);
          drain = `drain [${'#'.repeat(n)}${'.'.repeat(20 - n)}] ${(f * 100).toFixed(0)}%`;
        },
        stop() {
          clearInterval(timer);
          if (shown)
            process.stderr.write(`\r${' '.repeat(process.stderr.columns ? process.stderr.columns - 1 : 79)}\r`);
        },
      };
    },
  };
}

let progress: Progress | undefined;

/** The readable table: one column per report. */
export function bootTable(reports: BootReport[]): string {
  const rows: Array<[string, (r: BootReport) => string]> = [
    ['map', (r) => r.map],
    ['mode', (r) => `${r.mode} (${r.profile})`],
    ['RAM handed to the allocator', (r) => fmtBytes(r.ramBytes)],
    ['segments / domains', (r) => `${r.segments} / ${r.domains}`],
    ['ready (ms)', (r) => `${fmtMs(r.readyMs)}${r.warmupBoots ? '' : ' (cold)'}`],
    ['RSS growth at ready', (r) => fmtBytes(r.rssAtReadyBytes)],
    ['pages initialised at ready', (r) => String(r.pagesInitializedAtReady)],
    ['metadata reserved (virtual)', (r) => fmtBytes(r.metadataVirtualBytes)],
    ['on-demand chunk inits', (r) => String(r.onDemandInits)],
    ['longest init pause (µs)', (r) => r.maxInitPauseUs.toFixed(1)],
    ['drain (ms)', (r) => fmtMs(r.drainMs)],
    ['drain step p99 / max (µs)', (r) => `${r.drainStepP99Us.toFixed(1)} / ${r.maxDrainStepUs.toFixed(1)}`],
    ['total (ms)', (r) => fmtMs(r.totalMs)],
    ['workload', (r) => r.workload],
    ['failed allocations', (r) => String(r.failedAllocs)],
    ['verify()', (r) => (r.verified ? 'ok' : 'FAILED')],
  ];
  const cols = reports.map((r) => rows.map(([, f]) => f(r)));
  const w0 = Math.max(...rows.map(([n]) => n.length));
  const ws = cols.map((c) => Math.max(...c.map((s) => s.length)));
  const lines = rows.map(([name], i) => `${name.padEnd(w0)}  ${cols.map((c, k) => c[i].padStart(ws[k])).join('  ')}`);
  const ratios = readyRatios(reports);
  for (const q of ratios) lines.push(`${`eager ÷ lazy ready time, ${q.map}`.padEnd(w0)}  ${sig2(q.ratio)}×`);
  lines.push('');
  lines.push(closingSentence(reports, ratios));
  lines.push('');
  lines.push('Terms: "ready" is the time until the first page can be allocated. "APs" are the application');
  lines.push('processors (the CPUs other than the boot CPU): they start after the early-boot workload, and');
  lines.push('from then on the drain (vmlazyinit) initialises the remaining lazy pages one block per step');
  lines.push('while the workload goes on. "drain step p99 / max" is the 99th-percentile / longest time of');
  lines.push('one such step (the domain lock is held for it).');
  lines.push('For context (FreeBSD in Firecracker, D40403 commit message): initialising every vm_page took');
  lines.push('3 ms (9 % of kernel boot) at 128 MB and 21.5 ms (37 %) at 1 GB before lazy initialisation.');
  // A note about the map is the same in both modes: print each one once.
  const seen = new Set<string>();
  for (const r of reports)
    for (const n of r.notes) {
      const line = `note (${r.map}): ${n}`;
      if (!seen.has(line)) lines.push(line);
      seen.add(line);
    }
  return `${lines.join('\n')}\n`;
}

/** A ratio with two significant figures: 0.71, 2.4, 83, 930. */
export function sig2(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  return String(Number(x.toPrecision(2)));
}

/** eager ready ÷ lazy ready for every map booted in both modes. */
export function readyRatios(reports: BootReport[]): Array<{ map: string; ratio: number; eager: number; lazy: number }> {
  const out = [];
  for (const e of reports) {
    if (e.mode !== 'eager') continue;
    const l = reports.find((r) => r.mode === 'lazy' && r.map === e.map);
    if (l) out.push({ map: e.map, ratio: e.readyMs / l.readyMs, eager: e.readyMs, lazy: l.readyMs });
  }
  return out;
}

/** One sentence with the result of the run. */
export function closingSentence(reports: BootReport[], ratios = readyRatios(reports)): string {
  const bad = reports.filter((r) => !r.verified).length;
  const check = bad === 0 ? 'every boot passed verify()' : `${bad} boot(s) FAILED verify()`;
  if (ratios.length === 0) {
    const r = reports.map((x) => `${x.map} (${x.mode}) was ready in ${fmtMs(x.readyMs)} ms`).join(', ');
    return `Result: ${r}; ${check}.`;
  }
  const parts = ratios.map((q) =>
    q.ratio >= 1
      ? `lazy start-up made ${q.map} ready ${sig2(q.ratio)}× sooner than eager (${fmtMs(q.lazy)} ms against ${fmtMs(q.eager)} ms)`
      : `lazy start-up made ${q.map} ready ${sig2(1 / q.ratio)}× later than eager (${fmtMs(q.lazy)} ms against ${fmtMs(q.eager)} ms)`,
  );
  return `Result: ${parts.join('; ')}; ${check}.`;
}

export async function main(args: string[]): Promise<number> {
  const a = parseArgs(args, {
    values: ['map', 'ram', 'mode', 'svg', 'reserve', 'blacklist', 'workload', 'events', 'profile'],
    flags: ['json', 'in-process', 'sparse-1t', 'cold'],
  });
  if (a.flags.has('help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  exclusive(a, 'map', 'ram', 'sparse-1t');
  const mode = a.values.get('mode') ?? 'both';
  if (!['lazy', 'eager', 'both'].includes(mode))
    throw new UsageError(`--mode must be lazy, eager or both, not '${mode}'`);
  const modes = mode === 'both' ? (['eager', 'lazy'] as const) : ([mode] as Array<'lazy' | 'eager'>);
  const wl = a.values.get('workload') ?? (existsSync(DEFAULT_TRACE) ? 'trace' : 'synthetic');
  if (wl !== 'trace' && wl !== 'synthetic') throw new UsageError(`--workload must be trace or synthetic, not '${wl}'`);
  if (wl === 'trace' && !existsSync(DEFAULT_TRACE))
    throw new CliFailure(`--workload trace: the trace '${DEFAULT_TRACE}' is missing`);
  const events = intOption(a.values.get('events'), 'events', 50_000);
  const reserve = a.values.has('reserve') ? parseRanges(a.values.get('reserve') as string, '--reserve') : [];
  const blacklist = a.values.has('blacklist') ? parseAddrs(a.values.get('blacklist') as string, '--blacklist') : [];
  const profileName = a.values.get('profile') ?? 'auto';
  if (!['amd64', 'arm64', 'auto'].includes(profileName))
    throw new UsageError(`--profile must be amd64, arm64 or auto, not '${profileName}'`);
  const svg = a.values.get('svg');
  if (svg !== undefined) checkWritable(svg, 'svg');
  const base = {
    workload: wl as 'trace' | 'synthetic',
    traceFile: wl === 'trace' ? DEFAULT_TRACE : undefined,
    earlyEvents: events,
    lateEvents: events,
    reserve,
    blacklist,
    progress: !a.flags.has('json'),
    warmup: a.flags.has('cold') ? 0 : 50,
    profileName,
  };
  const jobs: BootJob[] = [];
  if (a.values.has('map')) {
    const f = a.values.get('map') as string;
    // Read and parse the map here: a missing file or a bad map is reported before any child runs.
    const { text } = readMapFile(f);
    const { jobProfile } = await import('./boot-child.js');
    jobProfile(profileName, text);
    for (const m of modes) jobs.push({ ...base, mode: m, mapFile: f, mapName: f.replace(/^.*\//, '') });
  } else if (a.flags.has('sparse-1t')) {
    for (const m of modes) jobs.push({ ...base, mode: m, sparse1t: true, mapName: 'sparse 1 TiB' });
  } else {
    const sizes = (a.values.get('ram') ?? '1G').split(',').map((s) => ramOption(s, 'ram'));
    for (const size of sizes)
      for (const m of modes)
        jobs.push({ ...base, mode: m, ramBytes: size, mapName: `firecracker ${fmtBytes(size).replace(' ', '')}` });
  }
  let k = 0;
  progress = a.flags.has('json') ? undefined : ttyProgress(() => `boot ${k}/${jobs.length}`);
  const reports: BootReport[] = [];
  for (const job of jobs) {
    k++;
    reports.push(await runJob(job, a.flags.has('in-process')));
  }
  if (svg !== undefined) {
    const { bootChart } = await import('./boot-chart.js');
    try {
      writeFileSync(svg, bootChart(reports));
    } catch (e) {
      throw new CliFailure(`--svg: cannot write ${ioMessage(e, svg)}`);
    }
  }
  if (a.flags.has('json')) process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
  else process.stdout.write(bootTable(reports));
  // Failed allocations are a result (a workload can need more RAM than the map has), not an error.
  if (!reports.every((r) => r.verified)) throw new CliFailure('verify() failed after a boot (see the table)');
  return 0;
}
