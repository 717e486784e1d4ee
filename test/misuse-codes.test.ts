/**
 * Every error code the library can raise, through every entry point that raises it: the call
 * throws a VmPhysError with exactly that code, and the allocator's state bytes (control buffer,
 * page metadata, queue links) are identical before and after. Calls that hold no allocator show
 * that their input (snapshot bytes, layout declaration, record buffers, map text) is unchanged.
 *
 * The machines are lazy and partly used (blocks held, lazy memory left, a drain part-way), so a
 * misuse path that drains, splits or initialises before it refuses changes bytes and fails here.
 *
 * The last test reads src/ for every code the library constructs and checks each has a case.
 *
 * Codes and the entry points tested (see CASES for the calls):
 *   EDOUBLEFREE  free_pages, free_contig, free (locked), per-CPU free/flush
 *   ENOTALLOC    free_pages (a page the index API handed out: no ownership record)
 *   EHELD        free_pages (page of a block a drainer holds in flight)
 *   EWRONGORDER  free_pages (exactFrees part of a block; a free larger than the block)
 *   EMODE, EBUDGET, EOPTION  startup, drain_step, new VmPhys
 *   EPOLICY      makePolicy, policyByName
 *   EDRAINER     drainAll, startDrainers, recoverDrainers (in test/drainer-death.test.ts)
 *   EALIGN       free_pages, free_contig, unfree, add_seg, add_avail, unfree (locked)
 *   EORDER       alloc_pages, alloc_freelist_pages, free_pages
 *   EPOOL        alloc_pages, alloc_freelist_pages, alloc_npages, free_pages, free_contig,
 *                per-CPU alloc, script
 *   EDOMAIN      alloc_pages, alloc_npages, drain_domain, find_range, counts, alloc_contig,
 *                domain_match, add_affinity, locked alloc, per-CPU alloc, script
 *   EFREELIST    alloc_freelist_pages, script
 *   ENPAGES      alloc_npages, free_contig, find_range, alloc_contig, find_range (locked)
 *   ESEGIND      find_range, find_range (locked)
 *   ERANGE       alloc_contig, add_seg, add_avail
 *   EPOW2        alloc_contig
 *   ENOSEG       free_pages, free_contig, unfree
 *   ESPAN        free_pages, free_contig
 *   ESTATE       alloc before startup, add_seg/add_avail/add_affinity/init/startup out of phase,
 *                drains before startup, domain_match before init, finish_lazy_init, counts before init, handleOf, per-CPU
 *                alloc before startup, script
 *   EAFFINITY    add_affinity, add_seg (no affinity info)
 *   EAVAILMAX    add_avail
 *   ESEGMAX      add_seg
 *   EOVERLAP     init
 *   ETOOBIG      init
 *   EINVARIANT   verify
 *   ESNAPSHOT    restore
 *   ELOCK        DomainLocks unlock/lock, syncViews
 *   ESIZE        parseSize, firecrackerMap
 *   EMEMMAP      parseMemMap
 *   ETRACE       parseTraceText
 *   ELAYOUT_*    defineLayout, parseLayoutJson, builtinLayout
 *   ERECORD_*    PageRecords create/attach/read/write/initialValue
 *   ESYNTAX, EPROFILE, ECOMMAND, ENOTSUP, EIO  script
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseMemMap } from '../src/boot/memmap/index.js';
import { firecrackerMap, parseSize } from '../src/boot/ramspec.js';
import { allocContig } from '../src/core/contig.js';
import { VmPhysError } from '../src/core/errors.js';
import { CTL } from '../src/core/layout.js';
import { lazyTake } from '../src/core/lazy.js';
import { builtinLayout, defineLayout, freebsdLayout, parseLayoutJson } from '../src/core/pagerec/layout.js';
import { PageRecords } from '../src/core/pagerec/records.js';
import { arm64, Pool } from '../src/core/params.js';
import { makePolicy, policyByName } from '../src/core/policy.js';
import { restore, snapshot } from '../src/core/snapshot.js';
import { verify } from '../src/core/verify.js';
import { VmPhys } from '../src/core/vmphys.js';
import { ScriptRunner } from '../src/script/run.js';
import { parseTraceText } from '../src/trace/parse.js';
import { handleOf } from '../src/workers/attach.js';
import { createSync, DomainLocks, SYNC, syncViews } from '../src/workers/lock.js';
import { LockedVmPhys } from '../src/workers/locked.js';
import { PcpuCache } from '../src/workers/pcpu.js';
import { assertSameState, captureState } from './state-bytes.js';

const MiB = 1024 * 1024;
const PAGE = 4096;

/** What a partly used lazy machine holds. */
interface Used {
  vm: VmPhys;
  /** An allocated order-0 page, an allocated order-3 block, a contig run of `runPages`. */
  page: number;
  block: number;
  run: number;
  runPages: number;
  /** A page in a free (DEFAULT, explicit) block of order ≥ 1, not its head. */
  insideFree: number;
  /** A page of untouched lazy memory. */
  lazy: number;
  held: number;
}

/**
 * A lazy 64 MiB machine in use: some blocks allocated and freed, part of the lazy pool drained
 * (domain 0 not done), so lazy memory remains for a misuse path to drain by mistake.
 */
function used(shared = false): Used {
  const vm = new VmPhys({ shared });
  vm.addSeg(0x1000, 0x9f000);
  vm.addSeg(0x100000, 64 * MiB);
  vm.init();
  vm.startup('lazy');
  const page = vm.allocPages(0, Pool.DEFAULT, 0) as number;
  const block = vm.allocPages(0, Pool.DIRECT, 3) as number;
  const tmp = vm.allocPages(0, Pool.DEFAULT, 5) as number;
  const runPages = 37;
  const run = allocContig(vm, 0, runPages, 0, 2 ** 40, PAGE, 0) as number;
  vm.freePages(tmp + 8 * PAGE, Pool.DEFAULT, 3);
  vm.drainStep(3);
  assert.ok(vm.lazyPages() > 0, 'lazy memory remains');
  // An explicit free DEFAULT block of order ≥ 1 and a page inside it.
  let insideFree = -1;
  const s = vm.state;
  for (let i = 0; i < vm.totalPages && insideFree < 0; i++) {
    const m = s.meta[i];
    if (m !== 0 && (m & 0x0f) >= 1 && (m & 0x0f) < vm.nOrd && ((m >> 4) & 7) === Pool.DEFAULT)
      insideFree = vm.paOf(i + 1);
  }
  assert.ok(insideFree > 0);
  const held = 1 + 8 + 24 + runPages;
  verify(vm, { deep: true, heldPages: held });
  return { vm, page, block, run, runPages, insideFree, lazy: 60 * MiB, held };
}

const coverage = new Map<string, Set<string>>();

function note(code: string, entry: string): void {
  if (!coverage.has(code)) coverage.set(code, new Set());
  coverage.get(code)?.add(entry);
}

/** The call must throw a VmPhysError with exactly `code`. */
function throwsCode(call: () => unknown, code: string): void {
  assert.throws(call, (e: unknown) => {
    assert.ok(e instanceof VmPhysError, `expected a VmPhysError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.ok(e.message.length > 5, 'the error names the problem');
    return true;
  });
}

/**
 * A refusal by an allocator: `setup` builds the machine (and whatever the call needs), `call`
 * must throw `code`, and the machine's state bytes must not change. `exceptLocks`: leave the
 * lock words out (a locked call takes and releases the lock whatever happens).
 */
function refuses<T extends { vm: VmPhys }>(
  code: string,
  entry: string,
  what: string,
  setup: () => T,
  call: (ctx: T) => unknown,
  opts: { exceptLocks?: boolean; todo?: string; after?: (ctx: T) => void } = {},
): void {
  note(code, entry);
  test(`${code} via ${entry}: ${what}`, opts.todo ? { todo: opts.todo } : {}, () => {
    const ctx = setup();
    const before = captureState(ctx.vm, { exceptLocks: opts.exceptLocks });
    throwsCode(() => call(ctx), code);
    assertSameState(ctx.vm, before, `${entry} (${what})`);
    opts.after?.(ctx);
  });
}

/** A refusal by a call that holds no allocator: its input must be unchanged. */
function refusesPure<T>(code: string, entry: string, what: string, input: () => T, call: (x: T) => unknown): void {
  note(code, entry);
  test(`${code} via ${entry}: ${what}`, () => {
    const x = input();
    const before = structuredClone(x);
    throwsCode(() => call(x), code);
    assert.deepEqual(x, before, 'the input is unchanged');
  });
}

const fresh = () => ({ vm: new VmPhys({ shared: false }) });
const inited = () => {
  const vm = new VmPhys({ shared: false });
  vm.addSeg(0x1000, 0x9f000);
  vm.addSeg(0x100000, 32 * MiB);
  vm.init();
  return { vm };
};
const lockedUsed = () => {
  const u = used(true);
  return { ...u, locked: new LockedVmPhys(u.vm) };
};

describe('the validated API (VmPhys, alloc_contig, verify)', () => {
  // free_pages
  refuses('EDOUBLEFREE', 'free_pages', 'inside a free block', used, (u) =>
    u.vm.freePages(u.insideFree, Pool.DEFAULT, 0),
  );
  refuses('EDOUBLEFREE', 'free_pages', 'untouched lazy memory', used, (u) => u.vm.freePages(u.lazy, Pool.DEFAULT, 0));
  refuses('EDOUBLEFREE', 'free_pages', 'a block half of which is free', used, (u) =>
    u.vm.freePages(u.insideFree - PAGE, Pool.DEFAULT, 1),
  );
  refuses(
    'ENOTALLOC',
    'free_pages',
    'a page taken through the index API (no ownership record)',
    () => {
      const u = used();
      return { ...u, raw: u.vm.paOf(u.vm.allocPagesIdx(0, Pool.DEFAULT, 0)) };
    },
    (u) => u.vm.freePages(u.raw, Pool.DEFAULT, 0),
  );
  refuses(
    'EWRONGORDER',
    'free_pages',
    'an order-3 block freed as order 2 with exactFrees',
    () => {
      const vm = new VmPhys({ shared: false, exactFrees: true });
      vm.addSeg(0x100000, 16 * MiB);
      vm.init();
      vm.startup('lazy');
      return { vm, b: vm.allocPages(0, Pool.DEFAULT, 3) as number };
    },
    (u) => u.vm.freePages(u.b, Pool.DEFAULT, 2),
  );
  refuses(
    'EWRONGORDER',
    'free_pages',
    'an order-1 free of an order-0 page',
    () => {
      // Two order-0 buddies we hold: an order-1 free of the first would also free the second.
      const u = used();
      const got = new Set<number>();
      let x = -1;
      for (let i = 0; i < 64 && x < 0; i++) {
        const a = u.vm.allocPages(0, Pool.DEFAULT, 0) as number;
        got.add(a);
        const lo = a - (a % (2 * PAGE));
        if (got.has(lo) && got.has(lo + PAGE)) x = lo;
      }
      assert.ok(x >= 0, 'two order-0 buddies were handed out');
      return { ...u, x };
    },
    (u) => u.vm.freePages(u.x, Pool.DEFAULT, 1),
  );
  refuses('EMODE', 'startup', 'an unknown mode', inited, (u) => u.vm.startup('bogus' as 'lazy'));
  refuses('EBUDGET', 'drain_step', 'NaN budget', used, (u) => u.vm.drainStep(Number.NaN));
  refuses('EBUDGET', 'drain_step', 'no budget', used, (u) => (u.vm.drainStep as (b?: number) => boolean)());
  refusesPure(
    'EOPTION',
    'new VmPhys',
    'negative maxRuns',
    () => ({ maxRuns: -1 }),
    (o) => new VmPhys(o),
  );
  refusesPure(
    'EPOLICY',
    'makePolicy',
    'an unknown split rule',
    () => ({ name: 'x', split: 'sideways' }),
    (p) => makePolicy(p as Record<string, unknown>),
  );
  refusesPure(
    'EPOLICY',
    'policyByName',
    'an unknown name',
    () => 'no-such-policy',
    (n) => policyByName(n),
  );
  // EDRAINER needs a drainer thread killed mid-drain: test/drainer-death.test.ts provokes it
  // (drainAll / startDrainers().done / recoverDrainers after a death inside a core call, with
  // the state compared before and after); the table below checks that file still does.
  note('EDRAINER', 'drainAll, startDrainers, recoverDrainers (test/drainer-death.test.ts)');
  test('EDRAINER is provoked and checked in test/drainer-death.test.ts', () => {
    const text = readFileSync(
      join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'drainer-death.test.ts'),
      'utf8',
    );
    assert.match(text, /code: 'EDRAINER'/);
    assert.match(text, /err\.code, 'EDRAINER'/);
  });
  refuses(
    'EHELD',
    'free_pages',
    'a page of a lazy block a drainer holds in flight',
    () => {
      const u = used();
      const h = lazyTake(u.vm.state, 0);
      assert.ok(h >= 0 && h % 16 >= 1, 'the drainer holds a block of several pages');
      return { ...u, inflight: u.vm.paOf((h - (h % 16)) / 16 + 1) };
    },
    (u) => u.vm.freePages(u.inflight, Pool.DEFAULT, 0),
  );
  refuses('EALIGN', 'free_pages', 'not page aligned', used, (u) => u.vm.freePages(u.page + 1, Pool.DEFAULT, 0));
  refuses('EALIGN', 'free_pages', 'not aligned to its order', used, (u) =>
    u.vm.freePages(u.block + PAGE, Pool.DIRECT, 2),
  );
  refuses('EORDER', 'free_pages', 'negative order', used, (u) => u.vm.freePages(u.page, Pool.DEFAULT, -1));
  refuses('EPOOL', 'free_pages', 'LAZYINIT named', used, (u) => u.vm.freePages(u.page, Pool.LAZYINIT, 0));
  refuses('ENOSEG', 'free_pages', 'outside every segment', used, (u) => u.vm.freePages(0xa0000, Pool.DEFAULT, 0));
  refuses('ENOSEG', 'free_pages', 'not an address', used, (u) => u.vm.freePages(Number.NaN, Pool.DEFAULT, 0));
  refuses('ESPAN', 'free_pages', 'crossing the segment end', used, (u) => u.vm.freePages(0x9e000, Pool.DEFAULT, 1));
  // free_contig
  refuses(
    'EDOUBLEFREE',
    'free_contig',
    'a run freed twice',
    () => {
      const u = used();
      u.vm.freeContig(u.run, Pool.DEFAULT, u.runPages);
      return { ...u, held: u.held - u.runPages };
    },
    (u) => u.vm.freeContig(u.run, Pool.DEFAULT, u.runPages),
  );
  refuses('EDOUBLEFREE', 'free_contig', 'a run whose last page is free', used, (u) =>
    u.vm.freeContig(u.run, Pool.DEFAULT, u.runPages + 1),
  );
  refuses('EDOUBLEFREE', 'free_contig', 'a run over untouched lazy memory', used, (u) =>
    u.vm.freeContig(u.lazy, Pool.DEFAULT, 3),
  );
  refuses('ENPAGES', 'free_contig', 'zero pages', used, (u) => u.vm.freeContig(u.run, Pool.DEFAULT, 0));
  refuses('EPOOL', 'free_contig', 'LAZYINIT named', used, (u) => u.vm.freeContig(u.run, Pool.LAZYINIT, 1));
  refuses('EALIGN', 'free_contig', 'not page aligned', used, (u) => u.vm.freeContig(u.run + 8, Pool.DEFAULT, 1));
  refuses('ENOSEG', 'free_contig', 'outside every segment', used, (u) => u.vm.freeContig(0xa0000, Pool.DEFAULT, 1));
  refuses('ESPAN', 'free_contig', 'crossing the segment end', used, (u) => u.vm.freeContig(0x9e000, Pool.DEFAULT, 2));
  // unfree
  refuses('ENOSEG', 'unfree', 'outside every segment', used, (u) => u.vm.unfreePage(0xa0000));
  refuses('EALIGN', 'unfree', 'not page aligned (refused before the drain)', used, (u) => u.vm.unfreePage(u.lazy + 1));
  // find_range
  refuses('ENPAGES', 'find_range', 'zero pages (refused before the drain)', used, (u) =>
    u.vm.findRange(0, 0, 0, 0, 2 ** 40),
  );
  refuses('ESEGIND', 'find_range', 'segment index past the table', used, (u) => u.vm.findRange(99, 0, 1, 0, 2 ** 40));
  refuses('ESEGIND', 'find_range', 'negative segment index', used, (u) => u.vm.findRange(-1, 0, 1, 0, 2 ** 40));
  refuses('EDOMAIN', 'find_range', 'domain out of range', used, (u) => u.vm.findRange(0, 3, 1, 0, 2 ** 40));
  // allocation
  refuses('EORDER', 'alloc_pages', 'order VM_NFREEORDER', used, (u) => u.vm.allocPages(0, Pool.DEFAULT, 13));
  refuses('EPOOL', 'alloc_pages', 'LAZYINIT named', used, (u) => u.vm.allocPages(0, Pool.LAZYINIT, 0));
  refuses('EPOOL', 'alloc_pages', 'unknown pool', used, (u) => u.vm.allocPages(0, 7, 0));
  refuses('EDOMAIN', 'alloc_pages', 'domain out of range', used, (u) => u.vm.allocPages(1, Pool.DEFAULT, 0));
  refuses('EFREELIST', 'alloc_freelist_pages', 'free list out of range', used, (u) =>
    u.vm.allocFreelistPages(0, 3, Pool.DEFAULT, 0),
  );
  refuses('EORDER', 'alloc_freelist_pages', 'fractional order', used, (u) =>
    u.vm.allocFreelistPages(0, 0, Pool.DEFAULT, 1.5),
  );
  refuses('EPOOL', 'alloc_freelist_pages', 'LAZYINIT named', used, (u) =>
    u.vm.allocFreelistPages(0, 0, Pool.LAZYINIT, 0),
  );
  refuses('ENPAGES', 'alloc_npages', 'more than a max block', used, (u) =>
    u.vm.allocNpages(0, Pool.DEFAULT, 5000, new Array(5000)),
  );
  refuses('ENPAGES', 'alloc_npages', 'zero pages', used, (u) => u.vm.allocNpages(0, Pool.DEFAULT, 0, []));
  refuses('ENPAGES', 'alloc_npages', 'an output array too short', used, (u) =>
    u.vm.allocNpages(0, Pool.DEFAULT, 8, new Int32Array(4)),
  );
  refuses('EPOOL', 'alloc_npages', 'LAZYINIT named', used, (u) => u.vm.allocNpages(0, Pool.LAZYINIT, 1, []));
  refuses('EDOMAIN', 'alloc_npages', 'domain out of range', used, (u) => u.vm.allocNpages(2, Pool.DEFAULT, 1, []));
  refuses('ENPAGES', 'alloc_contig', 'zero pages', used, (u) => allocContig(u.vm, 0, 0, 0, 2 ** 40, PAGE, 0));
  refuses('ENPAGES', 'alloc_contig', 'fractional pages', used, (u) => allocContig(u.vm, 0, 1.5, 0, 2 ** 40, PAGE, 0));
  refuses('EPOW2', 'alloc_contig', 'alignment not a power of two', used, (u) =>
    allocContig(u.vm, 0, 1, 0, 2 ** 40, 3 * PAGE, 0),
  );
  refuses('EPOW2', 'alloc_contig', 'boundary not a power of two', used, (u) =>
    allocContig(u.vm, 0, 1, 0, 2 ** 40, PAGE, 12345),
  );
  refuses('ERANGE', 'alloc_contig', 'negative low', used, (u) => allocContig(u.vm, 0, 1, -1, 2 ** 40, PAGE, 0));
  refuses('EDOMAIN', 'alloc_contig', 'domain out of range', used, (u) => allocContig(u.vm, 4, 1, 0, 2 ** 40, PAGE, 0));
  refuses('ESTATE', 'alloc_contig', 'before startup', inited, (c) => allocContig(c.vm, 0, 1, 0, 2 ** 40, PAGE, 0));
  // drains and counts
  refuses('EDOMAIN', 'drain_domain', 'domain out of range', used, (u) => u.vm.drainDomain(1));
  refuses('EDOMAIN', 'counts', 'domain out of range', used, (u) => u.vm.counts(8));
  refuses('ESTATE', 'finish_lazy_init', 'lazy memory left', used, (u) => u.vm.finishLazyInit());
  refuses('ESTATE', 'drain', 'before startup', inited, (c) => c.vm.drain());
  refuses('ESTATE', 'drain_step', 'before startup', inited, (c) => c.vm.drainStep(5));
  refuses('ESTATE', 'drain_domain', 'before startup', inited, (c) => c.vm.drainDomain(0));
  refuses('ESTATE', 'counts', 'before init', fresh, (c) => c.vm.counts());
  refuses('ESTATE', 'domain_match', 'before init', fresh, (c) => c.vm.domainMatch(0, 0, 2 ** 30));
  // phases
  refuses('ESTATE', 'alloc_pages', 'before startup', inited, (c) => c.vm.allocPages(0, Pool.DEFAULT, 0));
  refuses('ESTATE', 'free_pages', 'before startup', inited, (c) => c.vm.freePages(0x1000, Pool.DEFAULT, 0));
  refuses('ESTATE', 'free_contig', 'before startup', inited, (c) => c.vm.freeContig(0x1000, Pool.DEFAULT, 1));
  refuses('ESTATE', 'unfree', 'before startup', inited, (c) => c.vm.unfreePage(0x1000));
  refuses('ESTATE', 'find_range', 'before startup', inited, (c) => c.vm.findRange(0, 0, 1, 0, 2 ** 40));
  refuses('ESTATE', 'add_seg', 'after init', inited, (c) => c.vm.addSeg(64 * MiB, 128 * MiB));
  refuses('ESTATE', 'add_avail', 'after init', inited, (c) => c.vm.addAvail(0x1000, 0x2000));
  refuses('ESTATE', 'init', 'twice', inited, (c) => c.vm.init());
  refuses('ESTATE', 'init', 'without a segment', fresh, (c) => c.vm.init());
  refuses('ESTATE', 'startup', 'before init', fresh, (c) => c.vm.startup('lazy'));
  refuses('ESTATE', 'startup', 'twice', used, (u) => u.vm.startup('eager'));
  refuses(
    'ESTATE',
    'add_affinity',
    'after the first segment',
    () => {
      const vm = new VmPhys({ shared: false });
      vm.addSeg(0x1000, 0x9f000);
      return { vm };
    },
    (c) => c.vm.addAffinity(0, 2 ** 30, 0),
  );
  // configuration
  refuses('EALIGN', 'add_seg', 'not page aligned', fresh, (c) => c.vm.addSeg(0x1000, 0x9f001));
  refuses('ERANGE', 'add_seg', 'empty', fresh, (c) => c.vm.addSeg(0x2000, 0x2000));
  refuses('ERANGE', 'add_seg', 'not an address range', fresh, (c) => c.vm.addSeg(-4096, 0x2000));
  refuses(
    'ESEGMAX',
    'add_seg',
    'more than VM_PHYSSEG_MAX segments',
    () => {
      const c = fresh();
      for (let i = 0; i < c.vm.profile.physSegMax; i++) c.vm.addSeg((2 * i + 32) * MiB, (2 * i + 33) * MiB);
      return c;
    },
    (c) => c.vm.addSeg(1024 * MiB, 1025 * MiB),
  );
  refuses('EALIGN', 'add_avail', 'not page aligned', fresh, (c) => c.vm.addAvail(0x1000, 0x1800));
  refuses('ERANGE', 'add_avail', 'empty', fresh, (c) => c.vm.addAvail(0x2000, 0x1000));
  refuses(
    'ERANGE',
    'add_avail',
    'not ascending',
    () => {
      const c = fresh();
      c.vm.addAvail(0x10000, 0x20000);
      return c;
    },
    (c) => c.vm.addAvail(0x1000, 0x2000),
  );
  refuses(
    'EAVAILMAX',
    'add_avail',
    'phys_avail full',
    () => {
      const c = fresh();
      for (let i = 0; i < c.vm.profile.physAvailMax; i++) c.vm.addAvail((2 * i + 1) * PAGE, (2 * i + 2) * PAGE);
      return c;
    },
    (c) => c.vm.addAvail(MiB, 2 * MiB),
  );
  refuses('EAFFINITY', 'add_affinity', 'empty range', fresh, (c) => c.vm.addAffinity(0x2000, 0x2000, 0));
  refuses(
    'EAFFINITY',
    'add_affinity',
    'not ascending',
    () => {
      const c = fresh();
      c.vm.addAffinity(0x100000, 0x200000, 0);
      return c;
    },
    (c) => c.vm.addAffinity(0, 0x1000, 1),
  );
  refuses(
    'EAFFINITY',
    'add_affinity',
    'too many ranges',
    () => {
      const c = fresh();
      for (let i = 0; i < c.vm.profile.physSegMax; i++) c.vm.addAffinity(i * 2 * MiB, (i * 2 + 1) * MiB, i % 2);
      return c;
    },
    (c) => c.vm.addAffinity(1024 * MiB, 1025 * MiB, 0),
  );
  refuses('EDOMAIN', 'add_affinity', 'domain beyond MAXMEMDOM', fresh, (c) => c.vm.addAffinity(0, MiB, 99));
  refuses(
    'EAFFINITY',
    'add_seg',
    'no affinity information for the segment',
    () => {
      const c = fresh();
      c.vm.addAffinity(0x100000, 0x200000, 0);
      c.vm.addAffinity(0x200000, 0x300000, 1);
      return c;
    },
    (c) => c.vm.addSeg(0x1000, 0x9f000),
  );
  refuses(
    'EAFFINITY',
    'add_seg',
    'segment past the end of the affinity information',
    () => {
      const c = fresh();
      c.vm.addAffinity(0x100000, 0x200000, 0);
      c.vm.addAffinity(0x200000, 0x300000, 1);
      return c;
    },
    (c) => c.vm.addSeg(0x100000, 0x400000),
  );
  refuses(
    'EDOMAIN',
    'domain_match',
    'no domain has memory in the range',
    () => {
      const vm = new VmPhys({ shared: false });
      vm.addAffinity(0, 32 * MiB, 0);
      vm.addAffinity(32 * MiB, 64 * MiB, 1);
      vm.addSeg(0x1000, 0x9f000);
      vm.addSeg(0x100000, 64 * MiB);
      vm.init();
      vm.startup('lazy');
      return { vm };
    },
    (c) => c.vm.domainMatch(0, 2 ** 40, 2 ** 41),
  );
  refuses(
    'EOVERLAP',
    'init',
    'overlapping segments',
    () => {
      const c = fresh();
      c.vm.addSeg(0x100000, 0x400000);
      c.vm.addSeg(0x200000, 0x300000);
      return c;
    },
    (c) => c.vm.init(),
  );
  refuses(
    'ETOOBIG',
    'init',
    'more than 2^31 pages',
    () => {
      const c = fresh();
      c.vm.addSeg(2 ** 40, 2 ** 40 + 2 ** 43 + 2 * PAGE);
      return c;
    },
    (c) => c.vm.init(),
  );
  // verify
  refuses(
    'EINVARIANT',
    'verify',
    'a corrupted queue count (verify reads, never writes)',
    () => {
      const u = used();
      u.vm.state.q[u.vm.state.oCount]++;
      return u;
    },
    (u) => verify(u.vm, { deep: true, heldPages: u.held }),
  );
});

describe('the double free through free_pages: the second free is refused', () => {
  note('EDOUBLEFREE', 'free_pages');
  test('EDOUBLEFREE via free_pages: the same block freed twice', () => {
    const u = used();
    u.vm.freePages(u.block, Pool.DIRECT, 3);
    const before = captureState(u.vm);
    throwsCode(() => u.vm.freePages(u.block, Pool.DIRECT, 3), 'EDOUBLEFREE');
    throwsCode(() => u.vm.freePages(u.block, Pool.DEFAULT, 0), 'EDOUBLEFREE');
    assertSameState(u.vm, before, 'double free');
    verify(u.vm, { deep: true, heldPages: u.held - 8 });
  });
});

describe('snapshots', () => {
  const bad: Array<[string, (b: Uint8Array) => Uint8Array]> = [
    ['too short', (b) => b.slice(0, 20)],
    [
      'bad magic',
      (b) => {
        const c = b.slice();
        c[0] ^= 1;
        return c;
      },
    ],
    [
      'a flipped payload byte (checksum)',
      (b) => {
        const c = b.slice();
        c[c.length - 3] ^= 0x40;
        return c;
      },
    ],
    ['truncated', (b) => b.slice(0, b.length - 100)],
    [
      'unknown version',
      (b) => {
        const c = b.slice();
        c[8] = 9;
        return c;
      },
    ],
  ];
  for (const [what, spoil] of bad) {
    note('ESNAPSHOT', 'restore');
    test(`ESNAPSHOT via restore: ${what}`, () => {
      const u = used();
      const bytes = spoil(snapshot(u.vm));
      const copy = bytes.slice();
      const before = captureState(u.vm);
      throwsCode(() => restore(bytes), 'ESNAPSHOT');
      assert.deepEqual(bytes, copy, 'the snapshot bytes are unchanged');
      assertSameState(u.vm, before, 'the machine the snapshot came from');
    });
  }
});

describe('workers: the locked machine, the per-CPU cache, the locks', () => {
  const L = { exceptLocks: true };
  refuses('EDOMAIN', 'locked alloc_pages', 'domain out of range', lockedUsed, (u) =>
    u.locked.allocPages(5, Pool.DEFAULT, 0),
  );
  refuses(
    'EDOUBLEFREE',
    'locked free_pages',
    'inside a free block',
    lockedUsed,
    (u) => u.locked.freePages(u.insideFree, Pool.DEFAULT, 0),
    L,
  );
  refuses(
    'EDOUBLEFREE',
    'locked free_contig',
    'a run freed twice',
    () => {
      const u = lockedUsed();
      u.locked.freeContig(u.run, Pool.DEFAULT, u.runPages);
      return u;
    },
    (u) => u.locked.freeContig(u.run, Pool.DEFAULT, u.runPages),
    L,
  );
  refuses(
    'ENPAGES',
    'locked find_range',
    'zero pages (must be refused before the drain)',
    lockedUsed,
    (u) => u.locked.findRange(0, 0, 0, 0, 2 ** 40),
    {
      ...L,
    },
  );
  refuses(
    'ESEGIND',
    'locked find_range',
    'negative segment index (must be refused before the drain)',
    lockedUsed,
    (u) => u.locked.findRange(-1, 0, 1, 0, 2 ** 40),
    {
      ...L,
    },
  );
  refuses(
    'EALIGN',
    'locked unfree',
    'not page aligned (must be refused before the drain)',
    lockedUsed,
    (u) => u.locked.unfreePage(u.lazy + 1),
    {
      ...L,
    },
  );
  refuses('EDOMAIN', 'locked drain_domain', 'domain out of range', lockedUsed, (u) => u.locked.drainDomain(3));
  refuses('EDOMAIN', 'per-CPU alloc', 'domain out of range', lockedUsed, (u) => new PcpuCache(u.locked).alloc(2, 1));
  refuses('EPOOL', 'per-CPU alloc', 'LAZYINIT named', lockedUsed, (u) => new PcpuCache(u.locked).alloc(0, 0));
  refuses('EPOOL', 'per-CPU alloc', 'unknown pool', lockedUsed, (u) => new PcpuCache(u.locked).alloc(0, 9));
  refuses(
    'EDOUBLEFREE',
    'per-CPU free',
    'the head of a free block',
    lockedUsed,
    (u) => new PcpuCache(u.locked).free(u.insideFree - PAGE, Pool.DEFAULT),
    L,
  );
  refuses(
    'EPOOL',
    'per-CPU free',
    'LAZYINIT named',
    lockedUsed,
    (u) => new PcpuCache(u.locked).free(u.page, Pool.LAZYINIT),
    L,
  );
  refuses(
    'EDOUBLEFREE',
    'per-CPU free',
    'a page given to the cache twice: refused at the second free, before any batch is given back',
    () => {
      const u = lockedUsed();
      const c = new PcpuCache(u.locked, { batch: 4 });
      const a = c.alloc(0, Pool.DEFAULT);
      const b = c.alloc(0, Pool.DEFAULT);
      c.free(a, Pool.DEFAULT);
      c.free(b, Pool.DEFAULT);
      return { ...u, cache: c, a };
    },
    (u) => u.cache.free(u.a, Pool.DEFAULT),
    {
      ...L,
    },
  );
  refuses(
    'ESTATE',
    'per-CPU alloc',
    'before startup',
    () => {
      const vm = new VmPhys();
      vm.addSeg(0x1000, 0x9f000);
      vm.init();
      return { vm, locked: new LockedVmPhys(vm) };
    },
    (c) => new PcpuCache(c.locked).alloc(0, Pool.DEFAULT),
  );
  refuses(
    'ESTATE',
    'handleOf',
    'before init',
    () => ({ vm: new VmPhys() }),
    (c) => handleOf(c.vm),
  );
  refuses('ESTATE', 'handleOf', 'an unshared machine', inited, (c) => handleOf(c.vm));
  refuses('ELOCK', 'DomainLocks unlock', 'a lock this thread does not hold', lockedUsed, (u) =>
    u.locked.locks.unlock(0),
  );
  refuses(
    'ELOCK',
    'DomainLocks lock',
    'taking a lock this thread already holds',
    () => {
      const u = lockedUsed();
      u.locked.locks.lock(0);
      return u;
    },
    (u) => u.locked.locks.lock(0),
  );
  refuses('ELOCK', 'DomainLocks', 'made for something that is not an allocator', lockedUsed, () => new DomainLocks({}));
  refuses('ELOCK', 'syncViews', 'a buffer that is not a sync buffer', lockedUsed, () => {
    const b = createSync();
    new Int32Array(b)[SYNC.MAGIC] ^= 1;
    return syncViews(b);
  });
});

describe('inputs without an allocator: boot sizes, memory maps, traces, page-record layouts', () => {
  refusesPure(
    'ESIZE',
    'parseSize',
    'malformed',
    () => ['12QB'],
    (x) => parseSize(x[0]),
  );
  refusesPure(
    'ESIZE',
    'parseSize',
    'too large',
    () => ['99999999P'],
    (x) => parseSize(x[0]),
  );
  refusesPure(
    'ESIZE',
    'firecrackerMap',
    'not a multiple of 4 KiB',
    () => [MiB * 64 + 1],
    (x) => firecrackerMap(x[0]),
  );
  refusesPure(
    'EMEMMAP',
    'parseMemMap',
    'garbage text',
    () => ['this is not a memory map\n'],
    (x) => parseMemMap(x[0]),
  );
  refusesPure(
    'EMEMMAP',
    'parseMemMap',
    'bad page size option',
    () => ['x'],
    (x) => parseMemMap(x[0], { pageSize: 3 }),
  );
  refusesPure(
    'ETRACE',
    'parseTraceText',
    'a malformed line',
    () => ['this is not a trace line\n'],
    (x) => parseTraceText(x[0]),
  );
  const okField = { name: 'a', type: 'u32', offset: 0 };
  const layout = (fields: unknown[], extra: Record<string, unknown> = {}) => ({ name: 'L', size: 8, fields, ...extra });
  refusesPure(
    'ELAYOUT_JSON',
    'parseLayoutJson',
    'not JSON',
    () => ['{nope'],
    (x) => parseLayoutJson(x[0]),
  );
  refusesPure(
    'ELAYOUT_NAME',
    'defineLayout',
    'no name',
    () => [layout([okField], { name: '' })],
    (x) => defineLayout(x[0] as never),
  );
  refusesPure(
    'ELAYOUT_NAME',
    'builtinLayout',
    'unknown built-in',
    () => ['bsd'],
    (x) => builtinLayout(x[0], arm64),
  );
  refusesPure(
    'ELAYOUT_TYPE',
    'defineLayout',
    'unknown field type',
    () => [layout([{ ...okField, type: 'u128' }])],
    (x) => defineLayout(x[0] as never),
  );
  refusesPure(
    'ELAYOUT_ALIGN',
    'defineLayout',
    'misaligned offset',
    () => [layout([{ ...okField, offset: 2 }])],
    (x) => defineLayout(x[0] as never),
  );
  refusesPure(
    'ELAYOUT_OVERLAP',
    'defineLayout',
    'overlapping fields',
    () => [layout([okField, { name: 'b', type: 'u16', offset: 2 }])],
    (x) => defineLayout(x[0] as never),
  );
  refusesPure(
    'ELAYOUT_SIZE',
    'defineLayout',
    'a field past the record end',
    () => [layout([{ ...okField, offset: 8 }])],
    (x) => defineLayout(x[0] as never),
  );
  refusesPure(
    'ELAYOUT_INIT',
    'defineLayout',
    'an init value the type cannot hold',
    () => [layout([{ name: 'a', type: 'u8', offset: 0, init: 300 }])],
    (x) => defineLayout(x[0] as never),
  );
  /** A field of at most 32 bits. */
  const small = (r: PageRecords): string => {
    const f = r.layout.fields.find((x) => x.type === 'u8' || x.type === 'u16' || x.type === 'u32');
    assert.ok(f, 'the layout has a small field');
    return f.name;
  };
  const recs = () => {
    const r = PageRecords.create(freebsdLayout(arm64), 16, { shared: false });
    r.write(3, small(r), 1);
    return r;
  };
  const recordRefusal = (code: string, entry: string, what: string, call: (r: PageRecords) => unknown) => {
    note(code, entry);
    test(`${code} via ${entry}: ${what}`, () => {
      const r = recs();
      const before = r.buffers.map((b) => new Uint8Array(b).slice());
      throwsCode(() => call(r), code);
      assert.deepEqual(
        r.buffers.map((b) => new Uint8Array(b)),
        before,
        'the record bytes are unchanged',
      );
    });
  };
  recordRefusal('ERECORD_FIELD', 'PageRecords read', 'unknown field', (r) => r.read(0, 'no_such_field'));
  recordRefusal('ERECORD_INDEX', 'PageRecords write', 'page index out of range', (r) => r.write(16, small(r), 0));
  recordRefusal('ERECORD_VALUE', 'PageRecords write', 'a value the field cannot hold', (r) =>
    r.write(2, small(r), 2 ** 40),
  );
  recordRefusal('ERECORD_ATTACH', 'PageRecords attach', 'a descriptor with a buffer missing', (r) =>
    PageRecords.attach({ ...r.descriptor(), buffers: [] }),
  );
  refusesPure(
    'ERECORD_INDEX',
    'PageRecords create',
    'a negative page count',
    () => [-1],
    (x) => PageRecords.create(freebsdLayout(arm64), x[0]),
  );
});

describe('the script language: a bad line prints its code and changes nothing', () => {
  const lines: Array<[string, string, string]> = [
    ['ESYNTAX', 'alloc default x', 'an order that is not a number'],
    ['ESYNTAX', 'alloc default', 'a missing argument'],
    ['ESYNTAX', 'startup sideways', 'an unknown startup mode'],
    ['EPOOL', 'alloc lazyinit_ 0', 'an unknown pool'],
    ['EPOOL', 'alloc lazyinit 0', 'LAZYINIT named (the allocator refuses it)'],
    ['EFREELIST', 'freelist_alloc lowmem default 0', 'a free list arm64 does not have'],
    ['EDOMAIN', 'domain 4', 'a domain the machine does not have'],
    ['ESTATE', 'profile amd64', 'profile after the first command'],
    ['ECOMMAND', 'allocate default 0', 'an unknown command'],
    ['ENOTSUP', 'snapshot /nowhere', 'snapshot without hooks'],
    ['EDOUBLEFREE', 'free 0x43ff0000 0 default', 'a free of untouched lazy memory'],
  ];
  const boot = (hooks = {}) => {
    const r = new ScriptRunner(hooks);
    const out = r.run(
      ['profile arm64', 'seg 0x40000000 0x44000000', 'init', 'startup lazy', 'alloc default 2'].join('\n'),
    );
    assert.doesNotMatch(out, /error/);
    return r;
  };
  for (const [code, line, what] of lines) {
    note(code, 'script');
    test(`${code} via script: ${what}`, () => {
      const r = boot();
      const vm = r.vm as VmPhys;
      const before = captureState(vm);
      const out = r.exec(line);
      assert.match(out, new RegExp(`^error: ${code}: `), out);
      assertSameState(vm, before, line);
    });
  }
  note('EPROFILE', 'script');
  test('EPROFILE via script: an unknown profile', () => {
    const r = new ScriptRunner();
    assert.match(r.exec('profile sparc64'), /^error: EPROFILE: /);
    assert.equal(r.vm, null, 'no machine was made');
  });
  note('EIO', 'script');
  test('EIO via script: a snapshot hook that fails', () => {
    const r = boot({
      snapshot: () => {
        throw new Error('disk full');
      },
    });
    const vm = r.vm as VmPhys;
    const before = captureState(vm);
    assert.match(r.exec('snapshot out.snap'), /^error: EIO: snapshot out.snap: disk full/);
    assertSameState(vm, before, 'snapshot hook');
  });
});

/** Every code a VmPhysError is constructed with in the library's source. */
function codesInSource(): Map<string, string[]> {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.ts')) files.push(join(d, e.name));
    }
  };
  for (const d of ['core', 'workers', 'boot', 'trace', 'script']) walk(join(root, d));
  const all = files.map((f) => [f, readFileSync(f, 'utf8')] as const);
  // Classes with a fixed code: `class X extends VmPhysError { ... super('CODE', ...`.
  const fixed = new Map<string, string>();
  for (const [, text] of all)
    for (const m of text.matchAll(/class (\w+) extends VmPhysError \{/g)) {
      const sup = /super\(\s*('([A-Z_0-9]+)')?/.exec(text.slice(m.index));
      if (sup?.[2]) fixed.set(m[1], sup[2]);
    }
  const codes = new Map<string, string[]>();
  const add = (code: string, where: string) => {
    if (!codes.has(code)) codes.set(code, []);
    codes.get(code)?.push(where);
  };
  for (const [f, text] of all) {
    const rel = f.slice(root.length + 1);
    for (const m of text.matchAll(/new (\w+Error)\(\s*(?:'([A-Z_0-9]+)')?/g)) {
      if (m[2]) add(m[2], rel);
      else if (fixed.has(m[1])) add(fixed.get(m[1]) as string, rel);
    }
  }
  return codes;
}

test('every error code in the source has a before/after case (table of codes and entry points)', () => {
  const codes = codesInSource();
  assert.ok(codes.size >= 30, `found only ${codes.size} codes: the source scan is broken`);
  for (const c of ['EDOUBLEFREE', 'ESNAPSHOT', 'ELOCK', 'EMEMMAP', 'ETRACE', 'ENPAGES', 'ELAYOUT_JSON'])
    assert.ok(codes.has(c), `the scan misses ${c}`);
  const missing = [...codes.keys()].filter((c) => !coverage.has(c));
  assert.deepEqual(
    missing,
    [],
    `codes without a case: ${missing.map((c) => `${c} (${codes.get(c)?.join(', ')})`).join('; ')}`,
  );
  const table = [...coverage.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([c, e]) => `# ${c.padEnd(16)} ${[...e].join(', ')}`);
  console.log(table.join('\n'));
});

test('a legitimate call after each kind of refusal still works (the machine is usable)', () => {
  const u = used();
  throwsCode(() => u.vm.findRange(0, 0, 0, 0, 2 ** 40), 'ENPAGES');
  throwsCode(() => u.vm.freeContig(u.run, Pool.DEFAULT, u.runPages + 1), 'EDOUBLEFREE');
  u.vm.freeContig(u.run, Pool.DEFAULT, u.runPages);
  u.vm.freePages(u.block, Pool.DIRECT, 3);
  u.vm.freePages(u.page, Pool.DEFAULT, 0);
  assert.ok(u.vm.findRange(0, 0, 1, 0, 2 ** 40) !== null);
  verify(u.vm, { deep: true, heldPages: u.held - u.runPages - 9 });
  assert.equal(u.vm.state.c.ctl[CTL.INITDONE], 1, 'find_range drained the domain');
});
