/**
 * One POP3 session (RFC 1939): AUTHORIZATION -> TRANSACTION -> UPDATE.
 *
 * Invariants:
 *  - Commands run one at a time, in order (RFC 2449 6.6 PIPELINING): lines are queued, the socket is paused
 *    while the queue is long, so a flood cannot grow memory.
 *  - Every command gets exactly one reply: handlers throw typed errors (errors.ts), caught in handle() only.
 *  - The maildrop snapshot is taken at login; DELE only marks; messages are removed in UPDATE (after QUIT)
 *    only. A session that ends any other way (drop, idle timeout, shutdown) removes nothing (RFC 1939 6).
 *  - The maildrop lock is taken at login and released exactly once, when the connection closes.
 *  - After a committed expunge, an 'expunge' change is published so IMAP sessions see it.
 *  - Passwords and SASL responses are never logged.
 */
import type net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../../log.js';
import type { TlsManager } from '../../net/tls.js';
import type { ConnectionInfo } from '../../net/listener.js';
import type { Directory } from '../../core/directory.js';
import type { ChangeBus } from '../../core/changes.js';
import { type AuthLimiter, sleep } from '../../core/auth-limiter.js';
import { Flag, type BlobStore, type MailboxRepo, type MessageRepo } from '../../storage/types.js';
import { LineSplitter, MessageEncoder, decodeSaslPlain, parseCommand, uniqueId, type Command, type CommandName, type SplitItem } from './parser.js';
import { Err, Pop3Error, StreamAbort } from './errors.js';

export type Pop3State = 'AUTHORIZATION' | 'TRANSACTION' | 'UPDATE';

export interface Pop3Settings {
  /** Idle time before an unauthenticated connection is closed (the listener's idle_timeout). */
  idleTimeoutMs: number;
  /** This listener offers STLS (port 110); false on 995, where TLS starts with the first byte. */
  stls: boolean;
}

/** One maildrop lock per account, in this process. */
export interface MaildropLockTable {
  /** Returns a release function, or null when another session holds the lock. */
  acquire(accountId: number, owner: string): (() => void) | null;
}

export interface Pop3Deps {
  directory: Directory;
  mailboxes: MailboxRepo;
  messages: MessageRepo;
  blobs: BlobStore;
  changes: ChangeBus;
  authLimiter: AuthLimiter;
  tls: TlsManager;
  locks: MaildropLockTable;
  log: Logger;
}

/** RFC 1939 3: the autologout timer MUST be at least 10 minutes once authenticated. */
export const MIN_AUTHENTICATED_IDLE_MS = 10 * 60_000;
/** Error replies after which the session is closed (malformed-input flood). */
export const MAX_ERRORS = 10;
/** Commands allowed before a successful login (CAPA, STLS, USER, PASS ... retries). */
export const MAX_UNAUTHENTICATED_COMMANDS = 30;
/** Queued pipelined lines above which the socket is paused until the queue drains. */
const MAX_QUEUED_LINES = 64;
/** Read size when streaming a message from the blob store. */
const CHUNK = 256 * 1024;
/** A client that does not complete the STLS handshake in time is dropped. */
const TLS_HANDSHAKE_MS = 15_000;

interface DropEntry {
  id: number;
  uid: number;
  size: number;
  blobId: string;
  prefixLength: number;
  flags: number;
}

interface Maildrop {
  accountId: number;
  address: string;
  mailboxId: number;
  uidValidity: number;
  messages: DropEntry[];
  /** Indexes (0-based) marked by DELE. */
  deleted: Set<number>;
  /** Indexes (0-based) retrieved whole by RETR: marked \Seen at QUIT (as Dovecot does), not on a dropped session. */
  retrieved: Set<number>;
  /** Octets of the messages not marked (kept up to date so STAT is O(1)). */
  liveOctets: number;
  release: () => void;
}

type Handler<N extends CommandName> = (s: Pop3Session, c: Extract<Command, { name: N }>) => Promise<void> | void;
interface CommandSpec<N extends CommandName> {
  states: readonly Pop3State[];
  run: Handler<N>;
}

const AUTH: readonly Pop3State[] = ['AUTHORIZATION'];
const TRANS: readonly Pop3State[] = ['TRANSACTION'];
const BOTH: readonly Pop3State[] = ['AUTHORIZATION', 'TRANSACTION'];

/** The one command table: name -> allowed states and handler (RFC 1939 4-7, RFC 2449 5, RFC 2595 4, RFC 5034 4). */
const COMMANDS: { [N in CommandName]: CommandSpec<N> } = {
  CAPA: { states: BOTH, run: (s) => s.capa() },
  STLS: { states: AUTH, run: (s) => s.stls() },
  USER: { states: AUTH, run: (s, c) => s.userCmd(c.user) },
  PASS: { states: AUTH, run: (s, c) => s.passCmd(c.pass) },
  AUTH: { states: AUTH, run: (s, c) => s.authCmd(c.mechanism, c.initial) },
  APOP: { states: AUTH, run: () => { throw Err.apop(); } },
  QUIT: { states: BOTH, run: (s) => s.quit() },
  STAT: { states: TRANS, run: (s) => s.stat() },
  LIST: { states: TRANS, run: (s, c) => s.list(c.msg) },
  UIDL: { states: TRANS, run: (s, c) => s.uidl(c.msg) },
  RETR: { states: TRANS, run: (s, c) => s.retrieve(c.msg, null) },
  TOP: { states: TRANS, run: (s, c) => s.retrieve(c.msg, c.lines) },
  DELE: { states: TRANS, run: (s, c) => s.dele(c.msg) },
  NOOP: { states: TRANS, run: (s) => s.send('+OK') },
  RSET: { states: TRANS, run: (s) => s.rset() },
};

export class Pop3Session {
  private state: Pop3State = 'AUTHORIZATION';
  private socket: net.Socket;
  private secure: boolean;
  private readonly splitter = new LineSplitter();
  private readonly queue: SplitItem[] = [];
  private busy = false;
  private closed = false;
  private upgrading = false;
  private shuttingDown = false;
  private errors = 0;
  private unauthenticatedCommands = 0;
  /** Name given by USER, waiting for PASS. */
  private pendingUser: string | null = null;
  /** AUTH PLAIN without initial response: the next line is the SASL response (RFC 5034 4). */
  private awaitingSasl = false;
  private drop: Maildrop | null = null;
  private readonly closeListeners: (() => void)[] = [];

  constructor(
    socket: net.Socket,
    private readonly info: ConnectionInfo,
    private readonly settings: () => Pop3Settings,
    private readonly deps: Pop3Deps,
  ) {
    this.socket = socket;
    this.secure = info.secure;
  }

  get log(): Logger {
    return this.deps.log;
  }

  onClose(fn: () => void): void {
    this.closeListeners.push(fn);
  }

  start(): void {
    // The socket handed over (plain, or TLS on 995) closes exactly once, whatever wraps it later.
    this.socket.once('close', () => this.cleanup());
    this.attach(this.socket);
    // No APOP timestamp: APOP needs a clear-text-equivalent secret, which we never store.
    this.send('+OK Postern POP3 server ready');
  }

  private attach(socket: net.Socket): void {
    socket.on('data', this.onData);
    socket.on('error', (err: Error) => this.log.debug({ cid: this.info.id, proto: 'pop3', err: err.message }, 'pop3 socket error'));
    socket.on('timeout', this.onIdle);
    socket.setTimeout(this.idleMs());
  }

  private idleMs(): number {
    const configured = this.settings().idleTimeoutMs;
    return this.state === 'AUTHORIZATION' ? configured : Math.max(configured, MIN_AUTHENTICATED_IDLE_MS);
  }

  /** RFC 1939 3: on autologout the session does NOT enter UPDATE; the connection is closed without a reply. */
  private readonly onIdle = (): void => {
    this.log.info({ cid: this.info.id, proto: 'pop3', user: this.drop?.address }, 'pop3 idle timeout');
    this.destroy();
  };

  private readonly onData = (chunk: Buffer): void => {
    if (this.closed || this.upgrading) return;
    for (const item of this.splitter.push(chunk)) this.queue.push(item);
    if (this.queue.length > MAX_QUEUED_LINES) this.socket.pause();
    void this.pump();
  };

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    while (this.queue.length && !this.closed && !this.upgrading) {
      await this.handle(this.queue.shift()!);
      // A client that pipelines commands but does not read the replies stops being read from.
      if (this.socket.writableNeedDrain && !this.closed) await this.drained();
    }
    this.busy = false;
    if (this.closed) return;
    if (this.shuttingDown) return this.fail(Err.shuttingDown());
    if (!this.upgrading && this.socket.isPaused()) this.socket.resume();
  }

  /** The one catch point: every line gets exactly one reply (or, for a broken stream, a closed connection). */
  private async handle(item: SplitItem): Promise<void> {
    try {
      if (item.kind === 'too-long') throw Err.lineTooLong();
      if (this.awaitingSasl) return await this.saslResponse(item.line);
      const parsed = parseCommand(item.line);
      if (!parsed.ok) throw parsed.error === 'unknown' ? Err.unknownCommand() : Err.syntax(parsed.name);
      const c = parsed.command;
      this.log.debug({ cid: this.info.id, proto: 'pop3', cmd: c.name }, 'pop3 command');
      if (this.state === 'AUTHORIZATION' && ++this.unauthenticatedCommands > MAX_UNAUTHENTICATED_COMMANDS) throw Err.tooManyCommands();
      const spec = COMMANDS[c.name] as CommandSpec<CommandName>;
      if (!spec.states.includes(this.state)) throw Err.badState(c.name);
      await (spec.run as Handler<CommandName>)(this, c as never);
    } catch (err) {
      this.fail(err);
    }
  }

  private fail(err: unknown): void {
    if (err instanceof StreamAbort) {
      this.log.warn({ cid: this.info.id, proto: 'pop3', err: err.message }, 'pop3 response aborted; closing');
      return this.destroy();
    }
    let e: Pop3Error;
    if (err instanceof Pop3Error) e = err;
    else {
      this.log.error({ cid: this.info.id, proto: 'pop3', err: (err as Error)?.message }, 'pop3 internal error');
      e = Err.internal();
    }
    this.send(e.line());
    if (e.close) return this.end();
    if (++this.errors >= MAX_ERRORS) {
      this.send(Err.tooManyErrors().line());
      this.end();
    }
  }

  send(line: string): void {
    if (this.closed || this.socket.destroyed) return;
    this.socket.write(line + '\r\n');
  }

  private drained(): Promise<void> {
    const s = this.socket;
    return new Promise<void>((resolve) => {
      const done = () => {
        s.off('drain', done);
        s.off('close', done);
        resolve();
      };
      s.once('drain', done);
      s.once('close', done);
    });
  }

  /** Writes, then waits for the socket to drain if its buffer is full (backpressure for large responses). */
  private async write(buf: Buffer | string): Promise<void> {
    const s = this.socket;
    if (this.closed || s.destroyed) throw new StreamAbort('connection closed');
    if (s.write(buf)) return;
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        s.off('drain', ok);
        s.off('close', gone);
      };
      const ok = () => (done(), resolve());
      const gone = () => (done(), reject(new StreamAbort('connection closed')));
      s.once('drain', ok);
      s.once('close', gone);
    });
  }

  /** A multi-line response (RFC 1939 3); the lines here never start with ".". */
  private async multiline(first: string, lines: Iterable<string>): Promise<void> {
    let batch = first + '\r\n';
    for (const l of lines) {
      batch += l + '\r\n';
      if (batch.length > 64 * 1024) {
        await this.write(batch);
        batch = '';
      }
    }
    await this.write(batch + '.\r\n');
  }

  // ---- AUTHORIZATION -------------------------------------------------------------------------------------

  /** RFC 2449 5: USER and SASL only where credentials are protected; STLS only before TLS on 110. */
  async capa(): Promise<void> {
    const caps = ['TOP'];
    if (this.secure) caps.push('USER');
    caps.push('UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING');
    if (this.secure) caps.push('SASL PLAIN');
    if (!this.secure && this.settings().stls && this.state === 'AUTHORIZATION') caps.push('STLS');
    caps.push('EXPIRE NEVER', 'IMPLEMENTATION Postern');
    await this.multiline('+OK Capability list follows', caps);
  }

  /**
   * RFC 2595 4: STLS. Anything the client pipelined after STLS is discarded (queued lines, the line
   * splitter's buffer and bytes already read but not consumed), so plaintext cannot be injected into the
   * TLS session. The session stays in AUTHORIZATION and forgets a pending USER.
   */
  async stls(): Promise<void> {
    if (this.secure || !this.settings().stls) throw Err.stlsUnavailable();
    const plain = this.socket;
    this.upgrading = true;
    this.queue.length = 0;
    this.splitter.reset();
    plain.off('data', this.onData);
    plain.off('timeout', this.onIdle);
    plain.pause();
    // Bytes that arrived but were not delivered yet: TLSSocket would feed them to the handshake.
    while (plain.read() !== null);
    plain.write('+OK Begin TLS negotiation\r\n');
    const t = this.deps.tls;
    const secure = new tls.TLSSocket(plain, { isServer: true, secureContext: t.contextFor(null), SNICallback: t.sniCallback });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => secure.destroy(), TLS_HANDSHAKE_MS);
      secure.once('secure', () => {
        clearTimeout(timer);
        resolve();
      });
      secure.once('error', (err) => {
        clearTimeout(timer);
        this.log.debug({ cid: this.info.id, proto: 'pop3', err: err.message }, 'STLS handshake failed');
        secure.destroy();
        plain.destroy();
        resolve();
      });
      secure.once('close', () => resolve());
    });
    if (secure.destroyed || this.closed) return this.destroy();
    this.socket = secure;
    this.secure = true;
    this.pendingUser = null;
    this.upgrading = false;
    this.attach(secure);
    this.log.info({ cid: this.info.id, proto: 'pop3', tls: secure.getProtocol() }, 'STLS established');
  }

  userCmd(user: string): void {
    if (!this.secure) throw Err.tlsRequired();
    this.pendingUser = user;
    this.send('+OK send PASS');
  }

  async passCmd(pass: string): Promise<void> {
    if (!this.secure) throw Err.tlsRequired();
    const user = this.pendingUser;
    this.pendingUser = null;
    if (user === null) throw Err.userFirst();
    await this.login(user, pass, 'USER');
  }

  async authCmd(mechanism: string | null, initial: string | null): Promise<void> {
    if (!this.secure) throw Err.tlsRequired();
    // Bare AUTH: the mechanism list (widespread practice, e.g. Outlook's probe; RFC 5034 uses CAPA SASL).
    if (mechanism === null) return this.multiline('+OK SASL mechanisms follow', ['PLAIN']);
    if (mechanism !== 'PLAIN') throw Err.authMechanism();
    this.pendingUser = null;
    if (initial === null) {
      // RFC 5034 4: empty server challenge.
      this.awaitingSasl = true;
      return this.send('+ ');
    }
    await this.saslPlain(initial);
  }

  private async saslResponse(line: string): Promise<void> {
    this.awaitingSasl = false;
    // RFC 5034 4: "*" cancels the exchange.
    if (line.trim() === '*') throw Err.authCancelled();
    await this.saslPlain(line.trim());
  }

  private async saslPlain(b64: string): Promise<void> {
    const d = decodeSaslPlain(b64);
    if (!d) throw Err.saslInvalid();
    if (d.authzid && d.authzid !== d.user) throw Err.authzMismatch();
    await this.login(d.user, d.pass, 'PLAIN');
  }

  /** Credentials check (with the shared failure back-off), maildrop lock, snapshot; then TRANSACTION. */
  private async login(user: string, pass: string, method: string): Promise<void> {
    const ip = this.info.remoteAddress;
    let account;
    try {
      account = await this.deps.directory.authenticate(user, pass);
    } catch (err) {
      this.log.error({ cid: this.info.id, proto: 'pop3', err: (err as Error).message }, 'authentication backend error');
      throw Err.authTemp();
    }
    if (!account) {
      const delay = this.deps.authLimiter.failure(ip);
      this.log.warn({ cid: this.info.id, proto: 'pop3', remote: ip, user: user.slice(0, 256), method, delayMs: delay }, 'authentication failed');
      await sleep(delay);
      throw Err.authFailed();
    }
    this.deps.authLimiter.success(ip);
    if (this.closed) return;
    const release = this.deps.locks.acquire(account.id, this.info.id);
    if (!release) {
      this.log.info({ cid: this.info.id, proto: 'pop3', user: account.address }, 'maildrop in use');
      throw Err.inUse();
    }
    try {
      const inbox = await this.deps.mailboxes.get(account.id, 'INBOX');
      if (!inbox) throw Err.noMaildrop();
      const rows = await this.deps.messages.list(inbox.id);
      rows.sort((a, b) => a.uid - b.uid);
      this.drop = {
        accountId: account.id,
        address: account.address,
        mailboxId: inbox.id,
        uidValidity: inbox.uidValidity,
        messages: rows.map((m) => ({ id: m.id, uid: m.uid, size: m.size, blobId: m.blobId, prefixLength: m.prefixLength, flags: m.flags })),
        deleted: new Set(),
        retrieved: new Set(),
        liveOctets: rows.reduce((n, m) => n + m.size, 0),
        release,
      };
    } catch (err) {
      release();
      if (err instanceof Pop3Error) throw err;
      this.log.error({ cid: this.info.id, proto: 'pop3', err: (err as Error).message }, 'maildrop could not be opened');
      throw Err.storeTemp();
    }
    if (this.closed) return this.cleanup();
    this.state = 'TRANSACTION';
    this.socket.setTimeout(this.idleMs());
    this.log.info({ cid: this.info.id, proto: 'pop3', remote: ip, user: account.address, method, messages: this.drop.messages.length }, 'authenticated');
    const { count, octets } = this.totals();
    this.send(`+OK maildrop locked and ready, ${count} messages (${octets} octets)`);
  }

  // ---- TRANSACTION ---------------------------------------------------------------------------------------

  private totals(): { count: number; octets: number } {
    const d = this.drop!;
    return { count: d.messages.length - d.deleted.size, octets: d.liveOctets };
  }

  /** RFC 1939 5: a message number that exists and is not marked deleted. */
  private message(msg: number): DropEntry {
    const d = this.drop!;
    const m = d.messages[msg - 1];
    if (!m) throw Err.noSuchMessage();
    if (d.deleted.has(msg - 1)) throw Err.alreadyDeleted();
    return m;
  }

  stat(): void {
    const { count, octets } = this.totals();
    this.send(`+OK ${count} ${octets}`);
  }

  async list(msg: number | null): Promise<void> {
    if (msg !== null) return this.send(`+OK ${msg} ${this.message(msg).size}`);
    const { count, octets } = this.totals();
    await this.multiline(`+OK ${count} messages (${octets} octets)`, this.live((m, n) => `${n} ${m.size}`));
  }

  /** RFC 1939 7: UIDL ids are stable across sessions: UIDVALIDITY and UID never change for a message. */
  async uidl(msg: number | null): Promise<void> {
    const d = this.drop!;
    if (msg !== null) return this.send(`+OK ${msg} ${uniqueId(d.uidValidity, this.message(msg).uid)}`);
    await this.multiline('+OK unique-id listing follows', this.live((m, n) => `${n} ${uniqueId(d.uidValidity, m.uid)}`));
  }

  private *live(fmt: (m: DropEntry, n: number) => string): Generator<string> {
    const d = this.drop!;
    for (let i = 0; i < d.messages.length; i++) if (!d.deleted.has(i)) yield fmt(d.messages[i]!, i + 1);
  }

  /**
   * RETR (bodyLines null) and TOP (RFC 1939 7): streamed from the blob store in CHUNK reads with
   * dot-stuffing, waiting for the socket to drain, so a 25 MB message is never held whole. The first
   * chunk is read before "+OK", so a message expunged meanwhile (by IMAP) gets "-ERR" rather than a cut
   * response; a failure after "+OK" closes the connection (StreamAbort).
   */
  async retrieve(msg: number, bodyLines: number | null): Promise<void> {
    const m = this.message(msg);
    const blobSize = m.size - m.prefixLength;
    let prefix: Buffer;
    let first: Buffer;
    try {
      prefix = m.prefixLength ? await this.deps.messages.prefix(m.id) : Buffer.alloc(0);
      first = await this.deps.blobs.read(m.blobId, 0, Math.min(CHUNK, blobSize));
    } catch (err) {
      this.log.warn({ cid: this.info.id, proto: 'pop3', uid: m.uid, err: (err as Error).message }, 'message not readable');
      throw Err.messageGone();
    }
    if (prefix.length !== m.prefixLength || first.length !== Math.min(CHUNK, blobSize)) throw Err.messageGone();
    const enc = new MessageEncoder(bodyLines);
    // RFC 1939 7 RETR: the octet count is the message's size as stored (CRLF line ends, before dot-stuffing).
    await this.write(bodyLines === null ? `+OK ${m.size} octets\r\n` : '+OK top of message follows\r\n');
    try {
      await this.write(enc.encode(prefix));
      await this.write(enc.encode(first));
      let offset = first.length;
      while (offset < blobSize && !enc.complete) {
        const chunk = await this.deps.blobs.read(m.blobId, offset, Math.min(offset + CHUNK, blobSize));
        if (chunk.length === 0) throw new StreamAbort(`blob ${m.blobId} shorter than recorded`);
        offset += chunk.length;
        await this.write(enc.encode(chunk));
      }
      await this.write(enc.finish());
    } catch (err) {
      throw err instanceof StreamAbort ? err : new StreamAbort((err as Error).message);
    }
    if (bodyLines === null) this.drop!.retrieved.add(msg - 1);
  }

  dele(msg: number): void {
    const m = this.message(msg);
    this.drop!.deleted.add(msg - 1);
    this.drop!.liveOctets -= m.size;
    this.send(`+OK message ${msg} deleted`);
  }

  rset(): void {
    const d = this.drop!;
    d.deleted.clear();
    d.liveOctets = d.messages.reduce((n, m) => n + m.size, 0);
    const { count, octets } = this.totals();
    this.send(`+OK maildrop has ${count} messages (${octets} octets)`);
  }

  /** RFC 1939 6: QUIT from TRANSACTION enters UPDATE: marked messages are removed, then the lock released. */
  async quit(): Promise<void> {
    const d = this.drop;
    if (this.state === 'AUTHORIZATION' || !d) {
      this.send('+OK Postern POP3 server signing off');
      return this.end();
    }
    this.state = 'UPDATE';
    const uids = [...d.deleted].map((i) => d.messages[i]!.uid);
    let removed = 0;
    if (uids.length) {
      try {
        const r = await this.deps.messages.expunge(d.mailboxId, uids);
        removed = r.uids.length;
        if (removed) this.deps.changes.publish({ type: 'expunge', accountId: d.accountId, mailboxId: d.mailboxId, uids: r.uids, modseq: r.modseq });
      } catch (err) {
        this.log.error({ cid: this.info.id, proto: 'pop3', err: (err as Error).message }, 'pop3 update failed');
        throw Err.notRemoved();
      }
    }
    // Retrieved messages that stay in the maildrop become \Seen for IMAP clients (Dovecot's pop3 default).
    const seen = [...d.retrieved].filter((i) => !d.deleted.has(i) && !(d.messages[i]!.flags & Flag.Seen)).map((i) => d.messages[i]!.uid);
    if (seen.length) {
      try {
        const r = await this.deps.messages.storeFlags(d.mailboxId, seen, 'add', Flag.Seen, []);
        if (r.updated.length) this.deps.changes.publish({ type: 'flags', accountId: d.accountId, mailboxId: d.mailboxId, uids: r.updated.map((u) => u.uid), modseq: r.modseq });
      } catch (err) {
        this.log.warn({ cid: this.info.id, proto: 'pop3', err: (err as Error).message }, 'could not mark retrieved messages \\Seen');
      }
    }
    this.log.info({ cid: this.info.id, proto: 'pop3', user: d.address, deleted: removed, seen: seen.length }, 'pop3 update');
    const left = d.messages.length - d.deleted.size;
    this.send(`+OK Postern POP3 server signing off (${left} messages left)`);
    this.end();
  }

  // ---- lifecycle -----------------------------------------------------------------------------------------

  /** Graceful stop: an idle session is closed now, a busy one after its current command. No UPDATE. */
  shutdown(): void {
    if (this.closed) return;
    this.shuttingDown = true;
    if (!this.busy && !this.upgrading) this.fail(Err.shuttingDown());
  }

  private end(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 5000).unref();
  }

  private destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private cleanup(): void {
    this.closed = true;
    const d = this.drop;
    if (d) {
      d.release();
      this.drop = null;
    }
    for (const fn of this.closeListeners.splice(0)) fn();
  }
}
