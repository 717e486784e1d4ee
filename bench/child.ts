/**
 * Entry point of a benchmark child process (see `runChild` in bench/util.ts):
 *   node --expose-gc dist/bench/child.js MODULE EXPORT ARG_JSON
 * imports MODULE, awaits EXPORT(ARG), and prints the result on a tagged stdout line.
 * Owned by the benchmark work.
 */
import { pathToFileURL } from 'node:url';
import { childReply } from './util.js';

const [module, exportName, arg] = process.argv.slice(2);
const mod = (await import(pathToFileURL(module).href)) as Record<string, (a: unknown) => unknown>;
const fn = mod[exportName];
if (typeof fn !== 'function') throw new Error(`${module} does not export a function ${exportName}`);
childReply(await fn(JSON.parse(arg ?? 'null')));
