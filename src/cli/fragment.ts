/**
 * `vmphys fragment [--ram SIZE | --map FILE] [--target U] [--seed N] [--free-fraction F]
 *  [--trace FILE --events N] --out FILE`: build a machine, drive it to a fragmented state
 * (src/lab/fragment.ts: seeded, to a target U_9; or by replaying a trace prefix) and save it as
 * a snapshot that `vmphys replay --policy … --from FILE` starts every policy from. Owned by the CLI.
 */
import { writeFileSync } from 'node:fs';
import { firecrackerMap } from '../boot/ramspec.js';
import { buildMachine, type MachineMapLike } from '../boot/startup.js';
import { snapshot } from '../core/snapshot.js';
import { fragment, fragmentByTrace } from '../lab/fragment.js';
import { fragStatsOf } from '../lab/fragmentation.js';
import { superpageOrder } from '../lab/source.js';
import { readTraceEvents } from '../trace/parse.js';
import { parseArgs, UsageError } from './args.js';
import { CliFailure, checkWritable, intOption, ioMessage, ramOption, readMapFile } from './common.js';

const USAGE = `usage: vmphys fragment [--ram SIZE | --map FILE] [--target U] [--seed N] [--free-fraction F]
                        [--trace FILE --events N] --out FILE
  --ram SIZE          a Firecracker guest of SIZE RAM (default 3G)
  --map FILE          a memory map instead (see vmphys boot)
  --target U          drive U_9 (unusable free space index, superpage order) down to U (default 0.8)
  --seed N            generator seed (default 1): the same seed gives the same state
  --free-fraction F   pages given back at random before whole frames are (default 0.5)
  --trace FILE        instead: replay the first --events N events of a trace (blocks stay held)
  --out FILE          the snapshot to write
`;

/** Entry point of `vmphys fragment`. */
export async function main(args: string[]): Promise<number> {
  const o = parseArgs(args, {
    values: ['ram', 'map', 'target', 'seed', 'free-fraction', 'trace', 'events', 'out'],
    flags: [],
  });
  if (o.flags.has('help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const out = o.values.get('out');
  if (out === undefined) throw new UsageError('needs --out FILE');
  if (o.values.has('ram') && o.values.has('map')) throw new UsageError('--ram and --map cannot be combined');
  const num = (k: string, d: number, lo: number, hi: number): number => {
    const v = o.values.get(k);
    if (v === undefined) return d;
    const x = Number(v);
    if (!Number.isFinite(x) || x <= lo || x > hi) throw new UsageError(`--${k} must be in (${lo}, ${hi}], not '${v}'`);
    return x;
  };
  const target = num('target', 0.8, 0, 1);
  const freeFraction = num('free-fraction', 0.5, 0, 0.999999);
  const seed = intOption(o.values.get('seed'), 'seed', 1, 0);
  const trace = o.values.get('trace');
  if ((trace === undefined) !== !o.values.has('events')) throw new UsageError('--trace and --events go together');
  checkWritable(out, 'out');
  let map: MachineMapLike;
  const mapFile = o.values.get('map');
  if (mapFile !== undefined) {
    const m = readMapFile(mapFile).map;
    map = { ram: m.ram, reserved: m.reserved, affinity: m.affinity };
  } else map = { ram: firecrackerMap(ramOption(o.values.get('ram') ?? '3G', 'ram')).ram };
  const vm = buildMachine(map, 'lazy');
  const sp = superpageOrder(vm.profile);
  if (trace !== undefined) {
    const n = intOption(o.values.get('events'), 'events', 0, 1);
    const ev = await readTraceEvents(trace, n);
    const r = fragmentByTrace(vm, ev, n);
    const st = fragStatsOf(vm);
    process.stdout.write(
      `replayed ${r.events} events: U_${sp} ${st.unusable[sp].toFixed(3)}, S_${sp} ${st.suitable[sp]}, ` +
        `${st.freePages} free pages, ${r.heldPages} held\n`,
    );
  } else {
    const r = fragment(vm, { target, seed, freeFraction });
    process.stdout.write(
      `seed ${seed}: U_${sp} ${r.unusable.toFixed(3)} (target ${target}), S_${sp} ${r.suitable}, ` +
        `${r.freePages} free pages, ${r.heldPages} held\n`,
    );
  }
  try {
    writeFileSync(out, snapshot(vm));
  } catch (e) {
    throw new CliFailure(`--out: cannot write ${ioMessage(e, out)}`);
  }
  return 0;
}
