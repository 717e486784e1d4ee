/**
 * The vmlazyinit thread (spec §3.5) over the Atomics domain locks: drain the LAZYINIT pool block
 * by block, holding the domain lock only to take blocks off their queue and to free them into
 * DEFAULT; the blocks' pages are initialised with the lock dropped, counted meanwhile in
 * ctl[CTL.INFLIGHT + d] (the free-count reservation: free + in flight + held = total). Several
 * drainers may run over the same domain at once: each takes its own blocks under the lock and
 * initialises them in parallel outside it. Owned by the workers layer (src/workers/*).
 */
import { Worker } from 'node:worker_threads';
import { LockError } from '../core/errors.js';
import { CTL, DRSLOT, lockIndex } from '../core/layout.js';
import { handleIdx, handleOrder, lazyHandle, lazyPut, lazyTake } from '../core/lazy.js';
import { finishInit } from '../core/pages.js';
import { nextLazyQueue, qHead, qNext } from '../core/queues.js';
import type { VmPhys } from '../core/vmphys.js';
import type { SharedHandle } from './attach.js';
import './exchange.js';
import {
  claimRow,
  type DeadDrainer,
  DrainerDeathError,
  type DrainerRecovery,
  deadDrainers,
  deathError,
  recoverDrainers,
  releaseRow,
} from './drainer-table.js';
import { type DomainLocks, MB, mbWord, SYNC, syncOf, syncViews, trackWorker } from './lock.js';
import type { BoostState, SchedProbe, ThreadPriority } from './sched.js';

/** What one drainer did. Times in ms unless named Us (µs). */
export interface DrainStats {
  blocks: number;
  pages: number;
  /** Lock acquisitions by the drainer (one per `batch` blocks, plus one per domain at the end). */
  holds: number;
  /** Longest time the drainer held a domain lock, µs. */
  maxHoldUs: number;
  /** Holds longer than 10 µs and longer than 50 µs. */
  holdsOver10Us: number;
  holdsOver50Us: number;
  /** Sum of lock holds, µs. */
  totalHoldUs: number;
  /**
   * Holds during which the drainer thread was descheduled (its schedstat run count moved between
   * just before the lock and just after the release, and the lock was taken without waiting);
   * -1 when that cannot be observed (no /proc/thread-self/schedstat, or no probe).
   */
  preemptedHolds: number;
  /** Longest hold during which the thread was not seen descheduled, µs (= maxHoldUs without a probe). */
  maxRunningHoldUs: number;
  /** Every hold in µs, in order (at most HOLD_SAMPLES). */
  holdUs: number[];
  /** Whether the thread's priority was raised around its holds (see ThreadPriority). */
  boost: BoostState;
  /** Times the drainer slept `yieldMs` because other threads had taken the lock (allocator traffic). */
  yields: number;
  /** Exchanges (free the finished blocks, take the next) carried out by another lock holder. */
  delegated: number;
  /** Wall time of the drain, ms. */
  ms: number;
  /** True when this drainer was the last one and moved vm_default_freepool to DEFAULT. */
  finished: boolean;
}

/** Lazy blocks a vmlazyinit worker takes per lock hold by default (DrainerOptions.batch). */
export const DRAIN_BATCH = 4;

/** A vmlazyinit worker's sleep after a hold that saw allocator traffic, ms (DrainerOptions.yieldMs). */
export const DRAIN_YIELD_MS = 1;

/** Most hold samples a DrainStats keeps. */
export const HOLD_SAMPLES = 1 << 16;

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
    preemptedHolds: -1,
    maxRunningHoldUs: 0,
    holdUs: [],
    boost: 'off',
    yields: 0,
    delegated: 0,
    ms: 0,
    finished: false,
  };
}

/** How a drainer runs its loop (all optional). */
export interface DrainLoopOptions {
  /** Lazy blocks taken per lock hold (default 1: exactly vm_phys_lazy_init_domain's sequence). */
  batch?: number;
  /** Raise this thread's priority around each lock hold. */
  priority?: ThreadPriority;
  /** Observe whether the thread was descheduled during a hold (DrainStats.preemptedHolds). */
  sched?: SchedProbe;
  /**
   * Idle priority towards allocator traffic: when other threads took the domain lock since this
   * drainer's previous hold, sleep this many ms before the next hold (default 0: FreeBSD's
   * vmlazyinit, which drains whenever a CPU is idle). Allocations never wait for the drain —
   * they initialise lazy memory on demand — so yielding costs them nothing, and while they run
   * the drainer occupies the lock for at most one hold per `yieldMs` instead of back to back
   * (about 5 % of the time for a full-speed 32 GiB drain, i.e. inside a worker's p99).
   */
  yieldMs?: number;
  /**
   * Under allocator traffic, post each exchange to the lock's mailbox for the next lock holder to
   * carry out instead of taking the lock (flat combining; see MB in lock.ts; batch ≤ MB.MAX).
   * Default false: the drainer holds the lock itself, as vmlazyinit does.
   */
  delegate?: boolean;
  /**
   * Stop after this many blocks (0 or absent: drain to the end). For warm-ups; give the field
   * (as 0) on the real run's options object too, so that both share one hidden class.
   */
  maxBlocks?: number;
}

/** How long a posted exchange may wait for a lock holder before the drainer does it itself, ms. */
const DELEGATE_WAIT_MS = 0.5;

const now = () => performance.now();

/**
 * Drain the lazy blocks of `domain` with the take / finish-unlocked / put protocol. Returns when
 * the domain's LAZYINIT queues are empty (initdone set); blocks other drainers still hold in
 * flight may remain (see `waitInflight`). Stops early once `stop[stopIndex]` is non-zero (blocks
 * already taken are still finished and put back). The caller must not hold the domain's lock.
 *
 * As in vm_phys_lazy_init_domain, one lock hold frees the blocks finished since the last hold
 * and takes the next ones: with `batch` = 1 that is FreeBSD's sequence exactly (free block i,
 * take block i+1, drop the lock); `batch` = k takes k blocks per hold, so a worker runs into the
 * drainer k times less often, each time for a somewhat longer hold. Blocks are put back in the
 * order they were taken, so the DEFAULT queues end up as with batch 1.
 */
export function drainDomainLocked(
  vm: VmPhys,
  locks: DomainLocks,
  domain: number,
  st: DrainStats,
  stop?: Int32Array,
  stopIndex = 0,
  opts: DrainLoopOptions = {},
  row = -1,
): void {
  const s = vm.state;
  const t = s.c.drainers;
  const own = row < 0;
  if (own) row = claimRow(t, locks.id);
  const b = row * DRSLOT.SIZE;
  Atomics.store(t, b + DRSLOT.DOMAIN, domain);
  try {
    drainLoop(vm, locks, domain, st, stop, stopIndex, opts, t, b, row);
  } finally {
    if (own) releaseRow(t, row);
  }
}

function drainLoop(
  vm: VmPhys,
  locks: DomainLocks,
  domain: number,
  st: DrainStats,
  stop: Int32Array | undefined,
  stopIndex: number,
  opts: DrainLoopOptions,
  t: Int32Array,
  b: number,
  row: number,
): void {
  const s = vm.state;
  const ctl = s.c.ctl;
  const link = s.link;
  const k = Math.min(DRSLOT.MAX_BLOCKS, Math.max(1, Math.floor(opts.batch ?? 1)));
  const prio = opts.priority;
  const sched = opts.sched?.available ? opts.sched : undefined;
  if (prio !== undefined) st.boost = prio.state;
  if (sched !== undefined && st.preemptedHolds < 0) st.preemptedHolds = 0;
  // The lazyHandle of each block this drainer has in flight.
  const held = new Float64Array(k);
  let n = 0;
  const yieldMs = Math.max(0, opts.yieldMs ?? 0);
  const nap = yieldMs > 0 ? new Int32Array(new SharedArrayBuffer(4)) : null;
  let act = locks.activity(domain);
  // Scheduler count at the start of a hold: read before the lock, and again after every nap of
  // a polite lock wait (nothing sleeps between that read and the successful compare-exchange).
  let sw0 = -1;
  const wake = sched !== undefined && locks.polite ? () => (sw0 = sched.switches()) : null;
  const delegate = opts.delegate === true && k <= MB.MAX;
  const w = locks.words;
  const mb = lockIndex(vm.profile, domain);
  let busy = false;

  // One hold of our own: free the n finished blocks, take up to `want`; returns how many taken.
  const holdSelf = (want: number): number => {
    prio?.raise();
    sw0 = sched !== undefined ? sched.switches() : -1;
    const c0 = locks.contended;
    locks.onPoliteWake = wake;
    try {
      locks.lock(domain);
    } catch (e) {
      prio?.lower();
      throw e;
    } finally {
      locks.onPoliteWake = null;
    }
    const t0 = now();
    let got = 0;
    // The row is kept exact after every block (see DRSLOT); BUSY says a core call is under way.
    t[b + DRSLOT.BUSY] = 1;
    try {
      for (let i = 0; i < n; i++) {
        lazyPut(s, domain, handleIdx(held[i]), handleOrder(held[i]));
        t[b + DRSLOT.FIRST] = i + 1;
      }
      t[b + DRSLOT.FIRST] = 0;
      t[b + DRSLOT.N] = 0;
      n = 0;
      for (; got < want; got++) {
        const r = lazyTake(s, domain);
        if (r < 0) break;
        held[got] = r;
        t[b + DRSLOT.BLOCKS + 2 * got] = handleIdx(r);
        t[b + DRSLOT.BLOCKS + 2 * got + 1] = handleOrder(r);
        t[b + DRSLOT.N] = got + 1;
      }
    } finally {
      t[b + DRSLOT.BUSY] = 0;
      const h = (now() - t0) * 1000;
      locks.unlock(domain);
      // Descheduled during the hold? Decidable when no sleep can have come between the count's
      // read and the acquisition (polite wait, or no wait at all); a read costs a few µs, so only
      // for holds long enough to contain a context switch. Read before lowering the priority.
      const pre =
        h > 5 &&
        sched !== undefined &&
        sw0 >= 0 &&
        (wake !== null || locks.contended === c0) &&
        sched.switches() !== sw0;
      prio?.lower();
      noteHold(st, h, pre);
    }
    return got;
  };

  // The same exchange carried out by the next thread that releases the lock (see MB in
  // lock.ts); -1 when the mailbox is taken by another drainer. If no thread takes the lock
  // within DELEGATE_WAIT_MS (the traffic stopped), withdraw and hold the lock ourselves.
  const tryDelegate = (want: number): number => {
    const posting = mbWord(MB.POSTING, row);
    const requested = mbWord(MB.REQUESTED, row);
    const done = mbWord(MB.DONE, row);
    if (Atomics.compareExchange(w, mb + MB.STATE, MB.IDLE, posting) !== MB.IDLE) return -1;
    const slots = mb + MB.SLOTS;
    for (let j = 0; j < n; j++) {
      w[slots + 2 * j] = handleIdx(held[j]);
      w[slots + 2 * j + 1] = handleOrder(held[j]);
    }
    w[mb + MB.NPUT] = n;
    w[mb + MB.WANT] = want;
    Atomics.store(w, mb + MB.STATE, requested);
    const posted = now();
    const deadline = posted + DELEGATE_WAIT_MS;
    for (;;) {
      const state = Atomics.load(w, mb + MB.STATE);
      if (state === done) break;
      if (now() - posted > locks.deadlineMs)
        throw new LockError(`domain ${domain}: a lock holder took the drainer's request and never answered (died?)`);
      if (state === requested && now() > deadline) {
        if (Atomics.compareExchange(w, mb + MB.STATE, requested, posting) === requested) {
          try {
            return holdSelf(want);
          } finally {
            Atomics.store(w, mb + MB.STATE, MB.IDLE); // also when the hold throws
          }
        }
        continue;
      }
      Atomics.wait(w, mb + MB.STATE, state, 0.05);
    }
    const got = w[mb + MB.NGOT];
    for (let j = 0; j < got; j++) held[j] = lazyHandle(w[slots + 2 * j], w[slots + 2 * j + 1]);
    n = 0;
    Atomics.store(w, mb + MB.STATE, MB.IDLE);
    st.delegated++;
    return got;
  };

  const maxBlocks = opts.maxBlocks ?? 0;
  for (;;) {
    const halt =
      (stop !== undefined && Atomics.load(stop, stopIndex) !== 0) ||
      Atomics.load(ctl, CTL.INITDONE + domain) !== 0 ||
      (maxBlocks > 0 && st.blocks >= maxBlocks);
    if (halt && n === 0) return;
    const want = halt ? 0 : k;
    if (want > 0) prefaultNext(vm, domain, want);
    const holds0 = st.holds;
    let got = delegate && busy ? tryDelegate(want) : -1;
    if (got < 0) got = holdSelf(want);
    const ownAcq = locks.traffic ? st.holds - holds0 : 0;
    // Acquisitions by allocating threads since the previous hold (ours counts too unless this
    // drainer's locks were made with traffic: false, as a vmlazyinit worker's are).
    const a = locks.activity(domain);
    busy = ((a - act) | 0) > ownAcq;
    act = a;
    if (got === 0) return;
    n = got;
    for (let i = 0; i < n; i++) {
      const order = handleOrder(held[i]);
      const idx = handleIdx(held[i]);
      // Lock dropped: nobody else can reach this block. Initialise it, and fault in its head's
      // link page so that lazyPut under the lock does not take that page fault (see prefaultNext
      // for why a compare-exchange).
      finishInit(s, idx, order);
      Atomics.compareExchange(link, 2 * idx, 0, 0);
      st.blocks++;
      st.pages += 1 << order;
    }
    if (busy && nap !== null) {
      st.yields++;
      Atomics.wait(nap, 0, 0, yieldMs);
      act = locks.activity(domain); // traffic during the nap is what the nap was for
    }
  }
}

function noteHold(st: DrainStats, us: number, preempted: boolean): void {
  st.holds++;
  st.totalHoldUs += us;
  if (st.holdUs.length < HOLD_SAMPLES) st.holdUs.push(us);
  if (us > st.maxHoldUs) st.maxHoldUs = us;
  if (preempted) st.preemptedHolds++;
  else if (us > st.maxRunningHoldUs) st.maxRunningHoldUs = us;
  if (us > 10) {
    st.holdsOver10Us++;
    if (us > 50) st.holdsOver50Us++;
  }
}

/**
 * Before taking the lock: guess the blocks lazyTake will take next (an unlocked, possibly stale
 * walk of the lazy queues from their heads) and pre-fault the metadata and link pages it will
 * touch — each block head's metadata byte and link words — so that zero-fill page faults of
 * never-touched SharedArrayBuffer memory stay out of the critical section. A stale guess costs
 * only a wasted touch; indices are bounds-checked.
 *
 * The touch is `Atomics.compareExchange(a, i, 0, 0)`: it never changes a value (it stores 0 only
 * where 0 already is), so it is safe on words another thread owns, and it is a pure write access
 * (x86 `lock cmpxchg`). `Atomics.add(a, i, 0)` would also keep the value, but V8 implements it
 * with a load first: the load maps the shared zero page and the write then takes a second,
 * copy-on-write fault whose TLB flush interrupts every other CPU running this process (one
 * shootdown IPI per page; measured: ~2 per 16 MiB block drained, each stalling the workers).
 */
function prefaultNext(vm: VmPhys, domain: number, count: number): void {
  const s = vm.state;
  const { meta, link } = s;
  const total = vm.totalPages;
  let left = count + 1; // one more than needed: the next hold's first block
  for (let q = nextLazyQueue(s, domain, -1); q >= 0; q = nextLazyQueue(s, domain, q)) {
    let m = qHead(s, q);
    while (m >= 0 && m < total) {
      Atomics.compareExchange(meta, m, 0, 0);
      Atomics.compareExchange(link, 2 * m, 0, 0);
      if (--left === 0) return;
      m = qNext(s, q, m);
    }
  }
}

/**
 * Wait until no drainer holds pages of `domain` in flight. Throws DrainerDeathError as soon as a
 * drainer holding some of them is known to be dead (its blocks are then lost until
 * `recoverDrainers`), and LockError after `deadlineMs` (a drainer whose death nobody tracks).
 */
export function waitInflight(vm: VmPhys, domain: number, deadlineMs = 30000): void {
  const ctl = vm.state.c.ctl;
  if (Atomics.load(ctl, CTL.INFLIGHT + domain) === 0) return;
  const sync = syncOf(vm);
  const start = now();
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; Atomics.load(ctl, CTL.INFLIGHT + domain) !== 0; i++) {
    if (i > 64) Atomics.wait(nap, 0, 0, 0.05);
    if ((i & 63) === 0) {
      for (const d of deadDrainers(vm, sync))
        if (d.domain === domain && d.pages > 0) throw deathError(d, 'while waiting for its blocks in flight');
    }
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
  opts: DrainLoopOptions = {},
): DrainStats {
  const ctl = vm.state.c.ctl;
  const t = vm.state.c.drainers;
  const t0 = now();
  const row = claimRow(t, locks.id);
  const b = row * DRSLOT.SIZE;
  // Counted, and the row says so, in two adjacent stores (no call between them).
  Atomics.add(ctl, CTL.DRAINERS, 1);
  t[b + DRSLOT.COUNTED] = 1;
  let left = -1;
  try {
    for (let d = 0; d < vm.ndomains; d++) drainDomainLocked(vm, locks, d, st, stop, stopIndex, opts, row);
  } finally {
    left = Atomics.sub(ctl, CTL.DRAINERS, 1) - 1;
    t[b + DRSLOT.COUNTED] = 0;
    releaseRow(t, row);
  }
  if (left > 0) {
    // Others are still counted: fine if they run; a dead one would keep the drain from ever
    // finishing (nobody would move vm_default_freepool), so say so.
    const dead = deadDrainers(vm, locks.sync);
    if (dead.length > 0) throw deathError(dead[0], 'so the lazy drain cannot finish');
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
  /**
   * Lock spin count of the drainers (see LockOptions.spin). Default 0: a polite drainer does
   * not poll the lock word, whose cache line would then bounce on every lock and unlock of the
   * workers; it retries with a single compare-exchange after each nap.
   */
  spin?: number;
  /**
   * Nice value of the drainer threads (default 19: vmlazyinit runs at idle priority, so the CPU
   * workers win the processor when there are more runnable threads than cores). 0 = unchanged.
   */
  nice?: number;
  /** Low-priority lock waiting (LockOptions.polite); default true. */
  polite?: boolean;
  /**
   * Lazy blocks taken per lock hold (default DRAIN_BATCH; see drainDomainLocked). Each hold is
   * a moment a worker may have to wait; with 1 block per hold a 32 GiB drain makes ~2,000 of
   * them, which on a fast drain is above 1% of a worker's allocations, i.e. inside its p99.
   */
  batch?: number;
  /**
   * Sleep (ms) before the next hold when other threads took the lock since the last one
   * (DrainLoopOptions.yieldMs; default DRAIN_YIELD_MS; 0 = drain flat out, as FreeBSD does).
   */
  yieldMs?: number;
  /** Post exchanges to lock holders under traffic (DrainLoopOptions.delegate; default true). */
  delegate?: boolean;
  /**
   * Nice value while acquiring and holding a domain lock (default 0, the workers' priority; only
   * used when `nice` is set): the priority-ceiling boost of ThreadPriority, so that a nice-19
   * holder is not left behind normal threads while workers wait for its lock. null = no boost.
   */
  holdNice?: number | null;
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
        spin: opts.spin ?? 0,
        nice: opts.nice ?? 19,
        polite: opts.polite ?? true,
        batch: opts.batch ?? DRAIN_BATCH,
        yieldMs: opts.yieldMs ?? DRAIN_YIELD_MS,
        delegate: opts.delegate ?? true,
        holdNice: opts.holdNice === undefined ? 0 : opts.holdNice,
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
          else
            reject(
              new DrainerDeathError(
                `drainer ${i} (thread ${w.threadId}) exited (code ${code}) without a result; the blocks it held are given back by recoverDrainers`,
                w.threadId,
                -1,
                -1,
                false,
              ),
            );
        });
      }),
    );
  }
  return { workers, done: Promise.all(dones), ready: Promise.all(readies).then(() => {}) };
}

export { type DeadDrainer, DrainerDeathError, type DrainerRecovery, deadDrainers, recoverDrainers };
