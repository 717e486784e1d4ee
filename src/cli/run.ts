/**
 * `vmphys run SCRIPT`: run a vector script (docs/script-language.md) and print its output. A
 * failed line prints `error: CODE: message` in the output, as in the golden vectors, and one
 * line `vmphys run: SCRIPT:LINE: CODE: message` on stderr; the script goes on and the exit
 * status is 1. `snapshot FILE` / `restore FILE` lines save and load allocator state.
 * Owned by the CLI.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { restore, snapshot } from '../core/snapshot.js';
import { ScriptError, ScriptRunner } from '../script/run.js';
import { parseArgs, UsageError } from './args.js';
import { ioMessage, readInput } from './common.js';

export const USAGE = `usage: vmphys run SCRIPT
Runs a vector script (one command per line; see docs/script-language.md) and prints its output.
  SCRIPT   the script file; '-' reads standard input
A line that fails prints 'error: CODE: message' and the script goes on; exit status 1 then.
`;

/** Entry point used by the dispatcher. */
export function main(args: string[]): number {
  const a = parseArgs(args, { values: [], flags: [], maxPositional: 1 });
  if (a.flags.has('help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const file = a.positional[0];
  if (file === undefined) throw new UsageError('needs a SCRIPT file (or - for standard input)');
  const text = readInput(file, 'cannot read the script');
  const runner = new ScriptRunner({
    snapshot: (vm, f) => {
      const bytes = snapshot(vm);
      try {
        writeFileSync(f, bytes);
      } catch (e) {
        throw new ScriptError('EIO', `cannot write the snapshot: ${ioMessage(e, f)}`);
      }
    },
    restore: (_vm, f) => {
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(readFileSync(f));
      } catch (e) {
        throw new ScriptError('EIO', `cannot read the snapshot: ${ioMessage(e, f)}`);
      }
      return restore(bytes, { shared: false });
    },
  });
  const name = file === '-' ? '<stdin>' : file;
  runner.onError = (line, e) => process.stderr.write(`vmphys run: ${name}:${line}: ${e.code}: ${e.message}\n`);
  process.stdout.write(runner.run(text));
  return runner.errors > 0 ? 1 : 0;
}
