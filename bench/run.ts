/**
 * `npm run bench` = `node dist/bench/run.js [suite...] [--quick] [--list]`: the one entry point of
 * the benchmarks. Owned by the benchmark work; suites are added as files, not here.
 *
 * It imports every `dist/bench/suites/*.js` that exports `suite` ({ name, run }, see
 * bench/util.ts), runs the named suites (all when none is named) one after the other, and for
 * each writes `bench/results/<suite>.json` ({ suite, machine, quick, results }) and a bar chart
 * per unit `bench/results/<suite>-<unit>.svg`; then it regenerates BENCHMARKS.md from every
 * result file present. `--quick` is a smoke run: small inputs, few repetitions; its files go to
 * bench/results/quick/ and BENCHMARKS.md is left alone. Exit status 1 if a suite throws (the
 * other suites still run), 2 for an unknown suite or option.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fmtValue, type ResultFile, regenerate, writeReadmeResults } from './report.js';
import { machineInfo, type Result, repoRoot, type Suite } from './util.js';

export type { ResultFile };

const SUITES_DIR = fileURLToPath(new URL('./suites/', import.meta.url));

/** Every suite module in dist/bench/suites, by name. */
export async function discoverSuites(dir = SUITES_DIR): Promise<Map<string, Suite>> {
  const out = new Map<string, Suite>();
  if (!existsSync(dir)) return out;
  for (const f of readdirSync(dir).sort()) {
    if (!f.endsWith('.js')) continue;
    const mod = (await import(pathToFileURL(join(dir, f)).href)) as { suite?: Suite };
    const s = mod.suite;
    if (s && typeof s.name === 'string' && typeof s.run === 'function') out.set(s.name, s);
  }
  return out;
}

function printResults(name: string, rs: Result[]): void {
  process.stdout.write(`\n== ${name}\n`);
  for (const r of rs) {
    const sp = r.spread ? `  [${fmtValue(r.spread.min, r.unit)} – ${fmtValue(r.spread.max, r.unit)}]` : '';
    const unit = r.unit === '×' ? '' : ` ${r.unit}`;
    process.stdout.write(
      `  ${r.name}: ${fmtValue(r.value, r.unit)}${unit}${sp}${r.goal ? `  (goal ${r.goal})` : ''}\n`,
    );
  }
}

async function main(argv: string[]): Promise<number> {
  const quick = argv.includes('--quick');
  const list = argv.includes('--list');
  const bad = argv.filter((a) => a.startsWith('--') && a !== '--quick' && a !== '--list');
  if (bad.length > 0) {
    process.stderr.write(
      `bench: unknown option ${bad[0]}\nusage: node dist/bench/run.js [suite...] [--quick] [--list]\n`,
    );
    return 2;
  }
  const suites = await discoverSuites();
  if (list) {
    process.stdout.write(`${[...suites.keys()].join('\n')}\n`);
    return 0;
  }
  const names = argv.filter((a) => !a.startsWith('--'));
  for (const n of names)
    if (!suites.has(n)) {
      process.stderr.write(`bench: unknown suite '${n}' (have: ${[...suites.keys()].join(', ')})\n`);
      return 2;
    }
  const root = repoRoot();
  const outDir = join(root, 'bench', 'results', ...(quick ? ['quick'] : []));
  mkdirSync(outDir, { recursive: true });
  let failed = 0;
  for (const name of names.length > 0 ? names : [...suites.keys()]) {
    const s = suites.get(name) as Suite;
    const machine = machineInfo();
    const t0 = performance.now();
    process.stdout.write(`bench: running ${name}${quick ? ' (quick)' : ''} …\n`);
    try {
      const results = await s.run({ quick });
      const file: ResultFile = { suite: name, machine, quick, seconds: (performance.now() - t0) / 1000, results };
      writeFileSync(join(outDir, `${name}.json`), `${JSON.stringify(file, null, 2)}\n`);
      printResults(name, results);
    } catch (e) {
      failed++;
      process.stderr.write(`bench: suite ${name} failed: ${(e as Error).stack ?? e}\n`);
    }
  }
  if (!quick) {
    regenerate(root);
    writeReadmeResults(root);
    process.stdout.write('\nbench: wrote bench/results/*.json, *.svg, BENCHMARKS.md and the README results table\n');
  } else process.stdout.write(`\nbench: quick results in ${outDir} (BENCHMARKS.md unchanged)\n`);
  return failed > 0 ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
      process.exitCode = 70;
    },
  );
}
