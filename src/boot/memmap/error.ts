// src/boot/memmap/error.ts: owns MemMapError and the one way input text is shown in its
// messages (escaped and bounded). Every parser in this folder reports bad input through it;
// no input-derived string reaches a message any other way.

import { VmPhysError } from '../../core/errors.js';

/** Most characters an excerpt of a bad line shows (escapes count at their printed width). */
export const EXCERPT_MAX = 80;
/** Context kept before the column of a fault inside a long line. */
const EXCERPT_LEAD = 20;

/**
 * Characters that would hide or rewrite text on a terminal: C0/C1 controls and DEL, format
 * characters (bidi overrides, zero-width joiners, BOM), line/paragraph separators, lone
 * surrogates and every space other than U+0020.
 */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}\p{Zs}]/u;

/** One code point as printed: `\xNN` for controls up to U+00FF, `\u{...}` beyond, `\\` for '\'. */
function show(ch: string): string {
  if (ch === '\\') return '\\\\';
  if (ch === ' ' || !UNSAFE.test(ch)) return ch;
  const cp = ch.codePointAt(0) ?? 0;
  return cp <= 0xff ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16)}}`;
}

/**
 * `text` made safe to print: unsafe characters escaped (see UNSAFE), at most `max` printed
 * characters, "…" where text was cut. With `column` (a UTF-16 index into `text`) the excerpt
 * starts up to EXCERPT_LEAD characters before it, so a fault deep in a long line stays visible.
 * Reads at most a few `max`-sized windows of `text`, whatever its length.
 */
export function excerpt(text: string, max = EXCERPT_MAX, column = 0): string {
  let start = column > max - EXCERPT_LEAD ? column - EXCERPT_LEAD : 0;
  const low = text.charCodeAt(start);
  if (start > 0 && low >= 0xdc00 && low <= 0xdfff) start++;
  let out = start > 0 ? '…' : '';
  let i = start;
  while (i < text.length) {
    const cp = text.codePointAt(i) ?? 0;
    const next = i + (cp > 0xffff ? 2 : 1);
    const piece = show(String.fromCodePoint(cp));
    if (out.length + piece.length > max - 1) {
      // Room is left only for the ellipsis, unless this is the last piece and fits exactly.
      if (next >= text.length && out.length + piece.length <= max) return out + piece;
      return `${out}…`;
    }
    out += piece;
    i = next;
  }
  return out;
}

/** A value taken from the input (a key, a type name, a character), quoted for a message. */
export const quote = (text: string): string => `'${excerpt(text, 40)}'`;

/**
 * The input is not a usable memory map. `message` reads `file:line: problem; line N: 'excerpt'`
 * (just `file: problem` when no single line is at fault); `file` is '<input>' in the message
 * when the caller gave no name. The excerpt is the offending line, escaped and at most
 * EXCERPT_MAX characters, so a huge or hostile line is never echoed whole.
 * `code` is 'EMEMMAP'.
 */
export class MemMapError extends VmPhysError {
  readonly file: string | undefined;
  /** 1-based line number, or undefined when the problem is the whole input. */
  readonly line: number | undefined;
  /** The problem alone, without location or excerpt. */
  readonly problem: string;
  /** The escaped, bounded excerpt of the line at fault (undefined without a line). */
  readonly excerpt: string | undefined;

  /**
   * `problem` is the bare problem (already free of raw input text); `lineText` the raw text of
   * line `line` and `column` a UTF-16 index into it where the fault sits, when known.
   */
  constructor(
    problem: string,
    file: string | undefined,
    line: number | undefined,
    lineText?: string,
    column?: number,
    options?: { cause?: unknown },
  ) {
    const shown = lineText === undefined || line === undefined ? undefined : excerpt(lineText, EXCERPT_MAX, column);
    const where = `${excerpt(file ?? '<input>', 200)}${line === undefined ? '' : `:${line}`}`;
    const at = column === undefined ? `line ${line}` : `line ${line}, column ${column + 1}`;
    super('EMEMMAP', `${where}: ${problem}${shown === undefined ? '' : `; ${at}: '${shown}'`}`);
    if (options?.cause !== undefined) this.cause = options.cause;
    this.file = file;
    this.line = line;
    this.problem = problem;
    this.excerpt = shown;
  }
}
