/**
 * Tests of the trace replay (src/trace/replay.ts) and `vmphys replay` (src/cli/replay.ts).
 * Owned by the replay work. Counts are checked against an independent page-level model written
 * here (a Map from page to the traced allocation owning it), not against the replayer's own
 * bookkeeping.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import {
  FreeStackPeer,
  NaiveBuddyPeer,
  type PeerAllocator,
  replayThrough,
  ThingPeer,
  VmPhysIdxPeer,
} from '../bench/peers/adapters.js';
import { FifoBuddy } from '../bench/peers/fifo-buddy.js';
import { buildMachine, FIRECRACKER_128G, type MachineMapLike, subtractRanges } from '../src/boot/startup.js';
import { physFree } from '../src/core/sysctl.js';
import { verify } from '../src/core/verify.js';
import { parseTraceText } from '../src/trace/parse.js';
import { freePages, PfnTable, replayTrace, TraceReplayer } from '../src/trace/replay.js';
import { newResolvedEvents, R_ALLOC, R_FREE, R_LOST, R_SKIP, R_SPLIT, TraceResolver } from '../src/trace/resolve.js';

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) d = dirname(d);
  return d;
}
const ROOT = repoRoot();
const FIXTURE = join(ROOT, 'test', 'fixtures', 'trace-small.csv');
const tmp = mkdtempSync(join(tmpdir(), 'vmphys-replay-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A small machine for synthetic traces: 64 MiB above 16 MiB (DEFAULT… no: DMA32 list) plus low memory. */
const SMALL = {
  ram: [
    { start: 0x1000, end: 0x9f000 },
    { start: 0x100000, end: 0x8000000 },
  ],
};

interface ModelCounts {
  allocs: number;
  frees: number;
  matched: number;
  skipped: number;
  lost: number;
  held: number;
  /** An allocation landed on a page a live allocation owned, or a live head (the model is coarse then). */
  overlap: boolean;
}

/**
 * Independent model: every page of a live traced allocation maps to the allocation's head. A
 * free of (pfn, order) is matched when all its pages belong to one live allocation, else skipped.
 */
/** True when no traced allocation lands on a page that a live traced allocation still owns. */
function consistent(lines: string[]): boolean {
  return !model(lines).overlap;
}

function model(lines: string[]): ModelCounts {
  const owner = new Map<number, number>();
  const c: ModelCounts = { allocs: 0, frees: 0, matched: 0, skipped: 0, lost: 0, held: 0, overlap: false };
  for (const line of lines) {
    const cols = line.split(',');
    const pfn = Number.parseInt(cols[3], 16);
    const n = 2 ** Number(cols[4]);
    if (cols[2] === 'a') {
      c.allocs++;
      if (owner.get(pfn) === pfn) {
        c.lost++;
        // The model forgets every page of the old head; the replay frees only the live block
        // at pfn (a piece, if the old block was split). They agree only without splits.
        c.overlap = true;
        for (const [pg, h] of [...owner]) if (h === pfn) owner.delete(pg);
      }
      for (let i = 0; i < n; i++) {
        if (owner.has(pfn + i)) c.overlap = true;
        owner.set(pfn + i, pfn);
      }
    } else {
      c.frees++;
      const h = owner.get(pfn);
      let ok = h !== undefined && pfn % n === 0;
      for (let i = 0; ok && i < n; i++) ok = owner.get(pfn + i) === h;
      if (ok) {
        c.matched++;
        for (let i = 0; i < n; i++) owner.delete(pfn + i);
      } else c.skipped++;
    }
  }
  c.held = owner.size;
  return c;
}

/** Replay CSV text through a fresh replayer on `map`; returns it with its machine. */
function replayText(text: string, map: MachineMapLike = SMALL, mode: 'lazy' | 'eager' = 'lazy') {
  const vm = buildMachine(map, mode);
  const before = freePages(vm);
  const r = new TraceReplayer(vm, { sampleEvery: 4 });
  for (const c of parseTraceText(text)) r.run(c.op, c.pfn, c.order, c.flags, 0, c.count);
  return { vm, r, before };
}

const alloc = (pfn: number, order: number, mt = 0, gfp = 'GFP_KERNEL') =>
  `1.000000,000,a,0x${pfn.toString(16)},${order},${mt},${gfp}`;
const free = (pfn: number, order: number) => `1.000001,000,f,0x${pfn.toString(16)},${order},,`;

describe('replay of the small fixture (first 2000 lines of trace B)', () => {
  const lines = readFileSync(FIXTURE, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  const expected = model(lines);

  for (const mode of ['lazy', 'eager'] as const) {
    test(`${mode}: counts match the independent model; no failures; pages conserved; verify passes`, async () => {
      let held = -1;
      const rep = await replayTrace(FIXTURE, {
        build: () => buildMachine(undefined, mode),
        mode,
        sampleEvery: 100,
        onDone: (vm, r) => {
          held = r.counts().heldPages;
          verify(vm, { heldPages: held });
        },
      });
      assert.equal(rep.events, lines.length);
      assert.equal(rep.allocs, expected.allocs);
      assert.equal(rep.frees, expected.frees);
      assert.equal(rep.matchedFrees, expected.matched);
      assert.equal(rep.skippedFrees, expected.skipped);
      assert.equal(rep.lostFrees, expected.lost);
      assert.equal(rep.failedAllocs, 0);
      assert.equal(rep.heldPages, expected.held);
      assert.equal(held, expected.held);
      assert.equal(rep.freePagesAfter, rep.freePagesBefore - expected.held);
      assert.equal(rep.conserved, true);
      assert.equal(rep.verify, 'ok');
      assert.equal(rep.mode, mode);
      assert.ok(rep.eventsPerSec > 0 && rep.replaySeconds > 0 && rep.parseSeconds >= 0);
      assert.match(rep.mapping, /__GFP_DMA32/);
      // Histogram: one row per sample, 13 orders, events ascending, last sample at the end.
      const h = rep.histogram;
      assert.equal(h.orders, 13);
      assert.equal(h.events.length, h.counts.length);
      assert.equal(h.events[h.events.length - 1], lines.length);
      for (let i = 1; i < h.events.length; i++) assert.ok(h.events[i] > h.events[i - 1]);
      for (const row of h.counts) assert.equal(row.length, 13);
    });
  }

  test('the same counts through the .gz and .xz fixtures, and with --limit', async () => {
    const gz = await replayTrace(`${FIXTURE}.gz`, { build: () => buildMachine(), verify: false });
    assert.equal(gz.skippedFrees, expected.skipped);
    assert.equal(gz.heldPages, expected.held);
    const lim = await replayTrace(FIXTURE, { build: () => buildMachine(), limit: 500, verify: false });
    const m = model(lines.slice(0, 500));
    assert.equal(lim.events, 500);
    assert.equal(lim.skippedFrees, m.skipped);
    assert.equal(lim.heldPages, m.held);
  });
});

describe('synthetic traces', () => {
  test('an order-3 allocation freed as 8 order-0 frees (shuffled), and an uncovered free', () => {
    const text = [
      alloc(0x1000, 3, 1),
      free(0x1003, 0),
      free(0x1000, 0),
      free(0x1007, 0),
      free(0x1001, 0),
      free(0x5000, 0), // uncovered
      free(0x1005, 0),
      free(0x1002, 0),
      free(0x1004, 0),
      free(0x1006, 0),
      free(0x1006, 0), // already freed: uncovered now
    ].join('\n');
    const { vm, r, before } = replayText(text);
    const c = r.counts();
    assert.equal(c.allocs, 1);
    assert.equal(c.frees, 10);
    assert.equal(c.matchedFrees, 8);
    assert.equal(c.splitFrees, 8);
    assert.equal(c.skippedFrees, 2);
    assert.equal(c.heldPages, 0);
    assert.equal(c.heldBlocks, 0);
    assert.equal(freePages(vm), before);
    verify(vm, { heldPages: 0 });
  });

  test('parts of several orders, interleaved with whole-block frees; conservation after each step', () => {
    const events = [
      alloc(0x20000, 10, 1),
      alloc(0x30000, 4, 0),
      alloc(0x30010, 0, 0),
      free(0x20200, 9), // upper half of the order-10 block
      free(0x30008, 2), // a quarter of the order-4 block's upper half
      free(0x30010, 0), // whole order-0 block
      free(0x20000, 0), // first page of the order-10 block
      free(0x20100, 8),
      free(0x30000, 3),
      free(0x3000c, 2),
    ];
    const model0 = model(events);
    const vm = buildMachine(SMALL, 'eager');
    const before = freePages(vm);
    const r = new TraceReplayer(vm);
    for (let i = 0; i < events.length; i++) {
      const [c] = parseTraceText(events[i]);
      r.run(c.op, c.pfn, c.order, c.flags, 0, c.count);
      const held = r.counts().heldPages;
      assert.equal(freePages(vm), before - held, `after event ${i + 1}`);
      verify(vm, { heldPages: held });
    }
    const c = r.counts();
    assert.equal(c.matchedFrees, model0.matched);
    assert.equal(c.skippedFrees, model0.skipped);
    assert.equal(c.heldPages, model0.held);
    // What remains of the order-10 block: pages 0x20001..0x200ff (255 pages) as buddy pieces.
    assert.equal(model0.held, 255);
    r.releaseAll();
    assert.equal(freePages(vm), before);
    verify(vm, { heldPages: 0 });
  });

  test('misaligned frees, frees larger than the allocation and re-allocated live heads', () => {
    const text = [
      alloc(0x4000, 2, 1),
      free(0x4001, 1), // misaligned for order 1: skipped
      free(0x4000, 3), // larger than the live block at its head: skipped
      alloc(0x4000, 2, 1), // live head allocated again: the old block is freed first
      free(0x4000, 2),
    ].join('\n');
    const { vm, r, before } = replayText(text);
    const c = r.counts();
    assert.equal(c.skippedFrees, 2);
    assert.equal(c.lostFrees, 1);
    assert.equal(c.matchedFrees, 1);
    assert.equal(c.heldPages, 0);
    assert.equal(freePages(vm), before);
    verify(vm, { heldPages: 0 });
  });

  test('GFP_DMA32 and GFP_DMA allocate from the DMA32 and LOWMEM free lists; movable → DEFAULT pool', () => {
    // 128 GiB map: amd64 creates the DMA32 list (more than 64 GiB of DEFAULT memory).
    const text = [
      alloc(0x100, 0, 1, 'GFP_KERNEL|__GFP_DMA32'),
      alloc(0x200, 1, 0, 'GFP_KERNEL|GFP_DMA'),
      alloc(0x300, 0, 1, 'GFP_HIGHUSER_MOVABLE'),
    ].join('\n');
    const vm = buildMachine(undefined, 'lazy');
    const r = new TraceReplayer(vm);
    for (const c of parseTraceText(text)) r.run(c.op, c.pfn, c.order, c.flags, 0, c.count);
    const got = (pfn: number) => {
      const b = r.heldAt(pfn);
      return b && { pa: vm.paOf(b.idx), pool: b.pool };
    };
    const dma32 = got(0x100);
    const dma = got(0x200);
    const movable = got(0x300);
    assert.ok(dma32 && dma32.pa >= 16 * 2 ** 20 && dma32.pa < 2 ** 32, 'DMA32 block below 4 GiB');
    assert.ok(dma && dma.pa < 16 * 2 ** 20, 'DMA block below 16 MiB');
    assert.ok(movable && movable.pa >= 2 ** 32, 'plain request from the DEFAULT list (above 4 GiB)');
    assert.equal(dma32.pool, 1);
    assert.equal(dma.pool, 2);
    assert.equal(r.failedAllocs, 0);
  });

  test('allocations the machine cannot satisfy are counted as failed, later frees as skipped', () => {
    const text = [alloc(0x0, 12), alloc(0x1000, 12), alloc(0x2000, 12), free(0x2000, 12), free(0x0, 12)].join('\n');
    const tiny = { ram: [{ start: 0x1000000, end: 0x1000000 + 2 * 4096 * 4096 }] }; // two order-12 blocks
    const { vm, r, before } = replayText(text, tiny, 'eager');
    const c = r.counts();
    assert.equal(c.failedAllocs, 1);
    assert.equal(c.skippedFrees, 1);
    assert.equal(c.heldPages, 4096);
    assert.equal(freePages(vm), before - 4096);
  });

  test('the histogram stays bounded: the interval doubles when the sample buffer fills', () => {
    const text = Array.from({ length: 400 }, (_, i) =>
      i % 2 ? free(0x9000 + (i >> 1), 0) : alloc(0x9000 + (i >> 1), 0),
    );
    const vm = buildMachine(SMALL, 'lazy');
    const r = new TraceReplayer(vm, { sampleEvery: 5, maxSamples: 8 });
    for (const c of parseTraceText(text.join('\n'))) r.run(c.op, c.pfn, c.order, c.flags, 0, c.count);
    const h = r.histogram();
    assert.ok(h.events.length <= 9, `${h.events.length} samples`);
    assert.ok(h.every > 5);
    assert.equal(h.events[h.events.length - 1], 400);
  });
});

describe('PfnTable', () => {
  test('agrees with a Map under random inserts and removes (growth, wrap-around, big keys)', () => {
    const t = new PfnTable(16);
    const ref = new Map<number, [number, number]>();
    let x = 12345;
    const rnd = () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 4294967296;
    };
    for (let i = 0; i < 20000; i++) {
      const big = rnd() < 0.1;
      const k = big ? 2 ** 40 + Math.floor(rnd() * 64) * 2 ** 32 + Math.floor(rnd() * 50) : Math.floor(rnd() * 3000);
      const s = t.find(k);
      assert.equal(s >= 0, ref.has(k));
      if (s >= 0) {
        assert.equal(t.addrAt(s), ref.get(k)?.[0]);
        assert.equal(t.infoAt(s), ref.get(k)?.[1]);
        if (rnd() < 0.6) {
          t.removeAt(s);
          ref.delete(k);
        }
      } else {
        const v: [number, number] = [i, (i % 13) | ((i % 3) << 4)];
        t.insert(k, v[0], v[1]);
        ref.set(k, v);
      }
      assert.equal(t.size, ref.size);
    }
    let pages = 0;
    for (const [, [, info]] of ref) pages += 2 ** (info & 15);
    assert.equal(t.pages, pages);
    let seen = 0;
    t.forEach((k, a, info) => {
      seen++;
      assert.deepEqual(ref.get(k), [a, info]);
    });
    assert.equal(seen, ref.size);
  });
});

describe('PfnTable direct map', () => {
  test('spread pfns (directory growth, many leaves, cells growth), clear() and reuse', () => {
    const t = new PfnTable(64); // tiny reserve: the cell buffer must grow
    const keys = [0, 63, 64, 1023, 2 ** 20 + 5, 2 ** 30 - 1, 2 ** 31 - 1, 2 ** 31, 2 ** 45 + 7];
    for (let i = 0; i < 300; i++) keys.push(i * 4099 + (i % 7));
    const uniq = [...new Set(keys)];
    uniq.forEach((k, i) => {
      assert.equal(t.find(k), -1);
      t.insert(k, i, i % 13);
    });
    assert.equal(t.size, uniq.length);
    uniq.forEach((k, i) => {
      const s = t.find(k);
      assert.ok(s >= 0, `pfn ${k} found`);
      assert.equal(t.keyAt(s), k);
      assert.equal(t.addrAt(s), i);
      assert.equal(t.infoAt(s), i % 13);
      // Neighbours that were never inserted stay absent.
      if (!uniq.includes(k + 1)) assert.equal(t.find(k + 1), -1);
    });
    t.clear();
    assert.equal(t.size, 0);
    assert.equal(t.pages, 0);
    for (const k of uniq) assert.equal(t.find(k), -1);
    let n = 0;
    t.forEach(() => {
      n++;
    });
    assert.equal(n, 0);
    t.insert(2 ** 30 - 1, 7, 2);
    assert.equal(t.addrAt(t.find(2 ** 30 - 1)), 7);
    assert.equal(t.pages, 4);
  });
});

describe('buildMachine', () => {
  test('reserved ranges are taken out of phys_avail, not out of the segments', () => {
    assert.deepEqual(
      subtractRanges(
        [
          { start: 0, end: 100 },
          { start: 200, end: 300 },
        ],
        [
          { start: 50, end: 60 },
          { start: 90, end: 210 },
        ],
      ),
      [
        { start: 0, end: 50 },
        { start: 60, end: 90 },
        { start: 210, end: 300 },
      ],
    );
    const vm = buildMachine({ ram: SMALL.ram, reserved: [{ start: 0x1000000, end: 0x1100000 }] }, 'eager');
    const plain = buildMachine(SMALL, 'eager');
    assert.equal(vm.totalPages, plain.totalPages);
    assert.equal(freePages(plain) - freePages(vm), 0x100000 / 4096);
  });
});

describe('vmphys replay (CLI)', () => {
  const MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js');
  /** Run `vmphys replay ARGS` in a child process (the test runner owns this process's stdout). */
  async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
    const r = spawnSync(process.execPath, [MAIN, 'replay', ...args], { encoding: 'utf8' });
    return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
  }

  test('--json prints one object with the documented fields; --svg draws the histogram', async () => {
    const svg = join(tmp, 'h.svg');
    const r = await run([FIXTURE, '--json', '--mode', 'eager', '--svg', svg, '--sample', '250']);
    assert.equal(r.code, 0, r.err);
    const o = JSON.parse(r.out) as Record<string, unknown>;
    for (const k of [
      'events',
      'allocs',
      'frees',
      'skippedFrees',
      'failedAllocs',
      'eventsPerSec',
      'parseSeconds',
      'resolveSeconds',
      'replaySeconds',
      'mapping',
      'mode',
      'histogram',
      'verify',
    ])
      assert.ok(k in o, k);
    assert.equal(o.mode, 'eager');
    assert.equal(o.failedAllocs, 0);
    // Resolving is part of the streaming loop's non-replay time.
    assert.ok((o.resolveSeconds as number) >= 0 && (o.resolveSeconds as number) <= (o.parseSeconds as number));
    const text = readFileSync(svg, 'utf8');
    assert.match(text, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(text, /order 0/);
    assert.match(text, /<\/svg>\n$/);
  });

  test('text report; --map with a real iomem file', async () => {
    const map = join(ROOT, 'data', 'memmaps', 'firecracker-24g.iomem.txt');
    const r = await run([FIXTURE, '--map', map, '--limit', '300']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /events +300 /);
    assert.match(r.out, /failed allocs +0/);
    assert.match(r.out, /conserved: yes/);
  });

  test('usage errors exit 2, unreadable input exits 1', async () => {
    assert.equal((await run([])).code, 2);
    assert.equal((await run([FIXTURE, '--mode', 'sideways'])).code, 2);
    assert.equal((await run([FIXTURE, '--limit', '-3'])).code, 2);
    assert.equal((await run([FIXTURE, '--bogus'])).code, 2);
    const missing = await run([join(tmp, 'nope.csv')]);
    assert.equal(missing.code, 1);
    const bad = join(tmp, 'bad.csv');
    writeFileSync(bad, `${alloc(1, 0)}\nnot a trace line\n`);
    const r = await run([bad]);
    assert.equal(r.code, 1);
    assert.match(r.err, /bad\.csv:2:/);
  });
});

describe('benchmark driver (bench/peers/adapters.ts)', () => {
  const split = [
    alloc(0x1000, 3, 1),
    free(0x1003, 0),
    free(0x1000, 1),
    free(0x5000, 0),
    free(0x1004, 2),
    free(0x1002, 0),
    alloc(0x2000, 5, 0),
    free(0x2000, 5),
  ].join('\n');
  const fixture = readFileSync(FIXTURE, 'utf8');
  for (const [name, text] of [
    ['fixture', fixture],
    ['split frees', split],
  ] as const) {
    test(`every peer sees the replayer's matching on the ${name} trace`, () => {
      const [c] = parseTraceText(text, { chunkEvents: 1 << 20 });
      const { r } = replayText(text, FIRECRACKER_128G, 'lazy');
      const want = r.counts();
      const peers: PeerAllocator[] = [
        new VmPhysIdxPeer(buildMachine(undefined, 'lazy')),
        new NaiveBuddyPeer(1 << 20),
        new FreeStackPeer(1 << 20),
        new ThingPeer(2 ** 28),
      ];
      for (const peer of peers) {
        const d = replayThrough(peer, c);
        assert.equal(d.events, want.events, peer.name);
        assert.equal(d.skippedFrees, want.skippedFrees, peer.name);
        assert.equal(d.failedAllocs, 0, peer.name);
      }
    });
  }

  test('a peer that frees only whole blocks gets the block back after its last part', () => {
    const freed: Array<[number, number]> = [];
    let next = 0;
    const peer: PeerAllocator = {
      name: 'whole-only',
      freesParts: false,
      alloc: (order) => {
        const h = next;
        next += 2 ** order;
        return h;
      },
      free: (h, order) => {
        freed.push([h, order]);
      },
    };
    const [c] = parseTraceText(split);
    replayThrough(peer, c);
    assert.deepEqual(freed, [
      [0, 3],
      [8, 5],
    ]);
  });
});

describe('resolve stage (src/trace/resolve.ts)', () => {
  /** A random synthetic trace over a few pfns: allocations, whole, partial, misaligned and stray frees. */
  const traceArb = fc.array(
    fc.record({
      a: fc.boolean(),
      base: fc.integer({ min: 0, max: 7 }),
      off: fc.integer({ min: 0, max: 63 }),
      order: fc.integer({ min: 0, max: 6 }),
      movable: fc.boolean(),
    }),
    { minLength: 1, maxLength: 120 },
  );
  const lines = (evs: { a: boolean; base: number; off: number; order: number; movable: boolean }[]) =>
    evs.map((e) => {
      const head = 0x40000 + e.base * 64;
      return e.a ? alloc(head, e.order, e.movable ? 1 : 0) : free(head + e.off, e.order);
    });

  test('resolving in any batches, or once for a second machine, replays to the same state and counts', () => {
    fc.assert(
      fc.property(traceArb, fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 8 }), (evs, cuts) => {
        const [c] = parseTraceText(lines(evs).join('\n'));
        // A: resolve + replay in one call.
        const vmA = buildMachine(SMALL, 'eager');
        const before = freePages(vmA);
        const a = new TraceReplayer(vmA);
        a.run(c.op, c.pfn, c.order, c.flags, 0, c.count);
        // B: batches of the given sizes.
        const vmB = buildMachine(SMALL, 'eager');
        const b = new TraceReplayer(vmB);
        for (let i = 0, k = 0; i < c.count; k++) {
          const end = Math.min(c.count, i + cuts[k % cuts.length]);
          b.replay(b.resolve(c.op, c.pfn, c.order, c.flags, i, end));
          i = end;
        }
        // C: a separate resolver's output replayed by a fresh replayer.
        const vmC = buildMachine(SMALL, 'eager');
        const r = new TraceResolver(vmC.maxOrder).resolve(
          c.op,
          c.pfn,
          c.order,
          c.flags,
          0,
          c.count,
          newResolvedEvents(),
        );
        const cR = new TraceReplayer(vmC);
        const beforeC = freePages(vmC);
        cR.replay(r);
        for (const [rp, vm] of [
          [b, vmB],
          [cR, vmC],
        ] as const) {
          assert.deepEqual(rp.counts(), a.counts());
          assert.equal(physFree(vm), physFree(vmA));
        }
        const held = a.counts().heldPages;
        if (consistent(lines(evs))) {
          // The page-level model holds for traces whose live allocations never overlap.
          const m = model(lines(evs));
          assert.equal(held, m.held);
          assert.equal(a.counts().skippedFrees, m.skipped);
        }
        assert.equal(freePages(vmA), before - held);
        verify(vmA, { heldPages: held });
        a.releaseAll();
        assert.equal(freePages(vmA), before);
        // A replayer fed by another resolver releases what it holds as well.
        cR.releaseAll();
        assert.equal(freePages(vmC), beforeC);
        assert.equal(cR.counts().heldBlocks, 0);
        verify(vmC, { heldPages: 0 });
        assert.equal(a.counts().heldBlocks, 0);
        verify(vmA, { heldPages: 0 });
      }),
      { numRuns: 150 },
    );
  });

  test('kinds and slots: slots are recycled, a split names one slot per remaining piece', () => {
    const [c] = parseTraceText(
      [alloc(0x1000, 2), free(0x1000, 2), alloc(0x2000, 2), free(0x2001, 0), free(0x9000, 0), alloc(0x2000, 0)].join(
        '\n',
      ),
    );
    const r = new TraceResolver(12).resolve(c.op, c.pfn, c.order, c.flags, 0, c.count, newResolvedEvents());
    assert.deepEqual(Array.from(r.kind.subarray(0, 6)), [R_ALLOC, R_FREE, R_ALLOC, R_SPLIT, R_SKIP, R_ALLOC | R_LOST]);
    // Slot 0 is recycled by the second allocation; the split of slot 0 (order 2, part at offset 1)
    // leaves pieces at offset 2 (order 1) and offset 0 (order 0): two new slots; the new
    // allocation at 0x2000 is a live piece's head, so it is a lost free into that piece's slot.
    assert.equal(r.slot[0], 0);
    assert.equal(r.slot[2], 0);
    assert.equal(r.slot[3], 0);
    assert.deepEqual(Array.from(r.aux.subarray(0, r.auxLen)), [1, 1, 2]);
    assert.equal(r.slot[5], 2);
    assert.equal(r.slots, 3);
  });
});

describe('reference FIFO buddy (bench/peers/fifo-buddy.ts)', () => {
  test('random allocations and frees, parts included, give every page back at the largest order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 5 })), { maxLength: 200 }),
        (reqs) => {
          const b = new FifoBuddy(4 * 4096);
          const held: Array<[number, number, number]> = [];
          const seen = new Set<number>();
          for (const [pool, order] of reqs) {
            const i = b.alloc(pool, order);
            assert.ok(i >= 0 && i % 2 ** order === 0);
            for (let k = 0; k < 2 ** order; k++) {
              assert.ok(!seen.has(i + k), 'no page handed out twice');
              seen.add(i + k);
            }
            held.push([i, pool, order]);
          }
          // Free every block as two halves when it has any, else whole.
          for (const [i, pool, order] of held) {
            if (order > 0) {
              b.free(i + 2 ** (order - 1), pool, order - 1);
              b.free(i, pool, order - 1);
            } else b.free(i, pool, 0);
          }
          for (let k = 0; k < 4; k++) assert.ok(b.alloc(k & 1, 12) >= 0, 'all four max-order blocks whole again');
          assert.equal(b.alloc(0, 12), -1);
        },
      ),
      { numRuns: 100 },
    );
  });
});
