// src/boot/memmap/log.ts: owns the vocabulary of kernel boot logs shared by the e820 (Linux)
// and FreeBSD formats: the log-line prefixes stripped before matching, the table/row/scan
// shapes the scanner fills, and the rule records by which each format tells the scanner what
// its tables and standalone lines look like. No parsing happens here.

import type { AffSpan, Ctx, Span } from './common.js';

/**
 * Prefixes a kernel log line may carry, stripped before matching: a raw `<6>` priority, a
 * syslog/journal prefix (`Aug 29 16:48:39 host kernel: `, `Mar  1 host kernel: `, ISO-8601
 * journal timestamps, or a bare `kernel: `), and a dmesg timestamp (`[    0.000000] ` or
 * `dmesg -T`'s `[Tue Aug 29 16:48:39 2023] `). Indentation after the prefix is kept: some
 * FreeBSD shapes differ only by it.
 */
const LOG_PREFIX =
  /^(?:<\d{1,3}>)?(?:(?:[A-Z][a-z]{2} {1,2}\d{1,2} (?:\d\d:\d\d:\d\d(?:\.\d+)? )?|\d{4}-\d\d-\d\dT[\d:.,+-]+Z? )\S+ kernel(?:\[\d+\])?: |kernel: )?(?:<\d{1,3}>)?(?:\[ *\d+\.\d+\] ?|\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\] ?)?/;

export const stripPrefix = (line: string): string => line.replace(LOG_PREFIX, '');

/** Tables (runs of rows, usually after a header). At most one of each kind per file. */
export type TableKind = 'e820' | 'e820ext' | 'e820user' | 'chunks' | 'summary' | 'excluded' | 'smap' | 'efi';

/** A parsed table row. `ram` marks usable RAM; `skip` marks rows that carry no range (gaps). */
export interface Row extends Span {
  ram: boolean;
  skip: boolean;
  /** FreeBSD excluded regions: the NoAlloc flag. */
  noAlloc: boolean;
}

export interface Table {
  kind: TableKind;
  /** Header line, or first row line for a table without header. */
  line: number;
  rows: Row[];
}

export interface LogScan {
  tables: Partial<Record<TableKind, Table>>;
  /** A `Physical memory chunk(s):` header whose first row never came. */
  emptyChunkHeader?: number;
  linuxSrat: AffSpan[];
  fbsdSrat: AffSpan[];
  /** First `real memory` / `avail memory` line. */
  totalsLine?: number;
}

export const row = (span: Span, ram: boolean, extra: Partial<Row> = {}): Row => ({
  ...span,
  ram,
  skip: false,
  noAlloc: false,
  ...extra,
});

/** What the scanner needs to know of one table kind. */
export interface TableRule {
  kind: TableKind;
  /** Name used in messages ("BIOS-e820 table"). */
  label: string;
  /** The header line that opens the table, if it has one of its own. */
  header?: RegExp;
  /** Lines the open table takes: each must parse as a row, or it is garbage inside the table. */
  claim: RegExp;
  /** A key that marks a row even outside the table; such a row must parse. */
  strong?: RegExp;
  /** A row in its full shape that opens the table without a header. */
  opens?: (text: string) => boolean;
  /** Parse one row; null when the text does not have the row's shape. */
  parse(ctx: Ctx, text: string, line: number): Row | null;
}

/** A standalone line kind (SRAT, totals): `key` marks it; `take` must then accept it or fail. */
export interface LineRule {
  key: RegExp;
  take(ctx: Ctx, scan: LogScan, text: string, line: number): void;
}
