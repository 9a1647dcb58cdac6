/**
 * Runs the benchmark scripts in bench/ (every bench/*.ts but this one), one after another, each in its own
 * process: `node --import tsx bench/<name>.ts`. Builds dist/ first (the benchmarks start the compiled server).
 * Each script prints `name value unit` lines and writes its JSON report into bench/results/ (git-ignored).
 * Usage: npm run bench [-- name ...]   (e.g. `npm run bench -- outbound`; default: all).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH, '..');

const all = readdirSync(BENCH)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.endsWith('.d.ts'))
  .map((f) => f.slice(0, -3))
  .sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length) {
  console.error(`bench: no such benchmark: ${unknown.join(', ')} (have: ${all.join(', ')})`);
  process.exit(2);
}
const names = wanted.length ? wanted : all;

const build = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.json')], { cwd: ROOT, stdio: 'inherit' });
if (build.status !== 0) console.error('bench: the build reported errors; running with what dist/ holds');

let failed = 0;
for (const name of names) {
  console.log(`# ${name}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(BENCH, `${name}.ts`)], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.error(`bench: ${name} failed (exit ${r.status ?? r.signal})`);
  }
}
process.exit(failed ? 1 : 0);
