/**
 * `vmphys stress --workers N --ops M [--drain] [--drainers K] [--saboteurs B] [--pcpu] [--seed S]
 * [--ram SIZE] [--duration MS] [--json]`: many worker threads as CPUs on one shared allocator,
 * optionally with the vmlazyinit drainer running and with workers that only aim bad frees, then
 * the end-of-run checks (no bad free accepted, conservation, no page held twice, verify). Exit status 0 when every check passes, 1 on a violation, 2 on bad usage.
 * Owned by the workers layer (src/workers/*); the engine is src/workers/stress-run.ts.
 */
import { DRAINER_SLOTS } from '../core/layout.js';
import { runStress, SABOTAGE_KINDS, type StressReport } from '../workers/stress-run.js';
import { intOption, ramOption, UsageError } from './common.js';

const USAGE = `usage: vmphys stress --workers N --ops M [--drain] [--drainers K] [--saboteurs B] [--pcpu]
                     [--seed S] [--ram SIZE] [--duration MS] [--mix mixed|order0] [--profile amd64|arm64]
                     [--json]
Runs worker threads as CPUs on one shared allocator, then checks that every page is accounted
for, that no page is held twice and that verify() passes (exit status 1 on a violation).
  --workers N   worker threads (default 2)
  --ops M       total operations over all workers (default 100000)
  --ram SIZE    end of the RAM segment, e.g. 256M, 1G, 4G (default 1G); map 0x1000-0x9f000, 1M-SIZE
  --drain       run the vmlazyinit drainer while the workers run
  --drainers K  run K drainers in parallel (implies --drain; at most ${DRAINER_SLOTS})
  --saboteurs B B more threads that only aim bad frees (at blocks drainers hold, and at the
                workers' live blocks with a wrong order or inside them); any accepted bad free
                is a violation
  --pcpu        per-CPU order-0 page caches in the workers (off by default)
  --duration MS run for MS milliseconds instead of a fixed number of operations
  --seed S      seed of the workers' random operations (default 1)
  --mix M       mixed (orders 0-10 and contig runs, the default) or order0 (single pages only)
  --profile P   platform parameters: amd64 (default) or arm64
  --json        print one JSON object instead of text
`;

/** Most worker (and drainer) threads: a thread is a CPU here, and each costs a V8 isolate. */
const MAX_THREADS = 256;

function intArg(v: string | undefined, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) throw new UsageError(`${name} needs a value`);
  const n = intOption(v, name.slice(2), 0, min);
  if (n > max) throw new UsageError(`${name} must be at most ${max}, not ${v}`);
  return n;
}

/** Entry point used by the CLI dispatcher. */
export async function main(args: string[]): Promise<number> {
  let workers = 2;
  let ops = 100000;
  let drain = false;
  let drainers = 1;
  let saboteurs = 0;
  let pcpu = false;
  let seed = 1;
  let json = false;
  let ram = 1024 ** 3;
  let durationMs: number | undefined;
  let mix: 'mixed' | 'order0' = 'mixed';
  let profile: 'amd64' | 'arm64' = 'amd64';
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const v = () => args[++i];
    switch (a) {
      case '--workers':
        workers = intArg(v(), a, 1, MAX_THREADS);
        break;
      case '--ops':
        ops = intArg(v(), a, 0);
        break;
      case '--drain':
        drain = true;
        break;
      case '--drainers':
        drainers = intArg(v(), a, 1, DRAINER_SLOTS);
        drain = true;
        break;
      case '--saboteurs':
        saboteurs = intArg(v(), a, 0, MAX_THREADS);
        break;
      case '--pcpu':
        pcpu = true;
        break;
      case '--seed':
        seed = intArg(v(), a, 0);
        break;
      case '--json':
        json = true;
        break;
      case '--duration':
        durationMs = intArg(v(), a, 1);
        break;
      case '--ram': {
        const s = v();
        if (s === undefined) throw new UsageError('--ram needs a value');
        ram = ramOption(s, 'ram');
        if (ram <= 0x200000) throw new UsageError(`--ram ${s}: must be above 2 MiB (e.g. 256M, 1G, 4G)`);
        break;
      }
      case '--mix': {
        const s = v();
        if (s !== 'mixed' && s !== 'order0') throw new UsageError(`--mix must be mixed or order0, got '${s ?? ''}'`);
        mix = s;
        break;
      }
      case '--profile': {
        const s = v();
        if (s !== 'amd64' && s !== 'arm64') throw new UsageError(`--profile must be amd64 or arm64, got '${s ?? ''}'`);
        profile = s;
        break;
      }
      case '-h':
      case '--help':
        process.stdout.write(USAGE);
        return 0;
      default:
        throw new UsageError(`unknown option '${a}'`);
    }
  }
  const r = await runStress({ workers, ops, drain, drainers, saboteurs, pcpu, seed, ram, durationMs, mix, profile });
  if (json) process.stdout.write(`${JSON.stringify(toJson(r))}\n`);
  else process.stdout.write(text(r));
  for (const v of r.violations) process.stderr.write(`vmphys stress: VIOLATION: ${v}\n`);
  return r.violations.length === 0 ? 0 : 1;
}

function toJson(r: StressReport) {
  return {
    workers: r.workers,
    ops: r.ops,
    opsPerSec: Math.round(r.opsPerSec),
    durationMs: round(r.durationMs, 1),
    allocs: r.allocs,
    frees: r.frees,
    failedAllocs: r.failedAllocs,
    contigAllocs: r.contigAllocs,
    drainMs: round(r.drainMs, 2),
    drainers: r.drainers,
    lockAcquires: r.lockAcquires,
    lockContended: r.lockContended,
    maxDrainerHoldUs: round(r.maxDrainerHoldUs, 1),
    conservation: r.conservation,
    perWorkerOps: r.perWorkerOps,
    pcpu: r.pcpu,
    seed: r.seed,
    ramBytes: r.ramBytes,
    sabotage: r.sabotage,
    ok: r.violations.length === 0,
    violations: r.violations,
  };
}

function round(x: number, d: number): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

function text(r: StressReport): string {
  const c = r.conservation;
  return [
    `workers ${r.workers}, ops ${r.ops} in ${round(r.durationMs, 1)} ms (${Math.round(r.opsPerSec)} ops/s)${r.pcpu ? ', pcpu caches on' : ''}`,
    `allocs ${r.allocs} (contig ${r.contigAllocs}), frees ${r.frees}, failed allocs ${r.failedAllocs}`,
    `lock: ${r.lockAcquires} acquisitions, ${r.lockContended} contended`,
    r.drainers > 0
      ? `drain: ${r.drainers} drainer(s), ${round(r.drainMs, 2)} ms, longest lock hold ${round(r.maxDrainerHoldUs, 1)} µs`
      : 'drain: off',
    r.sabotage.workers > 0
      ? `bad frees: ${r.sabotage.accepted} accepted of ${r.sabotage.attempts} (${SABOTAGE_KINDS.map((k) => `${k} ${r.sabotage.kinds[k].accepted}/${r.sabotage.kinds[k].attempts}`).join(', ')}; no target ${r.sabotage.noTarget}; refused: ${
          Object.entries(r.sabotage.codes)
            .map(([c, n]) => `${c} ${n}`)
            .join(', ') || 'none'
        })`
      : 'bad frees: none aimed',
    `conservation: free ${c.free} + in flight ${c.inFlight} + held ${c.held} = ${c.free + c.inFlight + c.held} / ${c.total} pages: ${c.ok ? 'ok' : 'VIOLATED'}`,
    `checks: ${r.violations.length === 0 ? 'ok' : `${r.violations.length} violation(s)`}`,
    '',
  ].join('\n');
}
