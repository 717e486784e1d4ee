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
 * Reports the medians and drain ÷ floor (goal ≤ 1.5×) and drain ÷ page floor. Machines: the 1 GiB Firecracker guest
 * (the brief's figure) and a 16 GiB one (long enough that timer resolution does not matter).
 */
import { fileURLToPath } from 'node:url';
import { buildMachine, type MachineMapLike } from '../../src/boot/startup.js';
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

function boot(gib: number): VmPhys {
  return buildMachine(firecracker(gib), 'lazy');
}

/** Child: bytes of page metadata the drain of a `gib` GiB lazy machine writes. */
export function childDrainBytes(gib: number): { n: number; meta: number; link: number; pages: number } {
  const vm = boot(gib);
  const meta0 = new Uint8Array(vm.state.meta.buffer).slice();
  const link0 = new Int32Array(vm.state.link.buffer).slice();
  vm.drain();
  const meta1 = new Uint8Array(vm.state.meta.buffer);
  const link1 = new Int32Array(vm.state.link.buffer);
  let meta = 0;
  for (let i = 0; i < meta0.length; i++) if (meta0[i] !== meta1[i]) meta++;
  let link = 0;
  for (let i = 0; i < link0.length; i++) if (link0[i] !== link1[i]) link += 4;
  return { n: meta + link, meta, link, pages: vm.totalPages };
}

/**
 * Child: nanoseconds of one `vm.drain()` on a freshly booted lazy machine, and the OS pages it
 * first-touched (growth of the resident set, in 4 KiB pages).
 */
export function childDrain(arg: number | { gib: number; warm: boolean }): { ns: number; rssPages: number } {
  const { gib, warm } = typeof arg === 'number' ? { gib: arg, warm: false } : arg;
  // The measured machine is booted first, so its page buffers are fresh memory that no earlier
  // buffer freed (the runtime's allocator would hand back already-faulted pages).
  const vm = boot(gib);
  // Warm code: drain small machines (64 MiB: whole max-order runs and a partial segment, so
  // every drain path is compiled) before the measured drain.
  if (warm) for (let i = 0; i < WARM_DRAINS; i++) buildMachine(firecracker(1 / 16), 'lazy').drain();
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
    for (const gib of quick ? [1] : [1, 16]) {
      const bytes = await runChild<{ n: number; meta: number; link: number; pages: number }>(
        SELF,
        'childDrainBytes',
        gib,
      );
      const runs: Array<{ ns: number; rssPages: number }> = [];
      const cold: number[] = [];
      for (let i = 0; i < reps; i++) {
        runs.push(await runChild<{ ns: number; rssPages: number }>(SELF, 'childDrain', { gib, warm: true }));
        cold.push(
          (await runChild<{ ns: number; rssPages: number }>(SELF, 'childDrain', { gib, warm: false })).ns / 1000,
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
        result(`drain of a lazy ${gib} GiB machine (vm.drain)`, 'µs', drain, {
          notes: `${bytes.pages.toLocaleString('en-US')} pages; writes ${bytes.meta.toLocaleString('en-US')} meta bytes + ${bytes.link.toLocaleString('en-US')} link bytes; first-touches ${rssPages} OS pages (RSS growth); one drain per fresh process, warm code (${WARM_DRAINS} drains of a 64 MiB machine first; the measured machine's buffers are allocated before them, so they are fresh memory)`,
        }),
        result(`drain of a lazy ${gib} GiB machine, cold code (vm.drain)`, 'µs', cold, {
          notes: 'the same drain as the first thing a fresh process runs: interpreter and JIT warm-up included',
        }),
        result(`floor for ${gib} GiB: new Uint8Array(${bytes.n}).fill(1)`, 'µs', floor, {
          notes: 'first touch of exactly as many bytes as the drain writes, in a fresh process',
        }),
        {
          name: `drain ÷ floor (bytes), ${gib} GiB`,
          unit: '×',
          value: d / f,
          goal: '≤ 1.5×',
          notes: `ratio of the medians. The drain's link writes land on one OS page per max-order chunk, so it first-touches ${rssPages} pages where the contiguous floor touches ${Math.ceil(bytes.n / 4096)}`,
        },
        result(`page floor for ${gib} GiB: first touch of ${rssPages} fresh pages`, 'µs', pageFloor, {
          notes: 'one byte written per page, as many pages as the drain first-touches (RSS growth)',
        }),
        {
          name: `drain ÷ page floor, ${gib} GiB`,
          unit: '×',
          value: d / pf,
          notes: 'what the drain costs beyond taking its page faults',
        },
      );
    }
    return out;
  },
};
