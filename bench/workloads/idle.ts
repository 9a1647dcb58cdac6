/**
 * Workload 5: many IMAP connections idling (logged in, INBOX selected, in IDLE). Memory per connection as the
 * server's PSS delta (Postern: its process; Dovecot: its whole process tree, which forks per connection) and
 * the system-wide used-memory delta, divided by the number of connections.
 * Plain (143) logins: Dovecot allows them from the local host by default; Postern only from [imap]
 * plaintext_auth_networks, which the bench sets to 127.0.0.0/8 (shipped default: none). A greeted-only plain
 * connection is measured for Postern too (what any client costs before it logs in).
 */
import { type BenchContext, type Workload } from '../lib/context.js';
import { LoadImap } from '../lib/imap.js';
import { PASSWORD, user } from '../lib/postern.js';
import { processTree, pssOf, sleep, usedMemKb } from '../lib/util.js';

async function idleConnections(port: number, secure: boolean, n: number, accounts: number, pss: () => number, login = true): Promise<{ pssKb: number; sysKb: number }> {
  await sleep(500);
  const pss0 = pss();
  const sys0 = usedMemKb();
  const conns: LoadImap[] = [];
  try {
    for (let i = 0; i < n; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, n - i) }, async (_, k) => {
          const c = await LoadImap.connect(port, secure);
          if (!login) return c;
          await c.cmd(`LOGIN "${user(((i + k) % accounts) + 1)}" "${PASSWORD}"`);
          await c.cmd('SELECT INBOX');
          await c.idle();
          return c;
        }),
      );
      conns.push(...batch);
    }
    await sleep(1500);
    return { pssKb: (pss() - pss0) / n, sysKb: (usedMemKb() - sys0) / n };
  } finally {
    for (const c of conns) c.close();
    await sleep(500);
  }
}

export const idle: Workload = {
  name: 'idle',
  description: 'IMAP connections in IDLE: memory per connection',
  async run(ctx: BenchContext) {
    const n = ctx.quick ? 300 : 1000;
    const params = `${n} connections, LOGIN + SELECT INBOX + IDLE`;
    // A fresh server, warmed by one round of logins, so that heap growth or collection left by earlier workloads
    // does not land in the delta.
    const srv = await ctx.newPostern({ accounts: ctx.accounts });
    try {
      await srv.start();
      await idleConnections(srv.ports.imaps, true, Math.min(50, n), ctx.accounts, () => 0);
      const p = await idleConnections(srv.ports.imaps, true, n, ctx.accounts, () => pssOf([srv.pid]));
      ctx.report.add('postern', 'idle_imap.tls.pss_per_conn', p.pssKb, 'KB', params);
      ctx.report.add('postern', 'idle_imap.tls.sysmem_per_conn', p.sysKb, 'KB', params);
      const pp = await idleConnections(srv.ports.imap, false, n, ctx.accounts, () => pssOf([srv.pid]));
      ctx.report.add('postern', 'idle_imap.plain.pss_per_conn', pp.pssKb, 'KB', params);
      ctx.report.add('postern', 'idle_imap.plain.sysmem_per_conn', pp.sysKb, 'KB', params);
      const pl = await idleConnections(srv.ports.imap, false, n, ctx.accounts, () => pssOf([srv.pid]), false);
      ctx.report.only('postern', 'idle_imap.plain_greeted.pss_per_conn', pl.pssKb, 'KB', `${n} connections on 143, greeting only`);
    } finally {
      await srv.stop();
      srv.cleanup();
    }
    const ref = ctx.reference;
    if (!ref) return;
    const dpss = () => pssOf(processTree(ref.dovecotPid()));
    const r = await idleConnections(ref.ports.imaps, true, n, ctx.accounts, dpss);
    ctx.report.add('reference', 'idle_imap.tls.pss_per_conn', r.pssKb, 'KB', params);
    ctx.report.add('reference', 'idle_imap.tls.sysmem_per_conn', r.sysKb, 'KB', params);
    const rp = await idleConnections(ref.ports.imap, false, n, ctx.accounts, dpss);
    ctx.report.add('reference', 'idle_imap.plain.pss_per_conn', rp.pssKb, 'KB', params);
    ctx.report.add('reference', 'idle_imap.plain.sysmem_per_conn', rp.sysKb, 'KB', params);
  },
};
