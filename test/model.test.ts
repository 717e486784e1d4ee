/**
 * Model-based tests (fast-check): random sequences of every operation, in both start-up modes,
 * with partial drains and several domains, run against a reference model (the set of pages the
 * caller holds). After every step: verify() (deep), conservation, and no page handed out twice.
 * Size: at least VMPHYS_MODEL_RUNS runs (default 560, up to 400 operations each) and at least
 * VMPHYS_MODEL_OPS operations (default 10^5) per CI run: each of the eight layout × mode tests
 * keeps adding runs until it has executed its share, and the last test asserts the total. The
 * nightly setting is VMPHYS_MODEL_RUNS=20000. The seed is printed by fast-check on failure.
 *
 * Every misuse the model attempts names the exact error code it must raise, and the state
 * (control words, page metadata, queue links) must be byte-identical afterwards.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { allocContig } from '../src/core/contig.js';
import { VmPhysError } from '../src/core/errors.js';
import { handleIdx, handleOrder, lazyPut, lazyTake } from '../src/core/lazy.js';
import { cachePut, cacheTake } from '../src/core/owner.js';
import { finishInit } from '../src/core/pages.js';
import { arm64, Pool, type Profile } from '../src/core/params.js';
import { segEndIdx, segOfIdx } from '../src/core/segments.js';
import { restore, snapshot } from '../src/core/snapshot.js';
import { availPages, verify } from '../src/core/verify.js';
import { type StartupMode, VmPhys } from '../src/core/vmphys.js';

const RUNS = Number(process.env.VMPHYS_MODEL_RUNS ?? 560);
const OPS = Number(process.env.VMPHYS_MODEL_OPS ?? 100_000);

interface Layout {
  name: string;
  profile?: Profile;
  affinity?: Array<[number, number, number]>;
  segs: Array<[number, number]>;
  avail?: Array<[number, number]>;
}

const LAYOUTS: Layout[] = [
  {
    name: 'fc48m',
    segs: [
      [0x1000, 0x9f000],
      [0x100000, 0x3000000],
    ],
  },
  {
    name: 'holes',
    segs: [
      [0x1000, 0x9f000],
      [0x100000, 0x2345000],
    ],
    avail: [
      [0x1000, 0x9f000],
      [0x100000, 0x200000],
      [0xa00000, 0x2345000],
    ],
  },
  {
    name: 'numa2',
    affinity: [
      [0, 0x1234000, 0],
      [0x1234000, 0x4000000, 1],
    ],
    segs: [
      [0x1000, 0x9f000],
      [0x100000, 0x3800000],
    ],
  },
  {
    name: 'arm64',
    profile: arm64,
    segs: [
      [0x40000000, 0x42000000],
      [0x42400000, 0x42c13000],
    ],
  },
];

type Cmd =
  | { t: 'alloc'; pool: number; order: number; domain: number }
  | { t: 'flalloc'; fl: number; pool: number; order: number; domain: number }
  | { t: 'npages'; pool: number; n: number; domain: number }
  | { t: 'free'; k: number; halves: boolean }
  | { t: 'contig'; n: number; align: number; bound: number; lo: number; hi: number; domain: number }
  | { t: 'unfree'; f: number }
  | { t: 'drain'; k: number }
  | { t: 'bad'; kind: number; k: number };

/** Misuses attempted (by name), so the last test can check that each one was exercised. */
const misuseCount = new Map<string, number>();

/** A page no one holds that is in phys_avail (so on a free list or in lazy memory), or -1. */
function freePage(vm: VmPhys, heldBits: Uint8Array, from: number): number {
  for (let j = 0; j < vm.totalPages; j++) {
    const i = (from + j) % vm.totalPages;
    if (heldBits[i] === 0 && isAvail(vm, vm.paOf(i))) return vm.paOf(i);
  }
  return -1;
}

interface MisuseCtx {
  vm: VmPhys;
  b: Held | null;
  heldBits: Uint8Array;
  k: number;
  /** Set by a misuse that staged state (a held block, a cached page): undone after the check. */
  after: (() => void) | null;
}

/** b's block doubled in order, when that block is aligned and inside b's segment (else null). */
function doubled(vm: VmPhys, b: Held | null): number | null {
  if (!b || b.order < 0 || b.order >= vm.maxOrder) return null;
  const size = 2 ** (b.order + 1) * 4096;
  const [, end] = vm.segRange(vm.segOfPa(b.pa));
  return b.pa % size === 0 && b.pa + size <= end ? b.order + 1 : null;
}

/**
 * Each misuse: its name, the exact code it must raise, and the call (null when the current state
 * offers no way to make it, e.g. no free page left to double-free).
 */
const MISUSES: Array<[string, string, (x: MisuseCtx) => (() => unknown) | null]> = [
  [
    'alloc from the LAZYINIT pool',
    'EPOOL',
    ({ vm }) =>
      () =>
        vm.allocPages(0, Pool.LAZYINIT, 0),
  ],
  [
    'alloc above the largest order',
    'EORDER',
    ({ vm }) =>
      () =>
        vm.allocPages(0, Pool.DEFAULT, vm.maxOrder + 1),
  ],
  [
    'alloc from a domain out of range',
    'EDOMAIN',
    ({ vm }) =>
      () =>
        vm.allocPages(vm.ndomains, Pool.DEFAULT, 0),
  ],
  [
    'alloc_npages of 0 pages',
    'ENPAGES',
    ({ vm }) =>
      () =>
        vm.allocNpages(0, Pool.DIRECT, 0, []),
  ],
  [
    'alloc from a free list out of range',
    'EFREELIST',
    ({ vm }) =>
      () =>
        vm.allocFreelistPages(0, vm.nFl, Pool.DEFAULT, 0),
  ],
  [
    'contig with a non-power-of-two alignment',
    'EPOW2',
    ({ vm }) =>
      () =>
        allocContig(vm, 0, 1, 0, 2 ** 40, 4096 * 3, 0),
  ],
  [
    'contig of 0 pages',
    'ENPAGES',
    ({ vm }) =>
      () =>
        allocContig(vm, 0, 0, 0, 2 ** 40, 4096, 0),
  ],
  [
    'find_range of 0 pages',
    'ENPAGES',
    ({ vm }) =>
      () =>
        vm.findRange(0, 0, 0, 0, 2 ** 40),
  ],
  [
    'find_range in a segment out of range',
    'ESEGIND',
    ({ vm }) =>
      () =>
        vm.findRange(vm.nsegs + 1, 0, 1, 0, 2 ** 40),
  ],
  [
    'free of an address that is not page aligned',
    'EALIGN',
    ({ vm, b }) =>
      () =>
        vm.freePages((b ? b.pa : 0x1000) + 2048, Pool.DEFAULT, 0),
  ],
  [
    'free of a block not aligned to its order',
    'EALIGN',
    ({ vm, b }) => (b && b.order > 0 ? () => vm.freePages(b.pa + 4096, b.pool, b.order) : null),
  ],
  [
    'free outside every segment',
    'ENOSEG',
    ({ vm }) =>
      () =>
        vm.freePages(vm.segRange(vm.nsegs - 1)[1] + 0x100000, Pool.DEFAULT, 0),
  ],
  [
    'free of a free page',
    'EDOUBLEFREE',
    ({ vm, heldBits, k }) => {
      const pa = freePage(vm, heldBits, k % vm.totalPages);
      return pa < 0 ? null : () => vm.freePages(pa, Pool.DEFAULT, 0);
    },
  ],
  [
    'free_contig of free pages',
    'EDOUBLEFREE',
    ({ vm, heldBits, k }) => {
      const pa = freePage(vm, heldBits, k % vm.totalPages);
      return pa < 0 ? null : () => vm.freeContig(pa, Pool.DEFAULT, 1);
    },
  ],
  [
    'free of an allocated block with a larger order (covers pages it does not own)',
    'EWRONGORDER',
    ({ vm, b }) => {
      const o = doubled(vm, b);
      return b && o !== null ? () => vm.freePages(b.pa, b.pool, o) : null;
    },
  ],
  [
    'free into a block a drainer holds',
    'EHELD',
    (x) => {
      const { vm, k } = x;
      const s = vm.state;
      let d = 0;
      while (d < vm.ndomains && vm.lazyPages(d) === 0) d++;
      if (d === vm.ndomains) return null;
      const h = lazyTake(s, d);
      if (h < 0) return null;
      const idx = handleIdx(h);
      const order = handleOrder(h);
      finishInit(s, idx, order);
      x.after = () => lazyPut(s, d, idx, order);
      const page = vm.paOf(idx + (k % 2 ** order));
      return () => vm.freePages(page, Pool.DEFAULT, 0);
    },
  ],
  [
    'per-CPU cache: a page freed into the cache twice',
    'EDOUBLEFREE',
    (x) => {
      const { vm, b } = x;
      if (b?.order !== 0) return null;
      const s = vm.state;
      const seg = vm.segOfPa(b.pa);
      const idx = vm.paddrToPage(b.pa);
      cachePut(s, idx, seg, false, 'pcpu free');
      x.after = () => cacheTake(s, idx);
      return () => cachePut(s, idx, seg, false, 'pcpu free');
    },
  ],
  [
    'free_contig of 0 pages',
    'ENPAGES',
    ({ vm, b }) =>
      () =>
        vm.freeContig(b ? b.pa : 0x1000, Pool.DEFAULT, 0),
  ],
  [
    'unfree outside every segment',
    'ENOSEG',
    ({ vm }) =>
      () =>
        vm.unfreePage(vm.segRange(vm.nsegs - 1)[1] + 0x100000),
  ],
  [
    'a segment added after init',
    'ESTATE',
    ({ vm }) =>
      () =>
        vm.addSeg(0x100000000, 0x100100000),
  ],
];

const pool = fc.constantFrom(Pool.DEFAULT, Pool.DIRECT);
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('alloc' as const),
      pool,
      order: fc.nat(12).map((o) => (o > 8 ? o : o % 4)),
      domain: fc.nat(1),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('flalloc' as const),
      fl: fc.nat(2),
      pool,
      order: fc.nat(6),
      domain: fc.nat(1),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('npages' as const),
      pool,
      n: fc.integer({ min: 1, max: 300 }),
      domain: fc.nat(1),
    }),
  },
  { weight: 7, arbitrary: fc.record({ t: fc.constant('free' as const), k: fc.nat(), halves: fc.boolean() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('contig' as const),
      n: fc.integer({ min: 1, max: 9000 }).map((n) => (n > 600 ? n : (n % 40) + 1)),
      align: fc.nat(26),
      bound: fc.nat(30),
      lo: fc.double({ min: 0, max: 1, noNaN: true }),
      hi: fc.double({ min: 0, max: 1, noNaN: true }),
      domain: fc.nat(1),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('unfree' as const), f: fc.double({ min: 0, max: 1, noNaN: true }) }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('drain' as const), k: fc.integer({ min: 1, max: 8 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('bad' as const), kind: fc.nat(MISUSES.length - 1), k: fc.nat() }),
  },
);

interface Held {
  pa: number;
  pages: number;
  order: number; // -1 for a contig run (freed with free_contig)
  pool: number;
}

function build(l: Layout, mode: StartupMode): VmPhys {
  const vm = new VmPhys({ profile: l.profile, shared: false });
  for (const [a, b, d] of l.affinity ?? []) vm.addAffinity(a, b, d);
  for (const [a, b] of l.segs) vm.addSeg(a, b);
  for (const [a, b] of l.avail ?? []) vm.addAvail(a, b);
  vm.init();
  vm.startup(mode);
  return vm;
}

function stateKey(vm: VmPhys): number {
  let h = 0x811c9dc5;
  for (const b of [
    new Uint8Array(vm.state.c.buffer as ArrayBuffer),
    vm.state.meta,
    new Uint8Array(vm.state.link.buffer as ArrayBuffer),
  ])
    for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return h >>> 0;
}

let totalOps = 0;

/** Snapshots taken mid-run by the model (each restored and checked, and the run goes on in the copy). */
let snapshotsRestored = 0;

function runModel(l: Layout, mode: StartupMode, cmds: Cmd[]): void {
  let vm = build(l, mode);
  const start = availPages(vm);
  const heldBits = new Uint8Array(vm.totalPages);
  const live: Held[] = [];
  let heldPages = 0;
  const take = (pa: number, pages: number) => {
    const idx = vm.paddrToPage(pa);
    assert.ok(idx >= 0, `handed-out page ${pa.toString(16)} lies outside every segment`);
    const seg = segOfIdx(vm.state, idx);
    assert.ok(idx + pages <= segEndIdx(vm.state, seg), 'handed-out block leaves its segment');
    for (let i = idx; i < idx + pages; i++) {
      assert.equal(heldBits[i], 0, `page ${vm.paOf(i).toString(16)} handed out twice`);
      heldBits[i] = 1;
    }
    heldPages += pages;
  };
  const give = (pa: number, pages: number) => {
    const idx = vm.paddrToPage(pa);
    for (let i = idx; i < idx + pages; i++) heldBits[i] = 0;
    heldPages -= pages;
  };
  for (const c of cmds) {
    totalOps++;
    // Every 499 operations (over all runs): snapshot, restore (restore verifies the whole state
    // before it returns), check the copy is byte-identical, and go on in the copy.
    if (totalOps % 499 === 0) {
      const copy = restore(snapshot(vm), { shared: false });
      assert.equal(stateKey(copy), stateKey(vm), 'a restored snapshot equals the machine it was taken from');
      vm = copy;
      snapshotsRestored++;
    }
    const domain =
      c.t === 'alloc' || c.t === 'flalloc' || c.t === 'npages' || c.t === 'contig' ? c.domain % vm.ndomains : 0;
    switch (c.t) {
      case 'alloc': {
        const pa = vm.allocPages(domain, c.pool, c.order);
        if (pa !== null) {
          assert.equal(pa % (4096 * 2 ** c.order), 0, 'block aligned to its order');
          take(pa, 2 ** c.order);
          live.push({ pa, pages: 2 ** c.order, order: c.order, pool: c.pool });
        }
        break;
      }
      case 'flalloc': {
        const fl = c.fl % vm.nFl;
        const pa = vm.allocFreelistPages(domain, fl, c.pool, c.order);
        if (pa !== null) {
          take(pa, 2 ** c.order);
          live.push({ pa, pages: 2 ** c.order, order: c.order, pool: c.pool });
        }
        break;
      }
      case 'npages': {
        const out: number[] = [];
        const got = vm.allocNpages(domain, c.pool, c.n, out);
        for (let i = 0; i < got; i++) {
          take(out[i], 1);
          live.push({ pa: out[i], pages: 1, order: 0, pool: c.pool });
        }
        break;
      }
      case 'free': {
        if (live.length === 0) break;
        const i = c.k % live.length;
        const b = live[i];
        live[i] = live[live.length - 1];
        live.pop();
        if (b.order < 0) {
          if (c.halves && b.pages > 1) {
            const h = b.pages >> 1;
            vm.freeContig(b.pa + h * 4096, b.pool, b.pages - h);
            vm.freeContig(b.pa, b.pool, h);
          } else vm.freeContig(b.pa, b.pool, b.pages);
        } else if (c.halves && b.order > 0) {
          vm.freePages(b.pa + (b.pages / 2) * 4096, b.pool, b.order - 1);
          vm.freePages(b.pa, b.pool, b.order - 1);
        } else vm.freePages(b.pa, b.pool, b.order);
        give(b.pa, b.pages);
        break;
      }
      case 'contig': {
        const top = vm.segRange(vm.nsegs - 1)[1];
        let lo = Math.floor((c.lo * top) / 4096) * 4096;
        let hi = Math.floor((c.hi * top) / 4096) * 4096;
        if (lo > hi) [lo, hi] = [hi, lo];
        if (c.hi > 0.9) hi = 2 ** 50;
        const align = 2 ** (12 + (c.align % 14));
        const bound = c.bound < 18 ? 0 : 2 ** c.bound;
        const pa = allocContig(vm, domain, c.n, lo, hi, align, bound);
        if (pa !== null) {
          assert.ok(pa >= lo && pa + c.n * 4096 <= hi, 'contig within [low, high)');
          assert.equal(pa % align, 0, 'contig aligned');
          if (bound)
            assert.equal(Math.floor(pa / bound), Math.floor((pa + c.n * 4096 - 1) / bound), 'contig within boundary');
          assert.equal(vm.segDomain(vm.segOfPa(pa)), domain, 'contig in the requested domain');
          take(pa, c.n);
          live.push({ pa, pages: c.n, order: -1, pool: Pool.DEFAULT });
        }
        break;
      }
      case 'unfree': {
        const s = Math.min(vm.nsegs - 1, Math.floor(c.f * vm.nsegs));
        const [segStart, segEnd] = vm.segRange(s);
        const pages = (segEnd - segStart) / 4096;
        const pa = segStart + Math.floor(((c.f * 977) % 1) * pages) * 4096;
        const idx = vm.paddrToPage(pa);
        const wasFree = heldBits[idx] === 0 && isAvail(vm, pa);
        const r = vm.unfreePage(pa);
        assert.equal(r, wasFree, `unfree ${pa.toString(16)} says ${r}`);
        if (r) {
          take(pa, 1);
          live.push({ pa, pages: 1, order: 0, pool: Pool.DEFAULT });
        }
        break;
      }
      case 'drain':
        vm.drainStep(c.k);
        break;
      case 'bad': {
        const b = live.length ? live[c.k % live.length] : null;
        const [name, code, make] = MISUSES[c.kind];
        const ctx: MisuseCtx = { vm, b, heldBits, k: c.k, after: null };
        const call = make(ctx);
        if (call === null) {
          ctx.after?.();
          break;
        }
        misuseCount.set(name, (misuseCount.get(name) ?? 0) + 1);
        const before = stateKey(vm);
        assert.throws(call, (e: unknown) => {
          assert.ok(e instanceof VmPhysError, `${name}: ${String(e)}`);
          assert.equal(e.code, code, `${name}: ${e.message}`);
          return true;
        });
        assert.equal(stateKey(vm), before, `${name}: the rejected call left the state unchanged`);
        ctx.after?.();
        break;
      }
    }
    verify(vm, { deep: true, heldPages });
    assert.equal(vm.counts().total + heldPages, start, 'conservation');
  }
  // Teardown: give everything back, drain, and the machine is whole again.
  for (const b of live) {
    if (b.order < 0) vm.freeContig(b.pa, b.pool, b.pages);
    else vm.freePages(b.pa, b.pool, b.order);
  }
  vm.drain();
  verify(vm, { deep: true, heldPages: 0 });
  assert.equal(vm.counts().total, start);
  assert.equal(vm.counts().lazyinit, 0);
}

function isAvail(vm: VmPhys, pa: number): boolean {
  for (const [a, b] of vm.availRanges()) if (pa >= a && pa < b) return true;
  return false;
}

const TESTS = LAYOUTS.length * 2;
let testsRun = 0;

for (const mode of ['lazy', 'eager'] as const) {
  for (const l of LAYOUTS) {
    test(`model: ${l.name} ${mode}`, () => {
      const prop = fc.property(fc.array(cmd, { minLength: 1, maxLength: 400, size: 'max' }), (cmds) =>
        runModel(l, mode, cmds),
      );
      const first = totalOps;
      const share = Math.ceil(OPS / TESTS);
      fc.assert(prop, { numRuns: Math.max(1, Math.round(RUNS / TESTS)) });
      // Array lengths are random: top up with more runs until this test has done its share.
      while (totalOps - first < share) {
        fc.assert(prop, { numRuns: Math.ceil((share - (totalOps - first)) / 150) });
      }
      testsRun++;
    });
  }
}

test('model: every run executes at least VMPHYS_MODEL_OPS operations and every misuse', () => {
  assert.equal(testsRun, TESTS, 'every layout × mode model test ran');
  console.log(`# model operations: ${totalOps}`);
  assert.ok(totalOps >= OPS, `only ${totalOps} operations, want ≥ ${OPS}`);
  console.log(`# snapshots restored mid-run: ${snapshotsRestored}`);
  assert.ok(snapshotsRestored >= OPS / 1000, `only ${snapshotsRestored} mid-run snapshots restored`);
  for (const [name] of MISUSES) {
    assert.ok((misuseCount.get(name) ?? 0) > 0, `the misuse "${name}" was never attempted`);
  }
});
