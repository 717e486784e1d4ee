/**
 * `vmphys boot`: start a machine from a memory map (or a Firecracker-shaped map of --ram SIZE),
 * eager against lazy, each in a fresh child process; print a table (default), JSON (--json) or
 * write an SVG chart (--svg FILE). Owned by the CLI.
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { META_BYTES_PER_PAGE } from '../core/layout.js';
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
                   [--page-struct freebsd|none|FILE.json] [--cold] [--in-process]
Boots a machine eager and lazy, each in a fresh process, and reports how soon the allocator was
ready, the memory it used and the background drain (vmlazyinit) that initialises the rest.
With no map or RAM, boots the machines of FreeBSD's own measurement (Firecracker guests of
128 MiB and 1 GiB) eager and lazy, with and without struct vm_page records, and prints them
beside FreeBSD's figures.
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
  --page-struct S    per-page records initialised with the pages: freebsd (struct vm_page as
                     FreeBSD lays it out, 104 bytes a page; the default), none (only the
                     allocator's 9 bytes a page) or a layout JSON file of your own
  --cold             no JIT warm-up boots before the measured one
  --in-process       boot in this process (faster, but times include earlier boots' leftovers)
`;

function fmtMs(n: number): string {
  return n < 1 ? n.toFixed(3) : n < 100 ? n.toFixed(2) : n.toFixed(0);
}

/** Run one job in a fresh process (or here with inProcess). */
async function runJob(job: BootJob, inProcess: boolean): Promise<BootReport> {
  if (inProcess) {
    const { jobMap, jobPageStruct, jobProfile } = await import('./boot-child.js');
    const { runTimeline } = await import('./timeline.js');
    const text = job.mapFile ? (await import('node:fs')).readFileSync(job.mapFile, 'utf8') : undefined;
    return runTimeline(jobMap(job), {
      ...job,
      profile: jobProfile(job.profileName, text),
      pageStruct: jobPageStruct(job.pageStruct),
      progress: undefined,
    });
  }
  const child = fileURLToPath(new URL('./boot-child.js', import.meta.url));
  // A fixed malloc mmap threshold: every large buffer (page records above all) is fresh memory
  // mapped on demand, as a kernel's vm_page array is. With glibc's adaptive threshold, a buffer
  // freed by a warm-up boot is reused and zeroed with memset when the measured machine is
  // created, which charges a lazy boot for touching every record it never uses.
  const env = { ...process.env, MALLOC_MMAP_THRESHOLD_: '131072' };
  const p = spawn(process.execPath, ['--expose-gc', '--max-old-space-size=8192', child, JSON.stringify(job)], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env,
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

/** The machines of FreeBSD's own measurement (D40403): Firecracker guests of 128 MB and 1 GB. */
const SEED_SIZES = [128 * 2 ** 20, 2 ** 30];
/** FreeBSD's eager vm_page initialisation in those guests: ms, and share of the kernel's boot. */
const SEED_FIGURES: Record<number, { ms: number; pct: number }> = {
  [128 * 2 ** 20]: { ms: 3, pct: 9 },
  [2 ** 30]: { ms: 21.5, pct: 37 },
};

/**
 * Memory honesty: a machine whose page records would not fit in this computer's free memory
 * cannot be booted eagerly or drained (both touch every record). Say so on stderr before
 * starting, drop its eager boots and stop its lazy boots after the early workload (ready time
 * and the first allocations are still measured). Jobs are changed in place.
 */
async function fitRecords(jobs: BootJob[]): Promise<void> {
  const os = await import('node:os');
  const { jobMap, jobPageStruct } = await import('./boot-child.js');
  const { resolvePageStruct } = await import('../core/pagerec/wire.js');
  const { amd64 } = await import('../core/params.js');
  const free = os.freemem();
  const total = os.totalmem();
  const told = new Set<string>();
  for (let i = jobs.length - 1; i >= 0; i--) {
    const j = jobs[i];
    const layout = resolvePageStruct(jobPageStruct(j.pageStruct), amd64);
    if (layout.size === 0) continue;
    let pages = 0;
    for (const r of jobMap(j).ram) pages += Math.floor((r.end - r.start) / amd64.pageSize);
    const bytes = pages * layout.size;
    if (bytes <= free) continue;
    const key = `${j.mapName}/${j.pageStruct}`;
    if (!told.has(key))
      process.stderr.write(
        `note: ${j.mapName}: its '${layout.name}' page records need ${fmtBytes(bytes)}, more than this ` +
          `computer's free memory (${fmtBytes(free)} of ${fmtBytes(total)}): the eager boot and the full ` +
          'drain are skipped; lazy ready time and the first allocations are measured.\n',
      );
    told.add(key);
    if (j.mode === 'eager') jobs.splice(i, 1);
    else j.noDrain = true;
  }
}

/** The seed's comparison: ready times with and without struct vm_page records beside FreeBSD's figures. */
export function seedTable(reports: BootReport[]): string {
  const rows: string[][] = [
    ['machine', 'page records', 'eager ready', 'lazy ready', 'eager ÷ lazy', 'FreeBSD eager vm_page init'],
  ];
  const maps = [...new Set(reports.map((r) => r.map))];
  for (const map of maps) {
    for (const ps of [...new Set(reports.filter((r) => r.map === map).map((r) => r.pageStruct))]) {
      const e = reports.find((r) => r.map === map && r.pageStruct === ps && r.mode === 'eager');
      const l = reports.find((r) => r.map === map && r.pageStruct === ps && r.mode === 'lazy');
      const any = (e ?? l) as BootReport;
      const pages = any.metadataVirtualBytes / META_BYTES_PER_PAGE;
      const per = any.pageStructBytes > 0 ? ` (${any.pageStructBytes / pages} B a page)` : '';
      const seed = SEED_FIGURES[seedSize(any.ramBytes)];
      rows.push([
        map,
        `${ps}${per}`,
        e ? `${fmtMs(e.readyMs)} ms` : '-',
        l ? `${fmtMs(l.readyMs)} ms` : '-',
        e && l ? `${sig2(e.readyMs / l.readyMs)}×` : '-',
        seed && ps.startsWith('freebsd') ? `${seed.ms} ms (${seed.pct} % of boot)` : '',
      ]);
    }
  }
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const lines = rows.map((r) =>
    r
      .map((x, c) => (c < 2 ? x.padEnd(w[c]) : x.padStart(w[c])))
      .join('  ')
      .trimEnd(),
  );
  lines.splice(1, 0, w.map((n) => '-'.repeat(n)).join('  '));
  lines.push('');
  lines.push(seedSentence(reports));
  lines.push('');
  lines.push('"ready": from the start of vm_page_startup to the first page allocated, in a fresh process after');
  lines.push("warm-up boots. FreeBSD's figures are from the commit that made vm_page initialisation lazy");
  lines.push('(D40403), measured in Firecracker guests of 128 MB and 1 GB. Details of every boot (drain,');
  lines.push('memory, workload): vmphys boot --ram 128M,1G, or --json.');
  return `${lines.join('\n')}\n`;
}

/** The seed size a Firecracker guest's RAM handed to the allocator belongs to (its map holds a little less). */
function seedSize(ramBytes: number): number {
  return ramBytes <= 256 * 2 ** 20 ? 128 * 2 ** 20 : 2 ** 30;
}

/** "20× sooner", or "2.7× later" for a ratio below 1. */
function soonerLater(r: number): string {
  return r >= 1 ? `${sig2(r)}× sooner` : `${sig2(1 / r)}× later`;
}

/** One sentence: what the seed table shows. */
export function seedSentence(reports: BootReport[]): string {
  const bad = reports.filter((r) => !r.verified).length;
  const check = bad === 0 ? 'every boot passed verify()' : `${bad} boot(s) FAILED verify()`;
  const pick = (ps: (s: string) => boolean, mode: string, size: number) =>
    reports.find((r) => ps(r.pageStruct) && r.mode === mode && seedSize(r.ramBytes) === size);
  const fb = (s: string) => s.startsWith('freebsd');
  const none = (s: string) => s === 'none';
  const parts: string[] = [];
  const e1 = pick(fb, 'eager', SEED_SIZES[0]);
  const e2 = pick(fb, 'eager', SEED_SIZES[1]);
  const l1 = pick(fb, 'lazy', SEED_SIZES[0]);
  const l2 = pick(fb, 'lazy', SEED_SIZES[1]);
  if (e1 && e2 && l1 && l2)
    parts.push(
      `with struct vm_page records, eager start-up took ${fmtMs(e1.readyMs)} ms at 128 MiB and ${fmtMs(e2.readyMs)} ms ` +
        `at 1 GiB (FreeBSD: 3 and 21.5 ms) and lazy start-up made the machines ready ` +
        `${soonerLater(e1.readyMs / l1.readyMs)} and ${soonerLater(e2.readyMs / l2.readyMs)}`,
    );
  const n1 = pick(none, 'eager', SEED_SIZES[0]);
  const n2 = pick(none, 'eager', SEED_SIZES[1]);
  const m1 = pick(none, 'lazy', SEED_SIZES[0]);
  const m2 = pick(none, 'lazy', SEED_SIZES[1]);
  if (n1 && n2 && m1 && m2)
    parts.push(
      `without them (the allocator's own 9 bytes a page) eager ÷ lazy is only ${sig2(n1.readyMs / m1.readyMs)}× ` +
        `and ${sig2(n2.readyMs / m2.readyMs)}×: the page structures are what lazy initialisation saves`,
    );
  if (parts.length === 0) return `Result: ${closingSentence(reports).replace(/^Result: /, '')}`;
  return `Result: ${parts.join('; ')}; ${check}.`;
}

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
    ['page records (virtual)', (r) => `${r.pageStruct} ${fmtBytes(r.pageStructBytes)}`],
    ['on-demand chunk inits', (r) => String(r.onDemandInits)],
    ['longest init pause (µs)', (r) => r.maxInitPauseUs.toFixed(1)],
    ['drain (ms)', (r) => (r.drainSkipped ? 'skipped' : fmtMs(r.drainMs))],
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
    const l = reports.find((r) => r.mode === 'lazy' && r.map === e.map && r.pageStruct === e.pageStruct);
    const several = reports.some((r) => r.map === e.map && r.pageStruct !== e.pageStruct);
    const map = several ? `${e.map}, records ${e.pageStruct}` : e.map;
    if (l) out.push({ map, ratio: e.readyMs / l.readyMs, eager: e.readyMs, lazy: l.readyMs });
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
    values: ['map', 'ram', 'mode', 'svg', 'reserve', 'blacklist', 'workload', 'events', 'profile', 'page-struct'],
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
  const pageStructArg = a.values.get('page-struct');
  // A layout file is read and checked here: a bad one is reported before any child runs.
  if (pageStructArg !== undefined && pageStructArg !== 'freebsd' && pageStructArg !== 'none') {
    if (!existsSync(pageStructArg))
      throw new UsageError(`--page-struct must be freebsd, none or a layout JSON file, not '${pageStructArg}'`);
    const { jobPageStruct } = await import('./boot-child.js');
    jobPageStruct(pageStructArg);
  }
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
  } else if (a.values.has('ram')) {
    const sizes = (a.values.get('ram') as string).split(',').map((s) => ramOption(s, 'ram'));
    for (const size of sizes)
      for (const m of modes)
        jobs.push({ ...base, mode: m, ramBytes: size, mapName: `firecracker ${fmtBytes(size).replace(' ', '')}` });
  } else {
    // The seed's machines, with and without struct vm_page records (unless --page-struct says which).
    const structs = pageStructArg === undefined ? ['freebsd', 'none'] : [pageStructArg];
    for (const size of SEED_SIZES)
      for (const ps of structs)
        for (const m of modes)
          jobs.push({
            ...base,
            mode: m,
            ramBytes: size,
            pageStruct: ps,
            mapName: `firecracker ${fmtBytes(size).replace(' ', '')}`,
          });
  }
  for (const j of jobs) j.pageStruct ??= pageStructArg ?? 'freebsd';
  await fitRecords(jobs);
  if (jobs.length === 0) throw new CliFailure('nothing to boot: every eager boot was skipped (see the note above)');
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
  const seed = !a.values.has('map') && !a.values.has('ram') && !a.flags.has('sparse-1t');
  if (a.flags.has('json')) process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
  else process.stdout.write(seed ? seedTable(reports) : bootTable(reports));
  // Failed allocations are a result (a workload can need more RAM than the map has), not an error.
  if (!reports.every((r) => r.verified)) throw new CliFailure('verify() failed after a boot (see the table)');
  return 0;
}
