/**
 * Page state ("struct vm_page" reduced to what vm_phys reads): the codec of the one state byte
 * per page, vm_page_init_page and vm_phys_finish_init. The byte is
 *   0                          never initialised (vm_page_init_page not yet run)
 *   M_INIT | pool<<4 | order   initialised; order VM_NFREEORDER = not the head of a free block;
 *                              pool VM_NFREEPOOL = "no valid pool" as vm_phys_finish_init writes.
 * Every reader and writer of the byte goes through `metaByte`/`metaOrder`/`metaPool`. This file
 * writes the byte for initialisation; queues.ts writes it when a block joins or leaves a queue;
 * startup.ts fills runs of it at boot.
 *
 * Page records (pagerec/): wherever this file initialises a page, it also writes the page's
 * record (vm_page_init_page's values), behind one `rec.active` test so that a machine without
 * records pays a predictable branch and nothing else. The order-0 paths never come here.
 * STAT.PAGES_INITIALIZED counts distinct pages: a page is counted when its byte leaves 0
 * (a second vm_page_init_page of a page, as FreeBSD's look-ahead may do, is not counted again).
 * @internal
 */
import { STAT } from './layout.js';
import { Pool } from './params.js';
import { pa, segOfIdx } from './segments.js';
import type { PhysState } from './state.js';

/** Initialised bit of the state byte. */
export const M_INIT = 0x80;
/** Mask of the order bits. */
export const M_ORDER = 0x0f;

// The codec spells M_INIT (0x80) and M_ORDER (0x0f) as literals: these functions are inlined
// into the order-0 paths, where a module-constant load would cost inlining budget.

/** The state byte of an initialised page in `pool` with free-block order `order` (VM_NFREEORDER: none). */
export function metaByte(pool: number, order: number): number {
  return 0x80 | (pool << 4) | order;
}
/** The order field (m->order) of an initialised page's state byte. */
export function metaOrder(m: number): number {
  return m & 0x0f;
}
/** The pool field (m->pool) of a state byte; 0 (LAZYINIT) for a never-initialised page. */
export function metaPool(m: number): number {
  return (m >> 4) & 7;
}
/** The byte with its order replaced (the pool and the initialised bit kept). */
export function metaWithOrder(m: number, order: number): number {
  return (m & ~M_ORDER) | order;
}

/** vm_page_init_page: initialised, not a free head, the given pool; its record written. */
export function initPage(s: PhysState, idx: number, pool: number): void {
  if (s.meta[idx] === 0) s.c.stats[STAT.PAGES_INITIALIZED]++;
  s.meta[idx] = metaByte(pool, s.nOrd);
  if (s.rec.active) writeRecords(s, idx, idx + 1, pool);
}

/**
 * vm_page_init_page over [from, to) with pool `pool` (a contiguous fill), counted. Contract:
 * the range lies in one segment and none of its pages is initialised yet (every caller's is:
 * a start-up run, a lazy block's tail pages, an untouched lazy run).
 */
export function initPages(s: PhysState, from: number, to: number, pool: number): void {
  if (to <= from) return;
  s.meta.fill(metaByte(pool, s.nOrd), from, to);
  const st = s.c.stats;
  st[STAT.PAGES_INITIALIZED] += to - from;
  st[STAT.META_BYTES_TOUCHED] += to - from;
  if (s.rec.active) writeRecords(s, from, to, pool);
}

/**
 * The records of pages [from, to) of one segment as vm_page_init_page(m, pa, segind, pool)
 * writes them (order VM_NFREEORDER). Callers test `s.rec.active` first.
 */
export function writeRecords(s: PhysState, from: number, to: number, pool: number): void {
  const seg = segOfIdx(s, from);
  s.rec.initRange(from, to - from, pa(s, from, seg), seg, pool, s.nOrd);
}

/**
 * vm_phys_finish_init(m, order): if the block's head is in LAZYINIT, initialise its other pages
 * with pool VM_NFREEPOOL. The head stays as it is.
 */
export function finishInit(s: PhysState, idx: number, order: number): void {
  if (metaPool(s.meta[idx]) !== Pool.LAZYINIT) return;
  initPages(s, idx + 1, idx + (1 << order), s.nPool);
}

/** finish_init on the allocation and free paths, timing the initialisation itself. */
export function finishInitOnDemand(s: PhysState, idx: number, order: number): void {
  if (metaPool(s.meta[idx]) !== Pool.LAZYINIT || order === 0) {
    finishInit(s, idx, order);
    return;
  }
  // Lazy blocks only: rare (at most once per block), so timing them costs nothing measurable.
  const t0 = performance.now();
  finishInit(s, idx, order);
  noteOnDemand(s, t0, order);
}

/** Record one on-demand initialisation of a 2^order lazy block that started at t0 (ms). */
export function noteOnDemand(s: PhysState, t0: number, order: number): void {
  const us = (performance.now() - t0) * 1000;
  const st = s.c.stats;
  st[STAT.ON_DEMAND_INITS]++;
  st[STAT.ON_DEMAND_PAGES] += (1 << order) - 1;
  st[STAT.ON_DEMAND_US] += us;
  if ((1 << order) - 1 > st[STAT.MAX_INIT_PAGES]) st[STAT.MAX_INIT_PAGES] = (1 << order) - 1;
  if (us > st[STAT.MAX_INIT_US]) st[STAT.MAX_INIT_US] = us;
}
