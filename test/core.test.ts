/**
 * Unit tests per operation of the core allocator, the typed errors (each leaves every buffer
 * byte-identical), verify() catching corrupted state, and snapshots.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { allocContig } from '../src/core/contig.js';
import { VmPhysError } from '../src/core/errors.js';
import { CTL } from '../src/core/layout.js';
import { metaByte } from '../src/core/pages.js';
import { arm64, Pool } from '../src/core/params.js';
import { nextOf, nQueues, qAddTail, qCount, qHead, qRem, qTail } from '../src/core/queues.js';
import { segFlind } from '../src/core/segments.js';
import { restore, snapshot } from '../src/core/snapshot.js';
import { qIndex } from '../src/core/state.js';
import { physFree } from '../src/core/sysctl.js';
import { availPages, verify } from '../src/core/verify.js';
import { type StartupMode, VmPhys } from '../src/core/vmphys.js';

/** Every queue's head (read through queues.ts). */
function heads(vm: VmPhys): number[] {
  return Array.from({ length: nQueues(vm.state) }, (_, q) => qHead(vm.state, q));
}
/** Every queue's head, tail and count. */
function queueWords(vm: VmPhys): number[][] {
  const s = vm.state;
  return Array.from({ length: nQueues(s) }, (_, q) => [qHead(s, q), qTail(s, q), qCount(s, q)]);
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** A Firecracker-shaped amd64 machine of `ram` bytes. */
function machine(mode: StartupMode, ram = 128 * MiB, shared = false): VmPhys {
  const vm = new VmPhys({ shared });
  vm.addSeg(0x1000, 0x9f000);
  vm.addSeg(0x100000, ram);
  vm.init();
  vm.startup(mode);
  return vm;
}

function stateBytes(vm: VmPhys): string {
  // Bytes of every buffer, hashed cheaply but completely (FNV over all bytes).
  const s = vm.state;
  const parts = [new Uint8Array(s.c.buffer as ArrayBuffer), s.meta, new Uint8Array(s.link.buffer as ArrayBuffer)];
  let h = 0x811c9dc5;
  let n = 0;
  for (const p of parts) {
    for (let i = 0; i < p.length; i++) {
      h ^= p[i];
      h = Math.imul(h, 0x01000193);
    }
    n += p.length;
  }
  return `${n}:${h >>> 0}`;
}

describe('segments and init', () => {
  test('add_seg splits at 16 MiB and 4 GiB; init merges aliased lists', () => {
    const vm = new VmPhys({ shared: false });
    vm.addSeg(0x100000, 0x140000000);
    vm.init();
    // No DMA32 list (less than 64 GiB above 4 GiB): [16M,4G) and [4G,5G) share DEFAULT and merge.
    assert.equal(vm.nsegs, 2);
    assert.deepEqual([...vm.segRange(0), ...vm.segRange(1)], [0x100000, 16 * MiB, 16 * MiB, 5 * GiB]);
    assert.equal(vm.nfreelists, 2);
    assert.equal(vm.flindOf(0), 0);
    assert.equal(vm.flindOf(1), 0);
    assert.equal(vm.flindOf(2), 1);
  });
  test('arm64 has no LOWMEM list and creates DMA32 below 4 GiB', () => {
    const vm = new VmPhys({ profile: arm64, shared: false });
    vm.addSeg(0x80000000, 0x180000000);
    vm.init();
    assert.equal(vm.nsegs, 2);
    assert.equal(vm.nfreelists, 2);
    assert.equal(segFlind(vm.state, 0), 1);
    assert.equal(segFlind(vm.state, 1), 0);
  });
  test('NUMA affinity splits segments and domain_match answers as FreeBSD', () => {
    const vm = new VmPhys({ shared: false });
    vm.addAffinity(0, 0x20000000, 0);
    vm.addAffinity(0x20000000, 0x40000000, 1);
    vm.addSeg(0x100000, 0x40000000);
    vm.init();
    assert.equal(vm.ndomains, 2);
    assert.deepEqual(
      Array.from({ length: vm.nsegs }, (_, i) => vm.segDomain(i)),
      [0, 0, 1],
    );
    assert.equal(vm.domainMatch(-1, 0x30000000, 0x30001000), 1);
    assert.equal(vm.domainMatch(1, 0, 0x20000000), 1); // inclusive end touches domain 1
    assert.equal(vm.domainMatch(-1, 0, 0x1000), 0);
  });
  test('a segment without affinity coverage is rejected', () => {
    const vm = new VmPhys({ shared: false });
    vm.addAffinity(0x100000, 0x200000, 0);
    vm.addAffinity(0x200000, 0x300000, 1);
    assert.throws(() => vm.addSeg(0x1000, 0x9f000), { code: 'EAFFINITY' });
  });
});

describe('allocation and freeing', () => {
  test('index API: allocPagesIdx/freeIdx agree with allocPages/freePages, in both modes', () => {
    for (const mode of ['eager', 'lazy'] as const) {
      const a = machine(mode);
      const b = machine(mode);
      const held: number[] = [];
      for (let i = 0; i < 200; i++) {
        const order = i % 7;
        const pool = 1 + (i & 1);
        const pa = a.allocPages(0, pool, order);
        const idx = b.allocPagesIdx(0, pool, order);
        assert.equal(pa, idx < 0 ? null : b.paOf(idx), `allocation ${i}`);
        held.push(idx, pool, order);
      }
      for (let i = held.length - 3; i >= 0; i -= 6) {
        a.freePages(b.paOf(held[i]), held[i + 1], held[i + 2]);
        b.freeIdx(held[i], held[i + 1], held[i + 2]);
      }
      assert.equal(physFree(b), physFree(a));
      // Identical queues and page state (the stats words hold timings, which differ).
      assert.deepEqual(b.state.meta, a.state.meta);
      // The validated API also keeps ownership records (owner.ts) in the first link word of
      // pages off the queues (≤ -2 while allocated, -1 once freed); the index API writes none.
      const la = Int32Array.from(a.state.link);
      const lb = Int32Array.from(b.state.link);
      for (let i = 0; i < la.length; i += 2) if (la[i] < 0 && la[i] !== lb[i]) la[i] = lb[i];
      assert.deepEqual(lb, la);
      assert.deepEqual(queueWords(b), queueWords(a));
      verify(b);
    }
  });

  test('eager boot: best fit from DEFAULT, split remainders, free merges back', () => {
    const vm = machine('eager');
    const before = physFree(vm);
    const total = vm.counts().total;
    const a = vm.allocPages(0, Pool.DEFAULT, 0);
    assert.notEqual(a, null);
    assert.equal(vm.counts().total, total - 1);
    verify(vm);
    vm.freePages(a as number, Pool.DEFAULT, 0);
    assert.equal(vm.counts().total, total);
    assert.equal(physFree(vm), before, 'freeing the only allocation restores the exact free lists');
    verify(vm);
  });
  test('lazy boot: first allocation steals the largest lazy block and finishes it', () => {
    const vm = machine('lazy');
    assert.equal(vm.counts().lazyinit, vm.counts().total);
    const a = vm.allocPages(0, Pool.DIRECT, 0) as number;
    assert.equal(a % (16 * MiB), 0, 'a max-order block head');
    const c = vm.counts();
    assert.equal(c.direct, 4095, 'the rest of the 4096-page block is split into DIRECT');
    assert.ok(vm.state.c.stats[3] >= 4095, 'on-demand pages counted');
    verify(vm);
  });
  test('npages returns distinct pages and puts the unused tail back in the pool', () => {
    const vm = machine('eager');
    const out: number[] = [];
    const n = vm.allocNpages(0, Pool.DEFAULT, 100, out);
    assert.equal(n, 100);
    assert.equal(new Set(out.slice(0, n)).size, 100);
    verify(vm, { heldPages: 100 });
    for (const pa of out.slice(0, n)) vm.freePages(pa, Pool.DEFAULT, 0);
    verify(vm, { heldPages: 0 });
  });
  test('contig honours low/high/alignment/boundary and free_contig gives it back', () => {
    const vm = machine('lazy');
    const total = vm.counts().total;
    const pa = allocContig(vm, 0, 300, 32 * MiB, 96 * MiB, 1 * MiB, 4 * MiB) as number;
    assert.ok(pa >= 32 * MiB && pa + 300 * 4096 <= 96 * MiB);
    assert.equal(pa % MiB, 0);
    assert.equal(Math.floor(pa / (4 * MiB)), Math.floor((pa + 300 * 4096 - 1) / (4 * MiB)));
    assert.equal(vm.counts().total, total - 300);
    verify(vm, { heldPages: 300 });
    vm.freeContig(pa, Pool.DEFAULT, 300);
    assert.equal(vm.counts().total, total);
    verify(vm, { heldPages: 0 });
    assert.equal(allocContig(vm, 0, 1, 5, 5, 4096, 0), null, 'low >= high');
    assert.equal(allocContig(vm, 0, 1 << 20, 0, 2 ** 60, 4096, 0), null, 'more pages than exist');
  });
  test('multi-chunk contig uses find_freelist_contig over lazy heads', () => {
    const vm = machine('lazy', 1 * GiB);
    const pa = allocContig(vm, 0, 8192, 0, 2 ** 40, 32 * MiB, 0) as number;
    assert.equal(pa % (32 * MiB), 0);
    verify(vm, { heldPages: 8192 });
  });
  test('unfree_page drains the domain, removes exactly one page, and says false for a used page', () => {
    const vm = machine('lazy');
    const total = vm.counts().total;
    assert.equal(vm.unfreePage(0x5000), true);
    assert.equal(vm.counts().lazyinit, 0, 'the lazy pool was drained first');
    assert.equal(vm.counts().total, total - 1);
    assert.equal(vm.unfreePage(0x5000), false);
    verify(vm, { heldPages: 1 });
  });
  test('find_range drains and returns page bounds', () => {
    const vm = machine('lazy');
    const r = vm.findRange(0, 0, 4, 0x2000, 0x9000);
    assert.deepEqual(r, { segind: 0, start: 0x2000, end: 0x9000 });
    assert.equal(vm.counts().lazyinit, 0);
    assert.equal(vm.findRange(0, 0, 1 << 20, 0, 2 ** 40), null);
  });
  test('lazy and eager boots enqueue the same number of pages; drain empties LAZYINIT', () => {
    const lazy = machine('lazy', 1 * GiB);
    const eager = machine('eager', 1 * GiB);
    assert.equal(lazy.counts().total, eager.counts().total);
    assert.equal(lazy.counts().total, availPages(lazy));
    lazy.drain();
    assert.equal(lazy.counts().lazyinit, 0);
    assert.equal(lazy.drained, true);
    assert.equal(physFree(lazy), physFree(eager), 'after a full drain the lists equal an eager boot');
    verify(lazy, { deep: true, heldPages: 0 });
  });
  test('drainStep is incremental and ends with the cursor moved', () => {
    const vm = machine('lazy', 1 * GiB);
    let steps = 0;
    while (!vm.drainStep(4)) steps++;
    assert.ok(steps > 10);
    assert.equal(vm.counts().lazyinit, 0);
    assert.equal(vm.defaultFreePool, Pool.DEFAULT);
  });
});

describe('page indices beyond 2^30 (machines over 4 TiB)', () => {
  test('queue links of pages indexed ≥ 2^30 stay exact: freed pages come back, verify passes', () => {
    const TiB = 2 ** 40;
    const vm = new VmPhys({ shared: false });
    vm.addAffinity(0x100000, 4 * TiB, 0);
    vm.addAffinity(4 * TiB, 4 * TiB + 256 * MiB, 1);
    vm.addSeg(0x100000, 4 * TiB + 256 * MiB);
    vm.init();
    vm.startup('lazy');
    const pas: number[] = [];
    for (let i = 0; i < 600; i++) pas.push(vm.allocPages(1, Pool.DEFAULT, 0) as number);
    const hi = pas.filter((p) => vm.paddrToPage(p) >= 2 ** 30 + 8).slice(0, 6);
    assert.equal(hi.length, 6, 'domain 1 pages lie above index 2^30');
    const freed = [hi[0], hi[2], hi[4]];
    for (const p of freed) vm.freePages(p, Pool.DEFAULT, 0);
    const again = [0, 1, 2].map(() => vm.allocPages(1, Pool.DEFAULT, 0) as number);
    assert.deepEqual(again.slice().sort(), freed.slice().sort(), 'the three freed pages are handed out again');
    verify(vm);
  });
});

describe('lazy start-up touches metadata in proportion to segments, not RAM', () => {
  test('a sparse 1 TiB machine boots lazily with a few hundred initialised pages', () => {
    const vm = new VmPhys({ shared: true });
    vm.addSeg(0x1000, 0x9f000);
    vm.addSeg(0x100000, 0xc0000000);
    for (let i = 0; i < 8; i++) vm.addSeg(2 ** 40 + i * 2 ** 41, 2 ** 40 + i * 2 ** 41 + 128 * GiB - 0x3000);
    vm.init();
    vm.startup('lazy');
    const initialised = vm.state.c.stats[0];
    assert.ok(initialised < 1000, `initialised ${initialised} pages at start-up`);
    assert.ok(vm.counts().total > 2 ** 28);
    const r = verify(vm, { deep: false });
    assert.ok(r.explicitHeads < 1000, `${r.explicitHeads} explicit heads`);
    // The first allocation is served and finishes exactly one block.
    const a = vm.allocPages(0, Pool.DEFAULT, 0);
    assert.notEqual(a, null);
    assert.ok(vm.state.c.stats[0] - initialised <= 4096);
  });
});

describe('errors leave the allocator byte-identical', () => {
  const cases: Array<[string, string, (vm: VmPhys, live: number) => unknown]> = [
    [
      'double free of an allocated block',
      'EDOUBLEFREE',
      (vm, live) => {
        vm.freePages(live, Pool.DEFAULT, 0);
        vm.freePages(live, Pool.DEFAULT, 0);
      },
    ],
    ['free inside a free block', 'EDOUBLEFREE', (vm, live) => vm.freePages(live + 4096 * 2, Pool.DEFAULT, 0)],
    ['free of never-initialised lazy memory', 'EDOUBLEFREE', (vm) => vm.freePages(100 * MiB, Pool.DEFAULT, 0)],
    ['misaligned address for the order', 'EALIGN', (vm, live) => vm.freePages(live + 4096, Pool.DEFAULT, 3)],
    ['address not page aligned', 'EALIGN', (vm, live) => vm.freePages(live + 1, Pool.DEFAULT, 0)],
    ['order out of range', 'EORDER', (vm) => vm.allocPages(0, Pool.DEFAULT, 13)],
    ['negative order', 'EORDER', (vm, live) => vm.freePages(live, Pool.DEFAULT, -1)],
    ['LAZYINIT named by a caller (alloc)', 'EPOOL', (vm) => vm.allocPages(0, Pool.LAZYINIT, 0)],
    ['LAZYINIT named by a caller (free)', 'EPOOL', (vm, live) => vm.freePages(live, Pool.LAZYINIT, 0)],
    ['unknown pool', 'EPOOL', (vm) => vm.allocPages(0, 7, 0)],
    ['address outside every segment', 'ENOSEG', (vm) => vm.freePages(0xa0000, Pool.DEFAULT, 0)],
    ['block crossing the segment end', 'ESPAN', (vm) => vm.freePages(0x9e000, Pool.DEFAULT, 1)],
    ['alignment not a power of two', 'EPOW2', (vm) => allocContig(vm, 0, 1, 0, 2 ** 40, 3 * 4096, 0)],
    ['boundary not a power of two', 'EPOW2', (vm) => allocContig(vm, 0, 1, 0, 2 ** 40, 4096, 12345)],
    ['domain out of range', 'EDOMAIN', (vm) => vm.allocPages(1, Pool.DEFAULT, 0)],
    ['npages out of range', 'ENPAGES', (vm) => vm.allocNpages(0, Pool.DEFAULT, 5000, new Array(5000))],
    ['unfree outside every segment', 'ENOSEG', (vm) => vm.unfreePage(0xa0000)],
    ['segment after init', 'ESTATE', (vm) => vm.addSeg(0x10000000, 0x20000000)],
  ];
  for (const [what, code, fn] of cases) {
    test(`${what} → ${code}`, () => {
      const vm = machine('lazy');
      const live = vm.allocPages(0, Pool.DEFAULT, 0) as number;
      if (code === 'EDOUBLEFREE' && what.startsWith('double')) {
        // The first free is legitimate; compare the state after it.
        vm.freePages(live, Pool.DEFAULT, 0);
        const before = stateBytes(vm);
        assert.throws(
          () => vm.freePages(live, Pool.DEFAULT, 0),
          (e: unknown) => e instanceof VmPhysError && e.code === code,
        );
        assert.equal(stateBytes(vm), before);
        return;
      }
      const before = stateBytes(vm);
      assert.throws(
        () => fn(vm, live),
        (e: unknown) => e instanceof VmPhysError && e.code === code && e.message.length > 10,
      );
      assert.equal(stateBytes(vm), before, 'state unchanged');
      verify(vm, { heldPages: 1 });
    });
  }
});

describe('verify catches corrupted state', () => {
  const corruptions: Array<[string, string, (vm: VmPhys) => void]> = [
    [
      'a queue count off by one',
      '1',
      (vm) => {
        const q = qIndex(vm.state, 0, 0, Pool.DEFAULT, 0);
        vm.state.q[vm.state.oCount + q]++;
      },
    ],
    [
      'a head with the wrong order',
      '2',
      (vm) => {
        const q = heads(vm).findIndex((h, i) => h >= 0 && i % 13 > 0);
        const h = qHead(vm.state, q);
        const meta = vm.state.meta;
        meta[h] = (meta[h] & 0xf0) | ((meta[h] & 0x0f) - 1);
      },
    ],
    [
      'a head with the wrong pool',
      '3',
      (vm) => {
        const q = heads(vm).findIndex((h) => h >= 0);
        const h = qHead(vm.state, q);
        vm.state.meta[h] ^= 0x30;
      },
    ],
    [
      'a broken back link',
      '1',
      (vm) => {
        const q = heads(vm).findIndex((h, i) => h >= 0 && qCount(vm.state, i) > 1);
        const second = nextOf(vm.state, qHead(vm.state, q));
        vm.state.link[2 * second + 1] = -1;
      },
    ],
    [
      'a stray free-head mark',
      '2',
      (vm) => {
        const a = vm.allocPages(0, Pool.DEFAULT, 0) as number;
        vm.state.meta[vm.paddrToPage(a)] = metaByte(Pool.DEFAULT, 0);
      },
    ],
    [
      'a lazy queue left after the drain',
      '11',
      (vm) => {
        vm.state.c.ctl[CTL.INITDONE] = 1;
        vm.state.c.ctl[CTL.DEFAULT_FREEPOOL] = Pool.DEFAULT;
        const q = qIndex(vm.state, 0, 0, Pool.DEFAULT, 12);
        // Move one DEFAULT max block into the lazy queue by hand.
        const h = qHead(vm.state, q);
        qRem(vm.state, q, h);
        qAddTail(vm.state, qIndex(vm.state, 0, 0, Pool.LAZYINIT, 12), h, 12, Pool.LAZYINIT);
      },
    ],
  ];
  for (const [what, inv, corrupt] of corruptions) {
    test(what, () => {
      const vm = machine('eager');
      verify(vm, { deep: true });
      corrupt(vm);
      assert.throws(
        () => verify(vm, { deep: true }),
        (e: unknown) =>
          e instanceof VmPhysError && e.code === 'EINVARIANT' && (e as { invariant?: string }).invariant === inv,
      );
    });
  }
  test('conservation: a leaked page is reported', () => {
    const vm = machine('eager');
    vm.allocPages(0, Pool.DEFAULT, 0);
    assert.throws(() => verify(vm, { heldPages: 0 }), /invariant 7/);
    verify(vm, { heldPages: 1 });
  });
});

describe('snapshots', () => {
  test('restore continues with the same addresses as the original', () => {
    const vm = machine('lazy', 1 * GiB);
    const held: number[] = [];
    for (let i = 0; i < 50; i++) held.push(vm.allocPages(0, i % 2 ? Pool.DEFAULT : Pool.DIRECT, i % 5) as number);
    const bytes = snapshot(vm);
    const copy = restore(bytes, { shared: false });
    verify(copy, { deep: false });
    for (let i = 0; i < 200; i++) {
      const o = (i * 7) % 9;
      assert.equal(copy.allocPages(0, Pool.DEFAULT, o), vm.allocPages(0, Pool.DEFAULT, o));
    }
    copy.drain();
    vm.drain();
    assert.equal(physFree(copy), physFree(vm));
  });
  test('the snapshot of a lazy 1 GiB boot is small (untouched metadata is not stored)', () => {
    const bytes = snapshot(machine('lazy', 1 * GiB));
    assert.ok(bytes.length < 2 * MiB, `${bytes.length} bytes`);
  });
  test('corrupted, truncated and foreign snapshots are rejected', () => {
    const bytes = snapshot(machine('eager'));
    const flipped = bytes.slice();
    flipped[bytes.length >> 1] ^= 1;
    assert.throws(() => restore(flipped), { code: 'ESNAPSHOT', message: /checksum/ });
    assert.throws(() => restore(bytes.subarray(0, bytes.length - 10)), { code: 'ESNAPSHOT' });
    const foreign = bytes.slice();
    foreign[0] = 0x58;
    assert.throws(() => restore(foreign), { code: 'ESNAPSHOT', message: /magic/ });
    const version = bytes.slice();
    version[8] = 9;
    assert.throws(() => restore(version), { code: 'ESNAPSHOT', message: /version/ });
  });
});

describe('idle drain', () => {
  test('drains in slices, yields to the event loop between them, and finishes the lazy pool', async () => {
    const { startIdleDrain } = await import('../src/core/idle-drain.js');
    const vm = machine('lazy', 1 * GiB);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const stats = await startIdleDrain(vm, { sliceMs: 0.05 }).done;
    clearInterval(timer);
    assert.ok(stats.slices > 1, `${stats.slices} slices`);
    assert.ok(ticks > 0, 'other timers ran while the drain was going on');
    assert.equal(vm.counts().lazyinit, 0);
    assert.equal(vm.drained, true);
    verify(vm, { heldPages: 0 });
  });
  test('stop() ends the drain early and it can be resumed', async () => {
    const { startIdleDrain } = await import('../src/core/idle-drain.js');
    const vm = machine('lazy', 1 * GiB);
    const d = startIdleDrain(vm, { sliceMs: 0.01 });
    d.stop();
    const s = await d.done;
    assert.equal(s.stopped, true);
    assert.ok(vm.counts().lazyinit > 0);
    await startIdleDrain(vm).done;
    assert.equal(vm.counts().lazyinit, 0);
  });
});

describe('snapshot restored in another worker', () => {
  test('a worker restores the bytes and makes the same choices as the original', async () => {
    const { Worker } = await import('node:worker_threads');
    const vm = machine('lazy', 1 * GiB);
    for (let i = 0; i < 20; i++) vm.allocPages(0, Pool.DIRECT, i % 4);
    const bytes = snapshot(vm);
    const snapUrl = new URL('../src/core/snapshot.js', import.meta.url).href;
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.snapUrl).then(({ restore }) => {
        const vm = restore(new Uint8Array(workerData.bytes), { shared: true });
        const out = [];
        for (let i = 0; i < 100; i++) out.push(vm.allocPages(0, 1, (i * 5) % 7));
        vm.drain();
        parentPort.postMessage({ out, counts: vm.counts() });
      });`;
    const w = new Worker(code, { eval: true, workerData: { bytes, snapUrl } });
    const msg = await new Promise<{ out: Array<number | null>; counts: unknown }>((res, rej) => {
      w.once('message', res);
      w.once('error', rej);
    });
    await w.terminate();
    const expected: Array<number | null> = [];
    for (let i = 0; i < 100; i++) expected.push(vm.allocPages(0, Pool.DEFAULT, (i * 5) % 7));
    vm.drain();
    assert.deepEqual(msg.out, expected);
    assert.deepEqual(msg.counts, vm.counts());
  });
});
