/**
 * The allocator as a library user sees it ("vm_phys.h"): FreeBSD's sys/vm/vm_phys.c (upstream
 * 2025, after D40403 and D45409) over struct-of-arrays typed arrays, with every argument
 * validated. A call that would misuse the allocator throws a typed error (errors.ts) and changes
 * nothing. The work is done by free functions over one state object (state.ts), one module per
 * concept of vm_phys.c:
 *   segments.ts  address <-> page index          pages.ts    page state byte, init/finish_init
 *   queues.ts    free queues and lazy runs         physinit.ts domains, add_seg, phys_avail, init
 *   buddy.ts     the unvalidated index engine      owner.ts    ownership checks before a free
 *   lazy.ts      LAZYINIT drain, drainer exchange  startup.ts  the end of vm_page_startup
 * Friends (contig, verify, snapshot, sysctl, workers, replay) import those modules and reach the
 * state through `state`, marked internal. Callers must hold the domain's free lock when sharing
 * across workers (workers/attach.ts does that); the methods themselves never block.
 */
import {
  allocFreelistIdx,
  allocNpagesIdx,
  allocPagesIdx,
  freeContigIdx,
  freeIdx,
  freePagesIdx,
  unfreePageIdx,
} from './buddy.js';
import { hex, RangeArgError, SegmentError, StateError } from './errors.js';
import {
  type ControlViews,
  CTL,
  createControl,
  createPages,
  DEFAULT_MAX_RUNS,
  META_BYTES_PER_PAGE,
  type PageViews,
} from './layout.js';
import { finishLazyInit, lazyDone, lazyInit, lazyInitDomain, lazyInitStep } from './lazy.js';
import { freeContigCheck, freeSlow, NO_REC, ownRec, segForFree } from './owner.js';
import { type FieldView, PageRecords, type RecordsDescriptor } from './pagerec/records.js';
import type { PageStructOption } from './pagerec/wire.js';
import { adoptRecords, resolvePageStruct, sizeRecords } from './pagerec/wire.js';
import { amd64, type Profile } from './params.js';
import { addAffinity, addAvail, addSeg, availNone, availRanges, domainMatch, init } from './physinit.js';
import { poolPages } from './queues.js';
import {
  idxIn,
  pa,
  paddrToPage,
  paOf,
  refreshSegments,
  segDomain,
  segEndIdx,
  segFirst,
  segOfIdx,
  segOfPa,
} from './segments.js';
import { pageStartup, type StartupMode } from './startup.js';
import { argsOk, checkDomain, checkInit, checkOrder, checkPool, checkStarted, ndomains, PhysState } from './state.js';

export { M_INIT, M_ORDER } from './pages.js';
export type { StartupMode } from './startup.js';

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
  /** Capacity of the lazy-run table (an integer in 1..2^20; default 256). */
  maxRuns?: number;
  /**
   * Refuse a free of a part of a block from alloc_pages / alloc_freelist_pages (EWRONGORDER):
   * such a block may then only be freed whole, with its order. Off by default: FreeBSD's callers
   * free parts of blocks (pages of a reservation one by one) and the golden vectors do too.
   * Runs (alloc_contig, memory outside phys_avail) may always be freed in parts.
   */
  exactFrees?: boolean;
  /**
   * Per-page records kept beside the allocator (pagerec/): 'freebsd' (the profile's struct
   * vm_page, 104 bytes, written as vm_page_init_page writes it), 'none' (the default: the
   * allocator's 9 bytes per page only) or a user's layout (`defineLayout`/`parseLayoutJson`).
   */
  pageStruct?: PageStructOption;
}

/** Largest lazy-run table a machine may ask for. */
const MAX_RUNS_LIMIT = 1 << 20;

/** Startup modes accepted by `startup`. */
function checkMode(mode: unknown): void {
  if (mode !== 'lazy' && mode !== 'eager')
    throw new RangeArgError(
      'EMODE',
      `startup mode ${JSON.stringify(String(mode)).slice(0, 40)} is not 'lazy' or 'eager'`,
    );
}

/** Validate the options of a new allocator (typed errors, each naming the option). */
function checkOptions(opts: VmPhysOptions): void {
  if (opts === null || typeof opts !== 'object') throw new RangeArgError('EOPTION', 'options must be an object');
  const p = opts.profile;
  if (
    p !== undefined &&
    (p === null || typeof p !== 'object' || typeof p.pageSize !== 'number' || typeof p.nFreeOrder !== 'number')
  )
    throw new RangeArgError('EOPTION', 'options.profile is not a platform profile (amd64 or arm64)');
  if (opts.shared !== undefined && typeof opts.shared !== 'boolean')
    throw new RangeArgError('EOPTION', `options.shared must be a boolean, not ${typeof opts.shared}`);
  if (opts.exactFrees !== undefined && typeof opts.exactFrees !== 'boolean')
    throw new RangeArgError('EOPTION', `options.exactFrees must be a boolean, not ${typeof opts.exactFrees}`);
  const r = opts.maxRuns;
  if (r !== undefined && (typeof r !== 'number' || !Number.isInteger(r) || r < 1 || r > MAX_RUNS_LIMIT))
    throw new RangeArgError(
      'EOPTION',
      `options.maxRuns ${typeof r === 'number' ? r : typeof r} is not an integer in 1..${MAX_RUNS_LIMIT}`,
    );
}

/** A number argument that must be finite (an address bound), or a typed error naming it. */
function checkBound(v: number, name: string, what: string): void {
  if (typeof v !== 'number' || Number.isNaN(v) || v < 0)
    throw new RangeArgError(
      'ERANGE',
      `${what}: ${name} ${typeof v === 'number' ? v : typeof v} is not a non-negative number`,
    );
}

export class VmPhys {
  /**
   * The state the core modules work on. Friends of the allocator read it through those modules.
   * @internal
   */
  readonly state: PhysState;
  /** `exactFrees` (see VmPhysOptions). */
  readonly exactFrees: boolean;

  /**
   * `control`/`pages`: existing buffers to work on (attach, restore); `records`: their page
   * records (then `opts.pageStruct` is not used).
   */
  constructor(opts: VmPhysOptions = {}, control?: ControlViews, pages?: PageViews, records?: RecordsDescriptor) {
    checkOptions(opts);
    const profile = opts.profile ?? amd64;
    this.exactFrees = opts.exactFrees === true;
    this.state = new PhysState(
      profile,
      control ?? createControl(profile, opts.shared ?? true, opts.maxRuns ?? DEFAULT_MAX_RUNS),
      pages ?? createPages(0, false),
      PageRecords.create(resolvePageStruct(opts.pageStruct, profile), 0),
    );
    if (control) refreshSegments(this.state);
    if (records) adoptRecords(this.state, records);
  }

  // ------------------------------------------------------------------ what the machine is

  get profile(): Profile {
    return this.state.profile;
  }
  /** 0 before init, 1 after init, 2 after startup. */
  get phase(): number {
    return this.state.c.ctl[CTL.PHASE];
  }
  get ndomains(): number {
    return ndomains(this.state);
  }
  get nfreelists(): number {
    return this.state.c.ctl[CTL.NFREELISTS];
  }
  get totalPages(): number {
    return this.state.c.ctl[CTL.TOTAL_PAGES];
  }
  /** Number of segments (vm_phys_nsegs). */
  get nsegs(): number {
    return this.state.nsegs;
  }
  /** vm_default_freepool. */
  get defaultFreePool(): number {
    return this.state.c.ctl[CTL.DEFAULT_FREEPOOL];
  }
  /** True once vm_phys_lazy_init has finished (vm_default_freepool == DEFAULT). */
  get drained(): boolean {
    return lazyDone(this.state);
  }
  /** Bytes of page metadata reserved (virtual) for this machine. */
  get metadataBytes(): number {
    return this.totalPages * META_BYTES_PER_PAGE;
  }
  /**
   * The page-record array (empty for pageStruct 'none'; sized by init). `records.read(i, f)`
   * is a checked read that follows the allocator; `records.fieldView(f)` a raw typed view.
   */
  get records(): PageRecords {
    return this.state.rec;
  }
  /** A typed view of one record field over every page (index with `paddrToPage`); see FieldView. */
  pageField(name: string): FieldView {
    return this.state.rec.fieldView(name);
  }
  /** Bytes of page records reserved (virtual) for this machine: record size × pages. */
  get pageStructBytes(): number {
    return this.state.rec.layout.size * this.totalPages;
  }
  /** PAGE_SIZE. */
  get pageSize(): number {
    return this.state.pageSize;
  }
  /** VM_NFREEORDER. */
  get nOrd(): number {
    return this.state.nOrd;
  }
  /** VM_NFREEORDER - 1, the largest block order. */
  get maxOrder(): number {
    return this.state.maxOrder;
  }
  /** VM_NFREEPOOL. */
  get nPool(): number {
    return this.state.nPool;
  }
  /** VM_NFREELIST. */
  get nFl(): number {
    return this.state.nFl;
  }
  /** Pages in a max-order block. */
  get chunkPages(): number {
    return this.state.chunkPages;
  }
  /** vm_freelist_to_flind[freelist]. */
  flindOf(freelist: number): number {
    return this.state.c.ctl[CTL.FL_TO_FLIND + freelist];
  }
  /** [start, end) physical addresses of segment seg. */
  segRange(seg: number): [number, number] {
    return [this.state.segStart[seg], this.state.segEnd[seg]];
  }
  /** Domain of segment seg. */
  segDomain(seg: number): number {
    return segDomain(this.state, seg);
  }

  // ------------------------------------------------------------------ configuration (before init)

  /** Append {start, end, domain} to mem_affinity (before the first segment). */
  addAffinity(start: number, end: number, domain: number): void {
    addAffinity(this.state, start, end, domain);
  }
  /**
   * vm_phys_add_seg(start, end): cut at VM_LOWMEM_BOUNDARY (amd64) and VM_DMA32_BOUNDARY, and
   * with NUMA data at every affinity boundary (vm_phys_create_seg). Validates everything first.
   */
  addSeg(start: number, end: number): void {
    addSeg(this.state, start, end);
  }
  /** Append [start, end) to phys_avail (ascending, disjoint). Optional: default = the segments. */
  addAvail(start: number, end: number): void {
    addAvail(this.state, start, end);
  }
  /**
   * Declare phys_avail empty (before init): nothing is free at boot, every page is allocated
   * since boot (as when the kernel reserves all of RAM). Without it, a machine with no
   * `addAvail` range uses the segments as phys_avail.
   */
  availNone(): void {
    availNone(this.state);
  }
  /**
   * vm_phys_early_startup + vm_phys_init: decide the free lists (DMA32 threshold), map
   * VM_FREELIST_* to flind, give each segment its first page index and queues, coalesce
   * neighbours that share queues, and size the page buffers (zero-filled, untouched).
   */
  init(): void {
    init(this.state);
    sizeRecords(this.state, this.state.c.ctl[CTL.SHARED] === 1);
  }
  /** phys_avail as pairs (after init). */
  availRanges(): Array<[number, number]> {
    return availRanges(this.state);
  }
  /**
   * The vm_page_startup part after vm_phys_init: initialise pages of each segment not covered by
   * phys_avail (pool DEFAULT), then enqueue each phys_avail ∩ segment run into LAZYINIT (lazy:
   * only heads; middle chunks implicit) or DEFAULT (eager: every page initialised).
   */
  startup(mode: StartupMode = 'lazy'): void {
    checkMode(mode);
    if (this.phase !== 1)
      throw new StateError(this.phase === 0 ? 'init has not been called' : 'startup was already called');
    pageStartup(this.state, mode === 'lazy');
  }

  // ------------------------------------------------------------------ allocation and freeing

  /**
   * vm_phys_alloc_pages(domain, pool, order): try the free lists in VM_FREELIST_* order.
   * Returns the physical address of a 2^order block, or null. Pool DEFAULT or DIRECT.
   */
  allocPages(domain: number, pool: number, order: number): number | null {
    const s = this.state;
    if (!argsOk(s, domain, pool, order)) {
      // Slow path: the checks below throw the right typed error.
      checkStarted(s);
      checkDomain(s, domain);
      checkPool(s, pool);
      checkOrder(s, order);
    }
    const idx = allocPagesIdx(s, domain, pool, order);
    if (idx < 0) return null;
    s.link[(idx << 1) >>> 0] = ownRec(order);
    return paOf(s, idx);
  }

  /** vm_phys_alloc_freelist_pages(domain, freelist, pool, order) → address or null. */
  allocFreelistPages(domain: number, freelist: number, pool: number, order: number): number | null {
    const s = this.state;
    checkStarted(s);
    checkDomain(s, domain);
    if (!Number.isInteger(freelist) || freelist < 0 || freelist >= s.nFl)
      throw new RangeArgError('EFREELIST', `free list ${freelist} is outside 0..${s.nFl - 1}`);
    checkPool(s, pool);
    checkOrder(s, order);
    const idx = allocFreelistIdx(s, domain, freelist, pool, order);
    if (idx < 0) return null;
    s.link[(idx << 1) >>> 0] = ownRec(order);
    return paOf(s, idx);
  }

  /**
   * vm_phys_alloc_npages(domain, pool, npages, ma): up to npages pages (not contiguous), own
   * pool smallest orders first, then stealing largest first. Writes addresses to `out` and
   * returns the count. 1 ≤ npages ≤ 2^(VM_NFREEORDER-1).
   */
  allocNpages(domain: number, pool: number, npages: number, out: { length: number; [i: number]: number }): number {
    const s = this.state;
    checkStarted(s);
    checkDomain(s, domain);
    checkPool(s, pool);
    if (!Number.isInteger(npages) || npages < 1 || npages > s.chunkPages)
      throw new RangeArgError('ENPAGES', `npages ${npages} is outside 1..${s.chunkPages}`);
    if (!Array.isArray(out) && out.length < npages)
      throw new RangeArgError('ENPAGES', `output array holds ${out.length} < ${npages}`);
    if (s.scratch.length < npages) s.scratch = new Int32Array(Math.max(npages, s.chunkPages));
    const idxOut = s.scratch;
    const got = allocNpagesIdx(s, domain, pool, npages, idxOut);
    let seg = -1;
    let segEnd = -1;
    for (let i = 0; i < got; i++) {
      const idx = idxOut[i];
      if (seg < 0 || idx < segFirst(s, seg) || idx >= segEnd) {
        seg = segOfIdx(s, idx);
        segEnd = segEndIdx(s, seg);
      }
      out[i] = pa(s, idx, seg);
    }
    return got;
  }

  /**
   * vm_phys_free_pages(m, pool, order): free the 2^order block at pa into `pool`, merging with
   * free buddies (any pool; lazy buddies are finished first) up to the maximum order, never
   * across a segment's ends. The block must be an allocated unit of this order (one word
   * compared, O(1)) or an aligned part of one (O(VM_NFREEORDER), see owner.ts; refused under
   * `exactFrees` for blocks from alloc_pages). Throws (state unchanged) on misuse.
   */
  freePages(addr: number, pool: number, order: number): void {
    const s = this.state;
    if (!argsOk(s, 0, pool, order)) {
      checkStarted(s);
      checkPool(s, pool);
      checkOrder(s, order);
    }
    const seg = segForFree(s, addr, 'free');
    const idx = idxIn(s, seg, addr);
    const slot = (idx << 1) >>> 0;
    if (s.link[slot] !== ownRec(order)) freeSlow(s, idx, order, seg, this.exactFrees, 'free');
    s.link[slot] = NO_REC; // the unit ends
    freePagesIdx(s, idx, pool, order, seg);
  }

  /** vm_phys_free_contig(m, pool, npages): free an arbitrary run, merging only at its two ends. */
  freeContig(addr: number, pool: number, npages: number): void {
    const s = this.state;
    checkStarted(s);
    checkPool(s, pool);
    if (!Number.isInteger(npages) || npages < 1)
      throw new RangeArgError('ENPAGES', `free_contig: npages ${npages} must be at least 1`);
    const seg = segForFree(s, addr, 'free_contig');
    const idx = idxIn(s, seg, addr);
    if (idx + npages > segEndIdx(s, seg))
      throw new SegmentError('ESPAN', `free_contig: ${npages} pages at ${hex(addr)} cross the end of their segment`);
    freeContigCheck(s, idx, npages, seg, this.exactFrees, 'free_contig');
    freeContigIdx(s, idx, pool, npages, seg);
  }

  /**
   * The argument checks of `unfreePage`, alone: throws what unfreePage would throw for `addr` and
   * changes nothing; returns the address's segment. Callers that drain before the call (the
   * locked machine) run it first, so that misuse never drains.
   * @internal
   */
  checkUnfree(addr: number): number {
    checkStarted(this.state);
    return segForFree(this.state, addr, 'unfree');
  }

  /**
   * The argument checks of `findRange`, alone (see checkUnfree).
   * @internal
   */
  checkFindRange(segind: number, domain: number, npages: number, low: number, high: number): void {
    const s = this.state;
    checkStarted(s);
    checkDomain(s, domain);
    if (!Number.isInteger(npages) || npages < 1) throw new RangeArgError('ENPAGES', `npages ${npages} must be ≥ 1`);
    checkBound(low, 'low', 'find_range');
    checkBound(high, 'high', 'find_range');
    if (!Number.isInteger(segind) || segind < 0 || segind > s.nsegs)
      throw new RangeArgError('ESEGIND', `segment index ${segind} is outside 0..${s.nsegs}`);
  }

  /**
   * vm_phys_unfree_page(pa): drain pa's domain, then take the single page out of the free block
   * that holds it, giving back halves at the head of the same pool's queues. False if not free.
   */
  unfreePage(addr: number): boolean {
    const s = this.state;
    const seg = this.checkUnfree(addr);
    lazyInitDomain(s, segDomain(s, seg));
    return unfreePageIdx(s, idxIn(s, seg, addr), seg);
  }

  /**
   * vm_phys_find_range(bounds, segind, domain, npages, low, high): the first segment ≥ segind of
   * `domain` with at least npages pages in [low, high); drains the domain first. null = -1.
   */
  findRange(segind: number, domain: number, npages: number, low: number, high: number): FoundRange | null {
    const s = this.state;
    this.checkFindRange(segind, domain, npages, low, high);
    const ps = s.pageSize;
    for (let seg = segind; seg < s.nsegs; seg++) {
      if (segDomain(s, seg) !== domain) continue;
      const ss = s.segStart[seg];
      if (ss >= high) return null;
      const paStart = Math.max(low, ss);
      const paEnd = Math.min(high, s.segEnd[seg]);
      if (paEnd - paStart < npages * ps) continue;
      lazyInitDomain(s, domain);
      const start = ss + Math.floor((paStart - ss) / ps) * ps;
      const end = ss + Math.floor((paEnd - ss) / ps) * ps;
      return { segind: seg, start, end };
    }
    return null;
  }

  /** vm_phys_domain_match(prefer, low, high) with inclusive overlap tests. */
  domainMatch(prefer: number, low: number, high: number): number {
    return domainMatch(this.state, prefer, low, high);
  }

  /** Free pages per pool (lcnt << order), over every domain or one. */
  counts(domain?: number): PoolCounts {
    const s = this.state;
    checkInit(s);
    if (domain !== undefined) checkDomain(s, domain);
    const out = [0, 0, 0, 0];
    const d0 = domain ?? 0;
    const d1 = domain === undefined ? this.ndomains : domain + 1;
    for (let d = d0; d < d1; d++)
      for (let f = 0; f < this.nfreelists; f++)
        for (let pool = 0; pool < s.nPool; pool++) out[pool] += poolPages(s, d, f, pool);
    return { lazyinit: out[0], default: out[1], direct: out[2], total: out[0] + out[1] + out[2] };
  }

  // ------------------------------------------------------------------ lazy initialisation

  /** vm_phys_lazy_init: drain every domain in order, then move vm_default_freepool to DEFAULT. */
  drain(): void {
    checkStarted(this.state);
    lazyInit(this.state);
  }

  /** vm_phys_lazy_init_domain(D, false) as the `drain_domain` command: cursor untouched. */
  drainDomain(domain: number): void {
    checkStarted(this.state);
    checkDomain(this.state, domain);
    lazyInitDomain(this.state, domain);
  }

  /**
   * An incremental drain over all domains: process at most `budget` blocks; returns true when
   * every domain is done and vm_default_freepool has moved to DEFAULT.
   */
  drainStep(budget: number): boolean {
    checkStarted(this.state);
    if (typeof budget !== 'number' || !Number.isInteger(budget) || budget < 1)
      throw new RangeArgError(
        'EBUDGET',
        `drain step: budget ${typeof budget === 'number' ? budget : typeof budget} is not a positive integer`,
      );
    return lazyInitStep(this.state, budget);
  }

  /** Mark the end of vm_phys_lazy_init: vm_default_freepool = DEFAULT (after all domains). */
  finishLazyInit(): void {
    finishLazyInit(this.state);
  }

  /** Number of pages still in the LAZYINIT pool of a domain (all domains when omitted). */
  lazyPages(domain?: number): number {
    return domain === undefined ? this.counts().lazyinit : this.counts(domain).lazyinit;
  }

  // ------------------------------------------------------------------ the index API (unvalidated; the README's)

  /**
   * The body of vm_phys_alloc_pages on page indices, unvalidated: a page index or -1.
   */
  allocPagesIdx(domain: number, pool: number, order: number): number {
    return allocPagesIdx(this.state, domain, pool, order);
  }
  /**
   * The body of vm_phys_alloc_freelist_pages on page indices, unvalidated.
   */
  allocFreelistIdx(domain: number, freelist: number, pool: number, order: number): number {
    return allocFreelistIdx(this.state, domain, freelist, pool, order);
  }
  /**
   * vm_phys_free_pages on a page index, unvalidated.
   */
  freeIdx(idx: number, pool: number, order: number): void {
    freeIdx(this.state, idx, pool, order);
  }
  /**
   * Physical address of a page index.
   */
  paOf(idx: number): number {
    return paOf(this.state, idx);
  }
  /** vm_phys_paddr_to_vm_page: the page index of pa, or -1 outside every segment. */
  paddrToPage(addr: number): number {
    return paddrToPage(this.state, addr);
  }
  /**
   * vm_phys_lookup_segind: the segment containing pa, or -1.
   * @internal
   */
  segOfPa(addr: number): number {
    return segOfPa(this.state, addr);
  }
}
