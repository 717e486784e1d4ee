/**
 * The drainer's exchange, served by whichever thread releases a domain lock while a drainer has
 * posted a request in the lock line's mailbox (MB in lock.ts: flat combining): free the
 * drainer's finished lazy blocks into DEFAULT (lazyPut), take up to `want` more (lazyTake), and
 * answer, recording the blocks in the poster's drainer-table row. The allocator side of the lock: lock.ts only calls `serve`. Importing this module
 * registers how a VmPhys is resolved to what its locks need (control views, profile, this
 * server); drainer.ts, locked.ts and attach.ts import it.
 */
import { DRSLOT } from '../core/layout.js';
import { handleIdx, handleOrder, lazyPut, lazyTake } from '../core/lazy.js';
import type { PhysState } from '../core/state.js';
import { VmPhys } from '../core/vmphys.js';
import { type LockMailbox, MB, mbRow, mbState, mbWord, setLockHostResolver } from './lock.js';

/**
 * The mailbox server of one machine's locks.
 * @internal
 */
export class DrainerExchange implements LockMailbox {
  private readonly s: PhysState;

  constructor(s: PhysState) {
    this.s = s;
  }

  /**
   * Carry out a posted request of domain d (lock word index i) while holding d's lock, one block
   * at a time, keeping the poster's drainer-table row exact after every step (puts advance its
   * FIRST, takes append to it), so that the blocks survive the poster's death.
   */
  serve(w: Int32Array, i: number, d: number): boolean {
    const v = Atomics.load(w, i + MB.STATE);
    if (mbState(v) !== MB.REQUESTED) return false;
    const row = mbRow(v);
    if (Atomics.compareExchange(w, i + MB.STATE, v, mbWord(MB.SERVING, row)) !== v) return false;
    const s = this.s;
    const t = s.c.drainers;
    const b = row * DRSLOT.SIZE;
    const slots = i + MB.SLOTS;
    const nput = w[i + MB.NPUT];
    for (let j = 0; j < nput; j++) {
      lazyPut(s, d, w[slots + 2 * j], w[slots + 2 * j + 1]);
      t[b + DRSLOT.FIRST]++;
    }
    t[b + DRSLOT.FIRST] = 0;
    t[b + DRSLOT.N] = 0;
    const want = Math.min(w[i + MB.WANT], MB.MAX);
    let got = 0;
    for (; got < want; got++) {
      const h = lazyTake(s, d);
      if (h < 0) break;
      const idx = handleIdx(h);
      const order = handleOrder(h);
      t[b + DRSLOT.BLOCKS + 2 * got] = idx;
      t[b + DRSLOT.BLOCKS + 2 * got + 1] = order;
      t[b + DRSLOT.N] = got + 1;
      w[slots + 2 * got] = idx;
      w[slots + 2 * got + 1] = order;
    }
    w[i + MB.NGOT] = got;
    Atomics.store(w, i + MB.STATE, mbWord(MB.DONE, row));
    Atomics.notify(w, i + MB.STATE, 1);
    return true;
  }
}

setLockHostResolver((m) =>
  m instanceof VmPhys ? { control: m.state.c, profile: m.profile, mailbox: new DrainerExchange(m.state) } : null,
);
