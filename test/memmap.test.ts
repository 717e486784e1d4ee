// test/memmap.test.ts: owns the tests of the memory-map parsers (src/boot/memmap.ts) and the
// RAM-size helpers (src/boot/ramspec.ts): every shipped sample map, exact ranges, error lines
// for broken input, and a fast-check fuzz that the parser only returns valid maps or throws
// MemMapError.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { detectMapFormat, type MapFormat, type MemMap, MemMapError, parseMemMap } from '../src/boot/memmap.js';
import { firecrackerMap, parseSize, sparseTerabyteMap } from '../src/boot/ramspec.js';
import { SizeError } from '../src/core/errors.js';

const KiB = 2 ** 10;
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const TiB = 2 ** 40;

// ---------------------------------------------------------------------------------------
// Sample location: <repo>/data/memmaps (the repository's own data).
// ---------------------------------------------------------------------------------------

function findRepoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return dir;
}

function findSamples(): string {
  const candidates = [path.resolve(findRepoRoot(), 'data/memmaps')];
  const found = candidates.find((c) => fs.existsSync(path.join(c, 'README.md')));
  if (found === undefined) throw new Error(`memory-map samples not found; looked in ${candidates.join(', ')}`);
  return found;
}

const SAMPLES = findSamples();
const readSample = (name: string): string => fs.readFileSync(path.join(SAMPLES, name), 'utf8');

/** Every sample and the format it must parse as; 'totals-only' must fail with MemMapError. */
const EXPECTED: Record<string, MapFormat | 'totals-only'> = {
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
function machineBytes(name: string, text: string): number {
  const unit: Record<string, number> = { M: MiB, G: GiB, T: TiB };
  const machine = /^# machine:.*$/m.exec(text)?.[0];
  const m = machine !== undefined ? /(\d+(?:\.\d+)?) ?([MGT])B\b/.exec(machine) : /-(\d+)([mgt])\./i.exec(name);
  assert.ok(m, `no machine size for ${name}`);
  return Number(m[1]) * unit[m[2].toUpperCase()];
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const FORMATS: readonly MapFormat[] = ['iomem', 'e820', 'freebsd-chunks', 'freebsd-smap', 'freebsd-efi', 'json'];
type Pair = [number, number];
const pairs = (rs: readonly { start: number; end: number }[]): Pair[] => rs.map((r) => [r.start, r.end]);
const total = (rs: readonly { start: number; end: number }[]): number => rs.reduce((a, r) => a + r.end - r.start, 0);

/** Independent check of every MemMap invariant. */
function assertValidMap(map: MemMap, pageSize = 4096): void {
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
function expectMapError(fn: () => unknown, line: number | undefined, re: RegExp, file = 'bad.txt'): MemMapError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof MemMapError, `expected MemMapError, got ${String(caught)}`);
  assert.equal(caught.code, 'EMEMMAP');
  assert.equal(caught.file, file);
  assert.equal(caught.line, line, `wrong line in: ${caught.message}`);
  const where = line === undefined ? `${file}: ` : `${file}:${line}: `;
  assert.ok(caught.message.startsWith(where), `message does not start with '${where}': ${caught.message}`);
  assert.match(caught.message, re);
  return caught;
}

const parseBad = (text: string) => () => parseMemMap(text, { file: 'bad.txt' });

/** Insert `extra` so that it becomes 1-based line `at`. */
function insertLine(text: string, at: number, extra: string): string {
  const lines = text.split('\n');
  lines.splice(at - 1, 0, extra);
  return lines.join('\n');
}

/** Replace 1-based line `at`. */
function replaceLine(text: string, at: number, by: string): string {
  const lines = text.split('\n');
  lines[at - 1] = by;
  return lines.join('\n');
}

/** 1-based number of the first line containing `needle`. */
function lineOf(text: string, needle: string): number {
  const i = text.split('\n').findIndex((l) => l.includes(needle));
  assert.ok(i >= 0, `no line contains '${needle}'`);
  return i + 1;
}

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

  test('a bad pageSize option is a RangeError', () => {
    for (const pageSize of [0, 3000, 4095, 256, 2 ** 31]) {
      assert.throws(() => parseMemMap('{"ram": [[0, 4096]]}', { pageSize }), RangeError);
    }
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

  test('bad sizes are RangeErrors naming the text', () => {
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

  test('bad sizes are RangeErrors', () => {
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
