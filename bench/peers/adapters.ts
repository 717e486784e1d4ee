/**
 * The allocators the benchmarks compare, behind one small interface, and a generic trace
 * replay driver over it. Owned by the benchmark work (bench/). Each benchmark runs one adapter
 * per child process, so the driver's calls stay monomorphic.
 */
import { MemPool } from '@thi.ng/malloc';
import { buildMachine, type MachineMapLike } from '../../src/boot/startup.js';
import { allocFreelistIdx, allocPagesIdx, freeIdx } from '../../src/core/buddy.js';
import { FreeList, Pool } from '../../src/core/params.js';
import { idxIn, segOfPa } from '../../src/core/segments.js';
import type { VmPhys } from '../../src/core/vmphys.js';
import { type TraceEvents, TraceFlag } from '../../src/trace/parse.js';
import { PIECE, TraceBook } from '../../src/trace/replay.js';
import { LockedVmPhys } from '../../src/workers/locked.js';
import { PcpuCache } from '../../src/workers/pcpu.js';
import { FreeStack } from './free-stack.js';
import { NaiveBuddy } from './naive-buddy.js';

/** What the benchmarks need of an allocator of 4 KiB pages in 2^order blocks. */
export interface PeerAllocator {
  readonly name: string;
  /** True when `free` may release an aligned part of an allocated block (handle + offset). */
  readonly freesParts: boolean;
  /** A new block: an int32 handle ≥ 0 (page number for page allocators), or -1. */
  alloc(order: number, pool: number, freelist: number): number;
  /** Free a block (or, when freesParts, the 2^order part at handle) allocated in `pool`. */
  free(handle: number, order: number, pool: number): void;
}

/** Any free list: vm_phys_alloc_pages. */
export const ANY_FREELIST = -1;

/** vmphys through the unvalidated index API (what the replayer uses). */
export class VmPhysIdxPeer implements PeerAllocator {
  readonly name = 'vmphys (index API)';
  readonly freesParts = true;
  readonly vm: VmPhys;
  private readonly nFl: number;
  constructor(vm: VmPhys) {
    this.vm = vm;
    this.nFl = vm.nFl;
  }
  alloc(order: number, pool: number, freelist: number): number {
    if (freelist < 0) return allocPagesIdx(this.vm.state, 0, pool, order);
    return this.vm.flindOf(freelist) >= 0
      ? allocFreelistIdx(this.vm.state, 0, freelist, pool, order)
      : allocPagesIdx(this.vm.state, 0, pool, order);
  }
  free(handle: number, order: number, pool: number): void {
    freeIdx(this.vm.state, handle, pool, order);
  }
}

/** vmphys through the validated public API (addresses; handle = pa / 4096). */
export class VmPhysPublicPeer implements PeerAllocator {
  readonly name = 'vmphys (public API)';
  readonly freesParts = true;
  readonly vm: VmPhys;
  constructor(vm: VmPhys) {
    this.vm = vm;
  }
  alloc(order: number, pool: number, freelist: number): number {
    const pa =
      freelist >= 0 && this.vm.flindOf(freelist) >= 0
        ? this.vm.allocFreelistPages(0, freelist, pool, order)
        : this.vm.allocPages(0, pool, order);
    return pa === null ? -1 : pa / 4096;
  }
  free(handle: number, order: number, pool: number): void {
    this.vm.freePages(handle * 4096, pool, order);
  }
}

/** The object-per-block buddy allocator (bench/peers/naive-buddy.ts). */
export class NaiveBuddyPeer implements PeerAllocator {
  readonly name = 'naive buddy (objects, Sets)';
  readonly freesParts = true;
  private readonly b: NaiveBuddy;
  constructor(totalPages: number) {
    this.b = new NaiveBuddy(totalPages);
  }
  alloc(order: number): number {
    return this.b.alloc(order);
  }
  free(handle: number, order: number): void {
    this.b.free(handle, order);
  }
}

/** Segregated free stacks (bench/peers/free-stack.ts): the floor. */
export class FreeStackPeer implements PeerAllocator {
  readonly name = 'free stack (floor)';
  readonly freesParts = true;
  private readonly s: FreeStack;
  constructor(totalPages: number) {
    this.s = new FreeStack(totalPages);
  }
  alloc(order: number): number {
    return this.s.alloc(order);
  }
  free(handle: number, order: number): void {
    this.s.free(handle, order);
  }
}

/**
 * @thi.ng/malloc's MemPool serving 4 KiB × 2^order byte blocks from one ArrayBuffer (its
 * addresses are uint32, so at most 4 GiB − 4 KiB of blocks; only block headers are written, so
 * the buffer stays mostly untouched). Handle = byte address / 8 (addresses are 8-aligned).
 */
export class ThingPeer implements PeerAllocator {
  readonly name = '@thi.ng/malloc MemPool';
  readonly freesParts = false;
  private readonly pool: MemPool;
  constructor(bytes = 2 ** 32 - 4096) {
    this.pool = new MemPool({ size: bytes });
  }
  alloc(order: number): number {
    const a = this.pool.malloc(4096 << order);
    return a === 0 ? -1 : a / 8;
  }
  free(handle: number): void {
    this.pool.free(handle * 8);
  }
}

/**
 * vmphys as FreeBSD serves order-0 pages: through a per-CPU page cache (src/workers/pcpu.ts, the
 * pgcache zones of vm_page_alloc), refilled with vm_phys_alloc_npages and drained with
 * vm_phys_free_pages in batches of 64 under the domain lock; other orders go to vm_phys under
 * the lock, through the cache's index API. Frees are checked (the page must be allocated; a
 * double free inside the cache is caught when its batch reaches vm_phys). Handle = page index. Not exact
 * mode: the cache changes which addresses come back, as pgcache does in the kernel.
 */
export class VmPhysPcpuPeer implements PeerAllocator {
  readonly name = 'vmphys + per-CPU page cache';
  readonly freesParts = true;
  readonly locked: LockedVmPhys;
  readonly cache: PcpuCache;
  constructor(vm: VmPhys) {
    this.locked = new LockedVmPhys(vm);
    this.cache = new PcpuCache(this.locked);
  }
  alloc(order: number, pool: number, freelist: number): number {
    if (order === 0 && freelist < 0) return this.cache.allocIdx(0, pool);
    const pa =
      freelist >= 0 && this.locked.vm.flindOf(freelist) >= 0
        ? this.locked.allocFreelistPages(0, freelist, pool, order)
        : this.locked.allocPages(0, pool, order);
    return pa === null ? -1 : idxIn(this.locked.vm.state, segOfPa(this.locked.vm.state, pa), pa);
  }
  free(handle: number, order: number, pool: number): void {
    if (order === 0) this.cache.freeIdx(handle, pool);
    else this.locked.freePages(this.locked.vm.paOf(handle), pool, order);
  }
}

/** Peer names accepted by `makePeer`. */
export const PEER_KINDS = ['vmphys-idx', 'vmphys-public', 'vmphys-pcpu', 'naive-buddy', 'free-stack', 'thing'] as const;
export type PeerKind = (typeof PEER_KINDS)[number];

/**
 * A fresh allocator of the given kind. vmphys kinds boot `map` (default the 128 GiB traced VM)
 * in `mode`; the page-number peers get the same number of pages as one flat range; thi.ng gets
 * its largest buffer.
 */
export function makePeer(kind: PeerKind, map?: MachineMapLike, mode: 'lazy' | 'eager' = 'lazy'): PeerAllocator {
  if (kind === 'vmphys-idx') return new VmPhysIdxPeer(buildMachine(map, mode));
  if (kind === 'vmphys-public') return new VmPhysPublicPeer(buildMachine(map, mode));
  if (kind === 'vmphys-pcpu') return new VmPhysPcpuPeer(buildMachine(map, mode));
  if (kind === 'thing') return new ThingPeer();
  const pages = buildMachine(map, 'lazy').totalPages;
  return kind === 'naive-buddy' ? new NaiveBuddyPeer(pages) : new FreeStackPeer(pages);
}

/** Parallel event arrays of a pre-parsed trace (see bench/util.ts `loadTrace`). */
export type { TraceEvents };

/** Counters of `replayThrough`. */
export interface DriverCounts {
  events: number;
  allocs: number;
  frees: number;
  skippedFrees: number;
  failedAllocs: number;
  seconds: number;
}

/**
 * Replay events [0, ev.count) through any peer with the replayer's rules and the replayer's own
 * bookkeeping (`TraceBook` from src/trace/replay.ts: same pfn table, cover filter and split
 * handling) and the same pool/free-list mapping. A peer that cannot free parts of a block gets
 * the whole block back when its last part is freed. Timed with performance.now() around the loop.
 */
export function replayThrough(peer: PeerAllocator, ev: TraceEvents): DriverCounts {
  const book = new TraceBook();
  const table = book.table;
  const parts = peer.freesParts;
  /** Blocks split while the peer can only free whole blocks: pages still live, by handle. */
  const left = new Map<number, { pages: number; order: number }>();
  let allocs = 0;
  let frees = 0;
  let skipped = 0;
  let failed = 0;
  const { op, pfn, order, flags } = ev;
  const t0 = performance.now();
  for (let i = 0; i < ev.count; i++) {
    const p = pfn[i];
    const o = order[i];
    if (op[i] === 0) {
      allocs++;
      const s = book.find(p);
      if (s >= 0) freeWhole(s);
      const fl = flags[i];
      const pool = (fl & TraceFlag.MOVABLE) !== 0 ? Pool.DEFAULT : Pool.DIRECT;
      const list =
        (fl & TraceFlag.DMA) !== 0 ? FreeList.LOWMEM : (fl & TraceFlag.DMA32) !== 0 ? FreeList.DMA32 : ANY_FREELIST;
      const h = o > 12 ? -1 : peer.alloc(o, pool, list);
      if (h < 0) failed++;
      else book.add(p, h, o | (pool << 4));
      continue;
    }
    frees++;
    let s = book.find(p);
    if (s >= 0) {
      const ko = table.infoAt(s) & 15;
      if (ko === o) {
        freeWhole(s);
        continue;
      }
      if (ko < o) s = -1;
    } else s = book.cover(p, o);
    if (s < 0) {
      skipped++;
      continue;
    }
    // A part of a larger block.
    const info = table.infoAt(s);
    if (!parts && (info & PIECE) === 0) left.set(table.addrAt(s), { pages: 2 ** (info & 15), order: info & 15 });
    const h = book.splitOut(s, p, o, !parts);
    release(h, o, info);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { events: ev.count, allocs, frees, skippedFrees: skipped, failedAllocs: failed, seconds };

  function freeWhole(s: number): void {
    const h = table.addrAt(s);
    const info = table.infoAt(s);
    book.remove(s);
    release(h, info & 15, info);
  }
  function release(h: number, o: number, info: number): void {
    const rec = parts ? undefined : left.get(h);
    if (rec === undefined) {
      peer.free(h, o, (info >> 4) & 15);
      return;
    }
    // A part of a block the peer can only free whole: count it down, free the block at zero.
    rec.pages -= 2 ** o;
    if (rec.pages === 0) {
      left.delete(h);
      peer.free(h, rec.order, (info >> 4) & 15);
    }
  }
}
