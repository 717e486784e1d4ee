/**
 * Suite `drain`: how close a full drain of lazy memory (`vm.drain()`, vm_phys_lazy_init) comes to
 * the cost of merely first-touching the metadata it initialises. Owned by the benchmark work.
 *
 * Method, all in fresh processes (first touch of untouched memory is the point):
 *   1. bytes: boot a lazy machine, copy its page buffers, drain, and count the bytes that
 *      changed (meta bytes + 4 × changed 32-bit link words) = n, the bytes the drain initialises;
 *   2. drain: boot a lazy machine (untimed), warm the code on small machines, time `vm.drain()`
 *      — one sample per process (and a cold-code sample: the drain as the process's first work);
 *   3. floor: time `new Uint8Array(n).fill(1)` — one sample per process.
 *   4. page floor: first-touch as many fresh OS pages as the drain's resident set grew by.
 * Reports the medians and drain ÷ floor (goal ≤ 1.5×) and drain ÷ page floor. With FreeBSD's
 * struct vm_page records (1 GiB), the floor includes the record bytes (goal ≤ 1.3×); both
 * variants get the same warm-up. Machines: the 1 GiB Firecracker guest
 * (the brief's figure) and a 16 GiB one (long enough that timer resolution does not matter).
 */
import { fileURLToPath } from 'node:url';
import { bootFromMap, type MachineMapLike } from '../../src/boot/startup.js';
import type { VmPhys } from '../../src/core/vmphys.js';
import { childSamples, type Result, result, runChild, type Suite, summarize } from '../util.js';

const SELF = fileURLToPath(import.meta.url);
/** Drains of a 64 MiB machine before a warm-code measurement. */
const WARM_DRAINS = 40;

/** A Firecracker guest of `gib` GiB (x86 layout: low 640 KiB, 1 MiB .. min(3 GiB, top), 4 GiB ..). */
function firecracker(gib: number): MachineMapLike {
  const top = gib * 2 ** 30;
  const ram = [{ start: 0x1000, end: 0x9f000 }];
  if (top <= 3 * 2 ** 30) ram.push({ start: 0x100000, end: top });
  else ram.push({ start: 0x100000, end: 0xc0000000 }, { start: 2 ** 32, end: 2 ** 32 + top - 3 * 2 ** 30 });
  return { ram };
}

/** Page records of a measurement: none (the allocator's 9 bytes a page) or struct vm_page. */
type Records = 'none' | 'freebsd';

function boot(gib: number, pageStruct: Records = 'none'): VmPhys {
  const m = firecracker(gib);
  return bootFromMap(
    { format: 'json', ram: m.ram, reserved: [], affinity: [] },
    { mode: 'lazy', shared: false, pageStruct },
  ).vm;
}

/** The argument of a drain child: a machine size, or a size with warm-up and records. */
type DrainArg = number | { gib: number; warm: boolean; pageStruct?: Records };

/** Child: bytes of page metadata the drain of a `gib` GiB lazy machine writes. */
export function childDrainBytes(arg: number | { gib: number; pageStruct: Records }): {
  n: number;
  meta: number;
  link: number;
  records: number;
  pages: number;
} {
  const { gib, pageStruct } = typeof arg === 'number' ? { gib: arg, pageStruct: 'none' as Records } : arg;
  const vm = boot(gib, pageStruct);
  const rec0 = vm.records.buffers.map((b) => new Uint8Array(b).slice());
  const meta0 = new Uint8Array(vm.state.meta.buffer).slice();
  const link0 = new Int32Array(vm.state.link.buffer).slice();
  vm.drain();
  const meta1 = new Uint8Array(vm.state.meta.buffer);
  const link1 = new Int32Array(vm.state.link.buffer);
  let meta = 0;
  for (let i = 0; i < meta0.length; i++) if (meta0[i] !== meta1[i]) meta++;
  let link = 0;
  for (let i = 0; i < link0.length; i++) if (link0[i] !== link1[i]) link += 4;
  // Record bytes: every record the drain initialises is written whole (zero fields included).
  let records = 0;
  const rsize = vm.records.layout.size;
  vm.records.buffers.forEach((b, k) => {
    const a = new Uint8Array(b);
    const a0 = rec0[k];
    for (let r = 0; r < a.length; r += rsize) {
      for (let i = r; i < r + rsize; i++)
        if (a[i] !== a0[i]) {
          records += rsize;
          break;
        }
    }
  });
  return { n: meta + link + records, meta, link, records, pages: vm.totalPages };
}

/**
 * Child: nanoseconds of one `vm.drain()` on a freshly booted lazy machine, and the OS pages it
 * first-touched (growth of the resident set, in 4 KiB pages).
 */
export function childDrain(arg: DrainArg): { ns: number; rssPages: number } {
  const { gib, warm, pageStruct } = typeof arg === 'number' ? { gib: arg, warm: false, pageStruct: undefined } : arg;
  // The measured machine is booted first, so its page buffers are fresh memory that no earlier
  // buffer freed (the runtime's allocator would hand back already-faulted pages).
  const vm = boot(gib, pageStruct);
  // Warm code: drain small machines (64 MiB: whole max-order runs and a partial segment, so
  // every drain path is compiled) before the measured drain.
  if (warm) for (let i = 0; i < WARM_DRAINS; i++) boot(1 / 16, pageStruct).drain();
  globalThis.gc?.();
  const r0 = process.memoryUsage.rss();
  const t0 = process.hrtime.bigint();
  vm.drain();
  const t1 = process.hrtime.bigint();
  const r1 = process.memoryUsage.rss();
  if (!vm.drained) throw new Error('drain did not finish');
  return { ns: Number(t1 - t0), rssPages: Math.max(0, Math.round((r1 - r0) / 4096)) };
}

/** Child: nanoseconds to first-touch `pages` fresh 4 KiB pages (one byte written in each). */
export function childPageFloor(pages: number): number {
  const t0 = process.hrtime.bigint();
  const a = new Uint8Array(Math.max(1, pages) * 4096);
  for (let i = 0; i < a.length; i += 4096) a[i] = 1;
  const t1 = process.hrtime.bigint();
  if (a[0] !== 1) throw new Error('unreachable');
  return Number(t1 - t0);
}

/** Child: nanoseconds of `new Uint8Array(n).fill(1)` in a fresh process. */
export function childFloor(n: number): number {
  const t0 = process.hrtime.bigint();
  const a = new Uint8Array(n).fill(1);
  const t1 = process.hrtime.bigint();
  if (a[n - 1] !== 1) throw new Error('unreachable');
  return Number(t1 - t0);
}

export const suite: Suite = {
  name: 'drain',
  async run({ quick }) {
    const reps = quick ? 3 : 15;
    const out: Result[] = [];
    const cases: Array<[number, Records]> = quick
      ? [
          [1, 'none'],
          [1, 'freebsd'],
        ]
      : [
          [1, 'none'],
          [16, 'none'],
          [1, 'freebsd'],
        ];
    for (const [gib, pageStruct] of cases) {
      const tag = pageStruct === 'none' ? '' : ', freebsd records';
      const bytes = await runChild<{ n: number; meta: number; link: number; records: number; pages: number }>(
        SELF,
        'childDrainBytes',
        { gib, pageStruct },
      );
      const runs: Array<{ ns: number; rssPages: number }> = [];
      const cold: number[] = [];
      for (let i = 0; i < reps; i++) {
        runs.push(
          await runChild<{ ns: number; rssPages: number }>(SELF, 'childDrain', { gib, warm: true, pageStruct }),
        );
        cold.push(
          (await runChild<{ ns: number; rssPages: number }>(SELF, 'childDrain', { gib, warm: false, pageStruct })).ns /
            1000,
        );
      }
      const drain = runs.map((r) => r.ns / 1000);
      const rssPages = Math.round(summarize(runs.map((r) => r.rssPages)).value);
      const floor = (await childSamples(SELF, 'childFloor', bytes.n, reps)).map((ns) => ns / 1000);
      const pageFloor = (await childSamples(SELF, 'childPageFloor', rssPages, reps)).map((ns) => ns / 1000);
      const d = summarize(drain).value;
      const f = summarize(floor).value;
      const pf = summarize(pageFloor).value;
      out.push(
        result(`drain of a lazy ${gib} GiB machine${tag} (vm.drain)`, 'µs', drain, {
          notes: `${bytes.pages.toLocaleString('en-US')} pages; writes ${bytes.meta.toLocaleString('en-US')} meta bytes + ${bytes.link.toLocaleString('en-US')} link bytes${bytes.records ? ` + ${bytes.records.toLocaleString('en-US')} record bytes` : ''}; first-touches ${rssPages} OS pages (RSS growth); one drain per fresh process, warm code (${WARM_DRAINS} drains of a 64 MiB machine first; the measured machine's buffers are allocated before them, so they are fresh memory)`,
        }),
        result(`drain of a lazy ${gib} GiB machine${tag}, cold code (vm.drain)`, 'µs', cold, {
          notes: 'the same drain as the first thing a fresh process runs: interpreter and JIT warm-up included',
        }),
        result(`floor for ${gib} GiB${tag}: new Uint8Array(${bytes.n}).fill(1)`, 'µs', floor, {
          notes: 'first touch of exactly as many bytes as the drain writes, in a fresh process',
        }),
        {
          name: `drain ÷ floor (bytes), ${gib} GiB${tag}`,
          unit: '×',
          value: d / f,
          goal: pageStruct === 'none' ? '≤ 1.5×' : '≤ 1.3× (full drain with struct vm_page records)',
          notes: `ratio of the medians. The drain's link writes land on one OS page per max-order chunk, so it first-touches ${rssPages} pages where the contiguous floor touches ${Math.ceil(bytes.n / 4096)}`,
        },
        result(`page floor for ${gib} GiB${tag}: first touch of ${rssPages} fresh pages`, 'µs', pageFloor, {
          notes: 'one byte written per page, as many pages as the drain first-touches (RSS growth)',
        }),
        {
          name: `drain ÷ page floor, ${gib} GiB${tag}`,
          unit: '×',
          value: d / pf,
          notes: 'what the drain costs beyond taking its page faults',
        },
      );
    }
    return out;
  },
};
