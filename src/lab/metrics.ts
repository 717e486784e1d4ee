/**
 * Fragmentation formulas over per-order free-block counts (n_j = free blocks of order j), pure
 * and allocator-free: the same code serves a live VmPhys, a recorded series and a Linux
 * /proc/buddyinfo line. Owned by the fragmentation lab.
 *
 * Definitions (Gorman's, as Linux's mm/vmstat.c implements them for debugfs extfrag/):
 *   F   = Σ_j n_j·2^j                  free pages
 *   B   = Σ_j n_j                      free blocks
 *   S_j = Σ_{k≥j} n_k·2^(k−j)          order-j requests the free blocks could serve
 *   U_j = (F − S_j·2^j) / F            unusable free space index; U_j = 1 when F = 0
 *                                      ("no free memory is interpreted as all free memory
 *                                      is unusable", unusable_free_index)
 *   FI_j = 0 when B = 0; −1 when S_j > 0 (the request would succeed: Linux's −1000);
 *          else 1 − (1 + F/2^j) / B    (__fragmentation_index). Towards 0: the request fails
 *          for lack of memory; towards 1: it fails because of fragmentation. With very few
 *          blocks the formula goes below 0 (B = 1, F = 2^(j−1): −0.5); Linux prints that too.
 * The real-valued functions compute these exactly (in doubles); the *Milli functions compute
 * Linux's integer thousandths with its truncating divisions, for the debugfs text formats.
 */

/** All metrics of one set of per-order counts. */
export interface FragStats {
  /** Orders 0 .. orders-1. */
  orders: number;
  /** F: free pages. */
  freePages: number;
  /** B: free blocks. */
  freeBlocks: number;
  /** n_j: free blocks of order j. */
  blocks: number[];
  /** S_j: order-j blocks the free memory could serve. */
  suitable: number[];
  /** U_j: unusable free space index (0 .. 1; 1 when F = 0). */
  unusable: number[];
  /** FI_j: fragmentation index (−1 when S_j > 0, 0 when B = 0). */
  fragIndex: number[];
}

/** F = Σ n_j·2^j over orders 0 .. orders-1. */
export function freePagesOf(counts: ArrayLike<number>, orders: number = counts.length): number {
  let f = 0;
  for (let j = 0; j < orders; j++) f += counts[j] * 2 ** j;
  return f;
}

/** B = Σ n_j over orders 0 .. orders-1. */
export function freeBlocksOf(counts: ArrayLike<number>, orders: number = counts.length): number {
  let b = 0;
  for (let j = 0; j < orders; j++) b += counts[j];
  return b;
}

/** S_j = Σ_{k≥j} n_k·2^(k−j): how many order-j requests the free blocks could serve. */
export function suitableBlocks(counts: ArrayLike<number>, j: number, orders: number = counts.length): number {
  let s = 0;
  for (let k = j; k < orders; k++) s += counts[k] * 2 ** (k - j);
  return s;
}

/** U_j = (F − S_j·2^j) / F, and 1 when F = 0. */
export function unusableIndex(free: number, suitable: number, j: number): number {
  if (free === 0) return 1;
  return (free - suitable * 2 ** j) / free;
}

/** FI_j: 0 when B = 0, −1 when S_j > 0, else 1 − (1 + F/2^j)/B. */
export function fragmentationIndex(free: number, blocks: number, suitable: number, j: number): number {
  if (blocks === 0) return 0;
  if (suitable > 0) return -1;
  return 1 - (1 + free / 2 ** j) / blocks;
}

/** Linux's unusable_free_index: ⌊(F − S_j·2^j)·1000 / F⌋, 1000 when F = 0. */
export function unusableMilli(free: number, suitable: number, j: number): number {
  if (free === 0) return 1000;
  return Math.floor(((free - suitable * 2 ** j) * 1000) / free);
}

/**
 * Linux's __fragmentation_index: 0 when B = 0, −1000 when S_j > 0, else
 * 1000 − ⌊(1000 + ⌊F·1000 / 2^j⌋) / B⌋ (may be below 0 with few blocks, as in Linux).
 */
export function fragMilli(free: number, blocks: number, suitable: number, j: number): number {
  if (blocks === 0) return 0;
  if (suitable > 0) return -1000;
  return 1000 - Math.floor((1000 + Math.floor((free * 1000) / 2 ** j)) / blocks);
}

/** Every metric of per-order counts n_0 .. n_{orders−1}. */
export function fragStats(counts: ArrayLike<number>, orders: number = counts.length): FragStats {
  const blocks: number[] = [];
  for (let j = 0; j < orders; j++) blocks.push(counts[j]);
  const free = freePagesOf(counts, orders);
  const nb = freeBlocksOf(counts, orders);
  const suitable: number[] = new Array(orders);
  // S_j = n_j + 2·S_{j+1}, from the top down.
  let s = 0;
  for (let j = orders - 1; j >= 0; j--) {
    s = counts[j] + 2 * s;
    suitable[j] = s;
  }
  const unusable: number[] = [];
  const fragIndex: number[] = [];
  for (let j = 0; j < orders; j++) {
    unusable.push(unusableIndex(free, suitable[j], j));
    fragIndex.push(fragmentationIndex(free, nb, suitable[j], j));
  }
  return { orders, freePages: free, freeBlocks: nb, blocks, suitable, unusable, fragIndex };
}
