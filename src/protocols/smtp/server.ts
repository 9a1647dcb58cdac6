/**
 * SMTP receiving on the three SMTP listeners, built on smtp-server@3:
 *   smtp (25)          transfer; STARTTLS offered; no AUTH; local recipients only unless relay_networks.
 *   submissions (465)  implicit TLS; AUTH required.
 *   submission (587)   STARTTLS required before AUTH and MAIL (530 5.7.0); AUTH required.
 *
 * What smtp-server does not do the way we need, and how we change it (PosternConnection below):
 *   - its fixed 100 ms early-talker wait becomes [smtp] banner_delay, or on port 25 with protection the screen's
 *     per-client delay (pregreet_wait for unknown clients, none for known ones), plus a pipelining check;
 *   - replies carry OUR enhanced status code (the message begins with it), not its per-code default;
 *   - on 587, AUTH and MAIL before TLS answer 530 5.7.0 (it says 538 / "authentication required");
 *   - a session that collects too many 4xx/5xx replies is closed with 421.
 * STARTTLS injection (bytes pipelined after STARTTLS) is discarded by smtp-server itself (its upgrade()
 * retires the plaintext parser); our tests prove it.
 * Bare LF/CR in DATA: refused with 554 5.6.0 by default (SMTP smuggling), or normalised to CRLF.
 * 250 after DATA is sent only after Delivery resolved, i.e. the message is fsynced in mailbox or queue.
 */
import type net from 'node:net';
import type tls from 'node:tls';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerAuthentication } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { Logger } from '../../log.js';
import type { Settings } from '../../config/load.js';
import type { TlsManager } from '../../net/tls.js';
import { connectionId, type ConnectionInfo, type ProtocolHandler } from '../../net/listener.js';
import { cidrContains } from '../../net/cidr.js';
import type { Directory } from '../../core/directory.js';
import type { Delivery } from '../../core/delivery.js';
import { AuthLimiter, sleep } from '../../core/auth-limiter.js';
import type { Account } from '../../storage/types.js';
import { parseAddress } from '../../lib/address.js';
import { Reply, SmtpError } from './replies.js';
import type { InboundPipeline, SessionInfo } from '../../core/inbound/pipeline.js';
import type { ClientScreen } from '../../core/inbound/pregreet.js';
import { receivedHeader } from './received.js';

export type SmtpRole = 'smtp' | 'submissions' | 'submission';

/** [smtp] as resolved, plus what the listener and the host contribute. */
export type SmtpSettings = Settings['smtp'] & { hostname: string; idleTimeoutMs: number };

export interface SmtpDeps {
  directory: Directory;
  delivery: Delivery;
  authLimiter: AuthLimiter;
  tls: TlsManager;
  log: Logger;
  /** Inbound checks for the transfer listener (port 25); absent = none (submission, or protection off). */
  inbound?: InboundPipeline | null;
  /** Port 25 client screening (core/inbound/pregreet.ts): per-client banner delay, pipelining check; absent = [smtp] banner_delay. */
  screen?: ClientScreen | null;
}

interface SessionUser {
  id: number;
  address: string;
}

const QUEUED = '2.0.0 Ok: queued as ';
const JUNK_COMMANDS = new Set(['NOOP', 'RSET', 'VRFY', 'HELP', 'ETRN', 'EXPN']);
const JUNK_COMMAND_LIMIT = 100;
const ENHANCED_PREFIX = /^[245]\.\d{1,3}\.\d{1,3} /;

/** Builds the connection class for one listener: smtp-server's SMTPConnection with our policies. */
function connectionClass(role: SmtpRole, getSettings: () => SmtpSettings, getInbound: () => InboundPipeline | null | undefined, getScreen: () => ClientScreen | null | undefined = () => null) {
  // smtp-server's connection internals are untyped JavaScript; we override documented-in-source methods.
  const Base = SMTPConnection as unknown as new (...args: unknown[]) => Record<string, any>;
  return class PosternConnection extends Base {
    _errors = 0;
    _junk = 0;
    /** An EHLO/HELO is being answered: a command dispatched before the next event-loop turn was pipelined. */
    _heloPending = false;

    init(): void {
      const screen = role === 'smtp' ? getScreen() : null;
      const delay = screen ? screen.bannerDelayMs(this.remoteAddress) : getSettings().bannerDelayMs;
      this._setListeners(() => {
        const t = setTimeout(() => this.connectionReady(), delay);
        t.unref();
      });
    }

    send(code: number, data?: unknown, context?: unknown): void {
      if (this._heloPending) setImmediate(() => (this._heloPending = false));
      if (code === 250 && typeof data === 'string' && data.startsWith(QUEUED)) this._junk = 0; // a delivered message resets the flood counter
      if (code >= 400 && code !== 421 && code !== 535) {
        this._errors++;
        if (this._errors > getSettings().maxErrors) {
          const e = Reply.tooManyErrors();
          super.send(e.code, e.message, false);
          this.close();
          return;
        }
      }
      if (typeof data === 'string' && ENHANCED_PREFIX.test(data)) return super.send(code, data, false);
      return super.send(code, data, context);
    }

    /** HELO/EHLO go through the inbound checks (HELO sanity) before smtp-server answers them. */
    handler_EHLO(command: Buffer, callback: () => void): void {
      this._heloCheck(command, callback, () => super.handler_EHLO(command, callback));
    }
    handler_HELO(command: Buffer, callback: () => void): void {
      this._heloCheck(command, callback, () => super.handler_HELO(command, callback));
    }
    _heloCheck(command: Buffer, callback: () => void, next: () => void): void {
      const inbound = getInbound();
      const name = command.toString('latin1').trim().split(/\s+/)[1];
      if (!inbound || !name || this.session.user) return next();
      inbound.helo(sessionInfo(this.session), name).then(
        (err) => {
          if (!err) return next();
          this.send(err.code, err.message);
          callback();
        },
        () => next(),
      );
    }

    /** RFC 4954 4 / our policy: AUTH is neither advertised nor accepted before TLS. */
    _isSupported(command: string): boolean {
      if (command === 'AUTH' && !this.secure) return false;
      return super._isSupported(command);
    }

    _onCommand(command: Buffer, callback: () => void): void {
      // Postfix's smtpd_junk_command_limit: NOOP/RSET/VRFY/HELP/ETRN loops are a flood, not a session.
      const verb = command.toString('latin1', 0, 5).trim().toUpperCase();
      const screen = role === 'smtp' && !this.session.user ? getScreen() : null;
      if (screen && !this._upgrading && !screen.exempt?.(this.remoteAddress)) {
        // Early talker: smtp-server answers 421 and closes; the screen forgets the client's pass.
        if (!this._ready) screen.violation(this.remoteAddress, 'pregreet', this.id);
        else if (this._heloPending && screen.pipeliningCheck) {
          screen.violation(this.remoteAddress, 'pipelining', this.id);
          const e = Reply.pipelinedBeforeGreeting();
          super.send(e.code, e.message, false);
          this.close();
          return void setImmediate(callback);
        } else if (verb === 'EHLO' || verb === 'HELO') this._heloPending = true;
      }
      if (JUNK_COMMANDS.has(verb) && ++this._junk > JUNK_COMMAND_LIMIT) {
        const e = Reply.tooManyCommands();
        super.send(e.code, e.message, false);
        this.close();
        return void setImmediate(callback);
      }
      if (role === 'submission' && !this.secure && this._ready && !this._upgrading && !this._nextHandler) {
        const name = command.toString('latin1').trim().split(/\s+/, 1)[0]!.toUpperCase();
        if (name === 'AUTH' || name === 'MAIL') {
          const e = Reply.mustStartTls();
          this.send(e.code, e.message);
          return void setImmediate(callback);
        }
      }
      return super._onCommand(command, callback);
    }
  };
}

export class SmtpService implements ProtocolHandler {
  private readonly server: SMTPServer;
  private readonly Connection: ReturnType<typeof connectionClass>;

  constructor(
    readonly role: SmtpRole,
    private settings: SmtpSettings,
    private readonly deps: SmtpDeps,
  ) {
    this.Connection = connectionClass(role, () => this.settings, () => this.deps.inbound, () => this.deps.screen);
    const submission = role !== 'smtp';
    const tlsOpts = deps.tls.defaultOptions();
    const options: SMTPServerOptions = {
      name: settings.hostname,
      banner: 'Postern ESMTP',
      secure: role === 'submissions',
      // Our listener did the TLS handshake (implicit TLS): smtp-server must not try again.
      secured: role === 'submissions',
      key: tlsOpts.key as string,
      cert: tlsOpts.cert as string,
      minVersion: tlsOpts.minVersion,
      ciphers: tlsOpts.ciphers,
      honorCipherOrder: true,
      SNICallback: deps.tls.sniCallback,
      size: settings.maxMessageSize,
      hideSize: false,
      hide8BITMIME: false,
      hideSMTPUTF8: false,
      hidePIPELINING: false,
      hideDSN: false,
      hideENHANCEDSTATUSCODES: false,
      hideSTARTTLS: role === 'submissions',
      disabledCommands: submission ? [] : ['AUTH'],
      authMethods: ['PLAIN', 'LOGIN'],
      authOptional: !submission,
      allowInsecureAuth: false,
      maxAllowedUnauthenticatedCommands: submission ? settings.maxUnauthenticatedCommands : false,
      disableReverseLookup: true,
      socketTimeout: settings.idleTimeoutMs,
      closeTimeout: 10_000,
      maxCommandLength: 4096,
      logger: false,
      onConnect: (session, cb) => {
        const inbound = this.deps.inbound;
        if (!inbound) return cb();
        inbound.connect(sessionInfo(session)).then((e) => cb(e ?? undefined), (e) => cb(e));
      },
      onAuth: (auth, session, cb) => void this.onAuth(auth, session).then((r) => cb(null, r), (e) => cb(e)),
      onMailFrom: (address, session, cb) => void this.onMailFrom(address, session).then(() => cb(), (e) => cb(e)),
      onRcptTo: (address, session, cb) => void this.onRcptTo(address, session).then(() => cb(), (e) => cb(e)),
      onData: (stream, session, cb) => this.onData(stream, session, cb),
      onClose: (session) => this.deps.log.debug({ cid: session.id, proto: role }, 'smtp session closed'),
    } as SMTPServerOptions;
    this.server = new SMTPServer(options);
    this.server.on('error', (err: Error) => this.deps.log.debug({ proto: role, err: err.message }, 'smtp connection error'));
    // STARTTLS without SNI uses smtp-server's default context: keep it current when certificates reload.
    deps.tls.on('reload', () => {
      const o = deps.tls.defaultOptions();
      this.server.updateSecureContext({ key: o.key, cert: o.cert } as never);
    });
    // A connection class of our own for every accepted socket (see connectionClass).
    const srv = this.server as unknown as Record<string, any>;
    const Conn = this.Connection;
    srv.connect = function (socket: net.Socket, socketOptions: Record<string, unknown>) {
      const connection = new Conn(this, socket, socketOptions);
      this.connections.add(connection);
      connection.on('error', (err: Error) => this._onError(err));
      connection.on('connect', (data: unknown) => this._onClientConnect(data));
      connection.init();
    };
  }

  /** SIGHUP with changed [protection]/[spam]/[virus]: new checks apply to new commands from now on. */
  setInbound(inbound: InboundPipeline | null, screen: ClientScreen | null): void {
    this.deps.inbound = inbound;
    this.deps.screen = screen;
  }

  updateSettings(settings: SmtpSettings): void {
    this.settings = settings;
    const o = this.server.options as unknown as Record<string, unknown>;
    o.size = settings.maxMessageSize;
    o.socketTimeout = settings.idleTimeoutMs;
    o.maxAllowedUnauthenticatedCommands = this.role === 'smtp' ? false : settings.maxUnauthenticatedCommands;
  }

  accept(socket: net.Socket, info: ConnectionInfo): void {
    this.deps.log.info({ cid: info.id, proto: this.role, remote: info.remoteAddress, tls: info.secure }, 'smtp connection');
    (this.server as unknown as { connect(s: net.Socket, o: Record<string, unknown>): void }).connect(socket, {
      id: info.id,
      remoteAddress: info.remoteAddress,
      remotePort: info.remotePort,
      localAddress: info.localAddress,
      localPort: info.localPort,
    });
  }

  refuse(socket: net.Socket, reason: 'too-many' | 'too-many-ip' | 'shutdown'): void {
    const e = reason === 'too-many-ip' ? Reply.tooManyConnectionsFromIp() : reason === 'shutdown' ? Reply.shuttingDown() : Reply.tooManyConnections();
    socket.end(`${e.code} ${e.message}\r\n`);
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  /** Graceful stop: refuse new commands, let sessions finish for up to timeoutMs. */
  close(timeoutMs: number): Promise<void> {
    (this.server.options as unknown as Record<string, unknown>).closeTimeout = timeoutMs;
    return new Promise((resolve) => {
      const connections = (this.server as unknown as { connections: Set<unknown> }).connections;
      if (connections.size === 0) return resolve();
      const started = Date.now();
      const poll = setInterval(() => {
        if (connections.size === 0 || Date.now() - started > timeoutMs) {
          clearInterval(poll);
          for (const c of connections as Set<{ send(code: number, m: string): void; close(): void }>) {
            c.send(421, '4.3.2 Service shutting down');
            c.close();
          }
          resolve();
        }
      }, 50);
    });
  }

  private async onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession): Promise<{ user: SessionUser }> {
    if (this.role === 'smtp') throw Reply.authMechanism();
    const ip = session.remoteAddress;
    let account: Account | null;
    try {
      account = await this.deps.directory.authenticate(auth.username ?? '', auth.password ?? '');
    } catch (err) {
      this.deps.log.error({ cid: session.id, err: (err as Error).message }, 'authentication backend error');
      throw Reply.authTempFail();
    }
    if (!account) {
      const delay = this.deps.authLimiter.failure(ip);
      this.deps.log.warn({ cid: session.id, proto: this.role, remote: ip, user: auth.username, method: auth.method, delayMs: delay }, 'authentication failed');
      await sleep(delay);
      throw Reply.authInvalid();
    }
    this.deps.authLimiter.success(ip);
    this.deps.log.info({ cid: session.id, proto: this.role, remote: ip, user: account.address, method: auth.method }, 'authenticated');
    return { user: { id: account.id, address: account.address } };
  }

  private async onMailFrom(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const sender = address.address;
    if (this.role === 'smtp') {
      if (sender !== '' && !parseAddress(sender)) throw Reply.badSenderSyntax();
      const err = this.deps.inbound && !session.user ? await this.deps.inbound.mailFrom(sessionInfo(session), sender) : null;
      if (err) throw err;
      return;
    }
    const user = session.user as unknown as SessionUser | undefined;
    if (!user) throw Reply.authRequired();
    if (sender === '') throw Reply.nullSenderSubmission();
    const account = await this.deps.directory.accountById(user.id);
    if (!account || !(await this.deps.directory.canSendAs(account, sender))) {
      this.deps.log.warn({ cid: session.id, user: user.address, sender }, 'sender address not owned by the authenticated user');
      throw Reply.senderNotOwned(sender, user.address);
    }
  }

  private async onRcptTo(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    if (session.envelope.rcptTo.length >= this.settings.maxRecipients) throw Reply.tooManyRecipients();
    const p = parseAddress(address.address);
    if (!p) throw Reply.badRecipientSyntax();
    const r = await this.deps.directory.resolveRecipient(p.address);
    if (r.kind === 'unknown') {
      this.deps.log.info({ cid: session.id, rcpt: p.address }, 'unknown local recipient');
      throw Reply.unknownUser();
    }
    if (r.kind === 'remote') {
      if (this.role !== 'smtp' || cidrContains(this.settings.relayNetworks, session.remoteAddress)) return;
      this.deps.log.warn({ cid: session.id, remote: session.remoteAddress, rcpt: p.address }, 'relay access denied');
      throw Reply.relayDenied();
    }
    // Quota at RCPT (RFC 5321 4.5.3.1.10 / RFC 3463 X.2.2): permanent when the message can never fit.
    await this.quotaCheck(r.resolution.accounts, session, p.address);
    if (this.deps.inbound && !session.user) {
      const err = await this.deps.inbound.rcpt(sessionInfo(session), (session.envelope.mailFrom as SMTPServerAddress).address, p.address);
      if (err) throw err;
    }
  }

  private async quotaCheck(accounts: Account[], session: SMTPServerSession, rcpt: string): Promise<void> {
    const declared = Number(mailArgs(session).SIZE ?? 0) || 0;
    for (const a of accounts) {
      if (a.quotaBytes <= 0) continue;
      if (declared > a.quotaBytes) throw Reply.quotaExceededPermanently();
      if (a.usedBytes + declared >= a.quotaBytes) {
        this.deps.log.info({ cid: session.id, rcpt, account: a.address }, 'mailbox over quota');
        throw Reply.mailboxFull();
      }
    }
  }

  private onData(stream: SMTPServerDataStream, session: SMTPServerSession, cb: (err?: Error | null, message?: string) => void): void {
    const chunks: Buffer[] = [];
    let bare = false;
    let prevCR = false;
    let length = 0;
    const normalize = !this.settings.rejectBareLf;
    stream.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (stream.sizeExceeded) return; // keep reading to the end, store nothing
      if (!bare || normalize) {
        const scan = scanLineEndings(chunk, prevCR);
        bare ||= scan.bare;
        prevCR = scan.endsWithCR;
      }
      chunks.push(chunk);
    });
    stream.on('error', (err) => cb(err));
    stream.on('end', () => {
      if (stream.sizeExceeded) return cb(Reply.messageTooBig(this.settings.maxMessageSize));
      if (prevCR) bare = true; // a CR as the very last byte before CRLF.CRLF cannot happen; defensive
      if (bare && !normalize) {
        this.deps.log.warn({ cid: session.id, remote: session.remoteAddress }, 'message with bare LF/CR refused');
        return cb(Reply.bareLineEnding());
      }
      let raw: Buffer = Buffer.concat(chunks, length);
      if (bare) raw = toCrlf(raw);
      this.finishData(raw, session).then((id) => cb(null, `${QUEUED}${id}`), (err) => {
        if (err instanceof SmtpError) return cb(err);
        this.deps.log.error({ cid: session.id, err: (err as Error).message }, 'delivery failed');
        cb(Reply.tempFailure());
      });
    });
  }

  private async finishData(received: Buffer, session: SMTPServerSession): Promise<string> {
    let raw = received;
    const id = connectionId();
    const user = session.user as unknown as SessionUser | undefined;
    const tlsSocket = session.secure;
    const cipher = tlsSocket ? ((session as unknown as { tlsOptions?: { name?: string; standardName?: string; version?: string } }).tlsOptions ?? null) : null;
    const esmtp = session.openingCommand !== 'HELO';
    const protocol = !esmtp ? 'SMTP' : `ESMTP${session.secure ? 'S' : ''}${user ? 'A' : ''}` as const;
    const rcpts = session.envelope.rcptTo;
    let prefix = Buffer.from(
      receivedHeader({
        helo: session.hostNameAppearsAs || null,
        remoteAddress: session.remoteAddress,
        hostname: this.settings.hostname,
        protocol: protocol as 'ESMTP',
        tls: cipher && cipher.version ? { version: cipher.version, cipher: cipher.standardName ?? cipher.name ?? 'unknown' } : null,
        id,
        recipient: rcpts.length === 1 ? rcpts[0]!.address : null,
        date: new Date(),
      }),
    );
    const from = session.envelope.mailFrom as SMTPServerAddress;
    const args = mailArgs(session);
    let junk = false;
    let verdict: Record<string, unknown> | undefined;
    if (this.deps.inbound && !user) {
      const ctx = { ...sessionInfo(session), sender: from.address, recipients: rcpts.map((r) => r.address), raw };
      const result = await this.deps.inbound.data(ctx);
      verdict = result.log;
      if (result.reject) {
        this.deps.log.info({ cid: session.id, msgid: id, from: from.address, verdict, reply: result.reject.message }, 'message refused by inbound checks');
        throw result.reject;
      }
      raw = ctx.raw;
      junk = result.junk;
      if (result.headers.length) prefix = Buffer.concat([prefix, Buffer.from(result.headers.join(''))]);
    }
    const dsn = (session.envelope as unknown as { dsn?: { ret?: string; envid?: string } }).dsn ?? {};
    const result = await this.deps.delivery.deliver({
      sender: from.address,
      recipients: rcpts.map((r) => {
        const d = (r as unknown as { dsn?: { notify?: string[]; orcpt?: string } }).dsn;
        return { address: r.address, orcpt: d?.orcpt ?? null, notify: d?.notify ?? null };
      }),
      raw,
      prefix,
      accountId: user?.id ?? null,
      envid: dsn.envid ?? null,
      ret: dsn.ret === 'FULL' || dsn.ret === 'HDRS' ? dsn.ret : null,
      smtputf8: !!args.SMTPUTF8,
      body8bit: (args.BODY ?? '').toUpperCase() === '8BITMIME',
      allowRelay: this.role !== 'smtp' || cidrContains(this.settings.relayNetworks, session.remoteAddress),
      junk,
    });
    this.deps.log.info(
      { cid: session.id, msgid: id, proto: this.role, from: from.address, user: user?.address, size: prefix.length + raw.length, local: result.localAccounts, queued: result.remoteRecipients, queueId: result.queueId, junk, verdict },
      'message accepted',
    );
    return id;
  }
}

/** What inbound filters may know about a session. */
function sessionInfo(session: SMTPServerSession): SessionInfo {
  return {
    id: session.id,
    remoteAddress: session.remoteAddress,
    helo: session.hostNameAppearsAs || null,
    tls: !!session.secure,
    authenticated: !!session.user,
  };
}

/** The MAIL FROM parameters (SIZE, BODY, SMTPUTF8 ...) of the current transaction. */
function mailArgs(session: SMTPServerSession): Record<string, string> {
  const from = session.envelope.mailFrom as SMTPServerAddress | false;
  return ((from && from.args) || {}) as Record<string, string>;
}

/** Finds LF not preceded by CR, or CR not followed by LF. `prevCR`: the previous chunk ended with CR. */
export function scanLineEndings(chunk: Buffer, prevCR: boolean): { bare: boolean; endsWithCR: boolean } {
  let cr = prevCR;
  for (let i = 0; i < chunk.length; i++) {
    const b = chunk[i]!;
    if (b === 10) {
      if (!cr) return { bare: true, endsWithCR: chunk[chunk.length - 1] === 13 };
      cr = false;
    } else if (cr) {
      return { bare: true, endsWithCR: chunk[chunk.length - 1] === 13 };
    } else if (b === 13) cr = true;
  }
  return { bare: false, endsWithCR: cr };
}

/** Rewrites bare LF and bare CR to CRLF. */
export function toCrlf(buf: Buffer): Buffer {
  return Buffer.from(buf.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
}

export type { tls };
