/**
 * `vmphys viz [--map FILE | --ram SIZE] [--port N] ...`: serve the live visualiser (the Vite
 * build in viz/dist) with the cross-origin isolation headers SharedArrayBuffer needs, plus two
 * endpoints: `/config.json` (the memory map, start-up mode, profile, blacklist and trace facts)
 * and `/trace?limit=N` (the trace's first N events, parsed here with readTraceEvents, as binary
 * arrays: see viz/src/protocol.ts). Prints the URL it serves as its first line of output, then
 * runs until SIGINT/SIGTERM. Owned by the viz work (issue 8); the dispatcher (main.ts) loads it.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, extname, join, normalize, sep } from 'node:path';
import type { MemMap } from '../boot/memmap.js';
import { firecrackerMap } from '../boot/ramspec.js';
import { bootFromMap } from '../boot/startup.js';
import { readTraceEvents, TraceParseError } from '../trace/parse.js';
import { exclusive, parseArgs, UsageError } from './args.js';
import { jobProfile } from './boot-child.js';
import { CliFailure, fmtBytes, intOption, parseAddrs, ramOption, readMapFile } from './common.js';
import { DEFAULT_TRACE, repoRoot } from './paths.js';

const USAGE = `usage: vmphys viz [--map FILE | --ram SIZE] [--port N] [--host ADDR] [--mode lazy|eager]
                 [--trace FILE] [--early N] [--trace-limit N] [--blacklist ADDR,...] [--profile P]
  --map FILE        memory map (iomem, e820, FreeBSD boot output or JSON; see vmphys boot)
  --ram SIZE        a Firecracker guest of SIZE (default 1G when no --map)
  --port N          port to listen on (default 8737; 0 picks a free one)
  --host ADDR       address to listen on (default 127.0.0.1)
  --mode M          start-up mode the page boots first: lazy (default) or eager
  --trace FILE      trace for the workloads (default: data/traces/linux-6.18-mixed-B.csv.xz)
  --early N         events of the early-boot workload (default 20000)
  --trace-limit N   most trace events handed to the page (default: all)
  --blacklist A,..  physical addresses to blacklist at boot (vm.blacklist)
  --profile P       amd64, arm64 or auto (default auto: arm64 for maps with a UEFI table)
Prints the URL as its first line; Ctrl-C stops the server.
`;

const DEFAULT_PORT = 8737;

/** Parallel event arrays of a trace prefix. */
interface Events {
  count: number;
  /** True when the whole file was read (count is every event). */
  complete: boolean;
  op: Uint8Array;
  pfn: Float64Array;
  order: Uint8Array;
  flags: Uint8Array;
}

/** What the page gets from /config.json (viz/src/protocol.ts VizConfig). */
interface VizConfig {
  mapName: string;
  map: MemMap;
  mode: 'lazy' | 'eager';
  profile: 'amd64' | 'arm64';
  blacklist: number[];
  trace: { available: boolean; name: string; earlyEvents: number; maxEvents: number };
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** Headers every response carries: cross-origin isolation (SharedArrayBuffer) and no sniffing. */
const ISOLATION = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
};

/** The trace event source: parses prefixes on demand and keeps the longest one. */
class TraceSource {
  readonly file: string;
  private cache: Events | null = null;
  private pending: Promise<Events> = Promise.resolve(null as unknown as Events);
  constructor(file: string) {
    this.file = file;
  }

  /** The first `limit` events (fewer when the trace is shorter). */
  get(limit: number): Promise<Events> {
    this.pending = this.pending
      .catch(() => null)
      .then(async () => {
        const c = this.cache;
        if (c !== null && (c.count >= limit || c.complete)) return c;
        const all = await readTraceEvents(this.file, limit);
        const ev: Events = { ...all, complete: all.count < limit };
        this.cache = ev;
        return ev;
      });
    return this.pending;
  }
}

/** The /trace body for the first n events of ev (layout in viz/src/protocol.ts). */
export function encodeTrace(ev: Events, n: number): Buffer {
  const count = Math.min(n, ev.count);
  const buf = Buffer.alloc(8 + 11 * count);
  buf.write('VMTR', 0, 'latin1');
  buf.writeUInt32LE(count, 4);
  const pfn = new Float64Array(buf.buffer, buf.byteOffset + 8, count);
  pfn.set(ev.pfn.subarray(0, count));
  buf.set(ev.op.subarray(0, count), 8 + 8 * count);
  buf.set(ev.order.subarray(0, count), 8 + 9 * count);
  buf.set(ev.flags.subarray(0, count), 8 + 10 * count);
  return buf;
}

/** Entry point of `vmphys viz`. Resolves (with the exit status) when the server stops. */
export async function main(args: string[]): Promise<number> {
  let config: VizConfig;
  let port: number;
  let host: string;
  let traceSource: TraceSource | null = null;
  const dist = join(repoRoot(), 'viz', 'dist');
  const a = parseArgs(args, {
    values: ['map', 'ram', 'port', 'host', 'mode', 'trace', 'early', 'trace-limit', 'blacklist', 'profile'],
    flags: [],
  });
  if (a.flags.has('help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  exclusive(a, 'map', 'ram');
  const mode = a.values.get('mode') ?? 'lazy';
  if (mode !== 'lazy' && mode !== 'eager') throw new UsageError(`--mode must be lazy or eager, not '${mode}'`);
  port = intOption(a.values.get('port'), 'port', DEFAULT_PORT);
  if (port > 65535) throw new UsageError(`--port must be 0..65535, not ${port}`);
  host = a.values.get('host') ?? '127.0.0.1';
  const early = intOption(a.values.get('early'), 'early', 20000, 1);
  const traceLimit = intOption(a.values.get('trace-limit'), 'trace-limit', 0);
  const file = a.values.get('map');
  const m = file !== undefined ? readMapFile(file) : undefined;
  let map: MemMap;
  let mapName: string;
  if (m !== undefined) {
    map = m.map;
    mapName = basename(file as string);
  } else {
    const ram = ramOption(a.values.get('ram') ?? '1G', 'ram');
    map = firecrackerMap(ram);
    mapName = `firecracker ${fmtBytes(ram)}`;
  }
  const profile = jobProfile(a.values.get('profile'), m?.text);
  const blacklist = a.values.has('blacklist') ? parseAddrs(a.values.get('blacklist') as string, '--blacklist') : [];
  // Boot once here: a map the allocator rejects is reported now, not in the browser.
  bootFromMap(map, { mode, profile, blacklist, shared: false });
  const traceFile = a.values.get('trace') ?? DEFAULT_TRACE;
  const haveTrace = existsSync(traceFile) && statSync(traceFile).isFile();
  if (a.values.has('trace') && !haveTrace)
    throw new CliFailure(
      `--trace '${traceFile}': ${existsSync(traceFile) ? 'is a directory, not a file' : 'no such file'}`,
    );
  if (haveTrace) traceSource = new TraceSource(traceFile);
  config = {
    mapName,
    map: { format: map.format, ram: map.ram, reserved: map.reserved, affinity: map.affinity },
    mode,
    profile: profile.name,
    blacklist,
    trace: {
      available: haveTrace,
      name: haveTrace ? basename(traceFile) : '',
      earlyEvents: haveTrace && traceLimit > 0 ? Math.min(early, traceLimit) : early,
      maxEvents: traceLimit,
    },
  };
  if (!existsSync(join(dist, 'index.html'))) await buildPage(dist);

  const trace = traceSource;
  const configJson = JSON.stringify(config);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      send(res, 400, 'text/plain; charset=utf-8', 'malformed URL\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    if (url.pathname === '/config.json') {
      send(res, 200, TYPES['.json'], configJson, 'no-store');
      return;
    }
    if (url.pathname === '/trace') {
      if (trace === null) {
        send(res, 404, 'text/plain; charset=utf-8', 'no trace: start vmphys viz with --trace FILE\n');
        return;
      }
      const raw = url.searchParams.get('limit');
      const want = raw === null || raw === '' ? Number.MAX_SAFE_INTEGER : Number(raw);
      if (!/^\d*$/.test(raw ?? '') || !Number.isSafeInteger(want)) {
        send(res, 400, 'text/plain; charset=utf-8', 'limit must be a whole number\n');
        return;
      }
      const max = config.trace.maxEvents;
      const limit = max > 0 ? Math.min(want, max) : want;
      const ev = await trace.get(limit);
      send(res, 200, 'application/octet-stream', encodeTrace(ev, limit), 'no-store');
      return;
    }
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204, ISOLATION);
      res.end();
      return;
    }
    // Static files of the build.
    let rel: string;
    try {
      rel = decodeURIComponent(url.pathname);
    } catch {
      send(res, 400, 'text/plain; charset=utf-8', 'malformed URL\n');
      return;
    }
    if (rel.endsWith('/')) rel += 'index.html';
    const path = normalize(join(dist, rel));
    if (path !== dist && !path.startsWith(dist + sep)) {
      send(res, 403, 'text/plain; charset=utf-8', 'forbidden\n');
      return;
    }
    if (!existsSync(path) || !statSync(path).isFile()) {
      send(res, 404, 'text/plain; charset=utf-8', `not found: ${url.pathname}\n`);
      return;
    }
    const type = TYPES[extname(path)] ?? 'application/octet-stream';
    const cache = path.includes(`${sep}assets${sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache';
    send(res, 200, type, readFileSync(path), cache, req.method === 'HEAD');
  }

  function send(
    res: ServerResponse,
    status: number,
    type: string,
    body: string | Buffer,
    cache = 'no-store',
    headOnly = false,
  ): void {
    const data = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    res.writeHead(status, {
      ...ISOLATION,
      'Content-Type': type,
      'Content-Length': data.length,
      'Cache-Control': cache,
    });
    res.end(headOnly ? undefined : data);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const err = e as Error;
      const msg = err instanceof TraceParseError ? err.message : (err.stack ?? String(err));
      process.stderr.write(`vmphys viz: ${req.url}: ${msg}\n`);
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `${err.message}\n`);
      else res.destroy();
    });
  });

  return new Promise<number>((resolve) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      process.stderr.write(`vmphys viz: cannot listen on ${host}:${port}: ${e.message}\n`);
      resolve(1);
    });
    server.listen(port, host, () => {
      const addr = server.address() as AddressInfo;
      const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      process.stdout.write(`http://${shown}:${addr.port}/\n`);
      process.stdout.write(
        `vmphys viz: ${config.mapName} (${config.mode}, ${config.profile}); ` +
          `trace: ${config.trace.available ? config.trace.name : 'none (synthetic early boot)'}; Ctrl-C stops\n`,
      );
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        server.close(() => resolve(0));
        server.closeAllConnections();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  });
}

/**
 * Build the page (viz/dist) on first use: runs the repository's Vite build. An installed
 * package ships the built page, so this only runs in a checkout that was never built.
 */
async function buildPage(dist: string): Promise<void> {
  const { spawnSync } = await import('node:child_process');
  process.stderr.write('vmphys viz: building the page (first use; npm run build:viz)...\n');
  const r = spawnSync('npm', ['run', '-s', 'build:viz'], { cwd: repoRoot(), stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0 || !existsSync(join(dist, 'index.html')))
    throw new CliFailure(`cannot build the page into ${dist}: 'npm run build:viz' failed`);
}
