/**
 * Shared bench helpers: the report (one `name value unit` line per figure, ratio Postern/reference when both
 * were measured, JSON in bench/results/), process memory (PSS from /proc/<pid>/smaps_rollup: RSS counts pages
 * shared between a forked server's processes once per process), percentiles and small process helpers.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = path.resolve(BENCH, '..');

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export type Side = 'postern' | 'reference';

export interface Figure {
  name: string;
  unit: string;
  postern?: number;
  reference?: number;
  /** Postern / reference (for "lower is better" units the caller still reads it as a plain quotient). */
  ratio?: number;
  params?: string;
  note?: string;
  /** Each round's value per side (throughput figures measured in several alternating rounds; see Report.add). */
  rounds?: { postern: number[]; reference: number[] };
}

export class Report {
  readonly figures: Figure[] = [];
  readonly notDone: { workload: string; reason: string }[] = [];
  constructor(readonly vsReference: boolean) {}

  /**
   * Records one side of a figure; prints the line once the figure is complete (both sides, or Postern alone).
   * `rounds` > 1: the figure is measured that many times per side, in alternating order (Postern, reference,
   * reference, Postern ...: load that drifts during the run weighs on both alike); the value is the mean of the
   * rounds, and the line shows each round's ratio.
   */
  add(side: Side, name: string, value: number, unit: string, params?: string, rounds = 1): void {
    let f = this.figures.find((x) => x.name === name);
    if (!f) {
      f = { name, unit, params, rounds: { postern: [], reference: [] } };
      this.figures.push(f);
    }
    const samples = f.rounds![side];
    samples.push(value);
    if (samples.length < rounds) return;
    f[side] = samples.reduce((a, b) => a + b, 0) / samples.length;
    const complete = this.vsReference ? f.postern !== undefined && f.reference !== undefined : f.postern !== undefined;
    if (complete) {
      if (f.postern !== undefined && f.reference !== undefined && f.reference !== 0) f.ratio = f.postern / f.reference;
      console.log(formatFigure(f));
    } else if (side === 'reference' && !this.vsReference) console.log(`${name} ${fmt(value)} ${unit} (reference)`);
  }

  /** A figure only one side has (e.g. the reference cannot log in without TLS on Postern's side). */
  only(side: Side, name: string, value: number, unit: string, note: string): void {
    this.figures.push({ name, unit, [side]: value, note });
    console.log(`${name} ${fmt(value)} ${unit} (${side} only: ${note})`);
  }

  skip(workload: string, reason: string): void {
    this.notDone.push({ workload, reason });
    console.log(`# not done: ${workload}: ${reason}`);
  }

  write(meta: Record<string, unknown>): string {
    const dir = path.join(BENCH, 'results');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify({ ...meta, machine: machine(), figures: this.figures, notDone: this.notDone }, null, 2));
    return file;
  }
}

export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

export function formatFigure(f: Figure): string {
  let line = `${f.name} ${f.postern !== undefined ? fmt(f.postern) : '-'} ${f.unit}`;
  if (f.reference !== undefined) line += `  reference ${fmt(f.reference)} ${f.unit}  ratio ${f.ratio !== undefined ? f.ratio.toFixed(2) : '-'}`;
  const r = f.rounds;
  if (r && r.postern.length > 1 && r.postern.length === r.reference.length) line += ` (rounds: ${r.postern.map((p, i) => (p / r.reference[i]!).toFixed(2)).join(', ')})`;
  if (f.params) line += `  [${f.params}]`;
  return line;
}

export function machine(): Record<string, unknown> {
  return {
    nproc: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    memoryMB: Math.round(os.totalmem() / 2 ** 20),
    kernel: os.release(),
    node: process.version,
    loadavg: os.loadavg(),
  };
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return percentile(s, 50);
}

/** Proportional set size of one process in KiB (0 when it is gone). */
export function pssKb(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export function rssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Every process whose executable path or command line matches `test` (for the reference's forked servers). */
export function pidsWhere(test: (cmdline: string, exe: string) => boolean): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
      let exe = '';
      try {
        exe = readFileSync(`/proc/${d}/comm`, 'utf8').trim();
      } catch {
        /* gone */
      }
      if (test(cmd, exe)) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Descendants of pid (inclusive), from /proc/<pid>/task/<tid>/children. */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    const p = out[i]!;
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        for (const c of readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim().split(/\s+/)) if (c) out.push(Number(c));
      } catch {
        /* gone */
      }
    }
  }
  return out;
}

export const pssOf = (pids: number[]) => pids.reduce((s, p) => s + pssKb(p), 0);

/** System-wide used memory in KiB (MemTotal - MemAvailable). */
export function usedMemKb(): number {
  const t = readFileSync('/proc/meminfo', 'utf8');
  const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(t)?.[1] ?? 0);
  return get('MemTotal') - get('MemAvailable');
}

export function sh(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 120_000, env: { ...process.env, ...opts.env }, maxBuffer: 64 * 2 ** 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0, out: String(stdout), err: String(stderr) });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

export function which(bin: string): string | null {
  for (const d of ['/usr/sbin', '/usr/bin', '/sbin', '/bin', ...(process.env.PATH ?? '').split(':')]) {
    if (d && existsSync(path.join(d, bin))) return path.join(d, bin);
  }
  return null;
}

/** Raises the soft open-files limit of children started through `sh -c` (ulimit), used for 1,000 connections. */
export const NOFILE = 65536;

/** A self-signed certificate for the bench (both stacks use it): { cert, key } file paths in dir. */
export async function makeCert(dir: string, hostname: string): Promise<{ cert: string; key: string }> {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const r = await sh('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${hostname}`, '-addext', `subjectAltName=DNS:${hostname}`]);
  if (r.code !== 0) throw new Error(`openssl: ${r.err}`);
  const { chmodSync } = await import('node:fs');
  chmodSync(key, 0o644);
  chmodSync(dir, 0o755);
  return { cert, key };
}

/** Busy and total CPU time of this machine (all CPUs) from /proc/stat, in clock ticks. */
function cpuTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: time stolen by other guests is neither ours nor idle.
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0] = f;
  const busy = user + nice + system + irq + softirq;
  return { busy, total: busy + idle + iowait };
}

/**
 * Waits until this machine is quiet: under `maxBusy` of its CPUs busy for a whole second (sampled every 250 ms),
 * at most `maxMs`; returns the milliseconds waited. Every measured phase starts this way, on either stack, so a
 * phase does not inherit the work the previous one left running (Postern's deferred full-text indexing of the
 * messages a phase delivered, a reference's queue still draining): that work is the previous phase's, and the
 * wait it costs is printed with the figures.
 */
export async function quiet(maxBusy = 0.15, maxMs = 120_000): Promise<number> {
  const t0 = performance.now();
  let last = cpuTicks();
  let calm = 0;
  while (performance.now() - t0 < maxMs) {
    await sleep(250);
    const now = cpuTicks();
    const total = now.total - last.total;
    const busy = total > 0 ? (now.busy - last.busy) / total : 0;
    last = now;
    calm = busy < maxBusy ? calm + 1 : 0;
    if (calm >= 4) break;
  }
  return performance.now() - t0;
}
