// src/boot/memmap/e820.ts: owns the Linux boot-log format: the e820 tables (BIOS, extended
// `reserve setup_data`, user-defined), Linux SRAT memory-affinity lines, and how they become a
// MemMap. The shared scanner (scan.ts) walks the log with the rules exported here.

import { big, type Ctx, fail, inclusive, normalizeAffinity, type Parsed, tableRam } from './common.js';
import type { LineRule, LogScan, Row, TableKind, TableRule } from './log.js';
import { row } from './log.js';

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

/** A line that only an e820 log has (detection: e820 wins over every other log format). */
export const E820_MARK =
  /^(?:(?:e820: )?BIOS-provided physical RAM map:|extended physical RAM map:|user-defined physical RAM map:|\s*BIOS-e820:|\s*reserve setup_data:|\s*user: \[mem )/;

/** One row of the e820 table whose entries start with `key`. */
function parseE820Row(ctx: Ctx, key: string, text: string, line: number): Row | null {
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

/** The three e820 tables; a row's key names its table and opens it even without the header. */
export const E820_TABLES: readonly TableRule[] = [
  {
    kind: 'e820',
    label: 'BIOS-e820 table',
    header: /^(?:e820: )?BIOS-provided physical RAM map:\s*$/,
    claim: /^\s*BIOS-e820:/,
    strong: /^\s*BIOS-e820:/,
    parse: (ctx, text, line) => parseE820Row(ctx, 'BIOS-e820', text, line),
  },
  {
    kind: 'e820ext',
    label: 'extended (reserve setup_data) e820 table',
    header: /^extended physical RAM map:\s*$/,
    claim: /^\s*reserve setup_data:/,
    strong: /^\s*reserve setup_data:/,
    parse: (ctx, text, line) => parseE820Row(ctx, 'reserve setup_data', text, line),
  },
  {
    kind: 'e820user',
    label: 'user-defined e820 table',
    header: /^user-defined physical RAM map:\s*$/,
    claim: /^\s*user:/,
    strong: /^\s*user: (?:\[mem |[0-9a-fA-F]{16} - )/,
    parse: (ctx, text, line) => parseE820Row(ctx, 'user', text, line),
  },
];

/** Linux SRAT lines; hot-pluggable ranges are skipped (memory that may arrive later). */
export const E820_LINES: readonly LineRule[] = [
  {
    key: LINUX_SRAT_KEY,
    take(ctx, scan, text, n) {
      const m = LINUX_SRAT.exec(text);
      if (m === null) fail(ctx, n, 'malformed SRAT line');
      const span = inclusive(ctx, m[3], m[4], n);
      if (!m[5].includes('hotplug')) scan.linuxSrat.push({ ...span, domain: Number(m[1]) });
    },
  },
];

const label = (kind: TableKind): string => E820_TABLES.find((t) => t.kind === kind)?.label ?? kind;

/**
 * Linux e820: RAM is the `usable` entries of one table, chosen in this order: the
 * user-defined map (memmap= on the command line; it is what the kernel used), the BIOS-e820
 * table, the extended `reserve setup_data` table (only when the log lacks the BIOS table: it
 * is the same map split at boot-loader blobs). `e820: update/remove` lines are ignored.
 * No kernel-image information: `reserved` is empty. Affinity: SRAT lines minus hotplug ones.
 */
export function assembleE820(ctx: Ctx, scan: LogScan): Parsed {
  const order: TableKind[] = ['e820user', 'e820', 'e820ext'];
  const table = order.map((k) => scan.tables[k]).find((t) => t !== undefined && t.rows.length > 0);
  if (table === undefined) {
    const empty = order.map((k) => scan.tables[k]).find((t) => t !== undefined);
    fail(ctx, empty?.line, 'the e820 table has no entries');
  }
  const rows = table.rows.filter((r) => !r.skip);
  const ram = tableRam(ctx, rows, label(table.kind), 'usable e820', table.line);
  return { ram, reserved: [], affinity: normalizeAffinity(ctx, scan.linuxSrat) };
}
