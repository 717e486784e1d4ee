/**
 * A tiny dependency-free SVG chart helper: line charts and grouped bar charts with axes, ticks,
 * grid, title, axis labels and a legend; linear or log10 value axes. Output is a complete,
 * standalone SVG document as a string, deterministic for equal input (tests compare it).
 * Owned by the replay/bench work; other commands (boot, stress, bench) call it and do not edit
 * it — ask for features instead.
 *
 *   lineChart({ title, xs, series: [{ name, values }], xAxis: { label }, yAxis: { label, log } })
 *   barChart({ title, categories, series: [{ name, values, low?, high? }], yAxis: { label } })
 *
 * Non-finite values (and values ≤ 0 on a log axis) are not drawn: a line breaks there, a bar
 * is left out. Text is XML-escaped.
 */

/** One named data series; `color` defaults to the palette entry of its position. */
export interface ChartSeries {
  name: string;
  values: number[];
  color?: string;
  /** Bar charts: lower / upper ends of a whisker per value (e.g. min and max of samples). */
  low?: number[];
  high?: number[];
  /** Line charts: dash pattern, e.g. '4 3'. */
  dash?: string;
}

/** One axis. */
export interface AxisOptions {
  label?: string;
  /** log10 scale (values ≤ 0 are not drawn). */
  log?: boolean;
  /** Forced ends of the axis; default from the data (linear value axes include 0). */
  min?: number;
  max?: number;
  /** Tick label format; default `formatTick`. */
  format?: (v: number) => string;
}

/** Options common to every chart. */
export interface ChartOptions {
  title: string;
  subtitle?: string;
  /** Pixels; default 720 × 400. */
  width?: number;
  height?: number;
  yAxis?: AxisOptions;
  /** Draw the legend (default: when there is more than one series). */
  legend?: boolean;
}

/** A line chart: every series has one value per entry of `xs`. */
export interface LineChartOptions extends ChartOptions {
  xs: number[];
  series: ChartSeries[];
  xAxis?: AxisOptions;
  /** Draw a dot at each point (default when a series has ≤ 40 points). */
  dots?: boolean;
}

/** A grouped bar chart: one group per category, one bar per series in each group. */
export interface BarChartOptions extends ChartOptions {
  categories: string[];
  series: ChartSeries[];
  /** Axis label under the categories. */
  xLabel?: string;
  /** Print each bar's value above it (default true when there are ≤ 24 bars). */
  showValues?: boolean;
}

/** Default series colours (colour-blind-friendly first, then more for many series). */
export const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
  '#003f5c',
  '#d45087',
  '#17becf',
  '#7a5195',
  '#bcbd22',
  '#222222',
];

/** Escape text for XML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Compact tick label: 0, 12, 1.5k, 2M, 3G, 0.25, 1e-5. */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  const trim = (x: number) => String(Number(x.toPrecision(3)));
  if (a >= 1e12) return `${trim(v / 1e12)}T`;
  if (a >= 1e9) return `${trim(v / 1e9)}G`;
  if (a >= 1e6) return `${trim(v / 1e6)}M`;
  if (a >= 1e3) return `${trim(v / 1e3)}k`;
  if (a >= 1e-3) return trim(v);
  return v.toExponential(0);
}

/**
 * "Nice" linear ticks covering [min, max]: multiples of 1, 2 or 5 × 10^k, at most about
 * `maxTicks` of them, the first ≤ min and the last ≥ max. min === max gives a small range.
 */
export function niceTicks(min: number, max: number, maxTicks = 6): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (min > max) [min, max] = [max, min];
  if (min === max) {
    const d = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= d;
    max += d;
  }
  const raw = (max - min) / Math.max(1, maxTicks - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const first = Math.floor(min / step) * step;
  const out: number[] = [];
  for (let v = first; v < max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  if (out[out.length - 1] < max) out.push(Number((out[out.length - 1] + step).toPrecision(12)));
  return out;
}

/** Powers of ten covering [min, max] (both > 0). */
export function logTicks(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(min));
  let hi = Math.ceil(Math.log10(max));
  if (hi === lo) hi++;
  const out: number[] = [];
  for (let k = lo; k <= hi; k++) out.push(10 ** k);
  return out;
}

/** A scale from data values to pixels. */
interface Scale {
  ticks: number[];
  px(v: number): number;
  /** Can v be drawn? */
  ok(v: number): boolean;
}

function makeScale(values: number[], axis: AxisOptions, lo: number, hi: number, zero: boolean): Scale {
  const log = axis.log === true;
  const finite = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
  let min = axis.min ?? (finite.length ? Math.min(...finite) : log ? 1 : 0);
  let max = axis.max ?? (finite.length ? Math.max(...finite) : log ? 10 : 1);
  if (log) {
    if (!(min > 0)) min = 1;
    if (!(max > min)) max = min * 10;
    const ticks = logTicks(min, max);
    const a = Math.log10(axis.min ?? ticks[0]);
    const b = Math.log10(axis.max ?? ticks[ticks.length - 1]);
    const shown = ticks.filter((t) => Math.log10(t) >= a - 1e-9 && Math.log10(t) <= b + 1e-9);
    return {
      ticks: shown,
      px: (v) => lo + ((Math.log10(v) - a) / (b - a || 1)) * (hi - lo),
      ok: (v) => Number.isFinite(v) && v > 0,
    };
  }
  if (zero && axis.min === undefined) min = Math.min(0, min);
  if (zero && axis.max === undefined) max = Math.max(0, max);
  const ticks = niceTicks(min, max);
  const a = axis.min ?? ticks[0];
  const b = axis.max ?? ticks[ticks.length - 1];
  return {
    ticks: ticks.filter((t) => t >= a - 1e-9 * Math.abs(b - a) && t <= b + 1e-9 * Math.abs(b - a)),
    px: (v) => lo + ((v - a) / (b - a || 1)) * (hi - lo),
    ok: (v) => Number.isFinite(v),
  };
}

/** Longest rotated category label, in characters (longer ones lose their middle). */
const MAX_LABEL = 56;

const FONT = 'font-family="system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif"';

function n1(v: number): string {
  return String(Math.round(v * 10) / 10);
}

/** Rough text width in pixels for a font size (no font metrics available). */
function textWidth(s: string, size: number): number {
  return s.length * size * 0.58;
}

interface Frame {
  parts: string[];
  left: number;
  right: number;
  top: number;
  bottom: number;
  width: number;
  height: number;
}

/** Document, background, title and plot box geometry; legend space reserved on the right. */
function frame(o: ChartOptions, legendNames: string[] | null, bottomExtra: number, left = 72): Frame {
  const width = o.width ?? 720;
  const height = o.height ?? 400;
  const legendW = legendNames ? Math.min(260, Math.max(...legendNames.map((s) => textWidth(s, 12))) + 34) : 0;
  const top = o.subtitle ? 58 : 42;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="600" fill="#222">${escapeXml(o.title)}</text>`,
  ];
  if (o.subtitle)
    parts.push(
      `<text x="${width / 2}" y="43" text-anchor="middle" font-size="12" fill="#555">${escapeXml(o.subtitle)}</text>`,
    );
  return {
    parts,
    left,
    right: width - 16 - legendW,
    top,
    bottom: height - 46 - bottomExtra,
    width,
    height,
  };
}

function drawValueAxis(f: Frame, s: Scale, axis: AxisOptions): void {
  const fmt = axis.format ?? formatTick;
  for (const t of s.ticks) {
    const y = n1(s.px(t));
    f.parts.push(`<line x1="${f.left}" y1="${y}" x2="${n1(f.right)}" y2="${y}" stroke="#e6e6e6"/>`);
    f.parts.push(`<line x1="${f.left - 5}" y1="${y}" x2="${f.left}" y2="${y}" stroke="#444"/>`);
    f.parts.push(
      `<text x="${f.left - 8}" y="${y}" dy="0.32em" text-anchor="end" font-size="11" fill="#333">${escapeXml(fmt(t))}</text>`,
    );
  }
  if (axis.label) {
    const cy = n1((f.top + f.bottom) / 2);
    f.parts.push(
      `<text x="${f.left - 56}" y="${cy}" transform="rotate(-90 ${f.left - 56} ${cy})" text-anchor="middle" font-size="12" fill="#333">${escapeXml(axis.label)}</text>`,
    );
  }
}

function drawBox(f: Frame): void {
  f.parts.push(
    `<line x1="${f.left}" y1="${n1(f.bottom)}" x2="${n1(f.right)}" y2="${n1(f.bottom)}" stroke="#444"/>`,
    `<line x1="${f.left}" y1="${n1(f.top)}" x2="${f.left}" y2="${n1(f.bottom)}" stroke="#444"/>`,
  );
}

function drawLegend(f: Frame, series: ChartSeries[], kind: 'line' | 'bar'): void {
  const x = f.right + 14;
  let y = f.top + 4;
  for (let i = 0; i < series.length; i++) {
    const c = colorOf(series, i);
    if (kind === 'line')
      f.parts.push(
        `<line x1="${n1(x)}" y1="${y + 6}" x2="${n1(x + 18)}" y2="${y + 6}" stroke="${c}" stroke-width="2.5"${series[i].dash ? ` stroke-dasharray="${escapeXml(series[i].dash as string)}"` : ''}/>`,
      );
    else f.parts.push(`<rect x="${n1(x + 3)}" y="${y}" width="12" height="12" fill="${c}"/>`);
    f.parts.push(
      `<text x="${n1(x + 24)}" y="${y + 6}" dy="0.32em" font-size="12" fill="#222">${escapeXml(series[i].name)}</text>`,
    );
    y += 17;
  }
}

function colorOf(series: ChartSeries[], i: number): string {
  return escapeXml(series[i].color ?? PALETTE[i % PALETTE.length]);
}

/** A line chart as a standalone SVG document. */
export function lineChart(o: LineChartOptions): string {
  const showLegend = o.legend ?? o.series.length > 1;
  const f = frame(o, showLegend ? o.series.map((s) => s.name) : null, 0);
  const xAxis = o.xAxis ?? {};
  const yAxis = o.yAxis ?? {};
  const xs = makeScale(o.xs, xAxis, f.left, f.right, false);
  const ys = makeScale(
    o.series.flatMap((s) => s.values),
    yAxis,
    f.bottom,
    f.top,
    true,
  );
  drawValueAxis(f, ys, yAxis);
  const fmtX = xAxis.format ?? formatTick;
  for (const t of xs.ticks) {
    const x = n1(xs.px(t));
    f.parts.push(`<line x1="${x}" y1="${n1(f.bottom)}" x2="${x}" y2="${n1(f.bottom + 5)}" stroke="#444"/>`);
    f.parts.push(
      `<text x="${x}" y="${n1(f.bottom + 18)}" text-anchor="middle" font-size="11" fill="#333">${escapeXml(fmtX(t))}</text>`,
    );
  }
  if (xAxis.label)
    f.parts.push(
      `<text x="${n1((f.left + f.right) / 2)}" y="${n1(f.bottom + 38)}" text-anchor="middle" font-size="12" fill="#333">${escapeXml(xAxis.label)}</text>`,
    );
  drawBox(f);
  for (let i = 0; i < o.series.length; i++) {
    const s = o.series[i];
    const c = colorOf(o.series, i);
    let d = '';
    let pen = false;
    const dots: string[] = [];
    const wantDots = o.dots ?? s.values.length <= 40;
    for (let k = 0; k < Math.min(s.values.length, o.xs.length); k++) {
      const v = s.values[k];
      const x = o.xs[k];
      if (!ys.ok(v) || !xs.ok(x)) {
        pen = false;
        continue;
      }
      const px = n1(xs.px(x));
      const py = n1(ys.px(v));
      d += `${pen ? 'L' : 'M'}${px} ${py}`;
      pen = true;
      if (wantDots) dots.push(`<circle cx="${px}" cy="${py}" r="2.5" fill="${c}"/>`);
    }
    if (d)
      f.parts.push(
        `<path d="${d}" fill="none" stroke="${c}" stroke-width="1.8" stroke-linejoin="round"${s.dash ? ` stroke-dasharray="${escapeXml(s.dash)}"` : ''}><title>${escapeXml(s.name)}</title></path>`,
      );
    f.parts.push(...dots);
  }
  if (showLegend) drawLegend(f, o.series, 'line');
  f.parts.push('</svg>');
  return `${f.parts.join('\n')}\n`;
}

/** A grouped bar chart (with optional whiskers) as a standalone SVG document. */
export function barChart(o: BarChartOptions): string {
  const showLegend = o.legend ?? o.series.length > 1;
  const nBars = o.categories.length * o.series.length;
  const groupGuess = ((o.width ?? 720) - 100) / Math.max(1, o.categories.length);
  const rotate = Math.max(0, ...o.categories.map((c) => textWidth(c, 11))) > groupGuess - 6;
  // Rotated labels are cut to MAX_LABEL characters (the full name stays in each bar's tooltip).
  const cut = Math.floor((MAX_LABEL - 1) / 3);
  const labels = o.categories.map((c) =>
    rotate && c.length > MAX_LABEL ? `${c.slice(0, cut)}…${c.slice(c.length - (MAX_LABEL - 1 - cut))}` : c,
  );
  const longest = Math.max(0, ...labels.map((c) => textWidth(c, 11)));
  // A label rotated by 35° reaches cos 35° × its width to the left of its anchor, sin 35° below.
  const left = rotate ? Math.max(72, Math.ceil(0.82 * textWidth(labels[0] ?? '', 11) - groupGuess / 2 + 8)) : 72;
  const f = frame(o, showLegend ? o.series.map((s) => s.name) : null, rotate ? Math.ceil(0.58 * longest) : 0, left);
  const yAxis = o.yAxis ?? {};
  const all: number[] = [];
  for (const s of o.series) all.push(...s.values, ...(s.low ?? []), ...(s.high ?? []));
  const ys = makeScale(all, yAxis, f.bottom, f.top, true);
  drawValueAxis(f, ys, yAxis);
  const groupW = (f.right - f.left) / Math.max(1, o.categories.length);
  const barW = (groupW * 0.78) / Math.max(1, o.series.length);
  const base = yAxis.log ? f.bottom : ys.px(Math.max(0, ys.ticks[0] ?? 0));
  const showValues = o.showValues ?? nBars <= 24;
  const fmt = yAxis.format ?? formatTick;
  for (let g = 0; g < o.categories.length; g++) {
    const gx = f.left + g * groupW;
    const cx = gx + groupW / 2;
    if (rotate)
      f.parts.push(
        `<text x="${n1(cx)}" y="${n1(f.bottom + 14)}" transform="rotate(-35 ${n1(cx)} ${n1(f.bottom + 14)})" text-anchor="end" font-size="11" fill="#333">${escapeXml(labels[g])}</text>`,
      );
    else
      f.parts.push(
        `<text x="${n1(cx)}" y="${n1(f.bottom + 18)}" text-anchor="middle" font-size="11" fill="#333">${escapeXml(o.categories[g])}</text>`,
      );
    for (let i = 0; i < o.series.length; i++) {
      const s = o.series[i];
      const v = s.values[g];
      if (v === undefined || !ys.ok(v)) continue;
      const x = gx + groupW * 0.11 + i * barW;
      const y = ys.px(v);
      const top = Math.min(y, base);
      const h = Math.abs(base - y);
      f.parts.push(
        `<rect x="${n1(x)}" y="${n1(top)}" width="${n1(Math.max(1, barW - 2))}" height="${n1(h)}" fill="${colorOf(o.series, i)}"><title>${escapeXml(`${s.name} · ${o.categories[g]}: ${fmt(v)}`)}</title></rect>`,
      );
      const lo = s.low?.[g];
      const hi = s.high?.[g];
      if (lo !== undefined && hi !== undefined && ys.ok(lo) && ys.ok(hi)) {
        const mx = n1(x + (barW - 2) / 2);
        const a = n1(ys.px(lo));
        const b = n1(ys.px(hi));
        const w = Math.min(6, barW / 3);
        f.parts.push(
          `<path d="M${mx} ${a}V${b}M${n1(x + (barW - 2) / 2 - w)} ${a}h${n1(2 * w)}M${n1(x + (barW - 2) / 2 - w)} ${b}h${n1(2 * w)}" stroke="#222" stroke-width="1.2" fill="none"/>`,
        );
      }
      if (showValues) {
        const ty = Math.min(top, hi !== undefined && ys.ok(hi) ? ys.px(hi) : top) - 4;
        f.parts.push(
          `<text x="${n1(x + (barW - 2) / 2)}" y="${n1(ty)}" text-anchor="middle" font-size="10" fill="#222">${escapeXml(fmt(v))}</text>`,
        );
      }
    }
  }
  if (o.xLabel)
    f.parts.push(
      `<text x="${n1((f.left + f.right) / 2)}" y="${n1(f.height - 10)}" text-anchor="middle" font-size="12" fill="#333">${escapeXml(o.xLabel)}</text>`,
    );
  drawBox(f);
  if (showLegend) drawLegend(f, o.series, 'bar');
  f.parts.push('</svg>');
  return `${f.parts.join('\n')}\n`;
}
