// src/boot/memmap/types.ts: owns the public shapes of a parsed memory map (MemMap, MemRange,
// AffinityRange, MapFormat, ParseMemMapOptions). Every parser in this folder returns these;
// nothing here has behaviour.

/** Half-open byte range [start, end). Addresses are safe integers (at most 2^53 - 1). */
export interface MemRange {
  start: number;
  end: number;
}

/** Half-open byte range [start, end) that belongs to NUMA domain `domain`. */
export interface AffinityRange {
  start: number;
  end: number;
  domain: number;
}

export type MapFormat = 'iomem' | 'e820' | 'freebsd-chunks' | 'freebsd-smap' | 'freebsd-efi' | 'json';

/**
 * A normalised physical memory map.
 *
 * Invariants (checked before parseMemMap returns):
 * - `ram`: usable RAM, sorted, disjoint, merged where touching, page aligned (start rounded up,
 *   end rounded down), no empty ranges, every address a safe integer (<= 2^53 - 1).
 * - `reserved`: ranges inside `ram` that the kernel holds at boot; page aligned outward (start
 *   rounded down, end rounded up) and then clipped to `ram`, sorted, disjoint, merged.
 * - `affinity`: NUMA ranges, sorted, disjoint, non-empty, same-domain touching ranges merged;
 *   domains are dense 0..n-1 (the input's ids when they already are, else renumbered by
 *   ascending id). Empty when the input has no affinity information.
 */
export interface MemMap {
  format: MapFormat;
  ram: MemRange[];
  reserved: MemRange[];
  affinity: AffinityRange[];
  /** File name, when the caller passed one. */
  source?: string;
}

export interface ParseMemMapOptions {
  /** File name used in error messages and copied to MemMap.source. */
  file?: string;
  /** Page size for alignment; a power of two from 512 to 1 GiB. Default 4096. */
  pageSize?: number;
}
