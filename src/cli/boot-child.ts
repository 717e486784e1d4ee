/**
 * Child process of `vmphys boot`: boots one (map, mode) in a fresh process so that start-up
 * time and resident memory are measured without what an earlier boot left behind. Reads its
 * job as JSON from argv[2], prints one BootReport as JSON on stdout.
 */
import { readFileSync } from 'node:fs';
import type { MemMap } from '../boot/memmap.js';
import { parseMemMap } from '../boot/memmap.js';
import { firecrackerMap, sparseTerabyteMap } from '../boot/ramspec.js';
import { amd64, arm64, type Profile, profileByName } from '../core/params.js';
import { runTimeline, type TimelineOptions } from './timeline.js';

export interface BootJob extends Omit<TimelineOptions, 'progress'> {
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
  if (name && name !== 'auto') return profileByName(name);
  return mapText && /\bConventionalMemory\b/.test(mapText) ? arm64 : amd64;
}

/** The memory map a job names. */
export function jobMap(job: BootJob): MemMap {
  if (job.mapFile) return parseMemMap(readFileSync(job.mapFile, 'utf8'), { file: job.mapFile });
  if (job.sparse1t) return sparseTerabyteMap();
  return firecrackerMap(job.ramBytes ?? 1024 * 1024 * 1024);
}

function bar(done: number, total: number): void {
  const w = 40;
  const f = total > 0 ? done / total : 1;
  const n = Math.round(f * w);
  process.stderr.write(`\r  drain [${'#'.repeat(n)}${'.'.repeat(w - n)}] ${(f * 100).toFixed(0).padStart(3)}%`);
  if (done >= total) process.stderr.write('\n');
}

async function childMain(): Promise<void> {
  const job = JSON.parse(process.argv[2]) as BootJob;
  const map = jobMap(job);
  const profile = jobProfile(job.profileName, job.mapFile ? readFileSync(job.mapFile, 'utf8') : undefined);
  const report = await runTimeline(map, {
    ...job,
    profile,
    progress: job.progress && process.stderr.isTTY ? bar : undefined,
  });
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, ''))) {
  childMain().catch((e) => {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exitCode = 1;
  });
}
