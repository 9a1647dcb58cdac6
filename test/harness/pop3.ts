/**
 * A byte-exact POP3 client for tests (RFC 1939): single-line replies, multi-line replies with the
 * dot-stuffing undone, STLS, and raw writes for pipelining and malformed-input tests.
 */
import net from 'node:net';
import tls from 'node:tls';

export class Pop3Client {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(public socket: net.Socket) {
    this.attach(socket);
  }

  private attach(socket: net.Socket): void {
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  /** Connects and reads the greeting. */
  static async connect(port: number, opts: { tls?: boolean } = {}): Promise<{ client: Pop3Client; greeting: string }> {
    const s = await new Promise<net.Socket>((resolve, reject) => {
      const sock: net.Socket = opts.tls
        ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'mx.postern.test' }, () => resolve(sock))
        : net.connect({ host: '127.0.0.1', port }, () => resolve(sock));
      sock.once('error', reject);
    });
    const client = new Pop3Client(s);
    return { client, greeting: await client.line() };
  }

  private async waitFor<T>(take: () => T | null, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = take();
      if (v !== null) return v;
      if (this.closed) throw new Error(`connection closed; pending: ${JSON.stringify(this.buf.toString('latin1').slice(0, 200))}`);
      if (Date.now() > deadline) throw new Error(`timeout; pending: ${JSON.stringify(this.buf.toString('latin1').slice(0, 200))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** One reply line, without CRLF. */
  line(timeoutMs = 10_000): Promise<string> {
    return this.waitFor(() => {
      const i = this.buf.indexOf('\r\n');
      if (i < 0) return null;
      const l = this.buf.subarray(0, i).toString('latin1');
      this.buf = this.buf.subarray(i + 2);
      return l;
    }, timeoutMs);
  }

  /** The body of a multi-line reply after its status line: raw (as sent) and unstuffed. */
  body(timeoutMs = 30_000): Promise<{ raw: Buffer; data: Buffer }> {
    let from = 0;
    return this.waitFor(() => {
      // The terminator is "." alone on a line; the body starts right after the status line.
      const end = this.buf.length >= 3 && this.buf.subarray(0, 3).toString() === '.\r\n' ? 0 : this.buf.indexOf('\r\n.\r\n', Math.max(0, from - 4));
      if (end < 0) {
        from = this.buf.length;
        return null;
      }
      const rawEnd = end === 0 ? 0 : end + 2;
      const raw = this.buf.subarray(0, rawEnd);
      this.buf = this.buf.subarray(rawEnd + 3);
      return { raw, data: unstuff(raw) };
    }, timeoutMs);
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  async command(line: string): Promise<string> {
    this.write(line + '\r\n');
    return this.line();
  }

  /** A command with a multi-line reply: status and, when +OK, the lines. */
  async multi(line: string): Promise<{ status: string; lines: string[]; data: Buffer }> {
    const status = await this.command(line);
    if (!status.startsWith('+OK')) return { status, lines: [], data: Buffer.alloc(0) };
    const { data } = await this.body();
    const text = data.toString('latin1');
    return { status, lines: text ? text.replace(/\r\n$/, '').split('\r\n') : [], data };
  }

  /** STLS then the TLS handshake (RFC 2595 4). Anything unread before is dropped. */
  async stls(): Promise<string> {
    const status = await this.command('STLS');
    if (!status.startsWith('+OK')) return status;
    await this.upgrade();
    return status;
  }

  async upgrade(): Promise<void> {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    const t = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'mx.postern.test' }, () => resolve(s));
      s.once('error', reject);
    });
    this.socket = t;
    this.buf = Buffer.alloc(0);
    this.attach(t);
  }

  pending(): string {
    return this.buf.toString('latin1');
  }

  /** Waits for the server to close; returns what it sent meanwhile. */
  async untilClosed(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.pending();
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Undoes RFC 1939 3 byte-stuffing: a line starting with ".." loses its first ".". */
export function unstuff(raw: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  let lineStart = 0;
  while (lineStart < raw.length) {
    if (raw[lineStart] === 46) {
      parts.push(raw.subarray(start, lineStart));
      start = lineStart + 1;
    }
    const lf = raw.indexOf(10, lineStart);
    if (lf < 0) break;
    lineStart = lf + 1;
  }
  parts.push(raw.subarray(start));
  return Buffer.concat(parts);
}
