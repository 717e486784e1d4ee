/**
 * Replaying a Linux page-allocator trace (see /work/shared/data/traces/README.md) through vmphys.
 * Owned by the replay work (issue 6); others call it through `replayTrace`, `TraceReplayer` and
 * `buildMachine`, and do not edit it.
 *
 * What a replay does: every traced allocation allocates a block of the same order from our
 * allocator, every traced free frees the matching part of what we allocated for it. We do not
 * try to reproduce Linux's choice of pfn; the traced pfn is only a key. The bookkeeping
 * (`PfnTable`: a two-level direct map of typed arrays with a live bitmap in front, a hash table
 * for pfns ≥ 2^31) maps the traced pfn of an allocation's head to our page index, order, pool and
 * segment.
 *
 * Rules (the mapping is also returned as text in every report, `REPLAY_MAPPING`):
 *  - `__GFP_DMA32` → vm_phys_alloc_freelist_pages(0, VM_FREELIST_DMA32, pool, order);
 *    `__GFP_DMA` → VM_FREELIST_LOWMEM (amd64; arm64 has no LOWMEM and uses DMA32); a free list
 *    the machine does not have (e.g. no DMA32 list below 64 GiB on amd64) falls back to
 *    vm_phys_alloc_pages. Everything else → vm_phys_alloc_pages(0, pool, order), which tries
 *    DEFAULT, DMA32, LOWMEM in that order. Migratetype 1 (movable) → pool DEFAULT, others →
 *    DIRECT. Domain 0 first; on a NUMA map the other domains are tried in order on failure.
 *  - A free of (pfn, order) is matched to the live traced allocation that covers it: first the
 *    head at pfn itself, then the heads at pfn aligned down to each larger order up to the
 *    largest order ever allocated in this replay (at most VM_NFREEORDER-1 = 12; Linux uses ≤ 10).
 *    A cheap filter (live blocks of order ≥ 1 counted per 16-page granule) skips those extra
 *    probes when no multi-page block covers pfn's granule. The matching sub-block of ours (same offset
 *    inside our block) is freed with the same pool.
 *  - A free of a part of a block (Linux `split_page` frees high-order blocks page by page)
 *    converts the traced block into buddy pieces: the pieces that remain are entered in the table
 *    as blocks of their own (at most `order` of them), so nothing is ever freed twice.
 *  - A free that no live traced allocation covers (most frees: the trace starts in mid-life), a
 *    free whose pfn is not aligned to its order, or whose order is larger than the covering
 *    allocation, is counted in `skippedFrees` and otherwise ignored.
 *  - An allocation whose head pfn is already live in the table (the trace lost the free in
 *    between: trace B has 4 such pages) first frees our old block; counted in `lostFrees`.
 *  - A failed allocation is counted in `failedAllocs`; later frees of it count as skipped.
 *
 * Hot path: `TraceReplayer.run` allocates nothing per event; it calls the core's unvalidated
 * index-level methods `allocFreelistIdx`, `freePagesIdx` and `segOfIdx` (validation is done once
 * here: orders are checked against VM_NFREEORDER, and only blocks this replay allocated, each
 * exactly once, are ever freed).
 */
import { bootFromMap, subtractRanges } from '../boot/startup.js';
import { amd64, FreeList, Pool, type Profile } from '../core/params.js';
import type { StartupMode, VmPhys } from '../core/vmphys.js';
import { type ParseTraceOptions, parseTrace, TraceFlag, TraceOp } from './parse.js';

/** A half-open physical address range [start, end). */
export interface Range {
  start: number;
  end: number;
}

/** A machine: RAM ranges (→ segments), reserved ranges (removed from phys_avail), NUMA affinity. */
export interface MachineMapLike {
  ram: Range[];
  reserved?: Range[];
  affinity?: Array<Range & { domain: number }>;
}

/**
 * The traced VM: /work/shared/data/memmaps/firecracker-128g.iomem.txt's System RAM, page
 * aligned (iomem ends are inclusive: 0x9fbff → 0x9fc00 → 0x9f000).
 */
export const FIRECRACKER_128G: MachineMapLike = Object.freeze({
  ram: [
    { start: 0x1000, end: 0x9f000 },
    { start: 0x100000, end: 0xc0000000 },
    { start: 0x100000000, end: 0x2040000000 },
  ],
});

/**
 * A started, unshared VmPhys for a map (default FIRECRACKER_128G): affinity ranges first, one
 * vm_phys_add_seg per RAM range (rounded inward to pages), phys_avail = RAM minus reserved
 * (only when reserved ranges are given; otherwise phys_avail = the segments), then init and
 * vm_page_startup in `mode`. Throws the core's typed errors for a bad map.
 */
export function buildMachine(
  map: MachineMapLike = FIRECRACKER_128G,
  mode: StartupMode = 'lazy',
  profile: Profile = amd64,
): VmPhys {
  // The same vm_page_startup path as `vmphys boot` (src/boot/startup.ts).
  const memmap = { format: 'json' as const, ram: map.ram, reserved: map.reserved ?? [], affinity: map.affinity ?? [] };
  return bootFromMap(memmap, { mode, profile, shared: false }).vm;
}

export { subtractRanges };

/** The mapping of Linux requests onto vm_phys, as printed in reports. */
export const REPLAY_MAPPING =
  '__GFP_DMA32 -> alloc_freelist_pages(0, DMA32, pool, order); __GFP_DMA -> alloc_freelist_pages(0, LOWMEM, ' +
  'pool, order) (arm64: DMA32); otherwise alloc_pages(0, pool, order); a missing free list falls back to ' +
  'alloc_pages; migratetype 1 (movable) -> pool DEFAULT, others -> pool DIRECT; domain 0 first, other ' +
  'domains on failure; frees map to the same offset inside the covering traced allocation ' +
  '(heads probed at pfn aligned down to each order up to the largest allocated, <= 12); ' +
  'uncovered frees are skipped';

const EMPTY = -1;
/** log2 of the run of consecutive pfns kept in consecutive slots by the hash. */
const HASH_RUN = 3;
const HASH_RUN_LEN = 1 << HASH_RUN;
/** Cover filter granule: 2^4 pages. */
const GRANULE = 16;
const GRANULE_SHIFT = 4;
/** Cover filter size (counters); granules alias every 2^15 × 16 pages (2 GiB). */
const FILTER_MASK = (1 << 15) - 1;
/** info bits: segment index (bits 8..13), and PIECE: the entry is what remains of a larger block. */
const SEG_MASK = 63;
/** info bit of a table entry that is what remains of a split block. */
export const PIECE = 1 << 14;
/** pfns below this take the int32 fast paths. */
const SMALL_PFN = 2 ** 31;
/** pfns from here on are kept by `PfnHash` (the direct map takes the int32 pfns). */
const BIG_PFN = SMALL_PFN;

/** log2 of the pfns per leaf of the direct map (64 pfns: 512 bytes of cells). */
const LEAF_SHIFT = 6;
const LEAF_LEN = 1 << LEAF_SHIFT;
/** 32-bit words of the live bitmap per directory entry. */
const LIVE_WORDS = LEAF_LEN / 32;
/** Set in a live cell's info word (a zero info word marks an empty cell). */
const PRESENT = 1 << 30;
/** Slots of the hash part (pfns ≥ 2^31) are numbered from here; direct slots stay below. */
const BIG = 2 ** 31;
/** Cells reserved up front: 2^22 slots = 32 MiB of address space, paid for only where touched. */
const RESERVE_SLOTS = 1 << 22;

/**
 * The replay's bookkeeping: traced head pfn (exact integer ≥ 0, < 2^53) → block, an int32 `addr`
 * (our page index, or any handle) and an int32 `info` (order | pool << 4 | seg << 8 | piece << 14
 * for the replayer; bits 0..3 must hold the order; info < 2^30).
 *
 * Pfns below 2^31 (every real trace: 2^31 pages is 8 TiB) go to a two-level direct map: a
 * directory indexed by pfn >> 6 names a leaf of 64 cells, allocated on the first insert into
 * that range; a cell is [addr, info | PRESENT] (two int32). In front of it, a bitmap with one
 * bit per pfn says which pfns head a live entry, so a find that misses (most do) reads one bit
 * and never the cells. A hit is a bit test, a directory load and a cell load; an insert or
 * remove is a few stores: no hashing, no probing, no deletion shuffle. Leaves are handed out
 * in first-touch order from one SharedArrayBuffer reserved at 2^22 cells (32 MiB of address
 * space; the runtime maps its pages only when written, so a trace pays for the leaves it uses,
 * ~2.5 MB for the shared trace), doubled when full. Leaves are never freed: memory is bounded by
 * 8 bytes per traced pfn range actually used (at most 8 bytes per page of the traced machine),
 * not by the trace's length. Larger pfns go to `PfnHash`.
 *
 * Slot numbers: a direct cell is slot leaf * 64 + (pfn & 63); hash slots are 2^31 + their slot (the cells cannot reach 2^31).
 * Slots returned by `find`/`insert` are valid until the next insert or remove.
 */
export class PfnTable {
  /** Live entries. */
  size = 0;
  /** Sum of 2^order over live entries: pages held. */
  pages = 0;
  /** pfn >> LEAF_SHIFT → leaf number + 1 (0: no leaf yet). */
  private dir: Int32Array;
  /** Per slot: addr at [2 * slot], info | PRESENT at [2 * slot + 1] (0: empty). */
  private cells: Int32Array;
  /**
   * One bit per pfn the directory covers: set while pfn heads a live entry. `find` tests it
   * before touching the cells: most finds miss (allocations check for a lost free, a quarter of
   * a trace's frees match nothing), and the bitmap (1 bit per pfn) stays in cache where the
   * cells (8 bytes per pfn) do not.
   */
  private live: Int32Array;
  /** Leaf number → its directory index (to recover a slot's pfn). */
  private leafKey: Int32Array;
  private nLeaves = 0;
  private readonly big: PfnHash;

  /** reserve: cells to reserve up front (default 2^22; it grows by doubling beyond). */
  constructor(reserve = RESERVE_SLOTS) {
    const slots = Math.max(LEAF_LEN, Math.ceil(reserve / LEAF_LEN) * LEAF_LEN);
    this.cells = new Int32Array(new SharedArrayBuffer(slots * 8));
    this.leafKey = new Int32Array(slots / LEAF_LEN);
    this.dir = new Int32Array(1 << 12);
    this.live = new Int32Array(this.dir.length * LIVE_WORDS);
    this.big = new PfnHash(16);
  }

  /** Slot holding pfn, or -1. */
  find(pfn: number): number {
    if (pfn < BIG_PFN) {
      const d = pfn >>> LEAF_SHIFT;
      if (d >= this.dir.length || (this.live[pfn >>> 5] & (1 << (pfn & 31))) === 0) return -1;
      return ((this.dir[d] - 1) << LEAF_SHIFT) | (pfn & (LEAF_LEN - 1));
    }
    const h = this.big.find(pfn);
    return h < 0 ? -1 : BIG + h;
  }

  /** Page handle stored in slot s. */
  addrAt(s: number): number {
    return s < BIG ? this.cells[2 * s] : this.big.addrAt(s - BIG);
  }
  /** info word of slot s (order in bits 0..3). */
  infoAt(s: number): number {
    return s < BIG ? this.cells[2 * s + 1] & ~PRESENT : this.big.infoAt(s - BIG);
  }
  /** Key (traced pfn) of slot s. */
  keyAt(s: number): number {
    return s < BIG ? (this.leafKey[s >>> LEAF_SHIFT] << LEAF_SHIFT) | (s & (LEAF_LEN - 1)) : this.big.keyAt(s - BIG);
  }

  /**
   * Insert a key that is not present (the caller checked with `find`) and return its slot.
   * Contract: pfn is not already in the table; info & 15 is the block's order; 0 ≤ info < 2^30.
   */
  insert(pfn: number, addr: number, info: number): number {
    this.size++;
    this.pages += 1 << (info & 15);
    if (pfn >= BIG_PFN) return BIG + this.big.insert(pfn, addr, info);
    const d = pfn >>> LEAF_SHIFT;
    if (d >= this.dir.length) this.growDir(d);
    let l = this.dir[d];
    if (l === 0) l = this.dir[d] = this.newLeaf(d);
    const s = ((l - 1) << LEAF_SHIFT) | (pfn & (LEAF_LEN - 1));
    this.cells[2 * s] = addr;
    this.cells[2 * s + 1] = info | PRESENT;
    this.live[pfn >>> 5] |= 1 << (pfn & 31);
    return s;
  }

  /** Remove the entry in slot s. */
  removeAt(s: number): void {
    this.size--;
    if (s >= BIG) {
      this.pages -= 1 << (this.big.infoAt(s - BIG) & 15);
      this.big.removeAt(s - BIG);
      return;
    }
    this.pages -= 1 << (this.cells[2 * s + 1] & 15);
    this.cells[2 * s + 1] = 0;
    const pfn = this.keyAt(s);
    this.live[pfn >>> 5] &= ~(1 << (pfn & 31));
  }

  /** Visit every live entry (not on a hot path). */
  forEach(fn: (pfn: number, addr: number, info: number) => void): void {
    const c = this.cells;
    for (let s = 0; s < this.nLeaves * LEAF_LEN; s++)
      if (c[2 * s + 1] !== 0) fn(this.keyAt(s), c[2 * s], c[2 * s + 1] & ~PRESENT);
    this.big.forEach(fn);
  }

  /** Remove everything (keeps the leaves). */
  clear(): void {
    this.cells.fill(0, 0, 2 * this.nLeaves * LEAF_LEN);
    // Only the bitmap words of directory entries that have a leaf can be non-zero: clearing
    // those (not the whole bitmap, which spans up to the largest pfn seen) keeps clear() cheap.
    for (let l = 0; l < this.nLeaves; l++) {
      const d = this.leafKey[l];
      this.live.fill(0, d * LIVE_WORDS, (d + 1) * LIVE_WORDS);
    }
    this.big.clear();
    this.size = 0;
    this.pages = 0;
  }

  /** Leaves in use (each 64 cells, 512 bytes). */
  get leaves(): number {
    return this.nLeaves;
  }

  private newLeaf(d: number): number {
    if ((this.nLeaves + 1) * LEAF_LEN * 2 > this.cells.length) {
      const cells = new Int32Array(new SharedArrayBuffer(this.cells.length * 8));
      cells.set(this.cells);
      this.cells = cells;
      const keys = new Int32Array(this.leafKey.length * 2);
      keys.set(this.leafKey);
      this.leafKey = keys;
    }
    this.leafKey[this.nLeaves] = d;
    return ++this.nLeaves;
  }

  private growDir(d: number): void {
    let n = this.dir.length;
    while (n <= d) n *= 2;
    const dir = new Int32Array(n);
    dir.set(this.dir);
    this.dir = dir;
    const live = new Int32Array(n * LIVE_WORDS);
    live.set(this.live);
    this.live = live;
  }
}

/**
 * `PfnTable`'s part for pfns ≥ 2^31 (any trace format allows pfns up to 2^53; real ones stay far
 * below). Open-addressing hash table from a traced head pfn (exact integer ≥ 0, < 2^53) to a block: an
 * int32 `addr` (our page index, or any handle) and an int32 `info` (order | pool << 4 | seg << 8 | piece << 14
 * for the replayer; bits 0..3 must hold the order). One slot is 16 bytes, interleaved: the key
 * as a float64, then addr and info as two int32 — a probe touches one cache line.
 * Linear probing with backward-shift deletion (no tombstones), load ≤ 1/2, grows by doubling
 * (the only allocation; amortised O(1); it never shrinks). The hash keeps runs of 8 consecutive
 * pfns in 8 consecutive slots and scatters the runs (Fibonacci hashing of pfn >> 3): traces
 * allocate and free neighbouring pfns together, so this keeps the working set in cache.
 * Slots returned by `find`/`insert` are valid until the next insert or remove.
 */
export class PfnHash {
  /** Keys at [2 * slot] (EMPTY = -1). */
  keys: Float64Array;
  /** addr at [4 * slot + 2], info at [4 * slot + 3] (same buffer as keys). */
  vals: Int32Array;
  size = 0;
  /** Sum of 2^order over live entries: pages held. */
  pages = 0;
  private mask: number;
  private shift: number;

  /** capacity: initial slot count, rounded up to a power of two ≥ 16. */
  constructor(capacity = 1 << 16) {
    let cap = 16;
    while (cap < capacity) cap *= 2;
    this.keys = new Float64Array(cap * 2).fill(EMPTY);
    this.vals = new Int32Array(this.keys.buffer);
    this.mask = cap - 1;
    this.shift = 32 - Math.log2(cap) + HASH_RUN;
  }

  /** Number of slots. */
  get capacity(): number {
    return this.keys.length >> 1;
  }

  /** Home slot of a key. */
  home(pfn: number): number {
    const x = pfn | 0;
    const hi = pfn < 4294967296 ? 0 : (pfn / 4294967296) | 0;
    return ((Math.imul((x >>> HASH_RUN) ^ hi, 0x9e3779b1) >>> this.shift) << HASH_RUN) | (x & (HASH_RUN_LEN - 1));
  }

  /** Slot holding pfn, or -1. */
  find(pfn: number): number {
    const keys = this.keys;
    const mask = this.mask;
    let i = this.home(pfn);
    for (;;) {
      const k = keys[i * 2];
      if (k === pfn) return i;
      if (k === EMPTY) return -1;
      i = (i + 1) & mask;
    }
  }

  /** Page handle stored in slot i. */
  addrAt(i: number): number {
    return this.vals[i * 4 + 2];
  }
  /** info word of slot i (order in bits 0..3). */
  infoAt(i: number): number {
    return this.vals[i * 4 + 3];
  }
  /** Key (traced pfn) of slot i. */
  keyAt(i: number): number {
    return this.keys[i * 2];
  }

  /**
   * Insert a key that is not present (the caller checked with `find`) and return its slot.
   * Contract: pfn is not already in the table; info & 15 is the block's order.
   */
  insert(pfn: number, addr: number, info: number): number {
    if ((this.size + 1) * 2 > this.keys.length >> 1) this.grow();
    const keys = this.keys;
    const mask = this.mask;
    let i = this.home(pfn);
    while (keys[i * 2] !== EMPTY) i = (i + 1) & mask;
    keys[i * 2] = pfn;
    this.vals[i * 4 + 2] = addr;
    this.vals[i * 4 + 3] = info;
    this.size++;
    this.pages += 1 << (info & 15);
    return i;
  }

  /** Remove the entry in slot i (backward-shift deletion: no tombstones). */
  removeAt(i: number): void {
    const keys = this.keys;
    const vals = this.vals;
    const mask = this.mask;
    this.pages -= 1 << (vals[i * 4 + 3] & 15);
    this.size--;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const k = keys[j * 2];
      if (k === EMPTY) break;
      const h = this.home(k);
      // Move j back to i unless its home lies cyclically in (i, j].
      if (i <= j ? h <= i || h > j : h <= i && h > j) {
        keys[i * 2] = k;
        vals[i * 4 + 2] = vals[j * 4 + 2];
        vals[i * 4 + 3] = vals[j * 4 + 3];
        i = j;
      }
    }
    keys[i * 2] = EMPTY;
  }

  /** Visit every live entry (not on a hot path). */
  forEach(fn: (pfn: number, addr: number, info: number) => void): void {
    for (let i = 0; i < this.keys.length >> 1; i++)
      if (this.keys[i * 2] !== EMPTY) fn(this.keys[i * 2], this.vals[i * 4 + 2], this.vals[i * 4 + 3]);
  }

  /** Remove everything (keeps the capacity). */
  clear(): void {
    for (let i = 0; i < this.keys.length; i += 2) this.keys[i] = EMPTY;
    this.size = 0;
    this.pages = 0;
  }

  private grow(): void {
    const { keys, vals } = this;
    const cap = keys.length; // slots double
    this.keys = new Float64Array(cap * 2).fill(EMPTY);
    this.vals = new Int32Array(this.keys.buffer);
    this.mask = cap - 1;
    this.shift = 32 - Math.log2(cap) + HASH_RUN;
    this.size = 0;
    this.pages = 0;
    for (let i = 0; i < keys.length >> 1; i++)
      if (keys[i * 2] !== EMPTY) this.insert(keys[i * 2], vals[i * 4 + 2], vals[i * 4 + 3]);
  }
}

/** The sampled free-block histogram: counts[s][order] = free blocks of that order (all pools). */
export interface FreeHistogram {
  /** VM_NFREEORDER: orders 0 .. orders-1. */
  orders: number;
  /** Events between samples at the end of the replay (doubles when the sample buffer fills). */
  every: number;
  /** Event number (events replayed so far) of each sample. */
  events: number[];
  /** Free blocks per order at each sample. */
  counts: number[][];
}

/** Counters of a replay. */
export interface ReplayCounts {
  events: number;
  allocs: number;
  frees: number;
  /** Frees matched to a traced allocation and performed (whole blocks or parts). */
  matchedFrees: number;
  /** Of those, frees of a part of a traced allocation. */
  splitFrees: number;
  /** Frees that no live traced allocation covers (or misaligned / larger than it): ignored. */
  skippedFrees: number;
  /** Allocations of a head pfn that was still live: the old block was freed first. */
  lostFrees: number;
  failedAllocs: number;
  /** Pages we still hold for live traced allocations. */
  heldPages: number;
  /** Live traced blocks (table entries). */
  heldBlocks: number;
}

/** Options of a `TraceReplayer`. */
export interface ReplayerOptions {
  /** Events between histogram samples (default 16384; 0 disables sampling). */
  sampleEvery?: number;
  /** Bound on the number of samples kept (default 512); the interval doubles when reached. */
  maxSamples?: number;
  /** Cells the pfn table reserves up front (default 2^22, address space only; it grows as needed). */
  tableCapacity?: number;
}

/**
 * The replay bookkeeping shared by `TraceReplayer` and the benchmark driver (so both match frees
 * the same way): the pfn table plus the cover filter. An entry's info word holds the order in
 * bits 0..3 (the rest is the caller's; PIECE, bit 14, is set on what remains of a split block).
 */
export class TraceBook {
  readonly table: PfnTable;
  /** Largest order ever added (bounds the cover probes). */
  private maxLive = 0;
  /**
   * The cover filter: for every live block of order ≥ 1, +1 on each 16-page granule it spans
   * (indices hashed by & FILTER_MASK). A free whose granule counts 0 cannot lie inside a
   * multi-page block, so the head probes are skipped — the common case for uncovered frees.
   */
  private readonly filter = new Int32Array(FILTER_MASK + 1);

  /** capacity: cells the pfn table reserves up front (default: `PfnTable`'s). */
  constructor(capacity?: number) {
    this.table = new PfnTable(capacity);
  }

  /** Slot of the live block whose head is traced pfn p, or -1. */
  find(p: number): number {
    return this.table.find(p);
  }

  /** Record a new live block (p must not be live). */
  add(p: number, handle: number, info: number): void {
    this.table.insert(p, handle, info);
    const o = info & 15;
    if (o > 0) {
      this.mark(p, o, 1);
      if (o > this.maxLive) this.maxLive = o;
    }
  }

  /** Forget the block in slot s. */
  remove(s: number): void {
    const o = this.table.infoAt(s) & 15;
    if (o > 0) this.mark(this.table.keyAt(s), o, -1);
    this.table.removeAt(s);
  }

  /**
   * Slot of the live block of order > o that covers the 2^o pages at traced pfn p when p is not
   * itself a live head; -1 when none does, or when p is not aligned to 2^o. Probes the heads at
   * p aligned down to each order o+1 .. largest added, unless the cover filter rules them out.
   */
  cover(p: number, o: number): number {
    if (o >= this.maxLive || this.filter[((p / GRANULE) | 0) & FILTER_MASK] === 0) return -1;
    const t = this.table;
    const small = p < SMALL_PFN;
    const pi = p | 0;
    if (small ? (pi & ((1 << o) - 1)) !== 0 : p % 2 ** o !== 0) return -1;
    for (let k = o + 1; k <= this.maxLive; k++) {
      const h = small ? pi & -(1 << k) : p - (p % 2 ** k);
      if (h === p) continue;
      const c = t.find(h);
      if (c >= 0) {
        const ko = t.infoAt(c) & 15;
        return ko > o && p < h + 2 ** ko ? c : -1;
      }
    }
    return -1;
  }

  /**
   * Take the 2^o pages at traced pfn p out of the block in slot s (head h, order K > o, p inside
   * and aligned): the halves not containing p, at orders K-1 .. o, become blocks of their own
   * (info with PIECE set; handle = the block's handle + (piece − h), or the block's handle itself
   * when `sameHandle`). Returns the handle of the part at p on the same terms.
   */
  splitOut(s: number, p: number, o: number, sameHandle: boolean): number {
    const t = this.table;
    const h = t.keyAt(s);
    const a = t.addrAt(s);
    const info = t.infoAt(s);
    const rest = (info & ~15) | PIECE;
    this.remove(s);
    let cur = h;
    for (let k = (info & 15) - 1; k >= o; k--) {
      const half = cur + 2 ** k;
      let piece: number;
      if (p >= half) {
        piece = cur;
        cur = half;
      } else piece = half;
      this.add(piece, sameHandle ? a : a + (piece - h), rest | k);
    }
    return sameHandle ? a : a + (p - h);
  }

  /** Forget everything. */
  clear(): void {
    this.table.clear();
    this.filter.fill(0);
  }

  /** Add d to the cover filter over the granules of the 2^o-page block at traced pfn h (o ≥ 1). */
  private mark(h: number, o: number, d: number): void {
    const g = (h / GRANULE) | 0;
    const n = o > GRANULE_SHIFT ? 1 << (o - GRANULE_SHIFT) : 1;
    const f = this.filter;
    for (let i = 0; i < n; i++) f[(g + i) & FILTER_MASK] += d;
  }
}

/**
 * Replays events into one VmPhys. Feed it event arrays in trace order with `run`; read the
 * counters with `counts()` and the histogram with `histogram()`. The machine must be started.
 */
export class TraceReplayer {
  readonly vm: VmPhys;
  readonly book: TraceBook;
  /** The book's table (live traced blocks: handle = our page index, info = order|pool<<4|seg<<8). */
  readonly table: PfnTable;
  events = 0;
  allocs = 0;
  frees = 0;
  matchedFrees = 0;
  splitFrees = 0;
  skippedFrees = 0;
  lostFrees = 0;
  failedAllocs = 0;
  private readonly maxOrder: number;
  private readonly nFl: number;
  private readonly ndomains: number;
  private readonly dmaList: number;
  private readonly hasDma32: boolean;
  private readonly hasDma: boolean;
  // Histogram sampling: bounded buffer, decimated when full.
  private sampleEvery: number;
  private readonly maxSamples: number;
  private nextSample: number;
  private nSamples = 0;
  private readonly sampleEvents: Float64Array;
  private readonly sampleCounts: Int32Array;
  private readonly nOrd: number;

  constructor(vm: VmPhys, opts: ReplayerOptions = {}) {
    this.vm = vm;
    this.book = new TraceBook(opts.tableCapacity);
    this.table = this.book.table;
    this.maxOrder = vm.maxOrder;
    this.nOrd = vm.nOrd;
    this.nFl = vm.nFl;
    this.ndomains = vm.ndomains;
    const dmaList = vm.profile.lowmemBoundary > 0 ? FreeList.LOWMEM : FreeList.DMA32;
    this.dmaList = dmaList;
    this.hasDma32 = vm.flindOf(FreeList.DMA32) >= 0;
    this.hasDma = vm.flindOf(dmaList) >= 0;
    this.sampleEvery = opts.sampleEvery ?? 16384;
    this.maxSamples = Math.max(2, opts.maxSamples ?? 512);
    this.nextSample = this.sampleEvery > 0 ? 0 : Number.POSITIVE_INFINITY;
    this.sampleEvents = new Float64Array(this.maxSamples);
    this.sampleCounts = new Int32Array(this.maxSamples * this.nOrd);
  }

  /**
   * Replay events [start, end) of parallel arrays (a `TraceChunk`'s, or any pre-parsed copy).
   * No allocation per event.
   */
  run(op: Uint8Array, pfn: Float64Array, order: Uint8Array, flags: Uint8Array, start: number, end: number): void {
    let i = start;
    while (i < end) {
      // Run up to the next sample point without a per-event sampling test.
      const until = Math.min(end, i + (this.nextSample - this.events));
      for (let j = i; j < until; j++) {
        if (op[j] === TraceOp.ALLOC) this.alloc(pfn[j], order[j], flags[j]);
        else this.free(pfn[j], order[j]);
      }
      this.events += until - i;
      i = until;
      if (this.events === this.nextSample) this.sample();
    }
  }

  /** One traced allocation of 2^o pages at traced pfn p with TraceFlag bits fl. */
  alloc(p: number, o: number, fl: number): void {
    this.allocs++;
    const book = this.book;
    const s = book.find(p);
    if (s >= 0) {
      // The free of this head was lost (or reordered away): release our old block first.
      this.lostFrees++;
      this.freeSlot(s);
    }
    if (o > this.maxOrder) {
      this.failedAllocs++;
      return;
    }
    const pool = (fl & TraceFlag.MOVABLE) !== 0 ? Pool.DEFAULT : Pool.DIRECT;
    let idx = this.allocIn(0, pool, o, fl);
    if (idx < 0) {
      for (let d = 1; d < this.ndomains && idx < 0; d++) idx = this.allocIn(d, pool, o, fl);
      if (idx < 0) {
        this.failedAllocs++;
        return;
      }
    }
    book.add(p, idx, o | (pool << 4) | (this.vm.segOfIdx(idx) << 8));
  }

  /** Page index of a new block in one domain, or -1. */
  private allocIn(d: number, pool: number, o: number, fl: number): number {
    const vm = this.vm;
    if ((fl & (TraceFlag.DMA32 | TraceFlag.DMA)) !== 0) {
      if ((fl & TraceFlag.DMA) !== 0 && this.hasDma) return vm.allocFreelistIdx(d, this.dmaList, pool, o);
      if ((fl & TraceFlag.DMA32) !== 0 && this.hasDma32) return vm.allocFreelistIdx(d, FreeList.DMA32, pool, o);
    }
    let idx = vm.allocFreelistIdx(d, 0, pool, o);
    for (let f = 1; idx < 0 && f < this.nFl; f++) idx = vm.allocFreelistIdx(d, f, pool, o);
    return idx;
  }

  /** One traced free of 2^o pages at traced pfn p. */
  free(p: number, o: number): void {
    this.frees++;
    const book = this.book;
    const s = book.find(p);
    if (s >= 0) {
      const info = this.table.infoAt(s);
      const ko = info & 15;
      if (ko === o) {
        this.matchedFrees++;
        if ((info & PIECE) !== 0) this.splitFrees++;
        this.freeSlot(s);
        return;
      }
      if (ko > o) {
        // p is this block's head, so it is aligned to 2^ko > 2^o.
        this.splitFree(s, p, o);
        return;
      }
    } else {
      const c = book.cover(p, o);
      if (c >= 0) {
        this.splitFree(c, p, o);
        return;
      }
    }
    this.skippedFrees++;
  }

  /** Free our whole block of slot s and forget it. */
  private freeSlot(s: number): void {
    const t = this.table;
    const info = t.infoAt(s);
    const idx = t.addrAt(s);
    this.book.remove(s);
    this.vm.freePagesIdx(idx, (info >> 4) & 15, info & 15, (info >> 8) & SEG_MASK);
  }

  /** Free the order-o part at traced pfn p of the block in slot s; the rest stays live in pieces. */
  private splitFree(s: number, p: number, o: number): void {
    const info = this.table.infoAt(s);
    const idx = this.book.splitOut(s, p, o, false);
    this.matchedFrees++;
    this.splitFrees++;
    this.vm.freePagesIdx(idx, (info >> 4) & 15, o, (info >> 8) & SEG_MASK);
  }

  /** Record free blocks per order now. */
  sample(): void {
    if (this.nSamples === this.maxSamples) {
      // Keep every other sample and double the interval: memory stays bounded.
      const n = this.nOrd;
      let k = 0;
      for (let i = 1; i < this.nSamples; i += 2, k++) {
        this.sampleEvents[k] = this.sampleEvents[i];
        this.sampleCounts.copyWithin(k * n, i * n, i * n + n);
      }
      this.nSamples = k;
      this.sampleEvery *= 2;
    }
    const base = this.nSamples * this.nOrd;
    const row = this.sampleCounts;
    row.fill(0, base, base + this.nOrd);
    const q = this.vm.c.qCount;
    const n = this.nOrd;
    for (let i = 0; i < q.length; i++) row[base + (i % n)] += q[i];
    this.sampleEvents[this.nSamples] = this.events;
    this.nSamples++;
    this.nextSample = this.events + this.sampleEvery;
  }

  /** The histogram so far (takes a final sample if the last event was not sampled). */
  histogram(): FreeHistogram {
    if (this.sampleEvery > 0 && (this.nSamples === 0 || this.sampleEvents[this.nSamples - 1] !== this.events)) {
      const next = this.nextSample;
      this.sample();
      this.nextSample = next;
    }
    const events: number[] = [];
    const counts: number[][] = [];
    for (let s = 0; s < this.nSamples; s++) {
      events.push(this.sampleEvents[s]);
      counts.push(Array.from(this.sampleCounts.subarray(s * this.nOrd, (s + 1) * this.nOrd)));
    }
    return { orders: this.nOrd, every: this.sampleEvery, events, counts };
  }

  /** Counters so far. */
  counts(): ReplayCounts {
    return {
      events: this.events,
      allocs: this.allocs,
      frees: this.frees,
      matchedFrees: this.matchedFrees,
      splitFrees: this.splitFrees,
      skippedFrees: this.skippedFrees,
      lostFrees: this.lostFrees,
      failedAllocs: this.failedAllocs,
      heldPages: this.table.pages,
      heldBlocks: this.table.size,
    };
  }

  /** Free every block still held (pages return to the allocator); the table ends empty. */
  releaseAll(): void {
    const t = this.table;
    t.forEach((_pfn, addr, info) => {
      this.vm.freePagesIdx(addr, (info >> 4) & 15, info & 15, (info >> 8) & SEG_MASK);
    });
    this.book.clear();
  }
}

/** Options of `replayTrace`. */
export interface ReplayOptions extends ReplayerOptions {
  /** The machine: a memory map (default: the 128 GiB Firecracker map of the traced VM). */
  map?: MachineMapLike;
  /** Name of the map for the report (default 'firecracker-128g'). */
  mapName?: string;
  /** Start-up mode (default lazy). */
  mode?: StartupMode;
  /** Stop after this many events. */
  limit?: number;
  /** Parser options (chunk size, xz command). */
  parse?: Omit<ParseTraceOptions, 'limit'>;
  /** Run `verify(vm)` from src/core/verify.ts at the end if that module exists (default true). */
  verify?: boolean;
  /** Called with the machine after the replay (before it is dropped), e.g. for extra checks. */
  onDone?: (vm: VmPhys, replayer: TraceReplayer) => void;
}

/** What `replayTrace` returns (also the `vmphys replay --json` object). */
export interface ReplayReport extends ReplayCounts {
  file: string;
  map: string;
  mode: StartupMode;
  /** Events per second of allocator work: events / replaySeconds. */
  eventsPerSec: number;
  /** Seconds spent replaying parsed chunks (allocator + bookkeeping only). */
  replaySeconds: number;
  /** Seconds of the streaming loop not spent replaying: reading, decompressing, parsing. */
  parseSeconds: number;
  /** Seconds to build and start the machine. */
  setupSeconds: number;
  /** Free pages (all pools) before the first and after the last event. */
  freePagesBefore: number;
  freePagesAfter: number;
  /** freePagesBefore − heldPages === freePagesAfter (page conservation). */
  conserved: boolean;
  /** 'ok', 'skipped (…)' or the error message of verify(vm). */
  verify: string;
  mapping: string;
  histogram: FreeHistogram;
}

/** Free pages of every pool, from the queue counts. */
export function freePages(vm: VmPhys): number {
  const q = vm.c.qCount;
  const n = vm.nOrd;
  let total = 0;
  for (let i = 0; i < q.length; i++) total += q[i] * 2 ** (i % n);
  return total;
}

/**
 * Run `verify(vm, { heldPages })` from src/core/verify.ts when that module exists (heldPages: the
 * pages the caller still holds, for its conservation check). Returns 'ok', a 'skipped' note when
 * the module is absent, or throws what verify throws.
 */
export async function verifyIfAvailable(vm: VmPhys, heldPages?: number): Promise<string> {
  const spec = '../core/verify.js';
  type Verify = (vm: VmPhys, opts?: { heldPages?: number }) => unknown;
  let mod: { verify?: Verify };
  try {
    mod = (await import(spec)) as { verify?: Verify };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') return 'skipped (src/core/verify.ts not present)';
    throw e;
  }
  if (typeof mod.verify !== 'function') return 'skipped (src/core/verify.ts has no verify export)';
  mod.verify(vm, { heldPages });
  return 'ok';
}

/**
 * Stream a trace file (plain, .gz or .xz) through a fresh machine. Memory is bounded by one
 * parsed chunk, the pfn table (live traced blocks) and the bounded histogram — not by the
 * trace's length. Parse errors propagate as TraceParseError.
 */
export async function replayTrace(file: string, opts: ReplayOptions = {}): Promise<ReplayReport> {
  const mode = opts.mode ?? 'lazy';
  const t0 = performance.now();
  const vm = buildMachine(opts.map, mode);
  const setupSeconds = (performance.now() - t0) / 1000;
  const replayer = new TraceReplayer(vm, opts);
  const freePagesBefore = freePages(vm);
  let replayMs = 0;
  const tStream = performance.now();
  for await (const c of parseTrace(file, { ...opts.parse, limit: opts.limit })) {
    const t = performance.now();
    replayer.run(c.op, c.pfn, c.order, c.flags, 0, c.count);
    replayMs += performance.now() - t;
  }
  const streamMs = performance.now() - tStream;
  const counts = replayer.counts();
  const freePagesAfter = freePages(vm);
  let verify = 'skipped (disabled)';
  if (opts.verify !== false) {
    try {
      verify = await verifyIfAvailable(vm, counts.heldPages);
    } catch (e) {
      verify = `FAILED: ${(e as Error).message}`;
    }
  }
  opts.onDone?.(vm, replayer);
  const replaySeconds = replayMs / 1000;
  return {
    file,
    map: opts.mapName ?? 'firecracker-128g',
    mode,
    ...counts,
    eventsPerSec: replaySeconds > 0 ? counts.events / replaySeconds : 0,
    replaySeconds,
    parseSeconds: (streamMs - replayMs) / 1000,
    setupSeconds,
    freePagesBefore,
    freePagesAfter,
    conserved: freePagesBefore - counts.heldPages === freePagesAfter,
    verify,
    mapping: REPLAY_MAPPING,
    histogram: replayer.histogram(),
  };
}
