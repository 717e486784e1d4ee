/**
 * The fragmentation lab's only window onto the allocator: free-block counts per queue, the walk
 * over every free block, the segments, and the free-list mapping. Everything else in src/lab reads
 * the allocator through these functions, so a change in how the core stores its queues touches
 * this file alone. Read-only over VmPhys: nothing here mutates allocator state (walking a queue
 * decodes lazy-run links, it never materialises a chunk).
 */
import { FreeList, type FreeListId, type Profile } from '../core/params.js';
import { qCount, qHead, qNext } from '../core/queues.js';
import { paOf, segDomain, segEndIdx, segFirst, segFlind } from '../core/segments.js';
import { qIndex } from '../core/state.js';
import type { VmPhys } from '../core/vmphys.js';

/**
 * VM_LEVEL_0_ORDER, the order of a superpage (a level-0 reservation): one page-table page of
 * 8-byte entries maps 2^(PAGE_SHIFT − 3) pages. amd64 and arm64 with 4 KiB pages: 9 (2 MiB);
 * arm64 with 16 KiB pages would give 11 (32 MiB), as its vmparam.h says.
 */
export function superpageOrder(profile: Profile): number {
  return profile.pageShift - 3;
}

/** The dimensions of the allocator's free-queue table as the metrics see it. */
export interface FreeShape {
  /** Domains (vm_ndomains). */
  ndomains: number;
  /** Created free lists (vm_nfreelists): flind 0 .. nflind-1. */
  nflind: number;
  /** Free pools (VM_NFREEPOOL). */
  npools: number;
  /** VM_NFREEORDER: orders 0 .. orders-1. */
  orders: number;
  /** Superpage order (VM_LEVEL_0_ORDER). */
  superOrder: number;
  /** log2 of the page size. */
  pageShift: number;
}

/** The shape of vm's free-queue table (zero free lists before init). */
export function freeShape(vm: VmPhys): FreeShape {
  return {
    ndomains: vm.ndomains,
    nflind: vm.nfreelists,
    npools: vm.nPool,
    orders: vm.nOrd,
    superOrder: superpageOrder(vm.profile),
    pageShift: vm.profile.pageShift,
  };
}

/** Free blocks (lcnt) on queue [domain][flind][pool][order]. Arguments must be in range. */
export function blockCount(vm: VmPhys, domain: number, flind: number, pool: number, order: number): number {
  const s = vm.state;
  return qCount(s, qIndex(s, domain, flind, pool, order));
}

/**
 * Add the free-block counts of queues [domain][flind][pool][0 .. orders-1] into out[0 .. orders-1].
 * Allocates nothing (the series calls it per sample).
 */
export function addCounts(vm: VmPhys, out: Float64Array, domain: number, flind: number, pool: number): void {
  const s = vm.state;
  const base = qIndex(s, domain, flind, pool, 0);
  const n = s.nOrd;
  for (let o = 0; o < n; o++) out[o] += qCount(s, base + o);
}

/**
 * Call fn for every free block: its queue coordinates, order, page index and physical address.
 * Implicit max-order chunks of a lazy run (never linked individually) are reported one by one,
 * exactly as the allocator would hand them out. O(free blocks). The callback must not mutate the
 * allocator.
 */
export function forEachFreeBlock(
  vm: VmPhys,
  fn: (domain: number, flind: number, pool: number, order: number, idx: number, pa: number) => void,
): void {
  if (vm.phase < 1) return;
  const s = vm.state;
  for (let d = 0; d < vm.ndomains; d++)
    for (let f = 0; f < vm.nfreelists; f++)
      for (let pool = 0; pool < vm.nPool; pool++)
        for (let o = 0; o < vm.nOrd; o++) {
          const q = qIndex(s, d, f, pool, o);
          for (let m = qHead(s, q); m >= 0; m = qNext(s, q, m)) fn(d, f, pool, o, m, paOf(s, m));
        }
}

/** One physical segment: [start, end) in bytes, its domain and free list (flind). */
export interface SegmentInfo {
  start: number;
  end: number;
  domain: number;
  flind: number;
}

/** The allocator's segments in address order (empty before init). */
export function segmentsOf(vm: VmPhys): SegmentInfo[] {
  const out: SegmentInfo[] = [];
  const s = vm.state;
  for (let i = 0; i < s.nsegs; i++)
    out.push({ start: s.segStart[i], end: s.segEnd[i], domain: segDomain(s, i), flind: segFlind(s, i) });
  return out;
}

/**
 * flind of free list VM_FREELIST_* `freeList`, or -1 when that list was not created. FreeBSD's
 * vm_freelist_to_flind aliases an absent list to the flind of the list before it; this reports
 * such a list as absent (-1) so that every created flind has exactly one free list.
 */
export function flindOfFreeList(vm: VmPhys, freeList: number): number {
  if (freeList < 0 || freeList >= vm.nFl) return -1;
  const f = vm.flindOf(freeList);
  const before = freeList === 0 ? -1 : vm.flindOf(freeList - 1);
  return f >= 0 && f !== before ? f : -1;
}

/** The free list (VM_FREELIST_*) that created flind `flind`; DEFAULT when none matches. */
export function freeListOfFlind(vm: VmPhys, flind: number): FreeListId {
  for (let fl = 0; fl < vm.nFl; fl++) if (flindOfFreeList(vm, fl) === flind) return fl as FreeListId;
  return FreeList.DEFAULT;
}

/**
 * The flinds vm_phys_alloc_pages(domain, pool, order) tries, in its order: vm_freelist_to_flind
 * of VM_FREELIST_0 .. VM_NFREELIST-1, skipping absent (-1) entries (an aliased list repeats an
 * flind already tried, which changes nothing for a read-only probe).
 */
export function allocFlinds(vm: VmPhys): number[] {
  const out: number[] = [];
  for (let fl = 0; fl < vm.nFl; fl++) {
    const f = vm.flindOf(fl);
    if (f >= 0 && !out.includes(f)) out.push(f);
  }
  return out;
}

/** vm_default_freepool: the lowest pool an allocation may steal from. */
export function defaultFreePool(vm: VmPhys): number {
  return vm.defaultFreePool;
}

/** Pages of segments in (domain, flind): a zone is "populated" when this is > 0. */
export function zonePages(vm: VmPhys, domain: number, flind: number): number {
  let n = 0;
  const s = vm.state;
  for (let i = 0; i < s.nsegs; i++)
    if (segDomain(s, i) === domain && segFlind(s, i) === flind) n += segEndIdx(s, i) - segFirst(s, i);
  return n;
}
