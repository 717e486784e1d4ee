/**
 * Where every byte of allocator state lives. All state is in two kinds of buffer:
 *  - the control buffer (fixed size, made by `createControl`): control words, the segment table,
 *    the affinity and phys_avail tables, the free-queue heads/tails/counts
 *    `[domain][freelist][pool][order]`, the lazy-run table, the domain lock words and counters;
 *  - the page buffers (sized at `init`): one metadata byte and two 32-bit queue links per page.
 * Both are SharedArrayBuffers when sharing is on, so a worker can `attach` without copying.
 * Only this file knows offsets; the core modules read and write through the views made here (the
 * queue words through state.ts's one Int32 view of the whole control buffer).
 */
import type { Profile } from './params.js';

/** Indices into the Int32 control words (`ctl`). */
export const CTL = {
  PHASE: 0, // 0 configuring, 1 init done, 2 startup done
  NSEGS: 1,
  NFREELISTS: 2,
  NDOMAINS: 3,
  DEFAULT_FREEPOOL: 4, // vm_default_freepool
  NAFFINITY: 5,
  NAVAIL: 6,
  NRUNS: 7,
  TOTAL_PAGES: 8,
  FL_TO_FLIND: 9, // 3 words: vm_freelist_to_flind[]
  INITDONE: 12, // 8 words: initdone[domain]
  MODE: 20, // startup mode: 1 lazy, 0 eager, -1 not started
  PROFILE: 21, // 0 amd64, 1 arm64
  SHARED: 22,
  GENERATION: 23, // bumped by every mutation batch (for viewers)
  NRAWSEGS: 24, // segments added before init (== NSEGS until init merges)
  DRAINERS: 25, // workers currently draining
  INFLIGHT: 32, // 8 words: pages of lazy blocks a drainer holds off the queues, per domain
  SIZE: 48,
} as const;

/** Float64 statistics words (`stats`), readable at any moment. */
export const STAT = {
  PAGES_INITIALIZED: 0, // vm_page_init_page equivalents performed (all causes)
  CHUNKS_MATERIALIZED: 1, // implicit max-order lazy chunks turned into explicit state
  ON_DEMAND_INITS: 2, // finish_init calls on the allocation/free paths
  ON_DEMAND_PAGES: 3,
  MAX_INIT_PAGES: 4, // largest single on-demand initialisation, in pages
  DRAIN_BLOCKS: 5,
  DRAIN_PAGES: 6,
  LOCK_ACQUIRES: 7,
  LOCK_CONTENDED: 8,
  META_BYTES_TOUCHED: 9, // bytes of page metadata written by initialisation
  MAX_INIT_US: 10, // longest single on-demand initialisation, microseconds (wall clock)
  ON_DEMAND_US: 11, // total time in on-demand initialisation, microseconds
  SIZE: 16,
} as const;

/** Fields of the segment table (Float64, SEGF per segment). */
export const SEGF = { START: 0, END: 1, DOMAIN: 2, FLIND: 3, FIRST: 4, SIZE: 5 } as const;
/**
 * Fields of the lazy-run table (Int32, RUNF per run): implicit max-order chunks. TOUCHED is 0
 * while every chunk of the run is still an untouched lazy chunk on its queue, 1 once one has
 * been taken, 2 once the whole run has been drained to DEFAULT in one step.
 */
export const RUNF = { START: 0, END: 1, QUEUE: 2, NEXT: 3, PREV: 4, TOUCHED: 5, SIZE: 6 } as const;

/**
 * The drainer table (control buffer region `drainers`): one row per running drainer, so that any
 * thread can see which lazy blocks a drainer holds off the queues and recover them if it dies.
 * Rows are claimed with a compare-exchange on OWNER (0 = free row, else the owner's thread id
 * + 1, the lock's owner ids); the block list is written only under the lock of the row's
 * DOMAIN (by the drainer, or by the lock holder serving its mailbox), one step per block, so it
 * always lists exactly the blocks the drainer has taken (lazyTake) and not yet put (lazyPut).
 *   OWNER    thread id + 1 of the drainer, 0 free
 *   COUNTED  1 while the drainer is counted in ctl[CTL.DRAINERS]
 *   DOMAIN   the domain it drains now (its blocks all belong to it)
 *   BUSY     1 while the drainer, holding DOMAIN's lock, is inside a core call (lazyPut,
 *            lazyTake): a death then leaves that domain half-updated
 *   FIRST, N the blocks held are pairs FIRST..N-1 (puts advance FIRST, takes append)
 *   BLOCKS   MAX_BLOCKS pairs (page index, order)
 * Owned by the workers layer (workers/drainer.ts, workers/exchange.ts); the core reads it to
 * give back a vanished drainer's blocks (lazy.ts) and on restore (snapshot.ts).
 */
export const DRSLOT = {
  OWNER: 0,
  COUNTED: 1,
  DOMAIN: 2,
  BUSY: 3,
  FIRST: 4,
  N: 5,
  BLOCKS: 8,
  MAX_BLOCKS: 8,
  SIZE: 8 + 2 * 8,
} as const;

/** Rows of the drainer table: drainers that may run at once over one allocator. */
export const DRAINER_SLOTS = 32;

/** Bytes of metadata per page: 1 state byte + 2 × Int32 queue links. */
export const META_BYTES_PER_PAGE = 9;

/** The typed views over the control buffer. */
export interface ControlViews {
  readonly buffer: ArrayBufferLike;
  readonly ctl: Int32Array;
  readonly locks: Int32Array; // one word per domain, padded to a cache line
  readonly stats: Float64Array;
  readonly segs: Float64Array;
  readonly affinity: Float64Array; // start, end, domain triples
  readonly avail: Float64Array; // start, end pairs
  /**
   * Int32 word offsets, in `buffer`, of the queue heads, tails and counts (nQueues words each).
   * They have no views of their own: queues.ts reads and writes them through one Int32 view of
   * the whole buffer (PhysState.q), the single access path.
   */
  readonly oHead: number;
  readonly oTail: number;
  readonly oCount: number;
  readonly nQueues: number;
  readonly runs: Int32Array;
  readonly maxRuns: number;
  /** The drainer table: DRAINER_SLOTS rows of DRSLOT.SIZE words (see DRSLOT). */
  readonly drainers: Int32Array;
}

/** The typed views over the page buffers. */
export interface PageViews {
  readonly metaBuffer: ArrayBufferLike;
  readonly linkBuffer: ArrayBufferLike;
  /** State byte per page; 0 = never initialised. See `pages.ts` for the encoding. */
  readonly meta: Uint8Array;
  /**
   * Queue links, interleaved so that a head's two links share a cache line and a page:
   * link[2i] = next, link[2i+1] = prev; -1 end of list, 0 implicit (lazy run), else index + 1.
   */
  readonly link: Int32Array;
}

/** Number of free queues for a profile: MAXMEMDOM × VM_NFREELIST × VM_NFREEPOOL × VM_NFREEORDER. */
export function queueCount(p: Profile): number {
  return p.maxMemDom * p.nFreeList * p.nFreePool * p.nFreeOrder;
}

function alloc(bytes: number, shared: boolean): ArrayBufferLike {
  return shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
}

/** Default capacity of the lazy-run table (runs are phys_avail ∩ segment pieces plus splits). */
export const DEFAULT_MAX_RUNS = 256;

function controlSize(p: Profile, maxRuns: number) {
  const lockStride = p.cacheLineSize / 4;
  const parts = [
    ['ctl', CTL.SIZE * 4],
    ['locks', p.maxMemDom * lockStride * 4],
    ['stats', STAT.SIZE * 8],
    ['segs', p.physSegMax * SEGF.SIZE * 8],
    ['affinity', p.physSegMax * 3 * 8],
    ['avail', p.physAvailMax * 2 * 8],
    ['qHead', queueCount(p) * 4],
    ['qTail', queueCount(p) * 4],
    ['qCount', queueCount(p) * 4],
    ['runs', maxRuns * RUNF.SIZE * 4],
    // Last, so that the regions before it keep their offsets in older snapshots.
    ['drainers', DRAINER_SLOTS * DRSLOT.SIZE * 4],
  ] as const;
  const offsets: Record<string, number> = {};
  let off = 0;
  for (const [name, size] of parts) {
    off = (off + 7) & ~7;
    offsets[name] = off;
    off += size;
  }
  return { offsets, size: off, lockStride };
}

/** Bytes of a control buffer for profile `p` with a lazy-run table of `maxRuns` entries. */
export function controlBytes(p: Profile, maxRuns = DEFAULT_MAX_RUNS): number {
  return controlSize(p, maxRuns).size;
}

/** Bytes of the control buffer before the drainer table (its size in snapshot format 1). */
export function controlBytesV1(p: Profile, maxRuns = DEFAULT_MAX_RUNS): number {
  return controlSize(p, maxRuns).offsets.drainers;
}

/** Views over an existing control buffer (used by `createControl` and by `attach`). */
export function controlViews(p: Profile, buffer: ArrayBufferLike, maxRuns = DEFAULT_MAX_RUNS): ControlViews {
  const { offsets: o, lockStride } = controlSize(p, maxRuns);
  const q = queueCount(p);
  return {
    buffer,
    ctl: new Int32Array(buffer, o.ctl, CTL.SIZE),
    locks: new Int32Array(buffer, o.locks, p.maxMemDom * lockStride),
    stats: new Float64Array(buffer, o.stats, STAT.SIZE),
    segs: new Float64Array(buffer, o.segs, p.physSegMax * SEGF.SIZE),
    affinity: new Float64Array(buffer, o.affinity, p.physSegMax * 3),
    avail: new Float64Array(buffer, o.avail, p.physAvailMax * 2),
    oHead: o.qHead >> 2,
    oTail: o.qTail >> 2,
    oCount: o.qCount >> 2,
    nQueues: q,
    runs: new Int32Array(buffer, o.runs, maxRuns * RUNF.SIZE),
    maxRuns,
    drainers: new Int32Array(buffer, o.drainers, DRAINER_SLOTS * DRSLOT.SIZE),
  };
}

/** A fresh control buffer: queues empty (-1 heads), phase 0. */
export function createControl(p: Profile, shared: boolean, maxRuns = DEFAULT_MAX_RUNS): ControlViews {
  const v = controlViews(p, alloc(controlSize(p, maxRuns).size, shared), maxRuns);
  new Int32Array(v.buffer, v.oHead * 4, v.nQueues).fill(-1);
  new Int32Array(v.buffer, v.oTail * 4, v.nQueues).fill(-1);
  v.ctl[CTL.MODE] = -1;
  v.ctl[CTL.PROFILE] = p.name === 'arm64' ? 1 : 0;
  v.ctl[CTL.SHARED] = shared ? 1 : 0;
  return v;
}

/** Lock word index of a domain inside `locks` (one cache line apart). */
export function lockIndex(p: Profile, domain: number): number {
  return domain * (p.cacheLineSize / 4);
}

/**
 * Page buffers for `totalPages` pages. They are zero-filled by the runtime and never written
 * here, so pages of metadata that the allocator never touches stay untouched memory.
 */
export function createPages(totalPages: number, shared: boolean): PageViews {
  const metaBuffer = alloc(Math.max(totalPages, 1), shared);
  const linkBuffer = alloc(Math.max(totalPages, 1) * 8, shared);
  return pageViews(metaBuffer, linkBuffer, totalPages);
}

/** Views over existing page buffers. */
export function pageViews(metaBuffer: ArrayBufferLike, linkBuffer: ArrayBufferLike, totalPages: number): PageViews {
  const n = Math.max(totalPages, 1);
  return {
    metaBuffer,
    linkBuffer,
    meta: new Uint8Array(metaBuffer, 0, n),
    link: new Int32Array(linkBuffer, 0, 2 * n),
  };
}
