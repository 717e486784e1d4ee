/**
 * Suite `replay`: the Linux trace (data/traces/linux-6.18-mixed-B.csv.xz)
 * pre-parsed into memory and resolved (frees matched to allocations, src/trace/resolve.ts), then
 * replayed by `TraceReplayer` (src/trace/replay.ts) on the 128 GiB Firecracker map in lazy and
 * eager mode — events/s of allocator work, the figure FreeBSD's vm_phys.c (-O2, same trace
 * pre-parsed) reaches at 46 M/s lazy and 36 M/s eager — and end to end (resolve + replay from
 * the parsed arrays). Also: the parser's throughput, resolving alone (no allocator), and the same
 * trace through every peer (shared with the `peers` suite). Writes the free-block histogram of
 * each mode to bench/results/replay-histogram-<mode>.svg. Owned by the benchmark work.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildMachine } from '../../src/boot/startup.js';
import { histogramSvg } from '../../src/cli/replay.js';
import { amd64 } from '../../src/core/params.js';
import { parseTrace, TraceFlag } from '../../src/trace/parse.js';
import { type FreeHistogram, TraceReplayer } from '../../src/trace/replay.js';
import {
  newResolvedEvents,
  R_ALLOC,
  R_FREE,
  R_LOST,
  R_SKIP,
  R_SPLIT,
  type ResolvedEvents,
  splitPieces,
  TraceResolver,
} from '../../src/trace/resolve.js';
import { FifoBuddy } from '../peers/fifo-buddy.js';
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
  /** events / seconds of the same resolved trace through the minimal FIFO buddy (reference). */
  fifo: number[];
  fifoFailed: number;
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

/** The shared trace pre-parsed (cached) and its first `a.limit` events (0: all) resolved once. */
async function resolvedTrace(a: ReplayArg) {
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
  return { ev, n, resolved };
}

/**
 * Child: resolve the pre-parsed trace once (matching frees to allocations depends on the trace
 * alone), then per repetition replay it on a fresh machine (timed: the allocator work), and
 * resolve + replay it from the parsed arrays on another fresh machine (timed: end to end).
 * The two orders alternate so that the machine's drift hits both alike.
 */
export async function childReplay(a: ReplayArg): Promise<ReplayOut> {
  const { ev, n, resolved } = await resolvedTrace(a);
  let last: TraceReplayer | null = null;
  const endToEnd: number[] = [];
  const fifo: number[] = [];
  let fifoFailed = 0;
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
      const f = replayFifo(new FifoBuddy(vm.totalPages), resolved);
      fifo.push(f.rate);
      fifoFailed = f.failed;
      return n / s;
    },
    { reps: a.reps, warmup: 2 },
  );
  const rp = last as unknown as TraceReplayer;
  const c = rp.counts();
  return {
    samples: r.samples,
    endToEnd: endToEnd.slice(2),
    fifo: fifo.slice(2),
    fifoFailed,
    events: n,
    slots: resolved.slots,
    failedAllocs: c.failedAllocs,
    skippedFrees: c.skippedFrees,
    lostFrees: c.lostFrees,
    heldPages: c.heldPages,
    histogram: rp.histogram(),
  };
}

/**
 * The resolved trace through `FifoBuddy` with the replayer's rules (same kinds, slots and split
 * pieces; pool DEFAULT = 0 for movable requests, 1 otherwise; no free lists). Returns events/s.
 */
function replayFifo(b: FifoBuddy, r: ResolvedEvents): { rate: number; failed: number } {
  const sv = new Int32Array(2 * Math.max(1, r.slots)).fill(-1);
  const { kind, slot, order, flags, aux } = r;
  const n = r.count;
  let ax = 0;
  let failed = 0;
  const release = (s: number) => {
    const idx = sv[2 * s];
    if (idx < 0) return;
    sv[2 * s] = -1;
    b.free(idx, sv[2 * s + 1] >> 4, sv[2 * s + 1] & 15);
  };
  const alloc = (s: number, o: number, fl: number) => {
    const pool = (fl & TraceFlag.MOVABLE) !== 0 ? 0 : 1;
    const idx = b.alloc(pool, o);
    if (idx < 0) failed++;
    sv[2 * s] = idx;
    sv[2 * s + 1] = o | (pool << 4);
  };
  const t0 = performance.now();
  for (let j = 0; j < n; j++) {
    const k = kind[j];
    if (k === R_FREE) release(slot[j]);
    else if (k === R_ALLOC) alloc(slot[j], order[j], flags[j]);
    else if (k === R_SKIP) continue;
    else if ((k & ~R_LOST) === R_ALLOC) {
      release(slot[j]);
      alloc(slot[j], order[j], flags[j]);
    } else if (k === R_SPLIT) {
      const s = slot[j];
      const idx = sv[2 * s];
      const info = sv[2 * s + 1];
      const off = aux[ax++];
      sv[2 * s] = -1;
      splitPieces(info & 15, off, order[j], (pOff, pk) => {
        const ps = aux[ax++];
        sv[2 * ps] = idx < 0 ? -1 : idx + pOff;
        sv[2 * ps + 1] = (info & ~15) | pk;
      });
      if (idx >= 0) b.free(idx + off, info >> 4, order[j]);
    } else if ((k & ~R_LOST) !== 0) {
      if ((k & R_LOST) !== 0) release(slot[j]);
      failed++; // too large
    }
  }
  return { rate: n / ((performance.now() - t0) / 1000), failed };
}

/**
 * The reference FIFO buddy in C (bench/peers/fifo-buddy.c, compiled here with `cc -O2` when a C
 * compiler exists) over the same resolved trace, `reps` repetitions in one process: the native
 * rate of the same queue discipline on this machine, in this run. null when there is no compiler.
 */
export async function childNativeFifo(a: ReplayArg): Promise<{ samples: number[]; cc: string } | null> {
  const { n, resolved: r } = await resolvedTrace(a);
  // The C version replays allocations, frees and lost frees only: a trace with split frees or
  // too-large orders would not be the same work, so it gets no native row.
  for (let j = 0; j < n; j++) if ((r.kind[j] & ~R_LOST) > R_FREE) return null;
  const dir = mkdtempSync(join(tmpdir(), 'vmphys-fifo-'));
  try {
    const exe = join(dir, 'fifo-buddy');
    const src = join(repoRoot(), 'bench', 'peers', 'fifo-buddy.c');
    const cc = spawnSync('cc', ['-O2', '-o', exe, src], { encoding: 'utf8' });
    if (cc.error || cc.status !== 0) return null;
    const version = spawnSync('cc', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? 'cc';
    const file = join(dir, 'trace.bin');
    writeFileSync(
      file,
      Buffer.concat([
        Buffer.from(new Int32Array([n, r.slots]).buffer),
        Buffer.from(r.kind.buffer, 0, n),
        Buffer.from(r.order.buffer, 0, n),
        Buffer.from(r.flags.buffer, 0, n),
        Buffer.from(r.slot.buffer, 0, n * 4),
      ]),
    );
    const pages = buildMachine(undefined, 'lazy').totalPages;
    const run = spawnSync(exe, [file, String(pages), String(a.reps + 1)], { encoding: 'utf8' });
    if (run.status !== 0) return null;
    const samples = run.stdout.trim().split('\n').map(Number).slice(1); // the first is a warm-up
    return { samples, cc: version };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
        result(`reference: minimal FIFO buddy, same resolved trace (${mode} run)`, 'events/s', r.fifo, {
          notes:
            `bench/peers/fifo-buddy.ts: vm_phys's queue discipline alone (tail insert, head removal, buddy merge; one flat range, two pools, no segments, free lists or lazy runs), ${r.fifoFailed} failed allocations; ` +
            'run in the same child right after each vmphys repetition, so the two see the same machine: what this data structure costs in JavaScript here',
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
    const native = await runChild<{ samples: number[]; cc: string } | null>(SELF, 'childNativeFifo', {
      mode: 'lazy',
      limit,
      reps,
    } satisfies ReplayArg);
    if (native !== null)
      out.push(
        result('reference: the same minimal FIFO buddy in C (-O2), same resolved trace', 'events/s', native.samples, {
          notes: `bench/peers/fifo-buddy.c compiled in this run (${native.cc}); the JavaScript of bench/peers/fifo-buddy.ts line for line, calloc'd memory. What native code does with this data structure on this machine: the gap to the JavaScript reference above is the language, not vmphys`,
        }),
      );
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
