// src/boot/memmap/iomem.ts: owns the Linux /proc/iomem format: its line shape (also used by
// format detection) and how a dump becomes a MemMap (top-level System RAM, kernel-held
// children as reserved).

import {
  type Ctx,
  fail,
  firstContentLine,
  inclusive,
  intersect,
  isSkippable,
  normalizeRam,
  normalizeReserved,
  type Parsed,
  rejectConflicts,
  type Span,
  showSpan,
} from './common.js';

/** `[indent]first-last : name`; detection calls a text iomem when its first content line matches. */
export const IOMEM_LINE = /^( *)([0-9a-fA-F]+)-([0-9a-fA-F]+) :(?: (.*))?$/;

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
export function parseIomem(ctx: Ctx, lines: readonly string[]): Parsed {
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
    if (m === null) fail(ctx, n, 'not a /proc/iomem line');
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
