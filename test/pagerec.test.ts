/**
 * Page-record array: struct vm_page layouts (offsets from FreeBSD's headers), vm_page_init_page's
 * values field by field, bulk writer = per-page writer, buffer splitting, checked reads against an
 * allocator, user layouts and their JSON form, typed layout errors, worker attach, lazy reservation.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { VmPhysError } from '../src/core/errors.js';
import {
  builtinLayout,
  defineLayout,
  freebsdLayout,
  type Layout,
  LayoutError,
  layoutToJson,
  NONE_LAYOUT,
  parseLayoutJson,
  recordBytes,
} from '../src/core/pagerec/layout.js';
import { PageRecords, type PageStateSource, RecordError } from '../src/core/pagerec/records.js';
import { amd64, arm64, Pool } from '../src/core/params.js';
import { orderAt, poolAt } from '../src/core/queues.js';
import { segOfIdx } from '../src/core/segments.js';
import { VmPhys } from '../src/core/vmphys.js';

const PAGE = 4096;

function offsets(l: Layout): Record<string, number> {
  return Object.fromEntries(l.fields.map((f) => [f.name, f.offset]));
}

/** Every byte of every record buffer, as one array. */
function bytes(r: PageRecords): number[] {
  const out: number[] = [];
  for (const b of r.buffers) out.push(...new Uint8Array(b));
  return out;
}

describe('struct vm_page layouts', () => {
  for (const p of [amd64, arm64]) {
    test(`${p.name}: 104 bytes, vm_page.h offsets`, () => {
      const l = freebsdLayout(p);
      assert.equal(l.size, 104);
      assert.equal(l.align, 8);
      const o = offsets(l);
      assert.deepEqual(
        [
          o['plinks.q.tqe_next'],
          o['listq.tqe_next'],
          o.object,
          o.pindex,
          o.phys_addr,
          o['md.pv_list.tqh_first'],
          o['md.pv_list.tqh_last'],
          o['md.pv_gen'],
        ],
        [0, 16, 32, 40, 48, 56, 64, 72],
      );
      assert.deepEqual(
        [o.ref_count, o.busy_lock, o['a.flags'], o['a.queue'], o['a.act_count'], o.order, o.pool, o.flags, o.oflags],
        [80, 84, 88, 90, 91, 92, 93, 94, 95],
      );
      assert.deepEqual([o.psind, o.segind, o.valid, o.dirty], [96, 97, 98, 99]);
      assert.equal(p.name === 'amd64' ? o['md.pat_mode'] : o['md.pv_memattr'], 76);
      assert.equal(recordBytes(l, 262144), 262144 * 104);
    });
  }
  test('builtinLayout names; unknown name is a typed error', () => {
    assert.equal(builtinLayout('freebsd', amd64).name, 'freebsd-amd64');
    assert.equal(builtinLayout('none', arm64), NONE_LAYOUT);
    assert.throws(
      () => builtinLayout('linux', amd64),
      (e) => e instanceof LayoutError && e.code === 'ELAYOUT_NAME',
    );
  });
});

/** The values vm_page_init_page (and pmap_page_init) leave in page idx's record. */
function expected(
  l: Layout,
  idx: number,
  pa: number,
  seg: number,
  pool: number,
  order: number,
): Record<string, number | bigint> {
  const amd = l.name.endsWith('amd64');
  const md: Record<string, number> = amd ? { 'md.pat_mode': 6 } : { 'md.pv_memattr': 2 };
  return {
    'plinks.q.tqe_next': 0n,
    'plinks.q.tqe_prev': 0n,
    'listq.tqe_next': 0n,
    'listq.tqe_prev': 0n,
    object: 0n,
    pindex: 0n,
    phys_addr: BigInt(pa),
    'md.pv_list.tqh_first': 0n,
    'md.pv_list.tqh_last': (amd ? 0xfffffe0000000000n : 0xffff000000000000n) + BigInt(idx * 104 + 56),
    'md.pv_gen': 0,
    ...md,
    ref_count: 0,
    busy_lock: 0xfffffffe, // VPB_FREED
    'a.flags': 0,
    'a.queue': 255, // PQ_NONE
    'a.act_count': 0,
    order,
    pool,
    flags: 0,
    oflags: 0,
    psind: 0,
    segind: seg,
    valid: 0,
    dirty: 0,
  };
}

describe('vm_page_init_page writes', () => {
  for (const p of [amd64, arm64]) {
    test(`${p.name}: every field of every initialised record`, () => {
      const l = freebsdLayout(p);
      const r = PageRecords.create(l, 40, { shared: false });
      // Two ranges in different segments, one of them past 4 GiB so phys_addr needs its high half.
      r.initRange(3, 20, 0x100000 + 3 * PAGE, 1, Pool.LAZYINIT, p.nFreeOrder);
      r.initRange(30, 5, 0x1_0000_0000, 2, Pool.DEFAULT, p.nFreeOrder);
      r.initPage(39, 0x2_0000_0000, 3, p.nFreePool, p.nFreeOrder);
      for (let i = 0; i < 40; i++) {
        let want: Record<string, number | bigint> | null = null;
        if (i >= 3 && i < 23) want = expected(l, i, 0x100000 + i * PAGE, 1, Pool.LAZYINIT, p.nFreeOrder);
        if (i >= 30 && i < 35) want = expected(l, i, 0x1_0000_0000 + (i - 30) * PAGE, 2, Pool.DEFAULT, p.nFreeOrder);
        if (i === 39) want = expected(l, i, 0x2_0000_0000, 3, p.nFreePool, p.nFreeOrder);
        for (const f of l.fields) {
          const got = r.read(i, f.name);
          if (want === null) assert.equal(got, f.type === 'u64' ? 0n : 0, `page ${i} ${f.name} untouched`);
          else assert.equal(got, want[f.name], `page ${i} ${f.name}`);
        }
      }
    });
  }

  test('a pointer base whose low half carries across pages', () => {
    const l = defineLayout({
      name: 'carry',
      pointerBase: 0xffff_ffff_ffff_ff00n,
      fields: [
        { name: 'pa', type: 'u64', init: 'phys_addr' },
        { name: 'me', type: 'u64', init: { self: 8 } },
      ],
    });
    const r = PageRecords.create(l, 32, { shared: false });
    r.initRange(0, 32, 2 ** 32 - 3 * PAGE, 0, 0, 0);
    for (let i = 0; i < 32; i++) {
      assert.equal(r.read(i, 'pa'), BigInt(2 ** 32 - 3 * PAGE + i * PAGE));
      assert.equal(r.read(i, 'me'), (0xffff_ffff_ffff_ff00n + BigInt(i * 16 + 8)) & ((1n << 64n) - 1n));
    }
  });
});

/** A user layout with no fused fast path: f64 address, two self pointers, u16 sources. */
const USER = defineLayout({
  name: 'emu',
  pointerBase: '0x7000000000',
  fields: [
    { name: 'owner', type: 'u32', init: 7 },
    { name: 'refs', type: 'i16', init: -1 },
    { name: 'order', type: 'u16', init: 'order' },
    { name: 'addr', type: 'f64', init: 'phys_addr' },
    { name: 'link', type: 'u64', init: { self: 0 } },
    { name: 'link2', type: 'u64', init: { self: 16 } },
    { name: 'pool', type: 'u8', init: 'pool' },
    { name: 'seg', type: 'i8', init: 'segind' },
    { name: 'note', type: 'f64' },
  ],
});

describe('bulk writer = per-page writer', () => {
  for (const [name, l] of [
    ['freebsd-amd64', freebsdLayout(amd64)],
    ['freebsd-arm64', freebsdLayout(arm64)],
    ['user', USER],
  ] as const) {
    test(`${name}: random ranges, buffers split every few records`, () => {
      const pages = 300;
      fc.assert(
        fc.property(
          fc.array(
            fc.record({
              first: fc.integer({ min: 0, max: pages - 1 }),
              len: fc.integer({ min: 1, max: 200 }),
              pa: fc.integer({ min: 0, max: 2 ** 40 }).map((x) => x * PAGE),
              seg: fc.integer({ min: 0, max: 63 }),
              pool: fc.integer({ min: 0, max: 3 }),
              order: fc.integer({ min: 0, max: 13 }),
            }),
            { maxLength: 6 },
          ),
          fc.integer({ min: 1, max: 70 }),
          (ops, perBuffer) => {
            const max = perBuffer * l.size + (perBuffer % 3);
            const bulk = PageRecords.create(l, pages, { shared: false, maxBufferBytes: max });
            const one = PageRecords.create(l, pages, { shared: perBuffer % 2 === 0 });
            for (const o of ops) {
              const n = Math.min(o.len, pages - o.first);
              bulk.initRange(o.first, n, o.pa, o.seg, o.pool, o.order);
              for (let k = 0; k < n; k++) one.initPage(o.first + k, o.pa + k * PAGE, o.seg, o.pool, o.order);
            }
            assert.equal(bulk.buffers.length, Math.ceil(pages / perBuffer));
            assert.deepEqual(bytes(bulk), bytes(one));
          },
        ),
        { numRuns: 60 },
      );
    });
  }
});

describe('storage', () => {
  test('split: pages never straddle buffers; fieldView indexing reaches every page', () => {
    const l = freebsdLayout(amd64);
    const r = PageRecords.create(l, 23, { maxBufferBytes: 5 * 104 + 3 });
    assert.equal(r.pagesPerBuffer, 5);
    assert.deepEqual(
      r.buffers.map((b) => b.byteLength),
      [520, 520, 520, 520, 312],
    );
    assert.ok(r.buffers[0] instanceof SharedArrayBuffer);
    r.initRange(0, 23, 0x40000000, 4, Pool.DEFAULT, 13);
    const v = r.fieldView('phys_addr');
    const seg = r.fieldView('segind');
    assert.equal(v.step, 13);
    assert.equal(v.index, 6);
    for (let i = 0; i < 23; i++) {
      const b = Math.floor(i / v.pagesPerBuffer);
      const k: number = (i % v.pagesPerBuffer) * v.step + v.index;
      assert.equal(v.arrays[b][k], BigInt(0x40000000 + i * PAGE));
      assert.equal(seg.arrays[b][(i % seg.pagesPerBuffer) * seg.step + seg.index], 4);
    }
  });

  test('none: no buffers, writers do nothing, zero bytes', () => {
    const r = PageRecords.create(NONE_LAYOUT, 1 << 20);
    assert.equal(r.active, false);
    assert.equal(r.buffers.length, 0);
    assert.equal(r.byteLength, 0);
    r.initRange(0, 1 << 20, 0, 0, 0, 0);
    assert.equal(recordBytes(NONE_LAYOUT, 1 << 20), 0);
  });

  test('a sparse 1 TiB machine: 28 GB of records reserved in 4 GiB buffers without touching them', () => {
    const pages = 2 ** 40 / PAGE;
    const l = freebsdLayout(amd64);
    const before = process.memoryUsage().rss;
    const r = PageRecords.create(l, pages);
    assert.equal(r.byteLength, pages * 104);
    assert.equal(r.buffers.length, Math.ceil((pages * 104) / (Math.floor(2 ** 32 / 104) * 104)));
    // Initialise the first pages of a few buffers, as a lazy boot initialises chunk heads.
    for (let b = 0; b < r.buffers.length; b++) r.initPage(b * r.pagesPerBuffer, b * r.pagesPerBuffer * PAGE, 0, 0, 13);
    const grown = process.memoryUsage().rss - before;
    assert.ok(grown < 8 * 1024 * 1024, `RSS grew by ${grown} bytes`);
    assert.equal(r.read(r.pagesPerBuffer * 2, 'phys_addr'), BigInt(r.pagesPerBuffer * 2 * PAGE));
  });

  test('bad arguments are typed errors', () => {
    const r = PageRecords.create(freebsdLayout(amd64), 4, { shared: false });
    const is = (code: string) => (e: unknown) =>
      e instanceof RecordError && e instanceof VmPhysError && e.code === code;
    assert.throws(() => r.read(4, 'object'), is('ERECORD_INDEX'));
    assert.throws(() => r.read(-1, 'object'), is('ERECORD_INDEX'));
    assert.throws(() => r.read(0, 'nosuch'), is('ERECORD_FIELD'));
    assert.throws(() => r.write(0, 'a.queue', 256), is('ERECORD_VALUE'));
    assert.throws(() => r.write(0, 'object', 5), is('ERECORD_VALUE'));
    assert.throws(() => PageRecords.create(freebsdLayout(amd64), 1.5), is('ERECORD_INDEX'));
    assert.throws(() => PageRecords.create(freebsdLayout(amd64), 4, { maxBufferBytes: 100 }), is('ERECORD_ATTACH'));
    const d = r.descriptor();
    assert.throws(() => PageRecords.attach({ ...d, buffers: [new ArrayBuffer(8)] }), is('ERECORD_ATTACH'));
  });
});

/** A tiny allocator stand-in: pages 0..15 of one segment at 1 MiB; some initialised. */
class FakeSource implements PageStateSource {
  init = new Set<number>();
  pool = new Map<number, number>();
  order = new Map<number, number>();
  isInitialized(idx: number): boolean {
    return this.init.has(idx);
  }
  paOf(idx: number): number {
    return 0x100000 + idx * PAGE;
  }
  segOfIdx(_idx: number): number {
    return 5;
  }
  poolAt(idx: number): number {
    return this.pool.get(idx) ?? Pool.LAZYINIT;
  }
  orderAt(idx: number): number {
    return this.order.get(idx) ?? 13;
  }
}

describe('checked reads', () => {
  test('uninitialised pages read their initial values; order/pool/segind follow the allocator', () => {
    const l = freebsdLayout(amd64);
    const r = PageRecords.create(l, 16, { shared: false });
    const src = new FakeSource();
    r.setSource(src);
    // Page 4 is initialised (as a chunk head), then the allocator changes its order and pool.
    r.initPage(4, src.paOf(4), 5, Pool.LAZYINIT, 13);
    src.init.add(4);
    src.order.set(4, 2);
    src.pool.set(4, Pool.DEFAULT);
    r.write(4, 'ref_count', 3);
    assert.equal(r.read(4, 'order'), 2);
    assert.equal(r.read(4, 'pool'), Pool.DEFAULT);
    assert.equal(r.read(4, 'ref_count'), 3);
    // The raw bytes still hold the values written at initialisation, until synced.
    const ord = r.fieldView('order');
    assert.equal(ord.arrays[0][4 * ord.step + ord.index], 13);
    r.syncLive(0, 16);
    assert.equal(ord.arrays[0][4 * ord.step + ord.index], 2);
    assert.equal(ord.arrays[0][5 * ord.step + ord.index], 0, 'uninitialised pages are not written by syncLive');
    // Page 9 was never initialised: its bytes are zero, but a checked read is never garbage.
    for (const [f, v] of Object.entries(expected(l, 9, src.paOf(9), 5, Pool.LAZYINIT, 13))) {
      assert.equal(r.read(9, f), v, f);
    }
    assert.equal(
      new Uint8Array(r.buffers[0], 9 * 104, 104).every((x) => x === 0),
      true,
    );
    r.setSource(null);
    assert.equal(r.read(9, 'busy_lock'), 0, 'without a source a read returns the stored bytes');
  });

  test('VmPhys provides the source methods the record API consults', () => {
    const vm = new VmPhys({ shared: false });
    vm.addSeg(0x100000, 0x100000 + 64 * PAGE);
    vm.init();
    vm.startup('eager');
    const src: PageStateSource = {
      isInitialized: (i) => vm.state.meta[i] !== 0,
      paOf: (i) => vm.paOf(i),
      segOfIdx: (i) => segOfIdx(vm.state, i),
      poolAt: (i) => poolAt(vm.state, i),
      orderAt: (i) => orderAt(vm.state, i),
    };
    const r = PageRecords.create(freebsdLayout(amd64), vm.totalPages, { shared: false });
    r.initRange(0, vm.totalPages, vm.paOf(0), segOfIdx(vm.state, 0), vm.nPool, orderAt(vm.state, vm.totalPages - 1));
    r.setSource(src);
    for (let i = 0; i < vm.totalPages; i++) {
      assert.equal(r.read(i, 'order'), orderAt(vm.state, i));
      assert.equal(r.read(i, 'pool'), poolAt(vm.state, i));
      assert.equal(r.read(i, 'segind'), segOfIdx(vm.state, i));
      assert.equal(r.read(i, 'phys_addr'), BigInt(vm.paOf(i)));
    }
  });
});

describe('user layouts and JSON', () => {
  test('natural packing, explicit size, round trip through JSON text', () => {
    const l = defineLayout({
      name: 'p',
      fields: [
        { name: 'a', type: 'u8' },
        { name: 'b', type: 'u32', init: 0xdeadbeef },
        { name: 'c', type: 'u8' },
        { name: 'd', type: 'u64', init: '0xffffffffffffffff' },
        { name: 'e', type: 'i32', offset: 28, init: -5 },
      ],
    });
    assert.deepEqual(
      l.fields.map((f) => [f.name, f.offset]),
      [
        ['a', 0],
        ['b', 4],
        ['c', 8],
        ['d', 16],
        ['e', 28],
      ],
    );
    assert.equal(l.size, 32);
    const again = parseLayoutJson(JSON.stringify(layoutToJson(l)));
    assert.deepEqual(again, l);
    const r = PageRecords.create(again, 3, { shared: false });
    r.initRange(0, 3, 0, 0, 0, 0);
    assert.equal(r.read(2, 'd'), 0xffffffffffffffffn);
    assert.equal(r.read(2, 'e'), -5);
    assert.equal(r.read(1, 'b'), 0xdeadbeef);
    for (const l2 of [freebsdLayout(amd64), freebsdLayout(arm64), USER]) {
      assert.deepEqual(parseLayoutJson(JSON.stringify(layoutToJson(l2))), l2);
    }
  });

  const bad: Array<[string, string]> = [
    ['{not json', 'ELAYOUT_JSON'],
    ['[]', 'ELAYOUT_JSON'],
    ['{"name":"x"}', 'ELAYOUT_JSON'],
    ['{"name":"x","fields":[],"extra":1}', 'ELAYOUT_JSON'],
    ['{"name":"x","fields":[{"name":"a","type":"u8","ofset":1}]}', 'ELAYOUT_JSON'],
    ['{"name":"x","fields":[{"name":"a","type":"u8","init":[1]}]}', 'ELAYOUT_JSON'],
    ['{"name":"","fields":[]}', 'ELAYOUT_NAME'],
    ['{"name":"x","fields":[{"name":"a","type":"u8"},{"name":"a","type":"u8"}]}', 'ELAYOUT_NAME'],
    ['{"name":"x","fields":[{"name":"a","type":"u24"}]}', 'ELAYOUT_TYPE'],
    ['{"name":"x","fields":[{"name":"a","type":"u32","offset":2}]}', 'ELAYOUT_ALIGN'],
    ['{"name":"x","size":12,"fields":[{"name":"a","type":"u64"}]}', 'ELAYOUT_ALIGN'],
    ['{"name":"x","size":70000,"fields":[]}', 'ELAYOUT_SIZE'],
    ['{"name":"x","size":4,"fields":[{"name":"a","type":"u64"}]}', 'ELAYOUT_SIZE'],
    ['{"name":"x","fields":[{"name":"a","type":"u8","offset":-1}]}', 'ELAYOUT_SIZE'],
    [
      '{"name":"x","fields":[{"name":"a","type":"u32","offset":0},{"name":"b","type":"u16","offset":2}]}',
      'ELAYOUT_OVERLAP',
    ],
    ['{"name":"x","fields":[{"name":"a","type":"u8","init":256}]}', 'ELAYOUT_INIT'],
    ['{"name":"x","fields":[{"name":"a","type":"u32","init":"phys_addr"}]}', 'ELAYOUT_INIT'],
    ['{"name":"x","fields":[{"name":"a","type":"u32","init":{"self":0}}]}', 'ELAYOUT_INIT'],
    ['{"name":"x","fields":[{"name":"a","type":"u64","init":{"self":8}}]}', 'ELAYOUT_INIT'],
    ['{"name":"x","fields":[{"name":"a","type":"u8","init":"segment"}]}', 'ELAYOUT_INIT'],
    ['{"name":"x","fields":[{"name":"a","type":"u64","init":"0x10000000000000000"}]}', 'ELAYOUT_INIT'],
  ];
  for (const [text, code] of bad) {
    test(`${code}: ${text}`, () => {
      assert.throws(
        () => parseLayoutJson(text),
        (e) => e instanceof LayoutError && e instanceof VmPhysError && e.code === code,
      );
    });
  }
});

describe('workers', () => {
  test('a worker attaches through the descriptor and writes a user field the main thread reads', async () => {
    const r = PageRecords.create(USER, 10, { maxBufferBytes: 4 * USER.size });
    r.initRange(0, 10, 0x200000, 1, Pool.DEFAULT, 13);
    const url = new URL('../src/core/pagerec/records.js', import.meta.url).href;
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(${JSON.stringify(url)}).then(({ PageRecords }) => {
        const r = PageRecords.attach(workerData);
        for (let i = 0; i < r.pages; i++) r.write(i, 'note', i * 1.5 + r.read(i, 'owner'));
        parentPort.postMessage(r.read(9, 'addr'));
      });`;
    const w = new Worker(code, { eval: true, workerData: r.descriptor() });
    const addr = await new Promise((res, rej) => {
      w.once('message', res);
      w.once('error', rej);
    });
    await w.terminate();
    assert.equal(addr, 0x200000 + 9 * PAGE);
    for (let i = 0; i < 10; i++) assert.equal(r.read(i, 'note'), i * 1.5 + 7);
  });
});
