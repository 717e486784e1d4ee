/**
 * Shared body of `vmphys phys-free` and `vmphys phys-segs`: boot the given map in this process
 * and print the sysctl text (vm.phys_free / vm.phys_segs) exactly as FreeBSD formats it.
 * Owned by the CLI.
 */
import { firecrackerMap } from '../boot/ramspec.js';
import { bootFromMap } from '../boot/startup.js';
import { physFree, physSegs } from '../core/sysctl.js';
import { exclusive, parseArgs, UsageError } from './args.js';
import { jobProfile } from './boot-child.js';
import { parseAddrs, parseRanges, ramOption, readMapFile } from './common.js';

/** The help text of `vmphys phys-free` / `vmphys phys-segs`. */
export function sysctlUsage(which: 'free' | 'segs'): string {
  const what =
    which === 'free'
      ? 'vm.phys_free: free blocks per order, pool and free list, per domain'
      : 'vm.phys_segs: each physical segment with its range, domain and free list';
  return `usage: vmphys phys-${which} [--map FILE | --ram SIZE] [--mode lazy|eager] [--drain]
                       [--reserve A-B,...] [--blacklist ADDR,...] [--profile amd64|arm64|auto]
Boots a machine in this process and prints ${what},
exactly as FreeBSD's sysctl prints it.
  --map FILE         memory map: Linux /proc/iomem or boot log (e820), FreeBSD boot output or JSON
  --ram SIZE         a Firecracker guest with SIZE of RAM, e.g. 128M, 1G (default 1G)
  --mode M           start-up mode: lazy (default) or eager
  --drain            initialise every lazy page first (vmlazyinit's work) before printing
  --reserve A-B,...  byte ranges the kernel keeps (hex or decimal), left out of the free lists
  --blacklist A,...  physical addresses of bad pages to leave out (vm.blacklist)
  --profile P        platform parameters: amd64, arm64 or auto (default: arm64 for maps with a
                     UEFI memory map table, else amd64)
`;
}

export function sysctlMain(which: 'free' | 'segs', args: string[]): number {
  const a = parseArgs(args, { values: ['map', 'ram', 'mode', 'reserve', 'blacklist', 'profile'], flags: ['drain'] });
  if (a.flags.has('help')) {
    process.stdout.write(sysctlUsage(which));
    return 0;
  }
  exclusive(a, 'map', 'ram');
  const mode = a.values.get('mode') ?? 'lazy';
  if (mode !== 'lazy' && mode !== 'eager') throw new UsageError(`--mode must be lazy or eager, not '${mode}'`);
  const reserve = a.values.has('reserve') ? parseRanges(a.values.get('reserve') as string, '--reserve') : [];
  const blacklist = a.values.has('blacklist') ? parseAddrs(a.values.get('blacklist') as string, '--blacklist') : [];
  const file = a.values.get('map');
  const m = file !== undefined ? readMapFile(file) : undefined;
  const map = m?.map ?? firecrackerMap(ramOption(a.values.get('ram') ?? '1G', 'ram'));
  const profile = jobProfile(a.values.get('profile'), m?.text);
  const { vm } = bootFromMap(map, { mode, profile, reserve, blacklist, shared: false });
  if (a.flags.has('drain')) vm.drain();
  process.stdout.write(which === 'free' ? physFree(vm) : physSegs(vm));
  process.stdout.write('\n');
  return 0;
}
