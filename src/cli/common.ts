/**
 * The helpers every subcommand shares: option values (whole numbers, byte sizes, RAM sizes),
 * byte formatting, reading an input file, and the one place that turns an error into a line on
 * stderr and an exit status. Owned by the CLI; subcommands import from here instead of keeping
 * their own copies.
 *
 * Exit status: 0 success, 1 a failure the user can act on (a file that cannot be read, bad
 * input data, a check that failed), 2 a usage error, 70 a bug (an exception nobody expected;
 * only then is a stack trace printed).
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { type MemMap, type MemRange, parseMemMap } from '../boot/memmap.js';
import { parseSize } from '../boot/ramspec.js';
import { SizeError, UsageError, VmPhysError } from '../core/errors.js';

export { UsageError };

/** A failure of the command that is not a usage mistake (no vectors found, a check failed). */
export class CliFailure extends VmPhysError {
  constructor(message: string) {
    super('EFAIL', message);
  }
}

/**
 * Largest page count the allocator indexes (VmPhys.init refuses more with ETOOBIG): page
 * indices are 31-bit so that every packed page handle stays a small integer.
 */
export const MAX_PAGES = 0x7ffffff0;

/** A whole number ≥ min for `--name`, `dflt` when absent; UsageError naming the flag otherwise. */
export function intOption(v: string | undefined, name: string, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)) || Number(v) < min)
    throw new UsageError(`--${name} needs a whole number ≥ ${min}, not '${v}'`);
  return Number(v);
}

/** A byte size for `--name` (see parseSize); the error names the flag. */
export function sizeOption(v: string, name: string): number {
  try {
    return parseSize(v);
  } catch (e) {
    if (e instanceof SizeError) throw new UsageError(`--${name}: ${e.message}`);
    throw e;
  }
}

/**
 * A guest RAM size for `--name`: a byte size that is a multiple of 4 KiB above 1 MiB and whose
 * pages the allocator can index (at most MAX_PAGES pages of `pageSize` bytes).
 */
export function ramOption(v: string, name: string, pageSize = 4096): number {
  const bytes = sizeOption(v, name);
  if (bytes <= 2 ** 20 || bytes % pageSize !== 0)
    throw new UsageError(`--${name} ${v}: RAM must be a multiple of ${fmtBytes(pageSize)} above 1 MiB`);
  if (bytes / pageSize > MAX_PAGES)
    throw new UsageError(
      `--${name} ${v}: too large: the allocator indexes at most 2^31 pages ` +
        `(just under ${fmtBytes(2 ** 31 * pageSize)} of RAM with ${fmtBytes(pageSize)} pages)`,
    );
  return bytes;
}

/**
 * Bytes in binary units: exact when the value is a whole number of its unit (`1 GiB`,
 * `512 KiB`), else one decimal (`1.5 GiB`), or none from 100 up (`127 GiB`).
 */
export function fmtBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  if (Number.isInteger(v)) return `${v} ${u[i]}`;
  return `${v.toFixed(v >= 100 ? 0 : 1)} ${u[i]}`;
}

/** Read a text input named by the user; a missing file or a directory is a CliFailure. */
export function readInput(file: string, what: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new CliFailure(`${what}: ${ioMessage(e, file)}`);
  }
}

const IO_REASONS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EISDIR: 'is a directory, not a file',
  ENOTDIR: 'a part of the path is not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EEXIST: 'already exists',
};

/** `'PATH': reason` for a Node system error (or the plain message for anything else). */
export function ioMessage(e: unknown, path?: string): string {
  const err = e as NodeJS.ErrnoException;
  const reason = err.code !== undefined ? IO_REASONS[err.code] : undefined;
  const p = err.path ?? path;
  if (reason !== undefined) return p !== undefined ? `'${p}': ${reason}` : reason;
  return err.message;
}

/** True for a Node system error about a file (ENOENT, EISDIR, ...). */
export function isIoError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && code in IO_REASONS && typeof (e as NodeJS.ErrnoException).syscall === 'string';
}

/**
 * Print `e` as one line `vmphys CMD: message` on stderr and return the exit status: 2 for a
 * UsageError, 1 for any other typed error or a file error, 70 (with the stack) for a bug.
 */
export function reportError(cmd: string | undefined, e: unknown): number {
  const who = cmd ? `vmphys ${cmd}` : 'vmphys';
  if (e instanceof UsageError) {
    const hint = cmd ? ` (see 'vmphys ${cmd} --help')` : " (see 'vmphys --help')";
    process.stderr.write(`${who}: ${oneLine(e.message)}${hint}\n`);
    return 2;
  }
  if (e instanceof VmPhysError) {
    process.stderr.write(`${who}: ${oneLine(e.message)}\n`);
    return 1;
  }
  if (isIoError(e)) {
    process.stderr.write(`${who}: ${oneLine(ioMessage(e))}\n`);
    return 1;
  }
  process.stderr.write(`${who}: internal error (a bug, please report it): ${(e as Error)?.stack ?? String(e)}\n`);
  return 70;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, '; ');
}

/** Parse "A-B,C-D" (hex or decimal) into ranges. */
export function parseRanges(text: string, what: string): MemRange[] {
  return text
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((s) => {
      const m = /^\s*(0x[0-9a-f]+|\d+)\s*-\s*(0x[0-9a-f]+|\d+)\s*$/i.exec(s);
      if (!m) throw new UsageError(`${what}: '${s}' is not a range START-END`);
      const start = Number(m[1]);
      const end = Number(m[2]);
      if (!(end > start)) throw new UsageError(`${what}: '${s}' is empty`);
      return { start: Math.floor(start / 4096) * 4096, end: Math.ceil(end / 4096) * 4096 };
    });
}

/** Parse "ADDR,ADDR" into addresses. */
export function parseAddrs(text: string, what: string): number[] {
  return text
    .split(/[\s,]+/)
    .filter((s) => s !== '')
    .map((s) => {
      if (!/^(0x[0-9a-f]+|\d+)$/i.test(s)) throw new UsageError(`${what}: '${s}' is not an address`);
      return Number(s);
    });
}

/** The map text and parsed map of `--map FILE`; an unreadable file or a bad map is a typed error. */
export function readMapFile(file: string): { text: string; map: MemMap } {
  const text = readInput(file, '--map');
  return { text, map: parseMemMap(text, { file }) };
}

/** Refuse an output path for `--name` that cannot be written, before any work runs. */
export function checkWritable(file: string, name: string): void {
  try {
    if (existsSync(file)) {
      if (statSync(file).isDirectory()) throw new CliFailure(`--${name} '${file}': is a directory, not a file`);
      accessSync(file, constants.W_OK);
    } else accessSync(dirname(file), constants.W_OK);
  } catch (e) {
    if (e instanceof CliFailure) throw e;
    throw new CliFailure(`--${name}: cannot write ${ioMessage(e, file)}`);
  }
}
