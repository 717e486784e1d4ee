/**
 * verify(): the invariants of spec §5.2 that a running allocator can check, in time linear in
 * the number of free blocks (plus, with `deep`, every page). Read-only over VmPhys; throws an
 * InvariantError naming the invariant (numbered as in the spec) and the first offending place.
 */
import { hex, InvariantError } from './errors.js';
import { CTL } from './layout.js';
import { Pool } from './params.js';
import { M_INIT, M_ORDER, type VmPhys } from './vmphys.js';

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
  const ctl = vm.c.ctl;
  if (ctl[CTL.PHASE] < 1) return { freeBlocks: 0, freePages: 0, lazyPages: 0, explicitHeads: 0 };
  const p = vm.profile;
  // Item 9: segments sorted, disjoint, never crossing 16 MiB (amd64), 4 GiB or affinity ends.
  for (let s = 0; s < vm.nsegs; s++) {
    const a = vm.segStart[s];
    const b = vm.segEnd[s];
    if (!(a < b)) fail('9', `segment ${s} is empty or inverted`);
    if (s > 0 && vm.segEnd[s - 1] > a) fail('9', `segments ${s - 1} and ${s} overlap or are unsorted`);
    // vm_phys_add_seg cuts at these boundaries; vm_phys_init may merge the pieces again only
    // where both sides map to the same free list (an absent list aliases to another).
    if (p.lowmemBoundary > 0 && a < p.lowmemBoundary && b > p.lowmemBoundary && vm.flindOf(2) !== vm.segFlind[s])
      fail('9', `segment ${s} crosses VM_LOWMEM_BOUNDARY between different free lists`);
    if (a < p.dma32Boundary && b > p.dma32Boundary && vm.flindOf(1) !== vm.flindOf(0))
      fail('9', `segment ${s} crosses the 4 GiB boundary between different free lists`);
    if (vm.ndomains > 1) {
      const aff = vm.c.affinity;
      for (let i = 0; i < ctl[CTL.NAFFINITY]; i++) {
        const e = aff[i * 3 + 1];
        if (a < e && e < b) fail('9', `segment ${s} crosses the affinity boundary ${hex(e)}`);
      }
    }
    if (vm.segFirst[s + 1] - vm.segFirst[s] !== (b - a) / vm.pageSize) fail('9', `segment ${s} page count mismatch`);
  }
  const nQ = vm.c.qHead.length;
  // Gather free blocks: (start idx, npages) in typed arrays.
  let cap = 1024;
  let starts = new Float64Array(cap);
  let lens = new Float64Array(cap);
  let nb = 0;
  let freePages = 0;
  let lazyPages = 0;
  let explicitHeads = 0;
  const meta = vm.p.meta;
  for (let d = 0; d < vm.ndomains; d++) {
    for (let f = 0; f < vm.nFl; f++) {
      for (let pool = 0; pool < vm.nPool; pool++) {
        for (let k = 0; k < vm.nOrd; k++) {
          const q = vm.qIndex(d, f, pool, k);
          if (q >= nQ) continue;
          const where = `queue [domain ${d}][flind ${f}][pool ${pool}][order ${k}]`;
          const count = vm.c.qCount[q];
          if (f >= vm.nfreelists && count !== 0) fail('1', `${where} exists beyond nfreelists`);
          let n = 0;
          let prev = -1;
          for (let m = vm.c.qHead[q]; m >= 0; m = vm.qNext(q, m)) {
            if (++n > count) fail('1', `${where} holds more entries than lcnt ${count}`);
            if (m >= vm.totalPages) fail('5', `${where} links to page index ${m} beyond the page array`);
            if (prev >= 0 && vm.prevOf(m) !== prev) fail('1', `${where}: broken back link at page index ${m}`);
            prev = m;
            const s = vm.segOfIdx(m);
            const pa = vm.pa(m, s);
            const ord = vm.orderAt(m);
            if (ord !== k) fail('2', `${where}: head ${hex(pa)} has order ${ord}`);
            if (meta[m] !== 0) {
              explicitHeads++;
              if ((meta[m] & M_INIT) === 0) fail('2', `${where}: head ${hex(pa)} is not initialised`);
            }
            if (vm.poolAt(m) !== pool) fail('3', `${where}: head ${hex(pa)} has pool ${vm.poolAt(m)}`);
            if ((pa / vm.pageSize) % 2 ** k !== 0) fail('4', `${where}: head ${hex(pa)} is not aligned`);
            if (m + 2 ** k > vm.segFirst[s] + vm.segPages[s])
              fail('5', `${where}: block ${hex(pa)} leaves its segment`);
            if (vm.segDomain[s] !== d || vm.segFlind[s] !== f)
              fail('5', `${where}: block ${hex(pa)} lies in segment ${s} of another queue table`);
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
          if (vm.c.qTail[q] !== prev) fail('1', `${where}: tail is ${vm.c.qTail[q]}, last entry ${prev}`);
        }
      }
      // Item 11: lazy queues empty once the domain is done or the whole drain has finished.
      if (ctl[CTL.INITDONE + d] !== 0 || ctl[CTL.DEFAULT_FREEPOOL] === Pool.DEFAULT) {
        for (let k = 0; k < vm.nOrd; k++)
          if (vm.c.qCount[vm.qIndex(d, f, Pool.LAZYINIT, k)] !== 0)
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
      fail('6', `free blocks at ${hex(vm.paOf(starts[a]))} and ${hex(vm.paOf(starts[b]))} overlap`);
  }
  // Item 7: conservation, when the caller says how many pages it holds.
  if (opts.heldPages !== undefined) {
    let inflight = 0;
    for (let d = 0; d < vm.ndomains; d++) inflight += ctl[CTL.INFLIGHT + d];
    const startPages = availPages(vm);
    if (freePages + inflight + opts.heldPages !== startPages)
      fail(
        '7',
        `free ${freePages} + in flight ${inflight} + held ${opts.heldPages} != ${startPages} pages enqueued at boot`,
      );
  }
  const deep = opts.deep ?? vm.totalPages <= 1 << 22;
  if (deep) {
    // Items 2 and 12: outside free blocks, every page is initialised and is not a free head.
    let bi = 0;
    for (let s = 0; s < vm.nsegs; s++) {
      const end = vm.segFirst[s] + vm.segPages[s];
      for (let i = vm.segFirst[s]; i < end; ) {
        while (bi < nb && starts[sorted[bi]] + lens[sorted[bi]] <= i) bi++;
        if (bi < nb && starts[sorted[bi]] <= i) {
          i = starts[sorted[bi]] + lens[sorted[bi]];
          continue;
        }
        const m = meta[i];
        if (m === 0) fail('12', `page ${hex(vm.pa(i, s))} is neither free nor initialised`);
        if ((m & M_ORDER) !== vm.nOrd)
          fail('2', `page ${hex(vm.pa(i, s))} is marked as a free head but is on no queue`);
        i++;
      }
    }
  }
  return { freeBlocks: nb, freePages, lazyPages, explicitHeads };
}

/** Pages in phys_avail ∩ segments: what vm_page_startup enqueued. */
export function availPages(vm: VmPhys): number {
  let total = 0;
  for (const [a, b] of vm.availRanges()) {
    for (let s = 0; s < vm.nsegs; s++) {
      const lo = Math.max(a, vm.segStart[s]);
      const hi = Math.min(b, vm.segEnd[s]);
      if (hi > lo) total += (hi - lo) / vm.pageSize;
    }
  }
  return total;
}
