/**
 * A minimal FIFO buddy allocator: the data structure of vm_phys with everything else taken
 * away — one flat range of pages (no segments, free lists, domains or lazy runs), two pools,
 * tail insertion and head removal as vm_phys does, a state byte per page and two int32 links.
 * It is not exact (no segment edges, its own pool-steal order) and is not a peer users would
 * pick; the replay benchmark runs the resolved trace through it as a reference for what this
 * queue discipline costs in JavaScript on this machine. Owned by the benchmark work.
 */

const NONE = -1;

export class FifoBuddy {
  readonly pages: number;
  readonly nOrd: number;
  private readonly maxOrder: number;
  /** 0x80 | pool << 4 | order (order nOrd: not a free head); 0 = never a free head. */
  private readonly meta: Uint8Array;
  /** next + 1 at [2i], prev + 1 at [2i + 1] (0: none). */
  private readonly link: Int32Array;
  private readonly head: Int32Array;
  private readonly tail: Int32Array;

  /** pages: a multiple of 2^(nOrd - 1); all of it starts free in pool 0, at the largest order. */
  constructor(pages: number, nOrd = 13) {
    this.nOrd = nOrd;
    this.maxOrder = nOrd - 1;
    this.pages = pages - (pages % (1 << this.maxOrder));
    // SharedArrayBuffers, as vmphys uses: zero pages cost nothing until written.
    this.meta = new Uint8Array(new SharedArrayBuffer(this.pages));
    this.link = new Int32Array(new SharedArrayBuffer(this.pages * 8));
    this.head = new Int32Array(2 * nOrd).fill(NONE);
    this.tail = new Int32Array(2 * nOrd).fill(NONE);
    for (let i = 0; i < this.pages; i += 1 << this.maxOrder) this.add(this.maxOrder, i, this.maxOrder, 0);
  }

  /** A block of 2^order pages from `pool` (0 or 1), else stolen from the other pool; -1 when none. */
  alloc(pool: number, order: number): number {
    const n = this.nOrd;
    for (let k = order; k < n; k++) {
      let p = pool;
      let m = this.head[p * n + k];
      if (m < 0) {
        p = 1 - pool;
        m = this.head[p * n + k];
        if (m < 0) continue;
      }
      this.rem(p * n + k, m, p);
      while (k > order) {
        k--;
        this.add(pool * n + k, m + (1 << k), k, pool);
      }
      return m;
    }
    return NONE;
  }

  /** Free the block at page i of 2^order pages into `pool`, merging with free buddies. */
  free(i: number, pool: number, order: number): void {
    const n = this.nOrd;
    const meta = this.meta;
    while (order < this.maxOrder) {
      const b = i ^ (1 << order);
      const bm = meta[b];
      if ((bm & 15) !== order || bm === 0) break;
      const bp = (bm >> 4) & 7;
      this.rem(bp * n + order, b, bp);
      order++;
      if (b < i) i = b;
    }
    this.add(pool * n + order, i, order, pool);
  }

  private add(q: number, i: number, order: number, pool: number): void {
    this.meta[i] = 0x80 | (pool << 4) | order;
    const t = this.tail[q];
    if (t < 0) this.head[q] = i;
    else {
      this.link[(t << 1) >>> 0] = i + 1;
      this.link[((i << 1) | 1) >>> 0] = t + 1;
    }
    this.tail[q] = i;
  }

  private rem(q: number, i: number, pool: number): void {
    const link = this.link;
    const isHead = this.head[q] === i;
    const isTail = this.tail[q] === i;
    const nx = isTail ? NONE : link[(i << 1) >>> 0] - 1;
    const pv = isHead ? NONE : link[((i << 1) | 1) >>> 0] - 1;
    if (isHead) this.head[q] = nx;
    else if (!isTail) link[(pv << 1) >>> 0] = nx + 1;
    if (isTail) this.tail[q] = pv;
    else if (!isHead) link[((nx << 1) | 1) >>> 0] = pv + 1;
    this.meta[i] = 0x80 | (pool << 4) | this.nOrd;
  }
}
