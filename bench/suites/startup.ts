/**
 * Suite `startup` (issue 3): ready time (start of start-up until the first allocation has been
 * served) and resident-set growth at ready, eager against lazy, at 128 MiB, 1 GiB, 16 GiB,
 * 64 GiB (Firecracker-shaped maps) and a sparse 1 TiB map. Every sample is a fresh process.
 * "warm" samples boot a 16 MiB machine 50 times first (and, lazy, the same map 5 times) so the
 * measured boot runs compiled code, as a kernel's does; "cold" samples include JIT warm-up.
 */
import { fileURLToPath } from 'node:url';
import { firecrackerMap, sparseTerabyteMap } from '../../src/boot/ramspec.js';
import { type BootReport, runTimeline } from '../../src/boot/timeline.js';
import type { StartupMode } from '../../src/core/vmphys.js';
import { type Result, result, runChild, type Suite } from '../util.js';

interface Job {
  mode: StartupMode;
  ram?: number;
  sparse?: boolean;
  warm: boolean;
}

/** Child entry: one boot, stopped at ready. */
export async function bootOnce(job: Job): Promise<BootReport> {
  const map = job.sparse ? sparseTerabyteMap() : firecrackerMap(job.ram as number);
  return runTimeline(map, {
    mode: job.mode,
    mapName: job.sparse ? 'sparse 1 TiB' : `${job.ram}`,
    workload: 'synthetic',
    warmup: job.warm ? 50 : 0,
    stopAtReady: true,
  });
}

const GiB = 2 ** 30;
const SELF = fileURLToPath(import.meta.url);

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
