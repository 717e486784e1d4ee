/**
 * Snapshots: `snapshot(vm)` → bytes and `restore(bytes)` → a VmPhys in exactly the same state.
 * Format (little endian):
 *   0  magic "VMPHYSS1" (8 bytes)
 *   8  u32 format version (1)        12 u32 profile (0 amd64, 1 arm64)
 *  16  u32 control bytes             20 u32 max lazy runs
 *  24  f64 total pages               32 u32 checksum (FNV-1a over everything after the header)
 *  36  u32 reserved                  40 payload
 * Payload: the control buffer verbatim, then the meta and link buffers stored sparsely: for each
 * 4 KiB window, one flag byte (0 all zero, 1 stored) followed by the window when stored. Windows
 * that were never written are never stored, so untouched metadata stays out of snapshots too.
 * Page records, when the machine keeps them, follow in a section of their own (see below).
 * Owned by the core; read-only over the allocator it snapshots.
 */
import { SnapshotError } from './errors.js';
import { CTL, controlViews, createPages, DEFAULT_MAX_RUNS } from './layout.js';
import { type Layout, layoutToJson, parseLayoutJson } from './pagerec/layout.js';
import { PageRecords, type RecordsDescriptor } from './pagerec/records.js';
import { amd64, arm64 } from './params.js';
import { VmPhys } from './vmphys.js';

const MAGIC = 'VMPHYSS1';
const VERSION = 1;
const HEADER = 40;
const WIN = 4096;

function fnv1a(bytes: Uint8Array, start: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < bytes.length; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function isZero(b: Uint8Array, from: number, to: number): boolean {
  // Compare 8 bytes at a time where aligned.
  let i = from;
  if ((b.byteOffset + i) % 8 === 0) {
    const n = Math.floor((to - i) / 8);
    const w = new Float64Array(b.buffer, b.byteOffset + i, n);
    for (let k = 0; k < n; k++) if (w[k] !== 0 || 1 / w[k] < 0) return false;
    i += n * 8;
  }
  for (; i < to; i++) if (b[i] !== 0) return false;
  return true;
}

function sparse(b: Uint8Array, out: Uint8Array[]): void {
  for (let off = 0; off < b.length; off += WIN) {
    const end = Math.min(b.length, off + WIN);
    if (isZero(b, off, end)) out.push(new Uint8Array([0]));
    else {
      out.push(new Uint8Array([1]));
      out.push(b.slice(off, end));
    }
  }
}

/**
 * The allocator's whole state as bytes. The caller must keep other threads out (hold every
 * domain lock) while it runs.
 */
export function snapshot(vm: VmPhys): Uint8Array {
  const parts: Uint8Array[] = [];
  const s = vm.state;
  const control = new Uint8Array(s.c.buffer as ArrayBuffer);
  parts.push(control.slice());
  sparse(new Uint8Array(s.meta.buffer as ArrayBuffer), parts);
  sparse(new Uint8Array(s.link.buffer as ArrayBuffer), parts);
  snapshotRecords(s.rec, parts);
  let size = HEADER;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let off = HEADER;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  const dv = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) out[i] = MAGIC.charCodeAt(i);
  dv.setUint32(8, VERSION, true);
  dv.setUint32(12, vm.profile.name === 'arm64' ? 1 : 0, true);
  dv.setUint32(16, control.length, true);
  dv.setUint32(20, s.c.maxRuns, true);
  dv.setFloat64(24, vm.totalPages, true);
  dv.setUint32(32, fnv1a(out, HEADER), true);
  return out;
}

function unsparse(src: Uint8Array, off: number, dst: Uint8Array): number {
  for (let w = 0; w < dst.length; w += WIN) {
    if (off >= src.length) throw new SnapshotError('snapshot is truncated (page data)');
    const flag = src[off++];
    const len = Math.min(WIN, dst.length - w);
    if (flag === 1) {
      if (off + len > src.length) throw new SnapshotError('snapshot is truncated (page window)');
      dst.set(src.subarray(off, off + len), w);
      off += len;
    } else if (flag !== 0) throw new SnapshotError(`snapshot page window flag ${flag} is invalid`);
  }
  return off;
}

/**
 * Rebuild an allocator from `snapshot` bytes; rejects corrupted, truncated or foreign data with
 * a SnapshotError. The result makes the same choices the original would have made.
 */
export function restore(bytes: Uint8Array, opts: { shared?: boolean } = {}): VmPhys {
  if (bytes.length < HEADER) throw new SnapshotError('not a vmphys snapshot (too short)');
  for (let i = 0; i < 8; i++)
    if (bytes[i] !== MAGIC.charCodeAt(i)) throw new SnapshotError('not a vmphys snapshot (bad magic)');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(8, true);
  if (version !== VERSION)
    throw new SnapshotError(`snapshot format version ${version} is not supported (want ${VERSION})`);
  const prof = dv.getUint32(12, true);
  if (prof > 1) throw new SnapshotError(`snapshot names unknown profile ${prof}`);
  const profile = prof === 1 ? arm64 : amd64;
  const controlBytes = dv.getUint32(16, true);
  const maxRuns = dv.getUint32(20, true);
  const totalPages = dv.getFloat64(24, true);
  if (maxRuns < 1 || maxRuns > 1 << 24) throw new SnapshotError('snapshot has an implausible lazy-run capacity');
  if (!Number.isInteger(totalPages) || totalPages < 0 || totalPages > 0x7ffffff0)
    throw new SnapshotError('snapshot has an implausible page count');
  const sum = fnv1a(bytes, HEADER);
  if (sum !== dv.getUint32(32, true)) throw new SnapshotError('snapshot checksum mismatch (corrupted)');
  const shared = opts.shared ?? true;
  const cbuf = shared ? new SharedArrayBuffer(controlBytes) : new ArrayBuffer(controlBytes);
  let c: ReturnType<typeof controlViews>;
  try {
    c = controlViews(profile, cbuf, maxRuns);
  } catch {
    throw new SnapshotError('snapshot control block does not match its profile');
  }
  if (HEADER + controlBytes > bytes.length) throw new SnapshotError('snapshot is truncated (control block)');
  new Uint8Array(cbuf).set(bytes.subarray(HEADER, HEADER + controlBytes));
  // A snapshot is taken with every domain lock held; the restored machine starts unlocked.
  c.locks.fill(0);
  c.ctl[CTL.DRAINERS] = 0;
  const pages = createPages(totalPages, shared);
  let off = HEADER + controlBytes;
  off = unsparse(bytes, off, new Uint8Array(pages.metaBuffer as ArrayBuffer));
  off = unsparse(bytes, off, new Uint8Array(pages.linkBuffer as ArrayBuffer));
  const rec = restoreRecords(bytes, off, totalPages, profile.pageSize, shared);
  off = rec.off;
  if (off !== bytes.length) throw new SnapshotError('snapshot has trailing bytes');
  c.ctl[CTL.SHARED] = shared ? 1 : 0;
  return new VmPhys({ profile, shared, maxRuns }, c, pages, rec.records);
}

export { DEFAULT_MAX_RUNS };

// ------------------------------------------------------------------ page records
//
// A machine with page records (pageStruct other than 'none') appends one section after the page
// buffers: "VMPR", u32 length of the layout's JSON, the JSON (UTF-8), then each record buffer
// stored sparsely as above. A snapshot without the section restores a machine without records.

const REC_MAGIC = 'VMPR';

function snapshotRecords(rec: PageRecords, parts: Uint8Array[]): void {
  if (!rec.active) return;
  const json = new TextEncoder().encode(JSON.stringify(layoutToJson(rec.layout)));
  const head = new Uint8Array(8);
  for (let i = 0; i < 4; i++) head[i] = REC_MAGIC.charCodeAt(i);
  new DataView(head.buffer).setUint32(4, json.length, true);
  parts.push(head, json);
  for (const b of rec.buffers) sparse(new Uint8Array(b as ArrayBuffer), parts);
}

function restoreRecords(
  bytes: Uint8Array,
  off: number,
  pages: number,
  pageSize: number,
  shared: boolean,
): { off: number; records: RecordsDescriptor | undefined } {
  if (off >= bytes.length) return { off, records: undefined };
  if (off + 8 > bytes.length) throw new SnapshotError('snapshot is truncated (page records)');
  for (let i = 0; i < 4; i++)
    if (bytes[off + i] !== REC_MAGIC.charCodeAt(i)) throw new SnapshotError('snapshot has trailing bytes');
  const len = new DataView(bytes.buffer, bytes.byteOffset + off + 4, 4).getUint32(0, true);
  off += 8;
  if (off + len > bytes.length) throw new SnapshotError('snapshot is truncated (page record layout)');
  let layout: Layout;
  try {
    layout = parseLayoutJson(new TextDecoder().decode(bytes.subarray(off, off + len)));
  } catch (e) {
    throw new SnapshotError(`snapshot page record layout is invalid: ${(e as Error).message}`);
  }
  off += len;
  const rec = PageRecords.create(layout, pages, { shared, pageSize });
  for (const b of rec.buffers) off = unsparse(bytes, off, new Uint8Array(b as ArrayBuffer));
  return { off, records: rec.descriptor() };
}
