/**
 * vmphys boot: every shipped memory map boots (lazy and eager) and passes verify(); the boot
 * report's fields are present and consistent; bad CLI input is named.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
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
