/**
 * LockedVmPhys: the allocator's public operations, each under the right domain free lock, for
 * use from any thread attached to a shared allocator. Owned by the workers layer (src/workers/*).
 *
 * Which lock: alloc* and contig take the `domain` argument's lock; free / free_contig / unfree
 * take the lock of the domain of the address's segment (`segDomain[segOfPa(pa)]`). find_range and
 * unfree must drain their domain first, and the drain must not hold the lock throughout (spec
 * §3.5/§3.6): they drain with the drainer protocol (lock per block), wait for blocks other
 * drainers hold in flight, and only then take the lock for the call itself.
 */
import { allocContig } from '../core/contig.js';
import { DomainError } from '../core/errors.js';
import { CTL } from '../core/layout.js';
import { segDomain, segOfPa } from '../core/segments.js';
import type { FoundRange, PoolCounts, VmPhys } from '../core/vmphys.js';
import {
  type DrainerRecovery,
  type DrainStats,
  drainAll,
  drainDomainLocked,
  newDrainStats,
  recoverDrainers,
  waitInflight,
} from './drainer.js';
import './exchange.js';
import { DomainLocks, type LockOptions } from './lock.js';

export class LockedVmPhys {
  readonly vm: VmPhys;
  readonly locks: DomainLocks;

  /** Wrap `vm` (usually from `attach`); makes this thread's DomainLocks unless one is given. */
  constructor(vm: VmPhys, locks?: DomainLocks | LockOptions) {
    this.vm = vm;
    this.locks = locks instanceof DomainLocks ? locks : new DomainLocks(vm, locks);
  }

  /** The domain of a free's address (0 when pa lies outside every segment: the call throws anyway). */
  domainOfPa(pa: number): number {
    const st = this.vm.state;
    const s = segOfPa(st, pa);
    return s < 0 ? 0 : segDomain(st, s);
  }

  private dom(domain: number): number {
    const n = this.locks.ndomains;
    if (!Number.isInteger(domain) || domain < 0 || domain >= n)
      throw new DomainError('EDOMAIN', `domain ${domain} is outside 0..${n - 1}`);
    return domain;
  }

  /** vm_phys_alloc_pages under the domain lock. */
  allocPages(domain: number, pool: number, order: number): number | null {
    const L = this.locks;
    L.lock(this.dom(domain));
    try {
      return this.vm.allocPages(domain, pool, order);
    } finally {
      L.unlock(domain);
    }
  }

  /** vm_phys_alloc_freelist_pages under the domain lock. */
  allocFreelistPages(domain: number, freelist: number, pool: number, order: number): number | null {
    const L = this.locks;
    L.lock(this.dom(domain));
    try {
      return this.vm.allocFreelistPages(domain, freelist, pool, order);
    } finally {
      L.unlock(domain);
    }
  }

  /** vm_phys_alloc_npages under the domain lock (addresses into `out`, returns the count). */
  allocNpages(domain: number, pool: number, npages: number, out: { length: number; [i: number]: number }): number {
    const L = this.locks;
    L.lock(this.dom(domain));
    try {
      return this.vm.allocNpages(domain, pool, npages, out);
    } finally {
      L.unlock(domain);
    }
  }

  /** vm_phys_alloc_contig under the domain lock. */
  allocContig(
    domain: number,
    npages: number,
    low: number,
    high: number,
    alignment: number,
    boundary: number,
  ): number | null {
    const L = this.locks;
    L.lock(this.dom(domain));
    try {
      return allocContig(this.vm, domain, npages, low, high, alignment, boundary);
    } finally {
      L.unlock(domain);
    }
  }

  /** vm_phys_free_pages under the lock of pa's domain. */
  freePages(pa: number, pool: number, order: number): void {
    const L = this.locks;
    const d = this.domainOfPa(pa);
    L.lock(d);
    try {
      this.vm.freePages(pa, pool, order);
    } finally {
      L.unlock(d);
    }
  }

  /** vm_phys_free_contig under the lock of pa's domain. */
  freeContig(pa: number, pool: number, npages: number): void {
    const L = this.locks;
    const d = this.domainOfPa(pa);
    L.lock(d);
    try {
      this.vm.freeContig(pa, pool, npages);
    } finally {
      L.unlock(d);
    }
  }

  /** Drain one domain with the drainer protocol (lock per block) and wait for in-flight blocks. */
  drainDomain(domain: number, st: DrainStats = newDrainStats()): DrainStats {
    this.dom(domain);
    drainDomainLocked(this.vm, this.locks, domain, st);
    waitInflight(this.vm, domain, this.locks.deadlineMs);
    return st;
  }

  /** vm_phys_lazy_init (the vmlazyinit body) from this thread. */
  drain(st: DrainStats = newDrainStats()): DrainStats {
    return drainAll(this.vm, this.locks, st);
  }

  /** Give back the lazy blocks of drainers that died (drainer.ts: recoverDrainers). */
  recoverDrainers(): DrainerRecovery {
    return recoverDrainers(this.vm, this.locks);
  }

  /** vm_phys_unfree_page: drain pa's domain (lock dropped per block), then unfree under the lock. */
  unfreePage(pa: number): boolean {
    // Misuse is refused before the drain, so that a refused call changes nothing.
    this.vm.checkUnfree(pa);
    const d = this.domainOfPa(pa);
    this.drainDomain(d);
    const L = this.locks;
    L.lock(d);
    try {
      return this.vm.unfreePage(pa);
    } finally {
      L.unlock(d);
    }
  }

  /**
   * vm_phys_find_range: if a segment of `domain` could hold the range, drain the domain first
   * without holding the lock throughout, then run the call under the lock (its own drain is then
   * a no-op).
   */
  findRange(segind: number, domain: number, npages: number, low: number, high: number): FoundRange | null {
    const d = this.dom(domain);
    const st = this.vm.state;
    this.vm.checkFindRange(segind, domain, npages, low, high);
    if (Atomics.load(st.c.ctl, CTL.INITDONE + d) === 0) {
      // Only when a candidate segment exists (as FreeBSD): a cheap unlocked look at the segments.
      let candidate = false;
      for (let s = segind; s < st.nsegs && !candidate; s++) {
        if (segDomain(st, s) !== d) continue;
        if (st.segStart[s] >= high) break;
        const a = Math.max(low, st.segStart[s]);
        const b = Math.min(high, st.segEnd[s]);
        if (b - a >= npages * st.pageSize) candidate = true;
      }
      if (candidate) this.drainDomain(d);
    }
    const L = this.locks;
    L.lock(d);
    try {
      return this.vm.findRange(segind, domain, npages, low, high);
    } finally {
      L.unlock(d);
    }
  }

  /** Free page counts per pool, read under the lock(s). In-flight drainer pages are not free. */
  counts(domain?: number): PoolCounts {
    const L = this.locks;
    if (domain !== undefined) {
      L.lock(this.dom(domain));
      try {
        return this.vm.counts(domain);
      } finally {
        L.unlock(domain);
      }
    }
    L.lockAll();
    try {
      return this.vm.counts();
    } finally {
      L.unlockAll();
    }
  }

  /** Pages of lazy blocks drainers currently hold off the queues (all domains). */
  inflight(): number {
    let n = 0;
    for (let d = 0; d < this.locks.ndomains; d++) n += Atomics.load(this.vm.state.c.ctl, CTL.INFLIGHT + d);
    return n;
  }
}
