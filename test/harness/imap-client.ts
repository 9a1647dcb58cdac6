/**
 * A small IMAP test client: sends commands (literals as LITERAL+ unless told otherwise), collects untagged
 * responses and the tagged completion, supports STARTTLS, IDLE and raw bytes. Transcript-style tests read
 * like RFC examples: `await c.ok('SELECT INBOX')` returns the untagged lines.
 */
import net from 'node:net';
import tls from 'node:tls';

export interface Reply {
  tag: string;
  status: 'OK' | 'NO' | 'BAD';
  text: string;
  /** Untagged responses (with literals inline) seen since the command was sent. */
  untagged: string[];
}

export class ImapClient {
  private sock: net.Socket;
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private n = 0;
  /** Every complete response line (literals inlined), in order. */
  lines: string[] = [];
  private consumed = 0;
  closed = false;

  private constructor(sock: net.Socket) {
    this.sock = sock;
    this.attach();
  }

  static async connect(port: number, opts: { tls?: boolean; localAddress?: string } = {}): Promise<ImapClient> {
    const sock = opts.tls
      ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, localAddress: opts.localAddress })
      : net.connect({ host: '127.0.0.1', port, localAddress: opts.localAddress });
    await new Promise<void>((resolve, reject) => {
      sock.once(opts.tls ? 'secureConnect' : 'connect', () => resolve());
      sock.once('error', reject);
    });
    const c = new ImapClient(sock);
    c.greeting = await c.readLine();
    return c;
  }

  greeting = '';

  private attach(): void {
    this.sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.parse();
    });
    this.sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    this.sock.on('error', () => undefined);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Splits the buffer into response lines, inlining literals `{n}\r\n<n octets>`. */
  private parse(): void {
    let progressed = false;
    for (;;) {
      let line = '';
      let pos = 0;
      let complete = false;
      for (;;) {
        const lf = this.buf.indexOf(0x0a, pos);
        if (lf < 0) break;
        const piece = this.buf.toString('utf8', pos, lf + 1);
        const m = /\{(\d+)\}\r\n$/.exec(piece);
        if (m) {
          const n = Number(m[1]);
          if (this.buf.length < lf + 1 + n) break;
          line += piece + this.buf.toString('utf8', lf + 1, lf + 1 + n);
          pos = lf + 1 + n;
          continue;
        }
        line += piece;
        pos = lf + 1;
        complete = true;
        break;
      }
      if (!complete) break;
      this.buf = this.buf.subarray(pos);
      this.lines.push(line.replace(/\r\n$/, ''));
      progressed = true;
    }
    if (progressed) this.wake();
  }

  async waitFor(pred: (line: string) => boolean, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.consumed < this.lines.length) {
        const l = this.lines[this.consumed++]!;
        if (pred(l)) return l;
      }
      if (this.closed) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting; last lines: ${this.lines.slice(-5).join(' | ')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  readLine(timeoutMs = 5000): Promise<string> {
    return this.waitFor(() => true, timeoutMs);
  }

  write(data: string | Buffer): void {
    this.sock.write(data);
  }

  nextTag(): string {
    return `A${++this.n}`;
  }

  /** Sends a command and returns its completion with the untagged lines in between. */
  async cmd(command: string, timeoutMs = 10_000): Promise<Reply> {
    const tag = this.nextTag();
    this.write(`${tag} ${command}\r\n`);
    return this.complete(tag, timeoutMs);
  }

  async complete(tag: string, timeoutMs = 10_000): Promise<Reply> {
    const untagged: string[] = [];
    for (;;) {
      const l = await this.readLine(timeoutMs);
      if (l.startsWith(tag + ' ')) {
        const m = /^\S+ (OK|NO|BAD) ?(.*)$/s.exec(l)!;
        return { tag, status: m[1] as Reply['status'], text: m[2]!, untagged };
      }
      untagged.push(l);
    }
  }

  /** cmd() that must answer OK; returns the untagged lines. */
  async ok(command: string): Promise<string[]> {
    const r = await this.cmd(command);
    if (r.status !== 'OK') throw new Error(`${command.slice(0, 80)} -> ${r.status} ${r.text}`);
    return r.untagged;
  }

  async login(user: string, pass: string): Promise<void> {
    await this.ok(`LOGIN ${JSON.stringify(user)} ${JSON.stringify(pass)}`);
  }

  async append(mailbox: string, message: string | Buffer, flags = ''): Promise<Reply> {
    const data = typeof message === 'string' ? Buffer.from(message) : message;
    const tag = this.nextTag();
    const lit = data.includes(0) ? '~{' : '{'; // NUL needs literal8 (RFC 3516 4.4)
    this.write(Buffer.concat([Buffer.from(`${tag} APPEND ${mailbox}${flags ? ` (${flags})` : ''} ${lit}${data.length}+}\r\n`), data, Buffer.from('\r\n')]));
    return this.complete(tag);
  }

  async startTls(): Promise<Reply> {
    const r = await this.cmd('STARTTLS');
    if (r.status !== 'OK') return r;
    this.sock.removeAllListeners('data');
    const secure = tls.connect({ socket: this.sock, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.sock = secure;
    this.attach();
    return r;
  }

  async idle(): Promise<string> {
    const tag = this.nextTag();
    this.write(`${tag} IDLE\r\n`);
    await this.waitFor((l) => l.startsWith('+'));
    return tag;
  }

  async done(tag: string): Promise<Reply> {
    this.write('DONE\r\n');
    return this.complete(tag);
  }

  close(): void {
    this.sock.destroy();
  }
}

/** A small RFC 5322 message. */
export function message(opts: { subject?: string; from?: string; to?: string; body?: string; date?: string; messageId?: string; extra?: string } = {}): string {
  return (
    `From: ${opts.from ?? 'Alice <alice@example.org>'}\r\n` +
    `To: ${opts.to ?? 'bob@postern.test'}\r\n` +
    `Subject: ${opts.subject ?? 'hello'}\r\n` +
    `Date: ${opts.date ?? 'Mon, 7 Feb 1994 21:52:25 -0800'}\r\n` +
    `Message-ID: ${opts.messageId ?? `<${Math.random().toString(36).slice(2)}@example.org>`}\r\n` +
    (opts.extra ?? '') +
    `\r\n${opts.body ?? 'Hello there.\r\n'}`
  );
}
