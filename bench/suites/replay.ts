/**
 * Suite `replay`: the shared Linux trace (../shared/data/traces/linux-6.18-mixed-B.csv.xz)
 * pre-parsed into memory, then replayed by `TraceReplayer` (src/trace/replay.ts) on the 128 GiB
 * Firecracker map in lazy and eager mode — events/s of allocator work plus bookkeeping, the
 * figure FreeBSD's vm_phys.c (-O2, same trace pre-parsed) reaches at 46 M/s lazy and 36 M/s
 * eager. Also: the parser's throughput, the pfn bookkeeping alone (no allocator), and the same
 * trace through every peer (shared with the `peers` suite). Writes the free-block histogram of
 * each mode to bench/results/replay-histogram-<mode>.svg. Owned by the benchmark work.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { histogramSvg } from '../../src/cli/replay.js';
import { parseTrace } from '../../src/trace/parse.js';
import { buildMachine, type FreeHistogram, PfnTable, TraceReplayer } from '../../src/trace/replay.js';
import { loadTrace, type Result, repeat, repoRoot, result, runChild, type Suite, sharedTrace } from '../util.js';
import { peerTraceResults } from './peers.js';

const SELF = fileURLToPath(import.meta.url);

interface ReplayArg {
  mode: 'lazy' | 'eager';
  /** Events to replay; 0 = the whole trace (JSON has no Infinity). */
  limit: number;
  reps: number;
}

interface ReplayOut {
  samples: number[];
  events: number;
  failedAllocs: number;
  skippedFrees: number;
  lostFrees: number;
  heldPages: number;
  histogram: FreeHistogram;
}

/** Child: replay the pre-parsed trace on a fresh machine per repetition (one warm-up). */
export async function childReplay(a: ReplayArg): Promise<ReplayOut> {
  const ev = await loadTrace(sharedTrace());
  const n = a.limit > 0 ? Math.min(a.limit, ev.count) : ev.count;
  let last: TraceReplayer | null = null;
  const r = await repeat(
    () => {
      last = null;
      const vm = buildMachine(undefined, a.mode);
      const rp = new TraceReplayer(vm);
      const t0 = performance.now();
      rp.run(ev.op, ev.pfn, ev.order, ev.flags, 0, n);
      const s = (performance.now() - t0) / 1000;
      last = rp;
      return n / s;
    },
    { reps: a.reps, warmup: 2 },
  );
  const rp = last as unknown as TraceReplayer;
  const c = rp.counts();
  return {
    samples: r.samples,
    events: n,
    failedAllocs: c.failedAllocs,
    skippedFrees: c.skippedFrees,
    lostFrees: c.lostFrees,
    heldPages: c.heldPages,
    histogram: rp.histogram(),
  };
}

/** Child: the bookkeeping alone — the pfn table's finds, inserts and removes, no allocator. */
export async function childBookkeeping(a: ReplayArg): Promise<number[]> {
  const ev = await loadTrace(sharedTrace());
  const n = a.limit > 0 ? Math.min(a.limit, ev.count) : ev.count;
  const r = await repeat(
    () => {
      const t = new PfnTable();
      const { op, pfn, order } = ev;
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const p = pfn[i];
        const s = t.find(p);
        if (s >= 0) t.removeAt(s);
        if (op[i] === 0) t.insert(p, i, order[i]);
      }
      return n / ((performance.now() - t0) / 1000);
    },
    { reps: a.reps, warmup: 1 },
  );
  return r.samples;
}

/** Child: stream-parse the .xz trace (decompression runs in the xz child meanwhile). */
export async function childParse(a: ReplayArg): Promise<number[]> {
  const r = await repeat(
    async () => {
      const t0 = performance.now();
      let n = 0;
      for await (const c of parseTrace(sharedTrace(), { limit: a.limit > 0 ? a.limit : undefined })) n += c.count;
      return n / ((performance.now() - t0) / 1000);
    },
    { reps: a.reps, warmup: 0 },
  );
  return r.samples;
}

const NATIVE: Record<'lazy' | 'eager', string> = { lazy: '46 M', eager: '36 M' };

export const suite: Suite = {
  name: 'replay',
  async run({ quick }) {
    const limit = quick ? 200_000 : 0;
    const reps = quick ? 1 : 7;
    const out: Result[] = [];
    await loadTrace(sharedTrace()); // parse once and cache for the children
    for (const mode of ['lazy', 'eager'] as const) {
      const r = await runChild<ReplayOut>(SELF, 'childReplay', { mode, limit, reps } satisfies ReplayArg);
      out.push(
        result(`TraceReplayer, ${mode}`, 'events/s', r.samples, {
          goal: `≥ 20 M events/s (FreeBSD vm_phys.c -O2: ${NATIVE[mode]})`,
          notes:
            `128 GiB Firecracker map; ${r.events.toLocaleString('en-US')} events pre-parsed; ${r.failedAllocs} failed allocations, ` +
            `${r.skippedFrees.toLocaleString('en-US')} skipped frees, ${r.lostFrees} lost frees; index API ` +
            '(allocFreelistIdx, freePagesIdx, segOfIdx) + pfn direct map (PfnTable); fresh machine per repetition',
        }),
      );
      const dir = join(repoRoot(), 'bench', 'results');
      mkdirSync(dir, { recursive: true });
      if (!quick)
        writeFileSync(
          join(dir, `replay-histogram-${mode}.svg`),
          histogramSvg({
            file: 'linux-6.18-mixed-B.csv.xz',
            map: 'firecracker-128g',
            mode,
            events: r.events,
            failedAllocs: r.failedAllocs,
            histogram: r.histogram,
          }),
        );
    }
    const book = await runChild<number[]>(SELF, 'childBookkeeping', { mode: 'lazy', limit, reps } satisfies ReplayArg);
    out.push(
      result('pfn bookkeeping alone (PfnTable, no allocator)', 'events/s', book, {
        notes: 'the part of the replay cost that is not the allocator: an upper bound for the replay rate',
      }),
    );
    const parse = await runChild<number[]>(SELF, 'childParse', {
      mode: 'lazy',
      limit,
      reps: quick ? 1 : 3,
    } satisfies ReplayArg);
    out.push(
      result('parseTrace of the .xz (streamed through xz -dc)', 'events/s', parse, {
        notes: 'not part of the replay figures above, which start from pre-parsed arrays',
      }),
    );
    out.push(...(await peerTraceResults(quick)));
    return out;
  },
};
