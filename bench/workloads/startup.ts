/**
 * Workload 6: start-up time (spawn to every listener bound) and memory at idle 2 s after start (Postern: RSS and
 * PSS of its one process; the reference: PSS of Postfix's and Dovecot's process trees, RSS summed for comparison).
 */
import { type BenchContext, type Workload } from '../lib/context.js';
import { processTree, pssOf, rssKb, sleep } from '../lib/util.js';

export const startup: Workload = {
  name: 'startup',
  description: 'start-up time and idle memory',
  async run(ctx: BenchContext) {
    const rounds = ctx.quick ? 2 : 3;
    const starts: number[] = [];
    let pss = 0;
    let rss = 0;
    for (let i = 0; i < rounds; i++) {
      const p = await ctx.newPostern({ accounts: ctx.accounts });
      try {
        await p.start();
        starts.push(p.startMs);
        await sleep(2000);
        rss = rssKb(p.pid);
        pss = pssOf([p.pid]);
      } finally {
        await p.stop();
        p.cleanup();
      }
    }
    const refStarts: number[] = [];
    let refPss = 0;
    let refRss = 0;
    if (ctx.reference) {
      for (let i = 0; i < rounds; i++) {
        const r = await ctx.newReference({ accounts: ctx.accounts });
        try {
          refStarts.push(await r.start());
          await sleep(2000);
          const pids = r.pids().flatMap((p) => processTree(p));
          refPss = pssOf(pids);
          refRss = pids.reduce((s, p) => s + rssKb(p), 0);
        } finally {
          await r.stop();
          r.cleanup();
        }
      }
    }
    const min = (a: number[]) => Math.min(...a);
    ctx.report.add('postern', 'startup.time', min(starts), 'ms', `best of ${rounds}; spawn to all listeners bound`);
    ctx.report.add('postern', 'idle.pss', pss / 1024, 'MB', '2 s after start');
    ctx.report.add('postern', 'idle.rss', rss / 1024, 'MB', '2 s after start');
    if (ctx.reference) {
      ctx.report.add('reference', 'startup.time', min(refStarts), 'ms', `best of ${rounds}; spawn to all listeners bound`);
      ctx.report.add('reference', 'idle.pss', refPss / 1024, 'MB', '2 s after start');
      ctx.report.add('reference', 'idle.rss', refRss / 1024, 'MB', '2 s after start');
    }
  },
};
