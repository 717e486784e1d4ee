/**
 * Worker entry for `vmphys stress`, the workers benchmark and the drainer: attaches to the shared
 * allocator and runs one role given in workerData ('stress' = a CPU doing random traffic,
 * 'drain' = the vmlazyinit thread, 'compute' = arithmetic only, the machine-capacity probe and
 * the latency control). Spawned by stress-run.ts and drainer.ts only.
 * Owned by the workers layer (src/workers/*).
 */
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { VmPhysError } from '../core/errors.js';
import { CTL, DRAINER_SLOTS, DRSLOT } from '../core/layout.js';
import { Pool } from '../core/params.js';
import type { VmPhys } from '../core/vmphys.js';
import { attach, type SharedHandle } from './attach.js';
import { type DrainLoopOptions, drainAll, newDrainStats } from './drainer.js';
import { warmUp } from './drainer-warmup.js';
import { DomainLocks, type LockOptions, markDeadOnExit, SYNC, syncViews } from './lock.js';
import { LockedVmPhys } from './locked.js';
import { PcpuCache } from './pcpu.js';
import { SchedProbe, ThreadPriority } from './sched.js';
import type { SaboteurConfig, SaboteurResult, StressWorkerConfig, StressWorkerResult } from './stress-run.js';

interface DrainConfig {
  role: 'drain';
  handle: SharedHandle;
  index: number;
  waitGo: boolean;
  /** Start only once this many stress workers run (sync RUNNING word)... */
  afterRunning: number;
  /** ...and then after this many more milliseconds. */
  delayMs: number;
  warmRounds: number;
  spin?: number;
  /** Nice value for this thread (vmlazyinit runs at idle priority); 0 = unchanged. */
  nice: number;
  /** Low-priority lock waiting (LockOptions.polite). */
  polite: boolean;
  /** Lazy blocks taken per lock hold. */
  batch: number;
  /** Sleep after a hold that saw allocator traffic, ms (DrainLoopOptions.yieldMs). */
  yieldMs: number;
  /** Post exchanges to lock holders under traffic (DrainLoopOptions.delegate). */
  delegate: boolean;
  /** Nice value while acquiring and holding a lock (priority ceiling); null = stay at `nice`. */
  holdNice: number | null;
}

/**
 * Lower this thread's scheduling priority. On Linux, setpriority(PRIO_PROCESS, 0) applies to the
 * calling thread only, so this does not touch the other threads. Best effort (ignored if refused).
 */
function lowerPriority(nice: number): void {
  try {
    setPriority(0, nice);
  } catch {
    // Not permitted or not supported: run at normal priority.
  }
}

/** sfc32: a small seeded PRNG with 32-bit output (no allocation per call). */
class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed | 0;
    for (let i = 0; i < 15; i++) this.next();
  }
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
}

const KIND_CONTIG = 4;
const HIGH = 2 ** 52;

function waitGo(sync: SharedArrayBuffer): void {
  const i32 = syncViews(sync).i32;
  while (Atomics.load(i32, SYNC.GO) === 0) Atomics.wait(i32, SYNC.GO, 0, 1000);
}

interface StressEnv {
  locks: DomainLocks;
  locked: LockedVmPhys;
  cache: PcpuCache | null;
}

function setupStress(cfg: StressWorkerConfig): StressEnv {
  const vm = attach(cfg.handle);
  if (cfg.warmRounds > 0) warmUp(vm.profile, cfg.warmRounds);
  const locks = new DomainLocks(vm, {
    timing: cfg.holdTiming,
    spin: cfg.spin,
    spinUs: cfg.spinUs,
    starveMs: cfg.starveMs,
    maxSamples: cfg.maxSamples,
  });
  markDeadOnExit(cfg.handle.sync, locks.words);
  const locked = new LockedVmPhys(vm, locks);
  return { locks, locked, cache: cfg.pcpu ? new PcpuCache(locked, cfg.pcpu) : null };
}

function stress(cfg: StressWorkerConfig, env: StressEnv): StressWorkerResult {
  const locks = env.locks;
  const locked = env.locked;
  const cache = env.cache;
  const vm = locked.vm;
  const sync = syncViews(cfg.handle.sync).i32;
  const ctl = vm.state.c.ctl;
  const cap = cfg.cap;
  const addrs = new Float64Array(cap);
  const npg = new Int32Array(cap);
  const kinds = new Uint8Array(cap);
  // Live blocks published for the saboteurs (see SaboteurConfig): an entry's page count is set
  // after its allocation returned and cleared before its free starts, so a saboteur that reads
  // a non-zero entry under the block's domain lock knows the block is allocated right then.
  const pubPa = cfg.publish ? new Float64Array(cfg.publish.pa) : null;
  const pubNp = cfg.publish ? new Int32Array(cfg.publish.np) : null;
  const lat = cfg.latency;
  const latIdle = new Float64Array(lat ? cfg.maxSamples : 0);
  const latDrain = new Float64Array(lat ? cfg.maxSamples : 0);
  let nIdle = 0;
  let nDrain = 0;
  const latFrom = performance.now() + cfg.latSkipMs; // skip the start-up transient
  const rng = new Rng((cfg.seed ^ Math.imul(cfg.index + 1, 0x9e3779b1)) | 0);
  const ndom = vm.ndomains;
  const maxOrder = cfg.mix === 'order0' ? 0 : Math.min(10, vm.maxOrder);
  const contig = cfg.mix === 'order0' ? 0 : cfg.contigPer256;
  const pageSize = vm.pageSize;
  const budget = cfg.ops >= 0 ? cfg.ops : Number.MAX_SAFE_INTEGER;
  let n = 0;
  let allocs = 0;
  let frees = 0;
  let failed = 0;
  let contigAllocs = 0;
  let ops = 0;
  const start = performance.timeOrigin + performance.now();
  Atomics.add(sync, SYNC.RUNNING, 1);
  Atomics.notify(sync, SYNC.RUNNING);
  for (; ops < budget; ops++) {
    if ((ops & 1023) === 0 && cfg.ops < 0 && Atomics.load(sync, SYNC.STOP) !== 0) break;
    const r = rng.next();
    if (n === 0 || (n < cap && (r & 1) === 0)) {
      const domain = ndom === 1 ? 0 : (r >>> 12) % ndom;
      let pa: number;
      let np: number;
      let kind: number;
      const t0 = lat ? performance.now() : 0;
      if (((r >>> 1) & 255) < contig) {
        np = 1 + ((r >>> 18) & 63);
        const p = locked.allocContig(domain, np, 0, HIGH, pageSize, 0);
        pa = p === null ? -1 : p;
        kind = KIND_CONTIG | Pool.DEFAULT;
        if (pa >= 0) contigAllocs++;
      } else {
        const bits = rng.next();
        let order = bits === 0 ? 32 : 31 - Math.clz32(bits & -bits);
        if (order > maxOrder) order = maxOrder;
        const pool = (r >>> 9) & 1 ? Pool.DIRECT : Pool.DEFAULT;
        np = 1 << order;
        kind = pool;
        if (order === 0 && cache !== null) pa = cache.alloc(domain, pool);
        else {
          const p = locked.allocPages(domain, pool, order);
          pa = p === null ? -1 : p;
        }
      }
      if (lat && t0 >= latFrom) {
        const dt = performance.now() - t0;
        if ((ctl[CTL.DRAINERS] | sync[SYNC.NOISE]) !== 0) {
          if (nDrain < latDrain.length) latDrain[nDrain++] = dt;
        } else if (nIdle < latIdle.length) latIdle[nIdle++] = dt;
      }
      if (pa < 0) failed++;
      else {
        addrs[n] = pa;
        npg[n] = np;
        kinds[n] = kind;
        if (pubNp !== null && pubPa !== null && (kind & KIND_CONTIG) === 0) {
          pubPa[n] = pa;
          Atomics.store(pubNp, n, np);
        }
        n++;
        allocs++;
      }
    } else {
      const j = (r >>> 1) % n;
      const pa = addrs[j];
      const np = npg[j];
      const kind = kinds[j];
      n--;
      if (pubNp !== null) Atomics.store(pubNp, j, 0);
      addrs[j] = addrs[n];
      npg[j] = npg[n];
      kinds[j] = kinds[n];
      if (kind & KIND_CONTIG) locked.freeContig(pa, kind & 3, np);
      else if (np === 1 && cache !== null) cache.free(pa, kind);
      else locked.freePages(pa, kind, 31 - Math.clz32(np));
      if (pubNp !== null && pubPa !== null && j !== n) {
        pubPa[j] = addrs[j];
        Atomics.store(pubNp, j, (kinds[j] & KIND_CONTIG) === 0 ? npg[j] : 0);
        Atomics.store(pubNp, n, 0);
      }
      frees++;
    }
  }
  const end = performance.timeOrigin + performance.now();
  const flushed = cache ? cache.flush() : 0;
  locks.flushCounters();
  let held = 0;
  for (let i = 0; i < n; i++) held += npg[i];
  return {
    type: 'done',
    index: cfg.index,
    ops,
    allocs,
    frees,
    failedAllocs: failed,
    contigAllocs,
    lockAcquires: locks.acquires,
    lockContended: locks.contended,
    heldPages: held,
    heldBlocks: n,
    flushedPages: flushed,
    pcpuRefills: cache ? cache.refills : 0,
    pcpuDrains: cache ? cache.drains : 0,
    startMs: start,
    endMs: end,
    addrs: addrs.slice(0, n),
    npages: npg.slice(0, n),
    kinds: kinds.slice(0, n),
    latIdle: latIdle.slice(0, nIdle),
    latDrain: latDrain.slice(0, nDrain),
    holds: locks.holdSamples.slice(0, locks.holdCount),
    holdMaxMs: locks.holdMax,
    holdTotalMs: locks.holdTotal,
  };
}

function drain(cfg: DrainConfig, vm: VmPhys, locks: DomainLocks, loop: DrainLoopOptions) {
  const st = newDrainStats();
  try {
    drainAll(vm, locks, st, syncViews(cfg.handle.sync).i32, SYNC.STOP, loop);
  } finally {
    loop.sched?.close();
  }
  locks.flushCounters();
  return { type: 'drained', index: cfg.index, stats: st };
}

/**
 * Aim bad frees until the sync SABOTAGE_STOP word is set. Each attempt takes the target's domain
 * lock, reads the target under it (a drainer's row lists its blocks exactly while its domain
 * lock is free; a victim's published entry is non-zero only while its block is allocated), and
 * frees it wrongly through the validated facade, still under the lock: a free that returns
 * normally was accepted.
 */
function sabotage(cfg: SaboteurConfig): SaboteurResult {
  const vm = attach(cfg.handle);
  const locks = new DomainLocks(vm);
  markDeadOnExit(cfg.handle.sync, locks.words);
  const locked = new LockedVmPhys(vm, locks);
  const sync = syncViews(cfg.handle.sync).i32;
  const t = vm.state.c.drainers;
  const ps = vm.pageSize;
  const rng = new Rng((cfg.seed ^ Math.imul(cfg.index + 101, 0x85ebca6b)) | 0);
  const victims = cfg.victims.map((v) => ({ pa: new Float64Array(v.pa), np: new Int32Array(v.np) }));
  const res: SaboteurResult = {
    type: 'sabotaged',
    index: cfg.index,
    attempts: [0, 0, 0, 0],
    accepted: [0, 0, 0, 0],
    noTarget: 0,
    codes: {},
    untyped: [],
  };
  const nap = new Int32Array(new SharedArrayBuffer(4));
  while (Atomics.load(sync, SYNC.SABOTAGE_STOP) === 0) {
    if (cfg.pauseMs > 0) Atomics.wait(nap, 0, 0, cfg.pauseMs);
    const r = rng.next();
    const kind = r & 3;
    let d = 0;
    let pa = -1;
    let order = 0;
    if (kind < 2) {
      d = (r >>> 2) % vm.ndomains;
      locks.lock(d);
      try {
        const row = (r >>> 8) % DRAINER_SLOTS;
        let found = -1;
        for (let k = 0; k < DRAINER_SLOTS && found < 0; k++) {
          const b = ((row + k) % DRAINER_SLOTS) * DRSLOT.SIZE;
          if (t[b + DRSLOT.OWNER] !== 0 && t[b + DRSLOT.DOMAIN] === d && t[b + DRSLOT.N] > t[b + DRSLOT.FIRST])
            found = b;
        }
        if (found < 0) {
          res.noTarget++;
          continue;
        }
        const i = t[found + DRSLOT.FIRST] + ((r >>> 16) % (t[found + DRSLOT.N] - t[found + DRSLOT.FIRST]));
        const idx = t[found + DRSLOT.BLOCKS + 2 * i];
        order = t[found + DRSLOT.BLOCKS + 2 * i + 1];
        pa = vm.paOf(idx);
        if (kind === 1 && order > 0) {
          pa += ps * (1 + ((r >>> 20) % (2 ** order - 1)));
          order = 0;
        }
        attempt(vm, res, kind, pa, order);
      } finally {
        locks.unlock(d);
      }
    } else {
      const v = victims[(r >>> 2) % victims.length];
      const k = (r >>> 8) % v.np.length;
      const guess = v.pa[k];
      if (Atomics.load(v.np, k) === 0) {
        res.noTarget++;
        continue;
      }
      d = locked.domainOfPa(guess);
      locks.lock(d);
      try {
        const np = Atomics.load(v.np, k);
        const at = v.pa[k];
        if (np === 0 || at !== guess) {
          res.noTarget++;
          continue;
        }
        const o = 31 - Math.clz32(np);
        if (kind === 3 && np > 1) {
          pa = at + ps * (1 + ((r >>> 16) % (np - 1)));
          order = 0;
        } else if (o + 1 < vm.nOrd && (at / ps) % 2 ** (o + 1) === 0) {
          pa = at;
          order = o + 1;
        } else if (o > 0) {
          pa = at;
          order = o - 1;
        } else {
          pa = at - ps; // an order-1 block whose upper half is the victim's page
          order = 1;
        }
        attempt(vm, res, kind, pa, order);
      } finally {
        locks.unlock(d);
      }
    }
  }
  locks.flushCounters();
  return res;
}

/** One bad free (caller holds the lock of pa's domain); counts the outcome. */
function attempt(vm: VmPhys, res: SaboteurResult, kind: number, pa: number, order: number): void {
  res.attempts[kind]++;
  try {
    vm.freePages(pa, Pool.DEFAULT, order);
    res.accepted[kind]++;
  } catch (e) {
    if (e instanceof VmPhysError) res.codes[e.code] = (res.codes[e.code] ?? 0) + 1;
    else if (res.untyped.length < 8) res.untyped.push(`${(e as Error).name}: ${(e as Error).message}`);
    else res.untyped.length++;
  }
}

interface ComputeConfig {
  role: 'compute';
  index: number;
  /** Fixed work; or, when < 0, a background "noise" thread (see StressOptions.noise). */
  iterations: number;
  sync: SharedArrayBuffer;
  /** Noise mode: start once this many stress workers run, after delayMs; run durationMs. */
  afterRunning?: number;
  delayMs?: number;
  durationMs?: number;
  nice?: number;
}

/** Independent work with no shared writes: measures how many cores the machine really gives. */
function compute(cfg: ComputeConfig): { type: 'computed'; ms: number; sink: number } {
  const a = new Float64Array(1024);
  let x = cfg.index + 1;
  const t0 = performance.now();
  for (let i = 0; i < cfg.iterations; i++) {
    x = (Math.imul(x, 1103515245) + 12345) | 0;
    a[i & 1023] += x;
  }
  return { type: 'computed', ms: performance.now() - t0, sink: a[x & 1023] };
}

/**
 * A background thread that only computes (no shared memory, no lock) while it flags itself in the
 * sync NOISE word: the control for "what does any second runnable thread cost the workers here".
 */
function noise(cfg: ComputeConfig): { type: 'computed'; ms: number; sink: number } {
  const i32 = syncViews(cfg.sync).i32;
  for (
    let r: number;
    (r = Atomics.load(i32, SYNC.RUNNING)) < (cfg.afterRunning ?? 0) && Atomics.load(i32, SYNC.STOP) === 0;
  )
    Atomics.wait(i32, SYNC.RUNNING, r, 100);
  if ((cfg.delayMs ?? 0) > 0) Atomics.wait(i32, SYNC.STOP, 0, cfg.delayMs);
  if (cfg.nice) lowerPriority(cfg.nice);
  Atomics.add(i32, SYNC.NOISE, 1);
  const t0 = performance.now();
  const end = t0 + (cfg.durationMs ?? 100);
  let x = 1;
  while (performance.now() < end && Atomics.load(i32, SYNC.STOP) === 0)
    for (let i = 0; i < 4096; i++) x = (Math.imul(x, 1103515245) + 12345) | 0;
  Atomics.sub(i32, SYNC.NOISE, 1);
  return { type: 'computed', ms: performance.now() - t0, sink: x };
}

const port = parentPort;
if (port) {
  const cfg = workerData as StressWorkerConfig | DrainConfig | ComputeConfig | SaboteurConfig;
  try {
    if (cfg.role === 'sabotage') {
      port.postMessage({ type: 'ready', index: cfg.index });
      waitGo(cfg.handle.sync);
      port.postMessage(sabotage(cfg));
    } else if (cfg.role === 'compute') {
      port.postMessage({ type: 'ready', index: cfg.index });
      waitGo(cfg.sync);
      port.postMessage(cfg.iterations < 0 ? noise(cfg) : compute(cfg));
    } else if (cfg.role === 'drain') {
      const vm = attach(cfg.handle);
      // vmlazyinit's idle priority between lock holds; the workers' priority while holding one.
      const priority = cfg.nice !== 0 ? new ThreadPriority(cfg.nice, cfg.holdNice ?? cfg.nice) : undefined;
      const sched = new SchedProbe();
      const loop: DrainLoopOptions = {
        batch: cfg.batch,
        priority,
        sched,
        yieldMs: cfg.yieldMs,
        delegate: cfg.delegate,
        maxBlocks: 0,
      };
      const lockOpts: LockOptions = { spin: cfg.spin, polite: cfg.polite, traffic: false };
      warmUp(vm.profile, cfg.warmRounds, { loop, lock: lockOpts }, vm);
      const locks = new DomainLocks(vm, lockOpts);
      markDeadOnExit(cfg.handle.sync, locks.words);
      port.postMessage({ type: 'ready', index: cfg.index });
      if (cfg.waitGo) waitGo(cfg.handle.sync);
      const i32 = syncViews(cfg.handle.sync).i32;
      for (
        let r: number;
        (r = Atomics.load(i32, SYNC.RUNNING)) < cfg.afterRunning && Atomics.load(i32, SYNC.STOP) === 0;
      )
        Atomics.wait(i32, SYNC.RUNNING, r, 100);
      if (cfg.delayMs > 0) Atomics.wait(i32, SYNC.STOP, 0, cfg.delayMs);
      port.postMessage(drain(cfg, vm, locks, loop));
    } else {
      const env = setupStress(cfg);
      port.postMessage({ type: 'ready', index: cfg.index });
      waitGo(cfg.handle.sync);
      const res = stress(cfg, env);
      const bufs = [res.addrs, res.npages, res.kinds, res.latIdle, res.latDrain, res.holds].map(
        (a) => a.buffer as ArrayBuffer,
      );
      port.postMessage(res, bufs);
    }
  } catch (e) {
    const err = e as Error;
    port.postMessage({
      type: 'error',
      index: cfg.index,
      error: `${err.name}: ${err.message}`,
      code: (err as { code?: string }).code,
    });
  }
  // No port.close(): the worker ends when this script returns, after its messages are delivered.
}
