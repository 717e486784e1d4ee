/**
 * Resolving a parsed Linux trace into replay instructions: which traced allocation each free
 * refers to. Owned by the replay work (issue 6); `TraceReplayer` (src/trace/replay.ts) and the
 * benchmarks use it, nobody else edits it.
 *
 * Why a separate stage: matching a free to the live traced allocation that covers it is a
 * property of the trace alone (Linux's pfns), not of our allocator. Doing it here, once per
 * parsed chunk, lets the replay time allocator work only, as the replay contract asks
 * (`eventsPerSec` counts the replay of parsed chunks; this stage is timed with parsing), and lets
 * a benchmark resolve a trace once and replay it on many machines.
 *
 * What it produces: every traced allocation gets a *slot*, a small integer recycled LIFO when
 * the block dies, so slots stay dense (the shared trace needs 166 k of them for 1.78 M events)
 * and the replay keeps our page index per slot in a plain typed array instead of a pfn table.
 * Per event: a kind and a slot:
 *  - `R_ALLOC`   allocation into slot (fresh); `| R_LOST` when the traced head was still live
 *                (the trace lost its free): the replay frees our old block in that same slot
 *                first.
 *  - `R_TOOBIG`  allocation larger than the platform's largest order (failed); `| R_LOST` as
 *                above, slot = the old block's slot (or -1).
 *  - `R_FREE`    free of the whole block in slot.
 *  - `R_SPLIT`   free of the order-o part at offset `off` of the block in slot (Linux
 *                split_page): aux gets `off`, then one new slot per remaining buddy piece, at
 *                orders K-1 .. o (K: the block's order), in the order `splitPieces` visits them.
 *  - `R_SKIP`    a free that no live traced allocation covers (or misaligned / too large).
 * The rules are those documented in src/trace/replay.ts (REPLAY_MAPPING); the matching is the
 * `TraceBook` of that file (pfn direct map + cover filter), with slots as handles.
 *
 * Memory is bounded by the live traced blocks (table + slot stack), never by the trace length.
 */
import { TraceBook } from './book.js';
import { infoOrder, PIECE } from './info.js';

/** Kind codes of resolved events (low 3 bits), see the file comment. */
export const R_SKIP = 0;
export const R_ALLOC = 1;
export const R_FREE = 2;
export const R_SPLIT = 3;
export const R_TOOBIG = 4;
/** Flag on R_ALLOC / R_TOOBIG: free the old block in `slot` first (a lost free). */
export const R_LOST = 8;

/** A batch of resolved events (reused across batches; arrays grow, never shrink). */
export interface ResolvedEvents {
  /** Events in the batch (entries [0, count) are valid). */
  count: number;
  kind: Uint8Array;
  slot: Int32Array;
  order: Uint8Array;
  flags: Uint8Array;
  /** R_SPLIT operands, consumed in event order. */
  aux: Int32Array;
  auxLen: number;
  /** Slots in use at most so far (the replay sizes its slot arrays from it). */
  slots: number;
}

/** An empty batch with room for `capacity` events. */
export function newResolvedEvents(capacity = 0): ResolvedEvents {
  return {
    count: 0,
    kind: new Uint8Array(capacity),
    slot: new Int32Array(capacity),
    order: new Uint8Array(capacity),
    flags: new Uint8Array(capacity),
    aux: new Int32Array(64),
    auxLen: 0,
    slots: 0,
  };
}

/**
 * For a block of order K split to free the order-o part at offset `off` (aligned to 2^o, inside
 * the block): calls `piece(offset, order)` for each remaining buddy piece, orders K-1 down to o.
 * The resolver and the replay both walk pieces with this, so their slot assignments agree.
 */
export function splitPieces(K: number, off: number, o: number, piece: (offset: number, order: number) => void): void {
  let cur = 0;
  for (let k = K - 1; k >= o; k--) {
    const half = cur + 2 ** k;
    if (off >= half) {
      piece(cur, k);
      cur = half;
    } else piece(half, k);
  }
}

/** Matches frees to allocations, chunk by chunk, for one replay (state persists across chunks). */
export class TraceResolver {
  /** Live traced blocks: handle = slot, info = order | PIECE. */
  readonly book: TraceBook;
  private readonly maxOrder: number;
  private free: Int32Array = new Int32Array(1024);
  private nFree = 0;
  /** Slots ever handed out (slot numbers are < this). */
  private high = 0;
  private out: ResolvedEvents = newResolvedEvents();

  /** maxOrder: the platform's largest allocatable order (VM_NFREEORDER - 1). */
  constructor(maxOrder: number, tableCapacity?: number) {
    this.maxOrder = maxOrder;
    this.book = new TraceBook(tableCapacity);
  }

  /** Slots handed out so far (an upper bound on slot numbers). */
  get slots(): number {
    return this.high;
  }

  /**
   * Resolve events [start, end) of parallel parsed arrays (TraceOp codes in `op`) into `out`
   * (count = end - start; out's arrays grow as needed). Returns out.
   */
  resolve(
    op: Uint8Array,
    pfn: Float64Array,
    order: Uint8Array,
    flags: Uint8Array,
    start: number,
    end: number,
    out: ResolvedEvents,
  ): ResolvedEvents {
    const n = end - start;
    if (out.kind.length < n) {
      out.kind = new Uint8Array(n);
      out.slot = new Int32Array(n);
      out.order = new Uint8Array(n);
      out.flags = new Uint8Array(n);
    }
    out.order.set(order.subarray(start, end));
    out.flags.set(flags.subarray(start, end));
    out.count = n;
    out.auxLen = 0;
    this.out = out;
    const kind = out.kind;
    const slot = out.slot;
    const book = this.book;
    const t = book.table;
    for (let j = 0; j < n; j++) {
      const p = pfn[start + j];
      const o = order[start + j];
      const s = book.find(p);
      if (op[start + j] === 0) {
        let k = R_ALLOC;
        let sl = -1;
        if (s >= 0) {
          k |= R_LOST;
          sl = t.addrAt(s);
          book.remove(s);
        }
        if (o > this.maxOrder) {
          if (sl >= 0) this.release(sl);
          kind[j] = (k & R_LOST) | R_TOOBIG;
          slot[j] = sl;
          continue;
        }
        if (sl < 0) sl = this.take();
        book.add(p, sl, o);
        kind[j] = k;
        slot[j] = sl;
      } else if (s >= 0) {
        const ko = infoOrder(t.infoAt(s));
        if (ko === o) {
          const sl = t.addrAt(s);
          book.remove(s);
          this.release(sl);
          kind[j] = R_FREE;
          slot[j] = sl;
        } else if (ko > o) this.split(s, p, o, j);
        else kind[j] = R_SKIP;
      } else {
        const c = book.cover(p, o);
        if (c >= 0) this.split(c, p, o, j);
        else kind[j] = R_SKIP;
      }
    }
    out.slots = this.high;
    return out;
  }

  /** Forget every live block and slot (after the replay released its blocks). */
  clear(): void {
    this.book.clear();
    this.nFree = 0;
    this.high = 0;
  }

  /** The free of the order-o part at traced pfn p of the block in table slot s (event j). */
  private split(s: number, p: number, o: number, j: number): void {
    const t = this.book.table;
    const h = t.keyAt(s);
    const sl = t.addrAt(s);
    const K = infoOrder(t.infoAt(s));
    this.book.remove(s);
    const off = p - h;
    this.push(off);
    splitPieces(K, off, o, (pOff, k) => {
      const ps = this.take();
      this.book.add(h + pOff, ps, PIECE | k);
      this.push(ps);
    });
    // Released after the pieces took theirs, so no piece reuses the split block's slot.
    this.release(sl);
    this.out.kind[j] = R_SPLIT;
    this.out.slot[j] = sl;
  }

  private take(): number {
    return this.nFree > 0 ? this.free[--this.nFree] : this.high++;
  }

  private release(sl: number): void {
    if (this.nFree === this.free.length) {
      const f = new Int32Array(this.free.length * 2);
      f.set(this.free);
      this.free = f;
    }
    this.free[this.nFree++] = sl;
  }

  private push(v: number): void {
    const out = this.out;
    if (out.auxLen === out.aux.length) {
      const a = new Int32Array(out.aux.length * 2);
      a.set(out.aux);
      out.aux = a;
    }
    out.aux[out.auxLen++] = v;
  }
}
