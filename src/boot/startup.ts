/**
 * vm_page_startup in our terms (spec §3.2): from a MemMap to a started allocator. phys_avail is
 * the map's RAM minus what the kernel holds at boot (the map's reserved lines and `reserve`
 * ranges); segments are the RAM ranges (vm_phys_add_seg cuts them at 16 MiB / 4 GiB / NUMA
 * boundaries); then init, the gap pages, the lazy or eager enqueue, and the blacklist (each
 * entry through vm_phys_unfree_page, which drains its domain first, as FreeBSD does).
 * Builds every machine the CLI, tests and benchmarks use (`buildMachine`, one Firecracker map
 * builder in ramspec.ts). Owned by boot; uses only the core's public API.
 */
import { hex } from '../core/errors.js';
import type { PageStructOption } from '../core/pagerec/wire.js';
import { amd64, type Profile } from '../core/params.js';
import { type StartupMode, VmPhys } from '../core/vmphys.js';
import type { AffinityRange, MemMap, MemRange } from './memmap.js';
import { firecrackerMap } from './ramspec.js';

/** Options of a boot. */
export interface BootOptions {
  mode: StartupMode;
  profile?: Profile;
  /** Extra ranges the kernel holds at boot (removed from phys_avail). */
  reserve?: MemRange[];
  /** Physical addresses to blacklist (vm.blacklist). */
  blacklist?: number[];
  shared?: boolean;
  /** Page records kept beside the allocator (VmPhysOptions.pageStruct; default none). */
  pageStruct?: PageStructOption;
}

/** What happened during the boot, for the report. */
export interface BootResult {
  vm: VmPhys;
  /** Notes about adjustments (NUMA ignored, gaps in SRAT coverage...). */
  notes: string[];
  /** Blacklisted pages actually removed from the free lists. */
  blacklisted: number[];
  availBytes: number;
}

/** Subtract sorted ranges `cut` from sorted ranges `from`. */
export function subtractRanges(from: MemRange[], cut: MemRange[]): MemRange[] {
  const out: MemRange[] = [];
  const cuts = [...cut].sort((a, b) => a.start - b.start);
  for (const r of from) {
    let s = r.start;
    for (const c of cuts) {
      if (c.end <= s || c.start >= r.end) continue;
      if (c.start > s) out.push({ start: s, end: c.start });
      s = Math.max(s, c.end);
    }
    if (s < r.end) out.push({ start: s, end: r.end });
  }
  return out;
}

/**
 * Affinity ranges made usable by vm_phys_create_seg: they must cover every RAM range without a
 * gap. SRAT tables often leave the low megabyte or holes out; such RAM goes to the domain of
 * the nearest covered range (said in a note). More domains than MAXMEMDOM disable NUMA, as
 * FreeBSD's SRAT parser does.
 */
export function usableAffinity(map: MemMap, profile: Profile, notes: string[]): AffinityRange[] {
  const aff = map.affinity;
  if (aff.length === 0) return [];
  const ndom = Math.max(...aff.map((a) => a.domain)) + 1;
  if (ndom > profile.maxMemDom) {
    notes.push(
      `${ndom} NUMA domains exceed MAXMEMDOM (${profile.maxMemDom}): NUMA disabled, as FreeBSD's SRAT parser does`,
    );
    return [];
  }
  if (ndom === 1) return [];
  // Build a covering table: walk RAM, assign uncovered pieces to the nearest range's domain.
  const out: AffinityRange[] = aff.map((a) => ({ ...a }));
  const sorted = out.sort((a, b) => a.start - b.start);
  for (const r of map.ram) {
    for (const piece of subtractRanges([r], sorted)) {
      let best = sorted[0];
      for (const a of sorted)
        if (Math.abs(a.start - piece.start) < Math.abs(best.start - piece.start) || a.end <= piece.start) best = a;
      notes.push(`RAM ${hex(piece.start)}-${hex(piece.end)} has no SRAT entry: given to domain ${best.domain}`);
      sorted.push({ start: piece.start, end: piece.end, domain: best.domain });
      sorted.sort((a, b) => a.start - b.start);
    }
  }
  // Merge touching ranges of the same domain.
  const merged: AffinityRange[] = [];
  for (const a of sorted) {
    const last = merged[merged.length - 1];
    if (last && last.end === a.start && last.domain === a.domain) last.end = a.end;
    else merged.push({ ...a });
  }
  return merged;
}

/**
 * Boot a machine from a memory map: the allocator is ready (startup done, blacklist applied)
 * when this returns. Throws the core's typed errors on impossible maps (e.g. too many segments).
 */
export function bootFromMap(map: MemMap, opts: BootOptions): BootResult {
  const profile = opts.profile ?? amd64;
  const notes: string[] = [];
  const vm = new VmPhys({ profile, shared: opts.shared ?? true, pageStruct: opts.pageStruct });
  for (const a of usableAffinity(map, profile, notes)) vm.addAffinity(a.start, a.end, a.domain);
  for (const r of map.ram) vm.addSeg(r.start, r.end);
  const held = [...map.reserved, ...(opts.reserve ?? [])];
  const avail = subtractRanges(map.ram, held);
  let availBytes = 0;
  // Only add explicit phys_avail when something is held; otherwise the segments are phys_avail.
  if (held.length > 0) {
    // Everything held: phys_avail is empty (not "the segments", the default without ranges).
    if (avail.length === 0) vm.availNone();
    for (const r of avail) {
      vm.addAvail(r.start, r.end);
      availBytes += r.end - r.start;
    }
  } else for (const r of map.ram) availBytes += r.end - r.start;
  vm.init();
  vm.startup(opts.mode);
  const blacklisted: number[] = [];
  for (const pa of opts.blacklist ?? []) {
    const page = Math.floor(pa / profile.pageSize) * profile.pageSize;
    if (vm.paddrToPage(page) < 0) continue; // "page does not exist, no failure"
    if (vm.unfreePage(page)) blacklisted.push(page);
  }
  return { vm, notes, blacklisted, availBytes };
}

/** A machine as plain ranges: RAM (→ segments), reserved (removed from phys_avail), NUMA affinity. */
export interface MachineMapLike {
  ram: MemRange[];
  reserved?: MemRange[];
  affinity?: AffinityRange[];
}

/** The traced VM of the replay: a 128 GiB Firecracker guest (its /proc/iomem System RAM). */
export const FIRECRACKER_128G: MachineMapLike = Object.freeze(firecrackerMap(128 * 2 ** 30));

/**
 * A started VmPhys for a map (default FIRECRACKER_128G), booted as `bootFromMap` does: affinity
 * first, one vm_phys_add_seg per RAM range, phys_avail = RAM minus reserved (only when reserved
 * ranges are given; otherwise phys_avail = the segments), init and vm_page_startup in `mode`.
 * Unshared unless `shared`. Throws the core's typed errors for a bad map.
 */
export function buildMachine(
  map: MachineMapLike = FIRECRACKER_128G,
  mode: StartupMode = 'lazy',
  profile: Profile = amd64,
  shared = false,
): VmPhys {
  const memmap = { format: 'json' as const, ram: map.ram, reserved: map.reserved ?? [], affinity: map.affinity ?? [] };
  return bootFromMap(memmap, { mode, profile, shared }).vm;
}

/**
 * The stress machine's map: Firecracker's low RAM, then one range [1 MiB, end) without the
 * 32-bit MMIO gap (end is the RAM's end address, a multiple of 4 KiB above 1 MiB).
 */
export function flatFirecrackerMap(end: number): MachineMapLike {
  const MiB = 2 ** 20;
  return { ram: [firecrackerMap(2 * MiB).ram[0], { start: MiB, end }] };
}
