/**
 * The golden-vector script language (docs/script-language.md): one command per line,
 * one output line per command (`dump` and `segs` print a block ending in END). Uses only the
 * public API, like any other caller. A bad line prints `error: CODE: message` and the script
 * goes on; `errors` counts them.
 */
import { allocContig } from '../core/contig.js';
import { hex, VmPhysError } from '../core/errors.js';
import type { PageStructOption } from '../core/pagerec/wire.js';
import { FreeList, Pool, profileByName } from '../core/params.js';
import { physFree, segsSummary } from '../core/sysctl.js';
import { VmPhys } from '../core/vmphys.js';

/** A script error that is not the allocator's (syntax, unknown command). */
export class ScriptError extends VmPhysError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}

/** Parse a number field: decimal, 0x-hex, or -1. Values above 2^53 stay approximate (limits). */
export function parseNum(tok: string | undefined, what: string): number {
  if (tok === undefined) throw new ScriptError('ESYNTAX', `missing ${what}`);
  if (/^0x[0-9a-fA-F]+$/.test(tok)) return Number(BigInt(tok));
  if (/^-?[0-9]+$/.test(tok)) return Number(tok);
  throw new ScriptError('ESYNTAX', `${what} '${tok}' is not a number`);
}

const POOLS: Record<string, number> = { default: Pool.DEFAULT, direct: Pool.DIRECT, lazyinit: Pool.LAZYINIT };

function parsePool(tok: string | undefined): number {
  if (tok === undefined) throw new ScriptError('ESYNTAX', 'missing POOL');
  const p = POOLS[tok];
  if (p === undefined) throw new ScriptError('EPOOL', `unknown pool '${tok}' (default or direct)`);
  return p;
}

function parseFreelist(vm: VmPhys, tok: string | undefined): number {
  const names: Record<string, number> = { default: FreeList.DEFAULT, dma32: FreeList.DMA32, lowmem: FreeList.LOWMEM };
  if (tok === undefined) throw new ScriptError('ESYNTAX', 'missing FREELIST');
  const f = names[tok];
  if (f === undefined || f >= vm.nFl)
    throw new ScriptError('EFREELIST', `free list '${tok}' does not exist on ${vm.profile.name}`);
  return f;
}

/** VMPHYS_PAGE_STRUCT, where the runtime has an environment ('freebsd' or 'none'; else undefined). */
function envPageStruct(): PageStructOption | undefined {
  const v = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.VMPHYS_PAGE_STRUCT;
  return v === 'freebsd' || v === 'none' ? v : undefined;
}

/** Hooks the CLI adds (snapshot files); the core script has none. */
export interface ScriptHooks {
  snapshot?(vm: VmPhys, file: string): void;
  restore?(vm: VmPhys, file: string): VmPhys;
}

/** Interpreter state: the allocator (created at the first non-profile command) and the domain. */
export class ScriptRunner {
  vm: VmPhys | null = null;
  domain = 0;
  errors = 0;
  line = 0;
  private profileName = 'amd64';
  private seenCommand = false;
  private npagesBuf: number[] = [];
  private readonly hooks: ScriptHooks;
  private readonly shared: boolean;
  private readonly pageStruct: PageStructOption | undefined;
  /**
   * `pageStruct`: page records for the machine the script builds (VmPhysOptions.pageStruct);
   * default: the VMPHYS_PAGE_STRUCT environment variable when it says 'freebsd' or 'none',
   * else none. Records never change a script's output.
   */
  constructor(hooks: ScriptHooks = {}, shared = false, pageStruct?: PageStructOption) {
    this.hooks = hooks;
    this.shared = shared;
    this.pageStruct = pageStruct ?? envPageStruct();
  }

  private machine(): VmPhys {
    if (!this.vm)
      this.vm = new VmPhys({
        profile: profileByName(this.profileName),
        shared: this.shared,
        pageStruct: this.pageStruct,
      });
    return this.vm;
  }

  /** Called for each failed line with (line number, error); the CLI prints FILE:LINE on stderr. */
  onError?: (line: number, e: VmPhysError) => void;

  /** Run one line; returns its output (with trailing newline) or '' for comments. */
  exec(raw: string): string {
    this.line++;
    const text = raw.trim();
    if (text === '' || text.startsWith('#')) return '';
    try {
      return this.command(text.split(/\s+/));
    } catch (e) {
      if (e instanceof VmPhysError) {
        this.errors++;
        this.onError?.(this.line, e);
        return `error: ${e.code}: ${e.message}\n`;
      }
      throw e;
    }
  }

  /** Run a whole script text; returns the output. */
  run(text: string): string {
    const out: string[] = [];
    for (const line of text.split('\n')) out.push(this.exec(line));
    return out.join('');
  }

  private command(f: string[]): string {
    const cmd = f[0];
    const args = f.length - 1;
    const want = (n: number) => {
      if (args !== n) throw new ScriptError('ESYNTAX', `${cmd} takes ${n} argument(s), got ${args}`);
    };
    if (cmd === 'profile') {
      want(1);
      if (this.seenCommand) throw new ScriptError('ESTATE', 'profile must be the first command');
      if (f[1] !== 'amd64' && f[1] !== 'arm64')
        throw new ScriptError('EPROFILE', `unknown profile '${f[1]}' (amd64 or arm64)`);
      this.profileName = f[1];
      this.seenCommand = true;
      return 'ok\n';
    }
    this.seenCommand = true;
    const vm = this.machine();
    switch (cmd) {
      case 'affinity':
        want(3);
        vm.addAffinity(parseNum(f[1], 'START'), parseNum(f[2], 'END'), parseNum(f[3], 'D'));
        return 'ok\n';
      case 'seg':
        want(2);
        vm.addSeg(parseNum(f[1], 'START'), parseNum(f[2], 'END'));
        return 'ok\n';
      case 'avail':
        want(2);
        vm.addAvail(parseNum(f[1], 'START'), parseNum(f[2], 'END'));
        return 'ok\n';
      case 'init':
        want(0);
        vm.init();
        return 'ok\n';
      case 'segs':
        want(0);
        if (vm.phase < 1) throw new ScriptError('ESTATE', 'segs before init');
        return `${segsSummary(vm)}END\n`;
      case 'startup': {
        want(1);
        if (f[1] !== 'lazy' && f[1] !== 'eager')
          throw new ScriptError('ESYNTAX', `startup mode '${f[1]}' (lazy or eager)`);
        vm.startup(f[1]);
        return 'ok\n';
      }
      case 'domain': {
        want(1);
        const d = parseNum(f[1], 'D');
        if (!Number.isInteger(d) || d < 0 || d >= vm.ndomains)
          throw new ScriptError('EDOMAIN', `domain ${d} is outside 0..${vm.ndomains - 1}`);
        this.domain = d;
        return 'ok\n';
      }
      case 'alloc': {
        want(2);
        const r = vm.allocPages(this.domain, parsePool(f[1]), parseNum(f[2], 'ORDER'));
        return r === null ? 'NULL\n' : `${hex(r)}\n`;
      }
      case 'freelist_alloc': {
        want(3);
        const r = vm.allocFreelistPages(this.domain, parseFreelist(vm, f[1]), parsePool(f[2]), parseNum(f[3], 'ORDER'));
        return r === null ? 'NULL\n' : `${hex(r)}\n`;
      }
      case 'npages': {
        want(2);
        const n = parseNum(f[2], 'N');
        const pool = parsePool(f[1]);
        if (this.npagesBuf.length < n && Number.isInteger(n) && n > 0 && n <= 1 << 20) this.npagesBuf.length = n;
        const got = vm.allocNpages(this.domain, pool, n, this.npagesBuf);
        let s = String(got);
        for (let i = 0; i < got; i++) s += ` ${hex(this.npagesBuf[i])}`;
        return `${s}\n`;
      }
      case 'free':
        want(3);
        vm.freePages(parseNum(f[1], 'ADDR'), parsePool(f[3]), parseNum(f[2], 'ORDER'));
        return 'ok\n';
      case 'contig': {
        want(5);
        const r = allocContig(
          vm,
          this.domain,
          parseNum(f[1], 'N'),
          parseNum(f[2], 'LOW'),
          parseNum(f[3], 'HIGH'),
          parseNum(f[4], 'ALIGN'),
          parseNum(f[5], 'BOUNDARY'),
        );
        return r === null ? 'NULL\n' : `${hex(r)}\n`;
      }
      case 'free_contig':
        want(3);
        vm.freeContig(parseNum(f[1], 'ADDR'), parsePool(f[3]), parseNum(f[2], 'N'));
        return 'ok\n';
      case 'unfree':
        want(1);
        return vm.unfreePage(parseNum(f[1], 'ADDR')) ? 'true\n' : 'false\n';
      case 'find_range': {
        want(4);
        const r = vm.findRange(
          parseNum(f[1], 'SEGIND'),
          this.domain,
          parseNum(f[2], 'N'),
          parseNum(f[3], 'LOW'),
          parseNum(f[4], 'HIGH'),
        );
        return r === null ? '-1\n' : `${r.segind} ${hex(r.start)} ${hex(r.end)}\n`;
      }
      case 'drain':
        want(0);
        vm.drain();
        return 'ok\n';
      case 'drain_domain':
        want(1);
        vm.drainDomain(parseNum(f[1], 'D'));
        return 'ok\n';
      case 'domain_match':
        want(3);
        return `${vm.domainMatch(parseNum(f[1], 'PREFER'), parseNum(f[2], 'LOW'), parseNum(f[3], 'HIGH'))}\n`;
      case 'dump':
        want(0);
        if (vm.phase < 1) throw new ScriptError('ESTATE', 'dump before init');
        return `${physFree(vm)}END\n`;
      case 'counts':
      case 'counts_domain': {
        want(cmd === 'counts' ? 0 : 1);
        const c = cmd === 'counts' ? vm.counts() : vm.counts(parseNum(f[1], 'D'));
        return `lazyinit=${c.lazyinit} default=${c.default} direct=${c.direct} total=${c.total}\n`;
      }
      case 'snapshot':
      case 'restore': {
        want(1);
        const h = cmd === 'snapshot' ? this.hooks.snapshot : this.hooks.restore;
        if (!h) throw new ScriptError('ENOTSUP', `${cmd} is not available here`);
        try {
          if (cmd === 'snapshot') this.hooks.snapshot?.(vm, f[1]);
          else if (this.hooks.restore) this.vm = this.hooks.restore(vm, f[1]);
        } catch (e) {
          // A hook's own failure (a file that cannot be written or read) is this line's error.
          if (e instanceof VmPhysError) throw e;
          throw new ScriptError('EIO', `${cmd} ${f[1]}: ${(e as Error).message}`);
        }
        return 'ok\n';
      }
      default:
        throw new ScriptError('ECOMMAND', `unknown command '${cmd}'`);
    }
  }
}
