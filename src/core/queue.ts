/**
 * The outbound queue runner: picks due recipients from the durable queue, groups them by destination (a
 * recipient domain's MX, or a relay), and hands each group to Outbound over one connection; records every
 * recipient's result, schedules retries, sends DSNs, and deletes finished entries.
 *
 * Invariants and order:
 *  - Recipients are leased before an attempt and the lease is released with the result (one transaction);
 *    every leased recipient gets a result, temporary when the sender reported none (or threw);
 *    start() clears stale leases, so after a crash (kill -9) only the attempt in flight can repeat: a message
 *    is never lost, and at most that attempt is duplicated.
 *  - Retries: attempt n failed temporarily -> next in retry_base * 2^(n-1), capped at retry_max and at the
 *    expiry time (created + lifetime), when one last attempt is made; a temporary failure after that fails
 *    the recipient (RFC 5321 4.5.4.1: give up after 4-5 days) with status 4.4.7.
 *  - Concurrency: at most max_connections workers overall and max_connections_per_domain per destination;
 *    a destination that hangs only holds its own slots, so others keep flowing.
 *  - DSNs are created after the result is durable (dsn_pending), then delivered through Delivery (local
 *    senders: ingest; remote: queued with the null sender), then cleared; an entry is deleted only after that.
 *    Never a DSN for a null sender (RFC 3461 6.1 / RFC 5321 4.5.5). One DSN sender per entry at a time (a
 *    worker and a housekeeping pass could otherwise both send the same pending DSN).
 * Clock, randomness and the outbound sender are injected; nothing here touches the network directly.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import type { BlobStore, DueRecipient, QueueEntry, QueueRepo, QueueResult } from '../storage/types.js';
import type { Delivery } from './delivery.js';
import { buildDsn, wantsDsn, type DsnAction, type DsnRecipient } from './dsn.js';
import type { OutboundMessage, RecipientOutcome, RelayTarget, Route } from './outbound.js';

export interface QueueSettings {
  hostname: string;
  lifetimeMs: number;
  /** 0 = no delay DSNs. */
  delayWarningMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  pollIntervalMs: number;
  maxConnections: number;
  maxConnectionsPerDomain: number;
  maxMessagesPerConnection: number;
  /** The global relay ([delivery] relay), or null for direct delivery. */
  relay: RelayTarget | null;
}

export interface OutboundSender {
  deliver(route: Route, messages: OutboundMessage[]): Promise<RecipientOutcome[]>;
}

export interface QueueDeps {
  repo: QueueRepo;
  blobs: BlobStore;
  outbound: OutboundSender;
  delivery: Pick<Delivery, 'deliver'>;
  log: Logger;
  now?: () => number;
  token?: () => string;
}

/** Retry interval after the n-th failed attempt (n >= 1): base, 2 base, 4 base ... capped. */
export function backoff(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
}

const LEASE_MS = 60 * 60_000;

export class QueueRunner {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private stopped = true;
  private ticking: Promise<void> | null = null;
  private rerun = false;
  private readonly active = new Map<string, number>();
  private activeTotal = 0;
  private readonly workers = new Set<Promise<void>>();
  /** Sender domains seen routed through each relay (route key): skipped together while that relay is busy. */
  private readonly relaySenders = new Map<string, Set<string>>();
  /** Entries whose DSNs are being sent: a worker and a housekeeping pass must not both send them. */
  private readonly dsnInFlight = new Set<string>();
  private readonly now: () => number;
  private readonly token: () => string;

  constructor(
    private readonly deps: QueueDeps,
    private settings: QueueSettings,
  ) {
    this.now = deps.now ?? Date.now;
    this.token = deps.token ?? (() => randomBytes(12).toString('base64url'));
  }

  async start(): Promise<void> {
    await this.deps.repo.clearLeases();
    this.stopped = false;
    this.schedule(0);
  }

  updateSettings(next: QueueSettings): void {
    this.settings = next;
  }

  /** Run a pass soon (new mail queued, CLI retry). */
  kick(): void {
    if (this.stopped) return;
    if (this.ticking) {
      this.rerun = true;
      return;
    }
    this.schedule(0);
  }

  /** Stops picking new work; waits up to graceMs for attempts in flight (their leases die with the process). */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const all = Promise.all([this.ticking, ...this.workers]).then(() => undefined);
    await Promise.race([all, new Promise<void>((r) => setTimeout(r, graceMs).unref())]);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.ticking = this.tick()
        .catch((err) => this.deps.log.error({ err: (err as Error).message }, 'queue pass failed'))
        .finally(() => {
          this.ticking = null;
          const again = this.rerun;
          this.rerun = false;
          this.schedule(again ? 0 : this.settings.pollIntervalMs);
        });
    }, ms);
    this.timer.unref?.();
  }

  /** One pass: housekeeping, then start workers for due recipients within the concurrency limits. */
  async tick(): Promise<void> {
    const now = this.now();
    await this.housekeeping(now);
    if (this.activeTotal >= this.settings.maxConnections) return;
    // Destinations already at their connection limit are left out of the page: a backlog of thousands of
    // recipients for one of them would otherwise fill it on every pass and starve every other destination.
    const skip = { recipientDomains: [] as string[], senderDomains: [] as string[] };
    for (const [key, n] of this.active) {
      if (n < this.settings.maxConnectionsPerDomain) continue;
      if (key.startsWith('mx:')) skip.recipientDomains.push(key.slice(3));
      else skip.senderDomains.push(...(this.relaySenders.get(key) ?? []));
    }
    const due = await this.deps.repo.due(now, 2000, skip);
    if (!due.length) return;
    const groups = new Map<string, { route: Route; items: DueRecipient[] }>();
    const routeCache = new Map<string, { key: string; route: Route } | null>();
    for (const d of due) {
      const r = await this.routeFor(d, routeCache);
      const g = groups.get(r.key) ?? { route: r.route, items: [] };
      g.items.push(d);
      groups.set(r.key, g);
    }
    for (const [key, g] of groups) {
      const free = Math.min(this.settings.maxConnectionsPerDomain - (this.active.get(key) ?? 0), this.settings.maxConnections - this.activeTotal);
      if (free <= 0) continue;
      const leased = new Set(await this.deps.repo.lease(g.items.map((i) => i.recipientId), now, now + LEASE_MS));
      const items = g.items.filter((i) => leased.has(i.recipientId));
      if (!items.length) continue;
      // Split the destination's messages over up to `free` connections.
      const byEntry = new Map<string, DueRecipient[]>();
      for (const i of items) byEntry.set(i.queueId, [...(byEntry.get(i.queueId) ?? []), i]);
      const entries = [...byEntry.entries()];
      const conns = Math.min(free, Math.ceil(entries.length / Math.max(1, Math.ceil(entries.length / free))), entries.length);
      const per = Math.ceil(entries.length / conns);
      for (let c = 0; c < conns; c++) {
        const part = entries.slice(c * per, (c + 1) * per);
        if (!part.length) continue;
        this.startWorker(key, g.route, part);
      }
    }
  }

  private startWorker(key: string, route: Route, part: [string, DueRecipient[]][]): void {
    this.active.set(key, (this.active.get(key) ?? 0) + 1);
    this.activeTotal++;
    const w = this.attempt(route, part)
      .catch((err) => this.deps.log.error({ dest: key, err: (err as Error).message }, 'delivery attempt failed unexpectedly'))
      .finally(() => {
        this.active.set(key, (this.active.get(key) ?? 1) - 1);
        if (!this.active.get(key)) this.active.delete(key);
        this.activeTotal--;
        this.workers.delete(w);
        this.kick();
      });
    this.workers.add(w);
  }

  /** Destination of a recipient: per-sender-domain route, else the global relay, else the recipient's MX. */
  private async routeFor(d: DueRecipient, cache: Map<string, { key: string; route: Route } | null>): Promise<{ key: string; route: Route }> {
    const senderDomain = d.sender.includes('@') ? d.sender.slice(d.sender.lastIndexOf('@') + 1).toLowerCase() : '';
    if (!cache.has(senderDomain)) {
      const rr = senderDomain ? await this.deps.repo.relayRoute(senderDomain) : null;
      let relay: RelayTarget | null = null;
      if (!rr?.excluded) {
        if (rr?.host) {
          const [host, port] = splitHostPort(rr.host);
          relay = { host, port, implicitTls: port === 465, username: rr.username, password: rr.password };
        } else if (this.settings.relay) {
          relay = { ...this.settings.relay, ...(rr?.username ? { username: rr.username, password: rr.password } : {}) };
        }
      }
      const entry = relay ? { key: `relay:${relay.host}:${relay.port}:${relay.username ?? ''}`, route: { kind: 'relay' as const, relay } } : null;
      cache.set(senderDomain, entry);
      if (entry) {
        const senders = this.relaySenders.get(entry.key) ?? new Set<string>();
        if (senders.size < 10_000) senders.add(senderDomain);
        this.relaySenders.set(entry.key, senders);
      }
    }
    const relay = cache.get(senderDomain);
    if (relay) return relay;
    const domain = d.address.slice(d.address.lastIndexOf('@') + 1).toLowerCase();
    return { key: `mx:${domain}`, route: { kind: 'mx', domain } };
  }

  private async attempt(route: Route, part: [string, DueRecipient[]][]): Promise<void> {
    const entries = new Map<string, QueueEntry>();
    const messages: OutboundMessage[] = [];
    for (const [queueId, items] of part) {
      const e = await this.deps.repo.get(queueId, false);
      if (!e) continue;
      entries.set(queueId, e);
      const ids = new Set(items.map((i) => i.recipientId));
      messages.push({
        queueId,
        sender: e.sender,
        recipients: e.recipients.filter((r) => ids.has(r.id)).map((r) => ({ id: r.id, address: r.address, orcpt: r.orcpt, notify: r.notify })),
        size: e.size,
        envid: e.envid,
        ret: e.ret,
        smtputf8: e.smtputf8,
        load: async () => Buffer.concat([await this.deps.repo.prefix(queueId), await this.deps.blobs.get(e.blobId)]),
      });
    }
    let outcomes: RecipientOutcome[];
    try {
      outcomes = await this.deps.outbound.deliver(route, messages);
    } catch (err) {
      this.deps.log.error({ err: (err as Error).message }, 'outbound sender failed; the attempt counts as a temporary failure');
      outcomes = [];
    }
    // Every leased recipient gets a result: one the sender did not report on would otherwise keep its lease
    // (LEASE_MS, an hour) and wait for the next restart instead of the retry schedule.
    const reported = new Set(outcomes.map((o) => o.recipientId));
    for (const m of messages)
      for (const r of m.recipients)
        if (!reported.has(r.id))
          outcomes.push({ recipientId: r.id, queueId: m.queueId, kind: 'temporary', statusCode: '4.4.0', diagnostic: '4.4.0 the delivery attempt gave no result for this recipient', fromRemote: false, remoteMta: null, tls: null, remoteDsn: false });
    const at = this.now();
    const byEntry = new Map<string, QueueResult[]>();
    for (const o of outcomes) {
      const e = entries.get(o.queueId);
      const r = e?.recipients.find((x) => x.id === o.recipientId);
      if (!e || !r) continue;
      const res = this.result(e, r, o, at);
      byEntry.set(o.queueId, [...(byEntry.get(o.queueId) ?? []), res]);
      const log = { queueId: e.id, rcpt: r.address, status: res.status, code: o.statusCode, relay: o.remoteMta, tls: o.tls, attempts: r.attempts + 1 };
      if (res.status === 'delivered') this.deps.log.info(log, 'delivered');
      else if (res.status === 'failed') this.deps.log.warn({ ...log, reason: res.diagnostic }, 'delivery failed permanently');
      else this.deps.log.info({ ...log, reason: res.diagnostic, next: new Date(res.nextAttempt!).toISOString() }, 'delivery deferred');
    }
    for (const [queueId, results] of byEntry) {
      await this.deps.repo.recordResults(queueId, results, at);
      const e = entries.get(queueId)!;
      if (results.some((x) => x.dsnPending)) await this.sendDsns(queueId);
      else await this.deps.repo.deleteIfComplete(e.id);
    }
  }

  private result(e: QueueEntry, r: QueueEntry['recipients'][number], o: RecipientOutcome, at: number): QueueResult {
    const nullSender = e.sender === '';
    const base = { recipientId: r.id, statusCode: o.statusCode, diagnostic: o.diagnostic, remoteMta: o.remoteMta, tls: o.tls };
    if (o.kind === 'delivered') {
      // RFC 3461 5.2.2: relayed to a server without DSN -> we report success ("relayed") ourselves.
      const relayed = !nullSender && wantsDsn(r.notify, 'SUCCESS') && !o.remoteDsn;
      return { ...base, status: 'delivered', dsnPending: relayed ? 'relayed' : null };
    }
    const expiry = e.created + this.settings.lifetimeMs;
    if (o.kind === 'permanent' || at >= expiry) {
      const expired = o.kind !== 'permanent';
      return {
        ...base,
        status: 'failed',
        statusCode: expired ? '4.4.7' : o.statusCode,
        diagnostic: expired ? `${o.diagnostic} (message expired: in the queue since ${new Date(e.created).toISOString()})` : o.diagnostic,
        dsnPending: !nullSender && wantsDsn(r.notify, 'FAILURE') ? 'failed' : null,
      };
    }
    const next = Math.min(at + backoff(r.attempts + 1, this.settings.retryBaseMs, this.settings.retryMaxMs), expiry);
    return { ...base, status: 'queued', nextAttempt: next, dsnPending: null };
  }

  private async housekeeping(now: number): Promise<void> {
    if (this.settings.delayWarningMs > 0) {
      const late = await this.deps.repo.delayed(now - this.settings.delayWarningMs, 500);
      const byEntry = new Map<string, DueRecipient[]>();
      for (const d of late) byEntry.set(d.queueId, [...(byEntry.get(d.queueId) ?? []), d]);
      for (const [queueId, items] of byEntry) {
        const e = await this.deps.repo.get(queueId, false);
        if (!e) continue;
        const want: number[] = [];
        const skip: number[] = [];
        for (const i of items) {
          const r = e.recipients.find((x) => x.id === i.recipientId);
          (r && e.sender !== '' && wantsDsn(r.notify, 'DELAY') ? want : skip).push(i.recipientId);
        }
        if (want.length) await this.deps.repo.markDelayNotified(want, true);
        if (skip.length) await this.deps.repo.markDelayNotified(skip, false);
      }
    }
    for (const id of await this.deps.repo.withPendingDsn(100)) await this.sendDsns(id);
  }

  /** Sends the pending DSNs of one entry (one per action kind), clears them, deletes the entry if complete. */
  private async sendDsns(queueId: string): Promise<void> {
    // One sender per entry at a time: the pending marks are cleared only after the DSN is delivered, so a
    // second caller meanwhile would send the same DSN again. What it skips stays pending for the next pass.
    if (this.dsnInFlight.has(queueId)) return;
    this.dsnInFlight.add(queueId);
    try {
      await this.sendDsnsOf(queueId);
    } finally {
      this.dsnInFlight.delete(queueId);
    }
  }

  private async sendDsnsOf(queueId: string): Promise<void> {
    const e = await this.deps.repo.get(queueId, false);
    if (!e) return;
    const pending = e.recipients.filter((r) => r.dsnPending);
    if (!pending.length) return;
    if (e.sender === '') {
      await this.deps.repo.dsnDone(pending.map((r) => r.id));
      await this.deps.repo.deleteIfComplete(queueId);
      return;
    }
    let original: Buffer | null = null;
    for (const action of ['failed', 'delayed', 'relayed'] as const) {
      const rs = pending.filter((r) => r.dsnPending === action);
      if (!rs.length) continue;
      original ??= Buffer.concat([await this.deps.repo.prefix(queueId), await this.deps.blobs.get(e.blobId)]);
      const recipients: DsnRecipient[] = rs.map((r) => ({
        address: r.address,
        orcpt: r.orcpt,
        action: action as DsnAction,
        status: action === 'relayed' ? '2.0.0' : r.statusCode ?? (action === 'failed' ? '5.0.0' : '4.0.0'),
        diagnostic: r.lastError,
        fromRemote: !!r.lastError && /^\d{3}[ -]/.test(r.lastError),
        remoteMta: r.remoteMta,
        lastAttempt: r.lastAttempt,
        willRetryUntil: action === 'delayed' ? e.created + this.settings.lifetimeMs : null,
      }));
      const raw = buildDsn({
        hostname: this.settings.hostname,
        queueId,
        sender: e.sender,
        envid: e.envid,
        ret: e.ret,
        smtputf8: e.smtputf8,
        arrival: e.created,
        recipients,
        original,
        now: this.now(),
        token: this.token(),
      });
      try {
        const res = await this.deps.delivery.deliver({ sender: '', recipients: [{ address: e.sender }], raw, prefix: Buffer.alloc(0), accountId: null, allowRelay: true });
        this.deps.log.info({ queueId, action, to: e.sender, local: res.localAccounts, dsnQueueId: res.queueId }, 'DSN sent');
      } catch (err) {
        this.deps.log.error({ queueId, action, err: (err as Error).message }, 'DSN could not be delivered; will retry');
        return;
      }
      await this.deps.repo.dsnDone(rs.map((r) => r.id));
    }
    await this.deps.repo.deleteIfComplete(queueId);
  }
}

function splitHostPort(s: string): [string, number] {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(s);
  return m ? [m[1]!.toLowerCase(), Number(m[2])] : [s.toLowerCase(), 587];
}
