/**
 * `npm run bench`: Postern's benchmarks (not part of `npm test`). Builds dist/ first (the benchmarks start the
 * compiled server, as operators run it).
 *
 *   npm run bench [-- --vs-reference] [--quick] [--rounds N] [--profile] [--only <name>[,<name>...]] [name ...]
 *
 * Workloads (bench/workloads/, run in this process against one Postern started on loopback with a fresh data
 * dir and N accounts): smtp, submission, imap, large, idle, startup. With --vs-reference the same workloads also
 * run against Postfix + Dovecot (bench/lib/reference.ts: installed with apt-get if missing, configured in a temp
 * dir, stopped and removed afterwards), alternating, and each figure is printed with the ratio Postern/reference.
 * Scripts (every other bench/*.ts, e.g. outbound) run in their own process: `node --import tsx bench/<name>.ts`.
 * Output: one line per figure (`name value unit`), then the goals of issue 7 the run measured, each "met" or
 * "NOT MET" (bench/lib/goals.ts), and a JSON report in bench/results/ (git-ignored).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH, ROOT, Report, makeCert, machine } from './lib/util.js';
import type { BenchContext, Workload } from './lib/context.js';
import { checkGoals } from './lib/goals.js';
import { summarise } from './lib/profile-summary.js';
import { Postern, DOMAIN } from './lib/postern.js';
import { Reference, ensureInstalled } from './lib/reference.js';
import { smtp } from './workloads/smtp.js';
import { submission } from './workloads/submission.js';
import { imapMix } from './workloads/imap-mix.js';
import { largeMailbox } from './workloads/large-mailbox.js';
import { idle } from './workloads/idle.js';
import { startup } from './workloads/startup.js';

const WORKLOADS: Workload[] = [startup, smtp, submission, imapMix, idle, largeMailbox];

const { values: args, positionals } = parseArgs({
  options: {
    'vs-reference': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    only: { type: 'string', multiple: true },
    accounts: { type: 'string', default: '25' },
    rounds: { type: 'string' },
    /** Run the shared Postern under node --cpu-prof and print where its time went (each thread) at the end. */
    profile: { type: 'boolean', default: false },
  },
  allowPositionals: true,
});

const scripts = readdirSync(BENCH)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && f !== 'imap.ts' && !f.endsWith('.d.ts') && !f.includes('scratch')) // imap.ts: runs workloads of this file
  .map((f) => f.slice(0, -3))
  .sort();
const wanted = [...(args.only ?? []).flatMap((o) => o.split(',')), ...positionals].filter(Boolean);
const known = [...WORKLOADS.map((w) => w.name), ...scripts];
const unknown = wanted.filter((w) => !known.includes(w));
if (unknown.length) {
  console.error(`bench: no such workload: ${unknown.join(', ')} (have: ${known.join(', ')})`);
  process.exit(2);
}
const workloads = wanted.length ? WORKLOADS.filter((w) => wanted.includes(w.name)) : WORKLOADS;
const scriptNames = wanted.length ? scripts.filter((s) => wanted.includes(s)) : args['vs-reference'] || args.quick ? [] : scripts;

const build = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.json')], { cwd: ROOT, stdio: 'inherit' });
if (build.status !== 0) console.error('bench: the build reported errors; running with what dist/ holds');

let failed = 0;
const vs = args['vs-reference']!;
const quick = args.quick!;
const accounts = Number(args.accounts);
const rounds = args.rounds ? Math.max(1, Number(args.rounds)) : quick ? 1 : 2;
const report = new Report(vs);
const m = machine();
console.log(`# machine: ${m.nproc} CPUs (${m.cpu}), ${m.memoryMB} MB, Linux ${m.kernel}, Node ${m.node}, load ${(m.loadavg as number[]).map((x) => x.toFixed(2)).join(' ')}`);
console.log(`# ${quick ? 'quick' : 'full'} run${vs ? ', side by side with Postfix + Dovecot (ratio = Postern / reference)' : ''}`);

if (workloads.length) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'postern-bench-cert-'));
  const profileDir = args.profile ? mkdtempSync(path.join(os.tmpdir(), 'postern-bench-prof-')) : null;
  const cert = await makeCert(tmp, `mx.${DOMAIN}`);
  let reference: Reference | null = null;
  let postern: Postern | null = null;
  const started: (Postern | Reference)[] = [];
  const cleanup = async () => {
    for (const s of started.splice(0)) {
      await s.stop().catch(() => undefined);
      s.cleanup();
    }
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    if (vs) {
      const err = await ensureInstalled();
      if (err) throw new Error(`reference stack unavailable: ${err}`);
    }
    const newPostern = async (o: { accounts?: number; bannerDelay?: string; nodeArgs?: string[] } = {}) =>
      Postern.create({ accounts: o.accounts ?? accounts, ...cert, bannerDelay: o.bannerDelay ?? '0s', nodeArgs: o.nodeArgs });
    const newReference = async (o: { accounts?: number } = {}) => Reference.create({ accounts: o.accounts ?? accounts, ...cert });
    postern = await newPostern(profileDir ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] } : {});
    started.push(postern);
    await postern.start();
    if (vs) {
      reference = await newReference();
      started.push(reference);
      await reference.start();
    }
    const ctx: BenchContext = { report, quick, rounds, accounts, postern, reference, cert, newPostern, newReference };
    for (const w of workloads) {
      console.log(`# ${w.name}: ${w.description}`);
      const t0 = performance.now();
      try {
        await w.run(ctx);
      } catch (err) {
        failed++;
        report.skip(w.name, (err as Error).stack ?? String(err));
      }
      console.log(`# ${w.name} took ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    }
  } catch (err) {
    failed++;
    console.error(`bench: ${(err as Error).message}`);
  } finally {
    await cleanup();
    rmSync(tmp, { recursive: true, force: true });
  }
  if (profileDir) {
    // Written when the server exited (cleanup above): the event loop's profile and one per worker thread.
    for (const f of readdirSync(profileDir).filter((x) => x.endsWith('.cpuprofile')).sort()) {
      console.log(`# profile of the shared Postern (${f}; whole run):`);
      console.log(summarise(path.join(profileDir, f), 15).replace(/^/gm, '#   '));
    }
    console.log(`# profiles kept in ${profileDir} (open in Chrome DevTools, or bench/lib/profile-summary.ts)`);
  }
  const goals = checkGoals(report.figures);
  if (goals.length) {
    console.log(`# goals (issue 7): ${goals.filter((g) => g.met).length} of ${goals.length} met in this run`);
    for (const g of goals) console.log(`goal ${g.met ? 'met' : 'NOT MET'}: ${g.goal}: ${g.value}`);
  }
  const file = report.write({ quick, vsReference: vs, workloads: workloads.map((w) => w.name), goals });
  console.log(`# report: ${path.relative(ROOT, file)}`);
}

for (const name of scriptNames) {
  console.log(`# ${name}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(BENCH, `${name}.ts`)], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.error(`bench: ${name} failed (exit ${r.status ?? r.signal})`);
  }
}
process.exit(failed ? 1 : 0);
