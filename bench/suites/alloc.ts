/**
 * Suite `alloc`: raw allocator throughput on one thread. Owned by the benchmark work.
 *   - order-0 alloc+free pairs, hot LIFO (one page held so the freed page's buddy is busy and the
 *     pair is one queue removal + one insertion, the steady state of a busy machine), through
 *     the public API and through the index API;
 *   - the same pair on an idle machine (nothing held: every pair splits a max-order block 12
 *     times and merges it back), index API;
 *   - a mixed-order random workload: orders 0..10 (P(order k) ∝ 2^-k), 4096 blocks live on
 *     average, each step allocates or frees a random live block, both pools; public and index API.
 * Every workload runs in a fresh child process (monomorphic code, no leftover heap); inside a
 * child, a warm-up repetition is dropped and GC runs between repetitions.
 */
import { fileURLToPath } from 'node:url';
import { buildMachine } from '../../src/boot/startup.js';
import { allocFreelistIdx, freePagesIdx } from '../../src/core/buddy.js';
import { Pool } from '../../src/core/params.js';
import { segOfIdx } from '../../src/core/segments.js';
import type { VmPhys } from '../../src/core/vmphys.js';
import { type Result, repeat, result, runChild, type Suite } from '../util.js';

const SELF = fileURLToPath(import.meta.url);

/** The 1 GiB Firecracker guest (FreeBSD's seed scenario). */
export const FC1G = {
  ram: [
    { start: 0x1000, end: 0x9f000 },
    { start: 0x100000, end: 0x40000000 },
  ],
};

type Workload = 'lifo-public' | 'lifo-index' | 'split-index' | 'mixed-public' | 'mixed-index';

interface ChildArg {
  workload: Workload;
  reps: number;
  ops: number;
}

interface ChildOut {
  samples: number[];
}

/** Child entry: run one workload `reps` times after one warm-up; returns ops/s per rep. */
export async function childAlloc(arg: ChildArg): Promise<ChildOut> {
  const vm = buildMachine(FC1G, 'lazy');
  const r = await repeat(() => once(vm, arg.workload, arg.ops), { reps: arg.reps, warmup: 1 });
  return { samples: r.samples };
}

function once(vm: VmPhys, w: Workload, ops: number): number {
  switch (w) {
    case 'lifo-public':
      return lifoPublic(vm, ops / 2);
    case 'lifo-index':
      return lifoIndex(vm, ops / 2, true);
    case 'split-index':
      return lifoIndex(vm, ops / 2, false);
    case 'mixed-public':
      return mixed(vm, ops, true);
    case 'mixed-index':
      return mixed(vm, ops, false);
  }
}

function lifoPublic(vm: VmPhys, pairs: number): number {
  const held = vm.allocPages(0, Pool.DEFAULT, 0) as number;
  const t0 = performance.now();
  for (let i = 0; i < pairs; i++) {
    const pa = vm.allocPages(0, Pool.DEFAULT, 0) as number;
    vm.freePages(pa, Pool.DEFAULT, 0);
  }
  const s = (performance.now() - t0) / 1000;
  vm.freePages(held, Pool.DEFAULT, 0);
  return (2 * pairs) / s;
}

function lifoIndex(vm: VmPhys, pairs: number, hold: boolean): number {
  const nFl = vm.nFl;
  let held = -1;
  if (hold) {
    for (let f = 0; held < 0 && f < nFl; f++) held = allocFreelistIdx(vm.state, 0, f, Pool.DEFAULT, 0);
  }
  const t0 = performance.now();
  for (let i = 0; i < pairs; i++) {
    let idx = allocFreelistIdx(vm.state, 0, 0, Pool.DEFAULT, 0);
    for (let f = 1; idx < 0 && f < nFl; f++) idx = allocFreelistIdx(vm.state, 0, f, Pool.DEFAULT, 0);
    freePagesIdx(vm.state, idx, Pool.DEFAULT, 0, segOfIdx(vm.state, idx));
  }
  const s = (performance.now() - t0) / 1000;
  if (held >= 0) freePagesIdx(vm.state, held, Pool.DEFAULT, 0, segOfIdx(vm.state, held));
  return (2 * pairs) / s;
}

/** xorshift32 PRNG (deterministic workloads). */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

/** A pre-generated op list: kind 0 alloc (order, pool) or 1 free (live slot). */
interface MixedOps {
  kind: Uint8Array;
  order: Uint8Array;
  pool: Uint8Array;
  pick: Float64Array;
}
let mixedCache: MixedOps | null = null;
function mixedOps(n: number): MixedOps {
  if (mixedCache && mixedCache.kind.length === n) return mixedCache;
  const r = rng(0x5eed);
  const ops: MixedOps = {
    kind: new Uint8Array(n),
    order: new Uint8Array(n),
    pool: new Uint8Array(n),
    pick: new Float64Array(n),
  };
  let live = 0;
  for (let i = 0; i < n; i++) {
    // Drift towards 4096 live blocks: alloc with probability 1 - live/8192.
    const alloc = live === 0 || r() > live / 8192;
    ops.kind[i] = alloc ? 0 : 1;
    let o = 0;
    while (o < 10 && r() < 0.5) o++;
    ops.order[i] = o;
    ops.pool[i] = r() < 0.5 ? Pool.DEFAULT : Pool.DIRECT;
    ops.pick[i] = r();
    live += alloc ? 1 : -1;
  }
  mixedCache = ops;
  return ops;
}

function mixed(vm: VmPhys, n: number, publicApi: boolean): number {
  const ops = mixedOps(n);
  const cap = n + 1;
  const addr = new Float64Array(cap);
  const ord = new Uint8Array(cap);
  const pl = new Uint8Array(cap);
  let live = 0;
  const nFl = vm.nFl;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    if (ops.kind[i] === 0) {
      const o = ops.order[i];
      const pool = ops.pool[i];
      let a: number;
      if (publicApi) {
        const pa = vm.allocPages(0, pool, o);
        if (pa === null) continue;
        a = pa;
      } else {
        a = allocFreelistIdx(vm.state, 0, 0, pool, o);
        for (let f = 1; a < 0 && f < nFl; f++) a = allocFreelistIdx(vm.state, 0, f, pool, o);
        if (a < 0) continue;
      }
      addr[live] = a;
      ord[live] = o;
      pl[live] = pool;
      live++;
    } else if (live > 0) {
      const j = Math.floor(ops.pick[i] * live);
      const a = addr[j];
      if (publicApi) vm.freePages(a, pl[j], ord[j]);
      else freePagesIdx(vm.state, a, pl[j], ord[j], segOfIdx(vm.state, a));
      live--;
      addr[j] = addr[live];
      ord[j] = ord[live];
      pl[j] = pl[live];
    }
  }
  const s = (performance.now() - t0) / 1000;
  // Give everything back so the next repetition starts from the same free state.
  for (let j = 0; j < live; j++) {
    if (publicApi) vm.freePages(addr[j], pl[j], ord[j]);
    else freePagesIdx(vm.state, addr[j], pl[j], ord[j], segOfIdx(vm.state, addr[j]));
  }
  return n / s;
}

const GOAL = '≥ 20 M order-0 ops/s';

export const suite: Suite = {
  name: 'alloc',
  async run({ quick }) {
    const reps = quick ? 2 : 7;
    const pairsOps = quick ? 400_000 : 10_000_000;
    const mixedN = quick ? 200_000 : 4_000_000;
    const specs: Array<{ w: Workload; name: string; ops: number; goal?: string; notes: string }> = [
      {
        w: 'lifo-public',
        name: 'order-0 alloc+free, hot LIFO, public API',
        ops: pairsOps,
        goal: GOAL,
        notes: 'allocPages/freePages (validated); one page held so the pair does not coalesce; ops = 2 per pair',
      },
      {
        w: 'lifo-index',
        name: 'order-0 alloc+free, hot LIFO, index API',
        ops: pairsOps,
        goal: GOAL,
        notes: 'allocFreelistIdx/freePagesIdx (unvalidated); one page held; ops = 2 per pair',
      },
      {
        w: 'split-index',
        name: 'order-0 alloc+free, idle machine (split 12 + merge 12), index API',
        ops: pairsOps / 4,
        notes: 'nothing held: each pair splits a 2^12-page block down to one page and merges it back',
      },
      {
        w: 'mixed-public',
        name: 'mixed orders 0..10, random frees, public API',
        ops: mixedN,
        goal: '≥ 15 M ops/s (validated API)',
        notes: 'P(order k) ∝ 2^-k, ~4096 live blocks, DEFAULT/DIRECT at random; ops = allocs + frees',
      },
      {
        w: 'mixed-index',
        name: 'mixed orders 0..10, random frees, index API',
        ops: mixedN,
        notes: 'same op list as the public-API run',
      },
    ];
    const out: Result[] = [];
    for (const s of specs) {
      const r = await runChild<ChildOut>(SELF, 'childAlloc', { workload: s.w, reps, ops: s.ops } satisfies ChildArg);
      out.push(
        result(s.name, 'ops/s', r.samples, {
          goal: s.goal,
          notes: `${s.notes}; lazy 1 GiB Firecracker map; ${s.ops.toLocaleString('en-US')} ops × ${reps} reps in a fresh process`,
        }),
      );
    }
    return out;
  },
};
