/**
 * Tests of the domain free lock (src/workers/lock.ts): mutual exclusion across workers, and
 * dead-owner detection (a worker that dies holding the lock gives its waiters a LockError in
 * bounded time, never a hang). Owned by the workers layer; only it may edit this file.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { LockError } from '../src/core/errors.js';
import type { VmPhys } from '../src/core/vmphys.js';
import { handleOf } from '../src/workers/attach.js';
import { DomainLocks, SELF_ID, trackWorker } from '../src/workers/lock.js';
import type { ProbeConfig } from '../src/workers/probe-worker.js';
import { stressMachine } from '../src/workers/stress-run.js';

const PROBE = new URL('../src/workers/probe-worker.js', import.meta.url);

function spawn(vm: VmPhys, cfg: Omit<ProbeConfig, 'handle'>): Worker {
  const h = handleOf(vm);
  const w = new Worker(PROBE, { workerData: { ...cfg, handle: h } });
  trackWorker(h.sync, w, vm.state.c.locks);
  return w;
}

function nextMessage<T>(w: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
}

describe('DomainLocks', () => {
  test('lock/unlock on one thread; not reentrant; unlock by a non-owner is refused', () => {
    const vm = stressMachine(64 * 1024 * 1024);
    const L = new DomainLocks(vm, { deadlineMs: 200, pollMs: 5 });
    L.lock(0);
    assert.equal(L.owner(0), SELF_ID);
    assert.throws(() => L.lock(0), LockError);
    L.unlock(0);
    assert.equal(L.owner(0), 0);
    assert.throws(() => L.unlock(0), LockError);
    assert.equal(L.tryLock(0), true);
    assert.equal(L.tryLock(0), false);
    L.unlock(0);
    L.flushCounters();
    assert.equal(L.sharedCounts().acquires, L.acquires);
  });

  for (const n of [2, 4]) {
    test(`mutual exclusion: ${n} workers increment a non-atomic counter under the lock`, async () => {
      const vm = stressMachine(64 * 1024 * 1024);
      const counter = new SharedArrayBuffer(8);
      const c = new Int32Array(counter);
      const rounds = 20000;
      const workers = Array.from({ length: n }, () => spawn(vm, { action: 'count', counter, rounds }));
      const results = workers.map((w) => nextMessage<{ acquires: number; contended: number }>(w));
      const exits = workers.map((w) => once(w, 'exit'));
      Atomics.store(c, 1, 1);
      Atomics.notify(c, 1);
      const res = await Promise.all(results);
      await Promise.all(exits);
      assert.equal(c[0], n * rounds, 'no increment may be lost');
      const L = new DomainLocks(vm);
      const shared = L.sharedCounts();
      assert.equal(shared.acquires, n * rounds + n /* one flush each */);
      assert.equal(
        shared.contended,
        res.reduce((s, r) => s + r.contended, 0),
      );
      assert.equal(L.owner(0), 0);
    });
  }
});

describe('fairness', () => {
  // Event-driven: the hogs re-take the lock back to back until they are terminated, so every
  // waiter below asks while they are hogging, however slowly this machine spawns threads. A
  // lock that starved waiters would leave a waiter blocked: the test's time limit turns that
  // into a failure with a message instead of a hang. Wait times are reported, not asserted.
  test('a waiter gets the lock from threads that re-take it back to back (hand-off)', {
    timeout: 180_000,
  }, async (t) => {
    const vm = stressMachine(64 * 1024 * 1024);
    const hogs = [spawn(vm, { action: 'hog', ms: 3_600_000 }), spawn(vm, { action: 'hog', ms: 3_600_000 })];
    try {
      await Promise.all(hogs.map((h) => nextMessage(h)));
      const waits: number[] = [];
      for (let k = 0; k < 5; k++) {
        const w = spawn(vm, { action: 'wait', pollMs: 10, deadlineMs: 3_600_000 });
        const exited = once(w, 'exit');
        const r = await nextMessage<{ ok: boolean; ms: number; message?: string }>(w);
        assert.equal(r.ok, true, r.message);
        waits.push(r.ms);
        await exited;
      }
      t.diagnostic(`waits while two threads hog the lock: ${waits.map((x) => x.toFixed(1)).join(', ')} ms`);
    } finally {
      await Promise.all(hogs.map((h) => h.terminate()));
    }
  });
});

describe('dead-owner detection', () => {
  for (const how of ['exit', 'throw', 'process-exit', 'terminate'] as const) {
    test(`a worker that dies holding the lock (${how}) → the waiting worker gets LockError`, async (t) => {
      const vm = stressMachine(64 * 1024 * 1024);
      const holder = spawn(vm, { action: 'hold', selfMark: how !== 'terminate' });
      holder.on('error', () => {}); // 'throw' is expected to surface as an error event
      assert.equal(((await nextMessage(holder)) as { type: string }).type, 'locked');
      const waiter = spawn(vm, { action: 'wait', pollMs: 10, deadlineMs: 20000 });
      const waiterExit = once(waiter, 'exit');
      const result = nextMessage<{ ok: boolean; code?: string; name?: string; message?: string; ms: number }>(waiter);
      await new Promise((r) => setTimeout(r, 100)); // let the waiter go to sleep on the lock
      const t0 = performance.now();
      if (how === 'terminate') await holder.terminate();
      else holder.postMessage(how);
      const r = await result;
      const detectMs = performance.now() - t0;
      assert.equal(r.ok, false);
      assert.equal(r.name, 'LockError');
      assert.equal(r.code, 'ELOCK');
      assert.match(r.message ?? '', /died holding the lock/);
      t.diagnostic(`detected after ${detectMs.toFixed(1)} ms`);
      await waiterExit;
    });
  }

  test('the main thread as the waiter (normal and polite waiting) sees a dead worker owner too', async () => {
    const vm = stressMachine(64 * 1024 * 1024);
    const holder = spawn(vm, { action: 'hold' });
    await nextMessage(holder);
    const exited = once(holder, 'exit');
    holder.postMessage('exit');
    await exited;
    const L = new DomainLocks(vm, { pollMs: 5, deadlineMs: 5000 });
    assert.throws(
      () => L.lock(0),
      (e: unknown) => e instanceof LockError && /died holding the lock/.test(e.message),
    );
  });

  test('an untracked owner that never releases: the deadline gives a LockError, not a hang', async (t) => {
    const vm = stressMachine(64 * 1024 * 1024);
    const h = handleOf(vm);
    const holder = new Worker(PROBE, { workerData: { action: 'hold', handle: h, selfMark: false } });
    await nextMessage(holder);
    const L = new DomainLocks(vm, { pollMs: 5, deadlineMs: 300 });
    const t0 = performance.now();
    assert.throws(
      () => L.lock(0),
      (e: unknown) => e instanceof LockError && /deadline/.test(e.message),
    );
    t.diagnostic(`LockError after ${(performance.now() - t0).toFixed(1)} ms (deadline 300 ms)`);
    await holder.terminate();
  });
});
