/**
 * The single-thread stand-in for the vmlazyinit thread: drains the lazy pool in slices of at
 * most `sliceMs` (default 1 ms) of wall time, yielding to the event loop between slices, so an
 * application keeps running while the drain proceeds "at idle priority". Uses only timers that
 * browsers and Node share. Owned by the core; a caller of VmPhys.drainStep.
 */
import type { VmPhys } from './vmphys.js';

/** A running idle drain. */
export interface IdleDrain {
  /** Resolves when every domain is drained and vm_default_freepool has moved to DEFAULT. */
  readonly done: Promise<IdleDrainStats>;
  /** Stop after the current slice (the drain can be started again later). */
  stop(): void;
}

/** What an idle drain did. */
export interface IdleDrainStats {
  slices: number;
  blocks: number;
  /** Longest slice, ms: how long the drain held the event loop at most. */
  maxSliceMs: number;
  totalMs: number;
  stopped: boolean;
}

/**
 * Start draining `vm` in the background of this thread. Each slice processes lazy blocks one
 * at a time until `sliceMs` has passed, then yields (setTimeout 0, or a caller-supplied yield).
 */
export function startIdleDrain(
  vm: VmPhys,
  opts: { sliceMs?: number; yieldFn?: (cb: () => void) => void } = {},
): IdleDrain {
  const sliceMs = opts.sliceMs ?? 1;
  const yieldFn = opts.yieldFn ?? ((cb: () => void) => setTimeout(cb, 0));
  const stats: IdleDrainStats = { slices: 0, blocks: 0, maxSliceMs: 0, totalMs: 0, stopped: false };
  let stopped = false;
  const done = new Promise<IdleDrainStats>((resolve, reject) => {
    const slice = () => {
      if (stopped) {
        stats.stopped = true;
        resolve(stats);
        return;
      }
      try {
        const t0 = performance.now();
        let finished = false;
        do {
          finished = vm.drainStep(1);
          if (!finished) stats.blocks++;
        } while (!finished && performance.now() - t0 < sliceMs);
        const dt = performance.now() - t0;
        stats.slices++;
        stats.totalMs += dt;
        if (dt > stats.maxSliceMs) stats.maxSliceMs = dt;
        if (finished) resolve(stats);
        else yieldFn(slice);
      } catch (e) {
        reject(e);
      }
    };
    yieldFn(slice);
  });
  return {
    done,
    stop() {
      stopped = true;
    },
  };
}
