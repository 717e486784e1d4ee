/**
 * vmphys boot: every shipped memory map boots (lazy and eager) and passes verify(); the boot
 * report's fields are present and consistent; bad CLI input is named.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { freemem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MemMapError, parseMemMap } from '../src/boot/memmap.js';
import { firecrackerMap } from '../src/boot/ramspec.js';
import { bootFromMap, subtractRanges } from '../src/boot/startup.js';
import { dataPath } from '../src/cli/paths.js';
import type { BootReport } from '../src/cli/timeline.js';
import { runTimeline } from '../src/cli/timeline.js';
import { Pool } from '../src/core/params.js';
import { availPages, verify } from '../src/core/verify.js';

const maps = [
  ...readdirSync(dataPath('memmaps'))
    .filter((f) => f.endsWith('.txt'))
    .map((f) => dataPath('memmaps', f)),
  ...readdirSync(dataPath('memmaps', 'real'))
    .filter((f) => f.endsWith('.txt'))
    .map((f) => dataPath('memmaps', 'real', f)),
];
const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

for (const file of maps) {
  const name = file.replace(/^.*\//, '');
  test(`boot ${name} lazy and eager, then verify`, () => {
    let map: ReturnType<typeof parseMemMap>;
    try {
      map = parseMemMap(readFileSync(file, 'utf8'), { file });
    } catch (e) {
      // A log with only totals (no ranges) is rejected with the line named.
      assert.ok(e instanceof MemMapError && /:\d+:/.test(e.message), String(e));
      return;
    }
    for (const mode of ['lazy', 'eager'] as const) {
      const { vm, availBytes } = bootFromMap(map, { mode, shared: false });
      assert.equal(vm.counts().total * 4096, availBytes, 'every phys_avail page is on the free lists');
      assert.equal(availPages(vm) * 4096, availBytes);
      verify(vm, { deep: vm.totalPages <= 1 << 22, heldPages: 0 });
      const a = vm.allocPages(0, Pool.DEFAULT, 3);
      assert.notEqual(a, null);
      vm.drain();
      verify(vm, { heldPages: 8 });
    }
  });
}

test('kernel image lines of an iomem map are held at boot, not free', () => {
  const map = parseMemMap(readFileSync(dataPath('memmaps', 'firecracker-24g.iomem.txt'), 'utf8'));
  assert.ok(map.reserved.length > 0);
  const { vm, availBytes } = bootFromMap(map, { mode: 'lazy', shared: false });
  const ram = map.ram.reduce((s, r) => s + r.end - r.start, 0);
  const held = subtractRanges(map.ram, subtractRanges(map.ram, map.reserved)).reduce((s, r) => s + r.end - r.start, 0);
  assert.equal(availBytes, ram - held);
  // A kernel page is allocated: freeing it is legal (kmem_bootstrap_free), unfreeing it is false.
  assert.equal(vm.unfreePage(map.reserved[0].start), false);
});

test('the blacklist removes pages and drains their domain first', () => {
  const { vm, blacklisted } = bootFromMap(firecrackerMap(256 * 1024 * 1024), {
    mode: 'lazy',
    blacklist: [0x2000000, 0x3000123, 0xa0000],
    shared: false,
  });
  assert.deepEqual(blacklisted, [0x2000000, 0x3000000]);
  assert.equal(vm.counts().lazyinit, 0);
  verify(vm, { heldPages: 2 });
});

test('a timed boot reports consistent fields (in process, synthetic workload)', async () => {
  for (const mode of ['lazy', 'eager'] as const) {
    const r = await runTimeline(firecrackerMap(512 * 1024 * 1024), {
      mode,
      mapName: 'fc512m',
      workload: 'synthetic',
      earlyEvents: 2000,
      lateEvents: 2000,
      warmup: 2,
    });
    assert.equal(r.mode, mode);
    assert.ok(r.readyMs > 0 && r.readyMs <= r.totalMs);
    assert.ok(r.pagesInitializedAtReady <= r.ramBytes / 4096 + 4096);
    assert.ok(r.pagesInitializedAtEnd >= r.pagesInitializedAtReady);
    assert.equal(r.segments, 3);
    assert.equal(r.failedAllocs, 0);
    assert.equal(r.verified, true);
    if (mode === 'lazy') {
      assert.ok(r.pagesInitializedAtReady < 10_000, `${r.pagesInitializedAtReady} pages at ready`);
      assert.ok(r.onDemandInits >= 1);
      assert.ok(r.drainBlocks > 0);
    } else assert.equal(r.pagesInitializedAtReady, r.ramBytes / 4096);
  }
});

test('vmphys boot --json prints one object per mode with the documented fields', () => {
  const out = execFileSync(
    process.execPath,
    [cli, 'boot', '--ram', '128M', '--json', '--workload', 'synthetic', '--events', '1000'],
    {
      encoding: 'utf8',
    },
  );
  const reports = JSON.parse(out) as BootReport[];
  assert.deepEqual(
    reports.map((r) => r.mode),
    ['eager', 'lazy'],
  );
  for (const r of reports)
    for (const k of [
      'mode',
      'ramBytes',
      'segments',
      'readyMs',
      'rssAtReadyBytes',
      'pagesInitializedAtReady',
      'onDemandInits',
      'maxInitPauseUs',
      'drainMs',
      'totalMs',
    ])
      assert.ok(k in r, `missing ${k}`);
});

test('vmphys boot with no map: the seed machines, with and without struct vm_page records', () => {
  const out = execFileSync(
    process.execPath,
    [cli, 'boot', '--json', '--workload', 'synthetic', '--events', '500', '--cold'],
    { encoding: 'utf8' },
  );
  const reports = JSON.parse(out) as BootReport[];
  assert.deepEqual(
    reports.map((r) => `${r.map} ${r.pageStruct} ${r.mode}`),
    [
      'firecracker 128MiB freebsd-amd64 eager',
      'firecracker 128MiB freebsd-amd64 lazy',
      'firecracker 128MiB none eager',
      'firecracker 128MiB none lazy',
      'firecracker 1GiB freebsd-amd64 eager',
      'firecracker 1GiB freebsd-amd64 lazy',
      'firecracker 1GiB none eager',
      'firecracker 1GiB none lazy',
    ],
  );
  for (const r of reports) {
    const pages = r.metadataVirtualBytes / 9;
    assert.equal(r.pageStructBytes, r.pageStruct === 'none' ? 0 : pages * 104);
    assert.equal(r.verified, true);
    assert.equal(r.drainSkipped, false);
  }
  // Eager and fully drained lazy machines initialise the same pages.
  for (let i = 0; i < reports.length; i += 2)
    assert.equal(reports[i].pagesInitializedAtEnd, reports[i + 1].pagesInitializedAtEnd, reports[i].map);
  assert.deepEqual(
    reports.map((r) => r.pagesInitializedAtEnd),
    [32670, 32670, 32670, 32670, 262046, 262046, 262046, 262046],
  );
});

test('the seed table puts FreeBSD figures beside ours and says what they show', async () => {
  const { seedTable } = await import('../src/cli/boot.js');
  const rep = (map: string, ps: string, mode: 'eager' | 'lazy', ms: number, ram: number): BootReport =>
    ({
      map,
      pageStruct: ps,
      mode,
      readyMs: ms,
      ramBytes: ram,
      metadataVirtualBytes: (ram / 4096) * 9,
      pageStructBytes: ps === 'none' ? 0 : (ram / 4096) * 104,
      verified: true,
    }) as BootReport;
  const M = 2 ** 20;
  const text = seedTable([
    rep('fc128', 'freebsd-amd64', 'eager', 40, 128 * M),
    rep('fc128', 'freebsd-amd64', 'lazy', 2, 128 * M),
    rep('fc128', 'none', 'eager', 2, 128 * M),
    rep('fc128', 'none', 'lazy', 1, 128 * M),
    rep('fc1g', 'freebsd-amd64', 'eager', 300, 1024 * M),
    rep('fc1g', 'freebsd-amd64', 'lazy', 3, 1024 * M),
    rep('fc1g', 'none', 'eager', 2, 1024 * M),
    rep('fc1g', 'none', 'lazy', 2, 1024 * M),
  ]);
  assert.match(text, /fc128 +freebsd-amd64 \(104 B a page\) +40\.00 ms +2\.00 ms +20× +3 ms \(9 % of boot\)/);
  assert.match(text, /fc1g +freebsd-amd64 \(104 B a page\) +300 ms +3\.00 ms +100× +21\.5 ms \(37 % of boot\)/);
  assert.match(text, /ready 20× sooner and 100× sooner/);
  assert.match(text, /eager ÷ lazy is only 2× and 1×/);
});

test('--page-struct takes a layout file; a bad one is named before booting', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmphys-layout-'));
  const good = join(dir, 'emu.json');
  writeFileSync(good, JSON.stringify({ name: 'emu', fields: [{ name: 'refs', type: 'u32', init: 0 }] }));
  const out = execFileSync(
    process.execPath,
    [
      cli,
      'boot',
      '--ram',
      '64M',
      '--mode',
      'lazy',
      '--json',
      '--workload',
      'synthetic',
      '--events',
      '200',
      '--cold',
      '--page-struct',
      good,
    ],
    { encoding: 'utf8' },
  );
  const [r] = JSON.parse(out) as BootReport[];
  assert.equal(r.pageStruct, 'emu');
  assert.equal(r.pageStructBytes, (r.metadataVirtualBytes / 9) * 4);
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ name: 'x', fields: [{ name: 'a', type: 'u24' }] }));
  const b = spawnSync(process.execPath, [cli, 'boot', '--ram', '64M', '--page-struct', bad], { encoding: 'utf8' });
  assert.equal(b.status, 1);
  assert.match(b.stderr, /unknown type 'u24'/);
  const c = spawnSync(process.execPath, [cli, 'boot', '--page-struct', 'linux'], { encoding: 'utf8' });
  assert.equal(c.status, 2);
  assert.match(c.stderr, /--page-struct must be freebsd, none or a layout JSON file/);
});

test('records that do not fit in memory: said before booting, eager and the drain skipped', () => {
  // The sparse 1 TiB machine's struct vm_page array is at least 28 GB (2^28 pages × 104 bytes).
  const need = 2 ** 28 * 104;
  const r = spawnSync(
    process.execPath,
    [cli, 'boot', '--sparse-1t', '--json', '--workload', 'synthetic', '--events', '200', '--cold'],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const reports = JSON.parse(r.stdout) as BootReport[];
  if (freemem() < need) {
    assert.match(
      r.stderr,
      /sparse 1 TiB: its 'freebsd-amd64' page records need 2\d\.\d GiB, more than this computer's free memory/,
    );
    assert.deepEqual(
      reports.map((x) => x.mode),
      ['lazy'],
    );
    assert.equal(reports[0].drainSkipped, true);
  } else assert.equal(reports.length, 2);
  const lazy = reports.find((x) => x.mode === 'lazy') as BootReport;
  assert.ok(lazy.pageStructBytes >= need && lazy.pageStructBytes % 104 === 0);
  assert.ok(lazy.rssAtReadyBytes < 64 * 2 ** 20, `RSS grew ${lazy.rssAtReadyBytes} bytes`);
});

test('vmphys boot names bad input', () => {
  const bad = spawnSync(process.execPath, [cli, 'boot', '--ram', '12Q'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /12Q/);
  const opt = spawnSync(process.execPath, [cli, 'boot', '--frobnicate'], { encoding: 'utf8' });
  assert.equal(opt.status, 2);
  assert.match(opt.stderr, /--frobnicate/);
  const map = spawnSync(process.execPath, [cli, 'boot', '--map', join(dataPath('traces'), 'README.md')], {
    encoding: 'utf8',
  });
  assert.notEqual(map.status, 0);
  assert.match(map.stderr, /README\.md/);
});
