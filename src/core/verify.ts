/**
 * verify(): the invariants of spec §5.2 that a running allocator can check, in time linear in
 * the number of free blocks (plus, with `deep`, every page). Read-only over the allocator's state
 * (queues through queues.ts, segments through segments.ts); throws an
 * InvariantError naming the invariant (numbered as in the spec) and the first offending place.
 */
import { hex, InvariantError } from './errors.js';
import { CTL } from './layout.js';
import { M_INIT, metaOrder } from './pages.js';
import { Pool } from './params.js';
import { nQueues, orderAt, poolAt, prevOf, qCount, qHead, qNext, qTail } from './queues.js';
import { pa, paOf, segDomain, segEndIdx, segFirst, segFlind, segOfIdx } from './segments.js';
import { ndomains, qIndex } from './state.js';
import type { VmPhys } from './vmphys.js';

/** Options for verify. */
export interface VerifyOptions {
  /**
   * Also scan every page: no page outside the free blocks carries a free-head order, and every
   * page outside the free blocks is initialised (§5.2 items 2 and 12). Default: only when the
   * machine has at most 2^22 pages (16 GiB), since this reads all metadata.
   */
  deep?: boolean;
  /** Pages the caller holds (allocated, blacklisted, in flight): checks conservation (item 7). */
  heldPages?: number;
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
  // Item 9: segments sorted, disjoint, never crossing 16 MiB (amd64), 4 GiB or affinity ends.
  const nd = ndomains(st);
  const flindOf = (fl: number): number => ctl[CTL.FL_TO_FLIND + fl];
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
    if (segEndIdx(st, s) - segFirst(st, s) !== (b - a) / st.pageSize) fail('9', `segment ${s} page count mismatch`);
  }
  const nQ = nQueues(st);
  // Gather free blocks: (start idx, npages) in typed arrays.
  let cap = 1024;
  let starts = new Float64Array(cap);
  let lens = new Float64Array(cap);
  let nb = 0;
  let freePages = 0;
  let lazyPages = 0;
  let explicitHeads = 0;
  const meta = st.meta;
  for (let d = 0; d < nd; d++) {
    for (let f = 0; f < st.nFl; f++) {
      for (let pool = 0; pool < st.nPool; pool++) {
        for (let k = 0; k < st.nOrd; k++) {
          const q = qIndex(st, d, f, pool, k);
          if (q >= nQ) continue;
          const where = `queue [domain ${d}][flind ${f}][pool ${pool}][order ${k}]`;
          const count = qCount(st, q);
          if (f >= ctl[CTL.NFREELISTS] && count !== 0) fail('1', `${where} exists beyond nfreelists`);
          let n = 0;
          let prev = -1;
          for (let m = qHead(st, q); m >= 0; m = qNext(st, q, m)) {
            if (++n > count) fail('1', `${where} holds more entries than lcnt ${count}`);
            if (m >= ctl[CTL.TOTAL_PAGES]) fail('5', `${where} links to page index ${m} beyond the page array`);
            if (prev >= 0 && prevOf(st, m) !== prev) fail('1', `${where}: broken back link at page index ${m}`);
            prev = m;
            const s = segOfIdx(st, m);
            const addr = pa(st, m, s);
            const ord = orderAt(st, m);
            if (ord !== k) fail('2', `${where}: head ${hex(addr)} has order ${ord}`);
            if (meta[m] !== 0) {
              explicitHeads++;
              if ((meta[m] & M_INIT) === 0) fail('2', `${where}: head ${hex(addr)} is not initialised`);
            }
            if (poolAt(st, m) !== pool) fail('3', `${where}: head ${hex(addr)} has pool ${poolAt(st, m)}`);
            if ((addr / st.pageSize) % 2 ** k !== 0) fail('4', `${where}: head ${hex(addr)} is not aligned`);
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
      // Item 11: lazy queues empty once the domain is done or the whole drain has finished.
      if (ctl[CTL.INITDONE + d] !== 0 || ctl[CTL.DEFAULT_FREEPOOL] === Pool.DEFAULT) {
        for (let k = 0; k < st.nOrd; k++)
          if (qCount(st, qIndex(st, d, f, Pool.LAZYINIT, k)) !== 0)
            fail('11', `domain ${d} is drained but its LAZYINIT queue (flind ${f}, order ${k}) is not empty`);
      }
    }
  }
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
  // Item 7: conservation, when the caller says how many pages it holds.
  if (opts.heldPages !== undefined) {
    let inflight = 0;
    for (let d = 0; d < nd; d++) inflight += ctl[CTL.INFLIGHT + d];
    const startPages = availPages(vm);
    if (freePages + inflight + opts.heldPages !== startPages)
      fail(
        '7',
        `free ${freePages} + in flight ${inflight} + held ${opts.heldPages} != ${startPages} pages enqueued at boot`,
      );
  }
  const deep = opts.deep ?? ctl[CTL.TOTAL_PAGES] <= 1 << 22;
  if (deep) {
    // Items 2 and 12: outside free blocks, every page is initialised and is not a free head.
    let bi = 0;
    for (let s = 0; s < st.nsegs; s++) {
      const end = segEndIdx(st, s);
      for (let i = segFirst(st, s); i < end; ) {
        while (bi < nb && starts[sorted[bi]] + lens[sorted[bi]] <= i) bi++;
        if (bi < nb && starts[sorted[bi]] <= i) {
          i = starts[sorted[bi]] + lens[sorted[bi]];
          continue;
        }
        const m = meta[i];
        if (m === 0) fail('12', `page ${hex(pa(st, i, s))} is neither free nor initialised`);
        if (metaOrder(m) !== st.nOrd)
          fail('2', `page ${hex(pa(st, i, s))} is marked as a free head but is on no queue`);
        i++;
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
