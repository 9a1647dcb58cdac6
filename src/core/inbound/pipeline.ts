/**
 * Inbound checks on the transfer listener (port 25): a chain of filters consulted at each SMTP stage.
 * Filters are independent modules (sender authentication, DNSBL, greylisting, rate limits, spam, virus ...);
 * the SMTP engine calls the pipeline and turns a verdict into exactly one reply. Filters run before 250, so
 * a rejection reaches the sender (no backscatter).
 *
 * Invariants: a filter that throws is logged and treated per its `failOpen` (default: temporary failure
 * 451 4.7.1, never a silent accept); every data-stage filter runs within the pipeline's time budget.
 */
import type { SmtpError } from '../../protocols/smtp/replies.js';

export interface SessionInfo {
  id: string;
  remoteAddress: string;
  /** HELO/EHLO name as given, once known. */
  helo: string | null;
  tls: boolean;
  /** True for authenticated submission (filters normally skip those). */
  authenticated: boolean;
}

export interface DataContext extends SessionInfo {
  sender: string;
  recipients: string[];
  /** The message as received (no server-added headers). A filter may replace it (e.g. strip forged headers). */
  raw: Buffer;
}

/** What the data-stage filters decide together. Filters mutate it in order. */
export interface DataResult {
  /** Set by a filter to refuse the message; the first rejection wins and later filters are skipped. */
  reject: SmtpError | null;
  /** Header fields (complete lines ending in CRLF) to prepend after the Received header. */
  headers: string[];
  /** Deliver into the Junk mailbox instead of INBOX. */
  junk: boolean;
  /** Verdict details for the one log line per message. */
  log: Record<string, unknown>;
}

export interface InboundFilter {
  readonly name: string;
  /** When the filter itself fails (timeout, daemon down): accept anyway (true) or answer 451 (false). */
  readonly failOpen?: boolean;
  connect?(s: SessionInfo): Promise<SmtpError | null>;
  helo?(s: SessionInfo, helo: string): Promise<SmtpError | null>;
  mailFrom?(s: SessionInfo, sender: string): Promise<SmtpError | null>;
  rcpt?(s: SessionInfo, sender: string, rcpt: string): Promise<SmtpError | null>;
  data?(ctx: DataContext, result: DataResult): Promise<void>;
}

export interface PipelineDeps {
  /** Turns a filter failure into the reply (451 4.7.1 unless the filter fails open). */
  tempFail: () => SmtpError;
  log: { warn(o: object, msg: string): void };
  /** Budget for all data-stage filters together. */
  dataBudgetMs: number;
}

export class InboundPipeline {
  constructor(
    readonly filters: InboundFilter[],
    private readonly deps: PipelineDeps,
  ) {}

  private async stage(name: string, run: (f: InboundFilter) => Promise<SmtpError | null> | undefined): Promise<SmtpError | null> {
    for (const f of this.filters) {
      try {
        const r = await run(f);
        if (r) return r;
      } catch (err) {
        this.deps.log.warn({ filter: f.name, stage: name, err: (err as Error).message }, 'inbound filter failed');
        if (!f.failOpen) return this.deps.tempFail();
      }
    }
    return null;
  }

  connect(s: SessionInfo) {
    return this.stage('connect', (f) => f.connect?.(s));
  }
  helo(s: SessionInfo, helo: string) {
    return this.stage('helo', (f) => f.helo?.(s, helo));
  }
  mailFrom(s: SessionInfo, sender: string) {
    return this.stage('mail', (f) => f.mailFrom?.(s, sender));
  }
  rcpt(s: SessionInfo, sender: string, rcpt: string) {
    return this.stage('rcpt', (f) => f.rcpt?.(s, sender, rcpt));
  }

  async data(ctx: DataContext): Promise<DataResult> {
    const result: DataResult = { reject: null, headers: [], junk: false, log: {} };
    const deadline = Date.now() + this.deps.dataBudgetMs;
    for (const f of this.filters) {
      if (!f.data) continue;
      const left = deadline - Date.now();
      try {
        if (left <= 0) throw new Error('time budget exhausted');
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          f.data(ctx, result),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`timed out after ${left} ms`)), left);
          }),
        ]).finally(() => clearTimeout(timer));
      } catch (err) {
        this.deps.log.warn({ filter: f.name, stage: 'data', err: (err as Error).message }, 'inbound filter failed');
        if (!f.failOpen) result.reject = this.deps.tempFail();
      }
      if (result.reject) break;
    }
    return result;
  }
}
