/**
 * The `vmphys boot --svg FILE` chart: with several RAM sizes, ready time and resident-set growth
 * against RAM (eager and lazy); always the drain timeline (lazy pages left over time since the
 * APs started). Panels are stacked in one SVG document. Built on svg.ts; owned by the boot CLI.
 */
import { barChart, escapeXml, lineChart } from './svg.js';
import type { BootReport } from './timeline.js';

const W = 720;
const H = 360;

/** Stack standalone SVG documents vertically into one. */
function stack(panels: string[]): string {
  const body = panels
    .map((p, i) => p.replace(/^<\?xml[^>]*>\s*/, '').replace(/^<svg /, `<svg x="0" y="${i * H}" `))
    .join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H * panels.length}" viewBox="0 0 ${W} ${H * panels.length}">\n<rect width="100%" height="100%" fill="white"/>\n${body}\n</svg>\n`;
}

/** The chart for a set of boot reports. */
export function bootChart(reports: BootReport[]): string {
  const panels: string[] = [];
  const byMode = (m: string) => reports.filter((r) => r.mode === m);
  const eager = byMode('eager');
  const lazy = byMode('lazy');
  const sizes = [...new Set(reports.map((r) => r.ramBytes))].sort((a, b) => a - b);
  const valueAt = (list: BootReport[], f: (r: BootReport) => number) =>
    sizes.map((s) => {
      const r = list.find((x) => x.ramBytes === s);
      return r ? f(r) : Number.NaN;
    });
  const gib = sizes.map((s) => s / 2 ** 30);
  if (sizes.length > 1) {
    panels.push(
      lineChart({
        title: 'Ready time against RAM (start-up until the first allocation is served)',
        width: W,
        height: H,
        xs: gib,
        xAxis: { label: 'RAM (GiB)', log: true },
        yAxis: { label: 'ready (ms)', log: true },
        series: [
          { name: 'eager', values: valueAt(eager, (r) => r.readyMs) },
          { name: 'lazy', values: valueAt(lazy, (r) => r.readyMs) },
        ],
      }),
      lineChart({
        title: 'Resident-set growth at ready against RAM',
        width: W,
        height: H,
        xs: gib,
        xAxis: { label: 'RAM (GiB)', log: true },
        yAxis: { label: 'RSS growth (MiB)' },
        series: [
          { name: 'eager', values: valueAt(eager, (r) => r.rssAtReadyBytes / 2 ** 20) },
          { name: 'lazy', values: valueAt(lazy, (r) => r.rssAtReadyBytes / 2 ** 20) },
        ],
      }),
    );
  } else {
    panels.push(
      barChart({
        title: `Ready time, ${reports[0]?.map ?? ''}`,
        width: W,
        height: H,
        categories: reports.map((r) => r.mode),
        series: [{ name: 'ready (ms)', values: reports.map((r) => r.readyMs) }],
        yAxis: { label: 'ms' },
      }),
    );
  }
  // A timeline that starts at 0 lazy pages has nothing to draw (its axis would run from -1 to 1).
  const withDrain = lazy.filter((r) => r.drainTimeline.length > 1 && r.drainTimeline[0][1] > 0);
  if (withDrain.length === 0 && lazy.length > 0)
    panels.push(notePanel('Drain (vmlazyinit): nothing to drain', 'no lazy pages were left when the APs started'));
  if (withDrain.length > 0) {
    // One x axis for all: resample each timeline onto the union of times.
    const xs = [...new Set(withDrain.flatMap((r) => r.drainTimeline.map(([t]) => Math.round(t * 100) / 100)))].sort(
      (a, b) => a - b,
    );
    panels.push(
      lineChart({
        title: 'Drain (vmlazyinit) while the workload runs: lazy memory left',
        width: W,
        height: H,
        xs,
        xAxis: { label: 'ms since the APs started' },
        yAxis: { label: 'lazy pages left (% of boot)' },
        dots: false,
        series: withDrain.map((r) => {
          const total = r.drainTimeline[0][1] || 1;
          let k = 0;
          return {
            name: `${r.map} lazy`,
            values: xs.map((x) => {
              while (k + 1 < r.drainTimeline.length && r.drainTimeline[k + 1][0] <= x) k++;
              return (100 * r.drainTimeline[k][1]) / total;
            }),
          };
        }),
      }),
    );
  }
  return stack(panels);
}

/** A small panel with a title and one line of text, for a chart that has no data to show. */
function notePanel(title: string, text: string): string {
  const h = 80;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}">` +
    `<text x="16" y="28" font-family="sans-serif" font-size="16" font-weight="bold">${escapeXml(title)}</text>` +
    `<text x="16" y="56" font-family="sans-serif" font-size="13">${escapeXml(text)}</text></svg>`
  );
}
