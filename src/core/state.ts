/**
 * The allocator's state: one object per machine holding the views over its shared buffers, the
 * constants cached from the profile and the derived segment index. It plays the part of
 * vm_phys.c's globals; every other core module is a set of free functions over it. This file
 * owns the object's shape (all fields are created here, in one order, so every machine has the
 * same hidden class) and the argument checks of the validated API. It writes no buffer: each
 * buffer region has one owner module, named beside its field.
 * @internal
 */
import { DomainError, PoolError, RangeArgError, StateError } from './errors.js';
import { type ControlViews, CTL, createControl, createPages, DEFAULT_MAX_RUNS, type PageViews } from './layout.js';
import { NONE_LAYOUT } from './pagerec/layout.js';
import { PageRecords } from './pagerec/records.js';
import { amd64, Pool, type Profile } from './params.js';

/** Int32 words per segment row in `PhysState.seg` (see SEGROW). */
export const SEGROW_SIZE = 8;
/**
 * Fields of a segment row: first page index, end page index (exclusive), adj = (start pfn -
 * first) mod 2^32 so that (idx + adj) has the pfn's low bits, qbase = qIndex(domain, flind, 0,
 * 0) (the segment's row of free queues), the domain and the free-list index.
 */
export const SEGROW = { FIRST: 0, END: 1, ADJ: 2, QBASE: 3, DOMAIN: 4, FLIND: 5 } as const;

/**
 * `PhysState.allocQ` is indexed by (domain << ALLOCQ_POOL_SHIFT) | pool: a power-of-two stride,
 * so the order-0 allocation path indexes it with one shift and one or (no multiply). Profiles
 * have at most 1 << ALLOCQ_POOL_SHIFT pools (the constructor checks).
 */
export const ALLOCQ_POOL_SHIFT = 2;
/** An `allocQ` entry for a domain without free list 0: any order added to it stays negative. */
export const NO_QUEUE = -0x40000000;

/**
 * The control views as a class instance, copied field by field from a `ControlViews`. Hot code
 * reads typed arrays through `PhysState.c` (e.g. `s.c.ctl`); an object literal's fields lose
 * their tracked type the second time the literal runs (a second machine), which throws away
 * every compiled function that relied on it. A class keeps one hidden class whose field types
 * hold for every machine. The views share the buffers: this is the same memory, not a copy.
 */
class Control implements ControlViews {
  readonly buffer: ArrayBufferLike;
  readonly ctl: Int32Array;
  readonly locks: Int32Array;
  readonly stats: Float64Array;
  readonly segs: Float64Array;
  readonly affinity: Float64Array;
  readonly avail: Float64Array;
  readonly oHead: number;
  readonly oTail: number;
  readonly oCount: number;
  readonly nQueues: number;
  readonly runs: Int32Array;
  readonly maxRuns: number;
  readonly drainers: Int32Array;

  constructor(v: ControlViews) {
    this.buffer = v.buffer;
    this.ctl = v.ctl;
    this.locks = v.locks;
    this.stats = v.stats;
    this.segs = v.segs;
    this.affinity = v.affinity;
    this.avail = v.avail;
    this.oHead = v.oHead;
    this.oTail = v.oTail;
    this.oCount = v.oCount;
    this.nQueues = v.nQueues;
    this.runs = v.runs;
    this.maxRuns = v.maxRuns;
    this.drainers = v.drainers;
  }
}

/**
 * One machine's state.
 * @internal
 */
export class PhysState {
  readonly profile: Profile;
  /** Control block views (ctl words, segment table, affinity, phys_avail, runs, stats, locks). */
  readonly c: ControlViews;
  /**
   * The whole control buffer as Int32: queue heads, tails and counts live at oHead/oTail/oCount
   * (written only by queues.ts). One array for the three, so compiled code loads one base.
   */
  readonly q: Int32Array;
  readonly oHead: number;
  readonly oTail: number;
  readonly oCount: number;
  /** Page state bytes (pages.ts codec; written by queues.ts, pages.ts, startup.ts). */
  meta: Uint8Array;
  /** Queue links, link[2i] = next, link[2i+1] = prev (written by queues.ts only). */
  link: Int32Array;
  readonly nOrd: number; // VM_NFREEORDER
  readonly maxOrder: number; // VM_NFREEORDER - 1
  readonly nPool: number;
  readonly nFl: number;
  readonly pageSize: number;
  /** 1 / PAGE_SIZE, exact (a power of two). */
  readonly invPageSize: number;
  readonly chunkPages: number; // 1 << maxOrder
  /** Segment index, derived from the shared segment table by segments.ts (its only writer). */
  nsegs: number;
  readonly segStart: Float64Array;
  readonly segEnd: Float64Array;
  /** SEGROW_SIZE Int32 words per segment (SEGROW fields), plus one row whose FIRST ends the last. */
  readonly seg: Int32Array;
  /** qIndex(domain, vm_freelist_to_flind[freelist], 0, 0) per [domain][freelist]; -1: no such list. */
  readonly flQBase: Int32Array;
  /**
   * The order-0 queue of free list 0 per [domain][pool] (ALLOCQ_POOL_SHIFT stride), NO_QUEUE when
   * the domain has no free list 0: vm_phys_alloc_pages' first try, found with one load (segments.ts).
   */
  readonly allocQ: Int32Array;
  /** One-entry caches: the last segment looked up, as its row offset in `seg` (segments.ts); the last lazy run (queues.ts). */
  lastSegRow: number;
  lastRun: number;
  /** Page index of the last enq_chunk look-ahead initialisation (start-up only; buddy.ts). */
  lastLookAhead: number;
  /** alloc_npages' index buffer (facade). */
  scratch: Int32Array;
  /**
   * The page-record array (struct vm_page or a user's layout; pagerec/). Written only through
   * its writers, by pages.ts where a page is initialised; every call is guarded by `rec.active`
   * so a machine without records pays nothing. Replaced once, when init sizes the machine.
   */
  rec: PageRecords;

  /** `rec`: the machine's record array (default: none; pagerec/wire.ts sizes it at init). */
  constructor(profile: Profile, control: ControlViews, pages: PageViews, rec?: PageRecords) {
    this.profile = profile;
    this.c = new Control(control);
    this.q = new Int32Array(control.buffer, 0, control.buffer.byteLength >> 2);
    this.oHead = control.oHead;
    this.oTail = control.oTail;
    this.oCount = control.oCount;
    this.meta = pages.meta;
    this.link = pages.link;
    this.nOrd = profile.nFreeOrder;
    this.maxOrder = profile.nFreeOrder - 1;
    this.nPool = profile.nFreePool;
    this.nFl = profile.nFreeList;
    this.pageSize = profile.pageSize;
    this.invPageSize = 1 / profile.pageSize;
    this.chunkPages = 1 << this.maxOrder;
    const n = profile.physSegMax;
    this.nsegs = 0;
    this.segStart = new Float64Array(n);
    this.segEnd = new Float64Array(n);
    this.seg = new Int32Array(SEGROW_SIZE * (n + 1));
    this.flQBase = new Int32Array(profile.maxMemDom * profile.nFreeList).fill(-1);
    if (profile.nFreePool > 1 << ALLOCQ_POOL_SHIFT)
      throw new RangeError('profile has more free pools than allocQ holds');
    this.allocQ = new Int32Array(profile.maxMemDom << ALLOCQ_POOL_SHIFT).fill(NO_QUEUE);
    this.lastSegRow = 0;
    this.lastRun = 0;
    this.lastLookAhead = -1;
    this.scratch = new Int32Array(0);
    this.rec = rec ?? PageRecords.create(NONE_LAYOUT, 0);
  }
}

/**
 * A fresh state: new control buffers (shared by default, so workers can attach) and empty page
 * buffers (init sizes them).
 * @internal
 */
export function createState(profile: Profile = amd64, shared = true, maxRuns = DEFAULT_MAX_RUNS): PhysState {
  return new PhysState(profile, createControl(profile, shared, maxRuns), createPages(0, false));
}

/**
 * Queue index of [domain][flind][pool][order].
 * @internal
 */
export function qIndex(s: PhysState, domain: number, flind: number, pool: number, order: number): number {
  return ((domain * s.nFl + flind) * s.nPool + pool) * s.nOrd + order;
}

/** @internal vm_ndomains (at least 1). */
export function ndomains(s: PhysState): number {
  return Math.max(1, s.c.ctl[CTL.NDOMAINS]);
}

/**
 * One-branch fast check of the common arguments of the validated API; false sends callers to
 * the typed checks below.
 * @internal
 */
export function argsOk(s: PhysState, domain: number, pool: number, order: number): boolean {
  return (
    s.c.ctl[CTL.PHASE] === 2 &&
    domain === (domain | 0) &&
    domain >= 0 &&
    domain < s.c.ctl[CTL.NDOMAINS] &&
    (pool === Pool.DEFAULT || pool === Pool.DIRECT) &&
    order === (order | 0) &&
    order >= 0 &&
    order < s.nOrd
  );
}

/** @internal Throws EDOMAIN unless domain is an integer in 0..vm_ndomains-1. */
export function checkDomain(s: PhysState, domain: number): void {
  const n = ndomains(s);
  if (!Number.isInteger(domain) || domain < 0 || domain >= n)
    throw new DomainError('EDOMAIN', `domain ${domain} is outside 0..${n - 1}`);
}

/** @internal Throws unless pool is a pool a caller may name (DEFAULT or DIRECT). */
export function checkPool(s: PhysState, pool: number): void {
  if (pool === Pool.LAZYINIT) throw new PoolError('the LAZYINIT pool cannot be named by a caller (vm_phys_pool_valid)');
  if (!Number.isInteger(pool) || pool < 0 || pool >= s.nPool) throw new PoolError(`unknown pool ${pool}`);
}

/** @internal Throws EORDER unless order is an integer in 0..VM_NFREEORDER-1. */
export function checkOrder(s: PhysState, order: number): void {
  if (typeof order !== 'number' || !Number.isInteger(order))
    throw new RangeArgError(
      'EORDER',
      `order ${typeof order === 'string' ? JSON.stringify(order) : String(order)} is not an integer`,
    );
  if (order < 0 || order >= s.nOrd) throw new RangeArgError('EORDER', `order ${order} is outside 0..${s.maxOrder}`);
}

/** @internal Throws unless startup has run. */
export function checkStarted(s: PhysState): void {
  if (s.c.ctl[CTL.PHASE] !== 2) throw new StateError('the allocator has not been started (call startup)');
}

/** @internal Throws unless init has run. */
export function checkInit(s: PhysState): void {
  if (s.c.ctl[CTL.PHASE] < 1) throw new StateError('init has not been called');
}
