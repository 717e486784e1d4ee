/**
 * A single-threaded per-CPU page cache for the policy lab: the logic of src/workers/pcpu.ts's
 * PcpuCache without locks. Per (domain, pool) a stack of order-0 pages taken from vm_phys in
 * batches (vm_phys_alloc_npages, FreeBSD's refill of vm_page_alloc's page cache) and given back in
 * batches (vm_phys_free_pages(m, pool, 0)) when it holds `high` pages. Cached pages are allocated
 * from vm_phys's point of view, so the fragmentation metrics see them as used, as a kernel's
 * would. Owned by the lab; calls the allocator through a PolicyEngine; the stack operations are
 * src/workers/pcpu.ts's (stackPop, stackPush).
 */
import { allocNpagesIdx } from '../core/buddy.js';
import type { PolicyEngine } from '../core/policy.js';
import { segDomain, segOfIdx } from '../core/segments.js';
import { stackPop, stackPush } from '../workers/pcpu.js';

/** The cache of one CPU (the replay runs the trace's events on one). */
export class LabPcpu {
  readonly engine: PolicyEngine;
  readonly batch: number;
  readonly high: number;
  refills = 0;
  drains = 0;
  private readonly nPool: number;
  private readonly stacks: Int32Array[] = [];
  private readonly counts: Int32Array;

  constructor(engine: PolicyEngine, ndomains: number) {
    this.engine = engine;
    this.batch = Math.min(engine.policy.pcpuBatch, engine.s.chunkPages);
    this.high = Math.max(this.batch, engine.policy.pcpuHigh);
    this.nPool = engine.s.nPool;
    for (let i = 0; i < ndomains * this.nPool; i++) this.stacks.push(new Int32Array(this.high));
    this.counts = new Int32Array(ndomains * this.nPool);
  }

  /** An order-0 page of `domain` in `pool`, or -1 when vm_phys has none left. */
  alloc(domain: number, pool: number): number {
    const k = domain * this.nPool + pool;
    const idx = stackPop(this.stacks, this.counts, k);
    if (idx >= 0) return idx;
    if (this.refill(domain, pool, k) === 0) return -1;
    return stackPop(this.stacks, this.counts, k);
  }

  /** Cache a freed order-0 page; at `high` pages, the oldest `batch` go back to vm_phys. */
  free(idx: number, pool: number): void {
    const s = this.engine.s;
    const d = segDomain(s, segOfIdx(s, idx));
    const k = d * this.nPool + pool;
    const n = stackPush(this.stacks, this.counts, k, idx);
    if (n >= this.high) {
      const st = this.stacks[k];
      // The oldest pages (bottom of the stack) go back; the hot ones stay.
      for (let i = 0; i < this.batch; i++) this.engine.free(st[i], pool, 0, segOfIdx(s, st[i]));
      st.copyWithin(0, this.batch, n);
      this.counts[k] = n - this.batch;
      this.drains++;
    }
  }

  /** Give every cached page back; returns how many. */
  flush(): number {
    const s = this.engine.s;
    let total = 0;
    for (let k = 0; k < this.counts.length; k++) {
      const pool = k % this.nPool;
      const st = this.stacks[k];
      for (let i = 0; i < this.counts[k]; i++) this.engine.free(st[i], pool, 0, segOfIdx(s, st[i]));
      total += this.counts[k];
      this.counts[k] = 0;
    }
    return total;
  }

  /** Pages held in the cache. */
  get pages(): number {
    let n = 0;
    for (let k = 0; k < this.counts.length; k++) n += this.counts[k];
    return n;
  }

  private refill(domain: number, pool: number, k: number): number {
    const st = this.stacks[k];
    let got = 0;
    if (this.engine.core) got = allocNpagesIdx(this.engine.s, domain, pool, this.batch, st);
    else
      while (got < this.batch) {
        // A policy engine's own block choice: one page at a time, so its bookkeeping sees each.
        const m = this.engine.alloc(domain, pool, 0);
        if (m < 0) break;
        st[got++] = m;
      }
    this.counts[k] = got;
    this.refills++;
    return got;
  }
}
