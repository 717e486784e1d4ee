/**
 * Per-CPU page caches, after FreeBSD's per-domain pgcache UMA zones (vm_page.c): each thread
 * keeps, per (domain, pool), a stack of free order-0 pages it took from vm_phys in batches
 * (`vm_phys_alloc_npages`, one lock hold per batch) and gives back in batches
 * (`vm_phys_free_pages(m, pool, 0)`, one lock hold per batch), so order-0 traffic from many
 * threads does not serialise on the domain lock. Optional and off by default; never used by the
 * script runner or the golden vectors (it changes which addresses come back). Cached pages are
 * allocated from vm_phys's point of view: conservation counts them as held until `flush()`.
 * Ownership (core/owner.ts): a cached page's record reads CACHED, so a second free of it (here
 * or through vm_phys) is refused in O(1); it reads OWN(0) again when handed out or given back.
 * Owned by the workers layer (src/workers/*).
 */

import { allocNpagesIdx } from '../core/buddy.js';
import { DomainError, DoubleFreeError, hex, PoolError, StateError } from '../core/errors.js';
import { CACHED, cachePut, cacheTake, ownRec } from '../core/owner.js';
import { Pool } from '../core/params.js';
import { idxIn, paOf, segDomain, segOfIdx, segOfPa } from '../core/segments.js';
import type { LockedVmPhys } from './locked.js';

/**
 * The stacks of a per-CPU cache (this one and the lab's single-threaded copy): per key k (domain
 * × nPool + pool), stacks[k] holds counts[k] page indices, the most recently freed on top.
 * Plain numbers in and out, nothing allocated: both caches call these on every order-0 operation.
 */

/** Take the top page of stack k: its index, or -1 when the stack is empty. */
export function stackPop(stacks: readonly Int32Array[], counts: Int32Array, k: number): number {
  const n = counts[k];
  if (n === 0) return -1;
  counts[k] = n - 1;
  return stacks[k][n - 1];
}

/** Put page idx on top of stack k (which has room); returns the new number of pages on it. */
export function stackPush(stacks: readonly Int32Array[], counts: Int32Array, k: number, idx: number): number {
  const n = counts[k];
  stacks[k][n] = idx;
  counts[k] = n + 1;
  return n + 1;
}

/** Cache sizing. */
export interface PcpuOptions {
  /** Pages moved per refill or drain (default 64). */
  batch?: number;
  /** Pages a stack may hold; a free that fills it gives `batch` pages back (default 2 × batch). */
  capacity?: number;
}

/** One thread's cache; not shared between threads. */
export class PcpuCache {
  readonly locked: LockedVmPhys;
  readonly batch: number;
  readonly capacity: number;
  /** Refills and drains that took the lock. */
  refills = 0;
  drains = 0;
  private readonly nPool: number;
  private readonly ndomains: number;
  /** Per (domain, pool): a stack of page indices (allocated lazily at `capacity`). */
  private readonly stacks: Int32Array[];
  private readonly counts: Int32Array;

  constructor(locked: LockedVmPhys, opts: PcpuOptions = {}) {
    this.locked = locked;
    const vm = locked.vm;
    this.batch = Math.max(1, Math.min(opts.batch ?? 64, vm.chunkPages));
    this.capacity = Math.max(this.batch, opts.capacity ?? 2 * this.batch);
    this.nPool = vm.nPool;
    this.ndomains = locked.locks.ndomains;
    const n = this.ndomains * this.nPool;
    this.stacks = [];
    for (let i = 0; i < n; i++) this.stacks.push(new Int32Array(0));
    this.counts = new Int32Array(n);
  }

  /**
   * An order-0 page of `domain` in `pool` (DEFAULT or DIRECT): from the stack, else refill a
   * batch under the lock. Returns the address, or -1 when the domain has no free page left.
   */
  alloc(domain: number, pool: number): number {
    this.check(domain, pool);
    const idx = this.allocIdx(domain, pool);
    return idx < 0 ? -1 : paOf(this.locked.vm.state, idx);
  }

  /**
   * `alloc` on page indices (the core's index API): a page index, or -1. domain and pool are
   * not validated here (callers of the index API validate once, as the replayer does).
   */
  allocIdx(domain: number, pool: number): number {
    const k = domain * this.nPool + pool;
    let idx = stackPop(this.stacks, this.counts, k);
    if (idx < 0) {
      if (this.refill(domain, pool, k) === 0) return -1;
      idx = stackPop(this.stacks, this.counts, k);
    }
    cacheTake(this.locked.vm.state, idx);
    return idx;
  }

  /**
   * Give back one order-0 page allocated from `pool`. Cheap check only (an initialised page that
   * is not a free head); full validation happens when the batch reaches vm_phys.
   */
  free(pa: number, pool: number): void {
    const vm = this.locked.vm;
    const s = segOfPa(vm.state, pa);
    if (
      s < 0 ||
      pa % vm.pageSize !== 0 ||
      !Number.isInteger(pool) ||
      pool < 0 ||
      pool >= this.nPool ||
      pool === Pool.LAZYINIT
    ) {
      this.locked.freePages(pa, pool, 0); // throws the core's typed error
      return;
    }
    this.freeIdx(idxIn(vm.state, s, pa), pool);
  }

  /**
   * `free` on a page index. The page must be allocated as an order-0 unit (one word compared) or
   * lie in an allocated unit (split under the lock, see core/owner.ts); a double free, a page
   * of a free or held block, or a page never handed out throws the core's typed error.
   */
  freeIdx(idx: number, pool: number): void {
    // The state's page views are read per call: init() replaces them, and a cache may predate it.
    const s = this.locked.vm.state;
    const slot = (idx << 1) >>> 0;
    const r = s.link[slot];
    if (r === ownRec(0)) s.link[slot] = CACHED;
    else if (r === CACHED)
      throw new DoubleFreeError(`pcpu free: page ${hex(paOf(s, idx))} is already free (in a per-CPU cache)`);
    else this.putSlow(idx);
    const d = this.ndomains === 1 ? 0 : segDomain(s, segOfIdx(s, idx));
    const k = d * this.nPool + pool;
    if (this.stacks[k].length === 0) this.stacks[k] = new Int32Array(this.capacity);
    if (stackPush(this.stacks, this.counts, k, idx) >= this.capacity) this.give(d, pool, k, this.batch);
  }

  /** Give every cached page back to vm_phys; returns the number of pages returned. */
  flush(): number {
    let total = 0;
    for (let d = 0; d < this.ndomains; d++)
      for (let pool = 0; pool < this.nPool; pool++) {
        const k = d * this.nPool + pool;
        const n = this.counts[k];
        if (n > 0) {
          this.give(d, pool, k, n);
          total += n;
        }
      }
    return total;
  }

  /** Pages currently cached (all domains and pools). */
  get pages(): number {
    let n = 0;
    for (let i = 0; i < this.counts.length; i++) n += this.counts[i];
    return n;
  }

  private check(domain: number, pool: number): void {
    if (!Number.isInteger(domain) || domain < 0 || domain >= this.ndomains)
      throw new DomainError('EDOMAIN', `domain ${domain} is outside 0..${this.ndomains - 1}`);
    if (pool === Pool.LAZYINIT)
      throw new PoolError('the LAZYINIT pool cannot be named by a caller (vm_phys_pool_valid)');
    if (!Number.isInteger(pool) || pool < 0 || pool >= this.nPool) throw new PoolError(`unknown pool ${pool}`);
  }

  /** A free of a page that is not an order-0 unit: checked (and a unit split) under the lock. */
  private putSlow(idx: number): void {
    const vm = this.locked.vm;
    const s = vm.state;
    const seg = segOfIdx(s, idx);
    if (seg < 0) vm.freePages(paOf(s, idx), Pool.DEFAULT, 0); // throws the core's typed error
    const d = segDomain(s, seg);
    const L = this.locked.locks;
    L.lock(d);
    try {
      cachePut(s, idx, seg, vm.exactFrees, 'pcpu free');
    } finally {
      L.unlock(d);
    }
  }

  private refill(domain: number, pool: number, k: number): number {
    const vm = this.locked.vm;
    if (vm.phase !== 2) throw new StateError('the allocator has not been started (call startup)');
    let st = this.stacks[k];
    if (st.length === 0) st = this.stacks[k] = new Int32Array(this.capacity);
    const L = this.locked.locks;
    L.lock(domain);
    let got: number;
    try {
      got = allocNpagesIdx(vm.state, domain, pool, this.batch, st);
      const link = vm.state.link;
      for (let i = 0; i < got; i++) link[(st[i] << 1) >>> 0] = CACHED;
    } finally {
      L.unlock(domain);
    }
    this.refills++;
    this.counts[k] = got;
    return got;
  }

  private give(d: number, pool: number, k: number, n: number): void {
    const st = this.stacks[k];
    const vm = this.locked.vm;
    const L = this.locked.locks;
    L.lock(d);
    try {
      let c = this.counts[k];
      for (let i = 0; i < n; i++) {
        this.counts[k] = --c; // a page the core rejects is dropped, and its error propagates
        cacheTake(vm.state, st[c]);
        vm.freePages(paOf(vm.state, st[c]), pool, 0);
      }
    } finally {
      L.unlock(d);
    }
    this.drains++;
  }
}
