/**
 * Tests of the workers layer: attach over shared buffers, the locked facade, the vmlazyinit
 * drainer (single and parallel), per-CPU page caches, and the stress engine's end-of-run checks.
 * Owned by the workers layer; only it may edit this file.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { StateError } from '../src/core/errors.js';
import { CTL, lockIndex } from '../src/core/layout.js';
import { handleIdx, handleOrder, lazyPut, lazyTake } from '../src/core/lazy.js';
import { finishInit, metaOrder } from '../src/core/pages.js';
import { Pool } from '../src/core/params.js';
import { nQueues, qCount } from '../src/core/queues.js';
import { physFree } from '../src/core/sysctl.js';
import { verify } from '../src/core/verify.js';
import { VmPhys } from '../src/core/vmphys.js';
import { attach, handleOf } from '../src/workers/attach.js';
import { drainAll, drainDomainLocked, drainerMaxHoldUs, newDrainStats, startDrainers } from '../src/workers/drainer.js';
import { DomainLocks, MB, trackWorker } from '../src/workers/lock.js';
import { LockedVmPhys } from '../src/workers/locked.js';
import { PcpuCache } from '../src/workers/pcpu.js';
import { SchedProbe, type ThreadPriority } from '../src/workers/sched.js';
import { checkHeld, runStress, type StressWorkerResult, stressMachine } from '../src/workers/stress-run.js';

const PROBE = new URL('../src/workers/probe-worker.js', import.meta.url);
const MiB = 1024 * 1024;

function lazyTotal(vm: VmPhys): number {
  return vm.counts().lazyinit;
}

describe('attach', () => {
  test('a worker attached to the handle sees the same state, and its changes are ours', async () => {
    const vm = stressMachine(256 * MiB);
    const a = vm.allocPages(0, Pool.DEFAULT, 3);
    assert.notEqual(a, null);
    const before = vm.counts();
    const h = handleOf(vm);
    const w = new Worker(PROBE, { workerData: { action: 'inspect', handle: h } });
    trackWorker(h.sync, w, vm.state.c.locks);
    const exited = once(w, 'exit');
    const [m] = (await once(w, 'message')) as [{ text: string; counts: typeof before; pa: number }];
    await exited;
    assert.deepEqual(m.counts, before);
    assert.equal(vm.counts().total, before.total - 1, 'the worker allocated one page in our memory');
    vm.freePages(m.pa, Pool.DEFAULT, 0); // it is an allocated page here too
    vm.freePages(a as number, Pool.DEFAULT, 3);
    assert.equal(vm.counts().total, before.total + 8);
    verify(vm, { heldPages: 0 });
  });

  test('the worker sees exactly our vm.phys_free text', async () => {
    const vm = stressMachine(128 * MiB);
    vm.allocPages(0, Pool.DIRECT, 5);
    const text = physFree(vm);
    const h = handleOf(vm);
    const w = new Worker(PROBE, { workerData: { action: 'inspect', handle: h } });
    const [m] = (await once(w, 'message')) as [{ text: string }];
    assert.equal(m.text, text);
  });

  test('attach in the same thread shares memory; handleOf refuses before init and unshared machines', () => {
    const vm = stressMachine(64 * MiB);
    const twin = attach(handleOf(vm));
    const pa = twin.allocPages(0, Pool.DEFAULT, 0);
    assert.notEqual(pa, null);
    vm.freePages(pa as number, Pool.DEFAULT, 0);
    assert.deepEqual(twin.counts(), vm.counts());
    const fresh = new VmPhys();
    fresh.addSeg(0x100000, 64 * MiB);
    assert.throws(() => handleOf(fresh), StateError);
    const unshared = new VmPhys({ shared: false });
    unshared.addSeg(0x100000, 64 * MiB);
    unshared.init();
    assert.throws(() => handleOf(unshared), StateError);
  });
});

describe('LockedVmPhys', () => {
  test('find_range and unfree drain the domain with the lock dropped per block', () => {
    const vm = stressMachine(512 * MiB);
    const L = new LockedVmPhys(vm);
    assert.ok(lazyTotal(vm) > 0);
    const total = vm.counts().total;
    const r = L.findRange(0, 0, 16, 0, 2 ** 40);
    assert.ok(r !== null);
    assert.equal(lazyTotal(vm), 0);
    assert.equal(vm.state.c.ctl[CTL.INITDONE], 1);
    assert.equal(vm.drained, false, 'only vm_phys_lazy_init moves vm_default_freepool');
    assert.equal(vm.counts().total, total);
    assert.equal(L.locks.acquires > 2, true);
    assert.equal(L.unfreePage(0x4000000), true);
    assert.equal(L.unfreePage(0x4000000), false);
    assert.equal(vm.counts().total, total - 1);
    verify(vm, { heldPages: 1 });
  });

  test('every operation leaves the lock free, also when the core throws', () => {
    const vm = stressMachine(64 * MiB);
    const L = new LockedVmPhys(vm);
    const pa = L.allocPages(0, Pool.DEFAULT, 2) as number;
    assert.throws(() => L.freePages(pa + 4096, Pool.DEFAULT, 2), /aligned/);
    assert.equal(L.locks.owner(0), 0);
    assert.throws(() => L.allocPages(3, Pool.DEFAULT, 0), /domain/);
    assert.throws(() => L.freePages(0x7fff0000000, Pool.DEFAULT, 0));
    assert.equal(L.locks.owner(0), 0);
    L.freePages(pa, Pool.DEFAULT, 2);
    const c = L.allocContig(0, 5, 0, 2 ** 40, 4096, 0) as number;
    L.freeContig(c, Pool.DEFAULT, 5);
    const out = new Float64Array(8);
    assert.equal(L.allocNpages(0, Pool.DIRECT, 8, out), 8);
    for (const a of out) L.freePages(a, Pool.DIRECT, 0);
    assert.deepEqual(L.counts(), vm.counts());
    verify(vm, { heldPages: 0 });
  });
});

function twoDomains(): VmPhys {
  const vm = new VmPhys();
  vm.addAffinity(0, 512 * MiB, 0);
  vm.addAffinity(512 * MiB, 1024 * MiB, 1);
  vm.addSeg(0x1000, 0x9f000);
  vm.addSeg(MiB, 1024 * MiB);
  vm.init();
  vm.startup('lazy');
  return vm;
}

describe('two NUMA domains', () => {
  test('operations take the lock of their domain (the argument, or the address segment)', () => {
    const vm = twoDomains();
    assert.equal(vm.ndomains, 2);
    const L = new LockedVmPhys(vm);
    const other = new LockedVmPhys(vm).locks; // same thread: taking a held lock is a LockError
    const pa1 = L.allocPages(1, Pool.DEFAULT, 0) as number;
    assert.equal(L.domainOfPa(pa1), 1);
    other.lock(1);
    assert.throws(() => L.allocPages(1, Pool.DEFAULT, 0), /not reentrant/);
    assert.throws(() => L.freePages(pa1, Pool.DEFAULT, 0), /not reentrant/);
    const pa0 = L.allocPages(0, Pool.DEFAULT, 0) as number; // domain 0 is free
    L.freePages(pa0, Pool.DEFAULT, 0);
    other.unlock(1);
    L.freePages(pa1, Pool.DEFAULT, 0);
    verify(vm, { heldPages: 0 });
  });

  test('the drainer drains both domains, then finishes lazy init', async () => {
    const vm = twoDomains();
    const total = vm.counts().total;
    const d = startDrainers(handleOf(vm), { count: 2, warmRounds: 5 }, vm.state.c.locks);
    await d.done;
    assert.equal(vm.counts(0).lazyinit + vm.counts(1).lazyinit, 0);
    assert.equal(vm.drained, true);
    assert.equal(vm.counts().total, total);
    verify(vm, { heldPages: 0 });
  });
});

describe('drainer', () => {
  test('one drainer worker empties the lazy pool, sets drained, same result as vm.drain()', async () => {
    const vm = stressMachine(1024 * MiB);
    const ref = stressMachine(1024 * MiB);
    ref.drain();
    const lazy = lazyTotal(vm);
    const d = startDrainers(handleOf(vm), { count: 1, warmRounds: 5 }, vm.state.c.locks);
    const [st] = await d.done;
    assert.equal(lazyTotal(vm), 0);
    assert.equal(vm.drained, true);
    assert.equal(vm.state.c.ctl[CTL.INFLIGHT], 0);
    assert.equal(st.pages, lazy);
    assert.equal(st.finished, true);
    assert.equal(physFree(vm), physFree(ref), 'the take/finish/put protocol drains like vm_phys_lazy_init');
    assert.ok(st.maxHoldUs > 0 && drainerMaxHoldUs(handleOf(vm).sync) === st.maxHoldUs);
    assert.equal(st.holdUs.length, st.holds);
    assert.ok(st.maxRunningHoldUs <= st.maxHoldUs);
    assert.ok(['raised', 'refused'].includes(st.boost), `nice 19 with a boost to 0 while holding: ${st.boost}`);
    if (new SchedProbe().available) assert.ok(st.preemptedHolds >= 0 && st.preemptedHolds <= st.holds);
    else assert.equal(st.preemptedHolds, -1);
    verify(vm, { heldPages: 0 });
  });

  test('three parallel drainers over one domain drain disjoint blocks; nothing is lost', async () => {
    const vm = stressMachine(2048 * MiB);
    const total = vm.counts().total;
    const lazy = lazyTotal(vm);
    const d = startDrainers(handleOf(vm), { count: 3, warmRounds: 5 }, vm.state.c.locks);
    const sts = await d.done;
    assert.equal(
      sts.reduce((s, x) => s + x.pages, 0),
      lazy,
    );
    assert.equal(sts.filter((x) => x.finished).length, 1, 'exactly one drainer ends vm_phys_lazy_init');
    assert.equal(lazyTotal(vm), 0);
    assert.equal(vm.drained, true);
    assert.equal(vm.counts().total, total);
    verify(vm, { heldPages: 0 });
  });

  test('the main thread drain path (LockedVmPhys.drain) also finishes lazy init', () => {
    const vm = stressMachine(256 * MiB);
    const L = new LockedVmPhys(vm);
    const st = L.drain();
    assert.equal(st.finished, true);
    assert.equal(vm.drained, true);
    assert.equal(lazyTotal(vm), 0);
    // FreeBSD's sequence: each hold frees the block finished since the last one and takes the
    // next; the first hold only takes, the last only frees (and finds the queues empty).
    assert.equal(st.holds, st.blocks + 1);
    assert.equal(st.holdUs.length, st.holds);
  });

  test('batched holds (4 blocks each) drain exactly like vm.drain(), one hold per 4 blocks', () => {
    for (const mib of [256, 1024 + 24]) {
      const vm = stressMachine(mib * MiB);
      const ref = stressMachine(mib * MiB);
      ref.drain();
      const lazy = lazyTotal(vm);
      const st = drainAll(vm, new DomainLocks(vm), newDrainStats(), undefined, 0, { batch: 4 });
      assert.equal(st.finished, true);
      assert.equal(st.pages, lazy);
      assert.equal(st.holds, Math.ceil(st.blocks / 4) + 1);
      assert.equal(vm.state.c.ctl[CTL.INFLIGHT], 0);
      assert.equal(physFree(vm), physFree(ref), 'blocks are freed in the order they were taken');
      verify(vm, { heldPages: 0 });
    }
  });

  test('with yieldMs, the drainer naps after a hold only when others took the lock meanwhile', () => {
    for (const traffic of [false, true]) {
      const vm = stressMachine(256 * MiB);
      const ref = stressMachine(256 * MiB);
      ref.drain();
      const other = new DomainLocks(vm);
      // A stand-in for ThreadPriority: lower() runs right after each of the drainer's holds; with
      // traffic it plays another thread taking and releasing the lock at that moment.
      const priority = {
        state: 'raised',
        raise() {},
        lower() {
          if (traffic) {
            other.lock(0);
            other.unlock(0);
          }
        },
      } as unknown as ThreadPriority;
      const act0 = other.activity(0);
      const st = drainAll(vm, new DomainLocks(vm), newDrainStats(), undefined, 0, {
        batch: 4,
        priority,
        yieldMs: 0.01,
      });
      assert.equal(st.finished, true);
      assert.equal(physFree(vm), physFree(ref), 'yielding changes the timing, never the result');
      // Every hold is one acquisition (two with the simulated foreign one); drainAll ends with
      // lockAll (finishLazyInit) and one more hold to publish its figures.
      assert.equal((other.activity(0) - act0) | 0, st.holds * (traffic ? 2 : 1) + 2);
      // The last hold finds the queues empty and ends the loop before any nap.
      assert.equal(st.yields, traffic ? st.holds - 1 : 0, `traffic=${traffic}: ${st.yields} naps, ${st.holds} holds`);
      verify(vm, { heldPages: 0 });
    }
  });

  test('a posted drainer exchange is carried out by the next lock holder, exactly as the drainer would', () => {
    const vm = stressMachine(256 * MiB);
    const ref = stressMachine(256 * MiB);
    const L = new DomainLocks(vm);
    const R = new DomainLocks(ref);
    const w = vm.state.c.locks;
    const i = lockIndex(vm.profile, 0);
    const taken: number[] = [];
    let rounds = 0;
    for (;;) {
      // The drainer's side, by hand: post "free what I hold, take up to 3".
      assert.equal(Atomics.compareExchange(w, i + MB.STATE, MB.IDLE, MB.POSTING), MB.IDLE);
      w[i + MB.NPUT] = taken.length;
      taken.forEach((r, j) => {
        w[i + MB.SLOTS + 2 * j] = (r - (r % 16)) / 16;
        w[i + MB.SLOTS + 2 * j + 1] = r % 16;
      });
      w[i + MB.WANT] = 3;
      Atomics.store(w, i + MB.STATE, MB.REQUESTED);
      // An allocating thread takes and releases the lock: the release serves the request.
      L.lock(0);
      L.unlock(0);
      assert.equal(Atomics.load(w, i + MB.STATE), MB.DONE);
      // The same exchange on the reference machine, directly.
      R.lock(0);
      for (const r of taken) lazyPut(ref.state, 0, handleIdx(r), handleOrder(r));
      const want: number[] = [];
      for (let j = 0; j < 3; j++) {
        const r = lazyTake(ref.state, 0);
        if (r < 0) break;
        want.push(r);
      }
      R.unlock(0);
      const got = w[i + MB.NGOT];
      taken.length = 0;
      for (let j = 0; j < got; j++) taken.push(w[i + MB.SLOTS + 2 * j] * 16 + w[i + MB.SLOTS + 2 * j + 1]);
      Atomics.store(w, i + MB.STATE, MB.IDLE);
      assert.deepEqual(taken, want, `round ${rounds}`);
      for (const r of taken) {
        finishInit(vm.state, handleIdx(r), handleOrder(r));
        finishInit(ref.state, handleIdx(r), handleOrder(r));
      }
      rounds++;
      if (got === 0) break;
    }
    assert.equal(L.served, rounds);
    assert.ok(rounds > 2);
    assert.equal(vm.state.c.ctl[CTL.INITDONE], 1);
    assert.equal(vm.state.c.ctl[CTL.INFLIGHT], 0);
    assert.equal(physFree(vm), physFree(ref));
  });

  test('with delegation on, drainer and workers still conserve every page', async () => {
    const r = await runStress({ workers: 2, ops: 400_000, drain: true, ram: 2048 * MiB });
    assert.deepEqual(r.violations, []);
    assert.equal(r.conservation.ok, true);
    const st = r.drainStats[0];
    assert.ok(st.holds + st.delegated > 0, 'the drainer exchanged blocks');
  });

  test('a drainer told to stop still frees the blocks it has in flight', () => {
    const vm = stressMachine(512 * MiB);
    const total = vm.counts().total;
    const stop = new Int32Array(1);
    // A stand-in for ThreadPriority whose lower() (called after each hold) raises the stop flag
    // after the first hold, i.e. while that hold's 3 blocks are being initialised.
    const priority = {
      state: 'raised',
      raise() {},
      lower() {
        Atomics.store(stop, 0, 1);
      },
    } as unknown as ThreadPriority;
    const st = newDrainStats();
    drainDomainLocked(vm, new DomainLocks(vm), 0, st, stop, 0, { batch: 3, priority });
    assert.equal(st.blocks, 3);
    assert.equal(st.holds, 2, 'one hold took 3 blocks, the next one only freed them');
    assert.equal(st.boost, 'raised');
    assert.equal(vm.state.c.ctl[CTL.INFLIGHT], 0);
    assert.equal(vm.counts().total, total);
    assert.ok(lazyTotal(vm) > 0 && vm.state.c.ctl[CTL.INITDONE] === 0, 'the drain stopped early');
    verify(vm, { heldPages: 0 });
  });
});

describe('per-CPU page caches', () => {
  test('alloc and free through the cache, then flush returns every page', () => {
    const vm = stressMachine(256 * MiB);
    const start = vm.counts().total;
    const L = new LockedVmPhys(vm);
    const cache = new PcpuCache(L, { batch: 16 });
    const held: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const pa = cache.alloc(0, i % 3 === 0 ? Pool.DIRECT : Pool.DEFAULT);
      assert.ok(pa >= 0);
      held.push(pa, i % 3 === 0 ? Pool.DIRECT : Pool.DEFAULT);
    }
    assert.equal(new Set(held.filter((_, k) => k % 2 === 0)).size, 1000, 'distinct pages');
    assert.equal(vm.counts().total, start - 1000 - cache.pages);
    for (let k = 0; k < held.length; k += 2) cache.free(held[k], held[k + 1]);
    assert.ok(cache.pages > 0);
    verify(vm, { heldPages: cache.pages });
    const back = cache.flush();
    assert.ok(back > 0);
    assert.equal(cache.pages, 0);
    assert.equal(vm.counts().total, start);
    assert.ok(cache.refills < 200, 'pages come in batches');
    verify(vm, { heldPages: 0 });
  });

  test('a free of a page that is not allocated is refused at once', () => {
    const vm = stressMachine(64 * MiB);
    const cache = new PcpuCache(new LockedVmPhys(vm));
    const pa = vm.allocPages(0, Pool.DEFAULT, 0) as number;
    vm.freePages(pa, Pool.DEFAULT, 0);
    assert.throws(() => cache.free(pa, Pool.DEFAULT), /not allocated|free/);
  });

  test('the index API serves the same pages as the address API; bad domain and pool are refused', () => {
    const vm = stressMachine(64 * MiB);
    const start = vm.counts().total;
    const cache = new PcpuCache(new LockedVmPhys(vm), { batch: 8 });
    const idx: number[] = [];
    for (let i = 0; i < 100; i++) idx.push(cache.allocIdx(0, Pool.DEFAULT));
    assert.equal(new Set(idx).size, 100);
    for (const i of idx) assert.ok(i >= 0 && metaOrder(vm.state.meta[i]) === vm.nOrd, 'allocated in vm_phys');
    // Freed by index, allocated again by address: the LIFO stack hands the last page back.
    cache.freeIdx(idx[99], Pool.DEFAULT);
    assert.equal(cache.alloc(0, Pool.DEFAULT), vm.paOf(idx[99]));
    for (const i of idx) cache.freeIdx(i, Pool.DEFAULT);
    const f = vm.allocPagesIdx(0, Pool.DEFAULT, 0);
    vm.freeIdx(f, Pool.DEFAULT, 0);
    assert.throws(
      () => cache.freeIdx(f, Pool.DEFAULT),
      (e: Error) => e.name === 'DoubleFreeError',
    );
    const before = snapshotCounts(vm);
    assert.throws(
      () => cache.alloc(1, Pool.DEFAULT),
      (e: Error) => e.name === 'DomainError',
    );
    assert.throws(
      () => cache.alloc(0, Pool.LAZYINIT),
      (e: Error) => e.name === 'PoolError',
    );
    assert.throws(
      () => cache.alloc(0, 7),
      (e: Error) => e.name === 'PoolError',
    );
    assert.throws(
      () => cache.free(vm.paOf(idx[0]), 1.5),
      (e: Error) => e.name === 'PoolError',
    );
    assert.throws(
      () => cache.free(vm.paOf(idx[0]), Number.NaN),
      (e: Error) => e.name === 'PoolError',
    );
    assert.deepEqual(snapshotCounts(vm), before, 'refused calls change nothing');
    cache.flush();
    verify(vm, { heldPages: 0 });
    assert.equal(vm.counts().total, start);
  });
});

describe('per-CPU page caches before start-up', () => {
  test('a cache made before init sees the started machine; before startup it refuses with StateError', () => {
    const vm = new VmPhys();
    vm.addSeg(MiB, 65 * MiB);
    const cache = new PcpuCache(new LockedVmPhys(vm));
    vm.init();
    assert.throws(
      () => cache.alloc(0, Pool.DEFAULT),
      (e: Error) => e.name === 'StateError',
    );
    vm.startup('lazy');
    const pa = cache.alloc(0, Pool.DEFAULT);
    assert.ok(pa >= MiB);
    cache.free(pa, Pool.DEFAULT);
    cache.flush();
    verify(vm, { heldPages: 0 });
  });
});

function snapshotCounts(vm: ReturnType<typeof stressMachine>): string {
  return (
    JSON.stringify(vm.counts()) + Array.from({ length: nQueues(vm.state) }, (_, q) => qCount(vm.state, q)).join(',')
  );
}

describe('stress', () => {
  test('2 workers, 50k ops, drainer running: conservation and every check hold', async () => {
    const r = await runStress({ workers: 2, ops: 50000, drain: true, seed: 7, ram: 512 * MiB });
    assert.deepEqual(r.violations, []);
    assert.equal(r.conservation.ok, true);
    assert.equal(r.ops, 50000);
    assert.equal(r.allocs + r.frees + r.failedAllocs, 50000);
    assert.equal(r.drainers, 1);
    assert.ok(r.lockAcquires >= 50000);
    assert.equal(r.conservation.free + r.conservation.inFlight + r.conservation.held, r.conservation.total);
    assert.equal(r.vm.drained, true, 'the drainer finished vm_phys_lazy_init');
    assert.equal(r.vm.counts().lazyinit, 0);
    assert.equal(r.vm.state.c.ctl[CTL.INFLIGHT], 0);
  });

  test('the end-of-run checks catch a page held twice, a held page that is free, and a lost page', () => {
    const vm = stressMachine(64 * MiB);
    const start = vm.counts().total;
    const a = vm.allocPages(0, Pool.DEFAULT, 2) as number;
    const b = vm.allocPages(0, Pool.DEFAULT, 0) as number;
    const fake = (index: number, addrs: number[], npages: number[]): StressWorkerResult =>
      ({
        index,
        addrs: Float64Array.from(addrs),
        npages: Int32Array.from(npages),
        kinds: Uint8Array.from(addrs.map(() => Pool.DEFAULT)),
      }) as StressWorkerResult;
    const v1: string[] = [];
    checkHeld(vm, [fake(0, [a], [4]), fake(1, [a + 4096], [1])], start, v1);
    assert.match(v1.join(), /held twice \(workers 0 and 1\)/);
    const v2: string[] = [];
    checkHeld(vm, [fake(0, [a, b, b + 8 * 4096], [4, 1, 1])], start, v2);
    assert.match(v2.join(), /also free/);
    const v3: string[] = [];
    checkHeld(vm, [fake(0, [a], [4])], start, v3); // page b is lost: nobody reports it
    assert.match(v3.join(), /invariant 7/);
  });

  test('4 workers with per-CPU caches and 2 parallel drainers', async () => {
    const r = await runStress({
      workers: 4,
      ops: 60000,
      drain: true,
      drainers: 2,
      pcpu: true,
      seed: 3,
      ram: 256 * MiB,
    });
    assert.deepEqual(r.violations, []);
    assert.equal(r.conservation.ok, true);
    assert.ok(r.lockAcquires < 60000, 'order-0 traffic bypasses the lock');
  });

  test('a time-budgeted run stops every worker', async () => {
    const r = await runStress({ workers: 3, durationMs: 200, pcpu: true, mix: 'order0', ram: 128 * MiB });
    assert.deepEqual(r.violations, []);
    assert.equal(r.perWorkerOps.length, 3);
    assert.ok(r.perWorkerOps.every((n) => n > 0));
  });
});

describe('drainer scheduling helpers', () => {
  const linux = process.platform === 'linux';

  test('SchedProbe counts the times this thread is scheduled in (a sleep adds at least one)', { skip: !linux }, () => {
    const p = new SchedProbe();
    assert.equal(p.available, true);
    const a = p.switches();
    assert.ok(Number.isInteger(a) && a > 0);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    const b = p.switches();
    assert.ok(b > a, `${a} → ${b}`);
    p.close();
    assert.equal(p.switches(), -1);
  });

  test('ThreadPriority raises and lowers the calling thread only, or says the OS refused', {
    skip: !linux,
  }, async () => {
    // In a worker, so that the test runner's own thread keeps its priority whatever happens.
    const url = new URL('../src/workers/sched.js', import.meta.url).href;
    const code = `
      const { parentPort } = require('node:worker_threads');
      const { getPriority } = require('node:os');
      import(${JSON.stringify(url)}).then(({ ThreadPriority }) => {
        const p = new ThreadPriority(19, 0);
        const seen = [getPriority(0)];
        p.raise();
        seen.push(getPriority(0));
        p.lower();
        seen.push(getPriority(0));
        const off = new ThreadPriority(5, 5);
        parentPort.postMessage({ state: p.state, seen, off: off.state, process: getPriority(process.pid) });
      });`;
    const w = new Worker(code, { eval: true });
    const [m] = (await once(w, 'message')) as [{ state: string; seen: number[]; off: string; process: number }];
    await once(w, 'exit');
    assert.equal(m.off, 'off');
    if (m.state === 'raised') assert.deepEqual(m.seen, [19, 0, 19]);
    else {
      assert.equal(m.state, 'refused');
      assert.deepEqual(m.seen, [19, 19, 19]);
    }
  });
});

describe('stress with saboteurs', () => {
  test('bad frees aimed at drainer-held blocks and at other workers blocks are all refused', async () => {
    const r = await runStress({ workers: 2, ops: 40_000, ram: 256 * 1024 * 1024, drain: true, saboteurs: 2 });
    assert.deepEqual(r.violations, []);
    assert.ok(r.sabotage.attempts > 0, 'the saboteurs found targets');
    assert.equal(r.sabotage.accepted, 0, JSON.stringify(r.sabotage.kinds));
    assert.deepEqual(r.sabotage.untyped, []);
    const c = r.conservation;
    assert.equal(c.free + c.inFlight + c.held, c.total);
  });
});
