/**
 * A small, strict command-line option parser shared by the subcommands: `--name value`,
 * `--name=value` and boolean flags; unknown options are errors that name the option.
 */

export class UsageError extends Error {
  readonly code = 'EUSAGE';
}

export interface ArgSpec {
  /** Options that take a value. */
  values: string[];
  /** Boolean flags. */
  flags: string[];
}

export interface ParsedArgs {
  positional: string[];
  values: Map<string, string>;
  flags: Set<string>;
}

export function parseArgs(args: string[], spec: ArgSpec): ParsedArgs {
  const out: ParsedArgs = { positional: [], values: new Map(), flags: new Set() };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('--')) {
      out.positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (spec.flags.includes(name)) {
      if (eq > 0) throw new UsageError(`--${name} takes no value`);
      out.flags.add(name);
    } else if (spec.values.includes(name)) {
      const v = eq > 0 ? a.slice(eq + 1) : args[++i];
      if (v === undefined) throw new UsageError(`--${name} needs a value`);
      out.values.set(name, v);
    } else throw new UsageError(`unknown option ${a}`);
  }
  return out;
}
