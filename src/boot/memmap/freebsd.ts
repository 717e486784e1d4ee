// src/boot/memmap/freebsd.ts: owns the FreeBSD formats: the boot-output chunk list and physmem
// summary (with excluded regions and SRAT domains), `sysctl machdep.smap`, and the arm64 EFI
// memory map; and how each becomes a MemMap. The shared scanner (scan.ts) walks the text with
// the rules exported here.

import {
  alignDown,
  alignUp,
  big,
  type Ctx,
  coveredBy,
  fail,
  inclusive,
  normalizeAffinity,
  normalizeRam,
  normalizeReserved,
  type Parsed,
  type Span,
  showSpan,
  subtract,
  tableRam,
  toAddr,
} from './common.js';
import { quote } from './error.js';
import type { LineRule, LogScan, Row, TableKind, TableRule } from './log.js';
import { row } from './log.js';

/** EFI page size, fixed by the UEFI spec whatever the kernel's page size. */
const EFI_PAGE = 4096n;

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
/** Rows of every FreeBSD `0x... - 0x...` table start so. */
export const FBSD_ROW_KEY = /^\s*0x/;
/** The header shared by the chunk list and the physmem summary; the first row decides. */
export const FBSD_CHUNK_HEADER = /^Physical memory chunk\(s\):\s*$/;

// `sysctl machdep.smap`: `SMAP type=01, xattr=01, base=<16 hex>, len=<16 hex>`, range
// [base, base+len). The verbose boot listing has the same fields without commas or xattr.
const SMAP_ROW =
  /^SMAP type=([0-9a-fA-F]{1,8}),? (?:xattr=([0-9a-fA-F]{1,8}),? )?base=([0-9a-fA-F]{1,16}),? len=([0-9a-fA-F]{1,16})\s*$/;
const SMAP_HEADER = /^machdep\.smap:\s*$/;

// FreeBSD arm64 EFI memory map (`%23s %012jx %012jx %08jx ` then attribute words):
// Type, Physical, Virtual, #Pages (hex count of 4 KiB pages), Attr. Range [phys, phys+pages*4K).
const EFI_HEADER = /^\s*Type +Physical +Virtual +#Pages +Attr\s*$/;
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

/** Which chunk-header table a row opens: the chunk list, the physmem summary, or neither. */
export const chunkHeaderKind = (text: string): TableKind | null =>
  FBSD_CHUNK.test(text) ? 'chunks' : FBSD_SUMMARY.test(text) ? 'summary' : null;

/** Detection marks: any of them makes the text FreeBSD chunk output, SMAP or EFI. */
export const isChunkMark = (t: string): boolean =>
  /^(?:Physical memory chunk\(s\):|(?:real|avail) memory\s*=)/.test(t) || chunkHeaderKind(t) !== null;
export const isSmapMark = (t: string): boolean => SMAP_HEADER.test(t) || /^SMAP type=/.test(t);
export const isEfiMark = (t: string): boolean => EFI_HEADER.test(t);

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

/**
 * A `0x<first> - 0x<last>, ...` row of shape `re`: groups 1-2 the range, 3 the byte or MB
 * count (`unit`), 4 the pages; `make` turns the checked span and match into the row.
 */
function rangeRow(re: RegExp, unit: 'bytes' | 'MB', make: (span: Span, m: RegExpExecArray) => Row): TableRule['parse'] {
  return (ctx, text, line) => {
    const m = re.exec(text);
    if (m === null) return null;
    const span = inclusive(ctx, m[1], m[2], line);
    const count = BigInt(m[3]);
    checkFbsdCounts(ctx, span, unit === 'bytes' ? count : undefined, unit === 'MB' ? count : undefined, BigInt(m[4]));
    return make(span, m);
  };
}

export const FBSD_TABLES: readonly TableRule[] = [
  {
    kind: 'chunks',
    label: 'FreeBSD chunk list',
    claim: FBSD_ROW_KEY,
    opens: (text) => FBSD_CHUNK.test(text),
    parse: rangeRow(FBSD_CHUNK, 'bytes', (span) => row(span, true)),
  },
  {
    kind: 'summary',
    label: 'FreeBSD physmem summary',
    claim: FBSD_ROW_KEY,
    opens: (text) => FBSD_SUMMARY.test(text),
    parse: rangeRow(FBSD_SUMMARY, 'MB', (span) => row(span, true)),
  },
  {
    kind: 'excluded',
    label: 'FreeBSD excluded-regions list',
    header: /^Excluded memory regions:\s*$/,
    claim: FBSD_ROW_KEY,
    parse: rangeRow(FBSD_EXCLUDED, 'MB', (span, m) => row(span, false, { noAlloc: m[5].includes('NoAlloc') })),
  },
  {
    kind: 'smap',
    label: 'machdep.smap table',
    header: SMAP_HEADER,
    claim: /^SMAP\b/,
    strong: /^SMAP type=/,
    parse(_ctx, text, line) {
      const m = SMAP_ROW.exec(text);
      if (m === null) return null;
      const start = big(m[3]);
      const end = start + big(m[4]);
      // Type 1 is usable RAM. An ACPI 3.0 extended attribute without the "enabled" bit (bit 0)
      // tells the OS to ignore the entry.
      const enabled = m[2] === undefined || (Number.parseInt(m[2], 16) & 1) === 1;
      return row({ start, end, line }, Number.parseInt(m[1], 16) === 1 && enabled);
    },
  },
  {
    kind: 'efi',
    label: 'EFI memory map table',
    header: EFI_HEADER,
    claim: /^\s*(?:[A-Za-z]\w*|<INVALID>) +[0-9a-fA-F]+ /,
    opens(text) {
      const m = EFI_ROW.exec(text);
      return m !== null && EFI_KNOWN_TYPES.has(m[1]);
    },
    parse(ctx, text, line) {
      const m = EFI_ROW.exec(text);
      if (m === null) return null;
      if (!EFI_KNOWN_TYPES.has(m[1])) fail(ctx, line, `unknown EFI memory type ${quote(m[1])}`);
      const start = big(m[2]);
      return row({ start, end: start + big(m[4]) * EFI_PAGE, line }, EFI_RAM_TYPES.has(m[1]));
    },
  },
];

/** Enabled FreeBSD SRAT domains, and the real/avail memory totals (which must be well formed). */
export const FBSD_LINES: readonly LineRule[] = [
  {
    key: FBSD_SRAT_KEY,
    take(ctx, scan, text, n) {
      const m = FBSD_SRAT.exec(text);
      if (m === null) fail(ctx, n, 'malformed SRAT line');
      const start = big(m[2]);
      if (m[4] !== 'disabled') scan.fbsdSrat.push({ start, end: start + big(m[3]), line: n, domain: Number(m[1]) });
    },
  },
  {
    key: FBSD_TOTAL_KEY,
    take(ctx, scan, text, n) {
      if (!FBSD_TOTAL.test(text)) fail(ctx, n, 'malformed memory total line');
      scan.totalsLine ??= n;
    },
  },
];

const label = (kind: TableKind): string => FBSD_TABLES.find((t) => t.kind === kind)?.label ?? kind;

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
export function assembleFbsdChunks(ctx: Ctx, scan: LogScan): Parsed {
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
export function assembleSingleTable(ctx: Ctx, scan: LogScan, kind: 'smap' | 'efi'): Parsed {
  const table = scan.tables[kind];
  if (table === undefined || table.rows.length === 0) fail(ctx, table?.line, `the ${label(kind)} has no entries`);
  const ram = tableRam(ctx, table.rows, label(kind), kind === 'smap' ? 'SMAP type 1' : 'EFI RAM', table.line);
  return { ram, reserved: [], affinity: normalizeAffinity(ctx, scan.fbsdSrat) };
}
