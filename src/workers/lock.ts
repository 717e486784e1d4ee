/**
 * The domain free lock (FreeBSD's vmd_free_mtx) as an Atomics mutex over shared memory, plus the
 * small "sync" buffer the worker layer shares besides the allocator's own buffers.
 * Owned by the workers layer (src/workers/*); the core never takes locks itself.
 *
 * Lock word: `c.locks[lockIndex(profile, d)]` holds 0 when free, else the owner's id
 * (Node `threadId + 1`, so the main thread is 1). The next words of the same cache line count
 * the threads sleeping on the lock (+1), name a starving waiter (+2) and count acquisitions by
 * allocating threads (+3, `ACT_WORD`, wrapping; written by the new owner under the lock, read
 * racily by a drainer that yields to allocator traffic). Acquire: one
 * compare-exchange (fast path); otherwise spin (`spin` polls, then for up to `spinUs` µs: a
 * holder's critical section is usually shorter than a futex sleep and wake-up), then register as
 * a sleeper and sleep with a *timed* `Atomics.wait` on the lock word. Release: compare-exchange owner → 0 (a release
 * by a non-owner is a LockError), then `Atomics.notify` one sleeper if any.
 * Anti-starvation (after Go's sync.Mutex): a sleeper that has waited more than `starveMs` (1 ms)
 * registers itself in word +2; the next release claims that word and hands ownership straight
 * to it (owner word goes owner → target, never through 0, so nobody can barge in).
 *
 * Dead-owner detection (a worker that dies holding the lock must never hang its waiters):
 *  - the sync buffer has a liveness table, slot `id & (LIVE_CAP-1)`: `id` = alive, `-id` = dead;
 *  - the thread that spawns a worker calls `trackWorker(sync, worker)`: it marks the id alive at
 *    once and dead on the worker's 'exit' event (this covers crashes and `terminate()`), and
 *    `markDeadOnExit()` inside a worker marks its own id dead from `process.on('exit')` (this
 *    covers normal ends and `process.exit()` even while the spawner's event loop is busy);
 *  - marking dead notifies every lock word, so sleepers re-check at once; a sleeper also wakes
 *    every `pollMs` and checks the current owner's slot. An owner found dead → `LockError`
 *    (the lock stays poisoned: the state it guards may be half-updated; run `verify`).
 *  - as a last resort, a waiter gives up with `LockError` after `deadlineMs` (default 30 s), so
 *    even an untracked owner cannot cause a silent hang.
 * A waiter on the *main* thread cannot see deaths that its own event loop has not processed
 * yet; it still gets them from the dying worker's own exit hook, or at the deadline.
 *
 * Counters: acquisitions and contended acquisitions are counted per thread and published into
 * the sync buffer (per domain, Float64) under that domain's lock every 1024 acquisitions and on
 * `flushCounters()`, so the shared totals are exact once every thread has flushed.
 *
 * The lock knows nothing of the allocator: it needs the machine's control views (lock words,
 * counters), which a registered resolver finds for a machine object, and serves the drainer's
 * mailbox (MB) through the `LockMailbox` the resolver gives (workers/exchange.ts).
 */
import { threadId, type Worker } from 'node:worker_threads';
import { LockError } from '../core/errors.js';
import type { ControlViews } from '../core/layout.js';
import { CTL, lockIndex, STAT } from '../core/layout.js';
import type { Profile } from '../core/params.js';

/**
 * The server of the drainer's mailbox (MB): called by the lock holder on release when a request
 * is posted; returns true if it carried one out.
 */
export interface LockMailbox {
  serve(words: Int32Array, i: number, d: number): boolean;
}

/** What a lock set needs of the machine it guards: its control views, profile and mailbox server. */
export interface LockHost {
  readonly control: ControlViews;
  readonly profile: Profile;
  readonly mailbox: LockMailbox | null;
}

/** Finds the LockHost of a machine object (null: not a machine). */
export type LockHostResolver = (machine: object) => LockHost | null;
let resolveHost: LockHostResolver | null = null;

/**
 * Register how a machine object (a VmPhys) is resolved to what its locks need. The allocator's
 * side does this when loaded (exchange.ts), so this file needs no knowledge of the allocator.
 */
export function setLockHostResolver(f: LockHostResolver): void {
  resolveHost = f;
}

function hostOf(machine: object): LockHost {
  const h = resolveHost === null ? null : resolveHost(machine);
  if (h === null) throw new LockError('not an allocator: DomainLocks needs a VmPhys (import vmphys/workers)');
  return h;
}

/** Layout of the sync buffer: Int32 words first, then Float64 words. */
export const SYNC = {
  MAGIC: 0, // Int32: 0x766d7379
  GO: 1, // Int32: start barrier for benchmark/stress workers (0 wait, 1 go)
  STOP: 2, // Int32: set to 1 to ask time-budgeted workers and drainers to stop
  RUNNING: 3, // Int32: stress workers that have passed the GO barrier
  NOISE: 4, // Int32: control ("noise") threads currently running
  SABOTAGE_STOP: 5, // Int32: set to 1 to end the stress run's bad-free ("saboteur") workers
  LIVE: 16, // Int32: first slot of the liveness table
  LIVE_CAP: 4096, // slots (a power of two)
  // Float64 word offsets (from the start of the Float64 region):
  F64_BYTE_OFFSET: (16 + 4096) * 4,
  DOM: 0, // per domain, DOM_STRIDE doubles: [ACQ, CONT]
  DOM_STRIDE: 8,
  ACQ: 0,
  CONT: 1,
  MAX_DOMAINS: 16,
  DRAIN: 16 * 8, // drainer figures (written under domain locks): see DRAIN_* below
  DRAIN_MAX_HOLD_US: 0,
  DRAIN_BLOCKS: 1,
  DRAIN_PAGES: 2,
  DRAIN_HOLDS: 3,
  DRAIN_HOLD_TOTAL_US: 4,
  F64_WORDS: 16 * 8 + 16,
} as const;

const SYNC_MAGIC = 0x766d7379;
const LIVE_MASK = SYNC.LIVE_CAP - 1;

/** A fresh sync buffer (shared). */
export function createSync(): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(SYNC.F64_BYTE_OFFSET + SYNC.F64_WORDS * 8);
  new Int32Array(sab)[SYNC.MAGIC] = SYNC_MAGIC;
  return sab;
}

/** Int32 and Float64 views of a sync buffer (checks the magic word). */
export function syncViews(sab: SharedArrayBuffer): { i32: Int32Array; f64: Float64Array } {
  const i32 = new Int32Array(sab, 0, SYNC.F64_BYTE_OFFSET / 4);
  if (i32[SYNC.MAGIC] !== SYNC_MAGIC) throw new LockError('not a vmphys sync buffer');
  return { i32, f64: new Float64Array(sab, SYNC.F64_BYTE_OFFSET, SYNC.F64_WORDS) };
}

const syncByControl = new WeakMap<object, SharedArrayBuffer>();

/**
 * The sync buffer that belongs to an allocator's control buffer: created on first use in the
 * thread that owns the allocator, and registered by `attach` in workers (see attach.ts).
 */
export function syncOf(vm: object): SharedArrayBuffer {
  const key = hostOf(vm).control.buffer;
  let s = syncByControl.get(key);
  if (s === undefined) {
    s = createSync();
    syncByControl.set(key, s);
  }
  return s;
}

/** Register `sync` as the sync buffer of `vm` (used by attach). */
export function bindSync(vm: object, sync: SharedArrayBuffer): void {
  syncViews(sync);
  syncByControl.set(hostOf(vm).control.buffer, sync);
}

/** This thread's owner id (Node threadId + 1: the main thread is 1). */
export const SELF_ID = threadId + 1;

/** Mark a thread id alive in the liveness table. */
export function markAlive(sync: SharedArrayBuffer, id: number): void {
  Atomics.store(syncViews(sync).i32, SYNC.LIVE + (id & LIVE_MASK), id);
}

/** Mark a thread id dead and wake every sleeper of every lock word in `lockWords` (optional). */
export function markDead(sync: SharedArrayBuffer, id: number, lockWords?: Int32Array): void {
  Atomics.store(syncViews(sync).i32, SYNC.LIVE + (id & LIVE_MASK), -id);
  if (lockWords) for (let i = 0; i < lockWords.length; i++) Atomics.notify(lockWords, i);
}

/** True when the liveness table says `id` has exited. */
export function isDead(sync: SharedArrayBuffer, id: number): boolean {
  return Atomics.load(syncViews(sync).i32, SYNC.LIVE + (id & LIVE_MASK)) === -id;
}

/**
 * Track a worker spawned by this thread: alive now, dead on its 'exit' event (crash,
 * `terminate()`, or normal end). `lockWords` (the allocator's `c.locks`) are notified on death.
 */
export function trackWorker(sync: SharedArrayBuffer, worker: Worker, lockWords?: Int32Array): void {
  const id = worker.threadId + 1;
  markAlive(sync, id);
  worker.once('exit', () => markDead(sync, id, lockWords));
}

/** Inside a worker: mark this thread dead from `process.on('exit')` (normal end, process.exit). */
export function markDeadOnExit(sync: SharedArrayBuffer, lockWords?: Int32Array): void {
  markAlive(sync, SELF_ID);
  process.once('exit', () => markDead(sync, SELF_ID, lockWords));
}

/** Tuning of a DomainLocks instance. */
export interface LockOptions {
  /** Polls of the lock word before sleeping (default 128). */
  spin?: number;
  /**
   * Then keep polling for up to this many µs before sleeping (default 20; not for polite
   * waiters): a holder in a critical section of a few µs (a drainer's hold) releases well before
   * a futex sleep and wake-up would return, and the release then needs no wake-up either.
   */
  spinUs?: number;
  /**
   * Whether this thread's acquisitions count as allocator traffic in the ACT word (default true).
   * Drainers pass false, so that parallel drainers do not mistake each other for allocations.
   */
  traffic?: boolean;
  /** Sleep slice of a waiter, in ms, after which it re-checks the owner's liveness (default 10). */
  pollMs?: number;
  /** Give up with LockError after this many ms of waiting (default 30000). */
  deadlineMs?: number;
  /** A waiter that has waited this long (ms) asks for a direct hand-off (default 1). */
  starveMs?: number;
  /**
   * Low-priority ("polite") waiting, for the drainer: never register as a sleeper or ask for a
   * hand-off; poll with growing naps (20 µs doubling to 1 ms) instead. Releases by other threads
   * then never pay for a wake-up, and a lock is never handed to a thread the scheduler is not
   * running (no priority inversion with a nice-19 drainer). Default false.
   */
  polite?: boolean;
  /** Record hold times (ms) of this thread into `holdSamples` (default false). */
  timing?: boolean;
  /** Capacity of `holdSamples` when timing (default 1 << 20). */
  maxSamples?: number;
}

const now = () => performance.now();
const PUBLISH_EVERY = 1024;

/** Offset of the acquisition counter from a domain's lock word (same cache line). */
export const ACT_WORD = 3;

/**
 * The drainer's mailbox, in the rest of the lock word's cache line (offsets from the lock word):
 * a drainer that sees allocator traffic does not take the lock itself; it posts "free these
 * finished lazy blocks, take up to `want` more" and the next thread to release the lock carries
 * it out before releasing (flat combining). So the drainer never holds the lock while it could
 * be preempted, and a worker pays a few µs once per request. States: IDLE → POSTING (a drainer
 * claimed the box) → REQUESTED → SERVING (a lock holder took it) → DONE → IDLE (the drainer read
 * the answer); a drainer may withdraw REQUESTED → POSTING and do the work itself. The STATE word
 * carries, above its low byte, the poster's row in the drainer table + 1 (`mbWord`), so that the
 * server records the blocks it hands over in that row and a dead poster's request can be
 * withdrawn by recovery.
 */
export const MB = {
  STATE: 4,
  NPUT: 5,
  WANT: 6,
  NGOT: 7,
  /** Block slots: [idx, order] pairs, the blocks to free, then the blocks taken. */
  SLOTS: 8,
  /** Blocks per request (the slots fill the rest of a 64-byte line). */
  MAX: 4,
  IDLE: 0,
  POSTING: 1,
  REQUESTED: 2,
  SERVING: 3,
  DONE: 4,
  /** Mask of the state proper in the STATE word. */
  STATE_MASK: 0xff,
} as const;

/** The mailbox STATE word of `state` posted by drainer-table row `row` (IDLE carries no row). */
export function mbWord(state: number, row: number): number {
  return state === MB.IDLE ? MB.IDLE : state | ((row + 1) << 8);
}
/** The state proper of a mailbox STATE word. */
export function mbState(word: number): number {
  return word & MB.STATE_MASK;
}
/** The drainer-table row of the poster of a mailbox STATE word (-1: none). */
export function mbRow(word: number): number {
  return (word >>> 8) - 1;
}

/**
 * The per-domain free locks of one allocator, as seen from one thread. Not reentrant. Each
 * thread makes its own instance (it keeps the thread's private counters and timing state).
 */
export class DomainLocks {
  readonly words: Int32Array;
  readonly sync: SharedArrayBuffer;
  readonly ndomains: number;
  readonly id = SELF_ID;
  spin: number;
  spinUs: number;
  pollMs: number;
  deadlineMs: number;
  starveMs: number;
  polite: boolean;
  timing: boolean;
  /** Acquisitions by this thread bump the ACT word (LockOptions.traffic). */
  readonly traffic: boolean;
  /** Hold times in ms recorded by this thread when `timing` (first `holdCount` entries). */
  holdSamples: Float64Array;
  holdCount = 0;
  /** Longest hold seen by this thread when timing, ms. */
  holdMax = 0;
  /** Sum of holds (ms) by this thread when timing. */
  holdTotal = 0;
  /** Acquisitions and contended acquisitions by this thread (all domains, never reset). */
  acquires = 0;
  contended = 0;
  /**
   * Polite waiting only: called after each nap, just before the next attempt to take the lock
   * (the drainer reads its scheduler counters there, so a hold's count starts after any sleep).
   */
  onPoliteWake: (() => void) | null = null;
  private readonly stride: number;
  /** Serves the drainer's mailbox on release (null: requests wait for another thread). */
  readonly mailbox: LockMailbox | null;
  /** Drainer requests this thread carried out while releasing a lock. */
  served = 0;
  private readonly stats: Float64Array;
  private readonly live: Int32Array;
  private readonly shared: Float64Array;
  private readonly pendAcq: Int32Array;
  private readonly pendCont: Int32Array;
  private t0 = 0;

  /** `vm`: the machine whose domain locks these are (a VmPhys). */
  constructor(vm: object, opts: LockOptions = {}) {
    const host = hostOf(vm);
    const c = host.control;
    this.mailbox = host.mailbox;
    this.words = c.locks;
    this.stride = lockIndex(host.profile, 1);
    this.stats = c.stats;
    this.sync = syncOf(vm);
    const v = syncViews(this.sync);
    this.live = v.i32;
    this.shared = v.f64;
    this.ndomains = Math.max(1, c.ctl[CTL.NDOMAINS]);
    this.pendAcq = new Int32Array(this.ndomains);
    this.pendCont = new Int32Array(this.ndomains);
    this.spin = opts.spin ?? 128;
    this.spinUs = opts.spinUs ?? 20;
    this.pollMs = opts.pollMs ?? 10;
    this.deadlineMs = opts.deadlineMs ?? 30000;
    this.starveMs = opts.starveMs ?? 1;
    this.polite = opts.polite ?? false;
    this.traffic = opts.traffic ?? true;
    this.timing = opts.timing ?? false;
    this.holdSamples = new Float64Array(this.timing ? (opts.maxSamples ?? 1 << 20) : 0);
  }

  /** Acquisitions of domain d's lock that count as traffic, so far (wrapping int32; a racy read). */
  activity(d: number): number {
    return Atomics.load(this.words, d * this.stride + ACT_WORD);
  }

  /** Take domain `d`'s free lock (0 ≤ d < ndomains, not checked). Throws LockError on a dead owner. */
  lock(d: number): void {
    if (Atomics.compareExchange(this.words, d * this.stride, 0, this.id) !== 0) this.lockSlow(d);
    else this.acquired(d, 0);
  }

  /** Try once without waiting; true when the lock was taken. */
  tryLock(d: number): boolean {
    if (Atomics.compareExchange(this.words, d * this.stride, 0, this.id) !== 0) return false;
    this.acquired(d, 0);
    return true;
  }

  /**
   * Release domain `d`'s lock; LockError if this thread does not own it. If a starving waiter
   * has registered (see the header), ownership goes straight to it instead of to whoever is fastest.
   */
  unlock(d: number): void {
    const i = d * this.stride;
    const w = this.words;
    const o = Atomics.load(w, i); // only the owner changes the word while it is held
    if (o !== this.id) throw this.notOwner(d, o);
    if ((Atomics.load(w, i + MB.STATE) & MB.STATE_MASK) === MB.REQUESTED && this.mailbox !== null) {
      try {
        if (this.mailbox.serve(w, i, d)) this.served++;
      } catch (e) {
        this.release(i);
        throw e;
      }
    }
    if (this.timing) this.recordHold();
    this.release(i);
  }

  /** The release proper of a lock (its word index i), by its owner. */
  private release(i: number): void {
    const w = this.words;
    const t = Atomics.load(w, i + 2);
    if (t !== 0 && Atomics.compareExchange(w, i + 2, t, 0) === t && !this.isDead(t)) {
      Atomics.store(w, i, t); // hand-off: the word never passes through 0
      Atomics.notify(w, i); // wake all: the target must see the hand-off
      return;
    }
    Atomics.store(w, i, 0);
    if (Atomics.load(w, i + 1) !== 0) Atomics.notify(w, i, 1);
  }

  /** Take every domain's lock in ascending order (the only multi-lock order allowed). */
  lockAll(): void {
    for (let d = 0; d < this.ndomains; d++) this.lock(d);
  }
  /** Release every domain's lock. */
  unlockAll(): void {
    for (let d = this.ndomains - 1; d >= 0; d--) this.unlock(d);
  }

  /**
   * Take over domain d's lock from `deadId`, a thread the liveness table says has exited while
   * holding it: true when the lock is now this thread's (release it with `unlock`). Only for
   * recovery code that has established that the state the lock guards is whole (see
   * drainer.ts, recoverDrainers); anything else must treat such a lock as poisoned.
   */
  takeOver(d: number, deadId: number): boolean {
    if (deadId <= 0 || deadId === this.id || !this.isDead(deadId)) return false;
    if (Atomics.compareExchange(this.words, d * this.stride, deadId, this.id) !== deadId) return false;
    this.acquired(d, 1);
    return true;
  }

  /** Current owner id of domain d's lock (0 = free). */
  owner(d: number): number {
    return Atomics.load(this.words, d * this.stride);
  }

  /** True when the liveness table says `id` has exited. */
  isDead(id: number): boolean {
    return Atomics.load(this.live, SYNC.LIVE + (id & LIVE_MASK)) === -id;
  }

  /** Publish this thread's pending counters into the shared ones (takes each domain's lock). */
  flushCounters(): void {
    for (let d = 0; d < this.ndomains; d++) {
      if (this.pendAcq[d] === 0) continue;
      this.lock(d); // publishes inside `acquired` when due; force it:
      this.publish(d);
      this.unlock(d);
    }
  }

  /** Shared totals (exact once every thread has flushed): acquisitions and contended ones. */
  sharedCounts(): { acquires: number; contended: number } {
    let acquires = 0;
    let contended = 0;
    for (let d = 0; d < this.ndomains; d++) {
      acquires += this.shared[SYNC.DOM + d * SYNC.DOM_STRIDE + SYNC.ACQ];
      contended += this.shared[SYNC.DOM + d * SYNC.DOM_STRIDE + SYNC.CONT];
    }
    return { acquires, contended };
  }

  /** Forget this thread's timing samples. */
  resetTiming(): void {
    this.holdCount = 0;
    this.holdMax = 0;
    this.holdTotal = 0;
  }

  private acquired(d: number, contended: number): void {
    // The new owner holds the line exclusively after its compare-exchange: a plain add is ~free.
    if (this.traffic) {
      const a = d * this.stride + ACT_WORD;
      this.words[a] = (this.words[a] + 1) | 0;
    }
    this.acquires++;
    this.contended += contended;
    this.pendCont[d] += contended;
    if (++this.pendAcq[d] >= PUBLISH_EVERY) this.publish(d);
    if (this.timing) this.t0 = now();
  }

  /** Add pending counters of domain d to the shared ones; caller holds d's lock. */
  private publish(d: number): void {
    const b = SYNC.DOM + d * SYNC.DOM_STRIDE;
    this.shared[b + SYNC.ACQ] += this.pendAcq[d];
    this.shared[b + SYNC.CONT] += this.pendCont[d];
    this.stats[STAT.LOCK_ACQUIRES] += this.pendAcq[d];
    this.stats[STAT.LOCK_CONTENDED] += this.pendCont[d];
    this.pendAcq[d] = 0;
    this.pendCont[d] = 0;
  }

  private recordHold(): void {
    const dt = now() - this.t0;
    if (this.holdCount < this.holdSamples.length) this.holdSamples[this.holdCount++] = dt;
    if (dt > this.holdMax) this.holdMax = dt;
    this.holdTotal += dt;
  }

  private deadOwner(d: number, owner: number): LockError {
    return new LockError(
      `domain ${d} free lock is held by thread ${owner - 1}, which has exited: it died holding the lock ` +
        '(the lock stays taken; the state it guards may be half-updated)',
    );
  }

  private nap: Int32Array | null = null;

  /** Low-priority acquisition: poll with growing naps, unregistered (see LockOptions.polite). */
  private lockPolite(d: number): void {
    const w = this.words;
    const i = d * this.stride;
    const id = this.id;
    const nap = (this.nap ??= new Int32Array(new SharedArrayBuffer(4)));
    const start = now();
    let napMs = 0.02;
    for (;;) {
      const v = Atomics.compareExchange(w, i, 0, id);
      if (v === 0) break;
      if (v === id) throw new LockError(`domain ${d} free lock: thread ${id - 1} already holds it (not reentrant)`);
      if (v < 0) throw new LockError(`domain ${d} free lock word is corrupt (${v})`);
      if (this.isDead(v)) throw this.deadOwner(d, v);
      Atomics.wait(nap, 0, 0, napMs);
      napMs = Math.min(1, napMs * 2);
      if (this.onPoliteWake !== null) this.onPoliteWake();
      for (let s = 0; s < this.spin && Atomics.load(w, i) !== 0; s++) {}
      if (now() - start > this.deadlineMs)
        throw new LockError(
          `domain ${d} free lock: waited ${Math.round(now() - start)} ms for thread ${v - 1} (deadline ${this.deadlineMs} ms)`,
        );
    }
    this.acquired(d, 1);
  }

  private notOwner(d: number, v: number): LockError {
    return new LockError(
      `domain ${d} free lock released by thread ${this.id - 1}, but its owner is ${v === 0 ? 'nobody' : `thread ${v - 1}`}`,
    );
  }

  private lockSlow(d: number): void {
    const w = this.words;
    const i = d * this.stride;
    const T = i + 2;
    const id = this.id;
    for (let s = 0; s < this.spin; s++) {
      if (Atomics.load(w, i) === 0 && Atomics.compareExchange(w, i, 0, id) === 0) {
        this.acquired(d, 1);
        return;
      }
    }
    if (this.polite) {
      this.lockPolite(d);
      return;
    }
    const start = now();
    if (this.spinUs > 0) {
      const until = start + this.spinUs / 1000;
      for (let s = 1; ; s++) {
        if (Atomics.load(w, i) === 0 && Atomics.compareExchange(w, i, 0, id) === 0) {
          this.acquired(d, 1);
          return;
        }
        if ((s & 31) === 0 && now() > until) break;
      }
    }
    let target = false;
    Atomics.add(w, i + 1, 1);
    try {
      for (;;) {
        const v = Atomics.compareExchange(w, i, 0, id);
        if (v === 0) break;
        if (v === id) {
          if (target) break; // handed off to us by the previous owner
          throw new LockError(`domain ${d} free lock: thread ${id - 1} already holds it (not reentrant)`);
        }
        if (v < 0) throw new LockError(`domain ${d} free lock word is corrupt (${v})`);
        if (this.isDead(v)) throw this.deadOwner(d, v);
        const waited = now() - start;
        if (!target && waited > this.starveMs) {
          const t = Atomics.compareExchange(w, T, 0, id);
          if (t === 0) target = true;
          else if (this.isDead(t)) Atomics.compareExchange(w, T, t, 0);
        }
        Atomics.wait(w, i, v, this.pollMs);
        if (now() - start > this.deadlineMs) {
          if (target) {
            if (Atomics.compareExchange(w, T, id, 0) !== id) {
              // An unlocker has claimed us: the hand-off is under way; take it.
              while (Atomics.load(w, i) !== id) {}
              break;
            }
            target = false;
          }
          const o = Atomics.load(w, i);
          if (o === 0) continue;
          throw new LockError(
            `domain ${d} free lock: waited ${Math.round(now() - start)} ms for thread ${o - 1} (deadline ${this.deadlineMs} ms)`,
          );
        }
      }
    } finally {
      Atomics.sub(w, i + 1, 1);
      // Withdraw as the hand-off target (no-op if an unlocker already claimed us).
      if (target) Atomics.compareExchange(w, T, id, 0);
    }
    this.acquired(d, 1);
  }
}
