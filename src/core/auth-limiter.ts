/**
 * Failed-login back-off shared by every protocol (SMTP AUTH, IMAP, POP3): each failure from an IP doubles
 * the delay before the next failure answer (base, 2*base, 4*base ... capped); a success or a quiet period
 * of 15 minutes resets it. The delay is applied before answering, so guessing gets slower, not cheaper.
 */
export interface AuthLimiterOptions {
  baseDelayMs: number;
  maxDelayMs: number;
  now?: () => number;
  /** Told of every failure (the ban list counts them across protocols). */
  onFailure?: (ip: string) => void;
}

const FORGET_AFTER_MS = 15 * 60_000;
const MAX_TRACKED = 100_000;

export class AuthLimiter {
  private readonly failures = new Map<string, { count: number; last: number }>();
  constructor(private readonly opts: AuthLimiterOptions) {}

  /** Records a failure and returns how long to wait before answering it. */
  failure(ip: string): number {
    const now = (this.opts.now ?? Date.now)();
    const prev = this.failures.get(ip);
    const count = prev && now - prev.last < FORGET_AFTER_MS ? prev.count + 1 : 1;
    if (this.failures.size >= MAX_TRACKED && !prev) this.prune(now);
    this.failures.set(ip, { count, last: now });
    this.opts.onFailure?.(ip);
    return Math.min(this.opts.baseDelayMs * 2 ** (count - 1), this.opts.maxDelayMs);
  }

  success(ip: string): void {
    this.failures.delete(ip);
  }

  failureCount(ip: string): number {
    return this.failures.get(ip)?.count ?? 0;
  }

  private prune(now: number): void {
    for (const [ip, v] of this.failures) if (now - v.last >= FORGET_AFTER_MS) this.failures.delete(ip);
    if (this.failures.size >= MAX_TRACKED) this.failures.clear();
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
