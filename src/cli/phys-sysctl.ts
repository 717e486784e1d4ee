/**
 * Shared body of `vmphys phys-free` and `vmphys phys-segs`: boot the given map in this process
 * and print the sysctl text (vm.phys_free / vm.phys_segs) exactly as FreeBSD formats it.
 */
import { readFileSync } from 'node:fs';
import { parseMemMap } from '../boot/memmap.js';
import { firecrackerMap, parseSize } from '../boot/ramspec.js';
import { bootFromMap } from '../boot/startup.js';
import { physFree, physSegs } from '../core/sysctl.js';
import { parseArgs, UsageError } from './args.js';
import { parseAddrs, parseRanges } from './boot.js';
import { jobProfile } from './boot-child.js';

export function sysctlMain(which: 'free' | 'segs', args: string[]): number {
  try {
    const a = parseArgs(args, { values: ['map', 'ram', 'mode', 'reserve', 'blacklist', 'profile'], flags: ['drain'] });
    const mode = a.values.get('mode') ?? 'lazy';
    if (mode !== 'lazy' && mode !== 'eager') throw new UsageError(`--mode must be lazy or eager`);
    const file = a.values.get('map');
    const text = file ? readFileSync(file, 'utf8') : undefined;
    const map =
      text !== undefined ? parseMemMap(text, { file }) : firecrackerMap(parseSize(a.values.get('ram') ?? '1G'));
    const profile = jobProfile(a.values.get('profile'), text);
    const { vm } = bootFromMap(map, {
      mode,
      profile,
      reserve: a.values.has('reserve') ? parseRanges(a.values.get('reserve') as string, '--reserve') : [],
      blacklist: a.values.has('blacklist') ? parseAddrs(a.values.get('blacklist') as string, '--blacklist') : [],
      shared: false,
    });
    if (a.flags.has('drain')) vm.drain();
    process.stdout.write(which === 'free' ? physFree(vm) : physSegs(vm));
    process.stdout.write('\n');
    return 0;
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err instanceof UsageError || err instanceof RangeError || err.code) {
      process.stderr.write(`vmphys phys-${which}: ${err.message}\n`);
      return 2;
    }
    throw e;
  }
}
