/**
 * The buddy engine on page indices, unvalidated: vm_phys_alloc_pages, vm_phys_alloc_freelist_pages,
 * vm_phys_alloc_npages, vm_phys_free_pages (merging), vm_phys_enqueue_contig, vm_phys_free_contig
 * and vm_phys_unfree_page. Owns no state: it moves blocks between queues through queues.ts.
 * Callers (the façade, replay, the per-CPU cache, the drainer) have validated the arguments and
 * hold the domain's free lock when sharing across workers.
 *
 * The order-0 paths (allocPagesIdx -> qRemLinked, freePagesIdx -> qAddTail) sit close to the
 * compiler's inlining budget: their fast paths are repeated rather than called, on purpose.
 *
 * Ownership (owner.ts): alloc_npages and unfree_page write OWN(0) per page they hand out; the
 * order-k paths (alloc_pages, alloc_freelist_pages, free_pages) leave records to their callers
 * (the validated façade writes and clears them), so the index API pays nothing for them.
 * Nothing here checks records.
 * @internal
 */
import { CTL } from './layout.js';
import { ownRec } from './owner.js';
import { finishInit, finishInitOnDemand, initPage, metaOrder, metaPool, noteOnDemand } from './pages.js';
import { Pool } from './params.js';
import { noteSteal } from './policy.js';
import { addLazyRun, orderAt, poolAt, qAdd, qAddHead, qAddTail, qHead, qRem, qRemLinked } from './queues.js';
import { pfnLow, segDomain, segEndIdx, segFirst, segFlind, segOfIdx } from './segments.js';
import { type PhysState, qIndex, SEGROW_SIZE } from './state.js';

// ------------------------------------------------------------------ allocation

/** The body of vm_phys_alloc_pages on page indices: free lists in VM_FREELIST_* order; -1 if none. */
export function allocPagesIdx(s: PhysState, domain: number, pool: number, order: number): number {
  // allocFreelistIdx's fast path for free list 0, repeated here rather than called, its queue
  // found with one load (allocQ): the whole order-0 path must fit the compiler's cumulative
  // inlining budget (bytecode size), so every byte here counts.
  // (domain << 2) | pool: ALLOCQ_POOL_SHIFT spelled out (an imported constant costs a load and budget).
  const q = s.allocQ[(domain << 2) | pool] + order;
  if (q >= 0 && order < s.maxOrder) {
    const m = s.q[s.oHead + q];
    if (m >= 0) {
      qRemLinked(s, q, m, pool);
      return m;
    }
  }
  return allocPagesIdxRest(s, domain, pool, order);
}
function allocPagesIdxRest(s: PhysState, domain: number, pool: number, order: number): number {
  for (let fl = 0; fl < s.nFl; fl++) {
    const idx = allocFreelistIdx(s, domain, fl, pool, order);
    if (idx >= 0) return idx;
  }
  return -1;
}

/** The body of vm_phys_alloc_freelist_pages on page indices; -1 if none. */
export function allocFreelistIdx(s: PhysState, domain: number, freelist: number, pool: number, order: number): number {
  const base = s.flQBase[(Math.imul(domain, s.nFl) + freelist) | 0];
  if (base < 0) return -1;
  const own = (base + Math.imul(pool, s.nOrd)) | 0;
  // Fast path, kept small enough for the compiler to inline into callers: a block of exactly
  // this order in the own pool (most order-0 traffic). Below the maximum order every queued
  // block is materialised with explicit links.
  const m = s.q[(s.oHead + own + order) | 0];
  if (m >= 0 && order < s.maxOrder) {
    qRemLinked(s, (own + order) | 0, m, pool);
    return m;
  }
  return allocFreelistSlow(s, base, own, pool, order);
}

/** allocFreelistIdx past its fast path: larger orders of the own pool, then stealing. */
function allocFreelistSlow(s: PhysState, base: number, own: number, pool: number, order: number): number {
  const nOrd = s.nOrd;
  const w = s.q;
  const oh = (s.oHead + own) | 0;
  const maxOrder = s.maxOrder;
  for (let oind = order; oind < nOrd; oind++) {
    const m = w[oh + oind];
    if (m >= 0) {
      if (oind < maxOrder) qRemLinked(s, own + oind, m, pool);
      else qRem(s, own + oind, m);
      splitPages(s, m, oind, own, order, pool);
      return m;
    }
  }
  const dfp = s.c.ctl[CTL.DEFAULT_FREEPOOL];
  for (let oind = maxOrder; oind >= order; oind--) {
    for (let pind = dfp; pind < s.nPool; pind++) {
      const q = base + pind * nOrd + oind;
      const m = w[s.oHead + q];
      if (m >= 0) {
        noteSteal(s, pind, oind);
        if (pind === Pool.LAZYINIT) return stealLazy(s, q, m, oind, own, order, pool);
        qRem(s, q, m);
        finishInit(s, m, oind);
        splitPages(s, m, oind, own, order, pool);
        return m;
      }
    }
  }
  return -1;
}

/**
 * The steal of a lazy block by vm_phys_alloc_freelist_pages: take it, finish its initialisation
 * and split it. Timed as a whole: this is the pause an allocation sees when it has to initialise
 * lazy memory (metadata page faults included).
 */
function stealLazy(s: PhysState, q: number, m: number, oind: number, own: number, order: number, pool: number): number {
  const t0 = performance.now();
  qRem(s, q, m);
  finishInit(s, m, oind);
  splitPages(s, m, oind, own, order, pool);
  noteOnDemand(s, t0, oind);
  return m;
}

/**
 * vm_phys_split_pages: idx heads a removed block of order oind; give back upper halves at
 * decreasing orders to the tails of the queues starting at qbase (pool's [order] row).
 */
function splitPages(s: PhysState, idx: number, oind: number, qbase: number, order: number, pool: number): void {
  while (oind > order) {
    oind--;
    qAddTail(s, qbase + oind, idx + (1 << oind), oind, pool);
  }
}

/**
 * alloc_npages' take from one block of order oind at m, removed from its queue: hand out its pages
 * into ma[i..] (each an order-0 unit with its ownership record) until npages are taken, and give
 * the rest of the block back to `own`'s queues at their tails. Returns the new count i.
 */
function takePages(
  s: PhysState,
  m: number,
  oind: number,
  i: number,
  npages: number,
  ma: Int32Array,
  own: number,
  pool: number,
): number {
  const avail = i + (1 << oind);
  const end = Math.min(npages, avail);
  while (i < end) {
    s.link[(m << 1) >>> 0] = ownRec(0);
    ma[i++] = m++;
  }
  if (i === npages && avail > i) enqRange(s, m, avail - i, own, pool, true, segOfIdx(s, m - 1));
  return i;
}

/**
 * The body of vm_phys_alloc_npages on page indices: up to npages pages (not contiguous), own
 * pool smallest orders first, then stealing largest first. Writes indices to ma; returns the count.
 */
export function allocNpagesIdx(s: PhysState, domain: number, pool: number, npages: number, ma: Int32Array): number {
  const nOrd = s.nOrd;
  let i = 0;
  for (let freelist = 0; freelist < s.nFl; freelist++) {
    const flind = s.c.ctl[CTL.FL_TO_FLIND + freelist];
    if (flind < 0) continue;
    const base = qIndex(s, domain, flind, 0, 0);
    const own = base + pool * nOrd;
    for (let oind = 0; oind < nOrd; oind++) {
      let m: number;
      while ((m = qHead(s, own + oind)) >= 0) {
        qRem(s, own + oind, m);
        i = takePages(s, m, oind, i, npages, ma, own, pool);
        if (i === npages) return npages;
      }
    }
    const dfp = s.c.ctl[CTL.DEFAULT_FREEPOOL];
    for (let oind = s.maxOrder; oind >= 0; oind--) {
      for (let pind = dfp; pind < s.nPool; pind++) {
        const q = base + pind * nOrd + oind;
        let m: number;
        while ((m = qHead(s, q)) >= 0) {
          qRem(s, q, m);
          noteSteal(s, pind, oind);
          finishInitOnDemand(s, m, oind);
          i = takePages(s, m, oind, i, npages, ma, own, pool);
          if (i === npages) return npages;
        }
      }
    }
  }
  return i;
}

// ------------------------------------------------------------------ freeing

/** vm_phys_free_pages on a page index, the segment looked up. */
export function freeIdx(s: PhysState, idx: number, pool: number, order: number): void {
  freePagesIdx(s, idx, pool, order, segOfIdx(s, idx));
}

/**
 * The body of vm_phys_free_pages on a page index in segment seg: merge with free buddies (any
 * pool; lazy buddies are finished first) up to the maximum order, never across the segment's
 * ends, and queue the result at the tail of `pool`.
 */
export function freePagesIdx(s: PhysState, idx: number, pool: number, order: number, seg: number): void {
  // Fast path, small enough to be inlined into callers: the buddy is not a free block of the
  // same order (or lies outside the segment), so the block is queued as it is.
  // Segment row fields by number (SEGROW_SIZE 8; SEGROW: 0 FIRST, 1 END, 2 ADJ, 3 QBASE), as in
  // freeMerge: imported constants would cost this path loads and inlining budget.
  const sh = s.seg;
  const r = seg << 3;
  if (order < s.maxOrder) {
    // The buddy flips bit `order` of the pfn ((idx + adj) has the pfn's low bits), in int32.
    const buddy = (((idx + sh[r + 2]) ^ (1 << order)) - sh[r + 2]) | 0;
    if (buddy >= sh[r] && buddy < sh[r + 1]) {
      const bm = s.meta[buddy];
      if (metaOrder(bm) === order && bm !== 0) {
        freeMerge(s, idx, pool, order, seg);
        return;
      }
    }
  }
  qAddTail(s, sh[r + 3] + pool * s.nOrd + order, idx, order, pool);
}

/**
 * freePagesIdx when the block has a free buddy: merge up, then queue. Also right when no buddy is
 * free (the block is queued as it is), so the policy engine frees through it with its own
 * maxOrder (at most the platform's, the default). Returns the free queue the merged block went
 * to; the block is that queue's tail.
 */
export function freeMerge(
  s: PhysState,
  idx: number,
  pool: number,
  order: number,
  seg: number,
  maxOrder: number = s.maxOrder,
): number {
  const meta = s.meta;
  const r = seg * SEGROW_SIZE;
  const first = s.seg[r];
  const end = s.seg[r + 1];
  const adj = s.seg[r + 2];
  const qbase = s.seg[r + 3];
  const nOrd = s.nOrd;
  while (order < maxOrder) {
    const bit = 1 << order;
    const buddy = ((idx + adj) & bit) !== 0 ? idx - bit : idx + bit;
    if (buddy < first || buddy >= end) break;
    const bm = meta[buddy];
    if (metaOrder(bm) !== order || bm === 0) break;
    const bpool = metaPool(bm);
    // order < maxOrder: the buddy is materialised and linked explicitly.
    qRemLinked(s, qbase + bpool * nOrd + order, buddy, bpool);
    // finish_init only matters for a lazy buddy of order ≥ 1 (it has tail pages).
    if (bpool === Pool.LAZYINIT && order > 0) finishInitOnDemand(s, buddy, order);
    order++;
    if (buddy < idx) idx = buddy;
  }
  const q = qbase + pool * nOrd + order;
  qAddTail(s, q, idx, order, pool);
  return q;
}

/** The body of vm_phys_free_contig: free an arbitrary run, merging only at its two ends. */
export function freeContigIdx(s: PhysState, idx: number, pool: number, npages: number, seg: number): void {
  // lo = pfn; max_order = min(ilog2(lo ^ (lo + npages)), maxOrder); order_start = ffs(lo) - 1.
  const pfn = s.segStart[seg] / s.pageSize + (idx - segFirst(s, seg));
  const lo = pfn;
  const hi = pfn + npages;
  const maxOrder = Math.min(ilog2Xor(lo, hi), s.maxOrder);
  const orderStart = ctz(lo);
  const orderEnd = ctz(hi);
  let mStart = idx;
  let mEnd = idx + npages;
  let headBlock = -1;
  let tailBlock = -1;
  if (orderStart < maxOrder) {
    headBlock = mStart;
    mStart += 1 << orderStart;
  }
  if (orderEnd < maxOrder) {
    mEnd -= 1 << orderEnd;
    tailBlock = mEnd;
  }
  enqueueContigIdx(s, mStart, pool, mEnd - mStart, seg);
  if (headBlock >= 0) freePagesIdx(s, headBlock, pool, orderStart, seg);
  if (tailBlock >= 0) freePagesIdx(s, tailBlock, pool, orderEnd, seg);
}

// ------------------------------------------------------------------ enqueueing runs

/**
 * vm_phys_enqueue_contig(m, pool, npages): free an arbitrary run of segment seg without merging,
 * as maximal aligned blocks, largest in the middle. In LAZYINIT the middle max-order chunks
 * become an implicit lazy run (nothing written per chunk).
 */
export function enqueueContigIdx(s: PhysState, idx: number, pool: number, npages: number, seg: number): void {
  const qbase = qIndex(s, segDomain(s, seg), segFlind(s, seg), pool, 0);
  const end = idx + npages;
  const lo = pfnLow(s, idx, seg);
  if (npages > 0) {
    const diff = (lo ^ (lo + npages - 1)) >>> 0;
    // diff may exceed 32 bits only for runs ≥ 2^31 pages, impossible here.
    if (diff !== 0) {
      const order = Math.min(31 - Math.clz32(diff), s.maxOrder);
      const mask = (1 << order) - 1;
      const lead = ((lo + mask) & ~mask) - lo;
      idx = enqRange(s, idx, lead >>> 0, qbase, pool, true, seg);
    }
  }
  const cp = s.chunkPages;
  if (idx + cp <= end) {
    const nchunks = Math.floor((end - idx) / cp);
    const stop = idx + nchunks * cp;
    if (pool === Pool.LAZYINIT && nchunks > 0) {
      addLazyRun(s, qbase + s.maxOrder, idx, stop);
      lookAhead(s, stop, seg);
      idx = stop;
    } else {
      while (idx + cp <= end) {
        enqChunk(s, qbase, idx, s.maxOrder, pool, true, seg);
        idx += cp;
      }
    }
  }
  enqBeg(s, idx, end - idx, qbase, pool, true, seg);
}

/** enq_chunk's look-ahead: initialise the LAZYINIT page at nx (just after a chunk) in its segment. */
function lookAhead(s: PhysState, nx: number, seg: number): void {
  if (nx < segEndIdx(s, seg)) {
    initPage(s, nx, Pool.LAZYINIT);
    s.lastLookAhead = nx;
  }
}

/** vm_phys_enq_chunk: add, and for LAZYINIT initialise the page just after the chunk. */
function enqChunk(s: PhysState, qbase: number, idx: number, order: number, pool: number, tail: boolean, seg: number) {
  qAdd(s, qbase + order, idx, order, pool, tail);
  if (pool === Pool.LAZYINIT) lookAhead(s, idx + (1 << order), seg);
}

/** vm_phys_enq_range: [idx, idx+npages) ends a power-of-two set; blocks of increasing size. */
function enqRange(s: PhysState, idx: number, npages: number, qbase: number, pool: number, tail: boolean, seg: number) {
  while (npages > 0) {
    const order = 31 - Math.clz32(npages & -npages);
    enqChunk(s, qbase, idx, order, pool, tail, seg);
    idx += 1 << order;
    npages -= 1 << order;
  }
  return idx;
}

/** vm_phys_enq_beg: [idx, idx+npages) begins a power-of-two set; blocks of decreasing size. */
function enqBeg(s: PhysState, idx: number, npages: number, qbase: number, pool: number, tail: boolean, seg: number) {
  while (npages > 0) {
    const order = 31 - Math.clz32(npages);
    enqChunk(s, qbase, idx, order, pool, tail, seg);
    idx += 1 << order;
    npages -= 1 << order;
  }
}

// ------------------------------------------------------------------ unfree

/**
 * The body of vm_phys_unfree_page on page index m of segment seg (the caller has drained the
 * domain): take the single page out of the free block that holds it, giving back halves at the
 * head of the same pool's queues. False if the page is not free.
 */
export function unfreePageIdx(s: PhysState, m: number, seg: number): boolean {
  const first = segFirst(s, seg);
  const low = pfnLow(s, m, seg);
  let mSet = m;
  let order = 0;
  while (orderAt(s, mSet) === s.nOrd && order < s.maxOrder) {
    order++;
    const h = m - (low & ((1 << order) - 1));
    if (h >= first) mSet = h;
    else return false;
  }
  const so = orderAt(s, mSet);
  if (so < order) return false;
  if (so === s.nOrd) return false;
  const pool = poolAt(s, mSet);
  const qbase = qIndex(s, segDomain(s, seg), segFlind(s, seg), pool, 0);
  order = so;
  qRem(s, qbase + order, mSet);
  while (order > 0) {
    order--;
    const half = mSet + (1 << order);
    let tmp: number;
    if (m < half) tmp = half;
    else {
      tmp = mSet;
      mSet = half;
    }
    qAddHead(s, qbase + order, tmp, order, pool);
  }
  s.link[(m << 1) >>> 0] = ownRec(0);
  return true;
}

/** floor(log2(a XOR b)) for non-negative integers up to 2^53 (a != b). */
function ilog2Xor(a: number, b: number): number {
  const ah = Math.floor(a / 4294967296);
  const bh = Math.floor(b / 4294967296);
  if (ah !== bh) return 32 + 31 - Math.clz32((ah ^ bh) >>> 0);
  return 31 - Math.clz32(((a ^ b) >>> 0) | 0);
}

/** Count of trailing zero bits (ffsll(x) - 1); 64 for x = 0 (FreeBSD's −1 taken as unsigned). */
function ctz(x: number): number {
  if (x === 0) return 64;
  const low = x % 4294967296;
  if (low !== 0) return 31 - Math.clz32(low & -low);
  return 32 + ctz(Math.floor(x / 4294967296));
}
