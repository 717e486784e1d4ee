/**
 * verify() as an oracle: each invariant of spec §5.2 that it checks is shown to fire, by number,
 * on a state corrupted in exactly that way (written through the core modules' internals, here
 * only), without crashing and without looping on a corrupt queue. A clean machine passes each
 * time before it is corrupted, so every failure is the corruption's. The last test reads
 * verify.ts and checks that every invariant number it can report has a test here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { InvariantError } from '../src/core/errors.js';
import { CTL } from '../src/core/layout.js';
import { lazyPut, lazyTake } from '../src/core/lazy.js';
import { finishInit, M_INIT, metaByte } from '../src/core/pages.js';
import { Pool } from '../src/core/params.js';
import { nextOf, nQueues, qAddTail, qCount, qHead, qRem, qTail } from '../src/core/queues.js';
import { segFlind, segOfIdx } from '../src/core/segments.js';
import { qIndex } from '../src/core/state.js';
import { type VerifyOptions, verify } from '../src/core/verify.js';
import { type StartupMode, VmPhys } from '../src/core/vmphys.js';

const MiB = 1024 * 1024;
const PAGE = 4096;

/** A Firecracker-shaped amd64 machine: segments [4 KiB, 636 KiB), [1 MiB, 16 MiB), [16 MiB, ram). */
function machine(mode: StartupMode, ram = 64 * MiB): VmPhys {
  const vm = new VmPhys({ shared: false });
  vm.addSeg(0x1000, 0x9f000);
  vm.addSeg(0x100000, ram);
  vm.init();
  vm.startup(mode);
  return vm;
}

/** The head of the first non-empty queue of [domain 0][flind][pool][order], or -1. */
function headOf(vm: VmPhys, pool: number, order: number, flind = -1): number {
  const s = vm.state;
  for (let f = 0; f < vm.nfreelists; f++) {
    if (flind >= 0 && f !== flind) continue;
    const h = qHead(s, qIndex(s, 0, f, pool, order));
    if (h >= 0) return h;
  }
  return -1;
}

/** Queue of the block headed by idx (its segment's plane, the given pool and order). */
function queueOf(vm: VmPhys, idx: number, pool: number, order: number): number {
  const s = vm.state;
  return qIndex(s, vm.segDomain(segOfIdx(s, idx)), segFlind(s, segOfIdx(s, idx)), pool, order);
}

/** Take the pages [pa, pa + n pages) out of the free blocks, one unfree_page each (eager: no drain). */
function carve(vm: VmPhys, pa: number, n: number): void {
  for (let i = 0; i < n; i++) assert.ok(vm.unfreePage(pa + i * PAGE), 'carved page was free');
}

/** verify must throw an InvariantError for invariant `inv` (not any other error). */
function fires(vm: VmPhys, inv: string, opts: VerifyOptions = { deep: true }, msg?: RegExp): void {
  assert.throws(
    () => verify(vm, opts),
    (e: unknown) => {
      assert.ok(e instanceof InvariantError, `expected an InvariantError, got ${String(e)}`);
      assert.equal(e.code, 'EINVARIANT');
      assert.equal(e.invariant, inv, e.message);
      if (msg) assert.match(e.message, msg);
      return true;
    },
  );
}

interface Corruption {
  inv: string;
  what: string;
  mode?: StartupMode;
  opts?: VerifyOptions;
  msg?: RegExp;
  /** Corrupt the machine; may return verify options to use (they must pass before corrupting). */
  corrupt: (vm: VmPhys) => VerifyOptions | undefined;
  /** Options to verify with before corrupting (default: the same as after). */
  clean?: (vm: VmPhys) => VerifyOptions;
}

const CORRUPTIONS: Corruption[] = [
  {
    inv: '1',
    what: 'a queue count one too high',
    corrupt: (vm) => {
      const q = queueOf(vm, headOf(vm, Pool.DEFAULT, 0), Pool.DEFAULT, 0);
      vm.state.q[vm.state.oCount + q]++;
      return undefined;
    },
  },
  {
    inv: '1',
    what: 'a queue count one too low',
    corrupt: (vm) => {
      const q = queueOf(vm, headOf(vm, Pool.DEFAULT, 12), Pool.DEFAULT, 12);
      vm.state.q[vm.state.oCount + q]--;
      return undefined;
    },
  },
  {
    inv: '1',
    what: 'a count on an empty queue of a domain the machine does not have',
    corrupt: (vm) => {
      vm.state.q[vm.state.oCount + qIndex(vm.state, 5, 0, Pool.DEFAULT, 3)] = 1;
      return undefined;
    },
  },
  {
    inv: '1',
    what: 'a broken back link',
    corrupt: (vm) => {
      const s = vm.state;
      const q = queueOf(vm, headOf(vm, Pool.DEFAULT, 12), Pool.DEFAULT, 12);
      assert.ok(qCount(s, q) > 1);
      s.link[2 * nextOf(s, qHead(s, q)) + 1] = -1;
      return undefined;
    },
  },
  {
    inv: '1',
    what: 'a tail that is not the last entry',
    corrupt: (vm) => {
      const s = vm.state;
      const q = queueOf(vm, headOf(vm, Pool.DEFAULT, 12), Pool.DEFAULT, 12);
      s.q[s.oTail + q] = qHead(s, q) + 1;
      return undefined;
    },
  },
  {
    inv: '1',
    what: 'a queue made into a cycle (with a huge count and consistent back links): reported, not followed forever',
    msg: /cycle/,
    corrupt: (vm) => {
      const s = vm.state;
      const q = queueOf(vm, headOf(vm, Pool.DEFAULT, 12), Pool.DEFAULT, 12);
      const a = qHead(s, q);
      const b = nextOf(s, a);
      s.link[2 * b] = a + 1; // b -> a
      s.link[2 * a + 1] = b + 1; // a <- b
      s.q[s.oTail + q] = 0; // a page on no queue: the walk never meets the tail
      s.q[s.oCount + q] = 0x7fffffff;
      return undefined;
    },
  },
  {
    inv: '2',
    what: 'a queued head whose order field is one less than its queue',
    corrupt: (vm) => {
      const h = headOf(vm, Pool.DEFAULT, 5);
      vm.state.meta[h] = metaByte(Pool.DEFAULT, 4);
      return undefined;
    },
  },
  {
    inv: '2',
    what: 'a free-head mark on an allocated page (deep)',
    corrupt: (vm) => {
      const a = vm.allocPages(0, Pool.DEFAULT, 0) as number;
      vm.state.meta[vm.paddrToPage(a)] = metaByte(Pool.DEFAULT, 0);
      return { deep: true, heldPages: 1 };
    },
    clean: () => ({ deep: true, heldPages: 0 }),
  },
  {
    inv: '2',
    what: 'a free-head mark inside a free block, on no queue (deep)',
    corrupt: (vm) => {
      const h = headOf(vm, Pool.DEFAULT, 4);
      vm.state.meta[h + 2] = metaByte(Pool.DEFAULT, 1);
      return undefined;
    },
  },
  {
    inv: '3',
    what: 'a queued head whose pool field is another pool',
    corrupt: (vm) => {
      const h = headOf(vm, Pool.DEFAULT, 3);
      vm.state.meta[h] = metaByte(Pool.DIRECT, 3);
      return undefined;
    },
  },
  {
    inv: '3',
    what: 'a page whose pool field is beyond VM_NFREEPOOL (deep)',
    corrupt: (vm) => {
      const a = vm.allocPages(0, Pool.DEFAULT, 0) as number;
      vm.state.meta[vm.paddrToPage(a)] = metaByte(vm.nPool + 2, vm.nOrd);
      return { deep: true, heldPages: 1 };
    },
    clean: () => ({ deep: true, heldPages: 0 }),
  },
  {
    inv: '4',
    what: 'a block queued one page off its alignment',
    corrupt: (vm) => {
      const s = vm.state;
      const h = headOf(vm, Pool.DEFAULT, 12);
      const q = queueOf(vm, h, Pool.DEFAULT, 12);
      qRem(s, q, h);
      qAddTail(s, queueOf(vm, h, Pool.DEFAULT, 2), h + 2, 2, Pool.DEFAULT);
      return undefined;
    },
  },
  {
    inv: '5',
    what: 'a block that runs past the end of its segment',
    corrupt: (vm) => {
      // Segment 0 is [0x1000, 0x9f000): an order-3 block at 0x98000 would end at 0xa0000.
      carve(vm, 0x98000, 7);
      const idx = vm.paddrToPage(0x98000);
      qAddTail(vm.state, queueOf(vm, idx, Pool.DEFAULT, 3), idx, 3, Pool.DEFAULT);
      return { deep: true, heldPages: 0 };
    },
    clean: () => ({ deep: true, heldPages: 0 }),
  },
  {
    inv: '5',
    what: 'a block on the queue table of another free list',
    corrupt: (vm) => {
      const pa = 0x2000000;
      carve(vm, pa, 1);
      const idx = vm.paddrToPage(pa);
      const other = segFlind(vm.state, segOfIdx(vm.state, vm.paddrToPage(0x200000)));
      assert.notEqual(other, segFlind(vm.state, segOfIdx(vm.state, idx)));
      qAddTail(vm.state, qIndex(vm.state, 0, other, Pool.DEFAULT, 0), idx, 0, Pool.DEFAULT);
      return undefined;
    },
  },
  {
    inv: '5',
    what: 'a block on the queue table of a domain the machine does not have',
    corrupt: (vm) => {
      const pa = 0x2000000;
      carve(vm, pa, 1);
      const idx = vm.paddrToPage(pa);
      qAddTail(vm.state, qIndex(vm.state, 3, segFlind(vm.state, segOfIdx(vm.state, idx)), Pool.DEFAULT, 0), idx, 0, 1);
      return undefined;
    },
  },
  {
    inv: '5',
    what: 'a queue entry beyond the page array',
    corrupt: (vm) => {
      const s = vm.state;
      const q = qIndex(s, 0, 0, Pool.DIRECT, 0);
      s.q[s.oHead + q] = vm.totalPages + 5;
      s.q[s.oTail + q] = vm.totalPages + 5;
      s.q[s.oCount + q] = 1;
      return undefined;
    },
  },
  {
    inv: '6',
    what: 'two free blocks that overlap (an order-0 block queued inside an order-1 block)',
    corrupt: (vm) => {
      const h = headOf(vm, Pool.DEFAULT, 1);
      qAddTail(vm.state, queueOf(vm, h, Pool.DEFAULT, 0), h + 1, 0, Pool.DEFAULT);
      return { deep: false };
    },
  },
  {
    inv: '6',
    what: 'a free block over a page the caller holds (freed behind its back)',
    corrupt: (vm) => {
      const a = vm.allocPages(0, Pool.DEFAULT, 2) as number;
      verify(vm, { deep: true, held: [[a, 4]] });
      vm.freeIdx(vm.paddrToPage(a) + 1, Pool.DEFAULT, 0);
      return { deep: true, held: [[a, 4]], heldPages: 3 };
    },
    clean: () => ({ deep: true, heldPages: 0 }),
  },
  {
    inv: '7',
    what: 'a page leaked (off every queue, not held)',
    corrupt: (vm) => {
      vm.allocPages(0, Pool.DEFAULT, 0);
      return { deep: true, heldPages: 0 };
    },
    clean: () => ({ deep: true, heldPages: 0 }),
  },
  {
    inv: '7',
    what: 'pages counted in flight that no drainer holds',
    mode: 'lazy',
    corrupt: (vm) => {
      vm.state.c.ctl[CTL.INFLIGHT] += 8;
      return { deep: true, heldPages: 0 };
    },
    clean: () => ({ deep: true, heldPages: 0 }),
  },
  {
    inv: '8',
    what: 'a queued head whose order field is beyond VM_NFREEORDER',
    corrupt: (vm) => {
      const h = headOf(vm, Pool.DEFAULT, 2);
      vm.state.meta[h] = metaByte(Pool.DEFAULT, 15);
      return undefined;
    },
  },
  {
    inv: '8',
    what: 'an allocated page whose order field is beyond VM_NFREEORDER (deep)',
    corrupt: (vm) => {
      const a = vm.allocPages(0, Pool.DEFAULT, 0) as number;
      vm.state.meta[vm.paddrToPage(a)] = metaByte(Pool.DEFAULT, vm.nOrd + 1);
      return { deep: true, heldPages: 1 };
    },
    clean: () => ({ deep: true, heldPages: 0 }),
  },
  {
    inv: '9',
    what: 'two segments that overlap',
    msg: /overlap/,
    corrupt: (vm) => {
      vm.state.segEnd[0] = vm.state.segStart[1] + PAGE;
      return undefined;
    },
  },
  {
    inv: '9',
    what: 'segments out of order',
    msg: /unsorted/,
    corrupt: (vm) => {
      const s = vm.state;
      [s.segStart[1], s.segStart[2]] = [s.segStart[2], s.segStart[1]];
      [s.segEnd[1], s.segEnd[2]] = [s.segEnd[2], s.segEnd[1]];
      return undefined;
    },
  },
  {
    inv: '9',
    what: 'a segment crossing the 16 MiB boundary between two free lists',
    msg: /LOWMEM/,
    corrupt: (vm) => {
      const s = vm.state;
      s.segStart[2] -= PAGE;
      s.segEnd[1] -= PAGE;
      return undefined;
    },
  },
  {
    inv: '9',
    what: 'an empty segment',
    msg: /empty/,
    corrupt: (vm) => {
      vm.state.segEnd[0] = vm.state.segStart[0];
      return undefined;
    },
  },
  {
    inv: '9',
    what: 'a segment whose page indices do not match its size',
    msg: /page count/,
    corrupt: (vm) => {
      vm.state.segEnd[0] -= PAGE;
      return undefined;
    },
  },
  {
    inv: '10',
    what: 'a free that did not coalesce with its free buddy (same pool)',
    corrupt: (vm) => {
      const a = vm.allocPages(0, Pool.DEFAULT, 1) as number;
      const idx = vm.paddrToPage(a);
      // A "free" that only queues each half, never looking for the buddy.
      qAddTail(vm.state, queueOf(vm, idx, Pool.DEFAULT, 0), idx + 1, 0, Pool.DEFAULT);
      qAddTail(vm.state, queueOf(vm, idx, Pool.DEFAULT, 0), idx, 0, Pool.DEFAULT);
      return { deep: true, heldPages: 0, freed: a };
    },
    clean: () => ({ deep: true, heldPages: 0 }),
  },
  {
    inv: '10',
    what: 'a free that did not coalesce across pools (buddy in DIRECT)',
    msg: /pool 2/,
    corrupt: (vm) => {
      const a = vm.allocPages(0, Pool.DEFAULT, 4) as number;
      const idx = vm.paddrToPage(a);
      qAddTail(vm.state, queueOf(vm, idx, Pool.DIRECT, 3), idx + 8, 3, Pool.DIRECT);
      qAddTail(vm.state, queueOf(vm, idx, Pool.DEFAULT, 3), idx, 3, Pool.DEFAULT);
      return { deep: true, heldPages: 0, freed: a };
    },
    clean: () => ({ deep: true, heldPages: 0 }),
  },
  {
    inv: '10',
    what: 'a free that did not coalesce with a lazy buddy',
    mode: 'lazy',
    msg: /pool 0/,
    corrupt: (vm) => {
      // Take a LAZYINIT order-3 block, finish it, give its upper half back to LAZYINIT (as a
      // split would) and "free" the lower half into DEFAULT without merging.
      const s = vm.state;
      const h = headOf(vm, Pool.LAZYINIT, 3);
      qRem(s, queueOf(vm, h, Pool.LAZYINIT, 3), h);
      finishInit(s, h, 3);
      qAddTail(s, queueOf(vm, h, Pool.LAZYINIT, 2), h + 4, 2, Pool.LAZYINIT);
      qAddTail(s, queueOf(vm, h, Pool.DEFAULT, 2), h, 2, Pool.DEFAULT);
      return { deep: true, heldPages: 0, freed: vm.paOf(h) };
    },
    clean: () => ({ deep: true, heldPages: 0 }),
  },
  {
    inv: '10',
    what: 'a "freed" block that is on no queue',
    corrupt: (vm) => {
      const a = vm.allocPages(0, Pool.DEFAULT, 0) as number;
      return { heldPages: 1, freed: a };
    },
    clean: () => ({ deep: true, heldPages: 0 }),
  },
  {
    inv: '11',
    what: 'a LAZYINIT block left on a queue after the drain finished',
    corrupt: (vm) => {
      const s = vm.state;
      vm.drain();
      verify(vm, { deep: true, heldPages: 0 });
      const h = headOf(vm, Pool.DEFAULT, 12);
      qRem(s, queueOf(vm, h, Pool.DEFAULT, 12), h);
      qAddTail(s, queueOf(vm, h, Pool.LAZYINIT, 12), h, 12, Pool.LAZYINIT);
      return undefined;
    },
  },
  {
    inv: '11',
    what: 'a LAZYINIT block left in a domain marked done while the drain goes on',
    mode: 'lazy',
    corrupt: (vm) => {
      vm.state.c.ctl[CTL.INITDONE] = 1;
      return undefined;
    },
  },
  {
    inv: '11',
    what: 'the LAZYINIT pool growing after boot',
    mode: 'lazy',
    corrupt: (vm) => {
      const s = vm.state;
      const since = verify(vm);
      let o = 0;
      while (headOf(vm, Pool.DEFAULT, o) < 0) o++;
      const h = headOf(vm, Pool.DEFAULT, o);
      qRem(s, queueOf(vm, h, Pool.DEFAULT, o), h);
      qAddTail(s, queueOf(vm, h, Pool.LAZYINIT, o), h, o, Pool.LAZYINIT);
      return { deep: true, heldPages: 2, since };
    },
    clean: (vm) => {
      vm.allocPages(0, Pool.DEFAULT, 0);
      vm.allocPages(0, Pool.DEFAULT, 0);
      vm.freePages(vm.allocPages(0, Pool.DEFAULT, 0) as number, Pool.DEFAULT, 0);
      return { deep: true, heldPages: 2 };
    },
  },
  {
    inv: '11',
    what: 'an uninitialised explicit head of a lazy block',
    mode: 'lazy',
    corrupt: (vm) => {
      const h = headOf(vm, Pool.LAZYINIT, 4);
      vm.state.meta[h] &= ~M_INIT;
      return undefined;
    },
  },
  {
    inv: '11',
    what: 'vm_default_freepool naming a pool other than LAZYINIT or DEFAULT',
    mode: 'lazy',
    corrupt: (vm) => {
      vm.state.c.ctl[CTL.DEFAULT_FREEPOOL] = Pool.DIRECT;
      return undefined;
    },
  },
  {
    inv: '12',
    what: 'an allocated page left uninitialised (deep)',
    corrupt: (vm) => {
      const a = vm.allocPages(0, Pool.DEFAULT, 0) as number;
      vm.state.meta[vm.paddrToPage(a)] = 0;
      return { deep: true, heldPages: 1 };
    },
    clean: () => ({ deep: true, heldPages: 0 }),
  },
  {
    inv: '12',
    what: 'an uninitialised page inside a DEFAULT free block (deep)',
    corrupt: (vm) => {
      const h = headOf(vm, Pool.DEFAULT, 6);
      vm.state.meta[h + 17] = 0;
      return undefined;
    },
  },
  {
    inv: '12',
    what: 'a page outside the free blocks whose initialised bit is clear (deep)',
    corrupt: (vm) => {
      const a = vm.allocPages(0, Pool.DEFAULT, 0) as number;
      vm.state.meta[vm.paddrToPage(a)] &= ~M_INIT;
      return { deep: true, heldPages: 1 };
    },
    clean: () => ({ deep: true, heldPages: 0 }),
  },
];

const fired = new Set<string>();

describe('verify reports each corrupted invariant by its number', () => {
  for (const c of CORRUPTIONS) {
    test(`${c.inv}: ${c.what}`, () => {
      const vm = machine(c.mode ?? 'eager');
      const cleanOpts = c.clean ? c.clean(vm) : { deep: true, heldPages: 0 };
      verify(vm, cleanOpts);
      const opts = c.corrupt(vm) ?? cleanOpts;
      fires(vm, c.inv, opts, c.msg);
      fired.add(c.inv);
    });
  }
});

describe('what verify must accept', () => {
  test('a drainer holding a lazy block off the queues: in flight counts as held, its pages may be uninitialised', () => {
    const vm = machine('lazy');
    const h = lazyTake(vm.state, 0);
    assert.ok(h >= 0);
    assert.ok(vm.state.c.ctl[CTL.INFLIGHT] > 1, 'the block taken has several pages');
    verify(vm, { deep: true, heldPages: 0 });
    fires(vm, '7', { deep: false, heldPages: 1 });
    const idx = (h - (h % 16)) / 16;
    finishInit(vm.state, idx, h % 16);
    verify(vm, { deep: true, heldPages: 0 });
    lazyPut(vm.state, 0, idx, h % 16);
    assert.equal(vm.state.c.ctl[CTL.INFLIGHT], 0);
    verify(vm, { deep: true, heldPages: 0 });
  });

  test('uninitialised pages beyond what is in flight are reported', () => {
    const vm = machine('lazy');
    const h = lazyTake(vm.state, 0);
    assert.ok(h >= 0);
    const inflight = vm.state.c.ctl[CTL.INFLIGHT];
    assert.ok(inflight >= 2);
    const a = vm.allocPages(0, Pool.DEFAULT, 1) as number;
    const pages = [vm.paddrToPage(a), vm.paddrToPage(a) + 1];
    const held = 2;
    verify(vm, { deep: true, heldPages: held });
    // The block in flight has inflight - 1 uninitialised pages (its head is written when it
    // leaves its queue): one more uninitialised page passes, two more do not.
    vm.state.meta[pages[0]] = 0;
    verify(vm, { deep: true, heldPages: held });
    vm.state.meta[pages[1]] = 0;
    fires(vm, '12', { deep: true, heldPages: held });
  });

  test('shallow mode skips the page scan; deep mode finds what only it can', () => {
    const vm = machine('eager');
    const a = vm.allocPages(0, Pool.DEFAULT, 0) as number;
    vm.state.meta[vm.paddrToPage(a)] = metaByte(Pool.DEFAULT, 0);
    verify(vm, { deep: false, heldPages: 1 });
    fires(vm, '2', { deep: true, heldPages: 1 });
    // Small machines are scanned by default.
    fires(vm, '2', { heldPages: 1 });
  });

  test('free_pages leaves no free buddy at the final order, in either mode, any pool (property)', () => {
    for (const mode of ['lazy', 'eager'] as const) {
      fc.assert(
        fc.property(
          fc.array(fc.record({ alloc: fc.boolean(), order: fc.nat(6), pool: fc.constantFrom(1, 2), k: fc.nat() }), {
            minLength: 1,
            maxLength: 60,
          }),
          (ops) => {
            const vm = machine(mode, 24 * MiB);
            const live: Array<[number, number, number]> = [];
            let since = verify(vm, { deep: false });
            for (const op of ops) {
              if (op.alloc || live.length === 0) {
                const a = vm.allocPages(0, op.pool, op.order);
                if (a !== null) live.push([a, op.order, op.pool]);
              } else {
                const [a, order] = live.splice(op.k % live.length, 1)[0];
                // Freed into either pool: merging ignores the pool of the buddy.
                vm.freePages(a, op.pool, order);
                since = verify(vm, {
                  deep: false,
                  freed: a,
                  since,
                  held: live.map(([b, o]) => [b, 2 ** o] as const),
                });
              }
            }
            verify(vm, { deep: true, held: live.map(([b, o]) => [b, 2 ** o] as const) });
          },
        ),
        { numRuns: 25 },
      );
    }
  });

  test('queues are walked without writing anything, and reports count what is there', () => {
    const vm = machine('lazy');
    const before = Array.from({ length: nQueues(vm.state) }, (_, q) => [qHead(vm.state, q), qTail(vm.state, q)]);
    const r = verify(vm, { deep: true, heldPages: 0 });
    assert.equal(r.freePages, vm.counts().total);
    assert.equal(r.lazyPages, vm.counts().lazyinit);
    assert.ok(r.freeBlocks > 0 && r.explicitHeads > 0 && r.explicitHeads <= r.freeBlocks);
    assert.deepEqual(
      Array.from({ length: nQueues(vm.state) }, (_, q) => [qHead(vm.state, q), qTail(vm.state, q)]),
      before,
    );
  });
});

test('every invariant number verify.ts can report has a corruption that fires it', () => {
  const src = readFileSync(
    join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'core', 'verify.ts'),
    'utf8',
  );
  const numbers = new Set<string>();
  for (const line of src.split('\n')) {
    const i = line.indexOf('fail(');
    if (i < 0 || line.includes('const fail')) continue;
    for (const m of line.slice(i).matchAll(/'(\d+)'/g)) numbers.add(m[1]);
  }
  assert.ok(numbers.size >= 10, `found only ${[...numbers].join(', ')} in verify.ts`);
  for (const n of numbers) assert.ok(fired.has(n), `invariant ${n} is never shown to fire`);
  assert.equal(fired.size, CORRUPTIONS.map((c) => c.inv).filter((v, i, a) => a.indexOf(v) === i).length);
});
