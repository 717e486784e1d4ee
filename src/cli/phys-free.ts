/** `vmphys phys-free [--map FILE | --ram SIZE] [--mode lazy|eager] [--drain]`: vm.phys_free after a boot. */
import { sysctlMain } from './phys-sysctl.js';

export async function main(args: string[]): Promise<number> {
  return sysctlMain('free', args);
}
