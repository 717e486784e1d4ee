// viz/src/protocol.ts: the messages between the viz page (main.ts) and its allocator worker
// (worker.ts), and the /config.json and /trace formats served by `vmphys viz` (src/cli/viz.ts
// writes the same shapes). Owned by the viz work (issue 8).
import type { MemMap } from '../../src/boot/memmap.js';
import type { StartupMode } from '../../src/core/vmphys.js';
import type { ReplayCounts } from '../../src/trace/replay.js';

/** GET /config.json: the machine the CLI was asked to show. */
export interface VizConfig {
  /** Human name of the map: a file name or `firecracker 256 MiB`. */
  mapName: string;
  map: MemMap;
  mode: StartupMode;
  profile: 'amd64' | 'arm64';
  /** Physical addresses to blacklist at boot (vm.blacklist). */
  blacklist: number[];
  trace: {
    available: boolean;
    name: string;
    /** Events of the early-boot workload (the trace's first N events). */
    earlyEvents: number;
    /** Most events the server hands out (--trace-limit); 0 = the whole trace. */
    maxEvents: number;
  };
}

/**
 * GET /trace?limit=N: the trace's first N events, pre-parsed (no limit: all of them). Little-endian:
 * bytes 0..3 'VMTR', 4..7 uint32 count, then Float64 pfn[count] from byte 8, then Uint8
 * op[count], order[count], flags[count].
 */
export const TRACE_MAGIC = 0x52544d56; // 'VMTR' read as a little-endian uint32

/** Parallel event arrays, as src/trace/parse.ts's TraceChunk holds them. */
export interface TraceArrays {
  count: number;
  op: Uint8Array;
  pfn: Float64Array;
  order: Uint8Array;
  flags: Uint8Array;
}

/** Decode a /trace response body. */
export function decodeTrace(buf: ArrayBuffer): TraceArrays {
  const dv = new DataView(buf);
  if (buf.byteLength < 8 || dv.getUint32(0, true) !== TRACE_MAGIC) throw new Error('bad /trace response');
  const count = dv.getUint32(4, true);
  if (buf.byteLength !== 8 + 11 * count) throw new Error('truncated /trace response');
  return {
    count,
    pfn: new Float64Array(buf, 8, count),
    op: new Uint8Array(buf, 8 + 8 * count, count),
    order: new Uint8Array(buf, 8 + 9 * count, count),
    flags: new Uint8Array(buf, 8 + 10 * count, count),
  };
}

/** The workloads the worker runs in slices. */
export type TaskKind = 'drain' | 'early' | 'trace';

export type ToWorker =
  | { type: 'boot'; config: VizConfig; mode: StartupMode }
  | { type: 'run'; task: TaskKind }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'step' }
  | { type: 'speed'; factor: number };

/** Sent once per boot: the shared buffers the page draws from (no copies afterwards). */
export interface BootedMsg {
  type: 'booted';
  control: SharedArrayBuffer;
  meta: SharedArrayBuffer;
  link: SharedArrayBuffer;
  profile: 'amd64' | 'arm64';
  totalPages: number;
  maxRuns: number;
  mode: StartupMode;
  /** Wall time of bootFromMap in the worker (ms): vm_page_startup until ready to allocate. */
  bootMs: number;
  /** Page indices of blacklisted pages (removed from the free lists at boot). */
  blacklisted: number[];
  notes: string[];
  /** Pages in the LAZYINIT pool right after boot (the drain's total). */
  lazyPagesAtBoot: number;
}

/** Counters of the synthetic early-boot workload (used when the server has no trace). */
export interface SyntheticCounts {
  ops: number;
  allocs: number;
  frees: number;
  failedAllocs: number;
  heldPages: number;
}

export type WorkerState = 'idle' | 'loading' | 'running' | 'paused';

/** Sent after every slice of work and on every state change. */
export interface StatusMsg {
  type: 'status';
  state: WorkerState;
  /** The task in progress (running, paused or loading its data), or null. */
  task: TaskKind | null;
  /** Paused with no task: the next task waits for step/resume. */
  paused: boolean;
  /** 0..1 of the current task. */
  progress: number;
  /** Trace events replayed so far on this machine, and how many the page has loaded. */
  traceCursor: number;
  traceTotal: number;
  replay: ReplayCounts | null;
  synthetic: SyntheticCounts | null;
  /** Slices run since boot. */
  slices: number;
  drained: boolean;
  /** A short human line about the last thing done. */
  note: string;
}

export interface ErrorMsg {
  type: 'error';
  message: string;
}

export type FromWorker = BootedMsg | StatusMsg | ErrorMsg;
