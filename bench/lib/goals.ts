/**
 * The performance goals (issue 7), checked against a run's figures: the report says which are met and which are
 * not (printed at the end of the run and kept in the JSON report). A goal whose figures the run did not measure
 * (a workload left out, no --vs-reference for a ratio) is not listed.
 */
import type { Figure } from './util.js';

export interface GoalResult {
  goal: string;
  value: string;
  met: boolean;
}

type Check = (get: (name: string) => Figure | undefined) => { value: number; text: string; met: boolean } | null;

const ratioAtLeast =
  (name: string, min: number): Check =>
  (get) => {
    const f = get(name);
    if (f?.ratio === undefined) return null;
    return { value: f.ratio, text: `${f.ratio.toFixed(2)}x`, met: f.ratio >= min };
  };

const posternBelow =
  (name: string, max: number, inclusive = false): Check =>
  (get) => {
    const f = get(name);
    if (f?.postern === undefined) return null;
    return { value: f.postern, text: `${f.postern.toFixed(1)} ${f.unit}`, met: inclusive ? f.postern <= max : f.postern < max };
  };

/** Postern's end-to-end rate against the reference's acknowledged rate (Postfix's accept, before delivery). */
const endToEndVsAccept =
  (label: string): Check =>
  (get) => {
    const e2e = get(`${label}.end_to_end`);
    const acked = get(`${label}.acked`);
    if (e2e?.postern === undefined || acked?.reference === undefined) return null;
    const r = e2e.postern / acked.reference;
    return { value: r, text: `${r.toFixed(2)}x`, met: r >= 1 };
  };

const SMTP = ['smtp.4k.newconn', 'smtp.4k.reused', 'smtp.64k.newconn', 'smtp.64k.reused'];

const GOALS: Array<[string, Check]> = [
  ...SMTP.flatMap((l): Array<[string, Check]> => [
    [`${l} end to end >= 2x Postfix+Dovecot end to end`, ratioAtLeast(`${l}.end_to_end`, 2)],
    [`${l} end to end >= Postfix's accept-only rate`, endToEndVsAccept(l)],
  ]),
  ['IMAP mix over TLS >= 1.5x Dovecot', ratioAtLeast('imap.tls.ops', 1.5)],
  ['IMAP mix without TLS >= 1.5x Dovecot', ratioAtLeast('imap.plain.ops', 1.5)],
  ['IMAP logins per second over TLS >= Dovecot', ratioAtLeast('imap.tls.logins', 1)],
  ['IMAP logins per second without TLS >= Dovecot', ratioAtLeast('imap.plain.logins', 1)],
  ['idle IMAP connection without TLS <= 50 KB', posternBelow('idle_imap.plain.pss_per_conn', 50, true)],
  ['idle IMAP connection over TLS <= 100 KB', posternBelow('idle_imap.tls.pss_per_conn', 100, true)],
  ['100,000 messages: SELECT < 50 ms', posternBelow('large_mailbox.select', 50)],
  ['100,000 messages: UID FETCH 1:* (FLAGS) < 500 ms', posternBelow('large_mailbox.uid_fetch_all_flags', 500)],
  ['100,000 messages: SEARCH TEXT < 300 ms', posternBelow('large_mailbox.search_text', 300)],
  ['idle RSS < 100 MB', posternBelow('idle.rss', 100)],
  ['start-up to listening < 1 s', posternBelow('startup.time', 1000)],
];

export function checkGoals(figures: Figure[]): GoalResult[] {
  const get = (name: string) => figures.find((f) => f.name === name);
  const out: GoalResult[] = [];
  for (const [goal, check] of GOALS) {
    const r = check(get);
    if (r) out.push({ goal, value: r.text, met: r.met });
  }
  return out;
}
