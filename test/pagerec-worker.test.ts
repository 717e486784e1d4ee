/**
 * A user-declared page layout (the README's example) on a shared machine, used from a worker:
 * the worker attaches through the handle, allocates (initialising lazy memory, so it writes
 * records), sets a field of its pages; the main thread sees the records the allocator wrote and
 * the worker's field through a typed view.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { orderAt } from '../src/core/queues.js';
import { bootFromMap, defineLayout, firecrackerMap, Pool } from '../src/index.js';
import { handleOf } from '../src/workers/attach.js';

test('a user layout attached in a worker: the allocator writes it there, the main thread reads it', async () => {
  // --- the README example ---------------------------------------------------------------
  const layout = defineLayout({
    name: 'emu-page',
    fields: [
      { name: 'addr', type: 'u64', init: 'phys_addr' }, // the page's physical address
      { name: 'refs', type: 'u32', init: 0 }, // reference count
      { name: 'owner', type: 'i32', init: -1 }, // owning process id, -1 = free
      { name: 'order', type: 'u8', init: 'order' }, // follows the allocator
    ],
  });
  const { vm } = bootFromMap(firecrackerMap(256 * 2 ** 20), { mode: 'lazy', pageStruct: layout });
  const owner = vm.pageField('owner'); // Int32Array views, no per-page objects
  // ---------------------------------------------------------------------------------------
  assert.equal(layout.size, 24);
  assert.equal(vm.pageStructBytes, vm.totalPages * 24);

  const url = new URL('../src/workers/attach.js', import.meta.url).href;
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(${JSON.stringify(url)}).then(({ attach }) => {
      const vm = attach(workerData);
      const got = [];
      // Order 9 blocks: the first ones steal lazy chunks, whose pages are initialised here.
      for (let i = 0; i < 8; i++) {
        const pa = vm.allocPages(0, 1, 9);
        const idx = vm.paddrToPage(pa);
        for (let k = 0; k < 512; k++) vm.records.write(idx + k, 'owner', 42);
        got.push(pa);
      }
      parentPort.postMessage(got);
    });`;
  const w = new Worker(code, { eval: true, workerData: handleOf(vm) });
  const pas = await new Promise<number[]>((res, rej) => {
    w.once('message', res);
    w.once('error', rej);
  });
  await w.terminate();
  assert.equal(pas.length, 8);
  const per = owner.step;
  for (const pa of pas) {
    const idx = vm.paddrToPage(pa);
    for (let k = 0; k < 512; k++) {
      assert.equal(owner.arrays[0][(idx + k) * per + owner.index], 42);
      assert.equal(vm.records.read(idx + k, 'addr'), BigInt(pa + k * vm.pageSize));
      assert.equal(vm.records.read(idx + k, 'refs'), 0);
    }
  }
  // A page the worker's steal initialised but nobody allocated: initial values, owner -1.
  const spare = Math.max(...pas.map((pa) => vm.paddrToPage(pa))) + 512;
  assert.equal(vm.records.read(spare, 'owner'), -1);
  assert.equal(vm.records.read(spare, 'addr'), BigInt(vm.paOf(spare)));
  // order follows the allocator: the spare page heads a free block left by the split.
  assert.equal(vm.records.read(spare, 'order'), orderAt(vm.state, spare));
  assert.ok((vm.records.read(spare, 'order') as number) < vm.nOrd);
  assert.equal(vm.allocPages(0, Pool.DEFAULT, 0) !== null, true);
});
