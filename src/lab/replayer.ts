/**
 * PolicyReplayer: TraceReplayer's replay (src/trace/replay.ts) with the allocator calls going
 * through a PolicyEngine, the optional per-CPU cache and the policy's lazy drain. The trace side
 * (TraceResolver, the slot table, split and lost frees) is the same, so every policy sees exactly
 * the same requests; with FreeBSD's allocator choices and drain 'never' it makes the very calls
 * TraceReplayer makes (a test checks the two end in identical states). Owned by the lab.
 */

import { FreeList, Pool } from '../core/params.js';
import { type Policy, PolicyEngine } from '../core/policy.js';
import { segOfIdx } from '../core/segments.js';
import type { PhysState } from '../core/state.js';
import type { VmPhys } from '../core/vmphys.js';
import { infoOrder, infoPool, infoSeg, infoWord } from '../trace/info.js';
import { TraceFlag } from '../trace/parse.js';
import {
  newResolvedEvents,
  R_ALLOC,
  R_FREE,
  R_LOST,
  R_SKIP,
  R_SPLIT,
  R_TOOBIG,
  type ResolvedEvents,
  TraceResolver,
} from '../trace/resolve.js';
import { growSlotTable, splitSlot } from '../trace/slots.js';
import { LabPcpu } from './pcpu.js';

/** Counters of a policy replay (TraceReplayer's, plus the cache and drain). */
export interface PolicyReplayCounts {
  events: number;
  allocs: number;
  frees: number;
  matchedFrees: number;
  skippedFrees: number;
  lostFrees: number;
  failedAllocs: number;
  /** Failed allocations per requested order (orders above 31 counted at 31). */
  failedByOrder: number[];
  heldPages: number;
  /** Pages in the per-CPU cache (allocated from vm_phys's point of view). */
  cachedPages: number;
  pcpuRefills: number;
  pcpuDrains: number;
  /** Event count at which the lazy drain finished (-1: not finished). */
  drainDoneAt: number;
}

/** Replays resolved trace events under a policy (see the file comment). */
export class PolicyReplayer {
  readonly vm: VmPhys;
  readonly engine: PolicyEngine;
  readonly pcpu: LabPcpu | null;
  readonly resolver: TraceResolver;
  events = 0;
  allocs = 0;
  frees = 0;
  matchedFrees = 0;
  skippedFrees = 0;
  lostFrees = 0;
  failedAllocs = 0;
  readonly failedByOrder: Float64Array = new Float64Array(32);
  heldPages = 0;
  drainDoneAt = -1;
  private readonly phys: PhysState;
  private slotv: Int32Array = new Int32Array(2048).fill(-1);
  private readonly ndomains: number;
  private readonly dmaList: number;
  private readonly hasDma32: boolean;
  private readonly hasDma: boolean;
  private readonly scratch: ResolvedEvents = newResolvedEvents();
  private readonly drainEvery: number;
  private readonly drainBudget: number;
  private nextDrain: number;

  /**
   * Applies `policy` to `vm` (a started machine; see PolicyEngine for the reshaping) and, for
   * drain 'eager', drains all lazy memory now.
   */
  constructor(vm: VmPhys, policy: Policy) {
    this.vm = vm;
    this.phys = vm.state;
    this.engine = new PolicyEngine(vm.state, policy);
    const p = this.engine.policy;
    this.ndomains = vm.ndomains;
    this.pcpu = p.order0 === 'pcpu' ? new LabPcpu(this.engine, vm.ndomains) : null;
    this.resolver = new TraceResolver(vm.maxOrder);
    this.dmaList = vm.profile.lowmemBoundary > 0 ? FreeList.LOWMEM : FreeList.DMA32;
    this.hasDma32 = vm.flindOf(FreeList.DMA32) >= 0;
    this.hasDma = vm.flindOf(this.dmaList) >= 0;
    this.drainEvery = p.drainEvery;
    this.drainBudget = p.drainBudget;
    this.nextDrain = p.drain === 'background' ? 0 : Number.POSITIVE_INFINITY;
    if (p.drain === 'eager') {
      while (!this.engine.drainStep(1 << 20)) {}
      this.drainDoneAt = 0;
    }
  }

  /** Resolve and replay events [start, end) of parallel parsed arrays (FragSeries calls this). */
  run(op: Uint8Array, pfn: Float64Array, order: Uint8Array, flags: Uint8Array, start: number, end: number): void {
    this.replay(this.resolver.resolve(op, pfn, order, flags, start, end, this.scratch));
  }

  /** Replay a resolved batch. */
  replay(r: ResolvedEvents): void {
    this.slotv = growSlotTable(this.slotv, r.slots);
    const n = r.count;
    let ax = 0;
    let i = 0;
    while (i < n) {
      if (this.events >= this.nextDrain) this.drain();
      const until = Math.min(n, i + Math.max(1, this.nextDrain - this.events));
      for (let j = i; j < until; j++) {
        const k = r.kind[j];
        if (k === R_FREE) this.freeSlot(r.slot[j]);
        else if (k === R_ALLOC) this.allocSlot(r.slot[j], r.order[j], r.flags[j]);
        else if (k === R_SKIP) {
          this.frees++;
          this.skippedFrees++;
        } else ax = this.rare(k, r.slot[j], r.order[j], r.flags[j], r.aux, ax);
      }
      this.events += until - i;
      i = until;
    }
  }

  private drain(): void {
    if (this.engine.drainStep(this.drainBudget)) {
      this.drainDoneAt = this.events;
      this.nextDrain = Number.POSITIVE_INFINITY;
    } else this.nextDrain = this.events + this.drainEvery;
  }

  private allocSlot(s: number, o: number, fl: number): void {
    this.allocs++;
    const pool = (fl & TraceFlag.MOVABLE) !== 0 ? Pool.DEFAULT : Pool.DIRECT;
    let idx = this.allocIn(0, pool, o, fl);
    for (let d = 1; d < this.ndomains && idx < 0; d++) idx = this.allocIn(d, pool, o, fl);
    if (idx < 0) {
      this.failedAllocs++;
      this.failedByOrder[Math.min(o, 31)]++;
      this.slotv[2 * s] = -1;
      this.slotv[2 * s + 1] = o;
      return;
    }
    this.slotv[2 * s] = idx;
    this.slotv[2 * s + 1] = infoWord(o, pool, segOfIdx(this.phys, idx));
    this.heldPages += 1 << o;
  }

  private allocIn(d: number, pool: number, o: number, fl: number): number {
    const e = this.engine;
    if ((fl & (TraceFlag.DMA32 | TraceFlag.DMA)) !== 0) {
      if ((fl & TraceFlag.DMA) !== 0 && this.hasDma) return e.allocFreelist(d, this.dmaList, pool, o);
      if ((fl & TraceFlag.DMA32) !== 0 && this.hasDma32) return e.allocFreelist(d, FreeList.DMA32, pool, o);
    }
    if (o === 0 && this.pcpu !== null) return this.pcpu.alloc(d, pool);
    return e.alloc(d, pool, o);
  }

  private freeSlot(s: number): void {
    this.frees++;
    const idx = this.slotv[2 * s];
    if (idx < 0) {
      this.skippedFrees++;
      return;
    }
    this.matchedFrees++;
    this.release(s, idx, this.slotv[2 * s + 1]);
  }

  private release(s: number, idx: number, info: number): void {
    this.slotv[2 * s] = -1;
    this.heldPages -= 1 << infoOrder(info);
    this.give(idx, infoPool(info), infoOrder(info), infoSeg(info));
  }

  private give(idx: number, pool: number, o: number, seg: number): void {
    if (o === 0 && this.pcpu !== null) this.pcpu.free(idx, pool);
    else this.engine.free(idx, pool, o, seg);
  }

  private rare(k: number, s: number, o: number, fl: number, aux: Int32Array, ax: number): number {
    if ((k & R_LOST) !== 0) {
      const idx = this.slotv[2 * s];
      if (idx >= 0) {
        this.lostFrees++;
        this.release(s, idx, this.slotv[2 * s + 1]);
      }
    }
    switch (k & ~R_LOST) {
      case R_ALLOC:
        this.allocSlot(s, o, fl);
        return ax;
      case R_TOOBIG:
        this.allocs++;
        this.failedAllocs++;
        this.failedByOrder[Math.min(o, 31)]++;
        return ax;
      case R_SPLIT:
        return this.splitFree(s, o, aux, ax);
      default:
        throw new Error(`resolved event kind ${k} is not known`);
    }
  }

  private splitFree(s: number, o: number, aux: Int32Array, ax: number): number {
    this.frees++;
    const idx = this.slotv[2 * s];
    const info = this.slotv[2 * s + 1];
    const off = aux[ax];
    const a = splitSlot(this.slotv, s, o, aux, ax);
    if (idx < 0) {
      this.skippedFrees++;
      return a;
    }
    this.matchedFrees++;
    this.heldPages -= 1 << o;
    this.give(idx + off, infoPool(info), o, infoSeg(info));
    return a;
  }

  /** Counters so far. */
  counts(): PolicyReplayCounts {
    return {
      events: this.events,
      allocs: this.allocs,
      frees: this.frees,
      matchedFrees: this.matchedFrees,
      skippedFrees: this.skippedFrees,
      lostFrees: this.lostFrees,
      failedAllocs: this.failedAllocs,
      failedByOrder: Array.from(this.failedByOrder.subarray(0, lastNonZero(this.failedByOrder) + 1)),
      heldPages: this.heldPages,
      cachedPages: this.pcpu?.pages ?? 0,
      pcpuRefills: this.pcpu?.refills ?? 0,
      pcpuDrains: this.pcpu?.drains ?? 0,
      drainDoneAt: this.drainDoneAt,
    };
  }
}

function lastNonZero(a: Float64Array): number {
  for (let i = a.length - 1; i >= 0; i--) if (a[i] !== 0) return i;
  return -1;
}
