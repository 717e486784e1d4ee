// src/boot/memmap.ts: owns the physical memory-map parsers behind `vmphys boot --map FILE`.
// It turns a Linux /proc/iomem dump, a Linux boot log (e820 table, SRAT), FreeBSD boot
// output (chunk list, physmem summary, machdep.smap, arm64 EFI table) or a JSON file into
// one normalised MemMap. The parsers only read text; they never touch the allocator.
//
// Contract of parseMemMap: it either returns a MemMap that satisfies every invariant
// documented on MemMap, or it throws MemMapError naming the file and (where one exists)
// the 1-based line at fault. Any other exception is a bug in this file.

import { VmPhysError } from '../core/errors.js';

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

/**
 * The input is not a usable memory map. `message` reads `file:line: problem` (just
 * `file: problem` when no single line is at fault); `file` is '<input>' in the message when
 * the caller gave no name.
 */
export class MemMapError extends VmPhysError {
  readonly file: string | undefined;
  /** 1-based line number, or undefined when the problem is the whole input. */
  readonly line: number | undefined;

  /** `message` is the bare problem; the constructor prefixes the location. */
  constructor(message: string, file: string | undefined, line: number | undefined) {
    super('EMEMMAP', `${file ?? '<input>'}${line === undefined ? '' : `:${line}`}: ${message}`);
    this.file = file;
    this.line = line;
  }
}

// ---------------------------------------------------------------------------------------
// Shared plumbing
// ---------------------------------------------------------------------------------------

/** Largest address a MemMap may hold: Number.MAX_SAFE_INTEGER (2^53 - 1). */
const ADDR_LIMIT = BigInt(Number.MAX_SAFE_INTEGER);
/** EFI page size, fixed by the UEFI spec whatever the kernel's page size. */
const EFI_PAGE = 4096n;

interface Ctx {
  file: string | undefined;
  pageSize: number;
}

function fail(ctx: Ctx, line: number | undefined, problem: string): never {
  throw new MemMapError(problem, ctx.file, line);
}

/** A half-open range as read from the input, with the line it came from. */
interface Span {
  start: bigint;
  end: bigint;
  line: number;
}

interface AffSpan extends Span {
  domain: number;
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;
const showSpan = (s: { start: bigint; end: bigint }): string => `[${hex(s.start)}, ${hex(s.end)})`;

/** Split into lines (LF or CRLF), dropping a leading byte-order mark. Line i is number i+1. */
function splitLines(text: string): string[] {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  return body.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/** Blank lines and `#` comment lines are ignored by every text format. */
const isSkippable = (line: string): boolean => {
  const t = line.trim();
  return t === '' || t.startsWith('#');
};

/** Parse 1..16 hex digits (the regexes guarantee the shape). */
const big = (digits: string): bigint => BigInt(`0x${digits}`);

/** Inclusive [first, last] in hex → half-open span; an inverted range is an error. */
function inclusive(ctx: Ctx, first: string, last: string, line: number): Span {
  const start = big(first);
  const end = big(last) + 1n;
  if (end <= start) fail(ctx, line, `inverted range: start 0x${first} is above end 0x${last}`);
  return { start, end, line };
}

/** bigint address → number; addresses past 2^53 - 1 are not safe integers and are rejected. */
function toAddr(ctx: Ctx, v: bigint, line: number): number {
  if (v > ADDR_LIMIT) fail(ctx, line, `address ${hex(v)} is beyond 2^53 - 1, the largest address vmphys can represent`);
  return Number(v);
}

const alignDown = (v: number, p: number): number => Math.floor(v / p) * p;
const alignUp = (v: number, p: number): number => Math.ceil(v / p) * p;

function sortSpans<T extends Span>(spans: T[]): T[] {
  return [...spans].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.line - b.line));
}

/**
 * RAM spans → MemRange[]: sort, reject overlaps (two RAM ranges claiming the same bytes are
 * a conflict, the map is ambiguous), merge touching spans (before alignment, so byte-granular
 * splits such as Linux's setup_data pieces rejoin), then shrink each range to whole pages.
 */
function normalizeRam(ctx: Ctx, spans: Span[], what: string): MemRange[] {
  const merged: Span[] = [];
  for (const s of sortSpans(spans.filter((x) => x.end > x.start))) {
    const last = merged[merged.length - 1];
    if (last !== undefined && s.start < last.end) {
      const [early, late] = s.line > last.line ? [last, s] : [s, last];
      fail(ctx, late.line, `${what} range ${showSpan(late)} overlaps ${showSpan(early)} from line ${early.line}`);
    }
    if (last !== undefined && s.start === last.end) last.end = s.end;
    else merged.push({ ...s });
  }
  const out: MemRange[] = [];
  for (const s of merged) {
    const start = alignUp(toAddr(ctx, s.start, s.line), ctx.pageSize);
    const end = alignDown(toAddr(ctx, s.end, s.line), ctx.pageSize);
    if (start < end) out.push({ start, end });
  }
  return out;
}

/** Kernel-held spans → page-aligned outward, sorted, merged (overlap allowed). */
function normalizeReserved(ctx: Ctx, spans: Span[]): MemRange[] {
  const out: MemRange[] = [];
  for (const s of sortSpans(spans.filter((x) => x.end > x.start))) {
    const start = alignDown(toAddr(ctx, s.start, s.line), ctx.pageSize);
    const end = alignUp(toAddr(ctx, s.end, s.line), ctx.pageSize);
    const last = out[out.length - 1];
    if (last !== undefined && start <= last.end) last.end = Math.max(last.end, end);
    else out.push({ start, end });
  }
  return out;
}

/**
 * Reject any RAM span that overlaps a non-RAM span of the same table (e.g. a usable e820 entry
 * that overlaps a reserved one): the firmware contradicts itself and we will not guess.
 */
function rejectConflicts(ctx: Ctx, ram: Span[], other: Span[], what: string): void {
  const o = sortSpans(other.filter((x) => x.end > x.start));
  let j = 0;
  for (const r of sortSpans(ram.filter((x) => x.end > x.start))) {
    while (j < o.length && o[j].end <= r.start) j++;
    for (let k = j; k < o.length && o[k].start < r.end; k++) {
      fail(
        ctx,
        Math.max(r.line, o[k].line),
        `${what}: usable range ${showSpan(r)} (line ${r.line}) overlaps non-RAM range ${showSpan(o[k])} (line ${o[k].line})`,
      );
    }
  }
}

/** a ∖ b for sorted, disjoint, merged range lists. */
function subtract(a: MemRange[], b: MemRange[]): MemRange[] {
  const out: MemRange[] = [];
  let j = 0;
  for (const r of a) {
    let cur = r.start;
    while (j < b.length && b[j].end <= cur) j++;
    for (let k = j; k < b.length && b[k].start < r.end; k++) {
      if (b[k].start > cur) out.push({ start: cur, end: b[k].start });
      cur = Math.max(cur, b[k].end);
    }
    if (cur < r.end) out.push({ start: cur, end: r.end });
  }
  return out;
}

/** a ∩ b for sorted, disjoint range lists. */
function intersect(a: MemRange[], b: MemRange[]): MemRange[] {
  const out: MemRange[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const start = Math.max(a[i].start, b[j].start);
    const end = Math.min(a[i].end, b[j].end);
    if (start < end) out.push({ start, end });
    if (a[i].end < b[j].end) i++;
    else j++;
  }
  return out;
}

/** Does [start, end) lie inside one range of the sorted, disjoint list? Binary search. */
function coveredBy(ranges: readonly MemRange[], start: number, end: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid].start <= start) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found >= 0 && end <= ranges[found].end;
}

/**
 * Affinity spans → AffinityRange[]: drop empty ones, sort, merge same-domain spans that touch
 * or overlap, reject spans of different domains that overlap, then make domains dense.
 */
function normalizeAffinity(ctx: Ctx, spans: AffSpan[]): AffinityRange[] {
  const merged: AffSpan[] = [];
  for (const s of sortSpans(spans.filter((x) => x.end > x.start))) {
    const last = merged[merged.length - 1];
    if (last !== undefined && s.start <= last.end) {
      if (s.domain === last.domain) {
        if (s.end > last.end) last.end = s.end;
        continue;
      }
      if (s.start < last.end) {
        const [early, late] = s.line > last.line ? [last, s] : [s, last];
        fail(
          ctx,
          late.line,
          `affinity range ${showSpan(late)} of domain ${late.domain} overlaps ${showSpan(early)} of domain ${early.domain} from line ${early.line}`,
        );
      }
    }
    merged.push({ ...s });
  }
  const ids = [...new Set(merged.map((s) => s.domain))].sort((a, b) => a - b);
  const dense = ids.every((id, i) => id === i);
  const remap = new Map(ids.map((id, i) => [id, dense ? id : i]));
  return merged.map((s) => ({
    start: toAddr(ctx, s.start, s.line),
    end: toAddr(ctx, s.end, s.line),
    domain: remap.get(s.domain) ?? 0,
  }));
}

// ---------------------------------------------------------------------------------------
// Log line shapes (Linux and FreeBSD boot output)
// ---------------------------------------------------------------------------------------

/**
 * Prefixes a kernel log line may carry, stripped before matching: a raw `<6>` priority, a
 * syslog/journal prefix (`Aug 29 16:48:39 host kernel: `, `Mar  1 host kernel: `, ISO-8601
 * journal timestamps, or a bare `kernel: `), and a dmesg timestamp (`[    0.000000] ` or
 * `dmesg -T`'s `[Tue Aug 29 16:48:39 2023] `). Indentation after the prefix is kept: some
 * FreeBSD shapes differ only by it.
 */
const LOG_PREFIX =
  /^(?:<\d{1,3}>)?(?:(?:[A-Z][a-z]{2} {1,2}\d{1,2} (?:\d\d:\d\d:\d\d(?:\.\d+)? )?|\d{4}-\d\d-\d\dT[\d:.,+-]+Z? )\S+ kernel(?:\[\d+\])?: |kernel: )?(?:<\d{1,3}>)?(?:\[ *\d+\.\d+\] ?|\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\] ?)?/;

const stripPrefix = (line: string): string => line.replace(LOG_PREFIX, '');

// Linux e820 tables. Entries are `[mem 0x<first>-0x<last>] <type>`, both ends inclusive.
// Kernels from 6.x on may print `System RAM` for `usable`, `device reserved` for `reserved`,
// a size column before the type, and `[gap ...]` lines; older kernels (< 3.8) printed
// ` BIOS-e820: <16 hex> - <16 hex> (usable)` (leading space) with an exclusive end.
const E820_ROW =
  /^\s*(BIOS-e820|reserve setup_data|user): \[(mem|gap) 0x([0-9a-fA-F]{1,16})-0x([0-9a-fA-F]{1,16})\](.*)$/;
const E820_OLD_ROW = /^\s*(BIOS-e820|user): ([0-9a-fA-F]{16}) - ([0-9a-fA-F]{16}) \((.+)\)\s*$/;
const E820_SIZE_COLUMN = /^\d+(?:\.\d+)? +[KMGTPE]?B +/;
const E820_RAM_TYPES = new Set(['usable', 'System RAM', 'kernel usable RAM']);

// Linux SRAT memory affinity: `ACPI: SRAT: Node N PXM P [mem 0x<first>-0x<last>]` plus
// optional ` hotplug` / ` non-volatile` flags. The node (Linux's id) is the domain.
const LINUX_SRAT_KEY = /^(?:ACPI: )?SRAT: Node\b/;
const LINUX_SRAT =
  /^(?:ACPI: )?SRAT: Node (\d{1,9}) PXM (\d{1,10}) \[mem 0x([0-9a-fA-F]{1,16})-0x([0-9a-fA-F]{1,16})\]((?: hotplug| non-volatile)*)\s*$/;

// FreeBSD verbose SRAT: `SRAT: Found memory domain D addr 0xA len 0xL: enabled` (older kernels
// print the numbers without 0x and without the state). The domain is the ACPI proximity domain.
const FBSD_SRAT_KEY = /^SRAT: Found memory domain\b/;
const FBSD_SRAT =
  /^SRAT: Found memory domain (\d{1,9}) addr (?:0x)?([0-9a-fA-F]{1,16}) len (?:0x)?([0-9a-fA-F]{1,16})(?:: (enabled|disabled))?\s*$/;

// FreeBSD totals, printed on every boot: `real memory  = N (M MB)`, `avail memory = N (M MB)`.
const FBSD_TOTAL_KEY = /^(?:real|avail) memory\s*=/;
const FBSD_TOTAL = /^(real|avail) memory\s*= (\d{1,20}) \((\d{1,20}) MB\)\s*$/;

// FreeBSD `Physical memory chunk(s):` introduces either the phys_avail chunk list
// (`0x<first> - 0x<last>, N bytes (P pages)`) or the early physmem summary
// (`  0x<first> - 0x<last>,  M MB (  P pages)`); the first row tells which. Ends inclusive.
const FBSD_CHUNK = /^\s*0x([0-9a-fA-F]{1,16}) - 0x([0-9a-fA-F]{1,16}), (\d{1,20}) bytes \((\d{1,20}) pages\)\s*$/;
const FBSD_SUMMARY = /^\s*0x([0-9a-fA-F]{1,16}) - 0x([0-9a-fA-F]{1,16}), *(\d{1,20}) MB \( *(\d{1,20}) pages\)\s*$/;
const FBSD_EXCLUDED =
  /^\s*0x([0-9a-fA-F]{1,16}) - 0x([0-9a-fA-F]{1,16}), *(\d{1,20}) MB \( *(\d{1,20}) pages\)((?: +(?:NoAlloc|NoDump))*) *$/;
const FBSD_ROW_KEY = /^\s*0x/;

// `sysctl machdep.smap`: `SMAP type=01, xattr=01, base=<16 hex>, len=<16 hex>`, range
// [base, base+len). The verbose boot listing has the same fields without commas or xattr.
const SMAP_KEY = /^SMAP\b/;
const SMAP_ROW =
  /^SMAP type=([0-9a-fA-F]{1,8}),? (?:xattr=([0-9a-fA-F]{1,8}),? )?base=([0-9a-fA-F]{1,16}),? len=([0-9a-fA-F]{1,16})\s*$/;

// FreeBSD arm64 EFI memory map (`%23s %012jx %012jx %08jx ` then attribute words):
// Type, Physical, Virtual, #Pages (hex count of 4 KiB pages), Attr. Range [phys, phys+pages*4K).
const EFI_HEADER = /^\s*Type +Physical +Virtual +#Pages +Attr\s*$/;
const EFI_ROW_KEY = /^\s*(?:[A-Za-z]\w*|<INVALID>) +[0-9a-fA-F]+ /;
const EFI_ROW =
  /^\s*([A-Za-z]+|<INVALID>) +([0-9a-fA-F]{1,16}) +([0-9a-fA-F]{1,16}) +([0-9a-fA-F]{1,16})((?: +[A-Z][A-Z_]*)*) *$/;
/**
 * EFI types that are RAM for vmphys. This is FreeBSD's rule (sys/kern/subr_efi_map.c,
 * handle_efi_map_entry): LoaderCode/Data, BootServicesCode/Data and ConventionalMemory are
 * hardware regions that phys_avail may use once the loader has exited boot services.
 * RuntimeServicesCode/Data and ACPIReclaimMemory are put in the direct map but excluded from
 * phys_avail (EXFLAG_NOALLOC), so they are never allocatable and are not RAM here; all other
 * types (Reserved, MMIO, ACPI NVS, PalCode, PersistentMemory, ...) are ignored.
 */
const EFI_RAM_TYPES = new Set([
  'LoaderCode',
  'LoaderData',
  'BootServicesCode',
  'BootServicesData',
  'ConventionalMemory',
]);
const EFI_KNOWN_TYPES = new Set([
  ...EFI_RAM_TYPES,
  'Reserved',
  'RuntimeServicesCode',
  'RuntimeServicesData',
  'UnusableMemory',
  'ACPIReclaimMemory',
  'ACPIMemoryNVS',
  'MemoryMappedIO',
  'MemoryMappedIOPortSpace',
  'PalCode',
  'PersistentMemory',
  '<INVALID>',
]);

// Table headers.
const E820_HEADER = /^(?:e820: )?BIOS-provided physical RAM map:\s*$/;
const E820_EXT_HEADER = /^extended physical RAM map:\s*$/;
const E820_USER_HEADER = /^user-defined physical RAM map:\s*$/;
const FBSD_CHUNK_HEADER = /^Physical memory chunk\(s\):\s*$/;
const FBSD_EXCLUDED_HEADER = /^Excluded memory regions:\s*$/;
const SMAP_HEADER = /^machdep\.smap:\s*$/;

/** Tables (runs of rows, usually after a header). At most one of each kind per file. */
type TableKind = 'e820' | 'e820ext' | 'e820user' | 'chunks' | 'summary' | 'excluded' | 'smap' | 'efi';

const TABLE_LABEL: Record<TableKind, string> = {
  e820: 'BIOS-e820 table',
  e820ext: 'extended (reserve setup_data) e820 table',
  e820user: 'user-defined e820 table',
  chunks: 'FreeBSD chunk list',
  summary: 'FreeBSD physmem summary',
  excluded: 'FreeBSD excluded-regions list',
  smap: 'machdep.smap table',
  efi: 'EFI memory map table',
};

/** Which rows a table takes once open: a line it claims must parse as its row, or it is an error. */
const TABLE_CLAIM: Record<TableKind, RegExp> = {
  e820: /^\s*BIOS-e820:/,
  e820ext: /^\s*reserve setup_data:/,
  e820user: /^\s*user:/,
  chunks: FBSD_ROW_KEY,
  summary: FBSD_ROW_KEY,
  excluded: FBSD_ROW_KEY,
  smap: SMAP_KEY,
  efi: EFI_ROW_KEY,
};

/** Keys that mark a row of a table even outside it; such a row must parse. */
const STRONG_KEYS: ReadonlyArray<readonly [RegExp, TableKind]> = [
  [/^\s*BIOS-e820:/, 'e820'],
  [/^\s*reserve setup_data:/, 'e820ext'],
  [/^\s*user: (?:\[mem |[0-9a-fA-F]{16} - )/, 'e820user'],
  [/^SMAP type=/, 'smap'],
];

/** A parsed table row. `ram` marks usable RAM; `skip` marks rows that carry no range (gaps). */
interface Row extends Span {
  ram: boolean;
  skip: boolean;
  /** FreeBSD excluded regions: the NoAlloc flag. */
  noAlloc: boolean;
}

interface Table {
  kind: TableKind;
  /** Header line, or first row line for a table without header. */
  line: number;
  rows: Row[];
}

interface LogScan {
  tables: Partial<Record<TableKind, Table>>;
  /** A `Physical memory chunk(s):` header whose first row never came. */
  emptyChunkHeader?: number;
  linuxSrat: AffSpan[];
  fbsdSrat: AffSpan[];
  /** First `real memory` / `avail memory` line. */
  totalsLine?: number;
}

const row = (span: Span, ram: boolean, extra: Partial<Row> = {}): Row => ({
  ...span,
  ram,
  skip: false,
  noAlloc: false,
  ...extra,
});

/** Check a FreeBSD row's byte/page/MB columns against its range. */
function checkFbsdCounts(ctx: Ctx, span: Span, bytes: bigint | undefined, mb: bigint | undefined, pages: bigint): void {
  const size = span.end - span.start;
  if (bytes !== undefined && bytes !== size) {
    fail(ctx, span.line, `byte count ${bytes} does not match the range ${showSpan(span)} (${size} bytes)`);
  }
  if (mb !== undefined && mb !== size >> 20n) {
    fail(ctx, span.line, `${mb} MB does not match the range ${showSpan(span)} (${size >> 20n} MB)`);
  }
  if (pages === 0n || size % pages !== 0n) {
    fail(ctx, span.line, `page count ${pages} does not divide the range ${showSpan(span)} (${size} bytes)`);
  }
}

/** Parse one row of table `kind`; null when the text does not have the row's shape. */
function parseRow(ctx: Ctx, kind: TableKind, text: string, line: number): Row | null {
  switch (kind) {
    case 'e820':
    case 'e820ext':
    case 'e820user': {
      const key = kind === 'e820' ? 'BIOS-e820' : kind === 'e820ext' ? 'reserve setup_data' : 'user';
      const m = E820_ROW.exec(text);
      if (m !== null && m[1] === key) {
        const span = inclusive(ctx, m[3], m[4], line);
        if (m[2] === 'gap') return row(span, false, { skip: true });
        const type = m[5].trim().replace(E820_SIZE_COLUMN, '');
        if (type === '') return null;
        return row(span, E820_RAM_TYPES.has(type));
      }
      const o = E820_OLD_ROW.exec(text);
      if (o !== null && o[1] === key) {
        const start = big(o[2]);
        const end = big(o[3]);
        if (end < start) fail(ctx, line, `inverted range: start 0x${o[2]} is above end 0x${o[3]}`);
        return row({ start, end, line }, o[4] === 'usable');
      }
      return null;
    }
    case 'chunks': {
      const m = FBSD_CHUNK.exec(text);
      if (m === null) return null;
      const span = inclusive(ctx, m[1], m[2], line);
      checkFbsdCounts(ctx, span, BigInt(m[3]), undefined, BigInt(m[4]));
      return row(span, true);
    }
    case 'summary': {
      const m = FBSD_SUMMARY.exec(text);
      if (m === null) return null;
      const span = inclusive(ctx, m[1], m[2], line);
      checkFbsdCounts(ctx, span, undefined, BigInt(m[3]), BigInt(m[4]));
      return row(span, true);
    }
    case 'excluded': {
      const m = FBSD_EXCLUDED.exec(text);
      if (m === null) return null;
      const span = inclusive(ctx, m[1], m[2], line);
      checkFbsdCounts(ctx, span, undefined, BigInt(m[3]), BigInt(m[4]));
      return row(span, false, { noAlloc: m[5].includes('NoAlloc') });
    }
    case 'smap': {
      const m = SMAP_ROW.exec(text);
      if (m === null) return null;
      const start = big(m[3]);
      const end = start + big(m[4]);
      // Type 1 is usable RAM. An ACPI 3.0 extended attribute without the "enabled" bit (bit 0)
      // tells the OS to ignore the entry.
      const enabled = m[2] === undefined || (Number.parseInt(m[2], 16) & 1) === 1;
      return row({ start, end, line }, Number.parseInt(m[1], 16) === 1 && enabled);
    }
    case 'efi': {
      const m = EFI_ROW.exec(text);
      if (m === null) return null;
      if (!EFI_KNOWN_TYPES.has(m[1])) fail(ctx, line, `unknown EFI memory type '${m[1]}'`);
      const start = big(m[2]);
      return row({ start, end: start + big(m[4]) * EFI_PAGE, line }, EFI_RAM_TYPES.has(m[1]));
    }
  }
}

/**
 * Walk a boot log once, collecting tables and standalone lines.
 *
 * Table rules: a header opens a table; rows follow. While a table is open, a line that the
 * table claims (same key, e.g. `BIOS-e820:`) must parse as a row, else it is garbage inside the
 * table. Any other non-blank line closes the table. A row of a table that was already closed
 * means something foreign sat inside the table: the error names that foreign line (or the
 * stray row, when a header of another table closed it). Rows with a strong key
 * (`BIOS-e820:`, `SMAP type=`, ...) open a table without a header; weakly keyed rows (FreeBSD
 * `0x...` rows, EFI rows) do so only when they match their full shape. A second table of the
 * same kind (a file holding two boots) is an error. Lines that belong to no table are skipped.
 */
function scanLog(ctx: Ctx, lines: string[]): LogScan {
  const scan: LogScan = { tables: {}, linuxSrat: [], fbsdSrat: [] };
  /** Open table; 'pending' is a chunk header whose first row decides chunk list vs summary. */
  let open: { kind: TableKind | 'pending'; line: number } | null = null;
  /** For each closed table: the line that closed it and whether that line was a header. */
  const closed: Partial<Record<TableKind | 'pending', { by: number; header: boolean }>> = {};

  const close = (by: number, header: boolean): void => {
    if (open === null) return;
    if (open.kind === 'pending') scan.emptyChunkHeader ??= open.line;
    closed[open.kind] = { by, header };
    open = null;
  };

  const startTable = (kind: TableKind, line: number): Table => {
    const prev = scan.tables[kind];
    if (prev !== undefined) {
      fail(ctx, line, `a second ${TABLE_LABEL[kind]} (the first starts at line ${prev.line}); keep one boot per file`);
    }
    const t: Table = { kind, line, rows: [] };
    scan.tables[kind] = t;
    open = { kind, line };
    return t;
  };

  /** A row for a table that is not open: either it starts a header-less table or it is stray. */
  const orphan = (kind: TableKind, text: string, line: number, also?: 'pending'): void => {
    const prevClose = closed[kind] ?? (also !== undefined ? closed[also] : undefined);
    const prev = scan.tables[kind];
    if (prevClose !== undefined) {
      const where = prev !== undefined ? `the ${TABLE_LABEL[kind]} that starts at line ${prev.line}` : 'the table';
      if (!prevClose.header) fail(ctx, prevClose.by, `line does not belong inside ${where}`);
      fail(ctx, line, `row outside ${where}, which ended at line ${prevClose.by}`);
    }
    const r = parseRow(ctx, kind, text, line);
    if (r === null) fail(ctx, line, `malformed ${TABLE_LABEL[kind]} row: '${text.trim()}'`);
    startTable(kind, line).rows.push(r);
  };

  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    if (isSkippable(lines[i])) continue;
    const text = stripPrefix(lines[i]);
    if (text.trim() === '') continue;

    // Headers.
    const header: TableKind | 'pending' | null = E820_HEADER.test(text)
      ? 'e820'
      : E820_EXT_HEADER.test(text)
        ? 'e820ext'
        : E820_USER_HEADER.test(text)
          ? 'e820user'
          : FBSD_CHUNK_HEADER.test(text)
            ? 'pending'
            : FBSD_EXCLUDED_HEADER.test(text)
              ? 'excluded'
              : SMAP_HEADER.test(text)
                ? 'smap'
                : EFI_HEADER.test(text)
                  ? 'efi'
                  : null;
    if (header !== null) {
      close(n, true);
      if (header === 'pending') open = { kind: 'pending', line: n };
      else startTable(header, n);
      continue;
    }

    // Rows of the open table.
    if (open !== null) {
      const cur: { kind: TableKind | 'pending'; line: number } = open;
      if (cur.kind === 'pending') {
        if (FBSD_ROW_KEY.test(text)) {
          const kind: TableKind | null = FBSD_CHUNK.test(text) ? 'chunks' : FBSD_SUMMARY.test(text) ? 'summary' : null;
          if (kind === null) {
            fail(ctx, n, `malformed row after 'Physical memory chunk(s):' (line ${cur.line}): '${text.trim()}'`);
          }
          const r = parseRow(ctx, kind, text, n);
          if (r === null) fail(ctx, n, `malformed ${TABLE_LABEL[kind]} row: '${text.trim()}'`);
          startTable(kind, cur.line).rows.push(r);
          continue;
        }
      } else if (TABLE_CLAIM[cur.kind].test(text)) {
        const r = parseRow(ctx, cur.kind, text, n);
        if (r === null) fail(ctx, n, `malformed ${TABLE_LABEL[cur.kind]} row: '${text.trim()}'`);
        scan.tables[cur.kind]?.rows.push(r);
        continue;
      }
      close(n, false);
    }

    // Rows outside any open table.
    const strong = STRONG_KEYS.find(([re]) => re.test(text));
    if (strong !== undefined) {
      orphan(strong[1], text, n);
      continue;
    }
    if (FBSD_CHUNK.test(text)) {
      orphan('chunks', text, n, 'pending');
      continue;
    }
    if (FBSD_SUMMARY.test(text)) {
      orphan('summary', text, n, 'pending');
      continue;
    }
    const efi = EFI_ROW.exec(text);
    if (efi !== null && EFI_KNOWN_TYPES.has(efi[1])) {
      orphan('efi', text, n);
      continue;
    }

    // Standalone lines.
    if (LINUX_SRAT_KEY.test(text)) {
      const m = LINUX_SRAT.exec(text);
      if (m === null) fail(ctx, n, `malformed SRAT line: '${text.trim()}'`);
      const span = inclusive(ctx, m[3], m[4], n);
      // Hot-pluggable ranges describe memory that may arrive later, not memory present at boot.
      if (!m[5].includes('hotplug')) scan.linuxSrat.push({ ...span, domain: Number(m[1]) });
      continue;
    }
    if (FBSD_SRAT_KEY.test(text)) {
      const m = FBSD_SRAT.exec(text);
      if (m === null) fail(ctx, n, `malformed SRAT line: '${text.trim()}'`);
      const start = big(m[2]);
      if (m[4] !== 'disabled') scan.fbsdSrat.push({ start, end: start + big(m[3]), line: n, domain: Number(m[1]) });
      continue;
    }
    if (FBSD_TOTAL_KEY.test(text)) {
      if (!FBSD_TOTAL.test(text)) fail(ctx, n, `malformed memory total line: '${text.trim()}'`);
      scan.totalsLine ??= n;
    }
    // Anything else is ordinary log text.
  }
  close(lines.length + 1, false);
  return scan;
}

// ---------------------------------------------------------------------------------------
// Format detection
// ---------------------------------------------------------------------------------------

const IOMEM_LINE = /^( *)([0-9a-fA-F]+)-([0-9a-fA-F]+) :(?: (.*))?$/;
const E820_MARK =
  /^(?:(?:e820: )?BIOS-provided physical RAM map:|extended physical RAM map:|user-defined physical RAM map:|\s*BIOS-e820:|\s*reserve setup_data:|\s*user: \[mem )/;
const FBSD_MARK = /^(?:Physical memory chunk\(s\):|(?:real|avail) memory\s*=)/;

/** First line that is neither blank nor a `#` comment (1-based), or undefined. */
function firstContentLine(lines: string[]): number | undefined {
  const i = lines.findIndex((l) => !isSkippable(l));
  return i < 0 ? undefined : i + 1;
}

/**
 * Guess the format of a memory map from its text; null when nothing is recognised.
 * JSON if the text starts with `{` or `[`; iomem if the first content line is an iomem line;
 * otherwise the boot-log format with the highest precedence that has a marker line:
 * e820 > freebsd-chunks (chunk header, physmem rows, or just the real/avail totals) >
 * freebsd-smap > freebsd-efi. Never throws.
 */
export function detectMapFormat(text: string): MapFormat | null {
  const lines = splitLines(text);
  const first = firstContentLine(lines);
  if (first === undefined) return null;
  const head = lines[first - 1].trimStart();
  // '[' opens a JSON array, unless it is a dmesg timestamp such as `[    0.000000] `.
  if (head.startsWith('{') || (head.startsWith('[') && stripPrefix(head) === head)) return 'json';
  if (IOMEM_LINE.test(lines[first - 1])) return 'iomem';
  let chunks = false;
  let smap = false;
  let efi = false;
  for (const line of lines) {
    if (isSkippable(line)) continue;
    const t = stripPrefix(line);
    if (E820_MARK.test(t)) return 'e820';
    if (FBSD_MARK.test(t) || FBSD_CHUNK.test(t) || FBSD_SUMMARY.test(t)) chunks = true;
    else if (SMAP_HEADER.test(t) || /^SMAP type=/.test(t)) smap = true;
    else if (EFI_HEADER.test(t)) efi = true;
  }
  return chunks ? 'freebsd-chunks' : smap ? 'freebsd-smap' : efi ? 'freebsd-efi' : null;
}

// ---------------------------------------------------------------------------------------
// Per-format assembly
// ---------------------------------------------------------------------------------------

type Parsed = Pick<MemMap, 'ram' | 'reserved' | 'affinity'>;

/**
 * Linux e820: RAM is the `usable` entries of one table, chosen in this order: the
 * user-defined map (memmap= on the command line; it is what the kernel used), the BIOS-e820
 * table, the extended `reserve setup_data` table (only when the log lacks the BIOS table: it
 * is the same map split at boot-loader blobs). `e820: update/remove` lines are ignored.
 * No kernel-image information: `reserved` is empty. Affinity: SRAT lines minus hotplug ones.
 */
function assembleE820(ctx: Ctx, scan: LogScan): Parsed {
  const order: TableKind[] = ['e820user', 'e820', 'e820ext'];
  const table = order.map((k) => scan.tables[k]).find((t) => t !== undefined && t.rows.length > 0);
  if (table === undefined) {
    const empty = order.map((k) => scan.tables[k]).find((t) => t !== undefined);
    fail(ctx, empty?.line, 'the e820 table has no entries');
  }
  const rows = table.rows.filter((r) => !r.skip);
  const ramRows = rows.filter((r) => r.ram);
  rejectConflicts(
    ctx,
    ramRows,
    rows.filter((r) => !r.ram),
    TABLE_LABEL[table.kind],
  );
  const ram = normalizeRam(ctx, ramRows, 'usable e820');
  if (ram.length === 0) fail(ctx, table.line, `the ${TABLE_LABEL[table.kind]} has no usable page of RAM`);
  return { ram, reserved: [], affinity: normalizeAffinity(ctx, scan.linuxSrat) };
}

/**
 * FreeBSD boot output. The chunk list (`N bytes (P pages)` rows) is phys_avail as printed by
 * cpu_startup(), i.e. after vm_page_startup() has taken the vm_page array and other boot-time
 * allocations out of it: exactly the pages that are free once the kernel is up.
 *
 * - Chunk list only (amd64): `ram` = the chunks, `reserved` = [] (the log does not say where the
 *   kernel's own pages are).
 * - With the physmem summary (arm64/riscv verbose boots): `ram` = the summary's hardware regions
 *   minus the NoAlloc excluded regions, which is phys_avail before the kernel's boot-time
 *   allocations, the memory vm_phys builds its segments from; `reserved` = `ram` minus the chunk
 *   list, the pages the kernel took (vm_page array, UMA boot pages, ...). Thus `ram` −
 *   `reserved` equals the chunk list, and every chunk must lie inside `ram`.
 * - Summary only: `ram` as above, `reserved` = [].
 * - Only `real memory`/`avail memory` totals (non-verbose boot): no ranges to build a map
 *   from, and inventing a layout from a byte count would be fiction, so this is an error.
 * Affinity: verbose `SRAT: Found memory domain` lines (enabled ones).
 */
function assembleFbsdChunks(ctx: Ctx, scan: LogScan): Parsed {
  const chunks = scan.tables.chunks?.rows ?? [];
  const summary = scan.tables.summary?.rows ?? [];
  if (chunks.length === 0 && summary.length === 0) {
    if (scan.emptyChunkHeader !== undefined) {
      fail(ctx, scan.emptyChunkHeader, "'Physical memory chunk(s):' is not followed by any chunk");
    }
    fail(
      ctx,
      scan.totalsLine,
      'FreeBSD boot output with only the real/avail memory totals and no address ranges; ' +
        'a verbose boot (boot -v) prints the "Physical memory chunk(s):" list, or use `sysctl machdep.smap`',
    );
  }
  const affinity = normalizeAffinity(ctx, scan.fbsdSrat);
  if (summary.length === 0) {
    const ram = normalizeRam(ctx, chunks, 'chunk');
    if (ram.length === 0) fail(ctx, scan.tables.chunks?.line, 'the chunk list holds no whole page');
    return { ram, reserved: [], affinity };
  }
  const hardware = normalizeRam(ctx, summary, 'physmem summary');
  const noAlloc = normalizeReserved(
    ctx,
    (scan.tables.excluded?.rows ?? []).filter((r) => r.noAlloc),
  );
  const ram = subtract(hardware, noAlloc);
  if (ram.length === 0) fail(ctx, scan.tables.summary?.line, 'the physmem summary holds no allocatable page');
  if (chunks.length === 0) return { ram, reserved: [], affinity };
  const avail = normalizeRam(ctx, chunks, 'chunk');
  for (const c of chunks) {
    const start = alignUp(toAddr(ctx, c.start, c.line), ctx.pageSize);
    const end = alignDown(toAddr(ctx, c.end, c.line), ctx.pageSize);
    if (start < end && !coveredBy(ram, start, end)) {
      fail(
        ctx,
        c.line,
        `chunk ${showSpan(c)} is not inside the physmem summary's allocatable memory (line ${scan.tables.summary?.line}); are these two boots?`,
      );
    }
  }
  // FreeBSD makes its vm_phys segments from phys_avail, i.e. this final chunk list: memory that
  // vm_page_startup took (the vm_page array) or the kernel holds lies outside every segment and
  // never gets a vm_page. So the chunk list is the RAM handed to the allocator; the summary was
  // only used to check it.
  return { ram: avail, reserved: [], affinity };
}

/** A one-table format (machdep.smap, EFI): RAM rows vs. the rest, no kernel information. */
function assembleSingleTable(ctx: Ctx, scan: LogScan, kind: 'smap' | 'efi'): Parsed {
  const table = scan.tables[kind];
  if (table === undefined || table.rows.length === 0) fail(ctx, table?.line, `the ${TABLE_LABEL[kind]} has no entries`);
  const ramRows = table.rows.filter((r) => r.ram);
  rejectConflicts(
    ctx,
    ramRows,
    table.rows.filter((r) => !r.ram),
    TABLE_LABEL[kind],
  );
  const ram = normalizeRam(ctx, ramRows, kind === 'smap' ? 'SMAP type 1' : 'EFI RAM');
  if (ram.length === 0) fail(ctx, table.line, `the ${TABLE_LABEL[kind]} has no usable page of RAM`);
  return { ram, reserved: [], affinity: normalizeAffinity(ctx, scan.fbsdSrat) };
}

/**
 * Names of iomem children of a top-level `System RAM` entry that the kernel holds at boot:
 * the kernel image (`Kernel code`, `Kernel text`, `Kernel rodata`, `Kernel data`,
 * `Kernel bss`), the kdump reservation (`Crash kernel`) and arm64's memblock reservations
 * (`reserved` children; a top-level `Reserved` is not RAM at all).
 */
const IOMEM_KERNEL_HELD = /^(?:Kernel (?:code|text|rodata|data|bss)|Crash kernel|reserved)$/i;

/**
 * Linux /proc/iomem: `[indent]first-last : name`, hex without 0x, ends inclusive, two spaces
 * per nesting level, children inside their parent. Every content line must have this shape.
 * RAM = top-level `System RAM`; reserved = kernel-held children of those (see above).
 * A dump read without root shows every address as 0: that is reported, not parsed.
 */
function parseIomem(ctx: Ctx, lines: string[]): Parsed {
  const stack: { start: bigint; end: bigint; line: number; ram: boolean }[] = [];
  const ram: Span[] = [];
  const other: Span[] = [];
  const held: Span[] = [];
  let nonZero = false;
  let entries = 0;
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    if (isSkippable(lines[i])) continue;
    const m = IOMEM_LINE.exec(lines[i]);
    if (m === null) fail(ctx, n, `not a /proc/iomem line: '${lines[i].trim()}'`);
    if (m[2].length > 16 || m[3].length > 16) fail(ctx, n, 'address wider than 64 bits');
    const depth = m[1].length / 2;
    if (!Number.isInteger(depth) || depth > stack.length) {
      fail(ctx, n, `bad indentation (${m[1].length} spaces after a line at depth ${stack.length - 1})`);
    }
    const span = inclusive(ctx, m[2], m[3], n);
    if (span.start !== 0n || span.end !== 1n) nonZero = true;
    entries++;
    stack.length = depth;
    const parent = stack[depth - 1];
    if (parent !== undefined && (span.start < parent.start || span.end > parent.end)) {
      fail(ctx, n, `${showSpan(span)} is not inside its parent ${showSpan(parent)} from line ${parent.line}`);
    }
    const name = (m[4] ?? '').trim();
    const isRam = depth === 0 && name === 'System RAM';
    if (depth === 0) (isRam ? ram : other).push(span);
    else if (stack[0].ram && IOMEM_KERNEL_HELD.test(name)) held.push(span);
    stack.push({ ...span, ram: isRam || (stack[0]?.ram ?? false) });
  }
  if (entries > 0 && !nonZero) {
    fail(ctx, firstContentLine(lines), 'every address is 0: /proc/iomem was read without root privileges');
  }
  rejectConflicts(ctx, ram, other, '/proc/iomem');
  const ramRanges = normalizeRam(ctx, ram, 'System RAM');
  if (ramRanges.length === 0) fail(ctx, firstContentLine(lines), "no top-level 'System RAM' line");
  return { ram: ramRanges, reserved: intersect(normalizeReserved(ctx, held), ramRanges), affinity: [] };
}

// ---------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------

type JNode =
  | { t: 'object'; line: number; fields: Map<string, JNode> }
  | { t: 'array'; line: number; items: JNode[] }
  | { t: 'string'; line: number; value: string }
  | { t: 'number'; line: number; text: string }
  | { t: 'literal'; line: number; value: boolean | null };

const JSON_MAX_DEPTH = 64;
const JSON_NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/**
 * Minimal RFC 8259 reader that remembers the line of every value, so that errors in the
 * map (not just in the syntax) can name their line. Nesting is capped at JSON_MAX_DEPTH.
 */
function readJson(ctx: Ctx, src: string): JNode {
  let pos = 0;
  let line = 1;
  const bad = (what: string): never => fail(ctx, line, `invalid JSON: ${what}`);
  const ws = (): void => {
    while (pos < src.length) {
      const c = src.charCodeAt(pos);
      if (c === 10) line++;
      else if (c !== 32 && c !== 9 && c !== 13) return;
      pos++;
    }
  };
  const str = (): string => {
    pos++; // opening quote
    let out = '';
    for (;;) {
      if (pos >= src.length) bad('unterminated string');
      const c = src[pos++];
      if (c === '"') return out;
      if (c < ' ') bad('control character in string');
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = src[pos++];
      const simple: Record<string, string> = {
        '"': '"',
        '\\': '\\',
        '/': '/',
        b: '\b',
        f: '\f',
        n: '\n',
        r: '\r',
        t: '\t',
      };
      if (e !== undefined && e in simple) out += simple[e];
      else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(src.slice(pos, pos + 4))) {
        out += String.fromCharCode(Number.parseInt(src.slice(pos, pos + 4), 16));
        pos += 4;
      } else bad('bad escape in string');
    }
  };
  const value = (depth: number): JNode => {
    if (depth > JSON_MAX_DEPTH) bad(`nested deeper than ${JSON_MAX_DEPTH} levels`);
    ws();
    const at = line;
    const c = src[pos];
    if (c === '{') {
      pos++;
      const fields = new Map<string, JNode>();
      ws();
      if (src[pos] === '}') {
        pos++;
        return { t: 'object', line: at, fields };
      }
      for (;;) {
        ws();
        if (src[pos] !== '"') bad('expected a quoted key');
        const keyLine = line;
        const key = str();
        if (fields.has(key)) fail(ctx, keyLine, `invalid JSON: duplicate key "${key}"`);
        ws();
        if (src[pos] !== ':') bad("expected ':'");
        pos++;
        fields.set(key, value(depth + 1));
        ws();
        if (src[pos] === ',') pos++;
        else if (src[pos] === '}') {
          pos++;
          return { t: 'object', line: at, fields };
        } else bad("expected ',' or '}'");
      }
    }
    if (c === '[') {
      pos++;
      const items: JNode[] = [];
      ws();
      if (src[pos] === ']') {
        pos++;
        return { t: 'array', line: at, items };
      }
      for (;;) {
        items.push(value(depth + 1));
        ws();
        if (src[pos] === ',') pos++;
        else if (src[pos] === ']') {
          pos++;
          return { t: 'array', line: at, items };
        } else bad("expected ',' or ']'");
      }
    }
    if (c === '"') return { t: 'string', line: at, value: str() };
    for (const [word, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (src.startsWith(word, pos)) {
        pos += word.length;
        return { t: 'literal', line: at, value: v };
      }
    }
    JSON_NUMBER.lastIndex = pos;
    const m = JSON_NUMBER.exec(src);
    if (m === null) return bad(pos >= src.length ? 'unexpected end of input' : `unexpected character '${c}'`);
    pos += m[0].length;
    return { t: 'number', line: at, text: m[0] };
  };
  const doc = value(0);
  ws();
  if (pos < src.length) bad('unexpected text after the JSON value');
  return doc;
}

/** A JSON address: a non-negative integer number or a "0x..." hex string (up to 64 bits). */
function jsonAddr(ctx: Ctx, node: JNode | undefined, what: string, line: number): bigint {
  if (node?.t === 'number' && /^\d+$/.test(node.text)) return BigInt(node.text);
  if (node?.t === 'string' && /^0[xX][0-9a-fA-F]{1,16}$/.test(node.value)) return BigInt(node.value);
  return fail(ctx, node?.line ?? line, `${what} must be a non-negative integer or a "0x..." hex string`);
}

/** A JSON range: [start, end] / [start, end, domain] or {"start", "end"[, "domain"]}; half-open. */
function jsonRange(ctx: Ctx, node: JNode, what: string, withDomain: boolean): AffSpan {
  let start: JNode | undefined;
  let end: JNode | undefined;
  let domain: JNode | undefined;
  const arity = withDomain ? 3 : 2;
  if (node.t === 'array' && node.items.length === arity) [start, end, domain] = node.items;
  else if (node.t === 'object') {
    start = node.fields.get('start');
    end = node.fields.get('end');
    domain = node.fields.get('domain');
  } else {
    const shape = withDomain
      ? '[start, end, domain] or {"start", "end", "domain"}'
      : '[start, end] or {"start", "end"}';
    fail(ctx, node.line, `${what} must be ${shape}`);
  }
  const s = jsonAddr(ctx, start, `${what} start`, node.line);
  const e = jsonAddr(ctx, end, `${what} end`, node.line);
  if (e < s) fail(ctx, node.line, `inverted ${what}: start ${hex(s)} is above end ${hex(e)}`);
  let d = 0;
  if (withDomain) {
    if (domain?.t !== 'number' || !/^\d{1,9}$/.test(domain.text)) {
      fail(ctx, domain?.line ?? node.line, `${what} domain must be a non-negative integer`);
    }
    d = Number(domain.text);
  }
  return { start: s, end: e, line: node.line, domain: d };
}

/**
 * JSON: `{ "ram": [...], "reserved": [...]?, "affinity": [...]? }`, ranges half-open, as
 * `[start, end]` or `{"start", "end"}` (affinity adds "domain"), numbers or "0x..." strings.
 * Other keys are ignored. RAM is normalised like every other format; reserved ranges must
 * lie inside RAM.
 */
function parseJsonMap(ctx: Ctx, text: string): Parsed {
  const doc = readJson(ctx, text.startsWith('\uFEFF') ? text.slice(1) : text);
  if (doc.t !== 'object') fail(ctx, doc.line, 'the JSON map must be an object with a "ram" array');
  const list = (key: string, required: boolean): JNode[] => {
    const v = doc.fields.get(key);
    if (v === undefined) {
      if (required) fail(ctx, doc.line, `the JSON map has no "${key}" array`);
      return [];
    }
    if (v.t !== 'array') fail(ctx, v.line, `"${key}" must be an array`);
    return v.items;
  };
  const ramSpans = list('ram', true).map((n) => jsonRange(ctx, n, 'ram range', false));
  const resSpans = list('reserved', false).map((n) => jsonRange(ctx, n, 'reserved range', false));
  const affSpans = list('affinity', false).map((n) => jsonRange(ctx, n, 'affinity range', true));
  const ram = normalizeRam(ctx, ramSpans, 'ram');
  if (ram.length === 0) fail(ctx, doc.fields.get('ram')?.line, '"ram" holds no whole page');
  // Reserved ranges must lie inside the RAM as given (before page alignment). normalizeRam
  // has rejected overlaps and addresses past 2^53 - 1, so the merged spans convert exactly.
  const raw: MemRange[] = [];
  for (const r of sortSpans(ramSpans)) {
    const last = raw[raw.length - 1];
    if (last !== undefined && Number(r.start) <= last.end) last.end = Math.max(last.end, Number(r.end));
    else raw.push({ start: Number(r.start), end: Number(r.end) });
  }
  for (const r of resSpans) {
    if (r.end > r.start && !coveredBy(raw, Number(r.start), Number(r.end))) {
      fail(ctx, r.line, `reserved range ${showSpan(r)} is not inside "ram"`);
    }
  }
  return {
    ram,
    reserved: intersect(normalizeReserved(ctx, resSpans), ram),
    affinity: normalizeAffinity(ctx, affSpans),
  };
}

// ---------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------

/** Internal self-check: a violated MemMap invariant is a bug here, not bad input. */
function assertInvariants(map: MemMap, pageSize: number): void {
  const check = (ok: boolean, what: string): void => {
    if (!ok) throw new Error(`vmphys memmap internal error: ${what}`);
  };
  const limit = Number.MAX_SAFE_INTEGER;
  const sorted = (rs: MemRange[], touching: boolean): boolean =>
    rs.every(
      (r, i) =>
        Number.isInteger(r.start) &&
        Number.isInteger(r.end) &&
        r.start >= 0 &&
        r.start < r.end &&
        r.end <= limit &&
        r.start % pageSize === 0 &&
        r.end % pageSize === 0 &&
        (i === 0 || (touching ? rs[i - 1].end <= r.start : rs[i - 1].end < r.start)),
    );
  check(map.ram.length > 0 && sorted(map.ram, false), 'ram not sorted/merged/aligned');
  check(sorted(map.reserved, false), 'reserved not sorted/merged/aligned');
  check(
    map.reserved.every((r) => coveredBy(map.ram, r.start, r.end)),
    'reserved outside ram',
  );
  check(
    map.affinity.every(
      (a, i) =>
        a.start < a.end &&
        a.end <= limit &&
        Number.isInteger(a.domain) &&
        (i === 0 || map.affinity[i - 1].end <= a.start),
    ),
    'affinity not sorted/disjoint',
  );
  const domains = new Set(map.affinity.map((a) => a.domain));
  check(
    [...domains].every((d) => d >= 0 && d < domains.size),
    'affinity domains not dense',
  );
}

/**
 * Parse a memory map. The format is detected from the text (see detectMapFormat).
 * Returns a MemMap satisfying its invariants or throws MemMapError (file and 1-based line).
 * Throws RangeError for a bad `pageSize` option (a caller bug, not an input problem).
 */
export function parseMemMap(text: string, opts: ParseMemMapOptions = {}): MemMap {
  const pageSize = opts.pageSize ?? 4096;
  if (!Number.isInteger(pageSize) || pageSize < 512 || pageSize > 2 ** 30 || (pageSize & (pageSize - 1)) !== 0) {
    throw new RangeError(`pageSize must be a power of two from 512 to 2^30, got ${pageSize}`);
  }
  const ctx: Ctx = { file: opts.file, pageSize };
  const lines = splitLines(text);
  const format = detectMapFormat(text);
  if (format === null) {
    const first = firstContentLine(lines);
    fail(
      ctx,
      first,
      first === undefined
        ? 'empty input: no memory map'
        : 'no recognisable memory map (expected /proc/iomem, a Linux e820 boot log, FreeBSD boot output, machdep.smap, an EFI map or JSON)',
    );
  }
  let parsed: Parsed;
  if (format === 'json') parsed = parseJsonMap(ctx, text);
  else if (format === 'iomem') parsed = parseIomem(ctx, lines);
  else {
    const scan = scanLog(ctx, lines);
    if (format === 'e820') parsed = assembleE820(ctx, scan);
    else if (format === 'freebsd-chunks') parsed = assembleFbsdChunks(ctx, scan);
    else parsed = assembleSingleTable(ctx, scan, format === 'freebsd-smap' ? 'smap' : 'efi');
  }
  const map: MemMap = { format, ...parsed };
  if (opts.file !== undefined) map.source = opts.file;
  assertInvariants(map, pageSize);
  return map;
}
