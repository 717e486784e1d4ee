/**
 * The drainer table: which lazy blocks each drainer holds off the queues (rows in the control
 * buffer, written under the domain lock), how a dead drainer is detected, and how its blocks are
 * given back (`recoverDrainers`). Owned by the workers layer; drainer.ts claims and releases rows,
 * everyone else reads them through `deadDrainers`.
 */
import { LockError, StateError, VmPhysError } from '../core/errors.js';
import { CTL, DRAINER_SLOTS, DRSLOT, lockIndex } from '../core/layout.js';
import { lazyReturnSlot } from '../core/lazy.js';
import type { VmPhys } from '../core/vmphys.js';
import './exchange.js';
import { DomainLocks, isDead, MB, mbRow, mbState, syncOf } from './lock.js';

// ------------------------------------------------------------------ the drainer table

/**
 * A drainer is gone while it still counts: it held lazy blocks off the queues (`pages` of them,
 * in `domain`; -1 when unknown), or it was still counted in ctl[CTL.DRAINERS]. `thread` is its
 * Node threadId; `inLock`: it died holding the domain's lock. `recoverDrainers` gives its blocks
 * back (unless it died inside a core call under the lock: then the domain is half-updated).
 */
export class DrainerDeathError extends VmPhysError {
  readonly thread: number;
  readonly domain: number;
  readonly pages: number;
  readonly inLock: boolean;
  constructor(message: string, thread: number, domain: number, pages: number, inLock: boolean) {
    super('EDRAINER', message);
    this.thread = thread;
    this.domain = domain;
    this.pages = pages;
    this.inLock = inLock;
  }
}

/** A row of the drainer table whose drainer is gone (see deadDrainers). */
export interface DeadDrainer {
  row: number;
  /** Node threadId of the drainer. */
  thread: number;
  domain: number;
  /** Pages of the blocks it holds off the queues (a racy read unless the domain lock is held). */
  pages: number;
  blocks: number;
  /** Still counted in ctl[CTL.DRAINERS]. */
  counted: boolean;
  /** It holds the domain's lock (the lock word still names it). */
  inLock: boolean;
}

/**
 * Claim a free row of the drainer table for owner `id` (compare-exchange on OWNER). Throws
 * StateError when every row is taken (too many drainers at once, or rows of dead drainers not
 * yet recovered).
 */
export function claimRow(t: Int32Array, id: number): number {
  for (let r = 0; r < DRAINER_SLOTS; r++) {
    const b = r * DRSLOT.SIZE;
    if (Atomics.compareExchange(t, b + DRSLOT.OWNER, 0, id) !== 0) continue;
    t[b + DRSLOT.COUNTED] = 0;
    t[b + DRSLOT.BUSY] = 0;
    t[b + DRSLOT.FIRST] = 0;
    Atomics.store(t, b + DRSLOT.N, 0);
    return r;
  }
  throw new StateError(
    `more than ${DRAINER_SLOTS} drainers at once over one allocator (or rows of dead drainers not recovered: call recoverDrainers)`,
  );
}

/**
 * Give a row up. A row that still lists blocks (the drain stopped on an error with blocks in
 * flight) is left marked abandoned (OWNER = -id), for recoverDrainers.
 */
export function releaseRow(t: Int32Array, r: number): void {
  const b = r * DRSLOT.SIZE;
  const id = Atomics.load(t, b + DRSLOT.OWNER);
  if (Atomics.load(t, b + DRSLOT.N) > t[b + DRSLOT.FIRST] || t[b + DRSLOT.COUNTED] !== 0) {
    Atomics.store(t, b + DRSLOT.OWNER, -Math.abs(id));
    return;
  }
  t[b + DRSLOT.BUSY] = 0;
  t[b + DRSLOT.FIRST] = 0;
  Atomics.store(t, b + DRSLOT.OWNER, 0);
}

/**
 * Rows of the drainer table whose drainer is gone: its thread is dead in the liveness table of
 * `sync` (see lock.ts: deaths of tracked workers are recorded on their 'exit' event), or it gave
 * the row up with blocks still listed. Read without locks: a snapshot for reporting; recovery
 * re-reads each row under its domain lock.
 */
export function deadDrainers(vm: VmPhys, sync: SharedArrayBuffer = syncOf(vm)): DeadDrainer[] {
  const t = vm.state.c.drainers;
  const out: DeadDrainer[] = [];
  for (let r = 0; r < DRAINER_SLOTS; r++) {
    const b = r * DRSLOT.SIZE;
    const owner = Atomics.load(t, b + DRSLOT.OWNER);
    if (owner === 0 || (owner > 0 && !isDead(sync, owner))) continue;
    const id = Math.abs(owner);
    const domain = Atomics.load(t, b + DRSLOT.DOMAIN);
    let pages = 0;
    const n = Atomics.load(t, b + DRSLOT.N);
    const first = Atomics.load(t, b + DRSLOT.FIRST);
    for (let i = first; i < n; i++) pages += 2 ** t[b + DRSLOT.BLOCKS + 2 * i + 1];
    out.push({
      row: r,
      thread: id - 1,
      domain,
      pages,
      blocks: Math.max(0, n - first),
      counted: Atomics.load(t, b + DRSLOT.COUNTED) !== 0,
      inLock: Atomics.load(vm.state.c.locks, lockIndex(vm.profile, domain)) === id,
    });
  }
  return out;
}

export function deathError(d: DeadDrainer, what: string): DrainerDeathError {
  return new DrainerDeathError(
    `a drainer (thread ${d.thread}) died ${d.inLock ? 'holding' : 'without holding'} domain ${d.domain}'s lock with ${d.blocks} lazy block(s) (${d.pages} pages) off the queues${d.counted ? ', still counted as draining' : ''}, ${what}; recoverDrainers gives them back`,
    d.thread,
    d.domain,
    d.pages,
    d.inLock,
  );
}

/** What recoverDrainers did. */
export interface DrainerRecovery {
  /** Dead or abandoned drainers whose rows were cleared. */
  drainers: number;
  /** Lazy blocks given back (finished and freed into DEFAULT) and their pages. */
  blocks: number;
  pages: number;
  /** True when this call moved vm_default_freepool to DEFAULT (the drain was complete otherwise). */
  finished: boolean;
}

/**
 * Recover from drainers that died: for each row of the drainer table whose drainer is dead (or
 * gave the row up with blocks listed), under the lock of its domain, withdraw its mailbox
 * request if one is posted, give its blocks back the way it would have (lazy.ts:
 * lazyReturnSlot: finish, then lazyPut into DEFAULT, which also ends their in-flight count),
 * uncount it from ctl[CTL.DRAINERS] and free the row. Afterwards free + in flight + held is
 * exact again and verify() passes. If that left nothing to drain (every domain done, no drainer
 * counted, nothing in flight), vm_default_freepool moves to DEFAULT as the last drainer would
 * have done.
 *
 * A drainer that died holding its domain's lock: if it was between core calls (row BUSY 0 and
 * no mailbox request being served), the lock is taken over from it and the recovery proceeds;
 * if it died inside a core call the domain's queues may be half-updated, and this throws
 * DrainerDeathError (inLock) without changing anything. Call from any thread that does not hold
 * a domain lock; other drainers may keep running.
 */
export function recoverDrainers(vm: VmPhys, locks: DomainLocks = new DomainLocks(vm)): DrainerRecovery {
  const s = vm.state;
  const t = s.c.drainers;
  const ctl = s.c.ctl;
  const out: DrainerRecovery = { drainers: 0, blocks: 0, pages: 0, finished: false };
  for (const dead of deadDrainers(vm, locks.sync)) {
    const b = dead.row * DRSLOT.SIZE;
    const owner = Atomics.load(t, b + DRSLOT.OWNER);
    const id = Math.abs(owner);
    if (id !== dead.thread + 1) continue; // re-used since it was read
    const d = dead.domain;
    const mb = lockIndex(vm.profile, d);
    if (locks.owner(d) === id) {
      const box = Atomics.load(locks.words, mb + MB.STATE);
      if (Atomics.load(t, b + DRSLOT.BUSY) !== 0 || mbState(box) === MB.SERVING)
        throw deathError(
          { ...dead, inLock: true },
          'inside a core call: the domain may be half-updated and cannot be recovered (run verify())',
        );
      if (!locks.takeOver(d, id))
        throw new LockError(`domain ${d}: could not take the lock over from thread ${id - 1}`);
    } else locks.lock(d);
    try {
      const box = Atomics.load(locks.words, mb + MB.STATE);
      if (box !== MB.IDLE && mbRow(box) === dead.row) Atomics.store(locks.words, mb + MB.STATE, MB.IDLE);
      const n = t[b + DRSLOT.N] - t[b + DRSLOT.FIRST];
      out.pages += lazyReturnSlot(s, dead.row);
      out.blocks += Math.max(0, n);
      if (t[b + DRSLOT.COUNTED] !== 0) {
        Atomics.sub(ctl, CTL.DRAINERS, 1);
        t[b + DRSLOT.COUNTED] = 0;
      }
      t[b + DRSLOT.BUSY] = 0;
      Atomics.store(t, b + DRSLOT.OWNER, 0);
      out.drainers++;
    } finally {
      locks.unlock(d);
    }
  }
  if (out.drainers > 0 && Atomics.load(ctl, CTL.DRAINERS) === 0) {
    let all = true;
    for (let d = 0; d < vm.ndomains; d++)
      if (Atomics.load(ctl, CTL.INITDONE + d) === 0 || Atomics.load(ctl, CTL.INFLIGHT + d) !== 0) all = false;
    if (all) {
      locks.lockAll();
      try {
        if (!vm.drained && Atomics.load(ctl, CTL.DRAINERS) === 0) {
          vm.finishLazyInit();
          out.finished = true;
        }
      } finally {
        locks.unlockAll();
      }
    }
  }
  return out;
}
