/**
 * Locating the repository and its data folder (`data/`: golden vectors, memory maps, the Linux
 * trace), for the CLI, tests and benchmarks. Owned by the CLI.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory holding package.json above `from` (default: this file). */
export function repoRoot(from: string = fileURLToPath(import.meta.url)): string {
  let d = dirname(from);
  while (!existsSync(join(d, 'package.json'))) {
    const up = dirname(d);
    if (up === d) throw new Error('cannot find the repository root (package.json)');
    d = up;
  }
  return d;
}

/** A path inside the repository's data folder: `dataPath('golden')`, `dataPath('traces', F)`. */
export function dataPath(...parts: string[]): string {
  return join(repoRoot(), 'data', ...parts);
}

/** The Linux trace every replay, boot workload and the visualiser use by default. */
export const DEFAULT_TRACE = dataPath('traces', 'linux-6.18-mixed-B.csv.xz');
