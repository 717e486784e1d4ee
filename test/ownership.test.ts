/**
 * Ownership records (core/owner.ts): each free of the validated API is checked against the
 * record of the unit it frees. One regression test per defect the records close (frees into a
 * block a drainer holds, wrong-order frees, a per-CPU cache's double free), and the argument
 * checks around them. Every refused call must leave the state byte-identical.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { firecrackerMap } from '../src/boot/ramspec.js';
import { bootFromMap } from '../src/boot/startup.js';
import { allocContig } from '../src/core/contig.js';
import { hex, VmPhysError } from '../src/core/errors.js';
import { handleIdx, handleOrder, lazyPut, lazyTake } from '../src/core/lazy.js';
import { finishInit } from '../src/core/pages.js';
import { Pool } from '../src/core/params.js';
import { verify } from '../src/core/verify.js';
import { VmPhys } from '../src/core/vmphys.js';
import { LockedVmPhys } from '../src/workers/locked.js';
import { PcpuCache } from '../src/workers/pcpu.js';

const PS = 4096;

function machine(opts: { exactFrees?: boolean; shared?: boolean; mode?: 'lazy' | 'eager' } = {}): VmPhys {
  const vm = new VmPhys({ shared: opts.shared ?? false, exactFrees: opts.exactFrees });
  vm.addSeg(0x1000, 0x9f000);
  vm.addSeg(0x100000, 0x3000000);
  vm.init();
  vm.startup(opts.mode ?? 'lazy');
  return vm;
}

/** Every byte of the allocator's state: control block, page state bytes, queue links. */
function bytes(vm: VmPhys): Buffer {
  return Buffer.concat([
    Buffer.from(new Uint8Array(vm.state.c.buffer as ArrayBuffer)),
    Buffer.from(vm.state.meta),
    Buffer.from(new Uint8Array(vm.state.link.buffer as ArrayBuffer)),
  ]);
}

/** `call` throws a VmPhysError with `code`, and the state is byte-identical afterwards. */
function refused(vm: VmPhys, code: string, call: () => unknown, what: string): VmPhysError {
  const before = bytes(vm);
  let err: VmPhysError | undefined;
  assert.throws(call, (e: unknown) => {
    assert.ok(e instanceof VmPhysError, `${what}: ${String(e)}`);
    assert.equal(e.code, code, `${what}: ${e.message}`);
    err = e;
    return true;
  });
  assert.ok(bytes(vm).equals(before), `${what}: the refused call changed the state`);
  return err as VmPhysError;
}

test('a free into a block a drainer holds is refused (EHELD) until the block is put back', () => {
  const vm = machine();
  const s = vm.state;
  const start = vm.counts().total;
  // Take lazy blocks as a drainer does until one has interior pages; hold them all.
  const held: number[] = [];
  let big = -1;
  while (big < 0) {
    const h = lazyTake(s, 0);
    assert.ok(h >= 0, 'the machine has lazy blocks of order ≥ 2');
    held.push(h);
    if (handleOrder(h) >= 2) big = h;
  }
  const idx = handleIdx(big);
  const order = handleOrder(big);
  // The drainer initialises the block without the lock: its pages now look allocated.
  finishInit(s, idx, order);
  const head = vm.paOf(idx);
  refused(vm, 'EHELD', () => vm.freePages(head, Pool.DEFAULT, order), 'free of the held block');
  refused(vm, 'EHELD', () => vm.freePages(head, Pool.DEFAULT, 0), 'order-0 free of the held head');
  refused(vm, 'EHELD', () => vm.freePages(head + PS, Pool.DEFAULT, 0), 'free of an interior page');
  refused(vm, 'EHELD', () => vm.freePages(head + (1 << order) * PS - PS, Pool.DIRECT, 0), 'free of the last page');
  refused(vm, 'EHELD', () => vm.freePages(head + 2 * PS, Pool.DEFAULT, 1), 'order-1 free inside');
  refused(vm, 'EHELD', () => vm.freeContig(head + PS, Pool.DEFAULT, 2), 'free_contig inside');
  for (const h of held) lazyPut(s, 0, handleIdx(h), handleOrder(h));
  // Back on the free lists: the same frees are now double frees.
  refused(vm, 'EDOUBLEFREE', () => vm.freePages(head + PS, Pool.DEFAULT, 0), 'free after lazyPut');
  verify(vm, { deep: true, heldPages: 0 });
  assert.equal(vm.counts().total, start);
});

test('an order-1 free of an order-0 page is refused (EWRONGORDER): it would free a page it does not own', () => {
  const vm = machine();
  const got: number[] = [];
  for (let i = 0; i < 8; i++) got.push(vm.allocPages(0, Pool.DEFAULT, 0) as number);
  const x = got.find((a) => a % (2 * PS) === 0 && got.includes(a + PS));
  assert.ok(x !== undefined, 'two allocated buddies');
  refused(vm, 'EWRONGORDER', () => vm.freePages(x, Pool.DEFAULT, 1), 'order-1 free of an order-0 page');
  // Each page, freed as what it is, is accepted.
  for (const a of got) vm.freePages(a, Pool.DEFAULT, 0);
  refused(vm, 'EDOUBLEFREE', () => vm.freePages(x, Pool.DEFAULT, 0), 'double free');
  verify(vm, { deep: true, heldPages: 0 });
});

test('an order-2 block freed as order 0: a split by default (nothing leaks), refused with exactFrees', () => {
  for (const exactFrees of [false, true]) {
    const vm = machine({ exactFrees });
    const total = vm.counts().total;
    const b = vm.allocPages(0, Pool.DEFAULT, 2) as number;
    if (exactFrees) {
      refused(vm, 'EWRONGORDER', () => vm.freePages(b, Pool.DEFAULT, 0), 'order-0 free of an order-2 head');
      refused(vm, 'EWRONGORDER', () => vm.freePages(b + PS, Pool.DEFAULT, 0), 'free of an interior page');
      refused(vm, 'EWRONGORDER', () => vm.freePages(b + 2 * PS, Pool.DEFAULT, 1), 'free of the upper half');
      refused(vm, 'EWRONGORDER', () => vm.freeContig(b, Pool.DEFAULT, 2), 'free_contig of half the block');
      vm.freePages(b, Pool.DEFAULT, 2);
    } else {
      vm.freePages(b, Pool.DEFAULT, 0);
      verify(vm, { deep: true, heldPages: 3 });
      assert.equal(vm.counts().total, total - 3, 'the other three pages stay allocated');
      refused(vm, 'EDOUBLEFREE', () => vm.freePages(b, Pool.DEFAULT, 0), 'the freed page again');
      refused(vm, 'EDOUBLEFREE', () => vm.freePages(b, Pool.DEFAULT, 1), 'order-1 over the freed page');
      vm.freePages(b + 2 * PS, Pool.DEFAULT, 1);
      vm.freePages(b + PS, Pool.DEFAULT, 0);
      refused(vm, 'EDOUBLEFREE', () => vm.freePages(b + PS, Pool.DEFAULT, 0), 'freed twice');
    }
    verify(vm, { deep: true, heldPages: 0 });
    assert.equal(vm.counts().total, total, `exactFrees ${exactFrees}: every page is back`);
  }
});

test('contig runs and boot pages may be freed in parts, also with exactFrees', () => {
  const vm = machine({ exactFrees: true, mode: 'eager' });
  const total = vm.counts().total;
  const run = allocContig(vm, 0, 13, 0, 2 ** 40, PS, 0) as number;
  assert.ok(run !== null);
  vm.freePages(run + 5 * PS, Pool.DEFAULT, 0);
  refused(vm, 'EDOUBLEFREE', () => vm.freePages(run + 5 * PS, Pool.DEFAULT, 0), 'a contig page twice');
  refused(vm, 'EDOUBLEFREE', () => vm.freeContig(run + 4 * PS, Pool.DEFAULT, 3), 'a sub-run over a freed page');
  vm.freeContig(run + 6 * PS, Pool.DEFAULT, 7);
  vm.freeContig(run, Pool.DEFAULT, 5);
  refused(vm, 'EDOUBLEFREE', () => vm.freeContig(run, Pool.DEFAULT, 13), 'the run twice');
  verify(vm, { deep: true, heldPages: 0 });
  assert.equal(vm.counts().total, total);
  // Page 0x9f000.. is outside the segments; 0x1000 starts a segment and is free: nothing allocated at boot here.
  const m = new VmPhys({ shared: false, exactFrees: true });
  m.addSeg(0x100000, 0x200000);
  m.addAvail(0x140000, 0x200000);
  m.init();
  m.startup('lazy');
  m.freePages(0x108000, Pool.DEFAULT, 2); // a boot page block, freed in an aligned part
  refused(m, 'EDOUBLEFREE', () => m.freePages(0x108000, Pool.DEFAULT, 0), 'a boot page twice');
  m.freeContig(0x100000, Pool.DEFAULT, 8);
  m.freeContig(0x10c000, Pool.DEFAULT, 0x34);
  assert.equal(m.counts().total, 0x100, 'every boot page is free');
});

test('per-CPU cache: free(x) twice is refused (EDOUBLEFREE), so two allocs never hand out x twice', () => {
  const vm = machine({ shared: true });
  const locked = new LockedVmPhys(vm);
  const cache = new PcpuCache(locked, { batch: 4, capacity: 16 });
  const x = cache.alloc(0, Pool.DEFAULT);
  assert.ok(x > 0);
  cache.free(x, Pool.DEFAULT);
  refused(vm, 'EDOUBLEFREE', () => cache.free(x, Pool.DEFAULT), 'second free into the cache');
  refused(vm, 'EDOUBLEFREE', () => vm.freePages(x, Pool.DEFAULT, 0), 'a cached page freed to vm_phys');
  const a = cache.alloc(0, Pool.DEFAULT);
  const b = cache.alloc(0, Pool.DEFAULT);
  assert.notEqual(a, b);
  cache.free(a, Pool.DEFAULT);
  cache.free(b, Pool.DEFAULT);
  // A page of a contig run enters the cache (its run is split) and leaves it as a page.
  const run = allocContig(vm, 0, 3, 0, 2 ** 40, PS, 0) as number;
  cache.free(run + PS, Pool.DEFAULT);
  refused(vm, 'EDOUBLEFREE', () => cache.free(run + PS, Pool.DEFAULT), 'a run page twice');
  cache.flush();
  vm.freePages(run, Pool.DEFAULT, 0);
  vm.freePages(run + 2 * PS, Pool.DEFAULT, 0);
  verify(vm, { deep: true, heldPages: 0 });
});

test('drainStep without a budget, or NaN, throws and drains nothing', () => {
  const vm = machine();
  const lazy = vm.lazyPages();
  for (const b of [undefined, Number.NaN, 0, -1, 1.5, '2']) {
    refused(vm, 'EBUDGET', () => vm.drainStep(b as number), `drainStep(${String(b)})`);
  }
  assert.equal(vm.defaultFreePool, Pool.LAZYINIT);
  assert.equal(vm.lazyPages(), lazy);
});

test('findRange with NaN bounds throws before draining', () => {
  const vm = machine();
  refused(vm, 'ERANGE', () => vm.findRange(0, 0, 1, Number.NaN, 2 ** 40), 'NaN low');
  refused(vm, 'ERANGE', () => vm.findRange(0, 0, 1, 0, Number.NaN), 'NaN high');
  assert.ok(vm.lazyPages() > 0);
});

test('options, startup mode and order are validated with typed errors that name them', () => {
  for (const opts of [{ maxRuns: -1 }, { maxRuns: 1.5 }, { maxRuns: 2 ** 40 }, { shared: 1 }, { profile: {} }]) {
    assert.throws(
      () => new VmPhys(opts as never),
      (e: unknown) => e instanceof VmPhysError && e.code === 'EOPTION',
      JSON.stringify(opts),
    );
  }
  const vm = new VmPhys({ shared: false });
  vm.addSeg(0x100000, 0x200000);
  vm.init();
  refused(vm, 'EMODE', () => vm.startup('bogus' as never), "startup('bogus')");
  assert.equal(vm.phase, 1);
  vm.startup('lazy');
  const e = refused(vm, 'EORDER', () => vm.allocPages(0, Pool.DEFAULT, '3' as never), "order '3'");
  assert.match(e.message, /not an integer/);
});

test('messages never print 0x0x, 0x- or 0xNaN', () => {
  assert.equal(hex(0x1000), '0x1000');
  assert.equal(hex(0), '0');
  assert.equal(hex(-0x1000), '-0x1000');
  assert.equal(hex(Number.NaN), 'NaN');
  const vm = machine();
  for (const a of [Number.NaN, -0x1000, 4096.5, '0x1000', 2 ** 60]) {
    assert.throws(
      () => vm.freePages(a as number, Pool.DEFAULT, 0),
      (e: unknown) => e instanceof VmPhysError && !/0x0x|0x-|0xNaN/.test(e.message),
    );
  }
});

test('reserving all of RAM leaves no RAM free', () => {
  const map = firecrackerMap(64 * 1024 * 1024);
  const { vm, availBytes } = bootFromMap(map, { mode: 'lazy', shared: false, reserve: map.ram });
  assert.equal(availBytes, 0);
  assert.equal(vm.counts().total, 0);
  assert.deepEqual(vm.availRanges(), []);
  // Boot pages are allocated since boot: freeing one is accepted once.
  const pa = map.ram[map.ram.length - 1].start;
  vm.freePages(pa, Pool.DEFAULT, 0);
  assert.equal(vm.counts().total, 1);
  refused(vm, 'EDOUBLEFREE', () => vm.freePages(pa, Pool.DEFAULT, 0), 'a boot page twice');
});
