/**
 * `vmphys/workers`: worker threads as CPUs (Node only). One shared allocator attached from any
 * worker, the per-domain Atomics lock, the locked facade, the vmlazyinit drainer workers and the
 * per-CPU page caches.
 */
export { attach, handleOf, type SharedHandle } from './attach.js';
export {
  type DeadDrainer,
  DrainerDeathError,
  type DrainerOptions,
  type DrainerRecovery,
  type Drainers,
  deadDrainers,
  drainAll,
  drainDomainLocked,
  recoverDrainers,
  startDrainers,
} from './drainer.js';
export { DomainLocks, type LockOptions, markDeadOnExit, trackWorker } from './lock.js';
export { LockedVmPhys } from './locked.js';
export { PcpuCache, type PcpuOptions } from './pcpu.js';
export { runStress, type StressOptions, type StressReport } from './stress-run.js';
