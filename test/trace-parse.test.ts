// test/trace-parse.test.ts — tests of src/trace/parse.ts (streaming Linux page-allocator trace parser).
// Owned by the trace-parser work; only that work may edit this file, src/trace/parse.ts and
// test/fixtures/trace-small.csv{,.gz,.xz} (the first 2000 lines of linux-6.18-mixed-B.csv.xz).

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import {
  openTraceStream,
  parseTrace,
  parseTraceStream,
  parseTraceText,
  type TraceChunk,
  TraceFlag,
  TraceParseError,
} from '../src/trace/parse.js';

// ---------------------------------------------------------------------------------------------
// Fixture location: walk up from the compiled test file (dist/test/…) to the package root.

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above the test file');
    dir = up;
  }
}
const ROOT = findRepoRoot();
const FIXTURE = join(ROOT, 'test', 'fixtures', 'trace-small.csv');
const FIXTURE_TEXT = readFileSync(FIXTURE, 'utf8');
const FIXTURE_LINES = FIXTURE_TEXT.split('\n').filter((l) => l !== '');

const tmp = mkdtempSync(join(tmpdir(), 'vmphys-trace-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// Independent reference: a naive split/regex/BigInt parser of the README grammar.

interface RefEvent {
  line: number;
  op: number;
  pfn: number;
  order: number;
  flags: number;
}
interface RefResult {
  events: RefEvent[];
  errorLine?: number;
}

function referenceParse(text: string, limit = Number.POSITIVE_INFINITY): RefResult {
  const events: RefEvent[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length && events.length < limit; i++) {
    const lineNo = i + 1;
    let raw = lines[i];
    if (Buffer.byteLength(raw) > 4096) return { events, errorLine: lineNo };
    if (raw.endsWith('\r')) raw = raw.slice(0, -1);
    if (/^[ \t]*$/.test(raw)) continue;
    const cols = raw.split(',');
    const bad = { events, errorLine: lineNo };
    if (cols.length !== 7) return bad;
    const [ts, cpu, op, pfn, order, mt, gfp] = cols;
    if (!/^\d+(\.\d*)?$/.test(ts) || !/^\d+$/.test(cpu)) return bad;
    if (op !== 'a' && op !== 'f') return bad;
    if (!/^0[xX][0-9a-fA-F]+$/.test(pfn) || BigInt(pfn) > BigInt(Number.MAX_SAFE_INTEGER)) return bad;
    if (!/^\d+$/.test(order) || Number(order) > 20) return bad;
    let flags = 0;
    if (op === 'a') {
      if (!/^\d{1,3}$/.test(mt)) return bad;
      if (Number(mt) === 1) flags |= TraceFlag.MOVABLE;
      for (const tok of gfp.split('|')) {
        if (tok === 'GFP_DMA32' || tok === '__GFP_DMA32') flags |= TraceFlag.DMA32;
        if (tok === 'GFP_DMA' || tok === '__GFP_DMA') flags |= TraceFlag.DMA;
      }
    }
    events.push({
      line: lineNo,
      op: op === 'a' ? 0 : 1,
      pfn: Number(BigInt(pfn)),
      order: Number(order),
      flags,
    });
  }
  return { events };
}

/** Flatten chunks, checking their shape, and attach each chunk's firstLine to its first event. */
function flatten(
  chunks: TraceChunk[],
  chunkEvents = 65536,
): { op: number; pfn: number; order: number; flags: number }[] {
  const out: { op: number; pfn: number; order: number; flags: number }[] = [];
  chunks.forEach((c, k) => {
    assert.ok(c.count >= 1 && c.count <= chunkEvents, `chunk ${k} count ${c.count}`);
    if (k < chunks.length - 1) assert.equal(c.count, chunkEvents, 'only the last chunk may be short');
    for (const a of [c.op, c.pfn, c.order, c.flags]) assert.equal(a.length, c.count);
    for (let i = 0; i < c.count; i++)
      out.push({
        op: c.op[i],
        pfn: c.pfn[i],
        order: c.order[i],
        flags: c.flags[i],
      });
  });
  return out;
}

/** Assert that chunks hold exactly the reference events, with correct firstLine values. */
function assertMatchesReference(chunks: TraceChunk[], ref: RefEvent[], chunkEvents = 65536): void {
  const got = flatten(chunks, chunkEvents);
  assert.deepEqual(
    got,
    ref.map(({ op, pfn, order, flags }) => ({ op, pfn, order, flags })),
  );
  let at = 0;
  for (const c of chunks) {
    assert.equal(c.firstLine, ref[at].line);
    at += c.count;
  }
}

async function collect(it: AsyncIterable<TraceChunk>): Promise<TraceChunk[]> {
  const chunks: TraceChunk[] = [];
  for await (const c of it) chunks.push(c);
  return chunks;
}

function expectTraceError(fn: () => unknown, line: number, pattern?: RegExp, file = '<text>'): TraceParseError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof TraceParseError, `expected TraceParseError, got ${String(err)}`);
    assert.equal(err.code, 'ETRACE');
    assert.equal(err.file, file);
    assert.equal(err.line, line, err.message);
    assert.ok(err.message.startsWith(`${file}:${line}: `), err.message);
    if (pattern) assert.match(err.message, pattern);
    return err;
  }
  assert.fail('expected a TraceParseError');
}

async function expectTraceErrorAsync(p: Promise<unknown>, line: number, pattern?: RegExp): Promise<TraceParseError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof TraceParseError, `expected TraceParseError, got ${String(err)}`);
    assert.equal(err.code, 'ETRACE');
    assert.equal(err.line, line, err.message);
    if (pattern) assert.match(err.message, pattern);
    return err;
  }
  assert.fail('expected a TraceParseError');
}

function* splitAt(bytes: Uint8Array, cuts: number[]): Generator<Uint8Array> {
  let prev = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    yield bytes.subarray(prev, c);
    prev = c;
  }
  yield bytes.subarray(prev);
}

// ---------------------------------------------------------------------------------------------

describe('fixture (first 2000 lines of the real trace)', () => {
  const ref = referenceParse(FIXTURE_TEXT);

  test('naive count and the parser agree on events, allocs and frees', () => {
    // Independent counts straight from the text.
    const nonBlank = FIXTURE_LINES.length;
    const naiveAllocs = FIXTURE_LINES.filter((l) => l.split(',')[2] === 'a').length;
    const naiveFrees = FIXTURE_LINES.filter((l) => l.split(',')[2] === 'f').length;
    assert.equal(nonBlank, 2000);
    assert.equal(naiveAllocs + naiveFrees, 2000);
    assert.equal(ref.errorLine, undefined);

    const chunks = parseTraceText(FIXTURE_TEXT);
    const ev = flatten(chunks);
    assert.equal(ev.length, nonBlank);
    assert.equal(ev.filter((e) => e.op === 0).length, naiveAllocs);
    assert.equal(ev.filter((e) => e.op === 1).length, naiveFrees);
    assert.equal(
      ev.filter((e) => e.op === 0 && e.flags & TraceFlag.MOVABLE).length,
      FIXTURE_LINES.filter((l) => l.split(',')[5] === '1').length,
    );
    assert.equal(chunks.length, 1);
    assert.equal(chunks[0].firstLine, 1);
    assertMatchesReference(chunks, ref.events);
    // Spot-check line 1: 158.110960,003,a,0x2354ff,0,1,GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP
    assert.deepEqual(ev[0], {
      op: 0,
      pfn: 0x2354ff,
      order: 0,
      flags: TraceFlag.MOVABLE,
    });
  });

  test('plain, .gz and .xz files give identical chunks', async () => {
    const plain = await collect(parseTrace(FIXTURE, { chunkEvents: 500 }));
    const gz = await collect(parseTrace(`${FIXTURE}.gz`, { chunkEvents: 500 }));
    const xz = await collect(parseTrace(`${FIXTURE}.xz`, { chunkEvents: 500 }));
    assert.equal(plain.length, 4);
    assertMatchesReference(plain, ref.events, 500);
    assert.deepEqual(gz, plain);
    assert.deepEqual(xz, plain);
    assert.deepEqual(parseTraceText(FIXTURE_TEXT, { chunkEvents: 500 }), plain);
  });

  test('openTraceStream yields the decompressed bytes', async () => {
    for (const f of [FIXTURE, `${FIXTURE}.gz`, `${FIXTURE}.xz`]) {
      const bufs: Buffer[] = [];
      for await (const b of openTraceStream(f)) bufs.push(b);
      assert.equal(Buffer.concat(bufs).toString('utf8'), FIXTURE_TEXT, f);
    }
  });

  test('.xz: a child that finishes before reading starts loses no bytes and is always reaped', async () => {
    // Small files decompress faster than the reader gets going: once, the first bytes were
    // drained away by Node (unread stdio of an exited child) and the 'close' was missed.
    for (let i = 0; i < 100; i++) {
      const bufs: Buffer[] = [];
      for await (const b of openTraceStream(`${FIXTURE}.xz`)) bufs.push(b);
      assert.equal(Buffer.concat(bufs).toString('utf8'), FIXTURE_TEXT, `round ${i}`);
    }
  });

  test('small chunks (7 events) give the same events and correct firstLine', async () => {
    const chunks = parseTraceText(FIXTURE_TEXT, { chunkEvents: 7 });
    assert.equal(chunks.length, Math.ceil(2000 / 7));
    assert.equal(chunks.at(-1)?.count, 2000 % 7);
    assertMatchesReference(chunks, ref.events, 7);
    assert.deepEqual(await collect(parseTrace(`${FIXTURE}.xz`, { chunkEvents: 7 })), chunks);
  });

  test('limit stops early (also on .xz, which kills the xz child)', async () => {
    for (const f of [FIXTURE, `${FIXTURE}.gz`, `${FIXTURE}.xz`]) {
      const chunks = await collect(parseTrace(f, { limit: 100, chunkEvents: 30 }));
      assert.deepEqual(
        chunks.map((c) => c.count),
        [30, 30, 30, 10],
      );
      assertMatchesReference(chunks, ref.events.slice(0, 100), 30);
    }
    assert.deepEqual(parseTraceText(FIXTURE_TEXT, { limit: 0 }), []);
    assert.deepEqual(await collect(parseTrace(join(tmp, 'does-not-exist.csv'), { limit: 0 })), []);
    const one = parseTraceText(FIXTURE_TEXT, { limit: 1 });
    assert.equal(one.length, 1);
    assert.equal(one[0].count, 1);
    // Lines after the limit are not checked.
    assert.equal(flatten(parseTraceText(`${FIXTURE_LINES[0]}\nbad line\n`, { limit: 1 })).length, 1);
  });

  test('breaking out of an .xz iteration early does not hang', async () => {
    for await (const c of parseTrace(`${FIXTURE}.xz`, { chunkEvents: 10 })) {
      assert.equal(c.count, 10);
      break;
    }
  });

  test('CRLF, blank lines and a last line without newline', () => {
    const base = flatten(parseTraceText(FIXTURE_TEXT));
    const crlf = FIXTURE_TEXT.replace(/\n/g, '\r\n');
    assert.deepEqual(flatten(parseTraceText(crlf)), base);
    const noFinalNewline = FIXTURE_TEXT.replace(/\n$/, '');
    assert.notEqual(noFinalNewline, FIXTURE_TEXT);
    assert.deepEqual(flatten(parseTraceText(noFinalNewline)), base);
    assert.deepEqual(flatten(parseTraceText(crlf.replace(/\r\n$/, ''))), base);
    // Blank lines are skipped but counted in line numbers.
    const withBlanks = `\n  \n${FIXTURE_LINES.slice(0, 3).join('\n\r\n\t\n')}\n\n`;
    const chunks = parseTraceText(withBlanks, { chunkEvents: 1 });
    assert.deepEqual(
      chunks.map((c) => c.firstLine),
      [3, 6, 9],
    );
    assert.deepEqual(flatten(chunks, 1), base.slice(0, 3));
    assert.deepEqual(parseTraceText(''), []);
    assert.deepEqual(parseTraceText('\n\r\n \n'), []);
  });

  test('lines split across buffers at every position give the same chunks', async () => {
    const text = FIXTURE_LINES.slice(0, 40).join('\r\n');
    const bytes = Buffer.from(text);
    const expected = parseTraceText(text, { chunkEvents: 9 });
    for (let cut = 0; cut <= bytes.length; cut += 3) {
      const chunks = await collect(
        parseTraceStream(splitAt(bytes, [cut, Math.min(bytes.length, cut + 1)]), '<text>', { chunkEvents: 9 }),
      );
      assert.deepEqual(chunks, expected, `cut at ${cut}`);
    }
    // One byte at a time, as plain Uint8Arrays (not Buffers).
    const oneByOne = Array.from(bytes, (b) => Uint8Array.of(b));
    assert.deepEqual(await collect(parseTraceStream(oneByOne, '<text>', { chunkEvents: 9 })), expected);
  });
});

describe('flags mapping', () => {
  const line = (op: string, mt: string, gfp: string) => `1.000001,000,${op},0x1000,0,${mt},${gfp}`;
  const flagsOf = (l: string) => parseTraceText(l)[0].flags[0];

  test('GFP DMA tokens and migratetype 1', () => {
    assert.deepEqual(TraceFlag, { DMA32: 1, DMA: 2, MOVABLE: 4 });
    assert.equal(flagsOf(line('a', '0', 'GFP_KERNEL')), 0);
    assert.equal(flagsOf(line('a', '0', '')), 0);
    assert.equal(flagsOf(line('a', '1', 'GFP_HIGHUSER_MOVABLE|__GFP_ZERO')), TraceFlag.MOVABLE);
    assert.equal(flagsOf(line('a', '2', 'GFP_KERNEL|__GFP_RECLAIMABLE')), 0);
    assert.equal(flagsOf(line('a', '0', 'GFP_DMA32')), TraceFlag.DMA32);
    assert.equal(flagsOf(line('a', '0', 'GFP_KERNEL|__GFP_DMA32|__GFP_ZERO')), TraceFlag.DMA32);
    assert.equal(flagsOf(line('a', '0', 'GFP_DMA')), TraceFlag.DMA);
    assert.equal(flagsOf(line('a', '0', 'GFP_ATOMIC|__GFP_DMA')), TraceFlag.DMA);
    assert.equal(flagsOf(line('a', '1', '__GFP_DMA|__GFP_DMA32')), TraceFlag.DMA | TraceFlag.DMA32 | TraceFlag.MOVABLE);
    assert.equal(flagsOf(line('a', '001', '__GFP_DMA32')), TraceFlag.DMA32 | TraceFlag.MOVABLE);
    // Near misses are not DMA flags.
    for (const g of [
      'GFP_DMA3',
      'GFP_DMA321',
      '__GFP_DMA_X',
      'XGFP_DMA',
      '___GFP_DMA',
      '_GFP_DMA32',
      'gfp_dma',
      'GFP_DMAX|GFP_KERNEL',
      'GFP_DMB32',
    ]) {
      assert.equal(flagsOf(line('a', '0', g)), 0, g);
    }
  });

  test('frees always have flags 0 and ignore columns 6-7', () => {
    assert.equal(flagsOf(line('f', '', '')), 0);
    assert.equal(flagsOf(line('f', '1', '__GFP_DMA32|GFP_DMA')), 0);
    const c = parseTraceText(line('f', 'x', 'anything goes'))[0];
    assert.deepEqual([c.op[0], c.pfn[0], c.order[0], c.flags[0]], [1, 0x1000, 0, 0]);
  });

  test('pfn is exact up to 2^53-1, hex case-insensitive, orders 0..20', () => {
    const pfnOf = (hex: string) => parseTraceText(`1.5,001,f,${hex},0,,`)[0].pfn[0];
    assert.equal(pfnOf('0x1fffffffffffff'), Number.MAX_SAFE_INTEGER);
    assert.equal(pfnOf('0X00000000000000001FFFFFFFFFFFFF'), Number.MAX_SAFE_INTEGER);
    assert.equal(pfnOf('0xABCdef'), 0xabcdef);
    assert.equal(pfnOf('0x0'), 0);
    expectTraceError(() => pfnOf('0x20000000000000'), 1, /pfn .* exceeds 2\^53-1/);
    const orderOf = (o: string) => parseTraceText(`1,1,a,0x1,${o},0,`)[0].order[0];
    assert.equal(orderOf('20'), 20);
    assert.equal(orderOf('010'), 10);
    assert.equal(orderOf('0'), 0);
  });
});

describe('errors', () => {
  const good = '158.110960,003,a,0x2354ff,0,1,GFP_HIGHUSER_MOVABLE|__GFP_ZERO';
  const goodFree = '158.110961,004,f,0x10c1d9,0,,';
  const cases: [string, string, RegExp][] = [
    ['too few columns', '158.1,003,a,0x1,0,1', /expected 7 comma-separated columns.*found 6/],
    ['too many columns', `${goodFree},`, /found 8/],
    ['too many columns (alloc)', `${good},extra`, /found 8/],
    ['bad op', '158.1,003,x,0x1,0,1,GFP_KERNEL', /bad op "x"/],
    ['op too long', '158.1,003,al,0x1,0,1,GFP_KERNEL', /bad op "al"/],
    ['bad hex', '158.1,003,f,0x12g4,0,,', /bad hex pfn "0x12g4"/],
    ['empty hex', '158.1,003,f,0x,0,,', /bad hex pfn "0x"/],
    ['no 0x prefix', '158.1,003,f,12345,0,,', /bad hex pfn "12345"/],
    ['order > 20', '158.1,003,a,0x1,21,0,GFP_KERNEL', /order "21" out of range 0\.\.20/],
    ['order 255', '158.1,003,f,0x1,255,,', /order "255" out of range/],
    ['bad order', '158.1,003,f,0x1,-1,,', /bad order "-1"/],
    ['empty order', '158.1,003,f,0x1,,,', /bad order ""/],
    ['bad ts', 'abc,003,f,0x1,0,,', /bad ts "abc"/],
    ['bad cpu', '158.1,cpu3,f,0x1,0,,', /bad cpu "cpu3"/],
    ['alloc without migratetype', '158.1,003,a,0x1,0,,GFP_KERNEL', /bad migratetype ""/],
    ['leading space', ` ${good}`, /bad ts/],
  ];
  for (const [name, bad, pattern] of cases) {
    test(`${name} -> TraceParseError with line number`, () => {
      const text = `${good}\n\n${goodFree}\r\n${bad}\n${good}\n`;
      const err = expectTraceError(() => parseTraceText(text), 4, pattern);
      assert.equal(err.name, 'TraceParseError');
      // Same error when it is the first line, and when the file has no trailing newline.
      expectTraceError(() => parseTraceText(bad), 1, pattern);
      expectTraceError(() => parseTraceText(`${good}\n${bad}`, { file: 'x.csv' }), 2, pattern, 'x.csv');
    });
  }

  test('a very long line is rejected without buffering it all', async () => {
    expectTraceError(() => parseTraceText(`${good}\n${'9'.repeat(5000)}\n`), 2, /longer than 4096 bytes/);
    // Streamed in pieces with no newline at all.
    const pieces = Array.from({ length: 100 }, () => Buffer.alloc(1000, 0x39));
    await expectTraceErrorAsync(collect(parseTraceStream(pieces, 'big')), 1, /^big:1: line longer than 4096 bytes/);
  });

  test('errors from files name the file and line; earlier chunks were yielded', async () => {
    const text = `${FIXTURE_LINES.slice(0, 10).join('\n')}\n158.1,003,q,0x1,0,,\n`;
    const plain = join(tmp, 'bad.csv');
    writeFileSync(plain, text);
    writeFileSync(`${plain}.gz`, gzipSync(text));
    for (const f of [plain, `${plain}.gz`]) {
      const seen: TraceChunk[] = [];
      const err = await expectTraceErrorAsync(
        (async () => {
          for await (const c of parseTrace(f, { chunkEvents: 4 })) seen.push(c);
        })(),
        11,
        /bad op "q"/,
      );
      assert.equal(err.file, f);
      assert.ok(err.message.startsWith(`${f}:11: `), err.message);
      assert.deepEqual(
        seen.map((c) => c.count),
        [4, 4],
      );
    }
  });

  test('corrupt compressed data -> TraceParseError (line 0)', async () => {
    const gz = join(tmp, 'corrupt.csv.gz');
    const xz = join(tmp, 'corrupt.csv.xz');
    const gzBytes = gzipSync(FIXTURE_TEXT);
    gzBytes[gzBytes.length >> 1] ^= 0xff;
    writeFileSync(gz, gzBytes);
    writeFileSync(xz, 'this is not xz data\n');
    await expectTraceErrorAsync(collect(parseTrace(gz)), 0, /corrupt gzip data/);
    const err = await expectTraceErrorAsync(collect(parseTrace(xz)), 0, /xz failed to decompress/);
    assert.ok(err.message.startsWith(`${xz}: `), err.message);
  });

  test('missing xz program -> TraceParseError explaining the fix', async () => {
    const err = await expectTraceErrorAsync(
      collect(parseTrace(`${FIXTURE}.xz`, { xzCommand: join(tmp, 'no-such-xz') })),
      0,
      /cannot read \.xz files on this machine.*install xz-utils.*decompress/i,
    );
    assert.equal(err.file, `${FIXTURE}.xz`);
    // openTraceStream alone reports the same.
    await expectTraceErrorAsync(
      (async () => {
        for await (const _ of openTraceStream(`${FIXTURE}.xz`, {
          xzCommand: join(tmp, 'no-such-xz'),
        })) {
          /* unreachable */
        }
      })(),
      0,
      /xz-utils/,
    );
  });

  test('missing file -> the system ENOENT error', async () => {
    for (const f of ['nope.csv', 'nope.csv.gz', 'nope.csv.xz']) {
      await assert.rejects(collect(parseTrace(join(tmp, f))), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
    }
  });

  test('bad options -> RangeError at once', () => {
    assert.throws(() => parseTraceText('', { chunkEvents: 0 }), RangeError);
    assert.throws(() => parseTraceText('', { chunkEvents: 1.5 }), RangeError);
    assert.throws(() => parseTraceText('', { limit: -1 }), RangeError);
    assert.throws(() => parseTrace(FIXTURE, { chunkEvents: Number.NaN }), RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Fuzz: random and mutated input yields chunks equal to the reference, or a TraceParseError on
// the line the reference rejects — never any other error.

const ALPHABET = [...'0123456789abcdefxXAF,|._GFPDMA32 \t\r\n-'];
const field = (chars: string, max: number) => fc.string({ unit: fc.constantFrom(...chars), maxLength: max });

const csvLine = fc
  .record({
    ts: fc.tuple(fc.nat(99999), fc.nat(999999)).map(([s, us]) => `${s}.${String(us).padStart(6, '0')}`),
    cpu: fc.nat(15).map((c) => String(c).padStart(3, '0')),
    alloc: fc.boolean(),
    // Mostly valid values, with some just out of range (pfn >= 2^53, order > 20, 4-digit mt).
    pfn: fc.oneof(
      { weight: 8, arbitrary: fc.nat(0x3fffff) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(0, Number.MAX_SAFE_INTEGER, 2 ** 40, 2 ** 53, 2 ** 56),
      },
    ),
    upper: fc.boolean(),
    order: fc.oneof({ weight: 8, arbitrary: fc.nat(20) }, { weight: 1, arbitrary: fc.integer({ min: 21, max: 300 }) }),
    mt: fc.oneof({ weight: 8, arbitrary: fc.nat(3) }, { weight: 1, arbitrary: fc.constantFrom(999, 1000) }),
    gfp: fc.array(
      fc.constantFrom(
        'GFP_KERNEL',
        '__GFP_DMA32',
        'GFP_DMA32',
        '__GFP_DMA',
        'GFP_DMA',
        '__GFP_ZERO',
        'GFP_HIGHUSER_MOVABLE',
        '__GFP_COMP',
      ),
      { maxLength: 4 },
    ),
  })
  .map((r) => {
    const hex = BigInt(r.pfn).toString(16);
    const pfn = `0x${r.upper ? hex.toUpperCase() : hex}`;
    return r.alloc
      ? `${r.ts},${r.cpu},a,${pfn},${r.order},${r.mt},${r.gfp.join('|')}`
      : `${r.ts},${r.cpu},f,${pfn},${r.order},,`;
  });

const anyLine = fc.oneof(
  { weight: 6, arbitrary: csvLine },
  { weight: 3, arbitrary: fc.constantFrom(...FIXTURE_LINES.slice(0, 200)) },
  { weight: 1, arbitrary: field(ALPHABET.join(''), 60) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '\t', '\r') },
);

/** A mutation: replace, insert or delete one character somewhere in the text. */
const mutation = fc.record({
  kind: fc.constantFrom('replace', 'insert', 'delete'),
  at: fc.nat(),
  ch: fc.oneof(
    fc.constantFrom(...ALPHABET),
    fc.string({ minLength: 1, maxLength: 1 }),
    fc.constantFrom('é', '€', '\u0000'),
  ),
});

const traceText = fc
  .tuple(
    fc.array(anyLine, { maxLength: 25 }),
    fc.constantFrom('\n', '\r\n'),
    fc.boolean(),
    fc.array(mutation, { maxLength: 3 }),
  )
  .map(([lines, eol, finalEol, muts]) => {
    let text = lines.join(eol) + (finalEol ? eol : '');
    for (const m of muts) {
      if (text.length === 0 && m.kind !== 'insert') continue;
      const i = m.at % (text.length + (m.kind === 'insert' ? 1 : 0));
      if (m.kind === 'replace') text = text.slice(0, i) + m.ch + text.slice(i + 1);
      else if (m.kind === 'insert') text = text.slice(0, i) + m.ch + text.slice(i);
      else text = text.slice(0, i) + text.slice(i + 1);
    }
    return text;
  });

describe('fuzz (fast-check)', () => {
  test('parseTraceText agrees with the reference or throws TraceParseError on its line', () => {
    fc.assert(
      fc.property(
        traceText,
        fc.integer({ min: 1, max: 8 }),
        fc.option(fc.nat(30), { nil: undefined }),
        (text, chunkEvents, limit) => {
          const ref = referenceParse(text, limit);
          let chunks: TraceChunk[];
          try {
            chunks = parseTraceText(text, { chunkEvents, limit });
          } catch (err) {
            if (!(err instanceof TraceParseError)) throw err;
            assert.equal(err.code, 'ETRACE');
            assert.equal(err.line, ref.errorLine, `${err.message}\n${JSON.stringify(text)}`);
            assert.ok(err.message.startsWith(`<text>:${err.line}: `));
            assert.doesNotMatch(err.message, /malformed line/, 'the slow path must explain every rejection');
            return;
          }
          assert.equal(ref.errorLine, undefined, `accepted text the reference rejects: ${JSON.stringify(text)}`);
          if (ref.events.length === 0) assert.deepEqual(chunks, []);
          else assertMatchesReference(chunks, ref.events, chunkEvents);
        },
      ),
      { numRuns: 1500 },
    );
  });

  test('splitting the bytes anywhere does not change the result', async () => {
    await fc.assert(
      fc.asyncProperty(traceText, fc.array(fc.nat(), { maxLength: 6 }), async (text, cutSeeds) => {
        const bytes = Buffer.from(text);
        const cuts = cutSeeds.map((s) => (bytes.length === 0 ? 0 : s % (bytes.length + 1)));
        let whole: TraceChunk[] | TraceParseError;
        try {
          whole = parseTraceText(text, { chunkEvents: 3 });
        } catch (err) {
          if (!(err instanceof TraceParseError)) throw err;
          whole = err;
        }
        let streamed: TraceChunk[] | TraceParseError;
        try {
          streamed = await collect(
            parseTraceStream(splitAt(bytes, cuts), '<text>', {
              chunkEvents: 3,
            }),
          );
        } catch (err) {
          if (!(err instanceof TraceParseError)) throw err;
          streamed = err;
        }
        if (whole instanceof TraceParseError) {
          assert.ok(streamed instanceof TraceParseError);
          assert.equal(streamed.message, whole.message);
        } else {
          assert.deepEqual(streamed, whole);
        }
      }),
      { numRuns: 500 },
    );
  });
});
