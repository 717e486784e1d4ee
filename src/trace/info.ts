/**
 * The info word of a live traced block, kept beside its handle in the pfn table (book.ts) and in
 * the replayer's slot array (replay.ts): order in bits 0..3, pool in bits 4..7, segment index in
 * bits 8..13, and PIECE (bit 14) on what remains of a split block. The book reads only the
 * order; every reader and writer of the word goes through these functions.
 */

/** info bit of a table entry that is what remains of a split block. */
export const PIECE = 1 << 14;
/** Largest segment index the word can hold (bits 8..13). */
export const INFO_SEG_MAX = 63;

/** The info word of a block of `order` in `pool`, segment `seg` (0 ≤ seg ≤ INFO_SEG_MAX). */
export function infoWord(order: number, pool: number, seg: number): number {
  return order | (pool << 4) | (seg << 8);
}
/** The block's order. */
export function infoOrder(info: number): number {
  return info & 15;
}
/** The block's pool. */
export function infoPool(info: number): number {
  return (info >> 4) & 15;
}
/** The block's segment index. */
export function infoSeg(info: number): number {
  return (info >> 8) & INFO_SEG_MAX;
}
/** Is the block what remains of a split block? */
export function infoIsPiece(info: number): boolean {
  return (info & PIECE) !== 0;
}
/** The info word of an order-`order` piece left by splitting the block of `info` (pool, seg kept). */
export function infoPiece(info: number, order: number): number {
  return (info & ~15) | PIECE | order;
}
