#!/usr/bin/env node
/**
 * The `vmphys` command: dispatches to subcommands, each in its own file src/cli/NAME.ts
 * exporting `main(args)` (exit status), and turns every error into one line on stderr and an
 * exit status (common.ts reportError). Owned by the CLI.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { reportError, UsageError } from './common.js';
import { repoRoot } from './paths.js';

const USAGE = `usage: vmphys <command> [options]     (vmphys <command> --help explains each option)
  run SCRIPT            run a vector script (docs/script-language.md); '-' reads stdin
  conformance [DIR]     run every golden vector (default data/golden) and compare byte for byte
  boot [--map FILE | --ram SIZE] [--mode lazy|eager|both] [--json] [--svg FILE]
                        boot a machine eager and lazy and report start-up time and memory
  phys-free [--map FILE | --ram SIZE] [--mode lazy|eager] [--drain]
                        print vm.phys_free after a boot, as FreeBSD formats it
  phys-segs [--map FILE | --ram SIZE] [--mode lazy|eager] [--drain]
                        print vm.phys_segs after a boot
  replay FILE [--map FILE] [--mode lazy|eager] [--json] [--svg FILE] [--limit N] [--sample N]
                        replay a Linux page-allocator trace
  replay FILE --policy P [--policy P ...] [--ram SIZE | --from SNAPSHOT] [--svg PREFIX]
                        the same trace under several allocation policies, side by side
  fragment [--ram SIZE] [--target U] [--seed N] --out FILE
                        save a reproducibly fragmented machine as a snapshot
  stress --workers N --ops M [--drain] [--pcpu] [--ram SIZE] [--json]
                        worker threads as CPUs on one shared allocator, then consistency checks
  viz [--map FILE | --ram SIZE] [--port N]
                        serve the live visualiser (prints its URL)
  --version             print the version
Exit status: 0 ok, 1 failure, 2 usage error.
`;

/** Subcommands, each in src/cli/NAME.ts exporting `main(args): number | Promise<number>`. */
const SUBCOMMANDS = new Set([
  'run',
  'conformance',
  'boot',
  'phys-free',
  'phys-segs',
  'replay',
  'stress',
  'viz',
  'fragment',
]);

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
      process.stderr.write(USAGE);
      return 2;
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    case '-V':
    case '--version': {
      const pkg = JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { version: string };
      process.stdout.write(`vmphys ${pkg.version}\n`);
      return 0;
    }
    default: {
      if (!SUBCOMMANDS.has(cmd)) throw new UsageError(`unknown command '${cmd}'`);
      const mod = (await import(`./${cmd}.js`)) as { main(args: string[]): Promise<number> | number };
      try {
        return await mod.main(rest);
      } catch (e) {
        return reportError(cmd, e);
      }
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
    process.exitCode = reportError(undefined, e);
  },
);
