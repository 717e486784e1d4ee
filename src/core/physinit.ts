/**
 * Physical memory registration and vm_phys_init: mem_affinity (vm_phys_register_domains),
 * vm_phys_add_seg / _vm_phys_create_seg, phys_avail, and vm_phys_init itself (free lists,
 * vm_freelist_to_flind, first page indices, coalescing, sizing the page buffers). The only
 * writer of the segment, affinity and phys_avail tables and of the page buffers' identity; all
 * of it happens before start-up (phase 0 -> 1), and is read-only afterwards.
 * @internal
 */
import { DomainError, hex, MisalignedError, SegmentError, StateError } from './errors.js';
import { CTL, createPages, type PageViews, SEGF } from './layout.js';
import { FreeList, Pool } from './params.js';
import { refreshSegments } from './segments.js';
import { checkInit, ndomains, type PhysState } from './state.js';

/** Append {start, end, domain} to mem_affinity (before the first segment). */
export function addAffinity(s: PhysState, start: number, end: number, domain: number): void {
  if (s.c.ctl[CTL.PHASE] !== 0 || s.c.ctl[CTL.NRAWSEGS] > 0)
    throw new StateError('affinity ranges must be given before the first segment');
  const n = s.c.ctl[CTL.NAFFINITY];
  if (n >= s.profile.physSegMax) throw new DomainError('EAFFINITY', 'too many affinity ranges');
  if (!(start < end) || start % s.pageSize !== 0 || end % s.pageSize !== 0)
    throw new DomainError('EAFFINITY', `affinity range ${hex(start)}-${hex(end)} is empty or not page aligned`);
  if (!Number.isInteger(domain) || domain < 0 || domain >= s.profile.maxMemDom)
    throw new DomainError('EDOMAIN', `affinity domain ${domain} is outside 0..${s.profile.maxMemDom - 1}`);
  if (n > 0 && s.c.affinity[(n - 1) * 3 + 1] > start)
    throw new DomainError('EAFFINITY', `affinity range ${hex(start)}-${hex(end)} is not ascending and disjoint`);
  s.c.affinity[n * 3] = start;
  s.c.affinity[n * 3 + 1] = end;
  s.c.affinity[n * 3 + 2] = domain;
  s.c.ctl[CTL.NAFFINITY] = n + 1;
}

/** Number of domains the affinity table implies (vm_phys_register_domains: >1 or else 1). */
function affinityDomains(s: PhysState): number {
  let max = 0;
  for (let i = 0; i < s.c.ctl[CTL.NAFFINITY]; i++) max = Math.max(max, s.c.affinity[i * 3 + 2]);
  return max + 1;
}

/**
 * vm_phys_add_seg(start, end): cut at VM_LOWMEM_BOUNDARY (amd64) and VM_DMA32_BOUNDARY, and
 * with NUMA data at every affinity boundary (vm_phys_create_seg). Validates everything first.
 */
export function addSeg(s: PhysState, start: number, end: number): void {
  if (s.c.ctl[CTL.PHASE] !== 0) throw new StateError('segments must be added before init');
  const ps = s.pageSize;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0)
    throw new SegmentError('ERANGE', `segment ${hex(start)}-${hex(end)} is not a valid address range`);
  if (start % ps !== 0 || end % ps !== 0)
    throw new MisalignedError(`segment ${hex(start)}-${hex(end)} is not page aligned`);
  if (end <= start) throw new SegmentError('ERANGE', `segment ${hex(start)}-${hex(end)} is empty`);
  const pieces: number[] = [];
  let paddr = start;
  const low = s.profile.lowmemBoundary;
  if (low > 0 && paddr < low && end > low) {
    pieces.push(paddr, low);
    paddr = low;
  }
  const d32 = s.profile.dma32Boundary;
  if (paddr < d32 && end > d32) {
    pieces.push(paddr, d32);
    paddr = d32;
  }
  pieces.push(paddr, end);
  // vm_phys_create_seg: split at affinity ends when NUMA data is registered.
  const out: number[] = [];
  const multi = affinityDomains(s) > 1;
  for (let k = 0; k < pieces.length; k += 2) {
    let lo = pieces[k];
    const e = pieces[k + 1];
    if (!multi) {
      out.push(lo, e, 0);
      continue;
    }
    const naff = s.c.ctl[CTL.NAFFINITY];
    for (let i = 0; ; i++) {
      if (i >= naff) throw new DomainError('EAFFINITY', `Reached end of affinity info at ${hex(lo)}`);
      const as = s.c.affinity[i * 3];
      const ae = s.c.affinity[i * 3 + 1];
      const ad = s.c.affinity[i * 3 + 2];
      if (ae <= lo) continue;
      if (as > lo) throw new DomainError('EAFFINITY', `No affinity info for start ${hex(lo)}`);
      if (ae >= e) {
        out.push(lo, e, ad);
        break;
      }
      out.push(lo, ae, ad);
      lo = ae;
    }
  }
  const nraw = s.c.ctl[CTL.NRAWSEGS];
  if (nraw + out.length / 3 > s.profile.physSegMax)
    throw new SegmentError('ESEGMAX', `more than VM_PHYSSEG_MAX (${s.profile.physSegMax}) segments`);
  for (let k = 0; k < out.length; k += 3) createSeg(s, out[k], out[k + 1], out[k + 2]);
}

/** _vm_phys_create_seg: append and bubble back past segments with start >= end. */
function createSeg(s: PhysState, start: number, end: number, domain: number): void {
  const segs = s.c.segs;
  let i = s.c.ctl[CTL.NRAWSEGS];
  s.c.ctl[CTL.NRAWSEGS] = i + 1;
  while (i > 0 && segs[(i - 1) * SEGF.SIZE + SEGF.START] >= end) {
    for (let f = 0; f < SEGF.SIZE; f++) segs[i * SEGF.SIZE + f] = segs[(i - 1) * SEGF.SIZE + f];
    i--;
  }
  const b = i * SEGF.SIZE;
  segs[b + SEGF.START] = start;
  segs[b + SEGF.END] = end;
  segs[b + SEGF.DOMAIN] = domain;
  segs[b + SEGF.FLIND] = 0;
  segs[b + SEGF.FIRST] = 0;
}

/**
 * Declare phys_avail empty (before init): every page of every segment is allocated at boot and
 * nothing is free, instead of the default "phys_avail = the segments" that applies when no range
 * was added. Ranges added afterwards still count.
 */
export function availNone(s: PhysState): void {
  if (s.c.ctl[CTL.PHASE] !== 0) throw new StateError('phys_avail must be declared before init');
  if (s.c.ctl[CTL.NAVAIL] <= 0) s.c.ctl[CTL.NAVAIL] = -1;
}

/** Append [start, end) to phys_avail (ascending, disjoint). Optional: default = the segments. */
export function addAvail(s: PhysState, start: number, end: number): void {
  if (s.c.ctl[CTL.PHASE] !== 0) throw new StateError('phys_avail ranges must be added before init');
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end <= start)
    throw new SegmentError('ERANGE', `phys_avail range ${hex(start)}-${hex(end)} is empty or invalid`);
  if (start % s.pageSize !== 0 || end % s.pageSize !== 0)
    throw new MisalignedError(`phys_avail range ${hex(start)}-${hex(end)} is not page aligned`);
  // NAVAIL -1: declared empty by availNone; a range added afterwards makes it non-empty.
  const n = Math.max(0, s.c.ctl[CTL.NAVAIL]);
  if (n >= s.profile.physAvailMax) throw new SegmentError('EAVAILMAX', 'phys_avail is full');
  if (n > 0 && s.c.avail[n * 2 - 1] > start)
    throw new SegmentError('ERANGE', `phys_avail range ${hex(start)}-${hex(end)} is not ascending and disjoint`);
  s.c.avail[n * 2] = start;
  s.c.avail[n * 2 + 1] = end;
  s.c.ctl[CTL.NAVAIL] = n + 1;
}

/**
 * vm_phys_early_startup + vm_phys_init: decide the free lists (DMA32 threshold), map
 * VM_FREELIST_* to flind, give each segment its first page index and queues, coalesce
 * neighbours that share queues, and size the page buffers (zero-filled, untouched).
 */
export function init(s: PhysState): void {
  if (s.c.ctl[CTL.PHASE] !== 0) throw new StateError('init was already called');
  const ctl = s.c.ctl;
  const segs = s.c.segs;
  const n = ctl[CTL.NRAWSEGS];
  if (n === 0) throw new StateError('init needs at least one segment');
  // Check that no two segments overlap (FreeBSD does not, but a library must say so).
  for (let i = 1; i < n; i++) {
    if (segs[(i - 1) * SEGF.SIZE + SEGF.END] > segs[i * SEGF.SIZE + SEGF.START])
      throw new SegmentError('EOVERLAP', `segments ${i - 1} and ${i} overlap`);
  }
  // Size and allocate the page buffers before changing anything, so a refusal leaves no trace.
  let totalPages = 0;
  for (let i = 0; i < n; i++)
    totalPages += (segs[i * SEGF.SIZE + SEGF.END] - segs[i * SEGF.SIZE + SEGF.START]) / s.pageSize;
  if (totalPages > 0x7ffffff0)
    throw new SegmentError('ETOOBIG', `${totalPages} pages exceed the 2^31 page-index limit`);
  let pages: PageViews;
  try {
    pages = createPages(totalPages, ctl[CTL.SHARED] === 1);
  } catch (e) {
    throw new SegmentError('ETOOBIG', `cannot allocate metadata for ${totalPages} pages: ${(e as Error).message}`);
  }
  if (ctl[CTL.NAVAIL] < 0)
    ctl[CTL.NAVAIL] = 0; // declared empty: no page is free at boot
  else if (ctl[CTL.NAVAIL] === 0) {
    // No avail lines: phys_avail = the segment ranges as added (merged where they touch).
    let k = 0;
    for (let i = 0; i < n; i++) {
      const a = segs[i * SEGF.SIZE + SEGF.START];
      const e = segs[i * SEGF.SIZE + SEGF.END];
      if (k > 0 && s.c.avail[k * 2 - 1] === a) s.c.avail[k * 2 - 1] = e;
      else {
        s.c.avail[k * 2] = a;
        s.c.avail[k * 2 + 1] = e;
        k++;
      }
    }
    ctl[CTL.NAVAIL] = k;
  }
  const ndom = affinityDomains(s);
  ctl[CTL.NDOMAINS] = Math.max(ndom, 1);
  const p = s.profile;
  const FL_LOW = FreeList.LOWMEM;
  const FL_D32 = FreeList.DMA32;
  // Step 1: which lists exist (walk from the highest segment down).
  const present = [0, 0, 0];
  let npages = 0;
  for (let i = n - 1; i >= 0; i--) {
    const a = segs[i * SEGF.SIZE + SEGF.START];
    const e = segs[i * SEGF.SIZE + SEGF.END];
    if (p.lowmemBoundary > 0 && e <= p.lowmemBoundary) present[FL_LOW] = 1;
    else if ((p.dma32NpagesThreshold < 0 || npages > p.dma32NpagesThreshold) && e <= p.dma32Boundary)
      present[FL_D32] = 1;
    else {
      npages += (e - a) / p.pageSize;
      present[FreeList.DEFAULT] = 1;
    }
  }
  // Step 2: running totals minus one.
  let total = 0;
  for (let f = 0; f < p.nFreeList; f++) {
    total += present[f];
    ctl[CTL.FL_TO_FLIND + f] = total - 1;
  }
  ctl[CTL.NFREELISTS] = total;
  // Step 3: first page (SPARSE: running offset, before coalescing) and flind per segment.
  let first = 0;
  for (let i = 0; i < n; i++) {
    const b = i * SEGF.SIZE;
    const e = segs[b + SEGF.END];
    let fl: number = FreeList.DEFAULT;
    if (p.lowmemBoundary > 0 && e <= p.lowmemBoundary) fl = FL_LOW;
    else if (e <= p.dma32Boundary) fl = FL_D32;
    segs[b + SEGF.FLIND] = ctl[CTL.FL_TO_FLIND + fl];
    segs[b + SEGF.FIRST] = first;
    first += (e - segs[b + SEGF.START]) / p.pageSize;
  }
  // Step 4: coalesce neighbours that share free queues.
  let prev = 0;
  let cnt = n;
  let i = 1;
  while (i < cnt) {
    const pb = prev * SEGF.SIZE;
    const b = i * SEGF.SIZE;
    if (
      segs[pb + SEGF.END] === segs[b + SEGF.START] &&
      segs[pb + SEGF.DOMAIN] === segs[b + SEGF.DOMAIN] &&
      segs[pb + SEGF.FLIND] === segs[b + SEGF.FLIND]
    ) {
      segs[pb + SEGF.END] = segs[b + SEGF.END];
      cnt--;
      for (let t = i; t < cnt; t++)
        for (let f = 0; f < SEGF.SIZE; f++) segs[t * SEGF.SIZE + f] = segs[(t + 1) * SEGF.SIZE + f];
    } else {
      prev = i;
      i++;
    }
  }
  ctl[CTL.NSEGS] = cnt;
  ctl[CTL.TOTAL_PAGES] = first;
  ctl[CTL.DEFAULT_FREEPOOL] = Pool.LAZYINIT;
  s.meta = pages.meta;
  s.link = pages.link;
  ctl[CTL.PHASE] = 1;
  refreshSegments(s);
}

/** phys_avail as pairs (after init). */
export function availRanges(s: PhysState): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < s.c.ctl[CTL.NAVAIL]; i++) out.push([s.c.avail[i * 2], s.c.avail[i * 2 + 1]]);
  return out;
}

/** vm_phys_domain_match(prefer, low, high) with inclusive overlap tests. */
export function domainMatch(s: PhysState, prefer: number, low: number, high: number): number {
  checkInit(s);
  if (ndomains(s) === 1) return 0;
  let mask = 0;
  const aff = s.c.affinity;
  for (let i = 0; i < s.c.ctl[CTL.NAFFINITY]; i++) {
    if (aff[i * 3] <= high && aff[i * 3 + 1] >= low) mask |= 1 << aff[i * 3 + 2];
  }
  if (prefer !== -1 && prefer >= 0 && prefer < 31 && (mask & (1 << prefer)) !== 0) return prefer;
  if (mask === 0)
    throw new DomainError('EDOMAIN', `Impossible constraint: no domain has memory in ${hex(low)}..${hex(high)}`);
  return 31 - Math.clz32(mask & -mask);
}
