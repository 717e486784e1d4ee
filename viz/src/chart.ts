// viz/src/chart.ts: the "free blocks per order over time" chart of the viz page (a canvas line
// chart, log y, one line per buddy order, all pools together — the same histogram `vmphys
// replay` samples). Owned by the viz work (issue 8).
import { NORDERS } from './model.js';

/** One colour per order (a turbo-like spectrum, order 0 violet → order 12 red). */
export const ORDER_COLORS: string[] = [
  '#7c3aed',
  '#6366f1',
  '#3b82f6',
  '#0ea5e9',
  '#06b6d4',
  '#14b8a6',
  '#22c55e',
  '#84cc16',
  '#eab308',
  '#f59e0b',
  '#f97316',
  '#ef4444',
  '#e11d48',
];

const MAX_SAMPLES = 1200;
/** The dashed LAZYINIT line (the lazy-head colour of the map). */
const LAZY_COLOR = '#fbbf24';

/** A bounded series of samples: time (s) and free blocks per order. */
export class FreeChart {
  private readonly canvas: HTMLCanvasElement;
  private readonly t: number[] = [];
  private readonly rows: Float64Array[] = [];
  private dirty = true;
  private marks: Array<{ t: number; label: string }> = [];

  constructor(canvas: HTMLCanvasElement) {
    this.canvas = canvas;
  }

  reset(): void {
    this.t.length = 0;
    this.rows.length = 0;
    this.marks = [];
    this.dirty = true;
  }

  /**
   * Add a sample: free blocks per order (all pools) and, as a dashed line, the free blocks of
   * the LAZYINIT pool (all orders). Equal consecutive rows only move the time forward.
   */
  sample(time: number, blocks: Float64Array, lazyBlocks: number): void {
    const row = new Float64Array(NORDERS + 1);
    row.set(blocks.subarray(0, NORDERS));
    row[NORDERS] = lazyBlocks;
    const n = this.rows.length;
    if (n >= 2) {
      const a = this.rows[n - 1];
      const b = this.rows[n - 2];
      let same = true;
      for (let o = 0; o <= NORDERS && same; o++) same = a[o] === row[o] && b[o] === row[o];
      if (same) {
        this.t[n - 1] = time;
        this.dirty = true;
        return;
      }
    }
    if (n >= MAX_SAMPLES) {
      // Keep every other sample (and the last): bounded memory, the whole history visible.
      let k = 0;
      for (let i = 0; i < n; i += 2, k++) {
        this.t[k] = this.t[i];
        this.rows[k] = this.rows[i];
      }
      if ((n - 1) % 2 !== 0) {
        this.t[k] = this.t[n - 1];
        this.rows[k] = this.rows[n - 1];
        k++;
      }
      this.t.length = k;
      this.rows.length = k;
    }
    this.t.push(time);
    this.rows.push(row);
    this.dirty = true;
  }

  /** A labelled vertical marker (boot, drain start…). */
  mark(time: number, label: string): void {
    this.marks.push({ t: time, label });
    this.dirty = true;
  }

  get samples(): number {
    return this.rows.length;
  }

  /** The series so far: times (s), rows (blocks per order, then LAZYINIT blocks) and marks. */
  data(): { t: number[]; rows: number[][]; marks: Array<{ t: number; label: string }> } {
    return { t: [...this.t], rows: this.rows.map((r) => Array.from(r)), marks: [...this.marks] };
  }

  draw(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const cv = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = cv.clientWidth;
    const h = cv.clientHeight;
    if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
      cv.width = Math.round(w * dpr);
      cv.height = Math.round(h * dpr);
    }
    const g = cv.getContext('2d') as CanvasRenderingContext2D;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const L = 56;
    const R = 92;
    const T = 12;
    const B = 26;
    const pw = w - L - R;
    const ph = h - T - B;
    g.font = '11px ui-monospace, SFMono-Regular, Menlo, monospace';
    g.fillStyle = '#94a3b8';
    g.strokeStyle = '#1e293b';
    g.lineWidth = 1;
    const n = this.rows.length;
    let max = 1;
    for (const r of this.rows) for (let o = 0; o <= NORDERS; o++) if (r[o] > max) max = r[o];
    const decades = Math.max(1, Math.ceil(Math.log10(max + 1) - 0.01));
    const y = (v: number) => T + ph - (Math.log10(v + 1) / decades) * ph;
    // Grid: 0, 1, 10, 100, ... (the scale is log10(count + 1)).
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (let d = -1; d <= decades; d++) {
      const v = d < 0 ? 0 : 10 ** d;
      if (d >= 0 && Math.log10(v + 1) > decades + 0.01) break;
      const yy = Math.round(y(v)) + 0.5;
      g.beginPath();
      g.moveTo(L, yy);
      g.lineTo(L + pw, yy);
      g.stroke();
      g.fillText(v >= 1e6 ? `${v / 1e6}M` : v >= 1e3 ? `${v / 1e3}k` : String(v), L - 6, yy);
    }
    const t0 = n > 0 ? this.t[0] : 0;
    const t1 = n > 1 ? Math.max(this.t[n - 1], t0 + 1e-3) : t0 + 1;
    const x = (t: number) => L + ((t - t0) / (t1 - t0)) * pw;
    g.textAlign = 'center';
    g.textBaseline = 'top';
    for (let k = 0; k <= 5; k++) {
      const tt = t0 + ((t1 - t0) * k) / 5;
      g.fillText(`${tt.toFixed(tt < 10 ? 1 : 0)} s`, x(tt), T + ph + 6);
    }
    for (const m of this.marks) {
      if (m.t < t0) continue;
      const xx = Math.round(x(m.t)) + 0.5;
      g.strokeStyle = '#475569';
      g.setLineDash([3, 3]);
      g.beginPath();
      g.moveTo(xx, T);
      g.lineTo(xx, T + ph);
      g.stroke();
      g.setLineDash([]);
      g.textAlign = 'left';
      g.fillText(m.label, xx + 3, T + 2);
    }
    // One line per order that was ever non-zero.
    g.lineWidth = 1.6;
    g.textAlign = 'left';
    g.textBaseline = 'middle';
    const labelY: Array<[number, number]> = []; // [order, y of its last value]
    for (let o = 0; o <= NORDERS; o++) {
      if (n === 0 || !this.rows.some((r) => r[o] > 0)) continue;
      const lazy = o === NORDERS;
      g.strokeStyle = lazy ? LAZY_COLOR : ORDER_COLORS[o];
      g.setLineDash(lazy ? [5, 3] : []);
      g.lineWidth = lazy ? 2 : 1.6;
      g.beginPath();
      for (let i = 0; i < n; i++) {
        const xx = x(this.t[i]);
        const yy = y(this.rows[i][o]);
        if (i === 0) g.moveTo(xx, yy);
        else {
          // Steps: the count holds until the next sample.
          g.lineTo(xx, y(this.rows[i - 1][o]));
          g.lineTo(xx, yy);
        }
      }
      if (n === 1) g.lineTo(L + pw, y(this.rows[0][o]));
      g.stroke();
      g.setLineDash([]);
      labelY.push([o, y(this.rows[n - 1][o])]);
    }
    // End labels: one per order still non-zero, pushed apart; the orders at 0 share one label.
    const zeros = labelY.filter(([o]) => this.rows[n - 1][o] === 0).map(([o]) => (o === NORDERS ? 'lazy' : `o${o}`));
    const labels: Array<{ y: number; text: string; color: string }> = labelY
      .filter(([o]) => this.rows[n - 1][o] !== 0)
      .map(([o, yy]) => ({
        y: yy,
        text: `${o === NORDERS ? 'lazy' : `o${o}`} ${this.rows[n - 1][o].toLocaleString('en-US')}`,
        color: o === NORDERS ? LAZY_COLOR : ORDER_COLORS[o],
      }));
    if (zeros.length > 0)
      labels.push({
        y: y(0),
        text: `${zeros.length > 3 ? `${zeros.length} lines` : zeros.join(' ')} 0`,
        color: '#94a3b8',
      });
    labels.sort((a, b) => a.y - b.y);
    for (let i = 1; i < labels.length; i++) labels[i].y = Math.max(labels[i].y, labels[i - 1].y + 11);
    // Then from the bottom up, so that the lowest label stays inside the plot.
    for (let i = labels.length - 1; i >= 0; i--)
      labels[i].y = Math.min(labels[i].y, i === labels.length - 1 ? T + ph : labels[i + 1].y - 11);
    for (const l of labels) {
      g.fillStyle = l.color;
      g.fillText(l.text, L + pw + 6, l.y);
    }
    if (n === 0) {
      g.fillStyle = '#64748b';
      g.textAlign = 'center';
      g.fillText('boot a machine to start the chart', L + pw / 2, T + ph / 2);
    }
  }
}

/** Colours of the superpage chart: U_j (left axis, 0..1) and S_j (right axis, blocks). */
export const FRAG_COLORS = { unusable: '#f472b6', suitable: '#34d399' } as const;

/**
 * The "superpage availability over time" chart beside the per-order one: the unusable free space
 * index U_j and the suitable blocks S_j at the superpage order j (src/lab/metrics.ts), both over
 * all pools, sampled with the per-order chart. Bounded like FreeChart (every other sample dropped
 * when full).
 */
export class FragChart {
  private readonly canvas: HTMLCanvasElement;
  private readonly t: number[] = [];
  private readonly u: number[] = [];
  private readonly s: number[] = [];
  private dirty = true;
  /** The superpage order the chart shows. */
  order = 9;

  constructor(canvas: HTMLCanvasElement) {
    this.canvas = canvas;
  }

  reset(order: number): void {
    this.t.length = 0;
    this.u.length = 0;
    this.s.length = 0;
    this.order = order;
    this.dirty = true;
  }

  /** Add a sample; equal consecutive values only move the time forward. */
  sample(time: number, unusable: number, suitable: number): void {
    const n = this.t.length;
    if (
      n >= 2 &&
      this.u[n - 1] === unusable &&
      this.u[n - 2] === unusable &&
      this.s[n - 1] === suitable &&
      this.s[n - 2] === suitable
    ) {
      this.t[n - 1] = time;
      this.dirty = true;
      return;
    }
    if (n >= MAX_SAMPLES) {
      let k = 0;
      for (let i = 0; i < n; i += 2, k++) {
        this.t[k] = this.t[i];
        this.u[k] = this.u[i];
        this.s[k] = this.s[i];
      }
      this.t.length = this.u.length = this.s.length = k;
    }
    this.t.push(time);
    this.u.push(unusable);
    this.s.push(suitable);
    this.dirty = true;
  }

  /** The series so far: times (s), U and S. */
  data(): { order: number; t: number[]; unusable: number[]; suitable: number[] } {
    return { order: this.order, t: [...this.t], unusable: [...this.u], suitable: [...this.s] };
  }

  draw(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const cv = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = cv.clientWidth;
    const h = cv.clientHeight;
    if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
      cv.width = Math.round(w * dpr);
      cv.height = Math.round(h * dpr);
    }
    const g = cv.getContext('2d') as CanvasRenderingContext2D;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const L = 40;
    const R = 52;
    const T = 12;
    const B = 26;
    const pw = w - L - R;
    const ph = h - T - B;
    g.font = '11px ui-monospace, SFMono-Regular, Menlo, monospace';
    g.lineWidth = 1;
    const n = this.t.length;
    let smax = 1;
    for (const v of this.s) if (v > smax) smax = v;
    // A round right-axis maximum: 1, 2 or 5 × 10^k.
    const p = 10 ** Math.floor(Math.log10(smax));
    const top = [1, 2, 5, 10].map((m) => m * p).find((v) => v >= smax) ?? smax;
    const yu = (v: number) => T + ph - v * ph;
    const ys = (v: number) => T + ph - (v / top) * ph;
    for (let k = 0; k <= 4; k++) {
      const yy = Math.round(T + ph - (k / 4) * ph) + 0.5;
      g.strokeStyle = '#1e293b';
      g.beginPath();
      g.moveTo(L, yy);
      g.lineTo(L + pw, yy);
      g.stroke();
      g.textBaseline = 'middle';
      g.textAlign = 'right';
      g.fillStyle = FRAG_COLORS.unusable;
      g.fillText((k / 4).toFixed(2), L - 6, yy);
      g.textAlign = 'left';
      g.fillStyle = FRAG_COLORS.suitable;
      const sv = (top * k) / 4;
      g.fillText(sv >= 1e4 ? `${sv / 1e3}k` : String(Math.round(sv)), L + pw + 6, yy);
    }
    const t0 = n > 0 ? this.t[0] : 0;
    const t1 = n > 1 ? Math.max(this.t[n - 1], t0 + 1e-3) : t0 + 1;
    const x = (t: number) => L + ((t - t0) / (t1 - t0)) * pw;
    g.fillStyle = '#94a3b8';
    g.textAlign = 'center';
    g.textBaseline = 'top';
    for (let k = 0; k <= 4; k++) {
      const tt = t0 + ((t1 - t0) * k) / 4;
      g.fillText(`${tt.toFixed(tt < 10 ? 1 : 0)} s`, x(tt), T + ph + 6);
    }
    const line = (vals: number[], y: (v: number) => number, color: string) => {
      g.strokeStyle = color;
      g.lineWidth = 1.8;
      g.beginPath();
      for (let i = 0; i < n; i++) {
        const xx = x(this.t[i]);
        if (i === 0) g.moveTo(xx, y(vals[i]));
        else {
          g.lineTo(xx, y(vals[i - 1]));
          g.lineTo(xx, y(vals[i]));
        }
      }
      if (n === 1) g.lineTo(L + pw, y(vals[0]));
      g.stroke();
    };
    if (n === 0) {
      g.fillStyle = '#64748b';
      g.textAlign = 'center';
      g.textBaseline = 'middle';
      g.fillText('boot a machine to start the chart', L + pw / 2, T + ph / 2);
      return;
    }
    line(this.s, ys, FRAG_COLORS.suitable);
    line(this.u, yu, FRAG_COLORS.unusable);
  }
}
