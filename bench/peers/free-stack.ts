/**
 * Peer for the benchmarks: the lower bound of a page allocator — segregated LIFO stacks of block
 * numbers, one per order, refilled from a bump pointer. Order 0 is exactly "a free stack of page
 * numbers". It never splits or coalesces (a block freed at order k only serves order k again),
 * so it is not a real allocator, just the floor any allocator's hot path can be compared with.
 * Owned by the benchmark work (bench/); the library does not use it.
 */

/** Segregated free stacks over `totalPages` pages; blocks are naturally aligned page numbers. */
export class FreeStack {
  readonly totalPages: number;
  private top = 0;
  private readonly stacks: Int32Array[] = [];
  private readonly sp: Int32Array;

  /** A fresh allocator over pages [0, totalPages); orders 0 .. maxOrder. */
  constructor(totalPages: number, maxOrder = 12) {
    this.totalPages = totalPages;
    for (let o = 0; o <= maxOrder; o++) this.stacks.push(new Int32Array(o === 0 ? 4096 : 64));
    this.sp = new Int32Array(maxOrder + 1);
  }

  /** Page number of a free 2^order block, or -1 when the bump pointer reaches the end. */
  alloc(order: number): number {
    const n = this.sp[order];
    if (n > 0) {
      this.sp[order] = n - 1;
      return this.stacks[order][n - 1];
    }
    const size = 1 << order;
    const at = Math.ceil(this.top / size) * size;
    if (at + size > this.totalPages) return -1;
    this.top = at + size;
    return at;
  }

  /** Give a 2^order block back (pushed on its order's stack; no checks). */
  free(page: number, order: number): void {
    let st = this.stacks[order];
    const n = this.sp[order];
    if (n === st.length) {
      const bigger = new Int32Array(st.length * 2);
      bigger.set(st);
      this.stacks[order] = st = bigger;
    }
    st[n] = page;
    this.sp[order] = n + 1;
  }
}
