/**
 * Sharing one allocator between threads without copying: `handleOf(vm)` gives a plain,
 * postMessage-able description of the shared buffers, and `attach(handle)` in any worker builds
 * a full VmPhys over the very same memory. Owned by the workers layer (src/workers/*).
 */
import { StateError } from '../core/errors.js';
import { CTL, controlViews, pageViews } from '../core/layout.js';
import type { RecordsDescriptor } from '../core/pagerec/records.js';
import { profileByName } from '../core/params.js';
import { VmPhys } from '../core/vmphys.js';
import './exchange.js';
import { bindSync, syncOf } from './lock.js';

/** Everything a thread needs to attach: buffers are shared, the rest are plain numbers. */
export interface SharedHandle {
  /** Platform profile name. */
  readonly profile: 'amd64' | 'arm64';
  /** The control buffer (queues, segments, lazy runs, lock words, counters). */
  readonly control: SharedArrayBuffer;
  /** One metadata byte per page. */
  readonly meta: SharedArrayBuffer;
  /** Two Int32 queue links per page. */
  readonly link: SharedArrayBuffer;
  readonly totalPages: number;
  /** Capacity of the lazy-run table (fixes the control buffer's layout). */
  readonly maxRuns: number;
  /** The workers layer's sync buffer (liveness table, lock counters, start/stop flags). */
  readonly sync: SharedArrayBuffer;
  /** The page records (layout and shared buffers; no buffers for pageStruct 'none'). */
  readonly records: RecordsDescriptor;
  /**
   * Attach with `exactFrees` (VmPhysOptions): a block from alloc_pages may only be freed whole.
   * A per-attachment choice: the buffers are the same.
   */
  readonly exactFrees?: boolean;
}

/**
 * The shared handle of an initialised allocator (phase ≥ init). Throws StateError when `init`
 * has not run (the page buffers do not exist yet) or the allocator was made with `shared: false`.
 * Attach after `startup` (or run startup before any worker uses its attachment).
 */
export function handleOf(vm: VmPhys): SharedHandle {
  const s = vm.state;
  if (s.c.ctl[CTL.PHASE] < 1) throw new StateError('handleOf: call init() before sharing the allocator');
  const { buffer } = s.c;
  const metaBuffer = s.meta.buffer;
  const linkBuffer = s.link.buffer;
  if (
    !(buffer instanceof SharedArrayBuffer) ||
    !(metaBuffer instanceof SharedArrayBuffer) ||
    !(linkBuffer instanceof SharedArrayBuffer)
  )
    throw new StateError('handleOf: the allocator was created with shared: false');
  return {
    profile: vm.profile.name,
    control: buffer,
    meta: metaBuffer,
    link: linkBuffer,
    totalPages: s.c.ctl[CTL.TOTAL_PAGES],
    maxRuns: s.c.maxRuns,
    sync: syncOf(vm),
    records: s.rec.descriptor(),
  };
}

/**
 * A full allocator over the handle's buffers (no copy). Every mutation is visible to every other
 * attachment; callers must hold the domain lock around operations (use LockedVmPhys).
 */
export function attach(h: SharedHandle): VmPhys {
  const profile = profileByName(h.profile);
  const vm = new VmPhys(
    { profile, exactFrees: h.exactFrees === true },
    controlViews(profile, h.control, h.maxRuns),
    pageViews(h.meta, h.link, h.totalPages),
    h.records,
  );
  bindSync(vm, h.sync);
  return vm;
}
