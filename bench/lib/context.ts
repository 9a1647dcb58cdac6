/** What every workload gets: the report, the size switch, and factories for the two stacks under test. */
import type { Postern } from './postern.js';
import type { Reference } from './reference.js';
import { quiet, type Report } from './util.js';

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

/**
 * Waits for the machine to be quiet before a measured phase (util.ts quiet()); prints the wait when it is more
 * than the second of calm it always takes, naming the phase it precedes.
 */
export async function settle(label: string): Promise<void> {
  const ms = await quiet();
  if (ms > 1500) console.log(`# ${label}: waited ${(ms / 1000).toFixed(1)} s for the machine to be quiet first (work left by the previous phase)`);
}

/**
 * Runs `a` (Postern) then `b` (the reference), or `b` then `a` (alternating the order between figures so neither
 * side always goes first), each on a quiet machine (settle()).
 */
let flip = false;
export async function alternate(a: () => Promise<void>, b: (() => Promise<void>) | null, label = 'phase'): Promise<void> {
  flip = !flip;
  const A = async () => (await settle(`${label} (Postern)`), a());
  if (!b) return A();
  const B = async () => (await settle(`${label} (reference)`), b());
  if (flip) {
    await A();
    await B();
  } else {
    await B();
    await A();
  }
}
