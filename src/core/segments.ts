/**
 * Segments: address <-> page index (vm_phys_paddr_to_vm_page, vm_phys_lookup_segind). Pages are
 * numbered by a packed index: segments one after another in address order (FreeBSD's
 * VM_PHYSSEG_SPARSE layout, used for both ports; holes cost nothing). Physical addresses are
 * numbers (exact to 2^53); page indices are int32.
 *
 * The shared segment table (layout SEGF, written by physinit.ts) is the persistent form; this
 * file is the only writer of the derived index in PhysState (segStart, segEnd, seg rows,
 * flQBase, allocQ), rebuilt by `refreshSegments` after init, attach or restore, read-only afterwards.
 * Friends read segments through the functions here.
 * @internal
 */
import { CTL, SEGF } from './layout.js';
import { ALLOCQ_POOL_SHIFT, NO_QUEUE, type PhysState, qIndex, SEGROW, SEGROW_SIZE } from './state.js';

/** Rebuild the segment index from the shared segment table. */
export function refreshSegments(s: PhysState): void {
  const segs = s.c.segs;
  const n = s.c.ctl[CTL.NSEGS];
  const row = s.seg;
  s.nsegs = n;
  let end = 0;
  for (let i = 0; i < n; i++) {
    const b = i * SEGF.SIZE;
    const start = segs[b + SEGF.START];
    const first = segs[b + SEGF.FIRST];
    s.segStart[i] = start;
    s.segEnd[i] = segs[b + SEGF.END];
    const r = i * SEGROW_SIZE;
    end = first + (s.segEnd[i] - start) / s.pageSize;
    row[r + SEGROW.FIRST] = first;
    row[r + SEGROW.END] = end;
    row[r + SEGROW.ADJ] = (start / s.pageSize - first) | 0;
    row[r + SEGROW.DOMAIN] = segs[b + SEGF.DOMAIN];
    row[r + SEGROW.FLIND] = segs[b + SEGF.FLIND];
    row[r + SEGROW.QBASE] = qIndex(s, row[r + SEGROW.DOMAIN], row[r + SEGROW.FLIND], 0, 0);
  }
  // A sentinel row: its FIRST ends the last segment (the binary search reads it).
  row[n * SEGROW_SIZE + SEGROW.FIRST] = end;
  s.lastSegRow = 0;
  primeSegOfIdx(s, end);
  for (let d = 0; d < s.profile.maxMemDom; d++)
    for (let fl = 0; fl < s.nFl; fl++) {
      const flind = s.c.ctl[CTL.FL_TO_FLIND + fl];
      s.flQBase[d * s.nFl + fl] = flind < 0 || n === 0 ? -1 : qIndex(s, d, flind, 0, 0);
    }
  for (let d = 0; d < s.profile.maxMemDom; d++)
    for (let pool = 0; pool < s.nPool; pool++) {
      const base = s.flQBase[d * s.nFl];
      s.allocQ[(d << ALLOCQ_POOL_SHIFT) | pool] = base < 0 ? NO_QUEUE : base + pool * s.nOrd;
    }
}

/**
 * Takes segOfIdx's slow path a few times (the lookups miss the one-entry cache in turn: page 0
 * and `end`, the first index past the last segment, which the search maps to the last segment),
 * then resets the cache. Why: a compiled function that inlines segOfIdx and has never seen its
 * call to segOfIdxSlow made (a process's first machine rarely misses the cache once its code is
 * hot) deoptimises when a later machine misses; and V8 records what a function does only from
 * about its eighth call on. Harmless for any machine (the search only reads the index).
 */
function primeSegOfIdx(s: PhysState, end: number): void {
  if (s.nsegs === 0) return;
  for (let k = 0; k < 16; k++) segOfIdx(s, (k & 1) === 0 ? 0 : end);
  s.lastSegRow = 0;
}

/** First page index of segment seg. */
export function segFirst(s: PhysState, seg: number): number {
  return s.seg[seg * SEGROW_SIZE + SEGROW.FIRST];
}
/** Page index just past segment seg. */
export function segEndIdx(s: PhysState, seg: number): number {
  return s.seg[seg * SEGROW_SIZE + SEGROW.END];
}
/** Domain of segment seg. */
export function segDomain(s: PhysState, seg: number): number {
  return s.seg[seg * SEGROW_SIZE + SEGROW.DOMAIN];
}
/** Free-list index (flind) of segment seg. */
export function segFlind(s: PhysState, seg: number): number {
  return s.seg[seg * SEGROW_SIZE + SEGROW.FLIND];
}
/** qIndex(domain, flind, 0, 0) of segment seg: its row of free queues. */
export function segQBase(s: PhysState, seg: number): number {
  return s.seg[seg * SEGROW_SIZE + SEGROW.QBASE];
}

/** Physical address of a page index (caller knows the segment). */
export function pa(s: PhysState, idx: number, seg: number): number {
  return s.segStart[seg] + (idx - s.seg[seg * SEGROW_SIZE]) * s.pageSize;
}

/** Segment of a page index (one-entry cache, then binary search over first indices). */
export function segOfIdx(s: PhysState, idx: number): number {
  // Small on purpose (inlined into the order-0 paths, whose inlining budget is nearly spent):
  // the cache is kept as a row offset, and row fields are read by number (FIRST 0, END 1).
  const r = s.lastSegRow;
  const row = s.seg;
  return idx >= row[r] && idx < row[r + 1] ? r >> 3 : segOfIdxSlow(s, idx);
}
function segOfIdxSlow(s: PhysState, idx: number): number {
  const row = s.seg;
  let lo = 0;
  let hi = s.nsegs - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (row[mid * SEGROW_SIZE] <= idx) lo = mid;
    else hi = mid - 1;
  }
  s.lastSegRow = lo * SEGROW_SIZE;
  return lo;
}

/** Physical address of a page index. */
export function paOf(s: PhysState, idx: number): number {
  return pa(s, idx, segOfIdx(s, idx));
}

/** vm_phys_lookup_segind + paddr_to_seg: the segment containing pa, or -1. */
export function segOfPa(s: PhysState, pa: number): number {
  const c = s.lastSegRow / SEGROW_SIZE;
  const n = s.nsegs;
  if (c < n && pa >= s.segStart[c] && pa < s.segEnd[c]) return c;
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (s.segEnd[mid] <= pa) lo = mid + 1;
    else hi = mid;
  }
  if (lo < n && pa >= s.segStart[lo]) {
    s.lastSegRow = lo * SEGROW_SIZE;
    return lo;
  }
  return -1;
}

/** Page index of pa inside segment seg (vm_phys_seg_paddr_to_vm_page). */
export function idxIn(s: PhysState, seg: number, pa: number): number {
  return s.seg[seg * SEGROW_SIZE] + Math.floor((pa - s.segStart[seg]) * s.invPageSize);
}

/** vm_phys_paddr_to_vm_page: the page index of pa, or -1 outside every segment. */
export function paddrToPage(s: PhysState, pa: number): number {
  const seg = segOfPa(s, pa);
  return seg < 0 ? -1 : idxIn(s, seg, pa);
}

/** Low 32 bits of a page's frame number (exact for any pfn < 2^53). */
export function pfnLow(s: PhysState, idx: number, seg: number): number {
  return (idx + s.seg[seg * SEGROW_SIZE + SEGROW.ADJ]) | 0;
}
