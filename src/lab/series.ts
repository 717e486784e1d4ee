/**
 * FragSeries: fragmentation metrics sampled over a replay into growable typed-array columns.
 * A sample reads only the per-order free-block counts (O(domains·lists·pools·orders), no queue
 * walk, nothing allocated once the columns have room), so sampling every few thousand events
 * costs little beside the replay itself. Owned by the fragmentation lab; reads the allocator
 * only through ./source.ts.
 */
import type { VmPhys } from '../core/vmphys.js';
import { type FragFilter, orderCounts } from './fragmentation.js';
import { type FragStats, fragmentationIndex, fragStats, unusableIndex } from './metrics.js';
import { addCounts, superpageOrder } from './source.js';

/** Default events between samples. */
export const DEFAULT_SERIES_EVERY = 4096;

/** Options of a FragSeries. */
export interface FragSeriesOptions {
  /** Events between samples (default DEFAULT_SERIES_EVERY; a positive integer). */
  every?: number;
  /** Order whose U, S and FI get their own columns (default: the superpage order, 9). */
  order?: number;
  /** Queues counted (default: all). */
  filter?: FragFilter;
  /** Initial row capacity (default 256; doubles as needed). */
  capacity?: number;
}

/** The columns of a series, trimmed to its length (views, not copies). */
export interface FragColumns {
  /** Event index of each sample (events replayed before it). */
  event: Float64Array;
  /** F: free pages. */
  free: Float64Array;
  /** B: free blocks. */
  blocks: Float64Array;
  /** U at the series order. */
  unusable: Float64Array;
  /** S at the series order (at order 9: free superpage-sized blocks). */
  suitable: Float64Array;
  /** FI at the series order. */
  fragIndex: Float64Array;
  /** n_j per sample, row-major: counts[i·orders + j]. */
  counts: Float64Array;
}

/** Anything that replays events into a VmPhys and counts them (TraceReplayer does). */
export interface ReplayerLike {
  readonly vm: VmPhys;
  readonly events: number;
  run(op: Uint8Array, pfn: Float64Array, order: Uint8Array, flags: Uint8Array, start: number, end: number): void;
}

/**
 * A series of fragmentation samples of one allocator. Call `sample(event)` yourself, or let
 * `replay` drive a replayer and sample every `every` events. The columns hold the per-order
 * counts too, so any order's metrics can be recomputed for any sample (`stats(i)`).
 */
export class FragSeries {
  readonly vm: VmPhys;
  readonly every: number;
  /** The order of the U / S / FI columns. */
  readonly order: number;
  /** VM_NFREEORDER. */
  readonly orders: number;
  /** Samples recorded. */
  length = 0;
  /** Event index at which `replay` takes the next sample. */
  nextSample: number;
  private cap: number;
  private ev: Float64Array;
  private fr: Float64Array;
  private bl: Float64Array;
  private un: Float64Array;
  private su: Float64Array;
  private fi: Float64Array;
  private cn: Float64Array;
  /** Selected queues as (domain, flind, pool) triples. */
  private readonly sel: Int32Array;
  private readonly scratch: Float64Array;

  constructor(vm: VmPhys, opts: FragSeriesOptions = {}) {
    const every = opts.every ?? DEFAULT_SERIES_EVERY;
    if (!Number.isInteger(every) || every < 1)
      throw new RangeError(`series interval ${every} is not a positive integer`);
    this.vm = vm;
    this.every = every;
    this.orders = vm.nOrd;
    this.order = opts.order ?? Math.min(superpageOrder(vm.profile), vm.nOrd - 1);
    if (!Number.isInteger(this.order) || this.order < 0 || this.order >= vm.nOrd)
      throw new RangeError(`series order ${this.order} is outside 0..${vm.nOrd - 1}`);
    const filter = opts.filter ?? {};
    orderCounts(vm, filter); // validates the filter (typed errors)
    const sel: number[] = [];
    for (let d = 0; d < vm.ndomains; d++)
      for (let f = 0; f < vm.nfreelists; f++)
        for (let p = 0; p < vm.nPool; p++)
          if (
            (filter.domain === undefined || filter.domain === d) &&
            (filter.flind === undefined || filter.flind === f) &&
            (filter.pool === undefined || filter.pool === p)
          )
            sel.push(d, f, p);
    this.sel = Int32Array.from(sel);
    this.scratch = new Float64Array(vm.nOrd);
    this.cap = Math.max(1, opts.capacity ?? 256);
    this.ev = new Float64Array(this.cap);
    this.fr = new Float64Array(this.cap);
    this.bl = new Float64Array(this.cap);
    this.un = new Float64Array(this.cap);
    this.su = new Float64Array(this.cap);
    this.fi = new Float64Array(this.cap);
    this.cn = new Float64Array(this.cap * this.orders);
    this.nextSample = 0;
  }

  private grow(): void {
    const cap = this.cap * 2;
    const g = (a: Float64Array, n: number): Float64Array => {
      const b = new Float64Array(n);
      b.set(a);
      return b;
    };
    this.ev = g(this.ev, cap);
    this.fr = g(this.fr, cap);
    this.bl = g(this.bl, cap);
    this.un = g(this.un, cap);
    this.su = g(this.su, cap);
    this.fi = g(this.fi, cap);
    this.cn = g(this.cn, cap * this.orders);
    this.cap = cap;
  }

  /** Record the metrics now, labelled with event index `event`. */
  sample(event: number): void {
    if (this.length === this.cap) this.grow();
    const c = this.scratch;
    c.fill(0);
    const sel = this.sel;
    for (let i = 0; i < sel.length; i += 3) addCounts(this.vm, c, sel[i], sel[i + 1], sel[i + 2]);
    const n = this.orders;
    const j = this.order;
    let free = 0;
    let blocks = 0;
    let suitable = 0;
    const row = this.length * n;
    for (let k = n - 1; k >= 0; k--) {
      const x = c[k];
      free += x * 2 ** k;
      blocks += x;
      if (k >= j) suitable += x * 2 ** (k - j);
      this.cn[row + k] = x;
    }
    const i = this.length;
    this.ev[i] = event;
    this.fr[i] = free;
    this.bl[i] = blocks;
    this.su[i] = suitable;
    this.un[i] = unusableIndex(free, suitable, j);
    this.fi[i] = fragmentationIndex(free, blocks, suitable, j);
    this.length = i + 1;
  }

  /**
   * Replay events [start, end) through `replayer`, sampling whenever its event count reaches
   * `nextSample` (0, every, 2·every, … counted from the replayer's first event). Call again with
   * the next events (e.g. each parsed chunk); `finish` adds a last sample.
   */
  replay(
    replayer: ReplayerLike,
    op: Uint8Array,
    pfn: Float64Array,
    order: Uint8Array,
    flags: Uint8Array,
    start: number,
    end: number,
  ): void {
    let i = start;
    while (true) {
      if (replayer.events >= this.nextSample) {
        this.sample(replayer.events);
        this.nextSample = replayer.events + this.every;
      }
      if (i >= end) break;
      const stop = Math.min(end, i + (this.nextSample - replayer.events));
      replayer.run(op, pfn, order, flags, i, stop);
      i = stop;
    }
  }

  /** Take a final sample at `event` unless the last sample already has that index. */
  finish(event: number): void {
    if (this.length === 0 || this.ev[this.length - 1] !== event) this.sample(event);
  }

  /** The columns so far (views over the recorded rows). */
  columns(): FragColumns {
    const n = this.length;
    return {
      event: this.ev.subarray(0, n),
      free: this.fr.subarray(0, n),
      blocks: this.bl.subarray(0, n),
      unusable: this.un.subarray(0, n),
      suitable: this.su.subarray(0, n),
      fragIndex: this.fi.subarray(0, n),
      counts: this.cn.subarray(0, n * this.orders),
    };
  }

  /** Every metric of sample i, recomputed from its per-order counts. */
  stats(i: number): FragStats {
    if (!Number.isInteger(i) || i < 0 || i >= this.length)
      throw new RangeError(`sample ${i} is outside 0..${this.length - 1}`);
    return fragStats(this.cn.subarray(i * this.orders, (i + 1) * this.orders));
  }

  /** Peak, mean and minimum of the order columns (NaN when empty). */
  summary(): { samples: number; peakUnusable: number; meanUnusable: number; minSuitable: number; minFree: number } {
    const n = this.length;
    let peak = Number.NaN;
    let sum = 0;
    let minS = Number.NaN;
    let minF = Number.NaN;
    for (let i = 0; i < n; i++) {
      const u = this.un[i];
      if (!(u <= peak)) peak = u;
      sum += u;
      if (!(this.su[i] >= minS)) minS = this.su[i];
      if (!(this.fr[i] >= minF)) minF = this.fr[i];
    }
    return {
      samples: n,
      peakUnusable: peak,
      meanUnusable: n > 0 ? sum / n : Number.NaN,
      minSuitable: minS,
      minFree: minF,
    };
  }
}
