#!/usr/bin/env node
/**
 * The `vmphys` command: dispatches to subcommands. Each subcommand lives in its own file.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { restore, snapshot } from '../core/snapshot.js';
import { ScriptRunner } from '../script/run.js';
import { conformanceMain } from './conformance.js';

const USAGE = `usage: vmphys <command> [options]
  run SCRIPT            run a vector script (golden README language); '-' reads stdin
  conformance [DIR]     run every golden vector and compare byte for byte
  boot [--map FILE | --ram SIZE] [--mode lazy|eager|both] [--json] [--svg FILE]
  phys-free | phys-segs [--map FILE | --ram SIZE] [--mode lazy|eager]
  replay FILE [--map FILE] [--mode lazy|eager] [--json] [--svg FILE] [--limit N] [--sample N]
  stress --workers N --ops M [--drain] [--drainers K] [--pcpu] [--ram SIZE] [--seed S] [--json]
  viz [--map FILE | --ram SIZE] [--port N]   serve the live visualiser (prints its URL)
`;

/** Subcommands implemented in their own modules (src/cli/NAME.ts exporting main). */
const SUBCOMMANDS = new Set(['boot', 'phys-free', 'phys-segs', 'replay', 'stress', 'viz', 'bench']);

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'run': {
      const file = rest[0];
      if (!file) {
        process.stderr.write(USAGE);
        return 2;
      }
      const text = readFileSync(file === '-' ? 0 : file, 'utf8');
      // `snapshot FILE` / `restore FILE` in scripts save and load allocator state.
      const runner = new ScriptRunner({
        snapshot: (vm, f) => writeFileSync(f, snapshot(vm)),
        restore: (_vm, f) => restore(new Uint8Array(readFileSync(f)), { shared: false }),
      });
      runner.onError = (line, e) => process.stderr.write(`vmphys run: ${file}:${line}: ${e.code}: ${e.message}\n`);
      process.stdout.write(runner.run(text));
      return runner.errors > 0 ? 1 : 0;
    }
    case 'conformance':
      return conformanceMain(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return cmd === undefined ? 2 : 0;
    default: {
      // Every other subcommand lives in src/cli/<name>.ts and exports `main(args): Promise<number>`.
      if (!/^[a-z][a-z-]*$/.test(cmd) || !SUBCOMMANDS.has(cmd)) {
        process.stderr.write(`vmphys: unknown command '${cmd}'\n${USAGE}`);
        return 2;
      }
      const mod = (await import(`./${cmd}.js`)) as { main(args: string[]): Promise<number> | number };
      return mod.main(rest);
    }
  }
}

// A closed pipe (e.g. `vmphys phys-free | head`) ends the command quietly.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`vmphys: ${(e as Error).stack ?? e}\n`);
    process.exitCode = 70;
  },
);
