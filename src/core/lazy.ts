/**
 * Lazy initialisation (D40403): draining the LAZYINIT pool into DEFAULT, in one thread
 * (vm_phys_lazy_init_domain, bounded steps) or by a drainer working beside the allocator
 * (`lazyTake` / `lazyPut`, the exchange the drainer's mailbox carries). Every drain picks its
 * next block with queues.ts's one LAZYINIT walk (`firstLazyQueue`). Owns the INITDONE and
 * INFLIGHT control words and vm_default_freepool's move to DEFAULT.
 * @internal
 */

import { freeIdx } from './buddy.js';
import { StateError } from './errors.js';
import { CTL, DRSLOT, STAT } from './layout.js';
import { markHeld, NO_REC } from './owner.js';
import { finishInit, initPages, metaByte, writeRecords } from './pages.js';
import { Pool } from './params.js';
import { firstLazyQueue, moveLazyRun, qHead, qRem, queueOrder } from './queues.js';
import { ndomains, type PhysState } from './state.js';

/**
 * The handle of a block a drainer holds: idx * 16 + order (a double: idx * 16 exceeds int32
 * from 2^27 pages on; exact, since idx < 2^31). -1 = none.
 */
export function lazyHandle(idx: number, order: number): number {
  return idx * 16 + order;
}
/** Order of a block handle. */
export function handleOrder(h: number): number {
  return h % 16;
}
/** Page index of a block handle. */
export function handleIdx(h: number): number {
  return (h - (h % 16)) / 16;
}

/**
 * vm_phys_lazy_init_domain(domain): move every LAZYINIT block of the domain to DEFAULT (finish,
 * then free with merging), free lists in VM_FREELIST_* order, orders 0 up, head first.
 */
export function lazyInitDomain(s: PhysState, domain: number): void {
  if (s.c.ctl[CTL.INITDONE + domain] !== 0) return;
  while (drainStepDomain(s, domain, 1 << 30) > 0) {}
}

/**
 * One bounded step of vm_phys_lazy_init_domain: process at most `budget` lazy blocks of
 * `domain` and return how many were processed; 0 means the domain is done (initdone set).
 * The caller may drop the domain lock between steps, as the vmlazyinit thread does per block.
 */
export function drainStepDomain(s: PhysState, domain: number, budget: number): number {
  const ctl = s.c.ctl;
  if (ctl[CTL.INITDONE + domain] !== 0) return 0;
  let done = 0;
  while (done < budget) {
    const q = firstLazyQueue(s, domain);
    if (q < 0) break;
    const m = qHead(s, q);
    const oind = queueOrder(s, q);
    if (oind === s.maxOrder) {
      const n = drainWholeRun(s, q, m, budget - done);
      if (n > 0) {
        done += n;
        continue;
      }
    }
    qRem(s, q, m);
    finishInit(s, m, oind);
    freeIdx(s, m, Pool.DEFAULT, oind);
    s.c.stats[STAT.DRAIN_BLOCKS]++;
    s.c.stats[STAT.DRAIN_PAGES] += 1 << oind;
    done++;
  }
  if (done === 0) ctl[CTL.INITDONE + domain] = 1;
  return done;
}

/**
 * Drain a whole untouched lazy run in one step, when the queue head `m` starts one and it has at
 * most `budget` chunks: queues.ts moves it, still implicit, to the DEFAULT max-order queue (the
 * place freeing its chunks one by one would put them), and its state bytes are written with one
 * contiguous fill. The resulting queues, counts and later choices are FreeBSD's; no link page is
 * touched per chunk. Returns the number of chunks drained (0 if the fast path does not apply).
 */
function drainWholeRun(s: PhysState, q: number, m: number, budget: number): number {
  const n = moveLazyRun(s, q, m, budget);
  if (n === 0) return 0;
  const cp = s.chunkPages;
  const end = m + n * cp;
  // Interiors as vm_phys_finish_init writes them, heads as free DEFAULT blocks.
  initPages(s, m, end, s.nPool);
  const meta = s.meta;
  const headByte = metaByte(Pool.DEFAULT, s.maxOrder);
  for (let h = m; h < end; h += cp) meta[h] = headByte;
  // Each head's record as the chunk-by-chunk drain leaves it: initialised in LAZYINIT (by the
  // boot's look-ahead or on materialisation), its tail pages by finish_init.
  if (s.rec.active) for (let h = m; h < end; h += cp) writeRecords(s, h, h + 1, Pool.LAZYINIT);
  const st = s.c.stats;
  st[STAT.CHUNKS_MATERIALIZED] += n;
  st[STAT.DRAIN_BLOCKS] += n;
  st[STAT.DRAIN_PAGES] += n * cp;
  return n;
}

/**
 * Drainer protocol, step 1 (domain lock held): take the next lazy block of `domain` off its
 * queue, in vm_phys_lazy_init_domain's order, and count its pages as in flight. Returns its
 * `lazyHandle`, or -1 when the domain has no lazy block left (initdone is then set). Step 2 is
 * `finishInit(idx, order)`, which may run without the lock: nobody else can reach the block,
 * and a validated free aimed into it is refused (EHELD): its head is marked held here, before
 * the caller drops the lock. Step 3 is `lazyPut` under the lock.
 */
export function lazyTake(s: PhysState, domain: number): number {
  const ctl = s.c.ctl;
  if (ctl[CTL.INITDONE + domain] !== 0) return -1;
  const q = firstLazyQueue(s, domain);
  if (q < 0) {
    ctl[CTL.INITDONE + domain] = 1;
    return -1;
  }
  const m = qHead(s, q);
  const oind = queueOrder(s, q);
  qRem(s, q, m);
  markHeld(s, m, oind);
  ctl[CTL.INFLIGHT + domain] += 1 << oind;
  return lazyHandle(m, oind);
}

/**
 * Drainer protocol, step 3 (domain lock held): free the finished block into DEFAULT (the free
 * clears its held mark).
 */
export function lazyPut(s: PhysState, domain: number, idx: number, order: number): void {
  s.c.ctl[CTL.INFLIGHT + domain] -= 1 << order;
  s.link[(idx << 1) >>> 0] = NO_REC;
  freeIdx(s, idx, Pool.DEFAULT, order);
  s.c.stats[STAT.DRAIN_BLOCKS]++;
  s.c.stats[STAT.DRAIN_PAGES] += 1 << order;
}

/** Mark the end of vm_phys_lazy_init: vm_default_freepool = DEFAULT (after all domains). */
export function finishLazyInit(s: PhysState): void {
  for (let d = 0; d < ndomains(s); d++)
    if (s.c.ctl[CTL.INITDONE + d] === 0) throw new StateError(`domain ${d} still has lazy memory`);
  s.c.ctl[CTL.DEFAULT_FREEPOOL] = Pool.DEFAULT;
}

/** vm_phys_lazy_init: drain every domain in order, then move vm_default_freepool to DEFAULT. */
export function lazyInit(s: PhysState): void {
  for (let d = 0; d < ndomains(s); d++) lazyInitDomain(s, d);
  s.c.ctl[CTL.DEFAULT_FREEPOOL] = Pool.DEFAULT;
}

/**
 * An incremental vm_phys_lazy_init over all domains: process at most `budget` blocks; true when
 * every domain is done and vm_default_freepool has moved to DEFAULT.
 */
export function lazyInitStep(s: PhysState, budget: number): boolean {
  let left = budget;
  for (let d = 0; d < ndomains(s); d++) {
    while (left > 0) {
      const n = drainStepDomain(s, d, left);
      if (n === 0) break;
      left -= n;
    }
    if (left <= 0) return false;
  }
  s.c.ctl[CTL.DEFAULT_FREEPOOL] = Pool.DEFAULT;
  return true;
}

/** True once vm_phys_lazy_init has finished (vm_default_freepool == DEFAULT). */
export function lazyDone(s: PhysState): boolean {
  return s.c.ctl[CTL.DEFAULT_FREEPOOL] === Pool.DEFAULT;
}

// ------------------------------------------------------------------ a vanished drainer's blocks

/**
 * Give back the lazy blocks that row `slot` of the drainer table (DRSLOT in layout.ts) lists,
 * because their drainer is gone (it died, or the machine was restored from a snapshot): each
 * block is finished (finishInit, idempotent, so a half-done initialisation is simply redone) and
 * freed into DEFAULT with lazyPut, exactly what the drainer would have done next. The row then
 * lists no block; its owner is not changed. Caller holds the lock of the row's domain, or is the
 * only thread, and has checked that the row is well formed. Returns the pages given back.
 */
export function lazyReturnSlot(s: PhysState, slot: number): number {
  const t = s.c.drainers;
  const b = slot * DRSLOT.SIZE;
  const domain = t[b + DRSLOT.DOMAIN];
  const n = t[b + DRSLOT.N];
  let pages = 0;
  for (let i = t[b + DRSLOT.FIRST]; i < n; i++) {
    const idx = t[b + DRSLOT.BLOCKS + 2 * i];
    const order = t[b + DRSLOT.BLOCKS + 2 * i + 1];
    finishInit(s, idx, order);
    lazyPut(s, domain, idx, order);
    pages += 2 ** order;
  }
  t[b + DRSLOT.FIRST] = 0;
  t[b + DRSLOT.N] = 0;
  return pages;
}
