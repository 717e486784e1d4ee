/**
 * Tests of the SVG chart helper (src/cli/svg.ts). Owned by the replay/bench work.
 * Output is checked structurally: well-formed XML (a small tag-balance checker here), no NaN or
 * Infinity in the markup, the expected number of marks, escaped text, deterministic output.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { barChart, escapeXml, formatTick, lineChart, logTicks, niceTicks, PALETTE } from '../src/cli/svg.js';

/** Throws unless tags balance and text contains no raw '<' or stray '&'. Returns tag counts. */
function checkXml(svg: string): Map<string, number> {
  const counts = new Map<string, number>();
  const stack: string[] = [];
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(svg)) !== null) {
    const text = svg.slice(last, m.index);
    assert.ok(!text.includes('<'), `raw '<' in text near ${JSON.stringify(text.slice(0, 40))}`);
    assert.ok(!/&(?!(amp|lt|gt|quot|apos);)/.test(text), `stray & in ${JSON.stringify(text)}`);
    last = re.lastIndex;
    const [, close, name, , self] = m;
    if (close) assert.equal(stack.pop(), name, `closing </${name}>`);
    else {
      counts.set(name, (counts.get(name) ?? 0) + 1);
      if (!self) stack.push(name);
    }
  }
  assert.equal(svg.slice(last).trim(), '', 'trailing text');
  assert.deepEqual(stack, [], 'unclosed tags');
  assert.ok(!/NaN|Infinity|undefined/.test(svg), 'NaN/Infinity/undefined in markup');
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  return counts;
}

describe('ticks and labels', () => {
  test('niceTicks covers the range with 1/2/2.5/5 × 10^k steps', () => {
    for (const [lo, hi] of [
      [0, 1],
      [0, 97],
      [3, 3.5],
      [-40, 1234],
      [0, 1.7e7],
      [0.001, 0.004],
      [5, 5],
      [0, 0],
    ]) {
      const t = niceTicks(lo, hi);
      assert.ok(t.length >= 2 && t.length <= 12, `${lo}..${hi}: ${t}`);
      assert.ok(t[0] <= lo && t[t.length - 1] >= hi, `${lo}..${hi}: ${t}`);
      const step = t[1] - t[0];
      const mant = step / 10 ** Math.floor(Math.log10(step));
      assert.ok(
        [1, 2, 2.5, 5].some((x) => Math.abs(x - mant) < 1e-9),
        `step ${step}`,
      );
      for (let i = 1; i < t.length; i++) assert.ok(Math.abs(t[i] - t[i - 1] - step) < step * 1e-9);
    }
    assert.deepEqual(niceTicks(Number.NaN, 3), [0, 1]);
  });

  test('logTicks are powers of ten around the range', () => {
    assert.deepEqual(logTicks(3, 4500), [1, 10, 100, 1000, 10000]);
    assert.deepEqual(logTicks(10, 10), [10, 100]);
  });

  test('formatTick is compact', () => {
    assert.equal(formatTick(0), '0');
    assert.equal(formatTick(12), '12');
    assert.equal(formatTick(1500), '1.5k');
    assert.equal(formatTick(2e6), '2M');
    assert.equal(formatTick(4.6e7), '46M');
    assert.equal(formatTick(3e9), '3G');
    assert.equal(formatTick(0.25), '0.25');
    assert.equal(formatTick(-2500), '-2.5k');
  });

  test('escapeXml', () => {
    assert.equal(escapeXml('a<b & "c">'), 'a&lt;b &amp; &quot;c&quot;&gt;');
  });
});

describe('lineChart', () => {
  const xs = [0, 10, 20, 30, 40];
  test('axes, one path per series, legend, escaped text, deterministic', () => {
    const o = {
      title: 'Free <blocks> & more',
      subtitle: 'sub "title"',
      xs,
      series: [
        { name: 'order 0', values: [5, 3, 8, 1, 4] },
        { name: 'order <1>', values: [1, 2, 3, 4, 5], dash: '4 2' },
        { name: 'order 2', values: [0, 0, 0, 0, 0] },
      ],
      xAxis: { label: 'events' },
      yAxis: { label: 'blocks' },
    };
    const svg = lineChart(o);
    const c = checkXml(svg);
    assert.equal(c.get('path'), 3);
    assert.match(svg, /Free &lt;blocks&gt; &amp; more/);
    assert.match(svg, /order &lt;1&gt;/);
    assert.match(svg, /stroke-dasharray="4 2"/);
    assert.match(svg, />events</);
    assert.match(svg, />blocks</);
    assert.ok(svg.includes(PALETTE[0]) && svg.includes(PALETTE[1]));
    assert.equal(lineChart(o), svg);
  });

  test('non-finite values break the line; a log axis leaves out values ≤ 0', () => {
    const svg = lineChart({
      title: 't',
      xs,
      series: [{ name: 'a', values: [1, Number.NaN, 100, 1000, 0] }],
      yAxis: { log: true },
    });
    checkXml(svg);
    const d = /<path d="([^"]+)"/.exec(svg)?.[1] ?? '';
    assert.equal((d.match(/M/g) ?? []).length, 2, d);
    assert.equal((d.match(/L/g) ?? []).length, 1, d);
    assert.match(svg, />1k</);
    // The value axis gets one tick per decade of the drawable values (no 0 tick), and the points
    // sit at log positions: 1 on the bottom edge (y 354), 1000 on the top edge (y 42), 100 at 2/3.
    const labels = [...svg.matchAll(/text-anchor="end"[^>]*>([^<]*)</g)].map((m) => m[1]);
    assert.deepEqual(labels, ['1', '10', '100', '1k']);
    const ys = [...d.matchAll(/[ML][\d.]+ ([\d.-]+)/g)].map((m) => Number(m[1]));
    assert.deepEqual(ys, [354, 146, 42], d);
  });

  test('empty and single-point input still make a valid document', () => {
    checkXml(lineChart({ title: 'empty', xs: [], series: [] }));
    checkXml(lineChart({ title: 'one', xs: [7], series: [{ name: 'a', values: [3] }] }));
    checkXml(
      lineChart({ title: 'nothing drawable', xs: [1, 2], series: [{ name: 'a', values: [Number.NaN, Number.NaN] }] }),
    );
  });
});

describe('barChart', () => {
  test('one rect per drawable bar, whiskers from low/high, values printed', () => {
    const svg = barChart({
      title: 'events/s',
      categories: ['lazy', 'eager', 'peer'],
      series: [
        { name: 'vmphys', values: [10, 12, Number.NaN], low: [9, 11, 0], high: [11, 14, 0] },
        { name: 'thi.ng', values: [1, 2, 3] },
      ],
      yAxis: { label: 'events/s' },
    });
    const c = checkXml(svg);
    // background + 5 bars + 2 legend swatches
    assert.equal(c.get('rect'), 1 + 5 + 2);
    // whiskers only where low/high exist and the bar is drawn
    assert.equal((svg.match(/stroke="#222" stroke-width="1.2"/g) ?? []).length, 2);
    assert.match(svg, />12</);
    assert.match(svg, />thi\.ng</);
  });

  test('long category names are rotated; log axis; no legend for one series', () => {
    const cats = Array.from({ length: 8 }, (_, i) => `a rather long benchmark name number ${i}`);
    const svg = barChart({
      title: 'ratio',
      categories: cats,
      series: [{ name: 'x', values: cats.map((_, i) => 10 ** i) }],
      yAxis: { log: true },
    });
    const c = checkXml(svg);
    assert.match(svg, /rotate\(-35 /);
    assert.equal(c.get('rect'), 1 + 8);
    assert.match(svg, />10M</);
  });

  test('negative values hang from zero', () => {
    const svg = barChart({ title: 'n', categories: ['a', 'b'], series: [{ name: 's', values: [-5, 5] }] });
    checkXml(svg);
    const heights = [...svg.matchAll(/<rect x="[^"]+" y="([^"]+)" width="[^"]+" height="([^"]+)" fill="#4e79a7"/g)].map(
      (m) => [Number(m[1]), Number(m[2])],
    );
    assert.equal(heights.length, 2);
    assert.ok(Math.abs(heights[0][1] - heights[1][1]) < 0.2, 'equal magnitudes, equal heights');
    assert.ok(Math.abs(heights[0][0] - (heights[1][0] + heights[1][1])) < 0.2, 'both start at the zero line');
  });
});
