/**
 * Workload 4: a large INBOX (100,000 generated messages, 10,000 with --quick; about 3 KB each, realistic headers
 * and text). Postern's INBOX is filled through its own ingest (the path SMTP and APPEND take) in bulk, in
 * process, before the server starts; Dovecot's as Maildir files written directly (it indexes them at the first
 * SELECT, which the "first" figures include). One TLS client; each command is timed the first time and as the
 * median of 3 warm runs.
 */
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { type BenchContext, type Workload } from '../lib/context.js';
import { LoadImap, makeMessage } from '../lib/imap.js';
import { DOMAIN, PASSWORD, user } from '../lib/postern.js';
import { median, sh } from '../lib/util.js';
import { SqliteStore } from '../../src/storage/sqlite/store.js';
import { Ingest } from '../../src/core/ingest.js';
import { ChangeBus } from '../../src/core/changes.js';

const COMMANDS: [string, string][] = [
  ['select', 'SELECT INBOX'],
  ['uid_fetch_all_flags', 'UID FETCH 1:* (FLAGS)'],
  ['fetch_100_envelope_bodystructure', 'FETCH 1:100 (ENVELOPE BODYSTRUCTURE)'],
  ['search_subject', 'SEARCH SUBJECT "budget"'],
  ['search_text', 'SEARCH TEXT "approval"'],
];

async function measure(port: number, label: 'postern' | 'reference', ctx: BenchContext, n: number): Promise<void> {
  const c = await LoadImap.connect(port, true);
  try {
    await c.cmd(`LOGIN "${user(1)}" "${PASSWORD}"`);
    const times = new Map<string, number[]>();
    for (let round = 0; round < 4; round++) {
      for (const [name, cmd] of COMMANDS) {
        const t = performance.now();
        await c.cmd(cmd);
        const ms = performance.now() - t;
        if (!times.has(name)) times.set(name, []);
        times.get(name)!.push(ms);
      }
    }
    for (const [name] of COMMANDS) {
      const [first, ...warm] = times.get(name)!;
      ctx.report.add(label, `large_mailbox.${name}.first`, first!, 'ms', `${n} messages`);
      ctx.report.add(label, `large_mailbox.${name}`, median(warm), 'ms', `${n} messages, median of 3 warm`);
    }
  } finally {
    c.close();
  }
}

export const largeMailbox: Workload = {
  name: 'large',
  description: 'large mailbox (100,000 messages): SELECT, FETCH, SEARCH',
  async run(ctx: BenchContext) {
    const n = ctx.quick ? 10_000 : 100_000;
    const size = (i: number) => 2000 + ((i * 7919) % 2000);
    // Postern: bulk ingest through core/ingest (group commit), server stopped.
    const p = await ctx.newPostern({ accounts: 1 });
    try {
      const t0 = performance.now();
      const store = new SqliteStore({ dataDir: p.dataDir });
      try {
        const ingest = new Ingest({ messages: store.messages, blobs: store.blobs, changes: new ChangeBus() });
        const acc = await store.directory.getAccount(user(1));
        const inbox = await store.mailboxes.get(acc!.id, 'INBOX');
        for (let i = 0; i < n; i += 500) {
          await Promise.all(Array.from({ length: Math.min(500, n - i) }, (_, k) => ingest.ingest({ raw: makeMessage(i + k, size(i + k), user(1)), targets: [{ mailboxId: inbox!.id }] })));
        }
        // The full-text index is written after the commits (core/ingest.ts): measure a mailbox whose text is indexed.
        await ingest.textIndexed();
      } finally {
        await store.close();
      }
      const secs = (performance.now() - t0) / 1000;
      ctx.report.only('postern', 'large_mailbox.populate', n / secs, 'msg/s', `${n} messages through ingest, in process`);
      await p.start();
      await measure(p.ports.imaps, 'postern', ctx, n);
    } finally {
      await p.stop();
      p.cleanup();
    }
    if (!ctx.reference) return;
    const r = await ctx.newReference({ accounts: 1 });
    try {
      const md = path.join(r.mailDir, DOMAIN, 'user1', 'Maildir');
      for (const d of ['cur', 'new', 'tmp']) mkdirSync(path.join(md, d), { recursive: true });
      const base = 1_700_000_000;
      for (let i = 0; i < n; i++) {
        const m = makeMessage(i, size(i), user(1));
        writeFileSync(path.join(md, 'cur', `${base + i}.M${i}P1.bench,S=${m.length}:2,`), m);
      }
      const nobody = Number(execFileSync('id', ['-u', 'nobody']).toString().trim());
      const nogroup = Number(execFileSync('id', ['-g', 'nobody']).toString().trim());
      chownSync(path.join(r.mailDir, DOMAIN), nobody, nogroup);
      await sh('chown', ['-R', `${nobody}:${nogroup}`, path.join(r.mailDir, DOMAIN)]);
      await r.start();
      await measure(r.ports.imaps, 'reference', ctx, n);
    } finally {
      await r.stop();
      r.cleanup();
    }
  },
};
