/**
 * Test helper: the allocator's state as bytes (the control buffer and both page buffers), to
 * show that a rejected call changed nothing. `stateKey` is a cheap hash for loops;
 * `captureState`/`assertSameState` keep a full copy and name the first byte that differs.
 */
import assert from 'node:assert/strict';
import { lockIndex } from '../src/core/layout.js';
import type { VmPhys } from '../src/core/vmphys.js';

/** The three state buffers of a machine, as byte views. */
export function stateBuffers(vm: VmPhys): Uint8Array[] {
  const s = vm.state;
  return [
    new Uint8Array(s.c.buffer as ArrayBuffer),
    new Uint8Array(s.meta.buffer as ArrayBuffer),
    new Uint8Array(s.link.buffer as ArrayBuffer),
  ];
}

/** FNV-1a over every state byte (control words, page metadata, queue links). */
export function stateKey(vm: VmPhys): number {
  let h = 0x811c9dc5;
  for (const b of stateBuffers(vm)) for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return h >>> 0;
}

/** A copy of the state bytes. */
export interface StateCopy {
  bytes: Uint8Array[];
  /** Byte ranges of the control buffer left out of the comparison. */
  skip: Array<[number, number]>;
}

/**
 * Copy the state. With `exceptLocks`, the domain lock words (owner, waiters, hand-off and the
 * lock-traffic counter, which a locked call bumps whether or not it succeeds) are left out: they
 * belong to the lock, not to the allocator.
 */
export function captureState(vm: VmPhys, opts: { exceptLocks?: boolean } = {}): StateCopy {
  const skip: Array<[number, number]> = [];
  if (opts.exceptLocks) {
    const locks = vm.state.c.locks;
    const stride = lockIndex(vm.profile, 1);
    skip.push([locks.byteOffset, locks.byteOffset + vm.profile.maxMemDom * stride * 4]);
  }
  return { bytes: stateBuffers(vm).map((b) => b.slice()), skip };
}

/** Assert that the state is byte-identical to `before`, naming the first difference. */
export function assertSameState(vm: VmPhys, before: StateCopy, what: string): void {
  const names = ['control', 'meta', 'link'];
  const now = stateBuffers(vm);
  for (let k = 0; k < now.length; k++) {
    const a = before.bytes[k];
    const b = now[k];
    assert.equal(b.length, a.length, `${what}: the ${names[k]} buffer changed size`);
    for (let i = 0; i < a.length; i++) {
      if (a[i] === b[i]) continue;
      if (k === 0 && before.skip.some(([lo, hi]) => i >= lo && i < hi)) continue;
      assert.fail(`${what}: ${names[k]} byte ${i} changed from ${a[i]} to ${b[i]}`);
    }
  }
}
