/**
 * Snapshots that lie: a flipped header or profile bit, a forged header with a recomputed
 * checksum, a checksum-valid control block with a queue cycle, NSEGS 1000, counts that
 * disagree, in-flight pages no drainer row accounts for, and non-bytes. Every one is refused
 * with ESNAPSHOT, in bounded time, leaving the original machine and the bytes untouched. A good
 * snapshot taken mid-run restores and continues with the same addresses as the original, format
 * 1 snapshots still restore, and blocks a drainer held are given back on restore.
 * Owned by the core's snapshot module; only it may edit this file.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { allocContig } from '../src/core/contig.js';
import { CTL, controlBytesV1, DRSLOT } from '../src/core/layout.js';
import { handleIdx, handleOrder, lazyTake } from '../src/core/lazy.js';
import { Pool } from '../src/core/params.js';
import { nQueues, qCount, qHead, qNext, qTail } from '../src/core/queues.js';
import { restore, SNAPSHOT_VERSION, snapshot } from '../src/core/snapshot.js';
import { verify } from '../src/core/verify.js';
import { VmPhys } from '../src/core/vmphys.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const HEADER = 40;

function machine(ram = 256 * MiB): VmPhys {
  const vm = new VmPhys({ shared: false });
  vm.addSeg(0x1000, 0x9f000);
  vm.addSeg(0x100000, ram);
  vm.init();
  vm.startup('lazy');
  return vm;
}

/** A seeded xorshift generator over 32-bit values. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/** Random allocations and frees on vm, recording the addresses handed out. */
function churn(vm: VmPhys, held: Array<[number, number]>, next: () => number, ops: number, out: number[]): void {
  for (let i = 0; i < ops; i++) {
    const r = next();
    if (held.length > 0 && r % 3 === 0) {
      const [pa, order] = held.splice(r % held.length, 1)[0];
      vm.freePages(pa, Pool.DEFAULT, order);
    } else if (r % 17 === 1) {
      const pa = allocContig(vm, 0, 1 + (r % 40), 0, 2 ** 40, 4096, 0);
      out.push(pa ?? -1);
      if (pa !== null) for (let k = 0; k < 1 + (r % 40); k++) held.push([pa + k * 4096, 0]);
    } else {
      const order = (r >>> 8) % 6;
      const pa = vm.allocPages(0, (r >>> 4) & 1 ? Pool.DIRECT : Pool.DEFAULT, order);
      out.push(pa ?? -1);
      if (pa !== null) held.push([pa, order]);
    }
  }
}

/** The FNV-1a checksum as format 2 computes it (all bytes but the checksum word). */
function fnv(bytes: Uint8Array, from: number, to: number, h = 0x811c9dc5): number {
  for (let i = from; i < to; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
function reseal(bytes: Uint8Array): Uint8Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  dv.setUint32(32, fnv(bytes, 36, bytes.length, fnv(bytes, 0, 32)), true);
  return bytes;
}

/** Every byte of a machine's buffers, for before/after comparisons. */
function image(vm: VmPhys): Uint8Array[] {
  const s = vm.state;
  return [
    new Uint8Array(s.c.buffer as ArrayBuffer).slice(),
    s.meta.slice(),
    new Uint8Array(s.link.buffer as ArrayBuffer).slice(),
  ];
}

/** A corrupted copy of vm's snapshot: restore a private copy, break it, snapshot that (checksum valid). */
function corrupted(vm: VmPhys, breakIt: (copy: VmPhys) => void): Uint8Array {
  const copy = restore(snapshot(vm), { shared: false });
  breakIt(copy);
  return snapshot(copy);
}

/** Refused with ESNAPSHOT, with the original machine and the input bytes unchanged. */
function refused(vm: VmPhys, bytes: unknown, message?: RegExp): void {
  const before = image(vm);
  const input = bytes instanceof Uint8Array ? bytes.slice() : null;
  assert.throws(
    () => restore(bytes as Uint8Array),
    (e: unknown) => {
      assert.equal((e as { code?: string }).code, 'ESNAPSHOT', `${e}`);
      if (message) assert.match((e as Error).message, message);
      return true;
    },
  );
  assert.deepEqual(image(vm), before, 'the original machine is byte-identical');
  if (input !== null) assert.deepEqual(bytes, input, 'restore does not write its input');
}

/** A queue (below the maximum order) with at least `n` entries, or -1. */
function queueWith(vm: VmPhys, n: number): number {
  const s = vm.state;
  for (let q = 0; q < nQueues(s); q++) if (q % vm.nOrd < vm.maxOrder && qCount(s, q) >= n) return q;
  return -1;
}

describe('snapshot header', () => {
  test('a flipped profile bit is refused, with or without a recomputed checksum', () => {
    const vm = machine();
    const bytes = snapshot(vm);
    const flipped = bytes.slice();
    flipped[12] ^= 1;
    refused(vm, flipped, /checksum/);
    refused(vm, reseal(flipped), /control block|profile/);
  });
  test('every flipped header field is refused, forged or not', () => {
    const vm = machine();
    const bytes = snapshot(vm);
    for (const at of [16, 20, 24, 29, 31, 36]) {
      const flipped = bytes.slice();
      flipped[at] ^= 4;
      refused(vm, flipped, /checksum/);
      refused(vm, reseal(flipped));
    }
  });
  test('the total page count in the header must match the control words', () => {
    const vm = machine();
    const bytes = snapshot(vm);
    const dv = new DataView(bytes.buffer);
    dv.setFloat64(24, vm.totalPages + 1, true);
    refused(vm, reseal(bytes), /pages/);
  });
  test('null, undefined, strings, arrays and garbage are refused with ESNAPSHOT', () => {
    const vm = machine(64 * MiB);
    for (const x of [null, undefined, 'VMPHYSS1', [1, 2, 3], {}, 42]) refused(vm, x, /Uint8Array|snapshot/);
    const r = rng(7);
    for (const n of [0, 39, 40, 41, 1000]) {
      const g = new Uint8Array(n);
      for (let i = 0; i < n; i++) g[i] = r() & 255;
      refused(vm, g);
    }
  });
});

describe('checksum-valid but inconsistent control blocks', () => {
  test('a queue cycle is refused (and restore returns: its walks are bounded)', { timeout: 60000 }, () => {
    const vm = machine(1 * GiB);
    const held: Array<[number, number]> = [];
    churn(vm, held, rng(3), 3000, []);
    const q = queueWith(vm, 3);
    assert.ok(q >= 0, 'the run left a queue with three entries');
    const s = vm.state;
    const a = qHead(s, q);
    const b = qNext(s, q, a);
    // b's next goes back to a: a -> b -> a -> ..., the tail never reached.
    refused(
      vm,
      corrupted(vm, (c) => {
        c.state.link[2 * b] = a + 1;
      }),
      /invariant 1/,
    );
    // The same cycle with the queue's count as large as the machine: still refused.
    refused(
      vm,
      corrupted(vm, (c) => {
        c.state.link[2 * b] = a + 1;
        c.state.q[c.state.oCount + q] = c.totalPages;
      }),
    );
    // Count beyond the page count: refused before any walk.
    refused(
      vm,
      corrupted(vm, (c) => {
        c.state.q[c.state.oCount + q] = 0x7fffffff;
      }),
      /count/,
    );
    // The tail moved off the list.
    refused(
      vm,
      corrupted(vm, (c) => {
        c.state.q[c.state.oTail + q] = qTail(s, q) === a ? b : a;
      }),
    );
  });
  test('NSEGS 1000 is refused', () => {
    const vm = machine();
    refused(
      vm,
      corrupted(vm, (c) => {
        c.state.c.ctl[CTL.NSEGS] = 1000;
      }),
      /NSEGS/,
    );
    refused(
      vm,
      corrupted(vm, (c) => {
        c.state.c.ctl[CTL.NSEGS] = 1;
      }),
      /segments hold/,
    );
  });
  test('counts that disagree are refused', () => {
    const vm = machine();
    for (let i = 0; i < 50; i++) vm.allocPages(0, Pool.DEFAULT, i % 4);
    const q = queueWith(vm, 1);
    refused(
      vm,
      corrupted(vm, (c) => {
        c.state.q[c.state.oCount + q] += 1;
      }),
      /invariant 1/,
    );
    refused(
      vm,
      corrupted(vm, (c) => {
        c.state.q[c.state.oCount + q] = 0;
      }),
      /disagree/,
    );
    refused(
      vm,
      corrupted(vm, (c) => {
        c.state.c.ctl[CTL.NRUNS] = c.state.c.maxRuns + 1;
      }),
      /NRUNS/,
    );
    refused(
      vm,
      corrupted(vm, (c) => {
        c.state.c.ctl[CTL.INFLIGHT] = 4096;
      }),
      /in flight/,
    );
    refused(
      vm,
      corrupted(vm, (c) => {
        c.state.c.ctl[CTL.PROFILE] = 1;
      }),
      /profile/,
    );
    // A free block's head byte says another order: verify (deep) catches it.
    refused(
      vm,
      corrupted(vm, (c) => {
        const h = qHead(c.state, q);
        c.state.meta[h] = (c.state.meta[h] & ~0x0f) | ((q % vm.nOrd) + 1);
      }),
      /invariant 2/,
    );
    // An allocated page marked free-head: only the deep page scan sees it.
    refused(
      vm,
      corrupted(vm, (c) => {
        c.state.meta[c.paddrToPage(0x100000)] = (c.state.meta[c.paddrToPage(0x100000)] & ~0x0f) | 2;
      }),
    );
  });
});

describe('good snapshots', () => {
  test('a snapshot taken mid-run restores and continues with the same addresses', () => {
    const vm = machine(1 * GiB);
    const next = rng(11);
    const held: Array<[number, number]> = [];
    churn(vm, held, next, 2000, []);
    vm.drainStep(5); // part of the lazy drain done, the rest still lazy
    const copy = restore(snapshot(vm), { shared: false });
    const heldCopy = held.map((h) => [h[0], h[1]] as [number, number]);
    const seed = next();
    const a: number[] = [];
    const b: number[] = [];
    churn(vm, held, rng(seed), 3000, a);
    churn(copy, heldCopy, rng(seed), 3000, b);
    assert.deepEqual(b, a);
    vm.drain();
    copy.drain();
    assert.deepEqual(image(copy)[1], image(vm)[1], 'the same page states');
    assert.deepEqual(copy.counts(), vm.counts());
    verify(copy, { deep: true });
  });
  test('format 1 snapshots (no drainer table, checksum over the payload) still restore', () => {
    const vm = machine();
    for (let i = 0; i < 30; i++) vm.allocPages(0, Pool.DIRECT, i % 5);
    const v2 = snapshot(vm);
    const dv2 = new DataView(v2.buffer);
    const cb2 = dv2.getUint32(16, true);
    const cb1 = controlBytesV1(vm.profile, vm.state.c.maxRuns);
    const v1 = new Uint8Array(v2.length - (cb2 - cb1));
    v1.set(v2.subarray(0, HEADER + cb1));
    v1.set(v2.subarray(HEADER + cb2), HEADER + cb1);
    const dv1 = new DataView(v1.buffer);
    dv1.setUint32(8, 1, true);
    dv1.setUint32(16, cb1, true);
    dv1.setUint32(32, fnv(v1, HEADER, v1.length), true);
    assert.equal(SNAPSHOT_VERSION, 2);
    const copy = restore(v1, { shared: false });
    for (let i = 0; i < 100; i++)
      assert.equal(copy.allocPages(0, Pool.DEFAULT, i % 4), vm.allocPages(0, Pool.DEFAULT, i % 4));
    // Format 1 cannot say who held pages in flight: such a snapshot is refused.
    const bad = v1.slice();
    new DataView(bad.buffer).setInt32(HEADER + CTL.INFLIGHT * 4, 16, true);
    new DataView(bad.buffer).setUint32(32, fnv(bad, HEADER, bad.length), true);
    refused(vm, bad, /in flight/);
  });
  test('blocks a drainer held when the snapshot was taken are given back on restore', () => {
    const vm = machine(1 * GiB);
    const total = vm.counts().total;
    const s = vm.state;
    // A drainer's row as drainer.ts keeps it: two blocks taken, not yet put.
    const t = s.c.drainers;
    t[DRSLOT.OWNER] = 99;
    t[DRSLOT.DOMAIN] = 0;
    let pages = 0;
    for (let i = 0; i < 2; i++) {
      const h = lazyTake(s, 0);
      t[DRSLOT.BLOCKS + 2 * i] = handleIdx(h);
      t[DRSLOT.BLOCKS + 2 * i + 1] = handleOrder(h);
      t[DRSLOT.N] = i + 1;
      pages += 2 ** handleOrder(h);
    }
    assert.equal(vm.counts().total, total - pages);
    const copy = restore(snapshot(vm), { shared: false });
    assert.equal(copy.counts().total, total, 'the in-flight pages are free again');
    assert.equal(copy.state.c.ctl[CTL.INFLIGHT], 0);
    assert.equal(copy.state.c.drainers[DRSLOT.OWNER], 0, 'the restored machine has no drainer');
    verify(copy, { deep: true, heldPages: 0 });
    // A row that lists fewer pages than are in flight is refused.
    t[DRSLOT.N] = 1;
    refused(vm, snapshot(vm), /in flight/);
  });
});
