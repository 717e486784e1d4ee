// src/trace/parse.ts — streaming parser for Linux page-allocator traces (CSV, optionally .gz/.xz).
// Owned by the trace-parser work; only that work may edit this file (and test/trace-parse.test.ts).
// Format: see data/traces/README.md — `ts,cpu,op,pfn,order,migratetype,gfp_flags`.

import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { TraceParseError } from '../core/errors.js';

/** Bits of {@link TraceChunk.flags}, derived from an allocation's GFP flags and migratetype. */
export const TraceFlag = {
  /** `__GFP_DMA32` or `GFP_DMA32` among the gfp_flags tokens. */
  DMA32: 1,
  /** `__GFP_DMA` or `GFP_DMA` among the gfp_flags tokens. */
  DMA: 2,
  /** migratetype 1 (MIGRATE_MOVABLE). */
  MOVABLE: 4,
} as const;
export type TraceFlag = (typeof TraceFlag)[keyof typeof TraceFlag];

/** Operation codes stored in {@link TraceChunk.op}. */
export const TraceOp = { ALLOC: 0, FREE: 1 } as const;
export type TraceOp = (typeof TraceOp)[keyof typeof TraceOp];

/**
 * One parsed chunk of consecutive events, as parallel typed arrays.
 * Every array has length exactly `count`; each chunk owns fresh arrays (no buffer is reused
 * between chunks), so a consumer may keep chunks around.
 */
export interface TraceChunk {
  /** Number of events in this chunk (≥ 1). */
  count: number;
  /** 0 = allocation, 1 = free (see {@link TraceOp}). */
  op: Uint8Array;
  /** Page frame number (exact: values above 2^53 − 1 are rejected). */
  pfn: Float64Array;
  /** Buddy order 0..20. */
  order: Uint8Array;
  /** {@link TraceFlag} bits; allocations only, always 0 on frees. */
  flags: Uint8Array;
  /** 1-based line number (in the decompressed text) of the first event of this chunk. */
  firstLine: number;
}

/** Options of {@link parseTrace} and {@link parseTraceText}. */
export interface ParseTraceOptions {
  /** Events per chunk (integer ≥ 1); default 65536. The last chunk may be shorter. */
  chunkEvents?: number;
  /** Stop after this many events (integer ≥ 0); lines after that are neither read nor checked. */
  limit?: number;
  /** Command used to decompress `.xz` files; default `xz` (looked up in PATH). */
  xzCommand?: string;
}

/** Options of {@link openTraceStream}. */
export interface OpenTraceOptions {
  /** Command used to decompress `.xz` files; default `xz` (looked up in PATH). */
  xzCommand?: string;
}

export { TraceParseError };

const DEFAULT_CHUNK_EVENTS = 65536;
/** Longest accepted line (bytes, without the newline); bounds memory on input with no newlines. */
const MAX_LINE_BYTES = 4096;
const READ_BUFFER_BYTES = 1 << 20;
/** pfn values at or above this, shifted by one more hex digit, would exceed 2^53 − 1. */
const PFN_SHIFT_LIMIT = 2 ** 49;

const NL = 10;
const CR = 13;
const SPACE = 32;
const TAB = 9;
const COMMA = 44;
const DOT = 46;
const BAR = 124;
const D0 = 48;
const D9 = 57;
const LOWER_A = 97;
const LOWER_F = 102;
const UPPER_A = 65;
const UPPER_F = 70;
const LOWER_X = 120;
const UPPER_X = 88;
const UNDERSCORE = 95;

/** Value of an ASCII hex digit, or −1. */
const HEX = new Int8Array(256).fill(-1);
for (let c = D0; c <= D9; c++) HEX[c] = c - D0;
for (let c = LOWER_A; c <= LOWER_F; c++) HEX[c] = c - LOWER_A + 10;
for (let c = UPPER_A; c <= UPPER_F; c++) HEX[c] = c - UPPER_A + 10;

// "GFP_DMA" as bytes: G F P _ D M A
const G = 71;
const F = 70;
const P = 80;
const DD = 68;
const M = 77;
const A = 65;

/** Index of the first non-digit in b[p..e), or e. */
function skipDigits(b: Uint8Array, p: number, e: number): number {
  while (p < e) {
    const c = b[p];
    if (c < D0 || c > D9) break;
    p++;
  }
  return p;
}

/** TraceFlag bits of the gfp token b[s..e), which may start with `__`. */
function gfpTokenFlags(b: Uint8Array, s: number, e: number): number {
  if (e - s >= 2 && b[s] === UNDERSCORE && b[s + 1] === UNDERSCORE) s += 2;
  const len = e - s;
  if (len !== 7 && len !== 9) return 0;
  if (
    b[s + 4] !== DD ||
    b[s] !== G ||
    b[s + 1] !== F ||
    b[s + 2] !== P ||
    b[s + 3] !== UNDERSCORE ||
    b[s + 5] !== M ||
    b[s + 6] !== A
  ) {
    return 0;
  }
  if (len === 7) return TraceFlag.DMA;
  return b[s + 7] === 51 /* 3 */ && b[s + 8] === 50 /* 2 */ ? TraceFlag.DMA32 : 0;
}

function quote(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}

/**
 * Slow path: explain why a line (as text, without newline or trailing CR) is malformed.
 * Returns the description of the first problem found, or null if the line is valid.
 * It implements the same grammar as the fast byte parser independently, from strings.
 */
function explainBadLine(text: string): string | null {
  const cols = text.split(',');
  if (cols.length !== 7) {
    return `expected 7 comma-separated columns (ts,cpu,op,pfn,order,migratetype,gfp_flags), found ${cols.length}`;
  }
  const [ts, cpu, op, pfn, order, mt] = cols;
  if (!/^[0-9]+(\.[0-9]*)?$/.test(ts)) return `bad ts ${quote(ts)} (expected decimal seconds)`;
  if (!/^[0-9]+$/.test(cpu)) return `bad cpu ${quote(cpu)} (expected decimal digits)`;
  if (op !== 'a' && op !== 'f') return `bad op ${quote(op)} (expected a or f)`;
  if (!/^0[xX][0-9a-fA-F]+$/.test(pfn)) return `bad hex pfn ${quote(pfn)} (expected 0x followed by hex digits)`;
  if (Number.parseInt(pfn.slice(2), 16) > Number.MAX_SAFE_INTEGER) {
    return `pfn ${quote(pfn)} exceeds 2^53-1`;
  }
  if (!/^[0-9]+$/.test(order)) return `bad order ${quote(order)} (expected decimal digits)`;
  if (Number(order) > 20) return `order ${quote(order)} out of range 0..20`;
  if (op === 'a' && !/^[0-9]{1,3}$/.test(mt)) {
    return `bad migratetype ${quote(mt)} on an allocation (expected 1 to 3 decimal digits)`;
  }
  return null;
}

/**
 * Incremental byte-level decoder: feed it buffers in order, then finish(). Completed chunks are
 * pushed to the `out` array given to feed/finish. Memory is bounded by one chunk plus one line.
 */
class TraceDecoder {
  private readonly file: string;
  private readonly chunkEvents: number;
  private remaining: number;
  private line = 0;
  private carry: Uint8Array = new Uint8Array(256);
  private carryLen = 0;
  private op!: Uint8Array;
  private pfn!: Float64Array;
  private order!: Uint8Array;
  private flags!: Uint8Array;
  private count = 0;
  private firstLine = 0;

  constructor(file: string, opts: ParseTraceOptions | undefined) {
    this.file = file;
    const chunkEvents = opts?.chunkEvents ?? DEFAULT_CHUNK_EVENTS;
    if (!Number.isInteger(chunkEvents) || chunkEvents < 1) {
      throw new RangeError(`chunkEvents must be an integer >= 1, got ${chunkEvents}`);
    }
    const limit = opts?.limit ?? Number.POSITIVE_INFINITY;
    if (!(limit === Number.POSITIVE_INFINITY || (Number.isInteger(limit) && limit >= 0))) {
      throw new RangeError(`limit must be an integer >= 0, got ${limit}`);
    }
    this.chunkEvents = chunkEvents;
    this.remaining = limit;
    this.newChunk();
  }

  /** True once `limit` events have been produced; further input is ignored. */
  get done(): boolean {
    return this.remaining <= 0;
  }

  private newChunk(): void {
    const n = Math.min(this.chunkEvents, this.remaining);
    const cap = n > 0 ? n : 1;
    this.op = new Uint8Array(cap);
    this.pfn = new Float64Array(cap);
    this.order = new Uint8Array(cap);
    this.flags = new Uint8Array(cap);
    this.count = 0;
  }

  private emit(out: TraceChunk[]): void {
    const n = this.count;
    if (n === 0) return;
    const full = n === this.op.length;
    out.push({
      count: n,
      op: full ? this.op : this.op.slice(0, n),
      pfn: full ? this.pfn : this.pfn.slice(0, n),
      order: full ? this.order : this.order.slice(0, n),
      flags: full ? this.flags : this.flags.slice(0, n),
      firstLine: this.firstLine,
    });
    if (this.remaining > 0) this.newChunk();
    else this.count = 0;
  }

  feed(buf: Uint8Array, out: TraceChunk[]): void {
    if (this.done) return;
    const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    const n = b.length;
    let pos = 0;
    if (this.carryLen > 0) {
      const nl = b.indexOf(NL, 0);
      const end = nl < 0 ? n : nl;
      this.appendCarry(b, 0, end);
      if (nl < 0) return;
      this.parseLine(this.carry, 0, this.carryLen, out);
      this.carryLen = 0;
      pos = nl + 1;
    }
    while (pos < n && !this.done) {
      const nl = b.indexOf(NL, pos);
      if (nl < 0) {
        this.appendCarry(b, pos, n);
        return;
      }
      if (nl - pos > MAX_LINE_BYTES) this.tooLong();
      this.parseLine(b, pos, nl, out);
      pos = nl + 1;
    }
  }

  finish(out: TraceChunk[]): void {
    if (!this.done && this.carryLen > 0) {
      this.parseLine(this.carry, 0, this.carryLen, out);
      this.carryLen = 0;
    }
    this.emit(out);
  }

  private tooLong(): never {
    throw new TraceParseError(this.file, this.line + 1, `line longer than ${MAX_LINE_BYTES} bytes`);
  }

  private appendCarry(b: Uint8Array, s: number, e: number): void {
    const need = this.carryLen + (e - s);
    if (need > MAX_LINE_BYTES) this.tooLong();
    if (need > this.carry.length) {
      const bigger = new Uint8Array(Math.min(MAX_LINE_BYTES, Math.max(need, this.carry.length * 2)));
      bigger.set(this.carry.subarray(0, this.carryLen));
      this.carry = bigger;
    }
    this.carry.set(b.subarray(s, e), this.carryLen);
    this.carryLen = need;
  }

  /** Parse one line b[s..e) (newline excluded). Hot path: no allocation, no strings. */
  private parseLine(b: Uint8Array, s: number, e: number, out: TraceChunk[]): void {
    const lineNo = ++this.line;
    if (e > s && b[e - 1] === CR) e--;
    // Blank line (empty or only spaces/tabs): skip.
    let q = s;
    while (q < e && (b[q] === SPACE || b[q] === TAB)) q++;
    if (q === e) return;

    let p = s;
    let c = 0;
    // 1 ts: digits [ '.' digits* ]
    p = skipDigits(b, p, e);
    if (p === s) this.bad(b, s, e, lineNo);
    if (p < e && b[p] === DOT) p = skipDigits(b, p + 1, e);
    if (p >= e || b[p] !== COMMA) this.bad(b, s, e, lineNo);
    p++;
    // 2 cpu: digits
    const cpuStart = p;
    p = skipDigits(b, p, e);
    if (p === cpuStart || p >= e || b[p] !== COMMA) this.bad(b, s, e, lineNo);
    p++;
    // 3 op
    if (p + 1 >= e || b[p + 1] !== COMMA) this.bad(b, s, e, lineNo);
    c = b[p];
    let op: number;
    if (c === LOWER_A) op = 0;
    else if (c === LOWER_F) op = 1;
    else this.bad(b, s, e, lineNo);
    p += 2;
    // 4 pfn: 0x hex+
    c = b[p + 1];
    if (p + 2 >= e || b[p] !== D0 || (c !== LOWER_X && c !== UPPER_X)) {
      this.bad(b, s, e, lineNo);
    }
    p += 2;
    const hexStart = p;
    let pfn = 0;
    while (p < e) {
      const h = HEX[b[p]];
      if (h < 0) break;
      if (pfn >= PFN_SHIFT_LIMIT) this.bad(b, s, e, lineNo);
      pfn = pfn * 16 + h;
      p++;
    }
    if (p === hexStart || p >= e || b[p] !== COMMA) this.bad(b, s, e, lineNo);
    p++;
    // 5 order: digits, <= 20
    const orderStart = p;
    let order = 0;
    while (p < e) {
      c = b[p];
      if (c < D0 || c > D9) break;
      order = order * 10 + (c - D0);
      if (order > 20) this.bad(b, s, e, lineNo);
      p++;
    }
    if (p === orderStart || p >= e || b[p] !== COMMA) this.bad(b, s, e, lineNo);
    p++;
    let flags = 0;
    if (op === 0) {
      // 6 migratetype: 1..3 digits
      const mtStart = p;
      let mt = 0;
      while (p < e) {
        c = b[p];
        if (c < D0 || c > D9) break;
        mt = mt * 10 + (c - D0);
        p++;
      }
      if (p === mtStart || p - mtStart > 3 || p >= e || b[p] !== COMMA) this.bad(b, s, e, lineNo);
      p++;
      if (mt === 1) flags = TraceFlag.MOVABLE;
      // 7 gfp_flags: '|'-separated tokens, no commas
      let tok = p;
      while (p < e) {
        c = b[p];
        if (c === BAR) {
          flags |= gfpTokenFlags(b, tok, p);
          tok = p + 1;
        } else if (c === COMMA) {
          this.bad(b, s, e, lineNo);
        }
        p++;
      }
      flags |= gfpTokenFlags(b, tok, e);
    } else {
      // Frees: columns 6 and 7 are ignored, but the column count must still be 7.
      while (p < e && b[p] !== COMMA) p++;
      if (p >= e) this.bad(b, s, e, lineNo);
      p++;
      while (p < e && b[p] !== COMMA) p++;
      if (p < e) this.bad(b, s, e, lineNo);
    }

    const i = this.count;
    if (i === 0) this.firstLine = lineNo;
    this.op[i] = op;
    this.pfn[i] = pfn;
    this.order[i] = order;
    this.flags[i] = flags;
    this.count = i + 1;
    this.remaining--;
    if (this.count === this.op.length || this.remaining <= 0) this.emit(out);
  }

  private bad(b: Uint8Array, s: number, e: number, lineNo: number): never {
    const text = Buffer.from(b.buffer, b.byteOffset + s, e - s).toString('utf8');
    const what = explainBadLine(text) ?? `malformed line ${quote(text)}`;
    throw new TraceParseError(this.file, lineNo, what);
  }
}

/**
 * Open a trace file as a stream of decompressed byte buffers, chosen by file extension:
 * `.gz` is gunzipped with node:zlib, `.xz` is decompressed by an `xz -dc` child process (its
 * stdin is the opened file), anything else is read as plain text.
 * Contract: errors opening the file (ENOENT, EACCES, …) propagate as Node system errors;
 * corrupt compressed data and a missing `xz` program raise {@link TraceParseError} (line 0).
 * Breaking out of the iteration early closes the file and kills the `xz` child.
 */
export function openTraceStream(file: string, opts?: OpenTraceOptions): AsyncIterable<Buffer> {
  if (file.endsWith('.xz')) return readXz(file, opts?.xzCommand ?? 'xz');
  if (file.endsWith('.gz')) return readGz(file);
  return readPlain(file);
}

async function* readPlain(file: string): AsyncGenerator<Buffer> {
  const stream = createReadStream(file, { highWaterMark: READ_BUFFER_BYTES });
  try {
    for await (const buf of stream) yield buf as Buffer;
  } finally {
    stream.destroy();
  }
}

async function* readGz(file: string): AsyncGenerator<Buffer> {
  const src = createReadStream(file, { highWaterMark: READ_BUFFER_BYTES });
  const gunzip = createGunzip({ chunkSize: 256 * 1024 });
  src.on('error', (err) => gunzip.destroy(err));
  src.pipe(gunzip);
  try {
    for await (const buf of gunzip) yield buf as Buffer;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (typeof code === 'string' && code.startsWith('Z_')) {
      throw new TraceParseError(file, 0, `corrupt gzip data (${(err as Error).message})`, { cause: err });
    }
    throw err;
  } finally {
    src.destroy();
    gunzip.destroy();
  }
}

async function* readXz(file: string, xz: string): AsyncGenerator<Buffer> {
  const fh = await open(file, 'r'); // ENOENT etc. surface here, as for plain files
  let child: ReturnType<typeof spawn> | undefined;
  let fhOpen = true;
  try {
    child = spawn(xz, ['-dc'], { stdio: [fh.fd, 'pipe', 'pipe'] });
    const c = child;
    // Listen for the end before the first await: a small file can be decompressed, and the
    // child's 'close' emitted, while we are still awaiting below; a listener attached after
    // that would wait forever (the event loop then empties with the promise pending).
    let stderr = '';
    c.stderr?.setEncoding('utf8');
    c.stderr?.on('data', (s: string) => {
      if (stderr.length < 2000) stderr += s;
    });
    const closed = new Promise<{
      code: number | null;
      signal: NodeJS.Signals | null;
    }>((resolve) => {
      c.once('close', (code, signal) => resolve({ code, signal }));
    });
    await new Promise<void>((resolve, reject) => {
      c.once('spawn', resolve);
      c.once('error', reject);
    }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        throw new TraceParseError(
          file,
          0,
          `cannot read .xz files on this machine: the '${xz}' program was not found. ` +
            `Install xz-utils (e.g. 'apt-get install xz-utils') or decompress the trace first ('xz -dk ${file}')`,
          { cause: err },
        );
      }
      throw new TraceParseError(file, 0, `cannot run '${xz}' to read the .xz file: ${err.message}`, {
        cause: err,
      });
    });
    // Start reading stdout before anything else is awaited: when a child exits, Node resumes
    // (drains and discards) any stdio stream nobody is reading yet, so a small file decompressed
    // while we awaited something else would lose its first bytes. The file is closed (the child
    // holds its own copy of the descriptor) without waiting for it here.
    fhOpen = false;
    const closing = fh.close().catch(() => {});
    const stdout = c.stdout;
    if (stdout === null) throw new Error('xz child has no stdout pipe');
    for await (const buf of stdout) yield buf as Buffer;
    await closing;
    const { code, signal } = await closed;
    if (code !== 0) {
      const why = stderr.trim() || (signal ? `killed by ${signal}` : `exit code ${code}`);
      throw new TraceParseError(file, 0, `xz failed to decompress: ${why}`);
    }
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.stdout?.destroy();
      child.kill();
    }
    // Close the file only if it is still ours: a second close of a FileHandle can leave a
    // promise that never settles when the loop is otherwise idle.
    if (fhOpen) await fh.close().catch(() => {});
  }
}

/**
 * Parse a trace file (plain, .gz or .xz, see {@link openTraceStream}) into chunks of at most
 * `chunkEvents` events, in file order, reading incrementally: memory stays bounded by one chunk
 * plus one read buffer, whatever the file size.
 * Contract: blank lines (empty or whitespace only) are skipped but counted in line numbers; CRLF
 * and a last line without newline are accepted; a malformed line throws {@link TraceParseError}
 * naming the file and the 1-based line; every full chunk before that line has been yielded
 * first (the partial chunk holding the events just before the bad line is dropped).
 * Frees ignore columns 6–7 (flags 0). With `limit`, stops after that many events and closes
 * the file (an `xz` child is killed). Bad options throw RangeError at once (before any I/O).
 */
export function parseTrace(file: string, opts?: ParseTraceOptions): AsyncGenerator<TraceChunk> {
  const dec = new TraceDecoder(file, opts); // validates options before the file is opened
  return decodeStream(openTraceStream(file, opts), dec);
}

/**
 * Parse trace bytes from any source of buffers (e.g. process.stdin, or a test that splits the
 * text at arbitrary points); lines may be split across buffers anywhere. `file` names the input
 * in error messages. Same grammar, chunking and errors as {@link parseTrace}. The source is not
 * iterated at all when `limit` is 0, and is closed (via return()) when the limit is reached.
 * Bad options throw RangeError at once.
 */
export function parseTraceStream(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  file: string,
  opts?: ParseTraceOptions,
): AsyncGenerator<TraceChunk> {
  return decodeStream(source, new TraceDecoder(file, opts));
}

async function* decodeStream(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  dec: TraceDecoder,
): AsyncGenerator<TraceChunk> {
  if (dec.done) return;
  const out: TraceChunk[] = [];
  for await (const buf of source) {
    try {
      dec.feed(buf, out);
    } catch (err) {
      for (const chunk of out) yield chunk; // full chunks before the bad line still go out
      throw err;
    }
    for (const chunk of out) yield chunk;
    out.length = 0;
    if (dec.done) return; // leaving the loop closes the source (file / xz child)
  }
  try {
    dec.finish(out);
  } catch (err) {
    for (const chunk of out) yield chunk;
    throw err;
  }
  for (const chunk of out) yield chunk;
}

/**
 * Synchronous variant of {@link parseTrace} on in-memory text (tests, small inputs): same
 * grammar, chunking, line numbers and errors; `file` only names the input in error messages
 * (default `<text>`).
 */
export function parseTraceText(text: string, opts?: ParseTraceOptions & { file?: string }): TraceChunk[] {
  const dec = new TraceDecoder(opts?.file ?? '<text>', opts);
  const out: TraceChunk[] = [];
  if (dec.done) return out;
  dec.feed(Buffer.from(text, 'utf8'), out);
  dec.finish(out);
  return out;
}

/** A whole (or the first `limit` events of a) trace as parallel arrays, for replays that pre-parse. */
export interface TraceEvents {
  count: number;
  op: Uint8Array;
  pfn: Float64Array;
  order: Uint8Array;
  flags: Uint8Array;
}

/**
 * Parse a trace file into one set of parallel arrays (memory grows with `limit`; use
 * parseTrace to stream). Same errors as parseTrace.
 */
export async function readTraceEvents(file: string, limit?: number): Promise<TraceEvents> {
  const chunks: TraceChunk[] = [];
  let n = 0;
  for await (const c of parseTrace(file, limit === undefined ? {} : { limit })) {
    chunks.push(c);
    n += c.count;
  }
  const ev: TraceEvents = {
    count: n,
    op: new Uint8Array(n),
    pfn: new Float64Array(n),
    order: new Uint8Array(n),
    flags: new Uint8Array(n),
  };
  let k = 0;
  for (const c of chunks) {
    ev.op.set(c.op, k);
    ev.pfn.set(c.pfn, k);
    ev.order.set(c.order, k);
    ev.flags.set(c.flags, k);
    k += c.count;
  }
  return ev;
}
