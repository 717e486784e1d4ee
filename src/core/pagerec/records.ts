/**
 * The page-record array: one fixed-size record per page, laid out array-of-structs exactly as the
 * layout says (for `freebsd`, as FreeBSD lays out vm_page_array), in one or more buffers. Owns the
 * record buffers, the initialisation writers (vm_page_init_page over one page or a range), the
 * checked per-field reads and writes, and typed per-field views. The allocator calls the writers
 * where it initialises pages; library users read through `read`/`fieldView`; workers attach
 * through `descriptor()`; snapshots save `buffers`. Nothing else writes the record buffers.
 *
 * Splitting: a typed array on V8 holds at most 2^32 elements, so one buffer holds at most
 * MAX_BUFFER_BYTES and records never straddle buffers: page i lives in buffer
 * floor(i / pagesPerBuffer) at byte (i % pagesPerBuffer) × layout.size. Buffers are created
 * zero-filled and never touched here until a page is initialised, so reserving records for a huge
 * sparse machine costs address space only (the kernel maps zero pages lazily).
 *
 * Allocator-owned fields (init source `segind`, `pool` or `order`): the allocator changes a
 * page's order and pool on every buddy operation, and writing the record there would put a store
 * on every hot path. Instead, the record bytes hold the values written at initialisation, and a
 * checked `read` asks the allocator (a `PageStateSource`) for the current value, so what the API
 * returns always agrees with the allocator. `syncLive` copies the current values into the bytes
 * for consumers of raw views.
 *
 * Uninitialised pages: with a source attached, a checked `read` of a page the source reports as
 * not initialised returns the layout's initial value for that page (computed, nothing written).
 * Raw views (`fieldView`) show the bytes as they are: zero for a page never initialised.
 */
import { VmPhysError } from '../errors.js';
import { type Layout, type LayoutField, type LayoutJson, layoutToJson, parseLayoutJson } from './layout.js';

/** Misuse of the record API: unknown field, page index out of range, value the field cannot hold, bad attach. */
export class RecordError extends VmPhysError {
  /** Codes: ERECORD_FIELD, ERECORD_INDEX, ERECORD_VALUE, ERECORD_ATTACH. */
  constructor(code: string, message: string) {
    super(code, message);
  }
}

/** What the allocator tells the record API about a page (VmPhys provides all five). */
export interface PageStateSource {
  /** Has vm_page_init_page run for this page (its record bytes are valid)? */
  isInitialized(idx: number): boolean;
  /** Physical address of page idx. */
  paOf(idx: number): number;
  /** Segment index of page idx (m->segind). */
  segOfIdx(idx: number): number;
  /** Current m->pool of page idx. */
  poolAt(idx: number): number;
  /** Current m->order of page idx (VM_NFREEORDER when it heads no free block). */
  orderAt(idx: number): number;
}

/** Largest buffer we create: the longest Uint8Array V8 (Node 20) allows is 2^32 elements. */
export const MAX_BUFFER_BYTES = 2 ** 32;

/** Options of `PageRecords.create`. */
export interface RecordsOptions {
  /** SharedArrayBuffers (default true) so workers can attach; ArrayBuffers otherwise. */
  readonly shared?: boolean;
  /** Upper bound on one buffer's byteLength (default and maximum MAX_BUFFER_BYTES). */
  readonly maxBufferBytes?: number;
  /** Page size in bytes (phys_addr steps by this much per page); default 4096. */
  readonly pageSize?: number;
}

/** Everything a worker needs to attach: plain data plus the (shared) buffers. */
export interface RecordsDescriptor {
  readonly layout: LayoutJson;
  readonly pages: number;
  readonly pagesPerBuffer: number;
  readonly pageSize: number;
  readonly buffers: readonly ArrayBufferLike[];
}

type NumArray = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float64Array;
/** A typed array of a field's type over one record buffer. */
export type FieldArray = NumArray | BigUint64Array;

/**
 * A typed view of one field across all pages, with no per-page objects. For page i:
 * `arrays[Math.floor(i / pagesPerBuffer)][(i % pagesPerBuffer) * step + index]`; with a single
 * buffer that is `arrays[0][i * step + index]`. u64 fields are BigUint64Arrays. The bytes are raw:
 * see the module comment for uninitialised pages and allocator-owned fields.
 */
export interface FieldView {
  readonly name: string;
  readonly type: LayoutField['type'];
  readonly step: number;
  readonly index: number;
  readonly pagesPerBuffer: number;
  readonly arrays: readonly FieldArray[];
}

const TWO32 = 2 ** 32;
/** The bulk writer works in pieces of about this many bytes (copied, then patched while in cache). */
const BLOCK_BYTES = 1 << 16;

function alloc(bytes: number, shared: boolean): ArrayBufferLike {
  return shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
}

/**
 * How one field type is stored: its typed-array constructor and its little-endian DataView
 * accessors (the 1-byte accessors ignore the endianness argument). `set` takes a number, or a
 * BigInt for u64; `put` converts before calling it.
 */
interface TypeCodec {
  readonly array: new (b: ArrayBufferLike) => FieldArray;
  get(this: DataView, off: number, littleEndian: boolean): number | bigint;
  set(this: DataView, off: number, v: number | bigint, littleEndian: boolean): void;
}

const DV = DataView.prototype;
const CODECS: { readonly [T in LayoutField['type']]: TypeCodec } = {
  u8: { array: Uint8Array, get: DV.getUint8, set: DV.setUint8 },
  i8: { array: Int8Array, get: DV.getInt8, set: DV.setInt8 },
  u16: { array: Uint16Array, get: DV.getUint16, set: DV.setUint16 },
  i16: { array: Int16Array, get: DV.getInt16, set: DV.setInt16 },
  u32: { array: Uint32Array, get: DV.getUint32, set: DV.setUint32 },
  i32: { array: Int32Array, get: DV.getInt32, set: DV.setInt32 },
  f64: { array: Float64Array, get: DV.getFloat64, set: DV.setFloat64 },
  u64: { array: BigUint64Array, get: DV.getBigUint64, set: DV.setBigUint64 },
};

function arrayOf(type: LayoutField['type'], b: ArrayBufferLike): FieldArray {
  return new CODECS[type].array(b);
}

/** Store a number or BigInt into a little-endian DataView at `off` as `type`. */
function put(dv: DataView, off: number, type: LayoutField['type'], v: number | bigint): void {
  CODECS[type].set.call(dv, off, type === 'u64' ? BigInt(v) : Number(v), true);
}

/** Read a little-endian value of `type` at `off` (a BigInt for u64). */
function get(dv: DataView, off: number, type: LayoutField['type']): number | bigint {
  return CODECS[type].get.call(dv, off, true);
}

/**
 * Write n little-endian u64 values lo:hi, lo:hi + step, ... as 32-bit halves into i32 at word w,
 * w + words, ... (one field of n consecutive records). The value wraps modulo 2^64.
 */
function writeU64Steps(
  i32: Int32Array,
  w: number,
  words: number,
  n: number,
  lo: number,
  hi: number,
  step: number,
): void {
  for (let k = 0; k < n; k++, w += words) {
    i32[w] = lo;
    i32[w + 1] = hi;
    lo += step;
    if (lo >= TWO32) {
      lo -= TWO32;
      hi = (hi + 1) % TWO32;
    }
  }
}

function fitsType(type: LayoutField['type'], v: number | bigint): boolean {
  if (type === 'u64') return typeof v === 'bigint' && v >= 0n && v < 1n << 64n;
  if (typeof v !== 'number') return false;
  if (type === 'f64') return true;
  if (!Number.isInteger(v)) return false;
  const bits = type === 'u8' || type === 'i8' ? 8 : type === 'u16' || type === 'i16' ? 16 : 32;
  return type[0] === 'u' ? v >= 0 && v < 2 ** bits : v >= -(2 ** (bits - 1)) && v < 2 ** (bits - 1);
}

/** The record array of one machine. Create with `PageRecords.create`, attach with `PageRecords.attach`. */
export class PageRecords {
  readonly layout: Layout;
  readonly pages: number;
  readonly pagesPerBuffer: number;
  readonly pageSize: number;
  /** The record buffers, in page order (for snapshots and workers). Empty for a size-0 layout. */
  readonly buffers: readonly ArrayBufferLike[];
  /** Does this array hold anything? False for `none`: callers may skip the writer calls entirely. */
  readonly active: boolean;

  private readonly size: number;
  private readonly u8s: Uint8Array[];
  private readonly i32s: Int32Array[];
  private readonly f64s: Float64Array[];
  private readonly dvs: DataView[];
  private readonly byName = new Map<string, number>();
  private src: PageStateSource | null = null;

  // Compiled writer: the template record, the fields patched per range and per page.
  private readonly tmpl: Uint8Array;
  private readonly tmplDv: DataView;
  private readonly rangeFields: LayoutField[]; // segind / pool / order sources
  private readonly physW: Int32Array; // Int32 word index of each u64 phys_addr field
  private readonly physF: Int32Array; // Float64 index of each f64 phys_addr field
  private readonly selfW: Int32Array; // Int32 word index of each self pointer
  private readonly selfOff: Float64Array; // its target byte offset inside the record
  private readonly baseLo: number;
  private readonly baseHi: number;
  private tSeg = -1;
  private tPool = -1;
  private tOrder = -1;
  private readonly blockPages: number;
  private readonly fused: boolean;

  private constructor(
    layout: Layout,
    pages: number,
    pagesPerBuffer: number,
    pageSize: number,
    buffers: ArrayBufferLike[],
  ) {
    this.layout = layout;
    this.pages = pages;
    this.pagesPerBuffer = pagesPerBuffer;
    this.pageSize = pageSize;
    this.buffers = Object.freeze(buffers);
    this.size = layout.size;
    this.active = layout.size > 0 && pages > 0;
    this.u8s = buffers.map((b) => new Uint8Array(b));
    this.i32s = buffers.map((b) => new Int32Array(b, 0, Math.floor(b.byteLength / 4)));
    this.f64s = buffers.map((b) => new Float64Array(b, 0, Math.floor(b.byteLength / 8)));
    this.dvs = buffers.map((b) => new DataView(b));
    for (let i = 0; i < layout.fields.length; i++) this.byName.set(layout.fields[i].name, i);

    this.tmpl = new Uint8Array(Math.max(layout.size, 8));
    this.tmplDv = new DataView(this.tmpl.buffer);
    this.rangeFields = [];
    const physW: number[] = [];
    const physF: number[] = [];
    const selfW: number[] = [];
    const selfOff: number[] = [];
    for (const f of layout.fields) {
      const i = f.init;
      if (i.kind === 'const') put(this.tmplDv, f.offset, f.type, i.value);
      else if (i.kind === 'self') {
        selfW.push(f.offset >> 2);
        selfOff.push(i.self);
      } else if (i.kind === 'source') {
        if (i.source === 'phys_addr') {
          if (f.type === 'u64') physW.push(f.offset >> 2);
          else physF.push(f.offset >> 3);
        } else this.rangeFields.push(f);
      }
    }
    this.physW = Int32Array.from(physW);
    this.physF = Int32Array.from(physF);
    this.selfW = Int32Array.from(selfW);
    this.selfOff = Float64Array.from(selfOff);
    this.baseLo = Number(layout.pointerBase & 0xffffffffn);
    this.baseHi = Number(layout.pointerBase >> 32n);
    this.fused = physW.length === 1 && selfW.length === 1 && physF.length === 0;
    this.blockPages = layout.size > 0 ? Math.max(1, Math.floor(BLOCK_BYTES / layout.size)) : 0;
  }

  /**
   * Reserve records for `pages` pages. Buffers are zero-filled and untouched (RSS grows only as
   * pages are initialised). Throws RecordError for a negative or fractional page count or a
   * maxBufferBytes smaller than one record; a RangeError from the runtime if the address space
   * cannot be reserved.
   */
  static create(layout: Layout, pages: number, opts: RecordsOptions = {}): PageRecords {
    if (!Number.isSafeInteger(pages) || pages < 0) throw new RecordError('ERECORD_INDEX', `bad page count ${pages}`);
    const maxBytes = Math.min(opts.maxBufferBytes ?? MAX_BUFFER_BYTES, MAX_BUFFER_BYTES);
    const pageSize = opts.pageSize ?? 4096;
    const shared = opts.shared ?? true;
    if (layout.size === 0 || pages === 0) return new PageRecords(layout, pages, 0, pageSize, []);
    if (maxBytes < layout.size) {
      throw new RecordError('ERECORD_ATTACH', `maxBufferBytes ${maxBytes} cannot hold one ${layout.size}-byte record`);
    }
    const ppb = Math.floor(maxBytes / layout.size);
    const buffers: ArrayBufferLike[] = [];
    for (let first = 0; first < pages; first += ppb) {
      buffers.push(alloc(Math.min(ppb, pages - first) * layout.size, shared));
    }
    return new PageRecords(layout, pages, ppb, pageSize, buffers);
  }

  /** Views over another thread's records (or a snapshot's buffers). Validates buffer sizes. */
  static attach(d: RecordsDescriptor): PageRecords {
    const layout = parseLayoutJson(d.layout);
    const n = layout.size === 0 || d.pages === 0 ? 0 : Math.ceil(d.pages / d.pagesPerBuffer);
    if (d.buffers.length !== n)
      throw new RecordError('ERECORD_ATTACH', `expected ${n} record buffers, got ${d.buffers.length}`);
    for (let b = 0; b < n; b++) {
      const want = Math.min(d.pagesPerBuffer, d.pages - b * d.pagesPerBuffer) * layout.size;
      if (d.buffers[b].byteLength !== want) {
        throw new RecordError(
          'ERECORD_ATTACH',
          `record buffer ${b} is ${d.buffers[b].byteLength} bytes, expected ${want}`,
        );
      }
    }
    return new PageRecords(layout, d.pages, d.pagesPerBuffer, d.pageSize, [...d.buffers]);
  }

  /** A plain, structured-clone-able description (postMessage it to a worker, then `attach`). */
  descriptor(): RecordsDescriptor {
    return {
      layout: layoutToJson(this.layout),
      pages: this.pages,
      pagesPerBuffer: this.pagesPerBuffer,
      pageSize: this.pageSize,
      buffers: this.buffers,
    };
  }

  /** Bytes of record storage reserved (not necessarily touched). */
  get byteLength(): number {
    return this.size * this.pages;
  }

  /** Connect the allocator (or disconnect with null): checked reads then follow its state. */
  setSource(src: PageStateSource | null): void {
    this.src = src;
  }

  /** Field number of a field name (for `read`/`write` without a string lookup); RecordError if unknown. */
  fieldIndex(name: string): number {
    const i = this.byName.get(name);
    if (i === undefined) throw new RecordError('ERECORD_FIELD', `layout '${this.layout.name}' has no field '${name}'`);
    return i;
  }

  // ------------------------------------------------------------------ writers

  /** Put the range-constant values into the template (cached on the last key). */
  private prepare(segind: number, pool: number, order: number): void {
    if (segind === this.tSeg && pool === this.tPool && order === this.tOrder) return;
    const rf = this.rangeFields;
    for (let k = 0; k < rf.length; k++) {
      const f = rf[k];
      const s = (f.init as { source: string }).source;
      put(this.tmplDv, f.offset, f.type, s === 'segind' ? segind : s === 'pool' ? pool : order);
    }
    this.tSeg = segind;
    this.tPool = pool;
    this.tOrder = order;
  }

  /**
   * vm_page_init_page for pages first .. first+count-1 (global indices), whose physical addresses
   * are pa, pa + pageSize, ...; every page gets the same segind, pool and order (the range lies
   * in one segment, as every caller's does). Writes whole records: fields with an init value get
   * it, fields without one (and padding) get zero, which is their value in the zero-filled array.
   * segind, pool and order must fit their fields. Does nothing for `none`.
   * Allocates nothing and creates no closures after the first call with a given (segind, pool, order).
   */
  initRange(first: number, count: number, pa: number, segind: number, pool: number, order: number): void {
    if (!this.active || count <= 0) return;
    this.prepare(segind, pool, order);
    const ppb = this.pagesPerBuffer;
    // Pieces of at most BLOCK_BYTES, never crossing a buffer: each piece is copied and then
    // patched while its bytes are still in cache, so memory is touched once.
    const bp = this.blockPages;
    let idx = first;
    let left = count;
    while (left > 0) {
      const b = Math.floor(idx / ppb);
      const local = idx - b * ppb;
      const n = Math.min(left, ppb - local, bp);
      this.fill(b, local, n);
      if (this.fused) this.patchFused(b, local, n, idx, pa);
      else this.patch(b, local, n, idx, pa);
      pa += n * this.pageSize;
      idx += n;
      left -= n;
    }
  }

  /** vm_page_init_page for one page. */
  initPage(idx: number, pa: number, segind: number, pool: number, order: number): void {
    this.initRange(idx, 1, pa, segind, pool, order);
  }

  /**
   * Copy the template into n (<= blockPages) records of buffer b from local record `local`: the
   * first record from the template, the rest by doubling copyWithin inside the piece (a memmove
   * within one buffer, much faster than TypedArray.set between two shared buffers).
   */
  private fill(b: number, local: number, n: number): void {
    const size = this.size;
    const u8 = this.u8s[b];
    const t = size === this.tmpl.length ? this.tmpl : this.tmpl.subarray(0, size);
    const off = local * size;
    if (n < 8) {
      for (let k = 0, o = off; k < n; k++, o += size) u8.set(t, o);
      return;
    }
    u8.set(t, off);
    const total = n * size;
    for (let have = size; have < total; have *= 2) {
      u8.copyWithin(off + have, off, off + Math.min(have, total - have));
    }
  }

  /**
   * The common case (struct vm_page): one u64 phys_addr and one u64 self pointer, one loop. The
   * 64-bit values are carried as signed 32-bit halves so that every intermediate stays a small
   * integer even before the loop is optimised (a double would be boxed on every iteration).
   */
  private patchFused(b: number, local: number, n: number, idx: number, pa: number): void {
    const i32 = this.i32s[b];
    const words = this.size >> 2;
    const size = this.size;
    const step = this.pageSize;
    const pw = this.physW[0] - this.selfW[0];
    let w = local * words + this.selfW[0];
    const plo = pa % TWO32;
    let lo = plo | 0;
    let hi = ((pa - plo) / TWO32) | 0;
    const rel = idx * size + this.selfOff[0] + this.baseLo;
    const rlo = rel % TWO32;
    let slo = rlo | 0;
    let shi = (this.baseHi + (rel - rlo) / TWO32) | 0;
    for (let k = 0; k < n; k++, w += words) {
      i32[w + pw] = lo;
      i32[w + pw + 1] = hi;
      i32[w] = slo;
      i32[w + 1] = shi;
      // Unsigned carry out of the low half: it was >= 2^31 (negative) and wrapped below 2^31.
      const nlo = (lo + step) | 0;
      if (lo < 0 && nlo >= 0) hi = (hi + 1) | 0;
      lo = nlo;
      const nslo = (slo + size) | 0;
      if (slo < 0 && nslo >= 0) shi = (shi + 1) | 0;
      slo = nslo;
    }
  }

  /** Write the per-page values (phys_addr, self pointers) of n records (any layout). */
  private patch(b: number, local: number, n: number, idx: number, pa: number): void {
    const words = this.size >> 2;
    const physW = this.physW;
    const selfW = this.selfW;
    if (physW.length + selfW.length > 0) {
      const i32 = this.i32s[b];
      for (let j = 0; j < physW.length; j++) {
        const w = local * words + physW[j];
        const lo = pa % TWO32;
        writeU64Steps(i32, w, words, n, lo, (pa - lo) / TWO32, this.pageSize);
      }
      for (let j = 0; j < selfW.length; j++) {
        const w = local * words + selfW[j];
        const rel = idx * this.size + this.selfOff[j] + this.baseLo;
        const lo = rel % TWO32;
        writeU64Steps(i32, w, words, n, lo, (this.baseHi + (rel - lo) / TWO32) % TWO32, this.size);
      }
    }
    const physF = this.physF;
    if (physF.length > 0) {
      const f64 = this.f64s[b];
      const dw = this.size >> 3;
      for (let j = 0; j < physF.length; j++) {
        let e = local * dw + physF[j];
        for (let k = 0; k < n; k++, e += dw) f64[e] = pa + k * this.pageSize;
      }
    }
  }

  // ------------------------------------------------------------------ reads and writes

  private locate(idx: number): number {
    if (!Number.isInteger(idx) || idx < 0 || idx >= this.pages) {
      throw new RecordError('ERECORD_INDEX', `page index ${idx} is outside 0..${this.pages - 1}`);
    }
    return Math.floor(idx / this.pagesPerBuffer);
  }

  private field(f: number | string): LayoutField {
    const i = typeof f === 'string' ? this.fieldIndex(f) : f;
    const fld = this.layout.fields[i];
    if (fld === undefined) throw new RecordError('ERECORD_FIELD', `no field number ${String(f)}`);
    return fld;
  }

  /**
   * The value vm_page_init_page gives field f of page idx (needs a source for phys_addr, segind,
   * pool and order). Fields without an init value read 0 (0n for u64).
   */
  initialValue(idx: number, f: number | string): number | bigint {
    const fld = this.field(f);
    const i = fld.init;
    if (i.kind === 'const') return i.value;
    if (i.kind === 'self') return BigInt.asUintN(64, this.layout.pointerBase + BigInt(idx * this.size + i.self));
    if (i.kind === 'none') return fld.type === 'u64' ? 0n : 0;
    const src = this.src;
    if (src === null)
      throw new RecordError('ERECORD_FIELD', `'${fld.name}' needs the allocator (setSource) to be computed`);
    const v =
      i.source === 'phys_addr'
        ? src.paOf(idx)
        : i.source === 'segind'
          ? src.segOfIdx(idx)
          : i.source === 'pool'
            ? src.poolAt(idx)
            : src.orderAt(idx);
    return fld.type === 'u64' ? BigInt(v) : v;
  }

  /**
   * Checked read of field f (name or number) of page idx: a BigInt for u64 fields, a number
   * otherwise. With a source attached, allocator-owned fields (segind/pool/order sources) return
   * the allocator's current value, and a page not yet initialised returns its initial values;
   * without a source, the stored bytes. RecordError for a bad index or field.
   */
  read(idx: number, f: number | string): number | bigint {
    const b = this.locate(idx);
    const fld = this.field(f);
    const src = this.src;
    if (src !== null) {
      const i = fld.init;
      if (i.kind === 'source' && i.source !== 'phys_addr') return this.initialValue(idx, f);
      if (!src.isInitialized(idx)) return this.initialValue(idx, f);
    }
    return get(this.dvs[b], (idx - b * this.pagesPerBuffer) * this.size + fld.offset, fld.type);
  }

  /** Store into field f of page idx (BigInt for u64). RecordError if the value does not fit the type. */
  write(idx: number, f: number | string, v: number | bigint): void {
    const b = this.locate(idx);
    const fld = this.field(f);
    if (!fitsType(fld.type, v))
      throw new RecordError('ERECORD_VALUE', `${String(v)} does not fit ${fld.name} (${fld.type})`);
    put(this.dvs[b], (idx - b * this.pagesPerBuffer) * this.size + fld.offset, fld.type, v);
  }

  /**
   * Copy the allocator's current segind/pool/order into the stored bytes of the initialised pages
   * among first .. first+count-1 (for raw-view consumers or before a snapshot is read raw). Needs
   * a source; touches each such record.
   */
  syncLive(first: number, count: number): void {
    const src = this.src;
    if (src === null || !this.active) return;
    const rf = this.rangeFields;
    for (let idx = first; idx < first + count; idx++) {
      if (!src.isInitialized(idx)) continue;
      const b = this.locate(idx);
      const base = (idx - b * this.pagesPerBuffer) * this.size;
      for (let k = 0; k < rf.length; k++) {
        const f = rf[k];
        const s = (f.init as { source: string }).source;
        const v = s === 'segind' ? src.segOfIdx(idx) : s === 'pool' ? src.poolAt(idx) : src.orderAt(idx);
        put(this.dvs[b], base + f.offset, f.type, f.type === 'u64' ? BigInt(v) : v);
      }
    }
  }

  /** A typed view of field `name` over every buffer (see FieldView for indexing). */
  fieldView(name: string): FieldView {
    const fld = this.field(name);
    return {
      name: fld.name,
      type: fld.type,
      step: this.size / fld.size,
      index: fld.offset / fld.size,
      pagesPerBuffer: this.pagesPerBuffer,
      arrays: this.buffers.map((b) => arrayOf(fld.type, b)),
    };
  }
}
