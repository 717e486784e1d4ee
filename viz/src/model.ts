// viz/src/model.ts: what the viz map shows, computed straight from the allocator's shared
// buffers (read-only): the state category of every page, summed per map cell (2^k pages) and per
// machine, and the colours of the categories. Owned by the viz work (issue 8).
//
// A page's state comes from its meta byte (src/core/pages.ts): 0 = never initialised; else
// 0x80 | pool<<4 | order, order 13 = not a free head. A free block is a head with order ≠ 13 and
// covers 2^order pages; an implicit lazy chunk (queues.ts isImplicitHead) is a LAZYINIT head of order 12
// whose 4095 other pages are untouched. The walk goes block by block (free blocks and implicit
// chunks are skipped whole), so its cost is the number of blocks plus allocated pages, not RAM.
import { Pool } from '../../src/core/params.js';
import { isImplicitHead } from '../../src/core/queues.js';
import { segEndIdx, segFirst } from '../../src/core/segments.js';
import type { VmPhys } from '../../src/core/vmphys.js';

/** Page state categories (indices into colour tables and counters). */
export const Cat = {
  NONE: 0, // outside memory (after the last page)
  UNTOUCHED: 1, // never initialised (lazy, still untouched)
  LAZY_HEAD: 2, // head of a free LAZYINIT block (implicit chunk or explicit)
  LAZY_INIT: 3, // initialised page inside a free LAZYINIT block
  ALLOCATED: 4, // initialised and in no free block
  BLACKLISTED: 5, // removed by vm.blacklist (vm_phys_unfree_page)
  FREE_DEFAULT: 6, // + order (0..12)
  FREE_DIRECT: 19, // + order (0..12)
  COUNT: 32,
} as const;

export const NORDERS = 13;

type RGB = readonly [number, number, number];

const hexRgb = (h: string): RGB => [
  Number.parseInt(h.slice(1, 3), 16),
  Number.parseInt(h.slice(3, 5), 16),
  Number.parseInt(h.slice(5, 7), 16),
];

function mix(a: RGB, b: RGB, t: number): RGB {
  return [
    Math.round(a[0] + (b[0] - a[0]) * t),
    Math.round(a[1] + (b[1] - a[1]) * t),
    Math.round(a[2] + (b[2] - a[2]) * t),
  ];
}

/** Three-stop ramp: light (order 0) → mid → dark (order 12). */
function ramp(light: string, mid: string, dark: string, o: number): RGB {
  const t = o / (NORDERS - 1);
  return t < 0.5 ? mix(hexRgb(light), hexRgb(mid), t * 2) : mix(hexRgb(mid), hexRgb(dark), (t - 0.5) * 2);
}

/** Background of the map (also the NONE category). */
export const BG = '#0c1220';

/** RGB of each category. */
export const CAT_RGB: RGB[] = (() => {
  const c: RGB[] = new Array(Cat.COUNT).fill(hexRgb(BG));
  c[Cat.UNTOUCHED] = hexRgb('#3b4458');
  c[Cat.LAZY_HEAD] = hexRgb('#fbbf24');
  c[Cat.LAZY_INIT] = hexRgb('#b45309');
  c[Cat.ALLOCATED] = hexRgb('#e05263');
  c[Cat.BLACKLISTED] = hexRgb('#e879f9');
  for (let o = 0; o < NORDERS; o++) {
    c[Cat.FREE_DEFAULT + o] = ramp('#cffafe', '#38bdf8', '#1e40af', o);
    c[Cat.FREE_DIRECT + o] = ramp('#ecfccb', '#4ade80', '#166534', o);
  }
  return c;
})();

export const rgbCss = (c: RGB): string => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;

/** Human name of a category. */
export function catName(cat: number): string {
  if (cat >= Cat.FREE_DIRECT) return `free DIRECT order ${cat - Cat.FREE_DIRECT}`;
  if (cat >= Cat.FREE_DEFAULT) return `free DEFAULT order ${cat - Cat.FREE_DEFAULT}`;
  return [
    'outside memory',
    'never initialised',
    'lazy head (LAZYINIT)',
    'lazy, initialised',
    'allocated',
    'blacklisted',
  ][cat];
}

/** Ties between categories of a cell go to the rarer, more interesting state. */
const PRIORITY: number[] = (() => {
  const p = new Array(Cat.COUNT).fill(1);
  p[Cat.BLACKLISTED] = 6;
  p[Cat.ALLOCATED] = 5;
  p[Cat.LAZY_HEAD] = 4;
  p[Cat.LAZY_INIT] = 3;
  p[Cat.UNTOUCHED] = 0;
  return p;
})();

/** A window of the page-index space: `cells` cells of 2^k pages from page `start`. */
export interface View {
  start: number;
  k: number;
  cells: number;
}

/**
 * The result of one walk: per-cell majority category (`cellCat`) for the view, and the pages
 * of each category over the whole machine (`totals`).
 */
export class MapModel {
  cellCat = new Uint8Array(0);
  readonly totals = new Float64Array(Cat.COUNT);
  // The cell being accumulated (cells are reached in increasing order).
  private cur = -1;
  private readonly acc = new Float64Array(Cat.COUNT);
  private readonly touched = new Uint8Array(Cat.COUNT);
  private ntouched = 0;
  private vStart = 0;
  private vEnd = 0;
  private cellPages = 1;

  /** Walk the whole machine; fill totals and the cells of `view`. */
  compute(vm: VmPhys, view: View, blacklisted: Set<number>): void {
    if (this.cellCat.length !== view.cells) this.cellCat = new Uint8Array(view.cells);
    this.cellCat.fill(Cat.NONE);
    this.totals.fill(0);
    this.cellPages = 2 ** view.k;
    this.vStart = view.start;
    this.vEnd = view.start + view.cells * this.cellPages;
    this.cur = -1;
    this.ntouched = 0;
    const meta = vm.state.meta;
    const chunk = vm.chunkPages;
    const nOrd = vm.nOrd;
    for (let s = 0; s < vm.nsegs; s++) {
      const first = segFirst(vm.state, s);
      const end = segEndIdx(vm.state, s);
      let i = first;
      while (i < end) {
        const m = meta[i];
        if (m === 0) {
          if (isImplicitHead(vm.state, i)) {
            const n = Math.min(chunk, end - i);
            this.add(Cat.LAZY_HEAD, i, 1);
            this.add(Cat.UNTOUCHED, i + 1, n - 1);
            i += n;
          } else {
            // Untouched pages outside any block head we walked (should not happen when
            // consistent): count them one run at a time up to the next non-zero byte.
            let j = i + 1;
            while (j < end && meta[j] === 0 && !isImplicitHead(vm.state, j)) j++;
            this.add(Cat.UNTOUCHED, i, j - i);
            i = j;
          }
          continue;
        }
        const order = m & 0x0f;
        if (order !== nOrd) {
          const n = Math.min(2 ** order, end - i);
          const pool = (m >> 4) & 7;
          if (pool === Pool.LAZYINIT) {
            this.add(Cat.LAZY_HEAD, i, 1);
            // Tails of a lazy block are untouched unless something initialised them.
            let j = i + 1;
            while (j < i + n) {
              const z = meta[j] === 0;
              let e = j + 1;
              while (e < i + n && (meta[e] === 0) === z) e++;
              this.add(z ? Cat.UNTOUCHED : Cat.LAZY_INIT, j, e - j);
              j = e;
            }
          } else this.add((pool === Pool.DIRECT ? Cat.FREE_DIRECT : Cat.FREE_DEFAULT) + order, i, n);
          i += n;
          continue;
        }
        // Allocated (or held since boot): a run of initialised non-heads.
        let j = i;
        while (j < end) {
          const b = meta[j];
          if (b === 0 || (b & 0x0f) !== nOrd) break;
          if (blacklisted.size > 0 && blacklisted.has(j)) {
            if (j > i) this.add(Cat.ALLOCATED, i, j - i);
            this.add(Cat.BLACKLISTED, j, 1);
            i = j + 1;
          }
          j++;
        }
        if (j > i) this.add(Cat.ALLOCATED, i, j - i);
        i = j;
      }
    }
    this.flush();
  }

  /** Count pages [from, from+n) as category cat. */
  private add(cat: number, from: number, n: number): void {
    if (n <= 0) return;
    this.totals[cat] += n;
    let a = Math.max(from, this.vStart);
    const b = Math.min(from + n, this.vEnd);
    if (a >= b) return;
    const cp = this.cellPages;
    let c = Math.floor((a - this.vStart) / cp);
    const cellStart = this.vStart + c * cp;
    if (a > cellStart || b - a < cp) {
      // A leading part of a cell.
      const take = Math.min(b, cellStart + cp) - a;
      this.accumulate(c, cat, take);
      a += take;
      c++;
      if (a >= b) return;
    }
    const whole = Math.floor((b - a) / cp);
    if (whole > 0) {
      // Whole cells of one category.
      this.flush();
      this.cellCat.fill(cat, c, c + whole);
      c += whole;
      a += whole * cp;
    }
    if (a < b) this.accumulate(c, cat, b - a);
  }

  /** Add `n` pages of `cat` to cell c (the cell being accumulated, or the next one). */
  private accumulate(c: number, cat: number, n: number): void {
    if (c !== this.cur) {
      this.flush();
      this.cur = c;
    }
    if (this.acc[cat] === 0) this.touched[this.ntouched++] = cat;
    this.acc[cat] += n;
  }

  /** Finish the cell being accumulated: its majority category (ties by PRIORITY). */
  private flush(): void {
    const nt = this.ntouched;
    if (this.cur >= 0 && nt > 0) {
      const t = this.touched;
      let best = t[0];
      for (let i = 1; i < nt; i++) {
        const d = this.acc[t[i]] - this.acc[best];
        if (d > 0 || (d === 0 && PRIORITY[t[i]] > PRIORITY[best])) best = t[i];
      }
      // A blacklisted page always shows: there are few, and they matter.
      if (this.acc[Cat.BLACKLISTED] > 0) best = Cat.BLACKLISTED;
      this.cellCat[this.cur] = best;
      for (let i = 0; i < nt; i++) this.acc[t[i]] = 0;
    }
    this.ntouched = 0;
    this.cur = -1;
  }
}

/** Page totals by group, for counters and checks: pages per pool derived from the meta bytes. */
export function groupTotals(t: Float64Array): Record<string, number> {
  let freeDefault = 0;
  let freeDirect = 0;
  for (let o = 0; o < NORDERS; o++) {
    freeDefault += t[Cat.FREE_DEFAULT + o];
    freeDirect += t[Cat.FREE_DIRECT + o];
  }
  return {
    untouched: t[Cat.UNTOUCHED],
    lazyHeads: t[Cat.LAZY_HEAD],
    lazyFree: t[Cat.LAZY_HEAD] + t[Cat.UNTOUCHED] + t[Cat.LAZY_INIT],
    freeDefault,
    freeDirect,
    allocated: t[Cat.ALLOCATED],
    blacklisted: t[Cat.BLACKLISTED],
  };
}
