/**
 * The fragmentation formulas against hand-computed buddyinfo examples (expected numbers worked
 * out by hand and written here), including F = 0, B = 0, S_j > 0 and Linux's negative index;
 * and a property test: metrics from per-order counts equal metrics recomputed from an explicit
 * list of free blocks.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { VmPhysError } from '../src/core/errors.js';
import { buddyinfoLine, extfragLine, parseBuddyinfo, unusableLine } from '../src/lab/linux.js';
import { fragMilli, fragStats, unusableMilli } from '../src/lab/metrics.js';

describe('hand-computed examples', () => {
  // A classic Linux DMA zone: /proc/buddyinfo "Node 0, zone DMA 1 1 1 0 2 1 1 0 1 1 3".
  // F = 1+2+4+0+32+32+64+0+256+512+3072 = 3975, B = 12.
  // S_10..S_0 = 3, 7, 15, 30, 61, 123, 248, 496, 993, 1987, 3975.
  // F − S_j·2^j = 0, 1, 3, 7, 7, 39, 71, 135, 135, 391, 903 → ⌊·1000/3975⌋ = 0,0,0,1,1,9,17,33,33,98,227.
  const dma = '1 1 1 0 2 1 1 0 1 1 3';
  test('a classic DMA zone: F, B, S_j, U_j exactly', () => {
    const [z] = parseBuddyinfo(`Node 0, zone      DMA ${dma}\n`);
    assert.deepEqual(z, { node: 0, zone: 'DMA', counts: [1, 1, 1, 0, 2, 1, 1, 0, 1, 1, 3] });
    const s = fragStats(z.counts);
    assert.equal(s.freePages, 3975);
    assert.equal(s.freeBlocks, 12);
    assert.deepEqual(s.suitable, [3975, 1987, 993, 496, 248, 123, 61, 30, 15, 7, 3]);
    assert.equal(s.unusable[0], 0);
    assert.equal(s.unusable[1], 1 / 3975);
    assert.equal(s.unusable[9], 391 / 3975);
    assert.equal(s.unusable[10], 903 / 3975);
    assert.deepEqual(s.fragIndex, new Array(11).fill(-1));
    assert.equal(
      unusableLine(0, 'DMA', z.counts),
      'Node 0, zone      DMA 0.000 0.000 0.000 0.001 0.001 0.009 0.017 0.033 0.033 0.098 0.227 \n',
    );
    assert.equal(
      extfragLine(0, 'DMA', z.counts),
      'Node 0, zone      DMA -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 \n',
    );
    assert.equal(
      buddyinfoLine(0, 'DMA', z.counts),
      'Node 0, zone      DMA      1      1      1      0      2      1      1      0      1      1      3 \n',
    );
  });

  test('S_j = 0 at the top order: U = 1 and FI from the formula (Linux truncates)', () => {
    // n = [3, 2, 0, 1, 0]: F = 3 + 4 + 8 = 15, B = 6; S = [15, 6, 2, 1, 0].
    // U_1 = (15 − 12)/15 = 0.2; U_2 = U_3 = (15 − 8)/15 = 7/15 (0.466 truncated); U_4 = 1.
    // FI_4 = 1 − (1 + 15/16)/6 = 65/96 = 0.677…; Linux: 1000 − ⌊(1000 + ⌊15000/16⌋)/6⌋ =
    // 1000 − ⌊1937/6⌋ = 1000 − 322 = 678.
    const n = [3, 2, 0, 1, 0];
    const s = fragStats(n);
    assert.equal(s.freePages, 15);
    assert.equal(s.freeBlocks, 6);
    assert.deepEqual(s.suitable, [15, 6, 2, 1, 0]);
    assert.deepEqual(s.unusable, [0, 3 / 15, 7 / 15, 7 / 15, 1]);
    assert.deepEqual(s.fragIndex, [-1, -1, -1, -1, 1 - (1 + 15 / 16) / 6]);
    assert.ok(Math.abs(s.fragIndex[4] - 65 / 96) < 1e-15, `FI_4 ${s.fragIndex[4]} is 65/96`);
    assert.equal(fragMilli(15, 6, 0, 4), 678);
    assert.equal(unusableMilli(15, 2, 2), 466);
    assert.equal(unusableLine(0, 'Normal', n), 'Node 0, zone   Normal 0.000 0.200 0.466 0.466 1.000 \n');
    assert.equal(extfragLine(0, 'Normal', n), 'Node 0, zone   Normal -1.000 -1.000 -1.000 -1.000  0.678 \n');
  });

  test('F = 0 and B = 0: U = 1 (all free memory unusable), FI = 0', () => {
    const n = [0, 0, 0];
    const s = fragStats(n);
    assert.equal(s.freePages, 0);
    assert.equal(s.freeBlocks, 0);
    assert.deepEqual(s.suitable, [0, 0, 0]);
    assert.deepEqual(s.unusable, [1, 1, 1]);
    assert.deepEqual(s.fragIndex, [0, 0, 0]);
    assert.equal(unusableLine(3, 'DMA32', n), 'Node 3, zone    DMA32 1.000 1.000 1.000 \n');
    assert.equal(extfragLine(3, 'DMA32', n), 'Node 3, zone    DMA32  0.000  0.000  0.000 \n');
    assert.equal(buddyinfoLine(3, 'DMA32', n), 'Node 3, zone    DMA32      0      0      0 \n');
  });

  test('one small block: FI below 0, printed as Linux prints it', () => {
    // n = [0, 1, 0]: F = 2, B = 1, S = [2, 1, 0]. FI_2 = 1 − (1 + 2/4)/1 = −0.5; Linux:
    // 1000 − ⌊(1000 + 500)/1⌋ = −500, printed "%2d.%03d" as " 0.-500".
    const n = [0, 1, 0];
    const s = fragStats(n);
    assert.deepEqual(s.suitable, [2, 1, 0]);
    assert.deepEqual(s.unusable, [0, 0, 1]);
    assert.deepEqual(s.fragIndex, [-1, -1, -0.5]);
    assert.equal(fragMilli(2, 1, 0, 2), -500);
    assert.equal(extfragLine(0, 'Normal', n), 'Node 0, zone   Normal -1.000 -1.000  0.-500 \n');
  });

  test('only order-0 blocks: a fragmented zone', () => {
    // n = [8, 0, 0, 0]: F = 8, B = 8. S = [8, 0, 0, 0]. U_j = 1 for j ≥ 1.
    // FI_1 = 1 − (1 + 8/2)/8 = 3/8; FI_2 = 1 − (1 + 2)/8 = 5/8; FI_3 = 1 − (1 + 1)/8 = 3/4.
    // Linux: 1000 − ⌊(1000 + 4000)/8⌋ = 375; 1000 − ⌊3000/8⌋ = 625; 1000 − ⌊2000/8⌋ = 750.
    const n = [8, 0, 0, 0];
    const s = fragStats(n);
    assert.deepEqual(s.unusable, [0, 1, 1, 1]);
    assert.deepEqual(s.fragIndex, [-1, 3 / 8, 5 / 8, 3 / 4]);
    assert.equal(extfragLine(1, 'Normal', n), 'Node 1, zone   Normal -1.000  0.375  0.625  0.750 \n');
    assert.equal(unusableLine(1, 'Normal', n), 'Node 1, zone   Normal 0.000 1.000 1.000 1.000 \n');
  });

  test('parseBuddyinfo reads several zones and rejects a malformed line with a typed error', () => {
    const text =
      'Node 0, zone      DMA      1      1      1      0      2      1      1      0      1      1      3 \n' +
      'Node 0, zone    DMA32      6      5      4      3      2      1      0      0      0      1    407 \n' +
      'Node 1, zone   Normal  19361   5817    512     87      6      0      0      0      0      0      0 \n';
    const z = parseBuddyinfo(text);
    assert.deepEqual(
      z.map((x) => [x.node, x.zone, x.counts.length]),
      [
        [0, 'DMA', 11],
        [0, 'DMA32', 11],
        [1, 'Normal', 11],
      ],
    );
    // Round trip: the line format reproduces the text exactly.
    assert.equal(z.map((x) => buddyinfoLine(x.node, x.zone, x.counts)).join(''), text);
    assert.throws(
      () => parseBuddyinfo('Node 0, zone Normal 1 2 x\n'),
      (e: unknown) => e instanceof VmPhysError && e.code === 'EBUDDYINFO',
    );
  });
});

describe('metrics from counts equal metrics from the list of free blocks (property)', () => {
  const ORDERS = 13;
  test('F, B, S_j, U_j, FI_j and the Linux thousandths', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: ORDERS - 1 }), { maxLength: 300 }), (blockOrders) => {
        // The reference works on the blocks themselves, not on counts.
        const sizes = blockOrders.map((o) => 2 ** o);
        const F = sizes.reduce((a, b) => a + b, 0);
        const B = sizes.length;
        const counts = new Array(ORDERS).fill(0);
        for (const o of blockOrders) counts[o]++;
        const s = fragStats(counts);
        assert.equal(s.freePages, F);
        assert.equal(s.freeBlocks, B);
        for (let j = 0; j < ORDERS; j++) {
          const req = 2 ** j;
          const S = sizes.reduce((a, sz) => a + Math.floor(sz / req), 0);
          assert.equal(s.suitable[j], S);
          const usable = sizes.filter((sz) => sz >= req).reduce((a, b) => a + b, 0);
          assert.equal(s.unusable[j], F === 0 ? 1 : (F - usable) / F);
          const fi = B === 0 ? 0 : S > 0 ? -1 : 1 - (1 + F / req) / B;
          assert.equal(s.fragIndex[j], fi);
          // Linux's integer arithmetic, done in BigInt.
          const uM = F === 0 ? 1000n : (BigInt(F - usable) * 1000n) / BigInt(F);
          assert.equal(unusableMilli(F, S, j), Number(uM));
          const fM = B === 0 ? 0n : S > 0 ? -1000n : 1000n - (1000n + (BigInt(F) * 1000n) / BigInt(req)) / BigInt(B);
          assert.equal(fragMilli(F, B, S, j), Number(fM));
        }
      }),
      { numRuns: 300 },
    );
  });
});
