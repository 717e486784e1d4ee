/**
 * FragSeries over a real trace replay: sampling does not change the replay, samples land every N
 * events, and the series at the end of the replay equals the metrics computed from the
 * vm.phys_free text (a property over intervals and trace prefixes).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { buildMachine } from '../src/boot/startup.js';
import { physFree } from '../src/core/sysctl.js';
import { fragStatsOf } from '../src/lab/fragmentation.js';
import { fragStats } from '../src/lab/metrics.js';
import { FragSeries } from '../src/lab/series.js';
import { readTraceEvents, type TraceEvents } from '../src/trace/parse.js';
import { TraceReplayer } from '../src/trace/replay.js';

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) d = dirname(d);
  return d;
}
const FIXTURE = join(repoRoot(), 'test', 'fixtures', 'trace-small.csv');
/** Small enough that the fixture's allocations show in the counts: 128 MiB. */
const SMALL = {
  ram: [
    { start: 0x1000, end: 0x9f000 },
    { start: 0x100000, end: 0x8000000 },
  ],
};

/** Per-order counts summed over every queue, from the vm.phys_free text. */
function countsFromPhysFree(text: string, orders: number): number[] {
  const out = new Array(orders).fill(0);
  for (const line of text.split('\n')) {
    const m = /^\s+(\d+) \(\s*\d+K\)((?:\s+\|\s+\d+)+)$/.exec(line);
    if (!m) continue;
    for (const x of m[2].split('|').slice(1)) out[Number(m[1])] += Number(x.trim());
  }
  return out;
}

let ev: TraceEvents;
before(async () => {
  ev = await readTraceEvents(FIXTURE);
});

describe('FragSeries over a replay', () => {
  test('the fixture is there and long enough to matter', () => {
    assert.ok(ev.count >= 1900, `fixture has ${ev.count} events`);
  });

  test('sampling every N events changes nothing in the replay; samples at 0, N, 2N, … and the end', () => {
    const plainVm = buildMachine(SMALL, 'lazy');
    const plain = new TraceReplayer(plainVm, { sampleEvery: 0 });
    plain.run(ev.op, ev.pfn, ev.order, ev.flags, 0, ev.count);

    const vm = buildMachine(SMALL, 'lazy');
    const r = new TraceReplayer(vm, { sampleEvery: 0 });
    const s = new FragSeries(vm, { every: 128 });
    // Feed it in uneven pieces, as a streaming parser would.
    for (let i = 0; i < ev.count; i += 300)
      s.replay(r, ev.op, ev.pfn, ev.order, ev.flags, i, Math.min(ev.count, i + 300));
    s.finish(r.events);
    assert.deepEqual(r.counts(), plain.counts());
    assert.equal(physFree(vm), physFree(plainVm));
    const c = s.columns();
    const expected: number[] = [];
    for (let e = 0; e < ev.count; e += 128) expected.push(e);
    if (expected[expected.length - 1] !== ev.count) expected.push(ev.count);
    assert.deepEqual(Array.from(c.event), expected);
    // The columns agree with the per-order counts of each row.
    for (let i = 0; i < s.length; i++) {
      const st = s.stats(i);
      assert.equal(c.free[i], st.freePages);
      assert.equal(c.blocks[i], st.freeBlocks);
      assert.equal(c.suitable[i], st.suitable[9]);
      assert.equal(c.unusable[i], st.unusable[9]);
      assert.equal(c.fragIndex[i], st.fragIndex[9]);
    }
    // The replay allocates: the free page count moves.
    assert.ok(Math.min(...c.free) < c.free[0], 'free pages drop during the replay');
    const sum = s.summary();
    assert.equal(sum.samples, s.length);
    assert.equal(sum.minFree, Math.min(...c.free));
  });

  test('property: the series at the end equals the metrics computed from vm.phys_free', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 700 }),
        fc.integer({ min: 0, max: 2000 }),
        fc.constantFrom('lazy' as const, 'eager' as const),
        (every, prefix, mode) => {
          const n = Math.min(prefix, ev.count);
          const vm = buildMachine(SMALL, mode);
          const r = new TraceReplayer(vm, { sampleEvery: 0 });
          const s = new FragSeries(vm, { every });
          s.replay(r, ev.op, ev.pfn, ev.order, ev.flags, 0, n);
          s.finish(r.events);
          assert.equal(s.length, Math.ceil(n / every) + 1);
          const last = s.stats(s.length - 1);
          assert.deepEqual(last, fragStats(countsFromPhysFree(physFree(vm), vm.nOrd)));
          assert.deepEqual(last, fragStatsOf(vm));
        },
      ),
      { numRuns: 20 },
    );
  });

  test('a pool filter counts only that pool; bad options throw', () => {
    const vm = buildMachine(SMALL, 'lazy');
    const s = new FragSeries(vm, { every: 10, filter: { pool: 0 }, order: 12 });
    s.sample(0);
    assert.deepEqual(s.stats(0), fragStatsOf(vm, { pool: 0 }));
    assert.equal(s.columns().suitable[0], fragStatsOf(vm, { pool: 0 }).suitable[12]);
    assert.throws(() => new FragSeries(vm, { every: 0 }), RangeError);
    assert.throws(() => new FragSeries(vm, { order: 13 }), RangeError);
    assert.throws(() => s.stats(1), RangeError);
  });
});
