/**
 * vmphys: FreeBSD's physical page allocator (vm_phys) with lazy page initialisation.
 * The public face of the library: everything a user imports comes from here.
 */

export {
  type AffinityRange,
  type MapFormat,
  type MemMap,
  MemMapError,
  type MemRange,
  type ParseMemMapOptions,
  parseMemMap,
} from './boot/memmap.js';
export { firecrackerMap, parseSize, sparseTerabyteMap } from './boot/ramspec.js';
export { type BootOptions, type BootResult, bootFromMap } from './boot/startup.js';
export { addrOk, allocContig } from './core/contig.js';
export * from './core/errors.js';
export { type IdleDrain, type IdleDrainStats, startIdleDrain } from './core/idle-drain.js';
export { type ControlViews, CTL, META_BYTES_PER_PAGE, type PageViews, STAT } from './core/layout.js';
export {
  builtinLayout,
  defineLayout,
  FIELD_TYPES,
  type FieldDecl,
  type FieldType,
  freebsdLayout,
  type Layout,
  LayoutError,
  type LayoutField,
  type LayoutJson,
  layoutToJson,
  NONE_LAYOUT,
  parseLayoutJson,
  recordBytes,
} from './core/pagerec/layout.js';
export {
  type FieldArray,
  type FieldView,
  PageRecords,
  type PageStateSource,
  RecordError,
  type RecordsDescriptor,
} from './core/pagerec/records.js';
export type { PageStructOption } from './core/pagerec/wire.js';
export {
  amd64,
  arm64,
  FreeList,
  type FreeListId,
  Pool,
  type PoolId,
  type Profile,
  profileByName,
} from './core/params.js';
export {
  type BlockChoice,
  type DrainPolicy,
  FREEBSD,
  isCorePolicy,
  makePolicy,
  type Order0Path,
  POLICIES,
  type Policy,
  PolicyEngine,
  type PoolFallback,
  policyByName,
  resetSteals,
  type SplitInsert,
  stealCounts,
} from './core/policy.js';
export { restore, snapshot } from './core/snapshot.js';
export { physFree, physSegs, segsSummary } from './core/sysctl.js';
export { availPages, type VerifyOptions, type VerifyReport, verify } from './core/verify.js';
export {
  type FoundRange,
  type PoolCounts,
  type StartupMode,
  VmPhys,
  type VmPhysOptions,
} from './core/vmphys.js';
// The fragmentation lab: metrics callable at any moment, series over a replay, probes.
export {
  type FragFilter,
  type FragReport,
  type FrameHistogram,
  fragmentation,
  fragStatsOf,
  frameHistogram,
  orderCounts,
  type ScopeStats,
} from './lab/fragmentation.js';
export { buddyinfo, extfragIndexText, parseBuddyinfo, unusableIndexText } from './lab/linux.js';
export { type FragStats, fragmentationIndex, fragStats, unusableIndex } from './lab/metrics.js';
export {
  type AllocationSource,
  allocationSource,
  type CanAllocateOptions,
  type ContigProbe,
  type ContigProbeOptions,
  canAllocate,
  probeContig,
} from './lab/probe.js';
export { DEFAULT_SERIES_EVERY, type FragColumns, FragSeries, type FragSeriesOptions } from './lab/series.js';
export { forEachFreeBlock, superpageOrder } from './lab/source.js';
export { ScriptError, type ScriptHooks, ScriptRunner } from './script/run.js';
