/**
 * The built-in spam scorer, used when no Rspamd is configured (or Rspamd cannot be reached): a handful of
 * rules in SpamAssassin's spirit, each adding (or, for passes, subtracting) points. It does not try to be
 * Rspamd; it makes sure Junk still works with nothing but Postern installed.
 *
 * Inputs are what the earlier filters left: the Authentication-Results header the sender-authentication
 * filter added (RFC 8601: `spf=`, `dkim=`, `dmarc=` method results), the DNSBL score in the verdict log, and the
 * message's own header (RFC 5322 3.6: Date and From are required, Message-ID should be there).
 * Pure: no I/O, no clock.
 */
import { scanHeader, fieldName, fieldValueBin } from '../../lib/mime/headers.js';
import { parseAddressList } from '../../lib/mime/address.js';
import { isValidDomain } from '../../lib/address.js';

export interface ScoreInput {
  raw: Buffer;
  /** Values of Authentication-Results fields we added (not the sender's). */
  authResults: string[];
  /** Sum of the weights of the DNSBLs listing the client, when known. */
  dnsblScore: number | null;
}

export interface ScoreHit {
  rule: string;
  score: number;
}

export interface ScoreResult {
  score: number;
  hits: ScoreHit[];
}

/** SpamAssassin's GTUBE: a message carrying it is spam by definition (for testing filters end to end). */
export const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';

/** Points per rule. Passes are small negatives, so a fully authenticated message needs more to reach Junk. */
export const RULES = {
  GTUBE: 1000,
  MISSING_DATE: 1.5,
  INVALID_DATE: 1,
  MISSING_MESSAGE_ID: 1.5,
  MISSING_FROM: 3,
  INVALID_FROM: 2.5,
  MULTIPLE_FROM: 2,
  MISSING_SUBJECT: 0.5,
  SPF_FAIL: 2,
  SPF_SOFTFAIL: 1,
  SPF_PERMERROR: 0.5,
  SPF_PASS: -0.5,
  DKIM_FAIL: 1.5,
  DKIM_PASS: -1,
  DMARC_FAIL: 3,
  DMARC_PASS: -1,
  /** Per DNSBL weight point below the connect-time refusal threshold. */
  DNSBL: 1.5,
} as const;

/** Method results in RFC 8601 Authentication-Results values: method -> results seen ("pass", "fail" ...). */
export function authMethods(values: string[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const v of values) {
    // Drop comments (RFC 8601 2.2 allows CFWS), then find "method=result" tokens (method may carry "/version").
    const text = v.replace(/\([^()]*\)/g, ' ');
    for (const m of text.matchAll(/(?:^|[;\s])([a-z][a-z0-9-]*)(?:\/\d+)?\s*=\s*([a-z]+)/gi)) {
      const method = m[1]!.toLowerCase();
      if (!['spf', 'dkim', 'dmarc', 'arc', 'iprev', 'auth', 'dkim-adsp', 'sender-id'].includes(method)) continue;
      let set = out.get(method);
      if (!set) out.set(method, (set = new Set()));
      set.add(m[2]!.toLowerCase());
    }
  }
  return out;
}

export function scoreMessage(input: ScoreInput): ScoreResult {
  const hits: ScoreHit[] = [];
  const hit = (rule: keyof typeof RULES, times = 1) => hits.push({ rule, score: RULES[rule] * times });
  const raw = input.raw;

  if (raw.includes(GTUBE, 0, 'latin1')) hit('GTUBE');

  const head = scanHeader(raw, 0, raw.length);
  const byName = new Map<string, string[]>();
  for (const f of head.fields) {
    const name = fieldName(raw, f).toLowerCase();
    let list = byName.get(name);
    if (!list) byName.set(name, (list = []));
    list.push(fieldValueBin(raw, f));
  }

  const date = byName.get('date');
  if (!date) hit('MISSING_DATE');
  else if (Number.isNaN(Date.parse(date[0]!.replace(/\([^()]*\)/g, '').trim()))) hit('INVALID_DATE');
  if (!byName.get('message-id')) hit('MISSING_MESSAGE_ID');
  if (!byName.get('subject')) hit('MISSING_SUBJECT');

  const from = byName.get('from');
  if (!from) hit('MISSING_FROM');
  else {
    if (from.length > 1) hit('MULTIPLE_FROM');
    const addrs = parseAddressList(from[0]!);
    const ok = addrs.length > 0 && addrs.every((a) => a.mailbox && a.host && isValidDomain(a.host));
    if (!ok) hit('INVALID_FROM');
  }

  const auth = authMethods(input.authResults);
  const spf = auth.get('spf');
  if (spf?.has('fail')) hit('SPF_FAIL');
  else if (spf?.has('softfail')) hit('SPF_SOFTFAIL');
  else if (spf?.has('permerror')) hit('SPF_PERMERROR');
  else if (spf?.has('pass')) hit('SPF_PASS');
  const dkim = auth.get('dkim');
  if (dkim?.has('pass')) hit('DKIM_PASS');
  else if (dkim?.has('fail')) hit('DKIM_FAIL');
  const dmarc = auth.get('dmarc');
  if (dmarc?.has('fail')) hit('DMARC_FAIL');
  else if (dmarc?.has('pass')) hit('DMARC_PASS');

  if (input.dnsblScore && input.dnsblScore > 0) hit('DNSBL', input.dnsblScore);

  const score = Math.round(hits.reduce((s, h) => s + h.score, 0) * 100) / 100;
  return { score, hits };
}
