/** Any-state commands (RFC 9051 6.1) and ENABLE, ID, NAMESPACE, IDLE, COMPRESS, QUOTA (RFC 5161, 2971, 2342, 2177, 4978, 9208). */
import { ImapBad, ImapNo } from '../errors.js';
import type { CompressCommand, EnableCommand, GetQuotaCommand, GetQuotaRootCommand, IdCommand, IdleCommand, LogoutCommand } from '../parser.js';
import type { ImapSession, Done } from '../session.js';
import { imapString } from '../../../lib/imap/format.js';

export async function runCapability(s: ImapSession): Promise<Done> {
  s.send(`* CAPABILITY ${s.capabilities().join(' ')}\r\n`);
  return {};
}

export async function runNoop(): Promise<Done> {
  return {};
}

export async function runLogout(s: ImapSession, cmd: LogoutCommand): Promise<'none'> {
  s.send(`* BYE Logging out\r\n${cmd.tag} OK LOGOUT completed\r\n`);
  s.state = 'logout';
  await s.out.flush();
  s.close();
  return 'none';
}

export async function runId(s: ImapSession, _cmd: IdCommand): Promise<Done> {
  s.send('* ID ("name" "Postern" "vendor" "Postern")\r\n');
  return {};
}

const ENABLEABLE = new Set(['CONDSTORE', 'QRESYNC', 'IMAP4REV2', 'UTF8=ACCEPT']);

export async function runEnable(s: ImapSession, cmd: EnableCommand): Promise<Done> {
  const now: string[] = [];
  for (const c of cmd.capabilities) {
    if (!ENABLEABLE.has(c) || s.enabled.has(c)) continue;
    s.enabled.add(c);
    now.push(c === 'IMAP4REV2' ? 'IMAP4rev2' : c);
    if (c === 'QRESYNC' && !s.enabled.has('CONDSTORE')) s.enabled.add('CONDSTORE'); // RFC 7162 3.2.3
    if (c === 'CONDSTORE' || c === 'QRESYNC') s.condstore = true;
  }
  s.send(`* ENABLED${now.length ? ' ' + now.join(' ') : ''}\r\n`);
  return {};
}

export async function runNamespace(s: ImapSession): Promise<Done> {
  s.send('* NAMESPACE (("" "/")) NIL NIL\r\n');
  return {};
}

export async function runIdle(s: ImapSession, cmd: IdleCommand): Promise<'none'> {
  s.startIdle(cmd.tag);
  return 'none';
}

export async function runCompress(s: ImapSession, cmd: CompressCommand): Promise<'none'> {
  if (cmd.algorithm !== 'DEFLATE') throw new ImapNo('CANNOT', 'Unknown compression algorithm');
  if (s.out.compressed) throw new ImapNo('COMPRESSIONACTIVE', 'Compression is already active');
  await s.startCompression(cmd.tag);
  return 'none';
}

/** RFC 9208: one quota root "" per account, resource STORAGE in KiB. */
async function sendQuota(s: ImapSession): Promise<void> {
  const acc = await s.deps.directory.accountById(s.account!.id);
  if (!acc) throw new ImapNo('NONEXISTENT', 'No such account');
  const limit = acc.quotaBytes > 0 ? ` ${Math.ceil(acc.quotaBytes / 1024)}` : null;
  s.send(`* QUOTA "" (${limit ? `STORAGE ${Math.ceil(acc.usedBytes / 1024)}${limit}` : ''})\r\n`);
}

export async function runGetQuotaRoot(s: ImapSession, cmd: GetQuotaRootCommand): Promise<Done> {
  const mb = await s.deps.mailboxes.get(s.account!.id, cmd.mailbox);
  if (!mb) throw new ImapNo('NONEXISTENT', 'No such mailbox');
  s.send(`* QUOTAROOT ${s.mailboxName(cmd.mailbox)} ""\r\n`);
  await sendQuota(s);
  return {};
}

export async function runGetQuota(s: ImapSession, cmd: GetQuotaCommand): Promise<Done> {
  if (cmd.root !== '') throw new ImapNo('NONEXISTENT', `No such quota root ${imapString(cmd.root)}`);
  await sendQuota(s);
  return {};
}

export async function runSetQuota(): Promise<Done> {
  throw new ImapNo('NOPERM', 'Quotas are set by the administrator (postern quota set)');
}

export function notImplemented(): never {
  throw new ImapBad('Not supported');
}
