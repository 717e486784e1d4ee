/**
 * Contiguous allocation: vm_phys_alloc_contig, vm_phys_find_queues_contig and
 * vm_phys_find_freelist_contig. Reads queues through queues.ts's decoded links (lazy runs
 * included) and claims blocks with its primitives; owns no state of its own. A claimed run is
 * recorded as allocated through owner.ts (RUN pieces).
 */
import { ConstraintError, hex, RangeArgError, StateError } from './errors.js';
import { CTL } from './layout.js';
import { markBlocks, runRec } from './owner.js';
import { finishInitOnDemand } from './pages.js';
import { Pool } from './params.js';
import { orderAt, poolAt, qAddHead, qHead, qNext, qRem } from './queues.js';
import { pa, paOf, segDomain, segEndIdx, segFirst, segFlind, segOfIdx } from './segments.js';
import { ndomains, type PhysState, qIndex } from './state.js';
import type { VmPhys } from './vmphys.js';

/** powerof2(x) as FreeBSD defines it: true for 0 too. */
function powerOf2(x: number): boolean {
  if (x === 0) return true;
  if (!Number.isSafeInteger(x) || x < 0) return false;
  // x & (x - 1) == 0, for numbers up to 2^53.
  const hi = Math.floor(x / 4294967296);
  const lo = x % 4294967296;
  if (hi === 0) return (lo & (lo - 1)) === 0;
  return lo === 0 && (hi & (hi - 1)) === 0;
}

/** vm_addr_ok(pa, size, alignment, boundary): aligned, and [pa, pa+size) in one boundary window. */
export function addrOk(pa: number, size: number, alignment: number, boundary: number): boolean {
  // vm_addr_align_ok: (pa & (alignment - 1)) == 0; alignment 0 therefore admits only pa 0.
  if (alignment === 0) {
    if (pa !== 0) return false;
  } else if (alignment > 1 && pa % alignment !== 0) return false;
  if (boundary === 0) return true;
  return Math.floor(pa / boundary) === Math.floor((pa + size - 1) / boundary);
}

/**
 * vm_phys_alloc_contig(domain, npages, low, high, alignment, boundary): the first page of a run
 * of npages free pages with low ≤ pa, pa + size ≤ high, aligned, not crossing a boundary
 * multiple, inside one segment of `domain`; or null (nothing changes). Segments are searched
 * from the highest down; queue tables shared by merged segments are searched once.
 */
export function allocContig(
  vm: VmPhys,
  domain: number,
  npages: number,
  low: number,
  high: number,
  alignment: number,
  boundary: number,
): number | null {
  const s = vm.state;
  if (s.c.ctl[CTL.PHASE] !== 2) throw new StateError('the allocator has not been started (call startup)');
  if (!Number.isInteger(domain) || domain < 0 || domain >= ndomains(s))
    throw new RangeArgError('EDOMAIN', `domain ${domain} is outside 0..${ndomains(s) - 1}`);
  if (!Number.isSafeInteger(npages) || npages < 1)
    throw new RangeArgError('ENPAGES', `contig: npages ${npages} must be at least 1`);
  if (!powerOf2(alignment)) throw new ConstraintError(`contig: alignment ${hex(alignment)} is not a power of two`);
  if (!powerOf2(boundary)) throw new ConstraintError(`contig: boundary ${hex(boundary)} is not a power of two`);
  if (!(low >= 0) || !(high >= 0)) throw new RangeArgError('ERANGE', 'contig: low and high must be non-negative');
  if (low >= high) return null;
  const run = findContig(s, domain, npages, low, high, alignment, boundary, null);
  if (run < 0) return null;
  // The queue table the run was found in: its segment's (merged segments share one).
  const seg = segOfIdx(s, run);
  const queues = qIndex(s, domain, segFlind(s, seg), 0, 0);
  // Claim the run: it is covered by whole free blocks, the last of which may overshoot.
  const nOrd = s.nOrd;
  let m = run;
  const end = run + npages;
  while (m < end) {
    const oind = orderAt(s, m);
    const pool = poolAt(s, m);
    qRem(s, queues + pool * nOrd + oind, m);
    finishInitOnDemand(s, m, oind);
    m += 1 << oind;
  }
  // Give back the overshoot [end, m) to DEFAULT at the head (vm_phys_enq_range, tail = 0).
  let idx = end;
  let left = m - end;
  const qDef = queues + Pool.DEFAULT * nOrd;
  while (left > 0) {
    const order = 31 - Math.clz32(left & -left);
    qAddHead(s, qDef + order, idx, order, Pool.DEFAULT);
    idx += 1 << order;
    left -= 1 << order;
  }
  // Ownership: the run as RUN pieces (its maximal aligned blocks), so that it may be freed whole,
  // in sub-runs (free_contig) or in aligned blocks and pages (free_pages), as FreeBSD's callers do.
  markBlocks(s, run, end, seg, runRec(0));
  return paOf(s, run);
}

/** Counters a caller of `findContig` may pass to learn how much the search looked at. */
export interface ContigStats {
  /** Free blocks (queue entries) examined, across every segment tried. */
  examined: number;
}

/**
 * The search of vm_phys_alloc_contig, without the claim: the first page of a run of npages free
 * pages of `domain` satisfying low, high, alignment and boundary (arguments already checked), or
 * -1. Segments are searched from the highest down; queue tables shared by merged segments are
 * searched once. Writes nothing but `stats.examined` (when stats is given).
 */
export function findContig(
  s: PhysState,
  domain: number,
  npages: number,
  low: number,
  high: number,
  alignment: number,
  boundary: number,
  stats: ContigStats | null,
): number {
  const size = npages * s.pageSize;
  let queues = -1;
  for (let seg = s.nsegs - 1; seg >= 0; seg--) {
    if (s.segStart[seg] >= high || segDomain(s, seg) !== domain) continue;
    if (low >= s.segEnd[seg]) break;
    const paStart = Math.max(low, s.segStart[seg]);
    const paEnd = Math.min(high, s.segEnd[seg]);
    if (paEnd - paStart < size) continue;
    const q = qIndex(s, domain, segFlind(s, seg), 0, 0);
    if (q === queues) continue;
    queues = q;
    const run = findQueuesContig(s, q, npages, low, high, alignment, boundary, stats);
    if (run >= 0) return run;
  }
  return -1;
}

/**
 * vm_phys_find_queues_contig: best-fit order first, pools from vm_default_freepool, queue order;
 * for requests above the maximum block size, runs of max-order blocks.
 */
function findQueuesContig(
  s: PhysState,
  queues: number,
  npages: number,
  low: number,
  high: number,
  alignment: number,
  boundary: number,
  stats: ContigStats | null,
): number {
  const order = npages <= 1 ? 0 : 32 - Math.clz32(npages - 1); // flsl(npages - 1)
  const size = npages * s.pageSize;
  const nOrd = s.nOrd;
  const dfp = s.c.ctl[CTL.DEFAULT_FREEPOOL];
  for (let oind = order; oind < nOrd; oind++) {
    for (let pind = dfp; pind < s.nPool; pind++) {
      const q = queues + pind * nOrd + oind;
      let seg = -1;
      for (let m = qHead(s, q); m >= 0; m = qNext(s, q, m)) {
        if (stats !== null) stats.examined++;
        if (seg < 0 || m < segFirst(s, seg) || m >= segEndIdx(s, seg)) seg = segOfIdx(s, m);
        const addr = pa(s, m, seg);
        if (low <= addr && addr + size <= high && addrOk(addr, size, alignment, boundary)) return m;
      }
    }
  }
  if (order < nOrd) return -1;
  // vm_phys_find_freelist_contig, per pool: a run of consecutive free max-order blocks (any
  // pool) starting at an aligned block. Reads `order` only at max-block-aligned pages (lazy
  // heads decode).
  const maxOrder = s.maxOrder;
  const cp = s.chunkPages;
  const maxSize = cp * s.pageSize;
  for (let pind = dfp; pind < s.nPool; pind++) {
    const q = queues + pind * nOrd + maxOrder;
    for (let m = qHead(s, q); m >= 0; m = qNext(s, q, m)) {
      if (stats !== null) stats.examined++;
      const seg = segOfIdx(s, m);
      const addr = pa(s, m, seg);
      const floor = Math.max(low, s.segStart[seg]);
      if (addr < floor) continue;
      if (addr >= maxSize && addr - maxSize >= floor && orderAt(s, m - cp) === maxOrder) continue;
      const limit = Math.min(high, s.segEnd[seg]);
      let ret = m;
      let rpa = addr;
      while (!addrOk(rpa, size, alignment, boundary) && rpa + size <= limit && orderAt(s, ret + cp) === maxOrder) {
        ret += cp;
        rpa += maxSize;
      }
      if (rpa + size > limit) continue;
      let it = ret;
      while (it < ret + npages && orderAt(s, it) === maxOrder) it += cp;
      if (it < ret + npages) continue;
      return ret;
    }
  }
  return -1;
}
