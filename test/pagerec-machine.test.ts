/**
 * Page records wired into the allocator: the golden vectors with struct vm_page records on and
 * off; after any operation every initialised page's record holds vm_page_init_page's values and
 * checked reads of order/pool/segind agree with the allocator (property test, both modes, run in
 * lockstep: records never change a choice); eager and fully drained lazy machines end with the
 * same records and the same count of initialised pages; uninitialised pages read their initial
 * values; snapshots carry records.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { firecrackerMap } from '../src/boot/ramspec.js';
import { bootFromMap } from '../src/boot/startup.js';
import { listVectors, readVectorFile } from '../src/cli/conformance.js';
import { dataPath } from '../src/cli/paths.js';
import { allocContig } from '../src/core/contig.js';
import { STAT } from '../src/core/layout.js';
import type { Layout } from '../src/core/pagerec/layout.js';
import { amd64, arm64, Pool, type Profile } from '../src/core/params.js';
import { orderAt, poolAt } from '../src/core/queues.js';
import { segOfIdx } from '../src/core/segments.js';
import { restore, snapshot } from '../src/core/snapshot.js';
import { verify } from '../src/core/verify.js';
import { VmPhys } from '../src/core/vmphys.js';
import { ScriptRunner } from '../src/script/run.js';

/** Fields the allocator owns (their bytes hold the values written at initialisation). */
const LIVE = new Set(['order', 'pool']);

function get(dv: DataView, off: number, type: string): number | bigint {
  switch (type) {
    case 'u8':
      return dv.getUint8(off);
    case 'i8':
      return dv.getInt8(off);
    case 'u16':
      return dv.getUint16(off, true);
    case 'i16':
      return dv.getInt16(off, true);
    case 'u32':
      return dv.getUint32(off, true);
    case 'i32':
      return dv.getInt32(off, true);
    case 'f64':
      return dv.getFloat64(off, true);
    default:
      return dv.getBigUint64(off, true);
  }
}

/** vm_page_init_page's value of field f for page idx, computed from the layout alone (not LIVE fields). */
function initValue(l: Layout, f: Layout['fields'][number], idx: number, pa: number, seg: number): number | bigint {
  const i = f.init;
  if (i.kind === 'const') return i.value;
  if (i.kind === 'self') return BigInt.asUintN(64, l.pointerBase + BigInt(idx * l.size + i.self));
  if (i.kind === 'none') return f.type === 'u64' ? 0n : 0;
  if (i.source === 'phys_addr') return f.type === 'u64' ? BigInt(pa) : pa;
  return seg; // segind
}

/**
 * Every initialised page: raw bytes of every non-live field = vm_page_init_page's values; checked
 * reads of order, pool and segind = the allocator's. Returns the number of pages checked.
 */
function checkRecords(vm: VmPhys): number {
  const r = vm.records;
  const l = r.layout;
  const s = vm.state;
  const dvs = r.buffers.map((b) => new DataView(b));
  let n = 0;
  for (let idx = 0; idx < vm.totalPages; idx++) {
    if (s.meta[idx] === 0) continue;
    n++;
    const b = Math.floor(idx / r.pagesPerBuffer);
    const base = (idx - b * r.pagesPerBuffer) * l.size;
    const seg = segOfIdx(s, idx);
    const pa = vm.paOf(idx);
    for (const f of l.fields) {
      if (LIVE.has(f.name)) continue;
      const want = initValue(l, f, idx, pa, seg);
      const got = get(dvs[b], base + f.offset, f.type);
      if (got !== want)
        assert.fail(`page ${idx} field ${f.name}: record holds ${got}, vm_page_init_page wrote ${want}`);
    }
    if (r.read(idx, 'order') !== orderAt(s, idx)) assert.fail(`page ${idx}: order disagrees`);
    if (r.read(idx, 'pool') !== poolAt(s, idx)) assert.fail(`page ${idx}: pool disagrees`);
    if (r.read(idx, 'segind') !== seg) assert.fail(`page ${idx}: segind disagrees`);
  }
  return n;
}

describe('golden vectors with page records', () => {
  const dir = dataPath('golden');
  const names = listVectors(dir);
  // Records of machines above this size cost seconds of first-touch page faults each (a 128 GiB
  // guest's struct vm_page array is 3.5 GB); those vectors run with records through
  // `VMPHYS_PAGE_STRUCT=freebsd vmphys conformance` (or here with VMPHYS_ALL_GOLDEN=1).
  const budget = process.env.VMPHYS_ALL_GOLDEN === '1' ? Infinity : 64 * 2 ** 20;
  let ran = 0;
  for (const name of names) {
    test(`golden ${name}: none and freebsd give the expected output`, () => {
      const input = readVectorFile(dir, `${name}.in`);
      const expected = readVectorFile(dir, `${name}.out`);
      for (const mode of ['none', 'freebsd'] as const) {
        const runner = new ScriptRunner({}, false, mode);
        const out: string[] = [];
        for (const line of input.split('\n')) {
          out.push(runner.exec(line));
          if (mode === 'freebsd' && runner.vm && runner.vm.phase >= 1 && runner.vm.pageStructBytes > budget) break;
        }
        const vm = runner.vm;
        if (mode === 'freebsd' && vm && vm.phase >= 1 && vm.pageStructBytes > budget) continue;
        assert.equal(out.join(''), expected, `${name} (${mode})`);
        if (mode === 'freebsd' && vm) {
          assert.equal(vm.records.active, vm.phase >= 1 && vm.totalPages > 0);
          if (vm.phase === 2 && vm.totalPages <= 1 << 16) checkRecords(vm);
          ran++;
        }
        if (mode === 'none' && vm) assert.equal(vm.records.buffers.length, 0);
      }
    });
  }
  test('most vectors ran with freebsd records', () => {
    console.log(`golden vectors run with freebsd records: ${ran} of ${names.length}`);
    assert.ok(ran >= names.length * 0.6, `${ran} of ${names.length}`);
  });
});

/** A small two-segment machine with a DMA32 boundary inside, lazy runs, unaligned ends. */
function machine(profile: Profile, mode: 'lazy' | 'eager', pageStruct: 'freebsd' | 'none'): VmPhys {
  const vm = new VmPhys({ profile, shared: false, pageStruct });
  const chunk = profile.pageSize << (profile.nFreeOrder - 1);
  vm.addSeg(0x1000 * 3, 0x9f000);
  vm.addSeg(chunk - 5 * profile.pageSize, 4 * chunk + 7 * profile.pageSize);
  vm.addAvail(0x1000 * 3, 0x9f000);
  vm.addAvail(chunk - 5 * profile.pageSize, 2 * chunk + 3 * profile.pageSize);
  vm.addAvail(2 * chunk + 9 * profile.pageSize, 4 * chunk + 7 * profile.pageSize);
  vm.init();
  vm.startup(mode);
  return vm;
}

type Op =
  | { k: 'alloc'; order: number; pool: number }
  | { k: 'free'; pick: number }
  | { k: 'npages'; n: number }
  | { k: 'drain'; budget: number }
  | { k: 'unfree'; page: number }
  | { k: 'contig'; n: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant('alloc' as const), order: fc.nat(12), pool: fc.constantFrom(Pool.DEFAULT, Pool.DIRECT) }),
  fc.record({ k: fc.constant('free' as const), pick: fc.nat() }),
  fc.record({ k: fc.constant('npages' as const), n: fc.integer({ min: 1, max: 600 }) }),
  fc.record({ k: fc.constant('drain' as const), budget: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ k: fc.constant('unfree' as const), page: fc.nat() }),
  fc.record({ k: fc.constant('contig' as const), n: fc.integer({ min: 1, max: 5000 }) }),
);

/** Apply op to vm; returns what it did (compared across the two machines). */
function apply(vm: VmPhys, held: Array<[number, number, number]>, op: Op): string {
  switch (op.k) {
    case 'alloc': {
      const a = vm.allocPages(0, op.pool, op.order);
      if (a !== null) held.push([a, op.pool, op.order]);
      return String(a);
    }
    case 'free': {
      if (held.length === 0) return '-';
      const [a, pool, order] = held.splice(op.pick % held.length, 1)[0];
      vm.freePages(a, pool, order);
      return `f${a}`;
    }
    case 'npages': {
      const out: number[] = [];
      const n = vm.allocNpages(0, Pool.DEFAULT, op.n, out);
      for (let i = 0; i < n; i++) held.push([out[i], Pool.DEFAULT, 0]);
      return out.slice(0, n).join(',');
    }
    case 'drain':
      return String(vm.drainStep(op.budget));
    case 'unfree': {
      const idx = op.page % vm.totalPages;
      return String(vm.unfreePage(vm.paOf(idx)));
    }
    case 'contig': {
      const a = allocContig(vm, 0, op.n, 0, 2 ** 40, vm.pageSize, 0);
      if (a !== null) for (let i = 0; i < op.n; i++) held.push([a + i * vm.pageSize, Pool.DEFAULT, 0]);
      return String(a);
    }
  }
}

describe('records after any operation', () => {
  for (const profile of [amd64, arm64]) {
    test(`${profile.name}: records hold vm_page_init_page's values; none and freebsd make the same choices`, () => {
      fc.assert(
        fc.property(
          fc.constantFrom('lazy' as const, 'eager' as const),
          fc.array(opArb, { maxLength: 25 }),
          (mode, ops) => {
            const on = machine(profile, mode, 'freebsd');
            const off = machine(profile, mode, 'none');
            assert.equal(off.records.active, false);
            assert.equal(off.pageStructBytes, 0);
            assert.equal(on.pageStructBytes, on.totalPages * 104);
            const hOn: Array<[number, number, number]> = [];
            const hOff: Array<[number, number, number]> = [];
            checkRecords(on);
            for (const op of ops) {
              assert.equal(apply(on, hOn, op), apply(off, hOff, op), JSON.stringify(op));
              checkRecords(on);
            }
            assert.equal(on.state.c.stats[STAT.PAGES_INITIALIZED], off.state.c.stats[STAT.PAGES_INITIALIZED]);
            verify(on);
          },
        ),
        { numRuns: 30 },
      );
    });
  }
});

describe('eager and drained lazy machines', () => {
  for (const mib of [128, 1024]) {
    test(`firecracker ${mib} MiB: same pages initialised, same records (the pool byte aside)`, () => {
      const m = firecrackerMap(mib * 2 ** 20);
      const eager = bootFromMap(m, { mode: 'eager', shared: false, pageStruct: 'freebsd' }).vm;
      const lazy = bootFromMap(m, { mode: 'lazy', shared: false, pageStruct: 'freebsd' }).vm;
      const atReady = lazy.state.c.stats[STAT.PAGES_INITIALIZED];
      assert.ok(atReady < 64, `lazy start-up initialised ${atReady} pages`);
      lazy.drain();
      const want = { 128: 32670, 1024: 262046 }[mib];
      assert.equal(eager.state.c.stats[STAT.PAGES_INITIALIZED], want);
      assert.equal(lazy.state.c.stats[STAT.PAGES_INITIALIZED], want);
      const a = new Uint8Array(eager.records.buffers[0]);
      const b = new Uint8Array(lazy.records.buffers[0]);
      assert.equal(a.length, b.length);
      // m->pool differs as it does in FreeBSD: eager vm_page_init_page writes DEFAULT, the lazy
      // path writes LAZYINIT on heads and VM_NFREEPOOL on the pages finish_init reaches.
      const poolOff = eager.records.layout.fields.find((f) => f.name === 'pool')?.offset ?? -1;
      let diff = 0;
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && i % 104 !== poolOff) diff++;
      assert.equal(diff, 0);
      // Checked reads agree with each machine's allocator.
      assert.ok(checkRecords(eager) === want && checkRecords(lazy) === want);
    });
  }

  test('the drainer path (take, finish, put) and the whole-run drain leave the same records', () => {
    const m = firecrackerMap(256 * 2 ** 20);
    const a = bootFromMap(m, { mode: 'lazy', shared: false, pageStruct: 'freebsd' }).vm;
    const b = bootFromMap(m, { mode: 'lazy', shared: false, pageStruct: 'freebsd' }).vm;
    a.drain(); // whole runs at once
    while (!b.drainStep(1)) {} // one block per step: the per-chunk path for the first chunks
    assert.deepEqual(new Uint8Array(a.records.buffers[0]), new Uint8Array(b.records.buffers[0]));
  });
});

describe('reads, snapshots', () => {
  test('a page not yet initialised reads its initial values; an implicit lazy head reads LAZYINIT, max order', () => {
    const vm = bootFromMap(firecrackerMap(128 * 2 ** 20), { mode: 'lazy', shared: false, pageStruct: 'freebsd' }).vm;
    const s = vm.state;
    let implicit = -1;
    let tail = -1;
    for (let i = 0; i < vm.totalPages && (implicit < 0 || tail < 0); i++) {
      if (s.meta[i] !== 0) continue;
      if (orderAt(s, i) === vm.maxOrder && implicit < 0) implicit = i;
      else if (orderAt(s, i) === vm.nOrd && tail < 0) tail = i;
    }
    assert.ok(implicit > 0 && tail > 0);
    const r = vm.records;
    assert.equal(r.read(implicit, 'order'), vm.maxOrder);
    assert.equal(r.read(implicit, 'pool'), Pool.LAZYINIT);
    assert.equal(r.read(tail, 'busy_lock'), 0xfffffffe);
    assert.equal(r.read(tail, 'a.queue'), 255);
    assert.equal(r.read(tail, 'phys_addr'), BigInt(vm.paOf(tail)));
    assert.equal(r.read(tail, 'md.pat_mode'), 6);
    // The raw view shows an untouched record as zero bytes.
    const v = vm.pageField('busy_lock');
    assert.equal(v.arrays[0][tail * v.step + v.index], 0);
    // Allocating it initialises it: now the bytes hold the values.
    const page = vm.paddrToPage(vm.paOf(tail));
    assert.equal(page, tail);
  });

  test('snapshot and restore carry the records; a machine without records has none after restore', () => {
    const vm = bootFromMap(firecrackerMap(64 * 2 ** 20), { mode: 'lazy', shared: false, pageStruct: 'freebsd' }).vm;
    const a = vm.allocPages(0, Pool.DEFAULT, 3);
    assert.ok(a !== null);
    const idx = vm.paddrToPage(a);
    vm.records.write(idx, 'ref_count', 7);
    const back = restore(snapshot(vm), { shared: false });
    assert.equal(back.records.layout.name, 'freebsd-amd64');
    assert.equal(back.records.read(idx, 'ref_count'), 7);
    assert.deepEqual(new Uint8Array(back.records.buffers[0]), new Uint8Array(vm.records.buffers[0]));
    back.records.write(idx, 'ref_count', 0); // as vm_page_free would leave it
    checkRecords(back);
    // The restored machine keeps writing records.
    back.drain();
    checkRecords(back);
    const plain = bootFromMap(firecrackerMap(64 * 2 ** 20), { mode: 'lazy', shared: false }).vm;
    assert.equal(restore(snapshot(plain), { shared: false }).records.active, false);
  });
});
