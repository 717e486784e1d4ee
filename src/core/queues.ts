/**
 * Free queues (vm_freelist_add / vm_freelist_rem) and the lazy-run table. The only writer of the
 * queue heads, tails and counts, of the page links and of the runs table; it also writes a
 * page's state byte as a block joins or leaves a queue. Friends read queues through `qHead`,
 * `qNext`, `qCount`, `forEachFreeBlock` and the decoders `orderAt`/`poolAt`.
 *
 * Lazy start-up in O(segments): the max-order chunks in the middle of each free run are not
 * written at all. They form "lazy runs" (table `runs`): a chunk head inside a run whose state
 * byte is still 0 is an implicit LAZYINIT head of order VM_NFREEORDER-1, and a 0 queue link means
 * "the implicit neighbour" (next chunk of the run, or first chunk of the next run on the same
 * queue). Removing a chunk writes its neighbours' links explicitly, so the list stays exact.
 *
 * Link slots are computed as uint32 (`(i << 1) >>> 0`: right for every index < 2^31, where
 * `2 * i` would need an overflow check and `i << 1` alone goes negative from 2^30 on).
 * @internal
 */
import { CTL, RUNF, STAT } from './layout.js';
import { initPage, metaByte, metaOrder, metaPool, metaWithOrder } from './pages.js';
import { Pool } from './params.js';
import { type PhysState, qIndex } from './state.js';

// ------------------------------------------------------------------ reading a queue

/** First entry of queue q, or -1. */
export function qHead(s: PhysState, q: number): number {
  return s.q[s.oHead + q];
}
/** Last entry of queue q, or -1. */
export function qTail(s: PhysState, q: number): number {
  return s.q[s.oTail + q];
}
/** Number of blocks on queue q (lcnt). */
export function qCount(s: PhysState, q: number): number {
  return s.q[s.oCount + q];
}
/** Number of queues (MAXMEMDOM × VM_NFREELIST × VM_NFREEPOOL × VM_NFREEORDER). */
export function nQueues(s: PhysState): number {
  return s.c.nQueues;
}

/** The entry after m on queue q, or -1 (walks must use this: the tail's next is not kept). */
export function qNext(s: PhysState, q: number, m: number): number {
  return m === s.q[s.oTail + q] ? -1 : nextOf(s, m);
}

/** Decoded next link of a queued page (-1 at the end). */
export function nextOf(s: PhysState, idx: number): number {
  const v = s.link[2 * idx];
  if (v > 0) return v - 1;
  if (v < 0) return -1;
  const r = runOf(s, idx);
  if (r < 0) return -1;
  const runs = s.c.runs;
  const b = r * RUNF.SIZE;
  if (idx + s.chunkPages < runs[b + RUNF.END]) return idx + s.chunkPages;
  const nr = runs[b + RUNF.NEXT];
  return nr < 0 ? -1 : runs[nr * RUNF.SIZE + RUNF.START];
}
/** Decoded previous link of a queued page (-1 at the head). */
export function prevOf(s: PhysState, idx: number): number {
  const v = s.link[2 * idx + 1];
  if (v > 0) return v - 1;
  if (v < 0) return -1;
  const r = runOf(s, idx);
  if (r < 0) return -1;
  const runs = s.c.runs;
  const b = r * RUNF.SIZE;
  if (idx - s.chunkPages >= runs[b + RUNF.START]) return idx - s.chunkPages;
  const pr = runs[b + RUNF.PREV];
  return pr < 0 ? -1 : runs[pr * RUNF.SIZE + RUNF.END] - s.chunkPages;
}

/** The lazy run containing idx (binary search, with a one-entry cache), or -1. */
export function runOf(s: PhysState, idx: number): number {
  const runs = s.c.runs;
  const nr = s.c.ctl[CTL.NRUNS];
  if (nr === 0) return -1;
  let r = s.lastRun;
  if (r < nr && runs[r * RUNF.SIZE + RUNF.START] <= idx && idx < runs[r * RUNF.SIZE + RUNF.END]) return r;
  let lo = 0;
  let hi = nr - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (runs[mid * RUNF.SIZE + RUNF.START] <= idx) lo = mid;
    else hi = mid - 1;
  }
  r = lo;
  if (runs[r * RUNF.SIZE + RUNF.START] <= idx && idx < runs[r * RUNF.SIZE + RUNF.END]) {
    s.lastRun = r;
    return r;
  }
  return -1;
}

/** Is idx the head of an implicit (never materialised) lazy max-order chunk? */
export function isImplicitHead(s: PhysState, idx: number): boolean {
  if (s.meta[idx] !== 0) return false;
  const r = runOf(s, idx);
  if (r < 0) return false;
  return (idx - s.c.runs[r * RUNF.SIZE + RUNF.START]) % s.chunkPages === 0;
}

/** The order field of a page (m->order), decoding implicit lazy heads; VM_NFREEORDER if none. */
export function orderAt(s: PhysState, idx: number): number {
  const m = s.meta[idx];
  if (m !== 0) return metaOrder(m);
  return isImplicitHead(s, idx) ? s.maxOrder : s.nOrd;
}
/** The pool field of a page (m->pool); implicit heads and uninitialised pages read LAZYINIT. */
export function poolAt(s: PhysState, idx: number): number {
  return metaPool(s.meta[idx]);
}

// ------------------------------------------------------------------ adding and removing

/** vm_freelist_add: mark idx as a free head of `order` in `pool`, insert at tail or head. */
export function qAdd(s: PhysState, q: number, idx: number, order: number, pool: number, tail: boolean): void {
  if (tail) qAddTail(s, q, idx, order, pool);
  else qAddHead(s, q, idx, order, pool);
}

/**
 * qAdd at the tail (vm_freelist_add(..., tail = 1): every free and split). Small on purpose, so
 * that the compiler inlines it into the free and split paths.
 */
export function qAddTail(s: PhysState, q: number, idx: number, order: number, pool: number): void {
  // No `| 0` on stored sums: a store into an Int32Array truncates, so the compiler adds without
  // overflow checks anyway, and each `| 0` costs inlining budget (see qRemLinked).
  const w = s.q;
  const tq = s.oTail + q;
  s.meta[idx] = metaByte(pool, order);
  const t = w[tq];
  if (t < 0) w[s.oHead + q] = idx;
  else {
    const link = s.link;
    link[(t << 1) >>> 0] = idx + 1;
    link[((idx << 1) | 1) >>> 0] = t + 1;
  }
  w[tq] = idx;
  w[s.oCount + q]++;
}

/** qAdd at the head (vm_freelist_add(..., tail = 0)). */
export function qAddHead(s: PhysState, q: number, idx: number, order: number, pool: number): void {
  const w = s.q;
  const hq = (s.oHead + q) | 0;
  s.meta[idx] = metaByte(pool, order);
  const h = w[hq];
  if (h < 0) w[(s.oTail + q) | 0] = idx;
  else {
    const link = s.link;
    link[(idx << 1) >>> 0] = (h + 1) | 0;
    link[((h << 1) | 1) >>> 0] = (idx + 1) | 0;
  }
  w[hq] = idx;
  const cq = (s.oCount + q) | 0;
  w[cq] = (w[cq] + 1) | 0;
}

/** vm_freelist_rem: unlink idx from queue q; its order becomes VM_NFREEORDER, pool unchanged. */
export function qRem(s: PhysState, q: number, idx: number): void {
  const w = s.q;
  const link = s.link;
  let m = s.meta[idx];
  if (m === 0) {
    // Materialise an implicit lazy chunk head.
    m = metaByte(Pool.LAZYINIT, 0);
    const r = runOf(s, idx);
    if (r >= 0) s.c.runs[r * RUNF.SIZE + RUNF.TOUCHED] = 1;
    s.c.stats[STAT.CHUNKS_MATERIALIZED]++;
    // vm_page_init_page as the boot's look-ahead would have run it (counted, record written).
    initPage(s, idx, Pool.LAZYINIT);
  }
  const hq = s.oHead + q;
  const tq = s.oTail + q;
  const nx = w[tq] === idx ? -1 : nextOf(s, idx);
  const pv = w[hq] === idx ? -1 : prevOf(s, idx);
  if (pv < 0) w[hq] = nx;
  else if (nx >= 0) link[2 * pv] = nx + 1;
  if (nx < 0) w[tq] = pv;
  else if (pv >= 0) link[2 * nx + 1] = pv + 1;
  s.meta[idx] = metaWithOrder(m, s.nOrd);
  w[s.oCount + q]--;
}

/**
 * qRem for a queue below the maximum order: every entry there is materialised and its links
 * are explicit (implicit lazy-run chunks exist only at the maximum order), so the links are read
 * directly, and the new state byte is written without reading the old one (a queued block's
 * byte is metaByte(pool, order); the load would be a cache miss on a FIFO's cold head).
 * Contract: idx is on queue q, which holds pool `pool` at an order < maxOrder.
 */
export function qRemLinked(s: PhysState, q: number, idx: number, pool: number): void {
  // Written for bytecode size: the order-0 allocation and free paths (allocPagesIdx with this,
  // freeIdx with qAddTail) must fit the compiler's cumulative inlining budget together.
  // nx1/pv1 are raw links (page index + 1); 0 stands for "none" here: idx is the tail / the
  // head. The new tail's next and the new head's prev may be written 0: those links are never
  // read (walks stop at the tail; removals test the head first).
  const w = s.q;
  const link = s.link;
  const hq = s.oHead + q;
  const tq = s.oTail + q;
  const i2 = (idx << 1) >>> 0;
  const nx1 = w[tq] === idx ? 0 : link[i2];
  const pv1 = w[hq] === idx ? 0 : link[i2 + 1];
  if (pv1 === 0) w[hq] = nx1 - 1;
  else link[((pv1 - 1) << 1) >>> 0] = nx1;
  if (nx1 === 0) w[tq] = pv1 - 1;
  else link[(((nx1 - 1) << 1) | 1) >>> 0] = pv1;
  s.meta[idx] = metaByte(pool, s.nOrd);
  w[s.oCount + q]--;
}

// ------------------------------------------------------------------ lazy runs

/**
 * Register the max-order chunks [start, end) of a lazy run on queue q (at its tail). Only
 * vm_page_startup adds runs (LAZYINIT is never a caller's pool), before anything is removed.
 */
export function addLazyRun(s: PhysState, q: number, start: number, end: number): void {
  const ctl = s.c.ctl;
  const runs = s.c.runs;
  const w = s.q;
  const r = ctl[CTL.NRUNS];
  if (r >= s.c.maxRuns) {
    // Table full: fall back to explicit chunks (exact, just not O(1)).
    for (let m = start; m < end; m += s.chunkPages) {
      initPage(s, m, Pool.LAZYINIT);
      qAddTail(s, q, m, s.maxOrder, Pool.LAZYINIT);
    }
    return;
  }
  const b = r * RUNF.SIZE;
  runs[b + RUNF.START] = start;
  runs[b + RUNF.END] = end;
  runs[b + RUNF.QUEUE] = q;
  runs[b + RUNF.NEXT] = -1;
  runs[b + RUNF.PREV] = -1;
  ctl[CTL.NRUNS] = r + 1;
  // A look-ahead may have initialised this head; implicit heads must read 0. Only the last
  // look-ahead can have reached it, so no fresh metadata page is read here.
  // Forgetting it un-counts it: it is counted again when it is materialised.
  if (s.lastLookAhead === start && s.meta[start] !== 0) {
    s.meta[start] = 0;
    s.c.stats[STAT.PAGES_INITIALIZED]--;
  }
  const tail = w[s.oTail + q];
  if (tail < 0) {
    w[s.oHead + q] = start;
  } else {
    // The queue's tail is the last chunk of the previous run on this queue (implicit): a tail
    // that ends a run is implicit, and no fresh metadata page needs to be read to know it.
    const pr = runOf(s, tail);
    if (pr >= 0 && runs[pr * RUNF.SIZE + RUNF.END] - s.chunkPages === tail) {
      runs[pr * RUNF.SIZE + RUNF.NEXT] = r;
      runs[b + RUNF.PREV] = pr;
    } else {
      s.link[2 * tail] = start + 1;
      s.link[2 * start + 1] = tail + 1;
    }
  }
  w[s.oTail + q] = end - s.chunkPages;
  w[s.oCount + q] += (end - start) / s.chunkPages;
}

/**
 * Move a whole untouched lazy run that starts at the head `m` of LAZYINIT max-order queue q, if
 * it has at most `budget` chunks, to the tail of the DEFAULT max-order queue of the same plane,
 * still implicit. Max-order blocks never merge, so this is exactly where freeing its chunks one
 * by one would put them. Returns the number of chunks moved (the run is [m, m + n chunks)), 0 if
 * the fast path does not apply. State bytes are not written: the caller initialises them.
 */
export function moveLazyRun(s: PhysState, q: number, m: number, budget: number): number {
  const runs = s.c.runs;
  const link = s.link;
  const w = s.q;
  const r = runOf(s, m);
  if (r < 0) return 0;
  const b = r * RUNF.SIZE;
  const start = runs[b + RUNF.START];
  const end = runs[b + RUNF.END];
  const cp = s.chunkPages;
  const n = (end - start) / cp;
  if (start !== m || runs[b + RUNF.TOUCHED] !== 0 || s.meta[m] !== 0 || n > budget) return 0;
  const last = end - cp;
  // 1. Splice the run off the head of the lazy queue.
  const after = w[s.oTail + q] === last ? -1 : nextOf(s, last);
  w[s.oHead + q] = after; // the new head's prev is never read
  if (after < 0) w[s.oTail + q] = -1;
  w[s.oCount + q] -= n;
  // 2. Append the run, still implicit, to the DEFAULT max-order queue of the same plane.
  const qd = q + (Pool.DEFAULT - Pool.LAZYINIT) * s.nOrd;
  runs[b + RUNF.QUEUE] = qd;
  runs[b + RUNF.TOUCHED] = 2;
  runs[b + RUNF.NEXT] = -1;
  runs[b + RUNF.PREV] = -1;
  const t = w[s.oTail + qd];
  if (t < 0) w[s.oHead + qd] = start;
  else {
    const r0 = runOf(s, t);
    if (
      r0 >= 0 &&
      runs[r0 * RUNF.SIZE + RUNF.QUEUE] === qd &&
      runs[r0 * RUNF.SIZE + RUNF.END] - cp === t &&
      link[2 * t] === 0
    ) {
      runs[r0 * RUNF.SIZE + RUNF.NEXT] = r;
      runs[b + RUNF.PREV] = r0;
      link[2 * start + 1] = 0;
    } else {
      link[2 * t] = start + 1;
      link[2 * start + 1] = t + 1;
    }
  }
  w[s.oTail + qd] = last;
  w[s.oCount + qd] += n;
  return n;
}

/**
 * The LAZYINIT queue walk of vm_phys_lazy_init_domain: the first non-empty LAZYINIT queue of
 * `domain` after queue `after` (-1: from the start), free lists in VM_FREELIST_* order (their
 * flind order), orders 0 up; -1 when there is none. Every walk over lazy blocks (the in-thread
 * drain, the drainer's take, its pre-fault guess) goes through here.
 */
export function nextLazyQueue(s: PhysState, domain: number, after: number): number {
  const nfl = s.c.ctl[CTL.NFREELISTS];
  const w = s.q;
  for (let flind = 0; flind < nfl; flind++) {
    const qbase = qIndex(s, domain, flind, Pool.LAZYINIT, 0);
    if (qbase + s.nOrd <= after) continue;
    for (let oind = 0; oind < s.nOrd; oind++) {
      const q = qbase + oind;
      if (q > after && w[s.oCount + q] !== 0) return q;
    }
  }
  return -1;
}

/** The first non-empty LAZYINIT queue of `domain` in drain order, or -1 (nextLazyQueue from the start). */
export function firstLazyQueue(s: PhysState, domain: number): number {
  return nextLazyQueue(s, domain, -1);
}

/** Order of the blocks on queue q (queues are numbered [domain][flind][pool][order]). */
export function queueOrder(s: PhysState, q: number): number {
  return q % s.nOrd;
}

// ------------------------------------------------------------------ analysis (off the hot path)

/**
 * Visit every free block of queue table [domain][flind][pool], orders 0 up, each queue in queue
 * order: cb(idx, order) with the head's page index. The max-order chunks of lazy runs are
 * reported as they are linked, without materialising them (nothing is written). The callback
 * must not change the allocator. Linear in the number of free blocks; not for hot paths.
 */
export function forEachFreeBlock(
  s: PhysState,
  domain: number,
  flind: number,
  pool: number,
  cb: (idx: number, order: number) => void,
): void {
  for (let o = 0; o < s.nOrd; o++) {
    const q = qIndex(s, domain, flind, pool, o);
    for (let m = qHead(s, q); m >= 0; m = qNext(s, q, m)) cb(m, o);
  }
}

/** Free pages of queue table [domain][flind][pool] (sum of lcnt << order); O(VM_NFREEORDER). */
export function poolPages(s: PhysState, domain: number, flind: number, pool: number): number {
  const base = qIndex(s, domain, flind, pool, 0);
  let n = 0;
  for (let o = 0; o < s.nOrd; o++) n += s.q[s.oCount + base + o] * 2 ** o;
  return n;
}
