/**
 * Linux's text formats for free-memory fragmentation, so that an allocator state here can be set
 * beside a live Linux machine's: /proc/buddyinfo, and debugfs extfrag/unusable_index and
 * extfrag/extfrag_index, byte for byte as mm/vmstat.c prints them (frag_show_print,
 * unusable_show_print, extfrag_show_print), plus a parser for buddyinfo text. Owned by the
 * fragmentation lab; reads the allocator only through ./source.ts.
 *
 * Mapping. A Linux node is a vm_phys domain ("Node <domain>"). A Linux zone is one created free
 * list (flind) of that domain, all pools summed, as buddyinfo sums migrate types. Zone names
 * follow the address ranges the lists cover: VM_FREELIST_LOWMEM (amd64, below 16 MiB) → "DMA",
 * VM_FREELIST_DMA32 (below 4 GiB) → "DMA32", VM_FREELIST_DEFAULT → "Normal". Zones are printed
 * in Linux's order, lowest addresses first (DMA, DMA32, Normal: flind descending), and like Linux
 * a zone without pages in that node is not printed. Columns run over every order 0 ..
 * VM_NFREEORDER−1 (13 on amd64/arm64; Linux has NR_PAGE_ORDERS, usually 11).
 */
import { PoolError, RangeArgError } from '../core/errors.js';
import { FreeList } from '../core/params.js';
import type { VmPhys } from '../core/vmphys.js';
import { fragMilli, freeBlocksOf, freePagesOf, suitableBlocks, unusableMilli } from './metrics.js';
import { addCounts, freeListOfFlind, zonePages } from './source.js';

/** Linux zone name of a free list (VM_FREELIST_*). */
export function zoneNameOfFreeList(freeList: number): string {
  if (freeList === FreeList.LOWMEM) return 'DMA';
  if (freeList === FreeList.DMA32) return 'DMA32';
  return 'Normal';
}

/** Linux zone name of a created free list (flind) of vm. */
export function zoneName(vm: VmPhys, flind: number): string {
  return zoneNameOfFreeList(freeListOfFlind(vm, flind));
}

/** C's "%03d" (the sign counts towards the width, as printf does). */
function d03(v: number): string {
  return v < 0 ? `-${String(-v).padStart(2, '0')}` : String(v).padStart(3, '0');
}

/** C's int division toward zero, printed as "%d" (never "-0"). */
function cdiv1000(v: number): number {
  const q = Math.trunc(v / 1000);
  return q === 0 ? 0 : q;
}

function head(node: number, zone: string): string {
  return `Node ${node}, zone ${zone.padStart(8, ' ')} `;
}

/** One /proc/buddyinfo line: "Node 0, zone   Normal " then "%6lu " per order, then "\n". */
export function buddyinfoLine(node: number, zone: string, counts: ArrayLike<number>): string {
  let s = head(node, zone);
  for (let j = 0; j < counts.length; j++) s += `${String(counts[j]).padStart(6, ' ')} `;
  return `${s}\n`;
}

/** One extfrag/unusable_index line: "%d.%03d " per order (thousandths, truncated). */
export function unusableLine(node: number, zone: string, counts: ArrayLike<number>): string {
  const n = counts.length;
  const f = freePagesOf(counts, n);
  let s = head(node, zone);
  for (let j = 0; j < n; j++) {
    const i = unusableMilli(f, suitableBlocks(counts, j, n), j);
    s += `${cdiv1000(i)}.${d03(i % 1000)} `;
  }
  return `${s}\n`;
}

/**
 * One extfrag/extfrag_index line: "%2d.%03d " per order; "-1.000" where the request would
 * succeed. A (rare) negative index above −1000 prints as Linux prints it, e.g. " 0.-500".
 */
export function extfragLine(node: number, zone: string, counts: ArrayLike<number>): string {
  const n = counts.length;
  const f = freePagesOf(counts, n);
  const b = freeBlocksOf(counts, n);
  let s = head(node, zone);
  for (let j = 0; j < n; j++) {
    const i = fragMilli(f, b, suitableBlocks(counts, j, n), j);
    s += `${String(cdiv1000(i)).padStart(2, ' ')}.${d03(i % 1000)} `;
  }
  return `${s}\n`;
}

/** Options of the whole-machine formats. */
export interface LinuxFormatOptions {
  /** Count only this pool (VM_FREEPOOL_*); default: all pools, as buddyinfo sums migrate types. */
  pool?: number;
}

type LineFn = (node: number, zone: string, counts: ArrayLike<number>) => string;

function perZone(vm: VmPhys, line: LineFn, opts: LinuxFormatOptions): string {
  if (opts.pool !== undefined && (!Number.isInteger(opts.pool) || opts.pool < 0 || opts.pool >= vm.nPool))
    throw new PoolError(`pool ${opts.pool} is outside 0..${vm.nPool - 1}`);
  let out = '';
  const counts = new Float64Array(vm.nOrd);
  for (let d = 0; d < vm.ndomains; d++)
    for (let f = vm.nfreelists - 1; f >= 0; f--) {
      if (zonePages(vm, d, f) === 0) continue;
      counts.fill(0);
      for (let p = 0; p < vm.nPool; p++) if (opts.pool === undefined || opts.pool === p) addCounts(vm, counts, d, f, p);
      out += line(d, zoneName(vm, f), counts);
    }
  return out;
}

/** /proc/buddyinfo of vm (see the mapping above). */
export function buddyinfo(vm: VmPhys, opts: LinuxFormatOptions = {}): string {
  return perZone(vm, buddyinfoLine, opts);
}

/** debugfs extfrag/unusable_index of vm. */
export function unusableIndexText(vm: VmPhys, opts: LinuxFormatOptions = {}): string {
  return perZone(vm, unusableLine, opts);
}

/** debugfs extfrag/extfrag_index of vm. */
export function extfragIndexText(vm: VmPhys, opts: LinuxFormatOptions = {}): string {
  return perZone(vm, extfragLine, opts);
}

/** One zone of a parsed buddyinfo. */
export interface BuddyinfoZone {
  node: number;
  zone: string;
  /** Free blocks per order, order 0 first. */
  counts: number[];
}

/**
 * Parse /proc/buddyinfo text (this module's or a live Linux machine's). Blank lines are
 * skipped; any other line that is not "Node N, zone NAME c0 c1 ..." throws a RangeArgError
 * (code EBUDDYINFO) naming the line.
 */
export function parseBuddyinfo(text: string): BuddyinfoZone[] {
  const out: BuddyinfoZone[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    const m = /^Node\s+(\d+),\s*zone\s+(\S+)((?:\s+\d+)*)$/.exec(line);
    if (m === null || m[3].trim() === '')
      throw new RangeArgError('EBUDDYINFO', `buddyinfo line ${i + 1} is not "Node N, zone NAME counts...": '${line}'`);
    out.push({ node: Number(m[1]), zone: m[2], counts: m[3].trim().split(/\s+/).map(Number) });
  }
  return out;
}
