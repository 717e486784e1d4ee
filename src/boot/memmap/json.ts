// src/boot/memmap/json.ts: owns the JSON map format: a small RFC 8259 reader that remembers
// where every value sits (so errors in the map, not just in the syntax, name their line), and
// the mapping from `{ram, reserved, affinity}` to a MemMap.

import {
  type AffSpan,
  type Ctx,
  coveredBy,
  fail,
  hex,
  intersect,
  normalizeAffinity,
  normalizeRam,
  normalizeReserved,
  type Parsed,
  showSpan,
  sortSpans,
  stripBom,
} from './common.js';
import { excerpt, quote } from './error.js';
import type { MemRange } from './types.js';

/** A JSON value with its 1-based line and the UTF-16 column where it starts in that line. */
type JNode = { line: number; col: number } & (
  | { t: 'object'; fields: Map<string, JNode> }
  | { t: 'array'; items: JNode[] }
  | { t: 'string'; value: string }
  | { t: 'number'; text: string }
  | { t: 'literal'; value: boolean | null }
);

const JSON_MAX_DEPTH = 64;
const JSON_NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const JSON_ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
};

/**
 * Minimal RFC 8259 reader that remembers the line and column of every value, so that errors
 * in the map can name their place. Nesting is capped at JSON_MAX_DEPTH.
 */
function readJson(ctx: Ctx, src: string): JNode {
  let pos = 0;
  let line = 1;
  let lineStart = 0;
  const bad = (what: string, at = pos): never => fail(ctx, line, `invalid JSON: ${what}`, at - lineStart);
  const ws = (): void => {
    while (pos < src.length) {
      const c = src.charCodeAt(pos);
      if (c === 10) {
        line++;
        lineStart = pos + 1;
      } else if (c !== 32 && c !== 9 && c !== 13) return;
      pos++;
    }
  };
  const str = (): string => {
    pos++; // opening quote
    let out = '';
    for (;;) {
      if (pos >= src.length) bad('unterminated string');
      const c = src[pos++];
      if (c === '"') return out;
      if (c < ' ') bad('control character in string', pos - 1);
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = src[pos++];
      if (e !== undefined && e in JSON_ESCAPES) out += JSON_ESCAPES[e];
      else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(src.slice(pos, pos + 4))) {
        out += String.fromCharCode(Number.parseInt(src.slice(pos, pos + 4), 16));
        pos += 4;
      } else bad('bad escape in string', pos - 2);
    }
  };
  const value = (depth: number): JNode => {
    if (depth > JSON_MAX_DEPTH) bad(`nested deeper than ${JSON_MAX_DEPTH} levels`);
    ws();
    const at = { line, col: pos - lineStart };
    const c = src[pos];
    if (c === '{') {
      pos++;
      const fields = new Map<string, JNode>();
      ws();
      if (src[pos] === '}') {
        pos++;
        return { ...at, t: 'object', fields };
      }
      for (;;) {
        ws();
        if (src[pos] !== '"') bad('expected a quoted key');
        const keyAt = pos;
        const key = str();
        if (fields.has(key)) bad(`duplicate key "${excerpt(key, 40)}"`, keyAt);
        ws();
        if (src[pos] !== ':') bad("expected ':'");
        pos++;
        fields.set(key, value(depth + 1));
        ws();
        if (src[pos] === ',') pos++;
        else if (src[pos] === '}') {
          pos++;
          return { ...at, t: 'object', fields };
        } else bad("expected ',' or '}'");
      }
    }
    if (c === '[') {
      pos++;
      const items: JNode[] = [];
      ws();
      if (src[pos] === ']') {
        pos++;
        return { ...at, t: 'array', items };
      }
      for (;;) {
        items.push(value(depth + 1));
        ws();
        if (src[pos] === ',') pos++;
        else if (src[pos] === ']') {
          pos++;
          return { ...at, t: 'array', items };
        } else bad("expected ',' or ']'");
      }
    }
    if (c === '"') return { ...at, t: 'string', value: str() };
    for (const [word, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (src.startsWith(word, pos)) {
        pos += word.length;
        return { ...at, t: 'literal', value: v };
      }
    }
    JSON_NUMBER.lastIndex = pos;
    const m = JSON_NUMBER.exec(src);
    if (m === null) return bad(pos >= src.length ? 'unexpected end of input' : `unexpected character ${quote(c)}`);
    pos += m[0].length;
    return { ...at, t: 'number', text: m[0] };
  };
  const doc = value(0);
  ws();
  if (pos < src.length) bad('unexpected text after the JSON value');
  return doc;
}

/** Fail at a node's place (or at `line` when the node is missing). */
function failAt(ctx: Ctx, node: JNode | undefined, line: number, problem: string): never {
  return fail(ctx, node?.line ?? line, problem, node?.col);
}

/** A JSON address: a non-negative integer number or a "0x..." hex string (up to 64 bits). */
function jsonAddr(ctx: Ctx, node: JNode | undefined, what: string, line: number): bigint {
  if (node?.t === 'number' && /^\d+$/.test(node.text)) return BigInt(node.text);
  if (node?.t === 'string' && /^0[xX][0-9a-fA-F]{1,16}$/.test(node.value)) return BigInt(node.value);
  return failAt(ctx, node, line, `${what} must be a non-negative integer or a "0x..." hex string`);
}

/** A JSON range: [start, end] / [start, end, domain] or {"start", "end"[, "domain"]}; half-open. */
function jsonRange(ctx: Ctx, node: JNode, what: string, withDomain: boolean): AffSpan & { col: number } {
  let start: JNode | undefined;
  let end: JNode | undefined;
  let domain: JNode | undefined;
  const arity = withDomain ? 3 : 2;
  if (node.t === 'array' && node.items.length === arity) [start, end, domain] = node.items;
  else if (node.t === 'object') {
    start = node.fields.get('start');
    end = node.fields.get('end');
    domain = node.fields.get('domain');
  } else {
    const shape = withDomain
      ? '[start, end, domain] or {"start", "end", "domain"}'
      : '[start, end] or {"start", "end"}';
    failAt(ctx, node, node.line, `${what} must be ${shape}`);
  }
  const s = jsonAddr(ctx, start, `${what} start`, node.line);
  const e = jsonAddr(ctx, end, `${what} end`, node.line);
  if (e < s) failAt(ctx, node, node.line, `inverted ${what}: start ${hex(s)} is above end ${hex(e)}`);
  let d = 0;
  if (withDomain) {
    if (domain?.t !== 'number' || !/^\d{1,9}$/.test(domain.text)) {
      failAt(ctx, domain ?? node, node.line, `${what} domain must be a non-negative integer`);
    }
    d = Number(domain.text);
  }
  return { start: s, end: e, line: node.line, col: node.col, domain: d };
}

/**
 * JSON: `{ "ram": [...], "reserved": [...]?, "affinity": [...]? }`, ranges half-open, as
 * `[start, end]` or `{"start", "end"}` (affinity adds "domain"), numbers or "0x..." strings.
 * Other keys are ignored. RAM is normalised like every other format; reserved ranges must
 * lie inside RAM.
 */
export function parseJsonMap(ctx: Ctx, text: string): Parsed {
  const doc = readJson(ctx, stripBom(text));
  if (doc.t !== 'object') failAt(ctx, doc, doc.line, 'the JSON map must be an object with a "ram" array');
  const list = (key: string, required: boolean): JNode[] => {
    const v = doc.fields.get(key);
    if (v === undefined) {
      if (required) failAt(ctx, doc, doc.line, `the JSON map has no "${key}" array`);
      return [];
    }
    if (v.t !== 'array') failAt(ctx, v, v.line, `"${key}" must be an array`);
    return v.items;
  };
  const ramSpans = list('ram', true).map((n) => jsonRange(ctx, n, 'ram range', false));
  const resSpans = list('reserved', false).map((n) => jsonRange(ctx, n, 'reserved range', false));
  const affSpans = list('affinity', false).map((n) => jsonRange(ctx, n, 'affinity range', true));
  const ram = normalizeRam(ctx, ramSpans, 'ram');
  const ramNode = doc.fields.get('ram');
  if (ram.length === 0) fail(ctx, ramNode?.line, '"ram" holds no whole page', ramNode?.col);
  // Reserved ranges must lie inside the RAM as given (before page alignment). normalizeRam
  // has rejected overlaps and addresses past 2^53 - 1, so the merged spans convert exactly.
  const raw: MemRange[] = [];
  for (const r of sortSpans(ramSpans)) {
    const last = raw[raw.length - 1];
    if (last !== undefined && Number(r.start) <= last.end) last.end = Math.max(last.end, Number(r.end));
    else raw.push({ start: Number(r.start), end: Number(r.end) });
  }
  for (const r of resSpans) {
    if (r.end > r.start && !coveredBy(raw, Number(r.start), Number(r.end))) {
      fail(ctx, r.line, `reserved range ${showSpan(r)} is not inside "ram"`, r.col);
    }
  }
  return {
    ram,
    reserved: intersect(normalizeReserved(ctx, resSpans), ram),
    affinity: normalizeAffinity(ctx, affSpans),
  };
}
