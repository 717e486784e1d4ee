/**
 * Suite `startup` (issue 3): ready time (start of start-up until the first allocation has been
 * served) and resident-set growth at ready, eager against lazy, at 128 MiB, 1 GiB, 16 GiB,
 * 64 GiB (Firecracker-shaped maps) and a sparse 1 TiB map. Every sample is a fresh process.
 * "warm" samples, in both modes alike, boot a 64 MiB machine 50 times and then the measured map
 * 5 times first, so the measured boot runs compiled code, as a kernel's does; "cold" samples
 * include JIT warm-up.
 * A phase breakdown of the lazy 64 GiB boot (buffer creation, segments, init, start-up, first
 * allocation, with the page faults of each) shows where a lazy boot's time goes.
 */
import { fileURLToPath } from 'node:url';
import { firecrackerMap, sparseTerabyteMap } from '../../src/boot/ramspec.js';
import { bootFromMap } from '../../src/boot/startup.js';
import { type BootReport, runTimeline } from '../../src/cli/timeline.js';
import { Pool } from '../../src/core/params.js';
import { type StartupMode, VmPhys } from '../../src/core/vmphys.js';
import { gc, type Result, result, runChild, type Suite } from '../util.js';

interface Job {
  mode: StartupMode;
  ram?: number;
  sparse?: boolean;
  warm: boolean;
}

/** Warm-up boots of a 64 MiB machine, then of the measured map itself, before a warm sample. */
const WARM_SMALL = 50;
const WARM_SAME_MAP = 5;

/**
 * Child entry: one boot, stopped at ready. A warm sample first runs the same warm-up in both
 * modes, in the mode measured: WARM_SMALL boots of a 64 MiB machine (one allocation, free and
 * drain step each), then WARM_SAME_MAP boots of the measured map, so eager and lazy boots of a
 * map run equally warmed code. (runTimeline's own warm-up is turned off: it adds same-map boots
 * for lazy boots only.)
 */
export async function bootOnce(job: Job): Promise<BootReport> {
  const map = job.sparse ? sparseTerabyteMap() : firecrackerMap(job.ram as number);
  if (job.warm) {
    for (let i = 0; i < WARM_SMALL; i++) {
      const w = bootFromMap(firecrackerMap(64 * 2 ** 20), { mode: job.mode, shared: true }).vm;
      const pa = w.allocPages(0, Pool.DEFAULT, 0);
      if (pa !== null) w.freePages(pa, Pool.DEFAULT, 0);
      w.drainStep(2);
    }
    for (let i = 0; i < WARM_SAME_MAP; i++) {
      bootFromMap(map, { mode: job.mode, shared: true });
      gc();
    }
  }
  return runTimeline(map, {
    mode: job.mode,
    mapName: job.sparse ? 'sparse 1 TiB' : `${job.ram}`,
    workload: 'synthetic',
    warmup: 0,
    stopAtReady: true,
  });
}

const GiB = 2 ** 30;
const SELF = fileURLToPath(import.meta.url);

/** Phases of a lazy boot, µs, and the page faults taken in each. */
interface Phases {
  us: number[];
  faults: number[];
}
const PHASES = [
  'control buffer (new VmPhys)',
  'segments (vm_phys_add_seg)',
  'page buffers + vm_phys_init',
  'vm_page_startup (lazy)',
  'first allocation',
];

/** Child: one warm lazy boot of a `gib` GiB Firecracker map, timed phase by phase. */
export function childPhases(gib: number): Phases {
  for (let i = 0; i < 50; i++) {
    const w = bootFromMap(firecrackerMap(64 * 2 ** 20), { mode: 'lazy', shared: true }).vm;
    const pa = w.allocPages(0, Pool.DEFAULT, 0);
    if (pa !== null) w.freePages(pa, Pool.DEFAULT, 0);
    w.drainStep(2);
  }
  const map = firecrackerMap(gib * GiB);
  for (let i = 0; i < 5; i++) bootFromMap(map, { mode: 'lazy', shared: true });
  globalThis.gc?.();
  const t: number[] = [performance.now()];
  const f: number[] = [process.resourceUsage().minorPageFault];
  const mark = () => {
    t.push(performance.now());
    f.push(process.resourceUsage().minorPageFault);
  };
  const vm = new VmPhys({ shared: true });
  mark();
  for (const r of map.ram) vm.addSeg(r.start, r.end);
  mark();
  vm.init();
  mark();
  vm.startup('lazy');
  mark();
  vm.allocPages(0, Pool.DEFAULT, 0);
  mark();
  // resourceUsage() itself costs ~1 µs per mark; it is inside the phases it separates.
  return { us: t.slice(1).map((x, i) => (x - t[i]) * 1000), faults: f.slice(1).map((x, i) => x - f[i]) };
}

async function samples(job: Job, n: number): Promise<BootReport[]> {
  const out: BootReport[] = [];
  for (let i = 0; i < n; i++)
    out.push(await runChild<BootReport>(SELF, 'bootOnce', job, ['--max-old-space-size=8192']));
  return out;
}

export const suite: Suite = {
  name: 'startup',
  async run({ quick }) {
    const sizes: Array<[string, Job]> = [
      ['128 MiB', { mode: 'lazy', ram: 128 * 2 ** 20, warm: true }],
      ['1 GiB', { mode: 'lazy', ram: GiB, warm: true }],
      ['16 GiB', { mode: 'lazy', ram: 16 * GiB, warm: true }],
      ['64 GiB', { mode: 'lazy', ram: 64 * GiB, warm: true }],
      ['sparse 1 TiB', { mode: 'lazy', sparse: true, warm: true }],
    ];
    const reps = quick ? 2 : 7;
    const out: Result[] = [];
    const ready: Record<string, number> = {};
    for (const [label, base] of sizes) {
      for (const mode of ['eager', 'lazy'] as const) {
        // Eager at 1 TiB initialises 2^28 pages per sample: fewer repetitions.
        const n = label.includes('TiB') && mode === 'eager' ? (quick ? 1 : 2) : reps;
        if (quick && label.includes('TiB') && mode === 'eager') continue;
        const rs = await samples({ ...base, mode }, n);
        const goalReady =
          mode === 'lazy' && label.includes('TiB')
            ? 'lazy ≤ 1 ms at 1 TiB (FreeBSD vm_phys.c, 56-byte pages: 168 ms)'
            : undefined;
        const r = result(
          `${mode} ready, ${label} (warm code)`,
          'ms',
          rs.map((x) => x.readyMs),
          { goal: goalReady },
        );
        ready[`${mode} ${label}`] = r.value;
        out.push(r);
        out.push(
          result(
            `${mode} RSS growth at ready, ${label}`,
            'bytes',
            rs.map((x) => x.rssAtReadyBytes),
            {
              goal: mode === 'lazy' && label.includes('TiB') ? '≤ 8 MiB at 1 TiB (FreeBSD: 256 MiB)' : undefined,
            },
          ),
        );
        out.push(
          result(
            `${mode} pages initialised at ready, ${label}`,
            'pages',
            rs.map((x) => x.pagesInitializedAtReady),
          ),
        );
        if (mode === 'lazy')
          out.push(
            result(
              `lazy first-allocation pause (steal + init of one lazy block), ${label}`,
              'µs',
              rs.map((x) => x.maxInitPauseUs),
              {
                goal: '≤ 50 µs (FreeBSD: 87–233 µs)',
              },
            ),
          );
      }
    }
    for (const [label] of sizes) {
      const e = ready[`eager ${label}`];
      const l = ready[`lazy ${label}`];
      if (e && l)
        out.push({
          name: `eager ÷ lazy ready time, ${label}`,
          unit: '×',
          value: e / l,
          goal: label === '64 GiB' ? '≥ 1000× at 64 GiB' : undefined,
          notes: 'ratio of the medians',
        });
    }
    // Where a lazy boot's time goes (64 GiB, warm code).
    const ph: Phases[] = [];
    for (let i = 0; i < (quick ? 2 : 7); i++) ph.push(await runChild<Phases>(SELF, 'childPhases', 64));
    PHASES.forEach((name, k) => {
      const faults = ph.map((x) => x.faults[k]).sort((a, b) => a - b);
      out.push(
        result(
          `lazy 64 GiB boot phase: ${name}`,
          'µs',
          ph.map((x) => x.us[k]),
          {
            notes: `page faults in the phase: median ${faults[faults.length >> 1]} (min ${faults[0]}, max ${faults[faults.length - 1]}); warm code; one boot per fresh process`,
          },
        ),
      );
    });
    // Cold boots (JIT warm-up included), for honesty.
    for (const [label, job] of [sizes[1], sizes[4]]) {
      for (const mode of ['eager', 'lazy'] as const) {
        if (label.includes('TiB') && mode === 'eager') continue;
        const rs = await samples({ ...job, mode, warm: false }, quick ? 1 : 5);
        out.push(
          result(
            `${mode} ready, ${label} (cold process: JIT warm-up included)`,
            'ms',
            rs.map((x) => x.readyMs),
          ),
        );
      }
    }
    return out;
  },
};
