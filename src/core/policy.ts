/**
 * Allocation policies: FreeBSD's choices in vm_phys made explicit and named, and the engine that
 * applies a policy to a machine. A policy is data (a plain JSON-able object with a name), so a
 * report can record exactly what ran. Owns the steal counters (allocations served from another
 * pool, per source pool and order; buddy.ts reports its steals here) and the PolicyEngine.
 *
 * FreeBSD's policy (`FREEBSD`) is what buddy.ts does: the engine delegates to it unchanged, so
 * the golden vectors and the order-0 fast paths are untouched. Any other policy runs the engine's
 * own copy of vm_phys_alloc_freelist_pages / vm_phys_split_pages / vm_phys_free_pages with the
 * chosen variation; the choice is made once, when the engine is built, never per call in the core.
 * Who may touch it: the lab (src/lab) and library users; buddy.ts only calls `noteSteal`.
 */
import { allocFreelistIdx, allocPagesIdx, freeMerge, freePagesIdx } from './buddy.js';
import { RangeArgError } from './errors.js';
import { CTL } from './layout.js';
import { lazyInitStep } from './lazy.js';
import { finishInit, noteOnDemand } from './pages.js';
import { Pool } from './params.js';
import {
  firstLazyQueue,
  forEachFreeBlock,
  orderAt,
  poolAt,
  qAddHead,
  qAddTail,
  qHead,
  qRem,
  qRemLinked,
  qTail,
  queueOrder,
} from './queues.js';
import { segOfIdx } from './segments.js';
import { ndomains, type PhysState, qIndex } from './state.js';

/** Where the upper halves of a split block go: FreeBSD's rule, or always head, or always tail. */
export type SplitInsert = 'freebsd' | 'head' | 'tail';
/** Which block of a queue an allocation takes. */
export type BlockChoice = 'head' | 'lowest' | 'lifo';
/** Order in which a steal from another pool searches. */
export type PoolFallback = 'largest' | 'smallest';
/** How LAZYINIT memory reaches DEFAULT during a workload. */
export type DrainPolicy = 'background' | 'eager' | 'never';
/** How order-0 requests reach vm_phys. */
export type Order0Path = 'direct' | 'pcpu';

/**
 * A named allocation policy. Every field is a plain value, so `JSON.stringify(policy)` records it.
 * - split: FreeBSD's rule is tail for vm_phys_split_pages (allocation) and head for the halves
 *   vm_phys_unfree_page and vm_phys_alloc_contig give back; 'head' / 'tail' use one end for the
 *   remainders of every allocation split.
 * - choice: 'head' (TAILQ_FIRST, FreeBSD), 'lowest' (the lowest address on the queue), 'lifo'
 *   (the queue's tail: frees are queued there, so the block freed last is reused first).
 * - fallback: a steal searches from the largest order down (FreeBSD: break up big blocks, keep
 *   the pools apart) or from the requested order up (the smallest block that fits).
 * - maxOrder: the largest block order (VM_NFREEORDER − 1 on FreeBSD); null: the profile's.
 *   Blocks above it are split when the policy is applied, and frees never merge past it.
 * - lazyChunkOrder: the order of LAZYINIT blocks (FreeBSD: the maximum order); null: maxOrder.
 * - drain: 'background' drains `drainBudget` lazy blocks every `drainEvery` events, as the
 *   vmlazyinit thread runs beside the workload; 'eager' drains everything before the first event;
 *   'never' leaves LAZYINIT memory to steals.
 * - order0: 'direct' (vm_phys_alloc_pages) or 'pcpu' (a per-CPU cache filled with
 *   vm_phys_alloc_npages and drained with vm_phys_free_pages in batches of `pcpuBatch`, holding
 *   at most `pcpuHigh` pages, as vm_page_alloc's per-domain page cache does).
 */
export interface Policy {
  name: string;
  split: SplitInsert;
  choice: BlockChoice;
  fallback: PoolFallback;
  maxOrder: number | null;
  lazyChunkOrder: number | null;
  drain: DrainPolicy;
  drainEvery: number;
  drainBudget: number;
  order0: Order0Path;
  pcpuBatch: number;
  pcpuHigh: number;
}

/** FreeBSD's exact behaviour (vm_phys.c with D40403, the vmlazyinit thread in the background). */
export const FREEBSD: Readonly<Policy> = Object.freeze({
  name: 'freebsd',
  split: 'freebsd',
  choice: 'head',
  fallback: 'largest',
  maxOrder: null,
  lazyChunkOrder: null,
  drain: 'background',
  drainEvery: 1024,
  drainBudget: 16,
  order0: 'direct',
  pcpuBatch: 64,
  pcpuHigh: 128,
});

/** The named policies: FreeBSD's and one alternative per choice. */
export const POLICIES: Readonly<Record<string, Readonly<Policy>>> = Object.freeze({
  freebsd: FREEBSD,
  'split-head': Object.freeze({ ...FREEBSD, name: 'split-head', split: 'head' as const }),
  'split-tail': Object.freeze({ ...FREEBSD, name: 'split-tail', split: 'tail' as const }),
  lowest: Object.freeze({ ...FREEBSD, name: 'lowest', choice: 'lowest' as const }),
  lifo: Object.freeze({ ...FREEBSD, name: 'lifo', choice: 'lifo' as const }),
  'smallest-fit': Object.freeze({ ...FREEBSD, name: 'smallest-fit', fallback: 'smallest' as const }),
  'max-order-10': Object.freeze({ ...FREEBSD, name: 'max-order-10', maxOrder: 10 }),
  'lazy-chunk-9': Object.freeze({ ...FREEBSD, name: 'lazy-chunk-9', lazyChunkOrder: 9 }),
  'drain-eager': Object.freeze({ ...FREEBSD, name: 'drain-eager', drain: 'eager' as const }),
  'drain-never': Object.freeze({ ...FREEBSD, name: 'drain-never', drain: 'never' as const }),
  pcpu: Object.freeze({ ...FREEBSD, name: 'pcpu', order0: 'pcpu' as const }),
});

const ENUMS: Record<string, readonly string[]> = {
  split: ['freebsd', 'head', 'tail'],
  choice: ['head', 'lowest', 'lifo'],
  fallback: ['largest', 'smallest'],
  drain: ['background', 'eager', 'never'],
  order0: ['direct', 'pcpu'],
};

function policyError(msg: string): RangeArgError {
  return new RangeArgError('EPOLICY', msg);
}

/**
 * A complete, checked policy from a partial one: missing fields are FreeBSD's, `name` is
 * required when anything differs from FreeBSD. Throws RangeArgError (code EPOLICY) naming the
 * bad field. `maxOrder` / `lazyChunkOrder` are checked against `nOrd` (VM_NFREEORDER) if given.
 */
export function makePolicy(p: Partial<Policy> & Record<string, unknown>, nOrd = 13): Policy {
  if (p === null || typeof p !== 'object' || Array.isArray(p)) throw policyError('a policy must be an object');
  for (const k of Object.keys(p))
    if (!(k in FREEBSD)) throw policyError(`unknown policy field '${k}' (fields: ${Object.keys(FREEBSD).join(', ')})`);
  const out: Policy = { ...FREEBSD, ...p } as Policy;
  if (typeof out.name !== 'string' || out.name === '') throw policyError('a policy needs a non-empty name');
  for (const [k, allowed] of Object.entries(ENUMS)) {
    const v = (out as unknown as Record<string, unknown>)[k];
    if (typeof v !== 'string' || !allowed.includes(v))
      throw policyError(`policy '${out.name}': ${k} must be one of ${allowed.join(', ')}, not ${JSON.stringify(v)}`);
  }
  const ord = (k: 'maxOrder' | 'lazyChunkOrder', lo: number) => {
    const v = out[k];
    if (v !== null && (!Number.isInteger(v) || v < lo || v > nOrd - 1))
      throw policyError(`policy '${out.name}': ${k} must be null or an integer in ${lo}..${nOrd - 1}, not ${v}`);
  };
  ord('maxOrder', 0);
  ord('lazyChunkOrder', 0);
  const max = out.maxOrder ?? nOrd - 1;
  if (out.lazyChunkOrder !== null && out.lazyChunkOrder > max)
    throw policyError(`policy '${out.name}': lazyChunkOrder ${out.lazyChunkOrder} exceeds maxOrder ${max}`);
  for (const k of ['drainEvery', 'drainBudget', 'pcpuBatch', 'pcpuHigh'] as const)
    if (!Number.isInteger(out[k]) || out[k] < 1)
      throw policyError(`policy '${out.name}': ${k} must be a positive integer, not ${out[k]}`);
  if (out.pcpuHigh < out.pcpuBatch)
    throw policyError(`policy '${out.name}': pcpuHigh ${out.pcpuHigh} is below pcpuBatch ${out.pcpuBatch}`);
  return out;
}

/** A named policy (see POLICIES); throws RangeArgError EPOLICY listing the names otherwise. */
export function policyByName(name: string): Policy {
  const p = POLICIES[name];
  if (p === undefined) throw policyError(`unknown policy '${name}' (known: ${Object.keys(POLICIES).join(', ')})`);
  return { ...p };
}

/**
 * True when the policy's allocator choices are FreeBSD's (split, choice, fallback, maxOrder,
 * lazyChunkOrder), so the engine can call buddy.ts directly. Drain and order-0 path are applied
 * around the allocator and do not matter here.
 */
export function isCorePolicy(p: Policy, nOrd: number): boolean {
  const max = p.maxOrder ?? nOrd - 1;
  return (
    p.split === 'freebsd' &&
    p.choice === 'head' &&
    p.fallback === 'largest' &&
    max === nOrd - 1 &&
    (p.lazyChunkOrder ?? max) === max
  );
}

// ------------------------------------------------------------------ steal counters

/** Per machine: steals[srcPool * nOrd + order] = allocations served from another pool. */
const stealTables = new WeakMap<PhysState, Float64Array>();

/**
 * Count one allocation served from pool `srcPool` (not the request's) by removing a block of
 * order `order`. Called by buddy.ts's steal paths and by the engine; never on a fast path.
 */
export function noteSteal(s: PhysState, srcPool: number, order: number): void {
  let t = stealTables.get(s);
  if (t === undefined) {
    t = new Float64Array(s.nPool * s.nOrd);
    stealTables.set(s, t);
  }
  t[srcPool * s.nOrd + order]++;
}

/**
 * The steal counters of a machine: counts[pool][order] = allocations that fell back to a block
 * of that order in that pool (LAZYINIT: lazy memory taken before it was drained; DEFAULT /
 * DIRECT: the other caller pool). A fresh zero table when nothing was stolen.
 */
export function stealCounts(s: PhysState): number[][] {
  const t = stealTables.get(s);
  const out: number[][] = [];
  for (let p = 0; p < s.nPool; p++) {
    const row: number[] = [];
    for (let o = 0; o < s.nOrd; o++) row.push(t === undefined ? 0 : t[p * s.nOrd + o]);
    out.push(row);
  }
  return out;
}

/** Forget a machine's steal counters (a new experiment from a restored state starts at 0). */
export function resetSteals(s: PhysState): void {
  stealTables.get(s)?.fill(0);
}

// ------------------------------------------------------------------ the engine

/**
 * A policy applied to one machine: `alloc`, `allocFreelist`, `free` and `drainStep` on page
 * indices, unvalidated like buddy.ts (callers validate). Building it reshapes the machine once
 * when the policy's maxOrder or lazyChunkOrder is below the profile's: every larger free block is
 * split into blocks of that order (same pool, queued at the tail in address order).
 */
export class PolicyEngine {
  readonly s: PhysState;
  readonly policy: Readonly<Policy>;
  /** The allocator choices are FreeBSD's: alloc/free go straight to buddy.ts. */
  readonly core: boolean;
  /** Largest order a free merges to. */
  readonly maxOrder: number;
  private readonly headSplit: boolean;
  private readonly lowest: boolean;
  private readonly lifo: boolean;
  private readonly smallestFirst: boolean;
  /** choice 'lowest': a min-heap of candidate heads per queue (entries checked when popped). */
  private heaps: Int32Array[] = [];
  private heapLen: Int32Array = new Int32Array(0);

  constructor(s: PhysState, policy: Policy) {
    this.s = s;
    this.policy = Object.freeze(makePolicy({ ...policy }, s.nOrd));
    this.core = isCorePolicy(this.policy, s.nOrd);
    this.maxOrder = this.policy.maxOrder ?? s.maxOrder;
    this.headSplit = this.policy.split === 'head';
    this.lowest = this.policy.choice === 'lowest';
    this.lifo = this.policy.choice === 'lifo';
    this.smallestFirst = this.policy.fallback === 'smallest';
    if (this.core) return;
    const lazyOrder = this.policy.lazyChunkOrder ?? this.maxOrder;
    if (this.maxOrder < s.maxOrder || lazyOrder < this.maxOrder) this.reshape(lazyOrder);
    if (this.lowest) {
      const nq = s.c.nQueues;
      this.heapLen = new Int32Array(nq);
      for (let q = 0; q < nq; q++) this.heaps.push(new Int32Array(0));
      const nfl = s.c.ctl[CTL.NFREELISTS];
      for (let d = 0; d < ndomains(s); d++)
        for (let f = 0; f < nfl; f++)
          for (let p = 0; p < s.nPool; p++)
            forEachFreeBlock(s, d, f, p, (idx, o) => this.push(qIndex(s, d, f, p, o), idx));
    }
  }

  /** Split every free block above maxOrder (LAZYINIT: above lazyOrder) into aligned blocks of it. */
  private reshape(lazyOrder: number): void {
    const s = this.s;
    const nfl = s.c.ctl[CTL.NFREELISTS];
    for (let d = 0; d < ndomains(s); d++)
      for (let f = 0; f < nfl; f++)
        for (let p = 0; p < s.nPool; p++) {
          const cap = p === Pool.LAZYINIT ? lazyOrder : this.maxOrder;
          const base = qIndex(s, d, f, p, 0);
          for (let o = s.nOrd - 1; o > cap; o--) {
            const q = base + o;
            let m: number;
            while ((m = qHead(s, q)) >= 0) {
              qRem(s, q, m);
              for (let k = 0; k < 1 << (o - cap); k++) qAddTail(s, base + cap, m + k * (1 << cap), cap, p);
            }
          }
        }
  }

  /** vm_phys_alloc_pages(domain, pool, order) under the policy: a page index or -1. */
  alloc(domain: number, pool: number, order: number): number {
    if (this.core) return allocPagesIdx(this.s, domain, pool, order);
    for (let fl = 0; fl < this.s.nFl; fl++) {
      const m = this.allocFl(domain, fl, pool, order);
      if (m >= 0) return m;
    }
    return -1;
  }

  /** vm_phys_alloc_freelist_pages(domain, freelist, pool, order) under the policy. */
  allocFreelist(domain: number, freelist: number, pool: number, order: number): number {
    if (this.core) return allocFreelistIdx(this.s, domain, freelist, pool, order);
    return this.allocFl(domain, freelist, pool, order);
  }

  private allocFl(domain: number, freelist: number, pool: number, order: number): number {
    const s = this.s;
    const base = s.flQBase[domain * s.nFl + freelist];
    if (base < 0) return -1;
    const nOrd = s.nOrd;
    const own = base + pool * nOrd;
    for (let oind = order; oind < nOrd; oind++) {
      const m = this.pick(own + oind);
      if (m >= 0) {
        this.take(own + oind, m, oind, pool);
        this.split(m, oind, own, order, pool);
        return m;
      }
    }
    const dfp = s.c.ctl[CTL.DEFAULT_FREEPOOL];
    const first = this.smallestFirst ? order : nOrd - 1;
    const step = this.smallestFirst ? 1 : -1;
    for (let oind = first; oind >= order && oind < nOrd; oind += step)
      for (let pind = dfp; pind < s.nPool; pind++) {
        const q = base + pind * nOrd + oind;
        const m = this.pick(q);
        if (m < 0) continue;
        const t0 = pind === Pool.LAZYINIT ? performance.now() : 0;
        this.take(q, m, oind, pind);
        finishInit(s, m, oind);
        this.split(m, oind, own, order, pool);
        if (pind === Pool.LAZYINIT) noteOnDemand(s, t0, oind);
        noteSteal(s, pind, oind);
        return m;
      }
    return -1;
  }

  /** The block the policy takes from queue q, or -1 (q left unchanged). */
  private pick(q: number): number {
    if (this.lowest) return this.popLowest(q);
    return this.lifo ? qTail(this.s, q) : qHead(this.s, q);
  }

  private take(q: number, m: number, oind: number, pool: number): void {
    if (oind < this.s.maxOrder) qRemLinked(this.s, q, m, pool);
    else qRem(this.s, q, m);
  }

  /** vm_phys_split_pages with the policy's insertion end. */
  private split(m: number, oind: number, qbase: number, order: number, pool: number): void {
    const s = this.s;
    while (oind > order) {
      oind--;
      const b = m + (1 << oind);
      if (this.headSplit) qAddHead(s, qbase + oind, b, oind, pool);
      else qAddTail(s, qbase + oind, b, oind, pool);
      if (this.lowest) this.push(qbase + oind, b);
    }
  }

  /** vm_phys_free_pages(idx, pool, order) in segment seg, merging up to the policy's maxOrder. */
  free(idx: number, pool: number, order: number, seg: number): void {
    const s = this.s;
    if (this.core) {
      freePagesIdx(s, idx, pool, order, seg);
      return;
    }
    const q = freeMerge(s, idx, pool, order, seg, this.maxOrder);
    if (this.lowest) this.push(q, qTail(s, q));
  }

  /**
   * One bounded step of the lazy drain (vm_phys_lazy_init): at most `budget` LAZYINIT blocks
   * moved to DEFAULT. True when nothing is left (vm_default_freepool is then DEFAULT).
   */
  drainStep(budget: number): boolean {
    const s = this.s;
    if (this.core) return lazyInitStep(s, budget);
    let left = budget;
    for (let d = 0; d < ndomains(s) && left > 0; d++) {
      let q: number;
      while (left > 0 && (q = firstLazyQueue(s, d)) >= 0) {
        const m = qHead(s, q);
        const o = queueOrder(s, q);
        qRem(s, q, m);
        finishInit(s, m, o);
        this.free(m, Pool.DEFAULT, o, segOfIdx(s, m));
        left--;
      }
    }
    // Nothing left in any domain: let lazy.ts mark the domains done and move the default pool.
    if (left > 0) return lazyInitStep(s, 1);
    return false;
  }

  // -------------------------------------------------------------- lowest-address heaps

  private push(q: number, idx: number): void {
    let h = this.heaps[q];
    let n = this.heapLen[q];
    if (n === h.length) {
      const g = new Int32Array(Math.max(16, h.length * 2));
      g.set(h);
      this.heaps[q] = h = g;
    }
    let i = n++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p] <= idx) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = idx;
    this.heapLen[q] = n;
  }

  /** The lowest valid head of queue q (stale entries dropped on the way), still queued; -1 if none. */
  private popLowest(q: number): number {
    const s = this.s;
    const h = this.heaps[q];
    const order = queueOrder(s, q);
    const pool = Math.floor(q / s.nOrd) % s.nPool;
    while (this.heapLen[q] > 0) {
      const m = h[0];
      if (orderAt(s, m) === order && poolAt(s, m) === pool) return m;
      this.popTop(q);
    }
    return -1;
  }

  private popTop(q: number): void {
    const h = this.heaps[q];
    const n = --this.heapLen[q];
    const x = h[n];
    let i = 0;
    while (true) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && h[c + 1] < h[c]) c++;
      if (h[c] >= x) break;
      h[i] = h[c];
      i = c;
    }
    h[i] = x;
  }
}
