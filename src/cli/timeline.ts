/**
 * The boot timeline of `vmphys boot`, measured in the current process: start-up → first
 * allocation (ready) → early-boot workload → "APs start" → the drain (vmlazyinit, one block per
 * step) interleaved with the rest of the workload → done. Owned by the CLI; a caller of the public
 * API plus the trace replayer.
 */

import type { MemMap, MemRange } from '../boot/memmap.js';
import { firecrackerMap } from '../boot/ramspec.js';
import { bootFromMap } from '../boot/startup.js';
import { STAT } from '../core/layout.js';
import type { PageStructOption } from '../core/pagerec/wire.js';
import { Pool, type Profile } from '../core/params.js';
import { verify } from '../core/verify.js';
import type { StartupMode } from '../core/vmphys.js';
import { readTraceEvents } from '../trace/parse.js';
import { TraceReplayer } from '../trace/replay.js';

/** What one boot reports (the `--json` object). */
export interface BootReport {
  mode: StartupMode;
  map: string;
  profile: string;
  /** RAM handed to the allocator at boot: pages enqueued by vm_page_startup × page size. */
  ramBytes: number;
  segments: number;
  domains: number;
  /** Start of start-up until the first allocation has been served. */
  readyMs: number;
  /** Warm-up boots run before the measured one (0: cold first boot, JIT included). */
  warmupBoots: number;
  /** Resident-set growth of the process from before start-up to ready. */
  rssAtReadyBytes: number;
  /** Resident set size of the process at ready (absolute). */
  rssAbsoluteAtReadyBytes: number;
  pagesInitializedAtReady: number;
  /** Page metadata reserved (virtual; untouched pages cost nothing). */
  metadataVirtualBytes: number;
  onDemandInits: number;
  maxInitPauseUs: number;
  drainMs: number;
  drainBlocks: number;
  /** Longest single drain step (one block, lock held in a shared setting). */
  maxDrainStepUs: number;
  /** 99th percentile of drain step times. */
  drainStepP99Us: number;
  totalMs: number;
  workload: string;
  workloadEvents: number;
  failedAllocs: number;
  pagesInitializedAtEnd: number;
  blacklisted: number;
  /** The page records kept beside the allocator: layout name ('none' without records). */
  pageStruct: string;
  /** Bytes of page records reserved for this machine (record size × pages; 0 for none). */
  pageStructBytes: number;
  /** True when the drain was not run (the records would not fit in this computer's memory). */
  drainSkipped: boolean;
  verified: boolean;
  notes: string[];
  /** Drain progress samples: [ms since AP start, pages still lazy]. */
  drainTimeline: Array<[number, number]>;
}

/** Options of a timed boot. */
export interface TimelineOptions {
  mode: StartupMode;
  mapName: string;
  profile?: Profile;
  reserve?: MemRange[];
  blacklist?: number[];
  /** 'trace' (default when the trace file exists) or 'synthetic'. */
  workload: 'trace' | 'synthetic';
  traceFile?: string;
  /** Events before the APs start (default 50,000) and during the drain (default 50,000). */
  earlyEvents?: number;
  lateEvents?: number;
  /**
   * Warm the code first by booting a 64 MiB machine this many times (default 50) in the same
   * fresh process, allocating and freeing one page on each and taking a drain step (64 MiB: the
   * smallest Firecracker guest whose DEFAULT segment holds whole max-order chunks, so the warm-up
   * runs the same steal-from-a-lazy-run path as the measured first allocation), and, lazy only,
   * the same map 5 times (lazy boots touch almost nothing), so that the measured boot runs
   * compiled code, as a kernel's boot does.
   * 0 measures the cold first boot, JIT warm-up included.
   */
  warmup?: number;
  /** Stop once the machine is ready (no workload, no drain): for start-up benchmarks. */
  stopAtReady?: boolean;
  /** Page records (VmPhysOptions.pageStruct; default none). The warm-up boots keep the same. */
  pageStruct?: PageStructOption;
  /**
   * Run the early workload, then stop: no drain, no late workload (for machines whose records
   * would not fit in memory: the drain would touch them all).
   */
  noDrain?: boolean;
  /** Called with (pages drained, pages to drain) while the drain runs. */
  progress?: (done: number, total: number) => void;
}

interface Workload {
  /** Run events [from, to); returns how many ran. */
  run(from: number, to: number): number;
  failed(): number;
  readonly length: number;
}

async function traceWorkload(file: string, events: number, replayer: TraceReplayer): Promise<Workload> {
  const ev = await readTraceEvents(file, events);
  const n = ev.count;
  const { op, pfn, order, flags: flag } = ev;
  return {
    length: n,
    run(from, to) {
      const end = Math.min(to, n);
      if (from >= end) return 0;
      replayer.run(op, pfn, order, flag, from, end);
      return end - from;
    },
    failed: () => replayer.counts().failedAllocs,
  };
}

/** A seeded synthetic early-boot workload: 60 % allocations (orders 0..9, mostly 0), 40 % frees. */
function syntheticWorkload(vm: import('../core/vmphys.js').VmPhys, events: number): Workload {
  const held = new Float64Array(events);
  const horder = new Uint8Array(events);
  const hpool = new Uint8Array(events);
  let nheld = 0;
  let failed = 0;
  let seed = 0x9e3779b9;
  const rnd = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 4294967296;
  };
  return {
    length: events,
    run(from, to) {
      const end = Math.min(to, events);
      for (let i = from; i < end; i++) {
        if (nheld > 0 && rnd() < 0.4) {
          const k = Math.floor(rnd() * nheld);
          vm.freePages(held[k], hpool[k], horder[k]);
          nheld--;
          held[k] = held[nheld];
          horder[k] = horder[nheld];
          hpool[k] = hpool[nheld];
        } else {
          const r = rnd();
          const order = r < 0.9 ? 0 : r < 0.97 ? Math.floor(rnd() * 4) : Math.floor(rnd() * 10);
          const pool = rnd() < 0.7 ? Pool.DEFAULT : Pool.DIRECT;
          const pa = vm.allocPages(0, pool, order);
          if (pa === null) failed++;
          else {
            held[nheld] = pa;
            horder[nheld] = order;
            hpool[nheld++] = pool;
          }
        }
      }
      return Math.max(0, end - from);
    },
    failed: () => failed,
  };
}

function p99(a: Float64Array): number {
  if (a.length === 0) return 0;
  const s = Float64Array.from(a).sort();
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))];
}

/** Boot `map` in one mode and run the timeline. Times are wall clock in this process. */
export async function runTimeline(map: MemMap, opts: TimelineOptions): Promise<BootReport> {
  const early = opts.earlyEvents ?? 50_000;
  const late = opts.lateEvents ?? 50_000;
  const warm = opts.warmup ?? 50;
  for (let i = 0; i < warm; i++) {
    const w = bootFromMap(firecrackerMap(64 * 1024 * 1024), {
      mode: opts.mode,
      profile: opts.profile,
      shared: true,
      pageStruct: opts.pageStruct,
    }).vm;
    const pa = w.allocPages(0, Pool.DEFAULT, 0);
    if (pa !== null) w.freePages(pa, Pool.DEFAULT, 0);
    w.drainStep(2);
  }
  // Lazy boots are cheap: also warm the paths of this very map's shape (segments, lists).
  if (opts.mode === 'lazy')
    for (let i = 0; i < Math.min(warm, 5); i++)
      bootFromMap(map, { mode: 'lazy', profile: opts.profile, shared: true, pageStruct: opts.pageStruct });
  globalThis.gc?.();
  const rss0 = process.memoryUsage.rss();
  const t0 = performance.now();
  const boot = bootFromMap(map, {
    mode: opts.mode,
    profile: opts.profile,
    reserve: opts.reserve,
    blacklist: opts.blacklist,
    pageStruct: opts.pageStruct,
  });
  const vm = boot.vm;
  const first = vm.allocPages(0, Pool.DEFAULT, 0);
  const tReady = performance.now();
  const rssReady = process.memoryUsage.rss();
  const st = vm.state.c.stats;
  const pagesAtReady = st[STAT.PAGES_INITIALIZED];
  if (first !== null) vm.freePages(first, Pool.DEFAULT, 0);
  // The workload (prepared outside the timed region where it needs I/O).
  let workload: Workload;
  let wname: string = opts.workload;
  if (opts.stopAtReady) {
    workload = syntheticWorkload(vm, 0);
    wname = 'none (stopped at ready)';
    return finish(0, true);
  }
  if (opts.workload === 'trace' && opts.traceFile) {
    const replayer = new TraceReplayer(vm, { sampleEvery: 0 });
    const tPrep = performance.now();
    workload = await traceWorkload(opts.traceFile, early + late, replayer);
    // Parsing is I/O, not boot work: shift the clock by the time it took.
    const prep = performance.now() - tPrep;
    wname = `trace (first ${workload.length} events)`;
    return finish(prep);
  }
  workload = syntheticWorkload(vm, early + late);
  wname = `synthetic (${early + late} events)`;
  return finish(0);

  function finish(excludedMs: number, atReady = false): BootReport {
    workload.run(0, early);
    const tAP = performance.now();
    const lazyTotal = vm.counts().lazyinit;
    let drained = lazyTotal;
    let pos = early;
    const end = early + late;
    let drainMs = 0;
    let maxStep = 0;
    const timeline: Array<[number, number]> = [[0, lazyTotal]];
    const skipDrain = atReady || opts.noDrain === true;
    let done = vm.drained || skipDrain;
    let steps = 0;
    const stepUs = new Float64Array(1 << 16);
    while (!skipDrain && (!done || pos < end)) {
      if (pos < end) pos += workload.run(pos, Math.min(end, pos + 256));
      if (!done) {
        const s0 = performance.now();
        done = vm.drainStep(1);
        const dt = performance.now() - s0;
        drainMs += dt;
        if (dt * 1000 > maxStep) maxStep = dt * 1000;
        stepUs[steps & 0xffff] = dt * 1000;
        if (++steps % 16 === 0 || done) {
          drained = vm.counts().lazyinit;
          timeline.push([performance.now() - tAP, drained]);
          opts.progress?.(lazyTotal - drained, lazyTotal);
        }
      }
    }
    const tEnd = performance.now();
    let verified = true;
    try {
      if (!atReady) verify(vm, { deep: false });
    } catch {
      verified = false;
    }
    return {
      mode: opts.mode,
      map: opts.mapName,
      profile: vm.profile.name,
      ramBytes: boot.availBytes,
      segments: vm.nsegs,
      domains: vm.ndomains,
      readyMs: tReady - t0,
      warmupBoots: warm,
      rssAtReadyBytes: rssReady - rss0,
      rssAbsoluteAtReadyBytes: rssReady,
      pagesInitializedAtReady: pagesAtReady,
      metadataVirtualBytes: vm.metadataBytes,
      onDemandInits: st[STAT.ON_DEMAND_INITS],
      maxInitPauseUs: st[STAT.MAX_INIT_US],
      drainMs,
      drainBlocks: st[STAT.DRAIN_BLOCKS],
      maxDrainStepUs: maxStep,
      drainStepP99Us: p99(stepUs.subarray(0, Math.min(steps, stepUs.length))),
      totalMs: tEnd - t0 - excludedMs,
      workload: wname,
      workloadEvents: Math.min(end, workload.length),
      failedAllocs: workload.failed(),
      pagesInitializedAtEnd: st[STAT.PAGES_INITIALIZED],
      blacklisted: boot.blacklisted.length,
      pageStruct: vm.records.layout.name,
      pageStructBytes: vm.pageStructBytes,
      drainSkipped: !vm.drained && skipDrain,
      verified,
      notes: boot.notes,
      drainTimeline: timeline,
    };
  }
}
