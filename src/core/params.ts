/**
 * Platform profiles: every constant of spec §1.1 for amd64 and arm64.
 * Owned by the core; everything else reads constants from a Profile, never from literals.
 */

/** The machine-dependent constants vm_phys needs (sys/<arch>/include/vmparam.h, param.h). */
export interface Profile {
  readonly name: 'amd64' | 'arm64';
  /** PAGE_SHIFT: log2 of the page size. */
  readonly pageShift: number;
  /** PAGE_SIZE in bytes. */
  readonly pageSize: number;
  /** VM_NFREEORDER: orders 0 .. nFreeOrder-1; also the "not a free head" sentinel. */
  readonly nFreeOrder: number;
  /** VM_NFREEPOOL (LAZYINIT, DEFAULT, DIRECT). */
  readonly nFreePool: number;
  /** VM_NFREELIST: DEFAULT, DMA32 and (amd64) LOWMEM. */
  readonly nFreeList: number;
  /** VM_LOWMEM_BOUNDARY in bytes, or 0 when VM_FREELIST_LOWMEM is not defined. */
  readonly lowmemBoundary: number;
  /** VM_DMA32_BOUNDARY in bytes (both ports define VM_FREELIST_DMA32). */
  readonly dma32Boundary: number;
  /** VM_DMA32_NPAGES_THRESHOLD in pages, or -1 when not defined (arm64). */
  readonly dma32NpagesThreshold: number;
  /** VM_PHYSSEG_MAX. */
  readonly physSegMax: number;
  /** MAXMEMDOM. */
  readonly maxMemDom: number;
  /** CACHE_LINE_SIZE (used to pad lock words). */
  readonly cacheLineSize: number;
  /** Number of vm_phys_early_segs slots and phys_avail pairs we accept. */
  readonly physAvailMax: number;
}

/** Free pools (VM_FREEPOOL_*), identical on both ports after D40403. */
export const Pool = { LAZYINIT: 0, DEFAULT: 1, DIRECT: 2 } as const;
export type PoolId = (typeof Pool)[keyof typeof Pool];

/** Free lists (VM_FREELIST_*). LOWMEM exists on amd64 only. */
export const FreeList = { DEFAULT: 0, DMA32: 1, LOWMEM: 2 } as const;
export type FreeListId = (typeof FreeList)[keyof typeof FreeList];

/** amd64: DENSE page array, three free lists, DMA32 only above 64 GiB of DEFAULT memory. */
export const amd64: Profile = Object.freeze({
  name: 'amd64',
  pageShift: 12,
  pageSize: 4096,
  nFreeOrder: 13,
  nFreePool: 3,
  nFreeList: 3,
  lowmemBoundary: 16 * 1024 * 1024,
  dma32Boundary: 4 * 1024 * 1024 * 1024,
  dma32NpagesThreshold: 16777216,
  physSegMax: 63,
  maxMemDom: 8,
  cacheLineSize: 64,
  physAvailMax: 128,
});

/** arm64 with 4 KiB pages: SPARSE page array, two free lists, no LOWMEM, no DMA32 threshold. */
export const arm64: Profile = Object.freeze({
  name: 'arm64',
  pageShift: 12,
  pageSize: 4096,
  nFreeOrder: 13,
  nFreePool: 3,
  nFreeList: 2,
  lowmemBoundary: 0,
  dma32Boundary: 4 * 1024 * 1024 * 1024,
  dma32NpagesThreshold: -1,
  physSegMax: 64,
  maxMemDom: 8,
  cacheLineSize: 128,
  physAvailMax: 128,
});

/** Look a profile up by name; throws RangeError for an unknown one. */
export function profileByName(name: string): Profile {
  if (name === 'amd64') return amd64;
  if (name === 'arm64') return arm64;
  throw new RangeError(`unknown platform profile '${name}' (expected amd64 or arm64)`);
}
