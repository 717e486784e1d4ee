/**
 * Non-destructive allocation probes: would a request succeed now, and from which queue would the
 * allocator take its block. Owned by the fragmentation lab; reads the allocator only through
 * ./source.ts (the contig probe walks the queues as src/core/contig.ts does) and changes nothing (no block is removed, no lazy chunk materialised).
 */
import { findContig } from '../core/contig.js';
import { ConstraintError, DomainError, PoolError, RangeArgError } from '../core/errors.js';
import { CTL } from '../core/layout.js';
import { Pool } from '../core/params.js';
import { paOf } from '../core/segments.js';
import type { PhysState } from '../core/state.js';
import type { VmPhys } from '../core/vmphys.js';
import { allocFlinds, blockCount, defaultFreePool } from './source.js';

/** Options of `canAllocate` / `allocationSource`. */
export interface CanAllocateOptions {
  /** Domain to ask (vm_phys_alloc_pages's domain); default: any domain, 0 first. */
  domain?: number;
  /** Pool of the request, DEFAULT (default) or DIRECT; LAZYINIT is not a caller's pool. */
  pool?: number;
}

/** Where vm_phys_alloc_pages would take the block from. */
export interface AllocationSource {
  domain: number;
  flind: number;
  /** Pool of the queue (the request's own pool, or the pool it would steal from). */
  pool: number;
  /** Order of the block it would remove (≥ the requested order; split afterwards). */
  order: number;
  /** True when the block comes from another pool than the request's (a steal). */
  fallback: boolean;
}

/**
 * The queue vm_phys_alloc_pages(domain, pool, order) would remove a block from now, or null when
 * the request would fail. Follows vm_phys_alloc_freelist_pages for each created free list in
 * VM_FREELIST_* order: the own pool at orders order .. max; then, from the maximum order down,
 * pools vm_default_freepool .. VM_NFREEPOOL−1. Without `domain`, domains are asked 0 first, as
 * a replay falls back to other domains. O(domains·lists·pools·orders). Typed errors for an order
 * outside 0..VM_NFREEORDER−1, an unknown domain or a pool a caller may not name.
 */
export function allocationSource(vm: VmPhys, order: number, opts: CanAllocateOptions = {}): AllocationSource | null {
  if (!Number.isInteger(order) || order < 0 || order >= vm.nOrd)
    throw new RangeArgError('EORDER', `order ${order} is outside 0..${vm.nOrd - 1}`);
  const pool = opts.pool ?? Pool.DEFAULT;
  if (pool !== Pool.DEFAULT && pool !== Pool.DIRECT)
    throw new PoolError(`pool ${pool} cannot be requested (DEFAULT ${Pool.DEFAULT} or DIRECT ${Pool.DIRECT})`);
  const d0 = opts.domain ?? 0;
  if (!Number.isInteger(d0) || d0 < 0 || d0 >= vm.ndomains)
    throw new DomainError('EDOMAIN', `domain ${d0} is outside 0..${vm.ndomains - 1}`);
  if (vm.phase < 2) return null;
  const d1 = opts.domain === undefined ? vm.ndomains : d0 + 1;
  const flinds = allocFlinds(vm);
  const dfp = defaultFreePool(vm);
  for (let d = d0; d < d1; d++)
    for (const f of flinds) {
      for (let o = order; o < vm.nOrd; o++)
        if (blockCount(vm, d, f, pool, o) > 0) return { domain: d, flind: f, pool, order: o, fallback: false };
      for (let o = vm.nOrd - 1; o >= order; o--)
        for (let p = dfp; p < vm.nPool; p++)
          if (blockCount(vm, d, f, p, o) > 0) return { domain: d, flind: f, pool: p, order: o, fallback: p !== pool };
    }
  return null;
}

/**
 * Would an order-`order` request succeed now (vm_phys_alloc_pages in the given domain, or in
 * any domain)? Non-destructive; see `allocationSource`.
 */
export function canAllocate(vm: VmPhys, order: number, opts: CanAllocateOptions = {}): boolean {
  return allocationSource(vm, order, opts) !== null;
}

/** What a read-only vm_phys_alloc_contig search found. */
export interface ContigProbe {
  /** The request would succeed now. */
  ok: boolean;
  /** Physical address of the run it would return, or -1. */
  pa: number;
  /** Free blocks (queue entries) the search examined, across every segment it tried. */
  examined: number;
}

/** Options of `probeContig`. */
export interface ContigProbeOptions {
  /** Domain (default 0). */
  domain?: number;
  /** Lowest and highest physical address (default 0 and 2^53). */
  low?: number;
  high?: number;
}

/**
 * Would vm_phys_alloc_contig(domain, npages, low, high, alignment, boundary) succeed now, where,
 * and how many free blocks did its search examine? The search of src/core/contig.ts (segments
 * from the highest down, queue tables once each; best-fit order first, pools from
 * vm_default_freepool, queue order; runs of max-order blocks above the maximum block size),
 * without the claim: nothing is written, no lazy chunk is materialised. Typed errors as
 * allocContig's for a bad npages, alignment or boundary.
 */
export function probeContig(
  vm: VmPhys,
  npages: number,
  alignment: number,
  boundary: number,
  opts: ContigProbeOptions = {},
): ContigProbe {
  const s = vm.state;
  const domain = opts.domain ?? 0;
  if (!Number.isInteger(domain) || domain < 0 || domain >= vm.ndomains)
    throw new DomainError('EDOMAIN', `domain ${domain} is outside 0..${vm.ndomains - 1}`);
  if (!Number.isSafeInteger(npages) || npages < 1)
    throw new RangeArgError('ENPAGES', `contig: npages ${npages} must be at least 1`);
  if (!powerOf2(alignment)) throw new ConstraintError(`contig: alignment ${alignment} is not a power of two`);
  if (!powerOf2(boundary)) throw new ConstraintError(`contig: boundary ${boundary} is not a power of two`);
  const low = opts.low ?? 0;
  const high = opts.high ?? 2 ** 53;
  const res: ContigProbe = { ok: false, pa: -1, examined: 0 };
  if (vm.phase < 2 || low >= high) return res;
  const m = findContig(s, domain, npages, low, high, alignment, boundary, res);
  if (m >= 0) {
    res.ok = true;
    res.pa = paOf(s, m);
  }
  return res;
}

function powerOf2(x: number): boolean {
  if (x === 0) return true;
  if (!Number.isSafeInteger(x) || x < 0) return false;
  return 2 ** Math.round(Math.log2(x)) === x;
}

function _vmDefaultFreePool(s: PhysState): number {
  return s.c.ctl[CTL.DEFAULT_FREEPOOL];
}
