// src/boot/memmap/scan.ts: owns the one pass over a kernel boot log that collects its tables
// and standalone lines (e820, FreeBSD chunk lists, SMAP, EFI, SRAT, totals). The formats say
// what their lines look like through the rules in e820.ts and freebsd.ts; this file only
// enforces how tables open, hold rows and close.

import { type Ctx, fail, isSkippable } from './common.js';
import { E820_LINES, E820_TABLES } from './e820.js';
import { chunkHeaderKind, FBSD_CHUNK_HEADER, FBSD_LINES, FBSD_ROW_KEY, FBSD_TABLES } from './freebsd.js';
import { type LogScan, stripPrefix, type Table, type TableKind, type TableRule } from './log.js';

const TABLES: readonly TableRule[] = [...E820_TABLES, ...FBSD_TABLES];
const LINES = [...E820_LINES, ...FBSD_LINES];
const RULE = Object.fromEntries(TABLES.map((t) => [t.kind, t])) as Record<TableKind, TableRule>;
/** Tables a row opens without a header: strongly keyed ones first, then full-shape rows. */
const STRONG = TABLES.filter((t) => t.strong !== undefined);
const WEAK = TABLES.filter((t) => t.opens !== undefined);

/** The chunk header's table until its first row says which: chunk list or physmem summary. */
type Open = TableKind | 'pending';

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
export function scanLog(ctx: Ctx, lines: readonly string[]): LogScan {
  const scan: LogScan = { tables: {}, linuxSrat: [], fbsdSrat: [] };
  let open: { kind: Open; line: number } | null = null;
  /** For each closed table: the line that closed it and whether that line was a header. */
  const closed: Partial<Record<Open, { by: number; header: boolean }>> = {};

  const close = (by: number, header: boolean): void => {
    if (open === null) return;
    if (open.kind === 'pending') scan.emptyChunkHeader ??= open.line;
    closed[open.kind] = { by, header };
    open = null;
  };

  const startTable = (kind: TableKind, line: number): Table => {
    const prev = scan.tables[kind];
    if (prev !== undefined) {
      fail(ctx, line, `a second ${RULE[kind].label} (the first starts at line ${prev.line}); keep one boot per file`);
    }
    const t: Table = { kind, line, rows: [] };
    scan.tables[kind] = t;
    open = { kind, line };
    return t;
  };

  /** Parse a row the table claims; a line that does not parse is malformed. */
  const mustParse = (kind: TableKind, text: string, line: number) =>
    RULE[kind].parse(ctx, text, line) ?? fail(ctx, line, `malformed ${RULE[kind].label} row`);

  /** A row for a table that is not open: either it starts a header-less table or it is stray. */
  const orphan = (kind: TableKind, text: string, line: number): void => {
    const viaHeader = kind === 'chunks' || kind === 'summary' ? closed.pending : undefined;
    const prevClose = closed[kind] ?? viaHeader;
    const prev = scan.tables[kind];
    if (prevClose !== undefined) {
      const where = prev !== undefined ? `the ${RULE[kind].label} that starts at line ${prev.line}` : 'the table';
      if (!prevClose.header) fail(ctx, prevClose.by, `line does not belong inside ${where}`);
      fail(ctx, line, `row outside ${where}, which ended at line ${prevClose.by}`);
    }
    const r = mustParse(kind, text, line);
    startTable(kind, line).rows.push(r);
  };

  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    if (isSkippable(lines[i])) continue;
    const text = stripPrefix(lines[i]);
    if (text.trim() === '') continue;

    // Headers.
    const header: Open | undefined = FBSD_CHUNK_HEADER.test(text)
      ? 'pending'
      : TABLES.find((t) => t.header?.test(text))?.kind;
    if (header !== undefined) {
      close(n, true);
      if (header === 'pending') open = { kind: 'pending', line: n };
      else startTable(header, n);
      continue;
    }

    // Rows of the open table.
    if (open !== null) {
      const cur: { kind: Open; line: number } = open;
      if (cur.kind === 'pending') {
        if (FBSD_ROW_KEY.test(text)) {
          const kind = chunkHeaderKind(text);
          if (kind === null) fail(ctx, n, `malformed row after 'Physical memory chunk(s):' (line ${cur.line})`);
          const r = mustParse(kind, text, n);
          startTable(kind, cur.line).rows.push(r);
          continue;
        }
      } else if (RULE[cur.kind].claim.test(text)) {
        const r = mustParse(cur.kind, text, n);
        scan.tables[cur.kind]?.rows.push(r);
        continue;
      }
      close(n, false);
    }

    // Rows outside any open table.
    const opener = STRONG.find((t) => t.strong?.test(text)) ?? WEAK.find((t) => t.opens?.(text));
    if (opener !== undefined) {
      orphan(opener.kind, text, n);
      continue;
    }

    // Standalone lines; anything else is ordinary log text.
    LINES.find((l) => l.key.test(text))?.take(ctx, scan, text, n);
  }
  close(lines.length + 1, false);
  return scan;
}
