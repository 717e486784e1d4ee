/**
 * Suite `startup` (issue 3): ready time (start of start-up until the first allocation has been
 * served) and resident-set growth at ready, eager against lazy, at 128 MiB, 1 GiB, 16 GiB,
 * 64 GiB (Firecracker-shaped maps) and a sparse 1 TiB map. Every sample is a fresh process.
 * "warm" samples, in both modes alike, boot a 64 MiB machine 50 times and then the measured map
 * 5 times first, so the measured boot runs compiled code, as a kernel's does; "cold" samples
 * include JIT warm-up.
 * Every size is measured without page records (the allocator's 9 bytes a page) and with
 * FreeBSD's struct vm_page records (104 bytes a page), with the same warm-up; eager boots whose
 * records would not fit in free memory are skipped (said in the lazy result's notes). Eager
 * start-up with records is compared with the first touch of the same record bytes, and the
 * first allocation's on-demand chunk initialisation with the first touch of one chunk's records.
 * A phase breakdown of the lazy 64 GiB boot (buffer creation, segments, init, start-up, first
 * allocation, with the page faults of each) shows where a lazy boot's time goes.
 */
import { freemem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { firecrackerMap, sparseTerabyteMap } from '../../src/boot/ramspec.js';
import { bootFromMap } from '../../src/boot/startup.js';
import { type BootReport, runTimeline } from '../../src/cli/timeline.js';
import { Pool } from '../../src/core/params.js';
import { type StartupMode, VmPhys } from '../../src/core/vmphys.js';
import { childSamples, gc, type Result, result, runChild, type Suite } from '../util.js';

interface Job {
  mode: StartupMode;
  ram?: number;
  sparse?: boolean;
  warm: boolean;
  /** Page records kept beside the allocator (default none: the allocator's 9 bytes a page). */
  pageStruct?: 'freebsd' | 'none';
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
  const pageStruct = job.pageStruct ?? 'none';
  if (job.warm) {
    for (let i = 0; i < WARM_SMALL; i++) {
      const w = bootFromMap(firecrackerMap(64 * 2 ** 20), { mode: job.mode, shared: true, pageStruct }).vm;
      const pa = w.allocPages(0, Pool.DEFAULT, 0);
      if (pa !== null) w.freePages(pa, Pool.DEFAULT, 0);
      w.drainStep(2);
    }
    for (let i = 0; i < WARM_SAME_MAP; i++) {
      bootFromMap(map, { mode: job.mode, shared: true, pageStruct });
      gc();
    }
  }
  return runTimeline(map, {
    mode: job.mode,
    mapName: job.sparse ? 'sparse 1 TiB' : `${job.ram}`,
    workload: 'synthetic',
    warmup: 0,
    stopAtReady: true,
    pageStruct,
  });
}

/**
 * Child: nanoseconds to first-touch `bytes` bytes of a fresh SharedArrayBuffer (fill(1)): the
 * floor of writing that many bytes of page records.
 */
export function childRecordFloor(bytes: number): number {
  const t0 = process.hrtime.bigint();
  const a = new Uint8Array(new SharedArrayBuffer(bytes)).fill(1);
  const t1 = process.hrtime.bigint();
  if (a[bytes - 1] !== 1) throw new Error('unreachable');
  return Number(t1 - t0);
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
    const pause: Record<string, number> = {};
    // Every child maps its large buffers fresh (see the note in `vmphys boot`): with glibc's
    // adaptive threshold a buffer freed by a warm-up boot is reused and memset at creation.
    process.env.MALLOC_MMAP_THRESHOLD_ = '131072';
    const free = freemem();
    let skippedEager: string | undefined;
    for (const ps of ['none', 'freebsd'] as const) {
      const tag = ps === 'none' ? '' : ', freebsd records';
      for (const [label, base] of sizes) {
        // 16 GiB with records adds minutes of first-touch faults and no goal: left out.
        if (ps === 'freebsd' && label === '16 GiB') continue;
        const pages = base.sparse ? 2 ** 28 : (base.ram as number) / 4096;
        const recBytes = ps === 'freebsd' ? pages * 104 : 0;
        for (const mode of ['eager', 'lazy'] as const) {
          // Eager at 1 TiB initialises 2^28 pages per sample: fewer repetitions.
          const big = label.includes('TiB') || (ps === 'freebsd' && label.includes('64'));
          const n = big && mode === 'eager' ? (quick ? 1 : 2) : reps;
          if (quick && label.includes('TiB') && mode === 'eager') continue;
          // Memory honesty: an eager boot touches every record; skip it when they do not fit.
          let skipped: string | undefined;
          if (mode === 'eager' && recBytes > free) {
            skippedEager = `eager boot skipped: its records need ${(recBytes / 2 ** 30).toFixed(1)} GiB, more than this computer's free memory (${(free / 2 ** 30).toFixed(1)} GiB)`;
            continue;
          }
          if (mode === 'lazy') [skipped, skippedEager] = [skippedEager, undefined];
          const rs = await samples({ ...base, mode, pageStruct: ps }, n);
          const tib = mode === 'lazy' && label.includes('TiB');
          const goalReady = tib ? `lazy ≤ 1 ms at 1 TiB${tag} (FreeBSD vm_phys.c, 56-byte pages: 168 ms)` : undefined;
          const r = result(
            `${mode} ready, ${label}${tag} (warm code)`,
            'ms',
            rs.map((x) => x.readyMs),
            { goal: goalReady, notes: skipped },
          );
          ready[`${mode} ${label}${tag}`] = r.value;
          out.push(r);
          out.push(
            result(
              `${mode} RSS growth at ready, ${label}${tag}`,
              'bytes',
              rs.map((x) => x.rssAtReadyBytes),
              { goal: tib ? `≤ 8 MiB at 1 TiB${tag} (FreeBSD: 256 MiB)` : undefined },
            ),
          );
          out.push(
            result(
              `${mode} pages initialised at ready, ${label}${tag}`,
              'pages',
              rs.map((x) => x.pagesInitializedAtReady),
            ),
          );
          if (mode === 'lazy') {
            const pr = result(
              `lazy first-allocation pause (steal + init of one lazy block), ${label}${tag}`,
              'µs',
              rs.map((x) => x.maxInitPauseUs),
              { goal: ps === 'none' ? '≤ 50 µs (FreeBSD: 87–233 µs)' : undefined },
            );
            pause[`${label}${tag}`] = pr.value;
            out.push(pr);
          }
        }
      }
    }
    const goals: Record<string, string> = {
      '128 MiB, freebsd records': '≥ 20× at 128 MiB with struct vm_page records',
      '1 GiB, freebsd records': '≥ 100× at 1 GiB with struct vm_page records',
      '64 GiB, freebsd records': '≥ 1000× at 64 GiB with struct vm_page records',
      '64 GiB': '≥ 1000× at 64 GiB',
    };
    for (const tag of ['', ', freebsd records'])
      for (const [label] of sizes) {
        const e = ready[`eager ${label}${tag}`];
        const l = ready[`lazy ${label}${tag}`];
        if (e && l)
          out.push({
            name: `eager ÷ lazy ready time, ${label}${tag}`,
            unit: '×',
            value: e / l,
            goal: goals[`${label}${tag}`],
            notes: 'ratio of the medians, measured in the same run',
          });
      }
    // Eager start-up with records against the first touch of the same record bytes.
    for (const [label, base] of sizes) {
      const e = ready[`eager ${label}, freebsd records`];
      if (!e || base.sparse) continue;
      const bytes = ((base.ram as number) / 4096) * 104;
      const n = label.includes('64') ? (quick ? 1 : 3) : reps;
      const floor = (await childSamples(SELF, 'childRecordFloor', bytes, n)).map((ns) => ns / 1e6);
      const f = result(`floor for ${label}: first touch of ${bytes} record bytes`, 'ms', floor, {
        notes:
          'new Uint8Array(new SharedArrayBuffer(n)).fill(1) in a fresh process: the records of every page, written once',
      });
      out.push(f, {
        name: `eager ready ÷ record floor, ${label}, freebsd records`,
        unit: '×',
        value: e / f.value,
        goal: '≤ 1.3× the first-touch floor',
        notes:
          'eager ready (start-up + first allocation, meta and links included) ÷ first touch of the record bytes; ratio of the medians',
      });
    }
    // The longest on-demand initialisation of one chunk (the first allocation steals one) against
    // the first touch of that chunk's records.
    {
      const chunkBytes = (2 ** 12 - 1) * 104;
      const floor = (await childSamples(SELF, 'childRecordFloor', chunkBytes, reps)).map((ns) => ns / 1000);
      const f = result(`floor for one chunk: first touch of ${chunkBytes} record bytes`, 'µs', floor, {
        notes: 'the records finish_init writes for a max-order chunk (4095 pages), first touch in a fresh process',
      });
      out.push(f);
      for (const label of ['1 GiB', '64 GiB']) {
        const p = pause[`${label}, freebsd records`];
        if (p)
          out.push({
            name: `longest on-demand chunk init ÷ chunk record floor, ${label}, freebsd records`,
            unit: '×',
            value: p / f.value,
            goal: '≤ 1.3× the first-touch floor',
            notes:
              "median longest pause of the first allocation (steal, finish_init, split) ÷ first touch of that chunk's records",
          });
      }
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
