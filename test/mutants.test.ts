/**
 * Tests aimed at bugs the rest of the suite once let through (found by planting them, and by
 * `npm run mutation`): the queue discipline (which end of a queue a block joins, which block an
 * allocation takes) against a small reference model, the initialisation statistics, and a few
 * boundary conditions of the checks.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { STAT } from '../src/core/layout.js';
import { Pool } from '../src/core/params.js';
import { forEachFreeBlock, orderAt, poolAt, poolPages, qHead, qNext } from '../src/core/queues.js';
import { qIndex } from '../src/core/state.js';
import { verify } from '../src/core/verify.js';
import { VmPhys } from '../src/core/vmphys.js';

const MiB = 1024 * 1024;
const PAGE = 4096;

/**
 * (Where a split puts its halves is not observable through alloc_pages: best fit means every
 * queue a half joins is empty at that moment.)
 *
 * The reference: FreeBSD's queue discipline for one queue table (one domain, one free list),
 * pools DEFAULT and DIRECT. Each queue is an array, head first.
 *  - alloc_pages takes the head of the smallest non-empty queue ≥ order in its pool and gives the
 *    upper halves back to the TAILS of that pool's smaller queues; otherwise it steals the head
 *    of the largest non-empty queue, order first, then pool index (from vm_default_freepool).
 *  - free_pages merges with free buddies of any pool, then joins the TAIL of its pool's queue.
 *  - unfree_page takes the page out of its block and gives the halves to the HEADS of the
 *    block's pool's queues.
 */
class RefQueues {
  readonly q: number[][][]; // [pool][order] -> page indices, head first
  readonly nPool: number;
  readonly nOrd: number;
  readonly dfp: number;
  constructor(nPool: number, nOrd: number, dfp: number) {
    this.nPool = nPool;
    this.nOrd = nOrd;
    this.dfp = dfp;
    this.q = Array.from({ length: nPool }, () => Array.from({ length: nOrd }, () => []));
  }
  alloc(pool: number, order: number): number {
    for (let o = order; o < this.nOrd; o++) {
      const m = this.q[pool][o].shift();
      if (m !== undefined) return this.split(m, o, order, pool);
    }
    for (let o = this.nOrd - 1; o >= order; o--)
      for (let p = this.dfp; p < this.nPool; p++) {
        const m = this.q[p][o].shift();
        if (m !== undefined) return this.split(m, o, order, pool);
      }
    return -1;
  }
  private split(m: number, o: number, order: number, pool: number): number {
    while (o > order) {
      o--;
      this.q[pool][o].push(m + 2 ** o);
    }
    return m;
  }
  free(idx: number, pool: number, order: number): void {
    while (order < this.nOrd - 1) {
      const buddy = idx ^ (2 ** order);
      let found = false;
      for (let p = 0; p < this.nPool && !found; p++) {
        const i = this.q[p][order].indexOf(buddy);
        if (i >= 0) {
          this.q[p][order].splice(i, 1);
          found = true;
        }
      }
      if (!found) break;
      idx = Math.min(idx, buddy);
      order++;
    }
    this.q[pool][order].push(idx);
  }
  unfree(m: number): boolean {
    for (let p = 0; p < this.nPool; p++)
      for (let o = 0; o < this.nOrd; o++) {
        const i = this.q[p][o].findIndex((h) => h <= m && m < h + 2 ** o);
        if (i < 0) continue;
        let set = this.q[p][o].splice(i, 1)[0];
        while (o > 0) {
          o--;
          const half = set + 2 ** o;
          let tmp: number;
          if (m < half) tmp = half;
          else {
            tmp = set;
            set = half;
          }
          this.q[p][o].unshift(tmp);
        }
        return true;
      }
    return false;
  }
}

/** The allocator's queues of [domain 0][flind][pool][order], head first. */
function realQueues(vm: VmPhys, flind: number): number[][][] {
  const s = vm.state;
  return Array.from({ length: vm.nPool }, (_, p) =>
    Array.from({ length: vm.nOrd }, (_, o) => {
      const q = qIndex(s, 0, flind, p, o);
      const out: number[] = [];
      for (let m = qHead(s, q); m >= 0 && out.length <= vm.totalPages; m = qNext(s, q, m)) out.push(m);
      return out;
    }),
  );
}

type Op =
  | { t: 'alloc'; pool: number; order: number }
  | { t: 'free'; k: number; pool: number; halves: boolean }
  | { t: 'unfree'; f: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({ t: fc.constant('alloc' as const), pool: fc.constantFrom(1, 2), order: fc.nat(5) }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('free' as const),
      k: fc.nat(),
      pool: fc.constantFrom(1, 2),
      halves: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('unfree' as const), f: fc.double({ min: 0, max: 0.999, noNaN: true }) }),
  },
);

describe('queue discipline against a reference model', () => {
  test('alloc, free and unfree put blocks at the same ends of the same queues as FreeBSD', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 120 }), (ops) => {
        // One segment, one free list, two max blocks, page index = pfn - 4096 (max-block aligned).
        const vm = new VmPhys({ shared: false });
        vm.addSeg(16 * MiB, 48 * MiB);
        vm.init();
        vm.startup('eager');
        const flind = vm.flindOf(0);
        const ref = new RefQueues(vm.nPool, vm.nOrd, vm.defaultFreePool);
        ref.q.splice(0, ref.q.length, ...realQueues(vm, flind));
        const live: Array<[number, number]> = [];
        // Fragment first: every other page of two order-4 runs freed (their buddies held), so
        // the small queues hold several blocks and the end a block joins is observable.
        const prefix: Op[] = [];
        for (let i = 0; i < 32; i++) prefix.push({ t: 'alloc', pool: 1 + (i >> 4), order: i % 3 });
        for (let i = 0; i < 16; i++) prefix.push({ t: 'free', k: i, pool: 1 + (i & 1), halves: false });
        for (const op of [...prefix, ...ops]) {
          if (op.t === 'alloc') {
            const pa = vm.allocPages(0, op.pool, op.order);
            const idx = ref.alloc(op.pool, op.order);
            assert.equal(pa === null ? -1 : vm.paddrToPage(pa), idx, 'alloc_pages takes the same block');
            if (idx >= 0) live.push([idx, op.order]);
          } else if (op.t === 'free') {
            if (live.length === 0) continue;
            const [idx, order] = live.splice(op.k % live.length, 1)[0];
            if (op.halves && order > 0) {
              const h = 2 ** (order - 1);
              vm.freePages(vm.paOf(idx + h), op.pool, order - 1);
              ref.free(idx + h, op.pool, order - 1);
              vm.freePages(vm.paOf(idx), op.pool, order - 1);
              ref.free(idx, op.pool, order - 1);
            } else {
              vm.freePages(vm.paOf(idx), op.pool, order);
              ref.free(idx, op.pool, order);
            }
          } else {
            const m = Math.floor(op.f * vm.totalPages);
            const r = vm.unfreePage(vm.paOf(m));
            assert.equal(r, ref.unfree(m), 'unfree_page finds the page free or not');
            if (r) live.push([m, 0]);
          }
          assert.deepEqual(realQueues(vm, flind), ref.q, `queues after ${JSON.stringify(op)}`);
        }
        verify(vm, { deep: true, held: live.map(([i, o]) => [vm.paOf(i), 2 ** o] as const) });
      }),
      { numRuns: 60 },
    );
  });

  test('a freed page joins the tail of its queue: an allocation takes the older block first', () => {
    const vm = new VmPhys({ shared: false });
    vm.addSeg(16 * MiB, 48 * MiB);
    vm.init();
    vm.startup('eager');
    const a = vm.allocPages(0, Pool.DEFAULT, 0) as number; // splits max block 0: halves at tails
    const b = vm.allocPages(0, Pool.DEFAULT, 0) as number; // the order-0 half
    assert.equal(b, a + PAGE);
    vm.freePages(a, Pool.DEFAULT, 0); // merges with nothing (b is held): tail of order 0
    const c = vm.allocPages(0, Pool.DEFAULT, 1) as number; // order-1 queue head: a + 2 pages
    assert.equal(c, a + 2 * PAGE);
    const d = vm.allocPages(0, Pool.DEFAULT, 0) as number; // the freed page is the only order-0 block
    assert.equal(d, a);
  });
});

describe('initialisation statistics', () => {
  test('an eager boot initialises every page exactly once', () => {
    const vm = new VmPhys({ shared: false });
    vm.addSeg(0x1000, 0x9f000);
    vm.addSeg(0x100000, 24 * MiB);
    vm.init();
    vm.startup('eager');
    assert.equal(vm.state.c.stats[STAT.PAGES_INITIALIZED], vm.totalPages);
    assert.equal(vm.state.c.stats[STAT.META_BYTES_TOUCHED], vm.totalPages);
  });

  test('taking an implicit lazy chunk initialises exactly its pages and materialises one chunk', () => {
    const vm = new VmPhys({ shared: false });
    vm.addSeg(0x1000, 0x9f000);
    vm.addSeg(0x100000, 96 * MiB);
    vm.init();
    vm.startup('lazy');
    const st = vm.state.c.stats;
    const p0 = st[STAT.PAGES_INITIALIZED];
    const c0 = st[STAT.CHUNKS_MATERIALIZED];
    const pa = vm.allocPages(0, Pool.DEFAULT, vm.maxOrder) as number;
    assert.ok(pa !== null);
    assert.equal(st[STAT.CHUNKS_MATERIALIZED] - c0, 1, 'one implicit chunk materialised');
    assert.equal(st[STAT.PAGES_INITIALIZED] - p0, vm.chunkPages, 'its head and its other pages, once each');
    assert.equal(st[STAT.ON_DEMAND_INITS], 1);
    assert.equal(st[STAT.ON_DEMAND_PAGES], vm.chunkPages - 1);
    assert.equal(st[STAT.MAX_INIT_PAGES], vm.chunkPages - 1);
    verify(vm, { deep: true, heldPages: vm.chunkPages });
  });

  test('a full drain initialises every lazy page and counts every block and page it moved', () => {
    const vm = new VmPhys({ shared: false });
    vm.addSeg(0x1000, 0x9f000);
    vm.addSeg(0x100000, 40 * MiB);
    vm.init();
    vm.startup('lazy');
    const lazy = vm.lazyPages();
    vm.drain();
    const st = vm.state.c.stats;
    assert.equal(st[STAT.DRAIN_PAGES], lazy, 'every lazy page was drained once');
    assert.ok(st[STAT.DRAIN_BLOCKS] > 0);
    assert.equal(vm.lazyPages(), 0);
    verify(vm, { deep: true, heldPages: 0 });
  });
});

describe('walking free blocks', () => {
  test('forEachFreeBlock visits exactly the blocks of one queue table, with their orders', () => {
    const vm = new VmPhys({ shared: false });
    vm.addSeg(16 * MiB, 48 * MiB);
    vm.init();
    vm.startup('eager');
    // A DIRECT order-0 block beside DEFAULT blocks: the table after DEFAULT's must not leak in.
    const a = vm.allocPages(0, Pool.DEFAULT, 1) as number;
    vm.freePages(a + PAGE, Pool.DIRECT, 0);
    const s = vm.state;
    const flind = vm.flindOf(0);
    for (const pool of [Pool.DEFAULT, Pool.DIRECT]) {
      let pages = 0;
      forEachFreeBlock(s, 0, flind, pool, (idx, order) => {
        assert.equal(orderAt(s, idx), order, 'the order reported is the block order');
        assert.equal(poolAt(s, idx), pool, 'only blocks of the pool asked for');
        pages += 2 ** order;
      });
      assert.equal(pages, poolPages(s, 0, flind, pool));
    }
    assert.equal(poolPages(s, 0, flind, Pool.DIRECT), 1);
  });
});
