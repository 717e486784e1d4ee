/**
 * Page state ("struct vm_page" reduced to what vm_phys reads): the codec of the one state byte
 * per page, vm_page_init_page and vm_phys_finish_init. The byte is
 *   0                          never initialised (vm_page_init_page not yet run)
 *   M_INIT | pool<<4 | order   initialised; order VM_NFREEORDER = not the head of a free block;
 *                              pool VM_NFREEPOOL = "no valid pool" as vm_phys_finish_init writes.
 * Every reader and writer of the byte goes through `metaByte`/`metaOrder`/`metaPool`. This file
 * writes the byte for initialisation; queues.ts writes it when a block joins or leaves a queue;
 * startup.ts fills runs of it at boot.
 * @internal
 */
import { STAT } from './layout.js';
import { Pool } from './params.js';
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

/** vm_page_init_page: initialised, not a free head, the given pool. */
export function initPage(s: PhysState, idx: number, pool: number): void {
  s.meta[idx] = metaByte(pool, s.nOrd);
  s.c.stats[STAT.PAGES_INITIALIZED]++;
}

/** vm_page_init_page over [from, to) with pool `pool` (a contiguous fill), counted. */
export function initPages(s: PhysState, from: number, to: number, pool: number): void {
  if (to <= from) return;
  s.meta.fill(metaByte(pool, s.nOrd), from, to);
  const st = s.c.stats;
  st[STAT.PAGES_INITIALIZED] += to - from;
  st[STAT.META_BYTES_TOUCHED] += to - from;
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
