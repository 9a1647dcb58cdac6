/**
 * bench/imap (issue 3): the IMAP benchmark. Runs the IMAP workloads of bench/run.ts: the 20-client
 * LOGIN/SELECT/FETCH/STORE/SEARCH/APPEND/EXPUNGE mix and logins per second (`imap`), 1,000 idle connections in
 * IDLE, memory per connection (`idle`), and the 100,000-message mailbox: SELECT, UID FETCH 1:* (FLAGS),
 * FETCH 1:100 (ENVELOPE BODYSTRUCTURE), SEARCH SUBJECT, SEARCH TEXT (`large`).
 *
 *   node --import tsx bench/imap.ts [--vs-reference] [--quick]
 *
 * With --vs-reference the same workloads run against Dovecot (installed with apt-get if missing), side by side.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { BENCH } from './lib/util.js';

const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(BENCH, 'run.ts'), '--only', 'imap,idle,large', ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
