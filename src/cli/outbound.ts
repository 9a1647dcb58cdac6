/**
 * The `postern queue`, `postern relay` and `postern dkim` verbs. They work on the data directory of a running
 * server: the queue runner polls the queue (queue.poll_interval), and relay routes and DKIM keys are read on
 * every delivery, so changes apply without a restart. Failures are AdminErrors (one line).
 */
import { isValidDomain } from '../lib/address.js';
import { formatSize } from '../lib/size.js';
import type { DkimKeys, DkimKeyType } from '../core/dkim.js';
import type { QueueEntry, Store } from '../storage/types.js';
import { AdminError } from './admin.js';

const iso = (ms: number | null) => (ms ? new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z') : '-');

function domainArg(d: string): string {
  const x = d.toLowerCase().replace(/^@/, '');
  if (!isValidDomain(x)) throw new AdminError(`malformed domain "${d}"`);
  return x;
}

export class OutboundAdmin {
  constructor(
    private readonly store: Store,
    private readonly now: () => number = Date.now,
  ) {}

  async queueList(): Promise<string[]> {
    const entries = await this.store.queue.list();
    if (!entries.length) return ['queue is empty'];
    return entries.map((e) => {
      const counts = new Map<string, number>();
      for (const r of e.recipients) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
      const next = Math.min(...e.recipients.filter((r) => r.status === 'queued').map((r) => r.nextAttempt));
      const state = [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
      return `${e.id}  ${iso(e.created)}  ${formatSize(e.size).padStart(5)}  <${e.sender}>  ${state}${Number.isFinite(next) ? `  next ${iso(next)}` : ''}`;
    });
  }

  async queueShow(id: string): Promise<string[]> {
    const e = await this.need(id);
    const out = [
      `id: ${e.id}`,
      `sender: <${e.sender}>`,
      `created: ${iso(e.created)}`,
      `size: ${e.size}`,
      ...(e.envid ? [`envid: ${e.envid}`] : []),
      ...(e.ret ? [`ret: ${e.ret}`] : []),
      `smtputf8: ${e.smtputf8}`,
      'recipients:',
    ];
    for (const r of e.recipients) {
      out.push(`  <${r.address}>  ${r.status}  attempts ${r.attempts}${r.status === 'queued' ? `  next ${iso(r.nextAttempt)}` : ''}${r.notify ? `  notify ${r.notify.join(',')}` : ''}`);
      if (r.lastError) out.push(`    last: ${r.statusCode ?? ''} ${r.lastError}${r.remoteMta ? ` (${r.remoteMta})` : ''}`);
      if (r.tls) out.push(`    tls: ${r.tls.version} ${r.tls.cipher} certificate ${r.tls.verified ? 'verified' : 'not verified'}`);
    }
    if (e.attempts?.length) {
      out.push('attempts:');
      for (const a of e.attempts) {
        const rc = e.recipients.find((r) => r.id === a.recipientId);
        out.push(`  ${iso(a.at)}  <${rc?.address ?? a.recipientId}>  ${a.status}  ${a.statusCode}  ${a.diagnostic}${a.tls ? `  [${a.tls.version}${a.tls.verified ? ', verified' : ''}]` : ''}`);
      }
    }
    return out;
  }

  async queueRetry(id: string | null): Promise<string> {
    if (id !== null) await this.need(id);
    const n = await this.store.queue.retryNow(id, this.now());
    return `${n} recipient(s) scheduled for immediate retry`;
  }

  async queueDelete(id: string): Promise<string> {
    if (!(await this.store.queue.delete(id))) throw new AdminError(`no queue entry ${id}`);
    return `deleted ${id}`;
  }

  async queueHold(id: string): Promise<string> {
    await this.need(id);
    return `held ${id} (${await this.store.queue.hold(id)} recipient(s))`;
  }

  async queueRelease(id: string): Promise<string> {
    await this.need(id);
    return `released ${id} (${await this.store.queue.release(id, this.now())} recipient(s))`;
  }

  async relayAddDomain(domain: string, hostPort: string): Promise<string> {
    const d = domainArg(domain);
    if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(hostPort)) throw new AdminError(`expected host:port, e.g. smtp.relay.example:587 (465 = implicit TLS, other ports STARTTLS), got "${hostPort}"`);
    await this.store.queue.setRelayRoute(d, { host: hostPort.toLowerCase(), excluded: false });
    return `mail from ${d} is relayed through ${hostPort.toLowerCase()}`;
  }

  async relayAddAuth(domain: string, user: string, password: string): Promise<string> {
    const d = domainArg(domain);
    if (!user || /[\r\n\0]/.test(user + password)) throw new AdminError('user and password must not be empty or contain line breaks');
    await this.store.queue.setRelayRoute(d, { username: user, password });
    return `relay credentials set for ${d} (user ${user})`;
  }

  async relayExcludeDomain(domain: string): Promise<string> {
    const d = domainArg(domain);
    await this.store.queue.setRelayRoute(d, { excluded: true });
    return `mail from ${d} is delivered directly (not through a relay)`;
  }

  async relayList(): Promise<string[]> {
    const rs = await this.store.queue.relayRoutes();
    if (!rs.length) return ['no per-domain relay settings'];
    return rs.map((r) => `${r.domain}  ${r.excluded ? 'excluded (direct delivery)' : (r.host ?? '(default relay)')}${r.username ? `  auth ${r.username}` : ''}`);
  }

  async dkimGenerate(keys: DkimKeys, domains: string[], opts: { selector?: string; type?: string; bits?: string }): Promise<string[]> {
    const type = (opts.type ?? 'rsa').toLowerCase();
    if (type !== 'rsa' && type !== 'ed25519') throw new AdminError(`--type must be rsa or ed25519, not "${opts.type}"`);
    const bits = opts.bits === undefined ? undefined : Number(opts.bits);
    if (bits !== undefined && !Number.isInteger(bits)) throw new AdminError(`--bits must be a number, not "${opts.bits}"`);
    let list = domains.map(domainArg);
    if (!list.length) list = (await this.store.directory.listDomains()).map((d) => d.name);
    if (!list.length) throw new AdminError('no domain given and no local domains yet (add an account first)');
    const out: string[] = [];
    for (const d of list) {
      try {
        const g = await keys.generate(d, { selector: opts.selector, type: type as DkimKeyType, bits });
        out.push(`# ${d}: key ${g.file}; publish:`, g.zone);
      } catch (err) {
        throw new AdminError((err as Error).message);
      }
    }
    return out;
  }

  private async need(id: string): Promise<QueueEntry> {
    const e = await this.store.queue.get(id);
    if (!e) throw new AdminError(`no queue entry ${id}`);
    return e;
  }
}
