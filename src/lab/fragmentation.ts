/**
 * Fragmentation of a live allocator: the metrics of ./metrics.ts per domain, free list and pool
 * and in total, and the histogram of free pages per superpage frame. Owned by the fragmentation
 * lab; reads the allocator only through ./source.ts and never changes it.
 */
import { DomainError, PoolError, RangeArgError } from '../core/errors.js';
import type { FreeListId } from '../core/params.js';
import type { VmPhys } from '../core/vmphys.js';
import { zoneName } from './linux.js';
import { type FragStats, fragStats } from './metrics.js';
import { addCounts, forEachFreeBlock, freeListOfFlind, segmentsOf, superpageOrder } from './source.js';

/** Which queues to count: any field left out means "all". */
export interface FragFilter {
  domain?: number;
  /** Created free list index (flind), 0 .. vm.nfreelists−1. */
  flind?: number;
  /** VM_FREEPOOL_* (LAZYINIT 0, DEFAULT 1, DIRECT 2). */
  pool?: number;
}

/** Throws the typed error for a filter field out of range. */
function checkFilter(vm: VmPhys, f: FragFilter): void {
  const bad = (v: number | undefined, n: number): boolean =>
    v !== undefined && (!Number.isInteger(v) || v < 0 || v >= n);
  if (bad(f.domain, vm.ndomains))
    throw new DomainError('EDOMAIN', `domain ${f.domain} is outside 0..${vm.ndomains - 1}`);
  if (bad(f.flind, vm.nfreelists))
    throw new RangeArgError('EFREELIST', `free list index ${f.flind} is outside 0..${vm.nfreelists - 1}`);
  if (bad(f.pool, vm.nPool)) throw new PoolError(`pool ${f.pool} is outside 0..${vm.nPool - 1}`);
}

/**
 * Free blocks per order (n_0 .. n_{VM_NFREEORDER−1}) of the queues the filter selects, into `out`
 * (zeroed first; a new array when omitted). O(domains·lists·pools·orders), no queue walks.
 */
export function orderCounts(vm: VmPhys, filter: FragFilter = {}, out?: Float64Array): Float64Array {
  checkFilter(vm, filter);
  const counts = out ?? new Float64Array(vm.nOrd);
  counts.fill(0);
  if (vm.phase < 1) return counts;
  for (let d = 0; d < vm.ndomains; d++) {
    if (filter.domain !== undefined && filter.domain !== d) continue;
    for (let f = 0; f < vm.nfreelists; f++) {
      if (filter.flind !== undefined && filter.flind !== f) continue;
      for (let p = 0; p < vm.nPool; p++)
        if (filter.pool === undefined || filter.pool === p) addCounts(vm, counts, d, f, p);
    }
  }
  return counts;
}

/** The metrics of the queues the filter selects. */
export function fragStatsOf(vm: VmPhys, filter: FragFilter = {}): FragStats {
  return fragStats(orderCounts(vm, filter));
}

/** One zone (a created free list of one domain), pools summed, or one queue row (one pool). */
export interface ScopeStats {
  domain: number;
  flind: number;
  freeList: FreeListId;
  /** Linux zone name (see ./linux.ts): DMA, DMA32 or Normal. */
  zone: string;
  /** The pool, or −1 for all pools. */
  pool: number;
  stats: FragStats;
}

/** `fragmentation(vm)`: every metric, at every grain. */
export interface FragReport {
  /** Platform profile name. */
  profile: string;
  /** Superpage order (VM_LEVEL_0_ORDER): 9 on amd64 and arm64 with 4 KiB pages. */
  superOrder: number;
  /** All free memory. */
  total: FragStats;
  /** S at the superpage order: free superpage-sized aligned blocks, all queues. */
  superpages: number;
  /** U at the superpage order, all queues. */
  unusableSuper: number;
  /** Per domain, all lists and pools. */
  domains: FragStats[];
  /** Per pool, all domains and lists. */
  pools: FragStats[];
  /** Per (domain, flind), pools summed; flind ascending within each domain. */
  zones: ScopeStats[];
  /** Per (domain, flind, pool). */
  queues: ScopeStats[];
}

/** Every metric of vm now, in total and per domain / free list / pool. O(queues·orders). */
export function fragmentation(vm: VmPhys): FragReport {
  const so = superpageOrder(vm.profile);
  const total = fragStatsOf(vm);
  const domains: FragStats[] = [];
  const pools: FragStats[] = [];
  const zones: ScopeStats[] = [];
  const queues: ScopeStats[] = [];
  for (let d = 0; d < vm.ndomains; d++) domains.push(fragStatsOf(vm, { domain: d }));
  for (let p = 0; p < vm.nPool; p++) pools.push(fragStatsOf(vm, { pool: p }));
  for (let d = 0; d < vm.ndomains; d++)
    for (let f = 0; f < vm.nfreelists; f++) {
      const freeList = freeListOfFlind(vm, f);
      const zone = zoneName(vm, f);
      zones.push({ domain: d, flind: f, freeList, zone, pool: -1, stats: fragStatsOf(vm, { domain: d, flind: f }) });
      for (let p = 0; p < vm.nPool; p++)
        queues.push({
          domain: d,
          flind: f,
          freeList,
          zone,
          pool: p,
          stats: fragStatsOf(vm, { domain: d, flind: f, pool: p }),
        });
    }
  return {
    profile: vm.profile.name,
    superOrder: so,
    total,
    superpages: so < total.orders ? total.suitable[so] : 0,
    unusableSuper: so < total.orders ? total.unusable[so] : 1,
    domains,
    pools,
    zones,
    queues,
  };
}

/** Free pages per superpage frame, as a histogram. */
export interface FrameHistogram {
  /** Superpage order; a frame is 2^superOrder pages, aligned, wholly inside one segment. */
  superOrder: number;
  /** Pages per frame (2^superOrder). */
  framePages: number;
  /** Frames counted. */
  frames: number;
  /** hist[k] = frames with exactly k free pages, k = 0 .. framePages. */
  hist: Float64Array;
  /** Frames with every page free (hist[framePages]). */
  fullFrames: number;
  /** Frames with no free page (hist[0]). */
  emptyFrames: number;
  /** Free pages in the ragged ends of segments (not in any whole frame), left out of hist. */
  outsidePages: number;
}

/**
 * Histogram of free pages per aligned superpage frame ("2 MiB frames" on amd64/arm64-4K) over
 * the segments the filter selects (domain / flind; `pool` counts only that pool's free pages).
 * Walks every free block: O(free blocks + frames). On demand only, never from the series.
 */
export function frameHistogram(vm: VmPhys, filter: FragFilter = {}): FrameHistogram {
  checkFilter(vm, filter);
  const so = superpageOrder(vm.profile);
  const framePages = 2 ** so;
  const frameBytes = framePages * vm.pageSize;
  const segs = segmentsOf(vm);
  // Whole frames per segment: [first, last) frame numbers, and their offset in `free`.
  const first: number[] = [];
  const last: number[] = [];
  const base: number[] = [];
  let frames = 0;
  for (const s of segs) {
    const sel =
      (filter.domain === undefined || filter.domain === s.domain) &&
      (filter.flind === undefined || filter.flind === s.flind);
    const a = Math.ceil(s.start / frameBytes);
    const b = Math.floor(s.end / frameBytes);
    first.push(a);
    last.push(sel ? Math.max(a, b) : a);
    base.push(frames);
    if (sel && b > a) frames += b - a;
  }
  const free = new Float64Array(frames);
  let outsidePages = 0;
  let seg = 0;
  forEachFreeBlock(vm, (d, f, p, o, _idx, pa) => {
    if (filter.domain !== undefined && filter.domain !== d) return;
    if (filter.flind !== undefined && filter.flind !== f) return;
    if (filter.pool !== undefined && filter.pool !== p) return;
    if (!(segs[seg].start <= pa && pa < segs[seg].end)) {
      seg = 0;
      while (seg < segs.length - 1 && segs[seg].end <= pa) seg++;
    }
    const pages = 2 ** o;
    const fr = Math.floor(pa / frameBytes);
    // A free block is aligned to its size: below the superpage order it lies in one frame; at or
    // above, it covers 2^(o − so) whole frames, all inside its segment.
    const nfr = o >= so ? 2 ** (o - so) : 1;
    const per = o >= so ? framePages : pages;
    for (let k = 0; k < nfr; k++) {
      const x = fr + k;
      if (x >= first[seg] && x < last[seg]) free[base[seg] + x - first[seg]] += per;
      else outsidePages += per;
    }
  });
  const hist = new Float64Array(framePages + 1);
  for (let i = 0; i < frames; i++) hist[free[i]]++;
  return {
    superOrder: so,
    framePages,
    frames,
    hist,
    fullFrames: hist[framePages],
    emptyFrames: hist[0],
    outsidePages,
  };
}
