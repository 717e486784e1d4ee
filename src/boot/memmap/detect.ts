// src/boot/memmap/detect.ts: owns format detection: which parser a text goes to. It only
// looks at marker lines each format exports; it never throws.

import { firstContentLine, isSkippable, splitLines } from './common.js';
import { E820_MARK } from './e820.js';
import { isChunkMark, isEfiMark, isSmapMark } from './freebsd.js';
import { IOMEM_LINE } from './iomem.js';
import { stripPrefix } from './log.js';
import type { MapFormat } from './types.js';

/**
 * Guess the format of a memory map from its text; null when nothing is recognised.
 * JSON if the text starts with `{` or `[`; iomem if the first content line is an iomem line;
 * otherwise the boot-log format with the highest precedence that has a marker line:
 * e820 > freebsd-chunks (chunk header, physmem rows, or just the real/avail totals) >
 * freebsd-smap > freebsd-efi. Never throws.
 */
export function detectMapFormat(text: string): MapFormat | null {
  return detectLines(splitLines(text));
}

/** detectMapFormat on text already split by splitLines. */
export function detectLines(lines: readonly string[]): MapFormat | null {
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
    if (isChunkMark(t)) chunks = true;
    else if (isSmapMark(t)) smap = true;
    else if (isEfiMark(t)) efi = true;
  }
  return chunks ? 'freebsd-chunks' : smap ? 'freebsd-smap' : efi ? 'freebsd-efi' : null;
}
