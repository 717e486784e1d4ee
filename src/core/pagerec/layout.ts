/**
 * Page-record layouts: what one per-page record looks like (fields, types, byte offsets) and
 * what page initialisation writes into each field. Owns the layout declaration format (in code
 * and as JSON), its validation, and the built-in layouts: `freebsd` (struct vm_page on amd64 and
 * arm64, with vm_page_init_page's writes) and `none` (no records). `records.ts` reads resolved
 * layouts; nothing else may build a `Layout` except through `defineLayout`/`parseLayoutJson`.
 *
 * Byte order: records are little-endian, as on both FreeBSD ports modelled here; the typed views
 * of `records.ts` use the platform's order, and every JavaScript engine we run on is little-endian.
 */
import { VmPhysError } from '../errors.js';
import type { Profile } from '../params.js';

/** A bad layout declaration (or layout JSON). `field` names the offending field when there is one. */
export class LayoutError extends VmPhysError {
  readonly field: string | undefined;
  /**
   * Codes: ELAYOUT_JSON (not JSON / not an object of the documented shape), ELAYOUT_NAME (missing,
   * empty or duplicate name), ELAYOUT_TYPE (unknown field type), ELAYOUT_ALIGN (an offset that is
   * not a multiple of the field's size, or a record size that is not a multiple of the record's
   * alignment), ELAYOUT_OVERLAP (two fields share bytes), ELAYOUT_SIZE (a field past the record's
   * end, an offset or size that is not a non-negative integer, or a record that is too large),
   * ELAYOUT_INIT (an init value that the field's type cannot hold, or an unknown init source).
   */
  constructor(code: string, message: string, field?: string) {
    super(code, message);
    this.field = field;
  }
}

/** Field types and their byte sizes. u64 values are BigInts at the API; the others are numbers. */
export const FIELD_TYPES = { u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f64: 8, u64: 8 } as const;
export type FieldType = keyof typeof FIELD_TYPES;

/**
 * Per-page init sources: the value depends on the page being initialised.
 *  - `phys_addr`: the page's physical address (u64 or f64 fields);
 *  - `segind`, `pool`, `order`: the values passed to the writer (vm_page_init_page's segind and
 *    pool, and VM_NFREEORDER for order). Fields with these three sources are allocator-owned:
 *    a checked read returns the allocator's current value (see `records.ts`).
 */
export const INIT_SOURCES = ['phys_addr', 'segind', 'pool', 'order'] as const;
export type InitSource = (typeof INIT_SOURCES)[number];

/**
 * What initialisation writes into a field:
 *  - a number (or a BigInt, or a decimal/0x-hex string for u64 values above 2^53): a constant;
 *  - an `InitSource` name;
 *  - `{ self: k }` (u64 only): a pointer to byte k of the record itself, as FreeBSD's TAILQ_INIT
 *    stores `&head->tqh_first` in `tqh_last`. Pointers are pseudo kernel addresses:
 *    `layout.pointerBase + pageIndex × layout.size + k`, i.e. the address the record would have
 *    if the record array were mapped at `pointerBase`;
 *  - absent (`undefined`/`null`): initialisation does not set this field. Records start zeroed,
 *    and the bulk writer stores zero in such fields (see `records.ts`).
 */
export type InitValue = number | bigint | string | InitSource | { readonly self: number } | null | undefined;

/** A field as declared by a user (or by a JSON file). `offset` defaults to the next naturally aligned one. */
export interface FieldDecl {
  readonly name: string;
  readonly type: string;
  readonly offset?: number;
  readonly init?: InitValue;
}

/** A layout as declared. `size` defaults to the end of the last field rounded up to the alignment. */
export interface LayoutDecl {
  readonly name: string;
  readonly fields: readonly FieldDecl[];
  readonly size?: number;
  /** Base of the pseudo kernel addresses stored by `{ self }` inits (default 0). */
  readonly pointerBase?: number | bigint | string;
}

/** How a resolved field is initialised. */
export type ResolvedInit =
  | { readonly kind: 'none' }
  | { readonly kind: 'const'; readonly value: number | bigint }
  | { readonly kind: 'source'; readonly source: InitSource }
  | { readonly kind: 'self'; readonly self: number };

/** A validated field. */
export interface LayoutField {
  readonly name: string;
  readonly type: FieldType;
  readonly offset: number;
  readonly size: number;
  readonly init: ResolvedInit;
}

/** A validated, frozen layout. `size` is the record stride in bytes (0 for `none`). */
export interface Layout {
  readonly name: string;
  readonly size: number;
  readonly align: number;
  readonly fields: readonly LayoutField[];
  readonly pointerBase: bigint;
}

/** Largest record we accept (a record must fit many times in one buffer; see `records.ts`). */
export const MAX_RECORD_BYTES = 1 << 16;

const U64_MAX = (1n << 64n) - 1n;

function isInt(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n);
}

function parseBig(v: number | bigint | string, field: string): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v))
      throw new LayoutError('ELAYOUT_INIT', `'${field}': ${v} is not an exact integer`, field);
    return BigInt(v);
  }
  if (!/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(v)) {
    throw new LayoutError('ELAYOUT_INIT', `'${field}': '${v}' is neither an init source nor an integer`, field);
  }
  return BigInt(v);
}

/** Does `v` fit field type `t`? (f64 takes any finite number.) */
function fits(t: FieldType, v: number | bigint): boolean {
  if (t === 'u64') return typeof v === 'bigint' && v >= 0n && v <= U64_MAX;
  if (typeof v !== 'number') return false;
  if (t === 'f64') return Number.isFinite(v);
  if (!Number.isInteger(v)) return false;
  const bits = FIELD_TYPES[t] * 8;
  if (t[0] === 'u') return v >= 0 && v < 2 ** bits;
  return v >= -(2 ** (bits - 1)) && v < 2 ** (bits - 1);
}

function resolveInit(f: FieldDecl, type: FieldType): ResolvedInit {
  const v = f.init;
  if (v === undefined || v === null) return { kind: 'none' };
  if (typeof v === 'object') {
    if (type !== 'u64') throw new LayoutError('ELAYOUT_INIT', `'${f.name}': a self pointer needs a u64 field`, f.name);
    if (!isInt(v.self) || v.self < 0) {
      throw new LayoutError('ELAYOUT_INIT', `'${f.name}': self must be a non-negative byte offset`, f.name);
    }
    return { kind: 'self', self: v.self };
  }
  if (typeof v === 'string' && (INIT_SOURCES as readonly string[]).includes(v)) {
    const source = v as InitSource;
    if (source === 'phys_addr' && type !== 'u64' && type !== 'f64') {
      throw new LayoutError('ELAYOUT_INIT', `'${f.name}': phys_addr needs a u64 or f64 field`, f.name);
    }
    return { kind: 'source', source };
  }
  if (type === 'u64') {
    const b = parseBig(v, f.name);
    if (!fits(type, b)) throw new LayoutError('ELAYOUT_INIT', `'${f.name}': ${b} does not fit u64`, f.name);
    return { kind: 'const', value: b };
  }
  if (typeof v !== 'number' || !fits(type, v)) {
    throw new LayoutError('ELAYOUT_INIT', `'${f.name}': ${String(v)} does not fit ${type}`, f.name);
  }
  return { kind: 'const', value: v };
}

/**
 * Validate a declaration and resolve it: offsets (explicit, or packed naturally aligned after the
 * previous field), sizes, alignment, overlaps, init values. Throws LayoutError; never returns a
 * partially valid layout. The result is frozen and may be shared.
 */
export function defineLayout(decl: LayoutDecl): Layout {
  if (typeof decl !== 'object' || decl === null) throw new LayoutError('ELAYOUT_JSON', 'a layout must be an object');
  if (typeof decl.name !== 'string' || decl.name === '') throw new LayoutError('ELAYOUT_NAME', 'a layout needs a name');
  if (!Array.isArray(decl.fields))
    throw new LayoutError('ELAYOUT_JSON', `layout '${decl.name}': fields must be an array`);
  const seen = new Set<string>();
  const fields: LayoutField[] = [];
  let next = 0;
  let align = 1;
  for (const f of decl.fields) {
    if (typeof f !== 'object' || f === null) throw new LayoutError('ELAYOUT_JSON', 'every field must be an object');
    if (typeof f.name !== 'string' || f.name === '') throw new LayoutError('ELAYOUT_NAME', 'a field needs a name');
    if (seen.has(f.name)) throw new LayoutError('ELAYOUT_NAME', `field '${f.name}' is declared twice`, f.name);
    seen.add(f.name);
    if (typeof f.type !== 'string' || !Object.hasOwn(FIELD_TYPES, f.type)) {
      throw new LayoutError(
        'ELAYOUT_TYPE',
        `field '${f.name}': unknown type '${String(f.type)}' (expected ${Object.keys(FIELD_TYPES).join(', ')})`,
        f.name,
      );
    }
    const type = f.type as FieldType;
    const size = FIELD_TYPES[type];
    let offset: number;
    if (f.offset === undefined) {
      offset = Math.ceil(next / size) * size;
    } else {
      if (!isInt(f.offset) || f.offset < 0) {
        throw new LayoutError('ELAYOUT_SIZE', `field '${f.name}': offset must be a non-negative integer`, f.name);
      }
      offset = f.offset;
      if (offset % size !== 0) {
        throw new LayoutError(
          'ELAYOUT_ALIGN',
          `field '${f.name}': offset ${offset} is not a multiple of ${size}`,
          f.name,
        );
      }
    }
    if (offset + size > MAX_RECORD_BYTES) {
      throw new LayoutError('ELAYOUT_SIZE', `field '${f.name}' ends past ${MAX_RECORD_BYTES} bytes`, f.name);
    }
    for (const g of fields) {
      if (offset < g.offset + g.size && g.offset < offset + size) {
        throw new LayoutError('ELAYOUT_OVERLAP', `fields '${g.name}' and '${f.name}' overlap`, f.name);
      }
    }
    fields.push({ name: f.name, type, offset, size, init: resolveInit(f, type) });
    next = Math.max(next, offset + size);
    align = Math.max(align, size);
  }
  let size = Math.ceil(next / align) * align;
  if (decl.size !== undefined) {
    if (!isInt(decl.size) || decl.size < 0 || decl.size > MAX_RECORD_BYTES) {
      throw new LayoutError('ELAYOUT_SIZE', `layout '${decl.name}': size must be an integer in 0..${MAX_RECORD_BYTES}`);
    }
    if (decl.size < next) throw new LayoutError('ELAYOUT_SIZE', `layout '${decl.name}': fields end at ${next} > size`);
    if (decl.size % align !== 0) {
      throw new LayoutError('ELAYOUT_ALIGN', `layout '${decl.name}': size ${decl.size} is not a multiple of ${align}`);
    }
    size = decl.size;
  }
  for (const f of fields) {
    if (f.init.kind === 'self' && f.init.self >= size) {
      throw new LayoutError('ELAYOUT_INIT', `'${f.name}': self offset ${f.init.self} is outside the record`, f.name);
    }
  }
  const pointerBase = decl.pointerBase === undefined ? 0n : parseBig(decl.pointerBase, 'pointerBase');
  if (pointerBase < 0n || pointerBase > U64_MAX) throw new LayoutError('ELAYOUT_INIT', 'pointerBase does not fit u64');
  fields.sort((a, b) => a.offset - b.offset);
  return Object.freeze({
    name: decl.name,
    size,
    align,
    fields: Object.freeze(fields.map((f) => Object.freeze(f))),
    pointerBase,
  });
}

/** The JSON form of one field (what `parseLayoutJson` reads and `layoutToJson` writes). */
export interface FieldJson {
  name: string;
  type: string;
  offset?: number;
  init?: number | string | { self: number } | null;
}
/** The JSON form of a layout. u64 constants above 2^53 and pointerBase are decimal or 0x strings. */
export interface LayoutJson {
  name: string;
  size?: number;
  pointerBase?: string;
  fields: FieldJson[];
}

/**
 * Read a layout from JSON text (a `--page-struct FILE.json`) or from an already parsed value.
 * Schema: `{ "name": string, "size"?: int, "pointerBase"?: "0x..", "fields": [ { "name": string,
 * "type": "u8"|"i8"|"u16"|"i16"|"u32"|"i32"|"f64"|"u64", "offset"?: int, "init"?: number |
 * "phys_addr"|"segind"|"pool"|"order" | "0x.." (u64) | { "self": int } } ] }`. Unknown keys are
 * errors (a misspelt "ofset" must not be ignored). Throws LayoutError with code ELAYOUT_JSON for
 * shape problems and the `defineLayout` codes for the rest.
 */
export function parseLayoutJson(input: string | unknown): Layout {
  let v: unknown = input;
  if (typeof input === 'string') {
    try {
      v = JSON.parse(input);
    } catch (e) {
      throw new LayoutError('ELAYOUT_JSON', `layout is not valid JSON: ${(e as Error).message}`);
    }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new LayoutError('ELAYOUT_JSON', 'a layout must be a JSON object');
  }
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== 'name' && k !== 'size' && k !== 'pointerBase' && k !== 'fields') {
      throw new LayoutError('ELAYOUT_JSON', `unknown layout key '${k}'`);
    }
  }
  if (!Array.isArray(o.fields)) throw new LayoutError('ELAYOUT_JSON', "a layout needs a 'fields' array");
  if (o.size !== undefined && typeof o.size !== 'number')
    throw new LayoutError('ELAYOUT_JSON', "'size' must be a number");
  if (o.pointerBase !== undefined && typeof o.pointerBase !== 'string' && typeof o.pointerBase !== 'number') {
    throw new LayoutError('ELAYOUT_JSON', "'pointerBase' must be a string or a number");
  }
  const fields: FieldDecl[] = [];
  for (const f of o.fields as unknown[]) {
    if (typeof f !== 'object' || f === null || Array.isArray(f)) {
      throw new LayoutError('ELAYOUT_JSON', 'every field must be a JSON object');
    }
    const r = f as Record<string, unknown>;
    for (const k of Object.keys(r)) {
      if (k !== 'name' && k !== 'type' && k !== 'offset' && k !== 'init') {
        throw new LayoutError(
          'ELAYOUT_JSON',
          `unknown field key '${k}'`,
          typeof r.name === 'string' ? r.name : undefined,
        );
      }
    }
    if (r.offset !== undefined && typeof r.offset !== 'number') {
      throw new LayoutError('ELAYOUT_JSON', "a field's 'offset' must be a number", String(r.name));
    }
    const init = r.init;
    if (
      init !== undefined &&
      init !== null &&
      typeof init !== 'number' &&
      typeof init !== 'string' &&
      !(typeof init === 'object' && !Array.isArray(init) && Object.keys(init).length === 1 && 'self' in init)
    ) {
      throw new LayoutError(
        'ELAYOUT_JSON',
        "a field's 'init' must be a number, a string or { \"self\": n }",
        String(r.name),
      );
    }
    fields.push({
      name: r.name as string,
      type: r.type as string,
      offset: r.offset as number | undefined,
      init: init as InitValue,
    });
  }
  return defineLayout({
    name: o.name as string,
    fields,
    size: o.size as number | undefined,
    pointerBase: o.pointerBase as string | number | undefined,
  });
}

/** The plain, JSON-serialisable form of a resolved layout (explicit offsets and size). */
export function layoutToJson(layout: Layout): LayoutJson {
  return {
    name: layout.name,
    size: layout.size,
    pointerBase: `0x${layout.pointerBase.toString(16)}`,
    fields: layout.fields.map((f) => {
      const out: FieldJson = { name: f.name, type: f.type, offset: f.offset };
      const i = f.init;
      if (i.kind === 'const') out.init = typeof i.value === 'bigint' ? `0x${i.value.toString(16)}` : i.value;
      else if (i.kind === 'source') out.init = i.source;
      else if (i.kind === 'self') out.init = { self: i.self };
      return out;
    }),
  };
}

/** Bytes the records of `pages` pages occupy (the figure a CLI compares with the machine's memory). */
export function recordBytes(layout: Layout, pages: number): number {
  return layout.size * pages;
}

/** The empty layout: no records, nothing written, no buffers. */
export const NONE_LAYOUT: Layout = defineLayout({ name: 'none', fields: [] });

// --- struct vm_page -----------------------------------------------------------------------------
//
// Offsets are those of FreeBSD's struct vm_page as of the lazy-initialisation work (mid 2024,
// sys/vm/vm_page.h): plinks (a union whose largest members are two pointers), listq (TAILQ_ENTRY,
// still a separate member then), object, pindex, phys_addr, struct md_page md, ref_count,
// busy_lock, union vm_page_astate a { uint16_t flags; uint8_t queue; uint8_t act_count; },
// order, pool, flags, oflags, psind, segind, valid, dirty (vm_page_bits_t is uint8_t with 4 KiB
// pages). LP64: pointers, vm_pindex_t and vm_paddr_t are 8 bytes, so md starts at 56.
//
// struct md_page:
//  - amd64 (sys/amd64/include/pmap.h): TAILQ_HEAD(, pv_entry) pv_list; int pv_gen; int pat_mode;
//    = 24 bytes;
//  - arm64 (sys/arm64/include/pmap.h): TAILQ_HEAD(, pv_entry) pv_list; int pv_gen;
//    vm_memattr_t pv_memattr; with vm_memattr_t a char (sys/vm/vm.h) = 21 bytes, padded to 24.
// Both ports therefore give 100 bytes of fields and sizeof(struct vm_page) = 104 (8-aligned).
//
// vm_page_init_page (sys/vm/vm_page.c) writes object = NULL, ref_count = 0, busy_lock =
// VPB_FREED, flags = 0, a.flags = 0, phys_addr = pa, a.queue = PQ_NONE, psind = 0, segind,
// order = VM_NFREEORDER, pool, valid = dirty = 0, then pmap_page_init(m):
//  - amd64 (sys/amd64/amd64/pmap.c): TAILQ_INIT(&m->md.pv_list); m->md.pat_mode = PAT_WRITE_BACK
//    (0x06, sys/x86/include/specialreg.h);
//  - arm64 (sys/arm64/arm64/pmap.c): TAILQ_INIT(&m->md.pv_list); m->md.pv_memattr =
//    VM_MEMATTR_WRITE_BACK (2, sys/arm64/include/vm.h).
// TAILQ_INIT sets tqh_first = NULL and tqh_last = &tqh_first: a pointer into the record itself,
// stored as a pseudo kernel address (see InitValue). It does not write plinks, listq, pindex,
// md.pv_gen, a.act_count or oflags.

/** VPB_FREED = 0xffffffff - VPB_BIT_SHARED (sys/vm/vm_page.h): a freed page's busy lock. */
export const VPB_FREED = 0xfffffffe;
/** PQ_NONE (sys/vm/vm_page.h): the page is on no page queue. */
export const PQ_NONE = 255;
/** amd64 PAT_WRITE_BACK (sys/x86/include/specialreg.h). */
export const PAT_WRITE_BACK = 0x06;
/** arm64 VM_MEMATTR_WRITE_BACK (sys/arm64/include/vm.h). */
export const ARM64_VM_MEMATTR_WRITE_BACK = 2;
/**
 * Pseudo base addresses for pointers into the record array: each port's VM_MIN_KERNEL_ADDRESS
 * (amd64 with 4-level paging, arm64). They stand for "somewhere in kernel virtual memory"; they
 * are not where FreeBSD actually maps vm_page_array.
 */
export const POINTER_BASE = { amd64: 0xfffffe0000000000n, arm64: 0xffff000000000000n } as const;

/** Byte offset of md inside struct vm_page on both ports. */
const MD = 56;

/** `struct vm_page` of a profile's port, with vm_page_init_page's writes as init values. */
export function freebsdLayout(profile: Profile): Layout {
  const md: FieldDecl[] =
    profile.name === 'amd64'
      ? [
          { name: 'md.pv_gen', type: 'i32', offset: MD + 16 },
          { name: 'md.pat_mode', type: 'i32', offset: MD + 20, init: PAT_WRITE_BACK },
        ]
      : [
          { name: 'md.pv_gen', type: 'i32', offset: MD + 16 },
          { name: 'md.pv_memattr', type: 'i8', offset: MD + 20, init: ARM64_VM_MEMATTR_WRITE_BACK },
        ];
  return defineLayout({
    name: `freebsd-${profile.name}`,
    pointerBase: POINTER_BASE[profile.name],
    size: 104,
    fields: [
      { name: 'plinks.q.tqe_next', type: 'u64', offset: 0 },
      { name: 'plinks.q.tqe_prev', type: 'u64', offset: 8 },
      { name: 'listq.tqe_next', type: 'u64', offset: 16 },
      { name: 'listq.tqe_prev', type: 'u64', offset: 24 },
      { name: 'object', type: 'u64', offset: 32, init: 0 },
      { name: 'pindex', type: 'u64', offset: 40 },
      { name: 'phys_addr', type: 'u64', offset: 48, init: 'phys_addr' },
      { name: 'md.pv_list.tqh_first', type: 'u64', offset: MD, init: 0 },
      { name: 'md.pv_list.tqh_last', type: 'u64', offset: MD + 8, init: { self: MD } },
      ...md,
      { name: 'ref_count', type: 'u32', offset: 80, init: 0 },
      { name: 'busy_lock', type: 'u32', offset: 84, init: VPB_FREED },
      { name: 'a.flags', type: 'u16', offset: 88, init: 0 },
      { name: 'a.queue', type: 'u8', offset: 90, init: PQ_NONE },
      { name: 'a.act_count', type: 'u8', offset: 91 },
      { name: 'order', type: 'u8', offset: 92, init: 'order' },
      { name: 'pool', type: 'u8', offset: 93, init: 'pool' },
      { name: 'flags', type: 'u8', offset: 94, init: 0 },
      { name: 'oflags', type: 'u8', offset: 95 },
      { name: 'psind', type: 'i8', offset: 96, init: 0 },
      { name: 'segind', type: 'i8', offset: 97, init: 'segind' },
      { name: 'valid', type: 'u8', offset: 98, init: 0 },
      { name: 'dirty', type: 'u8', offset: 99, init: 0 },
    ],
  });
}

/**
 * A layout by its `--page-struct` name: `freebsd` (the profile's struct vm_page) or `none`.
 * Anything else is a LayoutError (a JSON file is read by the caller and given to parseLayoutJson).
 */
export function builtinLayout(name: string, profile: Profile): Layout {
  if (name === 'freebsd') return freebsdLayout(profile);
  if (name === 'none') return NONE_LAYOUT;
  throw new LayoutError('ELAYOUT_NAME', `unknown built-in page layout '${name}' (expected freebsd or none)`);
}
