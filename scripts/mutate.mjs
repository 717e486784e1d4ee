#!/usr/bin/env node
/**
 * Mutation testing over the allocator core (src/core/**.ts), without a framework.
 *
 * Each mutant is one small edit of one source file (a flipped comparison, a removed guard, a
 * dropped typed-array write, ...). The mutated file alone is compiled with TypeScript's
 * transpileModule into a private copy of dist/, and the core's node:test files run against that
 * copy, one file at a time, stopping at the first failing test. A mutant is "killed" when a test
 * fails (or the run exceeds its time limit: an infinite loop counts as killed), "survived" when
 * every test passes. Results go to bench/results/mutation.json and mutation.md.
 *
 * The source files are found by walking src/core, so the script follows the core as it is split
 * or renamed. It needs a current build (it runs `npm run build:lib` unless --no-build).
 *
 * Usage: node scripts/mutate.mjs [--files GLOB,...] [--max N] [--sample SEED] [--timeout MS]
 *          [--tests FILE,...] [--jobs N] [--ops OP,...] [--out PREFIX] [--no-build] [--list]
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// Fast, targeted files first: a mutant stops at the first failing test.
const DEFAULT_TESTS = [
  'test/verify-invariants.test.ts',
  'test/misuse-codes.test.ts',
  'test/mutants.test.ts',
  'test/core.test.ts',
  'test/model.test.ts',
  'test/conformance.test.ts',
];

// ---------------------------------------------------------------------------------------------
// Options

function parseArgs(argv) {
  const o = {
    files: ['src/core/**/*.ts'],
    max: Number.POSITIVE_INFINITY,
    sample: null,
    timeout: null,
    tests: DEFAULT_TESTS,
    jobs: 1,
    ops: null,
    out: 'bench/results/mutation',
    build: true,
    list: false,
  };
  const list = (v) =>
    v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--files') o.files = list(next());
    else if (a === '--max') o.max = Number(next());
    else if (a === '--sample') o.sample = Number(next());
    else if (a === '--timeout') o.timeout = Number(next());
    else if (a === '--tests') o.tests = list(next());
    else if (a === '--jobs') o.jobs = Number(next());
    else if (a === '--ops') o.ops = new Set(list(next()));
    else if (a === '--out') o.out = next();
    else if (a === '--no-build') o.build = false;
    else if (a === '--list') o.list = true;
    else if (a === '--help' || a === '-h') {
      console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0]);
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  for (const [k, v] of [
    ['--max', o.max],
    ['--jobs', o.jobs],
  ]) {
    if (!(v >= 1)) throw new Error(`${k} must be a positive number`);
  }
  if (o.sample !== null && !Number.isInteger(o.sample)) throw new Error('--sample needs an integer seed');
  if (o.timeout !== null && !(o.timeout > 0)) throw new Error('--timeout needs milliseconds > 0');
  return o;
}

// ---------------------------------------------------------------------------------------------
// Source files: a small glob (`*` within a path segment, `**` across segments) over src/.

function globToRegExp(glob) {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      re += glob[i + 2] === '/' ? '(?:.*/)?' : '.*';
      i += glob[i + 2] === '/' ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function walk(dir) {
  const out = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

function sourceFiles(globs) {
  const all = walk('src').filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
  const res = globs.map(globToRegExp);
  const picked = all.filter((f) => res.some((r) => r.test(f))).sort();
  if (picked.length === 0) throw new Error(`no source file matches ${globs.join(', ')}`);
  return picked;
}

// ---------------------------------------------------------------------------------------------
// Mutation operators, found on the TypeScript syntax tree.

const BINARY = new Map([
  [ts.SyntaxKind.LessThanToken, ['<=', 'boundary']],
  [ts.SyntaxKind.LessThanEqualsToken, ['<', 'boundary']],
  [ts.SyntaxKind.GreaterThanToken, ['>=', 'boundary']],
  [ts.SyntaxKind.GreaterThanEqualsToken, ['>', 'boundary']],
  [ts.SyntaxKind.EqualsEqualsEqualsToken, ['!==', 'equality']],
  [ts.SyntaxKind.ExclamationEqualsEqualsToken, ['===', 'equality']],
  [ts.SyntaxKind.EqualsEqualsToken, ['!=', 'equality']],
  [ts.SyntaxKind.ExclamationEqualsToken, ['==', 'equality']],
  [ts.SyntaxKind.PlusToken, ['-', 'arithmetic']],
  [ts.SyntaxKind.MinusToken, ['+', 'arithmetic']],
  [ts.SyntaxKind.AsteriskToken, ['/', 'arithmetic']],
  [ts.SyntaxKind.SlashToken, ['*', 'arithmetic']],
  [ts.SyntaxKind.PercentToken, ['*', 'arithmetic']],
  [ts.SyntaxKind.AmpersandToken, ['|', 'bitwise']],
  [ts.SyntaxKind.BarToken, ['&', 'bitwise']],
  [ts.SyntaxKind.CaretToken, ['&', 'bitwise']],
  [ts.SyntaxKind.LessThanLessThanToken, ['>>', 'shift']],
  [ts.SyntaxKind.GreaterThanGreaterThanToken, ['<<', 'shift']],
  [ts.SyntaxKind.GreaterThanGreaterThanGreaterThanToken, ['<<', 'shift']],
  [ts.SyntaxKind.AmpersandAmpersandToken, ['||', 'logical']],
  [ts.SyntaxKind.BarBarToken, ['&&', 'logical']],
  [ts.SyntaxKind.PlusEqualsToken, ['-=', 'arithmetic']],
  [ts.SyntaxKind.MinusEqualsToken, ['+=', 'arithmetic']],
  [ts.SyntaxKind.BarEqualsToken, ['&=', 'bitwise']],
  [ts.SyntaxKind.AmpersandEqualsToken, ['|=', 'bitwise']],
]);

const isStringy = (n) =>
  ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n) || ts.isTemplateExpression(n);

const ARRAY_WRITERS = new Set(['set', 'fill', 'copyWithin']);

/** Does this statement write to an element of an array (`a[i] = x`, `a[i] |= x`, `a.fill(...)`)? */
function writesArray(expr) {
  if (ts.isBinaryExpression(expr)) {
    const k = expr.operatorToken.kind;
    const assign = k >= ts.SyntaxKind.FirstAssignment && k <= ts.SyntaxKind.LastAssignment;
    return assign && ts.isElementAccessExpression(expr.left);
  }
  if (ts.isPrefixUnaryExpression(expr) || ts.isPostfixUnaryExpression(expr)) {
    return ts.isElementAccessExpression(expr.operand);
  }
  if (ts.isCallExpression(expr) && ts.isPropertyAccessExpression(expr.expression)) {
    return ARRAY_WRITERS.has(expr.expression.name.text);
  }
  return false;
}

function isAssignment(expr) {
  if (!ts.isBinaryExpression(expr)) return false;
  const k = expr.operatorToken.kind;
  return k >= ts.SyntaxKind.FirstAssignment && k <= ts.SyntaxKind.LastAssignment;
}

/** A then-branch that is only a throw (`if (c) throw e;` or `if (c) { throw e; }`). */
function onlyThrows(stmt) {
  if (ts.isThrowStatement(stmt)) return true;
  return ts.isBlock(stmt) && stmt.statements.length === 1 && ts.isThrowStatement(stmt.statements[0]);
}

function findMutants(file) {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const out = [];
  const add = (start, end, replacement, op) => {
    const lc = sf.getLineAndCharacterOfPosition(start);
    out.push({
      file,
      line: lc.line + 1,
      col: lc.character + 1,
      start,
      end,
      op,
      original: text.slice(start, end),
      replacement,
    });
  };
  const whole = (node, replacement, op) => add(node.getStart(sf), node.getEnd(), replacement, op);

  function visit(node) {
    // Types, imports and declarations without run-time code have nothing to mutate.
    if (
      ts.isTypeNode(node) ||
      ts.isImportDeclaration(node) ||
      ts.isExportDeclaration(node) ||
      ts.isInterfaceDeclaration(node) ||
      ts.isTypeAliasDeclaration(node) ||
      node.kind === ts.SyntaxKind.DeclareKeyword
    ) {
      return;
    }
    if (ts.isBinaryExpression(node)) {
      const m = BINARY.get(node.operatorToken.kind);
      const stringConcat =
        (node.operatorToken.kind === ts.SyntaxKind.PlusToken ||
          node.operatorToken.kind === ts.SyntaxKind.PlusEqualsToken) &&
        (isStringy(node.left) || isStringy(node.right));
      if (m && !stringConcat) {
        add(node.operatorToken.getStart(sf), node.operatorToken.getEnd(), m[0], m[1]);
      }
    } else if (ts.isPrefixUnaryExpression(node)) {
      if (node.operator === ts.SyntaxKind.ExclamationToken) {
        add(node.getStart(sf), node.operand.getStart(sf), '', 'negation');
      } else if (node.operator === ts.SyntaxKind.PlusPlusToken) {
        add(node.getStart(sf), node.operand.getStart(sf), '--', 'increment');
      } else if (node.operator === ts.SyntaxKind.MinusMinusToken) {
        add(node.getStart(sf), node.operand.getStart(sf), '++', 'increment');
      }
    } else if (ts.isPostfixUnaryExpression(node)) {
      const repl = node.operator === ts.SyntaxKind.PlusPlusToken ? '--' : '++';
      add(node.operand.getEnd(), node.getEnd(), repl, 'increment');
    } else if (node.kind === ts.SyntaxKind.TrueKeyword) {
      whole(node, 'false', 'boolean');
    } else if (node.kind === ts.SyntaxKind.FalseKeyword) {
      whole(node, 'true', 'boolean');
    } else if (ts.isNumericLiteral(node)) {
      const v = Number(node.text);
      if (v === 0) whole(node, '1', 'literal');
      else if (v === 1) whole(node, '0', 'literal');
    } else if (ts.isIfStatement(node) && !node.elseStatement && onlyThrows(node.thenStatement)) {
      whole(node, '{}', 'remove-guard');
      visit(node.expression);
      return;
    } else if (ts.isThrowStatement(node)) {
      // The thrown value is only the error's construction (class, code, message): not mutated.
      whole(node, '{}', 'remove-throw');
      return;
    } else if (ts.isBreakStatement(node) || ts.isContinueStatement(node)) {
      whole(node, '{}', 'remove-jump');
    } else if (ts.isExpressionStatement(node)) {
      const e = node.expression;
      if (writesArray(e)) whole(node, '{}', 'drop-array-write');
      else if (isAssignment(e) && ts.isPropertyAccessExpression(e.left)) {
        whole(node, '{}', 'drop-field-write');
      } else if (ts.isCallExpression(e)) whole(node, '{}', 'drop-call');
    }
    ts.forEachChild(node, visit);
  }
  visit(sf);
  return { text, mutants: out };
}

// ---------------------------------------------------------------------------------------------
// Compilation of one file, the way tsc -p emits it.

const TRANSPILE = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  verbatimModuleSyntax: true,
  sourceMap: false,
};

function transpile(file, text) {
  const r = ts.transpileModule(text, {
    compilerOptions: TRANSPILE,
    fileName: file,
    reportDiagnostics: true,
  });
  const errs = (r.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
  return { js: r.outputText, error: errs.length > 0 ? ts.flattenDiagnosticMessageText(errs[0].messageText, '\n') : null };
}

const distPath = (file) => join('dist', file.replace(/\.ts$/, '.js'));

// ---------------------------------------------------------------------------------------------
// Sandboxes: a copy of dist/ beside symlinks to everything else in the repository, so tests that
// locate the repository from their own path find package.json, fixtures and node_modules.

function makeSandbox() {
  const dir = mkdtempSync(join(tmpdir(), 'vmphys-mutation-'));
  for (const e of readdirSync(ROOT)) {
    if (e === 'dist' || e === '.git') continue;
    symlinkSync(join(ROOT, e), join(dir, e));
  }
  cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true });
  return dir;
}

/**
 * Run one test file in a sandbox. Resolves { ok, ms, failed, timedOut }: stops at the first
 * failing test (TAP "not ok"), or when the time limit passes.
 */
function runTestFile(sandbox, testJs, timeoutMs) {
  return new Promise((done) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['--test-reporter=tap', testJs], {
      cwd: sandbox,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    let finished = false;
    let failed = null;
    let timedOut = false;
    let buf = '';
    const killGroup = () => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // The group has already exited.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    child.stdout.on('data', (d) => {
      buf += d;
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^\s*not ok \d+ - (.*)$/.exec(line);
        if (m && failed === null && !/#\s*(TODO|SKIP)/i.test(m[1])) {
          failed = m[1];
          killGroup();
        }
        nl = buf.indexOf('\n');
      }
    });
    child.stderr.on('data', () => {});
    child.on('exit', (code, signal) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      // Any descendants (CLI runs, workers' helpers) go with the group.
      killGroup();
      const ms = performance.now() - t0;
      const ok = !timedOut && failed === null && code === 0 && signal === null;
      done({ ok, ms, failed: failed ?? (ok || timedOut ? null : `exit ${code ?? signal}`), timedOut });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Sampling

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle(xs, seed) {
  const rnd = mulberry32(seed);
  const a = xs.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// Reports

const pct = (x) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)} %` : 'n/a');

function summarise(ms) {
  const count = (s) => ms.filter((m) => m.status === s).length;
  const killed = count('killed');
  const timeout = count('timeout');
  const survived = count('survived');
  const tested = killed + timeout + survived;
  return {
    tested,
    killed,
    timeout,
    survived,
    invalid: count('invalid'),
    sameEmit: count('same-emit'),
    killRate: tested > 0 ? (killed + timeout) / tested : null,
  };
}

function groupBy(ms, key) {
  const g = new Map();
  for (const m of ms) {
    const k = key(m);
    if (!g.has(k)) g.set(k, []);
    g.get(k).push(m);
  }
  return [...g.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

const cell = (s) => `\`${String(s).replace(/\s+/g, ' ').replace(/`/g, "'").replace(/\|/g, '\\|').slice(0, 90)}\``;

function writeReports(o, meta, mutants, sources) {
  const done = mutants.filter((m) => m.status);
  const total = summarise(done);
  const json = { ...meta, complete: done.length === mutants.length, planned: mutants.length, summary: total, mutants: done };
  const out = resolve(ROOT, o.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(`${out}.json`, `${JSON.stringify(json, null, 1)}\n`);

  const L = [];
  L.push('# Mutation testing of src/core');
  L.push('');
  L.push(`Generated by \`npm run mutation\` (scripts/mutate.mjs) on ${meta.date}, Node ${meta.node}.`);
  L.push(
    `Mutants: ${meta.found} found in ${meta.files.length} files, ${mutants.length} planned` +
      `${meta.options.sample !== null ? ` (sample seed ${meta.options.sample})` : ''}, ${done.length} run` +
      `${json.complete ? '' : ' (incomplete run)'}.`,
  );
  L.push(`Tests run per mutant, stopping at the first failure: ${meta.tests.join(', ')}.`);
  L.push('');
  L.push(
    `**Kill rate: ${pct(total.killRate)}** (${total.killed} killed by a failing test + ${total.timeout} by the time limit, ` +
      `of ${total.tested}; ${total.survived} survived). Not counted: ${total.invalid} mutants that do not compile, ` +
      `${total.sameEmit} whose emitted JavaScript is unchanged. Survivors include equivalent mutants ` +
      '(no behaviour change); each needs a look before it is called a missing test.',
  );
  L.push('');
  L.push('| file | tested | killed | timeout | survived | kill rate |');
  L.push('|---|---:|---:|---:|---:|---:|');
  for (const [f, ms] of groupBy(done, (m) => m.file)) {
    const s = summarise(ms);
    L.push(`| ${f} | ${s.tested} | ${s.killed} | ${s.timeout} | ${s.survived} | ${pct(s.killRate)} |`);
  }
  L.push('');
  L.push('| operator | tested | killed | survived | kill rate |');
  L.push('|---|---:|---:|---:|---:|');
  for (const [op, ms] of groupBy(done, (m) => m.op)) {
    const s = summarise(ms);
    L.push(`| ${op} | ${s.tested} | ${s.killed + s.timeout} | ${s.survived} | ${pct(s.killRate)} |`);
  }
  L.push('');
  const surv = done.filter((m) => m.status === 'survived');
  L.push(`## Survivors (${surv.length})`);
  L.push('');
  if (surv.length > 0) {
    L.push('| where | operator | original → mutant | line |');
    L.push('|---|---|---|---|');
    for (const m of surv.sort((a, b) => (a.file === b.file ? a.line - b.line : a.file < b.file ? -1 : 1))) {
      const src = sources.get(m.file).split('\n')[m.line - 1].trim();
      L.push(`| ${m.file}:${m.line}:${m.col} | ${m.op} | ${cell(m.original)} → ${cell(m.replacement || '(removed)')} | ${cell(src)} |`);
    }
    L.push('');
  }
  writeFileSync(`${out}.md`, `${L.join('\n')}\n`);
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const files = sourceFiles(o.files);
  const sources = new Map();
  let all = [];
  for (const f of files) {
    const { text, mutants } = findMutants(f);
    sources.set(f, text);
    all.push(...mutants.filter((m) => !o.ops || o.ops.has(m.op)));
  }
  const found = all.length;
  if (o.sample !== null) all = shuffle(all, o.sample);
  const planned = all.slice(0, Math.min(o.max, all.length));
  planned.forEach((m, i) => {
    m.id = i + 1;
  });
  if (o.list) {
    const one = (s) => JSON.stringify(s.replace(/\s+/g, ' ')).slice(0, 70);
    for (const m of planned) console.log(`${m.file}:${m.line}:${m.col}\t${m.op}\t${one(m.original)} → ${one(m.replacement)}`);
    console.log(`${planned.length} of ${found} mutants`);
    return;
  }

  if (o.build) {
    const b = spawnSync('npm', ['run', '-s', 'build:lib'], { cwd: ROOT, stdio: 'inherit' });
    if (b.status !== 0) throw new Error('npm run build:lib failed');
  }
  const tests = o.tests.map((t) => {
    const js = distPath(t);
    if (!existsSync(join(ROOT, js))) throw new Error(`${js} is missing (is ${t} a test file, and is dist built?)`);
    return js;
  });

  // transpileModule must reproduce what tsc -p emitted, or every mutant would also carry that
  // difference.
  const baseJs = new Map();
  for (const f of files) {
    const { js, error } = transpile(f, sources.get(f));
    if (error) throw new Error(`${f} does not transpile: ${error}`);
    const emitted = readFileSync(join(ROOT, distPath(f)), 'utf8');
    if (emitted !== js) throw new Error(`transpileModule output for ${f} differs from dist (stale build?)`);
    baseJs.set(f, js);
  }

  const jobs = Math.min(o.jobs, Math.max(1, planned.length));
  const sandboxes = Array.from({ length: jobs }, makeSandbox);
  const cleanup = () => {
    for (const s of sandboxes) rmSync(s, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });

  try {
    // Baseline: every test file must pass unmutated; its time sets the per-file limit.
    console.log(`baseline: ${tests.join(', ')}`);
    const limits = new Map();
    for (const t of tests) {
      const r = await runTestFile(sandboxes[0], t, 10 * 60_000);
      if (!r.ok) throw new Error(`${t} fails without any mutant (${r.failed}); fix it before a mutation run`);
      const limit = o.timeout ?? Math.round(Math.max(3 * r.ms, r.ms + 20_000));
      limits.set(t, limit);
      console.log(`  ${t}: ${(r.ms / 1000).toFixed(1)} s, limit ${(limit / 1000).toFixed(0)} s`);
    }

    const meta = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: availableParallelism(),
      options: { files: o.files, max: Number.isFinite(o.max) ? o.max : null, sample: o.sample, timeout: o.timeout, jobs },
      files,
      tests: o.tests,
      limitsMs: Object.fromEntries(limits),
      found,
    };
    let next = 0;
    let finished = 0;
    const t0 = performance.now();
    const worker = async (sandbox) => {
      while (next < planned.length) {
        const m = planned[next++];
        const text = sources.get(m.file);
        const mutated = text.slice(0, m.start) + m.replacement + text.slice(m.end);
        const { js, error } = transpile(m.file, mutated);
        const target = join(sandbox, distPath(m.file));
        const s0 = performance.now();
        if (error) {
          m.status = 'invalid';
          m.detail = error;
        } else if (js === baseJs.get(m.file)) {
          m.status = 'same-emit';
        } else {
          writeFileSync(target, js);
          m.status = 'survived';
          for (const t of tests) {
            const r = await runTestFile(sandbox, t, limits.get(t));
            if (!r.ok) {
              m.status = r.timedOut ? 'timeout' : 'killed';
              m.killedBy = `${relative('dist', t).split(sep).join('/')}: ${r.timedOut ? 'time limit' : r.failed}`;
              break;
            }
          }
          writeFileSync(target, baseJs.get(m.file));
        }
        m.ms = Math.round(performance.now() - s0);
        finished++;
        const el = (performance.now() - t0) / 1000;
        console.log(
          `[${finished}/${planned.length} ${el.toFixed(0)}s] ${m.status.padEnd(9)} ${m.file}:${m.line} ${m.op} ` +
            `${JSON.stringify(m.original).slice(0, 50)} → ${JSON.stringify(m.replacement).slice(0, 30)}` +
            `${m.killedBy ? `  (${m.killedBy.slice(0, 80)})` : ''}`,
        );
        writeReports(o, meta, planned, sources);
      }
    };
    await Promise.all(sandboxes.map(worker));
    writeReports(o, meta, planned, sources);
    const s = summarise(planned);
    console.log(
      `kill rate ${pct(s.killRate)}: ${s.killed} killed, ${s.timeout} timed out, ${s.survived} survived ` +
        `(${s.invalid} invalid, ${s.sameEmit} same emit). Report: ${o.out}.json, ${o.out}.md`,
    );
  } finally {
    cleanup();
  }
}

main().catch((e) => {
  console.error(`mutate: ${e.message}`);
  process.exit(1);
});
