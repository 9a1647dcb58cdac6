/**
 * Workload 1: SMTP inbound on port 25. smtp-source, 20 concurrent sessions, 4 KB and 64 KB bodies, a new
 * connection per message and connections reused. Figures: acknowledged/s (smtp-source's run time) and end to
 * end (until every message is readable in the mailbox: Postern's committed rows, Dovecot's Maildir files).
 * Postern answers 250 only once the message is durable in the mailbox, so its two figures coincide; Postfix
 * answers once its queue file is fsynced and delivers over LMTP afterwards.
 * Postern runs with banner_delay = 0 like Postfix's smtpd (no postscreen in the reference); one more figure
 * shows the shipped banner_delay (100 ms, the early-talker wait when [protection] is off).
 */
import { alternate, type BenchContext, type Workload } from '../lib/context.js';
import { smtpSource, waitCount } from '../lib/smtp-client.js';
import { user } from '../lib/postern.js';

export const smtp: Workload = {
  name: 'smtp',
  description: 'SMTP inbound on port 25 (smtp-source, 20 sessions)',
  async run(ctx: BenchContext) {
    const SESSIONS = 20;
    const cases = [
      { size: 4096, reuse: false, n: ctx.quick ? 600 : 2000 },
      { size: 4096, reuse: true, n: ctx.quick ? 1000 : 3000 },
      { size: 65536, reuse: false, n: ctx.quick ? 300 : 1000 },
      { size: 65536, reuse: true, n: ctx.quick ? 300 : 1000 },
    ];
    for (const c of cases) {
      const label = `smtp.${c.size / 1024}k.${c.reuse ? 'reused' : 'newconn'}`;
      const params = `${SESSIONS} sessions, ${c.n} messages of ${c.size / 1024} KB, ${c.reuse ? 'connections reused' : 'new connection per message'}`;
      const side = async (name: 'postern' | 'reference', port: number, count: () => number) => {
        const before = count();
        const t0 = performance.now();
        const r = await smtpSource(port, { sessions: SESSIONS, messages: c.n, size: c.size, reuse: c.reuse, to: user(1) });
        if (!r.ok) throw new Error(`${name} smtp-source failed: ${r.err}`);
        const e2e = await waitCount(count, before + c.n, t0);
        ctx.report.add(name, `${label}.acked`, c.n / r.seconds, 'msg/s', params, ctx.rounds);
        ctx.report.add(name, `${label}.end_to_end`, c.n / e2e, 'msg/s', params, ctx.rounds);
      };
      const ref = ctx.reference;
      for (let round = 0; round < ctx.rounds; round++) {
        await alternate(
          () => side('postern', ctx.postern.ports.smtp, () => ctx.postern.messageCount()),
          ref ? () => side('reference', ref.ports.smtp, () => ref.messageCount()) : null,
          `${label} round ${round + 1}`,
        );
      }
    }
    // The shipped early-talker wait without [protection]: a latency cap at 20 sessions with a connection per message.
    const p = await ctx.newPostern({ accounts: 1, bannerDelay: '100ms' });
    try {
      await p.start();
      const n = ctx.quick ? 300 : 1000;
      const t0 = performance.now();
      const r = await smtpSource(p.ports.smtp, { sessions: SESSIONS, messages: n, size: 4096, reuse: false, to: user(1) });
      if (!r.ok) throw new Error(`smtp-source failed: ${r.err}`);
      const e2e = await waitCount(() => p.messageCount(), n, t0);
      ctx.report.only('postern', 'smtp.4k.newconn.banner_delay_100ms.end_to_end', n / e2e, 'msg/s', 'banner_delay = 100ms (shipped default, [protection] off)');
    } finally {
      await p.stop();
      p.cleanup();
    }
  },
};
