/**
 * Spam filtering at the end of DATA (before 250, so a refusal reaches the sender, never a bounce).
 *
 * With [spam] rspamd: the message goes to Rspamd's /checkv2 with the SMTP envelope as request headers (IP,
 * Helo, From, one Rcpt per recipient, Queue-Id, MTA-Name; https://rspamd.com/doc/developers/protocol.html)
 * and Rspamd's action decides:
 *   reject                        -> 550 5.7.1
 *   soft reject, greylist         -> 451 4.7.1 (RFC 6647 greylisting is Rspamd's own here)
 *   add header, rewrite subject   -> X-Spam headers, delivered to Junk (we never rewrite the subject: the Junk
 *                                    folder already says it, and the message stays as the sender wrote it)
 *   no action                     -> delivered, X-Spam-Status: No
 * If Rspamd cannot be reached (or answers nonsense) the built-in scorer decides, with a warning in the log:
 * spam filtering degrades, mail keeps flowing (the virus filter, not this one, is where we fail closed).
 *
 * Without Rspamd: the built-in scorer (scorer.ts); a score at or above [spam] threshold goes to Junk.
 *
 * X-Spam-* fields already in the message (a sender claiming "X-Spam-Status: No") are removed first, so the
 * ones a mail client sees are ours.
 */
import type { DataContext, DataResult, InboundFilter } from './pipeline.js';
import { Reply } from '../../protocols/smtp/replies.js';
import { rspamdPost, type RspamdHeaders } from './rspamd.js';
import { scoreMessage, type ScoreResult } from './scorer.js';
import { scanHeader, fieldName } from '../../lib/mime/headers.js';

export interface SpamSettings {
  /** Base URL of Rspamd's normal worker, or null for the built-in scorer only. */
  rspamd: string | null;
  timeoutMs: number;
  /** Built-in scorer: Junk at or above this score. */
  threshold: number;
  /** Our host name (Rspamd's MTA-Name). */
  hostname: string;
}

export interface SpamFilterDeps {
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
}

/** The part of Rspamd's /checkv2 JSON reply we use. */
interface RspamdVerdict {
  action: string;
  score: number;
  required_score: number;
  symbols?: Record<string, { score?: number }>;
  is_skipped?: boolean;
}

const ACTIONS = new Set(['reject', 'soft reject', 'rewrite subject', 'add header', 'greylist', 'no action']);

export class SpamFilter implements InboundFilter {
  readonly name = 'spam';
  /** Rspamd trouble falls back to the built-in scorer inside data(); anything else must not block mail. */
  readonly failOpen = true;

  constructor(
    private readonly settings: SpamSettings,
    private readonly deps: SpamFilterDeps,
  ) {}

  async data(ctx: DataContext, result: DataResult): Promise<void> {
    ctx.raw = stripSpamHeaders(ctx.raw);
    if (this.settings.rspamd) {
      let verdict: RspamdVerdict | null = null;
      try {
        verdict = await this.check(ctx, iprevName(ourAuthResults(result.headers)));
      } catch (err) {
        this.deps.log.warn({ cid: ctx.id, err: (err as Error).message }, 'rspamd unavailable; using the built-in spam scorer');
        result.log.rspamdError = (err as Error).message;
      }
      if (verdict) return this.applyRspamd(verdict, result);
    }
    this.applyBuiltin(ctx, result);
  }

  private async check(ctx: DataContext, hostname: string | null): Promise<RspamdVerdict> {
    const headers: RspamdHeaders = { IP: ctx.remoteAddress, 'Queue-Id': ctx.id, 'MTA-Name': this.settings.hostname };
    // The client's forward-confirmed PTR name (Rspamd does no reverse lookups itself; without it, RDNS_NONE).
    if (hostname) headers.Hostname = headerSafe(hostname);
    if (ctx.helo) headers.Helo = headerSafe(ctx.helo);
    // An empty reverse path (bounces) is sent as "<>", as Rspamd's own milter does.
    headers.From = ctx.sender ? headerSafe(ctx.sender) : '<>';
    if (ctx.recipients.length) headers.Rcpt = ctx.recipients.map(headerSafe);
    const res = await rspamdPost(this.settings.rspamd!, 'checkv2', headers, ctx.raw, this.settings.timeoutMs);
    if (res.status !== 200) throw new Error(`rspamd: HTTP ${res.status} ${res.body.slice(0, 200)}`);
    const v = JSON.parse(res.body) as RspamdVerdict;
    // is_skipped means Rspamd stopped early (a pre-filter such as GTUBE, or settings); its action still stands.
    if (typeof v.action !== 'string' || !ACTIONS.has(v.action)) throw new Error(`rspamd: unexpected action ${JSON.stringify(v.action)}`);
    return v;
  }

  private applyRspamd(v: RspamdVerdict, result: DataResult): void {
    const score = round(v.score ?? 0);
    const required = round(v.required_score ?? 0);
    const symbols = Object.keys(v.symbols ?? {}).sort();
    result.log.spam = { engine: 'rspamd', action: v.action, score, required, symbols: symbols.slice(0, 50), skipped: v.is_skipped || undefined };
    switch (v.action) {
      case 'reject':
        result.reject = Reply.spamRejected();
        return;
      case 'soft reject':
      case 'greylist':
        result.reject = Reply.spamDeferred();
        return;
      case 'add header':
      case 'rewrite subject':
        result.junk = true;
        result.headers.push(...spamHeaders(true, score, required, `rspamd action="${v.action}"`, symbols));
        return;
      default:
        result.headers.push(...spamHeaders(false, score, required, 'rspamd', symbols));
    }
  }

  private applyBuiltin(ctx: DataContext, result: DataResult): void {
    const r: ScoreResult = scoreMessage({ raw: ctx.raw, authResults: ourAuthResults(result.headers), dnsblScore: dnsblScoreFrom(result.log) });
    const spam = r.score >= this.settings.threshold;
    const tests = r.hits.map((h) => h.rule);
    result.log.spam = { engine: 'builtin', score: r.score, required: this.settings.threshold, tests, junk: spam };
    if (spam) result.junk = true;
    result.headers.push(...spamHeaders(spam, r.score, this.settings.threshold, 'postern', tests));
  }
}

const round = (n: number) => Math.round(n * 100) / 100;

/** No CR/LF (or other controls) may reach a request header line. */
const headerSafe = (s: string) => s.replace(/[\x00-\x1f\x7f]/g, '');

/** The X-Spam fields we add (SpamAssassin's names, which mail clients' filters know). */
export function spamHeaders(spam: boolean, score: number, required: number, engine: string, tests: string[]): string[] {
  const out: string[] = [];
  if (spam) out.push('X-Spam-Flag: YES\r\n');
  out.push(`X-Spam-Score: ${score.toFixed(2)}\r\n`);
  const status = `${spam ? 'Yes' : 'No'}, score=${score.toFixed(2)} required=${required.toFixed(2)} engine=${engine}` + (tests.length ? ` tests=${tests.map(headerSafe).join(',')}` : '');
  out.push(fold('X-Spam-Status', status));
  return out;
}

/** Folds a field at spaces and commas so lines stay within 78 characters where possible (RFC 5322 2.1.1, 2.2.3). */
export function fold(name: string, value: string): string {
  const lines: string[] = [];
  let line = `${name}:`;
  for (const word of value.split(' ')) {
    word.split(/(?<=,)/).forEach((piece, i) => {
      const sep = i === 0 ? ' ' : '';
      if (line.length + sep.length + piece.length > 78 && line.trim().length > name.length + 1) {
        lines.push(line);
        line = `\t${piece}`;
      } else line += sep + piece;
    });
  }
  lines.push(line);
  return lines.join('\r\n') + '\r\n';
}

/** Authentication-Results values among the fields the earlier filters prepend (never the sender's own). */
export function ourAuthResults(headers: string[]): string[] {
  return headers.filter((h) => /^authentication-results\s*:/i.test(h)).map((h) => h.slice(h.indexOf(':') + 1).replace(/\r?\n[ \t]+/g, ' ').trim());
}

/** The client's verified host name from our iprev result (RFC 8601 3: "iprev=pass policy.iprev=IP (name)"). */
export function iprevName(authResults: string[]): string | null {
  for (const v of authResults) {
    const m = /(?:^|[;\s])iprev\s*=\s*pass\b[^;]*?\(([A-Za-z0-9.-]+)\)/i.exec(v);
    if (m) return m[1]!.replace(/\.$/, '');
  }
  return null;
}

/** The DNSBL score the DNSBL filter recorded in the verdict log: a number, or an object with `score`. */
export function dnsblScoreFrom(log: Record<string, unknown>): number | null {
  const d = log.dnsbl;
  if (typeof d === 'number') return d;
  if (d && typeof d === 'object' && typeof (d as { score?: unknown }).score === 'number') return (d as { score: number }).score;
  return null;
}

/** Removes X-Spam and X-Spam-* fields from the message header (only from the top-level header block). */
export function stripSpamHeaders(raw: Buffer): Buffer {
  const head = scanHeader(raw, 0, raw.length);
  const drop: Array<[number, number]> = [];
  for (const f of head.fields) {
    const name = fieldName(raw, f).toLowerCase();
    if (name !== 'x-spam' && !name.startsWith('x-spam-')) continue;
    let end = f.valueEnd;
    if (raw[end] === 0x0d && raw[end + 1] === 0x0a) end += 2;
    else if (raw[end] === 0x0a) end += 1;
    drop.push([f.nameStart, end]);
  }
  if (!drop.length) return raw;
  const parts: Buffer[] = [];
  let pos = 0;
  for (const [s, e] of drop) {
    parts.push(raw.subarray(pos, s));
    pos = e;
  }
  parts.push(raw.subarray(pos));
  return Buffer.concat(parts);
}
