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
import {
  childSamples,
  deoptsPerMachine,
  gc,
  loadTrace,
  machineMarker,
  type Result,
  repeat,
  repoRoot,
  result,
  runChild,
  runChildOutput,
  type Suite,
  sharedTrace,
} from '../util.js';
import { peerTraceResults } from './peers.js';

const SELF = fileURLToPath(import.meta.url);

interface ReplayArg {
  mode: 'lazy' | 'eager';
  /** Events to replay; 0 = the whole trace (JSON has no Infinity). */
  limit: number;
  reps: number;
}

interface ReplayOut {
  /** events / seconds of the first repetition (fresh process, fresh machine). */
  first: number;
  /** Warm-up repetitions run before the steady ones. */
  warmups: number;
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

/** One replay of the resolved trace on a fresh machine: events/s of `TraceReplayer.replay`. */
function replayOnce(mode: 'lazy' | 'eager', resolved: ResolvedEvents, n: number): { rate: number; rp: TraceReplayer } {
  const vm = buildMachine(undefined, mode);
  const rp = new TraceReplayer(vm);
  gc();
  const t0 = performance.now();
  rp.replay(resolved);
  return { rate: n / ((performance.now() - t0) / 1000), rp };
}

/** Warm-up repetitions at most, before the steady ones: until two in a row agree within 5 %. */
const MAX_WARMUP = 12;

/**
 * Child: resolve the pre-parsed trace once (matching frees to allocations depends on the trace
 * alone), then replay it on a fresh machine per repetition (timed: the allocator work). The
 * first repetition (fresh process: the code is cold too) is reported apart; warm-up repetitions
 * follow until the rate is stable (two in a row within 5 %), then `reps` steady ones, each
 * followed by the same resolved trace through the plain JS FIFO buddy, and alternately preceded
 * or followed by resolve + replay from the parsed arrays on another fresh machine (end to end).
 */
export async function childReplay(a: ReplayArg): Promise<ReplayOut> {
  const { ev, n, resolved } = await resolvedTrace(a);
  const first = replayOnce(a.mode, resolved, n).rate;
  let prev = first;
  let warmups = 0;
  while (warmups < MAX_WARMUP) {
    warmups++;
    const r = replayOnce(a.mode, resolved, n).rate;
    if (Math.abs(r - prev) <= 0.05 * Math.max(r, prev)) break;
    prev = r;
  }
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
      const e2e = rep % 2 === 1 ? whole() : 0;
      const one = replayOnce(a.mode, resolved, n);
      last = one.rp;
      endToEnd.push(rep++ % 2 === 1 ? e2e : whole());
      const f = replayFifo(new FifoBuddy(one.rp.vm.totalPages), resolved);
      fifo.push(f.rate);
      fifoFailed = f.failed;
      return one.rate;
    },
    { reps: a.reps, warmup: 0 },
  );
  const rp = last as unknown as TraceReplayer;
  const c = rp.counts();
  return {
    first,
    warmups,
    samples: r.samples,
    endToEnd,
    fifo,
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

/** Child: the first replay in a fresh process on a fresh machine (cold code): events/s. */
export async function childFirst(a: ReplayArg): Promise<number> {
  const { n, resolved } = await resolvedTrace(a);
  return replayOnce(a.mode, resolved, n).rate;
}

/** Machines the deoptimisation check makes in turn. */
const MACHINES = 3;

/**
 * The functions of the replay's hot path (the replayer's loop and the buddy engine under it):
 * their deoptimisations after the first machine are what `childMachines` counts.
 */
const HOT = new Set([
  'replay',
  'replayRun',
  'allocSlot',
  'allocIn',
  'freeSlot',
  'releaseSlot',
  'rare',
  'splitFree',
  'allocPagesIdx',
  'allocPagesIdxRest',
  'allocFreelistIdx',
  'allocFreelistSlow',
  'stealLazy',
  'splitPages',
  'freeIdx',
  'freePagesIdx',
  'freeMerge',
  'qAdd',
  'qAddTail',
  'qAddHead',
  'qRem',
  'qRemLinked',
  'nextOf',
  'prevOf',
  'runOf',
  'segOfIdx',
  'segOfIdxSlow',
  'metaByte',
  'metaOrder',
  'metaPool',
  'metaWithOrder',
  'finishInit',
  'finishInitOnDemand',
  'initPages',
  'noteOnDemand',
  'infoWord',
  'infoOrder',
  'infoPool',
  'infoSeg',
  'infoIsPiece',
]);

/**
 * Child (run with --trace-deopt): MACHINES machines made in turn in one process, the resolved
 * trace replayed once on each; a marker line before each machine lets the parent attribute V8's
 * deoptimisation lines to machines. Returns the rate on each machine.
 */
export async function childMachines(a: ReplayArg): Promise<number[]> {
  const { n, resolved } = await resolvedTrace(a);
  const rates: number[] = [];
  for (let k = 0; k < MACHINES; k++) {
    process.stdout.write(`${machineMarker(k)}\n`);
    rates.push(replayOnce(a.mode, resolved, n).rate);
  }
  process.stdout.write(`${machineMarker(MACHINES)}\n`);
  return rates;
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
    const steady: Record<string, number> = {};
    const jsFifo: Record<string, number> = {};
    for (const mode of ['lazy', 'eager'] as const) {
      const r = await runChild<ReplayOut>(SELF, 'childReplay', { mode, limit, reps } satisfies ReplayArg);
      const main = result(`TraceReplayer.replay (allocator work), ${mode}`, 'events/s', r.samples, {
        goal:
          mode === 'lazy'
            ? `≥ 35 M events/s steady (FreeBSD vm_phys.c -O2: ${NATIVE[mode]}; 35 M on this VM)`
            : `≥ 20 M events/s (FreeBSD vm_phys.c -O2: ${NATIVE[mode]})`,
        notes:
          `steady: after the first repetition and ${r.warmups} warm-up repetitions (until two in a row agree within 5 %); first repetition in this child ${(r.first / 1e6).toFixed(1)} M; ` +
          `128 GiB Firecracker map; ${r.events.toLocaleString('en-US')} events pre-parsed and resolved (${r.slots.toLocaleString('en-US')} slots); ` +
          `${r.failedAllocs} failed allocations, ${r.skippedFrees.toLocaleString('en-US')} skipped frees, ${r.lostFrees} lost frees; ` +
          'index API (allocPagesIdx, freePagesIdx, segOfIdx) + per-slot array; fresh machine per repetition',
      });
      steady[mode] = main.value;
      const fifoRow = result(`reference: minimal FIFO buddy, same resolved trace (${mode} run)`, 'events/s', r.fifo, {
        notes:
          `bench/peers/fifo-buddy.ts: vm_phys's queue discipline alone (tail insert, head removal, buddy merge; one flat range, two pools, no segments, free lists or lazy runs), ${r.fifoFailed} failed allocations; ` +
          'run in the same child right after each steady vmphys repetition, so the two see the same machine: what this data structure costs in JavaScript here',
      });
      jsFifo[mode] = fifoRow.value;
      out.push(
        main,
        result(`TraceReplayer.run (resolve + replay), ${mode}`, 'events/s', r.endToEnd, {
          notes: 'from the parsed arrays: the pfn bookkeeping (resolve) and the allocator work together',
        }),
        fifoRow,
      );
      if (mode === 'lazy') {
        const more = await childSamples(SELF, 'childFirst', { mode, limit, reps } satisfies ReplayArg, quick ? 1 : 4);
        out.push(
          result(
            'TraceReplayer.replay, first repetition (fresh process, fresh machine), lazy',
            'events/s',
            [r.first, ...more],
            {
              goal: '≥ 20 M events/s',
              notes:
                'the first replay a process makes, on a freshly built machine: cold code (interpreter, then optimisation during the run) and first-touch faults of fresh memory; one sample per child process',
            },
          ),
        );
      }
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
    // Three machines in turn in one process: deoptimisations of the hot path after the first.
    const m = await runChildOutput<number[]>(SELF, 'childMachines', { mode: 'lazy', limit, reps } satisfies ReplayArg, [
      '--trace-deopt',
    ]);
    const d = deoptsPerMachine(m.stdout, HOT, MACHINES);
    const later = d.counts.slice(1).reduce((x, y) => x + y, 0);
    out.push(
      result(
        'deoptimisations of hot functions on the 2nd and 3rd machine (three in turn, one process), lazy',
        'deopts',
        [later],
        {
          goal: '≤ 0 deopts',
          notes:
            `V8 --trace-deopt lines (bailouts and code marked for deoptimisation) of the replay loop and the buddy engine under it, per machine: ${d.counts.join(', ')}` +
            (later > 0 ? `; after the first: ${d.what.slice(1).flat().join('; ')}` : '') +
            `; replay rate on machines 1..${MACHINES}: ${m.value.map((x) => `${(x / 1e6).toFixed(1)} M`).join(', ')}`,
        },
      ),
      result('TraceReplayer.replay on three machines in turn (one process, --trace-deopt), lazy', 'events/s', m.value, {
        notes: 'samples in machine order: the first is cold code; the V8 trace printing costs a little',
      }),
    );
    const native = await runChild<{ samples: number[]; cc: string } | null>(SELF, 'childNativeFifo', {
      mode: 'lazy',
      limit,
      reps,
    } satisfies ReplayArg);
    if (native !== null) {
      const c = result(
        'reference: the same minimal FIFO buddy in C (-O2), same resolved trace',
        'events/s',
        native.samples,
        {
          notes: `bench/peers/fifo-buddy.c compiled in this run (${native.cc}); the JavaScript of bench/peers/fifo-buddy.ts line for line, calloc'd memory. What native code does with this data structure on this machine: the gap to the JavaScript reference above is the language, not vmphys`,
        },
      );
      out.push(
        c,
        result('vmphys replay ÷ C FIFO reference (lazy, steady medians, same run)', '×', [steady.lazy / c.value], {
          goal: '≥ 0.5×',
          notes: `TraceReplayer.replay lazy ${(steady.lazy / 1e6).toFixed(1)} M ÷ C ${(c.value / 1e6).toFixed(1)} M events/s; the plain JS FIFO of the same run: ${(jsFifo.lazy / 1e6).toFixed(1)} M (${(jsFifo.lazy / c.value).toFixed(2)}× C)`,
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
