/**
 * The replay's bookkeeping of live traced blocks, keyed by traced pfn: `PfnTable` (two-level
 * direct map with a live bitmap in front), `PfnHash` (pfns >= 2^31) and `TraceBook` (the table
 * plus the cover filter that finds the block covering a free). Owned by the replay work
 * (issue 6); src/trace/resolve.ts and the benchmarks' peer adapters use it, nobody else edits it.
 */
import { infoOrder, infoPiece } from './info.js';

export { PIECE } from './info.js';

const EMPTY = -1;
/** log2 of the run of consecutive pfns kept in consecutive slots by the hash. */
const HASH_RUN = 3;
const HASH_RUN_LEN = 1 << HASH_RUN;
/** Cover filter granule: 2^4 pages. */
const GRANULE = 16;
const GRANULE_SHIFT = 4;
/** Cover filter size (counters); granules alias every 2^15 × 16 pages (2 GiB). */
const FILTER_MASK = (1 << 15) - 1;
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
   * Contract: pfn is not already in the table; infoOrder(info) is the block's order; 0 ≤ info < 2^30.
   */
  insert(pfn: number, addr: number, info: number): number {
    this.size++;
    this.pages += 1 << infoOrder(info);
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
      this.pages -= 1 << infoOrder(this.big.infoAt(s - BIG));
      this.big.removeAt(s - BIG);
      return;
    }
    this.pages -= 1 << infoOrder(this.cells[2 * s + 1]);
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
   * Contract: pfn is not already in the table; infoOrder(info) is the block's order.
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
    this.pages += 1 << infoOrder(info);
    return i;
  }

  /** Remove the entry in slot i (backward-shift deletion: no tombstones). */
  removeAt(i: number): void {
    const keys = this.keys;
    const vals = this.vals;
    const mask = this.mask;
    this.pages -= 1 << infoOrder(vals[i * 4 + 3]);
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
    const o = infoOrder(info);
    if (o > 0) {
      this.mark(p, o, 1);
      if (o > this.maxLive) this.maxLive = o;
    }
  }

  /** Forget the block in slot s. */
  remove(s: number): void {
    const o = infoOrder(this.table.infoAt(s));
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
        const ko = infoOrder(t.infoAt(c));
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
    this.remove(s);
    let cur = h;
    for (let k = infoOrder(info) - 1; k >= o; k--) {
      const half = cur + 2 ** k;
      let piece: number;
      if (p >= half) {
        piece = cur;
        cur = half;
      } else piece = half;
      this.add(piece, sameHandle ? a : a + (piece - h), infoPiece(info, k));
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
