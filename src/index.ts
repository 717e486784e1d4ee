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
export { ScriptError, type ScriptHooks, ScriptRunner } from './script/run.js';
