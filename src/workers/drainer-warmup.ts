/**
 * JIT warm-up of a drainer thread before it touches the shared allocator (small private machines
 * first, then private lazy copies of the machine it will drain). Owned by the workers layer;
 * drainer threads and the stress workers call `warmUp`.
 */
import { allocContig } from '../core/contig.js';
import { CTL } from '../core/layout.js';
import type { Profile } from '../core/params.js';
import { VmPhys } from '../core/vmphys.js';
import './exchange.js';

import { type DrainLoopOptions, drainDomainLocked, newDrainStats } from './drainer.js';
import { DomainLocks, type LockOptions } from './lock.js';

/**
 * JIT warm-up for a drainer (or any worker) before it touches the shared allocator: run the
 * drainer protocol and some allocation traffic on small private machines, so the first lock
 * holds on the real allocator run optimised code instead of the interpreter (cold holds are
 * 10-100× longer). With `drain` and `like` (the machine to be drained), it then drains private
 * copies of like's layout a little (`warmUpLike`). Returns the number of lazy blocks drained.
 */
export function warmUp(
  profile: Profile,
  rounds = 150,
  drain?: { loop: DrainLoopOptions; lock: LockOptions },
  like?: VmPhys,
): number {
  let blocks = 0;
  const stop = new Int32Array(1); // the real drain polls a stop word too
  const out = new Float64Array(64);
  const MiB = 1024 * 1024;
  const high = 4 * 1024 * MiB; // a segment above 4 GiB: addresses that are not small integers
  for (let i = 0; i < rounds; i++) {
    const vm = new VmPhys({ profile });
    vm.addSeg(0x1000, 0x9f000);
    vm.addSeg(MiB, 33 * MiB);
    vm.addSeg(high, high + 64 * MiB);
    // Fragmented phys_avail: many small lazy blocks of every order.
    vm.addAvail(0x1000, 0x9f000);
    vm.addAvail(MiB, 33 * MiB);
    for (let a = high; a < high + 64 * MiB; a += 4 * MiB)
      vm.addAvail(a, a + 4 * MiB - 4096 * (1 + ((a / (4 * MiB)) % 7)));
    vm.init();
    vm.startup('lazy');
    const locks = new DomainLocks(vm, drain?.lock);
    const st = newDrainStats();
    for (let k = 0; k < 8; k++) {
      const pool = 1 + (k & 1);
      const pa = vm.allocPages(0, pool, k);
      if (pa !== null) vm.freePages(pa, pool, k);
    }
    const got = vm.allocNpages(0, 1, 40, out);
    for (let k = 0; k < got; k++) vm.freePages(out[k], 1, 0);
    const c = allocContig(vm, 0, 3 + (i & 15), 0, 2 ** 52, 4096, 0);
    if (c !== null) vm.freeContig(c, 1, 3 + (i & 15));
    // A drainer warms up with the very options object it will drain with (same hidden class).
    drainDomainLocked(vm, locks, 0, st, stop, 0, drain?.loop ?? { batch: 1 + (i & 1) * 7 });
    blocks += st.blocks;
  }
  if (like !== undefined && drain !== undefined) blocks += warmUpLike(like, Math.ceil(rounds / 4), drain);
  return blocks;
}

/**
 * The second half of a drainer's warm-up: private lazy machines with exactly the layout of the
 * machine it will drain (segments, affinity, phys_avail: a lazy boot costs no RAM), each drained
 * for a few holds in every domain. The small machines of `warmUp` leave type feedback missing
 * for paths only this layout takes (its free lists, its lazy runs of implicit chunks); a drainer
 * warmed without this was measured deoptimising in its first holds on the real machine, which
 * then took 50-110 µs instead of under 10.
 */
function warmUpLike(like: VmPhys, rounds: number, drain: { loop: DrainLoopOptions; lock: LockOptions }): number {
  const loop = drain.loop;
  const keep = loop.maxBlocks;
  loop.maxBlocks = 3 * Math.max(1, Math.floor(loop.batch ?? 1));
  const stop = new Int32Array(1);
  let blocks = 0;
  try {
    for (let i = 0; i < rounds; i++) {
      const vm = new VmPhys({ profile: like.profile });
      const aff = like.state.c.affinity;
      for (let a = 0; a < like.state.c.ctl[CTL.NAFFINITY]; a++)
        vm.addAffinity(aff[3 * a], aff[3 * a + 1], aff[3 * a + 2]);
      for (let g = 0; g < like.nsegs; g++) vm.addSeg(...like.segRange(g));
      for (const [a, b] of like.availRanges()) vm.addAvail(a, b);
      vm.init();
      vm.startup('lazy');
      const locks = new DomainLocks(vm, drain.lock);
      for (let d = 0; d < vm.ndomains; d++) {
        const st = newDrainStats();
        drainDomainLocked(vm, locks, d, st, stop, 0, loop);
        blocks += st.blocks;
      }
    }
  } finally {
    loop.maxBlocks = keep;
  }
  return blocks;
}
