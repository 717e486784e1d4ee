/**
 * The slot table of a replay (TraceReplayer, and the lab's PolicyReplayer): per resolver slot s,
 * `sv[2 * s]` is our page index of the block the slot names (-1 when it holds none, e.g. its
 * allocation failed or it was freed) and `sv[2 * s + 1]` its info word (src/trace/info.ts). The
 * replayers own their tables; these are the non-hot helpers both use (growth and split frees).
 * The hot per-event functions stay inside each replayer.
 */
import { infoOrder, infoPiece } from './info.js';
import { splitPieces } from './resolve.js';

/** A slot table able to hold n slots: sv itself if it is large enough, else a copy of it doubled until it is, new slots empty (-1). */
export function growSlotTable(sv: Int32Array, n: number): Int32Array {
  let cap = sv.length;
  if (cap >= 2 * n) return sv;
  while (cap < 2 * n) cap *= 2;
  const v = new Int32Array(cap).fill(-1);
  v.set(sv);
  return v;
}

/**
 * The table side of a split free: the traced block in slot s gives up its order-o part at page
 * offset aux[ax]; slot s is emptied and the buddy pieces that remain take the slots named by
 * aux[ax + 1 ..] (empty if slot s held no block). The caller reads sv[2 * s], sv[2 * s + 1] and
 * aux[ax] before, and frees the part itself. Returns the new aux cursor.
 */
export function splitSlot(sv: Int32Array, s: number, o: number, aux: Int32Array, ax: number): number {
  const idx = sv[2 * s];
  const info = sv[2 * s + 1];
  const off = aux[ax++];
  sv[2 * s] = -1;
  let a = ax;
  splitPieces(infoOrder(info), off, o, (pOff, pk) => {
    const ps = aux[a++];
    sv[2 * ps] = idx < 0 ? -1 : idx + pOff;
    sv[2 * ps + 1] = infoPiece(info, pk);
  });
  return a;
}
