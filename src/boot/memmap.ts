// src/boot/memmap.ts: the import path importers have always used for the memory-map parsers.
// It owns nothing: the parsers live in ./memmap/ (one file per format behind ./memmap/index.ts).

export {
  type AffinityRange,
  detectMapFormat,
  type MapFormat,
  type MemMap,
  MemMapError,
  type MemRange,
  type ParseMemMapOptions,
  parseMemMap,
} from './memmap/index.js';
