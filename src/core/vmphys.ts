/**
 * The allocator: FreeBSD's sys/vm/vm_phys.c (upstream 2025, after D40403 and D45409) over
 * struct-of-arrays typed arrays. Owns every mutation of segments, free queues and page metadata;
 * contig.ts, sysctl.ts, verify.ts and snapshot.ts are friends that read (and, for contig, call)
 * the queue primitives here. Callers must hold the domain's free lock when sharing across workers
 * (workers/attach.ts does that); the methods themselves never block.
 *
 * Page state ("struct vm_page" reduced to what vm_phys reads), one byte per page in `meta`:
 *   0                 never initialised (vm_page_init_page not yet run)
 *   0x80 | pool<<4 | order   initialised; order 13 (VM_NFREEORDER) = not the head of a free block;
 *                            pool 3 (VM_NFREEPOOL) = "no valid pool" as vm_phys_finish_init writes.
 * Pages are numbered by a packed index: segments one after another in address order (FreeBSD's
 * VM_PHYSSEG_SPARSE layout, used for both ports; holes cost nothing). Physical addresses are
 * numbers (exact to 2^53); page indices are int32.
 *
 * Lazy start-up in O(segments): the max-order chunks in the middle of each free run are not
 * written at all. They form "lazy runs" (table `runs`): a chunk head inside a run whose meta byte
 * is still 0 is an implicit LAZYINIT head of order VM_NFREEORDER-1, and a 0 queue link means "the
 * implicit neighbour" (next chunk of the run, or first chunk of the next run on the same queue).
 * Removing a chunk writes its neighbours' links explicitly, so the list stays exact. Every
 * observable result (addresses, counts, vm.phys_free) is FreeBSD's.
 */
import {
  DomainError,
  DoubleFreeError,
  hex,
  MisalignedError,
  NotAllocatedError,
  PoolError,
  RangeArgError,
  SegmentError,
  StateError,
} from './errors.js';
import {
  type ControlViews,
  CTL,
  createControl,
  createPages,
  DEFAULT_MAX_RUNS,
  META_BYTES_PER_PAGE,
  type PageViews,
  RUNF,
  SEGF,
  STAT,
} from './layout.js';
import { amd64, FreeList, Pool, type Profile } from './params.js';

/** Initialised bit of the meta byte. */
export const M_INIT = 0x80;
/** Mask of the order bits. */
export const M_ORDER = 0x0f;

/** Per-pool page counts, as the `counts` script command prints them. */
export interface PoolCounts {
  lazyinit: number;
  default: number;
  direct: number;
  total: number;
}

/** Result of `findRange`: the segment index and the page-aligned [start, end) addresses. */
export interface FoundRange {
  segind: number;
  start: number;
  end: number;
}

/** Options for a new allocator. */
export interface VmPhysOptions {
  profile?: Profile;
  /** Put all state in SharedArrayBuffers (default true) so workers can attach. */
  shared?: boolean;
  /** Capacity of the lazy-run table. */
  maxRuns?: number;
}

/** Startup modes: lazy = debug.vm.lazy_page_init=1 (default), eager = 0. */
export type StartupMode = 'lazy' | 'eager';

export class VmPhys {
  readonly profile: Profile;
  readonly c: ControlViews;
  /** Page views; empty until `init`. */
  p: PageViews;
  // The hot paths' views, held directly (one load fewer per access than this.c.x / this.p.x;
  // metaV/linkV are rebound whenever `p` changes). Queue heads, tails and counts go through ONE
  // Int32Array over the whole control buffer at offsets oHead/oTail/oCount: compiled code then
  // loads one array's base and length per function instead of three.
  private c32: Int32Array;
  private readonly oHead: number;
  private readonly oTail: number;
  private readonly oCount: number;
  private metaV: Uint8Array;
  private linkV: Int32Array;
  // Constants cached from the profile (hot paths read fields, not objects).
  readonly nOrd: number; // VM_NFREEORDER
  readonly maxOrder: number; // VM_NFREEORDER - 1
  readonly nPool: number;
  readonly nFl: number;
  readonly pageSize: number;
  readonly chunkPages: number; // 1 << maxOrder
  // Segment cache (derived from the shared segment table; rebuilt by `refreshSegments`).
  nsegs = 0;
  segStart: Float64Array;
  segEnd: Float64Array;
  segFirst: Int32Array; // first page index
  segPages: Int32Array;
  segDomain: Int32Array;
  segFlind: Int32Array;
  segAdj: Int32Array; // (startPfn - first) mod 2^32: (idx + adj) has the pfn's low bits
  /**
   * Per segment, for the free path in one array: [first, end, adj, qbase] at 4 * seg, where
   * qbase = qIndex(domain, flind, 0, 0) is the segment's row of free queues.
   */
  private segHot: Int32Array;
  /** qIndex(domain, vm_freelist_to_flind[freelist], 0, 0) per [domain][freelist], -1: no such list. */
  private flQBase: Int32Array;
  private lastRun = 0;
  /** One-entry cache of the last segment looked up (addresses and indices cluster). */
  private lastSeg = 0;
  /** 1 / PAGE_SIZE, exact (a power of two). */
  readonly invPageSize: number;
  /** Page index of the last enq_chunk look-ahead initialisation (start-up only). */
  private lastLookAhead = -1;

  constructor(opts: VmPhysOptions = {}, control?: ControlViews, pages?: PageViews) {
    const profile = opts.profile ?? amd64;
    this.profile = profile;
    this.nOrd = profile.nFreeOrder;
    this.maxOrder = profile.nFreeOrder - 1;
    this.nPool = profile.nFreePool;
    this.nFl = profile.nFreeList;
    this.pageSize = profile.pageSize;
    this.invPageSize = 1 / profile.pageSize;
    this.chunkPages = 1 << this.maxOrder;
    this.c = control ?? createControl(profile, opts.shared ?? true, opts.maxRuns ?? DEFAULT_MAX_RUNS);
    this.p = pages ?? createPages(0, false);
    this.c32 = new Int32Array(this.c.buffer, 0, this.c.buffer.byteLength >> 2);
    this.oHead = this.c.qHead.byteOffset >> 2;
    this.oTail = this.c.qTail.byteOffset >> 2;
    this.oCount = this.c.qCount.byteOffset >> 2;
    this.metaV = this.p.meta;
    this.linkV = this.p.link;
    const n = profile.physSegMax;
    this.segStart = new Float64Array(n);
    this.segEnd = new Float64Array(n);
    this.segFirst = new Int32Array(n + 1);
    this.segPages = new Int32Array(n);
    this.segDomain = new Int32Array(n);
    this.segFlind = new Int32Array(n);
    this.segAdj = new Int32Array(n);
    this.segHot = new Int32Array(4 * n);
    this.flQBase = new Int32Array(profile.maxMemDom * profile.nFreeList).fill(-1);
    if (control) this.refreshSegments();
  }

  // ------------------------------------------------------------------ small accessors

  get phase(): number {
    return this.c.ctl[CTL.PHASE];
  }
  get ndomains(): number {
    return Math.max(1, this.c.ctl[CTL.NDOMAINS]);
  }
  get nfreelists(): number {
    return this.c.ctl[CTL.NFREELISTS];
  }
  get totalPages(): number {
    return this.c.ctl[CTL.TOTAL_PAGES];
  }
  /** vm_default_freepool. */
  get defaultFreePool(): number {
    return this.c.ctl[CTL.DEFAULT_FREEPOOL];
  }
  /** vm_freelist_to_flind[freelist]. */
  flindOf(freelist: number): number {
    return this.c.ctl[CTL.FL_TO_FLIND + freelist];
  }
  /** Queue index of [domain][flind][pool][order]. */
  qIndex(domain: number, flind: number, pool: number, order: number): number {
    return ((domain * this.nFl + flind) * this.nPool + pool) * this.nOrd + order;
  }
  /** Physical address of a page index (caller knows the segment). */
  pa(idx: number, seg: number): number {
    return this.segStart[seg] + (idx - this.segFirst[seg]) * this.pageSize;
  }
  /** Segment of a page index (one-entry cache, then binary search over first indices). */
  segOfIdx(idx: number): number {
    // Small on purpose (inlined into callers); the search lives in segOfIdxSlow.
    const c = this.lastSeg;
    const f = this.segFirst;
    return idx >= f[c] && idx < f[c + 1] ? c : this.segOfIdxSlow(idx);
  }
  private segOfIdxSlow(idx: number): number {
    let lo = 0;
    let hi = this.nsegs - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.segFirst[mid] <= idx) lo = mid;
      else hi = mid - 1;
    }
    this.lastSeg = lo;
    return lo;
  }
  /** Physical address of a page index. */
  paOf(idx: number): number {
    return this.pa(idx, this.segOfIdx(idx));
  }
  /** vm_phys_lookup_segind + paddr_to_seg: the segment containing pa, or -1. */
  segOfPa(pa: number): number {
    const c = this.lastSeg;
    if (c < this.nsegs && pa >= this.segStart[c] && pa < this.segEnd[c]) return c;
    let lo = 0;
    let hi = this.nsegs;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.segEnd[mid] <= pa) lo = mid + 1;
      else hi = mid;
    }
    if (lo < this.nsegs && pa >= this.segStart[lo]) {
      this.lastSeg = lo;
      return lo;
    }
    return -1;
  }
  /** Page index of pa inside segment seg (vm_phys_seg_paddr_to_vm_page). */
  idxIn(seg: number, pa: number): number {
    return this.segFirst[seg] + Math.floor((pa - this.segStart[seg]) * this.invPageSize);
  }
  /** vm_phys_paddr_to_vm_page: the page index of pa, or -1 outside every segment. */
  paddrToPage(pa: number): number {
    const s = this.segOfPa(pa);
    return s < 0 ? -1 : this.idxIn(s, pa);
  }

  /** Rebuild the segment cache from the shared segment table. */
  refreshSegments(): void {
    const segs = this.c.segs;
    const n = this.c.ctl[CTL.NSEGS];
    this.nsegs = n;
    for (let i = 0; i < n; i++) {
      const b = i * SEGF.SIZE;
      this.segStart[i] = segs[b + SEGF.START];
      this.segEnd[i] = segs[b + SEGF.END];
      this.segDomain[i] = segs[b + SEGF.DOMAIN];
      this.segFlind[i] = segs[b + SEGF.FLIND];
      this.segFirst[i] = segs[b + SEGF.FIRST];
      this.segPages[i] = (this.segEnd[i] - this.segStart[i]) / this.pageSize;
      const startPfn = this.segStart[i] / this.pageSize;
      this.segAdj[i] = (startPfn - this.segFirst[i]) | 0;
      this.segHot[4 * i] = this.segFirst[i];
      this.segHot[4 * i + 1] = this.segFirst[i] + this.segPages[i];
      this.segHot[4 * i + 2] = this.segAdj[i];
      this.segHot[4 * i + 3] = this.qIndex(this.segDomain[i], this.segFlind[i], 0, 0);
    }
    this.segFirst[n] = n > 0 ? this.segFirst[n - 1] + this.segPages[n - 1] : 0;
    this.lastSeg = 0;
    for (let d = 0; d < this.profile.maxMemDom; d++)
      for (let fl = 0; fl < this.nFl; fl++) {
        const flind = this.c.ctl[CTL.FL_TO_FLIND + fl];
        this.flQBase[d * this.nFl + fl] = flind < 0 || n === 0 ? -1 : this.qIndex(d, flind, 0, 0);
      }
  }

  // ------------------------------------------------------------------ configuration (before init)

  /** Append {start, end, domain} to mem_affinity (before the first segment). */
  addAffinity(start: number, end: number, domain: number): void {
    if (this.phase !== 0 || this.c.ctl[CTL.NRAWSEGS] > 0)
      throw new StateError('affinity ranges must be given before the first segment');
    const n = this.c.ctl[CTL.NAFFINITY];
    if (n >= this.profile.physSegMax) throw new DomainError('EAFFINITY', 'too many affinity ranges');
    if (!(start < end) || start % this.pageSize !== 0 || end % this.pageSize !== 0)
      throw new DomainError('EAFFINITY', `affinity range ${hex(start)}-${hex(end)} is empty or not page aligned`);
    if (!Number.isInteger(domain) || domain < 0 || domain >= this.profile.maxMemDom)
      throw new DomainError('EDOMAIN', `affinity domain ${domain} is outside 0..${this.profile.maxMemDom - 1}`);
    if (n > 0 && this.c.affinity[(n - 1) * 3 + 1] > start)
      throw new DomainError('EAFFINITY', `affinity range ${hex(start)}-${hex(end)} is not ascending and disjoint`);
    this.c.affinity[n * 3] = start;
    this.c.affinity[n * 3 + 1] = end;
    this.c.affinity[n * 3 + 2] = domain;
    this.c.ctl[CTL.NAFFINITY] = n + 1;
  }

  /** Number of domains the affinity table implies (vm_phys_register_domains: >1 or else 1). */
  private affinityDomains(): number {
    let max = 0;
    for (let i = 0; i < this.c.ctl[CTL.NAFFINITY]; i++) max = Math.max(max, this.c.affinity[i * 3 + 2]);
    return max + 1;
  }

  /**
   * vm_phys_add_seg(start, end): cut at VM_LOWMEM_BOUNDARY (amd64) and VM_DMA32_BOUNDARY, and
   * with NUMA data at every affinity boundary (vm_phys_create_seg). Validates everything first.
   */
  addSeg(start: number, end: number): void {
    if (this.phase !== 0) throw new StateError('segments must be added before init');
    const ps = this.pageSize;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0)
      throw new SegmentError('ERANGE', `segment ${hex(start)}-${hex(end)} is not a valid address range`);
    if (start % ps !== 0 || end % ps !== 0)
      throw new MisalignedError(`segment ${hex(start)}-${hex(end)} is not page aligned`);
    if (end <= start) throw new SegmentError('ERANGE', `segment ${hex(start)}-${hex(end)} is empty`);
    const pieces: number[] = [];
    let paddr = start;
    const low = this.profile.lowmemBoundary;
    if (low > 0 && paddr < low && end > low) {
      pieces.push(paddr, low);
      paddr = low;
    }
    const d32 = this.profile.dma32Boundary;
    if (paddr < d32 && end > d32) {
      pieces.push(paddr, d32);
      paddr = d32;
    }
    pieces.push(paddr, end);
    // vm_phys_create_seg: split at affinity ends when NUMA data is registered.
    const out: number[] = [];
    const multi = this.affinityDomains() > 1;
    for (let k = 0; k < pieces.length; k += 2) {
      let s = pieces[k];
      const e = pieces[k + 1];
      if (!multi) {
        out.push(s, e, 0);
        continue;
      }
      const naff = this.c.ctl[CTL.NAFFINITY];
      for (let i = 0; ; i++) {
        if (i >= naff) throw new DomainError('EAFFINITY', `Reached end of affinity info at ${hex(s)}`);
        const as = this.c.affinity[i * 3];
        const ae = this.c.affinity[i * 3 + 1];
        const ad = this.c.affinity[i * 3 + 2];
        if (ae <= s) continue;
        if (as > s) throw new DomainError('EAFFINITY', `No affinity info for start ${hex(s)}`);
        if (ae >= e) {
          out.push(s, e, ad);
          break;
        }
        out.push(s, ae, ad);
        s = ae;
      }
    }
    const nraw = this.c.ctl[CTL.NRAWSEGS];
    if (nraw + out.length / 3 > this.profile.physSegMax)
      throw new SegmentError('ESEGMAX', `more than VM_PHYSSEG_MAX (${this.profile.physSegMax}) segments`);
    for (let k = 0; k < out.length; k += 3) this.createSeg(out[k], out[k + 1], out[k + 2]);
  }

  /** _vm_phys_create_seg: append and bubble back past segments with start >= end. */
  private createSeg(start: number, end: number, domain: number): void {
    const segs = this.c.segs;
    let i = this.c.ctl[CTL.NRAWSEGS];
    this.c.ctl[CTL.NRAWSEGS] = i + 1;
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

  /** Append [start, end) to phys_avail (ascending, disjoint). Optional: default = the segments. */
  addAvail(start: number, end: number): void {
    if (this.phase !== 0) throw new StateError('phys_avail ranges must be added before init');
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end <= start)
      throw new SegmentError('ERANGE', `phys_avail range ${hex(start)}-${hex(end)} is empty or invalid`);
    if (start % this.pageSize !== 0 || end % this.pageSize !== 0)
      throw new MisalignedError(`phys_avail range ${hex(start)}-${hex(end)} is not page aligned`);
    const n = this.c.ctl[CTL.NAVAIL];
    if (n >= this.profile.physAvailMax) throw new SegmentError('EAVAILMAX', 'phys_avail is full');
    if (n > 0 && this.c.avail[n * 2 - 1] > start)
      throw new SegmentError('ERANGE', `phys_avail range ${hex(start)}-${hex(end)} is not ascending and disjoint`);
    this.c.avail[n * 2] = start;
    this.c.avail[n * 2 + 1] = end;
    this.c.ctl[CTL.NAVAIL] = n + 1;
  }

  /**
   * vm_phys_early_startup + vm_phys_init: decide the free lists (DMA32 threshold), map
   * VM_FREELIST_* to flind, give each segment its first page index and queues, coalesce
   * neighbours that share queues, and size the page buffers (zero-filled, untouched).
   */
  init(): void {
    if (this.phase !== 0) throw new StateError('init was already called');
    const ctl = this.c.ctl;
    const segs = this.c.segs;
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
      totalPages += (segs[i * SEGF.SIZE + SEGF.END] - segs[i * SEGF.SIZE + SEGF.START]) / this.pageSize;
    if (totalPages > 0x7ffffff0)
      throw new SegmentError('ETOOBIG', `${totalPages} pages exceed the 2^31 page-index limit`);
    let pages: PageViews;
    try {
      pages = createPages(totalPages, ctl[CTL.SHARED] === 1);
    } catch (e) {
      throw new SegmentError('ETOOBIG', `cannot allocate metadata for ${totalPages} pages: ${(e as Error).message}`);
    }
    if (ctl[CTL.NAVAIL] === 0) {
      // No avail lines: phys_avail = the segment ranges as added (merged where they touch).
      let k = 0;
      for (let i = 0; i < n; i++) {
        const s = segs[i * SEGF.SIZE + SEGF.START];
        const e = segs[i * SEGF.SIZE + SEGF.END];
        if (k > 0 && this.c.avail[k * 2 - 1] === s) this.c.avail[k * 2 - 1] = e;
        else {
          this.c.avail[k * 2] = s;
          this.c.avail[k * 2 + 1] = e;
          k++;
        }
      }
      ctl[CTL.NAVAIL] = k;
    }
    const ndom = this.affinityDomains();
    ctl[CTL.NDOMAINS] = Math.max(ndom, 1);
    const p = this.profile;
    const FL_LOW = FreeList.LOWMEM;
    const FL_D32 = FreeList.DMA32;
    // Step 1: which lists exist (walk from the highest segment down).
    const present = [0, 0, 0];
    let npages = 0;
    for (let i = n - 1; i >= 0; i--) {
      const s = segs[i * SEGF.SIZE + SEGF.START];
      const e = segs[i * SEGF.SIZE + SEGF.END];
      if (p.lowmemBoundary > 0 && e <= p.lowmemBoundary) present[FL_LOW] = 1;
      else if ((p.dma32NpagesThreshold < 0 || npages > p.dma32NpagesThreshold) && e <= p.dma32Boundary)
        present[FL_D32] = 1;
      else {
        npages += (e - s) / p.pageSize;
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
    this.p = pages;
    this.metaV = pages.meta;
    this.linkV = pages.link;
    ctl[CTL.PHASE] = 1;
    this.refreshSegments();
  }

  /** phys_avail as pairs (after init). */
  availRanges(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = 0; i < this.c.ctl[CTL.NAVAIL]; i++) out.push([this.c.avail[i * 2], this.c.avail[i * 2 + 1]]);
    return out;
  }

  // ------------------------------------------------------------------ page metadata

  /** vm_page_init_page: initialised, not a free head, the given pool. */
  initPage(idx: number, pool: number): void {
    this.p.meta[idx] = M_INIT | (pool << 4) | this.nOrd;
    this.c.stats[STAT.PAGES_INITIALIZED]++;
  }

  /** Is idx the head of an implicit (never materialised) lazy max-order chunk? */
  isImplicitHead(idx: number): boolean {
    if (this.p.meta[idx] !== 0) return false;
    const r = this.runOf(idx);
    if (r < 0) return false;
    const runs = this.c.runs;
    const b = r * RUNF.SIZE;
    return (idx - runs[b + RUNF.START]) % this.chunkPages === 0;
  }

  /** The order field of a page (m->order), decoding implicit lazy heads; VM_NFREEORDER if none. */
  orderAt(idx: number): number {
    const m = this.p.meta[idx];
    if (m !== 0) return m & M_ORDER;
    return this.isImplicitHead(idx) ? this.maxOrder : this.nOrd;
  }
  /** The pool field of a page (m->pool); implicit heads and uninitialised pages read LAZYINIT. */
  poolAt(idx: number): number {
    return (this.p.meta[idx] >> 4) & 7;
  }

  /**
   * vm_phys_finish_init(m, order): if the block's head is in LAZYINIT, initialise its other pages
   * with pool VM_NFREEPOOL. The head stays as it is.
   */
  finishInit(idx: number, order: number): void {
    if (((this.p.meta[idx] >> 4) & 7) !== Pool.LAZYINIT) return;
    const n = 1 << order;
    if (n > 1) {
      this.p.meta.fill(M_INIT | (this.nPool << 4) | this.nOrd, idx + 1, idx + n);
      const st = this.c.stats;
      st[STAT.PAGES_INITIALIZED] += n - 1;
      st[STAT.META_BYTES_TOUCHED] += n - 1;
    }
  }

  // ------------------------------------------------------------------ lazy runs

  /** The lazy run containing idx (binary search, with a one-entry cache), or -1. */
  runOf(idx: number): number {
    const runs = this.c.runs;
    const nr = this.c.ctl[CTL.NRUNS];
    if (nr === 0) return -1;
    let r = this.lastRun;
    if (r < nr && runs[r * RUNF.SIZE + RUNF.START] <= idx && idx < runs[r * RUNF.SIZE + RUNF.END]) return r;
    let lo = 0;
    let hi = nr - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (runs[mid * RUNF.SIZE + RUNF.START] <= idx) lo = mid;
      else hi = mid - 1;
    }
    r = lo;
    if (runs[r * RUNF.SIZE + RUNF.START] <= idx && idx < runs[r * RUNF.SIZE + RUNF.END]) {
      this.lastRun = r;
      return r;
    }
    return -1;
  }

  /** Register the max-order chunks [start, end) of a lazy run on queue q (at its tail). */
  private addLazyRun(q: number, start: number, end: number): void {
    const ctl = this.c.ctl;
    const runs = this.c.runs;
    const r = ctl[CTL.NRUNS];
    if (r >= this.c.maxRuns) {
      // Table full: fall back to explicit chunks (exact, just not O(1)).
      for (let m = start; m < end; m += this.chunkPages) {
        this.initPage(m, Pool.LAZYINIT);
        this.qAdd(q, m, this.maxOrder, Pool.LAZYINIT, true);
      }
      return;
    }
    const b = r * RUNF.SIZE;
    runs[b + RUNF.START] = start;
    runs[b + RUNF.END] = end;
    runs[b + RUNF.QUEUE] = q;
    runs[b + RUNF.NEXT] = -1;
    runs[b + RUNF.PREV] = -1;
    ctl[CTL.NRUNS] = r + 1;
    // A look-ahead may have initialised this head; implicit heads must read 0. Only the last
    // look-ahead can have reached it, so no fresh metadata page is read here.
    if (this.lastLookAhead === start) this.p.meta[start] = 0;
    const tail = this.c.qTail[q];
    if (tail < 0) {
      this.c.qHead[q] = start;
    } else {
      // The queue's tail is the last chunk of the previous run on this queue (implicit).
      // Lazy runs are only added by vm_page_startup (LAZYINIT is never a caller's pool), when
      // nothing has been removed yet: a tail that ends a run is implicit, and no fresh
      // metadata page needs to be read to know it.
      const pr = this.runOf(tail);
      if (pr >= 0 && runs[pr * RUNF.SIZE + RUNF.END] - this.chunkPages === tail) {
        runs[pr * RUNF.SIZE + RUNF.NEXT] = r;
        runs[b + RUNF.PREV] = pr;
      } else {
        this.p.link[2 * tail] = start + 1;
        this.p.link[2 * start + 1] = tail + 1;
      }
    }
    this.c.qTail[q] = end - this.chunkPages;
    this.c.qCount[q] += (end - start) / this.chunkPages;
  }

  /** Decoded next link of a queued page (-1 at the end). */
  nextOf(idx: number): number {
    const v = this.p.link[2 * idx];
    if (v > 0) return v - 1;
    if (v < 0) return -1;
    const r = this.runOf(idx);
    if (r < 0) return -1;
    const runs = this.c.runs;
    const b = r * RUNF.SIZE;
    if (idx + this.chunkPages < runs[b + RUNF.END]) return idx + this.chunkPages;
    const nr = runs[b + RUNF.NEXT];
    return nr < 0 ? -1 : runs[nr * RUNF.SIZE + RUNF.START];
  }
  /** Decoded previous link of a queued page (-1 at the head). */
  prevOf(idx: number): number {
    const v = this.p.link[2 * idx + 1];
    if (v > 0) return v - 1;
    if (v < 0) return -1;
    const r = this.runOf(idx);
    if (r < 0) return -1;
    const runs = this.c.runs;
    const b = r * RUNF.SIZE;
    if (idx - this.chunkPages >= runs[b + RUNF.START]) return idx - this.chunkPages;
    const pr = runs[b + RUNF.PREV];
    return pr < 0 ? -1 : runs[pr * RUNF.SIZE + RUNF.END] - this.chunkPages;
  }

  // ------------------------------------------------------------------ queue primitives

  /** vm_freelist_add: mark idx as a free head of `order` in `pool`, insert at tail or head. */
  qAdd(q: number, idx: number, order: number, pool: number, tail: boolean): void {
    if (tail) this.qAddTail(q, idx, order, pool);
    else this.qAddHead(q, idx, order, pool);
  }

  /**
   * qAdd at the tail (vm_freelist_add(..., tail = 1): every free and split). Small on purpose,
   * so that the compiler inlines it into the free and split paths. Page indices are < 2^31;
   * link slots are computed as uint32 (`(i << 1) >>> 0`: right for every index < 2^31, where
   * `2 * i` would need an overflow check and `i << 1` alone goes negative from 2^30 on).
   */
  qAddTail(q: number, idx: number, order: number, pool: number): void {
    const c32 = this.c32;
    const tq = (this.oTail + q) | 0;
    this.metaV[idx] = M_INIT | (pool << 4) | order;
    const t = c32[tq];
    if (t < 0) c32[(this.oHead + q) | 0] = idx;
    else {
      const link = this.linkV;
      link[(t << 1) >>> 0] = (idx + 1) | 0;
      link[((idx << 1) | 1) >>> 0] = (t + 1) | 0;
    }
    c32[tq] = idx;
    const cq = (this.oCount + q) | 0;
    c32[cq] = (c32[cq] + 1) | 0;
  }

  /** qAdd at the head (vm_freelist_add(..., tail = 0)). */
  qAddHead(q: number, idx: number, order: number, pool: number): void {
    const c32 = this.c32;
    const hq = (this.oHead + q) | 0;
    this.metaV[idx] = M_INIT | (pool << 4) | order;
    const h = c32[hq];
    if (h < 0) c32[(this.oTail + q) | 0] = idx;
    else {
      const link = this.linkV;
      link[(idx << 1) >>> 0] = (h + 1) | 0;
      link[((h << 1) | 1) >>> 0] = (idx + 1) | 0;
    }
    c32[hq] = idx;
    const cq = (this.oCount + q) | 0;
    c32[cq] = (c32[cq] + 1) | 0;
  }

  /** The entry after m on queue q, or -1 (walks must use this: the tail's next is not kept). */
  qNext(q: number, m: number): number {
    return m === this.c.qTail[q] ? -1 : this.nextOf(m);
  }

  /** vm_freelist_rem: unlink idx from queue q; its order becomes VM_NFREEORDER, pool unchanged. */
  qRem(q: number, idx: number): void {
    const p = this.p;
    const c = this.c;
    let m = p.meta[idx];
    if (m === 0) {
      // Materialise an implicit lazy chunk head.
      m = M_INIT | (Pool.LAZYINIT << 4);
      const r = this.runOf(idx);
      if (r >= 0) c.runs[r * RUNF.SIZE + RUNF.TOUCHED] = 1;
      c.stats[STAT.CHUNKS_MATERIALIZED]++;
      c.stats[STAT.PAGES_INITIALIZED]++;
    }
    const nx = c.qTail[q] === idx ? -1 : this.nextOf(idx);
    const pv = c.qHead[q] === idx ? -1 : this.prevOf(idx);
    if (pv < 0) c.qHead[q] = nx;
    else if (nx >= 0) p.link[2 * pv] = nx + 1;
    if (nx < 0) c.qTail[q] = pv;
    else if (pv >= 0) p.link[2 * nx + 1] = pv + 1;
    p.meta[idx] = (m & ~M_ORDER) | this.nOrd;
    c.qCount[q]--;
  }

  /**
   * qRem for a queue below the maximum order: every entry there is materialised and its links
   * are explicit (implicit lazy-run chunks exist only at the maximum order), so the links are
   * read directly, and the new state byte is written without reading the old one (a queued
   * block's byte is M_INIT | pool << 4 | order; the load would be a cache miss on a FIFO's cold
   * head). Contract: idx is on queue q, which holds pool `pool` at an order < maxOrder.
   */
  private qRemLinked(q: number, idx: number, pool: number): void {
    const link = this.linkV;
    const c32 = this.c32;
    const hq = (this.oHead + q) | 0;
    const tq = (this.oTail + q) | 0;
    const isHead = c32[hq] === idx;
    const isTail = c32[tq] === idx;
    const nx = isTail ? -1 : (link[(idx << 1) >>> 0] - 1) | 0;
    const pv = isHead ? -1 : (link[((idx << 1) | 1) >>> 0] - 1) | 0;
    if (isHead) c32[hq] = nx;
    else if (!isTail) link[(pv << 1) >>> 0] = (nx + 1) | 0;
    if (isTail) c32[tq] = pv;
    else if (!isHead) link[((nx << 1) | 1) >>> 0] = (pv + 1) | 0;
    this.metaV[idx] = M_INIT | (pool << 4) | this.nOrd;
    const cq = (this.oCount + q) | 0;
    c32[cq] = (c32[cq] - 1) | 0;
  }

  /**
   * vm_phys_split_pages: idx heads a removed block of order oind; give back upper halves at
   * decreasing orders to the queues starting at qbase (pool's [order] row), keeping 2^order.
   */
  private splitPages(idx: number, oind: number, qbase: number, order: number, pool: number, tail: boolean): void {
    while (oind > order) {
      oind--;
      this.qAdd(qbase + oind, idx + (1 << oind), oind, pool, tail);
    }
  }

  /** vm_phys_enq_chunk: add, and for LAZYINIT initialise the page just after the chunk. */
  private enqChunk(qbase: number, idx: number, order: number, pool: number, tail: boolean, seg: number): void {
    this.qAdd(qbase + order, idx, order, pool, tail);
    if (pool === Pool.LAZYINIT) {
      const nx = idx + (1 << order);
      if (nx < this.segFirst[seg] + this.segPages[seg]) {
        this.initPage(nx, Pool.LAZYINIT);
        this.lastLookAhead = nx;
      }
    }
  }

  /** vm_phys_enq_range: [idx, idx+npages) ends a power-of-two set; blocks of increasing size. */
  private enqRange(idx: number, npages: number, qbase: number, pool: number, tail: boolean, seg: number): number {
    while (npages > 0) {
      const order = 31 - Math.clz32(npages & -npages);
      this.enqChunk(qbase, idx, order, pool, tail, seg);
      idx += 1 << order;
      npages -= 1 << order;
    }
    return idx;
  }

  /** vm_phys_enq_beg: [idx, idx+npages) begins a power-of-two set; blocks of decreasing size. */
  private enqBeg(idx: number, npages: number, qbase: number, pool: number, tail: boolean, seg: number): void {
    while (npages > 0) {
      const order = 31 - Math.clz32(npages);
      this.enqChunk(qbase, idx, order, pool, tail, seg);
      idx += 1 << order;
      npages -= 1 << order;
    }
  }

  /** Low bits of a page's frame number (exact for any pfn < 2^53). */
  private pfnLow(idx: number, seg: number): number {
    return (idx + this.segAdj[seg]) | 0;
  }

  /**
   * vm_phys_enqueue_contig(m, pool, npages): free an arbitrary run without merging, as maximal
   * aligned blocks, largest in the middle. In lazy mode the middle max-order chunks become an
   * implicit lazy run (nothing written per chunk).
   */
  enqueueContigIdx(idx: number, pool: number, npages: number, seg: number): void {
    const qbase = this.qIndex(this.segDomain[seg], this.segFlind[seg], pool, 0);
    const end = idx + npages;
    const lo = this.pfnLow(idx, seg);
    if (npages > 0) {
      const diff = (lo ^ (lo + npages - 1)) >>> 0;
      // diff may exceed 32 bits only for runs ≥ 2^31 pages, impossible here.
      if (diff !== 0) {
        const order = Math.min(31 - Math.clz32(diff), this.maxOrder);
        const mask = (1 << order) - 1;
        const lead = ((lo + mask) & ~mask) - lo;
        idx = this.enqRange(idx, lead >>> 0, qbase, pool, true, seg);
      }
    }
    const cp = this.chunkPages;
    if (idx + cp <= end) {
      const nchunks = Math.floor((end - idx) / cp);
      const stop = idx + nchunks * cp;
      if (pool === Pool.LAZYINIT && nchunks > 0) {
        this.addLazyRun(qbase + this.maxOrder, idx, stop);
        if (stop < this.segFirst[seg] + this.segPages[seg]) {
          this.initPage(stop, Pool.LAZYINIT);
          this.lastLookAhead = stop;
        }
        idx = stop;
      } else {
        while (idx + cp <= end) {
          this.enqChunk(qbase, idx, this.maxOrder, pool, true, seg);
          idx += cp;
        }
      }
    }
    this.enqBeg(idx, end - idx, qbase, pool, true, seg);
  }

  // ------------------------------------------------------------------ validation helpers

  /** One-branch fast check of the common arguments; false sends callers to the typed checks. */
  private argsOk(domain: number, pool: number, order: number): boolean {
    return (
      this.c.ctl[CTL.PHASE] === 2 &&
      domain === (domain | 0) &&
      domain >= 0 &&
      domain < this.c.ctl[CTL.NDOMAINS] &&
      (pool === Pool.DEFAULT || pool === Pool.DIRECT) &&
      order === (order | 0) &&
      order >= 0 &&
      order < this.nOrd
    );
  }

  private checkDomain(domain: number): void {
    if (!Number.isInteger(domain) || domain < 0 || domain >= this.ndomains)
      throw new DomainError('EDOMAIN', `domain ${domain} is outside 0..${this.ndomains - 1}`);
  }
  private checkPool(pool: number): void {
    if (pool === Pool.LAZYINIT)
      throw new PoolError('the LAZYINIT pool cannot be named by a caller (vm_phys_pool_valid)');
    if (!Number.isInteger(pool) || pool < 0 || pool >= this.nPool) throw new PoolError(`unknown pool ${pool}`);
  }
  private checkOrder(order: number): void {
    if (!Number.isInteger(order) || order < 0 || order >= this.nOrd)
      throw new RangeArgError('EORDER', `order ${order} is outside 0..${this.maxOrder}`);
  }
  private checkStarted(): void {
    if (this.c.ctl[CTL.PHASE] !== 2) throw new StateError('the allocator has not been started (call startup)');
  }
  private checkInit(): void {
    if (this.c.ctl[CTL.PHASE] < 1) throw new StateError('init has not been called');
  }

  /** Segment of a page-aligned address, or a typed error. */
  private segForFree(pa: number, what: string): number {
    if (!Number.isSafeInteger(pa) || pa < 0) throw new SegmentError('ENOSEG', `${what}: ${pa} is not an address`);
    // ToInt32 keeps the low 32 bits of any safe integer, so the mask test is exact.
    if ((pa & (this.pageSize - 1)) !== 0) throw new MisalignedError(`${what}: ${hex(pa)} is not page aligned`);
    const s = this.segOfPa(pa);
    if (s < 0) throw new SegmentError('ENOSEG', `${what}: ${hex(pa)} lies outside every segment`);
    return s;
  }

  /**
   * Check that the 2^order pages at idx (segment seg) are all allocated: initialised, not free
   * heads, and not inside a larger free block. O(2^order + VM_NFREEORDER).
   */
  private checkAllocated(idx: number, n: number, seg: number, what: string): void {
    const meta = this.p.meta;
    const none = this.nOrd;
    for (let i = idx; i < idx + n; i++) {
      const m = meta[i];
      if (m === 0) {
        if (this.runOf(i) >= 0 || this.insideFreeBlock(i, seg) >= 0)
          throw new DoubleFreeError(`${what}: page ${hex(this.pa(i, seg))} is free (untouched lazy memory)`);
        throw new NotAllocatedError(`${what}: page ${hex(this.pa(i, seg))} was never allocated (not initialised)`);
      }
      if ((m & M_ORDER) !== none)
        throw new DoubleFreeError(
          `${what}: page ${hex(this.pa(i, seg))} is already free (head of a free order-${m & M_ORDER} block)`,
        );
    }
    const h = this.insideFreeBlock(idx, seg);
    if (h >= 0)
      throw new DoubleFreeError(
        `${what}: page ${hex(this.pa(idx, seg))} lies inside the free block at ${hex(this.pa(h, seg))} (order ${this.orderAt(h)})`,
      );
  }

  /** Head of a free block of order > 0 that strictly contains page idx, or -1. */
  private insideFreeBlock(idx: number, seg: number): number {
    const meta = this.p.meta;
    const first = this.segFirst[seg];
    const low = this.pfnLow(idx, seg);
    const maxOrder = this.maxOrder;
    for (let o = 1; o <= maxOrder; o++) {
      const h = idx - (low & ((1 << o) - 1));
      if (h < first) break;
      if (h === idx) continue;
      const m = meta[h];
      if (m !== 0) {
        if ((m & M_ORDER) === o) return h;
      } else if (o === maxOrder && this.isImplicitHead(h)) return h;
    }
    return -1;
  }

  // ------------------------------------------------------------------ allocation

  /**
   * vm_phys_alloc_pages(domain, pool, order): try the free lists in VM_FREELIST_* order.
   * Returns the physical address of a 2^order block, or null. Pool DEFAULT or DIRECT.
   */
  allocPages(domain: number, pool: number, order: number): number | null {
    if (!this.argsOk(domain, pool, order)) {
      // Slow path: the checks below throw the right typed error.
      this.checkStarted();
      this.checkDomain(domain);
      this.checkPool(pool);
      this.checkOrder(order);
    }
    const idx = this.allocPagesIdx(domain, pool, order);
    return idx < 0 ? null : this.paOf(idx);
  }

  /** The body of vm_phys_alloc_pages on page indices (no validation): free lists in order. */
  allocPagesIdx(domain: number, pool: number, order: number): number {
    // allocFreelistIdx's fast path for free list 0, repeated here rather than called: one call
    // level less keeps the whole order-0 path within the compiler's inlining budget.
    const base = this.flQBase[Math.imul(domain, this.nFl)];
    if (base >= 0 && order < this.maxOrder) {
      const own = (base + Math.imul(pool, this.nOrd)) | 0;
      const m = this.c32[(this.oHead + own + order) | 0];
      if (m >= 0) {
        this.qRemLinked((own + order) | 0, m, pool);
        return m;
      }
    }
    return this.allocPagesIdxRest(domain, pool, order);
  }
  private allocPagesIdxRest(domain: number, pool: number, order: number): number {
    for (let fl = 0; fl < this.nFl; fl++) {
      const idx = this.allocFreelistIdx(domain, fl, pool, order);
      if (idx >= 0) return idx;
    }
    return -1;
  }

  /** vm_phys_free_pages on a page index (no validation): `freePagesIdx` with the segment looked up. */
  freeIdx(idx: number, pool: number, order: number): void {
    this.freePagesIdx(idx, pool, order, this.segOfIdx(idx));
  }

  /** vm_phys_alloc_freelist_pages(domain, freelist, pool, order) → address or null. */
  allocFreelistPages(domain: number, freelist: number, pool: number, order: number): number | null {
    this.checkStarted();
    this.checkDomain(domain);
    if (!Number.isInteger(freelist) || freelist < 0 || freelist >= this.nFl)
      throw new RangeArgError('EFREELIST', `free list ${freelist} is outside 0..${this.nFl - 1}`);
    this.checkPool(pool);
    this.checkOrder(order);
    const idx = this.allocFreelistIdx(domain, freelist, pool, order);
    return idx < 0 ? null : this.paOf(idx);
  }

  /** The body of vm_phys_alloc_freelist_pages on page indices (no validation). */
  allocFreelistIdx(domain: number, freelist: number, pool: number, order: number): number {
    const base = this.flQBase[(Math.imul(domain, this.nFl) + freelist) | 0];
    if (base < 0) return -1;
    const own = (base + Math.imul(pool, this.nOrd)) | 0;
    // Fast path, kept small enough for the compiler to inline into callers: a block of exactly
    // this order in the own pool (most order-0 traffic). Below the maximum order every queued
    // block is materialised with explicit links.
    const m = this.c32[(this.oHead + own + order) | 0];
    if (m >= 0 && order < this.maxOrder) {
      this.qRemLinked((own + order) | 0, m, pool);
      return m;
    }
    return this.allocFreelistSlow(base, own, pool, order);
  }

  /** allocFreelistIdx past its fast path: larger orders of the own pool, then stealing. */
  private allocFreelistSlow(base: number, own: number, pool: number, order: number): number {
    const nOrd = this.nOrd;
    const c32 = this.c32;
    const oh = (this.oHead + own) | 0;
    const maxOrder = this.maxOrder;
    for (let oind = order; oind < nOrd; oind++) {
      const m = c32[oh + oind];
      if (m >= 0) {
        if (oind < maxOrder) this.qRemLinked(own + oind, m, pool);
        else this.qRem(own + oind, m);
        this.splitPages(m, oind, own, order, pool, true);
        return m;
      }
    }
    const dfp = this.c.ctl[CTL.DEFAULT_FREEPOOL];
    for (let oind = maxOrder; oind >= order; oind--) {
      for (let pind = dfp; pind < this.nPool; pind++) {
        const q = base + pind * nOrd + oind;
        const m = c32[this.oHead + q];
        if (m >= 0) {
          if (pind === Pool.LAZYINIT) return this.stealLazy(q, m, oind, own, order, pool);
          this.qRem(q, m);
          this.finishInit(m, oind);
          this.splitPages(m, oind, own, order, pool, true);
          return m;
        }
      }
    }
    return -1;
  }

  /** finish_init on an allocation/free path, with instrumentation. */
  /**
   * The steal of a lazy block by vm_phys_alloc_freelist_pages: take it, finish its
   * initialisation and split it. Timed as a whole: this is the pause an allocation sees when it
   * has to initialise lazy memory (metadata page faults included).
   */
  private stealLazy(q: number, m: number, oind: number, own: number, order: number, pool: number): number {
    const t0 = performance.now();
    this.qRem(q, m);
    this.finishInit(m, oind);
    this.splitPages(m, oind, own, order, pool, true);
    this.noteOnDemand(t0, oind);
    return m;
  }

  /** Record one on-demand initialisation of a 2^order lazy block that started at t0 (ms). */
  private noteOnDemand(t0: number, order: number): void {
    const us = (performance.now() - t0) * 1000;
    const st = this.c.stats;
    st[STAT.ON_DEMAND_INITS]++;
    st[STAT.ON_DEMAND_PAGES] += (1 << order) - 1;
    st[STAT.ON_DEMAND_US] += us;
    if ((1 << order) - 1 > st[STAT.MAX_INIT_PAGES]) st[STAT.MAX_INIT_PAGES] = (1 << order) - 1;
    if (us > st[STAT.MAX_INIT_US]) st[STAT.MAX_INIT_US] = us;
  }

  /** finish_init on the other allocation/free paths, timing the initialisation itself. */
  finishInitOnDemand(idx: number, order: number): void {
    if (((this.p.meta[idx] >> 4) & 7) !== Pool.LAZYINIT || order === 0) {
      this.finishInit(idx, order);
      return;
    }
    // Lazy blocks only: rare (at most once per block), so timing them costs nothing measurable.
    const t0 = performance.now();
    this.finishInit(idx, order);
    this.noteOnDemand(t0, order);
  }

  /**
   * vm_phys_alloc_npages(domain, pool, npages, ma): up to npages pages (not contiguous), own
   * pool smallest orders first, then stealing largest first. Writes addresses to `out` and
   * returns the count. 1 ≤ npages ≤ 2^(VM_NFREEORDER-1).
   */
  allocNpages(domain: number, pool: number, npages: number, out: { length: number; [i: number]: number }): number {
    this.checkStarted();
    this.checkDomain(domain);
    this.checkPool(pool);
    if (!Number.isInteger(npages) || npages < 1 || npages > this.chunkPages)
      throw new RangeArgError('ENPAGES', `npages ${npages} is outside 1..${this.chunkPages}`);
    if (!Array.isArray(out) && out.length < npages)
      throw new RangeArgError('ENPAGES', `output array holds ${out.length} < ${npages}`);
    const idxOut = this.npagesScratch(npages);
    const got = this.allocNpagesIdx(domain, pool, npages, idxOut);
    let seg = -1;
    let segEndIdx = -1;
    for (let i = 0; i < got; i++) {
      const idx = idxOut[i];
      if (seg < 0 || idx < this.segFirst[seg] || idx >= segEndIdx) {
        seg = this.segOfIdx(idx);
        segEndIdx = this.segFirst[seg] + this.segPages[seg];
      }
      out[i] = this.pa(idx, seg);
    }
    return got;
  }
  private scratch = new Int32Array(0);
  private npagesScratch(n: number): Int32Array {
    if (this.scratch.length < n) this.scratch = new Int32Array(Math.max(n, this.chunkPages));
    return this.scratch;
  }

  /** The body of vm_phys_alloc_npages on page indices. */
  allocNpagesIdx(domain: number, pool: number, npages: number, ma: Int32Array): number {
    const nOrd = this.nOrd;
    const head = this.c.qHead;
    let i = 0;
    for (let freelist = 0; freelist < this.nFl; freelist++) {
      const flind = this.c.ctl[CTL.FL_TO_FLIND + freelist];
      if (flind < 0) continue;
      const base = this.qIndex(domain, flind, 0, 0);
      const own = base + pool * nOrd;
      for (let oind = 0; oind < nOrd; oind++) {
        let m: number;
        while ((m = head[own + oind]) >= 0) {
          this.qRem(own + oind, m);
          const avail = i + (1 << oind);
          const end = Math.min(npages, avail);
          while (i < end) ma[i++] = m++;
          if (i === npages) {
            this.enqRange(m, avail - i, own, pool, true, this.segOfIdx(m - 1));
            return npages;
          }
        }
      }
      const dfp = this.c.ctl[CTL.DEFAULT_FREEPOOL];
      for (let oind = this.maxOrder; oind >= 0; oind--) {
        for (let pind = dfp; pind < this.nPool; pind++) {
          const q = base + pind * nOrd + oind;
          let m: number;
          while ((m = head[q]) >= 0) {
            this.qRem(q, m);
            this.finishInitOnDemand(m, oind);
            const avail = i + (1 << oind);
            const end = Math.min(npages, avail);
            while (i < end) ma[i++] = m++;
            if (i === npages) {
              this.enqRange(m, avail - i, own, pool, true, this.segOfIdx(m - 1));
              return npages;
            }
          }
        }
      }
    }
    return i;
  }

  // ------------------------------------------------------------------ freeing

  /**
   * vm_phys_free_pages(m, pool, order): free the 2^order block at pa into `pool`, merging with
   * free buddies (any pool; lazy buddies are finished first) up to the maximum order, never
   * across a segment's ends. Throws (state unchanged) on misuse.
   */
  freePages(pa: number, pool: number, order: number): void {
    if (!this.argsOk(0, pool, order)) {
      this.checkStarted();
      this.checkPool(pool);
      this.checkOrder(order);
    }
    const seg = this.segForFree(pa, 'free');
    const idx = this.idxIn(seg, pa);
    const n = 1 << order;
    if ((this.pfnLow(idx, seg) & (n - 1)) !== 0)
      throw new MisalignedError(`free: ${hex(pa)} is not aligned to an order-${order} block`);
    if (idx + n > this.segFirst[seg] + this.segPages[seg])
      throw new SegmentError('ESPAN', `free: order-${order} block at ${hex(pa)} crosses the end of its segment`);
    this.checkAllocated(idx, n, seg, 'free');
    this.freePagesIdx(idx, pool, order, seg);
  }

  /** The body of vm_phys_free_pages on a page index (no validation). */
  freePagesIdx(idx: number, pool: number, order: number, seg: number): void {
    // Fast path, small enough to be inlined into callers: the buddy is not a free block of the
    // same order (or lies outside the segment), so the block is queued as it is.
    const sh = this.segHot;
    const s4 = seg << 2;
    if (order < this.maxOrder) {
      const bit = 1 << order;
      const buddy = ((idx + sh[s4 + 2]) & bit) !== 0 ? (idx - bit) | 0 : (idx + bit) | 0;
      if (buddy >= sh[s4] && buddy < sh[s4 + 1]) {
        const bm = this.metaV[buddy];
        if ((bm & M_ORDER) === order && bm !== 0) {
          this.freeMerge(idx, pool, order, seg);
          return;
        }
      }
    }
    this.qAddTail((sh[s4 + 3] + Math.imul(pool, this.nOrd) + order) | 0, idx, order, pool);
  }

  /** freePagesIdx when the block has a free buddy: merge up, then queue. */
  private freeMerge(idx: number, pool: number, order: number, seg: number): void {
    const meta = this.metaV;
    const sh = this.segHot;
    const s4 = seg << 2;
    const first = sh[s4];
    const end = sh[s4 + 1];
    const adj = sh[s4 + 2];
    const qbase = sh[s4 + 3];
    const nOrd = this.nOrd;
    const maxOrder = this.maxOrder;
    while (order < maxOrder) {
      const bit = 1 << order;
      const buddy = ((idx + adj) & bit) !== 0 ? idx - bit : idx + bit;
      if (buddy < first || buddy >= end) break;
      const bm = meta[buddy];
      if ((bm & M_ORDER) !== order || bm === 0) break;
      const bpool = (bm >> 4) & 7;
      // order < maxOrder: the buddy is materialised and linked explicitly.
      this.qRemLinked(qbase + bpool * nOrd + order, buddy, bpool);
      // finish_init only matters for a lazy buddy of order ≥ 1 (it has tail pages).
      if (bpool === Pool.LAZYINIT && order > 0) this.finishInitOnDemand(buddy, order);
      order++;
      if (buddy < idx) idx = buddy;
    }
    this.qAddTail(qbase + pool * nOrd + order, idx, order, pool);
  }

  /**
   * vm_phys_free_contig(m, pool, npages): free an arbitrary run, merging only at its two ends.
   */
  freeContig(pa: number, pool: number, npages: number): void {
    this.checkStarted();
    this.checkPool(pool);
    if (!Number.isInteger(npages) || npages < 1)
      throw new RangeArgError('ENPAGES', `free_contig: npages ${npages} must be at least 1`);
    const seg = this.segForFree(pa, 'free_contig');
    const idx = this.idxIn(seg, pa);
    if (idx + npages > this.segFirst[seg] + this.segPages[seg])
      throw new SegmentError('ESPAN', `free_contig: ${npages} pages at ${hex(pa)} cross the end of their segment`);
    this.checkAllocated(idx, npages, seg, 'free_contig');
    this.freeContigIdx(idx, pool, npages, seg);
  }

  /** The body of vm_phys_free_contig. */
  freeContigIdx(idx: number, pool: number, npages: number, seg: number): void {
    // lo = pfn; max_order = min(ilog2(lo ^ (lo + npages)), maxOrder); order_start = ffs(lo) - 1.
    const pfn = this.segStart[seg] / this.pageSize + (idx - this.segFirst[seg]);
    const lo = pfn;
    const hi = pfn + npages;
    const maxOrder = Math.min(ilog2Xor(lo, hi), this.maxOrder);
    const orderStart = ctz(lo);
    const orderEnd = ctz(hi);
    let mStart = idx;
    let mEnd = idx + npages;
    let headBlock = -1;
    let tailBlock = -1;
    if (orderStart < maxOrder) {
      headBlock = mStart;
      mStart += 1 << orderStart;
    }
    if (orderEnd < maxOrder) {
      mEnd -= 1 << orderEnd;
      tailBlock = mEnd;
    }
    this.enqueueContigIdx(mStart, pool, mEnd - mStart, seg);
    if (headBlock >= 0) this.freePagesIdx(headBlock, pool, orderStart, seg);
    if (tailBlock >= 0) this.freePagesIdx(tailBlock, pool, orderEnd, seg);
  }

  // ------------------------------------------------------------------ unfree, find_range, lazy

  /**
   * vm_phys_unfree_page(pa): drain pa's domain, then take the single page out of the free block
   * that holds it, giving back halves at the head of the same pool's queues. False if not free.
   */
  unfreePage(pa: number): boolean {
    this.checkStarted();
    const seg = this.segForFree(pa, 'unfree');
    this.lazyInitDomain(this.segDomain[seg]);
    const m = this.idxIn(seg, pa);
    const first = this.segFirst[seg];
    const low = this.pfnLow(m, seg);
    let mSet = m;
    let order = 0;
    while (this.orderAt(mSet) === this.nOrd && order < this.maxOrder) {
      order++;
      const h = m - (low & ((1 << order) - 1));
      if (h >= first) mSet = h;
      else return false;
    }
    const so = this.orderAt(mSet);
    if (so < order) return false;
    if (so === this.nOrd) return false;
    const pool = this.poolAt(mSet);
    const qbase = this.qIndex(this.segDomain[seg], this.segFlind[seg], pool, 0);
    order = so;
    this.qRem(qbase + order, mSet);
    while (order > 0) {
      order--;
      const half = mSet + (1 << order);
      let tmp: number;
      if (m < half) tmp = half;
      else {
        tmp = mSet;
        mSet = half;
      }
      this.qAdd(qbase + order, tmp, order, pool, false);
    }
    return true;
  }

  /**
   * vm_phys_find_range(bounds, segind, domain, npages, low, high): the first segment ≥ segind of
   * `domain` with at least npages pages in [low, high); drains the domain first. null = -1.
   */
  findRange(segind: number, domain: number, npages: number, low: number, high: number): FoundRange | null {
    this.checkStarted();
    this.checkDomain(domain);
    if (!Number.isInteger(npages) || npages < 1) throw new RangeArgError('ENPAGES', `npages ${npages} must be ≥ 1`);
    if (!Number.isInteger(segind) || segind < 0 || segind > this.nsegs)
      throw new RangeArgError('ESEGIND', `segment index ${segind} is outside 0..${this.nsegs}`);
    for (let s = segind; s < this.nsegs; s++) {
      if (this.segDomain[s] !== domain) continue;
      if (this.segStart[s] >= high) return null;
      const paStart = Math.max(low, this.segStart[s]);
      const paEnd = Math.min(high, this.segEnd[s]);
      if (paEnd - paStart < npages * this.pageSize) continue;
      this.lazyInitDomain(domain);
      const ps = this.pageSize;
      const start = this.segStart[s] + Math.floor((paStart - this.segStart[s]) / ps) * ps;
      const end = this.segStart[s] + Math.floor((paEnd - this.segStart[s]) / ps) * ps;
      return { segind: s, start, end };
    }
    return null;
  }

  /**
   * vm_phys_lazy_init_domain(domain): move every LAZYINIT block of the domain to DEFAULT (finish,
   * then free with merging), free lists in VM_FREELIST_* order, orders 0 up, head first.
   */
  lazyInitDomain(domain: number): void {
    if (this.c.ctl[CTL.INITDONE + domain] !== 0) return;
    while (this.drainStepDomain(domain, 1 << 30) > 0) {}
  }

  /**
   * One bounded step of vm_phys_lazy_init_domain: process at most `budget` lazy blocks of
   * `domain` and return how many were processed; 0 means the domain is done (initdone set).
   * The caller may drop the domain lock between steps, as the vmlazyinit thread does per block.
   */
  drainStepDomain(domain: number, budget: number): number {
    const ctl = this.c.ctl;
    if (ctl[CTL.INITDONE + domain] !== 0) return 0;
    let done = 0;
    const head = this.c.qHead;
    for (let fl = 0; fl < this.nFl && done < budget; fl++) {
      const flind = ctl[CTL.FL_TO_FLIND + fl];
      if (flind < 0) continue;
      const qbase = this.qIndex(domain, flind, Pool.LAZYINIT, 0);
      for (let oind = 0; oind < this.nOrd && done < budget; oind++) {
        const q = qbase + oind;
        if (this.c.qCount[q] === 0) continue;
        let m: number;
        while (done < budget && (m = head[q]) >= 0) {
          if (oind === this.maxOrder) {
            const n = this.drainWholeRun(q, m, budget - done);
            if (n > 0) {
              done += n;
              continue;
            }
          }
          this.qRem(q, m);
          this.finishInit(m, oind);
          const seg = this.segOfIdx(m);
          this.freePagesIdx(m, Pool.DEFAULT, oind, seg);
          this.c.stats[STAT.DRAIN_BLOCKS]++;
          this.c.stats[STAT.DRAIN_PAGES] += 1 << oind;
          done++;
        }
      }
    }
    if (done === 0) ctl[CTL.INITDONE + domain] = 1;
    return done;
  }

  /**
   * Drain a whole untouched lazy run in one step, when the queue head `m` starts one and it has
   * at most `budget` chunks. Max-order blocks never merge, so freeing them one by one (FreeBSD)
   * appends them, in queue order, to the tail of the DEFAULT max-order queue: we move the run
   * there as a whole, still implicit, and initialise its metadata with one contiguous fill. The
   * resulting queues, counts and later choices are identical; no link page is touched per chunk.
   * Returns the number of chunks drained (0 if the fast path does not apply).
   */
  private drainWholeRun(q: number, m: number, budget: number): number {
    const runs = this.c.runs;
    const r = this.runOf(m);
    if (r < 0) return 0;
    const b = r * RUNF.SIZE;
    const start = runs[b + RUNF.START];
    const end = runs[b + RUNF.END];
    const cp = this.chunkPages;
    const n = (end - start) / cp;
    if (start !== m || runs[b + RUNF.TOUCHED] !== 0 || this.p.meta[m] !== 0 || n > budget) return 0;
    const c = this.c;
    const link = this.p.link;
    const last = end - cp;
    // 1. Splice the run off the head of the lazy queue.
    const after = c.qTail[q] === last ? -1 : this.nextOf(last);
    c.qHead[q] = after; // the new head's prev is never read
    if (after < 0) c.qTail[q] = -1;
    c.qCount[q] -= n;
    // 2. Initialise every page: interiors as vm_phys_finish_init does, heads as free blocks.
    const meta = this.p.meta;
    meta.fill(M_INIT | (this.nPool << 4) | this.nOrd, start, end);
    const headByte = M_INIT | (Pool.DEFAULT << 4) | this.maxOrder;
    for (let h = start; h < end; h += cp) meta[h] = headByte;
    // 3. Append the run, still implicit, to the DEFAULT max-order queue of the same plane.
    const qd = q + (Pool.DEFAULT - Pool.LAZYINIT) * this.nOrd;
    runs[b + RUNF.QUEUE] = qd;
    runs[b + RUNF.TOUCHED] = 2;
    runs[b + RUNF.NEXT] = -1;
    runs[b + RUNF.PREV] = -1;
    const t = c.qTail[qd];
    if (t < 0) c.qHead[qd] = start;
    else {
      const r0 = this.runOf(t);
      if (
        r0 >= 0 &&
        runs[r0 * RUNF.SIZE + RUNF.QUEUE] === qd &&
        runs[r0 * RUNF.SIZE + RUNF.END] - cp === t &&
        link[2 * t] === 0
      ) {
        runs[r0 * RUNF.SIZE + RUNF.NEXT] = r;
        runs[b + RUNF.PREV] = r0;
        link[2 * start + 1] = 0;
      } else {
        link[2 * t] = start + 1;
        link[2 * start + 1] = t + 1;
      }
    }
    c.qTail[qd] = last;
    c.qCount[qd] += n;
    const st = c.stats;
    st[STAT.CHUNKS_MATERIALIZED] += n;
    st[STAT.PAGES_INITIALIZED] += n * cp;
    st[STAT.META_BYTES_TOUCHED] += n * cp;
    st[STAT.DRAIN_BLOCKS] += n;
    st[STAT.DRAIN_PAGES] += n * cp;
    return n;
  }

  /**
   * Drainer protocol, step 1 (domain lock held): take the next lazy block of `domain` off its
   * queue, in vm_phys_lazy_init_domain's order, and count its pages as in flight. Returns
   * idx * 16 + order, or -1 when the domain has no lazy block left (initdone is then set).
   * Step 2 is `finishInit(idx, order)`, which may run without the lock: nobody else can reach
   * the block. Step 3 is `lazyPut` under the lock.
   */
  lazyTake(domain: number): number {
    const ctl = this.c.ctl;
    if (ctl[CTL.INITDONE + domain] !== 0) return -1;
    const head = this.c.qHead;
    for (let fl = 0; fl < this.nFl; fl++) {
      const flind = ctl[CTL.FL_TO_FLIND + fl];
      if (flind < 0) continue;
      const qbase = this.qIndex(domain, flind, Pool.LAZYINIT, 0);
      for (let oind = 0; oind < this.nOrd; oind++) {
        const m = head[qbase + oind];
        if (m < 0) continue;
        this.qRem(qbase + oind, m);
        ctl[CTL.INFLIGHT + domain] += 1 << oind;
        return m * 16 + oind;
      }
    }
    ctl[CTL.INITDONE + domain] = 1;
    return -1;
  }

  /** Drainer protocol, step 3 (domain lock held): free the finished block into DEFAULT. */
  lazyPut(domain: number, idx: number, order: number): void {
    this.c.ctl[CTL.INFLIGHT + domain] -= 1 << order;
    this.freePagesIdx(idx, Pool.DEFAULT, order, this.segOfIdx(idx));
    this.c.stats[STAT.DRAIN_BLOCKS]++;
    this.c.stats[STAT.DRAIN_PAGES] += 1 << order;
  }

  /** Mark the end of vm_phys_lazy_init: vm_default_freepool = DEFAULT (after all domains). */
  finishLazyInit(): void {
    for (let d = 0; d < this.ndomains; d++)
      if (this.c.ctl[CTL.INITDONE + d] === 0) throw new StateError(`domain ${d} still has lazy memory`);
    this.c.ctl[CTL.DEFAULT_FREEPOOL] = Pool.DEFAULT;
  }

  /** Number of pages still in the LAZYINIT pool of a domain (all domains when omitted). */
  lazyPages(domain?: number): number {
    return domain === undefined ? this.counts().lazyinit : this.counts(domain).lazyinit;
  }

  /**
   * vm_phys_lazy_init: drain every domain in order, then move vm_default_freepool to DEFAULT.
   */
  drain(): void {
    this.checkStarted();
    for (let d = 0; d < this.ndomains; d++) this.lazyInitDomain(d);
    this.c.ctl[CTL.DEFAULT_FREEPOOL] = Pool.DEFAULT;
  }

  /** vm_phys_lazy_init_domain(D, false) as the `drain_domain` command: cursor untouched. */
  drainDomain(domain: number): void {
    this.checkStarted();
    this.checkDomain(domain);
    this.lazyInitDomain(domain);
  }

  /**
   * An incremental drain over all domains: process at most `budget` blocks; returns true when
   * every domain is done and vm_default_freepool has moved to DEFAULT.
   */
  drainStep(budget: number): boolean {
    this.checkStarted();
    let left = budget;
    for (let d = 0; d < this.ndomains; d++) {
      while (left > 0) {
        const n = this.drainStepDomain(d, left);
        if (n === 0) break;
        left -= n;
      }
      if (left <= 0) return false;
    }
    this.c.ctl[CTL.DEFAULT_FREEPOOL] = Pool.DEFAULT;
    return true;
  }

  /** True once vm_phys_lazy_init has finished (vm_default_freepool == DEFAULT). */
  get drained(): boolean {
    return this.c.ctl[CTL.DEFAULT_FREEPOOL] === Pool.DEFAULT;
  }

  /** vm_phys_domain_match(prefer, low, high) with inclusive overlap tests. */
  domainMatch(prefer: number, low: number, high: number): number {
    this.checkInit();
    if (this.ndomains === 1) return 0;
    let mask = 0;
    const aff = this.c.affinity;
    for (let i = 0; i < this.c.ctl[CTL.NAFFINITY]; i++) {
      if (aff[i * 3] <= high && aff[i * 3 + 1] >= low) mask |= 1 << aff[i * 3 + 2];
    }
    if (prefer !== -1 && prefer >= 0 && prefer < 31 && (mask & (1 << prefer)) !== 0) return prefer;
    if (mask === 0)
      throw new DomainError('EDOMAIN', `Impossible constraint: no domain has memory in ${hex(low)}..${hex(high)}`);
    return 31 - Math.clz32(mask & -mask);
  }

  /** Free pages per pool (lcnt << order), over every domain or one. */
  counts(domain?: number): PoolCounts {
    this.checkInit();
    if (domain !== undefined) this.checkDomain(domain);
    const out = [0, 0, 0, 0];
    const d0 = domain ?? 0;
    const d1 = domain === undefined ? this.ndomains : domain + 1;
    for (let d = d0; d < d1; d++)
      for (let f = 0; f < this.nfreelists; f++)
        for (let pool = 0; pool < this.nPool; pool++)
          for (let o = 0; o < this.nOrd; o++) out[pool] += this.c.qCount[this.qIndex(d, f, pool, o)] * 2 ** o;
    return { lazyinit: out[0], default: out[1], direct: out[2], total: out[0] + out[1] + out[2] };
  }

  // ------------------------------------------------------------------ vm_page_startup

  /**
   * The vm_page_startup part after vm_phys_init: initialise pages of each segment not covered by
   * phys_avail (pool DEFAULT), then for each phys_avail ∩ segment run enqueue it into LAZYINIT
   * (lazy: only heads; middle chunks implicit) or DEFAULT (eager: every page initialised).
   */
  startup(mode: StartupMode = 'lazy'): void {
    if (this.phase !== 1)
      throw new StateError(this.phase === 0 ? 'init has not been called' : 'startup was already called');
    const lazy = mode === 'lazy';
    const pool = lazy ? Pool.LAZYINIT : Pool.DEFAULT;
    const navail = this.c.ctl[CTL.NAVAIL];
    const avail = this.c.avail;
    const meta = this.p.meta;
    const initByte = M_INIT | (Pool.DEFAULT << 4) | this.nOrd;
    for (let s = 0; s < this.nsegs; s++) {
      const ss = this.segStart[s];
      const se = this.segEnd[s];
      // 1. Pages of the segment outside phys_avail (the stated intent of the gap loop, §3.10).
      let cur = ss;
      for (let i = 0; i < navail && cur < se; i++) {
        const as = avail[i * 2];
        const ae = avail[i * 2 + 1];
        if (ae <= cur) continue;
        if (as > cur) {
          const stop = Math.min(as, se);
          const a = this.idxIn(s, cur);
          const b = this.idxIn(s, stop);
          meta.fill(initByte, a, b);
          this.c.stats[STAT.PAGES_INITIALIZED] += b - a;
          this.c.stats[STAT.META_BYTES_TOUCHED] += b - a;
        }
        cur = Math.max(cur, ae);
      }
      if (cur < se) {
        const a = this.idxIn(s, cur);
        const b = this.idxIn(s, se);
        meta.fill(initByte, a, b);
        this.c.stats[STAT.PAGES_INITIALIZED] += b - a;
        this.c.stats[STAT.META_BYTES_TOUCHED] += b - a;
      }
      // 2. Each phys_avail ∩ segment run.
      for (let i = 0; i < navail; i++) {
        const startp = Math.max(ss, avail[i * 2]);
        const endp = Math.min(se, avail[i * 2 + 1]);
        if (endp <= startp) continue;
        const first = this.idxIn(s, startp);
        const count = (endp - startp) / this.pageSize;
        if (!lazy) {
          meta.fill(initByte, first, first + count);
          this.c.stats[STAT.PAGES_INITIALIZED] += count;
          this.c.stats[STAT.META_BYTES_TOUCHED] += count;
        }
        // Lazy: the first page is a block head, written by the enqueue (or implicit).
        this.enqueueContigIdx(first, pool, count, s);
      }
    }
    this.c.ctl[CTL.MODE] = lazy ? 1 : 0;
    this.c.ctl[CTL.PHASE] = 2;
  }

  /** Bytes of page metadata reserved (virtual) for this machine. */
  get metadataBytes(): number {
    return this.totalPages * META_BYTES_PER_PAGE;
  }
}

/** floor(log2(a XOR b)) for non-negative integers up to 2^53 (a != b). */
function ilog2Xor(a: number, b: number): number {
  const ah = Math.floor(a / 4294967296);
  const bh = Math.floor(b / 4294967296);
  if (ah !== bh) return 32 + 31 - Math.clz32((ah ^ bh) >>> 0);
  return 31 - Math.clz32(((a ^ b) >>> 0) | 0);
}

/** Count of trailing zero bits (ffsll(x) - 1); 64 for x = 0 (FreeBSD's −1 taken as unsigned). */
function ctz(x: number): number {
  if (x === 0) return 64;
  const low = x % 4294967296;
  if (low !== 0) return 31 - Math.clz32(low & -low);
  return 32 + ctz(Math.floor(x / 4294967296));
}
