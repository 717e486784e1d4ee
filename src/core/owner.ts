/**
 * Ownership checks of the validated API: before a free, make sure the pages being freed are
 * allocated (initialised, not free heads, not inside a larger free block), so that misuse throws
 * a typed error and changes nothing. Read-only; the façade calls these before the buddy engine.
 * @internal
 */
import { DoubleFreeError, hex, MisalignedError, NotAllocatedError, SegmentError } from './errors.js';
import { metaOrder } from './pages.js';
import { isImplicitHead, orderAt, runOf } from './queues.js';
import { pa, pfnLow, segFirst, segOfPa } from './segments.js';
import type { PhysState } from './state.js';

/** Segment of a page-aligned address, or a typed error naming `what`. */
export function segForFree(s: PhysState, addr: number, what: string): number {
  if (!Number.isSafeInteger(addr) || addr < 0) throw new SegmentError('ENOSEG', `${what}: ${addr} is not an address`);
  // ToInt32 keeps the low 32 bits of any safe integer, so the mask test is exact.
  if ((addr & (s.pageSize - 1)) !== 0) throw new MisalignedError(`${what}: ${hex(addr)} is not page aligned`);
  const seg = segOfPa(s, addr);
  if (seg < 0) throw new SegmentError('ENOSEG', `${what}: ${hex(addr)} lies outside every segment`);
  return seg;
}

/**
 * Check that the n pages at idx (segment seg) are all allocated: initialised, not free heads,
 * and not inside a larger free block. O(n + VM_NFREEORDER).
 */
export function checkAllocated(s: PhysState, idx: number, n: number, seg: number, what: string): void {
  const meta = s.meta;
  const none = s.nOrd;
  for (let i = idx; i < idx + n; i++) {
    const m = meta[i];
    if (m === 0) {
      if (runOf(s, i) >= 0 || insideFreeBlock(s, i, seg) >= 0)
        throw new DoubleFreeError(`${what}: page ${hex(pa(s, i, seg))} is free (untouched lazy memory)`);
      throw new NotAllocatedError(`${what}: page ${hex(pa(s, i, seg))} was never allocated (not initialised)`);
    }
    if (metaOrder(m) !== none)
      throw new DoubleFreeError(
        `${what}: page ${hex(pa(s, i, seg))} is already free (head of a free order-${metaOrder(m)} block)`,
      );
  }
  const h = insideFreeBlock(s, idx, seg);
  if (h >= 0)
    throw new DoubleFreeError(
      `${what}: page ${hex(pa(s, idx, seg))} lies inside the free block at ${hex(pa(s, h, seg))} (order ${orderAt(s, h)})`,
    );
}

/** Head of a free block of order > 0 that strictly contains page idx, or -1. */
function insideFreeBlock(s: PhysState, idx: number, seg: number): number {
  const meta = s.meta;
  const first = segFirst(s, seg);
  const low = pfnLow(s, idx, seg);
  const maxOrder = s.maxOrder;
  for (let o = 1; o <= maxOrder; o++) {
    const h = idx - (low & ((1 << o) - 1));
    if (h < first) break;
    if (h === idx) continue;
    const m = meta[h];
    if (m !== 0) {
      if (metaOrder(m) === o) return h;
    } else if (o === maxOrder && isImplicitHead(s, h)) return h;
  }
  return -1;
}
