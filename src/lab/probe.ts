/**
 * Non-destructive allocation probes: would a request succeed now, and from which queue would the
 * allocator take its block. Owned by the fragmentation lab; reads the allocator only through
 * ./source.ts and changes nothing (no block is removed, no lazy chunk materialised).
 */
import { DomainError, PoolError, RangeArgError } from '../core/errors.js';
import { Pool } from '../core/params.js';
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
