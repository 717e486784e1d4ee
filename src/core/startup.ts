/**
 * The end of vm_page_startup, after vm_phys_init: initialise the pages of each segment not
 * covered by phys_avail (pool DEFAULT), then for each phys_avail ∩ segment run enqueue it into
 * LAZYINIT (lazy: only heads; middle chunks implicit) or DEFAULT (eager: every page initialised).
 * Moves the allocator from phase 1 to 2 and records the mode.
 * @internal
 */
import { enqueueContigIdx } from './buddy.js';
import { CTL } from './layout.js';
import { markBlocks, runRec } from './owner.js';
import { initPage, initPages } from './pages.js';
import { Pool } from './params.js';
import { idxIn } from './segments.js';
import type { PhysState } from './state.js';

/** Startup modes: lazy = debug.vm.lazy_page_init=1 (default), eager = 0. */
export type StartupMode = 'lazy' | 'eager';

/**
 * Pages of segment seg outside phys_avail, [from, to): initialised (pool DEFAULT) and allocated
 * since boot, recorded as a run (owner.ts) so that they may be freed in any aligned part.
 */
function bootAllocated(s: PhysState, seg: number, from: number, to: number): void {
  initPages(s, from, to, Pool.DEFAULT);
  markBlocks(s, from, to, seg, runRec(0));
}

/** vm_page_startup's page initialisation and free-queue setup (phase must be 1). */
export function pageStartup(s: PhysState, lazy: boolean): void {
  const pool = lazy ? Pool.LAZYINIT : Pool.DEFAULT;
  const navail = s.c.ctl[CTL.NAVAIL];
  const avail = s.c.avail;
  for (let seg = 0; seg < s.nsegs; seg++) {
    const ss = s.segStart[seg];
    const se = s.segEnd[seg];
    // 1. Pages of the segment outside phys_avail (the stated intent of the gap loop, §3.10).
    let cur = ss;
    for (let i = 0; i < navail && cur < se; i++) {
      const as = avail[i * 2];
      const ae = avail[i * 2 + 1];
      if (ae <= cur) continue;
      if (as > cur) bootAllocated(s, seg, idxIn(s, seg, cur), idxIn(s, seg, Math.min(as, se)));
      cur = Math.max(cur, ae);
    }
    if (cur < se) bootAllocated(s, seg, idxIn(s, seg, cur), idxIn(s, seg, se));
    // 2. Each phys_avail ∩ segment run.
    for (let i = 0; i < navail; i++) {
      const startp = Math.max(ss, avail[i * 2]);
      const endp = Math.min(se, avail[i * 2 + 1]);
      if (endp <= startp) continue;
      const first = idxIn(s, seg, startp);
      const count = (endp - startp) / s.pageSize;
      if (!lazy) initPages(s, first, first + count, Pool.DEFAULT);
      else {
        // vm_page_init_page(m, startp, segind, pool) for the run's first page; the enqueue
        // initialises the other chunk heads by look-ahead. When the run begins with whole
        // max-order chunks, that first page becomes an implicit lazy head: addLazyRun forgets
        // it as it forgets a look-ahead (hence lastLookAhead).
        initPage(s, first, pool);
        s.lastLookAhead = first;
      }
      enqueueContigIdx(s, first, pool, count, seg);
    }
  }
  s.c.ctl[CTL.MODE] = lazy ? 1 : 0;
  s.c.ctl[CTL.PHASE] = 2;
}
