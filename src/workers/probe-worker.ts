/**
 * A small worker for the lock and attach tests (and for diagnosing a shared allocator by hand):
 * one action per spawn, chosen by workerData.action. Not used by the CLI or the benchmark.
 * Owned by the workers layer (src/workers/*).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Pool } from '../core/params.js';
import { physFree } from '../core/sysctl.js';
import { attach, type SharedHandle } from './attach.js';
import { DomainLocks, markDeadOnExit } from './lock.js';
import { LockedVmPhys } from './locked.js';

/** What the probe does. */
export interface ProbeConfig {
  handle: SharedHandle;
  /**
   * 'count': `rounds` times: lock domain 0, counter[0] = counter[0] + 1 non-atomically with a
   *   delay between read and write, unlock. Waits for go[0] first.
   * 'hold': lock domain 0, post 'locked', then wait for a message: 'exit' ends the script
   *   normally, 'throw' throws an uncaught error, 'process-exit' calls process.exit(3);
   *   never unlocks.
   * 'wait': lock domain 0 (with pollMs / deadlineMs) and post { ok, code, ms }.
   * 'hog': post 'hogging', then lock and unlock domain 0 back to back for `ms` milliseconds,
   *   holding it ~1 µs each time; post { acquires }.
   * 'inspect': post vm.phys_free text and counts; then allocate one order-0 page under the lock
   *   and post its address.
   */
  action: 'count' | 'hold' | 'wait' | 'inspect' | 'hog';
  counter?: SharedArrayBuffer;
  rounds?: number;
  ms?: number;
  pollMs?: number;
  deadlineMs?: number;
  /** Mark this thread dead from its own exit hook (default true). */
  selfMark?: boolean;
}

const port = parentPort;
if (port) {
  const cfg = workerData as ProbeConfig;
  const vm = attach(cfg.handle);
  const locks = new DomainLocks(vm, { pollMs: cfg.pollMs, deadlineMs: cfg.deadlineMs });
  if (cfg.selfMark ?? true) markDeadOnExit(cfg.handle.sync, locks.words);
  switch (cfg.action) {
    case 'count': {
      const c = new Int32Array(cfg.counter as SharedArrayBuffer);
      while (Atomics.load(c, 1) === 0) Atomics.wait(c, 1, 0, 50);
      const rounds = cfg.rounds ?? 1000;
      let sink = 0;
      for (let i = 0; i < rounds; i++) {
        locks.lock(0);
        const v = c[0];
        for (let k = 0; k < 50; k++) sink += k ^ v;
        c[0] = v + 1;
        locks.unlock(0);
      }
      locks.flushCounters();
      port.postMessage({ type: 'done', sink, acquires: locks.acquires, contended: locks.contended });
      break;
    }
    case 'hold': {
      locks.lock(0);
      port.postMessage({ type: 'locked' });
      port.once('message', (m: string) => {
        if (m === 'throw') throw new Error('probe: dying with the lock held');
        if (m === 'process-exit') process.exit(3);
        port.close(); // 'exit': end normally, lock still held
      });
      break;
    }
    case 'wait': {
      const t0 = performance.now();
      try {
        locks.lock(0);
        locks.unlock(0);
        port.postMessage({ type: 'result', ok: true, ms: performance.now() - t0 });
      } catch (e) {
        const err = e as Error & { code?: string };
        port.postMessage({
          type: 'result',
          ok: false,
          code: err.code,
          name: err.name,
          message: err.message,
          ms: performance.now() - t0,
        });
      }
      break;
    }
    case 'hog': {
      port.postMessage({ type: 'hogging' });
      const end = performance.now() + (cfg.ms ?? 200);
      let n = 0;
      let sink = 0;
      while (performance.now() < end) {
        locks.lock(0);
        for (let k = 0; k < 100; k++) sink += k;
        locks.unlock(0);
        n++;
      }
      port.postMessage({ type: 'done', acquires: n, sink });
      break;
    }
    case 'inspect': {
      const locked = new LockedVmPhys(vm, locks);
      locks.lockAll();
      const text = physFree(vm);
      const counts = vm.counts();
      locks.unlockAll();
      const pa = locked.allocPages(0, Pool.DEFAULT, 0);
      port.postMessage({ type: 'inspect', text, counts, pa });
      break;
    }
  }
}
