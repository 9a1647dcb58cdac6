/**
 * Sending queued messages over SMTP: direct delivery to a domain's MX hosts (RFC 5321 section 5) or through a
 * relay (smarthost). One call = one destination, one connection carrying several messages (connection reuse,
 * PIPELINING through nodemailer's client), and a result for every recipient.
 *
 * Direct delivery (RFC 5321 5.1):
 *  - MX hosts by preference, random order among equal preference; no MX (NODATA) -> the domain itself
 *    (implicit MX, A/AAAA); NXDOMAIN -> permanent failure; a null MX (RFC 7505 3) -> permanent 5.1.10;
 *  - for each host its IPv4 then IPv6 addresses; the next address/host on a connection failure, a timeout,
 *    or a 4xx/5xx greeting (RFC 5321 3.1 / Postfix smtp_skip_5xx_greeting);
 *  - opportunistic STARTTLS (RFC 3207): used when offered, certificate not required to verify (RFC 7435);
 *    when the handshake fails the same address is retried in plaintext, as Postfix's `may` level does. The
 *    TLS version, cipher and whether the certificate verified are recorded per recipient.
 * Relays: implicit TLS (465, RFC 8314) or STARTTLS required (587); the certificate must verify against the
 *  host name; AUTH only over TLS. An AUTH failure is temporary (the mail stays queued; the log says why).
 *
 * Per message: SIZE declared (RFC 1870) and a message over the server's limit fails permanently (5.3.4);
 * BODY=8BITMIME when the body has 8-bit bytes, and a permanent 5.6.3 when the server lacks 8BITMIME
 * (RFC 6152 3: we do not downgrade); SMTPUTF8 when the envelope or the header needs it, and a permanent 5.6.7
 * when the server lacks it (RFC 6531 3.2); DSN parameters passed on when the server has DSN (RFC 3461 5.2.1),
 * otherwise `remoteDsn` = false tells the queue to issue a "relayed" DSN for NOTIFY=SUCCESS (RFC 3461 5.2.2).
 * Unknown errors are temporary. Recipients are sent in transactions of at most 100 (RFC 5321 4.5.3.1.8).
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { DnsError, isNullMx, orderMx, type MxRecord, type Resolver } from '../lib/dns/resolver.js';
import type { Logger } from '../log.js';
import type { QueueTlsInfo } from '../storage/types.js';
import { mxMatches, type MtaSts, type StsPolicy } from './mta-sts.js';
import { daneMatch, usableTlsa, type Tlsa } from './dane.js';

export interface OutboundRecipient {
  id: number;
  address: string;
  orcpt: string | null;
  notify: string[] | null;
}

export interface OutboundMessage {
  queueId: string;
  sender: string;
  recipients: OutboundRecipient[];
  size: number;
  envid: string | null;
  ret: 'FULL' | 'HDRS' | null;
  smtputf8: boolean;
  /** The full message (prefix + blob), read when it is about to be sent. */
  load(): Promise<Buffer>;
}

export interface RecipientOutcome {
  recipientId: number;
  queueId: string;
  kind: 'delivered' | 'temporary' | 'permanent';
  /** RFC 3463 status, e.g. "2.0.0", "4.4.1", "5.1.1". */
  statusCode: string;
  /** The remote reply ("550 5.1.1 no such user") or our own diagnostic. */
  diagnostic: string;
  /** Whether the diagnostic is a remote SMTP reply (RFC 3464 Diagnostic-Code "smtp;") */
  fromRemote: boolean;
  remoteMta: string | null;
  tls: QueueTlsInfo | null;
  /** The receiving server supports DSN (RFC 3461), so it reports further on our behalf. */
  remoteDsn: boolean;
}

export interface RelayTarget {
  host: string;
  port: number;
  implicitTls: boolean;
  username: string | null;
  password: string | null;
}

export type Route = { kind: 'mx'; domain: string } | { kind: 'relay'; relay: RelayTarget };

export interface OutboundOptions {
  hostname: string;
  port: number;
  ipv6: boolean;
  sourceIpv4: string | null;
  sourceIpv6: string | null;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  maxMessagesPerConnection: number;
  relayCaFile: string | null;
  /** DANE (RFC 7672) for MX hosts whose MX and TLSA records the resolver validated. */
  dane?: boolean;
}

/** What a failed connection attempt or session tells about the destination. */
class AttemptError extends Error {
  constructor(
    message: string,
    readonly statusCode: string,
    readonly permanent: boolean,
    readonly fromRemote = false,
  ) {
    super(message);
  }
}

const MAX_RCPTS = 100;

// nodemailer's client keeps these internals; we read the server's extensions and rewrite two commands
// (per-recipient DSN parameters, SMTPUTF8 for a header-only need) that its API cannot express.
interface ConnInternals {
  _supportedExtensions: string[];
  _maxAllowedSize: number;
  _socket: net.Socket | tls.TLSSocket | null;
  _sendCommand: (str: string, logStr?: string) => void;
  secure: boolean;
}

export class Outbound {
  private relayCa: string[] | undefined;

  constructor(
    private readonly deps: { resolver: Resolver; random: () => number; log: Logger; mtaSts?: MtaSts },
    private readonly opts: OutboundOptions,
  ) {
    if (opts.relayCaFile) this.relayCa = [...tls.rootCertificates, readFileSync(opts.relayCaFile, 'utf8')];
  }

  /** Delivers messages to one destination; resolves with one outcome per recipient (never rejects). */
  async deliver(route: Route, messages: OutboundMessage[]): Promise<RecipientOutcome[]> {
    const out: RecipientOutcome[] = [];
    const failAll = (msgs: OutboundMessage[], e: AttemptError, remoteMta: string | null = null, tlsInfo: QueueTlsInfo | null = null) => {
      for (const m of msgs)
        for (const r of m.recipients)
          out.push({ recipientId: r.id, queueId: m.queueId, kind: e.permanent ? 'permanent' : 'temporary', statusCode: e.statusCode, diagnostic: e.message, fromRemote: e.fromRemote, remoteMta, tls: tlsInfo, remoteDsn: false });
    };
    let pending = messages;
    try {
      while (pending.length) {
        const batch = pending.slice(0, this.opts.maxMessagesPerConnection);
        pending = pending.slice(batch.length);
        const session = await this.open(route);
        try {
          await this.sendAll(session, batch, out);
        } finally {
          session.conn.quit();
        }
      }
    } catch (err) {
      const e = err instanceof AttemptError ? err : new AttemptError(`4.4.0 ${(err as Error).message}`, '4.4.0', false);
      const done = new Set(out.map((o) => o.queueId));
      failAll([...messages.filter((m) => !done.has(m.queueId))], e);
    }
    return out;
  }

  /**
   * The hosts to try, in order, and the domain's MTA-STS policy (RFC 8461): in mode enforce only the MX hosts it
   * lists are tried (none listed, or no MX records at all: a temporary failure, the mail waits); in mode testing
   * they are all tried and a mismatch is logged.
   */
  private async hosts(route: Route): Promise<{ hosts: { name: string; port: number; implicitMx: boolean }[]; policy: StsPolicy | null; mxSecure: boolean }> {
    if (route.kind === 'relay') return { hosts: [{ name: route.relay.host, port: route.relay.port, implicitMx: false }], policy: null, mxSecure: false };
    const hosts = await this.mxHosts(route.domain);
    // RFC 7672 2.2.1: DANE applies to MX hosts found through a validated MX RRset, and to the domain itself as
    // its implicit MX when the absence of MX records is validated (NODATA with AD).
    let mxSecure = false;
    if (this.opts.dane && this.deps.resolver.secure) mxSecure = await this.deps.resolver.secure(route.domain, 'MX').then((r) => r.secure, () => false);
    const policy = (await this.deps.mtaSts?.policy(route.domain)) ?? null;
    if (!policy) return { hosts, policy, mxSecure };
    const listed = hosts.filter((h) => !h.implicitMx && mxMatches(h.name, policy.mx));
    if (listed.length === hosts.length) return { hosts, policy, mxSecure };
    const text = `of ${route.domain} lists ${policy.mx.join(', ')}; its MX ${hosts.length === 1 && hosts[0]!.implicitMx ? 'is implicit (no MX record)' : `hosts are ${hosts.map((h) => h.name).join(', ')}`}`;
    if (policy.mode === 'testing') {
      this.deps.log.info({ domain: route.domain }, `MTA-STS policy (testing) ${text}`);
      return { hosts, policy, mxSecure };
    }
    if (!listed.length) throw new AttemptError(`4.7.5 MTA-STS policy ${text}: no MX host to deliver to`, '4.7.5', false);
    return { hosts: listed, policy, mxSecure };
  }

  private async mxHosts(domain: string): Promise<{ name: string; port: number; implicitMx: boolean }[]> {
    let mx: MxRecord[];
    try {
      mx = await this.deps.resolver.mx(domain);
    } catch (err) {
      if (err instanceof DnsError && err.kind === 'nxdomain') throw new AttemptError(`5.1.2 Host or domain name not found: ${domain} (NXDOMAIN)`, '5.1.2', true);
      if (err instanceof DnsError && err.kind === 'nodata') mx = [];
      else throw new AttemptError(`4.4.3 DNS lookup of MX ${domain} failed: ${(err as Error).message}`, '4.4.3', false);
    }
    // RFC 7505 4.1: a domain that advertises a null MX accepts no mail; fail at once.
    if (isNullMx(mx)) throw new AttemptError(`5.1.10 Domain ${domain} does not accept mail (null MX, RFC 7505)`, '5.1.10', true);
    // RFC 5321 5.1: no MX -> the domain itself is the implicit MX with preference 0.
    if (!mx.length) return [{ name: domain, port: this.opts.port, implicitMx: true }];
    return orderMx(mx.filter((r) => r.exchange !== '' && r.exchange !== '.'), this.deps.random).map((r) => ({ name: r.exchange, port: this.opts.port, implicitMx: false }));
  }

  private async addresses(host: string, implicitMx: boolean): Promise<string[]> {
    if (net.isIP(host)) return [host];
    const out: string[] = [];
    let notFound = 0;
    let lastErr: Error | null = null;
    const kinds: ('a' | 'aaaa')[] = this.opts.ipv6 ? ['a', 'aaaa'] : ['a'];
    for (const k of kinds) {
      try {
        out.push(...(await this.deps.resolver[k](host)));
      } catch (err) {
        lastErr = err as Error;
        if (err instanceof DnsError && err.notFound) notFound++;
      }
    }
    if (!out.length) {
      if (implicitMx && notFound === kinds.length) throw new AttemptError(`5.1.2 Host or domain name not found: ${host} has no MX, A or AAAA record`, '5.1.2', true);
      throw new AttemptError(`4.4.3 No address for ${host}: ${lastErr?.message ?? 'none'}`, '4.4.3', false);
    }
    return out;
  }

  /** Connects to the first host/address that greets us with 220 and completes EHLO (and TLS/AUTH). */
  private async open(route: Route): Promise<Session> {
    const { hosts, policy, mxSecure } = await this.hosts(route);
    let last: AttemptError | null = null;
    for (const h of hosts) {
      let addrs: string[];
      let tlsa: Tlsa[] | null;
      try {
        addrs = await this.addresses(h.name, h.implicitMx);
        // Once per host, not per address.
        tlsa = mxSecure ? await this.tlsa(h.name, h.port) : null;
      } catch (err) {
        if (hosts.length === 1) throw err;
        last = err as AttemptError;
        continue;
      }
      for (const ip of addrs) {
        try {
          return await this.connectOne(route, h.name, ip, h.port, policy, tlsa);
        } catch (err) {
          last = err instanceof AttemptError ? err : new AttemptError(`4.4.1 ${(err as Error).message}`, '4.4.1', false);
          this.deps.log.info({ host: h.name, ip, err: last.message }, 'outbound connection failed; trying the next address');
          if (route.kind === 'relay' && last.message.includes('authentication')) throw last;
        }
      }
    }
    throw last ?? new AttemptError('4.4.1 No host to connect to', '4.4.1', false);
  }

  /**
   * The MX host's validated TLSA records (RFC 7672 2.2): null when there are none (or they are not validated), so
   * no DANE. A lookup that fails is a temporary failure for this host: it may be an attack on a DANE host.
   */
  private async tlsa(host: string, port: number): Promise<Tlsa[] | null> {
    let r: { secure: boolean; tlsa: Tlsa[] };
    try {
      r = await this.deps.resolver.secure!(`_${port}._tcp.${host}`, 'TLSA');
    } catch (err) {
      throw new AttemptError(`4.7.5 TLSA lookup for ${host} failed (${(err as Error).message}); not delivering without DANE`, '4.7.5', false);
    }
    return r.secure && r.tlsa.length ? r.tlsa : null;
  }

  private async connectOne(route: Route, hostName: string, ip: string, port: number, policy: StsPolicy | null = null, tlsa: Tlsa[] | null = null): Promise<Session> {
    const relay = route.kind === 'relay' ? route.relay : null;
    const localAddress = net.isIPv6(ip) ? this.opts.sourceIpv6 : this.opts.sourceIpv4;
    const base: SMTPConnection.Options = {
      host: ip,
      port,
      name: this.opts.hostname,
      ...(localAddress ? { localAddress } : {}),
      connectionTimeout: this.opts.connectTimeoutMs,
      greetingTimeout: this.opts.connectTimeoutMs,
      socketTimeout: this.opts.commandTimeoutMs,
      socketCloseTimeout: 0,
      logger: false,
    };
    const remoteMta = `${hostName} [${ip}]`;
    if (relay) {
      // The relay's certificate must verify for its name (RFC 8314 / RFC 6125); never plaintext.
      const tlsOpts: tls.ConnectionOptions = { servername: relay.host, rejectUnauthorized: true, ...(this.relayCa ? { ca: this.relayCa } : {}) };
      const conn = await connect({ ...base, secure: relay.implicitTls, requireTLS: !relay.implicitTls, tls: tlsOpts });
      if (relay.username) {
        try {
          await new Promise<void>((resolve, reject) =>
            conn.login({ user: relay.username!, pass: relay.password ?? '' }, (err) => (err ? reject(err) : resolve())),
          );
        } catch (err) {
          conn.close();
          const reply = (err as { response?: string }).response ?? (err as Error).message;
          throw new AttemptError(`4.7.8 relay ${relay.host} authentication failed: ${reply}`, '4.7.8', false, true);
        }
      }
      return new Session(conn, remoteMta);
    }
    if (tlsa) {
      // RFC 7672: TLS required; authenticated by the TLSA records when any is usable (2.2), never in the clear.
      // DANE takes precedence over MTA-STS for this host (RFC 8461 2).
      let conn: SMTPConnection;
      try {
        conn = await connect({ ...base, requireTLS: true, tls: { servername: hostName, rejectUnauthorized: false } });
      } catch (err) {
        if (!isTlsFailure(err)) throw classifyConnectError(err, remoteMta);
        throw new AttemptError(`4.7.5 ${remoteMta}: TLS, required by its DANE TLSA records, failed: ${(err as Error).message}`, '4.7.5', false);
      }
      const session = new Session(conn, remoteMta);
      if (usableTlsa(tlsa).length) {
        const m = daneMatch(tlsa, session.peerChain(), hostName);
        if (!m.ok) {
          conn.close();
          throw new AttemptError(`4.7.5 ${remoteMta}: certificate does not match its DANE TLSA records (${m.why})`, '4.7.5', false);
        }
        session.dane = true;
      }
      return session;
    }
    if (policy?.mode === 'enforce') {
      // RFC 8461 4.2: TLS required, the certificate verified for the MX host's name; no plaintext fallback.
      try {
        return new Session(await connect({ ...base, requireTLS: true, tls: { servername: hostName, rejectUnauthorized: true } }), remoteMta);
      } catch (err) {
        if (!isTlsFailure(err)) throw classifyConnectError(err, remoteMta);
        throw new AttemptError(`4.7.5 ${remoteMta}: TLS with a valid certificate, required by the MTA-STS policy of ${policy.domain}, failed: ${(err as Error).message}`, '4.7.5', false);
      }
    }
    // Opportunistic TLS: certificate problems do not stop delivery (RFC 7435), but are recorded.
    const tlsOpts: tls.ConnectionOptions = { servername: net.isIP(hostName) ? undefined : hostName, rejectUnauthorized: false };
    try {
      const session = new Session(await connect({ ...base, tls: tlsOpts }), remoteMta);
      if (policy?.mode === 'testing' && !session.tlsInfo()?.verified) {
        this.deps.log.info({ host: hostName, ip, domain: policy.domain }, 'MTA-STS policy (testing): no TLS with a valid certificate; delivering anyway');
      }
      return session;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== 'ETLS') throw classifyConnectError(err, remoteMta);
      // Postfix `may`: the TLS handshake failed; retry this address in plaintext.
      this.deps.log.info({ host: hostName, ip, err: (err as Error).message }, 'STARTTLS failed; retrying in plaintext');
      try {
        return new Session(await connect({ ...base, ignoreTLS: true }), remoteMta);
      } catch (err2) {
        throw classifyConnectError(err2, remoteMta);
      }
    }
  }

  private async sendAll(session: Session, messages: OutboundMessage[], out: RecipientOutcome[]): Promise<void> {
    const conn = session.conn;
    const internals = conn as unknown as ConnInternals;
    const ext = new Set(internals._supportedExtensions);
    const tlsInfo = session.tlsInfo();
    // Per-transaction rewriting of MAIL/RCPT lines (see ConnInternals).
    let rcptArgs = new Map<string, string>();
    let addUtf8 = false;
    const send = internals._sendCommand.bind(conn);
    internals._sendCommand = (str: string, logStr?: string) => {
      if (addUtf8 && str.startsWith('MAIL FROM:') && !/ SMTPUTF8\b/.test(str)) str += ' SMTPUTF8';
      const m = /^RCPT TO:<([^>]*)>/.exec(str);
      if (m && rcptArgs.has(m[1]!)) str += rcptArgs.get(m[1]!);
      send(str, logStr);
    };
    for (const msg of messages) {
      if (session.dead) {
        for (const r of msg.recipients) out.push(outcome(msg, r, 'temporary', '4.4.2', '4.4.2 Connection lost before the message was sent', false, session.remoteMta, tlsInfo, false));
        continue;
      }
      const data = await msg.load();
      const fail = (statusCode: string, text: string) => {
        for (const r of msg.recipients) out.push(outcome(msg, r, 'permanent', statusCode, text, false, session.remoteMta, tlsInfo, false));
      };
      // RFC 1870 6: a message larger than the server's declared limit will not be accepted; do not try.
      if (internals._maxAllowedSize && data.length > internals._maxAllowedSize) {
        fail('5.3.4', `5.3.4 Message size ${data.length} exceeds the limit ${internals._maxAllowedSize} of ${session.remoteMta}`);
        continue;
      }
      const needsUtf8 = msg.smtputf8 && (nonAscii(msg.sender) || msg.recipients.some((r) => nonAscii(r.address)) || nonAscii(headerOf(data)));
      if (needsUtf8 && !ext.has('SMTPUTF8')) {
        // RFC 6531 3.2: the server cannot take the message and we do not downgrade it.
        fail('5.6.7', `5.6.7 ${session.remoteMta} does not support SMTPUTF8, which this message requires (RFC 6531)`);
        continue;
      }
      const eightBit = has8bit(data);
      if (eightBit && !ext.has('8BITMIME') && !ext.has('SMTPUTF8')) {
        fail('5.6.3', `5.6.3 ${session.remoteMta} does not support 8BITMIME and the message has 8-bit content (RFC 6152)`);
        continue;
      }
      addUtf8 = needsUtf8;
      const dsn = ext.has('DSN');
      for (let i = 0; i < msg.recipients.length; i += MAX_RCPTS) {
        const chunk = msg.recipients.slice(i, i + MAX_RCPTS);
        rcptArgs = new Map(dsn ? chunk.map((r) => [r.address, rcptDsnArgs(r)]) : []);
        const byAddr = new Map(chunk.map((r) => [r.address, r]));
        const envelope: SMTPConnection.Envelope = {
          from: msg.sender,
          to: chunk.map((r) => r.address),
          size: data.length,
          use8BitMime: eightBit,
          ...(dsn && (msg.ret || msg.envid) ? { dsn: { ret: msg.ret ?? undefined, envid: msg.envid ?? undefined } } : {}),
        };
        const res = await new Promise<{ err: (Error & SmtpErrorFields) | null; info?: SMTPConnection.SentMessageInfo }>((resolve) =>
          conn.send(envelope, data, (err, info) => resolve({ err: (err as (Error & SmtpErrorFields) | null) ?? null, info: info as SMTPConnection.SentMessageInfo | undefined })),
        );
        const seen = new Set<string>();
        const rejected = (res.err?.rejectedErrors ?? (res.info as { rejectedErrors?: (Error & SmtpErrorFields)[] } | undefined)?.rejectedErrors ?? []) as (Error & SmtpErrorFields)[];
        for (const re of rejected) {
          const r = re.recipient ? byAddr.get(re.recipient) : undefined;
          if (!r || seen.has(r.address)) continue;
          seen.add(r.address);
          out.push(fromReply(msg, r, re.response ?? re.message, session, tlsInfo, dsn));
        }
        if (!res.err) {
          const reply = res.info?.response ?? '250 OK';
          for (const a of res.info?.accepted ?? []) {
            const r = byAddr.get(a);
            if (!r || seen.has(a)) continue;
            seen.add(a);
            out.push(outcome(msg, r, 'delivered', enhanced(reply, 2), reply, true, session.remoteMta, tlsInfo, dsn));
          }
        }
        // Whatever has no result yet shares the transaction's error (MAIL FROM or DATA refused, connection lost).
        const err = res.err;
        for (const r of chunk) {
          if (seen.has(r.address)) continue;
          if (err?.response && err.responseCode) out.push(fromReply(msg, r, err.response, session, tlsInfo, dsn));
          else out.push(outcome(msg, r, 'temporary', '4.4.2', `4.4.2 ${err ? err.message : 'no reply for this recipient'}`, false, session.remoteMta, tlsInfo, dsn));
        }
        if (err) {
          if (!err.responseCode || session.closed()) {
            session.dead = true;
          } else {
            // RFC 5321 4.1.1.5: RSET before the next transaction after a failed one.
            const ok = await new Promise<boolean>((resolve) => conn.reset((e) => resolve(!e)));
            if (!ok) session.dead = true;
          }
          if (session.dead) {
            for (const r of msg.recipients.slice(i + MAX_RCPTS)) out.push(outcome(msg, r, 'temporary', '4.4.2', '4.4.2 Connection lost', false, session.remoteMta, tlsInfo, false));
            break;
          }
        }
      }
    }
  }
}

interface SmtpErrorFields {
  code?: string;
  response?: string;
  responseCode?: number;
  recipient?: string;
  rejectedErrors?: (Error & SmtpErrorFields)[];
}

class Session {
  dead = false;
  /** The certificate was authenticated by DANE TLSA records. */
  dane = false;
  constructor(
    readonly conn: SMTPConnection,
    readonly remoteMta: string,
  ) {
    conn.on('error', () => {
      this.dead = true;
    });
    conn.on('end', () => {
      this.dead = true;
    });
  }
  closed(): boolean {
    const s = (this.conn as unknown as ConnInternals)._socket;
    return this.dead || !s || s.destroyed;
  }
  tlsInfo(): QueueTlsInfo | null {
    const s = (this.conn as unknown as ConnInternals)._socket;
    if (!s || !(s instanceof tls.TLSSocket) || !(this.conn as unknown as ConnInternals).secure) return null;
    return { version: s.getProtocol() ?? 'unknown', cipher: s.getCipher()?.name ?? 'unknown', verified: s.authorized || this.dane, ...(this.dane ? { dane: true } : {}) };
  }
  /** The certificates the server presented, leaf first, as DER. */
  peerChain(): Buffer[] {
    const s = (this.conn as unknown as ConnInternals)._socket;
    if (!(s instanceof tls.TLSSocket)) return [];
    const out: Buffer[] = [];
    for (let c = s.getPeerCertificate(true) as tls.DetailedPeerCertificate | undefined; c?.raw && !out.some((r) => r.equals(c!.raw)); c = c.issuerCertificate) out.push(c.raw);
    return out;
  }
}

/** A failed STARTTLS, a certificate that does not verify, or no STARTTLS offered where TLS is required. */
function isTlsFailure(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e.code === 'ETLS' || /certificate|STARTTLS|TLS|self.signed|altnames/i.test(e.message ?? '');
}

function connect(opts: SMTPConnection.Options): Promise<SMTPConnection> {
  return new Promise((resolve, reject) => {
    const conn = new SMTPConnection(opts);
    let settled = false;
    const onError = (err: Error) => {
      if (settled) return;
      settled = true;
      // A TLS handshake that fails after STARTTLS reaches us as a plain socket error (ESOCKET) from
      // nodemailer; its `upgrading` flag tells it apart, and the caller needs ETLS to fall back to plaintext.
      if ((conn as unknown as { upgrading?: boolean }).upgrading) (err as Error & { code?: string }).code = 'ETLS';
      conn.close();
      reject(err);
    };
    conn.once('error', onError);
    conn.once('end', () => onError(Object.assign(new Error('Connection closed during set-up'), { code: 'ECONNECTION' })));
    conn.connect(() => {
      if (settled) return;
      settled = true;
      conn.off('error', onError);
      resolve(conn);
    });
  });
}

function classifyConnectError(err: unknown, remoteMta: string): AttemptError {
  const e = err as Error & SmtpErrorFields;
  if (e.response) {
    // A greeting or EHLO refusal: try the next host; the reply is what the DSN shows if all fail.
    return new AttemptError(e.response.split('\n')[0]!.trim(), enhanced(e.response, e.responseCode && e.responseCode >= 500 ? 5 : 4).replace(/^5/, '4'), false, true);
  }
  const what = e.code === 'ETIMEDOUT' ? 'timed out' : e.message;
  return new AttemptError(`4.4.1 Connection to ${remoteMta} failed: ${what}`, '4.4.1', false);
}

function outcome(
  msg: OutboundMessage,
  r: OutboundRecipient,
  kind: RecipientOutcome['kind'],
  statusCode: string,
  diagnostic: string,
  fromRemote: boolean,
  remoteMta: string | null,
  tlsInfo: QueueTlsInfo | null,
  remoteDsn: boolean,
): RecipientOutcome {
  return { recipientId: r.id, queueId: msg.queueId, kind, statusCode, diagnostic, fromRemote, remoteMta, tls: tlsInfo, remoteDsn };
}

function fromReply(msg: OutboundMessage, r: OutboundRecipient, reply: string, session: Session, tlsInfo: QueueTlsInfo | null, dsn: boolean): RecipientOutcome {
  const text = reply.replace(/\r?\n/g, ' ').trim();
  const code = Number(text.slice(0, 3)) || 451;
  const cls = code >= 500 ? 5 : code >= 400 ? 4 : 2;
  const kind = cls === 5 ? 'permanent' : cls === 4 ? 'temporary' : 'delivered';
  return outcome(msg, r, kind, enhanced(text, cls), text, true, session.remoteMta, tlsInfo, dsn);
}

/** The RFC 3463 code in a reply ("550 5.1.1 ..."), or the class default "X.0.0". */
export function enhanced(reply: string, cls: number): string {
  const m = /^\d{3}[ -](\d\.\d{1,3}\.\d{1,3})\b/.exec(reply.trim());
  return m && m[1]![0] === String(cls) ? m[1]! : `${cls}.0.0`;
}

/** RFC 3461 4.1/4.2: NOTIFY and ORCPT (xtext) for one RCPT. */
function rcptDsnArgs(r: OutboundRecipient): string {
  let s = '';
  if (r.notify?.length) s += ` NOTIFY=${r.notify.join(',')}`;
  if (r.orcpt) {
    const i = r.orcpt.indexOf(';');
    if (i > 0) s += ` ORCPT=${r.orcpt.slice(0, i)};${xtext(r.orcpt.slice(i + 1))}`;
  }
  return s;
}

/** RFC 3461 4: xtext encoding ("+" and "=" and characters outside 33-126 as +HH). */
export function xtext(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) out += b < 33 || b > 126 || b === 43 || b === 61 ? `+${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b);
  return out;
}

function nonAscii(s: string | Buffer): boolean {
  if (typeof s === 'string') return /[^\x00-\x7f]/.test(s);
  for (const b of s) if (b > 127) return true;
  return false;
}

function has8bit(b: Buffer): boolean {
  for (const x of b) if (x > 127) return true;
  return false;
}

function headerOf(data: Buffer): Buffer {
  const i = data.indexOf('\r\n\r\n');
  return i < 0 ? data : data.subarray(0, i);
}
