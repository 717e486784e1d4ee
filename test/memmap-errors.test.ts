// test/memmap-errors.test.ts: owns the tests of broken memory maps: every parse error is a
// MemMapError (code EMEMMAP, a VmPhysError) naming file and line and quoting an escaped,
// bounded excerpt of the line; nothing else escapes parseMemMap.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MemMapError, parseMemMap } from '../src/boot/memmap.js';
import { VmPhysError } from '../src/core/errors.js';
import { expectMapError, insertLine, lineOf, pairs, parseBad, replaceLine } from './memmap-support.js';

// Test data: the memory-map samples. These two lines are the only ones that locate data files;
// a missing sample makes the tests that read it fail (ENOENT), never pass.
const SAMPLES = fileURLToPath(new URL('../../data/memmaps/', import.meta.url));
const readSample = (name: string): string => fs.readFileSync(path.join(SAMPLES, name), 'utf8');

// ---------------------------------------------------------------------------------------
// Broken input
// ---------------------------------------------------------------------------------------

describe('broken input names file and line', () => {
  const c7 = readSample('real/linux-e820-supermicro-c7z170-desktop-32g.txt');
  const pf = readSample('real/freebsd-amd64-pfsense-thinkcentre-32g.txt');
  const honey = readSample('real/freebsd-arm64-lx2160a-honeycomb-64g.txt');
  const fc24 = readSample('firecracker-24g.iomem.txt');

  test('garbage inside the e820 table', () => {
    const at = lineOf(c7, '0x0000000068c5f000') + 1;
    expectMapError(
      parseBad(insertLine(c7, at, '[    0.000000] this is not an entry')),
      at,
      /does not belong inside the BIOS-e820 table/,
    );
  });

  test('unparsable hex in an e820 entry', () => {
    const at = lineOf(c7, '0x00000000000e0000');
    const broken = replaceLine(
      c7,
      at,
      '[    0.000000] BIOS-e820: [mem 0x00000000000e0000-0x00000000000fffzz] reserved',
    );
    expectMapError(parseBad(broken), at, /malformed BIOS-e820 table row/);
    const wide = replaceLine(c7, at, 'BIOS-e820: [mem 0x00000000000000e0000-0x00000000000fffff] reserved');
    expectMapError(parseBad(wide), at, /malformed/);
  });

  test('an inverted e820 range', () => {
    const at = lineOf(c7, '0x00000000000e0000');
    const broken = replaceLine(c7, at, 'BIOS-e820: [mem 0x0000000000300000-0x00000000001fffff] reserved');
    expectMapError(parseBad(broken), at, /inverted range/);
  });

  test('overlapping usable ranges, and usable overlapping reserved', () => {
    const a = [
      'BIOS-e820: [mem 0x0000000000100000-0x000000003fffffff] usable',
      'BIOS-e820: [mem 0x0000000020000000-0x000000004fffffff] usable',
    ];
    expectMapError(parseBad(a.join('\n')), 2, /overlaps \[0x100000, 0x40000000\) from line 1/);
    const b = [
      'BIOS-e820: [mem 0x0000000020000000-0x000000002fffffff] reserved',
      'BIOS-e820: [mem 0x0000000000100000-0x000000003fffffff] usable',
    ];
    expectMapError(parseBad(b.join('\n')), 2, /overlaps non-RAM range/);
  });

  test('addresses must be safe integers (at most 2^53 - 1)', () => {
    expectMapError(parseBad('BIOS-e820: [mem 0x0020000000000000-0x0020000000000fff] usable'), 1, /beyond 2\^53 - 1/);
    expectMapError(parseBad('{"ram": [\n  [0, "0x20000000000000"]\n]}'), 2, /beyond 2\^53 - 1/);
    const top = 2 ** 53 - 4096;
    assert.deepEqual(pairs(parseMemMap(`{"ram": [[0, ${top}]]}`).ram), [[0, top]]);
  });

  test('no recognisable format, and empty input', () => {
    expectMapError(parseBad('hello\nworld\n'), 1, /no recognisable memory map/);
    expectMapError(parseBad('# a comment\n\nhello\n'), 3, /no recognisable memory map/);
    expectMapError(parseBad(''), undefined, /empty input/);
    expectMapError(parseBad('\n  \n# only comments\n'), undefined, /empty input/);
  });

  test('two boots in one file', () => {
    const qemu = readSample('real/linux-e820-qemu-i440fx-768m-journal.txt');
    const twice = `${qemu}${qemu}`;
    const second = qemu.split('\n').length + lineOf(qemu, 'BIOS-provided') - 1;
    expectMapError(parseBad(twice), second, /a second BIOS-e820 table \(the first starts at line 3\)/);
  });

  test('iomem: garbage, inverted, child outside parent, bad indentation, read without root', () => {
    expectMapError(parseBad(insertLine(fc24, 5, 'garbage')), 5, /not a \/proc\/iomem line/);
    expectMapError(parseBad(replaceLine(fc24, 2, '0009fbff-00001000 : System RAM')), 2, /inverted range/);
    expectMapError(parseBad(replaceLine(fc24, 7, '  c1000000-c23fea67 : Kernel code')), 7, /not inside its parent/);
    expectMapError(parseBad(replaceLine(fc24, 7, '   01000000-0220bb07 : Kernel code')), 7, /bad indentation/);
    expectMapError(parseBad(replaceLine(fc24, 1, '  00000000-00000fff : Reserved')), 1, /bad indentation/);
    const noRoot = fc24.replace(/[0-9a-f]+-[0-9a-f]+ :/g, '00000000-00000000 :');
    expectMapError(parseBad(noRoot), 1, /read without root/);
    expectMapError(parseBad('00000000-00000fff : Reserved\n'), 1, /no top-level 'System RAM'/);
  });

  test('FreeBSD: wrong byte count, garbage inside the chunk list, malformed row', () => {
    const at = lineOf(pf, '0x0000000000060000');
    const count = replaceLine(pf, at, '0x0000000000060000 - 0x000000000009ffff, 262145 bytes (64 pages)');
    expectMapError(parseBad(count), at, /byte count 262145 does not match/);
    expectMapError(
      parseBad(insertLine(pf, at, 'some other kernel message')),
      at,
      /does not belong inside the FreeBSD chunk list/,
    );
    const row = replaceLine(pf, at, '0x0000000000060000 - 0x00000000000zzzzz, 262144 bytes (64 pages)');
    expectMapError(parseBad(row), at, /malformed FreeBSD chunk list row/);
  });

  test('FreeBSD: a chunk outside the physmem summary', () => {
    const at = lineOf(honey, '0x00002f7fff9000 - ');
    const broken = replaceLine(honey, at, '0x00003000000000 - 0x00003000001fff, 8192 bytes (2 pages)');
    expectMapError(parseBad(broken), at, /is not inside the physmem summary/);
  });

  test('EFI: a garbage row inside the table', () => {
    const text = honey.slice(0, honey.indexOf('Physical memory chunk(s):'));
    const at = lineOf(text, 'BootServicesData 000087efa000');
    const broken = replaceLine(text, at, '       BootServicesData 000087efa000 000087efa000 0000zzzz WB ');
    expectMapError(parseBad(broken), at, /malformed EFI memory map table row/);
    const between = insertLine(text, at, 'garbage');
    expectMapError(parseBad(between), at, /does not belong inside the EFI memory map table/);
  });

  test('SMAP: unparsable base', () => {
    const smap = readSample('real/freebsd-amd64-smap-sysctl-12g.txt');
    const broken = replaceLine(smap, 6, 'SMAP type=01, xattr=01, base=00000000001g0000, len=00000000bf3d6000');
    expectMapError(parseBad(broken), 6, /malformed machdep\.smap table row/);
  });

  test('SRAT: ranges of two domains overlap; malformed SRAT line', () => {
    const text = [
      'BIOS-e820: [mem 0x0000000000000000-0x000000017fffffff] usable',
      'ACPI: SRAT: Node 0 PXM 0 [mem 0x00000000-0x8fffffff]',
      'ACPI: SRAT: Node 1 PXM 1 [mem 0x80000000-0x17fffffff]',
    ];
    expectMapError(parseBad(text.join('\n')), 3, /of domain 1 overlaps .* of domain 0 from line 2/);
    text[2] = 'ACPI: SRAT: Node 1 PXM 1 [mem 0x80000000-]';
    expectMapError(parseBad(text.join('\n')), 3, /malformed SRAT line/);
  });

  test('JSON: syntax, inverted range, bad values, reserved outside RAM, missing ram', () => {
    expectMapError(
      parseBad('{\n  "ram": [\n    [0, 4096],\n    [8192 16384]\n  ]\n}'),
      4,
      /invalid JSON: expected ',' or '\]'/,
    );
    expectMapError(parseBad('{\n  "ram": [\n    [0, 4096],\n    [16384, 8192]\n  ]\n}'), 4, /inverted ram range/);
    expectMapError(
      parseBad('{\n  "ram": [\n    [0, -4096]\n  ]\n}'),
      3,
      /ram range end must be a non-negative integer/,
    );
    expectMapError(parseBad('{"ram": [[0, 1.5e3]]}'), 1, /non-negative integer/);
    expectMapError(parseBad('{"ram": [["0x", 4096]]}'), 1, /non-negative integer or a "0x..." hex string/);
    expectMapError(parseBad('{"ram": [[0, 4096, 1]]}'), 1, /must be \[start, end\]/);
    expectMapError(
      parseBad('{"ram": [[0, 8192]],\n "reserved": [\n [4096, 12288]]}'),
      3,
      /reserved range .* is not inside "ram"/,
    );
    expectMapError(parseBad('{"rams": []}'), 1, /no "ram" array/);
    expectMapError(parseBad('[[0, 4096]]'), 1, /must be an object/);
    expectMapError(parseBad('{"ram": [[0, 4096]], "ram": []}'), 1, /duplicate key "ram"/);
    expectMapError(parseBad('{"ram": [[0, 2048]]}'), 1, /holds no whole page/);
    expectMapError(parseBad(`${'['.repeat(100_000)}`), 1, /invalid JSON: nested deeper/);
    expectMapError(parseBad('{"ram": [[0, 4096]]}\n\nx'), 3, /unexpected text after the JSON value/);
  });
});

// ---------------------------------------------------------------------------------------
// Fuzz: only valid maps or MemMapError, in bounded time
// ---------------------------------------------------------------------------------------

describe('MemMapError: class, code and excerpt', () => {
  const ESC = String.fromCharCode(27);
  const BIG = 20 * 2 ** 20;

  /** Every broken input of this file's kinds: each must give a MemMapError and nothing else. */
  const broken: [string, string][] = [
    ['iomem garbage', '00000000-00000fff : System RAM\ngarbage'],
    ['e820 malformed', 'BIOS-e820: [mem 0x0-0xzz] usable'],
    ['e820 inverted', 'BIOS-e820: [mem 0x0000000000300000-0x00000000001fffff] usable'],
    ['chunk count', 'Physical memory chunk(s):\n0x0000000000001000 - 0x0000000000001fff, 1 bytes (1 pages)'],
    ['smap malformed', 'machdep.smap:\nSMAP type=01, base=zz'],
    ['efi unknown type', `Type Physical Virtual #Pages Attr\n${'Q'.repeat(BIG)} 0 0 1 WB`],
    ['srat malformed', `BIOS-e820: [mem 0x0-0xfffff] usable\nACPI: SRAT: Node ${ESC}[31m`],
    ['json syntax', `{"ram": [[0, 4096]], ${ESC}[2J}`],
    ['json duplicate key', `{"${'k'.repeat(BIG)}": 1, "${'k'.repeat(BIG)}": 2}`],
    ['json bad value', `{"ram": [["${'x'.repeat(BIG)}", 4096]]}`],
    ['nothing recognisable', `${ESC}]0;pwned${String.fromCharCode(7)}\n`],
    ['empty', ''],
  ];

  test('every parse error is a MemMapError with code EMEMMAP that extends VmPhysError', () => {
    for (const [what, text] of broken) {
      assert.throws(
        () => parseMemMap(text, { file: 'bad.txt' }),
        (e: unknown) =>
          e instanceof MemMapError &&
          e instanceof VmPhysError &&
          e.code === 'EMEMMAP' &&
          e.name === 'MemMapError' &&
          e.file === 'bad.txt' &&
          e.message.length < 500 &&
          !e.message.includes(ESC),
        what,
      );
    }
  });

  test('a 20 MB line full of terminal escapes is quoted escaped and cut, with its line number', () => {
    const evil = `${ESC}[2J${ESC}]0;title${String.fromCharCode(7)}\u202e\\${'A'.repeat(BIG)}${ESC}[0m`;
    const text = `BIOS-provided physical RAM map:\nBIOS-e820: [mem 0x0-0xfffff] usable\nBIOS-e820: ${evil}`;
    const e = expectMapError(parseBad(text), 3, /malformed BIOS-e820 table row; line 3: '/);
    assert.ok(e.message.length < 300, `message is ${e.message.length} characters`);
    assert.ok(!e.message.includes(ESC), 'raw ESC byte in the message');
    assert.ok(
      !e.message.includes('\u202e') && !e.message.includes(String.fromCharCode(7)),
      'raw control in the message',
    );
    assert.ok(e.excerpt !== undefined && e.excerpt.length <= 80, `excerpt ${e.excerpt}`);
    assert.ok(e.excerpt.startsWith('BIOS-e820: \\x1b[2J\\x1b]0;title\\x07\\u{202e}\\\\AAA'), e.excerpt);
    assert.ok(e.excerpt.endsWith('…'), e.excerpt);
    assert.equal(e.line, 3);
  });

  test('a short bad line is quoted whole; blank or lineless errors carry no excerpt', () => {
    const e = expectMapError(
      parseBad('00000000-00000fff : System RAM\n  garbage\tline'),
      2,
      /not a \/proc\/iomem line/,
    );
    assert.equal(e.excerpt, '  garbage\\x09line');
    assert.ok(e.message.endsWith("; line 2: '  garbage\\x09line'"), e.message);
    const empty = expectMapError(parseBad(''), undefined, /empty input/);
    assert.equal(empty.excerpt, undefined);
  });

  test('a JSON error deep in a long line shows the place of the fault, with its column', () => {
    const pad = ' '.repeat(5000);
    const e = expectMapError(parseBad(`{"ram": [${pad}[0, 4096]${pad}, [8192 16384]]}`), 1, /expected ','/);
    assert.match(e.message, /line 1, column \d+: '…/);
    assert.ok(e.excerpt?.includes('[8192 16384'), e.excerpt);
    assert.ok(e.message.length < 300);
  });

  test('bad arguments and host errors are MemMapErrors too', () => {
    for (const pageSize of [0, 3000, 4095, 256, 2 ** 31, Number.NaN]) {
      expectMapError(() => parseMemMap('{"ram": [[0, 4096]]}', { pageSize, file: 'bad.txt' }), undefined, /pageSize/);
    }
    for (const text of [null, undefined, 42, {}]) {
      expectMapError(() => parseMemMap(text as unknown as string, { file: 'bad.txt' }), undefined, /must be text/);
    }
    assert.throws(
      () => parseMemMap('{"ram": [[0, 4096]]}', { file: 7 as unknown as string }),
      (e: unknown) => e instanceof MemMapError && /option file/.test(e.message),
    );
  });
});
