/** A raw line-oriented client for byte-exact protocol tests (SMTP now; IMAP/POP3 later). */
import net from 'node:net';
import tls from 'node:tls';

export class RawClient {
  private buf = '';
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(public socket: net.Socket) {
    this.attach(socket);
  }

  private attach(socket: net.Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buf += d;
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

  static connect(port: number, opts: { tls?: boolean; host?: string; minVersion?: tls.SecureVersion; maxVersion?: tls.SecureVersion } = {}): Promise<RawClient> {
    const host = opts.host ?? '127.0.0.1';
    return new Promise((resolve, reject) => {
      const s = opts.tls
        ? tls.connect({ host, port, rejectUnauthorized: false, minVersion: opts.minVersion, maxVersion: opts.maxVersion, servername: 'mx.postern.test' }, () => resolve(new RawClient(s)))
        : net.connect({ host, port }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Waits for a complete SMTP reply (last line "NNN "); returns all its lines. */
  async reply(timeoutMs = 10_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = this.buf.split('\r\n');
      for (let i = 0; i < lines.length - 1; i++) {
        if (/^\d{3} /.test(lines[i]!) || (/^\d{3}$/.test(lines[i]!))) {
          const out = lines.slice(0, i + 1);
          this.buf = lines.slice(i + 1).join('\r\n');
          return out;
        }
      }
      if (this.closed) throw new Error(`connection closed; pending: ${JSON.stringify(this.buf)}`);
      if (Date.now() > deadline) throw new Error(`timeout waiting for reply; pending: ${JSON.stringify(this.buf)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async command(line: string): Promise<string[]> {
    this.write(line + '\r\n');
    return this.reply();
  }

  /** Everything received until the server closes (or timeout). */
  async untilClosed(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.buf;
  }

  pending(): string {
    return this.buf;
  }

  /** Upgrades to TLS after a successful STARTTLS reply. */
  async startTls(): Promise<tls.TLSSocket> {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    const t = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'mx.postern.test' }, () => resolve(s));
      s.once('error', reject);
    });
    this.socket = t;
    this.buf = '';
    this.attach(t);
    return t;
  }

  close(): void {
    this.socket.destroy();
  }
}
