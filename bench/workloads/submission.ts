/** Workload 2: submission over implicit TLS with AUTH PLAIN: 10 sessions, 4 KB messages to a local account. */
import { alternate, type BenchContext, type Workload } from '../lib/context.js';
import { submissionLoad, waitCount } from '../lib/smtp-client.js';
import { PASSWORD, user } from '../lib/postern.js';

export const submission: Workload = {
  name: 'submission',
  description: 'submission over implicit TLS with AUTH (10 sessions)',
  async run(ctx: BenchContext) {
    const SESSIONS = 10;
    const n = ctx.quick ? 400 : 1500;
    const params = `${SESSIONS} TLS sessions, AUTH PLAIN once per session, ${n} messages of 4 KB`;
    const side = async (name: 'postern' | 'reference', port: number, count: () => number) => {
      const before = count();
      const t0 = performance.now();
      const secs = await submissionLoad(port, { sessions: SESSIONS, messages: n, size: 4096, user, password: PASSWORD, to: user(2) });
      const e2e = await waitCount(count, before + n, t0);
      ctx.report.add(name, 'submission.acked', n / secs, 'msg/s', params, ctx.rounds);
      ctx.report.add(name, 'submission.end_to_end', n / e2e, 'msg/s', params, ctx.rounds);
    };
    const ref = ctx.reference;
    for (let round = 0; round < ctx.rounds; round++) {
      await alternate(
        () => side('postern', ctx.postern.ports.submissions, () => ctx.postern.messageCount()),
        ref ? () => side('reference', ref.ports.submissions, () => ref.messageCount()) : null,
        `submission round ${round + 1}`,
      );
    }
  },
};
