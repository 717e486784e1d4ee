// src/boot/memmap/common.ts: owns the plumbing every map format shares: the parse context and
// its one way to fail, spans as read from the input, line splitting, and the range algebra that
// turns spans into a MemMap's sorted, merged, page-aligned lists. Format parsers call these;
// they keep no state of their own.

import { MemMapError } from './error.js';
import type { AffinityRange, MemMap, MemRange } from './types.js';

/** Largest address a MemMap may hold: Number.MAX_SAFE_INTEGER (2^53 - 1). */
const ADDR_LIMIT = BigInt(Number.MAX_SAFE_INTEGER);

/** One parse: the caller's file name, the page size, and the input's lines (for excerpts). */
export interface Ctx {
  file: string | undefined;
  pageSize: number;
  /** The input split by splitLines: line n is lines[n - 1]. */
  lines: readonly string[];
}

/** What a format parser returns; parseMemMap adds the format and source. */
export type Parsed = Pick<MemMap, 'ram' | 'reserved' | 'affinity'>;

/**
 * Throw MemMapError for 1-based `line` (undefined: the whole input). `problem` must not carry
 * raw input text (quote() it); the error adds an escaped excerpt of the line itself, centred
 * on `column` (a UTF-16 index into the line) when given.
 */
export function fail(ctx: Ctx, line: number | undefined, problem: string, column?: number): never {
  const text = line === undefined ? undefined : ctx.lines[line - 1];
  throw new MemMapError(problem, ctx.file, line, text, text === undefined ? undefined : column);
}

/** A half-open range as read from the input, with the line it came from. */
export interface Span {
  start: bigint;
  end: bigint;
  line: number;
}

export interface AffSpan extends Span {
  domain: number;
}

export const hex = (v: bigint): string => `0x${v.toString(16)}`;
export const showSpan = (s: { start: bigint; end: bigint }): string => `[${hex(s.start)}, ${hex(s.end)})`;

/** Text without a leading byte-order mark. */
export const stripBom = (text: string): string => (text.startsWith('\uFEFF') ? text.slice(1) : text);

/** Split into lines (LF or CRLF), dropping a leading byte-order mark. Line i is number i+1. */
export function splitLines(text: string): string[] {
  return stripBom(text)
    .split('\n')
    .map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/** Blank lines and `#` comment lines are ignored by every text format. */
export const isSkippable = (line: string): boolean => {
  const t = line.trim();
  return t === '' || t.startsWith('#');
};

/** First line that is neither blank nor a `#` comment (1-based), or undefined. */
export function firstContentLine(lines: readonly string[]): number | undefined {
  const i = lines.findIndex((l) => !isSkippable(l));
  return i < 0 ? undefined : i + 1;
}

/** Parse 1..16 hex digits (the regexes guarantee the shape). */
export const big = (digits: string): bigint => BigInt(`0x${digits}`);

/** Inclusive [first, last] in hex → half-open span; an inverted range is an error. */
export function inclusive(ctx: Ctx, first: string, last: string, line: number): Span {
  const start = big(first);
  const end = big(last) + 1n;
  if (end <= start) fail(ctx, line, `inverted range: start 0x${first} is above end 0x${last}`);
  return { start, end, line };
}

/** bigint address → number; addresses past 2^53 - 1 are not safe integers and are rejected. */
export function toAddr(ctx: Ctx, v: bigint, line: number): number {
  if (v > ADDR_LIMIT) fail(ctx, line, `address ${hex(v)} is beyond 2^53 - 1, the largest address vmphys can represent`);
  return Number(v);
}

export const alignDown = (v: number, p: number): number => Math.floor(v / p) * p;
export const alignUp = (v: number, p: number): number => Math.ceil(v / p) * p;

/** Spans by start, ties by input line; a sorted copy. */
export function sortSpans<T extends Span>(spans: T[]): T[] {
  return [...spans].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.line - b.line));
}

/** The non-empty spans, sorted. */
const nonEmptySorted = <T extends Span>(spans: T[]): T[] => sortSpans(spans.filter((x) => x.end > x.start));

/** Of two conflicting spans, the one read first and the one read later. */
const byLine = <T extends Span>(a: T, b: T): [T, T] => (b.line > a.line ? [a, b] : [b, a]);

/**
 * RAM spans → MemRange[]: sort, reject overlaps (two RAM ranges claiming the same bytes are
 * a conflict, the map is ambiguous), merge touching spans (before alignment, so byte-granular
 * splits such as Linux's setup_data pieces rejoin), then shrink each range to whole pages.
 */
export function normalizeRam(ctx: Ctx, spans: Span[], what: string): MemRange[] {
  const merged: Span[] = [];
  for (const s of nonEmptySorted(spans)) {
    const last = merged[merged.length - 1];
    if (last !== undefined && s.start < last.end) {
      const [early, late] = byLine(last, s);
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
export function normalizeReserved(ctx: Ctx, spans: Span[]): MemRange[] {
  const out: MemRange[] = [];
  for (const s of nonEmptySorted(spans)) {
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
export function rejectConflicts(ctx: Ctx, ram: Span[], other: Span[], what: string): void {
  const o = nonEmptySorted(other);
  let j = 0;
  for (const r of nonEmptySorted(ram)) {
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

/**
 * RAM rows against the other rows of one table: conflicts rejected (rejectConflicts), then the
 * RAM normalised (normalizeRam); an empty result is an error at the table's `line`.
 */
export function tableRam(
  ctx: Ctx,
  rows: ReadonlyArray<Span & { ram: boolean }>,
  label: string,
  what: string,
  line: number,
): MemRange[] {
  const ramRows = rows.filter((r) => r.ram);
  rejectConflicts(
    ctx,
    ramRows,
    rows.filter((r) => !r.ram),
    label,
  );
  const ram = normalizeRam(ctx, ramRows, what);
  if (ram.length === 0) fail(ctx, line, `the ${label} has no usable page of RAM`);
  return ram;
}

/** a ∖ b for sorted, disjoint, merged range lists. */
export function subtract(a: MemRange[], b: MemRange[]): MemRange[] {
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
export function intersect(a: MemRange[], b: MemRange[]): MemRange[] {
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
export function coveredBy(ranges: readonly MemRange[], start: number, end: number): boolean {
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
export function normalizeAffinity(ctx: Ctx, spans: AffSpan[]): AffinityRange[] {
  const merged: AffSpan[] = [];
  for (const s of nonEmptySorted(spans)) {
    const last = merged[merged.length - 1];
    if (last !== undefined && s.start <= last.end) {
      if (s.domain === last.domain) {
        if (s.end > last.end) last.end = s.end;
        continue;
      }
      if (s.start < last.end) {
        const [early, late] = byLine(last, s);
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
