// viz/src/worker.ts: the allocator of the viz page, in a Web Worker. It boots the machine from
// the CLI's map (bootFromMap, shared buffers), posts the three SharedArrayBuffers to the page
// once per boot, and then runs workloads in small slices (setTimeout between slices, so pause,
// step and speed messages are handled at once): the lazy drain (vm.drainStep), the early-boot
// workload (the trace's first N events, or a synthetic one) and the rest of the trace
// (TraceReplayer). After each slice it bumps CTL.GENERATION so the page redraws only on change.
// Owned by the viz work (issue 8).
import { bootFromMap } from '../../src/boot/startup.js';
import { CTL } from '../../src/core/layout.js';
import { Pool, profileByName } from '../../src/core/params.js';
import { nQueues, qCount } from '../../src/core/queues.js';
import type { StartupMode, VmPhys } from '../../src/core/vmphys.js';
import { TraceReplayer } from '../../src/trace/replay.js';
import {
  decodeTrace,
  type FromWorker,
  type SyntheticCounts,
  type TaskKind,
  type ToWorker,
  type TraceArrays,
  type VizConfig,
  type WorkerState,
} from './protocol.js';

/** The worker global as this file uses it (the DOM lib types `self` as a Window). */
const scope = self as unknown as {
  postMessage(msg: FromWorker): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  location: { origin: string };
};

/** Milliseconds between slices while running (about one animation frame). */
const TICK_MS = 16;
/** Target number of slices for a whole drain at speed ×1 (≈ 2.5 s). */
const DRAIN_SLICES = 150;
/** Trace events per slice at speed ×1. */
const REPLAY_EVENTS = 2048;

let vm: VmPhys | null = null;
let config: VizConfig | null = null;
let replayer: TraceReplayer | null = null;
let trace: TraceArrays | null = null;
let traceComplete = false;
let traceCursor = 0;
let synthetic: Synthetic | null = null;

let task: TaskKind | null = null;
let taskEnd = 0; // trace tasks: replay up to this event
let taskStart = 0;
let drainBudget = 1;
let lazyAtStart = 0;
let paused = false;
let loading = false;
let speed = 1;
let slices = 0;
let note = '';
let timer: ReturnType<typeof setTimeout> | null = null;

function post(msg: FromWorker): void {
  scope.postMessage(msg);
}

function bumpGeneration(): void {
  if (vm) Atomics.add(vm.state.c.ctl, CTL.GENERATION, 1);
}

function state(): WorkerState {
  if (loading) return 'loading';
  if (task === null) return 'idle';
  return paused ? 'paused' : 'running';
}

function progress(): number {
  if (!vm || task === null) return 0;
  if (task === 'drain') {
    if (lazyAtStart === 0) return 1;
    return Math.min(1, 1 - vm.counts().lazyinit / lazyAtStart);
  }
  if (trace === null) return synthetic ? synthetic.ops / Math.max(1, synthetic.target) : 0;
  return taskEnd > taskStart ? (traceCursor - taskStart) / (taskEnd - taskStart) : 1;
}

function status(): void {
  post({
    type: 'status',
    state: state(),
    task,
    paused,
    progress: progress(),
    traceCursor,
    traceTotal: trace?.count ?? 0,
    replay: replayer ? replayer.counts() : null,
    synthetic: synthetic ? synthetic.counts() : null,
    slices,
    drained: vm?.drained ?? false,
    note,
  });
}

function fail(e: unknown): void {
  task = null;
  loading = false;
  post({ type: 'error', message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
  status();
}

// ------------------------------------------------------------------ boot

function boot(cfg: VizConfig, mode: StartupMode): void {
  if (timer !== null) clearTimeout(timer);
  timer = null;
  task = null;
  loading = false;
  slices = 0;
  config = cfg;
  const profile = profileByName(cfg.profile);
  const t0 = performance.now();
  const res = bootFromMap(cfg.map, { mode, profile, blacklist: cfg.blacklist, shared: true });
  const bootMs = performance.now() - t0;
  vm = res.vm;
  replayer = null;
  synthetic = null;
  traceCursor = 0;
  const { buffer } = vm.state.c;
  const metaBuffer = vm.state.meta.buffer;
  const linkBuffer = vm.state.link.buffer;
  if (!(buffer instanceof SharedArrayBuffer) || !(metaBuffer instanceof SharedArrayBuffer))
    throw new Error('the allocator buffers are not shared: is the page cross-origin isolated?');
  note = `booted ${mode} in ${bootMs.toFixed(2)} ms`;
  bumpGeneration();
  post({
    type: 'booted',
    control: buffer,
    meta: metaBuffer,
    link: linkBuffer as SharedArrayBuffer,
    profile: profile.name,
    totalPages: vm.totalPages,
    maxRuns: vm.state.c.maxRuns,
    mode,
    bootMs,
    blacklisted: res.blacklisted.map((pa) => (vm as VmPhys).paddrToPage(pa)),
    notes: res.notes,
    lazyPagesAtBoot: vm.counts().lazyinit,
  });
  status();
}

// ------------------------------------------------------------------ tasks

/** Load the trace's first `limit` events (null: all of them) unless already loaded. */
async function loadTrace(limit: number | null): Promise<void> {
  if (trace !== null && (traceComplete || (limit !== null && trace.count >= limit))) return;
  loading = true;
  status();
  const res = await fetch(new URL(limit === null ? '/trace' : `/trace?limit=${limit}`, scope.location.origin));
  if (!res.ok) throw new Error(`GET /trace: ${res.status} ${await res.text()}`);
  const t = decodeTrace(await res.arrayBuffer());
  loading = false;
  // A longer prefix of the same trace: the events already replayed are the same ones.
  trace = t;
  traceComplete = limit === null || t.count < limit;
}

async function start(kind: TaskKind): Promise<void> {
  if (!vm || !config) throw new Error('boot first');
  if (task !== null || loading) throw new Error(`busy: ${task ?? 'loading'} in progress`);
  if (kind === 'drain') {
    lazyAtStart = vm.counts().lazyinit;
    let blocks = 0;
    for (let q = 0; q < nQueues(vm.state); q++) if (q % (vm.nPool * vm.nOrd) < vm.nOrd) blocks += qCount(vm.state, q);
    drainBudget = Math.max(1, Math.ceil(blocks / DRAIN_SLICES));
    note = `drain: ${blocks} lazy blocks, ${lazyAtStart} pages`;
  } else if (config.trace.available) {
    const max = config.trace.maxEvents;
    const limit = kind === 'early' ? config.trace.earlyEvents : max > 0 ? max : null;
    if (limit !== null && traceCursor >= limit) {
      note = kind === 'early' ? 'early boot already replayed' : 'trace already replayed';
      status();
      return;
    }
    task = kind;
    await loadTrace(limit);
    if (!vm || task !== kind) return; // rebooted while loading
    const t = trace as TraceArrays;
    taskStart = traceCursor;
    taskEnd = Math.min(limit ?? t.count, t.count);
    if (taskStart >= taskEnd) {
      task = null;
      note = 'trace already replayed';
      status();
      return;
    }
    if (replayer === null) replayer = new TraceReplayer(vm, { sampleEvery: 0 });
    note = `${kind === 'early' ? 'early boot' : 'trace'}: events ${taskStart}..${taskEnd}`;
  } else {
    if (kind === 'trace') throw new Error('the server has no trace (see vmphys viz --trace)');
    if (synthetic === null) synthetic = new Synthetic(vm, config.trace.earlyEvents);
    note = `synthetic early boot: ${synthetic.target} operations`;
  }
  task = kind;
  status();
  schedule();
}

/** One slice of the current task; true when the task is finished. */
function slice(): boolean {
  const m = vm as VmPhys;
  slices++;
  if (task === 'drain') {
    return m.drainStep(Math.max(1, Math.round(drainBudget * speed)));
  }
  if (trace !== null && replayer !== null) {
    const n = Math.max(1, Math.round(REPLAY_EVENTS * speed));
    const end = Math.min(taskEnd, traceCursor + n);
    replayer.run(trace.op, trace.pfn, trace.order, trace.flags, traceCursor, end);
    traceCursor = end;
    return traceCursor >= taskEnd;
  }
  if (synthetic !== null) return synthetic.run(Math.max(1, Math.round(256 * speed)));
  return true;
}

function tick(): void {
  timer = null;
  if (task === null || paused || loading) return;
  if (runSlice()) schedule();
}

/** Run one slice of the current task and publish it; false if the task failed. */
function runSlice(): boolean {
  try {
    if (slice()) finish();
  } catch (e) {
    fail(e);
    return false;
  }
  bumpGeneration();
  status();
  return true;
}

/** The current task is done: say what it did. */
function finish(): void {
  const m = vm as VmPhys;
  if (task === 'drain') note = `drain done: ${m.counts().lazyinit} lazy pages left, vm_default_freepool = DEFAULT`;
  else if (task !== null && trace !== null && replayer !== null) {
    const r = replayer.counts();
    note = `${task === 'early' ? 'early boot' : 'trace'} done: ${r.events.toLocaleString('en-US')} events, ${r.failedAllocs} failed allocations`;
  } else if (synthetic !== null)
    note = `synthetic early boot done: ${synthetic.ops.toLocaleString('en-US')} operations`;
  task = null;
}

function schedule(): void {
  if (timer === null && task !== null && !paused && !loading) timer = setTimeout(tick, TICK_MS);
}

function step(): void {
  if (task === null || loading) return;
  runSlice();
}

// ------------------------------------------------------------------ synthetic workload

/**
 * A deterministic stand-in for early boot when the server has no trace: mostly order-0
 * allocations (movable → DEFAULT, kernel → DIRECT), some larger blocks, and frees of a third of
 * what was taken, from a fixed-seed xorshift generator.
 */
class Synthetic {
  readonly target: number;
  ops = 0;
  private allocs = 0;
  private frees = 0;
  private failed = 0;
  private readonly held: Array<[number, number, number]> = []; // pa, pool, order
  private heldPages = 0;
  private seed = 0x2545f491;
  private readonly vmRef: VmPhys;
  constructor(vmRef: VmPhys, target: number) {
    this.vmRef = vmRef;
    this.target = target;
  }
  private rand(): number {
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    return this.seed / 4294967296;
  }
  /** Run up to n operations; true when the target is reached. */
  run(n: number): boolean {
    const v = this.vmRef;
    for (let i = 0; i < n && this.ops < this.target; i++, this.ops++) {
      const r = this.rand();
      if (this.held.length > 0 && r < 0.3) {
        const k = Math.floor(this.rand() * this.held.length);
        const [pa, pool, order] = this.held[k];
        this.held[k] = this.held[this.held.length - 1];
        this.held.pop();
        v.freePages(pa, pool, order);
        this.heldPages -= 2 ** order;
        this.frees++;
        continue;
      }
      const s = this.rand();
      const order = s < 0.85 ? 0 : s < 0.95 ? 1 + Math.floor(this.rand() * 3) : s < 0.995 ? 4 : 9;
      const pool = this.rand() < 0.6 ? Pool.DEFAULT : Pool.DIRECT;
      const pa = v.allocPages(0, pool, order);
      this.allocs++;
      if (pa === null) {
        this.failed++;
        continue;
      }
      this.held.push([pa, pool, order]);
      this.heldPages += 2 ** order;
    }
    return this.ops >= this.target;
  }
  counts(): SyntheticCounts {
    return {
      ops: this.ops,
      allocs: this.allocs,
      frees: this.frees,
      failedAllocs: this.failed,
      heldPages: this.heldPages,
    };
  }
}

// ------------------------------------------------------------------ messages

scope.onmessage = (e: MessageEvent<ToWorker>) => {
  const msg = e.data;
  try {
    switch (msg.type) {
      case 'boot':
        boot(msg.config, msg.mode);
        break;
      case 'run':
        start(msg.task).catch(fail);
        break;
      case 'pause':
        paused = true;
        status();
        break;
      case 'resume':
        paused = false;
        status();
        schedule();
        break;
      case 'step':
        step();
        break;
      case 'speed':
        speed = msg.factor;
        break;
    }
  } catch (err) {
    fail(err);
  }
};
