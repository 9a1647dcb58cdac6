/**
 * Rate limits per client IP address on port 25: connections, messages (MAIL FROM) and recipients (RCPT TO)
 * per minute, answered with temporary failures so a legitimate burst is only delayed:
 *   connections  421 4.7.0 at connect (RFC 5321 3.1: 421 in place of the greeting),
 *   messages     450 4.7.1 at MAIL FROM,
 *   recipients   452 4.5.3 at RCPT TO (RFC 5321 4.5.3.1.10).
 *
 * Counting is a sliding window over two one-minute buckets (the previous bucket weighted by how much of it
 * still overlaps the last 60 s), so a client cannot double its rate at a bucket boundary. State is in memory
 * (the ephemeral store of the design notes): a restart forgets it, which only ever lets a client through.
 * The clock is injected. Memory is bounded: idle entries are swept when the table grows large.
 */
import type { InboundFilter, SessionInfo } from './pipeline.js';
import { Reply, type SmtpError } from '../../protocols/smtp/replies.js';

export interface RateLimitSettings {
  connectionsPerMinute: number;
  messagesPerMinute: number;
  recipientsPerMinute: number;
}

const WINDOW_MS = 60_000;
const MAX_TRACKED = 100_000;

interface Counter {
  bucket: number;
  current: number;
  previous: number;
}

/** A sliding one-minute window counter per key. */
export class SlidingCounter {
  private readonly counters = new Map<string, Counter>();
  constructor(private readonly now: () => number) {}

  /** Adds `n` for `key` and returns the (weighted) count of the last minute including it. */
  hit(key: string, n = 1): number {
    const t = this.now();
    const bucket = Math.floor(t / WINDOW_MS);
    let c = this.counters.get(key);
    if (!c) {
      if (this.counters.size >= MAX_TRACKED) this.sweep(bucket);
      c = { bucket, current: 0, previous: 0 };
      this.counters.set(key, c);
    } else if (c.bucket !== bucket) {
      c.previous = c.bucket === bucket - 1 ? c.current : 0;
      c.current = 0;
      c.bucket = bucket;
    }
    c.current += n;
    const overlap = 1 - (t - bucket * WINDOW_MS) / WINDOW_MS;
    return c.current + c.previous * overlap;
  }

  /** Takes back a hit that was refused, so a client that keeps trying is not locked out for ever. */
  undo(key: string, n = 1): void {
    const c = this.counters.get(key);
    if (c) c.current = Math.max(0, c.current - n);
  }

  private sweep(bucket: number): void {
    for (const [k, c] of this.counters) if (c.bucket < bucket - 1) this.counters.delete(k);
  }
}

export class RateLimitFilter implements InboundFilter {
  readonly name = 'ratelimit';
  private readonly connections: SlidingCounter;
  private readonly messages: SlidingCounter;
  private readonly recipients: SlidingCounter;

  constructor(
    private readonly settings: RateLimitSettings,
    now: () => number = Date.now,
  ) {
    this.connections = new SlidingCounter(now);
    this.messages = new SlidingCounter(now);
    this.recipients = new SlidingCounter(now);
  }

  async connect(s: SessionInfo): Promise<SmtpError | null> {
    return this.check(this.connections, this.settings.connectionsPerMinute, s.remoteAddress, Reply.rateConnections);
  }

  async mailFrom(s: SessionInfo): Promise<SmtpError | null> {
    return this.check(this.messages, this.settings.messagesPerMinute, s.remoteAddress, Reply.rateMessages);
  }

  async rcpt(s: SessionInfo): Promise<SmtpError | null> {
    return this.check(this.recipients, this.settings.recipientsPerMinute, s.remoteAddress, Reply.rateRecipients);
  }

  private check(counter: SlidingCounter, limit: number, ip: string, reply: () => SmtpError): SmtpError | null {
    if (limit <= 0) return null;
    if (counter.hit(ip) <= limit) return null;
    counter.undo(ip);
    return reply();
  }
}
