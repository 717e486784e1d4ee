// test/memmap-fuzz.test.ts: owns the fast-check fuzz of the memory-map parsers: mutated
// samples, line soup, JSON documents and arbitrary strings give a valid map or a MemMapError
// with a sane line, in bounded time; nothing else.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { detectMapFormat, MemMapError, parseMemMap } from '../src/boot/memmap.js';
import { assertValidMap, EXPECTED, FORMATS } from './memmap-support.js';

// Test data: the memory-map samples. These two lines are the only ones that locate data files;
// a missing sample makes the tests that read it fail (ENOENT), never pass.
const SAMPLES = fileURLToPath(new URL('../../data/memmaps/', import.meta.url));
const readSample = (name: string): string => fs.readFileSync(path.join(SAMPLES, name), 'utf8');

// ---------------------------------------------------------------------------------------
// Fuzz: only valid maps or MemMapError, in bounded time
// ---------------------------------------------------------------------------------------

describe('fuzz', () => {
  /** VMPHYS_FUZZ_SCALE=10 runs ten times as many cases (default 1: a few seconds). */
  const scale = Number(process.env.VMPHYS_FUZZ_SCALE ?? '1') || 1;
  const runs = (n: number): number => Math.max(1, Math.round(n * scale));
  const sampleTexts = Object.keys(EXPECTED).map(readSample);
  const sampleLines = sampleTexts.flatMap((t) => t.split('\n'));
  const token = fc.constantFrom(
    'BIOS-e820:',
    'BIOS-provided physical RAM map:',
    'reserve setup_data:',
    '[mem',
    '[gap',
    '0x0000000000100000-0x000000003fffffff]',
    '0x00000000-0x7fffffff]',
    'usable',
    'reserved',
    'System RAM',
    'Kernel code',
    '00100000-bfffffff',
    ' : ',
    '  ',
    '0x0000000080000000',
    ' - ',
    '0x00000000ffffffff,',
    '4096 bytes (1 pages)',
    '2147483648 bytes',
    '(524288 pages)',
    '  2048 MB (  524288 pages)',
    'NoAlloc',
    'Physical memory chunk(s):',
    'Excluded memory regions:',
    'real memory  = 34359738368 (32768 MB)',
    'machdep.smap:',
    'SMAP type=01,',
    'xattr=01,',
    'base=0000000000100000,',
    'len=0000000000001000',
    '                   Type     Physical      Virtual   #Pages Attr',
    'ConventionalMemory',
    '000080000000',
    '00007efa',
    'WB',
    'RUNTIME',
    'ACPI: SRAT: Node 0 PXM 0',
    'SRAT: Found memory domain 0 addr 0x0 len 0x1000',
    'hotplug',
    '[    0.000000]',
    'Aug 29 16:48:39 lasso kernel:',
    '{',
    '}',
    '"ram":',
    '[',
    ']',
    ',',
    '4096',
    '"0x1000"',
    '-1',
    'ffffffffffffffffff',
    '0',
    '\r',
  );
  const tokenLine = fc
    .tuple(fc.array(token, { maxLength: 8 }), fc.constantFrom('', ' '))
    .map(([parts, sep]) => parts.join(sep));
  const anyLine = fc.oneof(tokenLine, fc.constantFrom(...sampleLines), fc.string({ maxLength: 60 }));

  type Mutation =
    | { k: 'delete' | 'dup' | 'truncate'; at: number }
    | { k: 'swap'; at: number; to: number }
    | { k: 'insert'; at: number; text: string }
    | { k: 'char'; at: number; col: number; ch: string };
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    fc.record({ k: fc.constantFrom('delete' as const, 'dup' as const, 'truncate' as const), at: fc.nat() }),
    fc.record({ k: fc.constant('swap' as const), at: fc.nat(), to: fc.nat() }),
    fc.record({ k: fc.constant('insert' as const), at: fc.nat(), text: anyLine }),
    fc.record({
      k: fc.constant('char' as const),
      at: fc.nat(),
      col: fc.nat(),
      ch: fc.constantFrom(...'0123456789abcdefxzg-[] :,()\t\r{}"'.split(''), ''),
    }),
  );

  function mutate(text: string, ops: Mutation[]): string {
    const lines = text.split('\n');
    for (const op of ops) {
      if (lines.length === 0) lines.push('');
      const at = op.at % lines.length;
      if (op.k === 'delete') lines.splice(at, 1);
      else if (op.k === 'dup') lines.splice(at, 0, lines[at]);
      else if (op.k === 'truncate') lines.length = at + 1;
      else if (op.k === 'swap') {
        const to = op.to % lines.length;
        [lines[at], lines[to]] = [lines[to], lines[at]];
      } else if (op.k === 'insert') lines.splice(at, 0, op.text);
      else if (op.k === 'char') {
        const l = lines[at];
        const col = l.length === 0 ? 0 : op.col % l.length;
        lines[at] = l.slice(0, col) + op.ch + l.slice(col + 1);
      }
    }
    return lines.join('\n');
  }

  /** The property: a valid MemMap or a MemMapError with a sane line, quickly; nothing else. */
  function parsesCleanly(text: string): void {
    const t0 = performance.now();
    const format = detectMapFormat(text);
    assert.ok(format === null || FORMATS.includes(format));
    try {
      const map = parseMemMap(text, { file: 'fuzz.txt' });
      assertValidMap(map);
      assert.equal(map.format, format);
    } catch (e) {
      if (!(e instanceof MemMapError)) throw e;
      assert.equal(e.file, 'fuzz.txt');
      const lines = text.split('\n').length;
      assert.ok(
        e.line === undefined || (Number.isInteger(e.line) && e.line >= 1 && e.line <= lines),
        `line ${e.line} of ${lines}`,
      );
      assert.ok(e.message.startsWith('fuzz.txt'), e.message);
    }
    const ms = performance.now() - t0;
    assert.ok(ms < 1000, `parse took ${ms.toFixed(0)} ms`);
  }

  test('mutated samples', { timeout: 120_000 }, () => {
    fc.assert(
      fc.property(fc.constantFrom(...sampleTexts), fc.array(mutation, { minLength: 1, maxLength: 6 }), (text, ops) =>
        parsesCleanly(mutate(text, ops)),
      ),
      { numRuns: runs(2500) },
    );
  });

  test('random line soup, with and without a table header', { timeout: 120_000 }, () => {
    const header = fc.constantFrom(
      '',
      'BIOS-provided physical RAM map:\n',
      'Physical memory chunk(s):\n',
      'machdep.smap:\n',
      '                   Type     Physical      Virtual   #Pages Attr\n',
      '00100000-bfffffff : System RAM\n',
    );
    fc.assert(
      fc.property(header, fc.array(anyLine, { maxLength: 25 }), (h, lines) => parsesCleanly(h + lines.join('\n'))),
      { numRuns: runs(2000) },
    );
  });

  test('random JSON documents and JSON-shaped maps', { timeout: 120_000 }, () => {
    const addr = fc.oneof(
      fc.integer({ min: -4096, max: 2 ** 45 }),
      fc.bigInt({ min: 0n, max: 2n ** 64n }).map((b) => `0x${b.toString(16)}`),
      fc.constantFrom(4096, 0, 2 ** 53, 2 ** 53 + 2, '0x', 'x', null, true, 1.5),
    );
    const range = fc.oneof(
      fc.tuple(addr, addr),
      fc.record({ start: addr, end: addr }),
      fc.tuple(addr, addr, fc.integer({ min: -1, max: 40 })),
    );
    const affinity = fc.oneof(
      fc.record({ start: addr, end: addr, domain: fc.integer({ min: -1, max: 40 }) }),
      fc.tuple(addr, addr, fc.integer({ min: 0, max: 40 })),
    );
    const doc = fc.record(
      {
        ram: fc.array(range, { maxLength: 8 }),
        reserved: fc.array(range, { maxLength: 4 }),
        affinity: fc.array(affinity, { maxLength: 4 }),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(doc, fc.constantFrom(undefined, 1, 2), (d, indent) => parsesCleanly(JSON.stringify(d, null, indent))),
      { numRuns: runs(1500) },
    );
    fc.assert(
      fc.property(fc.json(), (j) => parsesCleanly(j)),
      { numRuns: runs(500) },
    );
  });

  test('arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200, unit: 'binary' }), (s) => parsesCleanly(s)),
      { numRuns: runs(1000) },
    );
  });

  test('long pathological lines stay fast', () => {
    const long = 100_000;
    for (const text of [
      `BIOS-e820: [mem 0x${'0'.repeat(long)}`,
      `${' '.repeat(long)}x`,
      `Type Physical Virtual #Pages Attr\n ConventionalMemory 0 0 1${' WB'.repeat(long / 3)} !`,
      `Physical memory chunk(s):\n  0x0 - 0x1,${' '.repeat(long)}1 MB (`,
      `Aug 29 16:48:39 ${'x'.repeat(long)} kernel`,
      `[ ${'1'.repeat(long)}.`,
      `{"ram": "${'\\u0041'.repeat(long / 6)}`,
      `00000000-${'f'.repeat(long)} : System RAM`,
    ]) {
      parsesCleanly(text);
    }
  });
});

// ---------------------------------------------------------------------------------------
// ramspec
// ---------------------------------------------------------------------------------------
