// test/memmap-ramspec.test.ts: owns the tests of the RAM-size helpers (src/boot/ramspec.ts):
// parseSize and the synthetic Firecracker and sparse 1 TiB maps.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { firecrackerMap, parseSize, sparseTerabyteMap } from '../src/boot/ramspec.js';
import { SizeError } from '../src/core/errors.js';
import { assertValidMap, GiB, KiB, MiB, pairs, TiB, total } from './memmap-support.js';

// ---------------------------------------------------------------------------------------
// ramspec
// ---------------------------------------------------------------------------------------

describe('parseSize', () => {
  test('binary units, case-insensitive', () => {
    const cases: [string, number][] = [
      ['4096', 4096],
      ['0', 0],
      ['512K', 512 * KiB],
      ['128M', 128 * MiB],
      ['128m', 128 * MiB],
      ['1G', GiB],
      ['64G', 64 * GiB],
      ['64gib', 64 * GiB],
      ['2 GB', 2 * GiB],
      [' 8M ', 8 * MiB],
      ['1T', TiB],
      ['4096b', 4096],
      ['2P', 2 * 2 ** 50],
    ];
    for (const [text, bytes] of cases) assert.equal(parseSize(text), bytes, text);
  });

  test('bad sizes are SizeErrors naming the text', () => {
    for (const text of ['', 'abc', '1.5G', '-1G', '12Q', 'G', '1 G B', '0x1000', '99999999P']) {
      assert.throws(
        () => parseSize(text),
        (e: unknown) => e instanceof SizeError && e.message.includes(`'${text}'`),
        text,
      );
    }
  });
});

describe('firecrackerMap and sparseTerabyteMap', () => {
  test('small guests, exactly 3 GiB, and just past the MMIO gap', () => {
    assert.deepEqual(pairs(firecrackerMap(128 * MiB).ram), [
      [0x1000, 0x9f000],
      [0x100000, 0x8000000],
    ]);
    assert.deepEqual(pairs(firecrackerMap(3 * GiB).ram), [
      [0x1000, 0x9f000],
      [0x100000, 0xc0000000],
    ]);
    assert.deepEqual(pairs(firecrackerMap(3 * GiB + 4 * KiB).ram), [
      [0x1000, 0x9f000],
      [0x100000, 0xc0000000],
      [0x100000000, 0x100001000],
    ]);
    for (const size of [128 * MiB, GiB, 3 * GiB, 4 * GiB, 24 * GiB, TiB]) {
      const map = firecrackerMap(size);
      assertValidMap(map);
      // Everything from 1 MiB up is the guest's memory minus the first MiB.
      assert.equal(total(map.ram.slice(1)), size - MiB, `${size}`);
    }
  });

  test('bad sizes are SizeErrors', () => {
    for (const size of [0, -4096, MiB, MiB + 1, 1.5 * GiB + 1, Number.NaN, 2 ** 53]) {
      assert.throws(() => firecrackerMap(size), SizeError, String(size));
    }
  });

  test('sparseTerabyteMap: 1 TiB in eight banks below 2^46 plus the low pieces', () => {
    const map = sparseTerabyteMap();
    assertValidMap(map);
    assert.equal(map.ram.length, 10);
    assert.deepEqual(pairs(map.ram.slice(0, 2)), [
      [0x1000, 0x9f000],
      [0x100000, 0xc0000000],
    ]);
    const banks = map.ram.slice(2);
    assert.equal(total(banks), TiB);
    assert.ok(banks.every((r) => r.start >= 4 * GiB && r.end <= 2 ** 46));
    for (let i = 1; i < banks.length; i++)
      assert.ok(banks[i].start - banks[i - 1].end >= 512 * GiB, 'banks have holes');
    assert.equal(total(map.ram), TiB + 3 * GiB - MiB + 0x9e000);
  });
});
