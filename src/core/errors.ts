/**
 * Typed errors for misuse of the allocator. Every public entry point validates its arguments
 * before it changes anything, so an error always leaves every shared buffer byte-identical.
 * Owned by the core; callers may catch by class or by the stable `code`.
 */

/** Base class: `code` is stable and documented in the README. */
export class VmPhysError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}
/** A block (or part of it) that is already free was freed again. */
export class DoubleFreeError extends VmPhysError {
  constructor(message: string) {
    super('EDOUBLEFREE', message);
  }
}
/**
 * A free whose order does not match what the caller owns: the block covers pages of no unit or
 * of another unit (an order-1 free of an order-0 page), or, with `exactFrees`, is only a part
 * of an allocated block.
 */
export class OrderMismatchError extends VmPhysError {
  constructor(message: string) {
    super('EWRONGORDER', message);
  }
}
/** A free into a block a drainer holds (taken off its queue to be initialised without the lock). */
export class HeldError extends VmPhysError {
  constructor(message: string) {
    super('EHELD', message);
  }
}
/** A page that was never handed out (still uninitialised lazy memory) was freed. */
export class NotAllocatedError extends VmPhysError {
  constructor(message: string) {
    super('ENOTALLOC', message);
  }
}
/** An address is not aligned to the block size its order implies (or not page aligned). */
export class MisalignedError extends VmPhysError {
  constructor(message: string) {
    super('EALIGN', message);
  }
}
/** An order outside 0 .. VM_NFREEORDER-1, or a page count out of range. */
export class RangeArgError extends VmPhysError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}
/** A pool that callers may not name (LAZYINIT) or that does not exist. */
export class PoolError extends VmPhysError {
  constructor(message: string) {
    super('EPOOL', message);
  }
}
/** An address that lies outside every segment, or a block that crosses a segment's end. */
export class SegmentError extends VmPhysError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}
/** A call made in the wrong phase (e.g. `seg` after `init`, `alloc` before `startup`). */
export class StateError extends VmPhysError {
  constructor(message: string) {
    super('ESTATE', message);
  }
}
/** Contig constraints that are not powers of two. */
export class ConstraintError extends VmPhysError {
  constructor(message: string) {
    super('EPOW2', message);
  }
}
/** A domain number outside 0 .. ndomains-1 (or bad NUMA affinity data). */
export class DomainError extends VmPhysError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}
/** `verify()` found a broken invariant; `invariant` names it (spec §5.2 numbering). */
export class InvariantError extends VmPhysError {
  readonly invariant: string;
  constructor(invariant: string, message: string) {
    super('EINVARIANT', `invariant ${invariant}: ${message}`);
    this.invariant = invariant;
  }
}
/** Snapshot bytes that are corrupted, truncated or from another version/profile. */
export class SnapshotError extends VmPhysError {
  constructor(message: string) {
    super('ESNAPSHOT', message);
  }
}
/** The domain lock's owner died or the lock word is corrupt. */
export class LockError extends VmPhysError {
  constructor(message: string) {
    super('ELOCK', message);
  }
}

/**
 * Lower-case hex with 0x prefix (C `%#jx`, which prints plain `0` for zero). A negative integer
 * prints as -0x…; anything that is not an integer (NaN, ±Infinity, 1.5, a string passed where
 * a number belongs) prints as itself, never behind a 0x.
 */
export function hex(n: number): string {
  if (typeof n !== 'number' || !Number.isInteger(n)) return typeof n === 'string' ? JSON.stringify(n) : String(n);
  if (n === 0) return '0';
  return n < 0 ? `-0x${(-n).toString(16)}` : `0x${n.toString(16)}`;
}

/** A command line that cannot be obeyed (unknown option, missing value, conflicting flags). */
export class UsageError extends VmPhysError {
  constructor(message: string) {
    super('EUSAGE', message);
  }
}
/** A byte size that is malformed or outside what the allocator or a map builder can hold. */
export class SizeError extends VmPhysError {
  constructor(message: string) {
    super('ESIZE', message);
  }
}
/**
 * A trace that cannot be read or parsed. `line` is the 1-based line of the bad input, or 0 when
 * the problem is not tied to a line (corrupt compressed data, missing `xz`).
 * The message reads `FILE:LINE: what is wrong` (or `FILE: what is wrong` when line is 0).
 */
export class TraceParseError extends VmPhysError {
  readonly file: string;
  readonly line: number;
  constructor(file: string, line: number, what: string, options?: { cause?: unknown }) {
    super('ETRACE', line > 0 ? `${file}:${line}: ${what}` : `${file}: ${what}`);
    if (options && 'cause' in options) this.cause = options.cause;
    this.file = file;
    this.line = line;
  }
}
