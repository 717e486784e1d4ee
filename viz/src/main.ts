// viz/src/main.ts: the `vmphys viz` page. Starts the allocator worker, builds typed-array views
// over the SharedArrayBuffers it posts once per boot (a read-only VmPhys over the same memory: no
// copy per frame), and on each animation frame where CTL.GENERATION moved (or the view changed)
// redraws the memory map (canvas ImageData), the counters, the vm.phys_free table and the
// free-blocks-per-order chart beside the superpage chart (U_9 / S_9 from src/lab's metrics).
// Exposes `window.__viz` for tests and curious users.
// Owned by the viz work (issue 8).
import { hex } from '../../src/core/errors.js';
import { CTL, controlViews, pageViews, STAT } from '../../src/core/layout.js';
import { metaOrder, metaPool } from '../../src/core/pages.js';
import { profileByName } from '../../src/core/params.js';
import { isImplicitHead, nQueues, qCount } from '../../src/core/queues.js';
import { segEndIdx, segFirst, segFlind, segOfIdx } from '../../src/core/segments.js';
import { qIndex } from '../../src/core/state.js';
import { physFree } from '../../src/core/sysctl.js';
import { type PoolCounts, type StartupMode, VmPhys } from '../../src/core/vmphys.js';
import { orderCounts } from '../../src/lab/fragmentation.js';
import { fragStats } from '../../src/lab/metrics.js';
import { superpageOrder } from '../../src/lab/source.js';
import { FRAG_COLORS, FragChart, FreeChart, ORDER_COLORS } from './chart.js';
import { CAT_RGB, Cat, catName, groupTotals, MapModel, NORDERS, rgbCss, type View } from './model.js';
import type { BootedMsg, FromWorker, StatusMsg, TaskKind, ToWorker, VizConfig } from './protocol.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const FL_NAMES = ['DEFAULT', 'DMA32', 'LOWMEM'];
const POOL_SHORT = ['L', 'D', 'Di'];
/** Boundary line colours: segments, and segments where the free list (or domain) changes. */
const SEG_LINE = '#f8fafc';
const FL_LINE = '#a78bfa';

function bytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${Number.isInteger(n) ? n : n.toFixed(1)} ${u[i]}`;
}

// ------------------------------------------------------------------ state

const W = 1024;
const H = 512;
/** Cell sizes (width, height in pixels), largest first. */
const SIZES: Array<[number, number]> = [
  [32, 32],
  [16, 32],
  [16, 16],
  [8, 16],
  [8, 8],
  [4, 8],
  [4, 4],
  [2, 4],
  [2, 2],
  [1, 2],
  [1, 1],
];
const MIN_SPAN = 512;

interface Layout {
  k: number;
  sw: number;
  sh: number;
  cols: number;
  rows: number;
}

let config: VizConfig | null = null;
let vm: VmPhys | null = null;
let booted: BootedMsg | null = null;
let status: StatusMsg | null = null;
let lastError = '';
let blacklisted = new Set<number>();
let bootTime = 0;
let drawnGen = -1;
let viewDirty = true;
let countersDirty = true;
let lastSample = 0;
let sampleDue = false;
let span = 0;
let viewStart = 0;
let layout: Layout = { k: 0, sw: 2, sh: 2, cols: 512, rows: 256 };
let lastTask: TaskKind | null = null;
let boots = 0;

const model = new MapModel();
const canvas = $<HTMLCanvasElement>('map');
const ctx = canvas.getContext('2d', { willReadFrequently: true }) as CanvasRenderingContext2D;
const image = ctx.createImageData(W, H);
const pixels = new Uint32Array(image.data.buffer);
const chart = new FreeChart($<HTMLCanvasElement>('chart'));
const fragChart = new FragChart($<HTMLCanvasElement>('fragchart'));
$('fraglegend-u').style.color = FRAG_COLORS.unusable;
$('fraglegend-s').style.color = FRAG_COLORS.suitable;
/** ABGR words (little-endian ImageData) per category, and darker ones for cell borders. */
const CAT_WORD = new Uint32Array(Cat.COUNT);
const CAT_EDGE = new Uint32Array(Cat.COUNT);
for (let c = 0; c < Cat.COUNT; c++) {
  const [r, g, b] = CAT_RGB[c];
  CAT_WORD[c] = (0xff << 24) | (b << 16) | (g << 8) | r;
  const d = c === Cat.NONE ? 1 : 0.72;
  CAT_EDGE[c] = (0xff << 24) | (Math.round(b * d) << 16) | (Math.round(g * d) << 8) | Math.round(r * d);
}

const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
function send(msg: ToWorker): void {
  worker.postMessage(msg);
}

// ------------------------------------------------------------------ view

function fitLayout(want: number): Layout {
  for (let k = 0; k < 40; k++) {
    for (const [sw, sh] of SIZES) {
      const cols = W / sw;
      const rows = Math.floor(H / sh);
      if (cols * rows * 2 ** k >= want) return { k, sw, sh, cols, rows };
    }
  }
  return { k: 40, sw: 1, sh: 1, cols: W, rows: H };
}

function total(): number {
  return vm ? vm.totalPages : 0;
}

function capacity(l: Layout = layout): number {
  return l.cols * l.rows * 2 ** l.k;
}

function setView(newSpan: number, anchorPage: number, anchorFrac: number): void {
  const n = total();
  span = Math.round(Math.max(MIN_SPAN, Math.min(newSpan, Math.max(n, MIN_SPAN))));
  layout = fitLayout(span);
  const rowPages = layout.cols * 2 ** layout.k;
  let start = anchorPage - anchorFrac * capacity();
  const maxStart = Math.max(0, Math.ceil(n / rowPages) * rowPages - capacity());
  start = Math.max(0, Math.min(maxStart, start));
  viewStart = Math.floor(start / rowPages) * rowPages;
  viewDirty = true;
}

function fit(): void {
  setView(total(), 0, 0);
}

function view(): View {
  return { start: viewStart, k: layout.k, cells: layout.cols * layout.rows };
}

/** Page index under canvas point (x, y), and its fraction of the view. */
function pageAt(x: number, y: number): { cell: number; page: number; frac: number } {
  const col = Math.min(layout.cols - 1, Math.max(0, Math.floor(x / layout.sw)));
  const row = Math.min(layout.rows - 1, Math.max(0, Math.floor(y / layout.sh)));
  const cell = row * layout.cols + col;
  const page = viewStart + cell * 2 ** layout.k;
  return { cell, page, frac: cell / (layout.cols * layout.rows) };
}

function zoom(factor: number, x = W / 2, y = H / 2): void {
  if (!vm) return;
  const { page, frac } = pageAt(x, y);
  setView(span / factor, page, frac);
}

// ------------------------------------------------------------------ drawing

let lastDrawMs = 0;

function drawMap(): void {
  const t0 = performance.now();
  const v = view();
  model.compute(vm as VmPhys, v, blacklisted);
  pixels.fill(CAT_WORD[Cat.NONE]);
  const { sw, sh, cols } = layout;
  const cells = model.cellCat;
  const edges = sw >= 8;
  for (let c = 0; c < v.cells; c++) {
    const cat = cells[c];
    if (cat === Cat.NONE) continue;
    const x0 = (c % cols) * sw;
    const y0 = Math.floor(c / cols) * sh;
    const word = CAT_WORD[cat];
    if (sw === 1 && sh === 1) {
      pixels[y0 * W + x0] = word;
      continue;
    }
    const edge = CAT_EDGE[cat];
    for (let yy = 0; yy < sh; yy++) {
      const row = (y0 + yy) * W + x0;
      if (edges && yy === sh - 1) pixels.fill(edge, row, row + sw);
      else {
        pixels.fill(word, row, row + sw);
        if (edges) pixels[row + sw - 1] = edge;
      }
    }
  }
  ctx.putImageData(image, 0, 0);
  drawBoundaries();
  drawBlacklisted();
  updateViewInfo();
  lastDrawMs = performance.now() - t0;
}

/** A ring around each blacklisted page in view (a page can be a fraction of a pixel). */
function drawBlacklisted(): void {
  if (blacklisted.size === 0) return;
  const { sw, sh, cols, k } = layout;
  const cells = cols * layout.rows;
  ctx.save();
  ctx.strokeStyle = rgbCss(CAT_RGB[Cat.BLACKLISTED]);
  ctx.lineWidth = 1.5;
  for (const p of blacklisted) {
    const c = Math.floor((p - viewStart) / 2 ** k);
    if (c < 0 || c >= cells) continue;
    const x = (c % cols) * sw + sw / 2;
    const y = Math.floor(c / cols) * sh + sh / 2;
    ctx.beginPath();
    ctx.arc(x, y, Math.max(5, Math.max(sw, sh) * 0.75), 0, 2 * Math.PI);
    ctx.stroke();
  }
  ctx.restore();
}

/** Segment and free-list boundaries: a staircase outline at the boundary page, and a tag. */
function drawBoundaries(): void {
  const m = vm as VmPhys;
  const { sw, sh, cols, k } = layout;
  const cp = 2 ** k;
  const cells = cols * layout.rows;
  ctx.save();
  ctx.font = '600 10px ui-monospace, "DejaVu Sans Mono", monospace';
  ctx.textBaseline = 'top';
  for (let s = 0; s < m.nsegs; s++) {
    const p = segFirst(m.state, s);
    const c = Math.floor((p - viewStart) / cp);
    if (c < 0 || c >= cells) continue;
    const flChange =
      s === 0 || segFlind(m.state, s) !== segFlind(m.state, s - 1) || m.segDomain(s) !== m.segDomain(s - 1);
    const color = flChange ? FL_LINE : SEG_LINE;
    const x = (c % cols) * sw;
    const y = Math.floor(c / cols) * sh;
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    if (c > 0 || s > 0) {
      // Bottom of the previous cells on this row, up the left edge, along the top to the right.
      ctx.moveTo(0, y + sh);
      ctx.lineTo(x, y + sh);
      ctx.lineTo(x, y);
      ctx.lineTo(W, y);
      ctx.stroke();
    }
    const label = `S${s}${flChange ? ` ${flName(segFlind(m.state, s))}` : ''}`;
    const tw = ctx.measureText(label).width + 6;
    const tx = Math.min(W - tw, x + 2);
    const ty = y + sh + 2 > H - 13 ? Math.max(0, y - 14) : y + 2;
    ctx.fillStyle = '#0b1220e0';
    ctx.fillRect(tx, ty, tw, 12);
    ctx.fillStyle = color;
    ctx.fillText(label, tx + 3, ty + 1);
  }
  ctx.restore();
}

function flName(flind: number): string {
  const m = vm as VmPhys;
  for (let fl = 0; fl < m.nFl; fl++) if (m.flindOf(fl) === flind) return FL_NAMES[fl];
  return `flind ${flind}`;
}

function updateViewInfo(): void {
  const n = total();
  const cp = 2 ** layout.k;
  const end = Math.min(n, viewStart + capacity());
  const row = layout.cols * cp;
  $('viewinfo').textContent =
    `pages ${fmt(viewStart)}–${fmt(end - 1)} of ${fmt(n)} · ${cp === 1 ? '1 page' : `2^${layout.k} = ${fmt(cp)} pages`} per cell · ` +
    `${bytes(row * (vm as VmPhys).pageSize)} per row`;
}

// ------------------------------------------------------------------ counters

function stat(i: number): number {
  return (vm as VmPhys).state.c.stats[i];
}

function updateCounters(): void {
  const m = vm as VmPhys;
  const b = booted as BootedMsg;
  const c = m.counts();
  const n = m.totalPages;
  const g = groupTotals(model.totals);
  const init = stat(STAT.PAGES_INITIALIZED);
  const drainPages = stat(STAT.DRAIN_PAGES);
  const lazyLeft = c.lazyinit;
  // Drained / (drained + still lazy): lazy pages taken by allocations are not the drain's.
  const drainFrac = drainPages + lazyLeft > 0 ? drainPages / (drainPages + lazyLeft) : 1;
  const drainText =
    drainPages + lazyLeft === 0
      ? `nothing to drain${b.mode === 'eager' ? ' (eager start-up)' : ''}`
      : `${(100 * drainFrac).toFixed(0)} % · ${fmt(drainPages)} pages drained, ${fmt(lazyLeft)} lazy`;
  const st = status;
  const rows: Array<[string, string]> = [
    ['start-up', `${b.mode} · ready in ${b.bootMs < 1 ? b.bootMs.toFixed(3) : b.bootMs.toFixed(1)} ms`],
    ['pages', `${fmt(n)} (${bytes(n * m.pageSize)})`],
    [
      'free pages',
      `${fmt(c.total)}<br><span class="small">LAZYINIT ${fmt(c.lazyinit)} · DEFAULT ${fmt(c.default)} · DIRECT ${fmt(c.direct)}</span>`,
    ],
    ['pages initialised', `${fmt(init)} <span class="small">(${((100 * init) / Math.max(1, n)).toFixed(1)} %)</span>`],
    ['never initialised', `${fmt(g.untouched)}`],
    ['chunks materialised', fmt(stat(STAT.CHUNKS_MATERIALIZED))],
    [
      'on-demand inits',
      `${fmt(stat(STAT.ON_DEMAND_INITS))} <span class="small">(${fmt(stat(STAT.ON_DEMAND_PAGES))} pages, max ${fmt(stat(STAT.MAX_INIT_PAGES))})</span>`,
    ],
    [
      'drain',
      `${drainText}<div class="bar"><div style="width:${(100 * Math.min(1, drainFrac)).toFixed(1)}%"></div></div>`,
    ],
    [
      'allocated',
      `${fmt(g.allocated)}${g.blacklisted > 0 ? ` <span class="small">+ ${fmt(g.blacklisted)} blacklisted</span>` : ''}`,
    ],
  ];
  if (st?.replay) {
    const r = st.replay;
    rows.push([
      'trace replayed',
      `${fmt(st.traceCursor)} / ${fmt(st.traceTotal)} events<br><span class="small">${fmt(r.allocs)} allocs · ` +
        `${fmt(r.frees)} frees (${fmt(r.skippedFrees)} skipped) · ${fmt(r.failedAllocs)} failed · ${fmt(r.heldPages)} pages held</span>`,
    ]);
  } else if (st?.synthetic) {
    const s = st.synthetic;
    rows.push([
      'synthetic workload',
      `${fmt(s.ops)} ops<br><span class="small">${fmt(s.allocs)} allocs · ${fmt(s.frees)} frees · ` +
        `${fmt(s.failedAllocs)} failed · ${fmt(s.heldPages)} pages held</span>`,
    ]);
  }
  $('counters').innerHTML = rows.map(([k, v]) => `<tr><td>${k}</td><td>${v}</td></tr>`).join('');
  updatePhysFree();
}

function updatePhysFree(): void {
  const m = vm as VmPhys;
  const nfl = m.nfreelists;
  let head = '<tr><th></th>';
  for (let f = 0; f < nfl; f++) head += `<th class="fl" colspan="${m.nPool}">${flName(f)}</th>`;
  head += '</tr><tr><th></th>';
  for (let f = 0; f < nfl; f++) for (let p = 0; p < m.nPool; p++) head += `<th>${POOL_SHORT[p]}</th>`;
  head += '</tr>';
  let body = '';
  for (let o = m.nOrd - 1; o >= 0; o--) {
    body += `<tr><td class="o" style="color:${ORDER_COLORS[o]}">${o}</td>`;
    for (let f = 0; f < nfl; f++)
      for (let p = 0; p < m.nPool; p++) {
        let v = 0;
        for (let d = 0; d < m.ndomains; d++) v += qCount(m.state, qIndex(m.state, d, f, p, o));
        body += `<td${v === 0 ? ' class="z"' : ''}>${fmt(v)}</td>`;
      }
    body += '</tr>';
  }
  $('pf').innerHTML = head + body;
  $('physfree').textContent = physFree(m);
}

function freeBlocksPerOrder(): Float64Array {
  const m = vm as VmPhys;
  const out = new Float64Array(NORDERS);
  for (let i = 0; i < nQueues(m.state); i++) out[i % m.nOrd] += qCount(m.state, i);
  return out;
}

/** U_j and S_j at the superpage order j, all pools (src/lab's metrics over the shared buffers). */
function superpageStats(): { order: number; unusable: number; suitable: number } {
  const m = vm as VmPhys;
  const order = Math.min(superpageOrder(m.profile), m.nOrd - 1);
  const st = fragStats(orderCounts(m));
  return { order, unusable: st.unusable[order], suitable: st.suitable[order] };
}

/** One sample of both charts at `time` seconds since boot. */
function sampleCharts(time: number): void {
  chart.sample(time, freeBlocksPerOrder(), lazyBlocks());
  const f = superpageStats();
  fragChart.sample(time, f.unusable, f.suitable);
  $('fraglegend-u').textContent = `U_${f.order} ${f.unusable.toFixed(3)}`;
  $('fraglegend-s').textContent = `S_${f.order} ${fmt(f.suitable)}`;
}

/** Free blocks in the LAZYINIT pool, all orders, lists and domains. */
function lazyBlocks(): number {
  const m = vm as VmPhys;
  let n = 0;
  for (let i = 0; i < nQueues(m.state); i++) if (Math.floor(i / m.nOrd) % m.nPool === 0) n += qCount(m.state, i);
  return n;
}

function updateStatus(): void {
  const el = $('status');
  const s = status;
  let text = 'idle';
  let cls = '';
  if (lastError) {
    text = lastError;
    cls = 'error';
  } else if (s) {
    const what = s.task === 'early' ? 'early boot' : s.task === 'trace' ? 'trace replay' : s.task;
    if (s.state === 'loading') text = `loading ${what}…`;
    else if (s.state === 'running') text = `running ${what} · ${(100 * s.progress).toFixed(0)} %`;
    else if (s.state === 'paused') text = `paused${s.task ? ` · ${what} ${(100 * s.progress).toFixed(0)} %` : ''}`;
    else text = s.note || 'idle';
    cls = s.state === 'idle' ? (s.paused ? 'paused' : '') : s.state;
    if (s.state === 'idle' && s.paused) text = `paused · ${text}`;
  }
  el.textContent = text;
  el.className = cls;
  const busy = s !== null && s.task !== null;
  $<HTMLButtonElement>('early').disabled = !vm || busy;
  $<HTMLButtonElement>('drain').disabled = !vm || busy || (s?.drained ?? false);
  $<HTMLButtonElement>('trace').disabled = !vm || busy || !config?.trace.available;
  $<HTMLButtonElement>('step').disabled = !(s?.paused && s.task !== null);
  $('pause').textContent = s?.paused ? 'Resume' : 'Pause';
  $('early').textContent = config && !config.trace.available ? 'Early boot (synthetic)' : 'Early boot';
}

// ------------------------------------------------------------------ legend and segments

function buildLegend(): void {
  const key = (cat: number, label: string) =>
    `<span class="key"><span class="sw" style="background:${rgbCss(CAT_RGB[cat])}"></span>${label}</span>`;
  const rampBox = (base: number) =>
    `<span class="rampbox">${Array.from({ length: NORDERS }, (_, o) => `<i style="background:${rgbCss(CAT_RGB[base + o])}"></i>`).join('')}</span>`;
  $('legend').innerHTML = [
    key(Cat.UNTOUCHED, 'never initialised'),
    key(Cat.LAZY_HEAD, 'lazy head'),
    `<span class="key">${rampBox(Cat.FREE_DEFAULT)} free DEFAULT <span class="ramplabel">order 0→12</span></span>`,
    `<span class="key">${rampBox(Cat.FREE_DIRECT)} free DIRECT <span class="ramplabel">order 0→12</span></span>`,
    key(Cat.ALLOCATED, 'allocated'),
    key(Cat.BLACKLISTED, 'blacklisted'),
    key(Cat.LAZY_INIT, 'lazy, initialised'),
    `<span class="key"><span class="bline" style="border-color:${SEG_LINE}"></span>segment</span>`,
    `<span class="key"><span class="bline" style="border-color:${FL_LINE}"></span>free list / domain</span>`,
  ].join('');
}

function buildSegments(): void {
  const m = vm as VmPhys;
  const chips: string[] = [];
  for (let s = 0; s < m.nsegs; s++) {
    const [segStart, segEnd] = m.segRange(s);
    const size = segEnd - segStart;
    chips.push(
      `<span class="chip" data-seg="${s}"><b>S${s}</b> ${hex(segStart)}–${hex(segEnd)} · ${bytes(size)} · ` +
        `${flName(segFlind(m.state, s))}${m.ndomains > 1 ? ` · domain ${m.segDomain(s)}` : ''}</span>`,
    );
  }
  $('segments').innerHTML = chips.join('');
  for (const el of Array.from(document.querySelectorAll<HTMLElement>('.chip'))) {
    el.onclick = () => {
      const s = Number(el.dataset.seg);
      setView(Math.max(MIN_SPAN, segEndIdx(m.state, s) - segFirst(m.state, s)), segFirst(m.state, s), 0);
    };
  }
}

// ------------------------------------------------------------------ hover, zoom, pan

let drag: { x: number; y: number; start: number; moved: boolean } | null = null;

function canvasPoint(e: MouseEvent): [number, number] {
  const r = canvas.getBoundingClientRect();
  return [((e.clientX - r.left) * W) / r.width, ((e.clientY - r.top) * H) / r.height];
}

function hover(x: number, y: number): void {
  if (!vm) return;
  const m = vm;
  const { cell, page } = pageAt(x, y);
  const n = m.totalPages;
  if (page >= n) {
    $('hover').textContent = 'past the last page';
    return;
  }
  const last = Math.min(n, page + 2 ** layout.k) - 1;
  const s = segOfIdx(m.state, page);
  const cat = model.cellCat[cell] ?? Cat.NONE;
  let text =
    `pages ${fmt(page)}${last > page ? `–${fmt(last)}` : ''} · ${hex(m.paOf(page))}` +
    `${last > page ? `–${hex(m.paOf(last) + m.pageSize)}` : ''} · S${s} ${flName(segFlind(m.state, s))} · ${catName(cat)}`;
  if (layout.k === 0) {
    const b = m.state.meta[page];
    text +=
      b === 0
        ? ` · meta 0x00${isImplicitHead(m.state, page) ? ' (implicit lazy chunk head, order 12)' : ''}`
        : ` · meta 0x${b.toString(16)} (pool ${metaPool(b)}, order ${metaOrder(b)})`;
  }
  $('hover').textContent = text;
}

canvas.addEventListener('mousemove', (e) => {
  const [x, y] = canvasPoint(e);
  if (drag && vm) {
    const dy = y - drag.y;
    if (Math.abs(dy) > 4 || Math.abs(x - drag.x) > 4) drag.moved = true;
    if (drag.moved) {
      const rowPages = layout.cols * 2 ** layout.k;
      const rows = Math.round(dy / layout.sh);
      setView(span, drag.start - rows * rowPages, 0);
    }
  }
  hover(x, y);
});
canvas.addEventListener('mousedown', (e) => {
  const [x, y] = canvasPoint(e);
  if (e.button === 0) drag = { x, y, start: viewStart, moved: false };
});
window.addEventListener('mouseup', (e) => {
  const d = drag;
  drag = null;
  if (!d || d.moved || e.target !== canvas) return;
  const [x, y] = canvasPoint(e);
  zoom(e.shiftKey ? 0.25 : 4, x, y);
});
canvas.addEventListener('contextmenu', (e) => {
  e.preventDefault();
  const [x, y] = canvasPoint(e);
  zoom(0.25, x, y);
});
canvas.addEventListener(
  'wheel',
  (e) => {
    e.preventDefault();
    const [x, y] = canvasPoint(e);
    zoom(e.deltaY < 0 ? 2 : 0.5, x, y);
  },
  { passive: false },
);
canvas.addEventListener('mouseleave', () => {
  $('hover').textContent = 'hover the map: each cell is 2^k pages, coloured by its most common state';
});
$('zin').onclick = () => zoom(4);
$('zout').onclick = () => zoom(0.25);
$('zfit').onclick = () => fit();

// ------------------------------------------------------------------ controls

function mode(): StartupMode {
  return $<HTMLInputElement>('mode-eager').checked ? 'eager' : 'lazy';
}

function boot(): void {
  if (!config) return;
  lastError = '';
  send({ type: 'boot', config, mode: mode() });
}

function run(task: TaskKind): void {
  lastError = '';
  lastTask = task;
  send({ type: 'run', task });
}

$('boot').onclick = boot;
$('early').onclick = () => run('early');
$('drain').onclick = () => run('drain');
$('trace').onclick = () => run('trace');
$('pause').onclick = () => send({ type: status?.paused ? 'resume' : 'pause' });
$('step').onclick = () => send({ type: 'step' });
const speedInput = $<HTMLInputElement>('speed');
speedInput.oninput = () => {
  const v = Number(speedInput.value);
  const f = 2 ** v;
  $('speedv').textContent = v >= 0 ? `×${f}` : `×1/${1 / f}`;
  send({ type: 'speed', factor: f });
};

// ------------------------------------------------------------------ worker messages

worker.onmessage = (e: MessageEvent<FromWorker>) => {
  const msg = e.data;
  if (msg.type === 'booted') {
    booted = msg;
    boots++;
    const profile = profileByName(msg.profile);
    vm = new VmPhys(
      { profile },
      controlViews(profile, msg.control, msg.maxRuns),
      pageViews(msg.meta, msg.link, msg.totalPages),
    );
    blacklisted = new Set(msg.blacklisted);
    bootTime = performance.now();
    drawnGen = -1;
    chart.reset();
    chart.mark(0, `${msg.mode} boot`);
    fragChart.reset(Math.min(superpageOrder(profile), vm.nOrd - 1));
    sampleCharts(0);
    lastSample = bootTime;
    fit();
    buildSegments();
    $('machine').textContent =
      `${config?.mapName} · ${msg.profile} · ${vm.nsegs} segments · ${fmt(vm.totalPages)} pages · ${bytes(vm.metadataBytes)} of metadata`;
    $<HTMLInputElement>(msg.mode === 'eager' ? 'mode-eager' : 'mode-lazy').checked = true;
  } else if (msg.type === 'status') {
    // Mark a workload on the chart when it starts running (after loading its data).
    const active = (s: StatusMsg | null) => (s !== null && s.task !== null && s.state !== 'loading' ? s.task : null);
    const now = active(msg);
    if (vm && now !== null && now !== active(status))
      chart.mark(
        (performance.now() - bootTime) / 1000,
        now === 'early' ? 'early boot' : now === 'trace' ? 'trace replay' : now,
      );
    status = msg;
  } else {
    lastError = msg.message;
    console.error(`vmphys viz worker: ${msg.message}`);
  }
  countersDirty = true;
  updateStatus();
};
worker.onerror = (e) => {
  lastError = `worker: ${e.message}`;
  updateStatus();
};

// ------------------------------------------------------------------ frame loop

function frame(): void {
  requestAnimationFrame(frame);
  if (!vm) return;
  const gen = Atomics.load(vm.state.c.ctl, CTL.GENERATION);
  const changed = gen !== drawnGen;
  if (changed || viewDirty) {
    drawnGen = gen;
    viewDirty = false;
    drawMap();
    countersDirty = true;
  }
  // Chart: a sample after every change (at most one per 40 ms), and one per 500 ms when idle.
  const now = performance.now();
  if (changed) sampleDue = true;
  if ((sampleDue && now - lastSample >= 40) || now - lastSample >= 500) {
    sampleDue = false;
    lastSample = now;
    sampleCharts((now - bootTime) / 1000);
  }
  if (countersDirty) {
    countersDirty = false;
    updateCounters();
  }
  chart.draw();
  fragChart.draw();
}

// ------------------------------------------------------------------ window.__viz

/** What tests (and the console) can read and do. */
const api = {
  get ready(): boolean {
    return vm !== null;
  },
  get status(): string {
    return lastError ? 'error' : (status?.state ?? 'starting');
  },
  get error(): string {
    return lastError;
  },
  get task(): TaskKind | null {
    return status?.task ?? lastTask;
  },
  /** Boots so far (each 'booted' message from the worker). */
  get boots(): number {
    return boots;
  },
  /** vm_phys_lazy_init finished (vm_default_freepool moved to DEFAULT). */
  get drained(): boolean {
    return vm?.drained ?? false;
  },
  get paused(): boolean {
    return status?.paused ?? false;
  },
  get mode(): StartupMode | null {
    return booted?.mode ?? null;
  },
  get bootMs(): number {
    return booted?.bootMs ?? Number.NaN;
  },
  /** The generation in shared memory and the one the map shows. */
  generation(): number {
    return vm ? Atomics.load(vm.state.c.ctl, CTL.GENERATION) : -1;
  },
  /** Milliseconds the last map redraw took (walk + paint). */
  get lastDrawMs(): number {
    return lastDrawMs;
  },
  get drawnGeneration(): number {
    return drawnGen;
  },
  /** True when the map shows the current state and the worker is idle. */
  settled(): boolean {
    return (
      vm !== null && status?.state === 'idle' && status.task === null && api.generation() === drawnGen && !viewDirty
    );
  },
  counts(): PoolCounts | null {
    return vm ? vm.counts() : null;
  },
  physFree(): string {
    return vm ? physFree(vm) : '';
  },
  stats(): Record<string, number> {
    if (!vm) return {};
    const out: Record<string, number> = {};
    for (const [k, i] of Object.entries(STAT)) if (k !== 'SIZE') out[k] = vm.state.c.stats[i];
    return out;
  },
  /** Pages per derived state over the whole machine (from the last drawn walk). */
  totals(): Record<string, number> {
    return groupTotals(model.totals);
  },
  /** Drained pages / (drained + still lazy), 0..1. */
  drainProgress(): number {
    if (!vm) return 0;
    const d = vm.state.c.stats[STAT.DRAIN_PAGES];
    const l = vm.counts().lazyinit;
    return d + l > 0 ? d / (d + l) : 1;
  },
  get lazyPagesAtBoot(): number {
    return booted?.lazyPagesAtBoot ?? 0;
  },
  get replay() {
    return status?.replay ?? null;
  },
  get synthetic() {
    return status?.synthetic ?? null;
  },
  get traceCursor(): number {
    return status?.traceCursor ?? 0;
  },
  /** Category colours as [r, g, b], for pixel checks. */
  colors: {
    background: [...CAT_RGB[Cat.NONE]],
    untouched: [...CAT_RGB[Cat.UNTOUCHED]],
    lazyHead: [...CAT_RGB[Cat.LAZY_HEAD]],
    allocated: [...CAT_RGB[Cat.ALLOCATED]],
    blacklisted: [...CAT_RGB[Cat.BLACKLISTED]],
    freeDefault: Array.from({ length: NORDERS }, (_, o) => [...CAT_RGB[Cat.FREE_DEFAULT + o]]),
    freeDirect: Array.from({ length: NORDERS }, (_, o) => [...CAT_RGB[Cat.FREE_DIRECT + o]]),
  },
  /** The chart's samples and marks. */
  chart() {
    return chart.data();
  },
  /** The superpage chart's samples (U_j and S_j at the superpage order j). */
  fragChart() {
    return fragChart.data();
  },
  view(): { start: number; k: number; cols: number; rows: number; span: number } {
    return { start: viewStart, k: layout.k, cols: layout.cols, rows: layout.rows, span };
  },
  boot(m: StartupMode): void {
    $<HTMLInputElement>(m === 'eager' ? 'mode-eager' : 'mode-lazy').checked = true;
    boot();
  },
  run,
  fit,
  get config(): VizConfig | null {
    return config;
  },
};
(window as unknown as { __viz: typeof api }).__viz = api;

// ------------------------------------------------------------------ start

async function main(): Promise<void> {
  buildLegend();
  updateStatus();
  if (!crossOriginIsolated) {
    lastError = 'not cross-origin isolated: serve with COOP/COEP headers (vmphys viz does)';
    updateStatus();
    return;
  }
  const res = await fetch('./config.json');
  config = (await res.json()) as VizConfig;
  const params = new URLSearchParams(location.search);
  const m = params.get('mode') ?? config.mode;
  $<HTMLInputElement>(m === 'eager' ? 'mode-eager' : 'mode-lazy').checked = true;
  $('machine').textContent = config.mapName;
  updateStatus();
  if (params.get('boot') !== '0') boot();
  requestAnimationFrame(frame);
}

main().catch((e: unknown) => {
  lastError = String(e);
  updateStatus();
});
