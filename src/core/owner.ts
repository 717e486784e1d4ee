/**
 * Ownership of allocated memory, checked by every free of the validated API in O(1).
 *
 * Record. Each allocated unit carries one record, in the first link word (`link[2 * head]`) of
 * its head page: a word the queues leave unused while a block is off every queue (queue links
 * are page index + 1, 0 or -1; records are ≤ -2). No buffer and no cache line is added: the
 * allocation path has just read that word to unlink the block, and the free path writes the
 * same line to queue it. Records (the codec below):
 *   OWN(k)   an allocated order-k block (alloc_pages, alloc_freelist_pages; one per page for
 *            alloc_npages and unfree_page: order 0)
 *   RUN(k)   an order-k piece of an allocated run (alloc_contig, and the pages of each segment
 *            outside phys_avail, allocated since boot): the run is recorded as its maximal
 *            aligned blocks, largest in the middle (O(log n + n / 2^maxOrder) words)
 *   HELD(k)  an order-k lazy block a drainer has taken off its queue (set by lazyTake under the
 *            lock, before the lock is dropped; cleared by lazyPut)
 *   CACHED   an order-0 page resting in a per-CPU cache (workers/pcpu.ts)
 * Invariant: a page's first link word is a record iff the page heads a current unit; every path
 * that ends a unit (the engine's free, free_contig, lazyPut) overwrites it.
 *
 * Contract of a validated free (`freePages(pa, pool, k)`):
 *   - accepted in O(1) when pa heads an OWN(k)/RUN(k) unit (one word compared);
 *   - accepted in O(VM_NFREEORDER) when [pa, pa + 2^k) is an aligned part of a larger OWN or
 *     RUN unit: the unit is split, the rest stays allocated as units of the same kind (the
 *     buddies of the freed part). FreeBSD's callers do this (a reservation's or a contig run's
 *     pages freed one by one); with `exactFrees` an OWN unit may only be freed whole;
 *   - refused otherwise, with a typed error and no change: EDOUBLEFREE (free, or in a per-CPU
 *     cache), EWRONGORDER (the block covers more than its unit: an order-1 free of an order-0
 *     page; or a part of an OWN unit under exactFrees), EHELD (a page of a block a drainer
 *     holds), ENOTALLOC (never handed out), EALIGN / ESPAN (address arithmetic).
 * `freeContig(pa, pool, n)` accepts a run made of whole units and aligned parts of units (as
 * above, O(1) per unit touched plus O(VM_NFREEORDER) per part) and refuses anything else.
 * Not checked: who frees. A unit freed by another party than the one that allocated it, or a
 * stale address that has since been handed out again as a unit of the same order, is accepted
 * (the allocator records ownership, not owners). The index API (`allocPagesIdx`, `freeIdx`)
 * neither writes nor checks records, so that it costs nothing: a block is freed through the
 * API family that allocated it (a validated free of an index-API block is refused; an index
 * free of a validated block leaves its record, and a later validated free of it is accepted).
 * Writers: the validated façade (OWN on alloc_pages / alloc_freelist_pages, cleared by its
 * frees), buddy.ts (OWN(0) per page of alloc_npages and unfree_page), lazy.ts (HELD, cleared
 * by lazyPut), contig.ts and startup.ts (RUN), workers/pcpu.ts (CACHED), all through the codec
 * here; only the validated frees read records to decide.
 * @internal
 */
import {
  DoubleFreeError,
  HeldError,
  hex,
  MisalignedError,
  NotAllocatedError,
  OrderMismatchError,
  SegmentError,
} from './errors.js';
import { metaOrder } from './pages.js';
import { isImplicitHead, orderAt, runOf } from './queues.js';
import { pa, pfnLow, segEndIdx, segFirst, segOfPa } from './segments.js';
import type { PhysState } from './state.js';

// ------------------------------------------------------------------ the record codec

/** Record of an allocated order-k block (OWN): -2 - k. */
export function ownRec(order: number): number {
  return -2 - order;
}
/** Record of an order-k piece of an allocated run (RUN): -18 - k. */
export function runRec(order: number): number {
  return -18 - order;
}
/** Record of an order-k block a drainer holds (HELD): -34 - k. */
export function heldRec(order: number): number {
  return -34 - order;
}
/** Record of an order-0 page in a per-CPU cache. */
export const CACHED = -50;
/** The first link word of a page that heads no unit (what a free leaves behind). */
export const NO_REC = -1;

/** Is r an OWN or RUN record (an allocated unit)? */
function isUnit(r: number): boolean {
  return r <= -2 && r >= -33;
}
/** Is r an OWN record (an allocated block, not a run piece)? */
function isOwn(r: number): boolean {
  return r <= -2 && r >= -17;
}
/** Order of an OWN, RUN or HELD record. */
function recOrder(r: number): number {
  return (-2 - r) & 15;
}
/** Slot of page idx's first link word. */
function slot(idx: number): number {
  return (idx << 1) >>> 0;
}

/** The record word of page idx. */
export function recAt(s: PhysState, idx: number): number {
  return s.link[slot(idx)];
}

/**
 * Record [from, to) of segment seg as allocated units of kind `base` (ownRec(0) or runRec(0)):
 * its maximal aligned blocks (pfn alignment, capped at the maximum order). O(log n + n / 2^max).
 */
export function markBlocks(s: PhysState, from: number, to: number, seg: number, base: number): void {
  const link = s.link;
  const maxOrder = s.maxOrder;
  let lo = pfnLow(s, from, seg);
  let i = from;
  while (i < to) {
    const left = to - i;
    let o = lo === 0 ? maxOrder : 31 - Math.clz32(lo & -lo);
    const fit = 31 - Math.clz32(Math.min(left, 0x40000000));
    if (fit < o) o = fit;
    if (o > maxOrder) o = maxOrder;
    link[slot(i)] = base - o;
    i += 1 << o;
    lo = (lo + (1 << o)) | 0;
  }
}

/** Mark the order-k block at idx as held by a drainer (lazyTake, lock held). */
export function markHeld(s: PhysState, idx: number, order: number): void {
  s.link[slot(idx)] = heldRec(order);
}

// ------------------------------------------------------------------ validated frees

/** Segment of a page-aligned address, or a typed error naming `what`. */
export function segForFree(s: PhysState, addr: number, what: string): number {
  if (typeof addr !== 'number' || !Number.isSafeInteger(addr) || addr < 0)
    throw new SegmentError('ENOSEG', `${what}: ${describe(addr)} is not an address`);
  // ToInt32 keeps the low 32 bits of any safe integer, so the mask test is exact.
  if ((addr & (s.pageSize - 1)) !== 0) throw new MisalignedError(`${what}: ${hex(addr)} is not page aligned`);
  const seg = segOfPa(s, addr);
  if (seg < 0) throw new SegmentError('ENOSEG', `${what}: ${hex(addr)} lies outside every segment`);
  return seg;
}

/** A bad argument, quoted briefly for a message. */
function describe(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? hex(v) : String(v);
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return typeof v;
}

/**
 * The slow path of a validated order-k free at idx (segment seg), taken when idx does not head
 * an OWN(k)/RUN(k) unit: check alignment and span, then accept an aligned part of a larger unit
 * by splitting it (the record words of the rest are written; the caller then runs the engine's
 * free, which clears idx's word), or throw the error that names the misuse (nothing written).
 */
export function freeSlow(s: PhysState, idx: number, order: number, seg: number, exact: boolean, what: string): void {
  const n = 1 << order;
  if ((pfnLow(s, idx, seg) & (n - 1)) !== 0)
    throw new MisalignedError(`${what}: ${hex(pa(s, idx, seg))} is not aligned to an order-${order} block`);
  if (idx + n > segEndIdx(s, seg))
    throw new SegmentError(
      'ESPAN',
      `${what}: order-${order} block at ${hex(pa(s, idx, seg))} crosses the end of its segment`,
    );
  const r = recAt(s, idx);
  let h = idx;
  if (isUnit(r)) {
    if (recOrder(r) === order) return;
    if (recOrder(r) < order) refuse(s, idx, order, seg, exact, what);
  } else h = enclosing(s, idx, order + 1, seg);
  if (h < 0 || !isUnit(recAt(s, h)) || (exact && isOwn(recAt(s, h)))) refuse(s, idx, order, seg, exact, what);
  const hr = recAt(s, h);
  const base = isOwn(hr) ? ownRec(0) : runRec(0);
  const hend = h + (1 << recOrder(hr));
  s.link[slot(h)] = NO_REC;
  markBlocks(s, h, idx, seg, base);
  markBlocks(s, idx + n, hend, seg, base);
}

/**
 * Check that the run [idx, idx + npages) of segment seg is made of whole units and aligned parts
 * of units (OWN parts refused under `exact`), then (only if all of it passes) end the units'
 * records in the run and record the parts of split units outside it. Throws with nothing
 * written otherwise. O(units + parts × VM_NFREEORDER).
 */
export function freeContigCheck(
  s: PhysState,
  idx: number,
  npages: number,
  seg: number,
  exact: boolean,
  what: string,
): void {
  const end = idx + npages;
  for (let pass = 0; pass < 2; pass++) {
    let i = idx;
    while (i < end) {
      let h = i;
      let r = recAt(s, i);
      if (!isUnit(r)) {
        h = enclosing(s, i, 1, seg);
        if (h < 0 || !isUnit(recAt(s, h))) refuse(s, i, 0, seg, exact, what);
        r = recAt(s, h);
      }
      const hend = h + (1 << recOrder(r));
      const stop = Math.min(hend, end);
      const whole = h === i && hend <= end;
      if (pass === 0) {
        if (!whole && exact && isOwn(r)) refuse(s, i, 0, seg, exact, what);
      } else {
        const base = isOwn(r) ? ownRec(0) : runRec(0);
        s.link[slot(h)] = NO_REC;
        if (!whole) {
          markBlocks(s, h, i, seg, base);
          markBlocks(s, stop, hend, seg, base);
        }
      }
      i = stop;
    }
  }
}

/**
 * The head of a unit or held block of order ≥ from that strictly contains idx (its record's
 * order equals the level it is found at), or -1. O(VM_NFREEORDER).
 */
function enclosing(s: PhysState, idx: number, from: number, seg: number): number {
  const link = s.link;
  const first = segFirst(s, seg);
  const low = pfnLow(s, idx, seg);
  for (let o = from; o <= s.maxOrder; o++) {
    const h = idx - (low & ((1 << o) - 1));
    if (h < first) break;
    if (h === idx) continue;
    const r = link[slot(h)];
    if (r <= -2 && r >= -49 && recOrder(r) === o) return h;
  }
  return -1;
}

/** Throw the typed error that names why an order-k free at idx (segment seg) is refused. */
function refuse(s: PhysState, idx: number, order: number, seg: number, exact: boolean, what: string): never {
  const at = hex(pa(s, idx, seg));
  const r = recAt(s, idx);
  if (r === CACHED) throw new DoubleFreeError(`${what}: page ${at} is already free (it rests in a per-CPU cache)`);
  if (r <= -34 && r >= -49)
    throw new HeldError(`${what}: page ${at} heads an order-${recOrder(r)} block a drainer holds (being initialised)`);
  if (isUnit(r)) {
    if (recOrder(r) > order)
      throw new OrderMismatchError(
        `${what}: page ${at} heads an allocated order-${recOrder(r)} block (free it whole with order ${recOrder(r)})`,
      );
    throw new OrderMismatchError(
      `${what}: page ${at} heads an allocated order-${recOrder(r)} block; an order-${order} free covers pages it does not own`,
    );
  }
  const h = enclosing(s, idx, 1, seg);
  if (h >= 0) {
    const hr = recAt(s, h);
    const ho = recOrder(hr);
    if (hr <= -34)
      throw new HeldError(`${what}: page ${at} lies in the order-${ho} block at ${hex(pa(s, h, seg))} a drainer holds`);
    if (exact)
      throw new OrderMismatchError(
        `${what}: page ${at} lies inside the allocated order-${ho} block at ${hex(pa(s, h, seg))} (free it whole with order ${ho})`,
      );
    throw new OrderMismatchError(
      `${what}: an order-${order} block at ${at} does not fit in the allocated order-${ho} block at ${hex(pa(s, h, seg))}`,
    );
  }
  const m = s.meta[idx];
  if (m !== 0 && metaOrder(m) !== s.nOrd)
    throw new DoubleFreeError(`${what}: page ${at} is already free (head of a free order-${metaOrder(m)} block)`);
  const f = insideFreeBlock(s, idx, seg);
  if (f >= 0)
    throw new DoubleFreeError(
      `${what}: page ${at} lies inside the free block at ${hex(pa(s, f, seg))} (order ${orderAt(s, f)})`,
    );
  if (m === 0 && runOf(s, idx) >= 0) throw new DoubleFreeError(`${what}: page ${at} is free (untouched lazy memory)`);
  throw new NotAllocatedError(`${what}: page ${at} is not allocated`);
}

/** Head of a free block of order > 0 that strictly contains page idx, or -1. */
function insideFreeBlock(s: PhysState, idx: number, seg: number): number {
  const meta = s.meta;
  const first = segFirst(s, seg);
  const low = pfnLow(s, idx, seg);
  const maxOrder = s.maxOrder;
  for (let o = 1; o <= maxOrder; o++) {
    const h = idx - (low & ((1 << o) - 1));
    if (h < first) break;
    if (h === idx) continue;
    const m = meta[h];
    if (m !== 0) {
      if (metaOrder(m) === o) return h;
    } else if (o === maxOrder && isImplicitHead(s, h)) return h;
  }
  return -1;
}

// ------------------------------------------------------------------ per-CPU caches

/**
 * A page enters a per-CPU cache (its owner freed it there): it must be allocated as an order-0
 * unit or lie in an allocated unit (which is split so that it becomes one; OWN parts refused
 * under `exact`); it then reads CACHED, so a second free of it is refused. Throws otherwise,
 * nothing written. O(1) for an order-0 unit.
 */
export function cachePut(s: PhysState, idx: number, seg: number, exact: boolean, what: string): void {
  if (recAt(s, idx) !== ownRec(0)) freeSlow(s, idx, 0, seg, exact, what);
  s.link[slot(idx)] = CACHED;
}

/** A cached page leaves a per-CPU cache (handed out, or given back to vm_phys): OWN(0) again. */
export function cacheTake(s: PhysState, idx: number): void {
  s.link[slot(idx)] = ownRec(0);
}
