/**
 * The vmlazyinit thread (spec §3.5) over the Atomics domain locks: drain the LAZYINIT pool block
 * by block, holding the domain lock only to take a block off its queue and to free it into
 * DEFAULT; the block's pages are initialised with the lock dropped, counted meanwhile in
 * ctl[CTL.INFLIGHT + d] (the free-count reservation: free + in flight + held = total). Several
 * drainers may run over the same domain at once: each takes its own blocks under the lock and
 * initialises them in parallel outside it. Owned by the workers layer (src/workers/*).
 */
import { Worker } from 'node:worker_threads';
import { allocContig } from '../core/contig.js';
import { LockError } from '../core/errors.js';
import { CTL } from '../core/layout.js';
import { Pool, type Profile } from '../core/params.js';
import { VmPhys } from '../core/vmphys.js';
import type { SharedHandle } from './attach.js';
import { DomainLocks, SYNC, syncViews, trackWorker } from './lock.js';

/** What one drainer did. Times in ms unless named Us (µs). */
export interface DrainStats {
  blocks: number;
  pages: number;
  /** Lock acquisitions by the drainer (two per block, plus one per domain at the end). */
  holds: number;
  /** Longest time the drainer held a domain lock, µs. */
  maxHoldUs: number;
  /** Holds longer than 10 µs and longer than 50 µs. */
  holdsOver10Us: number;
  holdsOver50Us: number;
  /** Sum of lock holds, µs. */
  totalHoldUs: number;
  /** Wall time of the drain, ms. */
  ms: number;
  /** True when this drainer was the last one and moved vm_default_freepool to DEFAULT. */
  finished: boolean;
}

/** A zeroed DrainStats. */
export function newDrainStats(): DrainStats {
  return {
    blocks: 0,
    pages: 0,
    holds: 0,
    maxHoldUs: 0,
    holdsOver10Us: 0,
    holdsOver50Us: 0,
    totalHoldUs: 0,
    ms: 0,
    finished: false,
  };
}

const now = () => performance.now();

/**
 * Drain the lazy blocks of `domain` with the take / finish-unlocked / put protocol. Returns when
 * the domain's LAZYINIT queues are empty (initdone set); blocks other drainers still hold in
 * flight may remain (see `waitInflight`). Stops early once `stop[stopIndex]` is non-zero.
 * The caller must not hold the domain's lock.
 */
export function drainDomainLocked(
  vm: VmPhys,
  locks: DomainLocks,
  domain: number,
  st: DrainStats,
  stop?: Int32Array,
  stopIndex = 0,
): void {
  const ctl = vm.c.ctl;
  for (;;) {
    if (stop !== undefined && Atomics.load(stop, stopIndex) !== 0) return;
    if (Atomics.load(ctl, CTL.INITDONE + domain) !== 0) return;
    prefaultNext(vm, domain);
    locks.lock(domain);
    let t0 = now();
    let r: number;
    try {
      r = vm.lazyTake(domain);
    } finally {
      const h = (now() - t0) * 1000;
      locks.unlock(domain);
      noteHold(st, h);
    }
    if (r < 0) return;
    const order = r % 16;
    const idx = (r - order) / 16;
    // Lock dropped: nobody else can reach this block. Initialise it, and touch its link words
    // so that lazyPut under the lock does not take a page fault on fresh memory.
    vm.finishInit(idx, order);
    Atomics.add(vm.p.link, 2 * idx, 0);
    locks.lock(domain);
    t0 = now();
    try {
      vm.lazyPut(domain, idx, order);
    } finally {
      const h = (now() - t0) * 1000;
      locks.unlock(domain);
      noteHold(st, h);
    }
    st.blocks++;
    st.pages += 1 << order;
  }
}

function noteHold(st: DrainStats, us: number): void {
  st.holds++;
  st.totalHoldUs += us;
  if (us > st.maxHoldUs) st.maxHoldUs = us;
  if (us > 10) {
    st.holdsOver10Us++;
    if (us > 50) st.holdsOver50Us++;
  }
}

/**
 * Before taking the lock: guess the block lazyTake will take (an unlocked, possibly stale read of
 * the lazy queue heads) and pre-fault the metadata and link pages it will write — its head and
 * the next chunk of its run — with atomic no-op read-modify-writes (Atomics.add of 0), which are
 * safe even if another thread owns those words by now. This keeps zero-fill page faults of never
 * touched SharedArrayBuffer memory out of the critical section.
 */
function prefaultNext(vm: VmPhys, domain: number): void {
  const ctl = vm.c.ctl;
  const head = vm.c.qHead;
  for (let fl = 0; fl < vm.nFl; fl++) {
    const flind = ctl[CTL.FL_TO_FLIND + fl];
    if (flind < 0) continue;
    const qbase = vm.qIndex(domain, flind, Pool.LAZYINIT, 0);
    for (let o = 0; o < vm.nOrd; o++) {
      const m = head[qbase + o];
      if (m < 0 || m >= vm.totalPages) continue;
      const { meta, link } = vm.p;
      Atomics.add(meta, m, 0);
      Atomics.add(link, 2 * m, 0);
      const n = m + vm.chunkPages;
      if (n < vm.totalPages) {
        Atomics.add(meta, n, 0);
        Atomics.add(link, 2 * n, 0);
      }
      return;
    }
  }
}

/**
 * Wait until no drainer holds pages of `domain` in flight. Throws LockError after `deadlineMs`
 * (a drainer that died mid-block leaves its pages in flight for good).
 */
export function waitInflight(vm: VmPhys, domain: number, deadlineMs = 30000): void {
  const ctl = vm.c.ctl;
  if (Atomics.load(ctl, CTL.INFLIGHT + domain) === 0) return;
  const start = now();
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; Atomics.load(ctl, CTL.INFLIGHT + domain) !== 0; i++) {
    if (i > 64) Atomics.wait(nap, 0, 0, 0.05);
    if (now() - start > deadlineMs)
      throw new LockError(
        `domain ${domain}: ${Atomics.load(ctl, CTL.INFLIGHT + domain)} lazy pages still in flight after ${deadlineMs} ms (a drainer died mid-block?)`,
      );
  }
}

/**
 * The vmlazyinit thread body: drain every domain in order, then, if this is the last drainer
 * running (ctl[CTL.DRAINERS] drops to 0) and every domain is done, wait for in-flight blocks and
 * call `finishLazyInit()` under all domain locks. `stop` as in drainDomainLocked.
 */
export function drainAll(
  vm: VmPhys,
  locks: DomainLocks,
  st: DrainStats = newDrainStats(),
  stop?: Int32Array,
  stopIndex = 0,
): DrainStats {
  const ctl = vm.c.ctl;
  const t0 = now();
  Atomics.add(ctl, CTL.DRAINERS, 1);
  let left = -1;
  try {
    for (let d = 0; d < vm.ndomains; d++) drainDomainLocked(vm, locks, d, st, stop, stopIndex);
  } finally {
    left = Atomics.sub(ctl, CTL.DRAINERS, 1) - 1;
  }
  if (left === 0) {
    let all = true;
    for (let d = 0; d < vm.ndomains; d++) if (Atomics.load(ctl, CTL.INITDONE + d) === 0) all = false;
    if (all) {
      for (let d = 0; d < vm.ndomains; d++) waitInflight(vm, d, locks.deadlineMs);
      locks.lockAll();
      try {
        if (!vm.drained) {
          vm.finishLazyInit();
          st.finished = true;
        }
      } finally {
        locks.unlockAll();
      }
    }
  }
  st.ms = now() - t0;
  publishDrainStats(locks, st);
  return st;
}

/** Add a drainer's figures to the sync buffer's drain words (under domain 0's lock). */
function publishDrainStats(locks: DomainLocks, st: DrainStats): void {
  const f = syncViews(locks.sync).f64;
  locks.lock(0);
  try {
    const b = SYNC.DRAIN;
    if (st.maxHoldUs > f[b + SYNC.DRAIN_MAX_HOLD_US]) f[b + SYNC.DRAIN_MAX_HOLD_US] = st.maxHoldUs;
    f[b + SYNC.DRAIN_BLOCKS] += st.blocks;
    f[b + SYNC.DRAIN_PAGES] += st.pages;
    f[b + SYNC.DRAIN_HOLDS] += st.holds;
    f[b + SYNC.DRAIN_HOLD_TOTAL_US] += st.totalHoldUs;
  } finally {
    locks.unlock(0);
  }
}

/** Longest lock hold (µs) published by any drainer of this allocator so far. */
export function drainerMaxHoldUs(sync: SharedArrayBuffer): number {
  return syncViews(sync).f64[SYNC.DRAIN + SYNC.DRAIN_MAX_HOLD_US];
}

/** Options for startDrainers. */
export interface DrainerOptions {
  /** Number of drainer workers (parallel drain over the same domains). Default 1. */
  count?: number;
  /** Wait for the sync buffer's GO word before draining (stress/bench start barrier). */
  waitGo?: boolean;
  /** Then also wait until this many stress workers are running (sync RUNNING word). Default 0. */
  afterRunning?: number;
  /** Then wait this many more ms (default 0). */
  delayMs?: number;
  /** JIT warm-up rounds before attaching (default 60; see warmUp). */
  warmRounds?: number;
  /** Lock spin count of the drainers (see LockOptions.spin). */
  spin?: number;
  /**
   * Nice value of the drainer threads (default 19: vmlazyinit runs at idle priority, so the CPU
   * workers win the processor when there are more runnable threads than cores). 0 = unchanged.
   */
  nice?: number;
  /** Low-priority lock waiting (LockOptions.polite); default true. */
  polite?: boolean;
}

/** A running set of drainer workers. */
export interface Drainers {
  readonly workers: Worker[];
  /** Resolves when every drainer has ended, with each one's figures; rejects on a worker error. */
  readonly done: Promise<DrainStats[]>;
  /** Resolves when every drainer has attached and is ready. */
  readonly ready: Promise<void>;
}

/**
 * Spawn `count` vmlazyinit workers over a shared allocator (main-thread side). Each is tracked
 * for dead-owner detection. Stop them early with `Atomics.store(syncViews(h.sync).i32, SYNC.STOP, 1)`.
 */
export function startDrainers(h: SharedHandle, opts: DrainerOptions = {}, lockWords?: Int32Array): Drainers {
  const n = Math.max(1, opts.count ?? 1);
  const workers: Worker[] = [];
  const dones: Promise<DrainStats>[] = [];
  const readies: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const w = new Worker(new URL('./stress-worker.js', import.meta.url), {
      workerData: {
        role: 'drain',
        handle: h,
        index: i,
        waitGo: opts.waitGo ?? false,
        afterRunning: opts.afterRunning ?? 0,
        delayMs: opts.delayMs ?? 0,
        warmRounds: opts.warmRounds ?? 60,
        spin: opts.spin,
        nice: opts.nice ?? 19,
        polite: opts.polite ?? true,
      },
    });
    trackWorker(h.sync, w, lockWords);
    workers.push(w);
    let readyFn: () => void = () => {};
    readies.push(new Promise<void>((res) => (readyFn = res)));
    dones.push(
      new Promise<DrainStats>((resolve, reject) => {
        let result: DrainStats | null = null;
        w.on('message', (m: { type: string; stats?: DrainStats; error?: string }) => {
          if (m.type === 'ready') readyFn();
          else if (m.type === 'drained') result = m.stats ?? null;
          else if (m.type === 'error') reject(new Error(`drainer ${i}: ${m.error}`));
        });
        w.once('error', (e) => reject(e));
        w.once('exit', (code) => {
          readyFn();
          if (result) resolve(result);
          else reject(new Error(`drainer ${i} exited (code ${code}) without a result`));
        });
      }),
    );
  }
  return { workers, done: Promise.all(dones), ready: Promise.all(readies).then(() => {}) };
}

/**
 * JIT warm-up for a drainer (or any worker) before it touches the shared allocator: run the
 * drainer protocol and some allocation traffic on small private machines, so the first lock
 * holds on the real allocator run optimised code instead of the interpreter (cold holds are
 * 10-100× longer). Returns the number of lazy blocks drained.
 */
export function warmUp(profile: Profile, rounds = 150): number {
  let blocks = 0;
  const out = new Float64Array(64);
  const MiB = 1024 * 1024;
  const high = 4 * 1024 * MiB; // a segment above 4 GiB: addresses that are not small integers
  for (let i = 0; i < rounds; i++) {
    const vm = new VmPhys({ profile });
    vm.addSeg(0x1000, 0x9f000);
    vm.addSeg(MiB, 33 * MiB);
    vm.addSeg(high, high + 64 * MiB);
    // Fragmented phys_avail: many small lazy blocks of every order.
    vm.addAvail(0x1000, 0x9f000);
    vm.addAvail(MiB, 33 * MiB);
    for (let a = high; a < high + 64 * MiB; a += 4 * MiB)
      vm.addAvail(a, a + 4 * MiB - 4096 * (1 + ((a / (4 * MiB)) % 7)));
    vm.init();
    vm.startup('lazy');
    const locks = new DomainLocks(vm);
    const st = newDrainStats();
    for (let k = 0; k < 8; k++) {
      const pool = 1 + (k & 1);
      const pa = vm.allocPages(0, pool, k);
      if (pa !== null) vm.freePages(pa, pool, k);
    }
    const got = vm.allocNpages(0, 1, 40, out);
    for (let k = 0; k < got; k++) vm.freePages(out[k], 1, 0);
    const c = allocContig(vm, 0, 3 + (i & 15), 0, 2 ** 52, 4096, 0);
    if (c !== null) vm.freeContig(c, 1, 3 + (i & 15));
    drainDomainLocked(vm, locks, 0, st);
    blocks += st.blocks;
  }
  return blocks;
}
