/**
 * Replaying a Linux page-allocator trace (see data/traces/README.md) through vmphys.
 * Others call it through `replayTrace` and `TraceReplayer`; it replays into a machine it is
 * given (boot/startup.ts's `buildMachine` builds them) and knows nothing of memory maps.
 *
 * What a replay does: every traced allocation allocates a block of the same order from our
 * allocator, every traced free frees the matching part of what we allocated for it. We do not
 * try to reproduce Linux's choice of pfn; the traced pfn is only a key. Two stages: the
 * resolver (src/trace/resolve.ts, with the pfn bookkeeping of src/trace/book.ts) matches every
 * free to the traced allocation it releases, which depends on the trace alone, and names each
 * live traced block by a small recycled slot; the replay proper (`TraceReplayer.replay`) is the
 * allocator work: per event a kind byte, a slot, and a call into the core.
 *
 * Rules (the mapping is also returned as text in every report, `REPLAY_MAPPING`):
 *  - `__GFP_DMA32` → vm_phys_alloc_freelist_pages(0, VM_FREELIST_DMA32, pool, order);
 *    `__GFP_DMA` → VM_FREELIST_LOWMEM (amd64; arm64 has no LOWMEM and uses DMA32); a free list
 *    the machine does not have (e.g. no DMA32 list below 64 GiB on amd64) falls back to
 *    vm_phys_alloc_pages. Everything else → vm_phys_alloc_pages(0, pool, order), which tries
 *    DEFAULT, DMA32, LOWMEM in that order. Migratetype 1 (movable) → pool DEFAULT, others →
 *    DIRECT. Domain 0 first; on a NUMA map the other domains are tried in order on failure.
 *  - A free of (pfn, order) is matched to the live traced allocation that covers it: first the
 *    head at pfn itself, then the heads at pfn aligned down to each larger order up to the
 *    largest order ever allocated in this replay (at most VM_NFREEORDER-1 = 12; Linux uses ≤ 10).
 *    A cheap filter (live blocks of order ≥ 1 counted per 16-page granule) skips those extra
 *    probes when no multi-page block covers pfn's granule. The matching sub-block of ours (same offset
 *    inside our block) is freed with the same pool.
 *  - A free of a part of a block (Linux `split_page` frees high-order blocks page by page)
 *    converts the traced block into buddy pieces: the pieces that remain are entered in the table
 *    as blocks of their own (at most `order` of them), so nothing is ever freed twice.
 *  - A free that no live traced allocation covers (most frees: the trace starts in mid-life), a
 *    free whose pfn is not aligned to its order, or whose order is larger than the covering
 *    allocation, is counted in `skippedFrees` and otherwise ignored.
 *  - An allocation whose head pfn is already live in the table (the trace lost the free in
 *    between: trace B has 4 such pages) first frees our old block; counted in `lostFrees`.
 *  - A failed allocation is counted in `failedAllocs`; later frees of it count as skipped.
 *
 * Hot path: `TraceReplayer.replay` runs module-level functions (`replayRun` and those under it)
 * over typed arrays, so their compiled code serves every machine and replayer of a process; it
 * allocates nothing per event (split frees, which are rare, excepted); it calls the core's unvalidated index-level methods `allocPagesIdx`,
 * `allocFreelistIdx`, `freePagesIdx` and `segOfIdx` (validation is done once here: orders are
 * checked against VM_NFREEORDER by the resolver, and only blocks this replay allocated, each
 * exactly once, are ever freed). `replayTrace` times the two stages apart: `eventsPerSec` counts
 * the replay of resolved chunks, `parseSeconds` includes the resolving (`resolveSeconds`).
 */
import { allocFreelistIdx, allocPagesIdx, freePagesIdx } from '../core/buddy.js';
import { FreeList, Pool } from '../core/params.js';
import { nQueues, qCount } from '../core/queues.js';
import { segOfIdx } from '../core/segments.js';
import type { PhysState } from '../core/state.js';
import type { StartupMode, VmPhys } from '../core/vmphys.js';
import { infoIsPiece, infoOrder, infoPool, infoSeg, infoWord } from './info.js';
import { type ParseTraceOptions, parseTrace, TraceFlag } from './parse.js';
import {
  newResolvedEvents,
  R_ALLOC,
  R_FREE,
  R_LOST,
  R_SKIP,
  R_SPLIT,
  R_TOOBIG,
  type ResolvedEvents,
  TraceResolver,
} from './resolve.js';

import { growSlotTable, splitSlot } from './slots.js';

export { PfnHash, PfnTable, TraceBook } from './book.js';
export { PIECE } from './info.js';

/** The mapping of Linux requests onto vm_phys, as printed in reports. */
export const REPLAY_MAPPING =
  '__GFP_DMA32 -> alloc_freelist_pages(0, DMA32, pool, order); __GFP_DMA -> alloc_freelist_pages(0, LOWMEM, ' +
  'pool, order) (arm64: DMA32); otherwise alloc_pages(0, pool, order); a missing free list falls back to ' +
  'alloc_pages; migratetype 1 (movable) -> pool DEFAULT, others -> pool DIRECT; domain 0 first, other ' +
  'domains on failure; frees map to the same offset inside the covering traced allocation ' +
  '(heads probed at pfn aligned down to each order up to the largest allocated, <= 12); ' +
  'uncovered frees are skipped';

/** The sampled free-block histogram: counts[s][order] = free blocks of that order (all pools). */
export interface FreeHistogram {
  /** VM_NFREEORDER: orders 0 .. orders-1. */
  orders: number;
  /** Events between samples at the end of the replay (doubles when the sample buffer fills). */
  every: number;
  /** Event number (events replayed so far) of each sample. */
  events: number[];
  /** Free blocks per order at each sample. */
  counts: number[][];
}

/** Counters of a replay. */
export interface ReplayCounts {
  events: number;
  allocs: number;
  frees: number;
  /** Frees matched to a traced allocation and performed (whole blocks or parts). */
  matchedFrees: number;
  /** Of those, frees of a part of a traced allocation. */
  splitFrees: number;
  /** Frees that no live traced allocation covers (or misaligned / larger than it): ignored. */
  skippedFrees: number;
  /** Allocations of a head pfn that was still live: the old block was freed first. */
  lostFrees: number;
  failedAllocs: number;
  /** Pages we still hold for live traced allocations. */
  heldPages: number;
  /** Live traced blocks (table entries). */
  heldBlocks: number;
}

/** Options of a `TraceReplayer`. */
export interface ReplayerOptions {
  /** Events between histogram samples (default 16384; 0 disables sampling). */
  sampleEvery?: number;
  /** Bound on the number of samples kept (default 512); the interval doubles when reached. */
  maxSamples?: number;
  /** Cells the pfn table reserves up front (default 2^22, address space only; it grows as needed). */
  tableCapacity?: number;
}

// Counters of a replay, kept in one Float64Array per replayer (`cnt`) so that the hot functions
// below take plain typed arrays and numbers only.
const C_EVENTS = 0;
const C_ALLOCS = 1;
const C_FREES = 2;
const C_MATCHED = 3;
const C_SPLIT = 4;
const C_SKIPPED = 5;
const C_LOST = 6;
const C_FAILED = 7;
const C_HELD_PAGES = 8;
const C_HELD_BLOCKS = 9;
/** Not a counter: the event number of the next histogram sample (Infinity: sampling off). */
const C_NEXT_SAMPLE = 10;
const N_COUNTERS = 11;
// Words of a replayer's machine description (`cfg`, Int32Array): vm_ndomains, the free list that
// `__GFP_DMA` maps to, and whether the machine has that list and the DMA32 list (1) or not (0).
const CFG_NDOMAINS = 0;
const CFG_DMA_LIST = 1;
const CFG_HAS_DMA = 2;
const CFG_HAS_DMA32 = 3;
const N_CFG = 4;

/*
 * The hot path. Module-level functions over a PhysState, typed arrays and numbers: no closures,
 * no per-instance methods or fields, so the compiled code is the same for every machine and
 * every replayer of a process (a new machine or replayer neither deoptimises it nor starts it
 * again in the interpreter). sv is the slot array: per slot s our page index at [2s] (-1:
 * nothing of ours) and the info word at [2s + 1].
 */

/**
 * Replays events [j, end) of a resolved batch while they are plain frees, allocations and
 * skipped frees; returns the index of the first other (rare) event, or end. Does not count
 * events (the caller does, per run).
 */
function replayRun(
  s: PhysState,
  sv: Int32Array,
  cnt: Float64Array,
  cfg: Int32Array,
  kind: Uint8Array,
  slot: Int32Array,
  order: Uint8Array,
  flags: Uint8Array,
  j: number,
  end: number,
): number {
  for (; j < end; j++) {
    const k = kind[j];
    if (k === R_FREE) freeSlot(s, sv, cnt, slot[j]);
    else if (k === R_ALLOC) allocSlot(s, sv, cnt, cfg, slot[j], order[j], flags[j]);
    else if (k === R_SKIP) {
      cnt[C_FREES]++;
      cnt[C_SKIPPED]++;
    } else return j;
  }
  return end;
}

/** A traced allocation of 2^o pages with TraceFlag bits fl into slot sl. */
function allocSlot(
  s: PhysState,
  sv: Int32Array,
  cnt: Float64Array,
  cfg: Int32Array,
  sl: number,
  o: number,
  fl: number,
): void {
  cnt[C_ALLOCS]++;
  const pool = (fl & TraceFlag.MOVABLE) !== 0 ? Pool.DEFAULT : Pool.DIRECT;
  let idx = allocIn(s, cfg, 0, pool, o, fl);
  if (idx < 0) {
    for (let d = 1; d < cfg[CFG_NDOMAINS] && idx < 0; d++) idx = allocIn(s, cfg, d, pool, o, fl);
    if (idx < 0) {
      cnt[C_FAILED]++;
      sv[2 * sl] = -1;
      sv[2 * sl + 1] = o;
      return;
    }
  }
  sv[2 * sl] = idx;
  sv[2 * sl + 1] = infoWord(o, pool, segOfIdx(s, idx));
  cnt[C_HELD_BLOCKS]++;
  cnt[C_HELD_PAGES] += 1 << o;
}

/** Page index of a new block in domain d, or -1. */
function allocIn(s: PhysState, cfg: Int32Array, d: number, pool: number, o: number, fl: number): number {
  if ((fl & (TraceFlag.DMA32 | TraceFlag.DMA)) !== 0) {
    if ((fl & TraceFlag.DMA) !== 0 && cfg[CFG_HAS_DMA] !== 0) return allocFreelistIdx(s, d, cfg[CFG_DMA_LIST], pool, o);
    if ((fl & TraceFlag.DMA32) !== 0 && cfg[CFG_HAS_DMA32] !== 0)
      return allocFreelistIdx(s, d, FreeList.DMA32, pool, o);
  }
  return allocPagesIdx(s, d, pool, o);
}

/** A traced free of the whole block in slot sl. */
function freeSlot(s: PhysState, sv: Int32Array, cnt: Float64Array, sl: number): void {
  cnt[C_FREES]++;
  const idx = sv[2 * sl];
  if (idx < 0) {
    // Its allocation failed: nothing of ours to free.
    cnt[C_SKIPPED]++;
    return;
  }
  const info = sv[2 * sl + 1];
  cnt[C_MATCHED]++;
  if (infoIsPiece(info)) cnt[C_SPLIT]++;
  releaseSlot(s, sv, cnt, sl, idx, info);
}

/** Give our block in slot sl (page idx, info word) back to the allocator. */
function releaseSlot(s: PhysState, sv: Int32Array, cnt: Float64Array, sl: number, idx: number, info: number): void {
  sv[2 * sl] = -1;
  cnt[C_HELD_BLOCKS]--;
  cnt[C_HELD_PAGES] -= 1 << infoOrder(info);
  freePagesIdx(s, idx, infoPool(info), infoOrder(info), infoSeg(info));
}

/**
 * Replays events into one VmPhys. Feed it parsed event arrays in trace order with `run` (resolve
 * + replay), or resolve with `resolve` and replay with `replay` to time the two apart; read the
 * counters with `counts()` and the histogram with `histogram()`. The machine must be started.
 *
 * Per slot (see src/trace/resolve.ts) it keeps our page index (`slotv`, -1 when the slot holds
 * nothing of ours: freed, or its allocation failed) and an info word (order | pool << 4 |
 * seg << 8 | PIECE). The hot loop (`replayRun` and the functions under it, module-level) reads
 * a kind byte and a slot per event and calls the core's unvalidated index methods; nothing is
 * allocated per event.
 */
export class TraceReplayer {
  readonly vm: VmPhys;
  /** The machine's state: the hot loop calls the buddy engine on it directly. */
  private readonly phys: PhysState;
  /** Matches frees to allocations (the trace-side bookkeeping). */
  readonly resolver: TraceResolver;
  /** The counters (C_* slots). */
  private readonly cnt: Float64Array;
  /** The machine description the hot loop reads (CFG_* words). */
  private readonly cfg: Int32Array;
  /**
   * Per slot s: our page index at [2s] (-1: nothing of ours), the info word at [2s + 1]. One
   * array, so that a free's (cold) slot costs one cache miss, not two.
   */
  private slotv: Int32Array;
  private readonly scratch: ResolvedEvents;
  /** Slots named by any batch replayed so far (slot numbers are below this). */
  private slotHigh: number;
  // Histogram sampling: bounded buffer, decimated when full.
  private sampleEvery: number;
  private readonly maxSamples: number;
  private nSamples: number;
  private readonly sampleEvents: Float64Array;
  private readonly sampleCounts: Int32Array;
  private readonly nOrd: number;

  constructor(vm: VmPhys, opts: ReplayerOptions = {}) {
    this.vm = vm;
    this.phys = vm.state;
    this.resolver = new TraceResolver(vm.maxOrder, opts.tableCapacity);
    this.cnt = new Float64Array(N_COUNTERS);
    const cfg = new Int32Array(N_CFG);
    const dmaList = vm.profile.lowmemBoundary > 0 ? FreeList.LOWMEM : FreeList.DMA32;
    cfg[CFG_NDOMAINS] = vm.ndomains;
    cfg[CFG_DMA_LIST] = dmaList;
    cfg[CFG_HAS_DMA] = vm.flindOf(dmaList) >= 0 ? 1 : 0;
    cfg[CFG_HAS_DMA32] = vm.flindOf(FreeList.DMA32) >= 0 ? 1 : 0;
    this.cfg = cfg;
    this.slotv = new Int32Array(2048).fill(-1);
    this.scratch = newResolvedEvents();
    this.slotHigh = 0;
    const every = opts.sampleEvery ?? 16384;
    this.sampleEvery = every;
    this.maxSamples = Math.max(2, opts.maxSamples ?? 512);
    this.cnt[C_NEXT_SAMPLE] = every > 0 ? 0 : Number.POSITIVE_INFINITY;
    this.nSamples = 0;
    this.nOrd = vm.nOrd;
    this.sampleEvents = new Float64Array(this.maxSamples);
    this.sampleCounts = new Int32Array(this.maxSamples * this.nOrd);
  }

  /** Events replayed so far. */
  get events(): number {
    return this.cnt[C_EVENTS];
  }
  /** Traced allocations replayed so far. */
  get allocs(): number {
    return this.cnt[C_ALLOCS];
  }
  /** Traced frees replayed so far. */
  get frees(): number {
    return this.cnt[C_FREES];
  }
  /** Failed allocations so far. */
  get failedAllocs(): number {
    return this.cnt[C_FAILED];
  }
  /** Pages we hold for live traced allocations. */
  get heldPages(): number {
    return this.cnt[C_HELD_PAGES];
  }
  /** Live traced blocks we hold. */
  get heldBlocks(): number {
    return this.cnt[C_HELD_BLOCKS];
  }

  /** Resolve and replay events [start, end) of parallel parsed arrays. */
  run(op: Uint8Array, pfn: Float64Array, order: Uint8Array, flags: Uint8Array, start: number, end: number): void {
    this.replay(this.resolve(op, pfn, order, flags, start, end));
  }

  /**
   * Match events [start, end) to live traced blocks (this replayer's resolver) into a batch that
   * `replay` consumes next; the batch is reused by the following call unless `out` is given.
   */
  resolve(
    op: Uint8Array,
    pfn: Float64Array,
    order: Uint8Array,
    flags: Uint8Array,
    start: number,
    end: number,
    out: ResolvedEvents = this.scratch,
  ): ResolvedEvents {
    return this.resolver.resolve(op, pfn, order, flags, start, end, out);
  }

  /**
   * Replay a resolved batch: the allocator work. Batches must come in trace order from one
   * resolver (this replayer's, or one that resolved the same trace from its start).
   */
  replay(r: ResolvedEvents): void {
    this.slotv = growSlotTable(this.slotv, r.slots);
    if (r.slots > this.slotHigh) this.slotHigh = r.slots;
    const s = this.phys;
    const sv = this.slotv;
    const cnt = this.cnt;
    const cfg = this.cfg;
    const { kind, slot, order, flags, aux } = r;
    const n = r.count;
    let ax = 0;
    let i = 0;
    while (i < n) {
      // Run up to the next sample point without a per-event sampling test.
      const until = Math.min(n, i + (cnt[C_NEXT_SAMPLE] - cnt[C_EVENTS]));
      let j = replayRun(s, sv, cnt, cfg, kind, slot, order, flags, i, until);
      while (j < until) {
        ax = this.rare(kind[j], slot[j], order[j], flags[j], aux, ax);
        j = replayRun(s, sv, cnt, cfg, kind, slot, order, flags, j + 1, until);
      }
      cnt[C_EVENTS] += until - i;
      i = until;
      if (cnt[C_EVENTS] === cnt[C_NEXT_SAMPLE]) this.sample();
    }
  }

  /** Lost frees, too-large allocations and split frees. Returns the new aux cursor. */
  private rare(k: number, s: number, o: number, fl: number, aux: Int32Array, ax: number): number {
    const sv = this.slotv;
    const cnt = this.cnt;
    if ((k & R_LOST) !== 0) {
      // The trace lost the free of this head: release our old block first.
      const idx = sv[2 * s];
      if (idx >= 0) {
        cnt[C_LOST]++;
        releaseSlot(this.phys, sv, cnt, s, idx, sv[2 * s + 1]);
      }
    }
    switch (k & ~R_LOST) {
      case R_ALLOC:
        allocSlot(this.phys, sv, cnt, this.cfg, s, o, fl);
        return ax;
      case R_TOOBIG:
        cnt[C_ALLOCS]++;
        cnt[C_FAILED]++;
        return ax;
      case R_SPLIT:
        return this.splitFree(s, o, aux, ax);
      default:
        throw new Error(`resolved event kind ${k} is not known`);
    }
  }

  /** Free the order-o part (offset aux[ax]) of the block in slot s; the pieces take their slots. */
  private splitFree(s: number, o: number, aux: Int32Array, ax: number): number {
    const sv = this.slotv;
    const cnt = this.cnt;
    cnt[C_FREES]++;
    const idx = sv[2 * s];
    const info = sv[2 * s + 1];
    const off = aux[ax];
    const a = splitSlot(sv, s, o, aux, ax);
    if (idx < 0) {
      cnt[C_SKIPPED]++;
      return a;
    }
    cnt[C_MATCHED]++;
    cnt[C_SPLIT]++;
    cnt[C_HELD_BLOCKS] += infoOrder(info) - o - 1;
    cnt[C_HELD_PAGES] -= 1 << o;
    freePagesIdx(this.phys, idx + off, infoPool(info), o, infoSeg(info));
    return a;
  }

  /** Record free blocks per order now. */
  sample(): void {
    if (this.nSamples === this.maxSamples) {
      // Keep every other sample and double the interval: memory stays bounded.
      const n = this.nOrd;
      let k = 0;
      for (let i = 1; i < this.nSamples; i += 2, k++) {
        this.sampleEvents[k] = this.sampleEvents[i];
        this.sampleCounts.copyWithin(k * n, i * n, i * n + n);
      }
      this.nSamples = k;
      this.sampleEvery *= 2;
    }
    const base = this.nSamples * this.nOrd;
    const row = this.sampleCounts;
    row.fill(0, base, base + this.nOrd);
    const phys = this.phys;
    const n = this.nOrd;
    for (let i = 0; i < nQueues(phys); i++) row[base + (i % n)] += qCount(phys, i);
    this.sampleEvents[this.nSamples] = this.cnt[C_EVENTS];
    this.nSamples++;
    this.cnt[C_NEXT_SAMPLE] = this.cnt[C_EVENTS] + this.sampleEvery;
  }

  /** The histogram so far (takes a final sample if the last event was not sampled). */
  histogram(): FreeHistogram {
    if (this.sampleEvery > 0 && (this.nSamples === 0 || this.sampleEvents[this.nSamples - 1] !== this.cnt[C_EVENTS])) {
      const next = this.cnt[C_NEXT_SAMPLE];
      this.sample();
      this.cnt[C_NEXT_SAMPLE] = next;
    }
    const events: number[] = [];
    const counts: number[][] = [];
    for (let s = 0; s < this.nSamples; s++) {
      events.push(this.sampleEvents[s]);
      counts.push(Array.from(this.sampleCounts.subarray(s * this.nOrd, (s + 1) * this.nOrd)));
    }
    return { orders: this.nOrd, every: this.sampleEvery, events, counts };
  }

  /** Counters so far. */
  counts(): ReplayCounts {
    const c = this.cnt;
    return {
      events: c[C_EVENTS],
      allocs: c[C_ALLOCS],
      frees: c[C_FREES],
      matchedFrees: c[C_MATCHED],
      splitFrees: c[C_SPLIT],
      skippedFrees: c[C_SKIPPED],
      lostFrees: c[C_LOST],
      failedAllocs: c[C_FAILED],
      heldPages: c[C_HELD_PAGES],
      heldBlocks: c[C_HELD_BLOCKS],
    };
  }

  /**
   * Free every block still held (pages return to the allocator) and forget this replayer's own
   * resolver's live blocks. Batches that came from another resolver: their blocks are freed too,
   * and that resolver is its owner's to clear (or drop) before resolving more for this replayer.
   */
  releaseAll(): void {
    const sv = this.slotv;
    this.forEachHeld((idx, _order, _pool, s) => releaseSlot(this.phys, sv, this.cnt, s, idx, sv[2 * s + 1]));
    this.resolver.clear();
  }

  /**
   * Our block for the live traced block headed by traced pfn `pfn`, or null (none, or it failed).
   * Looks in this replayer's own resolver: batches from another resolver are not known here.
   */
  heldAt(pfn: number): { idx: number; order: number; pool: number } | null {
    const t = this.resolver.book.table;
    const c = t.find(pfn);
    if (c < 0) return null;
    const s = t.addrAt(c);
    const idx = 2 * s < this.slotv.length ? this.slotv[2 * s] : -1;
    const info = this.slotv[2 * s + 1];
    return idx < 0 ? null : { idx, order: infoOrder(info), pool: infoPool(info) };
  }

  /** Calls fn for every block of ours still held: page index, order, pool and its slot. */
  forEachHeld(fn: (idx: number, order: number, pool: number, slot: number) => void): void {
    const n = Math.min(this.slotHigh, this.slotv.length >> 1);
    for (let s = 0; s < n; s++) {
      const idx = this.slotv[2 * s];
      if (idx >= 0) fn(idx, infoOrder(this.slotv[2 * s + 1]), infoPool(this.slotv[2 * s + 1]), s);
    }
  }
}

/** Options of `replayTrace`. */
export interface ReplayOptions extends ReplayerOptions {
  /** Builds the started machine to replay into (timed as setupSeconds). */
  build: () => VmPhys;
  /** Name of the map for the report (default 'firecracker-128g'). */
  mapName?: string;
  /** Start-up mode the machine was built with, for the report (default lazy). */
  mode?: StartupMode;
  /** Stop after this many events. */
  limit?: number;
  /** Parser options (chunk size, xz command). */
  parse?: Omit<ParseTraceOptions, 'limit'>;
  /** Run `verify(vm)` from src/core/verify.ts at the end if that module exists (default true). */
  verify?: boolean;
  /** Called with the machine after the replay (before it is dropped), e.g. for extra checks. */
  onDone?: (vm: VmPhys, replayer: TraceReplayer) => void;
}

/** What `replayTrace` returns (also the `vmphys replay --json` object). */
export interface ReplayReport extends ReplayCounts {
  file: string;
  map: string;
  mode: StartupMode;
  /** Events per second of allocator work: events / replaySeconds. */
  eventsPerSec: number;
  /** Seconds spent replaying resolved chunks: allocator calls and the per-slot arrays only. */
  replaySeconds: number;
  /**
   * Seconds of the streaming loop not spent replaying: reading, decompressing, parsing, and
   * resolving (matching each free to its traced allocation, src/trace/resolve.ts).
   */
  parseSeconds: number;
  /** The part of parseSeconds spent resolving. */
  resolveSeconds: number;
  /** Seconds to build and start the machine. */
  setupSeconds: number;
  /** Free pages (all pools) before the first and after the last event. */
  freePagesBefore: number;
  freePagesAfter: number;
  /** freePagesBefore − heldPages === freePagesAfter (page conservation). */
  conserved: boolean;
  /** 'ok', 'skipped (…)' or the error message of verify(vm). */
  verify: string;
  mapping: string;
  histogram: FreeHistogram;
}

/** Free pages of every pool, from the queue counts. */
export function freePages(vm: VmPhys): number {
  const s = vm.state;
  const n = vm.nOrd;
  let total = 0;
  for (let i = 0; i < nQueues(s); i++) total += qCount(s, i) * 2 ** (i % n);
  return total;
}

/**
 * Run `verify(vm, { heldPages })` from src/core/verify.ts when that module exists (heldPages: the
 * pages the caller still holds, for its conservation check). Returns 'ok', a 'skipped' note when
 * the module is absent, or throws what verify throws.
 */
export async function verifyIfAvailable(vm: VmPhys, heldPages?: number): Promise<string> {
  const spec = '../core/verify.js';
  type Verify = (vm: VmPhys, opts?: { heldPages?: number }) => unknown;
  let mod: { verify?: Verify };
  try {
    mod = (await import(spec)) as { verify?: Verify };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') return 'skipped (src/core/verify.ts not present)';
    throw e;
  }
  if (typeof mod.verify !== 'function') return 'skipped (src/core/verify.ts has no verify export)';
  mod.verify(vm, { heldPages });
  return 'ok';
}

/**
 * Stream a trace file (plain, .gz or .xz) through a fresh machine. Memory is bounded by one
 * parsed chunk, the pfn table (live traced blocks) and the bounded histogram — not by the
 * trace's length. Parse errors propagate as TraceParseError.
 */
export async function replayTrace(file: string, opts: ReplayOptions): Promise<ReplayReport> {
  const mode = opts.mode ?? 'lazy';
  const t0 = performance.now();
  const vm = opts.build();
  const setupSeconds = (performance.now() - t0) / 1000;
  const replayer = new TraceReplayer(vm, opts);
  const freePagesBefore = freePages(vm);
  let replayMs = 0;
  let resolveMs = 0;
  const tStream = performance.now();
  for await (const c of parseTrace(file, { ...opts.parse, limit: opts.limit })) {
    const t = performance.now();
    const batch = replayer.resolve(c.op, c.pfn, c.order, c.flags, 0, c.count);
    const t1 = performance.now();
    replayer.replay(batch);
    replayMs += performance.now() - t1;
    resolveMs += t1 - t;
  }
  const streamMs = performance.now() - tStream;
  const counts = replayer.counts();
  const freePagesAfter = freePages(vm);
  let verify = 'skipped (disabled)';
  if (opts.verify !== false) {
    try {
      verify = await verifyIfAvailable(vm, counts.heldPages);
    } catch (e) {
      verify = `FAILED: ${(e as Error).message}`;
    }
  }
  opts.onDone?.(vm, replayer);
  const replaySeconds = replayMs / 1000;
  return {
    file,
    map: opts.mapName ?? 'firecracker-128g',
    mode,
    ...counts,
    eventsPerSec: replaySeconds > 0 ? counts.events / replaySeconds : 0,
    replaySeconds,
    parseSeconds: (streamMs - replayMs) / 1000,
    resolveSeconds: resolveMs / 1000,
    setupSeconds,
    freePagesBefore,
    freePagesAfter,
    conserved: freePagesBefore - counts.heldPages === freePagesAfter,
    verify,
    mapping: REPLAY_MAPPING,
    histogram: replayer.histogram(),
  };
}
