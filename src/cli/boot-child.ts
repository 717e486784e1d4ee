/**
 * Child process of `vmphys boot`: boots one (map, mode) in a fresh process so that start-up
 * time and resident memory are measured without what an earlier boot left behind. Reads its
 * job as JSON from argv[2], prints one BootReport as JSON on stdout.
 */
import { readFileSync } from 'node:fs';
import type { MemMap } from '../boot/memmap.js';
import { parseMemMap } from '../boot/memmap.js';
import { firecrackerMap, sparseTerabyteMap } from '../boot/ramspec.js';
import { UsageError } from '../core/errors.js';
import { parseLayoutJson } from '../core/pagerec/layout.js';
import type { PageStructOption } from '../core/pagerec/wire.js';
import { amd64, arm64, type Profile, profileByName } from '../core/params.js';
import { runTimeline, type TimelineOptions } from './timeline.js';

export interface BootJob extends Omit<TimelineOptions, 'progress' | 'pageStruct'> {
  /** --page-struct: 'freebsd', 'none' or the path of a layout JSON file. */
  pageStruct?: string;
  /** 'amd64', 'arm64' or 'auto' (arm64 when the map text has a UEFI memory map table). */
  profileName?: string;
  mapFile?: string;
  ramBytes?: number;
  sparse1t?: boolean;
  progress?: boolean;
}

/**
 * The platform profile for a map: explicit, or 'auto': arm64 when the text holds a UEFI memory
 * map (FreeBSD prints one only on arm64), else amd64.
 */
export function jobProfile(name: string | undefined, mapText: string | undefined): Profile {
  if (name && name !== 'auto') {
    if (name !== 'amd64' && name !== 'arm64')
      throw new UsageError(`--profile must be amd64, arm64 or auto, not '${name}'`);
    return profileByName(name);
  }
  return mapText && /\bConventionalMemory\b/.test(mapText) ? arm64 : amd64;
}

/**
 * The page records a `--page-struct` value names: 'freebsd', 'none', or a layout JSON file
 * (read and validated: a LayoutError names what is wrong with it).
 */
export function jobPageStruct(v: string | undefined): PageStructOption {
  if (v === undefined || v === 'freebsd' || v === 'none') return v ?? 'freebsd';
  return parseLayoutJson(readFileSync(v, 'utf8'));
}

/** The memory map a job names. */
export function jobMap(job: BootJob): MemMap {
  if (job.mapFile) return parseMemMap(readFileSync(job.mapFile, 'utf8'), { file: job.mapFile });
  if (job.sparse1t) return sparseTerabyteMap();
  return firecrackerMap(job.ramBytes ?? 1024 * 1024 * 1024);
}

/** Drain progress to the parent (`vmphys boot` draws it on a TTY). */
function report(done: number, total: number): void {
  process.send?.({ done, total });
}

async function childMain(): Promise<void> {
  const job = JSON.parse(process.argv[2]) as BootJob;
  const map = jobMap(job);
  const profile = jobProfile(job.profileName, job.mapFile ? readFileSync(job.mapFile, 'utf8') : undefined);
  const report_ = await runTimeline(map, {
    ...job,
    profile,
    pageStruct: jobPageStruct(job.pageStruct),
    progress: job.progress && process.send ? report : undefined,
  });
  process.stdout.write(`${JSON.stringify(report_)}\n`);
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, ''))) {
  childMain()
    .catch((e) => {
      // The parent prints this message as its one error line.
      process.stdout.write(`${JSON.stringify({ error: (e as Error).message })}\n`);
      process.exitCode = 1;
    })
    .finally(() => process.disconnect?.());
}
