// viz/vite.config.ts: builds the `vmphys viz` page (viz/index.html + viz/src) into viz/dist with
// `vite build --config viz/vite.config.ts`. Owned by the viz work (issue 8); others leave it alone.
//
// The page and its Web Worker import the allocator core straight from ../src (core, boot,
// trace/replay). Two things there assume Node and are neutralised for the browser bundle only:
// src/trace/parse.ts imports node:fs / node:zlib / node:child_process (used by parseTrace, which
// the browser never calls) → a stub module; src/trace/replay.ts reads two tuning knobs from
// process.env at load time → defined as undefined (the defaults apply).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));
const nodeStub = fileURLToPath(new URL('./src/node-stub.ts', import.meta.url));

/** The headers SharedArrayBuffer needs (cross-origin isolation); `vmphys viz` sends the same. */
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  root,
  base: './',
  publicDir: false,
  logLevel: 'warn',
  resolve: {
    alias: [{ find: /^node:(child_process|fs|fs\/promises|zlib)$/, replacement: nodeStub }],
  },
  define: {
    'process.env.PFB': 'undefined',
    'process.env.PFP': 'undefined',
  },
  worker: { format: 'es' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: false,
  },
  server: { headers: isolation, fs: { allow: [fileURLToPath(new URL('..', import.meta.url))] } },
  preview: { headers: isolation },
});
