/**
 * A reproducible fragmented state: a seeded generator that drives a started machine to a target
 * unusable free space index at the superpage order, so experiments can start from the same state
 * (save it with src/core/snapshot.ts). Or replay a trace prefix (`fragmentByTrace`). Owned by the
 * lab; allocates and frees through the core's index API.
 *
 * The generator: drain the lazy pool (the state is then independent of drain policies), take
 * every free page as order-0 allocations in pools DEFAULT and DIRECT (a seeded coin per page),
 * give back a seeded random `freeFraction` of them one page at a time (superpage frames are then
 * almost never whole: U_9 ≈ 1), then give back every held page of seeded random superpage frames,
 * one frame at a time, until U_9 ≤ target. The pages still held stay allocated in the state.
 */
import { allocPagesIdx, freeIdx } from '../core/buddy.js';
import { RangeArgError } from '../core/errors.js';
import { Pool } from '../core/params.js';
import { paOf } from '../core/segments.js';
import type { VmPhys } from '../core/vmphys.js';
import type { TraceEvents } from '../trace/parse.js';
import { TraceReplayer } from '../trace/replay.js';
import { orderCounts } from './fragmentation.js';
import { fragStats } from './metrics.js';
import { superpageOrder } from './source.js';

/** Options of `fragment`. */
export interface FragmentOptions {
  /** Target U at the superpage order, in (0, 1] (default 0.8). */
  target?: number;
  /** Seed of the generator (default 1). */
  seed?: number;
  /** Fraction of the pages given back at random before whole frames are (default 0.5). */
  freeFraction?: number;
}

/** What `fragment` did. */
export interface FragmentReport {
  seed: number;
  target: number;
  freeFraction: number;
  /** U_9 and S_9 reached, free and held pages. */
  unusable: number;
  suitable: number;
  freePages: number;
  heldPages: number;
}

/** mulberry32: a small seeded PRNG (uniform in [0, 1)). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Drive `vm` (started) to U_9 ≤ target as the file comment says; deterministic in the seed. */
export function fragment(vm: VmPhys, opts: FragmentOptions = {}): FragmentReport {
  const target = opts.target ?? 0.8;
  const seed = opts.seed ?? 1;
  const freeFraction = opts.freeFraction ?? 0.5;
  if (!(target > 0 && target <= 1)) throw new RangeArgError('ETARGET', `target U_9 ${target} is outside (0, 1]`);
  if (!(freeFraction > 0 && freeFraction < 1))
    throw new RangeArgError('ETARGET', `free fraction ${freeFraction} is outside (0, 1)`);
  if (!Number.isInteger(seed)) throw new RangeArgError('ETARGET', `seed ${seed} is not an integer`);
  const s = vm.state;
  while (!vm.drainStep(1 << 20)) {}
  const rand = rng(seed);
  const sp = Math.min(superpageOrder(vm.profile), vm.maxOrder);
  // 1. Take every page; remember its pool.
  const held: number[] = [];
  const pools: number[] = [];
  for (;;) {
    const pool = rand() < 0.5 ? Pool.DEFAULT : Pool.DIRECT;
    let m = -1;
    for (let d = 0; d < vm.ndomains && m < 0; d++) m = allocPagesIdx(s, d, pool, 0);
    if (m < 0) break;
    held.push(m);
    pools.push(pool);
  }
  const live = new Uint8Array(vm.totalPages).fill(0);
  const poolOf = new Uint8Array(vm.totalPages);
  for (let i = 0; i < held.length; i++) {
    live[held[i]] = 1;
    poolOf[held[i]] = pools[i];
  }
  // 2. Give back a random fraction, page by page (Fisher-Yates order).
  for (let i = held.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = held[i];
    held[i] = held[j];
    held[j] = t;
  }
  const nFree = Math.floor(held.length * freeFraction);
  for (let i = 0; i < nFree; i++) {
    freeIdx(s, held[i], poolOf[held[i]], 0);
    live[held[i]] = 0;
  }
  // 3. Give back whole frames until the target is reached.
  const u = () => fragStats(orderCounts(vm)).unusable[sp];
  // Superpage frames by physical address: frame f = pa / 2^(sp + PAGE_SHIFT); pages bucketed.
  const total = vm.totalPages;
  const fid = new Int32Array(total);
  let nf = 0;
  const frameBytes = vm.pageSize * 2 ** sp;
  for (let m = 0; m < total; m++) {
    fid[m] = Math.floor(paOf(s, m) / frameBytes);
    if (fid[m] + 1 > nf) nf = fid[m] + 1;
  }
  const start = new Int32Array(nf + 1);
  for (let m = 0; m < total; m++) start[fid[m] + 1]++;
  for (let f = 0; f < nf; f++) start[f + 1] += start[f];
  const pos = start.slice(0, nf);
  const byFrame = new Int32Array(total);
  for (let m = 0; m < total; m++) byFrame[pos[fid[m]]++] = m;
  const frames: number[] = [];
  for (let f = 0; f < nf; f++) if (start[f + 1] > start[f]) frames.push(f);
  for (let i = frames.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = frames[i];
    frames[i] = frames[j];
    frames[j] = t;
  }
  for (let k = 0; k < frames.length && u() > target; k++)
    for (let i = start[frames[k]]; i < start[frames[k] + 1]; i++) {
      const m = byFrame[i];
      if (live[m] === 1) {
        freeIdx(s, m, poolOf[m], 0);
        live[m] = 0;
      }
    }
  const st = fragStats(orderCounts(vm));
  let heldPages = 0;
  for (let m = 0; m < live.length; m++) heldPages += live[m];
  return {
    seed,
    target,
    freeFraction,
    unusable: st.unusable[sp],
    suitable: st.suitable[sp],
    freePages: st.freePages,
    heldPages,
  };
}

/** Replay the first `events` events of a trace into `vm` (its blocks stay held); returns the replayer. */
export function fragmentByTrace(vm: VmPhys, ev: TraceEvents, events: number): TraceReplayer {
  const r = new TraceReplayer(vm, { sampleEvery: 0 });
  r.run(ev.op, ev.pfn, ev.order, ev.flags, 0, Math.min(events, ev.count));
  return r;
}
