/**
 * Snapshots: `snapshot(vm)` → bytes and `restore(bytes)` → a VmPhys in exactly the same state.
 * Format (little endian):
 *   0  magic "VMPHYSS1" (8 bytes)
 *   8  u32 format version (2)        12 u32 profile (0 amd64, 1 arm64)
 *  16  u32 control bytes             20 u32 max lazy runs
 *  24  f64 total pages               32 u32 checksum
 *  36  u32 reserved (0)              40 payload
 * Payload: the control buffer verbatim, then the meta and link buffers stored sparsely: for each
 * 4 KiB window, one flag byte (0 all zero, 1 stored) followed by the window when stored. Windows
 * that were never written are never stored, so untouched metadata stays out of snapshots too.
 * The checksum is FNV-1a over every byte but its own four: the header is covered too.
 * Version 1 (still restored) had no drainer table in the control buffer and a checksum over the
 * payload only; its header fields are checked against the control words like version 2's.
 *
 * `restore` trusts nothing: it checks the header, then the control words against the header and
 * against each other (counts, queue ends, segments, lazy runs, the drainer table), all in time
 * linear in the control block, builds the machine in fresh buffers, gives back lazy blocks that
 * drainers held when the snapshot was taken (a restored machine has no drainer), and runs
 * `verify()` (deep once started) on it. Only a machine that passes is returned; anything else is
 * a SnapshotError (ESNAPSHOT) and nothing outside the fresh buffers was touched.
 * Page records, when the machine keeps them, follow in a section of their own (see below).
 * Owned by the core; read-only over the allocator it snapshots.
 */
import { InvariantError, SnapshotError, VmPhysError } from './errors.js';
import {
  type ControlViews,
  CTL,
  controlBytes,
  controlBytesV1,
  controlViews,
  createPages,
  DEFAULT_MAX_RUNS,
  DRAINER_SLOTS,
  DRSLOT,
  queueCount,
  RUNF,
  SEGF,
} from './layout.js';
import { lazyReturnSlot } from './lazy.js';
import { type Layout, layoutToJson, parseLayoutJson } from './pagerec/layout.js';
import { PageRecords, type RecordsDescriptor } from './pagerec/records.js';
import { amd64, arm64, Pool, type Profile } from './params.js';
import { verify } from './verify.js';
import { VmPhys } from './vmphys.js';

const MAGIC = 'VMPHYSS1';
/** The format `snapshot` writes. */
export const SNAPSHOT_VERSION = 2;
const HEADER = 40;
/** Offset of the checksum word in the header. */
const SUM_AT = 32;
const WIN = 4096;
/** Control words per domain in the INITDONE and INFLIGHT arrays. */
const DOMAIN_WORDS = CTL.MODE - CTL.INITDONE;

/** FNV-1a over bytes [from, to), continuing from hash h. */
function fnv1a(bytes: Uint8Array, from: number, to: number, h = 0x811c9dc5): number {
  for (let i = from; i < to; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The checksum of a snapshot of `version`: v2 covers all bytes but the checksum word, v1 the payload. */
function checksum(bytes: Uint8Array, version: number): number {
  if (version === 1) return fnv1a(bytes, HEADER, bytes.length);
  return fnv1a(bytes, SUM_AT + 4, bytes.length, fnv1a(bytes, 0, SUM_AT));
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
  dv.setUint32(8, SNAPSHOT_VERSION, true);
  dv.setUint32(12, vm.profile.name === 'arm64' ? 1 : 0, true);
  dv.setUint32(16, control.length, true);
  dv.setUint32(20, s.c.maxRuns, true);
  dv.setFloat64(24, vm.totalPages, true);
  dv.setUint32(SUM_AT, checksum(out, SNAPSHOT_VERSION), true);
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
 * Rebuild an allocator from `snapshot` bytes (format 1 or 2). Rejects anything that is not a
 * whole, consistent snapshot with a SnapshotError (ESNAPSHOT) naming the problem: a non-byte
 * argument, corrupted, truncated or foreign data, a header that disagrees with the control words,
 * control words that disagree with each other, a state that fails verify(). The checks are
 * bounded (linear in the snapshot), so no input can make restore or the machine it returns
 * hang. The bytes are only read. The result makes the same choices the original would have
 * made; lazy blocks drainers held when the snapshot was taken are given back into DEFAULT first.
 */
export function restore(bytes: Uint8Array, opts: { shared?: boolean } = {}): VmPhys {
  if (!(bytes instanceof Uint8Array))
    throw new SnapshotError(
      `restore needs a snapshot's bytes (a Uint8Array), not ${bytes === null ? 'null' : typeof bytes}`,
    );
  if (bytes.length < HEADER) throw new SnapshotError('not a vmphys snapshot (too short)');
  for (let i = 0; i < 8; i++)
    if (bytes[i] !== MAGIC.charCodeAt(i)) throw new SnapshotError('not a vmphys snapshot (bad magic)');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(8, true);
  if (version !== 1 && version !== SNAPSHOT_VERSION)
    throw new SnapshotError(`snapshot format version ${version} is not supported (want 1 or ${SNAPSHOT_VERSION})`);
  if (checksum(bytes, version) !== dv.getUint32(SUM_AT, true))
    throw new SnapshotError('snapshot checksum mismatch (corrupted)');
  const prof = dv.getUint32(12, true);
  if (prof > 1) throw new SnapshotError(`snapshot names unknown profile ${prof}`);
  const profile = prof === 1 ? arm64 : amd64;
  const cbytes = dv.getUint32(16, true);
  const maxRuns = dv.getUint32(20, true);
  const totalPages = dv.getFloat64(24, true);
  if (maxRuns < 1 || maxRuns > 1 << 24) throw new SnapshotError('snapshot has an implausible lazy-run capacity');
  if (!Number.isInteger(totalPages) || totalPages < 0 || totalPages > 0x7ffffff0)
    throw new SnapshotError('snapshot has an implausible page count');
  if (version === SNAPSHOT_VERSION && dv.getUint32(36, true) !== 0)
    throw new SnapshotError('snapshot header: reserved word is not 0');
  const want = version === 1 ? controlBytesV1(profile, maxRuns) : controlBytes(profile, maxRuns);
  if (cbytes !== want)
    throw new SnapshotError(
      `snapshot control block is ${cbytes} bytes; a ${profile.name} machine with ${maxRuns} lazy runs has ${want}`,
    );
  if (HEADER + cbytes > bytes.length) throw new SnapshotError('snapshot is truncated (control block)');
  // Restore into fresh buffers: nothing the caller has is touched until the machine is checked.
  const shared = opts.shared ?? true;
  const size = controlBytes(profile, maxRuns);
  const cbuf = shared ? new SharedArrayBuffer(size) : new ArrayBuffer(size);
  const c = controlViews(profile, cbuf, maxRuns);
  new Uint8Array(cbuf).set(bytes.subarray(HEADER, HEADER + cbytes));
  checkControl(c, profile, totalPages, prof, version);
  // A snapshot is taken with every domain lock held; the restored machine starts unlocked, with
  // no drainer (the rows' blocks are given back below).
  c.locks.fill(0);
  c.ctl[CTL.DRAINERS] = 0;
  const pages = createPages(totalPages, shared);
  let off = HEADER + cbytes;
  off = unsparse(bytes, off, new Uint8Array(pages.metaBuffer as ArrayBuffer));
  off = unsparse(bytes, off, new Uint8Array(pages.linkBuffer as ArrayBuffer));
  const rec = restoreRecords(bytes, off, totalPages, profile.pageSize, shared);
  off = rec.off;
  if (off !== bytes.length) throw new SnapshotError('snapshot has trailing bytes');
  c.ctl[CTL.SHARED] = shared ? 1 : 0;
  let vm: VmPhys;
  try {
    vm = new VmPhys({ profile, shared, maxRuns }, c, pages, rec.records);
    const t = c.drainers;
    for (let r = 0; r < DRAINER_SLOTS; r++) {
      const b = r * DRSLOT.SIZE;
      if (t[b + DRSLOT.N] > t[b + DRSLOT.FIRST]) lazyReturnSlot(vm.state, r);
    }
    t.fill(0);
    verify(vm, { deep: c.ctl[CTL.PHASE] === 2 });
  } catch (e) {
    if (e instanceof InvariantError) throw new SnapshotError(`snapshot state is inconsistent: ${e.message}`);
    if (e instanceof VmPhysError) throw new SnapshotError(`snapshot state is unusable: ${e.message}`);
    throw new SnapshotError(`snapshot state is unusable: ${(e as Error).message}`);
  }
  return vm;
}

/**
 * The control words of a snapshot, checked against its header and against each other before
 * anything reads them as indices: every later walk (verify's, the allocator's) is then bounded.
 */
function checkControl(c: ControlViews, p: Profile, totalPages: number, prof: number, version: number): void {
  const ctl = c.ctl;
  const bad = (what: string): never => {
    throw new SnapshotError(`snapshot control block: ${what}`);
  };
  const within = (v: number, lo: number, hi: number, name: string): void => {
    if (!(Number.isInteger(v) && v >= lo && v <= hi)) bad(`${name} is ${v}, outside ${lo}..${hi}`);
  };
  if (ctl[CTL.PROFILE] !== prof) bad(`profile word ${ctl[CTL.PROFILE]} disagrees with the header's ${prof}`);
  if (ctl[CTL.TOTAL_PAGES] !== totalPages)
    bad(`${ctl[CTL.TOTAL_PAGES]} pages in the control words, ${totalPages} in the header`);
  const phase = ctl[CTL.PHASE];
  within(phase, 0, 2, 'the phase');
  within(ctl[CTL.MODE], phase === 2 ? 0 : -1, phase === 2 ? 1 : -1, 'the start-up mode');
  within(ctl[CTL.NSEGS], 0, p.physSegMax, 'NSEGS');
  within(ctl[CTL.NRAWSEGS], 0, p.physSegMax, 'NRAWSEGS');
  within(ctl[CTL.NDOMAINS], phase >= 1 ? 1 : 0, p.maxMemDom, 'NDOMAINS');
  within(ctl[CTL.NFREELISTS], 0, p.nFreeList, 'NFREELISTS');
  within(ctl[CTL.NAFFINITY], 0, p.physSegMax, 'NAFFINITY');
  within(ctl[CTL.NAVAIL], 0, p.physAvailMax, 'NAVAIL');
  within(ctl[CTL.NRUNS], 0, c.maxRuns, 'NRUNS');
  within(ctl[CTL.DEFAULT_FREEPOOL], Pool.LAZYINIT, Pool.DEFAULT, 'vm_default_freepool');
  for (let f = 0; f < CTL.INITDONE - CTL.FL_TO_FLIND; f++)
    within(ctl[CTL.FL_TO_FLIND + f], -1, p.nFreeList - 1, `vm_freelist_to_flind[${f}]`);
  for (let d = 0; d < DOMAIN_WORDS; d++) {
    within(ctl[CTL.INITDONE + d], 0, 1, `initdone[${d}]`);
    within(ctl[CTL.INFLIGHT + d], 0, totalPages, `pages in flight in domain ${d}`);
  }
  if (phase < 1 && totalPages !== 0) bad(`${totalPages} pages before init`);
  const ndom = Math.max(1, ctl[CTL.NDOMAINS]);
  // Segments: page aligned, sorted, disjoint, packed page indices ending at the page count.
  const nsegs = ctl[CTL.NSEGS];
  let end = 0;
  for (let i = 0; i < nsegs; i++) {
    const b = i * SEGF.SIZE;
    const a = c.segs[b + SEGF.START];
    const z = c.segs[b + SEGF.END];
    if (!(Number.isSafeInteger(a) && Number.isSafeInteger(z) && a < z && a % p.pageSize === 0 && z % p.pageSize === 0))
      bad(`segment ${i} [${a}, ${z}) is not a page-aligned range`);
    if (i > 0 && c.segs[b - SEGF.SIZE + SEGF.END] > a) bad(`segments ${i - 1} and ${i} overlap or are unsorted`);
    if (phase >= 1) {
      if (c.segs[b + SEGF.FIRST] !== end)
        bad(`segment ${i} starts at page index ${c.segs[b + SEGF.FIRST]}, not ${end}`);
      end += (z - a) / p.pageSize;
      if (end > totalPages) bad(`segment ${i} ends beyond the ${totalPages} pages`);
      within(c.segs[b + SEGF.DOMAIN], 0, ndom - 1, `segment ${i}'s domain`);
      within(c.segs[b + SEGF.FLIND], 0, Math.max(0, ctl[CTL.NFREELISTS] - 1), `segment ${i}'s free list`);
    }
  }
  if (phase >= 1 && end !== totalPages) bad(`the segments hold ${end} pages, not ${totalPages}`);
  // Queues: counts, heads and tails in range and agreeing; no more free pages than pages.
  const w = new Int32Array(c.buffer, 0, c.buffer.byteLength >> 2);
  const nq = queueCount(p);
  let free = 0;
  for (let q = 0; q < nq; q++) {
    const n = w[c.oCount + q];
    const h = w[c.oHead + q];
    const t = w[c.oTail + q];
    within(n, 0, totalPages, `queue ${q}'s count`);
    within(h, -1, totalPages - 1, `queue ${q}'s head`);
    within(t, -1, totalPages - 1, `queue ${q}'s tail`);
    if ((n === 0) !== h < 0 || h < 0 !== t < 0) bad(`queue ${q}: count ${n}, head ${h}, tail ${t} disagree`);
    free += n * 2 ** (q % p.nFreeOrder);
  }
  if (free > totalPages) bad(`the queues hold ${free} free pages, more than the ${totalPages} pages`);
  // Lazy runs: sorted, disjoint, whole max-order chunks inside the pages, on max-order queues.
  const cp = 2 ** (p.nFreeOrder - 1);
  const nruns = ctl[CTL.NRUNS];
  for (let r = 0; r < nruns; r++) {
    const b = r * RUNF.SIZE;
    const a = c.runs[b + RUNF.START];
    const z = c.runs[b + RUNF.END];
    if (!(a >= 0 && a < z && z <= totalPages && (z - a) % cp === 0)) bad(`lazy run ${r} [${a}, ${z}) is malformed`);
    if (r > 0 && c.runs[b - RUNF.SIZE + RUNF.END] > a) bad(`lazy runs ${r - 1} and ${r} overlap or are unsorted`);
    within(c.runs[b + RUNF.QUEUE], 0, nq - 1, `lazy run ${r}'s queue`);
    if (c.runs[b + RUNF.QUEUE] % p.nFreeOrder !== p.nFreeOrder - 1)
      bad(`lazy run ${r} is on a queue below the maximum order`);
    within(c.runs[b + RUNF.NEXT], -1, nruns - 1, `lazy run ${r}'s next`);
    within(c.runs[b + RUNF.PREV], -1, nruns - 1, `lazy run ${r}'s prev`);
    within(c.runs[b + RUNF.TOUCHED], 0, 2, `lazy run ${r}'s state`);
  }
  // The drainer table accounts for every page in flight (format 1 has no table: none in flight).
  const inflight = new Float64Array(DOMAIN_WORDS);
  if (version >= 2) {
    const t = c.drainers;
    for (let r = 0; r < DRAINER_SLOTS; r++) {
      const b = r * DRSLOT.SIZE;
      const first = t[b + DRSLOT.FIRST];
      const n = t[b + DRSLOT.N];
      within(n, 0, DRSLOT.MAX_BLOCKS, `drainer row ${r}'s block count`);
      within(first, 0, n, `drainer row ${r}'s first block`);
      if (n === first) continue;
      const d = t[b + DRSLOT.DOMAIN];
      within(d, 0, ndom - 1, `drainer row ${r}'s domain`);
      for (let i = first; i < n; i++) {
        const idx = t[b + DRSLOT.BLOCKS + 2 * i];
        const order = t[b + DRSLOT.BLOCKS + 2 * i + 1];
        within(order, 0, p.nFreeOrder - 1, `drainer row ${r}'s block order`);
        within(idx, 0, totalPages - 2 ** order, `drainer row ${r}'s block index`);
        inflight[d] += 2 ** order;
      }
    }
  }
  for (let d = 0; d < DOMAIN_WORDS; d++)
    if (inflight[d] !== ctl[CTL.INFLIGHT + d])
      bad(`domain ${d} has ${ctl[CTL.INFLIGHT + d]} pages in flight, its drainer rows list ${inflight[d]}`);
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
