/** What every workload gets: the report, the size switch, and factories for the two stacks under test. */
import type { Postern } from './postern.js';
import type { Reference } from './reference.js';
import type { Report } from './util.js';

export interface BenchContext {
  report: Report;
  quick: boolean;
  /** Rounds of each throughput figure per side, alternating which goes first (--rounds; full run 2, quick 1). */
  rounds: number;
  accounts: number;
  /** The shared Postern instance (fresh data dir, `accounts` accounts), started. */
  postern: Postern;
  /** The shared reference stack, started; null without --vs-reference. */
  reference: Reference | null;
  cert: { cert: string; key: string };
  /** Fresh, not started instances (for workloads that need their own data). */
  newPostern(opts?: { accounts?: number; bannerDelay?: string }): Promise<Postern>;
  newReference(opts?: { accounts?: number }): Promise<Reference>;
}

export interface Workload {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<void>;
}

/** Runs `a` then `b`, or `b` then `a` (alternating the order between figures so neither side always goes first). */
let flip = false;
export async function alternate(a: () => Promise<void>, b: (() => Promise<void>) | null): Promise<void> {
  flip = !flip;
  if (!b) return a();
  if (flip) {
    await a();
    await b();
  } else {
    await b();
    await a();
  }
}
