/**
 * Locating the repository and the shared data folder (`../shared` beside the checkout), for the
 * CLI and tests. Owned by the CLI.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory holding package.json above this file. */
export function repoRoot(from: string = fileURLToPath(import.meta.url)): string {
  let d = dirname(from);
  while (!existsSync(join(d, 'package.json'))) {
    const up = dirname(d);
    if (up === d) throw new Error('cannot find the repository root (package.json)');
    d = up;
  }
  return d;
}

/** `<repo>/../shared/data/...`, or VMPHYS_SHARED if set. */
export function sharedData(...parts: string[]): string {
  const base = process.env.VMPHYS_SHARED ?? resolve(repoRoot(), '..', 'shared');
  return join(base, 'data', ...parts);
}
