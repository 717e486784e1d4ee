// viz/src/node-stub.ts: stands in for node:fs, node:fs/promises, node:zlib and node:child_process
// in the browser bundle (see viz/vite.config.ts). src/trace/parse.ts imports them for parseTrace,
// which only runs in Node (the `vmphys viz` server parses the trace; the page gets binary arrays).
// Owned by the viz work (issue 8).

function unavailable(name: string): never {
  throw new Error(`${name} is not available in the browser: the viz server parses traces`);
}

export function spawn(): never {
  return unavailable('child_process.spawn');
}
export function createReadStream(): never {
  return unavailable('fs.createReadStream');
}
export function open(): never {
  return unavailable('fs/promises.open');
}
export function createGunzip(): never {
  return unavailable('zlib.createGunzip');
}
export default {};
