/**
 * A small, strict command-line option parser for the subcommands: `--name value`,
 * `--name=value` and boolean flags. Unknown options, a value option given twice or without a
 * value, a value given to a flag and extra positional arguments are UsageErrors that name the
 * argument. `--help` and `-h` are always accepted (flag 'help'); `--` ends the options.
 * Owned by the CLI.
 */
import { UsageError } from '../core/errors.js';

export { UsageError };

export interface ArgSpec {
  /** Options that take a value. */
  values: string[];
  /** Boolean flags. */
  flags: string[];
  /** Most positional arguments accepted (default 0). A lone '-' counts as one (stdin). */
  maxPositional?: number;
}

export interface ParsedArgs {
  positional: string[];
  values: Map<string, string>;
  flags: Set<string>;
}

/** Parse `args` against `spec`; throws UsageError naming the first argument that does not fit. */
export function parseArgs(args: string[], spec: ArgSpec): ParsedArgs {
  const out: ParsedArgs = { positional: [], values: new Map(), flags: new Set() };
  let options = true;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (options && a === '--') {
      options = false;
      continue;
    }
    if (options && (a === '-h' || a === '--help')) {
      out.flags.add('help');
      continue;
    }
    if (!options || !a.startsWith('-') || a === '-') {
      out.positional.push(a);
      continue;
    }
    if (!a.startsWith('--') || a.length === 2) throw new UsageError(`unknown option '${a}'`);
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (spec.flags.includes(name)) {
      if (eq > 0) throw new UsageError(`--${name} takes no value`);
      out.flags.add(name);
    } else if (spec.values.includes(name)) {
      const v = eq > 0 ? a.slice(eq + 1) : args[++i];
      if (v === undefined || v === '' || (eq < 0 && v.startsWith('--')))
        throw new UsageError(`--${name} needs a value`);
      if (out.values.has(name)) throw new UsageError(`--${name} is given twice`);
      out.values.set(name, v);
    } else throw new UsageError(`unknown option '${eq > 0 ? a.slice(0, eq) : a}'`);
  }
  const max = spec.maxPositional ?? 0;
  if (!out.flags.has('help') && out.positional.length > max)
    throw new UsageError(`unexpected argument '${out.positional[max]}'`);
  return out;
}

/** Refuse two options that exclude each other when both are present. */
export function exclusive(a: ParsedArgs, ...names: string[]): void {
  const given = names.filter((n) => a.values.has(n) || a.flags.has(n));
  if (given.length > 1) throw new UsageError(`give only one of ${given.map((n) => `--${n}`).join(', ')}`);
}
