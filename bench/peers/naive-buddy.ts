/**
 * Peer for the benchmarks: the buddy allocator a JavaScript developer would write first — one
 * object per allocated block kept in a Map, a Set of free block addresses per order, buddies
 * found with `addr ^ (1 << order)`. Correct (splits and coalesces like vm_phys), not tuned.
 * Owned by the benchmark work (bench/); the library does not use it.
 */

/** An allocated block. */
class Block {
  addr: number;
  order: number;
  constructor(addr: number, order: number) {
    this.addr = addr;
    this.order = order;
  }
}

/** A binary buddy allocator over pages [0, totalPages), orders 0 .. maxOrder. */
export class NaiveBuddy {
  readonly maxOrder: number;
  private readonly freeLists: Array<Set<number>> = [];
  private readonly used = new Map<number, Block>();

  constructor(totalPages: number, maxOrder = 12) {
    this.maxOrder = maxOrder;
    for (let o = 0; o <= maxOrder; o++) this.freeLists.push(new Set());
    // Cover [0, totalPages) with maximal aligned blocks.
    let a = 0;
    while (a < totalPages) {
      let o = maxOrder;
      while (o > 0 && (a % (1 << o) !== 0 || a + (1 << o) > totalPages)) o--;
      this.freeLists[o].add(a);
      a += 1 << o;
    }
  }

  /** Page number of a new 2^order block, or -1. */
  alloc(order: number): number {
    for (let k = order; k <= this.maxOrder; k++) {
      const list = this.freeLists[k];
      if (list.size === 0) continue;
      const addr = list.values().next().value as number;
      list.delete(addr);
      for (let j = k - 1; j >= order; j--) this.freeLists[j].add(addr + (1 << j));
      this.used.set(addr, new Block(addr, order));
      return addr;
    }
    return -1;
  }

  /**
   * Free the 2^order block at addr (an allocated block, or an aligned part of one), merging
   * with free buddies. No validation (a double free corrupts it, as in a first draft).
   */
  free(addr: number, order: number): void {
    // The Map only records allocated blocks by their head (a part freed elsewhere in a block
    // leaves the head's record until the head itself is freed).
    this.used.delete(addr);
    while (order < this.maxOrder) {
      const buddy = addr ^ (1 << order);
      const list = this.freeLists[order];
      if (!list.has(buddy)) break;
      list.delete(buddy);
      if (buddy < addr) addr = buddy;
      order++;
    }
    this.freeLists[order].add(addr);
  }
}
