// test/memmap-support.ts: shared helpers of the memory-map tests (memmap*.test.ts): the
// sample table, an independent MemMap invariant check, and the MemMapError expectation. It
// locates no data: each test file finds its samples itself.

import assert from 'node:assert/strict';
import { type MapFormat, type MemMap, MemMapError, parseMemMap } from '../src/boot/memmap.js';
import { VmPhysError } from '../src/core/errors.js';

export const KiB = 2 ** 10;
export const MiB = 2 ** 20;
export const GiB = 2 ** 30;
export const TiB = 2 ** 40;

/** Every sample and the format it must parse as; 'totals-only' must fail with MemMapError. */
export const EXPECTED: Record<string, MapFormat | 'totals-only'> = {
  'firecracker-24g.iomem.txt': 'iomem',
  'firecracker-128g.iomem.txt': 'iomem',
  'real/freebsd-amd64-pfsense-thinkcentre-32g.txt': 'freebsd-chunks',
  'real/freebsd-amd64-smap-sysctl-12g.txt': 'freebsd-smap',
  'real/freebsd-arm64-ampere-altra-2s-1t.txt': 'totals-only',
  'real/freebsd-arm64-lx2160a-honeycomb-64g.txt': 'freebsd-chunks',
  'real/freebsd-riscv64-bl808-m1s-64m.txt': 'freebsd-chunks',
  'real/linux-e820-alienware15r2-laptop-32g.txt': 'e820',
  'real/linux-e820-dell-r7625-2s-epyc-32node.txt': 'e820',
  'real/linux-e820-qemu-i440fx-768m-journal.txt': 'e820',
  'real/linux-e820-supermicro-c7z170-desktop-32g.txt': 'e820',
  'real/linux-e820-supermicro-x11dai-2s-xeon-192g.txt': 'e820',
};

/** Machine size named by the sample: `# machine:` line (first N MB/GB/TB), else `-24g` in the name. */
export function machineBytes(name: string, text: string): number {
  const unit: Record<string, number> = { M: MiB, G: GiB, T: TiB };
  const machine = /^# machine:.*$/m.exec(text)?.[0];
  const m = machine !== undefined ? /(\d+(?:\.\d+)?) ?([MGT])B\b/.exec(machine) : /-(\d+)([mgt])\./i.exec(name);
  assert.ok(m, `no machine size for ${name}`);
  return Number(m[1]) * unit[m[2].toUpperCase()];
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------
export const FORMATS: readonly MapFormat[] = ['iomem', 'e820', 'freebsd-chunks', 'freebsd-smap', 'freebsd-efi', 'json'];
export type Pair = [number, number];
export const pairs = (rs: readonly { start: number; end: number }[]): Pair[] => rs.map((r) => [r.start, r.end]);
export const total = (rs: readonly { start: number; end: number }[]): number =>
  rs.reduce((a, r) => a + r.end - r.start, 0);

/** Independent check of every MemMap invariant. */
export function assertValidMap(map: MemMap, pageSize = 4096): void {
  assert.ok(FORMATS.includes(map.format), `bad format ${map.format}`);
  assert.ok(map.ram.length > 0, 'ram is empty');
  const checkList = (rs: readonly { start: number; end: number }[], what: string): void => {
    rs.forEach((r, i) => {
      assert.ok(Number.isSafeInteger(r.start) && Number.isSafeInteger(r.end), `${what}[${i}] not integers`);
      assert.ok(r.start >= 0 && r.start < r.end, `${what}[${i}] empty or negative`);
      assert.equal(r.start % pageSize, 0, `${what}[${i}].start not aligned`);
      assert.equal(r.end % pageSize, 0, `${what}[${i}].end not aligned`);
      if (i > 0) assert.ok(rs[i - 1].end < r.start, `${what}[${i}] not sorted, disjoint and merged`);
    });
  };
  checkList(map.ram, 'ram');
  checkList(map.reserved, 'reserved');
  for (const r of map.reserved) {
    assert.ok(
      map.ram.some((x) => x.start <= r.start && r.end <= x.end),
      `reserved [${r.start}, ${r.end}) not inside ram`,
    );
  }
  map.affinity.forEach((a, i) => {
    assert.ok(Number.isSafeInteger(a.start) && Number.isSafeInteger(a.end) && a.start < a.end, `affinity[${i}] bad`);
    if (i > 0) assert.ok(map.affinity[i - 1].end <= a.start, `affinity[${i}] not sorted/disjoint`);
  });
  const domains = [...new Set(map.affinity.map((a) => a.domain))].sort((a, b) => a - b);
  assert.deepEqual(
    domains,
    domains.map((_, i) => i),
    'affinity domains not dense from 0',
  );
}

/** Run fn, expect MemMapError at `line` (undefined = no line) whose message matches `re`. */
export function expectMapError(fn: () => unknown, line: number | undefined, re: RegExp, file = 'bad.txt'): MemMapError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof MemMapError, `expected MemMapError, got ${String(caught)}`);
  assert.ok(caught instanceof VmPhysError, 'MemMapError extends VmPhysError');
  assert.equal(caught.code, 'EMEMMAP');
  assert.equal(caught.file, file);
  assert.equal(caught.line, line, `wrong line in: ${caught.message}`);
  const where = line === undefined ? `${file}: ` : `${file}:${line}: `;
  assert.ok(caught.message.startsWith(where), `message does not start with '${where}': ${caught.message}`);
  assert.match(caught.message, re);
  return caught;
}

export const parseBad = (text: string) => () => parseMemMap(text, { file: 'bad.txt' });

/** Insert `extra` so that it becomes 1-based line `at`. */
export function insertLine(text: string, at: number, extra: string): string {
  const lines = text.split('\n');
  lines.splice(at - 1, 0, extra);
  return lines.join('\n');
}

/** Replace 1-based line `at`. */
export function replaceLine(text: string, at: number, by: string): string {
  const lines = text.split('\n');
  lines[at - 1] = by;
  return lines.join('\n');
}

/** 1-based number of the first line containing `needle`. */
export function lineOf(text: string, needle: string): number {
  const i = text.split('\n').findIndex((l) => l.includes(needle));
  assert.ok(i >= 0, `no line contains '${needle}'`);
  return i + 1;
}
