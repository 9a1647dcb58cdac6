/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and per source file, top N, as shares of
 * the time the thread was busy (idle samples left out).
 * Usage: node --import tsx bench/lib/profile-summary.ts FILE.cpuprofile [N]
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

export function summarise(file: string, top = 25): string {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  prof.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
  const sampled = [...self.values()].reduce((a, b) => a + b, 0);
  let idle = 0;
  for (const [id, us] of self) if (byId.get(id)!.callFrame.functionName === '(idle)') idle += us;
  // Shares of the busy time: an event loop waiting for work is not where the time goes.
  const total = Math.max(1, sampled - idle);
  const fn = new Map<string, number>();
  const files = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    if (n.callFrame.functionName === '(idle)') continue;
    const url = n.callFrame.url.replace(/^file:\/\//, '').replace(/.*node_modules\//, 'nm/').replace(/.*\/dist\//, 'dist/');
    const key = `${n.callFrame.functionName || '(anon)'} ${url}:${n.callFrame.lineNumber + 1}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const f = url ? url.replace(/^(nm\/[^/]+).*/, '$1') : `(${n.callFrame.functionName})`;
    files.set(f, (files.get(f) ?? 0) + us);
  }
  const pct = (us: number) => `${((100 * us) / total).toFixed(1)}%`;
  const lines = [`busy ${(total / 1000).toFixed(0)} ms of ${(sampled / 1000).toFixed(0)} ms sampled (${((100 * total) / Math.max(1, sampled)).toFixed(0)}%); shares of the busy time`, '-- by function (self)'];
  for (const [k, v] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${pct(v).padStart(6)} ${k}`);
  lines.push('-- by file/package (self)');
  for (const [k, v] of [...files].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${pct(v).padStart(6)} ${k}`);
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  console.log(summarise(process.argv[2]!, Number(process.argv[3] ?? 25)));
}
