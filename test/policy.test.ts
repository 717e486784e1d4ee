/**
 * Policies: validation, FreeBSD's policy equal to the core (and the engine's own copy equal to
 * the core when its choices are FreeBSD's), every policy consistent after a trace replay with its
 * series ending on the vm.phys_free numbers, the steal counter, the read-only contig probe, and
 * the seeded fragmenter's reproducibility.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { firecrackerMap } from '../src/boot/ramspec.js';
import { buildMachine } from '../src/boot/startup.js';
import { allocContig } from '../src/core/contig.js';
import { VmPhysError } from '../src/core/errors.js';
import { Pool } from '../src/core/params.js';
import {
  FREEBSD,
  makePolicy,
  POLICIES,
  type Policy,
  PolicyEngine,
  policyByName,
  resetSteals,
  stealCounts,
} from '../src/core/policy.js';
import { forEachFreeBlock, orderAt, qHead, qNext } from '../src/core/queues.js';
import { restore, snapshot } from '../src/core/snapshot.js';
import { qIndex } from '../src/core/state.js';
import { physFree } from '../src/core/sysctl.js';
import { verify } from '../src/core/verify.js';
import type { VmPhys } from '../src/core/vmphys.js';
import { runPolicy } from '../src/lab/experiment.js';
import { fragment } from '../src/lab/fragment.js';
import { fragStats } from '../src/lab/metrics.js';
import { probeContig } from '../src/lab/probe.js';
import { PolicyReplayer } from '../src/lab/replayer.js';
import { FragSeries } from '../src/lab/series.js';
import { readTraceEvents, type TraceEvents } from '../src/trace/parse.js';
import { TraceReplayer } from '../src/trace/replay.js';

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) d = dirname(d);
  return d;
}
const FIXTURE = join(repoRoot(), 'test', 'fixtures', 'trace-small.csv');
const SMALL = {
  ram: [
    { start: 0x1000, end: 0x9f000 },
    { start: 0x100000, end: 0x8000000 },
  ],
};

/** Every free block as "domain/flind/pool/order:idx", in queue order. */
function blocks(vm: VmPhys): string[] {
  const s = vm.state;
  const out: string[] = [];
  for (let d = 0; d < vm.ndomains; d++)
    for (let f = 0; f < vm.nfreelists; f++)
      for (let p = 0; p < vm.nPool; p++)
        forEachFreeBlock(s, d, f, p, (idx, o) => out.push(`${d}/${f}/${p}/${o}:${idx}`));
  return out;
}

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

describe('policy definitions', () => {
  test('every named policy is valid, JSON round-trips and carries its name', () => {
    for (const [name, p] of Object.entries(POLICIES)) {
      assert.equal(p.name, name);
      assert.deepEqual(makePolicy(JSON.parse(JSON.stringify(p))), { ...p });
    }
  });

  test('bad policies are typed errors naming the field', () => {
    const bad: Record<string, unknown>[] = [
      { name: 'x', split: 'middle' },
      { name: 'x', choice: 'random' },
      { name: 'x', fallback: 1 },
      { name: 'x', maxOrder: 13 },
      { name: 'x', maxOrder: 8, lazyChunkOrder: 9 },
      { name: 'x', drainEvery: 0 },
      { name: 'x', pcpuBatch: 64, pcpuHigh: 10 },
      { name: 'x', colour: 'blue' },
      { name: '' },
    ];
    for (const b of bad)
      assert.throws(
        () => makePolicy(b),
        (e: unknown) => e instanceof VmPhysError && e.code === 'EPOLICY',
        JSON.stringify(b),
      );
    assert.throws(() => policyByName('nope'), /unknown policy 'nope'/);
  });
});

describe('FreeBSD policy and the engine agree with the core', () => {
  test('drain never: PolicyReplayer ends in exactly the state TraceReplayer ends in', () => {
    const a = buildMachine(SMALL, 'lazy');
    new TraceReplayer(a, { sampleEvery: 0 }).run(ev.op, ev.pfn, ev.order, ev.flags, 0, ev.count);
    const b = buildMachine(SMALL, 'lazy');
    const r = new PolicyReplayer(b, { ...FREEBSD, name: 'x', drain: 'never' });
    assert.equal(r.engine.core, true);
    r.run(ev.op, ev.pfn, ev.order, ev.flags, 0, ev.count);
    assert.deepEqual(blocks(b), blocks(a));
    assert.equal(physFree(b), physFree(a));
  });

  test("the engine's own allocator with FreeBSD's choices (split 'tail') matches the core block for block", () => {
    for (const drain of ['never', 'background', 'eager'] as const) {
      const a = buildMachine(SMALL, 'lazy');
      const ra = new PolicyReplayer(a, { ...FREEBSD, name: 'core', drain, drainEvery: 64, drainBudget: 2 });
      ra.run(ev.op, ev.pfn, ev.order, ev.flags, 0, ev.count);
      const b = buildMachine(SMALL, 'lazy');
      const rb = new PolicyReplayer(b, {
        ...FREEBSD,
        name: 'own',
        split: 'tail',
        drain,
        drainEvery: 64,
        drainBudget: 2,
      });
      assert.equal(rb.engine.core, false);
      rb.run(ev.op, ev.pfn, ev.order, ev.flags, 0, ev.count);
      assert.equal(ra.drainDoneAt, rb.drainDoneAt, drain);
      assert.deepEqual(blocks(b), blocks(a), drain);
      assert.deepEqual(stealCounts(b.state), stealCounts(a.state));
    }
  });
});

describe('every policy after a replay', () => {
  test('verify() passes, pages are conserved and the series ends on the vm.phys_free numbers', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.keys(POLICIES)),
        fc.integer({ min: 1, max: 700 }),
        fc.integer({ min: 200, max: 2000 }),
        (name, every, prefix) => {
          const vm = buildMachine(SMALL, 'lazy');
          const before = blocks(vm).length;
          assert.ok(before > 0);
          const rep = new PolicyReplayer(vm, policyByName(name));
          const series = new FragSeries(vm, { every });
          const n = Math.min(prefix, ev.count);
          series.replay(rep, ev.op, ev.pfn, ev.order, ev.flags, 0, n);
          series.finish(rep.events);
          const c = rep.counts();
          verify(vm, { heldPages: c.heldPages + c.cachedPages });
          const fromText = fragStats(countsFromPhysFree(physFree(vm), vm.nOrd));
          assert.deepEqual(series.stats(series.length - 1), fromText, name);
          const cols = series.columns();
          assert.equal(cols.event[cols.event.length - 1], n);
        },
      ),
      { numRuns: 30, seed: 7 },
    );
  });

  test("'lowest' takes the lowest address of the queue it allocates from", () => {
    const vm = buildMachine(SMALL, 'eager');
    const e = new PolicyEngine(vm.state, policyByName('lowest'));
    const s = vm.state;
    const held: number[] = [];
    for (let i = 0; i < 3000; i++) held.push(e.alloc(0, Pool.DEFAULT, i % 3));
    for (let i = 0; i < held.length; i += 2) e.free(held[i], Pool.DEFAULT, i % 3, 1);
    for (let o = 0; o < 3; o++) {
      const q = qIndex(s, 0, 0, Pool.DEFAULT, o);
      let min = Number.POSITIVE_INFINITY;
      for (let m = qHead(s, q); m >= 0; m = qNext(s, q, m)) min = Math.min(min, m);
      if (min === Number.POSITIVE_INFINITY) continue;
      assert.equal(e.alloc(0, Pool.DEFAULT, o), min, `order ${o}`);
      assert.equal(orderAt(s, min), vm.nOrd);
    }
  });

  test('maxOrder caps merging: no free block above it, before or after a replay', () => {
    const vm = buildMachine(SMALL, 'lazy');
    const rep = new PolicyReplayer(vm, policyByName('max-order-10'));
    const top = () => Math.max(...blocks(vm).map((b) => Number(b.split(':')[0].split('/')[3])));
    assert.equal(top(), 10);
    rep.run(ev.op, ev.pfn, ev.order, ev.flags, 0, ev.count);
    assert.ok(top() <= 10);
    verify(vm, { heldPages: rep.heldPages });
  });
});

describe('steal counter', () => {
  test('the first allocation of a lazy machine steals one max-order LAZYINIT block; eager machines never steal', () => {
    const vm = buildMachine(SMALL, 'lazy');
    assert.equal(
      stealCounts(vm.state)[Pool.LAZYINIT].reduce((a, b) => a + b, 0),
      0,
    );
    vm.allocPages(0, Pool.DEFAULT, 0);
    const t = stealCounts(vm.state);
    assert.equal(t[Pool.LAZYINIT][vm.maxOrder], 1);
    assert.equal(
      t.flat().reduce((a, b) => a + b, 0),
      1,
    );
    const eager = buildMachine(SMALL, 'eager');
    eager.allocPages(0, Pool.DEFAULT, 0);
    assert.equal(
      stealCounts(eager.state)
        .flat()
        .reduce((a, b) => a + b, 0),
      0,
    );
    // A DIRECT request on a machine whose free memory is all DEFAULT steals from DEFAULT.
    eager.allocPages(0, Pool.DIRECT, 3);
    assert.equal(
      stealCounts(eager.state)[Pool.DEFAULT].reduce((a, b) => a + b, 0),
      1,
    );
  });
});

describe('contig probe', () => {
  test('changes nothing and predicts alloc_contig (address and success)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 }),
        fc.integer({ min: 1, max: 9000 }),
        fc.integer({ min: 0, max: 10 }),
        fc.constantFrom(0, 2 ** 21, 2 ** 22),
        fc.constantFrom<'lazy' | 'eager'>('lazy', 'eager'),
        (seed, npages, alignLog, boundary, mode) => {
          const vm = buildMachine({ ram: firecrackerMap(64 * 2 ** 20).ram }, mode);
          const held: number[] = [];
          let x = seed;
          for (let i = 0; i < 200; i++) {
            x = (Math.imul(x, 1103515245) + 12345) >>> 0;
            const pa = vm.allocPages(0, x % 2 ? Pool.DEFAULT : Pool.DIRECT, x % 4);
            if (pa !== null && x % 3 !== 0) held.push(pa);
            else if (pa !== null) vm.freePages(pa, x % 2 ? Pool.DEFAULT : Pool.DIRECT, x % 4);
          }
          const alignment = 4096 * 2 ** alignLog;
          const before = snapshot(vm);
          const p = probeContig(vm, npages, alignment, boundary);
          assert.deepEqual(snapshot(vm), before, 'the probe wrote nothing');
          assert.ok(p.examined >= 0);
          const got = allocContig(vm, 0, npages, 0, 2 ** 53, alignment, boundary);
          assert.equal(p.ok, got !== null);
          if (got !== null) assert.equal(p.pa, got);
        },
      ),
      { numRuns: 40, seed: 3 },
    );
  });
});

describe('fragmenter', () => {
  test('reaches the target, and the same seed gives the same snapshot', () => {
    const run = (seed: number) => {
      const vm = buildMachine({ ram: firecrackerMap(96 * 2 ** 20).ram }, 'lazy');
      const r = fragment(vm, { target: 0.7, seed });
      return { r, snap: snapshot(vm) };
    };
    const a = run(5);
    const b = run(5);
    const c = run(6);
    assert.ok(a.r.unusable <= 0.7 && a.r.unusable > 0.5, `U_9 ${a.r.unusable}`);
    assert.deepEqual(a.snap, b.snap);
    assert.notDeepEqual(a.snap, c.snap);
  });

  test('from a restored snapshot each policy runs as on the original machine, and the policies differ', () => {
    const start = () => {
      const vm = buildMachine(SMALL, 'lazy');
      fragment(vm, { target: 0.9, seed: 3 });
      return vm;
    };
    const snap = snapshot(start());
    const names = ['freebsd', 'lowest', 'lifo', 'smallest-fit', 'pcpu'];
    const differ = ['lowest', 'lifo', 'pcpu'];
    const ends = new Map<string, string>();
    for (const n of names) {
      const restored = restore(snap, { shared: false });
      const r = runPolicy(ev, policyByName(n), { build: () => restored, every: 100 });
      assert.equal(r.policy.name, n);
      const direct = start();
      resetSteals(direct.state);
      const rep = new PolicyReplayer(direct, policyByName(n));
      rep.run(ev.op, ev.pfn, ev.order, ev.flags, 0, ev.count);
      assert.deepEqual(blocks(restored), blocks(direct), `${n}: restored and original machines end alike`);
      assert.deepEqual(r.steals, stealCounts(direct.state), `${n}: steal counters`);
      ends.set(n, blocks(restored).join(' '));
    }
    for (const n of differ) assert.notEqual(ends.get(n), ends.get('freebsd'), `${n} ends where freebsd does`);
  });

  test('from a restored fresh snapshot the pool fallback changes the steals', () => {
    const snap = snapshot(buildMachine(SMALL, 'eager'));
    const steals = (n: string) => {
      const r = runPolicy(ev, policyByName(n), { build: () => restore(snap, { shared: false }), every: 100 });
      return r.steals.flat().reduce((a, b) => a + b, 0);
    };
    const fb = steals('freebsd');
    const sf = steals('smallest-fit');
    assert.ok(fb > 0, 'the fixture makes FreeBSD steal');
    assert.notEqual(sf, fb);
  });

  test('runPolicy records the policy and its series', () => {
    const p: Policy = { ...FREEBSD, name: 'mine', choice: 'lifo' };
    const r = runPolicy(ev, p, { build: () => buildMachine(SMALL, 'lazy'), every: 100 });
    assert.deepEqual(r.policy, p);
    assert.equal(r.events.length, r.unusable.length);
    assert.ok(r.events.length >= ev.count / 100);
  });
});
