/**
 * Policy experiments: the same trace events, from the same starting machine, replayed under each
 * policy in turn, with a FragSeries and periodic non-destructive probes. Used by `vmphys replay
 * --policy` and by the `npm run lab` script; everything it reports is plain data (the policy
 * included), so a result file can be charted and tabled later. Owned by the lab.
 */
import type { Policy } from '../core/policy.js';
import { stealCounts } from '../core/policy.js';
import type { VmPhys } from '../core/vmphys.js';
import type { TraceEvents } from '../trace/parse.js';
import { canAllocate, probeContig } from './probe.js';
import { type PolicyReplayCounts, PolicyReplayer } from './replayer.js';
import { DEFAULT_SERIES_EVERY, FragSeries } from './series.js';
import { freeShape } from './source.js';

/** One periodic contiguous probe: alloc_contig(npages, alignment, boundary) in domain 0. */
export interface ContigRequest {
  npages: number;
  alignment: number;
  boundary: number;
}

/** Options of `runPolicies`. */
export interface ExperimentOptions {
  /** Builds the starting machine; called once per policy (e.g. restore of one snapshot). */
  build: () => VmPhys;
  /** Events between FragSeries samples (default DEFAULT_SERIES_EVERY). */
  every?: number;
  /** Events between probes (default 16 × every). */
  probeEvery?: number;
  /** Orders asked with canAllocate at each probe (default [superpage order]). */
  probeOrders?: number[];
  /** Contiguous requests probed at each probe (default one superpage, superpage-aligned). */
  contig?: ContigRequest[];
  /** Called after each policy (for progress output). */
  onPolicy?: (r: PolicyResult) => void;
}

/** The outcome of one policy. */
export interface PolicyResult {
  policy: Policy;
  counts: PolicyReplayCounts;
  /** Series order (the superpage order, 9). */
  order: number;
  every: number;
  peakUnusable: number;
  meanUnusable: number;
  minSuitable: number;
  meanSuitable: number;
  /** Per probe point: event index. */
  probeEvents: number[];
  /** probeOrders[k] succeeded at this fraction of probe points. */
  orderProbeSuccess: number[];
  /** contig[k]: fraction of probe points where it would succeed, and mean blocks examined. */
  contigSuccess: number[];
  contigExamined: number[];
  /** Allocations served from another pool: steals[pool][order]. */
  steals: number[][];
  /** Series columns. */
  events: number[];
  unusable: number[];
  suitable: number[];
  free: number[];
  /** FNV-1a (hex) of every page's state byte at the end: equal end states have equal hashes. */
  endState: string;
  /** Wall-clock seconds of the replay with sampling and probes. */
  seconds: number;
}

/** Replay `ev` under every policy (see the file comment). */
export function runPolicies(ev: TraceEvents, policies: Policy[], opts: ExperimentOptions): PolicyResult[] {
  const out: PolicyResult[] = [];
  for (const p of policies) {
    const r = runPolicy(ev, p, opts);
    opts.onPolicy?.(r);
    out.push(r);
  }
  return out;
}

/** Replay `ev` under one policy. */
export function runPolicy(ev: TraceEvents, policy: Policy, opts: ExperimentOptions): PolicyResult {
  const vm = opts.build();
  const t0 = performance.now();
  const rep = new PolicyReplayer(vm, policy);
  const every = opts.every ?? DEFAULT_SERIES_EVERY;
  const probeEvery = opts.probeEvery ?? 16 * every;
  const sp = freeShape(vm).superOrder;
  const orders = opts.probeOrders ?? [Math.min(sp, vm.maxOrder)];
  const contig = opts.contig ?? [{ npages: 2 ** sp, alignment: vm.pageSize * 2 ** sp, boundary: 0 }];
  const series = new FragSeries(vm, { every });
  const probeEvents: number[] = [];
  const okOrder = orders.map(() => 0);
  const okContig = contig.map(() => 0);
  const examined = contig.map(() => 0);
  const probe = () => {
    probeEvents.push(rep.events);
    orders.forEach((o, k) => {
      if (canAllocate(vm, o)) okOrder[k]++;
    });
    contig.forEach((c, k) => {
      const r = probeContig(vm, c.npages, c.alignment, c.boundary);
      if (r.ok) okContig[k]++;
      examined[k] += r.examined;
    });
  };
  for (let i = 0; i < ev.count; i += probeEvery) {
    probe();
    series.replay(rep, ev.op, ev.pfn, ev.order, ev.flags, i, Math.min(ev.count, i + probeEvery));
  }
  probe();
  series.finish(rep.events);
  const seconds = (performance.now() - t0) / 1000;
  const sum = series.summary();
  const c = series.columns();
  let sumS = 0;
  for (let i = 0; i < c.suitable.length; i++) sumS += c.suitable[i];
  const np = probeEvents.length;
  return {
    policy: { ...rep.engine.policy },
    counts: rep.counts(),
    order: series.order,
    every,
    peakUnusable: sum.peakUnusable,
    meanUnusable: sum.meanUnusable,
    minSuitable: sum.minSuitable,
    meanSuitable: c.suitable.length > 0 ? sumS / c.suitable.length : Number.NaN,
    probeEvents,
    orderProbeSuccess: okOrder.map((x) => x / np),
    contigSuccess: okContig.map((x) => x / np),
    contigExamined: examined.map((x) => x / np),
    steals: stealCounts(vm.state),
    events: Array.from(c.event),
    unusable: Array.from(c.unusable),
    suitable: Array.from(c.suitable),
    free: Array.from(c.free),
    endState: pageStateHash(vm),
    seconds,
  };
}

/** FNV-1a over every page's state byte (the pages.ts codec), as 8 hex digits. */
export function pageStateHash(vm: VmPhys): string {
  const m = vm.state.meta;
  let h = 0x811c9dc5;
  for (let i = 0; i < m.length; i++) {
    h ^= m[i];
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}
