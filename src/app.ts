/**
 * The composition root: the only module that picks concrete backends and wires services to listeners.
 * Lifecycle: create() -> start() (binds listeners) -> reload() on SIGHUP -> stop() on SIGTERM.
 */
import type { Settings, ListenerSettings } from './config/load.js';
import type { ListenerName } from './config/schema.js';
import type { Logger } from './log.js';
import { SqliteStore } from './storage/sqlite/store.js';
import { SqliteImapExtra } from './storage/sqlite/imap-extra.js';
import { Directory } from './core/directory.js';
import { Ingest } from './core/ingest.js';
import { Delivery } from './core/delivery.js';
import type { QueueRunner } from './core/queue.js';
import { createQueueRunner, dkimSigner, queueSettings } from './app-outbound.js';
import { ChangeBus } from './core/changes.js';
import { BlobGc } from './core/blob-gc.js';
import { AuthLimiter } from './core/auth-limiter.js';
import { BanList, type BanSettings } from './core/bans.js';
import { SpamLearner } from './core/inbound/spam-learning.js';
import { parseCidrList } from './net/cidr.js';
import { TlsManager } from './net/tls.js';
import { Listener, type ProtocolHandler } from './net/listener.js';
import { SmtpService, type SmtpRole, type SmtpSettings } from './protocols/smtp/server.js';
import { buildInboundPipeline, type InboundSetup } from './core/inbound/index.js';
import { createDnsLookup } from './lib/dns/mailauth-resolver.js';
import { SqliteGreylist } from './storage/sqlite/protection.js';
import { Pop3Service, MaildropLocks, type Pop3Settings } from './protocols/pop3/server.js';
import { ImapService, AccountConnections, type ImapSettings } from './protocols/imap/server.js';

const SMTP_ROLES: Partial<Record<ListenerName, SmtpRole>> = { smtp: 'smtp', submissions: 'submissions', submission: 'submission' };
const IMPLICIT_TLS: ReadonlySet<ListenerName> = new Set(['submissions', 'imaps', 'pop3s']);
const POP3: ReadonlySet<ListenerName> = new Set(['pop3', 'pop3s']);
const IMAP: ReadonlySet<ListenerName> = new Set(['imap', 'imaps']);

export class App {
  readonly store: SqliteStore;
  readonly directory: Directory;
  readonly ingest: Ingest;
  readonly delivery: Delivery;
  /** Outbound queue: started after the listeners, stopped before the store closes. */
  readonly queueRunner: QueueRunner;
  readonly changes = new ChangeBus();
  /** Deletes message files nothing references any more (15 min grace, checked every 10 min). */
  private readonly blobGc: BlobGc;
  readonly authLimiter: AuthLimiter;
  /** Brute-force bans: fed by authLimiter failures, consulted by every listener's admission check. */
  readonly bans: BanList;
  /** Rspamd training from IMAP moves into/out of Junk ([spam] rspamd_controller). */
  readonly spamLearner: SpamLearner | null;
  private readonly admit = (ip: string) => this.bans.admit(ip);
  readonly tls: TlsManager;
  private readonly smtp = new Map<ListenerName, SmtpService>();
  private readonly listeners: Listener[] = [];
  private readonly pop3 = new Map<ListenerName, Pop3Service>();
  /** Shared by 110 and 995: one POP3 session per maildrop across both ports. */
  private readonly pop3Locks = new MaildropLocks();
  private readonly imap = new Map<ListenerName, ImapService>();
  /** Shared by 143 and 993: the per-account connection limit counts both. */
  private readonly imapAccounts = new AccountConnections();

  private constructor(
    private settings: Settings,
    readonly log: Logger,
  ) {
    this.store = new SqliteStore({ dataDir: settings.dataDir, inlineBlobMax: settings.inlineBlobMax, fsync: settings.fsync });
    this.directory = new Directory(this.store.directory, { recipientDelimiter: settings.accounts.recipientDelimiter });
    this.ingest = new Ingest({ messages: this.store.messages, blobs: this.store.blobs, changes: this.changes });
    this.delivery = new Delivery({
      directory: this.directory, ingest: this.ingest, mailboxes: this.store.mailboxes, queue: this.store.queue, blobs: this.store.blobs, log,
      signer: dkimSigner(settings), onQueued: () => this.queueRunner.kick(),
    });
    this.queueRunner = createQueueRunner(settings, { store: this.store, delivery: this.delivery, log });
    this.bans = new BanList(banSettings(settings), { repo: this.store.bans, log });
    this.authLimiter = new AuthLimiter({ baseDelayMs: settings.accounts.authFailureDelayMs, maxDelayMs: settings.accounts.authFailureDelayMaxMs, onFailure: (ip) => this.bans.onFailure(ip) });
    const sp = settings.spam;
    this.spamLearner = sp.rspamdController
      ? new SpamLearner({ controller: sp.rspamdController, password: sp.rspamdPassword, timeoutMs: sp.timeoutMs }, { mailboxes: this.store.mailboxes, messages: this.store.messages, blobs: this.store.blobs, log })
      : null;
    this.spamLearner?.subscribe(this.changes);
    this.tls = new TlsManager(settings.tls, { hostname: settings.hostname, dataDir: settings.dataDir, log });
    this.blobGc = new BlobGc({ store: this.store, files: this.store.blobs, log }, { graceMs: 15 * 60_000, intervalMs: 10 * 60_000 });
  }

  static async create(settings: Settings, log: Logger): Promise<App> {
    const app = new App(settings, log);
    await app.tls.init();
    await app.bans.start();
    await app.store.blobs.cleanTemp();
    return app;
  }

  private smtpSettings(l: ListenerSettings): SmtpSettings {
    const s = this.settings;
    return { hostname: s.hostname, ...s.smtp, idleTimeoutMs: l.idleTimeoutMs };
  }

  /** Binds every enabled listener; on failure closes what was bound and rethrows (a BindError). */
  async start(): Promise<void> {
    for (const [name, l] of Object.entries(this.settings.listeners) as [ListenerName, ListenerSettings][]) {
      if (!l.enabled) continue;
      const handler = this.serviceFor(name, l);
      const listener = new Listener({ settings: l, implicitTls: IMPLICIT_TLS.has(name), tls: this.tls, trustedProxies: this.settings.trustedProxies, log: this.log, admit: this.admit, handler });
      try {
        await listener.start();
      } catch (err) {
        await this.closeListeners();
        throw err;
      }
      this.listeners.push(listener);
    }
    this.tls.watch();
    await this.queueRunner.start();
    this.blobGc.start();
    if (!this.settings.hostname.includes('.')) {
      this.log.warn({ hostname: this.settings.hostname }, 'hostname is not fully qualified: set hostname = "mail.example.org" in postern.toml (it must match your MX and PTR records)');
    }
    this.log.info({ hostname: this.settings.hostname, dataDir: this.settings.dataDir, config: this.settings.file ?? '(embedded defaults)' }, 'postern started');
  }

  /** The protocol service behind one listener (SMTP roles, IMAP, POP3), registered for reload and stop. */
  private serviceFor(name: ListenerName, l: ListenerSettings): ProtocolHandler {
    if (POP3.has(name)) {
      const deps = { directory: this.directory, mailboxes: this.store.mailboxes, messages: this.store.messages, blobs: this.store.blobs, changes: this.changes, authLimiter: this.authLimiter, tls: this.tls, locks: this.pop3Locks, log: this.log };
      const service = new Pop3Service(this.pop3Settings(name, l), deps);
      this.pop3.set(name, service);
      return service;
    }
    if (IMAP.has(name)) {
      const deps = { directory: this.directory, ingest: this.ingest, changes: this.changes, authLimiter: this.authLimiter, tls: this.tls, log: this.log, mailboxes: this.store.mailboxes, messages: this.store.messages, blobs: this.store.blobs, extra: new SqliteImapExtra(this.store.db) };
      const service = new ImapService(name === 'imaps' ? 'imaps' : 'imap', this.imapSettings(l), deps, this.imapAccounts);
      this.imap.set(name, service);
      return service;
    }
    const role = SMTP_ROLES[name]!;
    const inbound = role === 'smtp' ? this.inboundSetup() : { pipeline: null, screen: null };
    const service = new SmtpService(role, this.smtpSettings(l), { directory: this.directory, delivery: this.delivery, authLimiter: this.authLimiter, tls: this.tls, log: this.log, inbound: inbound.pipeline, screen: inbound.screen });
    this.smtp.set(name, service);
    return service;
  }

  private pop3Settings(name: ListenerName, l: ListenerSettings): Pop3Settings {
    return { idleTimeoutMs: l.idleTimeoutMs, stls: name === 'pop3' };
  }

  private imapSettings(l: ListenerSettings, s: Settings = this.settings): ImapSettings {
    return { hostname: s.hostname, ...s.imap, idleTimeoutMs: l.idleTimeoutMs };
  }

  /** Port 25 inbound checks ([protection], [spam], [virus]); built on the first smtp listener, rebuilt on SIGHUP when they change. */
  private inbound: InboundSetup | null = null;
  private inboundSetup(settings: Settings = this.settings): InboundSetup {
    this.inbound ??= buildInboundPipeline(settings, {
      log: this.log,
      lookup: createDnsLookup({ servers: settings.dns.servers }),
      greylist: new SqliteGreylist(this.store.db, (fn) => this.store.writeTurn(fn)),
    });
    return this.inbound;
  }

  /** Bound addresses per listener (tests start with port 0). */
  addresses(): Record<string, { address: string; port: number }[]> {
    const out: Record<string, { address: string; port: number }[]> = {};
    for (const l of this.listeners) out[l.name] = l.boundAddresses().map((a) => ({ address: a.address, port: a.port }));
    return out;
  }

  /**
   * SIGHUP: new settings and certificates apply to new connections, listeners are bound, moved or closed as the
   * new [listeners] say; existing connections are not dropped.
   */
  async reload(next: Settings): Promise<void> {
    await this.tls.reconfigure(next.tls);
    this.tls.reloadIfChanged(true);
    const added: [ListenerName, ListenerSettings][] = [];
    for (const [name, ls] of Object.entries(next.listeners) as [ListenerName, ListenerSettings][]) {
      const l = this.listeners.find((x) => x.name === name);
      if (!l) {
        if (ls.enabled) added.push([name, ls]);
        continue;
      }
      l.update(ls, next.trustedProxies);
      this.smtp.get(name)?.updateSettings({ hostname: next.hostname, ...next.smtp, idleTimeoutMs: ls.idleTimeoutMs });
      this.pop3.get(name)?.updateSettings(this.pop3Settings(name, ls));
      this.imap.get(name)?.updateSettings(this.imapSettings(ls, next));
      // Addresses and enabled apply too, as `postfix reload` / `doveadm reload` do; open connections stay.
      const was = this.settings.listeners[name];
      if (!ls.enabled) {
        if (was.enabled) {
          await l.stopAccepting();
          this.log.info({ listener: name }, 'listener disabled: no new connections (open ones continue)');
        }
      } else if (!was.enabled || JSON.stringify(ls.addresses) !== JSON.stringify(was.addresses)) await l.rebind();
    }
    this.queueRunner.updateSettings(queueSettings(next));
    this.bans.updateSettings(banSettings(next));
    if (this.inbound && inboundKey(next) !== inboundKey(this.settings)) {
      // Rebuilt from the new settings (rate-limit counters and remembered pregreet passes start afresh).
      this.inbound = null;
      const setup = this.inboundSetup(next);
      for (const [name, svc] of this.smtp) if (name === 'smtp') svc.setInbound(setup.pipeline, setup.screen);
      this.log.info('inbound checks rebuilt from the new [protection]/[spam]/[virus] settings');
    }
    this.settings = next;
    // Listeners enabled for the first time since the start: their service is built from the new settings.
    for (const [name, ls] of added) {
      const listener = new Listener({ settings: ls, implicitTls: IMPLICIT_TLS.has(name), tls: this.tls, trustedProxies: next.trustedProxies, log: this.log, admit: this.admit, handler: this.serviceFor(name, ls) });
      try {
        await listener.start();
        this.listeners.push(listener);
      } catch (err) {
        this.log.error({ listener: name, err: (err as Error).message }, 'listener not started');
      }
    }
    this.log.info({ config: next.file }, 'configuration reloaded');
  }

  /** Graceful stop: no new connections; sessions get up to graceMs to finish; then everything closes. */
  async stop(graceMs = 10_000): Promise<void> {
    this.tls.stop();
    await this.blobGc.stop();
    this.bans.stop();
    this.spamLearner?.stop();
    await Promise.all(this.listeners.map((l) => l.stopAccepting()));
    // One grace period shared by every protocol and the queue (not one each): then whatever is left is cut.
    const draining = Promise.all([
      ...[...this.smtp.values(), ...this.pop3.values(), ...this.imap.values()].map((s) => s.close(graceMs)),
      this.queueRunner.stop(graceMs),
    ]);
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<void>((r) => (timer = setTimeout(r, graceMs + 500)));
    await Promise.race([draining, expired]).finally(() => clearTimeout(timer));
    await this.closeListeners();
    await this.store.close();
    this.log.info('postern stopped');
  }

  private async closeListeners(): Promise<void> {
    await Promise.all(this.listeners.map((l) => l.close()));
  }
}

/** The settings the inbound checks are built from; a change means a rebuild on SIGHUP. */
function inboundKey(s: Settings): string {
  return JSON.stringify([s.protection, s.spam, s.virus, s.dns, s.hostname]);
}

/** [protection] ban_* as the ban list wants them; protection off = no automatic bans and no enforcement. */
function banSettings(s: Settings): BanSettings {
  const p = s.protection;
  return { enabled: p.enabled, afterFailures: p.banAfterFailures, windowMs: p.banWindowMs, banTimeMs: p.banTimeMs, exempt: parseCidrList(p.banExempt) };
}
