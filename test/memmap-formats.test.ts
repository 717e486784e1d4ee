// test/memmap-formats.test.ts: owns the per-format tests of the memory-map parsers: exact
// ranges from Firecracker /proc/iomem, FreeBSD boot output (chunk lists, physmem summary,
// EFI, SMAP, SRAT), Linux boot logs (e820 tables, prefixes, SRAT) and JSON maps.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { detectMapFormat, parseMemMap } from '../src/boot/memmap.js';
import { firecrackerMap, sparseTerabyteMap } from '../src/boot/ramspec.js';
import { assertValidMap, GiB, MiB, type Pair, pairs, total } from './memmap-support.js';

// Test data: the memory-map samples. These two lines are the only ones that locate data files;
// a missing sample makes the tests that read it fail (ENOENT), never pass.
const SAMPLES = fileURLToPath(new URL('../../data/memmaps/', import.meta.url));
const readSample = (name: string): string => fs.readFileSync(path.join(SAMPLES, name), 'utf8');

describe('Firecracker /proc/iomem', () => {
  const kernel24: Pair[] = [
    [0x1000000, 0x220c000],
    [0x2400000, 0x2e0a000],
    [0x3000000, 0x327d000],
    [0x3b34000, 0x3c58000],
  ];
  const kernel128: Pair[] = [
    [0x1000000, 0x23ff000],
    [0x2400000, 0x2f99000],
    [0x3000000, 0x3292000],
    [0x36bb000, 0x37e1000],
  ];

  test('24 GiB: exact RAM and kernel image ranges', () => {
    const map = parseMemMap(readSample('firecracker-24g.iomem.txt'));
    assert.deepEqual(pairs(map.ram), [
      [0x1000, 0x9f000],
      [0x100000, 0xc0000000],
      [0x100000000, 0x640000000],
    ]);
    assert.deepEqual(pairs(map.reserved), kernel24);
    assert.deepEqual(map.affinity, []);
    assert.equal(map.source, undefined);
  });

  test('128 GiB: exact RAM and kernel image ranges', () => {
    const map = parseMemMap(readSample('firecracker-128g.iomem.txt'));
    assert.deepEqual(pairs(map.ram), [
      [0x1000, 0x9f000],
      [0x100000, 0xc0000000],
      [0x100000000, 0x2040000000],
    ]);
    assert.deepEqual(pairs(map.reserved), kernel128);
  });

  test('firecrackerMap reproduces both guests exactly', () => {
    for (const [file, size] of [
      ['firecracker-24g.iomem.txt', 24 * GiB],
      ['firecracker-128g.iomem.txt', 128 * GiB],
    ] as const) {
      const parsed = parseMemMap(readSample(file));
      const made = firecrackerMap(size);
      assert.deepEqual(made.ram, parsed.ram, file);
      assert.equal(made.format, 'json');
      assert.deepEqual(made.reserved, []);
      assert.deepEqual(made.affinity, []);
    }
  });

  test('a larger page size aligns RAM inward and kernel ranges outward', () => {
    const map = parseMemMap(readSample('firecracker-24g.iomem.txt'), { pageSize: 2 * MiB });
    assertValidMap(map, 2 * MiB);
    assert.deepEqual(pairs(map.ram), [
      [0x200000, 0xc0000000],
      [0x100000000, 0x640000000],
    ]);
    assert.deepEqual(pairs(map.reserved), [
      [0x1000000, 0x3400000],
      [0x3a00000, 0x3e00000],
    ]);
  });

  test('nested System RAM, Crash kernel and arm64 reserved children', () => {
    const text = [
      '40000000-bfffffff : System RAM',
      '  40080000-4113ffff : Kernel code',
      '  41140000-4153ffff : reserved',
      '  41540000-4163ffff : Kernel data',
      '  60000000-6fffffff : Crash kernel',
      '  70000000-70000fff : something else',
      'c0000000-c0ffffff : reserved',
      '100000000-13fffffff : Persistent Memory',
      '  100000000-13fffffff : System RAM',
      '    100000000-100000fff : Kernel code',
    ].join('\n');
    const map = parseMemMap(text);
    assert.deepEqual(pairs(map.ram), [[0x40000000, 0xc0000000]]);
    assert.deepEqual(pairs(map.reserved), [
      [0x40080000, 0x41640000],
      [0x60000000, 0x70000000],
    ]);
  });
});

describe('FreeBSD boot output', () => {
  const chunkBytes = (text: string): number =>
    [...text.matchAll(/^0x[0-9a-f]+ - 0x[0-9a-f]+, (\d+) bytes/gm)].reduce((a, m) => a + Number(m[1]), 0);

  test('amd64 chunk list: RAM is the chunk list', () => {
    const text = readSample('real/freebsd-amd64-pfsense-thinkcentre-32g.txt');
    const map = parseMemMap(text);
    assert.equal(map.ram.length, 7);
    assert.deepEqual(pairs(map.ram).slice(0, 2), [
      [0x10000, 0x5f000],
      [0x60000, 0xa0000],
    ]);
    assert.deepEqual(pairs(map.ram).at(-1), [0x85e600000, 0x85e6e9000]);
    assert.equal(total(map.ram), chunkBytes(text));
    assert.deepEqual(map.reserved, []);
  });

  test('arm64 verbose boot: RAM is exactly the final chunk list, i.e. phys_avail', () => {
    const text = readSample('real/freebsd-arm64-lx2160a-honeycomb-64g.txt');
    const map = parseMemMap(text);
    // vm_phys segments come from phys_avail: the vm_page array taken at boot
    // ([0x2f154f3000, 0x2f78000000)) and the NoAlloc kernel lie outside every segment.
    assert.deepEqual(pairs(map.ram), [
      [0x80000000, 0xf6b27000], // the RuntimeServicesData page is NoAlloc
      [0xf6b28000, 0xfbd30000],
      [0xfbd40000, 0xfbe00000],
      [0x2080000000, 0x2f154f3000],
      [0x2f794f5000, 0x2f7ffe9000],
      [0x2f7ffee000, 0x2f7fff1000],
      [0x2f7fff9000, 0x2f7fffb000],
    ]);
    assert.deepEqual(pairs(map.reserved), []);
    assert.equal(total(map.ram), chunkBytes(text));
  });

  test('riscv CRLF serial capture', () => {
    const text = readSample('real/freebsd-riscv64-bl808-m1s-64m.txt');
    assert.ok(text.includes('\r\n'), 'the sample is expected to use CRLF');
    const map = parseMemMap(text);
    assert.deepEqual(pairs(map.ram), [[0x50579000, 0x53e86000]]);
    assert.deepEqual(pairs(map.reserved), []);
    assert.deepEqual(parseMemMap(text.replaceAll('\r\n', '\n')), map);
  });

  test('the arm64 EFI table alone', () => {
    const full = readSample('real/freebsd-arm64-lx2160a-honeycomb-64g.txt');
    const text = full.slice(0, full.indexOf('Physical memory chunk(s):'));
    assert.equal(detectMapFormat(text), 'freebsd-efi');
    const map = parseMemMap(text);
    assert.equal(map.format, 'freebsd-efi');
    assert.deepEqual(pairs(map.ram), [
      [0x80000000, 0xf6b27000],
      [0xf6b28000, 0xfbd30000],
      [0xfbd40000, 0xfbe00000],
      [0x2080000000, 0x2f7ffe9000],
      [0x2f7ffee000, 0x2f7fff1000],
      [0x2f7fff9000, 0x2f7fffb000],
    ]);
    // The chunk-list view of the same boot only removes memory from the EFI view.
    for (const r of parseMemMap(full).ram) {
      assert.ok(
        map.ram.some((x) => x.start <= r.start && r.end <= x.end),
        `[${r.start}, ${r.end})`,
      );
    }
  });

  test('machdep.smap: unsorted firmware order comes out sorted', () => {
    const map = parseMemMap(readSample('real/freebsd-amd64-smap-sysctl-12g.txt'));
    assert.deepEqual(pairs(map.ram), [
      [0, 0x9d000],
      [0x100000, 0xbf4d6000],
      [0xbf54e000, 0xbf550000],
      [0xbf620000, 0xbf800000],
      [0x100000000, 0x33e000000],
    ]);
  });

  test('smap entries without the xattr "enabled" bit and boot-time SMAP lines', () => {
    const text = [
      'SMAP type=01 base=0000000000000000 len=000000000009fc00',
      'SMAP type=01 base=0000000000100000 len=000000003ff00000',
      'SMAP type=01, xattr=00, base=0000000100000000, len=0000000040000000',
    ].join('\n');
    const map = parseMemMap(text);
    assert.equal(map.format, 'freebsd-smap');
    assert.deepEqual(pairs(map.ram), [
      [0, 0x9f000],
      [0x100000, 0x40000000],
    ]);
  });

  test('verbose SRAT lines give affinity; disabled ones are skipped', () => {
    const text = [
      'SRAT: Found memory domain 2 addr 0x0 len 0x80000000: enabled',
      'SRAT: Found memory domain 5 addr 0x100000000 len 0x80000000: enabled',
      'SRAT: Found memory domain 7 addr 0x200000000 len 0x80000000: disabled',
      'Physical memory chunk(s):',
      '0x0000000000010000 - 0x000000007fffffff, 2147418112 bytes (524272 pages)',
      '0x0000000100000000 - 0x000000017fffffff, 2147483648 bytes (524288 pages)',
      'avail memory = 4000000000 (3814 MB)',
    ].join('\n');
    const map = parseMemMap(text);
    assert.deepEqual(map.affinity, [
      { start: 0, end: 0x80000000, domain: 0 },
      { start: 0x100000000, end: 0x180000000, domain: 1 },
    ]);
  });
});

describe('Linux boot logs', () => {
  test('journal prefixes are skipped', () => {
    const map = parseMemMap(readSample('real/linux-e820-qemu-i440fx-768m-journal.txt'));
    assert.deepEqual(pairs(map.ram), [
      [0, 0x9f000],
      [0x100000, 0x2ffd7000],
    ]);
  });

  test('other prefixes: syslog without time, raw priority, ISO journal, dmesg -T', () => {
    const entry = 'BIOS-e820: [mem 0x0000000000100000-0x000000003fffffff] usable';
    for (const prefix of [
      'Mar 01 host kernel: ',
      'Mar  1 12:00:00 host kernel: [    0.000000] ',
      '<6>[    0.000000] ',
      '2023-08-29T16:48:39+0200 host kernel: ',
      '[Tue Aug 29 16:48:39 2023] ',
      'kernel: ',
    ]) {
      const map = parseMemMap(`${prefix}BIOS-provided physical RAM map:\n${prefix}${entry}\n`);
      assert.deepEqual(pairs(map.ram), [[0x100000, 0x40000000]], prefix);
    }
  });

  test('the BIOS-e820 table is preferred; the extended table alone gives the same RAM', () => {
    const text = readSample('real/linux-e820-alienware15r2-laptop-32g.txt');
    const full = parseMemMap(text);
    const extendedOnly = parseMemMap(text.slice(text.indexOf('extended physical RAM map:')));
    assert.equal(extendedOnly.format, 'e820');
    assert.deepEqual(extendedOnly.ram, full.ram);
    assert.deepEqual(pairs(full.ram).slice(0, 3), [
      [0, 0x58000],
      [0x59000, 0x9e000],
      [0x100000, 0x312bb000],
    ]);
  });

  test('unaligned e820 ends are rounded down', () => {
    const map = parseMemMap(readSample('real/linux-e820-supermicro-c7z170-desktop-32g.txt'));
    assert.deepEqual(pairs(map.ram)[0], [0, 0x9c000]);
  });

  test('SRAT affinity on the 32-node Dell: Linux node ids, not PXMs', () => {
    const map = parseMemMap(readSample('real/linux-e820-dell-r7625-2s-epyc-32node.txt'));
    assert.equal(map.affinity.length, 34);
    assert.deepEqual(map.affinity.slice(0, 4), [
      { start: 0, end: 0xa0000, domain: 0 },
      { start: 0xc0000, end: 0x80000000, domain: 0 },
      { start: 0x100000000, end: 0x680000000, domain: 0 },
      { start: 0x680000000, end: 0xc80000000, domain: 1 },
    ]);
    assert.deepEqual(map.affinity[4], { start: 0xc80000000, end: 0x1280000000, domain: 2 }); // Node 2 PXM 8
    assert.deepEqual(map.affinity.at(-1), { start: 0xba80000000, end: 0xc080000000, domain: 31 });
    assert.equal(new Set(map.affinity.map((a) => a.domain)).size, 32);
  });

  test('SRAT affinity on the 2-socket Xeon', () => {
    const map = parseMemMap(readSample('real/linux-e820-supermicro-x11dai-2s-xeon-192g.txt'));
    assert.deepEqual(map.affinity, [
      { start: 0, end: 0x80000000, domain: 0 },
      { start: 0x100000000, end: 0x1840000000, domain: 0 },
      { start: 0x1840000000, end: 0x3040000000, domain: 1 },
    ]);
  });

  test('sparse node ids are renumbered by ascending id; hotplug ranges are skipped', () => {
    const text = [
      'BIOS-e820: [mem 0x0000000000000000-0x000000017fffffff] usable',
      'ACPI: SRAT: Node 7 PXM 1 [mem 0x80000000-0x17fffffff]',
      'ACPI: SRAT: Node 3 PXM 0 [mem 0x00000000-0x7fffffff]',
      'ACPI: SRAT: Node 9 PXM 2 [mem 0x180000000-0x27fffffff] hotplug',
    ].join('\n');
    assert.deepEqual(parseMemMap(text).affinity, [
      { start: 0, end: 0x80000000, domain: 0 },
      { start: 0x80000000, end: 0x180000000, domain: 1 },
    ]);
  });

  test('newer kernels: "System RAM" type, size column and [gap] lines', () => {
    const text = [
      'BIOS-provided physical RAM map:',
      'BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff]  639   KB kernel usable RAM',
      'BIOS-e820: [mem 0x000000000009fc00-0x000000000009ffff]    1   KB reserved',
      'BIOS-e820: [gap 0x00000000000a0000-0x00000000000effff]  320   KB ...',
      'BIOS-e820: [mem 0x0000000000100000-0x000000007ffdbfff]  System RAM',
      'BIOS-e820: [mem 0x000000007ffdc000-0x000000007fffffff]  device reserved',
    ].join('\n');
    assert.deepEqual(pairs(parseMemMap(text).ram), [
      [0, 0x9f000],
      [0x100000, 0x7ffdc000],
    ]);
  });

  test('old kernels: exclusive-end e820 lines; a user-defined map wins', () => {
    const old = [
      'BIOS-provided physical RAM map:',
      ' BIOS-e820: 0000000000000000 - 000000000009f400 (usable)',
      ' BIOS-e820: 0000000000100000 - 0000000040000000 (usable)',
      '[    0.000000]  BIOS-e820: 00000000fffc0000 - 0000000100000000 (reserved)',
    ].join('\n');
    assert.deepEqual(pairs(parseMemMap(old).ram), [
      [0, 0x9f000],
      [0x100000, 0x40000000],
    ]);
    const user = `${old}\nuser-defined physical RAM map:\nuser: [mem 0x0000000000100000-0x000000001fffffff] usable\n`;
    assert.deepEqual(pairs(parseMemMap(user).ram), [[0x100000, 0x20000000]]);
  });

  test('CRLF e820 log', () => {
    const text = readSample('real/linux-e820-supermicro-c7z170-desktop-32g.txt');
    assert.deepEqual(parseMemMap(text.replaceAll('\n', '\r\n')), parseMemMap(text));
  });
});

describe('JSON maps', () => {
  test('array and object ranges, hex strings, reserved and affinity', () => {
    const text = JSON.stringify(
      {
        ram: [[0x100000, '0x40000000'], { start: '0x1000', end: 0x9fc00 }, ['0x100000000', '0x140000000']],
        reserved: [{ start: 0x1000000, end: '0x1200800' }],
        affinity: [{ start: 0, end: '0x100000000', domain: 4 }, ['0x100000000', '0x140000000', 9]],
        note: 'ignored',
      },
      null,
      2,
    );
    const map = parseMemMap(text, { file: 'm.json' });
    assert.equal(map.format, 'json');
    assert.deepEqual(pairs(map.ram), [
      [0x1000, 0x9f000],
      [0x100000, 0x40000000],
      [0x100000000, 0x140000000],
    ]);
    assert.deepEqual(pairs(map.reserved), [[0x1000000, 0x1201000]]);
    assert.deepEqual(map.affinity, [
      { start: 0, end: 0x100000000, domain: 0 },
      { start: 0x100000000, end: 0x140000000, domain: 1 },
    ]);
    assert.equal(map.source, 'm.json');
  });

  test('touching RAM ranges merge; empty ranges are dropped', () => {
    const map = parseMemMap('{"ram": [[8192, 16384], [0, 8192], [20480, 20480]]}');
    assert.deepEqual(pairs(map.ram), [[0, 16384]]);
  });

  test('sparseTerabyteMap round-trips through JSON', () => {
    const made = sparseTerabyteMap();
    const text = JSON.stringify({ ram: made.ram.map((r) => [r.start, r.end]) });
    assert.deepEqual(parseMemMap(text).ram, made.ram);
  });
});

// ---------------------------------------------------------------------------------------
// Broken input
// ---------------------------------------------------------------------------------------
