/**
 * verify(): the invariants of spec §5.2 that a running allocator can check, in time linear in
 * the number of free blocks (plus, with `deep`, every page). Read-only over the allocator's state
 * (queues through queues.ts, segments through segments.ts, page bytes through pages.ts's codec);
 * throws an InvariantError naming the invariant (numbered as in the spec) and the first offending
 * place. Bounded on corrupt state: a queue walk follows at most totalPages + 1 links, so a cycle
 * is reported, never followed forever.
 *
 * What is checked, by item: 1 counts, links, tails, cycles; 2 head orders, stray head marks;
 * 3 head pools, pool fields in range; 4 alignment; 5 containment in the segment of the queue's
 * plane; 6 disjointness of free blocks (and of the caller's held blocks, when given);
 * 7 conservation (when the caller gives its held pages); 8 order fields in range; 9 the segment
 * table; 10 the block a free_pages call just made has no free buddy at its order (when the
 * caller names it); 11 LAZYINIT queues empty once drained, lazy heads initialised, the lazy pool
 * only shrinking (given an earlier report); 12 every page outside the free blocks, and every page
 * of a non-LAZYINIT free block, initialised. Items 13-16 are about calls, not states.
 */
import { hex, InvariantError } from './errors.js';
import { CTL } from './layout.js';
import { M_INIT, metaOrder, metaPool } from './pages.js';
import { Pool } from './params.js';
import { orderAt, poolAt, prevOf, qCount, qHead, qNext, qTail } from './queues.js';
import { pa, paddrToPage, paOf, pfnLow, segDomain, segEndIdx, segFirst, segFlind, segOfIdx } from './segments.js';
import { ndomains, qIndex } from './state.js';
import type { VmPhys } from './vmphys.js';

/** Options for verify. */
export interface VerifyOptions {
  /**
   * Also scan every page: no page off the queues carries a free-head order, order and pool
   * fields are in range, and every page outside the free blocks (and inside non-LAZYINIT free
   * blocks) is initialised (§5.2 items 2, 3, 8 and 12). Default: only when the machine has at
   * most 2^22 pages (16 GiB), since this reads all metadata.
   */
  deep?: boolean;
  /**
   * Pages the caller holds (allocated, blacklisted, in flight): checks conservation (item 7).
   * Defaults to the pages of `held` when that is given.
   */
  heldPages?: number;
  /** Blocks the caller holds, as [address, pages]: no free block may overlap one (item 6). */
  held?: ReadonlyArray<readonly [number, number]>;
  /**
   * Address of a block the caller has just freed with free_pages (nothing else changed since):
   * the free block now holding it must have no free buddy at its order in its segment, in any
   * pool, unless it has the maximum order (item 10's checkable part).
   */
  freed?: number;
  /** The report of an earlier verify of this machine after boot: LAZYINIT only shrinks (item 11b). */
  since?: VerifyReport;
}

/** Summary of what verify saw. */
export interface VerifyReport {
  freeBlocks: number;
  freePages: number;
  lazyPages: number;
  explicitHeads: number;
}

/**
 * Check every applicable invariant. Must be called while no other thread mutates the allocator
 * (hold every domain lock, or from a single thread).
 */
export function verify(vm: VmPhys, opts: VerifyOptions = {}): VerifyReport {
  const fail = (inv: string, msg: string): never => {
    throw new InvariantError(inv, msg);
  };
  const st = vm.state;
  const ctl = st.c.ctl;
  if (ctl[CTL.PHASE] < 1) return { freeBlocks: 0, freePages: 0, lazyPages: 0, explicitHeads: 0 };
  const p = st.profile;
  const total = ctl[CTL.TOTAL_PAGES];
  // Item 9: segments sorted, disjoint, never crossing 16 MiB (amd64), 4 GiB or affinity ends.
  const nd = ndomains(st);
  const flindOf = (fl: number): number => ctl[CTL.FL_TO_FLIND + fl];
  let pagesInSegs = 0;
  for (let s = 0; s < st.nsegs; s++) {
    const a = st.segStart[s];
    const b = st.segEnd[s];
    if (!(a < b)) fail('9', `segment ${s} is empty or inverted`);
    if (s > 0 && st.segEnd[s - 1] > a) fail('9', `segments ${s - 1} and ${s} overlap or are unsorted`);
    // vm_phys_add_seg cuts at these boundaries; vm_phys_init may merge the pieces again only
    // where both sides map to the same free list (an absent list aliases to another).
    if (p.lowmemBoundary > 0 && a < p.lowmemBoundary && b > p.lowmemBoundary && flindOf(2) !== segFlind(st, s))
      fail('9', `segment ${s} crosses VM_LOWMEM_BOUNDARY between different free lists`);
    if (a < p.dma32Boundary && b > p.dma32Boundary && flindOf(1) !== flindOf(0))
      fail('9', `segment ${s} crosses the 4 GiB boundary between different free lists`);
    if (nd > 1) {
      const aff = st.c.affinity;
      for (let i = 0; i < ctl[CTL.NAFFINITY]; i++) {
        const e = aff[i * 3 + 1];
        if (a < e && e < b) fail('9', `segment ${s} crosses the affinity boundary ${hex(e)}`);
      }
    }
  }
  // Packed page indices: segments one after another, each as many pages as it spans.
  for (let s = 0; s < st.nsegs; s++) {
    if (segFirst(st, s) !== pagesInSegs) fail('9', `segment ${s} does not start at page index ${pagesInSegs}`);
    if (segEndIdx(st, s) - segFirst(st, s) !== (st.segEnd[s] - st.segStart[s]) / st.pageSize)
      fail('9', `segment ${s} page count mismatch`);
    pagesInSegs = segEndIdx(st, s);
  }
  if (pagesInSegs !== total) fail('9', `segments hold ${pagesInSegs} pages, the page array ${total}`);
  // Gather free blocks: (start idx, npages) in typed arrays.
  let cap = 1024;
  let starts = new Float64Array(cap);
  let lens = new Float64Array(cap);
  let nb = 0;
  let freePages = 0;
  let lazyPages = 0;
  let explicitHeads = 0;
  const meta = st.meta;
  // Every queue of every domain slot: blocks on a queue no segment maps to fail item 5.
  for (let d = 0; d < p.maxMemDom; d++) {
    for (let f = 0; f < st.nFl; f++) {
      for (let pool = 0; pool < st.nPool; pool++) {
        for (let k = 0; k < st.nOrd; k++) {
          const q = qIndex(st, d, f, pool, k);
          const where = `queue [domain ${d}][flind ${f}][pool ${pool}][order ${k}]`;
          const count = qCount(st, q);
          let n = 0;
          let prev = -1;
          for (let m = qHead(st, q); m >= 0; m = qNext(st, q, m)) {
            if (++n > count) fail('1', `${where} holds more entries than lcnt ${count}`);
            if (n > total) fail('1', `${where} has more entries than there are pages (a cycle)`);
            if (m >= total) fail('5', `${where} links to page index ${m} beyond the page array`);
            if (prev >= 0 && prevOf(st, m) !== prev) fail('1', `${where}: broken back link at page index ${m}`);
            prev = m;
            const s = segOfIdx(st, m);
            const addr = pa(st, m, s);
            const ord = orderAt(st, m);
            if (ord > st.nOrd) fail('8', `${where}: head ${hex(addr)} has order ${ord} > VM_NFREEORDER`);
            if (ord !== k) fail('2', `${where}: head ${hex(addr)} has order ${ord}`);
            if (meta[m] !== 0) {
              explicitHeads++;
              if ((meta[m] & M_INIT) === 0)
                fail(pool === Pool.LAZYINIT ? '11' : '2', `${where}: head ${hex(addr)} is not initialised`);
            }
            if (poolAt(st, m) !== pool) fail('3', `${where}: head ${hex(addr)} has pool ${poolAt(st, m)}`);
            if ((pfnLow(st, m, s) & ((1 << k) - 1)) !== 0) fail('4', `${where}: head ${hex(addr)} is not aligned`);
            if (m + 2 ** k > segEndIdx(st, s)) fail('5', `${where}: block ${hex(addr)} leaves its segment`);
            if (segDomain(st, s) !== d || segFlind(st, s) !== f)
              fail('5', `${where}: block ${hex(addr)} lies in segment ${s} of another queue table`);
            if (nb === cap) {
              cap *= 2;
              const ns = new Float64Array(cap);
              ns.set(starts);
              starts = ns;
              const nl = new Float64Array(cap);
              nl.set(lens);
              lens = nl;
            }
            starts[nb] = m;
            lens[nb] = 2 ** k;
            nb++;
            freePages += 2 ** k;
            if (pool === Pool.LAZYINIT) lazyPages += 2 ** k;
          }
          if (n !== count) fail('1', `${where}: lcnt ${count} but ${n} entries`);
          if (qTail(st, q) !== prev) fail('1', `${where}: tail is ${qTail(st, q)}, last entry ${prev}`);
        }
      }
      // Item 11 (c, d): lazy queues empty once the domain is done or the whole drain has finished.
      if (d < nd && (ctl[CTL.INITDONE + d] !== 0 || ctl[CTL.DEFAULT_FREEPOOL] === Pool.DEFAULT)) {
        for (let k = 0; k < st.nOrd; k++)
          if (qCount(st, qIndex(st, d, f, Pool.LAZYINIT, k)) !== 0)
            fail('11', `domain ${d} is drained but its LAZYINIT queue (flind ${f}, order ${k}) is not empty`);
      }
    }
  }
  const dfp = ctl[CTL.DEFAULT_FREEPOOL];
  if (dfp !== Pool.LAZYINIT && dfp !== Pool.DEFAULT) fail('11', `vm_default_freepool is ${dfp}`);
  // Item 11 (b): after boot, the LAZYINIT pool only shrinks.
  if (opts.since !== undefined && lazyPages > opts.since.lazyPages)
    fail('11', `the LAZYINIT pool grew from ${opts.since.lazyPages} to ${lazyPages} pages`);
  // Item 6: no two free blocks overlap.
  const order = new Uint32Array(nb);
  for (let i = 0; i < nb; i++) order[i] = i;
  const sorted = Array.from(order).sort((a, b) => starts[a] - starts[b]);
  for (let i = 1; i < nb; i++) {
    const a = sorted[i - 1];
    const b = sorted[i];
    if (starts[a] + lens[a] > starts[b])
      fail('6', `free blocks at ${hex(paOf(st, starts[a]))} and ${hex(paOf(st, starts[b]))} overlap`);
  }
  /** Position in `sorted` of the free block containing page idx, or -1. */
  const blockAt = (idx: number): number => {
    let lo = 0;
    let hi = nb - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[sorted[mid]] <= idx) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found >= 0 && idx < starts[sorted[found]] + lens[sorted[found]] ? found : -1;
  };
  // Item 6, second half: no free block overlaps a block the caller holds.
  let heldSum = 0;
  for (const [addr, pages] of opts.held ?? []) {
    heldSum += pages;
    const idx = paddrToPage(st, addr);
    if (idx < 0) continue;
    // The first free block ending after idx starts before the held block ends?
    let lo = 0;
    let hi = nb;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (starts[sorted[mid]] + lens[sorted[mid]] <= idx) lo = mid + 1;
      else hi = mid;
    }
    if (lo < nb && starts[sorted[lo]] < idx + pages)
      fail('6', `the free block at ${hex(paOf(st, starts[sorted[lo]]))} overlaps the held block at ${hex(addr)}`);
  }
  // Item 7: conservation, when the caller says how many pages it holds.
  let inflight = 0;
  for (let d = 0; d < nd; d++) inflight += ctl[CTL.INFLIGHT + d];
  const heldPages = opts.heldPages ?? (opts.held !== undefined ? heldSum : undefined);
  if (heldPages !== undefined) {
    const startPages = availPages(vm);
    if (freePages + inflight + heldPages !== startPages)
      fail(
        '7',
        `free ${freePages} + in flight ${inflight} + held ${heldPages} != ${startPages} pages enqueued at boot`,
      );
  }
  // Item 10: the block free_pages just made has no free buddy at its order.
  if (opts.freed !== undefined) {
    const idx = paddrToPage(st, opts.freed);
    const at = idx < 0 ? -1 : blockAt(idx);
    if (at < 0) fail('10', `the freed page ${hex(opts.freed)} is in no free block`);
    const h = starts[sorted[at]];
    const k = Math.log2(lens[sorted[at]]);
    const s = segOfIdx(st, h);
    if (k < st.maxOrder) {
      const bit = 2 ** k;
      const buddy = (pfnLow(st, h, s) & bit) !== 0 ? h - bit : h + bit;
      const bat = buddy >= segFirst(st, s) && buddy < segEndIdx(st, s) ? blockAt(buddy) : -1;
      if (bat >= 0 && starts[sorted[bat]] === buddy && lens[sorted[bat]] === bit)
        fail(
          '10',
          `the freed block at ${hex(pa(st, h, s))} (order ${k}) and its buddy at ${hex(pa(st, buddy, s))} (pool ${poolAt(st, buddy)}) are both free`,
        );
    }
  }
  const deep = opts.deep ?? total <= 1 << 22;
  if (deep && ctl[CTL.PHASE] === 2) {
    // Items 2, 3, 8 and 12, page by page. A drainer's in-flight blocks are off the queues and
    // may be uninitialised until it finishes them: that many uninitialised pages are allowed.
    let uninit = 0;
    let bi = 0;
    for (let s = 0; s < st.nsegs; s++) {
      const end = segEndIdx(st, s);
      for (let i = segFirst(st, s); i < end; i++) {
        while (bi < nb && starts[sorted[bi]] + lens[sorted[bi]] <= i) bi++;
        const inBlock = bi < nb && starts[sorted[bi]] <= i;
        const m = meta[i];
        if (inBlock && starts[sorted[bi]] === i) continue; // a head, checked on its queue
        const lazyBlock = inBlock && poolAt(st, starts[sorted[bi]]) === Pool.LAZYINIT;
        if (m === 0 || (m & M_INIT) === 0) {
          if (lazyBlock && m === 0) continue; // interiors of lazy blocks need not be initialised
          if (!inBlock && m === 0 && ++uninit <= inflight) continue;
          fail('12', `page ${hex(pa(st, i, s))} ${inBlock ? 'of a free block ' : ''}is not initialised`);
        }
        const o = metaOrder(m);
        if (o > st.nOrd) fail('8', `page ${hex(pa(st, i, s))} has order ${o} > VM_NFREEORDER`);
        if (o !== st.nOrd) fail('2', `page ${hex(pa(st, i, s))} is marked as a free head but is on no queue`);
        if (metaPool(m) > st.nPool) fail('3', `page ${hex(pa(st, i, s))} has pool ${metaPool(m)}`);
      }
    }
  }
  return { freeBlocks: nb, freePages, lazyPages, explicitHeads };
}

/** Pages in phys_avail ∩ segments: what vm_page_startup enqueued. */
export function availPages(vm: VmPhys): number {
  const st = vm.state;
  let total = 0;
  for (const [a, b] of vm.availRanges()) {
    for (let s = 0; s < st.nsegs; s++) {
      const lo = Math.max(a, st.segStart[s]);
      const hi = Math.min(b, st.segEnd[s]);
      if (hi > lo) total += (hi - lo) / st.pageSize;
    }
  }
  return total;
}
