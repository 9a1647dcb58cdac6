/**
 * Workload 3: IMAP mix. 20 clients for 20 s (5 s with --quick), each logged in on its own account with INBOX
 * selected, looping over FETCH / STORE / SEARCH / APPEND / EXPUNGE / SELECT; operations per second and p99
 * latency. Then logins per second: 20 clients connecting, LOGIN, LOGOUT in a loop (the auth caches of both
 * stacks are warm after the first login). TLS (993) and plain (143) for both: Dovecot allows plaintext logins
 * from the local host by default, Postern when the client's network is in [imap] plaintext_auth_networks (the
 * bench sets 127.0.0.0/8; the shipped default is none, every client must use TLS).
 */
import { alternate, settle, type BenchContext, type Workload } from '../lib/context.js';
import { LoadImap, makeMessage } from '../lib/imap.js';
import { PASSWORD, user } from '../lib/postern.js';
import { percentile } from '../lib/util.js';

const CLIENTS = 20;
const SEED = 50;
/**
 * The mix's accounts are user3..user22: the SMTP workload delivers to user1 and submission to user2, thousands of
 * messages by now, and the mix is meant to run on 50-message INBOXes (one client on an 8,000-message INBOX made
 * the figure a different workload, and not the same one on both stacks from run to run).
 */
const MIX_FIRST = 3;

async function seed(port: number, secure: boolean, accounts: number): Promise<void> {
  await Promise.all(
    Array.from({ length: Math.min(CLIENTS, accounts - MIX_FIRST + 1) }, async (_, k) => {
      const c = await LoadImap.connect(port, secure);
      await c.cmd(`LOGIN "${user(k + MIX_FIRST)}" "${PASSWORD}"`);
      for (let i = 0; i < SEED; i++) await c.cmd('APPEND INBOX', makeMessage(k * 1000 + i, 3000, user(k + MIX_FIRST)));
      c.close();
    }),
  );
}

/**
 * `phase` numbers the APPENDed messages: every phase (TLS, plain; each round) appends messages of its own, the
 * same ones on both stacks. (Re-appending the previous phase's messages let Postern's content-addressed store
 * find their bodies and full-text rows already there, which real mail would not.)
 */
async function mix(port: number, secure: boolean, seconds: number, phase: number): Promise<{ ops: number; p99: number; p50: number }> {
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, k) => {
      const c = await LoadImap.connect(port, secure);
      await c.cmd(`LOGIN "${user(k + MIX_FIRST)}" "${PASSWORD}"`);
      await c.cmd('SELECT INBOX');
      const timed = async (cmd: string, lit?: Buffer) => {
        const t = performance.now();
        await c.cmd(cmd, lit);
        lat.push(performance.now() - t);
      };
      for (let i = 0; performance.now() < end; i++) {
        await timed('FETCH 1:20 (UID FLAGS ENVELOPE RFC822.SIZE)');
        await timed(`STORE ${(i % SEED) + 1} +FLAGS (\\Seen)`);
        await timed('UID SEARCH UNSEEN');
        await timed('APPEND INBOX', makeMessage(100_000 + phase * 1_000_000 + k * 10_000 + i, 3000, user(k + MIX_FIRST)));
        await timed('UID FETCH 1:* (FLAGS)');
        await timed(`STORE ${SEED + 1}:* +FLAGS.SILENT (\\Deleted)`);
        await timed('EXPUNGE');
        await timed(`FETCH ${(i % SEED) + 1} BODY.PEEK[]`);
        await timed('SELECT INBOX');
      }
      c.close();
    }),
  );
  lat.sort((a, b) => a - b);
  return { ops: lat.length / seconds, p99: percentile(lat, 99), p50: percentile(lat, 50) };
}

async function logins(port: number, secure: boolean, seconds: number, accounts: number): Promise<number> {
  let n = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, k) => {
      while (performance.now() < end) {
        const c = await LoadImap.connect(port, secure);
        await c.cmd(`LOGIN "${user((k % accounts) + 1)}" "${PASSWORD}"`);
        await c.cmd('LOGOUT').catch(() => undefined);
        c.close();
        n++;
      }
    }),
  );
  return n / seconds;
}

export const imapMix: Workload = {
  name: 'imap',
  description: 'IMAP mix (20 clients) and logins per second',
  async run(ctx: BenchContext) {
    if (ctx.accounts < CLIENTS + MIX_FIRST - 1) throw new Error(`the IMAP mix needs --accounts ${CLIENTS + MIX_FIRST - 1} or more`);
    const seconds = ctx.quick ? 5 : 20;
    const params = `${CLIENTS} clients x ${seconds} s; FETCH/STORE/SEARCH/APPEND/UID FETCH FLAGS/STORE Deleted/EXPUNGE/BODY.PEEK[]/SELECT loop over ${SEED}-message INBOXes`;
    const ref = ctx.reference;
    await alternate(() => seed(ctx.postern.ports.imaps, true, ctx.accounts), ref ? () => seed(ref.ports.imaps, true, ctx.accounts) : null, 'imap seed');
    const side = async (name: 'postern' | 'reference', ports: { imaps: number; imap: number }, round: number) => {
      for (const [kind, port, secure] of [['tls', ports.imaps, true], ['plain', ports.imap, false]] as const) {
        // The TLS phase's APPENDs leave Postern's text indexing of them running for a few seconds (nice 10).
        if (kind === 'plain') await settle(`imap ${kind} mix round ${round + 1} (${name})`);
        const m = await mix(port, secure, seconds, round * 2 + (secure ? 0 : 1));
        ctx.report.add(name, `imap.${kind}.ops`, m.ops, 'ops/s', params, ctx.rounds);
        ctx.report.add(name, `imap.${kind}.p99`, m.p99, 'ms', params, ctx.rounds);
        ctx.report.add(name, `imap.${kind}.p50`, m.p50, 'ms', params, ctx.rounds);
        const l = await logins(port, secure, Math.min(seconds, 10), ctx.accounts);
        ctx.report.add(name, `imap.${kind}.logins`, l, 'logins/s', `${CLIENTS} clients: ${secure ? 'TLS ' : ''}connect, LOGIN, LOGOUT`, ctx.rounds);
      }
    };
    for (let round = 0; round < ctx.rounds; round++) {
      await alternate(() => side('postern', ctx.postern.ports, round), ref ? () => side('reference', ref.ports, round) : null, `imap tls mix round ${round + 1}`);
    }
  },
};
