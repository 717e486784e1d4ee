/**
 * The engine behind `vmphys stress` and the workers benchmark (main-thread side): build a
 * machine, spawn N CPU workers (random alloc / free / contig traffic from a seeded PRNG) and
 * optionally the vmlazyinit drainer(s), then check what they leave behind: conservation
 * (free + in flight + held = pages at startup), no page held twice, no held page also free,
 * `verify()`, and that every held block can be freed again. Owned by the workers layer.
 */
import { Worker } from 'node:worker_threads';
import { buildMachine, flatFirecrackerMap } from '../boot/startup.js';
import { hex } from '../core/errors.js';
import { CTL } from '../core/layout.js';
import { type Profile, profileByName } from '../core/params.js';
import { nQueues, qHead, qNext } from '../core/queues.js';
import { verify } from '../core/verify.js';
import type { VmPhys } from '../core/vmphys.js';
import { handleOf, type SharedHandle } from './attach.js';
import { type DrainStats, startDrainers } from './drainer.js';
import { createSync, DomainLocks, SYNC, syncViews, trackWorker } from './lock.js';
import type { PcpuOptions } from './pcpu.js';

/** workerData of a stress worker (see stress-worker.ts). */
export interface StressWorkerConfig {
  role: 'stress';
  handle: SharedHandle;
  index: number;
  /** Operations for this worker; -1 = run until the sync STOP word is set. */
  ops: number;
  seed: number;
  /** Most blocks a worker holds at once. */
  cap: number;
  mix: 'mixed' | 'order0';
  contigPer256: number;
  pcpu: PcpuOptions | null;
  latency: boolean;
  /** Latency samples start this many ms after the worker starts. */
  latSkipMs: number;
  holdTiming: boolean;
  maxSamples: number;
  spin?: number;
  spinUs?: number;
  starveMs?: number;
  /** JIT warm-up rounds on a private machine before attaching (0 = none). */
  warmRounds: number;
  /** Where to publish live blocks for saboteurs (null: no saboteurs). */
  publish: { pa: SharedArrayBuffer; np: SharedArrayBuffer } | null;
}

/** What a stress worker posts back when done. Times in ms (start/end: absolute epoch ms). */
export interface StressWorkerResult {
  type: 'done';
  index: number;
  ops: number;
  allocs: number;
  frees: number;
  failedAllocs: number;
  contigAllocs: number;
  lockAcquires: number;
  lockContended: number;
  heldPages: number;
  heldBlocks: number;
  flushedPages: number;
  pcpuRefills: number;
  pcpuDrains: number;
  startMs: number;
  endMs: number;
  addrs: Float64Array;
  npages: Int32Array;
  kinds: Uint8Array;
  latIdle: Float64Array;
  latDrain: Float64Array;
  holds: Float64Array;
  holdMaxMs: number;
  holdTotalMs: number;
}

/** workerData of a saboteur: a thread that only aims bad frees (see runStress's `saboteurs`). */
export interface SaboteurConfig {
  role: 'sabotage';
  handle: SharedHandle;
  index: number;
  seed: number;
  /** The CPU workers' published live blocks: page address and page count per held slot. */
  victims: Array<{ pa: SharedArrayBuffer; np: SharedArrayBuffer }>;
  /** Pause between attempts, ms. */
  pauseMs: number;
}

/** Kinds of bad free a saboteur aims. */
export const SABOTAGE_KINDS = [
  'drainer-head', // the head of a lazy block a drainer holds, at its order
  'drainer-interior', // a page inside such a block, order 0
  'wrong-order', // another worker's live block at its head with another order
  'interior', // a page inside another worker's live block, order 0
] as const;

/** What a saboteur posts back. */
export interface SaboteurResult {
  type: 'sabotaged';
  index: number;
  /** Per kind (SABOTAGE_KINDS order): bad frees tried, and accepted (should be 0). */
  attempts: number[];
  accepted: number[];
  /** Attempts that found no target (no drainer block held, no live block published). */
  noTarget: number;
  /** Rejections by error code. */
  codes: Record<string, number>;
  /** Errors that were not typed allocator errors (first few messages). */
  untyped: string[];
}

/** Options of a stress run. */
export interface StressOptions {
  workers: number;
  /** Total operations over all workers (split evenly). Ignored when durationMs is given. */
  ops?: number;
  /** Run for this long instead of a fixed number of operations. */
  durationMs?: number;
  /** Run the vmlazyinit drainer concurrently. */
  drain?: boolean;
  /** Number of parallel drainers (default 1). */
  drainers?: number;
  seed?: number;
  /** End address of the RAM segment (map: 0x1000-0x9f000, 0x100000-ram). Default 1 GiB. */
  ram?: number;
  profile?: 'amd64' | 'arm64';
  /** Per-CPU order-0 page caches in the workers (default off). */
  pcpu?: boolean | PcpuOptions;
  /** Most blocks one worker holds (default 2048). */
  cap?: number;
  /** 'mixed': orders 0..10 with P(k) = 2^-(k+1) (tail folded into 10), pools default/direct, some contig. */
  mix?: 'mixed' | 'order0';
  /** Contig allocations per 256 allocation attempts in the mixed workload (default 2). */
  contigPer256?: number;
  /** Record each allocation's latency (idle vs while a drainer runs). */
  latency?: boolean;
  /** Discard latency samples of the first ms of each worker's run (start-up transient). */
  latSkipMs?: number;
  /** Start the drainers this many ms after every worker is running (default 0). */
  drainDelayMs?: number;
  /**
   * Control for latency runs: one extra thread that only computes (no memory, no lock) for
   * `durationMs`, started like a drainer (after drainDelayMs); latency samples taken while it runs
   * go to `latDrain` as if it were a drainer.
   */
  noise?: { durationMs: number; nice?: number };
  /**
   * Touch every OS page of the page-metadata buffers before the run, so no thread takes a
   * first-touch page fault during it (a control for the cost of fresh memory on this machine).
   */
  prefault?: boolean;
  /** Record each lock hold of the workers. */
  holdTiming?: boolean;
  maxSamples?: number;
  /** Lock spin count of the CPU workers (LockOptions.spin). */
  spin?: number;
  /** Lock spin time of the CPU workers before they sleep, µs (LockOptions.spinUs). */
  spinUs?: number;
  /** Starvation threshold of the CPU workers' lock waits, ms (LockOptions.starveMs). */
  starveMs?: number;
  /** Run the end-of-run checks (default true). */
  check?: boolean;
  /** Lock spin count of the drainers. */
  drainerSpin?: number;
  /** Nice value of the drainers (default 19, see DrainerOptions.nice). */
  drainerNice?: number;
  /** Nice value of the drainers while they hold a lock (DrainerOptions.holdNice). */
  drainerHoldNice?: number | null;
  /** Lazy blocks a drainer takes per lock hold (DrainerOptions.batch). */
  drainerBatch?: number;
  /** JIT warm-up rounds of each CPU worker before the start (default 0; drainers always warm up). */
  warmRounds?: number;
  /**
   * Extra workers that only aim bad frees: at lazy blocks drainers hold (their head at their
   * order, or a page inside) and at other workers' live blocks (with a wrong order, or at a page
   * inside). Every one must be refused with a typed error; an accepted one is a violation.
   */
  saboteurs?: number;
  /** Pause of a saboteur between attempts, ms (default 0.05). */
  saboteurPauseMs?: number;
}

/** What the saboteurs did (all zero without saboteurs). */
export interface SabotageReport {
  workers: number;
  /** Per kind of bad free (SABOTAGE_KINDS): tried and accepted. */
  kinds: Record<string, { attempts: number; accepted: number }>;
  attempts: number;
  accepted: number;
  noTarget: number;
  /** Rejections by error code. */
  codes: Record<string, number>;
  untyped: string[];
}

/** The conservation law at the end of a run (pages). */
export interface Conservation {
  free: number;
  inFlight: number;
  held: number;
  total: number;
  ok: boolean;
}

/** Outcome of a stress run. */
export interface StressReport {
  workers: number;
  ops: number;
  opsPerSec: number;
  durationMs: number;
  allocs: number;
  frees: number;
  failedAllocs: number;
  contigAllocs: number;
  drainMs: number;
  drainers: number;
  lockAcquires: number;
  lockContended: number;
  maxDrainerHoldUs: number;
  conservation: Conservation;
  perWorkerOps: number[];
  pcpu: boolean;
  seed: number;
  ramBytes: number;
  violations: string[];
  /** Raw per-worker results (samples included) for the benchmark. */
  results: StressWorkerResult[];
  drainStats: DrainStats[];
  sabotage: SabotageReport;
  /** The machine itself (main thread's view), for further checks. */
  vm: VmPhys;
}

/** The stress machine: Firecracker's low RAM and [1 MiB, ram), shared, lazy start-up. */
export function stressMachine(ram: number, profile: Profile | string = 'amd64'): VmPhys {
  const p = typeof profile === 'string' ? profileByName(profile) : profile;
  return buildMachine(flatFirecrackerMap(ram), 'lazy', p, true);
}

/** Write every 4 KiB page of the meta and link buffers once (values unchanged; single thread). */
export function prefaultPages(vm: VmPhys): void {
  const { meta, link } = vm.state;
  // A write (not a read) makes the page resident; writing back the value read changes nothing.
  for (let i = 0; i < meta.length; i += 4096) meta[i] |= 0;
  for (let i = 0; i < link.length; i += 1024) link[i] |= 0;
}

/** Run the stress workload; never throws for a violation (see `violations`), only for bad options. */
export async function runStress(o: StressOptions): Promise<StressReport> {
  const nw = Math.max(1, Math.floor(o.workers));
  const ramBytes = o.ram ?? 1024 ** 3;
  const seed = (o.seed ?? 1) | 0;
  const vm = stressMachine(ramBytes, o.profile ?? 'amd64');
  if (o.prefault) prefaultPages(vm);
  const startTotal = vm.counts().total;
  const nsab = Math.max(0, Math.floor(o.saboteurs ?? 0));
  // With saboteurs every thread attaches with exactFrees: the workers free their alloc_pages
  // blocks whole, so a free of part of another's block (a smaller order at its head, a page
  // inside it) is misuse here, refused as EWRONGORDER. Without exactFrees such a part free is
  // legal (FreeBSD's callers do it) and would split the victim's block.
  const h = nsab > 0 ? { ...handleOf(vm), exactFrees: true } : handleOf(vm);
  const sync = syncViews(h.sync);
  const mainLocks = new DomainLocks(vm);
  const timed = o.durationMs !== undefined;
  const totalOps = o.ops ?? 100000;
  const pcpu = o.pcpu === true ? {} : o.pcpu ? o.pcpu : null;
  const violations: string[] = [];
  const cap = o.cap ?? 2048;
  const publish =
    nsab > 0
      ? Array.from({ length: nw }, () => ({
          pa: new SharedArrayBuffer(cap * 8),
          np: new SharedArrayBuffer(cap * 4),
        }))
      : null;

  const workers: Worker[] = [];
  const readies: Promise<void>[] = [];
  const dones: Promise<StressWorkerResult | null>[] = [];
  for (let i = 0; i < nw; i++) {
    const ops = timed ? -1 : Math.floor(totalOps / nw) + (i < totalOps % nw ? 1 : 0);
    const cfg: StressWorkerConfig = {
      role: 'stress',
      handle: h,
      index: i,
      ops,
      seed,
      cap,
      mix: o.mix ?? 'mixed',
      contigPer256: o.contigPer256 ?? 2,
      pcpu,
      latency: o.latency ?? false,
      latSkipMs: o.latSkipMs ?? 0,
      holdTiming: o.holdTiming ?? false,
      maxSamples: o.maxSamples ?? 1 << 20,
      spin: o.spin,
      spinUs: o.spinUs,
      starveMs: o.starveMs,
      warmRounds: o.warmRounds ?? 0,
      publish: publish === null ? null : publish[i],
    };
    const w = new Worker(new URL('./stress-worker.js', import.meta.url), { workerData: cfg });
    trackWorker(h.sync, w, vm.state.c.locks);
    workers.push(w);
    let readyFn: () => void = () => {};
    readies.push(new Promise<void>((r) => (readyFn = r)));
    dones.push(
      new Promise<StressWorkerResult | null>((resolve) => {
        let res: StressWorkerResult | null = null;
        w.on('message', (m: { type: string; error?: string }) => {
          if (m.type === 'ready') readyFn();
          else if (m.type === 'done') res = m as StressWorkerResult;
          else if (m.type === 'error') violations.push(`worker ${i} failed: ${m.error}`);
        });
        w.once('error', (e) => violations.push(`worker ${i} crashed: ${e.message}`));
        w.once('exit', (code) => {
          readyFn();
          if (!res) violations.push(`worker ${i} exited (code ${code}) without a result`);
          resolve(res);
        });
      }),
    );
  }
  const drainers = o.drain
    ? startDrainers(
        h,
        {
          count: o.drainers ?? 1,
          waitGo: true,
          afterRunning: nw,
          delayMs: o.drainDelayMs ?? 0,
          spin: o.drainerSpin,
          nice: o.drainerNice,
          holdNice: o.drainerHoldNice,
          batch: o.drainerBatch,
        },
        vm.state.c.locks,
      )
    : null;
  const sabDones: Promise<SaboteurResult | null>[] = [];
  for (let i = 0; i < nsab && publish !== null; i++) {
    const cfg: SaboteurConfig = {
      role: 'sabotage',
      handle: h,
      index: i,
      seed,
      victims: publish,
      pauseMs: o.saboteurPauseMs ?? 0.05,
    };
    const w = new Worker(new URL('./stress-worker.js', import.meta.url), { workerData: cfg });
    trackWorker(h.sync, w, vm.state.c.locks);
    let readyFn: () => void = () => {};
    readies.push(new Promise<void>((r) => (readyFn = r)));
    sabDones.push(
      new Promise<SaboteurResult | null>((resolve) => {
        let res: SaboteurResult | null = null;
        w.on('message', (m: { type: string; error?: string }) => {
          if (m.type === 'ready') readyFn();
          else if (m.type === 'sabotaged') res = m as SaboteurResult;
          else if (m.type === 'error') violations.push(`saboteur ${i} failed: ${m.error}`);
        });
        w.once('error', (e) => violations.push(`saboteur ${i} crashed: ${e.message}`));
        w.once('exit', (code) => {
          readyFn();
          if (!res) violations.push(`saboteur ${i} exited (code ${code}) without a result`);
          resolve(res);
        });
      }),
    );
  }
  let noiseDone: Promise<void> | null = null;
  if (o.noise) {
    const nw0 = new Worker(new URL('./stress-worker.js', import.meta.url), {
      workerData: {
        role: 'compute',
        index: 0,
        iterations: -1,
        sync: h.sync,
        afterRunning: nw,
        delayMs: o.drainDelayMs ?? 0,
        durationMs: o.noise.durationMs,
        nice: o.noise.nice ?? 19,
      },
    });
    noiseDone = new Promise<void>((r) => nw0.once('exit', () => r()));
    await new Promise<void>((r) => nw0.once('message', () => r()));
  }
  await Promise.all(readies);
  if (drainers) await drainers.ready;

  const t0 = performance.timeOrigin + performance.now();
  Atomics.store(sync.i32, SYNC.GO, 1);
  Atomics.notify(sync.i32, SYNC.GO);
  let timer: NodeJS.Timeout | undefined;
  if (timed) timer = setTimeout(() => Atomics.store(sync.i32, SYNC.STOP, 1), o.durationMs);
  const got = await Promise.all(dones);
  if (timer) clearTimeout(timer);
  // A worker that failed before it started must not leave the drainers waiting for it.
  if (got.some((r) => r === null)) Atomics.store(sync.i32, SYNC.STOP, 1);
  if (noiseDone) {
    Atomics.store(sync.i32, SYNC.STOP, 1);
    await noiseDone;
  }
  let drainStats: DrainStats[] = [];
  if (drainers) {
    try {
      drainStats = await drainers.done;
    } catch (e) {
      violations.push(`drainer failed: ${(e as Error).message}`);
    }
  }
  Atomics.store(sync.i32, SYNC.SABOTAGE_STOP, 1);
  const sabotage = sabotageReport(nsab, await Promise.all(sabDones));
  if (sabotage.accepted > 0)
    violations.push(
      `${sabotage.accepted} of ${sabotage.attempts} bad frees were accepted (${SABOTAGE_KINDS.filter(
        (k) => sabotage.kinds[k].accepted > 0,
      )
        .map((k) => `${k} ${sabotage.kinds[k].accepted}`)
        .join(', ')})`,
    );
  if (sabotage.untyped.length > 0) violations.push(`bad frees answered with untyped errors: ${sabotage.untyped[0]}`);
  const results = got.filter((r): r is StressWorkerResult => r !== null);
  const tEnd = results.reduce((m, r) => Math.max(m, r.endMs), t0);
  const durationMs = tEnd - t0;

  let ops = 0;
  let allocs = 0;
  let frees = 0;
  let failedAllocs = 0;
  let contigAllocs = 0;
  let held = 0;
  for (const r of results) {
    ops += r.ops;
    allocs += r.allocs;
    frees += r.frees;
    failedAllocs += r.failedAllocs;
    contigAllocs += r.contigAllocs;
    held += r.heldPages;
  }
  const free = vm.counts().total;
  let inFlight = 0;
  for (let d = 0; d < vm.ndomains; d++) inFlight += vm.state.c.ctl[CTL.INFLIGHT + d];
  const conservation: Conservation = {
    free,
    inFlight,
    held,
    total: startTotal,
    ok: free + inFlight + held === startTotal && results.length === nw,
  };
  if (results.length === nw && !conservation.ok)
    violations.push(
      `conservation: free ${free} + in flight ${inFlight} + held ${held} != ${startTotal} pages at startup`,
    );
  if ((o.check ?? true) && results.length === nw) checkHeld(vm, results, startTotal, violations);
  const lc = mainLocks.sharedCounts();
  const drainMs = drainStats.reduce((m, s) => Math.max(m, s.ms), 0);
  return {
    workers: nw,
    ops,
    opsPerSec: durationMs > 0 ? (ops * 1000) / durationMs : 0,
    durationMs,
    allocs,
    frees,
    failedAllocs,
    contigAllocs,
    drainMs,
    drainers: drainStats.length,
    lockAcquires: lc.acquires,
    lockContended: lc.contended,
    maxDrainerHoldUs: drainStats.reduce((m, s) => Math.max(m, s.maxHoldUs), 0),
    conservation,
    perWorkerOps: results.map((r) => r.ops),
    pcpu: pcpu !== null,
    seed,
    ramBytes,
    violations,
    results,
    drainStats,
    sabotage,
    vm,
  };
}

function sabotageReport(n: number, rs: Array<SaboteurResult | null>): SabotageReport {
  const kinds: Record<string, { attempts: number; accepted: number }> = {};
  const out: SabotageReport = { workers: n, kinds, attempts: 0, accepted: 0, noTarget: 0, codes: {}, untyped: [] };
  SABOTAGE_KINDS.forEach((k, i) => {
    kinds[k] = { attempts: 0, accepted: 0 };
    for (const r of rs) {
      if (r === null) continue;
      kinds[k].attempts += r.attempts[i];
      kinds[k].accepted += r.accepted[i];
    }
    out.attempts += kinds[k].attempts;
    out.accepted += kinds[k].accepted;
  });
  for (const r of rs) {
    if (r === null) continue;
    out.noTarget += r.noTarget;
    for (const [c, v] of Object.entries(r.codes)) out.codes[c] = (out.codes[c] ?? 0) + v;
    out.untyped.push(...r.untyped);
  }
  return out;
}

/**
 * End-of-run checks on a quiescent allocator: no page held twice (bitmap over the packed page
 * index), no held page inside a free block, verify() with the held count, then give every held
 * block back and check that the free count returns to `startTotal` and verify() still passes.
 */
export function checkHeld(vm: VmPhys, results: StressWorkerResult[], startTotal: number, violations: string[]): void {
  const owner = new Uint16Array(vm.totalPages);
  let held = 0;
  for (const r of results) {
    for (let i = 0; i < r.addrs.length; i++) {
      const pa = r.addrs[i];
      const idx = vm.paddrToPage(pa);
      if (idx < 0) {
        violations.push(`worker ${r.index} holds ${hex(pa)}, which lies outside every segment`);
        return;
      }
      const n = r.npages[i];
      for (let k = idx; k < idx + n; k++) {
        if (owner[k] !== 0) {
          violations.push(`page ${hex(vm.paOf(k))} is held twice (workers ${owner[k] - 1} and ${r.index})`);
          return;
        }
        owner[k] = r.index + 1;
      }
      held += n;
    }
  }
  // No held page lies inside a free block.
  const s = vm.state;
  for (let q = 0; q < nQueues(s); q++) {
    const order = q % vm.nOrd;
    for (let m = qHead(s, q); m >= 0; m = qNext(s, q, m)) {
      for (let k = m; k < m + (1 << order); k++)
        if (owner[k] !== 0) {
          violations.push(
            `page ${hex(vm.paOf(k))} is held by worker ${owner[k] - 1} and also free (order-${order} block at ${hex(vm.paOf(m))})`,
          );
          return;
        }
    }
  }
  try {
    verify(vm, { heldPages: held });
  } catch (e) {
    violations.push(`verify: ${(e as Error).message}`);
    return;
  }
  // Every held block must be an allocated block the core accepts back.
  try {
    for (const r of results)
      for (let i = 0; i < r.addrs.length; i++) {
        const kind = r.kinds[i];
        if (kind & 4) vm.freeContig(r.addrs[i], kind & 3, r.npages[i]);
        else vm.freePages(r.addrs[i], kind, 31 - Math.clz32(r.npages[i]));
      }
  } catch (e) {
    violations.push(`giving back held blocks: ${(e as Error).message}`);
    return;
  }
  const after = vm.counts().total;
  if (after !== startTotal)
    violations.push(`after giving back every held block: ${after} free pages, expected ${startTotal}`);
  try {
    verify(vm, { heldPages: 0 });
  } catch (e) {
    violations.push(`verify after giving back: ${(e as Error).message}`);
  }
}

/**
 * How many cores the machine really gives right now: run `n` workers of independent arithmetic
 * (no shared writes) at once and return each one's time in ms. Compare with n = 1.
 */
export async function cpuScaling(n: number, iterations: number): Promise<number[]> {
  const sync = createSync();
  const ws = Array.from(
    { length: n },
    (_, index) =>
      new Worker(new URL('./stress-worker.js', import.meta.url), {
        workerData: { role: 'compute', index, iterations, sync },
      }),
  );
  const readies = ws.map((w) => new Promise<void>((r) => w.once('message', () => r())));
  await Promise.all(readies);
  const done = ws.map((w) => new Promise<number>((r) => w.once('message', (m: { ms: number }) => r(m.ms))));
  const i32 = syncViews(sync).i32;
  Atomics.store(i32, SYNC.GO, 1);
  Atomics.notify(i32, SYNC.GO);
  return Promise.all(done);
}

/** The p-quantile (0..1) of an ascending-sorted sample (nearest rank); NaN when empty. */
export function quantile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i];
}

/** Concatenate and sort Float64 samples. */
export function sortedSamples(parts: Float64Array[]): Float64Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Float64Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out.sort();
}
