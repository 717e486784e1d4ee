/**
 * The fragmentation lab on real machines booted through the public boot API: after random
 * allocations, frees and partial drains, the per-order counts the metrics use equal the numbers
 * in the vm.phys_free text; the Linux formats name the zones as documented; the frame histogram
 * and the free-block walk agree with the counts; canAllocate predicts vm_phys_alloc_pages and
 * changes nothing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { firecrackerMap } from '../src/boot/ramspec.js';
import { bootFromMap } from '../src/boot/startup.js';
import { VmPhysError } from '../src/core/errors.js';
import { arm64, Pool, type Profile } from '../src/core/params.js';
import { physFree } from '../src/core/sysctl.js';
import { verify } from '../src/core/verify.js';
import { type StartupMode, VmPhys } from '../src/core/vmphys.js';
import { fragmentation, fragStatsOf, frameHistogram, orderCounts } from '../src/lab/fragmentation.js';
import { buddyinfo, extfragIndexText, parseBuddyinfo, unusableIndexText, unusableLine } from '../src/lab/linux.js';
import { fragStats } from '../src/lab/metrics.js';
import { allocationSource, canAllocate } from '../src/lab/probe.js';
import { forEachFreeBlock, superpageOrder } from '../src/lab/source.js';

const MiB = 1024 * 1024;

function boot(ramBytes: number, mode: StartupMode, profile?: Profile): VmPhys {
  return bootFromMap(firecrackerMap(ramBytes), { mode, profile, shared: false }).vm;
}

/** vm.phys_free text → counts[domain][flind][pool][order]. */
function parsePhysFree(text: string): number[][][][] {
  const out: number[][][][] = [];
  let d = -1;
  let f = -1;
  for (const line of text.split('\n')) {
    let m = /^DOMAIN (\d+):$/.exec(line);
    if (m) {
      d = Number(m[1]);
      out[d] = [];
      continue;
    }
    m = /^FREE LIST (\d+):$/.exec(line);
    if (m) {
      f = Number(m[1]);
      out[d][f] = [];
      continue;
    }
    m = /^\s+(\d+) \(\s*\d+K\)((?:\s+\|\s+\d+)+)$/.exec(line);
    if (m) {
      const order = Number(m[1]);
      const per = m[2]
        .split('|')
        .slice(1)
        .map((x) => Number(x.trim()));
      per.forEach((n, pool) => {
        out[d][f][pool] ??= [];
        out[d][f][pool][order] = n;
      });
    }
  }
  return out;
}

type Op = { kind: 'alloc'; order: number; pool: number } | { kind: 'free'; pick: number } | { kind: 'drain' };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('alloc' as const),
      order: fc.integer({ min: 0, max: 12 }),
      pool: fc.constantFrom(Pool.DEFAULT, Pool.DIRECT),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'drain' as const }) },
);

/** Apply ops; allocations go through vm_phys_alloc_pages, checked against canAllocate first. */
function run(vm: VmPhys, ops: Op[], held: Array<[number, number, number]>): void {
  for (const op of ops) {
    if (op.kind === 'alloc') {
      const predicted = canAllocate(vm, op.order, { domain: 0, pool: op.pool });
      const pa = vm.allocPages(0, op.pool, op.order);
      assert.equal(pa !== null, predicted, `canAllocate(order ${op.order}, pool ${op.pool}) predicted ${predicted}`);
      if (pa !== null) held.push([pa, op.pool, op.order]);
    } else if (op.kind === 'free') {
      if (held.length === 0) continue;
      const [pa, pool, order] = held.splice(op.pick % held.length, 1)[0];
      vm.freePages(pa, pool, order);
    } else vm.drainStep(1 << 12);
  }
}

describe('counts the metrics use equal vm.phys_free', () => {
  for (const mode of ['lazy', 'eager'] as const) {
    test(`64 MiB Firecracker guest, ${mode}, random allocations`, () => {
      fc.assert(
        fc.property(fc.array(opArb, { maxLength: 120 }), (ops) => {
          const vm = boot(64 * MiB, mode);
          run(vm, ops, []);
          const pf = parsePhysFree(physFree(vm));
          let total = 0;
          for (let d = 0; d < vm.ndomains; d++)
            for (let f = 0; f < vm.nfreelists; f++)
              for (let p = 0; p < vm.nPool; p++) {
                const c = orderCounts(vm, { domain: d, flind: f, pool: p });
                assert.deepEqual(Array.from(c), pf[d][f][p], `domain ${d} list ${f} pool ${p}`);
                for (let o = 0; o < vm.nOrd; o++) total += pf[d][f][p][o] * 2 ** o;
              }
          const rep = fragmentation(vm);
          assert.equal(rep.total.freePages, total);
          assert.equal(rep.total.freePages, vm.counts().total);
          // The explicit walk over every free block gives the same metrics as the counts.
          const walked = new Array(vm.nOrd).fill(0);
          forEachFreeBlock(vm, (_d, _f, _p, o) => walked[o]++);
          assert.deepEqual(fragStats(walked), rep.total);
          // Zones sum to the total; the buddyinfo text carries the same counts.
          const zones = parseBuddyinfo(buddyinfo(vm));
          const sum = new Array(vm.nOrd).fill(0);
          for (const z of zones) for (let o = 0; o < z.counts.length; o++) sum[o] += z.counts[o];
          assert.deepEqual(sum, rep.total.blocks);
          verify(vm);
        }),
        { numRuns: 25 },
      );
    });
  }
});

describe('Linux formats of a machine', () => {
  test('amd64 64 MiB guest: zones DMA (LOWMEM, below 16 MiB) then Normal, in Linux order', () => {
    const vm = boot(64 * MiB, 'eager');
    const zones = parseBuddyinfo(buddyinfo(vm));
    assert.deepEqual(
      zones.map((z) => `${z.node}:${z.zone}`),
      ['0:DMA', '0:Normal'],
    );
    // The Normal zone is [16 MiB, 64 MiB): 12288 pages, all in order-12 blocks (4096 pages each,
    // aligned at 16 MiB multiples of 16 MiB): 3 blocks.
    assert.deepEqual(zones[1].counts, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
    const lines = unusableIndexText(vm).split('\n');
    assert.equal(`${lines[1]}\n`, unusableLine(0, 'Normal', zones[1].counts));
    assert.equal(
      lines[1],
      'Node 0, zone   Normal 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 ',
    );
    assert.match(
      extfragIndexText(vm),
      /^Node 0, zone {6}DMA (-1\.000 |\s0\.\d{3} )+\nNode 0, zone {3}Normal (-1\.000 ){13}\n$/,
    );
    assert.throws(
      () => buddyinfo(vm, { pool: 7 }),
      (e: unknown) => e instanceof VmPhysError && e.code === 'EPOOL',
    );
  });

  test('arm64 5 GiB guest: zones DMA32 (below 4 GiB) then Normal', () => {
    const vm = boot(5 * 1024 * MiB, 'lazy', arm64);
    assert.equal(superpageOrder(vm.profile), 9);
    assert.deepEqual(
      parseBuddyinfo(buddyinfo(vm)).map((z) => z.zone),
      ['DMA32', 'Normal'],
    );
  });
});

describe('frame histogram', () => {
  test('one 64 MiB segment at 0, lazy: 32 full frames; one page taken leaves one frame at 511', () => {
    const vm = new VmPhys({ shared: false });
    vm.addSeg(0, 64 * MiB);
    vm.init();
    vm.startup('lazy');
    let h = frameHistogram(vm);
    assert.equal(h.framePages, 512);
    assert.equal(h.frames, 32);
    assert.equal(h.fullFrames, 32);
    assert.equal(h.outsidePages, 0);
    const before = physFree(vm);
    assert.equal(canAllocate(vm, 12), true);
    assert.equal(physFree(vm), before, 'canAllocate changes nothing');
    const pa = vm.allocPages(0, Pool.DEFAULT, 0);
    assert.notEqual(pa, null);
    h = frameHistogram(vm);
    assert.equal(h.hist[511], 1);
    assert.equal(h.hist[512], 31);
    assert.equal(fragmentation(vm).superpages, 31);
    // Per pool: the LAZYINIT pool still holds the untouched chunks (3 × 8 frames).
    assert.equal(frameHistogram(vm, { pool: Pool.LAZYINIT }).hist[512], 24);
  });

  test('on a ragged map, Σ k·hist[k] + pages outside whole frames = F, Σ hist = frames', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 80 }), (ops) => {
        const vm = boot(96 * MiB + 20 * 4096, 'lazy');
        run(vm, ops, []);
        const h = frameHistogram(vm);
        let pages = 0;
        let frames = 0;
        h.hist.forEach((n, k) => {
          pages += n * k;
          frames += n;
        });
        assert.equal(frames, h.frames);
        assert.equal(pages + h.outsidePages, fragStatsOf(vm).freePages);
        // A frame with all 512 pages free is a free superpage-sized block's worth of memory:
        // never fewer full frames than S_9 (blocks of order ≥ 9 fill whole frames).
        assert.ok(h.fullFrames >= fragmentation(vm).superpages);
      }),
      { numRuns: 20 },
    );
  });
});

describe('canAllocate', () => {
  test('a full machine: no order-12 block left, then nothing at all', () => {
    const vm = boot(64 * MiB, 'lazy');
    while (vm.allocPages(0, Pool.DEFAULT, 12) !== null) {}
    assert.equal(canAllocate(vm, 12), false);
    assert.equal(canAllocate(vm, 0), true);
    const src = allocationSource(vm, 0);
    assert.ok(src !== null && src.order >= 0);
    while (vm.allocPages(0, Pool.DIRECT, 0) !== null) {}
    assert.equal(canAllocate(vm, 0), false);
    assert.equal(canAllocate(vm, 0, { pool: Pool.DIRECT }), false);
    assert.equal(fragmentation(vm).total.freePages, 0);
    assert.deepEqual(fragmentation(vm).total.unusable, new Array(13).fill(1));
  });

  test('a steal from another pool is reported as a fallback', () => {
    const vm = boot(64 * MiB, 'lazy');
    // Before the drain everything is LAZYINIT: a DEFAULT request steals.
    const src = allocationSource(vm, 3);
    assert.ok(src !== null);
    assert.equal(src.pool, Pool.LAZYINIT);
    assert.equal(src.fallback, true);
    assert.equal(src.order, 12);
  });

  test('typed errors for bad arguments', () => {
    const vm = boot(64 * MiB, 'lazy');
    const code = (fn: () => unknown, c: string) =>
      assert.throws(fn, (e: unknown) => e instanceof VmPhysError && e.code === c);
    code(() => canAllocate(vm, 13), 'EORDER');
    code(() => canAllocate(vm, -1), 'EORDER');
    code(() => canAllocate(vm, 0, { pool: Pool.LAZYINIT }), 'EPOOL');
    code(() => canAllocate(vm, 0, { domain: 1 }), 'EDOMAIN');
    code(() => orderCounts(vm, { flind: 5 }), 'EFREELIST');
  });
});
