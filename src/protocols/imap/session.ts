/**
 * One IMAP connection: bytes -> ImapReader -> parseCommand -> ONE command table (name, allowed states, run)
 * -> replies. The single catch point (execute) turns ImapBad / ImapNo / parse errors into exactly one tagged
 * reply; anything unexpected becomes `NO [SERVERBUG]` on the wire and a log line with the connection id.
 *
 * States (RFC 9051 3): notauth -> auth -> selected -> logout. Commands run one at a time in order; the socket
 * is paused while one runs, so a pipelining client cannot make us buffer without bound.
 * Untagged updates of the selected mailbox (EXISTS, EXPUNGE/VANISHED, FETCH FLAGS) are sent at the end of a
 * command and during IDLE, never EXPUNGE during FETCH/STORE/SEARCH (RFC 9051 7.5.1).
 * STARTTLS (RFC 9051 6.2.1): bytes pipelined after the command are discarded (a new reader starts on TLS).
 * Passwords never reach the log.
 */
import type net from 'node:net';
import tls from 'node:tls';
import type zlib from 'node:zlib';
import type { ConnectionInfo } from '../../net/listener.js';
import { ImapReader, type ReaderEvent } from './reader.js';
import { parseCommand, ImapParseError, type Command } from './parser.js';
import { encodeUtf7 } from '../../lib/imap/utf7.js';
import { imapString } from '../../lib/imap/format.js';
import { ImapBad, ImapBye, ImapNo } from './errors.js';
import { Output, inflater } from './compress.js';
import { MailboxView } from './mailbox-view.js';
import { COMMANDS, type State } from './commands/index.js';
import type { ImapDeps, ImapSettings } from './context.js';
import type { Account } from '../../storage/types.js';
import type { Change } from '../../core/changes.js';
import { sendUpdates } from './updates.js';
import { authenticateWith } from './commands/auth.js';
import { searchCharsetDecoder } from './charsets.js';
import { cidrContains } from '../../net/cidr.js';

export type { State } from './commands/index.js';

/** What a handler may return: text (and response code) of the tagged OK. */
export interface Done {
  code?: string;
  text?: string;
}

export interface SessionHost {
  settings(): ImapSettings;
  deps: ImapDeps;
  /** Per-account connection accounting; false when the account is at its limit. */
  acquireAccount(accountId: number): boolean;
  releaseAccount(accountId: number): void;
}

export class ImapSession {
  state: State = 'notauth';
  account: Account | null = null;
  view: MailboxView | null = null;
  /** ENABLEd extensions (RFC 5161): CONDSTORE, QRESYNC, IMAP4REV2, UTF8=ACCEPT. */
  readonly enabled = new Set<string>();
  /** CONDSTORE is on once enabled or used (RFC 7162 3.1). */
  condstore = false;
  secure: boolean;
  /** The client's address is in [imap] plaintext_auth_networks: it may log in before STARTTLS. */
  private readonly plaintextTrusted: boolean;
  /** LOGIN / AUTHENTICATE are allowed: over TLS, or from a network the operator trusts with plaintext. */
  get authAllowed(): boolean {
    return this.secure || this.plaintextTrusted;
  }
  readonly out: Output;
  readonly id: string;
  private socket: net.Socket;
  private reader: ImapReader;
  private running = false;
  private closed = false;
  private inflate: zlib.InflateRaw | null = null;
  private unsubscribe: (() => void) | null = null;
  private idle: { tag: string } | null = null;
  private authWait: { tag: string; mechanism: string } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private rate = { second: 0, count: 0 };

  constructor(
    socket: net.Socket,
    readonly info: ConnectionInfo,
    readonly host: SessionHost,
    /** 'imap' (143, STARTTLS required before login) or 'imaps' (993). */
    readonly role: 'imap' | 'imaps',
  ) {
    this.socket = socket;
    this.secure = info.secure;
    const trusted = host.settings().plaintextAuthNetworks;
    this.plaintextTrusted = !!trusted?.length && cidrContains(trusted, info.remoteAddress);
    this.id = info.id;
    this.out = new Output(socket);
    this.reader = this.newReader();
    this.attach(socket);
  }

  get deps(): ImapDeps {
    return this.host.deps;
  }

  get settings(): ImapSettings {
    return this.host.settings();
  }

  get rev2(): boolean {
    return this.enabled.has('IMAP4REV2');
  }

  /** UTF-8 in mailbox names and quoted strings (RFC 9051, RFC 6855 UTF8=ACCEPT). */
  get utf8(): boolean {
    return this.enabled.has('IMAP4REV2') || this.enabled.has('UTF8=ACCEPT');
  }

  get qresync(): boolean {
    return this.enabled.has('QRESYNC');
  }

  start(): void {
    this.send(`* OK [CAPABILITY ${this.capabilities().join(' ')}] ${this.settings.hostname} Postern IMAP ready\r\n`);
    void this.out.flush();
    this.armTimer();
  }

  // ---- I/O ----

  private newReader(): ImapReader {
    const s = this.settings;
    return new ImapReader({ maxLineLength: s.maxLineLength, maxLiteralSize: s.maxLiteralSize, maxCommandSize: s.maxLiteralSize + 1024 * 1024 });
  }

  private attach(socket: net.Socket): void {
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    socket.on('error', (err) => this.deps.log.debug({ cid: this.id, err: err.message }, 'imap socket error'));
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.inflate) this.inflate.write(chunk);
    else this.input(chunk);
  };

  private input(chunk: Buffer): void {
    this.armTimer();
    this.reader.push(chunk);
    void this.pump();
  }

  private readonly onClose = (): void => {
    if (this.closed) return;
    this.closed = true;
    this.out.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.unsubscribe?.();
    if (this.account) this.host.releaseAccount(this.account.id);
    this.deps.log.debug({ cid: this.id, proto: this.role }, 'imap session closed');
  };

  private armTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.closed) return;
    const ms = this.state === 'notauth' ? this.settings.idleTimeoutMs : Math.max(this.settings.authIdleTimeoutMs, this.settings.idleTimeoutMs);
    this.timer = setTimeout(() => void this.bye('Autologout; idle for too long'), ms);
    this.timer.unref();
  }

  send(data: string | Buffer): void {
    this.out.send(data);
  }

  /** Sends `* BYE` and closes. */
  async bye(text: string): Promise<void> {
    if (this.closed) return;
    this.send(`* BYE ${text}\r\n`);
    await this.out.flush();
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  /** Server shutdown (RFC 9051 7.1.5). */
  async shutdown(): Promise<void> {
    await this.bye('Server shutting down');
  }

  /** Processes reader events one at a time; commands are awaited in order. */
  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (!this.closed) {
        if (this.reader.closed) {
          this.close();
          break;
        }
        const ev = this.reader.next();
        if (!ev) break;
        this.socket.pause();
        try {
          await this.onEvent(ev);
        } finally {
          if (!this.closed) this.socket.resume();
        }
        await this.out.flush();
      }
    } catch (err) {
      this.deps.log.error({ cid: this.id, err: (err as Error).stack }, 'imap session failure');
      this.close();
    } finally {
      this.running = false;
    }
  }

  private async onEvent(ev: ReaderEvent): Promise<void> {
    switch (ev.type) {
      case 'continue':
        this.send('+ Ready for literal data\r\n');
        return;
      case 'line':
        return this.onLine(ev.line);
      case 'line-too-long':
        this.send(`${ev.tag ?? '*'} BAD [TOOBIG] Line too long\r\n`);
        return;
      case 'literal-rejected': {
        const isAppend = ev.command === 'APPEND';
        if (ev.tag) this.send(isAppend ? `${ev.tag} NO [TOOBIG] Message too large (APPENDLIMIT ${this.settings.maxLiteralSize})\r\n` : `${ev.tag} BAD [TOOBIG] Literal too large\r\n`);
        if (ev.action === 'close') await this.bye('Too much data');
        return;
      }
      case 'command':
        return this.command(ev.command, ev.tag);
    }
  }

  /** Raw line mode: IDLE's DONE or an AUTHENTICATE response. */
  private async onLine(line: Buffer): Promise<void> {
    this.reader.setRawLineMode(false);
    if (this.idle) {
      const tag = this.idle.tag;
      this.idle = null;
      if (line.toString('latin1').toUpperCase() === 'DONE') this.send(`${tag} OK IDLE terminated\r\n`);
      else this.send(`${tag} BAD Expected DONE\r\n`);
      return;
    }
    if (this.authWait) {
      const { tag, mechanism } = this.authWait;
      this.authWait = null;
      const text = line.toString('latin1');
      if (text === '*') {
        this.send(`${tag} BAD AUTHENTICATE cancelled\r\n`);
        return;
      }
      await this.execute(tag, 'AUTHENTICATE', () => authenticateWith(this, mechanism, decodeBase64(text)));
    }
  }

  private async command(raw: Parameters<typeof parseCommand>[0], sniffedTag: string | null): Promise<void> {
    await this.throttle();
    let cmd: Command;
    try {
      cmd = parseCommand(raw, { utf7Mailboxes: !this.utf8, charsetDecoder: searchCharsetDecoder });
    } catch (e) {
      if (e instanceof ImapParseError) {
        const tag = e.tag ?? sniffedTag;
        this.send(`${tag ?? '*'} ${e.kind}${e.code ? ` [${e.code}]` : ''} ${oneLine(e.message)}\r\n`);
        return;
      }
      throw e;
    }
    const spec = COMMANDS.get(cmd.name);
    if (!spec) {
      this.send(`${cmd.tag} BAD Unknown command\r\n`);
      return;
    }
    if (!spec.states.includes(this.state)) {
      this.send(`${cmd.tag} BAD ${cmd.name} not allowed ${this.state === 'notauth' ? 'before authentication' : this.state === 'auth' ? 'without a selected mailbox' : 'now'}\r\n`);
      return;
    }
    await this.execute(cmd.tag, cmd.name, () => spec.run(this, cmd as never), cmd);
  }

  /** The one catch point: exactly one tagged reply per command. */
  private async execute(tag: string, name: string, run: () => Promise<Done | void | 'none'>, cmd?: Command): Promise<void> {
    let result: Done | void | 'none';
    try {
      result = await run();
    } catch (e) {
      if (e instanceof ImapNo) {
        await this.afterCommand(cmd);
        this.send(`${tag} NO ${e.code ? `[${e.code}] ` : ''}${oneLine(e.message)}\r\n`);
      } else if (e instanceof ImapBad) {
        this.send(`${tag} BAD ${e.code ? `[${e.code}] ` : ''}${oneLine(e.message)}\r\n`);
      } else if (e instanceof ImapBye) {
        await this.bye(e.message);
      } else {
        this.deps.log.error({ cid: this.id, command: name, err: (e as Error).stack }, 'imap command failed');
        this.send(`${tag} NO [SERVERBUG] Internal error (connection ${this.id})\r\n`);
      }
      return;
    }
    if (result === 'none') return; // the handler answered itself (IDLE, AUTHENTICATE continuation, LOGOUT, STARTTLS)
    await this.afterCommand(cmd);
    const r = result ?? {};
    this.send(`${tag} OK ${r.code ? `[${r.code}] ` : ''}${r.text ?? `${name} completed`}\r\n`);
  }

  /** Pending mailbox updates after a command (RFC 9051 7.5.1: no EXPUNGE after FETCH, STORE, SEARCH). */
  private async afterCommand(cmd: Command | undefined): Promise<void> {
    if (!this.view || this.closed) return;
    const noExpunge = cmd && !('uid' in cmd && cmd.uid) && (cmd.name === 'FETCH' || cmd.name === 'STORE' || cmd.name === 'SEARCH' || cmd.name === 'SORT' || cmd.name === 'THREAD');
    await sendUpdates(this, !noExpunge);
  }

  private async throttle(): Promise<void> {
    const max = this.settings.maxCommandsPerSecond;
    if (max <= 0) return;
    const sec = Math.floor(Date.now() / 1000);
    if (sec !== this.rate.second) this.rate = { second: sec, count: 0 };
    if (++this.rate.count > max) {
      await new Promise((r) => setTimeout(r, (sec + 1) * 1000 - Date.now()));
      this.rate = { second: Math.floor(Date.now() / 1000), count: 1 };
    }
  }

  // ---- services for handlers ----

  capabilities(): string[] {
    const caps = ['IMAP4rev1', 'IMAP4rev2'];
    if (this.state === 'notauth') {
      if (!this.authAllowed) return [...caps, 'STARTTLS', 'LOGINDISABLED', 'LITERAL+', 'ID', 'ENABLE'];
      if (!this.secure) caps.push('STARTTLS');
      caps.push('AUTH=PLAIN', 'SASL-IR');
    }
    caps.push(
      'LITERAL+', 'ID', 'ENABLE', 'IDLE', 'NAMESPACE', 'UNSELECT', 'UIDPLUS', 'MOVE', 'CHILDREN', 'SPECIAL-USE', 'CREATE-SPECIAL-USE',
      'LIST-EXTENDED', 'LIST-STATUS', 'STATUS=SIZE', 'ESEARCH', 'SEARCHRES', 'CONDSTORE', 'QRESYNC', 'QUOTA', 'QUOTA=RES-STORAGE',
      `APPENDLIMIT=${this.settings.maxLiteralSize}`, 'BINARY', 'UTF8=ACCEPT', 'MULTIAPPEND', 'SORT', 'ESORT', 'THREAD=REFERENCES', 'THREAD=ORDEREDSUBJECT',
    );
    if (!this.out.compressed) caps.push('COMPRESS=DEFLATE');
    return caps;
  }

  /** A mailbox name as an IMAP string: UTF-8 when enabled, else modified UTF-7 (RFC 9051 5.1, RFC 6855 3). */
  mailboxName(name: string): string {
    return imapString(this.utf8 ? name : encodeUtf7(name), { utf8: this.utf8 });
  }

  /** Login succeeded: subscribe to the account's changes. */
  loggedIn(account: Account): void {
    this.account = account;
    this.state = 'auth';
    this.armTimer();
    this.unsubscribe = this.deps.changes.subscribe(account.id, (c) => this.onChange(c));
  }

  private onChange(c: Change): void {
    const v = this.view;
    if (!v || c.mailboxId !== v.id) return;
    if (c.type === 'append') v.noteAppend();
    else if (c.type === 'expunge') v.noteExpunge(c.uids);
    else if (c.type === 'flags') v.noteFlags(c.uids, c.modseq);
    if (this.idle && !this.running) void this.pushIdle();
  }

  private async pushIdle(): Promise<void> {
    this.running = true;
    try {
      await sendUpdates(this, true);
      await this.out.flush();
    } catch (err) {
      this.deps.log.error({ cid: this.id, err: (err as Error).stack }, 'imap idle update failed');
    } finally {
      this.running = false;
    }
    void this.pump();
  }

  /** IDLE (RFC 2177, RFC 9051 6.3.13): updates are pushed until the client sends DONE. */
  startIdle(tag: string): void {
    this.idle = { tag };
    this.reader.setRawLineMode(true);
    this.send('+ idling\r\n');
  }

  /** AUTHENTICATE without an initial response: one continuation, then one line (RFC 9051 6.2.2). */
  awaitAuthResponse(tag: string, mechanism: string): void {
    this.authWait = { tag, mechanism };
    this.reader.setRawLineMode(true);
    this.send('+ \r\n');
  }

  /** STARTTLS: answer, drop whatever was pipelined, handshake, continue on TLS with a fresh reader. */
  async startTls(tag: string): Promise<void> {
    this.send(`${tag} OK Begin TLS negotiation now\r\n`);
    await this.out.flush();
    const plain = this.socket;
    plain.off('data', this.onData);
    this.reader = this.newReader(); // RFC 9051 6.2.1 / RFC 3207-style injection defence
    const t = this.deps.tls;
    const secure = new tls.TLSSocket(plain, { isServer: true, secureContext: t.contextFor(null), SNICallback: t.sniCallback });
    const timer = setTimeout(() => secure.destroy(), 15_000);
    await new Promise<void>((resolve) => {
      secure.once('secure', () => {
        clearTimeout(timer);
        resolve();
      });
      secure.once('error', (err) => {
        clearTimeout(timer);
        this.deps.log.debug({ cid: this.id, err: err.message }, 'imap STARTTLS handshake failed');
        plain.destroy();
        resolve();
      });
    });
    if (plain.destroyed) return;
    this.socket = secure;
    this.out.setSocket(secure);
    this.secure = true;
    secure.on('data', this.onData);
    secure.on('error', () => undefined);
  }

  /** COMPRESS=DEFLATE (RFC 4978): after the tagged OK both directions are raw deflate. */
  async startCompression(tag: string): Promise<void> {
    this.send(`${tag} OK DEFLATE active\r\n`);
    await this.out.flush();
    this.reader = this.newReader();
    this.out.startCompression();
    this.inflate = inflater(
      (b) => this.input(b),
      () => this.close(),
    );
  }

  selectView(view: MailboxView | null): void {
    this.view = view;
    this.state = view ? 'selected' : 'auth';
  }
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').slice(0, 300);
}

function decodeBase64(text: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new ImapBad('Invalid base64');
  return Buffer.from(text, 'base64');
}
