/** `vmphys phys-segs [--map FILE | --ram SIZE] ...`: vm.phys_segs after a boot (see sysctlUsage). */
import { sysctlMain } from './phys-sysctl.js';

export async function main(args: string[]): Promise<number> {
  return sysctlMain('segs', args);
}
