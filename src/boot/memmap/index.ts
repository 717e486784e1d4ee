// src/boot/memmap/index.ts: owns `parseMemMap`, the one entry to the memory-map parsers
// behind `vmphys boot --map FILE`. It turns a Linux /proc/iomem dump, a Linux boot log (e820
// table, SRAT), FreeBSD boot output (chunk list, physmem summary, machdep.smap, arm64 EFI
// table) or a JSON file into one normalised MemMap, picking the format's parser (one file per
// format in this folder). The parsers only read text; they never touch the allocator.
//
// Contract of parseMemMap: it either returns a MemMap that satisfies every invariant
// documented on MemMap, or it throws MemMapError naming the file and (where one exists)
// the 1-based line at fault, with an escaped, bounded excerpt of that line.

import { type Ctx, coveredBy, fail, firstContentLine, type Parsed, splitLines } from './common.js';
import { detectLines } from './detect.js';
import { assembleE820 } from './e820.js';
import { MemMapError } from './error.js';
import { assembleFbsdChunks, assembleSingleTable } from './freebsd.js';
import { parseIomem } from './iomem.js';
import { parseJsonMap } from './json.js';
import { scanLog } from './scan.js';
import type { MemMap, MemRange, ParseMemMapOptions } from './types.js';

export { detectMapFormat } from './detect.js';
export { MemMapError } from './error.js';
export type { AffinityRange, MapFormat, MemMap, MemRange, ParseMemMapOptions } from './types.js';

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

/** Check the arguments; every problem is a MemMapError for the whole input (no line). */
function checkArgs(text: unknown, opts: ParseMemMapOptions): number {
  const file: unknown = opts?.file;
  if (file !== undefined && typeof file !== 'string') {
    throw new MemMapError(`option file must be a string, got ${typeof file}`, undefined, undefined);
  }
  const pageSize: unknown = opts?.pageSize ?? 4096;
  if (
    typeof pageSize !== 'number' ||
    !Number.isInteger(pageSize) ||
    pageSize < 512 ||
    pageSize > 2 ** 30 ||
    (pageSize & (pageSize - 1)) !== 0
  ) {
    const shown = typeof pageSize === 'number' ? String(pageSize) : typeof pageSize;
    throw new MemMapError(`option pageSize must be a power of two from 512 to 2^30, got ${shown}`, file, undefined);
  }
  if (typeof text !== 'string') {
    throw new MemMapError(
      `the map must be text (a string), got ${text === null ? 'null' : typeof text}`,
      file,
      undefined,
    );
  }
  return pageSize;
}

/** Pick the format's parser. */
function parseAs(ctx: Ctx, text: string): MemMap {
  const format = detectLines(ctx.lines);
  if (format === null) {
    const first = firstContentLine(ctx.lines);
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
  else if (format === 'iomem') parsed = parseIomem(ctx, ctx.lines);
  else {
    const scan = scanLog(ctx, ctx.lines);
    if (format === 'e820') parsed = assembleE820(ctx, scan);
    else if (format === 'freebsd-chunks') parsed = assembleFbsdChunks(ctx, scan);
    else parsed = assembleSingleTable(ctx, scan, format === 'freebsd-smap' ? 'smap' : 'efi');
  }
  return { format, ...parsed };
}

/**
 * Parse a memory map. The format is detected from the text (see detectMapFormat).
 * Returns a MemMap satisfying its invariants or throws MemMapError (code 'EMEMMAP'; file,
 * 1-based line and an escaped excerpt of that line). Bad arguments (a `text` that is not a
 * string, a `pageSize` that is not a power of two from 512 to 2^30) are MemMapErrors too, and
 * so is any RangeError or TypeError the input provokes (e.g. a string too large to handle).
 */
export function parseMemMap(text: string, opts: ParseMemMapOptions = {}): MemMap {
  const pageSize = checkArgs(text, opts);
  let map: MemMap;
  try {
    map = parseAs({ file: opts.file, pageSize, lines: splitLines(text) }, text);
  } catch (e) {
    if (e instanceof MemMapError || !(e instanceof RangeError || e instanceof TypeError)) throw e;
    throw new MemMapError(`cannot parse the map: ${e.name}`, opts.file, undefined, undefined, undefined, { cause: e });
  }
  if (opts.file !== undefined) map.source = opts.file;
  assertInvariants(map, pageSize);
  return map;
}
