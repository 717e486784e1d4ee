// src/boot/ramspec.ts: owns RAM-size parsing (`128M`, `64G`, ...) and the synthetic memory
// maps vmphys boots without a --map file: a Firecracker-shaped guest of a given size and a
// sparse 1 TiB layout. The maps have the same invariants as parseMemMap's output.

import { SizeError } from '../core/errors.js';
import type { MemMap, MemRange } from './memmap.js';

const KiB = 2 ** 10;
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const TiB = 2 ** 40;

const UNIT: Record<string, bigint> = { '': 1n, k: 2n ** 10n, m: 2n ** 20n, g: 2n ** 30n, t: 2n ** 40n, p: 2n ** 50n };

/**
 * Parse a byte size: a whole number with an optional binary unit K, M, G, T or P (powers of
 * 1024), case-insensitive, optionally followed by `B` or `iB`; surrounding blanks are allowed.
 * '4096' → 4096, '512K' → 524288, '128M', '1G', '64GiB', '1T'.
 * Throws SizeError naming the text when it is malformed or the value is not a safe integer.
 */
export function parseSize(text: string): number {
  const m = /^\s*(\d+)\s*(?:([kmgtp])(?:i?b)?|b)?\s*$/i.exec(String(text));
  if (m === null) {
    throw new SizeError(
      `invalid size '${text}': expected a whole number of bytes with an optional binary unit K, M, G, T or P (e.g. 128M, 64G)`,
    );
  }
  const bytes = BigInt(m[1]) * UNIT[(m[2] ?? '').toLowerCase()];
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new SizeError(`size '${text}' is too large (over 2^53 - 1 bytes)`);
  return Number(bytes);
}

/** Firecracker's x86_64 32-bit MMIO gap [3 GiB, 4 GiB): guest RAM past 3 GiB is placed at 4 GiB. */
const MMIO32_START = 3 * GiB;
const FIRST_ADDR_PAST_32BITS = 4 * GiB;
/** Firecracker's e820 low entry is [0, 0x9fc00) (the EBDA starts at 0x9fc00). */
const EBDA_START = 0x9fc00;
/** Linux reserves page 0, so /proc/iomem's first System RAM line starts at 0x1000. */
const LOW_RAM_START = 0x1000;
/** Largest guest handled: keeps every address far below 2^53. */
const MAX_GUEST = 2 ** 52;

/**
 * The RAM a Linux guest of Firecracker with `ramBytes` of memory sees (x86_64 layout).
 * Firecracker maps guest memory at [0, ramBytes), except that the part above 3 GiB moves
 * to 4 GiB to leave the 32-bit MMIO gap; its e820 reports [0, 0x9fc00), [1 MiB, min(ramBytes,
 * 3 GiB)) and, for guests over 3 GiB, [4 GiB, 4 GiB + ramBytes − 3 GiB) as usable. Page 0
 * is reserved by the guest kernel and 0x9fc00 is not page aligned, so the low range is
 * [0x1000, 0x9f000). This matches parseMemMap on the guest's /proc/iomem exactly.
 * ramBytes must be a multiple of 4 KiB above 1 MiB (SizeError otherwise).
 * format 'json' (synthetic), no kernel image (reserved []), no NUMA (affinity []).
 */
export function firecrackerMap(ramBytes: number): MemMap {
  if (!Number.isSafeInteger(ramBytes) || ramBytes <= MiB || ramBytes % (4 * KiB) !== 0 || ramBytes > MAX_GUEST) {
    throw new SizeError(
      `Firecracker guest RAM must be a multiple of 4 KiB above 1 MiB and at most 2^52 bytes, got ${ramBytes}`,
    );
  }
  const ram: MemRange[] = [
    { start: LOW_RAM_START, end: Math.floor(EBDA_START / 4096) * 4096 },
    { start: MiB, end: Math.min(ramBytes, MMIO32_START) },
  ];
  if (ramBytes > MMIO32_START) {
    ram.push({ start: FIRST_ADDR_PAST_32BITS, end: FIRST_ADDR_PAST_32BITS + (ramBytes - MMIO32_START) });
  }
  return { format: 'json', ram, reserved: [], affinity: [] };
}

/**
 * Banks of the sparse map: [start, size]. Eight banks, 1 TiB together, spread over a 2^46-byte
 * (64 TiB) physical address space with holes of 1 to 18 TiB between them. Sizes are not all
 * powers of two and some starts are only 2 MiB, 512 MiB or 4 KiB aligned, so the banks do not
 * line up with large buddy orders.
 */
const SPARSE_BANKS: ReadonlyArray<readonly [number, number]> = [
  [4 * GiB, 64 * GiB], // just above the 32-bit MMIO gap
  [1 * TiB + 2 * MiB, 192 * GiB],
  [5 * TiB, 96 * GiB],
  [13 * TiB + 4 * KiB, 160 * GiB],
  [24 * TiB, 128 * GiB],
  [31 * TiB + 512 * MiB, 32 * GiB],
  [40 * TiB, 224 * GiB],
  [63 * TiB, 128 * GiB], // ends at 63 TiB + 128 GiB, below 2^46
];

/**
 * A sparse map for large-machine tests: Firecracker's low RAM ([0x1000, 0x9f000) and
 * [1 MiB, 3 GiB)) plus the eight SPARSE_BANKS (exactly 1 TiB) up to 2^46. Total RAM is
 * 1 TiB + 3 GiB − 1 MiB + 0x9e000 bytes. format 'json', reserved [], affinity [].
 */
export function sparseTerabyteMap(): MemMap {
  const ram: MemRange[] = [
    { start: LOW_RAM_START, end: Math.floor(EBDA_START / 4096) * 4096 },
    { start: MiB, end: MMIO32_START },
    ...SPARSE_BANKS.map(([start, size]) => ({ start, end: start + size })),
  ];
  return { format: 'json', ram, reserved: [], affinity: [] };
}
