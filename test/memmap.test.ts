// test/memmap.test.ts: owns the tests of the memory-map parsers (src/boot/memmap/) over every
// shipped sample map: each is detected and parsed as its expected format, with about the RAM
// its machine has. Format details live in memmap-formats, errors in memmap-errors, the fuzz in
// memmap-fuzz and the synthetic maps in memmap-ramspec.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { detectMapFormat, parseMemMap } from '../src/boot/memmap.js';
import { assertValidMap, EXPECTED, expectMapError, lineOf, machineBytes, total } from './memmap-support.js';

// Test data: the memory-map samples. These two lines are the only ones that locate data files;
// a missing sample makes the tests that read it fail (ENOENT), never pass.
const SAMPLES = fileURLToPath(new URL('../../data/memmaps/', import.meta.url));
const readSample = (name: string): string => fs.readFileSync(path.join(SAMPLES, name), 'utf8');

// ---------------------------------------------------------------------------------------
// Samples
// ---------------------------------------------------------------------------------------

describe('shipped samples', () => {
  test('the expectation table lists every sample file', () => {
    const files = [
      ...fs.readdirSync(SAMPLES).filter((f) => f.endsWith('.txt')),
      ...fs
        .readdirSync(path.join(SAMPLES, 'real'))
        .filter((f) => f.endsWith('.txt'))
        .map((f) => `real/${f}`),
    ].sort();
    assert.deepEqual(files, Object.keys(EXPECTED).sort());
  });

  for (const [name, expected] of Object.entries(EXPECTED)) {
    test(`${name} → ${expected}`, () => {
      const text = readSample(name);
      if (expected === 'totals-only') {
        assert.equal(detectMapFormat(text), 'freebsd-chunks');
        expectMapError(
          () => parseMemMap(text, { file: name }),
          lineOf(text, 'real memory'),
          /only the real\/avail memory totals and no address ranges/,
          name,
        );
        return;
      }
      assert.equal(detectMapFormat(text), expected);
      const map = parseMemMap(text, { file: name });
      assert.equal(map.format, expected);
      assert.equal(map.source, name);
      assertValidMap(map);
      const size = machineBytes(name, text);
      const ratio = total(map.ram) / size;
      assert.ok(
        // Chunk lists omit what the kernel took at boot (up to ~11 % on a 64 MiB board).
        ratio > 0.85 && ratio < 1.1,
        `${name}: ${total(map.ram)} bytes of RAM is ${ratio.toFixed(3)} of ${size}`,
      );
    });
  }
});
