/**
 * Suite `replay`: the shared Linux trace (../shared/data/traces/linux-6.18-mixed-B.csv.xz)
 * pre-parsed into memory and resolved (frees matched to allocations, src/trace/resolve.ts), then
 * replayed by `TraceReplayer` (src/trace/replay.ts) on the 128 GiB Firecracker map in lazy and
 * eager mode — events/s of allocator work, the figure FreeBSD's vm_phys.c (-O2, same trace
 * pre-parsed) reaches at 46 M/s lazy and 36 M/s eager — and end to end (resolve + replay from
 * the parsed arrays). Also: the parser's throughput, resolving alone (no allocator), and the same
 * trace through every peer (shared with the `peers` suite). Writes the free-block histogram of
 * each mode to bench/results/replay-histogram-<mode>.svg. Owned by the benchmark work.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { histogramSvg } from '../../src/cli/replay.js';
import { amd64 } from '../../src/core/params.js';
import { parseTrace } from '../../src/trace/parse.js';
import { buildMachine, type FreeHistogram, TraceReplayer } from '../../src/trace/replay.js';
import { newResolvedEvents, TraceResolver } from '../../src/trace/resolve.js';
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
  /** events / seconds of `TraceReplayer.replay` over the resolved trace (allocator work). */
  samples: number[];
  /** events / seconds of `TraceReplayer.run`: resolve + replay, from the parsed arrays. */
  endToEnd: number[];
  events: number;
  slots: number;
  failedAllocs: number;
  skippedFrees: number;
  lostFrees: number;
  heldPages: number;
  histogram: FreeHistogram;
}

/**
 * Child: resolve the pre-parsed trace once (matching frees to allocations depends on the trace
 * alone), then per repetition replay it on a fresh machine (timed: the allocator work), and
 * resolve + replay it from the parsed arrays on another fresh machine (timed: end to end).
 * The two orders alternate so that the machine's drift hits both alike.
 */
export async function childReplay(a: ReplayArg): Promise<ReplayOut> {
  const ev = await loadTrace(sharedTrace());
  const n = a.limit > 0 ? Math.min(a.limit, ev.count) : ev.count;
  const resolved = new TraceResolver(amd64.nFreeOrder - 1).resolve(
    ev.op,
    ev.pfn,
    ev.order,
    ev.flags,
    0,
    n,
    newResolvedEvents(),
  );
  let last: TraceReplayer | null = null;
  const endToEnd: number[] = [];
  let rep = 0;
  const whole = (): number => {
    const rp = new TraceReplayer(buildMachine(undefined, a.mode));
    const t0 = performance.now();
    rp.run(ev.op, ev.pfn, ev.order, ev.flags, 0, n);
    return n / ((performance.now() - t0) / 1000);
  };
  const r = await repeat(
    () => {
      last = null;
      const e2e = rep % 2 === 1 ? whole() : 0;
      const vm = buildMachine(undefined, a.mode);
      const rp = new TraceReplayer(vm);
      const t0 = performance.now();
      rp.replay(resolved);
      const s = (performance.now() - t0) / 1000;
      last = rp;
      endToEnd.push(rep++ % 2 === 1 ? e2e : whole());
      return n / s;
    },
    { reps: a.reps, warmup: 2 },
  );
  const rp = last as unknown as TraceReplayer;
  const c = rp.counts();
  return {
    samples: r.samples,
    endToEnd: endToEnd.slice(2),
    events: n,
    slots: resolved.slots,
    failedAllocs: c.failedAllocs,
    skippedFrees: c.skippedFrees,
    lostFrees: c.lostFrees,
    heldPages: c.heldPages,
    histogram: rp.histogram(),
  };
}

/** Child: resolving alone — the pfn bookkeeping that matches frees to allocations, no allocator. */
export async function childResolve(a: ReplayArg): Promise<number[]> {
  const ev = await loadTrace(sharedTrace());
  const n = a.limit > 0 ? Math.min(a.limit, ev.count) : ev.count;
  const out = newResolvedEvents(n);
  const r = await repeat(
    () => {
      const res = new TraceResolver(amd64.nFreeOrder - 1);
      const t0 = performance.now();
      res.resolve(ev.op, ev.pfn, ev.order, ev.flags, 0, n, out);
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
        result(`TraceReplayer.replay (allocator work), ${mode}`, 'events/s', r.samples, {
          goal: `≥ 20 M events/s (FreeBSD vm_phys.c -O2: ${NATIVE[mode]})`,
          notes:
            `128 GiB Firecracker map; ${r.events.toLocaleString('en-US')} events pre-parsed and resolved (${r.slots.toLocaleString('en-US')} slots); ` +
            `${r.failedAllocs} failed allocations, ${r.skippedFrees.toLocaleString('en-US')} skipped frees, ${r.lostFrees} lost frees; ` +
            'index API (allocPagesIdx, freePagesIdx, segOfIdx) + per-slot array; fresh machine per repetition',
        }),
        result(`TraceReplayer.run (resolve + replay), ${mode}`, 'events/s', r.endToEnd, {
          notes: 'from the parsed arrays: the pfn bookkeeping (resolve) and the allocator work together',
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
    const book = await runChild<number[]>(SELF, 'childResolve', { mode: 'lazy', limit, reps } satisfies ReplayArg);
    out.push(
      result('resolve alone (TraceResolver: frees matched to allocations, no allocator)', 'events/s', book, {
        notes:
          'the trace-side bookkeeping (pfn direct map, cover filter, slot recycling); `vmphys replay` counts it in parseSeconds',
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
