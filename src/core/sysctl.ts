/**
 * The text of the vm.phys_free and vm.phys_segs sysctls (sysctl_vm_phys_free / _segs), byte for
 * byte as FreeBSD's sbuf formats build them. Read-only over the queues and segments.
 */
import { hex } from './errors.js';
import { qCount } from './queues.js';
import { segDomain, segFlind } from './segments.js';
import { qIndex } from './state.js';
import type { VmPhys } from './vmphys.js';

function pad(n: number, w: number): string {
  return String(n).padStart(w, ' ');
}

/** vm.phys_free: per domain, per created free list, lcnt per order (high to low) per pool. */
export function physFree(vm: VmPhys): string {
  const s = vm.state;
  const parts: string[] = [];
  const kshift = vm.profile.pageShift - 10;
  for (let d = 0; d < vm.ndomains; d++) {
    parts.push(`\nDOMAIN ${d}:\n`);
    for (let fl = 0; fl < vm.nfreelists; fl++) {
      parts.push(`\nFREE LIST ${fl}:\n`, '\n  ORDER (SIZE)  |  NUMBER', '\n              ');
      for (let pool = 0; pool < vm.nPool; pool++) parts.push(`  |  POOL ${pool}`);
      parts.push('\n--            ');
      for (let pool = 0; pool < vm.nPool; pool++) parts.push('-- --      ');
      parts.push('--\n');
      for (let o = vm.nOrd - 1; o >= 0; o--) {
        parts.push(`  ${pad(o, 2)} (${pad(2 ** (kshift + o), 6)}K)`);
        for (let pool = 0; pool < vm.nPool; pool++) parts.push(`  |  ${pad(qCount(s, qIndex(s, d, fl, pool, o)), 6)}`);
        parts.push('\n');
      }
    }
  }
  return parts.join('');
}

/**
 * vm.phys_segs. FreeBSD prints the kernel pointer of each segment's free-queue plane (%p); we
 * print a stable stand-in derived from (domain, flind) so equal planes print equal pointers.
 */
export function physSegs(vm: VmPhys): string {
  const s = vm.state;
  const parts: string[] = [];
  for (let i = 0; i < s.nsegs; i++) {
    // Above 2^53 a double cannot hold every address: the pointer is computed in BigInt.
    const plane = 0xffffffff81a00000n + BigInt(qIndex(s, segDomain(s, i), segFlind(s, i), 0, 0) * 24);
    parts.push(
      `\nSEGMENT ${i}:\n\n`,
      `start:     ${hex(s.segStart[i])}\n`,
      `end:       ${hex(s.segEnd[i])}\n`,
      `domain:    ${segDomain(s, i)}\n`,
      `free list: 0x${plane.toString(16)}\n`,
    );
  }
  return parts.join('');
}

/** The `segs` script command's block (golden README, "Output of segs"), without the END line. */
export function segsSummary(vm: VmPhys): string {
  const s = vm.state;
  const fl = [0, 1, 2].slice(0, vm.nFl).map((f) => vm.flindOf(f));
  const names = ['default', 'dma32', 'lowmem'];
  let head = `nsegs ${vm.nsegs} nfreelists ${vm.nfreelists}`;
  for (let f = 0; f < vm.nFl; f++) head += ` ${names[f]} ${fl[f]}`;
  const lines = [head];
  for (let i = 0; i < vm.nsegs; i++)
    lines.push(`seg ${i} ${hex(s.segStart[i])} ${hex(s.segEnd[i])} domain ${segDomain(s, i)} flind ${segFlind(s, i)}`);
  return `${lines.join('\n')}\n`;
}
